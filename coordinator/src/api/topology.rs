//! `fog.v1.TopologyService`: get, watch with resume and explicit resync, history.
//!
//! A watch subscribes to the engine's event broadcast *before* it reads its
//! starting point (a snapshot, or the retained events after the resume
//! revision), then skips events at or below that point: no gap, no duplicate.
//! The broadcast is bounded: a watcher that falls behind is told `Lagged` by
//! the channel and answers its client with a resync snapshot, so a slow
//! watcher never slows the engine or the other watchers, and never silently
//! misses an event.

use super::ask;
use super::task::async_stream;
use super::validate::Violations;
use crate::convert;
use crate::engine::{Command, EngineHandle};
use fog_core::topology::{Change, Event};
use fog_proto::v1 as pb;
use fog_proto::v1::topology_service_server::TopologyService;
use fog_proto::v1::watch_topology_response::Event as Ev;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// Nodes per snapshot chunk (keeps every message far below the 4 MiB limit).
const SNAPSHOT_CHUNK: usize = 1000;
/// A bookmark is sent after this long without other messages.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// The topology service.
pub struct TopologyApi {
    engine: EngineHandle,
}

impl TopologyApi {
    /// A service over the engine.
    pub fn new(engine: EngineHandle) -> TopologyApi {
        TopologyApi { engine }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchTopologyResponse, Status>> + Send>>;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Detail {
    Aggregates,
    Status,
    Metrics,
}

struct Watcher {
    engine: EngineHandle,
    detail: Detail,
    metrics_every: Duration,
    tx: mpsc::Sender<Result<pb::WatchTopologyResponse, Status>>,
    /// Highest revision the client has.
    base: u64,
    /// Metric updates held back by the per-node rate limit (latest wins).
    held: HashMap<Arc<str>, Arc<Event>>,
    last_metrics: HashMap<Arc<str>, tokio::time::Instant>,
}

/// The client went away.
struct Gone;

impl Watcher {
    fn msg(&self, revision: u64, event: Ev, reason: pb::SnapshotReason) -> pb::WatchTopologyResponse {
        pb::WatchTopologyResponse {
            revision,
            epoch: self.engine.epoch().to_string(),
            event: Some(event),
            snapshot_reason: reason as i32,
        }
    }

    async fn send(&self, m: pb::WatchTopologyResponse) -> Result<(), Gone> {
        self.tx.send(Ok(m)).await.map_err(|_| Gone)
    }

    async fn snapshot(&mut self, reason: pb::SnapshotReason) -> Result<(), Gone> {
        let include_nodes = self.detail >= Detail::Status;
        let Ok(t) = ask(&self.engine, |reply| Command::GetTopology(include_nodes, reply)).await else {
            return Err(Gone);
        };
        self.held.clear();
        let chunks: Vec<Vec<pb::TopologyNode>> = if t.nodes.is_empty() {
            vec![Vec::new()]
        } else {
            t.nodes.chunks(SNAPSHOT_CHUNK).map(<[_]>::to_vec).collect()
        };
        let n = chunks.len();
        for (i, nodes) in chunks.into_iter().enumerate() {
            let last = i + 1 == n;
            let snap = pb::TopologySnapshot {
                first: i == 0,
                last,
                nodes,
                aggregates: if last { t.aggregates.clone() } else { None },
                regions: if last { t.regions.clone() } else { Vec::new() },
            };
            self.send(self.msg(t.revision, Ev::Snapshot(snap), reason)).await?;
        }
        self.base = t.revision;
        Ok(())
    }

    /// Sends one event if the watcher's detail wants it.
    async fn event(&mut self, ev: Arc<Event>) -> Result<(), Gone> {
        if ev.revision <= self.base {
            return Ok(());
        }
        self.base = ev.revision;
        let body = match (&ev.change, self.detail) {
            (Change::Aggregates(a), _) => Ev::Aggregates(convert::aggregates_pb(a)),
            (_, Detail::Aggregates) => return Ok(()),
            (Change::NodeUpserted(n), _) => {
                self.held.remove(&n.id);
                Ev::Node(pb::NodeDelta { node: Some(convert::topo_node_pb(n)), removed: false })
            }
            (Change::NodeRemoved(id), _) => {
                self.held.remove(id);
                Ev::Node(pb::NodeDelta {
                    node: Some(pb::TopologyNode { id: id.to_string(), ..Default::default() }),
                    removed: true,
                })
            }
            (Change::NodeMetrics(_), Detail::Status) => return Ok(()),
            (Change::NodeMetrics(n), Detail::Metrics) => {
                let now = tokio::time::Instant::now();
                if self.last_metrics.get(&n.id).is_some_and(|t| now.duration_since(*t) < self.metrics_every) {
                    self.held.insert(n.id.clone(), ev.clone());
                    return Ok(());
                }
                self.last_metrics.insert(n.id.clone(), now);
                Ev::Node(pb::NodeDelta { node: Some(convert::topo_node_pb(n)), removed: false })
            }
        };
        self.send(self.msg(ev.revision, body, pb::SnapshotReason::Unspecified)).await
    }

    /// Sends held-back metric updates whose rate-limit window has passed.
    async fn release_held(&mut self) -> Result<(), Gone> {
        let now = tokio::time::Instant::now();
        let due: Vec<Arc<str>> = self
            .held
            .keys()
            .filter(|id| self.last_metrics.get(*id).is_none_or(|t| now.duration_since(*t) >= self.metrics_every))
            .cloned()
            .collect();
        for id in due {
            if let Some(ev) = self.held.remove(&id)
                && let Change::NodeMetrics(n) = &ev.change
            {
                self.last_metrics.insert(id, now);
                // Re-sent at the watcher's current revision: it is the latest
                // state of that node, and revisions stay monotonic for the client.
                let body = Ev::Node(pb::NodeDelta { node: Some(convert::topo_node_pb(n)), removed: false });
                self.send(self.msg(self.base, body, pb::SnapshotReason::Unspecified)).await?;
            }
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl TopologyService for TopologyApi {
    async fn get_topology(
        &self,
        req: Request<pb::GetTopologyRequest>,
    ) -> Result<Response<pb::GetTopologyResponse>, Status> {
        let include = req.into_inner().include_nodes;
        Ok(Response::new(ask(&self.engine, |reply| Command::GetTopology(include, reply)).await?))
    }

    type WatchTopologyStream = WatchStream;

    async fn watch_topology(&self, req: Request<pb::WatchTopologyRequest>) -> Result<Response<WatchStream>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.enum_value::<pb::TopologyDetail>("detail", r.detail, true);
        v.max_len("epoch", &r.epoch, 64);
        if r.metrics_interval_ms != 0 && !(100..=3_600_000).contains(&r.metrics_interval_ms) {
            v.add("metrics_interval_ms", "must be 0 or between 100 and 3600000");
        }
        if r.resume_revision > 0 && r.epoch.is_empty() {
            v.add("epoch", "is required with resume_revision");
        }
        v.finish()?;
        let detail = match pb::TopologyDetail::try_from(r.detail).unwrap_or_default() {
            pb::TopologyDetail::Aggregates => Detail::Aggregates,
            pb::TopologyDetail::NodeMetrics => Detail::Metrics,
            pb::TopologyDetail::NodeStatus | pb::TopologyDetail::Unspecified => Detail::Status,
        };
        let metrics_every =
            Duration::from_millis(if r.metrics_interval_ms == 0 { 1000 } else { r.metrics_interval_ms.into() });
        let engine = self.engine.clone();
        // Subscribe first: every event after this point reaches us (or we learn we lagged).
        let mut rx = engine.subscribe_topology();
        let stream = async_stream(Vec::new(), move |tx| async move {
            let mut w = Watcher {
                engine,
                detail,
                metrics_every,
                tx,
                base: 0,
                held: HashMap::new(),
                last_metrics: HashMap::new(),
            };
            let _ = run_watch(&mut w, &mut rx, r.resume_revision, &r.epoch).await;
        });
        Ok(Response::new(stream))
    }

    async fn get_topology_history(
        &self,
        req: Request<pb::GetTopologyHistoryRequest>,
    ) -> Result<Response<pb::GetTopologyHistoryResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.page_size("limit", r.limit, 100);
        v.finish()?;
        let limit = if r.limit == 0 { 100 } else { r.limit as usize };
        let snapshots = ask(&self.engine, |reply| Command::History(limit, reply)).await?;
        Ok(Response::new(pb::GetTopologyHistoryResponse { snapshots }))
    }
}

async fn run_watch(
    w: &mut Watcher,
    rx: &mut tokio::sync::broadcast::Receiver<Arc<Event>>,
    resume: u64,
    epoch: &str,
) -> Result<(), Gone> {
    if resume == 0 {
        w.snapshot(pb::SnapshotReason::Initial).await?;
    } else if epoch != w.engine.epoch() {
        w.snapshot(pb::SnapshotReason::ResyncTooOld).await?;
    } else {
        let (tx, back) = tokio::sync::oneshot::channel();
        w.engine.send(Command::TopologySince(resume, tx)).await.map_err(|_| Gone)?;
        match back.await.map_err(|_| Gone)? {
            Ok(events) => {
                w.base = resume;
                for ev in events {
                    w.event(ev).await?;
                }
            }
            Err(_) => w.snapshot(pb::SnapshotReason::ResyncTooOld).await?,
        }
    }
    let mut bookmark = tokio::time::interval(BOOKMARK_EVERY);
    bookmark.reset();
    let mut metrics = tokio::time::interval(w.metrics_every);
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    w.event(ev).await?;
                    bookmark.reset();
                }
                Err(RecvError::Lagged(_)) => {
                    // Dropped events: replace the client's view.
                    w.snapshot(pb::SnapshotReason::ResyncLagged).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = metrics.tick(), if w.detail == Detail::Metrics => w.release_held().await?,
            _ = bookmark.tick() => {
                let now = crate::convert::ts(crate::engine::now_ms());
                w.send(w.msg(w.base, Ev::Bookmark(now), pb::SnapshotReason::Unspecified)).await?;
            }
            _ = w.tx.closed() => return Err(Gone),
            _ = w.engine.stopped() => return Ok(()),
        }
    }
}
