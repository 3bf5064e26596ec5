//! Durable task submission and end-to-end placement.
//!
//! - Submission: `SubmitTask` with K requests in flight (1 and 256) against a
//!   coordinator with simulated nodes registered, so every submit is stored
//!   (group commit) *and* routed; the baseline is etcd's durable put at the
//!   same concurrency, measured in the same run.
//! - Placement: with N simulated nodes connected (100,000 in the full run),
//!   submitters push as fast as the coordinator answers; the figure is the
//!   rate at which assignments reach the nodes (submit → placed → stored →
//!   assignment on the node's session), with the submit latency.

use crate::coord::Coord;
use crate::watch::Delays;
use fog_proto::v1 as fog;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A task that stays on its node for the whole run (placement, not execution, is measured).
fn spec(i: u64) -> fog::TaskSpec {
    fog::TaskSpec {
        name: format!("bench-{i}"),
        workload: Some(fog::task_spec::Workload::Builtin(fog::BuiltinTask {
            kind: Some(fog::builtin_task::Kind::SleepMs(600_000)),
        })),
        resources: Some(fog::Resources { cpu_millis: 1, memory_mb: 1, storage_mb: 0, gpus: 0 }),
        ..Default::default()
    }
}

/// What a submission run measured.
pub struct SubmitResult {
    /// Acknowledged submits per second.
    pub rate: f64,
    /// Assignments received by the nodes per second.
    pub assigned_rate: f64,
    /// Submit latency (RPC, includes placement and the durable commit).
    pub latency: Delays,
    /// The coordinator's CPU (user + system) per acknowledged submit, µs.
    pub cpu_us_per_op: f64,
    /// The load generator's own CPU (submitters and simulated fleet) per submit, µs.
    pub load_cpu_us_per_op: f64,
}

/// Submits with `inflight` concurrent callers for `window` (after a warm-up of a quarter window).
async fn submit_for(
    coord: &Coord,
    inflight: usize,
    window: Duration,
    assigned: impl Fn() -> u64,
) -> anyhow::Result<SubmitResult> {
    let channels = coord.channels(inflight.div_ceil(64).clamp(1, 8)).await?;
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let latency = Delays::default();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = (0..inflight)
        .map(|i| {
            let mut client = coord.tasks(channels[i % channels.len()].clone());
            let (done, next, latency, stop, measuring) =
                (done.clone(), next.clone(), latency.clone(), stop.clone(), measuring.clone());
            tokio::spawn(async move {
                while !*stop.borrow() {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let req = fog::SubmitTaskRequest { spec: Some(spec(n)), ..Default::default() };
                    if let Err(s) = client.submit_task(req).await {
                        eprintln!("submit failed: {s:?}");
                        return;
                    }
                    if measuring.load(Ordering::Relaxed) {
                        latency.record(t0.elapsed().as_nanos() as u64);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(window / 4).await;
    measuring.store(true, Ordering::Relaxed);
    let own = crate::procs::own_cpu_seconds;
    let (d0, a0, c0, l0, t0) =
        (done.load(Ordering::Relaxed), assigned(), coord.proc.cpu_seconds(), own(), Instant::now());
    tokio::time::sleep(window).await;
    let (d1, a1, c1, l1, secs) =
        (done.load(Ordering::Relaxed), assigned(), coord.proc.cpu_seconds(), own(), t0.elapsed().as_secs_f64());
    measuring.store(false, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    anyhow::ensure!(d1 > d0, "no submit was acknowledged in the window");
    let per_op = |seconds: f64| seconds * 1e6 / (d1 - d0) as f64;
    Ok(SubmitResult {
        rate: (d1 - d0) as f64 / secs,
        assigned_rate: (a1 - a0) as f64 / secs,
        latency,
        cpu_us_per_op: per_op(c1 - c0),
        load_cpu_us_per_op: per_op(l1 - l0),
    })
}

/// Simulated nodes on `connections` connections, heartbeating every 5 s; waits until all are connected.
pub async fn fleet(
    coord: &Coord,
    prefix: &str,
    n: usize,
    connections: usize,
) -> anyhow::Result<Vec<fogctl::sim::SimNodeHandle>> {
    let channels = coord.channels(connections.max(1)).await?;
    let opts = fogctl::sim::SimOptions {
        default_heartbeat_interval: Duration::from_secs(5),
        // A large fleet reconnecting must not stampede: retries spread over up to 10 s.
        reconnect_cap: Duration::from_secs(10),
        welcome_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let nodes: Vec<_> = (0..n)
        .map(|i| {
            let spec = fogctl::sim::SimNodeSpec::demo_with_prefix(prefix, i);
            fogctl::sim::spawn_node(channels[i % channels.len()].clone(), spec, opts.clone())
        })
        .collect();
    let t0 = Instant::now();
    crate::coord::until("simulated nodes connect", Duration::from_secs(180), || {
        let up = nodes.iter().filter(|h| h.stats().sessions_opened > 0).count();
        async move { up == n }
    })
    .await?;
    eprintln!("{n} simulated nodes connected in {:.1} s", t0.elapsed().as_secs_f64());
    Ok(nodes)
}

fn assigned(nodes: &[fogctl::sim::SimNodeHandle]) -> u64 {
    nodes.iter().map(|h| h.stats().assignments_received).sum()
}

/// `fog-bench submit`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Simulated nodes for the end-to-end placement run.
    #[arg(long, default_value_t = 100_000)]
    pub nodes: usize,
    /// Measured window per scenario.
    #[arg(long, default_value = "10s", value_parser = crate::ingest::humantime_secs)]
    pub window: Duration,
    /// Small and short: the test suite runs it so the code cannot rot.
    #[arg(long)]
    pub quick: bool,
}

/// Durable submission at 1 and 256 in flight against etcd puts, then
/// placement with the full fleet. Returns the markdown.
pub async fn run(mut args: Args, dir: &std::path::Path) -> anyhow::Result<String> {
    if args.quick {
        (args.nodes, args.window) = (200, Duration::from_secs(1));
    }
    let levels: &[usize] = if args.quick { &[1, 16] } else { &[1, 256] };
    let etcd = crate::etcd::Etcd::start(&dir.join("etcd-submit.log")).await?;
    let mut etcd_rates = Vec::new();
    for &k in levels {
        etcd_rates.push(crate::etcd::durable_puts(&etcd, k, k.div_ceil(64).clamp(1, 8), args.window).await?);
    }
    drop(etcd);
    let mut out = String::from(
        "| in flight | etcd durable puts/s | coordinator durable submits/s (routed) | **coordinator ÷ etcd** | submit p50 ms | submit p99 ms | CPU µs per op, server: etcd / coordinator | CPU µs per op, load generator: with etcd / with coordinator (its fleet included) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    {
        let coord = Coord::start(dir, &["--heartbeat-interval", "5s"]).await?;
        let nodes = fleet(&coord, "route", 1000.min(args.nodes), 2).await?;
        for (&k, e) in levels.iter().zip(&etcd_rates) {
            let r = submit_for(&coord, k, args.window, || assigned(&nodes)).await?;
            out += &format!(
                "| {k} | {:.0} | {:.0} | **{:.2}×** | {:.2} | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} |\n",
                e.rate,
                r.rate,
                r.rate / e.rate,
                r.latency.percentile_ms(50.0),
                r.latency.percentile_ms(99.0),
                e.cpu_us_per_op,
                r.cpu_us_per_op,
                e.load_cpu_us_per_op,
                r.load_cpu_us_per_op
            );
        }
        for n in &nodes {
            n.stop();
        }
    }
    let coord = Coord::start(dir, &["--heartbeat-interval", "5s"]).await?;
    let nodes = fleet(&coord, "place", args.nodes, args.nodes.div_ceil(1000)).await?;
    out += &format!(
        "\n| end-to-end placement, {} nodes connected | submits acknowledged (stored and placed)/s | **assignments received by the nodes/s** | submit latency p50 / p99 ms |\n|---|---:|---:|---:|\n",
        args.nodes
    );
    // Two loads on the same fleet: 512 submits in flight, and 1,024, where
    // the coordinator is saturated (more in flight only adds latency).
    let loads: &[usize] = if args.quick { &[16] } else { &[512, 1024] };
    for &k in loads {
        let r = submit_for(&coord, k, args.window, || assigned(&nodes)).await?;
        out += &format!(
            "| {k} submits in flight | {:.0} | **{:.0}** | {:.1} / {:.1} |\n",
            r.rate,
            r.assigned_rate,
            r.latency.percentile_ms(50.0),
            r.latency.percentile_ms(99.0)
        );
    }
    for n in &nodes {
        n.stop();
    }
    Ok(out)
}
