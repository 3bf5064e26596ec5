//! Property tests for the scheduler: every strategy against a brute-force
//! oracle over random fleets, plus index consistency under random updates.

use fog_core::domain::{
    LABEL_ATTESTED, LABEL_ONION, LABEL_OPERATOR_OWNED, LABEL_REGION, Location, PowerMode, PrivacyLevel, Resources,
    Strategy as Routing,
};
use fog_core::registry::{Liveness, NodeEntry, NodeRegistration, NodeTable, Slot};
use fog_core::scheduling::{
    LatencyModel, Scheduler, TaskNeeds, check_fit, check_index_consistency, estimate_latency_ms,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const REGIONS: [&str; 7] = ["us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast", ""];
const CENTERS: [(f64, f64); 6] =
    [(40.7, -74.0), (37.8, -122.4), (51.5, -0.1), (50.1, 8.7), (19.1, 72.9), (35.7, 139.7)];

#[derive(Clone, Debug)]
struct Spec {
    region: usize,
    admin_region: Option<usize>,
    coords: Option<(usize, i32, i32)>,
    liveness: Liveness,
    cordoned: bool,
    draining: bool,
    maintenance: bool,
    power: PowerMode,
    flapping: bool,
    capacity: Resources,
    alloc_quarters: u32,
    cpu_usage: f64,
    attempts: usize,
    exclusive: bool,
    completed: u64,
    failed: u64,
    privacy_flags: (bool, bool, bool),
    zone: Option<&'static str>,
    tier: Option<&'static str>,
    rtts: Vec<(usize, f32)>,
}

fn liveness() -> impl Strategy<Value = Liveness> {
    prop_oneof![
        7 => Just(Liveness::Healthy),
        1 => Just(Liveness::Suspect),
        1 => Just(Liveness::Offline),
        1 => Just(Liveness::Unknown),
    ]
}

fn power() -> impl Strategy<Value = PowerMode> {
    prop_oneof![
        6 => Just(PowerMode::Performance),
        2 => Just(PowerMode::Balanced),
        1 => Just(PowerMode::PowerSave),
        1 => Just(PowerMode::Critical),
    ]
}

fn resources(
    cpu: &'static [u32],
    mem: &'static [u64],
    sto: &'static [u64],
    gpu: &'static [u32],
) -> impl Strategy<Value = Resources> {
    (prop::sample::select(cpu), prop::sample::select(mem), prop::sample::select(sto), prop::sample::select(gpu))
        .prop_map(|(cpu_millis, memory_mb, storage_mb, gpus)| Resources { cpu_millis, memory_mb, storage_mb, gpus })
}

fn spec() -> impl Strategy<Value = Spec> {
    let place = (
        0..REGIONS.len(),
        prop::option::weighted(0.3, 0..REGIONS.len() - 1),
        prop::option::weighted(0.7, (0..CENTERS.len(), 0..3i32, 0..3i32)),
        prop::collection::vec((0..REGIONS.len() - 1, prop::sample::select(&[1.0f32, 5.0, 20.0, 100.0][..])), 0..3),
    );
    let state = (
        liveness(),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
        power(),
        prop::bool::weighted(0.15),
    );
    let work = (
        resources(&[0, 1000, 2000, 4000], &[512, 2048, 8192], &[0, 1000], &[0, 0, 1, 2]),
        0..5u32,
        prop::sample::select(&[0.0, 0.25, 0.5, 0.9][..]),
        0..3usize,
        prop::bool::weighted(0.05),
        0..4u64,
        0..4u64,
    );
    let labels = (
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::option::of(prop::sample::select(&["a", "b"][..])),
        prop::option::of(prop::sample::select(&["x", "y"][..])),
    );
    (place, state, work, labels).prop_map(|(place, state, work, labels)| Spec {
        region: place.0,
        admin_region: place.1,
        coords: place.2,
        rtts: place.3,
        liveness: state.0,
        cordoned: state.1,
        draining: state.2,
        maintenance: state.3,
        power: state.4,
        flapping: state.5,
        capacity: work.0,
        alloc_quarters: work.1,
        cpu_usage: work.2,
        attempts: work.3,
        exclusive: work.4,
        completed: work.5,
        failed: work.6,
        privacy_flags: labels.0,
        zone: labels.1,
        tier: labels.2,
    })
}

fn coords((c, dlat, dlon): (usize, i32, i32)) -> (f64, f64) {
    (CENTERS[c].0 + f64::from(dlat) * 0.5, CENTERS[c].1 + f64::from(dlon) * 0.5)
}

fn entry(id: &str, s: &Spec) -> NodeEntry {
    let mut e = NodeEntry::new(
        NodeRegistration {
            id: id.into(),
            name: id.into(),
            capacity: s.capacity,
            location: Location { region: REGIONS[s.region].into(), zone: "".into(), coordinates: s.coords.map(coords) },
            ..Default::default()
        },
        0,
    );
    e.liveness = s.liveness;
    e.cordoned = s.cordoned;
    e.draining = s.draining;
    e.maintenance = s.maintenance;
    e.live.power_mode = s.power;
    e.flapping = s.flapping;
    let q = s.alloc_quarters.min(4);
    let c = s.capacity;
    e.allocated = Resources {
        cpu_millis: c.cpu_millis * q / 4,
        memory_mb: c.memory_mb * u64::from(q) / 4,
        storage_mb: c.storage_mb * u64::from(q) / 4,
        gpus: c.gpus * q / 4,
    };
    e.live.cpu_usage = s.cpu_usage;
    for a in 0..s.attempts {
        e.attempts.insert((format!("t-{id}-{a}").into(), 1));
    }
    e.exclusive_attempts = u32::from(s.exclusive && s.attempts > 0);
    e.completed_tasks = s.completed;
    e.failed_tasks = s.failed;
    let (onion, owned, attested) = s.privacy_flags;
    for (flag, key) in [(onion, LABEL_ONION), (owned, LABEL_OPERATOR_OWNED), (attested, LABEL_ATTESTED)] {
        if flag {
            e.labels.insert(key.into(), "true".into());
        }
    }
    if let Some(r) = s.admin_region {
        e.labels.insert(LABEL_REGION.into(), REGIONS[r].into());
    }
    if let Some(z) = s.zone {
        e.labels.insert("zone".into(), z.into());
    }
    if let Some(t) = s.tier {
        e.labels.insert("tier".into(), t.into());
    }
    let mut rtts: Vec<(Arc<str>, f32)> = s.rtts.iter().map(|&(r, ms)| (REGIONS[r].into(), ms)).collect();
    rtts.sort_by(|a, b| a.0.cmp(&b.0));
    e.live.region_rtt_ms = rtts;
    e
}

fn table(specs: &[Spec]) -> NodeTable {
    let mut t = NodeTable::new();
    for (i, s) in specs.iter().enumerate() {
        t.insert(entry(&format!("n{i}"), s));
    }
    t
}

fn label() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        prop::sample::select(&["a", "b"][..]).prop_map(|v| ("zone".to_string(), v.to_string())),
        prop::sample::select(&["x", "y"][..]).prop_map(|v| ("tier".to_string(), v.to_string())),
    ]
}

fn needs() -> impl Strategy<Value = TaskNeeds> {
    let origin = prop::option::weighted(
        0.8,
        (0..REGIONS.len(), prop::option::weighted(0.6, (0..CENTERS.len(), 0..3i32, 0..3i32)))
            .prop_map(|(r, c)| Location { region: REGIONS[r].into(), zone: "".into(), coordinates: c.map(coords) }),
    );
    (
        resources(&[0, 0, 500, 1000, 3000], &[0, 256, 4096], &[0, 500], &[0, 0, 0, 1]),
        prop::sample::select(
            &[PrivacyLevel::Public, PrivacyLevel::Private, PrivacyLevel::Confidential, PrivacyLevel::Secret][..],
        ),
        prop::sample::select(&Routing::ALL[..]),
        prop::option::of(prop::sample::select(&["k1", "k2", "customer-42", ""][..])),
        prop::collection::vec(label(), 0..3),
        prop::collection::vec(label(), 0..2),
        origin,
        prop::collection::vec(prop::sample::select(&REGIONS[..6]), 0..3),
    )
        .prop_map(|(resources, privacy, strategy, key, preferred, required, origin, allowed)| TaskNeeds {
            resources,
            privacy,
            strategy,
            affinity_key: key.map(str::to_string),
            preferred_labels: preferred,
            required_labels: required,
            origin,
            allowed_regions: allowed.into_iter().map(str::to_string).collect(),
        })
}

/// The nodes the deciding pass chooses among: fitting, non-excluded steady
/// nodes, or if there are none, fitting non-excluded flapping ones.
fn deciding(t: &NodeTable, needs: &TaskNeeds, exclude: &[Slot]) -> Vec<Slot> {
    let fit: Vec<(Slot, bool)> = t
        .iter_slots()
        .filter(|(s, e)| !exclude.contains(s) && check_fit(e, needs).is_ok())
        .map(|(s, e)| (s, e.flapping))
        .collect();
    let steady: Vec<Slot> = fit.iter().filter(|f| !f.1).map(|f| f.0).collect();
    if steady.is_empty() { fit.into_iter().map(|f| f.0).collect() } else { steady }
}

fn node(t: &NodeTable, s: Slot) -> &NodeEntry {
    t.entry(s).expect("slot exists")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn place_returns_an_eligible_best_node(
        specs in prop::collection::vec(spec(), 1..200),
        needs in needs(),
        exclude_mask in prop::collection::vec(prop::bool::weighted(0.2), 200),
    ) {
        let t = table(&specs);
        prop_assert!(check_index_consistency(&t).is_ok());
        let exclude: Vec<Slot> = t.iter_slots().map(|(s, _)| s).filter(|&s| exclude_mask[s as usize]).collect();
        let model = LatencyModel::default();
        let mut sched = Scheduler::new(model.clone());
        let pool = deciding(&t, &needs, &exclude);
        let got = sched.place(&t, &needs, &exclude);
        // A timing probe (metrics) sees each decision once, under the strategy applied, and changes none.
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let probe_seen = seen.clone();
        let mut probed = Scheduler::new(model.clone()).with_probe(Arc::new(move |s, _| probe_seen.lock().unwrap().push(s)));
        prop_assert_eq!(probed.place(&t, &needs, &exclude), got);
        let keyless = needs.affinity_key.as_deref().is_none_or(str::is_empty);
        let applied = match needs.strategy {
            Routing::Affinity if keyless => Routing::LeastLoaded,
            Routing::Proximity if needs.origin.is_none() => Routing::LeastLoaded,
            s => s,
        };
        prop_assert_eq!(seen.lock().unwrap().clone(), vec![applied]);
        let Some(s) = got else {
            prop_assert!(pool.is_empty(), "None although {} node(s) fit", pool.len());
            return Ok(());
        };
        prop_assert!(!exclude.contains(&s), "excluded node chosen");
        prop_assert!(pool.contains(&s), "chosen node not in the deciding pass (ineligible, or flapping while a steady node fits)");
        let e = node(&t, s);
        prop_assert!(check_fit(e, &needs).is_ok());
        prop_assert!(e.privacy_ceiling() >= needs.privacy);
        if applied == Routing::LeastLoaded {
            let min = pool.iter().map(|&p| node(&t, p).load()).fold(f64::INFINITY, f64::min);
            prop_assert_eq!(e.load(), min);
        }
        if needs.strategy == Routing::PrivacyAware {
            let max = pool.iter().map(|&p| node(&t, p).reputation()).fold(0.0, f64::max);
            prop_assert_eq!(e.reputation(), max);
        }
        if let (Routing::Proximity, Some(origin)) = (needs.strategy, &needs.origin) {
            let est = |p: Slot| estimate_latency_ms(&model, node(&t, p), origin).0;
            let min = pool.iter().map(|&p| est(p)).fold(f64::INFINITY, f64::min);
            prop_assert!(est(s) <= min + 1e-9, "chose {} ms, best is {} ms", est(s), min);
        }
    }

    #[test]
    fn explain_agrees_with_place(
        specs in prop::collection::vec(spec(), 1..200),
        needs in needs(),
        warmup in 0..5usize,
        limit in 0..20usize,
    ) {
        let t = table(&specs);
        let mut sched = Scheduler::default();
        // Move the round-robin cursor somewhere arbitrary.
        let any = TaskNeeds { strategy: Routing::RoundRobin, ..TaskNeeds::default() };
        for _ in 0..warmup {
            sched.place(&t, &any, &[]);
        }
        let x = sched.explain(&t, &needs, limit);
        let placed = sched.place(&t, &needs, &[]);
        prop_assert_eq!(x.chosen.clone(), placed.map(|s| node(&t, s).id.clone()));
        let pool = deciding(&t, &needs, &[]);
        prop_assert_eq!(x.considered, t.len() as u64);
        prop_assert_eq!(x.fitting, pool.len() as u64);
        prop_assert_eq!(x.candidates.len(), pool.len().min(limit));
        prop_assert_eq!(x.rejected.len(), (t.len() - pool.len()).min(limit));
        prop_assert!(x.rejected.iter().all(|r| !r.reasons.is_empty()));
        let kinds: u64 = x.rejection_counts.values().sum();
        prop_assert!(kinds >= x.considered - x.fitting);
        if limit > 0 {
            prop_assert_eq!(x.candidates.first().map(|c| c.node.clone()), x.chosen.clone());
        }
        for w in x.candidates.windows(2) {
            if needs.strategy != Routing::Affinity {
                prop_assert!(w[0].score >= w[1].score, "candidates not best first");
            }
        }
    }

    #[test]
    fn round_robin_spreads_evenly(
        specs in prop::collection::vec(spec(), 1..200),
        k in 1..4usize,
        warmup in 0..7usize,
    ) {
        let t = table(&specs);
        let mut sched = Scheduler::default();
        let heavy = TaskNeeds { strategy: Routing::RoundRobin, resources: Resources { cpu_millis: 1000, ..Resources::ZERO }, ..TaskNeeds::default() };
        for _ in 0..warmup {
            sched.place(&t, &heavy, &[]);
        }
        let rr = TaskNeeds { strategy: Routing::RoundRobin, ..TaskNeeds::default() };
        let pool = deciding(&t, &rr, &[]);
        let mut counts: BTreeMap<Slot, usize> = BTreeMap::new();
        for _ in 0..k * pool.len() {
            let s = sched.place(&t, &rr, &[]).expect("something fits");
            *counts.entry(s).or_default() += 1;
        }
        prop_assert_eq!(counts.keys().copied().collect::<Vec<_>>(), pool.clone());
        let (lo, hi) = (counts.values().min(), counts.values().max());
        if let (Some(lo), Some(hi)) = (lo, hi) {
            prop_assert!(hi - lo <= 1, "uneven: {:?}", counts);
        }
    }

    #[test]
    fn affinity_is_sticky_and_consistent(
        n in 10..60usize,
        gone in 0..60usize,
        seed in any::<u64>(),
    ) {
        let healthy = |i: usize| {
            let mut e = NodeEntry::new(
                NodeRegistration {
                    id: format!("node-{seed:x}-{i}").into(),
                    capacity: Resources { cpu_millis: 4000, memory_mb: 4096, storage_mb: 0, gpus: 0 },
                    ..Default::default()
                },
                0,
            );
            e.liveness = Liveness::Healthy;
            e
        };
        let mut t = NodeTable::new();
        for i in 0..n {
            t.insert(healthy(i));
        }
        let mut sched = Scheduler::default();
        let needs_for = |k: usize| TaskNeeds {
            strategy: Routing::Affinity,
            affinity_key: Some(format!("key-{k}")),
            ..TaskNeeds::default()
        };
        let before: Vec<Arc<str>> = (0..1000)
            .map(|k| node(&t, sched.place(&t, &needs_for(k), &[]).expect("fits")).id.clone())
            .collect();
        for k in (0..1000).step_by(97) {
            let again = sched.place(&t, &needs_for(k), &[]).map(|s| node(&t, s).id.clone());
            prop_assert_eq!(again.as_ref(), Some(&before[k]), "same key, same node");
        }
        // Restart: the same fleet inserted in reverse (other slots) places keys identically.
        let mut reversed = NodeTable::new();
        for i in (0..n).rev() {
            reversed.insert(healthy(i));
        }
        for k in (0..1000).step_by(13) {
            let s = sched.place(&reversed, &needs_for(k), &[]).expect("fits");
            prop_assert_eq!(&node(&reversed, s).id, &before[k]);
        }
        let gone_id: Arc<str> = format!("node-{seed:x}-{}", gone % n).into();
        t.remove(&gone_id);
        let mut moved = 0;
        for (k, was) in before.iter().enumerate() {
            let now = node(&t, sched.place(&t, &needs_for(k), &[]).expect("fits")).id.clone();
            if &now != was {
                prop_assert_eq!(was, &gone_id, "a key moved off a node that stayed");
                moved += 1;
            }
        }
        prop_assert_eq!(moved, before.iter().filter(|w| **w == gone_id).count());
        let bound = 1000 * 2 / n + 30;
        prop_assert!(moved <= bound, "{} of 1000 keys moved with n = {}", moved, n);
    }

    #[test]
    fn a_bulk_load_indexes_as_inserts_one_by_one_do(
        specs in prop::collection::vec(spec(), 1..100),
        needs in needs(),
    ) {
        let one_by_one = table(&specs);
        let mut bulk = NodeTable::new();
        bulk.extend(specs.iter().enumerate().map(|(i, s)| entry(&format!("n{i}"), s)));
        prop_assert_eq!(check_index_consistency(&bulk), Ok(()));
        let placed = |t: &NodeTable| Scheduler::default().place(t, &needs, &[]).map(|s| node(t, s).id.clone());
        prop_assert_eq!(placed(&bulk), placed(&one_by_one));
    }

    #[test]
    fn indexes_stay_consistent_under_updates(
        specs in prop::collection::vec(spec(), 1..100),
        ops in prop::collection::vec((0..100usize, 0..9u8, spec()), 1..120),
        needs in needs(),
    ) {
        let mut t = table(&specs);
        let mut next_id = specs.len();
        for (i, op, s) in ops {
            let ids: Vec<Arc<str>> = t.iter().map(|e| e.id.clone()).collect();
            if ids.is_empty() {
                t.insert(entry(&format!("n{next_id}"), &s));
                next_id += 1;
                continue;
            }
            let id = &ids[i % ids.len()];
            match op {
                0 => { t.remove(id); }
                1 => { t.insert(entry(&format!("n{next_id}"), &s)); next_id += 1; }
                // A heartbeat: load and measured RTTs move, nothing else (the cheap re-index path).
                2 => {
                    let rtts = entry(id, &s).live.region_rtt_ms;
                    t.update(id, |e| { e.live.cpu_usage = s.cpu_usage; e.live.region_rtt_ms = rtts; });
                }
                3 => { t.update(id, |e| { e.liveness = s.liveness; e.flapping = s.flapping; }); }
                4 => { t.update(id, |e| e.labels.insert(LABEL_REGION.into(), REGIONS[s.region].into())); }
                5 => { t.update(id, |e| e.location.coordinates = s.coords.map(coords)); }
                6 => { t.update(id, |e| { e.completed_tasks += s.completed; e.attempts.insert(("t-x".into(), 9)); }); }
                // A bulk load (a restore): a new node, a replaced one, and a repeat within the batch.
                7 => {
                    let new_id = format!("n{next_id}");
                    next_id += 1;
                    t.extend([entry(&new_id, &s), entry(id, &s), entry(&new_id, &specs[i % specs.len()])]);
                }
                // The table's own heartbeat path (skips the re-index when no key moved).
                8 => { let live = entry(id, &s).live; t.heartbeat(id, live, 1); }
                _ => { let fresh = entry(id, &s); t.update(id, |e| *e = fresh); }
            }
        }
        prop_assert_eq!(check_index_consistency(&t), Ok(()));
        // And the scheduler still only picks eligible nodes from the mutated table.
        let mut sched = Scheduler::default();
        let pool = deciding(&t, &needs, &[]);
        match sched.place(&t, &needs, &[]) {
            Some(s) => prop_assert!(pool.contains(&s)),
            None => prop_assert!(pool.is_empty()),
        }
    }
}

/// A node for the hand-written cases below.
fn at(id: &str, region: &str, coords: Option<(f64, f64)>) -> NodeEntry {
    let mut e = NodeEntry::new(
        NodeRegistration {
            id: id.into(),
            capacity: Resources { cpu_millis: 1000, memory_mb: 1024, storage_mb: 0, gpus: 0 },
            location: Location { region: region.into(), zone: "".into(), coordinates: coords },
            ..Default::default()
        },
        0,
    );
    e.liveness = Liveness::Healthy;
    e
}

fn choose(t: &NodeTable, needs: &TaskNeeds) -> Option<String> {
    Scheduler::default().place(t, needs, &[]).map(|s| node(t, s).id.to_string())
}

#[test]
fn proximity_prefers_measured_then_distance_then_matrix() {
    let mut t = NodeTable::new();
    t.insert(at("paris", "eu-west", Some((48.86, 2.35))));
    t.insert(at("frankfurt", "eu-central", Some((50.11, 8.68))));
    t.insert(at("unlocated-eu", "eu-west", None));
    t.insert(at("virginia", "us-east", Some((38.9, -77.0))));
    let from = |region: &str, coords| TaskNeeds {
        strategy: Routing::Proximity,
        origin: Some(Location { region: region.into(), zone: "".into(), coordinates: coords }),
        ..TaskNeeds::default()
    };
    // London: Paris is ~340 km (4.4 ms) away; Frankfurt ~640 km.
    assert_eq!(choose(&t, &from("eu-west", Some((51.5, -0.12)))).as_deref(), Some("paris"));
    // Without coordinates the matrix decides: same region (5 ms) — the least loaded of the two eu-west nodes.
    t.update("paris", |e| e.live.cpu_usage = 0.5);
    assert_eq!(choose(&t, &from("eu-west", None)).as_deref(), Some("unlocated-eu"));
    assert_eq!(choose(&t, &from("eu-central", None)).as_deref(), Some("frankfurt"));
    // A measured RTT wins over geography.
    t.update("virginia", |e| e.live.region_rtt_ms = vec![("eu-west".into(), 0.5)]);
    assert_eq!(choose(&t, &from("eu-west", Some((51.5, -0.12)))).as_deref(), Some("virginia"));
    // Unknown region with no coordinates: everything costs the same → least-loaded.
    t.update("virginia", |e| e.live.cpu_usage = 0.9);
    t.update("unlocated-eu", |e| e.live.cpu_usage = 0.2);
    assert_eq!(choose(&t, &from("", None)).as_deref(), Some("frankfurt"));
}

#[test]
fn flapping_nodes_are_a_last_resort() {
    let mut t = NodeTable::new();
    t.insert(at("steady", "eu-west", None));
    t.insert(at("flappy", "eu-west", None));
    t.update("steady", |e| e.live.cpu_usage = 0.9);
    t.update("flappy", |e| e.flapping = true);
    for strategy in Routing::ALL {
        let needs = TaskNeeds { strategy, affinity_key: Some("k".into()), ..TaskNeeds::default() };
        assert_eq!(choose(&t, &needs).as_deref(), Some("steady"), "{strategy:?}");
        let x = Scheduler::default().explain(&t, &needs, 10);
        assert_eq!(x.rejection_counts.get("flapping"), Some(&1));
        t.update("steady", |e| e.cordoned = true);
        assert_eq!(choose(&t, &needs).as_deref(), Some("flappy"), "{strategy:?}");
        t.update("steady", |e| e.cordoned = false);
    }
}

#[test]
fn explain_gives_reasons() {
    let mut t = NodeTable::new();
    t.insert(at("small", "eu-west", None));
    t.insert(at("off", "eu-west", None));
    t.update("off", |e| e.liveness = Liveness::Offline);
    let needs = TaskNeeds { resources: Resources { cpu_millis: 2000, ..Resources::ZERO }, ..TaskNeeds::default() };
    let x = Scheduler::default().explain(&t, &needs, 10);
    assert_eq!(x.chosen, None);
    assert_eq!((x.considered, x.fitting), (2, 0));
    let reasons: BTreeSet<&str> = x.rejected.iter().flat_map(|r| r.reasons.iter().map(String::as_str)).collect();
    assert!(reasons.contains("cpu: needs 2000m, free 1000m"), "{reasons:?}");
    assert!(reasons.contains("liveness: node is offline"), "{reasons:?}");
    assert_eq!(x.rejection_counts.get("cpu"), Some(&2));
    assert_eq!(x.rejection_counts.get("offline"), Some(&1));
}
