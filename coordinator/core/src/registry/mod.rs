//! The node table: every node the coordinator knows, addressed by id or by a
//! dense slot number, with the secondary indexes the routing strategies need to
//! decide in microseconds at 100,000 nodes.
//!
//! Every mutation goes through [`NodeTable::update`] (or insert/remove), which
//! takes the node out of the indexes, applies the change and puts it back, so
//! the indexes can never disagree with the entries. The table is plain data:
//! it does no I/O and reads no clock.

mod node;

pub use node::{BUSY_LOAD, HeartbeatState, Liveness, NodeEntry, NodeRegistration, NodeStatus};

use crate::domain::Millis;

/// Dense index of a node in the table; stable while the node exists, reused after removal.
pub type Slot = u32;

/// The node table.
#[derive(Default)]
pub struct NodeTable {
    slots: Vec<Option<NodeEntry>>,
    by_id: crate::domain::IdMap<Slot>,
    free: Vec<Slot>,
    pub(crate) index: index::Indexes,
}

pub(crate) mod index;

impl NodeTable {
    /// An empty table.
    pub fn new() -> NodeTable {
        NodeTable::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True if there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The slot of a node.
    pub fn slot_of(&self, id: &str) -> Option<Slot> {
        self.by_id.get(id).copied()
    }

    /// A node by id.
    pub fn get(&self, id: &str) -> Option<&NodeEntry> {
        self.slot_of(id).and_then(|s| self.entry(s))
    }

    /// A node by slot.
    pub fn entry(&self, slot: Slot) -> Option<&NodeEntry> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// One past the highest slot in use (for iteration by slot).
    pub fn slot_bound(&self) -> Slot {
        self.slots.len() as Slot
    }

    /// Every node, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = &NodeEntry> {
        self.slots.iter().filter_map(Option::as_ref)
    }

    /// Every node with its slot, in slot order.
    pub fn iter_slots(&self) -> impl Iterator<Item = (Slot, &NodeEntry)> {
        self.slots.iter().enumerate().filter_map(|(i, e)| e.as_ref().map(|e| (i as Slot, e)))
    }

    /// Registers a node from its hello, or refreshes the facts of a known one
    /// (capacity, location, type, version, self-reported labels; labels an
    /// operator set, `fog.io/` ones included, and admin state are kept).
    /// Returns its slot.
    pub fn register(&mut self, reg: NodeRegistration, now: Millis) -> Slot {
        if let Some(slot) = self.slot_of(&reg.id) {
            self.update_slot(slot, |e| {
                let admin: Vec<(String, String)> = e
                    .labels
                    .iter()
                    .filter(|(k, _)| {
                        crate::domain::is_reserved_label(k) || e.operator_label_keys.binary_search(k).is_ok()
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                e.name = reg.name;
                e.node_type = reg.node_type;
                e.capacity = reg.capacity;
                e.location = reg.location;
                e.labels = reg.labels;
                e.labels.extend(admin);
                e.agent_version = reg.agent_version;
                e.supports_onion_routing = reg.supports_onion_routing;
            });
            return slot;
        }
        self.insert(NodeEntry::new(reg, now))
    }

    /// Inserts a whole entry (new node, or one restored from the store).
    /// Replaces an entry with the same id.
    pub fn insert(&mut self, entry: NodeEntry) -> Slot {
        if let Some(slot) = self.slot_of(&entry.id) {
            self.update_slot(slot, |e| *e = entry);
            return slot;
        }
        let slot = self.free_slot();
        self.by_id.insert(entry.id.clone(), slot);
        self.index.insert(slot, &entry);
        self.slots[slot as usize] = Some(entry);
        slot
    }

    /// Inserts many entries, as [`insert`](Self::insert) does one by one (an
    /// entry whose id is already in the table, or repeats an earlier one,
    /// replaces it), but builds the affinity ring and the R-tree for the new
    /// nodes in one pass each: restoring 100k nodes costs a sort and a bulk
    /// load instead of 1.6M B-tree and 100k R-tree inserts.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = NodeEntry>) {
        let mut fresh = Vec::new();
        let mut pending = std::collections::HashSet::new();
        for entry in entries {
            match self.slot_of(&entry.id) {
                // Not indexed yet: its keys are computed once, at the end.
                Some(slot) if pending.contains(&slot) => self.slots[slot as usize] = Some(entry),
                Some(slot) => self.update_slot(slot, |e| *e = entry),
                None => {
                    let slot = self.free_slot();
                    self.by_id.insert(entry.id.clone(), slot);
                    self.slots[slot as usize] = Some(entry);
                    fresh.push(slot);
                    pending.insert(slot);
                }
            }
        }
        let slots = &self.slots;
        self.index.insert_many(fresh.iter().map(|&s| (s, slots[s as usize].as_ref().expect("filled above"))));
    }

    fn free_slot(&mut self) -> Slot {
        match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as Slot
            }
        }
    }

    /// Removes a node, returning its entry.
    pub fn remove(&mut self, id: &str) -> Option<NodeEntry> {
        let slot = self.by_id.remove(id)?;
        let entry = self.slots[slot as usize].take()?;
        self.index.remove(slot, &entry);
        self.free.push(slot);
        Some(entry)
    }

    /// Changes a node by id and re-indexes it. Returns the entry after the change.
    pub fn update<R>(&mut self, id: &str, f: impl FnOnce(&mut NodeEntry) -> R) -> Option<R> {
        let slot = self.slot_of(id)?;
        Some(self.update_slot(slot, f))
    }

    /// Applies a heartbeat: the node's live state and time. Returns None for
    /// an unknown node, else whether the node's power mode or state directory
    /// changed whether it accepts work, and the time of its previous heartbeat (0: none). The
    /// common heartbeat (same whole-percent load, same RTTs, same power mode)
    /// touches no index: it is the hot path of a large fleet.
    pub fn heartbeat(&mut self, id: &str, state: HeartbeatState, now: Millis) -> Option<(bool, Millis)> {
        let slot = self.slot_of(id)?;
        let e = self.slots[slot as usize].as_mut().expect("slot from by_id is occupied");
        let previous = e.last_heartbeat;
        let accepts_changed = e.live.accepts_work() != state.accepts_work();
        let same_keys = !accepts_changed
            && e.live.region_rtt_ms == state.region_rtt_ms
            && e.load_with(state.cpu_usage, state.memory_usage).total_cmp(&e.load()).is_eq();
        if same_keys {
            e.live = state;
            e.last_heartbeat = now;
        } else {
            self.update_slot(slot, |e| {
                e.live = state;
                e.last_heartbeat = now;
            });
        }
        Some((accepts_changed, previous))
    }

    fn update_slot<R>(&mut self, slot: Slot, f: impl FnOnce(&mut NodeEntry) -> R) -> R {
        let entry = self.slots[slot as usize].as_mut().expect("slot from by_id is occupied");
        let before = index::IndexKey::of(entry);
        let r = f(entry);
        self.index.update(slot, &before, &index::IndexKey::of(entry));
        r
    }
}
