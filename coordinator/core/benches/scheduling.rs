//! Placement latency of each strategy at 1k, 10k and 100k nodes, plus
//! "only ~2 % fit" variants, a brute-force least-loaded scan at 100k as the
//! baseline, and the cost of re-indexing a node on a heartbeat.
//!
//! Decisions are measured without reserving, so the table is unchanged
//! between iterations; keys and origins rotate so no single path is cached.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use fog_core::domain::{
    LABEL_ATTESTED, LABEL_ONION, LABEL_OPERATOR_OWNED, LABEL_REGION, Location, PowerMode, PrivacyLevel, Resources,
    Strategy,
};
use fog_core::registry::{Liveness, NodeEntry, NodeRegistration, NodeTable};
use fog_core::scheduling::{Scheduler, TaskNeeds};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{REGIONS, Rng};

fn fleet(n: usize) -> NodeTable {
    let mut rng = Rng(42);
    let mut t = NodeTable::new();
    for i in 0..n {
        let (region, lat, lon) = REGIONS[rng.below(6) as usize];
        let cpu = [2000, 4000, 8000][rng.below(3) as usize];
        let mem = [2048, 8192, 16384][rng.below(3) as usize];
        let gpus = u32::from(rng.below(50) == 0);
        let coords = (rng.below(10) < 9).then(|| (lat + rng.unit() * 6.0 - 3.0, lon + rng.unit() * 6.0 - 3.0));
        let mut e = NodeEntry::new(
            NodeRegistration {
                id: format!("node-{i:06}").into(),
                name: format!("node {i}"),
                capacity: Resources { cpu_millis: cpu, memory_mb: mem, storage_mb: 64_000, gpus },
                location: Location { region: region.into(), zone: "".into(), coordinates: coords },
                ..Default::default()
            },
            0,
        );
        e.liveness = match rng.below(100) {
            0..=91 => Liveness::Healthy,
            92..=95 => Liveness::Suspect,
            _ => Liveness::Offline,
        };
        e.cordoned = rng.below(100) < 2;
        e.flapping = rng.below(100) < 2;
        e.live.power_mode = if rng.below(100) < 5 { PowerMode::PowerSave } else { PowerMode::Performance };
        let used = rng.unit() * 0.8;
        e.allocated = Resources {
            cpu_millis: (f64::from(cpu) * used) as u32,
            memory_mb: (mem as f64 * used) as u64,
            ..Resources::ZERO
        };
        e.live.cpu_usage = rng.unit();
        e.live.memory_usage = rng.unit() * 0.7;
        e.completed_tasks = rng.below(1000);
        e.failed_tasks = rng.below(50);
        let p = rng.below(100);
        if p < 35 {
            e.labels.insert(LABEL_ONION.into(), "true".into());
        }
        if p < 15 {
            e.labels.insert(LABEL_OPERATOR_OWNED.into(), "true".into());
            e.labels.insert(LABEL_REGION.into(), region.into());
        }
        if p < 5 {
            e.labels.insert(LABEL_ATTESTED.into(), "true".into());
        }
        e.labels.insert("zone".into(), ["a", "b", "c"][rng.below(3) as usize].into());
        if rng.below(10) < 3 {
            let other = REGIONS[rng.below(6) as usize].0;
            let mut rtts: Vec<(Arc<str>, f32)> =
                vec![(region.into(), 2.0 + rng.unit() as f32 * 8.0), (other.into(), 20.0 + rng.unit() as f32 * 150.0)];
            rtts.sort_by(|a, b| a.0.cmp(&b.0));
            rtts.dedup_by(|a, b| a.0 == b.0);
            e.live.region_rtt_ms = rtts;
        }
        t.insert(e);
    }
    t
}

fn small() -> Resources {
    Resources { cpu_millis: 500, memory_mb: 256, ..Resources::ZERO }
}

/// 64 variants of a task so consecutive iterations take different paths.
fn variants(strategy: Strategy) -> Vec<TaskNeeds> {
    let mut rng = Rng(7);
    (0..64)
        .map(|i| {
            let (region, lat, lon) = REGIONS[i % 6];
            TaskNeeds {
                resources: small(),
                strategy,
                privacy: if strategy == Strategy::PrivacyAware { PrivacyLevel::Private } else { PrivacyLevel::Public },
                affinity_key: Some(format!("customer-{}", rng.next())),
                preferred_labels: if i % 2 == 0 { vec![("zone".into(), "a".into())] } else { vec![] },
                origin: Some(Location {
                    region: region.into(),
                    zone: "".into(),
                    coordinates: (i % 4 != 0).then(|| (lat + rng.unit() * 4.0 - 2.0, lon + rng.unit() * 4.0 - 2.0)),
                }),
                ..TaskNeeds::default()
            }
        })
        .collect()
}

fn bench_place(c: &mut Criterion) {
    let mut g = c.benchmark_group("place");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    for n in [1_000, 10_000, 100_000] {
        let t = fleet(n);
        for strategy in Strategy::ALL {
            let needs = variants(strategy);
            let mut sched = Scheduler::default();
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new(strategy.as_str(), n), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    black_box(sched.place(&t, &needs[i % needs.len()], &[]))
                })
            });
        }
        if n == 100_000 {
            // The baseline the indexes are measured against: every node
            // through `check_fit`, then the lowest (load, active tasks, slot).
            // `check_fit` formats a reason for each rejected node (~20 % here).
            let needs = variants(Strategy::LeastLoaded);
            for v in &needs {
                assert_eq!(brute_force_least_loaded(&t, v), Scheduler::default().place(&t, v, &[]));
            }
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new("brute-force-least-loaded", n), |b| {
                b.iter(|| {
                    i = i.wrapping_add(1);
                    black_box(brute_force_least_loaded(&t, &needs[i % needs.len()]))
                })
            });
            // ~2 % of nodes have a GPU.
            let gpu = TaskNeeds { resources: Resources { gpus: 1, ..small() }, ..TaskNeeds::default() };
            // CONFIDENTIAL with residency in one region: ~15 % confidential-capable × 1/6 regions.
            let resident = TaskNeeds {
                resources: small(),
                strategy: Strategy::PrivacyAware,
                privacy: PrivacyLevel::Confidential,
                allowed_regions: vec!["eu-west".into()],
                ..TaskNeeds::default()
            };
            for (name, needs) in [("least-loaded-2pct-fit", gpu), ("privacy-aware-2pct-fit", resident)] {
                let fitting = t.iter().filter(|e| fog_core::scheduling::check_fit(e, &needs).is_ok()).count();
                eprintln!("{name}: {fitting} of {n} nodes fit");
                let mut sched = Scheduler::default();
                g.bench_function(BenchmarkId::new(name, n), |b| b.iter(|| black_box(sched.place(&t, &needs, &[]))));
            }
        }
    }
    g.finish();
}

/// Least-loaded by linear scan, flapping nodes last (as `Scheduler::place`).
fn brute_force_least_loaded(t: &NodeTable, needs: &TaskNeeds) -> Option<u32> {
    t.iter_slots()
        .filter(|(_, e)| fog_core::scheduling::check_fit(e, needs).is_ok())
        .min_by(|(sa, a), (sb, b)| {
            a.flapping
                .cmp(&b.flapping)
                .then(a.load().total_cmp(&b.load()))
                .then((a.active_tasks(), *sa).cmp(&(b.active_tasks(), *sb)))
        })
        .map(|(s, _)| s)
}

fn bench_reindex(c: &mut Criterion) {
    let mut g = c.benchmark_group("reindex");
    g.sample_size(20).measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    let mut t = fleet(100_000);
    let ids: Vec<Arc<str>> =
        t.iter().filter(|e| e.liveness == Liveness::Healthy).map(|e| e.id.clone()).take(1024).collect();
    let mut i = 0usize;
    g.bench_function(BenchmarkId::new("heartbeat-update", 100_000), |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let usage = (i % 100) as f64 / 100.0;
            t.update(&ids[i % ids.len()], |e| e.live.cpu_usage = usage)
        })
    });
    g.finish();
}

criterion_group!(benches, bench_place, bench_reindex);
criterion_main!(benches);
