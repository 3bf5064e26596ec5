//! `fogctl topology [--nodes] [--watch]` and `fogctl topology history`.

use fog_proto::auth::Authed;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use fog_proto::v1::topology_service_client::TopologyServiceClient;
use fog_proto::v1::watch_topology_response::Event;
use fog_proto::v1::{
    Aggregates, GetTopologyHistoryRequest, GetTopologyHistoryResponse, GetTopologyRequest, GetTopologyResponse,
    NodeCounts, NodeStatus, NodeType, SnapshotReason, TopologyNode, WatchTopologyRequest, WatchTopologyResponse,
};
use futures::StreamExt;

use super::Ctx;
use crate::args::{DetailArg, OutputFormat, TopologyArgs, TopologyCommand};
use crate::error::CliError;
use crate::json::ToJson;
use crate::output::{self, Shape, Table, cores, emit, key_values, mib, percent, time};
use crate::short;

/// Runs `fogctl topology …`.
pub async fn run(ctx: &Ctx, args: TopologyArgs) -> Result<ExitCode, CliError> {
    let mut client = TopologyServiceClient::new(ctx.connect().await?);
    if let Some(TopologyCommand::History { limit }) = args.command {
        let reply = client
            .get_topology_history(GetTopologyHistoryRequest { limit: limit.unwrap_or(0) })
            .await
            .map_err(|s| ctx.status(s))?
            .into_inner();
        emit(ctx.format, || reply.to_json(), || render_history(&reply));
    } else if args.watch {
        watch(ctx, &mut client, args.detail).await?;
    } else {
        let reply = client
            .get_topology(GetTopologyRequest { include_nodes: args.nodes })
            .await
            .map_err(|s| ctx.status(s))?
            .into_inner();
        emit(ctx.format, || reply.to_json(), || render(&reply));
    }
    Ok(ExitCode::SUCCESS)
}

fn counts_text(c: &NodeCounts) -> String {
    format!(
        "{} total: {} active, {} idle, {} busy, {} suspect, {} offline, {} maintenance",
        c.total, c.active, c.idle, c.busy, c.suspect, c.offline, c.maintenance
    )
}

fn aggregates_block(a: &Aggregates) -> String {
    let cap = a.total_capacity.unwrap_or_default();
    let free = a.available.unwrap_or_default();
    key_values(&[
        ("nodes", counts_text(&a.nodes.unwrap_or_default())),
        (
            "cpu",
            format!("{} of {} cores available", cores(u64::from(free.cpu_millis)), cores(u64::from(cap.cpu_millis))),
        ),
        ("memory", format!("{} of {} available", mib(free.memory_mb), mib(cap.memory_mb))),
        ("gpus", format!("{} of {} available", free.gpus, cap.gpus)),
        (
            "tasks",
            format!(
                "{} queued, {} running, {} completed, {} failed",
                a.queued_tasks, a.running_tasks, a.completed_tasks, a.failed_tasks
            ),
        ),
        ("average load", percent(a.average_load)),
        ("sla compliance", percent(a.sla_compliance)),
    ])
}

fn render(r: &GetTopologyResponse) -> String {
    let mut out = format!("revision {} (epoch {})\n\n", r.revision, r.epoch);
    let aggregates = r.aggregates.clone().unwrap_or_default();
    out.push_str(&aggregates_block(&aggregates));
    let mut t =
        Table::new(&["REGION", "TOTAL", "ACTIVE", "IDLE", "BUSY", "SUSPECT", "OFFLINE", "MAINT", "LOAD", "ZONES"]);
    for region in &r.regions {
        let c = region.nodes.unwrap_or_default();
        let name = if region.region.is_empty() { "(none)".to_string() } else { region.region.clone() };
        t.row(vec![
            name,
            c.total.to_string(),
            c.active.to_string(),
            c.idle.to_string(),
            c.busy.to_string(),
            c.suspect.to_string(),
            c.offline.to_string(),
            c.maintenance.to_string(),
            percent(region.average_load),
            region.zones.join(","),
        ]);
    }
    if !t.is_empty() {
        out.push('\n');
        out.push_str(&t.render());
    }
    let by_type: BTreeMap<_, _> = aggregates.nodes_by_type.iter().collect();
    if !by_type.is_empty() {
        let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "IDLE", "BUSY", "SUSPECT", "OFFLINE", "MAINT"]);
        for (kind, c) in by_type {
            t.row(vec![
                kind.clone(),
                c.total.to_string(),
                c.active.to_string(),
                c.idle.to_string(),
                c.busy.to_string(),
                c.suspect.to_string(),
                c.offline.to_string(),
                c.maintenance.to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    if !r.nodes.is_empty() {
        let mut t = Table::new(&["NODE", "REGION", "ZONE", "TYPE", "STATUS", "LOAD", "TASKS", "RTT"]);
        for n in &r.nodes {
            t.row(vec![
                n.id.clone(),
                n.region.clone(),
                n.zone.clone(),
                short!(NodeType, n.node_type, "NODE_TYPE_"),
                node_status(n),
                percent(n.load),
                n.active_tasks.to_string(),
                format!("{:.1}ms", n.session_rtt_ms),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

fn node_status(n: &TopologyNode) -> String {
    let s = short!(NodeStatus, n.status, "NODE_STATUS_");
    if n.flapping { format!("{s},flapping") } else { s }
}

fn render_history(r: &GetTopologyHistoryResponse) -> String {
    if r.snapshots.is_empty() {
        return "no snapshots yet\n".to_string();
    }
    let mut t = Table::new(&[
        "TAKEN",
        "REVISION",
        "NODES",
        "ACTIVE",
        "OFFLINE",
        "QUEUED",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "LOAD",
        "SLA",
    ]);
    for s in &r.snapshots {
        let a = s.aggregates.clone().unwrap_or_default();
        let c = a.nodes.unwrap_or_default();
        t.row(vec![
            time(s.taken_at.as_ref()),
            s.revision.to_string(),
            c.total.to_string(),
            c.active.to_string(),
            c.offline.to_string(),
            a.queued_tasks.to_string(),
            a.running_tasks.to_string(),
            a.completed_tasks.to_string(),
            a.failed_tasks.to_string(),
            percent(a.average_load),
            percent(a.sla_compliance),
        ]);
    }
    t.render()
}

/// The client's view while watching: where it is, to resume after a broken stream.
#[derive(Debug, Default)]
pub struct WatchView {
    /// Revision after the last applied message.
    pub revision: u64,
    /// The coordinator run's epoch.
    pub epoch: String,
    /// Nodes gathered from the chunks of the snapshot being received.
    snapshot_nodes: usize,
}

impl WatchView {
    /// Applies one message and returns the line to print, if any (bookmarks are quiet).
    pub fn apply(&mut self, m: &WatchTopologyResponse) -> Option<String> {
        self.revision = m.revision;
        self.epoch.clone_from(&m.epoch);
        let rev = m.revision;
        match m.event.as_ref()? {
            Event::Bookmark(_) => None,
            Event::Snapshot(s) => {
                if s.first {
                    self.snapshot_nodes = 0;
                }
                self.snapshot_nodes += s.nodes.len();
                let resync = match SnapshotReason::try_from(m.snapshot_reason) {
                    Ok(SnapshotReason::ResyncTooOld) => Some("resume revision too old or from another epoch"),
                    Ok(SnapshotReason::ResyncLagged) => Some("this watcher fell behind"),
                    _ => None,
                };
                let mut line = String::new();
                if let (true, Some(why)) = (s.first, resync) {
                    line.push_str(&format!("rev {rev:<8} --- resync: {why}; view replaced ---\n"));
                }
                if !s.last {
                    // Quiet until the snapshot is complete; a huge one shows progress lines only at its end.
                    return if line.is_empty() { None } else { Some(line.trim_end().to_string()) };
                }
                let summary = s.aggregates.as_ref().map(summary).unwrap_or_default();
                line.push_str(&format!(
                    "rev {rev:<8} snapshot  {} nodes, {} regions  {summary}",
                    self.snapshot_nodes,
                    s.regions.len()
                ));
                Some(line)
            }
            Event::Node(d) => {
                let n = d.node.clone().unwrap_or_default();
                Some(if d.removed {
                    format!("rev {rev:<8} node      {} removed", n.id)
                } else {
                    let place: Vec<&str> =
                        [n.region.as_str(), n.zone.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
                    let mut line = format!(
                        "rev {rev:<8} node      {} {} load {} tasks {}",
                        n.id,
                        node_status(&n),
                        percent(n.load),
                        n.active_tasks
                    );
                    if !place.is_empty() {
                        line.push_str(&format!(" in {}", place.join("/")));
                    }
                    line
                })
            }
            Event::Aggregates(a) => Some(format!("rev {rev:<8} aggregates {}", summary(a))),
        }
    }
}

/// One-line aggregate summary.
fn summary(a: &Aggregates) -> String {
    let c = a.nodes.unwrap_or_default();
    format!(
        "nodes {} (active {}, idle {}, busy {}, suspect {}, offline {}) tasks queued {} running {} done {} failed {} load {}",
        c.total,
        c.active,
        c.idle,
        c.busy,
        c.suspect,
        c.offline,
        a.queued_tasks,
        a.running_tasks,
        a.completed_tasks,
        a.failed_tasks,
        percent(a.average_load)
    )
}

/// Streams the topology until Ctrl-C, resuming from the last revision when the
/// stream breaks (the coordinator answers with a resync if it cannot resume).
async fn watch(ctx: &Ctx, client: &mut TopologyServiceClient<Authed>, detail: DetailArg) -> Result<(), CliError> {
    let mut view = WatchView::default();
    let mut retries = 0u32;
    loop {
        let request = WatchTopologyRequest {
            detail: detail.to_proto() as i32,
            resume_revision: view.revision,
            epoch: view.epoch.clone(),
            metrics_interval_ms: 0,
        };
        let opened = tokio::select! {
            r = client.watch_topology(request) => r,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let mut stream = match opened {
            Ok(s) => s.into_inner(),
            Err(s) if view.revision > 0 && s.code() == tonic::Code::Unavailable => {
                retries += 1;
                eprintln!("(watch: {}; retrying)", s.message());
                if wait_or_interrupt(retries).await {
                    return Ok(());
                }
                continue;
            }
            Err(s) => return Err(ctx.status(s)),
        };
        let why = loop {
            let next = tokio::select! {
                m = stream.next() => m,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            match next {
                Some(Ok(m)) => {
                    retries = 0;
                    match ctx.format {
                        OutputFormat::Json | OutputFormat::Yaml => {
                            view.apply(&m);
                            output::machine(ctx.format, &m.to_json(), Shape::Item);
                        }
                        OutputFormat::Table => {
                            if let Some(line) = view.apply(&m) {
                                println!("{line}");
                            }
                        }
                    }
                }
                Some(Err(s)) => break s.message().to_string(),
                None => break "stream ended".to_string(),
            }
        };
        retries += 1;
        eprintln!("(watch interrupted: {why}; resuming after revision {})", view.revision);
        if wait_or_interrupt(retries).await {
            return Ok(());
        }
    }
}

/// Backs off before a retry; true if Ctrl-C came first.
async fn wait_or_interrupt(retries: u32) -> bool {
    let wait = Duration::from_millis(250u64 << retries.min(5)).min(Duration::from_secs(5));
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = tokio::signal::ctrl_c() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::{NodeDelta, TopologySnapshot};

    fn msg(revision: u64, event: Event, reason: SnapshotReason) -> WatchTopologyResponse {
        WatchTopologyResponse { revision, epoch: "e1".into(), event: Some(event), snapshot_reason: reason as i32 }
    }

    fn node(id: &str) -> TopologyNode {
        TopologyNode { id: id.into(), status: NodeStatus::Idle as i32, ..Default::default() }
    }

    #[test]
    fn chunked_snapshot_prints_once_at_the_end() {
        let mut v = WatchView::default();
        let first = TopologySnapshot { first: true, nodes: vec![node("a"), node("b")], ..Default::default() };
        let last = TopologySnapshot {
            last: true,
            nodes: vec![node("c")],
            aggregates: Some(Aggregates::default()),
            ..Default::default()
        };
        assert_eq!(v.apply(&msg(5, Event::Snapshot(first), SnapshotReason::Initial)), None);
        let line = v.apply(&msg(5, Event::Snapshot(last), SnapshotReason::Initial)).unwrap();
        assert!(line.starts_with("rev 5        snapshot  3 nodes, 0 regions"), "{line}");
        assert_eq!((v.revision, v.epoch.as_str()), (5, "e1"));
    }

    #[test]
    fn resync_is_visible_and_bookmarks_are_quiet() {
        let mut v = WatchView::default();
        let snap = TopologySnapshot { first: true, last: true, ..Default::default() };
        let line = v.apply(&msg(9, Event::Snapshot(snap), SnapshotReason::ResyncLagged)).unwrap();
        assert!(line.contains("--- resync: this watcher fell behind; view replaced ---"), "{line}");
        assert_eq!(v.apply(&msg(10, Event::Bookmark(Default::default()), SnapshotReason::Unspecified)), None);
        assert_eq!(v.revision, 10);
    }

    #[test]
    fn node_deltas_show_status_or_removal() {
        let mut v = WatchView::default();
        let delta = NodeDelta { node: Some(node("n1")), removed: false };
        let line = v.apply(&msg(11, Event::Node(delta), SnapshotReason::Unspecified)).unwrap();
        assert_eq!(line, "rev 11       node      n1 idle load 0% tasks 0");
        let gone = NodeDelta { node: Some(node("n1")), removed: true };
        let line = v.apply(&msg(12, Event::Node(gone), SnapshotReason::Unspecified)).unwrap();
        assert_eq!(line, "rev 12       node      n1 removed");
    }
}
