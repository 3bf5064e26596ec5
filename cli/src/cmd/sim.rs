//! `fogctl sim`: runs demo simulated nodes against the coordinator until Ctrl-C.

use std::process::ExitCode;
use std::time::Duration;

use super::Ctx;
use crate::args::SimArgs;
use crate::error::CliError;
use crate::sim::{SimNodeHandle, SimNodeSpec, SimOptions, spawn_node};

/// Nodes per HTTP/2 connection when `--connections` is not given. The
/// coordinator's HTTP/2 `max_concurrent_streams` must allow at least this many.
pub const NODES_PER_CONNECTION: usize = 1000;

/// Runs `fogctl sim`.
pub async fn run(ctx: &Ctx, args: SimArgs) -> Result<ExitCode, CliError> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(CliError::Usage("--fail-rate must be between 0 and 1".into()));
    }
    if !(args.task_speed > 0.0 && args.task_speed.is_finite()) {
        return Err(CliError::Usage("--task-speed must be positive".into()));
    }
    let connections = args.connections.unwrap_or(args.nodes.div_ceil(NODES_PER_CONNECTION)).max(1);
    let endpoint = ctx.endpoint()?;
    // Lazy: nodes start even while the coordinator is down and reconnect with backoff.
    let channels: Vec<_> = (0..connections).map(|_| endpoint.connect_lazy()).collect();
    let opts = SimOptions { fail_rate: args.fail_rate, ..SimOptions::default() };
    eprintln!(
        "starting {} simulated nodes ({}-{:05}…) over {connections} connection(s) to {}",
        args.nodes, args.id_prefix, args.start_index, ctx.url
    );
    let mut nodes: Vec<SimNodeHandle> = Vec::with_capacity(args.nodes);
    let batch = (args.spawn_rate.max(1) as usize).div_ceil(10);
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut report = tokio::time::interval(Duration::from_secs(5));
    report.tick().await;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = ticker.tick(), if nodes.len() < args.nodes => {
                let end = (nodes.len() + batch).min(args.nodes);
                for n in nodes.len()..end {
                    let spec = SimNodeSpec::demo_with_prefix(&args.id_prefix, args.start_index + n);
                    let node = spawn_node(channels[n % connections].clone(), spec, opts.clone());
                    node.set_task_speed(args.task_speed);
                    nodes.push(node);
                }
            }
            _ = report.tick() => eprintln!("{}", stats_line(&nodes)),
            _ = &mut ctrl_c => break,
        }
    }
    for n in &nodes {
        n.stop();
    }
    eprintln!("stopped; {}", stats_line(&nodes));
    Ok(ExitCode::SUCCESS)
}

fn stats_line(nodes: &[SimNodeHandle]) -> String {
    let mut connected = 0;
    let (mut hb, mut asg, mut res, mut acked, mut cancels, mut running, mut unacked) = (0, 0, 0, 0, 0, 0, 0);
    for n in nodes {
        let s = n.stats();
        connected += usize::from(s.connected);
        hb += s.heartbeats_sent;
        asg += s.assignments_received;
        res += s.results_sent;
        acked += s.results_acked;
        cancels += s.cancellations_received;
        running += s.running;
        unacked += s.unacked_results;
    }
    format!(
        "nodes {} connected {connected} heartbeats {hb} assignments {asg} running {running} \
         results {res} acked {acked} unacked {unacked} cancellations {cancels}",
        nodes.len()
    )
}
