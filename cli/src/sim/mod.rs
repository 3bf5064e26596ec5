//! Simulated fog nodes that speak the real `NodeService.Session` protocol.
//!
//! Used by `fogctl sim`, the dev run, the end-to-end tests and the load
//! simulator. A simulated node is one tokio task on a shared
//! `tonic::transport::Channel`; it runs only the built-in tasks, in-process,
//! and refuses exec tasks. It is not a node agent: no join, no TLS identity,
//! no OS metrics (its usage figures are derived from the tasks it runs).

mod builtin;
mod node;
mod spec;

pub use builtin::{Execution, execute, hash_chain};
pub use node::{SimNodeHandle, SimNodeStats, SimOptions, spawn_node};
pub use spec::SimNodeSpec;
