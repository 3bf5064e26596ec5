//! Liveness and topology at fleet scale: `tick` and `heartbeat` of the
//! failure detector at 100,000 nodes, `aggregate` over 100,000 nodes, and the
//! topology log's `append` + `since`.

use criterion::{Criterion, criterion_group, criterion_main};
use fog_core::domain::{Location, Millis, NodeId, NodeType, Resources};
use fog_core::liveness::{LivenessConfig, LivenessDetector};
use fog_core::registry::{Liveness, NodeRegistration, NodeTable};
use fog_core::topology::{Change, TaskCounts, TopologyLog, aggregate};
use std::hint::black_box;
use std::time::{Duration, Instant};

const NODES: usize = 100_000;
/// The engine ticks the detector this often.
const TICK_MS: Millis = 100;

fn ids() -> Vec<NodeId> {
    (0..NODES).map(|i| NodeId::from(format!("node-{i:06}"))).collect()
}

/// A fleet of healthy nodes whose heartbeats are spread evenly over the interval.
fn fleet(ids: &[NodeId]) -> LivenessDetector {
    let mut d = LivenessDetector::new(LivenessConfig::default());
    for (i, id) in ids.iter().enumerate() {
        d.session_opened(id.clone(), (i as Millis * 1_000) / NODES as Millis);
    }
    d
}

/// Runs the fleet for `steps` ticks of `TICK_MS`: every node heartbeats once a
/// second at its own phase, except the silent ones. Returns the time spent in `tick`.
fn run(
    d: &mut LivenessDetector,
    ids: &[NodeId],
    now: &mut Millis,
    steps: u64,
    silent: impl Fn(usize, Millis) -> bool,
) -> Duration {
    let mut in_tick = Duration::ZERO;
    for _ in 0..steps {
        let from = *now;
        *now += TICK_MS;
        // Nodes whose phase falls in (from, now] heartbeat in this step.
        let per_ms = NODES as u64 / 1_000;
        let lo = ((from % 1_000) * per_ms) as usize;
        let hi = ((*now - 1) % 1_000 * per_ms + per_ms) as usize;
        for (i, id) in ids.iter().enumerate().take(hi).skip(lo) {
            if !silent(i, *now) {
                d.heartbeat(id, *now);
            }
        }
        let t = Instant::now();
        black_box(d.tick(*now));
        in_tick += t.elapsed();
    }
    in_tick
}

fn liveness(c: &mut Criterion) {
    let ids = ids();
    let mut g = c.benchmark_group("liveness");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));

    // Steady state: every node healthy and heartbeating; the time of one tick.
    {
        let mut d = fleet(&ids);
        let mut now = 1_000;
        run(&mut d, &ids, &mut now, 50, |_, _| false);
        g.bench_function("tick/100k_healthy", |b| {
            b.iter_custom(|iters| run(&mut d, &ids, &mut now, iters, |_, _| false))
        });
        assert!(ids.iter().all(|id| d.get(id) == Some((Liveness::Healthy, false))));
    }

    // Churn: in every 5 s window a different 1 % of the fleet stops
    // heartbeating (suspect after 2 s, offline after 3 s) while the previous
    // 1 % comes back and recovers; the time of one tick, averaged.
    {
        let silent = |i: usize, now: Millis| i % 100 == (now / 5_000 % 100) as usize;
        let mut d = fleet(&ids);
        let mut now = 1_000;
        run(&mut d, &ids, &mut now, 130, silent);
        let before = ids.iter().filter(|id| d.get(id).map(|s| s.0) == Some(Liveness::Offline)).count();
        assert!(before >= NODES / 100 - 10, "the silent 1 % is offline ({before})");
        g.bench_function("tick/100k_1pct_silent", |b| {
            b.iter_custom(|iters| run(&mut d, &ids, &mut now, iters, silent))
        });
    }

    {
        let mut d = fleet(&ids);
        let mut now: Millis = 1_000;
        let mut i = 0;
        g.bench_function("heartbeat/100k", |b| {
            b.iter(|| {
                i = (i + 1) % NODES;
                if i == 0 {
                    now += 1_000;
                }
                black_box(d.heartbeat(&ids[i], now))
            })
        });
    }
    g.finish();
}

fn node_table() -> NodeTable {
    let mut t = NodeTable::new();
    let regions = ["us-east", "us-west", "eu-west", "eu-central", "ap-south"];
    for i in 0..NODES {
        let reg = NodeRegistration {
            id: NodeId::from(format!("node-{i:06}")),
            node_type: NodeType::ALL[i % NodeType::ALL.len()],
            capacity: Resources { cpu_millis: 4_000, memory_mb: 8_192, storage_mb: 65_536, gpus: (i % 7 == 0) as u32 },
            location: Location {
                region: regions[i % regions.len()].into(),
                zone: format!("z{}", i % 3).into(),
                coordinates: None,
            },
            ..Default::default()
        };
        let slot = t.register(reg, 0);
        let _ = slot;
        t.update(&format!("node-{i:06}"), |e| {
            e.liveness = if i % 50 == 0 { Liveness::Suspect } else { Liveness::Healthy };
            e.live.cpu_usage = (i % 100) as f64 / 100.0;
        });
    }
    t
}

fn topology(c: &mut Criterion) {
    let mut g = c.benchmark_group("topology");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));

    let table = node_table();
    let tasks = TaskCounts {
        queued: 10,
        running: 5_000,
        completed: 1_000_000,
        failed: 1_000,
        placed: 1_001_000,
        sla_met: 990_000,
    };
    g.bench_function("aggregate/100k", |b| b.iter(|| black_box(aggregate(&table, &tasks))));
    g.bench_function("regions/100k", |b| b.iter(|| black_box(fog_core::topology::regions(&table))));

    let mut log = TopologyLog::new(10_000);
    let node: NodeId = "node-000001".into();
    g.bench_function("log/append", |b| b.iter(|| black_box(log.append(Change::NodeRemoved(node.clone())))));
    let behind = log.revision() - 100;
    g.bench_function("log/since_100_behind", |b| b.iter(|| black_box(log.since(behind).map(|it| it.count()))));
    g.finish();
}

criterion_group!(benches, liveness, topology);
criterion_main!(benches);
