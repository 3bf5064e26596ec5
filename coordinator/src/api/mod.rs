//! gRPC adapters: one file per service. Each converts and validates the
//! request at the boundary, sends one command to the engine, and converts the
//! answer back. No business logic lives here; `error.rs` is the one place that
//! maps errors to statuses.

mod auth;
pub mod error;
mod fleet;
mod node;
mod system;
mod task;
mod topology;
pub mod validate;

pub use auth::AuthApi;
pub use error::ApiError;
pub use fleet::FleetApi;
pub use node::{NodeApi, registration, session_event};
pub use system::SystemApi;
pub use task::TaskApi;
pub use topology::TopologyApi;

use crate::engine::{Command, EngineHandle};
use tokio::sync::oneshot;

/// Sends a command built around a reply channel and waits for the answer.
pub(crate) async fn ask<T>(
    engine: &EngineHandle,
    make: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> Command,
) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    engine.send(make(tx)).await?;
    rx.await.map_err(error::engine_gone)?
}

/// Page size: 0 means the default.
pub(crate) fn page_size(v: u32, default: usize) -> usize {
    if v == 0 { default } else { v as usize }
}
