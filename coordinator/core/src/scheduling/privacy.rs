//! Privacy-aware: the privacy level is a hard constraint (enforced by the fit
//! filter); among the nodes allowed, the most reputable wins, then the lower
//! load, then the lower slot.

use crate::domain::PrivacyLevel;
use crate::registry::index::{Indexes, OrdF64};
use crate::registry::{NodeEntry, Slot};
use std::cmp::Reverse;

/// Slots of nodes whose ceiling is at least `level`, by (reputation desc, load, slot).
pub(super) fn order(idx: &Indexes, level: PrivacyLevel) -> impl Iterator<Item = Slot> + '_ {
    idx.by_reputation[level as usize].iter().map(|&(_, _, s)| s)
}

/// The key [`order`] sorts by.
pub(super) fn key(e: &NodeEntry, slot: Slot) -> (Reverse<OrdF64>, OrdF64, Slot) {
    (Reverse(OrdF64(e.reputation())), OrdF64(e.load()), slot)
}
