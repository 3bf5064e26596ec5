//! Durability: a real coordinator process is killed with SIGKILL right after
//! acknowledging N submits, restarted on the same store, and every task is
//! there and completes exactly once.

use fog_e2e::process::CoordinatorProcess;
use fog_e2e::*;
use fog_proto::v1 as pb;
use fog_proto::v1::task_service_client::TaskServiceClient;
use fogctl::sim::spawn_node;
use tonic::transport::Endpoint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_tasks_survive_sigkill_and_none_completes_twice() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let mut coord = CoordinatorProcess::start(dir.path(), &["--restart-grace", "10s"]);
    let url = coord.url.clone();
    connect(&url).await;
    // A lazy channel reconnects by itself once the new process listens.
    let channel = Endpoint::from_shared(url.clone()).unwrap().connect_lazy();
    let _nodes: Vec<_> =
        (0..3).map(|i| spawn_node(channel.clone(), spec(&format!("p-{i}"), 1000), fast_sim())).collect();
    let token = coord.admin_token().await;
    let mut tasks = TaskServiceClient::new(fog_proto::auth::Bearer::new(&token).unwrap().wrap(channel.clone()));
    let n = 60;
    let mut acked = Vec::new();
    for i in 0..n {
        // A mix: some finish before the crash, some run across it, some wait in the queue.
        let spec = if i % 3 == 0 { echo(&format!("e{i}")) } else { sleep(200 + (i as u64 % 5) * 100) };
        let t = tasks
            .submit_task(pb::SubmitTaskRequest { spec: Some(spec), request_id: String::new() })
            .await
            .expect("submit acknowledged")
            .into_inner()
            .task
            .unwrap();
        acked.push(t.id);
    }
    // SIGKILL immediately after the last acknowledgement: no shutdown code runs.
    coord.kill();
    let _coord = CoordinatorProcess::start_on(coord.port, dir.path(), &["--restart-grace", "10s"]);
    connect(&url).await;

    for id in &acked {
        succeeded_once(&tasks, id, std::time::Duration::from_secs(60)).await;
    }
    let listed =
        tasks.list_tasks(pb::ListTasksRequest { page_size: 1000, ..Default::default() }).await.unwrap().into_inner();
    assert_eq!(listed.total_matching, n as u64, "no task lost, none invented");
}

/// Finished tasks beyond `--finished-tasks-kept` leave the coordinator's
/// memory, and are still there for everything a client relies on: GetTask,
/// a retried submit with the same request id, cancel (refused: finished),
/// the watch's initial state, and the totals — before and after a restart,
/// which reads only the active and the newest finished tasks.
#[tokio::test]
async fn finished_tasks_beyond_the_limit_leave_memory_but_not_the_api() {
    let mut coord = Coord::start_kept(|cfg| cfg.finished_tasks_kept = 100).await;
    let _nodes = coord.nodes("kept", 2, 4000);
    coord.wait_healthy(2).await;
    let n = 160;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(coord.submit_with_request_id(echo(&format!("e{i}")), &format!("req-{i}")).await.id);
    }
    for id in &ids {
        coord.wait_state(id, pb::TaskState::Succeeded).await;
    }
    check_finished_beyond_memory(&coord, &ids, n).await;
    coord.stop().await;
    coord.restart().await;
    check_finished_beyond_memory(&coord, &ids, n).await;
}

/// What `finished_tasks_beyond_the_limit_leave_memory_but_not_the_api` checks, before and after a restart.
async fn check_finished_beyond_memory(coord: &Coord, ids: &[String], n: usize) {
    let listed = coord
        .tasks()
        .list_tasks(pb::ListTasksRequest { page_size: 1000, ..Default::default() })
        .await
        .expect("list")
        .into_inner();
    assert!(listed.total_matching <= 100, "memory holds at most 100 finished tasks: {}", listed.total_matching);
    assert!(!listed.tasks.iter().any(|t| t.id == ids[0]), "the oldest is no longer listed");
    let first = coord.task(&ids[0]).await;
    assert_eq!((first.state, first.output.map(|o| o.stdout)), (pb::TaskState::Succeeded as i32, Some(b"e0".to_vec())));
    let again = coord.submit_with_request_id(echo("e0"), "req-0").await;
    assert_eq!(again.id, ids[0], "a retried submit finds the finished task by its request id");
    // A new request id still makes a new task, once (after the restart, the
    // same id finds the task made before it).
    let fresh = "fresh-1";
    let new = coord.submit_with_request_id(echo("new"), fresh).await;
    assert!(!ids.contains(&new.id), "a new request id makes a new task");
    assert_eq!(coord.submit_with_request_id(echo("new"), fresh).await.id, new.id, "and its retry finds it");
    let err = coord
        .tasks()
        .cancel_task(pb::CancelTaskRequest { task_id: ids[0].clone(), reason: String::new() })
        .await
        .expect_err("finished");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    let mut watch = coord
        .tasks()
        .watch_tasks(pb::WatchTasksRequest { task_ids: vec![ids[1].clone()], initial_state: true })
        .await
        .expect("watch")
        .into_inner();
    let initial = tokio::time::timeout(DEADLINE, watch.message()).await.expect("in time").expect("ok");
    assert_eq!(initial.and_then(|m| m.task).map(|t| t.state), Some(pb::TaskState::Succeeded as i32));
    let missing = coord.tasks().get_task(pb::GetTaskRequest { task_id: "t-0000".into() }).await.expect_err("none");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // Every task, in memory or not: the n, and the fresh one once it is done.
    coord.wait_state(&new.id, pb::TaskState::Succeeded).await;
    eventually("the totals count every task", DEADLINE, || async {
        let aggregates = coord
            .topology()
            .get_topology(pb::GetTopologyRequest::default())
            .await
            .expect("topology")
            .into_inner()
            .aggregates
            .expect("aggregates");
        (aggregates.completed_tasks == n as u64 + 1).then_some(())
    })
    .await;
}
