//! Topology watch fan-out: W watchers, U updates a second, delivery delay from
//! the moment the update is sent to the moment each watcher has it.
//!
//! - Baseline: the raw tonic server's `Subscribe` (server streaming from one
//!   `broadcast` channel) fed by unary `Publish` calls.
//! - Coordinator: `WatchTopology` at NODE_STATUS detail; an update is an
//!   operator's `CordonNode` / `UncordonNode` on one of 100 simulated nodes
//!   (round robin), which every watcher sees as a node delta.
//! - The same again with S stalled watchers (each on its own connection, never
//!   reading): the others' delays should not move.

use crate::coord::{Coord, connect};
use crate::procs::{Proc, free_port, wait_listening};
use crate::raw::pb;
use fog_proto::v1 as fog;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `p`-th percentile (0–100, nearest rank) of sorted values; NaN if there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((p / 100.0) * (n - 1) as f64).round() as usize],
    }
}

/// Delivery delays in nanoseconds, from many tasks.
#[derive(Clone, Default)]
pub struct Delays(Arc<Mutex<Vec<u64>>>);

impl Delays {
    /// Records one delay.
    pub fn record(&self, ns: u64) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(ns);
    }

    /// Delays recorded.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// The `p`-th percentile (0–100) in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let mut v: Vec<f64> = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|ns| *ns as f64 / 1e6)
            .collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, p)
    }

    /// Waits until no delay arrived for 200 ms (the last updates are in), at most `limit`.
    pub async fn settle(&self, limit: Duration) {
        let end = Instant::now() + limit;
        let mut last = self.len();
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.len();
            if now == last {
                return;
            }
            last = now;
        }
    }
}

/// `fog-bench watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Watchers.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// Updates per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,
    /// Stalled watchers in the second coordinator run.
    #[arg(long, default_value_t = 10)]
    pub stalled: usize,
    /// Measured window per scenario.
    #[arg(long, default_value = "10s", value_parser = crate::ingest::humantime_secs)]
    pub window: Duration,
    /// Small and short (20 watchers, 1 s): the test suite runs it so the code cannot rot.
    #[arg(long)]
    pub quick: bool,
}

/// One scenario's delays.
pub struct WatchResult {
    /// Label.
    pub label: String,
    /// Median, ms.
    pub p50: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Deliveries counted.
    pub deliveries: usize,
    /// Updates sent.
    pub updates: u64,
}

impl WatchResult {
    pub(crate) fn of(label: impl Into<String>, d: &Delays, updates: u64) -> WatchResult {
        WatchResult {
            label: label.into(),
            p50: d.percentile_ms(50.0),
            p99: d.percentile_ms(99.0),
            deliveries: d.len(),
            updates,
        }
    }
}

/// Watchers per HTTP/2 connection (see the ingest notes on >1,000 streams per connection).
const PER_CONNECTION: usize = 100;

async fn raw(args: &Args) -> anyhow::Result<WatchResult> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let argv = ["raw-server".to_string(), "--listen".into(), addr.to_string()];
    let mut server =
        Proc::start(std::env::current_exe()?, &argv, &std::env::temp_dir().join("fog-bench-raw-watch.log"))?;
    wait_listening(&mut server, addr).await?;
    let channels = connect(addr, args.watchers.div_ceil(PER_CONNECTION)).await?;
    let origin = Instant::now();
    let delays = Delays::default();
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..args.watchers {
        let mut client = pb::raw_service_client::RawServiceClient::new(channels[i % channels.len()].clone());
        let (delays, ready) = (delays.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(resp) = client.subscribe(pb::Blob::default()).await else { return };
            ready.fetch_add(1, Ordering::Relaxed);
            let mut s = resp.into_inner();
            while let Ok(Some(b)) = s.message().await {
                delays.record((origin.elapsed().as_nanos() as u64).saturating_sub(b.seq));
            }
        }));
    }
    crate::coord::until("raw subscribers", Duration::from_secs(60), || {
        let n = ready.load(Ordering::Relaxed);
        async move { n >= args.watchers }
    })
    .await?;
    let mut publisher = pb::raw_service_client::RawServiceClient::new(connect(addr, 1).await?.remove(0));
    let mut sent = 0;
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    let end = Instant::now() + args.window;
    while Instant::now() < end {
        ticks.tick().await;
        let seq = origin.elapsed().as_nanos() as u64;
        publisher.publish(pb::Blob { seq, payload: vec![7; 64] }).await?;
        sent += 1;
    }
    delays.settle(Duration::from_secs(3)).await;
    for t in tasks {
        t.abort();
    }
    Ok(WatchResult::of("raw tonic server-streaming fan-out", &delays, sent))
}

/// Simulated nodes the updates are about.
const NODES: usize = 100;

async fn coordinator(args: &Args, dir: &std::path::Path) -> anyhow::Result<Vec<WatchResult>> {
    let coord = Coord::start(dir, &["--heartbeat-interval", "1s"]).await?;
    let node_ch = coord.channels(1).await?.remove(0);
    let nodes: Vec<_> = (0..NODES)
        .map(|i| {
            let spec = fogctl::sim::SimNodeSpec::demo_with_prefix("watched", i);
            fogctl::sim::spawn_node(node_ch.clone(), spec, fogctl::sim::SimOptions::default())
        })
        .collect();
    let ids: Vec<String> = nodes.iter().map(|n| n.id().to_string()).collect();
    crate::coord::until("simulated nodes connect", Duration::from_secs(60), || {
        let up = nodes.iter().filter(|n| n.stats().sessions_opened > 0).count();
        async move { up == NODES }
    })
    .await?;
    let mut out = Vec::new();
    for stalled in [0, args.stalled] {
        let label = if stalled == 0 {
            "coordinator WatchTopology".to_string()
        } else {
            format!("coordinator WatchTopology, {stalled} more watchers stalled")
        };
        out.push(coordinator_run(args, &coord, &ids, stalled, label).await?);
        if args.stalled == 0 {
            break;
        }
    }
    for n in &nodes {
        n.stop();
    }
    Ok(out)
}

async fn coordinator_run(
    args: &Args,
    coord: &Coord,
    ids: &[String],
    stalled: usize,
    label: String,
) -> anyhow::Result<WatchResult> {
    let origin = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..ids.len()).map(|_| AtomicU64::new(0)).collect());
    let index: Arc<std::collections::HashMap<String, usize>> =
        Arc::new(ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect());
    let delays = Delays::default();
    let ready = Arc::new(AtomicUsize::new(0));
    let channels = coord.channels(args.watchers.div_ceil(PER_CONNECTION)).await?;
    let request = fog::WatchTopologyRequest { detail: fog::TopologyDetail::NodeStatus as i32, ..Default::default() };
    let mut tasks = Vec::new();
    for i in 0..args.watchers {
        let mut client = coord.topology(channels[i % channels.len()].clone());
        let (delays, ready, sent, index, request) =
            (delays.clone(), ready.clone(), sent.clone(), index.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(resp) = client.watch_topology(request).await else { return };
            let mut s = resp.into_inner();
            while let Ok(Some(m)) = s.message().await {
                match m.event {
                    Some(fog::watch_topology_response::Event::Snapshot(snap)) if snap.last => {
                        ready.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(fog::watch_topology_response::Event::Node(d)) => {
                        let now = origin.elapsed().as_nanos() as u64;
                        if let Some(&i) = d.node.as_ref().and_then(|n| index.get(&n.id)) {
                            delays.record(now.saturating_sub(sent[i].load(Ordering::Relaxed)));
                        }
                    }
                    _ => {}
                }
            }
        }));
    }
    // Stalled watchers: each on a connection of its own (a stalled browser tab),
    // their streams opened and never read.
    let mut stalled_streams = Vec::new();
    for _ in 0..stalled {
        let mut client = coord.topology(coord.channels(1).await?.remove(0));
        stalled_streams.push(client.watch_topology(request.clone()).await?.into_inner());
    }
    crate::coord::until("coordinator watchers get their snapshot", Duration::from_secs(60), || {
        let n = ready.load(Ordering::Relaxed);
        async move { n >= args.watchers }
    })
    .await?;
    let mut fleet = coord.fleet(coord.channels(1).await?.remove(0));
    let mut cordoned = vec![false; ids.len()];
    let mut updates = 0u64;
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / args.rate.max(1));
    let end = Instant::now() + args.window;
    // Each change is its own call (a change is durable before it is answered,
    // so calls in sequence would cap the rate at one per commit).
    let mut calls = Vec::new();
    while Instant::now() < end {
        ticks.tick().await;
        let i = (updates as usize) % ids.len();
        sent[i].store(origin.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let (node_id, mut fleet, cordon) = (ids[i].clone(), fleet.clone(), !cordoned[i]);
        calls.push(tokio::spawn(async move {
            if cordon {
                fleet.cordon_node(fog::CordonNodeRequest { node_id }).await.map(drop)
            } else {
                fleet.uncordon_node(fog::UncordonNodeRequest { node_id }).await.map(drop)
            }
        }));
        cordoned[i] = cordon;
        updates += 1;
    }
    for c in calls {
        c.await??;
    }
    delays.settle(Duration::from_secs(3)).await;
    for t in tasks {
        t.abort();
    }
    drop(stalled_streams);
    // Leave every node uncordoned for the next run.
    for (i, c) in cordoned.iter().enumerate() {
        if *c {
            fleet.uncordon_node(fog::UncordonNodeRequest { node_id: ids[i].clone() }).await?;
        }
    }
    Ok(WatchResult::of(label, &delays, updates))
}

/// Runs the baseline and the coordinator; returns the markdown table.
pub async fn run(mut args: Args, dir: &std::path::Path) -> anyhow::Result<String> {
    if args.quick {
        (args.watchers, args.rate, args.stalled, args.window) = (20, 50, 2, Duration::from_secs(1));
    }
    anyhow::ensure!(args.watchers > 0 && args.rate > 0, "--watchers and --rate must be positive");
    eprintln!("watch: {} watchers, {} updates/s, {:?} window", args.watchers, args.rate, args.window);
    let base = raw(&args).await?;
    let etcd = crate::etcd::Etcd::start(&dir.join("etcd-watch.log")).await?;
    let peer =
        crate::etcd::watch_delays(&etcd, args.watchers, args.watchers.div_ceil(PER_CONNECTION), args.rate, args.window)
            .await?;
    drop(etcd);
    let mut coord = coordinator(&args, dir).await?;
    coord.push(peer);
    let mut t = format!(
        "| scenario ({} watchers, {} updates/s) | updates | deliveries | p50 ms | p99 ms | p99 ÷ raw p99 |\n|---|---:|---:|---:|---:|---:|\n",
        args.watchers, args.rate
    );
    for r in std::iter::once(&base).chain(&coord) {
        t += &format!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2}× |\n",
            r.label,
            r.updates,
            r.deliveries,
            r.p50,
            r.p99,
            r.p99 / base.p99
        );
    }
    let expected = |r: &WatchResult| r.updates as usize * args.watchers;
    for r in std::iter::once(&base).chain(&coord) {
        anyhow::ensure!(r.deliveries > 0, "{}: no update was delivered", r.label);
        if r.deliveries < expected(r) {
            t += &format!("\n{}: {} of {} deliveries arrived.\n", r.label, r.deliveries, expected(r));
        }
    }
    Ok(t)
}
