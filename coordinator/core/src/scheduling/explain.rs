//! Explain-placement: the decision `place` would make, recomputed by brute
//! force over every node, with the reasons each node was or was not eligible.
//! It reads the same keys the index walks use, so the two agree.

use super::latency::{LatencyBasis, estimate_latency_ms};
use super::{Scheduler, TaskNeeds, affinity, check_fit, effective, least_loaded, privacy, round_robin};
use crate::domain::{NodeId, Strategy};
use crate::registry::{NodeEntry, NodeTable, Slot};
use std::collections::{BTreeMap, HashMap};

/// A node that could take the task.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The node.
    pub node: NodeId,
    /// Strategy-specific score, higher is better.
    pub score: f64,
    /// Why it ranks where it does.
    pub reason: String,
}

/// A node that could not take the task.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    /// The node.
    pub node: NodeId,
    /// Every reason, e.g. `cpu: needs 2000m, free 500m`.
    pub reasons: Vec<String>,
}

/// The answer to "why was my task placed there?".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanation {
    /// What `place` would choose now (no exclusions).
    pub chosen: Option<NodeId>,
    /// Eligible nodes, best first, at most `limit`.
    pub candidates: Vec<Candidate>,
    /// Ineligible nodes, at most `limit`.
    pub rejected: Vec<Rejected>,
    /// Nodes looked at (the whole table).
    pub considered: u64,
    /// Eligible nodes. Fitting flapping nodes count as eligible only when no
    /// steady node fits; otherwise they are rejected as `flapping`. So
    /// `fitting + ineligible == considered`.
    pub fitting: u64,
    /// Ineligible nodes per reason kind (a node may count under several).
    pub rejection_counts: BTreeMap<String, u64>,
}

struct Ranked {
    slot: Slot,
    score: f64,
    reason: String,
}

pub(super) fn explain(s: &Scheduler, nodes: &NodeTable, needs: &TaskNeeds, limit: usize) -> Explanation {
    let mut x = Explanation::default();
    let (mut steady, mut flapping) = (Vec::new(), Vec::new());
    for (slot, e) in nodes.iter_slots() {
        x.considered += 1;
        match check_fit(e, needs) {
            Ok(()) if e.flapping => flapping.push(slot),
            Ok(()) => steady.push(slot),
            Err(reasons) => reject(&mut x, e, reasons, limit),
        }
    }
    let eligible = if steady.is_empty() {
        flapping
    } else {
        for &slot in &flapping {
            let e = nodes.entry(slot).expect("slot from iter_slots");
            let why = "flapping: recently unstable; used only when no steady node fits".to_string();
            reject(&mut x, e, vec![("flapping", why)], limit);
        }
        steady
    };
    x.fitting = eligible.len() as u64;
    let ranked = rank(s, nodes, needs, eligible);
    x.chosen = ranked.first().map(|r| id(nodes, r.slot));
    x.candidates = ranked
        .into_iter()
        .take(limit)
        .map(|r| Candidate { node: id(nodes, r.slot), score: r.score, reason: r.reason })
        .collect();
    x
}

fn id(nodes: &NodeTable, slot: Slot) -> NodeId {
    nodes.entry(slot).expect("ranked slots exist").id.clone()
}

fn reject(x: &mut Explanation, e: &NodeEntry, reasons: Vec<(&'static str, String)>, limit: usize) {
    for (kind, _) in &reasons {
        *x.rejection_counts.entry((*kind).to_string()).or_default() += 1;
    }
    if x.rejected.len() < limit {
        x.rejected.push(Rejected { node: e.id.clone(), reasons: reasons.into_iter().map(|(_, r)| r).collect() });
    }
}

/// Eligible slots best first, in exactly the order `place` walks them.
fn rank(s: &Scheduler, nodes: &NodeTable, needs: &TaskNeeds, mut slots: Vec<Slot>) -> Vec<Ranked> {
    let e = |slot: Slot| nodes.entry(slot).expect("eligible slots exist");
    match effective(needs) {
        Strategy::RoundRobin => {
            slots.sort_by_key(|&slot| round_robin::rank(slot, s.rr_last));
            positional(slots, "next in the round-robin rotation")
        }
        Strategy::LeastLoaded => {
            slots.sort_by_key(|&slot| least_loaded::key(e(slot), slot));
            map(slots, |slot| {
                let n = e(slot);
                let load = n.load();
                (1.0 - load, format!("load {load:.3}, {} active task(s)", n.active_tasks()))
            })
        }
        Strategy::PrivacyAware => {
            slots.sort_by_key(|&slot| privacy::key(e(slot), slot));
            map(slots, |slot| {
                let n = e(slot);
                let rep = n.reputation();
                let why = format!(
                    "reputation {rep:.3}, may host up to {}, load {:.3}",
                    super::fit::level_name(n.privacy_ceiling()),
                    n.load()
                );
                (rep, why)
            })
        }
        Strategy::Proximity => {
            let origin = needs.origin.as_ref().expect("effective() checked the origin");
            let mut keyed: Vec<_> = slots
                .into_iter()
                .map(|slot| (estimate_latency_ms(&s.latency, e(slot), origin), e(slot).load(), slot))
                .collect();
            keyed.sort_by(|a, b| a.0.0.total_cmp(&b.0.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
            keyed
                .into_iter()
                .map(|((ms, basis), load, slot)| {
                    let how = match basis {
                        LatencyBasis::Measured => format!("measured RTT to {}", origin.region),
                        LatencyBasis::Distance => "great-circle distance".to_string(),
                        LatencyBasis::RegionMatrix => {
                            format!("region matrix {} → {}", origin.region, e(slot).region())
                        }
                    };
                    Ranked { slot, score: -ms, reason: format!("~{ms:.1} ms ({how}), load {load:.3}") }
                })
                .collect()
        }
        Strategy::Affinity => {
            let key = needs.affinity_key.as_deref().unwrap_or_default();
            // Rank = first appearance walking the ring clockwise from the key.
            let mut first: HashMap<Slot, usize> = HashMap::with_capacity(slots.len());
            for (i, slot) in affinity::ring_order(nodes, key).enumerate() {
                first.entry(slot).or_insert(i);
            }
            slots.sort_by_key(|slot| first.get(slot).copied().unwrap_or(usize::MAX));
            if !needs.preferred_labels.is_empty() {
                let window = slots.len().min(affinity::WINDOW);
                if let Some(best) = affinity::pick(nodes, needs, &slots[..window]) {
                    let at = slots.iter().position(|&x| x == best).expect("picked from slots");
                    slots[..=at].rotate_right(1);
                }
            }
            let wanted = needs.preferred_labels.len();
            let mut ranked = positional(slots, "");
            for r in &mut ranked {
                let m = affinity::matches(e(r.slot), needs);
                r.reason = format!("ring order for key {key:?}; {m}/{wanted} preferred labels");
            }
            ranked
        }
    }
}

fn map(slots: Vec<Slot>, f: impl Fn(Slot) -> (f64, String)) -> Vec<Ranked> {
    slots
        .into_iter()
        .map(|slot| {
            let (score, reason) = f(slot);
            Ranked { slot, score, reason }
        })
        .collect()
}

/// Scores by position: 0 for the first, -1 for the next…
fn positional(slots: Vec<Slot>, reason: &str) -> Vec<Ranked> {
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| Ranked { slot, score: -(i as f64), reason: reason.to_string() })
        .collect()
}
