//! OpenTelemetry traces end to end: a real coordinator and a real fog-agent
//! export spans over OTLP/gRPC to a collector run by the test; `fogctl`
//! submits a task under a caller's trace context (TRACEPARENT). The task's
//! spans must form one connected trace: the caller's span → the submit call
//! → place → dispatch → run (on the node) → complete. A grpc-web call through
//! fog-gateway carries the browser's context the same way.

use fog_e2e::process::{CoordinatorProcess, binary, free_port};
use fog_e2e::{DEADLINE, eventually};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A received span: (service.name, trace id, span id, parent span id, name).
#[derive(Clone, Debug)]
struct Received {
    service: String,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
}

/// An OTLP/gRPC trace collector that keeps every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for s in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                spans.push(Received {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    name: s.name,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_trace_is_connected_from_the_caller_to_the_node_and_back() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let data = tempfile::tempdir().unwrap();
    // Export batches every 100 ms (the standard OTEL_BSP_* knob), so the test need not stop anything.
    let fast = [("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let coord =
        CoordinatorProcess::start_with_env(free_port(), data.path(), &["--otlp-endpoint", otlp.as_str()], &fast);
    let token = coord.admin_token().await;
    let state = tempfile::tempdir().unwrap();
    let mut agent = Command::new(binary("fog-agent"))
        .args(["run", "--insecure", "--coordinator", &coord.url, "--node-id", "traced-1"])
        .arg("--state-dir")
        .arg(state.path())
        .args(["--otlp-endpoint", &otlp])
        .envs(fast)
        .env("FOG_AGENT_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn fog-agent");

    // The caller's own span (a CI job, say), handed to fogctl as TRACEPARENT.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let out = eventually("fogctl submits once the node is up", DEADLINE, || {
        let (url, token) = (coord.url.clone(), token.clone());
        async move {
            let out = tokio::process::Command::new(binary("fogctl"))
                .args(["--coordinator", &url, "--token", &token, "-o", "json"])
                .args(["tasks", "submit", "--echo", "traced", "--wait"])
                .env("TRACEPARENT", format!("00-{trace_id}-{caller_span}-01"))
                .output()
                .await
                .expect("fogctl runs");
            out.status.success().then_some(out)
        }
    })
    .await;
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).expect("task JSON");
    assert_eq!(task["state"], "TASK_STATE_SUCCEEDED", "{task}");

    let names = ["fog.v1.TaskService/SubmitTask", "place", "dispatch", "run", "complete"];
    let spans = eventually("the task's five spans exported", Duration::from_secs(30), || {
        let spans: Vec<Received> =
            collector.spans.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect();
        let all = names.iter().all(|n| spans.iter().any(|s| s.name == *n));
        async move { all.then_some(spans) }
    })
    .await;
    let span = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name}: {spans:?}"));
    // Each is the child of the one before: one connected trace, across three processes.
    let mut parent = caller_span.to_string();
    for name in names {
        let s = span(name);
        assert_eq!(s.parent, parent, "{name} is the child of the span before it: {spans:#?}");
        parent = s.span_id.clone();
    }
    assert!(span("run").service.contains("fog-agent"), "{:?}", span("run"));
    assert!(span("place").service.contains("fog-coordinator"), "{:?}", span("place"));

    // Through fog-gateway, as the panel calls: grpc-web carries the browser's
    // traceparent, and the gateway passes it on.
    use clap::Parser;
    let gw = fog_gateway::start(fog_gateway::Config::parse_from([
        "fog-gateway",
        "--listen",
        "127.0.0.1:0",
        "--coordinator",
        &coord.url,
    ]))
    .await
    .expect("gateway starts");
    let web = tower::ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http());
    let browser_trace = "0af7651916cd43dd8448eb211c80319c";
    let bearer = fog_proto::auth::Bearer::new(&token)
        .unwrap()
        .with_traceparent(&format!("00-{browser_trace}-b7ad6b7169203331-01"))
        .unwrap();
    let origin: http::Uri = format!("http://{}", gw.addr).parse().unwrap();
    let mut tasks = fog_proto::v1::task_service_client::TaskServiceClient::with_origin(bearer.wrap(web), origin);
    let spec = fog_proto::v1::TaskSpec {
        workload: Some(fog_proto::v1::task_spec::Workload::Builtin(fog_proto::v1::BuiltinTask {
            kind: Some(fog_proto::v1::builtin_task::Kind::Echo("from the panel".into())),
        })),
        ..Default::default()
    };
    tasks
        .submit_task(fog_proto::v1::SubmitTaskRequest { spec: Some(spec), ..Default::default() })
        .await
        .expect("submit through the gateway");
    let submit = eventually("the gateway-submitted task's span exported", Duration::from_secs(30), || {
        let found =
            collector.spans.lock().unwrap().iter().find(|s| s.trace_id == browser_trace && s.name == names[0]).cloned();
        async move { found }
    })
    .await;
    assert_eq!(submit.parent, "b7ad6b7169203331", "the browser's span is the submit's parent");
    gw.stop().await;
    let _ = agent.kill();
    let _ = agent.wait();
}
