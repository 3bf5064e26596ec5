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
