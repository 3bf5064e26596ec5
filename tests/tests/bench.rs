//! The benchmark command's quick variant, so the benchmark code cannot rot:
//! every scenario of `fog-bench all` (raw tonic, etcd and the coordinator)
//! runs at toy sizes and must produce its table.

use fog_e2e::process::binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fog_bench_all_quick_runs_every_scenario() {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        tokio::process::Command::new(binary("fog-bench")).args(["all", "--quick"]).output(),
    )
    .await
    .expect("fog-bench finished in time")
    .expect("fog-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for row in [
        "raw tonic client-streaming ingest",
        "coordinator heartbeat ingest",
        "lease keepalives",
        "durable puts",
        "raw tonic server-streaming fan-out",
        "coordinator WatchTopology",
        "etcd watch (peer)",
        "assignments received by the nodes",
        "session reset → seen",
        "silent → declared offline",
        "offline → its task assigned to another node",
        "SIGKILL, start again",
        "SIGTERM, start again",
        "coordinator, idle sessions",
    ] {
        assert!(stdout.contains(row), "{row} missing from:\n{stdout}");
    }
}
