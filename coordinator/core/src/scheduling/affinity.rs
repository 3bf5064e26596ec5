//! Affinity: tasks sharing a key go to the same node while it fits.
//!
//! Consistent hashing: each node has `VNODES` positions on a 64-bit ring
//! (hashed from its id with FNV-1a + a SplitMix finaliser, so placements
//! survive restarts); a key goes to the first fitting node clockwise from the
//! key's position. When one of n nodes leaves (or stops fitting), only the keys
//! it held move — about 1/n of them — to the next node on the ring.
//!
//! Soft preference: with `preferred_labels`, among the first [`WINDOW`]
//! fitting nodes in ring order the one matching most preferred labels wins,
//! ties by ring order. (Then a node entering or leaving that window can move
//! a key: preferences trade a little stability for locality.)

use super::{TaskNeeds, fit};
use crate::registry::index::key_position;
use crate::registry::{NodeEntry, NodeTable, Slot};

/// How many fitting nodes in ring order the label preference chooses among.
pub(super) const WINDOW: usize = 8;

/// Ring slots clockwise from the key's position (a node may appear several times).
pub(super) fn ring_order<'a>(nodes: &'a NodeTable, key: &str) -> impl Iterator<Item = Slot> + 'a {
    let ring = &nodes.index.ring;
    let h = key_position(key);
    ring.range((h, 0)..).chain(ring.range(..(h, 0))).map(|&(_, s)| s)
}

/// How many of the preferred labels a node has.
pub(super) fn matches(e: &NodeEntry, needs: &TaskNeeds) -> usize {
    needs.preferred_labels.iter().filter(|(k, v)| e.labels.get(k) == Some(v)).count()
}

/// Among `window` (in ring order), the node matching most preferred labels; ties → earliest.
pub(super) fn pick(nodes: &NodeTable, needs: &TaskNeeds, window: &[Slot]) -> Option<Slot> {
    let mut best: Option<(usize, Slot)> = None;
    for &s in window {
        let m = nodes.entry(s).map_or(0, |e| matches(e, needs));
        if best.is_none_or(|(bm, _)| m > bm) {
            best = Some((m, s));
        }
    }
    best.map(|(_, s)| s)
}

pub(super) fn place(nodes: &NodeTable, needs: &TaskNeeds, exclude: &[Slot], key: &str) -> Option<Slot> {
    let mut order = ring_order(nodes, key);
    if needs.preferred_labels.is_empty() {
        return super::first_fit(nodes, needs, exclude, &mut order);
    }
    // Steady nodes first; flapping ones only if no steady node fits.
    let mut steady: Vec<Slot> = Vec::with_capacity(WINDOW);
    let mut flapping: Vec<Slot> = Vec::new();
    for slot in order {
        if exclude.contains(&slot) || steady.contains(&slot) || flapping.contains(&slot) {
            continue;
        }
        let Some(e) = nodes.entry(slot) else { continue };
        if !fit::fits(e, needs) {
            continue;
        }
        if !e.flapping {
            steady.push(slot);
            if steady.len() == WINDOW {
                break;
            }
        } else if flapping.len() < WINDOW {
            flapping.push(slot);
        }
    }
    let window = if steady.is_empty() { &flapping } else { &steady };
    pick(nodes, needs, window)
}
