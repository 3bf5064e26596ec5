//! Least-loaded: the node with the most headroom, i.e. the lowest
//! `NodeEntry::load()`; ties go to fewer active tasks, then the lower slot.

use crate::registry::index::{Indexes, OrdF64};
use crate::registry::{NodeEntry, Slot};

/// Indexed slots by (load, active tasks, slot).
pub(super) fn order(idx: &Indexes) -> impl Iterator<Item = Slot> + '_ {
    idx.by_load.iter().map(|&(_, _, s)| s)
}

/// The key [`order`] sorts by.
pub(super) fn key(e: &NodeEntry, slot: Slot) -> (OrdF64, u32, Slot) {
    (OrdF64(e.load()), e.active_tasks(), slot)
}
