//! Secondary indexes over the node table, kept in step by `NodeTable`: each
//! mutation removes a node's keys (computed from the entry before the change)
//! and inserts them again (from the entry after it).
//!
//! Only nodes that could take *some* task are indexed: schedulable (healthy,
//! not cordoned, draining or in maintenance, power mode accepting work) and not
//! running an exclusive (SECRET) attempt. The affinity hash ring and the
//! R-tree of coordinates are the exceptions: they hold every node in the
//! table, since a node's place in them depends only on its id or its
//! coordinates, and they are the costliest entries to add (16 B-tree inserts,
//! an R*-tree insert); a fleet coming back after a restart would otherwise
//! re-add all of them. Walking them, the fit filter skips nodes that cannot
//! take work. Everything else a task may need (resources, labels, privacy,
//! residency) is checked by the scheduler's fit filter while it walks an
//! index in preference order, so an index only has to give the *order*,
//! never the answer.
//!
//! Ordered keys hold floats through [`OrdF64`] (`total_cmp`), not quantised, so
//! an index order is exactly the order a brute-force scan computes.
//!
//! Re-indexing compares the node's [`IndexKey`] before and after a change:
//! a heartbeat that leaves it equal (load is kept in whole percent) costs
//! nothing, one that moves the load touches only the ordered sets; see also [`Parked`].
//!
//! Approximate memory per indexed node (B-tree nodes ~2/3 full): round-robin
//! set ~8 B, least-loaded ~26 B, hash ring 16 × ~24 B ≈ 380 B, reputation
//! ~34 B per privacy level the node can host, region set ~24 B, R-tree ~60 B,
//! measured-RTT sets ~34 B per reported region: ≈ 0.55 KB for a typical node.

use super::{NodeEntry, Slot};
use crate::domain::NodeId;
use crate::scheduling::latency::{measured_rtt, unit_vector};
use rstar::RTree;
use rstar::primitives::GeomWithData;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Virtual nodes per node on the affinity hash ring. 16 keeps each node's
/// share of keys within ~±25 % of 1/n at ~380 B per node.
pub(crate) const VNODES: u64 = 16;

/// A node's position on the unit sphere, tagged with its slot.
pub(crate) type GeoPoint = GeomWithData<[f32; 3], Slot>;

/// An `f64` ordered by `total_cmp`, usable in ordered sets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrdF64(pub(crate) f64);

impl PartialEq for OrdF64 {
    fn eq(&self, o: &Self) -> bool {
        self.0.total_cmp(&o.0) == Ordering::Equal
    }
}
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Nodes of one region, by (load, slot), split by whether they have coordinates.
#[derive(Default, Debug, PartialEq)]
pub(crate) struct RegionSets {
    /// Nodes with coordinates (proximity reaches them through the R-tree when the origin has coordinates).
    pub(crate) located: BTreeSet<(OrdF64, Slot)>,
    /// Nodes without coordinates.
    pub(crate) unlocated: BTreeSet<(OrdF64, Slot)>,
}

impl RegionSets {
    fn is_empty(&self) -> bool {
        self.located.is_empty() && self.unlocated.is_empty()
    }
}

/// The indexes the strategies use. All keyed by slot.
#[derive(Default)]
pub(crate) struct Indexes {
    /// Round-robin: indexed slots in slot order.
    pub(crate) by_slot: BTreeSet<Slot>,
    /// Least-loaded: (load, active tasks, slot).
    pub(crate) by_load: BTreeSet<(OrdF64, u32, Slot)>,
    /// Affinity: (ring position, slot), `VNODES` per node, positions from the node id.
    pub(crate) ring: BTreeSet<(u64, Slot)>,
    /// Privacy-aware: `[level]` holds nodes whose ceiling is at least `level`,
    /// by (reputation descending, load, slot).
    pub(crate) by_reputation: [BTreeSet<(Reverse<OrdF64>, OrdF64, Slot)>; 4],
    /// Proximity: region → (measured RTT, load, slot) of nodes that measured one.
    pub(crate) by_rtt: HashMap<Arc<str>, BTreeSet<(OrdF64, OrdF64, Slot)>>,
    /// Proximity: effective region → nodes.
    pub(crate) by_region: BTreeMap<Box<str>, RegionSets>,
    /// Proximity: nodes with coordinates.
    pub(crate) geo: RTree<GeoPoint>,
    /// Slots whose ring entries were left in place by `remove`.
    /// See [`Parked`].
    parked: HashMap<Slot, Parked>,
}

/// Ring entries and R-tree point of a removed slot, kept until the slot is
/// inserted again.
///
/// `NodeTable` re-indexes a node by removing its keys and inserting them
/// again, but the ring depends only on the id and the point only on the
/// coordinates, and they are the costliest part of a re-index. So `remove`
/// parks them and `insert` keeps what is unchanged. If the node was really
/// removed from the table, the entries stay until its slot is reused (the
/// table reuses free slots first); meanwhile walkers skip them because the
/// slot is empty.
struct Parked {
    id: NodeId,
    point: Option<[u32; 3]>,
}

/// Ring positions and R-tree points a bulk load adds at the end.
#[derive(Default)]
struct Deferred {
    ring: Vec<(u64, Slot)>,
    geo: Vec<GeoPoint>,
}

/// Could this node take any task at all?
pub(crate) fn indexable(e: &NodeEntry) -> bool {
    e.schedulable() && e.exclusive_attempts == 0
}

/// FNV-1a: stable across processes and releases, unlike std's `RandomState`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64's finaliser: spreads FNV's weak low bits over the whole ring.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Ring positions of a node's virtual nodes.
pub(crate) fn ring_positions(id: &str) -> impl Iterator<Item = u64> {
    let h = fnv1a(id.as_bytes());
    (0..VNODES).map(move |i| mix(h ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
}

/// Ring position of an affinity key.
pub(crate) fn key_position(key: &str) -> u64 {
    mix(fnv1a(key.as_bytes()))
}

/// RTT regions a node reported, deduplicated.
fn rtt_regions(e: &NodeEntry) -> impl Iterator<Item = (&Arc<str>, f64)> {
    e.live
        .region_rtt_ms
        .iter()
        .enumerate()
        .filter(|(i, (r, _))| !e.live.region_rtt_ms[..*i].iter().any(|(p, _)| p == r))
        .filter_map(|(_, (r, _))| measured_rtt(e, r).map(|ms| (r, ms)))
}

/// Everything a node's index entries are computed from. Two entries with
/// equal keys have identical index entries, so a change that leaves the key
/// alone (most heartbeats: load is whole percent) costs no re-index at all.
#[derive(Debug, PartialEq)]
pub(crate) struct IndexKey {
    indexable: bool,
    load: OrdF64,
    active: u32,
    reputation: OrdF64,
    ceiling: usize,
    rtts: Vec<(Arc<str>, OrdF64)>,
    region: Arc<str>,
    point: Option<[u32; 3]>,
    id: NodeId,
}

impl IndexKey {
    pub(crate) fn of(e: &NodeEntry) -> IndexKey {
        let region = match e.residency_region() {
            Some(r) => Arc::from(r),
            None => e.location.region.clone(),
        };
        IndexKey {
            indexable: indexable(e),
            load: OrdF64(e.load()),
            active: e.active_tasks(),
            reputation: OrdF64(e.reputation()),
            ceiling: e.privacy_ceiling() as usize,
            rtts: rtt_regions(e).map(|(r, ms)| (r.clone(), OrdF64(ms))).collect(),
            region,
            point: unit_vector(e.location.coordinates).map(|p| p.map(f32::to_bits)),
            id: e.id.clone(),
        }
    }

    fn point(&self) -> Option<[f32; 3]> {
        self.point.map(|p| p.map(f32::from_bits))
    }
}

impl Indexes {
    pub(crate) fn insert(&mut self, slot: Slot, e: &NodeEntry) {
        self.insert_key(slot, &IndexKey::of(e));
    }

    pub(crate) fn remove(&mut self, slot: Slot, e: &NodeEntry) {
        self.remove_key(slot, &IndexKey::of(e));
    }

    /// Re-indexes a node whose key was `before` and is now `after`: nothing if
    /// they are equal; only the ordered sets if the node stays indexable at the
    /// same place (a heartbeat that moved its load); everything otherwise.
    pub(crate) fn update(&mut self, slot: Slot, before: &IndexKey, after: &IndexKey) {
        if before == after {
            return;
        }
        if before.indexable && after.indexable && before.point == after.point && before.id == after.id {
            self.remove_ordered(slot, before);
            self.insert_ordered(slot, after);
            return;
        }
        self.remove_key(slot, before);
        self.insert_key(slot, after);
    }

    fn insert_key(&mut self, slot: Slot, k: &IndexKey) {
        self.insert_key_ring(slot, k, None);
    }

    /// Inserts a node's keys. Its ring positions and R-tree point go to
    /// `deferred` when given (a bulk load builds both once at the end).
    fn insert_key_ring(&mut self, slot: Slot, k: &IndexKey, deferred: Option<&mut Deferred>) {
        let parked = self.parked.remove(&slot);
        let (same_id, same_point) = parked.as_ref().map_or((false, false), |p| (p.id == k.id, p.point == k.point));
        // Re-indexed under the same id and at the same place: both are already right.
        if !same_id || !same_point {
            if let Some(p) = &parked {
                if !same_id {
                    self.unpark_ring(slot, &p.id);
                }
                if !same_point && let Some(old) = p.point {
                    self.geo.remove(&GeoPoint::new(old.map(f32::from_bits), slot));
                }
            }
            match deferred {
                Some(d) => {
                    if !same_id {
                        d.ring.extend(ring_positions(&k.id).map(|p| (p, slot)));
                    }
                    if !same_point && let Some(p) = k.point() {
                        d.geo.push(GeoPoint::new(p, slot));
                    }
                }
                None => {
                    if !same_id {
                        self.add_to_ring(slot, &k.id);
                    }
                    if !same_point && let Some(p) = k.point() {
                        self.geo.insert(GeoPoint::new(p, slot));
                    }
                }
            }
        }
        if !k.indexable {
            return;
        }
        self.by_slot.insert(slot);
        self.insert_ordered(slot, k);
    }

    /// Inserts many nodes into empty slots, building the ring and the R-tree
    /// in one pass each when they are empty (a restore).
    pub(crate) fn insert_many<'a>(&mut self, nodes: impl IntoIterator<Item = (Slot, &'a NodeEntry)>) {
        let mut d = Deferred::default();
        for (slot, e) in nodes {
            self.insert_key_ring(slot, &IndexKey::of(e), Some(&mut d));
        }
        if self.ring.is_empty() {
            // Sorted and built bottom-up: far cheaper than one insert each.
            // (An unstable sort first: `collect` then finds one sorted run.)
            d.ring.sort_unstable();
            self.ring = d.ring.into_iter().collect();
        } else {
            self.ring.extend(d.ring);
        }
        if self.geo.size() == 0 {
            self.geo = RTree::bulk_load(d.geo);
        } else {
            for p in d.geo {
                self.geo.insert(p);
            }
        }
    }

    /// The sets ordered by load, reputation and RTT.
    fn insert_ordered(&mut self, slot: Slot, k: &IndexKey) {
        let load = k.load;
        self.by_load.insert((load, k.active, slot));
        let rep = Reverse(k.reputation);
        for level in &mut self.by_reputation[..=k.ceiling] {
            level.insert((rep, load, slot));
        }
        for (r, ms) in &k.rtts {
            self.by_rtt.entry(r.clone()).or_default().insert((*ms, load, slot));
        }
        // Looked up before `entry`, which would allocate the key on every heartbeat that moves the load.
        let sets = match self.by_region.get_mut(&*k.region) {
            Some(sets) => sets,
            None => self.by_region.entry((*k.region).into()).or_default(),
        };
        match k.point {
            Some(_) => sets.located.insert((load, slot)),
            None => sets.unlocated.insert((load, slot)),
        };
    }

    fn remove_ordered(&mut self, slot: Slot, k: &IndexKey) {
        let load = k.load;
        self.by_load.remove(&(load, k.active, slot));
        let rep = Reverse(k.reputation);
        for level in &mut self.by_reputation[..=k.ceiling] {
            level.remove(&(rep, load, slot));
        }
        for (r, ms) in &k.rtts {
            if let Some(set) = self.by_rtt.get_mut(&**r) {
                set.remove(&(*ms, load, slot));
                if set.is_empty() {
                    self.by_rtt.remove(&**r);
                }
            }
        }
        if let Some(sets) = self.by_region.get_mut(&*k.region) {
            match k.point {
                Some(_) => sets.located.remove(&(load, slot)),
                None => sets.unlocated.remove(&(load, slot)),
            };
            if sets.is_empty() {
                self.by_region.remove(&*k.region);
            }
        }
    }

    fn add_to_ring(&mut self, slot: Slot, id: &str) {
        for p in ring_positions(id) {
            self.ring.insert((p, slot));
        }
    }

    fn unpark_ring(&mut self, slot: Slot, id: &str) {
        for pos in ring_positions(id) {
            self.ring.remove(&(pos, slot));
        }
    }

    fn remove_key(&mut self, slot: Slot, k: &IndexKey) {
        self.parked.insert(slot, Parked { id: k.id.clone(), point: k.point });
        if !k.indexable {
            return;
        }
        self.by_slot.remove(&slot);
        self.remove_ordered(slot, k);
    }

    /// Compares with indexes rebuilt from scratch; `Err` names the first index that differs.
    /// `occupied` tells which slots hold a node: parked entries must belong to empty slots.
    pub(crate) fn diff(&self, fresh: &Indexes, occupied: impl Fn(Slot) -> bool) -> Result<(), String> {
        if let Some(s) = self.parked.keys().find(|s| occupied(**s)) {
            return Err(format!("slot {s} holds a node but is parked"));
        }
        let live = |s: &Slot| !self.parked.contains_key(s);
        let geo = |t: &RTree<GeoPoint>| {
            let mut v: Vec<_> =
                t.iter().filter(|p| live(&p.data)).map(|p| (p.data, p.geom().map(f32::to_bits))).collect();
            v.sort_unstable();
            v
        };
        let ring: BTreeSet<(u64, Slot)> = self.ring.iter().filter(|(_, s)| live(s)).copied().collect();
        let check = |ok: bool, what: &str| {
            if ok { Ok(()) } else { Err(format!("index {what} is out of step")) }
        };
        check(self.by_slot == fresh.by_slot, "by_slot")?;
        check(self.by_load == fresh.by_load, "by_load")?;
        check(ring == fresh.ring, "ring")?;
        check(self.by_reputation == fresh.by_reputation, "by_reputation")?;
        check(self.by_rtt == fresh.by_rtt, "by_rtt")?;
        check(self.by_region == fresh.by_region, "by_region")?;
        check(geo(&self.geo) == geo(&fresh.geo), "geo")
    }
}
