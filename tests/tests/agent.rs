//! The real `fog-agent` binary end to end (insecure dev mode): joining,
//! builtin and exec tasks, the exec policy, output truncation, cancellation,
//! timeouts, a coordinator outage and an agent SIGKILL.
//!
//! Needs `cargo build --workspace --bins` first (the binaries are looked up
//! next to the test executable).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fog_e2e::process::{AgentProcess, CoordinatorProcess, binary};
use fog_e2e::*;
use fog_proto::v1 as pb;

/// A coordinator in-process and one agent attached to it.
struct Fixture {
    coord: Coord,
    agent: AgentProcess,
    _dirs: tempfile::TempDir,
}

async fn fixture(node_id: &str) -> Fixture {
    let coord = Coord::start().await;
    let url = format!("http://{}", coord.running.as_ref().expect("running").addr);
    let dirs = tempfile::tempdir().unwrap();
    let sys = dirs.path().join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    let agent = AgentProcess::start(&url, node_id, &dirs.path().join("state"), &sys, &[]);
    coord.wait_healthy(1).await;
    Fixture { coord, agent, _dirs: dirs }
}

/// A coordinator client over an already connected channel (for real
/// coordinator processes), reusing `Coord`'s helpers.
async fn client_of(url: &str) -> Coord {
    Coord::client_of(url).await
}

fn exec(command: &str, args: &[&str]) -> pb::TaskSpec {
    pb::TaskSpec {
        name: "exec".into(),
        workload: Some(pb::task_spec::Workload::Exec(pb::ExecTask {
            command: command.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })),
        resources: Some(pb::Resources { cpu_millis: 100, memory_mb: 256, storage_mb: 0, gpus: 0 }),
        max_retries: Some(0),
        ..Default::default()
    }
}

/// Whether a process whose command line contains `marker` exists.
fn process_with_arg(marker: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.filter_map(|e| e.ok()).any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| c.split(|b| *b == 0).any(|arg| arg == marker.as_bytes()))
            .unwrap_or(false)
    })
}

fn no_late_results(t: &pb::Task) {
    for a in &t.attempts {
        assert!(a.late_result.is_empty(), "attempt {} of {} got a second result: {t:?}", a.attempt, t.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_joins_becomes_healthy_and_runs_a_builtin() {
    let f = fixture("agent-1").await;
    let node = f.coord.get_node("agent-1").await;
    assert_eq!(node.liveness, pb::Liveness::Healthy as i32);
    let cores = std::thread::available_parallelism().unwrap().get() as u32;
    assert_eq!(node.capacity.unwrap().cpu_millis, cores * 1000, "capacity detected from the OS");
    assert_eq!(node.power_mode, pb::PowerMode::Performance as i32);
    assert_eq!(node.battery_percent, -1, "the fake sysfs has no battery");
    // The coordinator pings over the session and reports the round-trip time.
    eventually("session round-trip time measured", DEADLINE, || async {
        (f.coord.get_node("agent-1").await.session_rtt_ms > 0.0).then_some(())
    })
    .await;
    let t = f.coord.submit(echo("hello from the agent")).await;
    let done = f.coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, b"hello from the agent");
    assert_eq!(done.attempts[0].node_id, "agent-1");
    let t = f.coord.submit(builtin(pb::builtin_task::Kind::HashRounds(3))).await;
    let done = f.coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, fog_agent::exec::builtin::hash_chain(&t.id, 3).into_bytes());
    eventually("the acked results are forgotten on disk", DEADLINE, || async {
        f.agent.pending().is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_battery_agent_reports_power_save_and_gets_no_work_until_charging() {
    let coord = Coord::start().await;
    let url = format!("http://{}", coord.running.as_ref().unwrap().addr);
    let dirs = tempfile::tempdir().unwrap();
    let bat = dirs.path().join("sys/class/power_supply/BAT0");
    std::fs::create_dir_all(&bat).unwrap();
    std::fs::write(bat.join("type"), "Battery\n").unwrap();
    std::fs::write(bat.join("capacity"), "15\n").unwrap();
    std::fs::write(bat.join("status"), "Discharging\n").unwrap();
    let _agent = AgentProcess::start(&url, "phone-1", &dirs.path().join("state"), &dirs.path().join("sys"), &[]);
    eventually("the node reports power save on 15 % battery", DEADLINE, || async {
        let n =
            coord.fleet().get_node(pb::GetNodeRequest { node_id: "phone-1".into() }).await.ok()?.into_inner().node?;
        (n.power_mode == pb::PowerMode::PowerSave as i32 && n.battery_percent == 15 && !n.charging).then_some(())
    })
    .await;
    // No new work while in power-save: the task waits, and explain says why.
    let t = coord.submit(echo("needs power")).await;
    let ex = coord
        .tasks()
        .explain_placement(pb::ExplainPlacementRequest { spec: None, task_id: t.id.clone(), limit: 10 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ex.rejection_counts.get("power"), Some(&1), "{:?}", ex.rejection_counts);
    assert_eq!(coord.task(&t.id).await.state, pb::TaskState::Queued as i32);
    // Plugged in: the node leaves power-save and the task runs there.
    std::fs::write(bat.join("status"), "Charging\n").unwrap();
    let done = coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.attempts[0].node_id, "phone-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_success_failure_and_refusal() {
    let f = fixture("agent-x").await;
    let ok = f.coord.submit(exec("/bin/echo", &["hello", "exec"])).await;
    let bad = f.coord.submit(exec("/bin/sh", &["-c", "echo oops >&2; exit 3"])).await;
    let denied = f.coord.submit(exec("/usr/bin/id", &[])).await;
    let done = f.coord.wait_state(&ok.id, pb::TaskState::Succeeded).await;
    assert_eq!(done.output.unwrap().stdout, b"hello exec\n");
    assert_eq!(done.attempts[0].exit_code, 0);
    let failed = f.coord.wait_state(&bad.id, pb::TaskState::Failed).await;
    assert_eq!(failed.attempts.len(), 1);
    assert_eq!(failed.attempts[0].state, pb::AttemptState::Failed as i32);
    assert_eq!(failed.attempts[0].exit_code, 3);
    assert!(failed.attempts[0].error.contains("code 3"), "{failed:?}");
    let refused = f.coord.wait_state(&denied.id, pb::TaskState::Failed).await;
    let err = &refused.attempts[0].error;
    assert!(err.contains("not allowed by this agent's exec policy"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_is_truncated_to_its_last_64_kib() {
    let f = fixture("agent-out").await;
    let t = f.coord.submit(exec("/bin/sh", &["-c", "head -c 100000 /dev/zero | tr '\\0' x; echo END"])).await;
    let done = f.coord.wait_state(&t.id, pb::TaskState::Succeeded).await;
    let out = done.output.unwrap();
    assert!(out.truncated);
    assert_eq!(out.stdout.len(), 64 * 1024);
    assert!(out.stdout.ends_with(b"xxxEND\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_timeout_and_cancel_stop_the_process() {
    let f = fixture("agent-stop").await;
    let mut slow = exec("/bin/sleep", &["30.123"]);
    slow.timeout_ms = 500;
    let t = f.coord.submit(slow).await;
    let failed = f.coord.wait_state(&t.id, pb::TaskState::Failed).await;
    assert_eq!(failed.attempts[0].state, pb::AttemptState::TimedOut as i32, "{failed:?}");
    eventually("the timed-out process is gone", DEADLINE, || async { (!process_with_arg("30.123")).then_some(()) })
        .await;

    let t = f.coord.submit(exec("/bin/sleep", &["60.321"])).await;
    f.coord.wait_state(&t.id, pb::TaskState::Running).await;
    eventually("the process runs", DEADLINE, || async { process_with_arg("60.321").then_some(()) }).await;
    let r = f.coord.tasks().cancel_task(pb::CancelTaskRequest { task_id: t.id.clone(), reason: "stop".into() }).await;
    assert_eq!(r.unwrap().into_inner().task.unwrap().state, pb::TaskState::Cancelled as i32);
    eventually("the cancelled process is gone", DEADLINE, || async { (!process_with_arg("60.321")).then_some(()) })
        .await;
    eventually("the node is free again", DEADLINE, || async {
        let n = f.coord.get_node("agent-stop").await;
        (n.active_tasks == 0).then_some(())
    })
    .await;
}

/// Waits until every task is `Succeeded`, with one attempt per task unless
/// stated, and no attempt got a second result.
async fn wait_all_succeeded(c: &Coord, ids: &[String]) -> Vec<pb::Task> {
    let mut out = Vec::new();
    for id in ids {
        let t = eventually(&format!("task {id} succeeded"), Duration::from_secs(30), || async {
            let t = c.tasks().get_task(pb::GetTaskRequest { task_id: id.clone() }).await.ok()?.into_inner().task?;
            (t.state == pb::TaskState::Succeeded as i32).then_some(t)
        })
        .await;
        no_late_results(&t);
        out.push(t);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_survive_a_coordinator_outage_and_arrive_once() {
    init_logs();
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("coord");
    let sys = dirs.path().join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    let mut coord = CoordinatorProcess::start(&data, &["--restart-grace", "20s"]);
    let c = client_of(&coord.url).await;
    let agent = AgentProcess::start(&coord.url, "edge-1", &dirs.path().join("state"), &sys, &[]);
    c.wait_healthy(1).await;
    let specs = [sleep(1_500), sleep(3_000), exec("/bin/sh", &["-c", "sleep 2; echo done"])];
    let mut ids = Vec::new();
    for s in specs {
        ids.push(c.submit(s).await.id);
    }
    for id in &ids {
        c.wait_state(id, pb::TaskState::Running).await;
    }
    coord.kill();
    let down = Instant::now();
    // The agent keeps working: all three finish and wait on disk.
    eventually("all results held by the agent", Duration::from_secs(20), || async {
        (agent.pending().len() == 3).then_some(())
    })
    .await;
    // Keep the coordinator away ~10 s in total (the scenario, not a wait for a condition).
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down.elapsed())).await;
    let _coord = CoordinatorProcess::start_on(coord.port, &data, &["--restart-grace", "20s"]);
    let c = client_of(&_coord.url).await;
    let done = wait_all_succeeded(&c, &ids).await;
    for t in &done {
        assert_eq!(t.attempts.len(), 1, "no retry was needed: {t:?}");
        assert_eq!(t.accepted_attempt, 1);
    }
    assert_eq!(done[2].output.as_ref().unwrap().stdout, b"done\n");
    eventually("acked results forgotten", DEADLINE, || async { agent.pending().is_empty().then_some(()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_agent_delivers_finished_results_and_the_interrupted_task_is_retried() {
    init_logs();
    let dirs = tempfile::tempdir().unwrap();
    let data = dirs.path().join("coord");
    let state = dirs.path().join("state");
    let sys = dirs.path().join("sys");
    std::fs::create_dir_all(&sys).unwrap();
    let mut coord = CoordinatorProcess::start(&data, &["--restart-grace", "20s"]);
    let c = client_of(&coord.url).await;
    let mut agent = AgentProcess::start(&coord.url, "edge-k", &state, &sys, &[]);
    c.wait_healthy(1).await;
    let quick = c.submit(sleep(1_000)).await.id;
    let long = c.submit(sleep(5_000)).await.id;
    c.wait_state(&quick, pb::TaskState::Running).await;
    c.wait_state(&long, pb::TaskState::Running).await;
    // The coordinator goes away, so the quick result cannot be sent...
    coord.kill();
    eventually("the quick result is finished but unsent", DEADLINE, || async {
        (agent.pending() == [(quick.clone(), 1)]).then_some(())
    })
    .await;
    // ...and the agent dies mid-way through the long one.
    agent.kill();
    let coord = CoordinatorProcess::start_on(coord.port, &data, &["--restart-grace", "20s"]);
    let c = client_of(&coord.url).await;
    let agent = AgentProcess::start(&coord.url, "edge-k", &state, &sys, &[]);
    let done = wait_all_succeeded(&c, &[quick.clone(), long.clone()]).await;
    assert_eq!(done[0].attempts.len(), 1, "the finished result was delivered, not re-run: {:?}", done[0]);
    assert_eq!(done[0].accepted_attempt, 1);
    let retried = &done[1];
    assert_eq!(retried.attempts.len(), 2, "{retried:?}");
    assert_eq!(retried.attempts[0].state, pb::AttemptState::Lost as i32, "{retried:?}");
    assert_eq!(retried.accepted_attempt, 2);
    assert_eq!(retried.attempts[1].node_id, "edge-k");
    eventually("acked results forgotten", DEADLINE, || async { agent.pending().is_empty().then_some(()) }).await;
}

/// The pid recorded in the `.assigned` record of the one attempt in `state_dir`.
fn recorded_pid(state_dir: &Path) -> Option<u32> {
    use prost::Message;
    let dir = std::fs::read_dir(state_dir.join("attempts")).ok()?;
    dir.filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "assigned"))
        .find_map(|e| fog_agent::state::ProcessRecord::decode(&std::fs::read(e.path()).ok()?[..]).ok())
        .map(|r| r.pid)
        .filter(|pid| *pid != 0)
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_kills_the_process_group_a_sigkilled_one_left_running() {
    init_logs();
    let mut f = fixture("edge-orphan").await;
    let url = format!("http://{}", f.coord.running.as_ref().expect("running").addr);
    let state = f.agent.state_dir.clone();
    let sys = f._dirs.path().join("sys");
    let id = f.coord.submit(exec("/bin/sleep", &["300.417"])).await.id;
    f.coord.wait_state(&id, pb::TaskState::Running).await;
    let pid = eventually("the attempt's process is recorded", DEADLINE, || async { recorded_pid(&state) }).await;
    assert!(alive(pid) && process_with_arg("300.417"), "the recorded pid {pid} is the running task");
    f.agent.kill();
    // The agent is gone, its task is not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(alive(pid), "the task's process outlives a SIGKILLed agent");
    let _agent = AgentProcess::start(&url, "edge-orphan", &state, &sys, &[]);
    eventually("the orphaned process is killed by the restarted agent", DEADLINE, || async {
        (!alive(pid) && !process_with_arg("300.417")).then_some(())
    })
    .await;
}

#[test]
fn bad_config_exits_64_and_a_bad_join_token_exits_1() {
    let run = |args: &[&str]| {
        Command::new(binary("fog-agent")).args(args).stderr(Stdio::piped()).output().expect("run fog-agent")
    };
    let out = run(&[
        "run",
        "--insecure",
        "--coordinator",
        "127.0.0.1:1",
        "--node-id",
        "n1",
        "--label",
        "fog.io/attested=true",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fog.io/"));
    let out = run(&["run", "--coordinator", "127.0.0.1:1", "--node-id", "n1"]);
    assert_eq!(out.status.code(), Some(64), "plaintext needs --insecure; mTLS needs a joined state dir");
    let out = run(&["run", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(64));
    let out = run(&["run", "--insecure", "--coordinator", "127.0.0.1:1", "--node-id", "n1", "--log-format", "xml"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log_format"));
    // Join itself is tested over mTLS in agent_tls.rs; a bad token fails with 1.
    let out = run(&["join", "--token", "x", "--coordinator", "https://127.0.0.1:1", "--state-dir", "/nonexistent/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed join token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_fails_over_to_the_next_coordinator_address() {
    let coord = Coord::start().await;
    let live = coord.running.as_ref().unwrap().addr;
    // Nothing listens on the first address.
    let dead = fog_e2e::process::free_port();
    let urls = format!("http://127.0.0.1:{dead},http://{live}");
    let dirs = tempfile::tempdir().unwrap();
    let _agent = AgentProcess::start(&urls, "failover-1", &dirs.path().join("state"), &dirs.path().join("sys"), &[]);
    coord.wait_healthy(1).await;
    assert_eq!(coord.get_node("failover-1").await.liveness, pb::Liveness::Healthy as i32);
}
