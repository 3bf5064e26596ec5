//! One node's record: identity, facts, admin state, live state and what the
//! coordinator reserved on it. Derived views (status, load, privacy ceiling)
//! are computed here so every consumer derives them the same way.

use crate::domain::{
    AttemptNo, LABEL_ATTESTED, LABEL_ONION, LABEL_OPERATOR_OWNED, LABEL_REGION, Labels, Location, Millis, NodeId,
    NodeType, PowerMode, PrivacyLevel, Resources, TaskId,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Failure-detector state of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// Registered but never seen (or restored after a coordinator restart and
    /// not yet reconnected).
    #[default]
    Unknown,
    /// Heartbeating steadily.
    Healthy,
    /// Session closed or heartbeats missed.
    Suspect,
    /// Suspect for longer than the grace period.
    Offline,
}

/// The status operators see (the brief's active/idle/busy/offline/maintenance,
/// plus suspect).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeStatus {
    /// Healthy with tasks.
    Active,
    /// Healthy without tasks.
    Idle,
    /// Healthy and at or above 90 % load.
    Busy,
    /// Suspect, or not yet seen.
    Suspect,
    /// Offline.
    Offline,
    /// In maintenance (wins over the others).
    Maintenance,
}

/// Load at or above which a healthy node shows as busy.
pub const BUSY_LOAD: f64 = 0.9;

/// What a node says about itself when its session opens.
#[derive(Clone, Debug, Default)]
pub struct NodeRegistration {
    /// Id (validated by the caller).
    pub id: NodeId,
    /// Name.
    pub name: String,
    /// Kind.
    pub node_type: NodeType,
    /// Capacity offered.
    pub capacity: Resources,
    /// Self-reported location.
    pub location: Location,
    /// Self-reported labels (never reserved ones: the caller refuses those).
    pub labels: Labels,
    /// Agent version.
    pub agent_version: String,
    /// Informative onion capability.
    pub supports_onion_routing: bool,
}

/// Live state from one heartbeat.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatState {
    /// CPU usage 0..1.
    pub cpu_usage: f64,
    /// Memory usage 0..1.
    pub memory_usage: f64,
    /// Load average.
    pub load_average: f64,
    /// Battery percent, None without a battery.
    pub battery_percent: Option<u8>,
    /// Charging.
    pub charging: bool,
    /// CPU temperature, if known.
    pub temperature_c: Option<f64>,
    /// Power mode.
    pub power_mode: PowerMode,
    /// Measured RTTs to regions (ms), sorted by region.
    pub region_rtt_ms: Vec<(Arc<str>, f32)>,
    /// The agent cannot write its state directory (disk full, read-only).
    pub state_unwritable: bool,
}

impl HeartbeatState {
    /// Whether the node, as it reports itself, takes new work: a power mode
    /// that allows it, and a state directory it can write.
    pub fn accepts_work(&self) -> bool {
        self.power_mode.accepts_work() && !self.state_unwritable
    }
}

/// One node.
#[derive(Clone, Debug)]
pub struct NodeEntry {
    /// Id.
    pub id: NodeId,
    /// Name.
    pub name: String,
    /// Kind.
    pub node_type: NodeType,
    /// Self-reported location (see [`NodeEntry::region`] for the effective region).
    pub location: Location,
    /// Labels: self-reported ones merged with admin-set ones.
    pub labels: Labels,
    /// Keys of the labels an operator set (UpdateNodeLabels, or the join token),
    /// sorted: the agent's own labels never replace or remove them.
    pub operator_label_keys: Vec<String>,
    /// Capacity.
    pub capacity: Resources,
    /// Reserved by the attempts placed here.
    pub allocated: Resources,
    /// Attempts placed here, with what each reserved.
    pub attempts: BTreeSet<(TaskId, AttemptNo)>,
    /// Attempts placed here that forbid co-tenancy (SECRET).
    pub exclusive_attempts: u32,
    /// Live state from the last heartbeat.
    pub live: HeartbeatState,
    /// Failure-detector state.
    pub liveness: Liveness,
    /// Flapping (set by the liveness detector).
    pub flapping: bool,
    /// Cordoned by an operator.
    pub cordoned: bool,
    /// Draining.
    pub draining: bool,
    /// In maintenance.
    pub maintenance: bool,
    /// Lifetime successes.
    pub completed_tasks: u64,
    /// Lifetime failures.
    pub failed_tasks: u64,
    /// Informative onion capability reported by the node.
    pub supports_onion_routing: bool,
    /// Session RTT measured by the coordinator, ms (0 = unknown).
    pub session_rtt_ms: f64,
    /// Last heartbeat time (0 = never).
    pub last_heartbeat: Millis,
    /// Registration time.
    pub registered_at: Millis,
    /// Milliseconds spent healthy, up to `healthy_since` (uptime accounting).
    pub healthy_ms: u64,
    /// When the current healthy stretch began, if healthy.
    pub healthy_since: Option<Millis>,
    /// Agent version.
    pub agent_version: String,
}

impl NodeEntry {
    /// Sets labels on an operator's behalf: they stay until an operator
    /// removes them, whatever the agent reports.
    pub fn set_operator_labels(&mut self, set: impl IntoIterator<Item = (String, String)>) {
        for (k, v) in set {
            if let Err(at) = self.operator_label_keys.binary_search(&k) {
                self.operator_label_keys.insert(at, k.clone());
            }
            self.labels.insert(k, v);
        }
    }

    /// Removes a label on an operator's behalf (an agent that reports it
    /// sets it again at its next hello).
    pub fn remove_operator_label(&mut self, key: &str) {
        self.operator_label_keys.retain(|k| k != key);
        self.labels.remove(key);
    }

    /// A new entry from a registration.
    pub fn new(reg: NodeRegistration, now: Millis) -> NodeEntry {
        NodeEntry {
            id: reg.id,
            name: reg.name,
            node_type: reg.node_type,
            location: reg.location,
            labels: reg.labels,
            operator_label_keys: Vec::new(),
            capacity: reg.capacity,
            allocated: Resources::ZERO,
            attempts: BTreeSet::new(),
            exclusive_attempts: 0,
            live: HeartbeatState::default(),
            liveness: Liveness::Unknown,
            flapping: false,
            cordoned: false,
            draining: false,
            maintenance: false,
            completed_tasks: 0,
            failed_tasks: 0,
            supports_onion_routing: reg.supports_onion_routing,
            session_rtt_ms: 0.0,
            last_heartbeat: 0,
            registered_at: now,
            healthy_ms: 0,
            healthy_since: None,
            agent_version: reg.agent_version,
        }
    }

    /// Free resources: capacity minus reservations.
    pub fn free(&self) -> Resources {
        self.capacity.saturating_sub(self.allocated)
    }

    /// Load 0..1: the highest of reported cpu and memory usage and reserved
    /// share, in whole percent. Quantised so that heartbeat noise does not
    /// decide placement: nodes within the same percent count as equally loaded
    /// and the least-loaded strategy then prefers the one running fewer tasks.
    pub fn load(&self) -> f64 {
        self.load_with(self.live.cpu_usage, self.live.memory_usage)
    }

    /// The load this node would have with these usage figures.
    pub fn load_with(&self, cpu_usage: f64, memory_usage: f64) -> f64 {
        let raw = cpu_usage.max(memory_usage).max(self.capacity.max_share(&self.allocated));
        (raw.clamp(0.0, 1.0) * 100.0).round() / 100.0
    }

    /// Number of attempts placed here.
    pub fn active_tasks(&self) -> u32 {
        self.attempts.len() as u32
    }

    /// Reputation 0..1: (completed + 1) / (completed + failed + 2).
    pub fn reputation(&self) -> f64 {
        (self.completed_tasks as f64 + 1.0) / ((self.completed_tasks + self.failed_tasks) as f64 + 2.0)
    }

    /// Percent of time since registration spent healthy.
    pub fn uptime_percent(&self, now: Millis) -> f64 {
        let total = now.saturating_sub(self.registered_at);
        if total == 0 {
            return if self.liveness == Liveness::Healthy { 100.0 } else { 0.0 };
        }
        let healthy = self.healthy_ms + self.healthy_since.map_or(0, |s| now.saturating_sub(s));
        (healthy as f64 * 100.0 / total as f64).min(100.0)
    }

    /// The effective region: the admin label `fog.io/region` if set, else the reported one.
    pub fn region(&self) -> &str {
        self.labels.get(LABEL_REGION).map(String::as_str).unwrap_or(&self.location.region)
    }

    /// The region trusted for data residency: only the admin label counts.
    pub fn residency_region(&self) -> Option<&str> {
        self.labels.get(LABEL_REGION).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        self.labels.get(key).is_some_and(|v| v == "true")
    }

    /// The strictest privacy level this node may host, from admin labels only.
    pub fn privacy_ceiling(&self) -> PrivacyLevel {
        let onion = self.flag(LABEL_ONION);
        let owned = self.flag(LABEL_OPERATOR_OWNED);
        let attested = self.flag(LABEL_ATTESTED);
        match (onion, owned, attested) {
            (false, _, _) => PrivacyLevel::Public,
            (true, true, true) => PrivacyLevel::Secret,
            (true, true, false) | (true, false, true) => PrivacyLevel::Confidential,
            (true, false, false) => PrivacyLevel::Private,
        }
    }

    /// Healthy, not cordoned, draining or in maintenance, and in a power mode
    /// that accepts work with a writable state directory. (Flapping is
    /// handled by the scheduler's second pass.)
    pub fn schedulable(&self) -> bool {
        self.liveness == Liveness::Healthy
            && !self.cordoned
            && !self.draining
            && !self.maintenance
            && self.live.accepts_work()
    }

    /// The operator-visible status.
    pub fn status(&self) -> NodeStatus {
        if self.maintenance {
            return NodeStatus::Maintenance;
        }
        match self.liveness {
            Liveness::Offline => NodeStatus::Offline,
            Liveness::Suspect | Liveness::Unknown => NodeStatus::Suspect,
            Liveness::Healthy if self.load() >= BUSY_LOAD => NodeStatus::Busy,
            Liveness::Healthy if self.attempts.is_empty() => NodeStatus::Idle,
            Liveness::Healthy => NodeStatus::Active,
        }
    }

    /// Apply a liveness change, keeping the uptime accounting right.
    pub fn set_liveness(&mut self, liveness: Liveness, flapping: bool, now: Millis) {
        if self.liveness == Liveness::Healthy && liveness != Liveness::Healthy {
            if let Some(s) = self.healthy_since.take() {
                self.healthy_ms += now.saturating_sub(s);
            }
        } else if self.liveness != Liveness::Healthy && liveness == Liveness::Healthy {
            self.healthy_since = Some(now);
        }
        self.liveness = liveness;
        self.flapping = flapping;
    }
}
