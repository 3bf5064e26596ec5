//! The API surface: health, reflection, system status, and bad input refused
//! with the offending field named.

use fog_e2e::field_violations as fields;
use fog_e2e::*;
use fog_proto::v1 as pb;
use tokio_stream::StreamExt;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_serving_for_every_service() {
    let c = Coord::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(c.channel.clone());
    for service in ["", "fog.v1.TaskService", "fog.v1.NodeService", "fog.v1.TopologyService"] {
        let r =
            health.check(tonic_health::pb::HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32, "{service}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_fog_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let c = Coord::start().await;
    // The schema (admin RPCs included) is for signed-in users.
    let req = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let anonymous =
        ServerReflectionClient::new(c.channel.clone()).server_reflection_info(tokio_stream::iter([req()])).await;
    assert_eq!(anonymous.unwrap_err().code(), Code::Unauthenticated);
    let mut client = ServerReflectionClient::new(c.admin());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client.server_reflection_info(tokio_stream::iter([req])).await.unwrap().into_inner();
    let resp = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else { panic!("{resp:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in fog_proto::SERVICE_NAMES {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_status_lists_the_components_by_category() {
    let c = Coord::start().await;
    let s = c.system().get_system_status(pb::GetSystemStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(s.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(s.overall, pb::ComponentStatus::Healthy as i32);
    let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
    for want in ["registry", "scheduler", "task-queue", "liveness-monitor", "topology-stream", "store", "auth"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let auth = s.components.iter().find(|c| c.name == "auth").unwrap();
    assert_eq!(auth.metrics.get("users").map(String::as_str), Some("1"), "the bootstrap admin: {auth:?}");
    assert!(s.components.iter().all(|c| !c.category.is_empty() && !c.detail.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_the_field_named_and_nothing_is_written() {
    let c = Coord::start().await;
    let mut tasks = c.tasks();
    // Tasks.
    let mut spec = echo("x");
    spec.resources = Some(pb::Resources { cpu_millis: u32::MAX, ..Default::default() });
    spec.sla_tier = 42;
    spec.required_labels = vec![pb::Label { key: "bad key!".into(), value: "v".into() }];
    let err =
        tasks.submit_task(pb::SubmitTaskRequest { spec: Some(spec), request_id: String::new() }).await.unwrap_err();
    let f = fields(&err);
    for want in ["spec.resources.cpu_millis", "spec.sla_tier", "spec.required_labels[0].key"] {
        assert!(f.iter().any(|x| x == want), "{want} not in {f:?}");
    }
    let err = tasks.submit_task(pb::SubmitTaskRequest { spec: None, request_id: String::new() }).await.unwrap_err();
    assert_eq!(fields(&err), ["spec"]);
    let listed = tasks.list_tasks(pb::ListTasksRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.total_matching, 0, "a refused submit writes nothing");
    let err = tasks.get_task(pb::GetTaskRequest { task_id: "../etc".into() }).await.unwrap_err();
    assert_eq!(fields(&err), ["task_id"]);
    let err = tasks.get_task(pb::GetTaskRequest { task_id: "t-nope".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = tasks
        .list_tasks(pb::ListTasksRequest { page_size: 5000, states: vec![99], ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["states[0]", "page_size"]);
    let err = tasks.explain_placement(pb::ExplainPlacementRequest::default()).await.unwrap_err();
    assert_eq!(fields(&err), ["spec"]);
    // Fleet.
    let mut fleet = c.fleet();
    let err = fleet.get_node(pb::GetNodeRequest { node_id: "UPPER".into() }).await.unwrap_err();
    assert_eq!(fields(&err), ["node_id"]);
    let err = fleet
        .update_node_labels(pb::UpdateNodeLabelsRequest {
            node_id: "n1".into(),
            set: vec![pb::Label { key: "k".into(), value: "white space".into() }],
            remove: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["set[0].value"]);
    let err = fleet.cordon_node(pb::CordonNodeRequest { node_id: "missing".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Topology.
    let err = c
        .topology()
        .watch_topology(pb::WatchTopologyRequest { metrics_interval_ms: 5, detail: 9, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(fields(&err), ["detail", "metrics_interval_ms"]);
    let err = c.topology().get_topology_history(pb::GetTopologyHistoryRequest { limit: 101 }).await.unwrap_err();
    assert_eq!(fields(&err), ["limit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_must_start_with_a_valid_hello() {
    use fog_proto::v1::node_service_client::NodeServiceClient;
    use fog_proto::v1::session_request::Msg;
    let c = Coord::start().await;
    let mut client = NodeServiceClient::new(c.channel.clone());
    let hb = pb::SessionRequest { msg: Some(Msg::Heartbeat(pb::Heartbeat::default())) };
    let err = client.session(tokio_stream::iter([hb])).await.unwrap_err();
    assert_eq!(fields(&err), ["hello"]);
    let hello = pb::Hello {
        node_id: "Bad Id".into(),
        labels: vec![pb::Label { key: "fog.io/attested".into(), value: "true".into() }],
        ..Default::default()
    };
    let err =
        client.session(tokio_stream::iter([pb::SessionRequest { msg: Some(Msg::Hello(hello)) }])).await.unwrap_err();
    let mut f = fields(&err);
    f.sort();
    assert_eq!(f, ["hello.capacity", "hello.labels[0].key", "hello.node_id"], "a node cannot give itself admin labels");
    let nodes = c.fleet().list_nodes(pb::ListNodesRequest::default()).await.unwrap().into_inner();
    assert_eq!(nodes.total_matching, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_placement_says_why_nodes_were_rejected() {
    let c = Coord::start().await;
    let _nodes = c.nodes("n", 3, 1000);
    c.wait_healthy(3).await;
    c.fleet().cordon_node(pb::CordonNodeRequest { node_id: "n-0".into() }).await.unwrap();
    let mut spec = echo("x");
    spec.resources = Some(pb::Resources { cpu_millis: 500, ..Default::default() });
    let ex = c
        .tasks()
        .explain_placement(pb::ExplainPlacementRequest { spec: Some(spec.clone()), task_id: String::new(), limit: 10 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ex.nodes_considered, 3);
    assert_eq!(ex.nodes_fitting, 2);
    assert!(["n-1", "n-2"].contains(&ex.chosen_node_id.as_str()));
    let rejected = ex.rejected.iter().find(|r| r.node_id == "n-0").expect("n-0 rejected");
    assert!(rejected.reasons.iter().any(|r| r.contains("cordon")), "{:?}", rejected.reasons);
    assert_eq!(ex.rejection_counts.get("cordoned"), Some(&1));
    // Too big for anyone: every node rejected for cpu (or cordon).
    spec.resources = Some(pb::Resources { cpu_millis: 5000, ..Default::default() });
    let ex = c
        .tasks()
        .explain_placement(pb::ExplainPlacementRequest { spec: Some(spec), task_id: String::new(), limit: 10 })
        .await
        .unwrap()
        .into_inner();
    assert!(ex.chosen_node_id.is_empty());
    assert_eq!(ex.nodes_fitting, 0);
    assert!(ex.rejection_counts.get("cpu").copied().unwrap_or(0) >= 2, "{:?}", ex.rejection_counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_ends_sessions_and_watches_and_keeps_the_data() {
    let mut c = Coord::start().await;
    let node = c.node(spec("g-1", 1000));
    c.wait_healthy(1).await;
    let t = c.submit(echo("kept")).await;
    c.wait_state(&t.id, pb::TaskState::Succeeded).await;
    let mut watch = c.topology().watch_topology(pb::WatchTopologyRequest::default()).await.unwrap().into_inner();
    assert!(watch.next().await.is_some());
    let stop = tokio::spawn(async move {
        c.stop().await;
        c
    });
    // The watch ends instead of hanging, and the node loses its session.
    let end = tokio::time::timeout(DEADLINE, async { while let Some(Ok(_)) = watch.next().await {} }).await;
    assert!(end.is_ok(), "the watch stream ended on shutdown");
    let mut c = tokio::time::timeout(DEADLINE, stop).await.expect("stop finished").unwrap();
    eventually("node saw its session end", DEADLINE, || async { (!node.stats().connected).then_some(()) }).await;
    node.stop();
    c.restart().await;
    let again = c.task(&t.id).await;
    assert_eq!(again.state, pb::TaskState::Succeeded as i32);
    assert_eq!(again.output.unwrap().stdout, b"kept");
}
