//! Round-robin: fair rotation over the nodes that can take the task, resuming
//! after the slot chosen last. While eligibility does not change, consecutive
//! placements visit every eligible node once per cycle.

use crate::registry::Slot;
use crate::registry::index::Indexes;

fn start(last: Option<Slot>) -> Slot {
    last.map_or(0, |s| s.saturating_add(1))
}

/// Indexed slots from the one after `last`, wrapping around.
pub(super) fn order(idx: &Indexes, last: Option<Slot>) -> impl Iterator<Item = Slot> + '_ {
    let start = start(last);
    idx.by_slot.range(start..).chain(idx.by_slot.range(..start)).copied()
}

/// Position of `slot` in the rotation [`order`] walks.
pub(super) fn rank(slot: Slot, last: Option<Slot>) -> u64 {
    let start = start(last);
    if slot >= start { u64::from(slot - start) } else { u64::from(slot) + (1u64 << 32) - u64::from(start) }
}
