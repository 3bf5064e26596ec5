//! Secondary indexes over the node table, kept in step by `NodeTable`.

use super::{NodeEntry, Slot};

/// The indexes the strategies use.
#[derive(Default)]
pub(crate) struct Indexes {}

impl Indexes {
    pub(crate) fn insert(&mut self, _slot: Slot, _e: &NodeEntry) {}
    pub(crate) fn remove(&mut self, _slot: Slot, _e: &NodeEntry) {}
}
