//! Prometheus metrics as an operator consumes them: a real Prometheus server
//! scrapes a running coordinator, and the figures are read back with PromQL
//! over its HTTP API.

use fog_e2e::prometheus::{Prometheus, http_get};
use fog_e2e::*;
use fog_proto::v1 as pb;
use std::time::Duration;

const SCRAPED: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_coordinator() {
    let c = Coord::start_with(|cfg| cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_addr = c.running.as_ref().unwrap().metrics_addr.expect("metrics served");
    let _nodes = c.nodes("prom", 3, 2000);
    c.wait_healthy(3).await;
    for i in 0..3 {
        let t = c.submit(echo(&format!("scraped {i}"))).await;
        c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    }
    // A call without credentials: counted with its code.
    let mut anonymous = pb::task_service_client::TaskServiceClient::new(c.channel.clone());
    let denied = anonymous.list_tasks(pb::ListTasksRequest::default()).await.expect_err("needs a credential");
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);
    // A topology watcher, seen in the watcher gauge.
    let _watch = c.topology().watch_topology(pb::WatchTopologyRequest::default()).await.expect("watch opens");

    // The exposition itself, as the scraper fetches it.
    let (status, body) = http_get(&format!("http://{metrics_addr}/metrics")).await.expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
    let (status, _) = http_get(&format!("http://{metrics_addr}/other")).await.expect("GET /other");
    assert_eq!(status, 404);

    let prom = Prometheus::start(&[("fog-coordinator", metrics_addr)]);
    prom.wait_for("up{job=\"fog-coordinator\"}", SCRAPED, |v| v == 1.0).await;
    // Nodes by status: three connected, healthy and idle again.
    prom.wait_for("sum(fog_nodes{status=~\"idle|active|busy\"})", SCRAPED, |v| v == 3.0).await;
    prom.wait_for("fog_node_sessions", SCRAPED, |v| v == 3.0).await;
    prom.wait_for("fog_tasks{state=\"succeeded\"}", SCRAPED, |v| v == 3.0).await;
    prom.wait_for("fog_tasks{state=\"queued\"}", SCRAPED, |v| v == 0.0).await;
    // Heartbeats every 100 ms from three nodes.
    prom.wait_for("fog_heartbeats_total", SCRAPED, |v| v > 10.0).await;
    let p50 = prom
        .wait_for(
            "histogram_quantile(0.5, sum(rate(fog_heartbeat_interarrival_seconds_bucket[10s])) by (le))",
            SCRAPED,
            |v| v.is_finite(),
        )
        .await;
    assert!(p50 <= 0.25, "heartbeats arrive every 100 ms; the median inter-arrival is in the first bucket: {p50}");
    prom.wait_for("fog_node_heartbeat_age_seconds{quantile=\"1\"}", SCRAPED, |v| (0.0..2.0).contains(&v)).await;
    // Routing: three least-loaded decisions, three bronze placements within target.
    prom.wait_for("fog_routing_decision_duration_seconds_count{strategy=\"least-loaded\"}", SCRAPED, |v| v >= 3.0)
        .await;
    prom.wait_for("fog_task_queue_wait_seconds_count{sla_tier=\"bronze\"}", SCRAPED, |v| v == 3.0).await;
    prom.wait_for("sum(fog_task_placements_total{sla_tier=\"bronze\"})", SCRAPED, |v| v == 3.0).await;
    prom.wait_for("fog_sla_compliance_ratio", SCRAPED, |v| (0.0..=1.0).contains(&v)).await;
    // gRPC server metrics, with go-grpc-prometheus names and codes.
    let ok = "grpc_server_handled_total{grpc_service=\"fog.v1.TaskService\",grpc_method=\"SubmitTask\",grpc_code=\"OK\",grpc_type=\"unary\"}";
    prom.wait_for(ok, SCRAPED, |v| v == 3.0).await;
    let denied = "grpc_server_handled_total{grpc_method=\"ListTasks\",grpc_code=\"Unauthenticated\"}";
    prom.wait_for(denied, SCRAPED, |v| v == 1.0).await;
    prom.wait_for("grpc_server_started_total{grpc_method=\"Session\",grpc_type=\"bidi_stream\"}", SCRAPED, |v| {
        v >= 3.0
    })
    .await;
    prom.wait_for("fog_watchers{stream=\"topology\"}", SCRAPED, |v| v >= 1.0).await;
    prom.wait_for("fog_store_commit_duration_seconds_count", SCRAPED, |v| v >= 3.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted_by_limit() {
    let c = Coord::start_with(|cfg| {
        cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        cfg.auth.limits.read_rps = 1;
    })
    .await;
    let metrics_addr = c.running.as_ref().unwrap().metrics_addr.expect("metrics served");
    let mut refused = 0;
    for _ in 0..10 {
        if let Err(s) = c.tasks().list_tasks(pb::ListTasksRequest::default()).await {
            assert_eq!(s.code(), tonic::Code::ResourceExhausted);
            refused += 1;
        }
    }
    assert!(refused > 0, "a burst of 10 reads at 1/s (burst 2) is limited");
    let (_, body) = http_get(&format!("http://{metrics_addr}/metrics")).await.expect("GET /metrics");
    let line = format!("fog_rate_limited_requests_total{{limit=\"reads_per_identity\"}} {refused}");
    assert!(body.contains(&line), "{line} missing from:\n{body}");
    let exhausted = format!(
        "grpc_server_handled_total{{grpc_service=\"fog.v1.TaskService\",grpc_method=\"ListTasks\",grpc_type=\"unary\",grpc_code=\"ResourceExhausted\"}} {refused}"
    );
    assert!(body.contains(&exhausted), "{exhausted} missing from:\n{body}");
}
