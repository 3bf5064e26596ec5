//! Routing: the fit filter, the five strategies and explain-placement.
//!
//! Every strategy is "walk an index in preference order, return the first
//! node that passes the fit filter and is not excluded" — the indexes
//! (`registry::index`) make that a few microseconds at 100,000 nodes, and the
//! fit filter (`fit`) keeps the hard constraints in one place. `explain` is
//! the same decision done by brute force over every node, with reasons.
//!
//! What this module is not: it reserves nothing (the caller reserves on the
//! chosen node through `NodeTable::update`) and does no I/O. It reads the
//! clock only to time decisions for an installed [`DecisionProbe`] (metrics).
//! The only state it keeps is the round-robin cursor.

mod affinity;
mod explain;
mod fit;
pub(crate) mod latency;
mod least_loaded;
mod privacy;
mod proximity;
mod round_robin;

pub use explain::{Candidate, Explanation, Rejected};
pub use fit::check_fit;
pub use latency::{EARTH_RADIUS_KM, LatencyBasis, LatencyModel, estimate_latency_ms, unit_vector};

use crate::domain::{Location, PrivacyLevel, Resources, Strategy};
use crate::registry::{NodeTable, Slot};

/// What a task asks of the node it runs on.
#[derive(Clone, Debug, Default)]
pub struct TaskNeeds {
    /// Resources reserved while it runs.
    pub resources: Resources,
    /// Privacy level: a hard constraint.
    pub privacy: PrivacyLevel,
    /// How to choose among fitting nodes.
    pub strategy: Strategy,
    /// Affinity key (affinity strategy); `None` or empty → least-loaded.
    pub affinity_key: Option<String>,
    /// Soft: affinity prefers nodes with more of these labels.
    pub preferred_labels: Vec<(String, String)>,
    /// Hard: every one must be present.
    pub required_labels: Vec<(String, String)>,
    /// Where the task comes from (proximity); `None` → least-loaded.
    pub origin: Option<Location>,
    /// Data residency for CONFIDENTIAL/SECRET: admin regions allowed (empty = any).
    pub allowed_regions: Vec<String>,
}

/// Told how long each routing decision took, by the strategy applied.
pub type DecisionProbe = std::sync::Arc<dyn Fn(Strategy, std::time::Duration) + Send + Sync>;

/// Chooses nodes for tasks. Holds the latency model and the round-robin cursor;
/// nothing else is mutable.
#[derive(Default)]
pub struct Scheduler {
    latency: LatencyModel,
    /// The slot round-robin chose last; the rotation resumes after it.
    rr_last: Option<Slot>,
    probe: Option<DecisionProbe>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("rr_last", &self.rr_last).field("probe", &self.probe.is_some()).finish()
    }
}

impl Scheduler {
    /// A scheduler with this latency model.
    pub fn new(latency: LatencyModel) -> Scheduler {
        Scheduler { latency, rr_last: None, probe: None }
    }

    /// Times every decision of [`Scheduler::place`] and tells `probe`.
    pub fn with_probe(mut self, probe: DecisionProbe) -> Scheduler {
        self.probe = Some(probe);
        self
    }

    /// The latency model.
    pub fn latency(&self) -> &LatencyModel {
        &self.latency
    }

    /// Chooses a node for `needs`, never one in `exclude` (nodes already holding a replica of this task).
    /// First pass skips flapping nodes; only if none fits, a second pass allows them.
    pub fn place(&mut self, nodes: &NodeTable, needs: &TaskNeeds, exclude: &[Slot]) -> Option<Slot> {
        let Some(probe) = self.probe.take() else { return self.decide(nodes, needs, exclude) };
        let started = std::time::Instant::now();
        let chosen = self.decide(nodes, needs, exclude);
        probe(effective(needs), started.elapsed());
        self.probe = Some(probe);
        chosen
    }

    fn decide(&mut self, nodes: &NodeTable, needs: &TaskNeeds, exclude: &[Slot]) -> Option<Slot> {
        let idx = &nodes.index;
        let walk = |order: &mut dyn Iterator<Item = Slot>| first_fit(nodes, needs, exclude, order);
        match effective(needs) {
            Strategy::RoundRobin => {
                let chosen = walk(&mut round_robin::order(idx, self.rr_last));
                if chosen.is_some() {
                    self.rr_last = chosen;
                }
                chosen
            }
            Strategy::LeastLoaded => walk(&mut least_loaded::order(idx)),
            Strategy::Affinity => affinity::place(nodes, needs, exclude, affinity_key(needs)?),
            Strategy::Proximity => {
                let origin = needs.origin.as_ref()?;
                walk(&mut proximity::Order::new(nodes, origin, &self.latency).map(|(_, s)| s))
            }
            Strategy::PrivacyAware => walk(&mut privacy::order(idx, needs.privacy)),
        }
    }

    /// Dry run for "why was my task placed there?": full scan, no state change.
    /// `chosen` is what [`Scheduler::place`] would choose now with no exclusions.
    pub fn explain(&self, nodes: &NodeTable, needs: &TaskNeeds, limit: usize) -> Explanation {
        explain::explain(self, nodes, needs, limit)
    }
}

/// The strategy actually applied: affinity without a key and proximity without
/// an origin fall back to least-loaded.
pub(crate) fn effective(needs: &TaskNeeds) -> Strategy {
    match needs.strategy {
        Strategy::Affinity if affinity_key(needs).is_none() => Strategy::LeastLoaded,
        Strategy::Proximity if needs.origin.is_none() => Strategy::LeastLoaded,
        s => s,
    }
}

fn affinity_key(needs: &TaskNeeds) -> Option<&str> {
    needs.affinity_key.as_deref().filter(|k| !k.is_empty())
}

/// The first fitting, non-excluded slot of `order`, preferring steady nodes:
/// the two passes (without, then with flapping nodes) done in one walk.
fn first_fit(
    nodes: &NodeTable,
    needs: &TaskNeeds,
    exclude: &[Slot],
    order: &mut dyn Iterator<Item = Slot>,
) -> Option<Slot> {
    let mut flapping = None;
    for slot in order {
        if exclude.contains(&slot) {
            continue;
        }
        let Some(e) = nodes.entry(slot) else { continue };
        if !fit::fits(e, needs) {
            continue;
        }
        if !e.flapping {
            return Some(slot);
        }
        flapping = flapping.or(Some(slot));
    }
    flapping
}

/// Checks every index against one rebuilt from scratch (for tests).
#[doc(hidden)]
pub fn check_index_consistency(nodes: &NodeTable) -> Result<(), String> {
    let mut fresh = crate::registry::index::Indexes::default();
    for (slot, e) in nodes.iter_slots() {
        fresh.insert(slot, e);
    }
    nodes.index.diff(&fresh, |s| nodes.entry(s).is_some())
}
