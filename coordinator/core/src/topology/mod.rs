//! The topology the dashboards watch: a small per-node view, a revisioned
//! change log that watchers resume from, fleet aggregates and their history.
//!
//! Everything here is plain data computed from the node table; the watch hub
//! that fans events out to gRPC streams lives in the coordinator crate.
//! What this module is not: it never mutates the node table and never decides
//! anything about nodes; it only describes them.

mod aggregate;
mod history;
mod log;
mod node;

pub use aggregate::{Aggregates, NodeCounts, RegionSummary, TaskCounts, aggregate, regions};
pub use history::{AggregateSnapshot, HISTORY_CAPACITY, History};
pub use log::{Change, Event, TooOld, TopologyLog};
pub use node::{ChangeKind, LOAD_EPSILON, RTT_EPSILON_MS, TopoNode, classify};
