//! fogctl: the Fogplane command line, and the simulated nodes of `fogctl sim`.
//!
//! The binary (`src/main.rs`) only parses arguments and calls [`cmd::run`].
//! [`args`] defines the command line, [`cmd`] holds one module per noun,
//! [`config`] the named contexts and saved sessions,
//! [`output`] and [`json`] render replies, [`error`] maps failures to exit
//! codes, and [`sim`] is the simulated-node library (also used by tests and
//! the load simulator).

pub mod args;
pub mod cmd;
pub mod config;
pub mod error;
pub mod json;
pub mod output;
pub mod sim;
