//! `fog-agent`, the Fogplane node agent: holds one session with the
//! coordinator, reports the device's load and power state, runs the tasks it
//! is given under its own exec policy, and keeps unacknowledged results on
//! disk so they survive outages and crashes.
//!
//! Modules: [`config`] (file + env + flags, validated whole), [`transport`]
//! (the seam where mTLS plugs in; plaintext only in this build), [`session`]
//! (hello, heartbeats, reconnect, assignments, acks), [`exec`] (built-ins and
//! processes), [`metrics`] (procfs/sysfs readings, power mode), [`state`]
//! (crash-safe local records), [`identity`] (token, keys, certificates,
//! renewal schedule) and [`join`] (pinning the coordinator by the token's CA
//! fingerprint, then `Join`).

pub mod config;
pub mod exec;
pub mod identity;
pub mod join;
pub mod metrics;
pub mod session;
pub mod state;
pub mod transport;

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use config::AgentConfig;
use exec::{ExecPolicy, Executor};
use metrics::{Sampler, Sources};
use session::{Agent, Identity, SessionSettings};
use state::LocalState;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The state dir could not be opened or recovered.
    #[error("state dir {path}: {source}")]
    State {
        /// The directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Runs the agent until `shutdown` fires.
pub async fn run(cfg: AgentConfig, shutdown: CancellationToken) -> Result<(), AgentError> {
    let state_err = |source| AgentError::State { path: cfg.state_dir.display().to_string(), source };
    let (state, recovered) = LocalState::open(&cfg.state_dir).map_err(state_err)?;
    for (task, attempt) in &recovered.interrupted {
        // Not re-run and not reported: the coordinator re-queues it as a new attempt.
        warn!(task.id = %task, attempt, "attempt was interrupted by the agent's restart; dropped");
    }
    if !recovered.unacked.is_empty() {
        info!(results = recovered.unacked.len(), "results to deliver from before the restart");
    }
    if cfg.policy == ExecPolicy::AllowAll {
        warn!("dev mode: exec tasks may run ANY command on this device");
    }
    if cfg.credentials.is_none() {
        warn!("insecure mode: plaintext session, node identity taken from the hello");
    }
    let sampler = Sampler::new(Sources {
        proc_root: cfg.procfs_root.clone(),
        sys_root: cfg.sysfs_root.clone(),
        disk_path: cfg.state_dir.clone(),
    });
    let identity = Identity {
        node_id: cfg.node_id.clone(),
        name: cfg.name.clone(),
        node_type: cfg.node_type,
        capacity: cfg.capacity.apply(sampler.capacity()),
        location: cfg.location.clone(),
        labels: cfg.labels.clone(),
        supports_onion_routing: cfg.supports_onion_routing,
    };
    info!(node.id = %identity.node_id, capacity = ?identity.capacity, coordinators = ?cfg.coordinators, "agent starting");
    let settings = SessionSettings {
        coordinators: cfg.coordinators.clone(),
        transport: cfg.transport.clone(),
        reconnect_min: cfg.reconnect_min,
        reconnect_max: cfg.reconnect_max,
        welcome_timeout: Duration::from_secs(10),
        default_heartbeat: Duration::from_secs(1),
    };
    let executor =
        Executor { policy: cfg.policy.clone(), work_root: cfg.state_dir.join("work"), kill_grace: cfg.kill_grace };
    let mut agent = Agent::new(identity, settings, state, recovered.unacked, executor, sampler, shutdown);
    if let Some(creds) = cfg.credentials.clone() {
        agent = agent.with_credentials(creds, cfg.state_dir.clone(), crate::identity::renew_fraction_from_env());
    }
    agent.run().await;
    Ok(())
}
