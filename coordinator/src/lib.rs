//! The Fogplane coordinator: the async shell around `fog-core`.
//!
//! Data flows one way: `api` adapters validate and convert requests into
//! engine commands → the `engine` actor asks the pure core for decisions →
//! the `store` writer commits them durably (group commit) → only then are the
//! effects run (replies, assignments sent to node sessions, watch events).

pub mod api;
pub mod auth;
pub mod config;
pub mod convert;
pub mod engine;
pub mod ha;
pub mod identity;
pub mod metrics;
pub mod server;
pub mod store;
