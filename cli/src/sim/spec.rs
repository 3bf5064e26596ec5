//! What a simulated node is: its identity, capacity and place. Pure data, no I/O.

use fog_proto::v1::{Location, NodeType, Resources};

/// Everything a simulated node says about itself in its `Hello`.
#[derive(Clone, Debug, PartialEq)]
pub struct SimNodeSpec {
    /// Node id (1 to 63 characters of `[a-z0-9-]`).
    pub id: String,
    /// Human-friendly name.
    pub name: String,
    /// Kind of device.
    pub node_type: NodeType,
    /// What the node offers.
    pub capacity: Resources,
    /// Where the node is.
    pub location: Location,
    /// Node-reported labels (no reserved `fog.io/` keys).
    pub labels: Vec<(String, String)>,
    /// Whether the node says it can route onion traffic.
    pub supports_onion_routing: bool,
}

/// A region the demo fleet spreads over, with a few sites (zone, latitude, longitude).
struct DemoRegion {
    name: &'static str,
    sites: [(&'static str, f64, f64); 3],
}

const DEMO_REGIONS: [DemoRegion; 5] = [
    DemoRegion {
        name: "us-east",
        sites: [
            ("us-east-a", 40.71, -74.01), // New York
            ("us-east-b", 39.04, -77.49), // Ashburn
            ("us-east-c", 42.36, -71.06), // Boston
        ],
    },
    DemoRegion {
        name: "us-west",
        sites: [
            ("us-west-a", 37.77, -122.42), // San Francisco
            ("us-west-b", 47.61, -122.33), // Seattle
            ("us-west-c", 34.05, -118.24), // Los Angeles
        ],
    },
    DemoRegion {
        name: "eu-west",
        sites: [
            ("eu-west-a", 53.35, -6.26), // Dublin
            ("eu-west-b", 51.51, -0.13), // London
            ("eu-west-c", 48.86, 2.35),  // Paris
        ],
    },
    DemoRegion {
        name: "eu-central",
        sites: [
            ("eu-central-a", 50.11, 8.68),  // Frankfurt
            ("eu-central-b", 52.52, 13.40), // Berlin
            ("eu-central-c", 48.21, 16.37), // Vienna
        ],
    },
    DemoRegion {
        name: "ap-south",
        sites: [
            ("ap-south-a", 19.08, 72.88), // Mumbai
            ("ap-south-b", 12.97, 77.59), // Bangalore
            ("ap-south-c", 13.08, 80.27), // Chennai
        ],
    },
];

const DEMO_TYPES: [NodeType; 5] =
    [NodeType::EdgeDevice, NodeType::RelayNode, NodeType::Mixnode, NodeType::ComputeNode, NodeType::Gateway];

const MEMORY_GIB: [u64; 5] = [2, 4, 8, 12, 16];

/// SplitMix64: a cheap, well-mixed hash so the demo fleet is varied yet the same
/// on every run (tests and load runs can rely on node `i` always looking alike).
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A value in `[-1, 1)` derived from `h`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

impl SimNodeSpec {
    /// The `i`-th node of the demo fleet, with id `sim-{i:05}`.
    pub fn demo(i: usize) -> SimNodeSpec {
        SimNodeSpec::demo_with_prefix("sim", i)
    }

    /// The `i`-th node of the demo fleet, with id `{prefix}-{i:05}`.
    ///
    /// Regions rotate over us-east, us-west, eu-west, eu-central and ap-south
    /// (three real sites each, jittered by up to ±0.2°), node types cycle, and
    /// capacity varies: 2 to 8 cores, 2 to 16 GiB, 32 to 256 GiB of storage, and a
    /// GPU on every fourth compute node.
    pub fn demo_with_prefix(prefix: &str, i: usize) -> SimNodeSpec {
        let h = mix(i as u64);
        let region = &DEMO_REGIONS[i % DEMO_REGIONS.len()];
        let (zone, lat, lon) = region.sites[(i / DEMO_REGIONS.len()) % region.sites.len()];
        let node_type = DEMO_TYPES[(i / 2) % DEMO_TYPES.len()];
        let cores = 2 + (h % 7) as u32; // 2..=8
        let memory_gib = MEMORY_GIB[((h >> 8) % MEMORY_GIB.len() as u64) as usize];
        let storage_gib = 32 * (1 + (h >> 16) % 8); // 32..=256
        let gpus = u32::from(node_type == NodeType::ComputeNode && (i / 10).is_multiple_of(4));
        let id = format!("{prefix}-{i:05}");
        SimNodeSpec {
            name: format!("{} {} #{i}", region.name, short_type(node_type)),
            id,
            node_type,
            capacity: Resources {
                cpu_millis: cores * 1000,
                memory_mb: memory_gib * 1024,
                storage_mb: storage_gib * 1024,
                gpus,
            },
            location: Location {
                region: region.name.to_string(),
                zone: zone.to_string(),
                has_coordinates: true,
                latitude: lat + 0.2 * unit(mix(h)),
                longitude: lon + 0.2 * unit(mix(h ^ 0x5555)),
            },
            labels: vec![("sim.fog/index".to_string(), i.to_string()), ("sim.fog/site".to_string(), zone.to_string())],
            supports_onion_routing: matches!(node_type, NodeType::Mixnode | NodeType::RelayNode),
        }
    }
}

fn short_type(t: NodeType) -> &'static str {
    match t {
        NodeType::EdgeDevice => "edge",
        NodeType::RelayNode => "relay",
        NodeType::Mixnode => "mix",
        NodeType::ComputeNode => "compute",
        NodeType::Gateway => "gateway",
        NodeType::Unspecified => "node",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn demo_is_deterministic() {
        assert_eq!(SimNodeSpec::demo(42), SimNodeSpec::demo(42));
        assert_ne!(SimNodeSpec::demo(42), SimNodeSpec::demo(43));
    }

    #[test]
    fn demo_ids_are_valid_and_unique() {
        let ids: HashSet<String> = (0..2000).map(|i| SimNodeSpec::demo(i).id).collect();
        assert_eq!(ids.len(), 2000);
        for id in &ids {
            assert!(id.len() <= 63);
            assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
        assert_eq!(SimNodeSpec::demo_with_prefix("edge", 7).id, "edge-00007");
    }

    #[test]
    fn demo_fleet_is_varied_and_plausible() {
        let specs: Vec<_> = (0..100).map(SimNodeSpec::demo).collect();
        let regions: HashSet<_> = specs.iter().map(|s| s.location.region.clone()).collect();
        assert_eq!(regions.len(), 5);
        let types: HashSet<_> = specs.iter().map(|s| s.node_type).collect();
        assert_eq!(types.len(), 5);
        let cores: HashSet<_> = specs.iter().map(|s| s.capacity.cpu_millis).collect();
        assert!(cores.len() >= 4, "cores not varied: {cores:?}");
        for s in &specs {
            assert!((2000..=8000).contains(&s.capacity.cpu_millis));
            assert!((2048..=16384).contains(&s.capacity.memory_mb));
            assert!(s.location.has_coordinates);
            assert!((-90.0..=90.0).contains(&s.location.latitude));
            assert!((-180.0..=180.0).contains(&s.location.longitude));
            assert!(s.labels.iter().all(|(k, _)| !k.starts_with("fog.io/")));
        }
        // ap-south nodes are in India, not somewhere random.
        let ap = specs.iter().find(|s| s.location.region == "ap-south").unwrap();
        assert!((8.0..25.0).contains(&ap.location.latitude));
        assert!((68.0..85.0).contains(&ap.location.longitude));
    }
}
