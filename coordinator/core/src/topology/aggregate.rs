//! Fleet figures computed from the node table: counts by status, type and
//! region, capacity, task counters and SLA compliance.

use crate::domain::{NodeType, Resources};
use crate::registry::{Liveness, NodeStatus, NodeTable};
use std::collections::{BTreeMap, BTreeSet};

/// Node counts by operator-visible status over a group of nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// All nodes.
    pub total: u64,
    /// Healthy with tasks.
    pub active: u64,
    /// Healthy without tasks.
    pub idle: u64,
    /// Healthy and loaded.
    pub busy: u64,
    /// Suspect or not yet seen.
    pub suspect: u64,
    /// Offline.
    pub offline: u64,
    /// In maintenance.
    pub maintenance: u64,
}

impl NodeCounts {
    /// Counts one node.
    pub fn add(&mut self, status: NodeStatus) {
        self.total += 1;
        *match status {
            NodeStatus::Active => &mut self.active,
            NodeStatus::Idle => &mut self.idle,
            NodeStatus::Busy => &mut self.busy,
            NodeStatus::Suspect => &mut self.suspect,
            NodeStatus::Offline => &mut self.offline,
            NodeStatus::Maintenance => &mut self.maintenance,
        } += 1;
    }
}

/// Task counters the task engine keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Waiting in the queue.
    pub queued: u64,
    /// Assigned or running.
    pub running: u64,
    /// Succeeded since start.
    pub completed: u64,
    /// Failed since start.
    pub failed: u64,
    /// Placed at least once since start.
    pub placed: u64,
    /// Of those, placed within their tier's target.
    pub sla_met: u64,
}

/// Fleet aggregates at one revision (mirror of `fog.v1.Aggregates`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aggregates {
    /// Counts by status.
    pub nodes: NodeCounts,
    /// Counts per node type name (`edge_device`, …); every type is present.
    pub nodes_by_type: BTreeMap<&'static str, NodeCounts>,
    /// Capacity of the nodes that are not offline.
    pub total_capacity: Resources,
    /// Unreserved capacity of the schedulable nodes.
    pub available: Resources,
    /// Queued tasks.
    pub queued_tasks: u64,
    /// Running tasks.
    pub running_tasks: u64,
    /// Completed tasks.
    pub completed_tasks: u64,
    /// Failed tasks.
    pub failed_tasks: u64,
    /// Share of placed tasks that met their target (1 when none was placed).
    pub sla_compliance: f64,
    /// Mean load over healthy nodes (0 when none is healthy).
    pub average_load: f64,
}

/// Mean of loads, without a division by zero.
#[derive(Default)]
struct Mean {
    sum: f64,
    n: u64,
}

impl Mean {
    fn add(&mut self, x: f64) {
        self.sum += x;
        self.n += 1;
    }

    fn get(&self) -> f64 {
        if self.n == 0 { 0.0 } else { self.sum / self.n as f64 }
    }
}

/// The aggregates of the fleet.
pub fn aggregate(nodes: &NodeTable, tasks: &TaskCounts) -> Aggregates {
    let mut by_type = [NodeCounts::default(); NodeType::ALL.len()];
    let mut a = Aggregates::default();
    let mut load = Mean::default();
    for e in nodes.iter() {
        let status = e.status();
        a.nodes.add(status);
        by_type[type_index(e.node_type)].add(status);
        if e.liveness != Liveness::Offline {
            a.total_capacity = a.total_capacity.saturating_add(e.capacity);
        }
        if e.schedulable() {
            a.available = a.available.saturating_add(e.free());
        }
        if e.liveness == Liveness::Healthy {
            load.add(e.load());
        }
    }
    a.nodes_by_type = NodeType::ALL.iter().map(|t| (t.as_str(), by_type[type_index(*t)])).collect();
    a.queued_tasks = tasks.queued;
    a.running_tasks = tasks.running;
    a.completed_tasks = tasks.completed;
    a.failed_tasks = tasks.failed;
    a.sla_compliance = if tasks.placed == 0 { 1.0 } else { (tasks.sla_met as f64 / tasks.placed as f64).min(1.0) };
    a.average_load = load.get();
    a
}

fn type_index(t: NodeType) -> usize {
    NodeType::ALL.iter().position(|x| *x == t).unwrap_or(0)
}

/// A region with its zones and counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionSummary {
    /// Region name ("" for nodes without one).
    pub region: String,
    /// Counts by status.
    pub nodes: NodeCounts,
    /// Non-empty zone names, sorted.
    pub zones: Vec<String>,
    /// Mean load over its healthy nodes.
    pub average_load: f64,
}

/// Every region that has nodes, sorted by name.
pub fn regions(nodes: &NodeTable) -> Vec<RegionSummary> {
    #[derive(Default)]
    struct Acc<'a> {
        nodes: NodeCounts,
        zones: BTreeSet<&'a str>,
        load: Mean,
    }
    let mut by_region: BTreeMap<&str, Acc<'_>> = BTreeMap::new();
    for e in nodes.iter() {
        let acc = by_region.entry(e.region()).or_default();
        acc.nodes.add(e.status());
        if !e.location.zone.is_empty() {
            acc.zones.insert(&e.location.zone);
        }
        if e.liveness == Liveness::Healthy {
            acc.load.add(e.load());
        }
    }
    by_region
        .into_iter()
        .map(|(region, acc)| RegionSummary {
            region: region.to_string(),
            nodes: acc.nodes,
            zones: acc.zones.into_iter().map(str::to_string).collect(),
            average_load: acc.load.get(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LABEL_REGION, Location, PowerMode};
    use crate::registry::{NodeEntry, NodeRegistration};

    fn cap(cpu: u32, mem: u64) -> Resources {
        Resources { cpu_millis: cpu, memory_mb: mem, ..Resources::ZERO }
    }

    fn add(t: &mut NodeTable, id: &str, ty: NodeType, region: &str, zone: &str, f: impl FnOnce(&mut NodeEntry)) {
        let reg = NodeRegistration {
            id: id.into(),
            node_type: ty,
            capacity: cap(4_000, 8_192),
            location: Location { region: region.into(), zone: zone.into(), coordinates: None },
            ..Default::default()
        };
        t.register(reg, 0);
        t.update(id, |e| {
            e.liveness = Liveness::Healthy;
            f(e)
        });
    }

    /// idle, active (50 % reserved), busy (cpu 95 %), suspect, offline,
    /// maintenance, power-save (healthy, idle but not schedulable).
    fn table() -> NodeTable {
        let mut t = NodeTable::new();
        add(&mut t, "idle", NodeType::ComputeNode, "eu-west", "b", |_| {});
        add(&mut t, "active", NodeType::ComputeNode, "eu-west", "a", |e| {
            e.allocated = cap(2_000, 1_024);
            e.attempts.insert(("t1".into(), 1));
        });
        add(&mut t, "busy", NodeType::EdgeDevice, "us-east", "a", |e| e.live.cpu_usage = 0.95);
        add(&mut t, "suspect", NodeType::EdgeDevice, "us-east", "", |e| e.liveness = Liveness::Suspect);
        add(&mut t, "offline", NodeType::Gateway, "us-east", "c", |e| e.liveness = Liveness::Offline);
        add(&mut t, "maint", NodeType::RelayNode, "", "", |e| e.maintenance = true);
        add(&mut t, "saver", NodeType::EdgeDevice, "ap-south", "", |e| {
            e.live.power_mode = PowerMode::PowerSave;
            e.labels.insert(LABEL_REGION.into(), "eu-west".into());
        });
        t
    }

    #[test]
    fn aggregates_of_a_small_fleet() {
        let tasks = TaskCounts { queued: 3, running: 1, completed: 7, failed: 2, placed: 8, sla_met: 6 };
        let a = aggregate(&table(), &tasks);
        let counts = NodeCounts { total: 7, active: 1, idle: 2, busy: 1, suspect: 1, offline: 1, maintenance: 1 };
        assert_eq!(a.nodes, counts);
        assert_eq!(a.nodes_by_type.len(), 5);
        assert_eq!(
            a.nodes_by_type["edge_device"],
            NodeCounts { total: 3, busy: 1, suspect: 1, idle: 1, ..Default::default() }
        );
        assert_eq!(a.nodes_by_type["mixnode"], NodeCounts::default());
        assert_eq!(a.nodes_by_type["gateway"].offline, 1);
        // Six nodes are not offline.
        assert_eq!(a.total_capacity, cap(24_000, 6 * 8_192));
        // Schedulable: idle, active (half reserved), busy; not suspect, maintenance or power-save.
        assert_eq!(a.available, cap(4_000 + 2_000 + 4_000, 8_192 * 3 - 1_024));
        assert_eq!((a.queued_tasks, a.running_tasks, a.completed_tasks, a.failed_tasks), (3, 1, 7, 2));
        assert!((a.sla_compliance - 0.75).abs() < 1e-9);
        // Healthy: idle 0, active 0.5, busy 0.95, maint 0, saver 0.
        assert!((a.average_load - 1.45 / 5.0).abs() < 1e-9, "{}", a.average_load);
    }

    #[test]
    fn empty_fleet_and_no_placements() {
        let a = aggregate(&NodeTable::new(), &TaskCounts::default());
        assert_eq!(a.nodes, NodeCounts::default());
        assert_eq!((a.sla_compliance, a.average_load), (1.0, 0.0));
        assert!(regions(&NodeTable::new()).is_empty());
    }

    #[test]
    fn regions_group_by_effective_region() {
        let r = regions(&table());
        let names: Vec<_> = r.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(names, ["", "eu-west", "us-east"], "admin label moves saver to eu-west");
        let eu = &r[1];
        assert_eq!(eu.nodes.total, 3);
        assert_eq!(eu.zones, ["a", "b"]);
        assert!((eu.average_load - 0.5 / 3.0).abs() < 1e-9);
        let us = &r[2];
        assert_eq!((us.nodes.busy, us.nodes.suspect, us.nodes.offline), (1, 1, 1));
        assert_eq!(us.zones, ["a", "c"]);
        assert!((us.average_load - 0.95).abs() < 1e-9);
    }
}
