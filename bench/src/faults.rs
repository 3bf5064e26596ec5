//! Failure detection, restart and memory.
//!
//! - `detect`: a fleet with 1 s heartbeats (defaults: suspect after 2 s,
//!   offline after 3 s), one long task per node. Some nodes' sessions are
//!   reset (the node process ends), others go silent (the stream stays open,
//!   nothing is sent). A topology watcher and a task watcher timestamp what
//!   the coordinator publishes: the reset seen, the silent node offline, and
//!   its task placed on another node.
//! - `restart`: a store holding N nodes and M tasks, written offline through
//!   the coordinator's own store; the coordinator is started on it (time until
//!   it serves), its fleet connected, then killed (SIGKILL) and started again
//!   on the same address: time until it serves, until every node is back, and
//!   the highest session-open rate in any 100 ms (no thundering herd).
//! - `memory`: RSS of the coordinator with N idle connected nodes, against the
//!   raw tonic server holding N idle streams and etcd holding N leases.

use crate::coord::{Coord, until};
use crate::submit::fleet;
use fog_proto::v1 as fog;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the watchers saw what, by node (ms since `origin`).
#[derive(Default)]
struct Seen {
    not_healthy: HashMap<String, f64>,
    offline: HashMap<String, f64>,
    /// Task id → (first node, time its second attempt was seen on another node).
    replaced: HashMap<String, (String, Option<f64>)>,
}

fn ms_since(origin: Instant) -> f64 {
    origin.elapsed().as_secs_f64() * 1000.0
}

/// Percentiles of a list of milliseconds: (p50, p99, max).
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let p = |q| crate::watch::percentile(&v, q);
    (p(50.0), p(99.0), p(100.0))
}

/// Failure detection. Returns markdown.
pub async fn detect(dir: &std::path::Path, nodes: usize, victims: usize) -> anyhow::Result<String> {
    let coord = Coord::start(dir, &["--heartbeat-interval", "1s"]).await?;
    let fleet_nodes = fleet(&coord, "detect", nodes, nodes.div_ceil(1000)).await?;
    let origin = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    // Topology: node status changes.
    let mut topo = coord.topology(coord.channels(1).await?.remove(0));
    let req = fog::WatchTopologyRequest { detail: fog::TopologyDetail::NodeStatus as i32, ..Default::default() };
    let mut topo_stream = topo.watch_topology(req).await?.into_inner();
    let s = seen.clone();
    let topo_task = tokio::spawn(async move {
        while let Ok(Some(m)) = topo_stream.message().await {
            if let Some(fog::watch_topology_response::Event::Node(d)) = m.event
                && let Some(n) = d.node
            {
                let t = ms_since(origin);
                let mut s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let suspect_or_worse = [fog::NodeStatus::Suspect as i32, fog::NodeStatus::Offline as i32];
                if suspect_or_worse.contains(&n.status) {
                    s.not_healthy.entry(n.id.clone()).or_insert(t);
                }
                if n.status == fog::NodeStatus::Offline as i32 {
                    s.offline.entry(n.id).or_insert(t);
                }
            }
        }
    });
    // One long task per node. Each reserves 1.5 cores: at least 19 % of any
    // demo node (2 to 8 cores), above the 15–17 % an idle simulated node
    // reports, so least-loaded puts exactly one on every node whatever the
    // heartbeat noise (with tiny tasks the noise decided, and some nodes got
    // several while others got none).
    let mut tasks = coord.tasks(coord.channels(1).await?.remove(0));
    let mut watch = tasks.watch_tasks(fog::WatchTasksRequest::default()).await?.into_inner();
    let s = seen.clone();
    let task_task = tokio::spawn(async move {
        while let Ok(Some(ev)) = watch.message().await {
            let Some(t) = ev.task else { continue };
            let Some(first) = t.attempts.first() else { continue };
            let now = ms_since(origin);
            let mut s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = s.replaced.entry(t.id.clone()).or_insert((first.node_id.clone(), None));
            if entry.1.is_none() && t.attempts.iter().any(|a| a.node_id != entry.0 && a.attempt > first.attempt) {
                entry.1 = Some(now);
            }
        }
    });
    for i in 0..nodes {
        let spec = fog::TaskSpec {
            name: format!("long-{i}"),
            workload: Some(fog::task_spec::Workload::Builtin(fog::BuiltinTask {
                kind: Some(fog::builtin_task::Kind::SleepMs(600_000)),
            })),
            resources: Some(fog::Resources { cpu_millis: 1500, memory_mb: 1, storage_mb: 0, gpus: 0 }),
            ..Default::default()
        };
        tasks.submit_task(fog::SubmitTaskRequest { spec: Some(spec), ..Default::default() }).await?;
    }
    until("every task runs", Duration::from_secs(60), || {
        let running: u64 = fleet_nodes.iter().map(|n| n.stats().running).sum();
        async move { running as usize >= nodes }
    })
    .await?;
    // Let the fleet settle (every node healthy, nothing in flight) before the faults.
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Victims among the nodes that run a task, so that re-placement shows.
    let busy: Vec<_> = fleet_nodes.iter().filter(|n| n.stats().running > 0).cloned().collect();
    anyhow::ensure!(busy.len() >= 2 * victims, "only {} nodes run a task; need {}", busy.len(), 2 * victims);
    let (reset, silent) = busy.split_at(victims);
    let silent = &silent[..victims];
    let mut started = HashMap::new();
    for n in reset {
        started.insert(n.id().to_string(), ms_since(origin));
        n.stop();
    }
    for n in silent {
        started.insert(n.id().to_string(), ms_since(origin));
        n.set_heartbeats_paused(true);
    }
    let silent_ids: Vec<String> = silent.iter().map(|n| n.id().to_string()).collect();
    until("every silent node's task is placed elsewhere", Duration::from_secs(30), || {
        let s = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let all_offline = silent_ids.iter().all(|id| s.offline.contains_key(id));
        let all_replaced = s.replaced.values().all(|(node, at)| !silent_ids.contains(node) || at.is_some());
        async move { all_offline && all_replaced }
    })
    .await?;
    topo_task.abort();
    task_task.abort();
    let s = seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen_reset: Vec<f64> =
        reset.iter().filter_map(|n| Some(s.not_healthy.get(n.id())? - started[n.id()])).collect();
    let seen_offline: Vec<f64> = silent.iter().filter_map(|n| Some(s.offline.get(n.id())? - started[n.id()])).collect();
    let replaced: Vec<f64> =
        s.replaced.values().filter_map(|(node, at)| Some(at.as_ref()? - s.offline.get(node)?)).collect();
    let row = |what: &str, v: &[f64], target: &str| {
        let (p50, p99, max) = spread(v.to_vec());
        format!("| {what} | {} | {p50:.0} | {p99:.0} | {max:.0} | {target} |\n", v.len())
    };
    let mut out = format!(
        "| {nodes} nodes, 1 s heartbeats (suspect 2 s, offline 3 s) | nodes | p50 ms | p99 ms | max ms | target |\n|---|---:|---:|---:|---:|---|\n"
    );
    out += &row("session reset → seen (status no longer healthy)", &seen_reset, "≤ 100 ms");
    // The last heartbeat came 0–1 interval before the silence began.
    out += &row("silent → declared offline", &seen_offline, "2,000–3,100 ms (grace 3 s after the last heartbeat)");
    out += &row("offline → its task assigned to another node", &replaced, "≤ 1,000 ms");
    anyhow::ensure!(
        seen_reset.len() == reset.len() && seen_offline.len() == silent.len(),
        "not every fault was seen: {out}"
    );
    for n in &fleet_nodes {
        n.stop();
    }
    Ok(out)
}

/// Writes `nodes` node records and `tasks` finished task records (each run on
/// one of the nodes) into a fresh store in `data_dir`, through the coordinator's store.
async fn seed(data_dir: &std::path::Path, prefix: &str, nodes: usize, tasks: usize) -> anyhow::Result<()> {
    use fog_coordinator::store::{Mutation, RedbStore, Store};
    let store = RedbStore::open(data_dir)?;
    let ts = |s: i64| Some(prost_types::Timestamp { seconds: s, nanos: 0 });
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let ids: Vec<String> = (0..nodes).map(|i| fogctl::sim::SimNodeSpec::demo_with_prefix(prefix, i).id).collect();
    for chunk in (0..nodes).collect::<Vec<_>>().chunks(10_000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let s = fogctl::sim::SimNodeSpec::demo_with_prefix(prefix, i);
                Mutation::PutNode(fog::Node {
                    id: s.id,
                    name: s.name,
                    node_type: s.node_type as i32,
                    location: Some(s.location),
                    capacity: Some(s.capacity),
                    ..Default::default()
                })
            })
            .collect();
        store.commit(batch).await?;
    }
    for chunk in (0..tasks).collect::<Vec<_>>().chunks(20_000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                let t = now - 3600 + (i % 3000) as i64;
                Mutation::PutTask(fog::Task {
                    id: format!("seed-{i:07}"),
                    spec: Some(fog::TaskSpec {
                        name: format!("seed-{i}"),
                        workload: Some(fog::task_spec::Workload::Builtin(fog::BuiltinTask {
                            kind: Some(fog::builtin_task::Kind::Echo("hello".into())),
                        })),
                        resources: Some(fog::Resources { cpu_millis: 100, memory_mb: 64, storage_mb: 0, gpus: 0 }),
                        ..Default::default()
                    }),
                    state: fog::TaskState::Succeeded as i32,
                    attempts: vec![fog::Attempt {
                        attempt: 1,
                        node_id: ids[i % ids.len()].clone(),
                        state: fog::AttemptState::Succeeded as i32,
                        assigned_at: ts(t),
                        finished_at: ts(t + 1),
                        deadline: ts(t + 600),
                        ..Default::default()
                    }],
                    accepted_attempt: 1,
                    output: Some(fog::TaskOutput { stdout: b"hello".to_vec(), ..Default::default() }),
                    submitted_at: ts(t),
                    placed_at: ts(t),
                    finished_at: ts(t + 1),
                    sla_met: Some(true),
                    ..Default::default()
                })
            })
            .collect();
        store.commit(batch).await?;
    }
    Ok(())
}

/// Time until the coordinator answers an API call (`GetSystemStatus`), from `t0`.
/// (Not `GetTopology`: with 100k nodes that is a multi-megabyte answer, and
/// it measured the reconnect storm more than the restart.) The probe runs on
/// its own thread and runtime, so the 100k simulated nodes reconnecting in
/// this process do not delay it; it starts before the new process is
/// spawned, with the API token from before the restart (stored), so the
/// bench's own start-up calls on the busy runtime are not counted either.
async fn serving(coord: &Coord, t0: Instant) -> anyhow::Result<f64> {
    probe(coord.addr, coord.token.clone(), t0).await
}

/// [`serving`] for a coordinator that is being started on `addr`: the probe
/// polls from `t0` until it answers.
fn probe(addr: std::net::SocketAddr, token: String, t0: Instant) -> impl Future<Output = anyhow::Result<f64>> {
    let probe = std::thread::spawn(move || -> anyhow::Result<f64> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        // What each attempt saw, to tell a refusal from a slow answer.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let log = seen.clone();
        let result = rt.block_on(async move {
            until("the coordinator serves", Duration::from_secs(120), || {
                let (token, log) = (token.clone(), log.clone());
                async move {
                    let at = t0.elapsed().as_secs_f64();
                    let note = |what: String| log.lock().expect("probe log").push(format!("{at:.2}s {what}"));
                    let channel = match tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                        .expect("url")
                        .connect()
                        .await
                    {
                        Ok(c) => c,
                        Err(e) => {
                            note(format!("connect: {e}"));
                            return false;
                        }
                    };
                    let mut system = fog::system_service_client::SystemServiceClient::with_interceptor(
                        channel,
                        crate::coord::bearer(&token),
                    );
                    let connected = t0.elapsed().as_secs_f64();
                    match system.get_system_status(fog::GetSystemStatusRequest::default()).await {
                        Ok(_) => {
                            note(format!("answered (connected at {connected:.2}s)"));
                            true
                        }
                        Err(e) => {
                            note(format!(
                                "{:?} after {:.2}s: {}",
                                e.code(),
                                t0.elapsed().as_secs_f64() - at,
                                e.message()
                            ));
                            false
                        }
                    }
                }
            })
            .await
        });
        let seen = seen.lock().expect("probe log");
        let unreachable = seen.iter().filter(|l| l.contains("connect:")).count();
        let refused: Vec<&String> = seen.iter().filter(|l| !l.contains("connect:")).collect();
        eprintln!("probe: {unreachable} attempts could not connect; then {refused:?}");
        result.map(|()| t0.elapsed().as_secs_f64())
    });
    async move { tokio::task::spawn_blocking(move || probe.join()).await?.map_err(|_| anyhow::anyhow!("probe panicked"))? }
}

/// How a restart ended the old process.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGTERM: the coordinator drains and closes its store.
    Graceful,
    /// SIGKILL: a crash; the store replays its log onto the last checkpoint when opened again.
    Crash,
}

/// Stops the coordinator, starts it again on the same address and data, and
/// returns (seconds until it serves, seconds until every node's session is
/// back, highest session-open rate in any 100 ms), all from the stop.
async fn bounce(
    coord: &mut Coord,
    data_dir: &std::path::Path,
    stop: Stop,
    fleet_nodes: &[fogctl::sim::SimNodeHandle],
) -> anyhow::Result<(f64, f64, u64, f64, String)> {
    let opened = |h: &[fogctl::sim::SimNodeHandle]| h.iter().map(|n| n.stats().sessions_opened).sum::<u64>();
    let failed = |h: &[fogctl::sim::SimNodeHandle]| h.iter().map(|n| n.stats().sessions_failed).sum::<u64>();
    let want: Vec<u64> = fleet_nodes.iter().map(|n| n.stats().sessions_opened + 1).collect();
    let failed_before = failed(fleet_nodes);
    let addr = coord.addr;
    let stopped = Instant::now();
    match stop {
        Stop::Graceful => coord.proc.terminate(Duration::from_secs(30)).await?,
        Stop::Crash => coord.proc.kill().await,
    }
    let exited = stopped.elapsed().as_secs_f64();
    let serving = probe(addr, coord.token.clone(), stopped);
    *coord = Coord::start_in(data_dir, &["--heartbeat-interval", "5s"], Some(addr)).await?;
    let serving = serving.await?;
    let failed_until_serving = failed(fleet_nodes) - failed_before;
    // Sample reconnections every 100 ms until all are back.
    let (mut peak, mut last) = (0u64, opened(fleet_nodes));
    let mut back_at: Vec<Option<f64>> = vec![None; fleet_nodes.len()];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = stopped.elapsed().as_secs_f64();
        let mut all = true;
        for ((n, w), at) in fleet_nodes.iter().zip(&want).zip(back_at.iter_mut()) {
            if at.is_none() {
                if n.stats().sessions_opened >= *w {
                    *at = Some(now);
                } else {
                    all = false;
                }
            }
        }
        if all {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the fleet is not back after 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = opened(fleet_nodes);
        peak = peak.max(now - last);
        last = now;
    }
    let mut times: Vec<f64> = back_at.into_iter().flatten().collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    let mut per_second = vec![0usize; times.last().map_or(0, |t| *t as usize + 1)];
    for t in &times {
        per_second[*t as usize] += 1;
    }
    eprintln!("{stop:?}: nodes back per second since the stop: {per_second:?}");
    let detail = format!(
        "nodes back at {:.1} s (50 %), {:.1} s (90 %), {:.1} s (99 %), {:.1} s (all); \
         session attempts that failed before a welcome: {failed_until_serving} until it served, {} after",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        failed(fleet_nodes) - failed_before - failed_until_serving,
    );
    Ok((serving, stopped.elapsed().as_secs_f64(), peak * 10, exited, detail))
}

/// The `fog::lifecycle` lines of a coordinator log (every start and stop, in
/// order), without timestamps and colour codes.
fn lifecycle(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = String::new();
    for line in text.lines().filter(|l| l.contains("fog::lifecycle")) {
        let plain: String = strip_ansi(line);
        let rest = plain.split_once("fog::lifecycle: ").map(|(_, r)| r).unwrap_or(&plain);
        out += rest;
        out.push('\n');
    }
    out
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Restart. Returns markdown.
pub async fn restart(dir: &std::path::Path, nodes: usize, tasks: usize) -> anyhow::Result<String> {
    let data_dir = dir.join("restart");
    let t = Instant::now();
    seed(&data_dir, "restart", nodes, tasks).await?;
    let seeded = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(data_dir.join(fog_coordinator::store::FILE_NAME))?.len();
    crate::coord::create_admin(&data_dir)?;
    let t0 = Instant::now();
    let mut coord = Coord::start_in(&data_dir, &["--heartbeat-interval", "5s"], None).await?;
    let cold = serving(&coord, t0).await?;
    let fleet_nodes = fleet(&coord, "restart", nodes, nodes.div_ceil(1000)).await?;
    let graceful = bounce(&mut coord, &data_dir, Stop::Graceful, &fleet_nodes).await?;
    let crash = bounce(&mut coord, &data_dir, Stop::Crash, &fleet_nodes).await?;
    for n in &fleet_nodes {
        n.stop();
    }
    Ok(format!(
        "| restart with {nodes} nodes and {tasks} tasks in the store ({:.0} MiB, seeded in {seeded:.0} s) | serving after | every node back after | peak session opens | target |\n|---|---:|---:|---:|---|\n\
         | first start (no fleet yet) | {cold:.2} s | | | ≤ 3 s |\n\
         | SIGTERM, start again (upgrade) | **{:.2} s** | **{:.1} s** | {} /s | ≤ 3 s, ≤ 15 s |\n\
         | SIGKILL, start again (crash: the log is replayed on open) | **{:.2} s** | **{:.1} s** | {} /s | ≤ 3 s, ≤ 15 s |\n\
         \nTimes count from the stop signal. Nodes reconnect with full-jitter backoff (0.5 s doubling, capped at 10 s). \
         The old process had exited {:.2} s after SIGTERM.\n\n- SIGTERM: {}\n- SIGKILL: {}\n\n\
         The coordinator's own account (`fog::lifecycle` log lines, in order):\n\n```text\n{}```\n",
        size as f64 / (1024.0 * 1024.0),
        graceful.0,
        graceful.1,
        graceful.2,
        crash.0,
        crash.1,
        crash.2,
        graceful.3,
        graceful.4,
        crash.4,
        lifecycle(&data_dir.with_extension("log")),
    ))
}

/// Idle memory per node. Returns markdown.
pub async fn memory(dir: &std::path::Path, sizes: &[usize]) -> anyhow::Result<String> {
    let mut out = String::from(
        "| idle nodes | raw tonic, idle streams | coordinator, idle sessions | **coordinator − raw, per node** | etcd, one lease each |\n|---:|---:|---:|---:|---:|\n",
    );
    for &n in sizes {
        let raw = crate::ingest::idle_raw_rss(n).await?;
        let coord = Coord::start(dir, &["--heartbeat-interval", "5s"]).await?;
        let base = coord.proc.rss_kib();
        let nodes = fleet(&coord, "idle", n, n.div_ceil(1000)).await?;
        // Two heartbeat rounds: every node has reported, buffers have settled.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = coord.proc.rss_kib();
        for h in &nodes {
            h.stop();
        }
        drop(coord);
        let etcd = crate::etcd::Etcd::start(&dir.join("etcd-memory.log")).await?;
        let etcd_rss = crate::etcd::lease_rss(&etcd, n).await?;
        drop(etcd);
        let per_node = |kib: u64, base: u64| (kib.saturating_sub(base)) as f64 * 1024.0 / n as f64;
        out += &format!(
            "| {n} | {:.0} MiB ({:.1} KB/stream) | {:.0} MiB ({:.1} KB/node) | **{:+.1} KB** | {:.0} MiB |\n",
            raw.0 as f64 / 1024.0,
            per_node(raw.0, raw.1) / 1000.0,
            rss as f64 / 1024.0,
            per_node(rss, base) / 1000.0,
            (per_node(rss, base) - per_node(raw.0, raw.1)) / 1000.0,
            etcd_rss as f64 / 1024.0
        );
    }
    Ok(out)
}
