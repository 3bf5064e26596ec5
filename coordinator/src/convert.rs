//! Conversions between the core's types and the `fog.v1` wire types, in both
//! directions, for values that are already valid (validation of requests is
//! `api::validate`'s job). Also the store records, which are `fog.v1` messages.

use fog_core::domain::{Labels, Location, Millis, NodeType, PowerMode, PrivacyLevel, Resources, SlaTier, Strategy};
use fog_core::registry::{Liveness, NodeEntry, NodeStatus};
use fog_core::tasks::{Attempt, AttemptState, Task, TaskOutput, TaskParams, TaskState};
use fog_core::topology::{Aggregates, RegionSummary, TopoNode};
use fog_proto::v1 as pb;
use std::sync::Arc;

/// The payload the core carries for each task: the submitted spec.
pub type Spec = Arc<pb::TaskSpec>;

/// Milliseconds since the epoch as a protobuf timestamp.
pub fn ts(ms: Millis) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 }
}

/// A protobuf timestamp as milliseconds since the epoch (negative → 0).
pub fn ms(t: &prost_types::Timestamp) -> Millis {
    (t.seconds.max(0) as u64) * 1000 + (t.nanos.max(0) as u64) / 1_000_000
}

fn opt_ts(ms: Option<Millis>) -> Option<prost_types::Timestamp> {
    ms.map(ts)
}

/// Resources to the wire.
pub fn resources_pb(r: Resources) -> pb::Resources {
    pb::Resources { cpu_millis: r.cpu_millis, memory_mb: r.memory_mb, storage_mb: r.storage_mb, gpus: r.gpus }
}

/// Resources from the wire.
pub fn resources(r: Option<&pb::Resources>) -> Resources {
    r.map(|r| Resources { cpu_millis: r.cpu_millis, memory_mb: r.memory_mb, storage_mb: r.storage_mb, gpus: r.gpus })
        .unwrap_or_default()
}

/// Location from the wire.
pub fn location(l: Option<&pb::Location>) -> Location {
    let Some(l) = l else { return Location::default() };
    Location {
        region: Arc::from(l.region.as_str()),
        zone: Arc::from(l.zone.as_str()),
        coordinates: l.has_coordinates.then_some((l.latitude, l.longitude)),
    }
}

/// Location to the wire.
pub fn location_pb(l: &Location) -> pb::Location {
    pb::Location {
        region: l.region.to_string(),
        zone: l.zone.to_string(),
        has_coordinates: l.coordinates.is_some(),
        latitude: l.coordinates.map_or(0.0, |c| c.0),
        longitude: l.coordinates.map_or(0.0, |c| c.1),
    }
}

/// Labels to the wire (sorted by key).
pub fn labels_pb(l: &Labels) -> Vec<pb::Label> {
    l.iter().map(|(k, v)| pb::Label { key: k.clone(), value: v.clone() }).collect()
}

/// Node type from the wire (unspecified → compute node).
pub fn node_type(t: i32) -> NodeType {
    match pb::NodeType::try_from(t).unwrap_or_default() {
        pb::NodeType::EdgeDevice => NodeType::EdgeDevice,
        pb::NodeType::RelayNode => NodeType::RelayNode,
        pb::NodeType::Mixnode => NodeType::Mixnode,
        pb::NodeType::Gateway => NodeType::Gateway,
        pb::NodeType::ComputeNode | pb::NodeType::Unspecified => NodeType::ComputeNode,
    }
}

/// Node type to the wire.
pub fn node_type_pb(t: NodeType) -> pb::NodeType {
    match t {
        NodeType::EdgeDevice => pb::NodeType::EdgeDevice,
        NodeType::RelayNode => pb::NodeType::RelayNode,
        NodeType::Mixnode => pb::NodeType::Mixnode,
        NodeType::ComputeNode => pb::NodeType::ComputeNode,
        NodeType::Gateway => pb::NodeType::Gateway,
    }
}

/// Power mode from the wire.
pub fn power_mode(p: i32) -> PowerMode {
    match pb::PowerMode::try_from(p).unwrap_or_default() {
        pb::PowerMode::Balanced => PowerMode::Balanced,
        pb::PowerMode::PowerSave => PowerMode::PowerSave,
        pb::PowerMode::Critical => PowerMode::Critical,
        pb::PowerMode::Performance | pb::PowerMode::Unspecified => PowerMode::Performance,
    }
}

fn power_mode_pb(p: PowerMode) -> pb::PowerMode {
    match p {
        PowerMode::Performance => pb::PowerMode::Performance,
        PowerMode::Balanced => pb::PowerMode::Balanced,
        PowerMode::PowerSave => pb::PowerMode::PowerSave,
        PowerMode::Critical => pb::PowerMode::Critical,
    }
}

/// Tier from the wire (unspecified → bronze).
pub fn tier(t: i32) -> SlaTier {
    match pb::SlaTier::try_from(t).unwrap_or_default() {
        pb::SlaTier::Silver => SlaTier::Silver,
        pb::SlaTier::Gold => SlaTier::Gold,
        pb::SlaTier::Platinum => SlaTier::Platinum,
        pb::SlaTier::Bronze | pb::SlaTier::Unspecified => SlaTier::Bronze,
    }
}

/// Tier to the wire.
pub fn tier_pb(t: SlaTier) -> pb::SlaTier {
    match t {
        SlaTier::Bronze => pb::SlaTier::Bronze,
        SlaTier::Silver => pb::SlaTier::Silver,
        SlaTier::Gold => pb::SlaTier::Gold,
        SlaTier::Platinum => pb::SlaTier::Platinum,
    }
}

/// Privacy level from the wire (unspecified → public).
pub fn privacy(p: i32) -> PrivacyLevel {
    match pb::PrivacyLevel::try_from(p).unwrap_or_default() {
        pb::PrivacyLevel::Private => PrivacyLevel::Private,
        pb::PrivacyLevel::Confidential => PrivacyLevel::Confidential,
        pb::PrivacyLevel::Secret => PrivacyLevel::Secret,
        pb::PrivacyLevel::Public | pb::PrivacyLevel::Unspecified => PrivacyLevel::Public,
    }
}

/// Strategy from the wire (unspecified → least-loaded).
pub fn strategy(s: i32) -> Strategy {
    match pb::RoutingStrategy::try_from(s).unwrap_or_default() {
        pb::RoutingStrategy::RoundRobin => Strategy::RoundRobin,
        pb::RoutingStrategy::Affinity => Strategy::Affinity,
        pb::RoutingStrategy::Proximity => Strategy::Proximity,
        pb::RoutingStrategy::PrivacyAware => Strategy::PrivacyAware,
        pb::RoutingStrategy::LeastLoaded | pb::RoutingStrategy::Unspecified => Strategy::LeastLoaded,
    }
}

/// Strategy to the wire.
pub fn strategy_pb(s: Strategy) -> pb::RoutingStrategy {
    match s {
        Strategy::RoundRobin => pb::RoutingStrategy::RoundRobin,
        Strategy::LeastLoaded => pb::RoutingStrategy::LeastLoaded,
        Strategy::Affinity => pb::RoutingStrategy::Affinity,
        Strategy::Proximity => pb::RoutingStrategy::Proximity,
        Strategy::PrivacyAware => pb::RoutingStrategy::PrivacyAware,
    }
}

/// Default timeout of one attempt when the spec leaves it 0.
pub const DEFAULT_TIMEOUT_MS: u64 = 300_000;

/// The scheduling parameters of a (valid) spec, with tier defaults applied.
pub fn task_params(spec: &pb::TaskSpec, request_id: Option<String>) -> TaskParams {
    let tier = tier(spec.sla_tier);
    let needs = fog_core::scheduling::TaskNeeds {
        resources: resources(spec.resources.as_ref()),
        privacy: privacy(spec.privacy_level),
        strategy: strategy(spec.strategy),
        affinity_key: (!spec.affinity_key.is_empty()).then(|| spec.affinity_key.clone()),
        preferred_labels: spec.preferred_labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
        required_labels: spec.required_labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
        origin: spec.origin.as_ref().map(|o| location(Some(o))),
        allowed_regions: spec.allowed_regions.clone(),
    };
    TaskParams {
        needs,
        tier,
        replicas: if spec.replicas == 0 { tier.default_replicas() } else { spec.replicas },
        max_retries: spec.max_retries.unwrap_or_else(|| tier.default_retries()),
        timeout_ms: if spec.timeout_ms == 0 { DEFAULT_TIMEOUT_MS } else { spec.timeout_ms },
        request_id,
    }
}

/// The spec as stored: every default the coordinator applied written out, so
/// readers see the tier, strategy, privacy, replicas, retries and timeout the
/// task really runs with, and a restart does not depend on today's defaults.
pub fn with_effective_defaults(mut spec: pb::TaskSpec, p: &TaskParams) -> pb::TaskSpec {
    spec.sla_tier = tier_pb(p.tier) as i32;
    spec.strategy = strategy_pb(p.needs.strategy) as i32;
    spec.privacy_level = privacy_pb(p.needs.privacy) as i32;
    spec.replicas = p.replicas;
    spec.max_retries = Some(p.max_retries);
    spec.timeout_ms = p.timeout_ms;
    spec
}

/// Privacy level to the wire.
pub fn privacy_pb(p: PrivacyLevel) -> pb::PrivacyLevel {
    match p {
        PrivacyLevel::Public => pb::PrivacyLevel::Public,
        PrivacyLevel::Private => pb::PrivacyLevel::Private,
        PrivacyLevel::Confidential => pb::PrivacyLevel::Confidential,
        PrivacyLevel::Secret => pb::PrivacyLevel::Secret,
    }
}

fn task_state_pb(s: TaskState) -> pb::TaskState {
    match s {
        TaskState::Queued => pb::TaskState::Queued,
        TaskState::Assigned => pb::TaskState::Assigned,
        TaskState::Running => pb::TaskState::Running,
        TaskState::Succeeded => pb::TaskState::Succeeded,
        TaskState::Failed => pb::TaskState::Failed,
        TaskState::Cancelled => pb::TaskState::Cancelled,
    }
}

/// Task state from the wire (for restore and filters).
pub fn task_state(s: i32) -> Option<TaskState> {
    Some(match pb::TaskState::try_from(s).ok()? {
        pb::TaskState::Queued => TaskState::Queued,
        pb::TaskState::Assigned => TaskState::Assigned,
        pb::TaskState::Running => TaskState::Running,
        pb::TaskState::Succeeded => TaskState::Succeeded,
        pb::TaskState::Failed => TaskState::Failed,
        pb::TaskState::Cancelled => TaskState::Cancelled,
        pb::TaskState::Unspecified => return None,
    })
}

fn attempt_state_pb(s: AttemptState) -> pb::AttemptState {
    match s {
        AttemptState::Assigned => pb::AttemptState::Assigned,
        AttemptState::Running => pb::AttemptState::Running,
        AttemptState::Succeeded => pb::AttemptState::Succeeded,
        AttemptState::Failed | AttemptState::Refused => pb::AttemptState::Failed,
        AttemptState::TimedOut => pb::AttemptState::TimedOut,
        AttemptState::Lost => pb::AttemptState::Lost,
        AttemptState::Cancelled => pb::AttemptState::Cancelled,
    }
}

fn attempt_state(s: i32) -> AttemptState {
    match pb::AttemptState::try_from(s).unwrap_or_default() {
        pb::AttemptState::Assigned | pb::AttemptState::Unspecified => AttemptState::Assigned,
        pb::AttemptState::Running => AttemptState::Running,
        pb::AttemptState::Succeeded => AttemptState::Succeeded,
        pb::AttemptState::Failed => AttemptState::Failed,
        pb::AttemptState::TimedOut => AttemptState::TimedOut,
        pb::AttemptState::Lost => AttemptState::Lost,
        pb::AttemptState::Cancelled => AttemptState::Cancelled,
    }
}

/// Output to the wire.
pub fn output_pb(o: &TaskOutput) -> pb::TaskOutput {
    pb::TaskOutput { stdout: o.stdout.clone(), stderr: o.stderr.clone(), truncated: o.truncated }
}

/// A task to the wire (also its store record).
pub fn task_pb(t: &Task<Spec>) -> pb::Task {
    pb::Task {
        id: t.id.to_string(),
        spec: Some((*t.payload).clone()),
        state: task_state_pb(t.state) as i32,
        attempts: t
            .attempts
            .iter()
            .map(|a| pb::Attempt {
                attempt: a.number,
                node_id: a.node.to_string(),
                state: attempt_state_pb(a.state) as i32,
                assigned_at: Some(ts(a.assigned_at)),
                finished_at: opt_ts(a.finished_at),
                exit_code: a.exit_code,
                error: a.error.clone(),
                deadline: Some(ts(a.deadline)),
                late_result: a.late_result.unwrap_or_default().to_string(),
            })
            .collect(),
        accepted_attempt: t.accepted_attempt.unwrap_or(0),
        output: t.output.as_ref().map(output_pb),
        error: t.error.clone(),
        retries_used: t.retries_used,
        submitted_at: Some(ts(t.submitted_at)),
        placed_at: opt_ts(t.placed_at),
        finished_at: opt_ts(t.finished_at),
        sla_met: t.sla_met,
        request_id: t.request_id.clone().unwrap_or_default(),
    }
}

fn late(s: &str) -> Option<&'static str> {
    ["assigned", "running", "succeeded", "failed", "timed out", "lost", "cancelled", "refused"]
        .into_iter()
        .find(|k| *k == s)
}

/// A task from its store record. None if the record is unusable.
pub fn task_from_record(r: pb::Task) -> Option<Task<Spec>> {
    let spec = r.spec?;
    let request_id = (!r.request_id.is_empty()).then(|| r.request_id.clone());
    let params = task_params(&spec, request_id.clone());
    let attempts: Vec<Attempt> = r
        .attempts
        .iter()
        .map(|a| Attempt {
            number: a.attempt,
            node: Arc::from(a.node_id.as_str()),
            state: attempt_state(a.state),
            assigned_at: a.assigned_at.as_ref().map_or(0, ms),
            deadline: a.deadline.as_ref().map_or(0, ms),
            finished_at: a.finished_at.as_ref().map(ms),
            exit_code: a.exit_code,
            error: a.error.clone(),
            late_result: late(&a.late_result),
        })
        .collect();
    let mut t = Task::new(Arc::from(r.id.as_str()), params, Arc::new(spec), r.submitted_at.as_ref().map_or(0, ms));
    t.state = task_state(r.state)?;
    t.next_attempt = attempts.iter().map(|a| a.number).max().unwrap_or(0) + 1;
    t.lost_requeues = attempts.iter().filter(|a| a.state == AttemptState::Lost).count() as u32;
    t.attempts = attempts;
    t.accepted_attempt = (r.accepted_attempt != 0).then_some(r.accepted_attempt);
    t.output = r.output.map(|o| TaskOutput { stdout: o.stdout, stderr: o.stderr, truncated: o.truncated });
    t.error = r.error;
    t.retries_used = r.retries_used;
    t.placed_at = r.placed_at.as_ref().map(ms);
    t.finished_at = r.finished_at.as_ref().map(ms);
    t.sla_met = r.sla_met;
    Some(t)
}

fn liveness_pb(l: Liveness) -> pb::Liveness {
    match l {
        Liveness::Unknown => pb::Liveness::Unspecified,
        Liveness::Healthy => pb::Liveness::Healthy,
        Liveness::Suspect => pb::Liveness::Suspect,
        Liveness::Offline => pb::Liveness::Offline,
    }
}

/// Node status to the wire.
pub fn status_pb(s: NodeStatus) -> pb::NodeStatus {
    match s {
        NodeStatus::Active => pb::NodeStatus::Active,
        NodeStatus::Idle => pb::NodeStatus::Idle,
        NodeStatus::Busy => pb::NodeStatus::Busy,
        NodeStatus::Suspect => pb::NodeStatus::Suspect,
        NodeStatus::Offline => pb::NodeStatus::Offline,
        NodeStatus::Maintenance => pb::NodeStatus::Maintenance,
    }
}

/// Node status from the wire (filters).
pub fn status(s: i32) -> Option<NodeStatus> {
    Some(match pb::NodeStatus::try_from(s).ok()? {
        pb::NodeStatus::Active => NodeStatus::Active,
        pb::NodeStatus::Idle => NodeStatus::Idle,
        pb::NodeStatus::Busy => NodeStatus::Busy,
        pb::NodeStatus::Suspect => NodeStatus::Suspect,
        pb::NodeStatus::Offline => NodeStatus::Offline,
        pb::NodeStatus::Maintenance => NodeStatus::Maintenance,
        pb::NodeStatus::Unspecified => return None,
    })
}

/// A node to the wire (also its store record: the live fields are simply
/// ignored on restore).
pub fn node_pb(e: &NodeEntry, now: Millis) -> pb::Node {
    let mut location = location_pb(&e.location);
    location.region = e.region().to_string();
    pb::Node {
        id: e.id.to_string(),
        name: e.name.clone(),
        node_type: node_type_pb(e.node_type) as i32,
        status: status_pb(e.status()) as i32,
        liveness: liveness_pb(e.liveness) as i32,
        flapping: e.flapping,
        cordoned: e.cordoned,
        draining: e.draining,
        maintenance: e.maintenance,
        location: Some(location),
        labels: labels_pb(&e.labels),
        operator_label_keys: e.operator_label_keys.clone(),
        capacity: Some(resources_pb(e.capacity)),
        allocated: Some(resources_pb(e.allocated)),
        cpu_usage: e.live.cpu_usage,
        memory_usage: e.live.memory_usage,
        power_mode: power_mode_pb(e.live.power_mode) as i32,
        state_unwritable: e.live.state_unwritable,
        // Filled in by the fleet API from the session directory (several replicas).
        session_replica: String::new(),
        battery_percent: e.live.battery_percent.map_or(-1, i32::from),
        charging: e.live.charging,
        temperature_celsius: e.live.temperature_c.unwrap_or(-1000.0),
        active_tasks: e.active_tasks(),
        completed_tasks: e.completed_tasks,
        failed_tasks: e.failed_tasks,
        reputation: e.reputation(),
        uptime_percent: e.uptime_percent(now),
        supports_onion_routing: e.supports_onion_routing,
        session_rtt_ms: e.session_rtt_ms,
        last_heartbeat: (e.last_heartbeat > 0).then(|| ts(e.last_heartbeat)),
        registered_at: Some(ts(e.registered_at)),
        agent_version: e.agent_version.clone(),
        // Known only to the engine (the live session): see `Engine::node_pb`.
        certificate_expires_at: None,
    }
}

/// The store record of a node: only what must survive a restart.
pub fn node_record(e: &NodeEntry) -> pb::Node {
    pb::Node {
        id: e.id.to_string(),
        name: e.name.clone(),
        node_type: node_type_pb(e.node_type) as i32,
        cordoned: e.cordoned,
        draining: e.draining,
        maintenance: e.maintenance,
        location: Some(location_pb(&e.location)),
        labels: labels_pb(&e.labels),
        operator_label_keys: e.operator_label_keys.clone(),
        capacity: Some(resources_pb(e.capacity)),
        completed_tasks: e.completed_tasks,
        failed_tasks: e.failed_tasks,
        supports_onion_routing: e.supports_onion_routing,
        registered_at: Some(ts(e.registered_at)),
        agent_version: e.agent_version.clone(),
        ..Default::default()
    }
}

/// A node from its store record (liveness Unknown until it reconnects).
pub fn node_from_record(r: &pb::Node) -> NodeEntry {
    let reg = fog_core::registry::NodeRegistration {
        id: Arc::from(r.id.as_str()),
        name: r.name.clone(),
        node_type: node_type(r.node_type),
        capacity: resources(r.capacity.as_ref()),
        location: location(r.location.as_ref()),
        labels: r.labels.iter().map(|l| (l.key.clone(), l.value.clone())).collect(),
        agent_version: r.agent_version.clone(),
        supports_onion_routing: r.supports_onion_routing,
    };
    let mut e = NodeEntry::new(reg, r.registered_at.as_ref().map_or(0, ms));
    e.operator_label_keys = r.operator_label_keys.clone();
    e.operator_label_keys.sort_unstable();
    e.operator_label_keys.dedup();
    e.cordoned = r.cordoned;
    e.draining = r.draining;
    e.maintenance = r.maintenance;
    e.completed_tasks = r.completed_tasks;
    e.failed_tasks = r.failed_tasks;
    e
}

/// A topology node to the wire.
pub fn topo_node_pb(n: &TopoNode) -> pb::TopologyNode {
    pb::TopologyNode {
        id: n.id.to_string(),
        region: n.region.to_string(),
        zone: n.zone.to_string(),
        node_type: node_type_pb(n.node_type) as i32,
        status: status_pb(n.status) as i32,
        flapping: n.flapping,
        load: n.load,
        session_rtt_ms: n.session_rtt_ms,
        active_tasks: n.active_tasks,
        latitude: n.coordinates.map_or(0.0, |c| c.0),
        longitude: n.coordinates.map_or(0.0, |c| c.1),
        has_coordinates: n.coordinates.is_some(),
        cordoned: n.cordoned,
        draining: n.draining,
    }
}

fn counts_pb(c: &fog_core::topology::NodeCounts) -> pb::NodeCounts {
    pb::NodeCounts {
        total: c.total,
        active: c.active,
        idle: c.idle,
        busy: c.busy,
        suspect: c.suspect,
        offline: c.offline,
        maintenance: c.maintenance,
    }
}

/// Aggregates to the wire.
pub fn aggregates_pb(a: &Aggregates) -> pb::Aggregates {
    pb::Aggregates {
        nodes: Some(counts_pb(&a.nodes)),
        nodes_by_type: a.nodes_by_type.iter().map(|(k, v)| (k.to_string(), counts_pb(v))).collect(),
        total_capacity: Some(resources_pb(a.total_capacity)),
        available: Some(resources_pb(a.available)),
        queued_tasks: a.queued_tasks,
        running_tasks: a.running_tasks,
        completed_tasks: a.completed_tasks,
        failed_tasks: a.failed_tasks,
        sla_compliance: a.sla_compliance,
        average_load: a.average_load,
    }
}

/// A region summary to the wire.
pub fn region_pb(r: &RegionSummary) -> pb::RegionSummary {
    pb::RegionSummary {
        region: r.region.to_string(),
        nodes: Some(counts_pb(&r.nodes)),
        zones: r.zones.iter().map(|z| z.to_string()).collect(),
        average_load: r.average_load,
    }
}
