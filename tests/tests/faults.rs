//! Fault injection with a recorded history (after etcd's robustness tests):
//! every operation is recorded with its call and its return; one that failed
//! or timed out counts as "may have happened". Invariants are checked over
//! the whole history at the end.
//!
//! Coordinator SIGKILL under load: a client submits tasks without pause, each
//! with its own request id, while the coordinator is killed and restarted
//! `FOG_FAULT_ROUNDS` times (20 by default). Afterwards every "may have
//! happened" submit is retried with its request id, and then:
//! - every request id maps to exactly one task (nothing lost, nothing twice:
//!   the store holds exactly as many tasks as there were request ids);
//! - every task succeeds with exactly one successful attempt (the attempt
//!   number is the fencing token: no two runs of one task are accepted).

use fog_e2e::disk::ReadOnly;
use fog_e2e::process::CoordinatorProcess;
use fog_e2e::*;
use fog_proto::v1 as pb;
use fog_proto::v1::task_service_client::TaskServiceClient;
use fogctl::sim::spawn_node;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Endpoint;

/// One submit as the client saw it.
#[derive(Clone, Debug)]
enum Outcome {
    /// Acknowledged with this task id.
    Acked(String),
    /// Failed or timed out: may have happened.
    Maybe,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_sigkill_rounds_under_load_lose_nothing_and_run_nothing_twice() {
    init_logs();
    let rounds: usize = std::env::var("FOG_FAULT_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let args = ["--restart-grace", "10s"];
    let mut coord = CoordinatorProcess::start(dir.path(), &args);
    let url = coord.url.clone();
    connect(&url).await;
    let channel = Endpoint::from_shared(url.clone()).unwrap().connect_lazy();
    let _nodes: Vec<_> =
        (0..3).map(|i| spawn_node(channel.clone(), spec(&format!("f-{i}"), 4000), fast_sim())).collect();
    let token = coord.admin_token().await;
    let tasks = TaskServiceClient::new(fog_proto::auth::Bearer::new(&token).unwrap().wrap(channel.clone()));

    // The load: submits one after another, each recorded.
    let history: Arc<Mutex<Vec<(String, Outcome)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (history, stop, mut tasks) = (history.clone(), stop.clone(), tasks.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let rid = format!("r-{i:05}");
                let mut req =
                    tonic::Request::new(pb::SubmitTaskRequest { spec: Some(echo(&rid)), request_id: rid.clone() });
                req.set_timeout(Duration::from_secs(2));
                let outcome = match tasks.submit_task(req).await {
                    Ok(r) => Outcome::Acked(r.into_inner().task.unwrap().id),
                    Err(_) => {
                        // The coordinator is down: do not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Outcome::Maybe
                    }
                };
                history.lock().unwrap().push((rid, outcome));
                i += 1;
            }
        })
    };

    let mut back_in = Vec::new();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(200 + (round as u64 * 137) % 400)).await;
        coord.kill();
        let killed = Instant::now();
        coord = CoordinatorProcess::start_on(coord.port, dir.path(), &args);
        eventually("the restarted coordinator answers", DEADLINE, || {
            let mut tasks = tasks.clone();
            async move { tasks.list_tasks(pb::ListTasksRequest { page_size: 1, ..Default::default() }).await.ok() }
        })
        .await;
        back_in.push(killed.elapsed().as_millis() as u64);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();

    // Resolve every "may have happened" by retrying it with its request id.
    let history = history.lock().unwrap().clone();
    let maybe = history.iter().filter(|(_, o)| matches!(o, Outcome::Maybe)).count();
    let mut by_request: BTreeMap<String, String> = BTreeMap::new();
    for (rid, outcome) in &history {
        let id = match outcome {
            Outcome::Acked(id) => id.clone(),
            Outcome::Maybe => {
                eventually(&format!("retry of {rid}"), DEADLINE, || {
                    let mut tasks = tasks.clone();
                    let req = pb::SubmitTaskRequest { spec: Some(echo(rid)), request_id: rid.clone() };
                    async move { Some(tasks.submit_task(req).await.ok()?.into_inner().task?.id) }
                })
                .await
            }
        };
        if let Some(before) = by_request.insert(rid.clone(), id.clone()) {
            panic!("request id {rid} answered twice: {before} and {id}");
        }
    }
    let ids: BTreeSet<&String> = by_request.values().collect();
    assert_eq!(ids.len(), by_request.len(), "two request ids share a task");
    let mut list = tasks.clone();
    let total = list
        .list_tasks(pb::ListTasksRequest { page_size: 1, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .total_matching;
    assert_eq!(total, by_request.len() as u64, "the store holds one task per request id: none lost, none twice");
    for (rid, id) in &by_request {
        let t = succeeded_once(&tasks, id, Duration::from_secs(60)).await;
        assert_eq!(t.output.unwrap().stdout, rid.as_bytes(), "{id} ({rid}) ran its own work");
    }
    back_in.sort_unstable();
    eprintln!(
        "fault: coordinator SIGKILL x{rounds}: {} submits ({} acknowledged, {maybe} may have happened, all resolved), \
         {} tasks, lost 0, duplicates 0; serving again after p50 {} ms, max {} ms",
        history.len(),
        history.len() - maybe,
        by_request.len(),
        back_in[back_in.len() / 2],
        back_in[back_in.len() - 1],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_refuses_the_submit_with_a_clear_error_stops_and_acknowledges_nothing_it_did_not_store() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let coord = CoordinatorProcess::start(&data, &["--restart-grace", "10s"]);
    let c = Coord::client_of(&coord.url).await;
    let _node = c.node(spec("ro-1", 4000));
    c.wait_healthy(1).await;
    let before = c.submit_with_request_id(echo("before"), "ro-a").await;
    c.wait_state(&before.id, pb::TaskState::Succeeded).await;

    let read_only = ReadOnly::set(&data);
    let req = pb::SubmitTaskRequest { spec: Some(echo("during")), request_id: "ro-b".into() };
    let err = c.tasks().submit_task(req).await.expect_err("a submit the store cannot hold is not acknowledged");
    eprintln!("fault: read-only store directory: the submit was refused with {err:?}");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    // It names the file and the system's reason, and what happens next.
    assert!(err.message().contains(&data.join("fog.wal").display().to_string()), "{err:?}");
    assert!(err.message().contains("not permitted"), "{err:?}");
    assert!(err.message().contains("restarted once the disk is fixed"), "{err:?}");
    // The store accepts no more writes (a failed sync leaves the page cache's
    // state unknown), so the coordinator stops, for its supervisor to restart
    // it: what etcd and PostgreSQL do too.
    let coord = std::sync::Mutex::new(coord);
    let code = eventually("the coordinator stops", DEADLINE, || {
        let code = coord.lock().unwrap().exit_code();
        async move { code }
    })
    .await;
    assert_eq!(code, fog_coordinator::server::EXIT_STORE_FAILED);
    let port = coord.lock().unwrap().port;

    // Restarted on a store it cannot write, it refuses to start.
    let failed = std::sync::Mutex::new(CoordinatorProcess::restart_on(port, &data, &[]));
    let code = eventually("the coordinator on a read-only store exits", DEADLINE, || {
        let code = failed.lock().unwrap().exit_code();
        async move { code }
    })
    .await;
    assert_eq!(code, 1);

    // The disk is fixed: a restart has everything acknowledged, nothing else,
    // and the refused submit can be retried with its request id.
    drop(read_only);
    let coord = CoordinatorProcess::restart_on(port, &data, &["--restart-grace", "10s"]);
    let c = Coord::client_of(&coord.url).await;
    let list = c.tasks().list_tasks(pb::ListTasksRequest::default()).await.unwrap().into_inner();
    assert_eq!(list.total_matching, 1, "only the acknowledged task: {list:?}");
    assert_eq!(c.task(&before.id).await.state, pb::TaskState::Succeeded as i32);
    c.wait_healthy(1).await;
    let retried = c.submit_with_request_id(echo("during"), "ro-b").await;
    let done = c.wait_state(&retried.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, b"during");
}
