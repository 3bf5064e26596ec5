//! Proximity: the lowest estimated latency from the task's origin
//! ([`estimate_latency_ms`](super::estimate_latency_ms)), ties → lower load,
//! then lower slot.
//!
//! The estimate has three sources, so the walk is a lazy k-way merge of
//! streams that are each already sorted by (estimate, load, slot):
//! - nodes that measured an RTT to the origin's region (`by_rtt[region]`);
//! - nodes with coordinates when the origin has some: R-tree nearest-first
//!   (ties in distance re-sorted by load, slot), minus the nodes above;
//! - the rest, one stream per node region (`by_region`), whose estimate is the
//!   region matrix value, constant within the stream. A region stream enters
//!   the merge as a lower bound and is opened only when that bound comes up,
//!   so far regions cost nothing.

use super::latency::{LatencyModel, geo_ms, measured_rtt, unit_vector};
use crate::domain::Location;
use crate::registry::index::{GeoPoint, OrdF64};
use crate::registry::{NodeTable, Slot};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::btree_set;

type Item = (f64, f64, Slot);

/// Nearest-first over the R-tree, grouped so equal estimates come out by (load, slot).
struct Geo<'a> {
    inner: Box<dyn Iterator<Item = Item> + 'a>,
    pending: Option<Item>,
    /// The current group, sorted descending so `pop` yields ascending.
    group: Vec<Item>,
}

impl Iterator for Geo<'_> {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        if let Some(x) = self.group.pop() {
            return Some(x);
        }
        let first = self.pending.take().or_else(|| self.inner.next())?;
        self.group.push(first);
        for x in self.inner.by_ref() {
            if x.0 == first.0 {
                self.group.push(x);
            } else {
                self.pending = Some(x);
                break;
            }
        }
        self.group.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
        self.group.pop()
    }
}

enum Source<'a> {
    Rtt(btree_set::Iter<'a, (OrdF64, OrdF64, Slot)>),
    Geo(Geo<'a>),
    Region(f64, btree_set::Iter<'a, (OrdF64, Slot)>),
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    est: OrdF64,
    load: OrdF64,
    slot: Slot,
    src: usize,
    /// False for a region stream not opened yet (its head is a lower bound).
    opened: bool,
}

/// Slots in (estimate, load, slot) order, with their estimates.
pub(super) struct Order<'a> {
    nodes: &'a NodeTable,
    region: &'a str,
    sources: Vec<Source<'a>>,
    heap: BinaryHeap<Reverse<Head>>,
}

impl<'a> Order<'a> {
    pub(super) fn new(nodes: &'a NodeTable, origin: &'a Location, model: &LatencyModel) -> Order<'a> {
        let idx = &nodes.index;
        let region: &str = &origin.region;
        let mut o = Order { nodes, region, sources: Vec::new(), heap: BinaryHeap::new() };
        if let Some(set) = (!region.is_empty()).then(|| idx.by_rtt.get(region)).flatten() {
            o.add(Source::Rtt(set.iter()));
        }
        let here = unit_vector(origin.coordinates);
        if let Some(q) = here {
            let inner = idx.geo.nearest_neighbor_iter(&q).filter_map(move |p: &GeoPoint| {
                let e = nodes.entry(p.data)?;
                if measured_rtt(e, region).is_some() {
                    return None;
                }
                Some((geo_ms(p.geom(), &q), e.load(), p.data))
            });
            let geo = Geo { inner: Box::new(inner), pending: None, group: Vec::new() };
            o.add(Source::Geo(geo));
        }
        for (g, sets) in &idx.by_region {
            let est = model.region_ms(region, g);
            let mut lazy = |set: &'a btree_set::BTreeSet<(OrdF64, Slot)>| {
                if !set.is_empty() {
                    o.sources.push(Source::Region(est, set.iter()));
                    o.heap.push(Reverse(Head {
                        est: OrdF64(est),
                        load: OrdF64(f64::NEG_INFINITY),
                        slot: 0,
                        src: o.sources.len() - 1,
                        opened: false,
                    }));
                }
            };
            lazy(&sets.unlocated);
            // With origin coordinates, located nodes are reached by distance instead.
            if here.is_none() {
                lazy(&sets.located);
            }
        }
        o
    }

    fn add(&mut self, s: Source<'a>) {
        self.sources.push(s);
        self.advance(self.sources.len() - 1);
    }

    /// Pushes the next item of source `src`, if any.
    fn advance(&mut self, src: usize) {
        let (nodes, region) = (self.nodes, self.region);
        let next = match &mut self.sources[src] {
            Source::Rtt(it) => it.next().map(|&(ms, load, s)| (ms.0, load.0, s)),
            Source::Geo(g) => g.next(),
            Source::Region(est, it) => it
                .find(|(_, s)| nodes.entry(*s).is_some_and(|e| measured_rtt(e, region).is_none()))
                .map(|&(load, s)| (*est, load.0, s)),
        };
        if let Some((est, load, slot)) = next {
            self.heap.push(Reverse(Head { est: OrdF64(est), load: OrdF64(load), slot, src, opened: true }));
        }
    }
}

impl Iterator for Order<'_> {
    type Item = (f64, Slot);
    fn next(&mut self) -> Option<(f64, Slot)> {
        loop {
            let Reverse(h) = self.heap.pop()?;
            self.advance(h.src);
            if h.opened {
                return Some((h.est.0, h.slot));
            }
        }
    }
}
