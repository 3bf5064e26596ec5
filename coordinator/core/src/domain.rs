//! Domain vocabulary shared by every part of the core: ids, resources, the
//! enums of the brief (node types, privacy levels, SLA tiers, strategies, power
//! modes), locations, labels and their validation rules.
//!
//! These are plain data types. They are converted from and to the `fog.v1`
//! protobuf types at the API boundary (in `fog-coordinator::api`), never here:
//! the core does not know the wire format.

use std::sync::Arc;

/// Milliseconds since the Unix epoch. The core never reads a clock; callers pass `now`.
pub type Millis = u64;

/// A node id: 1 to 63 characters of `[a-z0-9-]`, shared cheaply between indexes.
pub type NodeId = Arc<str>;

/// A map keyed by node id, with a fast seeded hasher (foldhash): the engine
/// looks a node up several times per heartbeat, and SipHash was a visible
/// share of that. Ids come from certificates (or, in insecure dev mode, from
/// hellos) and the seed is random per process.
pub type IdMap<V> = std::collections::HashMap<NodeId, V, foldhash::fast::RandomState>;

/// A task id (coordinator-assigned, e.g. `t-0192...`).
pub type TaskId = Arc<str>;

/// An attempt number: the fencing token of one run of a task. Starts at 1 per task.
pub type AttemptNo = u64;

/// Reserved label prefix: labels under it are set by admins only.
pub const RESERVED_LABEL_PREFIX: &str = "fog.io/";
/// Admin label: the node can route onion traffic (required from PRIVATE up).
pub const LABEL_ONION: &str = "fog.io/onion-routing";
/// Admin label: the node is owned by the operator.
pub const LABEL_OPERATOR_OWNED: &str = "fog.io/operator-owned";
/// Admin label: the node's integrity was attested.
pub const LABEL_ATTESTED: &str = "fog.io/attested";
/// Admin label: the region the node is in, trusted for data residency.
pub const LABEL_REGION: &str = "fog.io/region";

/// Compute resources: what a node offers or a task reserves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    /// Thousandths of a core.
    pub cpu_millis: u32,
    /// MiB of memory.
    pub memory_mb: u64,
    /// MiB of storage.
    pub storage_mb: u64,
    /// GPUs.
    pub gpus: u32,
}

impl Resources {
    /// Zero of everything.
    pub const ZERO: Resources = Resources { cpu_millis: 0, memory_mb: 0, storage_mb: 0, gpus: 0 };

    /// Component-wise saturating sum.
    pub fn saturating_add(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(o.cpu_millis),
            memory_mb: self.memory_mb.saturating_add(o.memory_mb),
            storage_mb: self.storage_mb.saturating_add(o.storage_mb),
            gpus: self.gpus.saturating_add(o.gpus),
        }
    }

    /// Component-wise saturating difference.
    pub fn saturating_sub(self, o: Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(o.cpu_millis),
            memory_mb: self.memory_mb.saturating_sub(o.memory_mb),
            storage_mb: self.storage_mb.saturating_sub(o.storage_mb),
            gpus: self.gpus.saturating_sub(o.gpus),
        }
    }

    /// True if `want` fits in `self` in every dimension.
    pub fn covers(&self, want: &Resources) -> bool {
        self.cpu_millis >= want.cpu_millis
            && self.memory_mb >= want.memory_mb
            && self.storage_mb >= want.storage_mb
            && self.gpus >= want.gpus
    }

    /// The largest share `used / self` over the dimensions `self` has (0 to 1).
    pub fn max_share(&self, used: &Resources) -> f64 {
        fn share(used: f64, cap: f64) -> f64 {
            if cap <= 0.0 { 0.0 } else { (used / cap).clamp(0.0, 1.0) }
        }
        share(used.cpu_millis as f64, self.cpu_millis as f64)
            .max(share(used.memory_mb as f64, self.memory_mb as f64))
            .max(share(used.storage_mb as f64, self.storage_mb as f64))
            .max(share(used.gpus as f64, self.gpus as f64))
    }
}

/// Kind of device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeType {
    /// A phone or IoT device.
    EdgeDevice,
    /// A relay.
    RelayNode,
    /// A mix network node.
    Mixnode,
    /// A small server.
    #[default]
    ComputeNode,
    /// A site gateway.
    Gateway,
}

impl NodeType {
    /// Every node type, in declaration order.
    pub const ALL: [NodeType; 5] =
        [NodeType::EdgeDevice, NodeType::RelayNode, NodeType::Mixnode, NodeType::ComputeNode, NodeType::Gateway];

    /// The snake_case name the brief uses (`edge_device`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::EdgeDevice => "edge_device",
            NodeType::RelayNode => "relay_node",
            NodeType::Mixnode => "mixnode",
            NodeType::ComputeNode => "compute_node",
            NodeType::Gateway => "gateway",
        }
    }
}

/// Privacy level of a task; each includes the requirements of the ones before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrivacyLevel {
    /// Any node.
    #[default]
    Public,
    /// Onion-capable nodes (admin label).
    Private,
    /// Onion-capable and (operator-owned or attested), in an allowed region.
    Confidential,
    /// Onion-capable, operator-owned and attested, allowed region, no co-tenancy.
    Secret,
}

/// SLA tier of a task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlaTier {
    /// Lowest priority.
    #[default]
    Bronze,
    /// Primary + canary.
    Silver,
    /// Three replicas.
    Gold,
    /// Highest priority.
    Platinum,
}

impl SlaTier {
    /// Tiers from the highest priority to the lowest: the order queues are served in.
    pub const BY_PRIORITY: [SlaTier; 4] = [SlaTier::Platinum, SlaTier::Gold, SlaTier::Silver, SlaTier::Bronze];

    /// Index 0..4, bronze = 0.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Default replicas run at once on distinct nodes.
    pub fn default_replicas(self) -> u32 {
        match self {
            SlaTier::Bronze => 1,
            SlaTier::Silver => 2,
            SlaTier::Gold | SlaTier::Platinum => 3,
        }
    }

    /// Default retries after a failed round of attempts.
    pub fn default_retries(self) -> u32 {
        match self {
            SlaTier::Bronze => 1,
            SlaTier::Silver => 2,
            SlaTier::Gold => 3,
            SlaTier::Platinum => 5,
        }
    }

    /// Target time from submission to placement, in ms (the brief's p95 targets).
    pub fn placement_target_ms(self) -> u64 {
        match self {
            SlaTier::Bronze => 2_500,
            SlaTier::Silver => 1_200,
            SlaTier::Gold => 400,
            SlaTier::Platinum => 150,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaTier::Bronze => "bronze",
            SlaTier::Silver => "silver",
            SlaTier::Gold => "gold",
            SlaTier::Platinum => "platinum",
        }
    }
}

/// Routing strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Fair rotation.
    RoundRobin,
    /// Most headroom.
    #[default]
    LeastLoaded,
    /// Same key → same node; consistent-hash fallback; soft label preferences.
    Affinity,
    /// Lowest estimated latency to the origin.
    Proximity,
    /// Most reputable node the privacy level allows.
    PrivacyAware,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 5] =
        [Strategy::RoundRobin, Strategy::LeastLoaded, Strategy::Affinity, Strategy::Proximity, Strategy::PrivacyAware];

    /// kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastLoaded => "least-loaded",
            Strategy::Affinity => "affinity",
            Strategy::Proximity => "proximity",
            Strategy::PrivacyAware => "privacy-aware",
        }
    }
}

/// Power mode, computed by the agent from the harvesting rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PowerMode {
    /// No constraint.
    #[default]
    Performance,
    /// Reduced.
    Balanced,
    /// No new work.
    PowerSave,
    /// No new work.
    Critical,
}

impl PowerMode {
    /// Whether a node in this mode may be given new work.
    pub fn accepts_work(self) -> bool {
        matches!(self, PowerMode::Performance | PowerMode::Balanced)
    }

    /// The brief's harvesting rules: the mode for a battery level (None = no
    /// battery), charging state and CPU temperature (None = unknown).
    pub fn from_sensors(battery_percent: Option<u8>, charging: bool, temp_c: Option<f64>) -> PowerMode {
        let t = temp_c.unwrap_or(f64::MIN);
        let on_battery = |limit: u8| battery_percent.is_some_and(|b| b <= limit && !charging);
        if battery_percent.is_some_and(|b| b <= 10) || t >= 65.0 {
            PowerMode::Critical
        } else if t >= 55.0 || on_battery(20) {
            PowerMode::PowerSave
        } else if t >= 45.0 || on_battery(40) {
            PowerMode::Balanced
        } else {
            PowerMode::Performance
        }
    }
}

/// Where something is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Location {
    /// Region name; empty if unknown.
    pub region: Arc<str>,
    /// Zone; empty if unknown.
    pub zone: Arc<str>,
    /// Latitude/longitude in degrees, if known.
    pub coordinates: Option<(f64, f64)>,
}

/// Labels: a small map kept as a vector sorted by key. Nodes carry a handful
/// of labels, and at 100,000 nodes a `BTreeMap`'s 500-byte leaf per node is a
/// quarter of the registry's memory budget; a sorted vector with binary search
/// costs a few dozen bytes per label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// No labels.
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of a key.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.0[i].1)
    }

    /// Sets a key, returning the old value.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.find(key).ok().map(|i| self.0.remove(i).1)
    }

    /// Pairs in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every label.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl Extend<(String, String)> for Labels {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
        self.0.shrink_to_fit();
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Labels {
        let mut l = Labels::new();
        l.extend(iter);
        l
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(pairs: [(String, String); N]) -> Labels {
        pairs.into_iter().collect()
    }
}

/// Why a label, id or name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Too long.
    #[error("must be at most {max} characters, got {got}")]
    TooLong {
        /// The limit.
        max: usize,
        /// The length given.
        got: usize,
    },
    /// A character outside the allowed set.
    #[error("character {0:?} is not allowed (allowed: {1})")]
    BadChar(char, &'static str),
    /// Under the reserved prefix.
    #[error("keys under `fog.io/` are reserved for admins")]
    Reserved,
}

fn check_chars(s: &str, max: usize, ok: fn(char) -> bool, allowed: &'static str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let n = s.chars().count();
    if n > max {
        return Err(NameError::TooLong { max, got: n });
    }
    match s.chars().find(|c| !ok(*c)) {
        Some(c) => Err(NameError::BadChar(c, allowed)),
        None => Ok(()),
    }
}

/// Node ids and region names: 1 to 63 of `[a-z0-9-]`.
pub fn validate_id(s: &str) -> Result<(), NameError> {
    check_chars(s, 63, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', "a-z 0-9 -")
}

/// Label keys: 1 to 63 of `[A-Za-z0-9._/-]`.
pub fn validate_label_key(s: &str) -> Result<(), NameError> {
    check_chars(s, 63, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'), "A-Z a-z 0-9 . _ - /")
}

/// Label values: 0 to 63 of `[A-Za-z0-9._-]`.
pub fn validate_label_value(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Ok(());
    }
    check_chars(s, 63, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'), "A-Z a-z 0-9 . _ -")
}

/// True for keys only admins may set.
pub fn is_reserved_label(key: &str) -> bool {
    key.starts_with(RESERVED_LABEL_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harvesting_rules_follow_the_brief() {
        use PowerMode::*;
        assert_eq!(PowerMode::from_sensors(None, false, None), Performance);
        assert_eq!(PowerMode::from_sensors(Some(100), false, Some(30.0)), Performance);
        assert_eq!(PowerMode::from_sensors(Some(40), false, None), Balanced);
        assert_eq!(PowerMode::from_sensors(Some(40), true, None), Performance);
        assert_eq!(PowerMode::from_sensors(Some(20), false, None), PowerSave);
        assert_eq!(PowerMode::from_sensors(Some(20), true, None), Performance);
        assert_eq!(PowerMode::from_sensors(Some(10), true, None), Critical);
        assert_eq!(PowerMode::from_sensors(None, false, Some(45.0)), Balanced);
        assert_eq!(PowerMode::from_sensors(None, false, Some(55.0)), PowerSave);
        assert_eq!(PowerMode::from_sensors(None, false, Some(65.0)), Critical);
        assert!(!PowerSave.accepts_work() && !Critical.accepts_work());
        assert!(Balanced.accepts_work());
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_id("node-1").is_ok());
        assert_eq!(validate_id(""), Err(NameError::Empty));
        assert!(matches!(validate_id("Node"), Err(NameError::BadChar('N', _))));
        assert!(matches!(validate_id(&"a".repeat(64)), Err(NameError::TooLong { .. })));
        assert!(validate_label_key("fog.io/attested").is_ok());
        assert!(validate_label_value("").is_ok());
        assert!(validate_label_value("a b").is_err());
        assert!(is_reserved_label("fog.io/region"));
        assert!(!is_reserved_label("team"));
    }

    #[test]
    fn labels_behave_like_a_sorted_map() {
        let mut l: Labels = [("b".to_string(), "2".to_string()), ("a".to_string(), "1".to_string())].into();
        assert_eq!(l.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(l.insert("a".into(), "9".into()), Some("1".into()));
        assert_eq!(l.get("a").map(String::as_str), Some("9"));
        assert_eq!(l.remove("b"), Some("2".into()));
        assert_eq!(l.get("b"), None);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn resources_arithmetic() {
        let cap = Resources { cpu_millis: 4000, memory_mb: 8192, storage_mb: 0, gpus: 0 };
        let used = Resources { cpu_millis: 1000, memory_mb: 6144, storage_mb: 0, gpus: 0 };
        assert!((cap.max_share(&used) - 0.75).abs() < 1e-9);
        assert!(cap.covers(&used));
        assert_eq!(cap.saturating_sub(used).cpu_millis, 3000);
        assert!(!cap.saturating_sub(used).covers(&Resources { cpu_millis: 0, memory_mb: 4096, ..Resources::ZERO }));
    }
}
