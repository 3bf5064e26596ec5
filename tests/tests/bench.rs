//! The benchmark command's quick variant, so the benchmark code cannot rot:
//! it starts a raw tonic server and a coordinator, drives both, and prints the table.

use fog_e2e::process::binary;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fog_bench_ingest_quick_measures_both_sides() {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(binary("fog-bench")).args(["ingest", "--quick"]).output(),
    )
    .await
    .expect("fog-bench finished in time")
    .expect("fog-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for row in ["raw tonic client-streaming ingest", "coordinator heartbeat ingest", "coordinator / raw"] {
        assert!(stdout.contains(row), "{row} missing from:\n{stdout}");
    }
}
