//! Fogplane's deterministic core.
//!
//! Everything here is a pure function of its inputs and the `now` it is given:
//! no sockets, no clocks, no threads, no async. The coordinator's engine owns
//! one instance of each piece of state below and feeds it events; the core
//! answers with decisions. That makes every rule (routing, task lifecycle,
//! liveness, topology revisions) testable with plain unit and property tests
//! and benchmarkable in isolation.
//!
//! What this crate is not: it does not persist anything, send anything or
//! know the wire format.

pub mod domain;
pub mod liveness;
pub mod registry;
pub mod scheduling;
pub mod tasks;
pub mod topology;
