//! Registry memory per idle node: resident memory added by registering N
//! realistic idle nodes, at N = 10,000 and 100,000.
//!
//! Three layouts, each measured in its own child process so that memory freed
//! by one build can never be reused by (and hidden in) the next:
//! - `vec`: the `NodeEntry` values alone in a `Vec` sized exactly (the baseline);
//! - `table`: the same entries in a `NodeTable`, with its id map and indexes;
//! - `table+liveness`: plus the `LivenessDetector` the coordinator keeps beside it.
//!
//! Memory is resident set size from `/proc/self/statm` (pages × page size),
//! read before and after the build; the workspace forbids `unsafe`, so there
//! is no counting allocator. Each child runs with glibc's mmap threshold
//! pinned (`MALLOC_MMAP_THRESHOLD_`), so a growing `Vec` or hash table moves
//! by `mremap` and its old buffer is unmapped instead of lingering in the heap
//! as resident but free memory. `--default-malloc` runs without the pin.
//!
//! Run: `cargo bench -p fog-core --bench registry_memory`.
//! A child: `registry_memory --child <N> <vec|table|table+liveness> <page size>`.

use fog_core::domain::{LABEL_ONION, Location, Millis, NodeId, NodeType, Resources};
use fog_core::liveness::{LivenessConfig, LivenessDetector};
use fog_core::registry::{HeartbeatState, Liveness, NodeEntry, NodeRegistration, NodeTable};
use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;

const SIZES: [usize; 2] = [100_000, 10_000];
const KINDS: [&str; 3] = ["vec", "table", "table+liveness"];
/// Children per (N, kind); the median is reported.
const RUNS: usize = 3;
const NOW: Millis = 1_700_000_000_000;

mod common;
use common::{REGIONS, Rng};

/// Region and zone names shared by every node, as the engine shares them.
struct Names {
    regions: Vec<Arc<str>>,
    zones: Vec<Arc<str>>,
}

impl Names {
    fn new() -> Names {
        Names {
            regions: REGIONS.iter().map(|(r, _, _)| Arc::from(*r)).collect(),
            zones: ["a", "b", "c"].iter().map(|z| Arc::from(*z)).collect(),
        }
    }
}

/// What a healthy idle node carries after its session opened and a few
/// heartbeats: registration facts, 3–5 labels, live state, no attempts.
fn idle_node(i: usize, rng: &mut Rng, names: &Names) -> NodeEntry {
    let r = rng.below(REGIONS.len() as u64) as usize;
    let (_, lat, lon) = REGIONS[r];
    let node_type = NodeType::ALL[rng.below(NodeType::ALL.len() as u64) as usize];
    let zone = names.zones[rng.below(3) as usize].clone();
    let mut labels = fog_core::domain::Labels::new();
    labels.insert("zone".into(), zone.to_string());
    labels.insert("arch".into(), ["arm64", "amd64"][rng.below(2) as usize].into());
    labels.insert("os".into(), "linux".into());
    if rng.below(2) == 0 {
        labels.insert("site".into(), format!("site-{:03}", rng.below(500)));
    }
    if rng.below(3) == 0 {
        labels.insert(LABEL_ONION.into(), "true".into());
    }
    let battery = node_type == NodeType::EdgeDevice;
    let mut e = NodeEntry::new(
        NodeRegistration {
            id: NodeId::from(format!("node-{i:06}")),
            name: format!("node-{i:06}"),
            node_type,
            capacity: Resources {
                cpu_millis: [2_000, 4_000, 8_000][rng.below(3) as usize],
                memory_mb: [2_048, 8_192, 16_384][rng.below(3) as usize],
                storage_mb: 64_000,
                gpus: u32::from(rng.below(50) == 0),
            },
            location: Location {
                region: names.regions[r].clone(),
                zone,
                coordinates: Some((lat + rng.unit() * 6.0 - 3.0, lon + rng.unit() * 6.0 - 3.0)),
            },
            labels,
            agent_version: "0.1.0".into(),
            supports_onion_routing: rng.below(3) == 0,
        },
        NOW - 3_600_000,
    );
    // About a third of the agents report measured RTTs to two regions.
    let region_rtt_ms = if rng.below(3) == 0 {
        let other = (r + 1 + rng.below(5) as usize) % REGIONS.len();
        let mut v = vec![
            (names.regions[r].clone(), 2.0 + rng.unit() as f32 * 8.0),
            (names.regions[other].clone(), 20.0 + rng.unit() as f32 * 150.0),
        ];
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    } else {
        Vec::new()
    };
    e.live = HeartbeatState {
        cpu_usage: rng.unit() * 0.1,
        memory_usage: 0.1 + rng.unit() * 0.2,
        load_average: rng.unit() * 0.3,
        battery_percent: battery.then(|| 40 + rng.below(60) as u8),
        charging: battery && rng.below(2) == 0,
        temperature_c: Some(35.0 + rng.unit() * 5.0),
        power_mode: fog_core::domain::PowerMode::Performance,
        region_rtt_ms,
        state_unwritable: false,
    };
    e.set_liveness(Liveness::Healthy, false, NOW - 3_000_000);
    e.session_rtt_ms = 5.0 + rng.unit() * 60.0;
    e.last_heartbeat = NOW;
    e.completed_tasks = rng.below(1_000);
    e.failed_tasks = rng.below(20);
    e
}

/// Resident bytes of this process.
fn rss(page: u64) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux only)");
    let resident: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("statm: resident pages");
    resident * page
}

/// Builds `n` nodes in layout `kind`, prints the resident bytes it added.
fn child(n: usize, kind: &str, page: u64) {
    let names = Names::new();
    let mut rng = Rng(42);
    // Warm up the allocator and the formatting paths so their one-off costs
    // land before the first reading.
    black_box(idle_node(0, &mut Rng(1), &names));
    let before = rss(page);
    match kind {
        "vec" => {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                v.push(idle_node(i, &mut rng, &names));
            }
            let after = rss(page);
            black_box(&v);
            println!("{}", after.saturating_sub(before));
        }
        "table" | "table+liveness" => {
            let mut t = NodeTable::new();
            let mut d = (kind == "table+liveness").then(|| LivenessDetector::new(LivenessConfig::default()));
            for i in 0..n {
                let e = idle_node(i, &mut rng, &names);
                if let Some(d) = &mut d {
                    d.session_opened(e.id.clone(), NOW - 60_000);
                    d.heartbeat(&e.id, NOW - (i as Millis % 1_000));
                }
                t.insert(e);
            }
            let after = rss(page);
            assert_eq!(t.len(), n);
            black_box((&t, &d));
            println!("{}", after.saturating_sub(before));
        }
        other => panic!("unknown kind {other}"),
    }
}

fn page_size() -> (u64, &'static str) {
    let out = Command::new("getconf").arg("PAGESIZE").output().ok();
    match out.and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()) {
        Some(p) => (p, "getconf PAGESIZE"),
        None => (4096, "assumed; getconf failed"),
    }
}

fn measure(n: usize, kind: &str, page: u64, pin: bool) -> u64 {
    let exe = std::env::current_exe().expect("current_exe");
    let mut samples: Vec<u64> = (0..RUNS)
        .map(|_| {
            let mut cmd = Command::new(&exe);
            cmd.args(["--child", &n.to_string(), kind, &page.to_string()]);
            if pin {
                cmd.env("MALLOC_MMAP_THRESHOLD_", "131072");
            } else {
                cmd.env_remove("MALLOC_MMAP_THRESHOLD_");
            }
            let out = cmd.output().expect("spawn child");
            assert!(out.status.success(), "child {n} {kind} failed: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().parse().expect("child prints a byte count")
        })
        .collect();
    samples.sort_unstable();
    samples[RUNS / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let n = args[at + 1].parse().expect("N");
        let page = args[at + 3].parse().expect("page size");
        child(n, &args[at + 2], page);
        return;
    }
    let pin = !args.iter().any(|a| a == "--default-malloc");
    let (page, how) = page_size();
    println!("registry memory per idle node (RSS delta, median of {RUNS} child processes)");
    println!("page size {page} B ({how}); glibc mmap threshold {}", if pin { "pinned at 128 KiB" } else { "default" });
    println!("size_of::<NodeEntry>() = {} B", std::mem::size_of::<NodeEntry>());
    println!("{:>8}  {:<15} {:>12} {:>10} {:>12}", "nodes", "layout", "bytes", "B/node", "vs vec");
    for n in SIZES {
        let per: Vec<(&str, f64)> = KINDS.iter().map(|k| (*k, measure(n, k, page, pin) as f64 / n as f64)).collect();
        let base = per[0].1;
        for (kind, b) in &per {
            println!("{n:>8}  {kind:<15} {:>12.0} {b:>10.0} {:>11.2}x", b * n as f64, b / base);
        }
        println!(
            "{n:>8}  index overhead (table - vec) {:.0} B/node; liveness detector {:.0} B/node",
            per[1].1 - base,
            per[2].1 - per[1].1
        );
    }
}
