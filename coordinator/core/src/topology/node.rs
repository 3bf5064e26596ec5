//! The per-node view of the topology and the rule that decides which changes
//! are worth an event.

use crate::domain::{NodeId, NodeType};
use crate::registry::{NodeEntry, NodeStatus};
use std::sync::Arc;

/// Smallest load change published as a metrics event.
pub const LOAD_EPSILON: f64 = 0.01;
/// Smallest session RTT change (ms) published as a metrics event.
pub const RTT_EPSILON_MS: f64 = 1.0;

/// A node as the topology shows it: small, for large fleets.
#[derive(Clone, Debug, PartialEq)]
pub struct TopoNode {
    /// Id.
    pub id: NodeId,
    /// Effective region (admin label if set, else reported).
    pub region: Arc<str>,
    /// Zone.
    pub zone: Arc<str>,
    /// Kind.
    pub node_type: NodeType,
    /// Operator-visible status.
    pub status: NodeStatus,
    /// Flapping.
    pub flapping: bool,
    /// Load 0..1.
    pub load: f64,
    /// Session RTT in ms (0 = unknown).
    pub session_rtt_ms: f64,
    /// Attempts placed on the node.
    pub active_tasks: u32,
    /// Latitude/longitude, if known.
    pub coordinates: Option<(f64, f64)>,
    /// Cordoned by an operator (no new tasks).
    pub cordoned: bool,
    /// Draining.
    pub draining: bool,
}

impl TopoNode {
    /// The view of a node-table entry.
    pub fn from_entry(e: &NodeEntry) -> TopoNode {
        let region = e.region();
        let region = if region == &*e.location.region { e.location.region.clone() } else { Arc::from(region) };
        TopoNode {
            id: e.id.clone(),
            region,
            zone: e.location.zone.clone(),
            node_type: e.node_type,
            status: e.status(),
            flapping: e.flapping,
            load: e.load(),
            session_rtt_ms: e.session_rtt_ms,
            active_tasks: e.active_tasks(),
            coordinates: e.location.coordinates,
            cordoned: e.cordoned,
            draining: e.draining,
        }
    }
}

/// What kind of event a change of a node deserves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// New node, or anything but load and RTT changed.
    Status,
    /// Only load or RTT changed, by a meaningful amount.
    Metrics,
}

/// Compares the last published view of a node with the current one. Metric
/// jitter below [`LOAD_EPSILON`] / [`RTT_EPSILON_MS`] is not worth an event:
/// at 100,000 heartbeating nodes it would drown the watchers.
pub fn classify(before: Option<&TopoNode>, after: &TopoNode) -> Option<ChangeKind> {
    let Some(b) = before else {
        return Some(ChangeKind::Status);
    };
    // Everything but the two metrics is status. Destructured without `..`, so
    // a new field must be placed on one side or the other (it runs on every
    // heartbeat, so it compares in place instead of cloning).
    let TopoNode {
        id,
        region,
        zone,
        node_type,
        status,
        flapping,
        load: _,
        session_rtt_ms: _,
        active_tasks,
        coordinates,
        cordoned,
        draining,
    } = b;
    let same_status = *id == after.id
        && *region == after.region
        && *zone == after.zone
        && *node_type == after.node_type
        && *status == after.status
        && *flapping == after.flapping
        && *active_tasks == after.active_tasks
        && *coordinates == after.coordinates
        && *cordoned == after.cordoned
        && *draining == after.draining;
    if !same_status {
        Some(ChangeKind::Status)
    } else if (b.load - after.load).abs() >= LOAD_EPSILON
        || (b.session_rtt_ms - after.session_rtt_ms).abs() >= RTT_EPSILON_MS
    {
        Some(ChangeKind::Metrics)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Location;
    use crate::registry::{Liveness, NodeRegistration};

    fn entry() -> NodeEntry {
        let mut e = NodeEntry::new(
            NodeRegistration {
                id: "n1".into(),
                location: Location { region: "eu-west".into(), zone: "a".into(), coordinates: Some((48.8, 2.3)) },
                ..Default::default()
            },
            0,
        );
        e.liveness = Liveness::Healthy;
        e
    }

    #[test]
    fn from_entry_uses_the_effective_region() {
        let mut e = entry();
        let n = TopoNode::from_entry(&e);
        assert_eq!((&*n.region, &*n.zone, n.status), ("eu-west", "a", NodeStatus::Idle));
        e.labels = crate::domain::Labels::from([(crate::domain::LABEL_REGION.to_string(), "eu-central".to_string())]);
        assert_eq!(&*TopoNode::from_entry(&e).region, "eu-central");
    }

    #[test]
    fn classify_separates_status_from_metric_jitter() {
        let a = TopoNode::from_entry(&entry());
        assert_eq!(classify(None, &a), Some(ChangeKind::Status));
        assert_eq!(classify(Some(&a), &a), None);
        let b = TopoNode { load: a.load + 0.005, session_rtt_ms: a.session_rtt_ms + 0.5, ..a.clone() };
        assert_eq!(classify(Some(&a), &b), None);
        let b = TopoNode { load: a.load + 0.01, ..a.clone() };
        assert_eq!(classify(Some(&a), &b), Some(ChangeKind::Metrics));
        let b = TopoNode { session_rtt_ms: a.session_rtt_ms + 1.0, ..a.clone() };
        assert_eq!(classify(Some(&a), &b), Some(ChangeKind::Metrics));
        let b = TopoNode { flapping: true, load: 0.5, ..a.clone() };
        assert_eq!(classify(Some(&a), &b), Some(ChangeKind::Status));
        let b = TopoNode { status: NodeStatus::Suspect, ..a.clone() };
        assert_eq!(classify(Some(&a), &b), Some(ChangeKind::Status));
        let b = TopoNode { active_tasks: 1, ..a.clone() };
        assert_eq!(classify(Some(&a), &b), Some(ChangeKind::Status));
    }
}
