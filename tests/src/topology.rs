//! The topology watch seen from a client: a view built only from watch
//! messages, for checking it against `GetTopology` and other watchers.

use crate::{Coord, DEADLINE};
use fog_proto::v1 as pb;
use fog_proto::v1::watch_topology_response::Event;
use std::collections::BTreeMap;
use tokio_stream::StreamExt;
use tonic::Streaming;

/// A client-side view built only from watch messages.
#[derive(Default, Debug)]
pub struct View {
    /// The last revision applied.
    pub revision: u64,
    /// The epoch of the last message.
    pub epoch: String,
    /// Nodes by id.
    pub nodes: BTreeMap<String, pb::TopologyNode>,
    /// The last aggregates.
    pub aggregates: Option<pb::Aggregates>,
    /// The reason of every snapshot that started.
    pub resyncs: Vec<i32>,
    /// Between a snapshot's first and last chunk.
    pub in_snapshot: bool,
}

impl View {
    /// Applies one message (revisions must never go back).
    pub fn apply(&mut self, m: pb::WatchTopologyResponse) {
        assert!(m.revision >= self.revision, "revisions never go back: {} after {}", m.revision, self.revision);
        self.revision = m.revision;
        self.epoch = m.epoch;
        match m.event {
            Some(Event::Snapshot(s)) => {
                if s.first {
                    self.nodes.clear();
                    self.resyncs.push(m.snapshot_reason);
                    self.in_snapshot = true;
                }
                for n in s.nodes {
                    self.nodes.insert(n.id.clone(), n);
                }
                if s.last {
                    self.aggregates = s.aggregates;
                    self.in_snapshot = false;
                }
            }
            Some(Event::Node(d)) => {
                let n = d.node.unwrap();
                if d.removed {
                    self.nodes.remove(&n.id);
                } else {
                    self.nodes.insert(n.id.clone(), n);
                }
            }
            Some(Event::Aggregates(a)) => self.aggregates = Some(a),
            Some(Event::Bookmark(_)) | None => {}
        }
    }
}

/// What must agree at one revision: node status-level fields and aggregates.
pub fn status_view(nodes: impl IntoIterator<Item = pb::TopologyNode>) -> Vec<(String, i32, String, bool, u32)> {
    nodes.into_iter().map(|n| (n.id, n.status, n.region, n.flapping, n.active_tasks)).collect()
}

/// Opens a watch.
pub async fn watch(c: &Coord, req: pb::WatchTopologyRequest) -> Streaming<pb::WatchTopologyResponse> {
    c.topology().watch_topology(req).await.unwrap().into_inner()
}

/// The next message, within `DEADLINE`.
pub async fn next(s: &mut Streaming<pb::WatchTopologyResponse>) -> pb::WatchTopologyResponse {
    tokio::time::timeout(DEADLINE, s.next()).await.expect("a watch message in time").expect("stream open").unwrap()
}

/// A NODE_STATUS watch from a snapshot.
pub fn status_detail() -> pb::WatchTopologyRequest {
    pb::WatchTopologyRequest { detail: pb::TopologyDetail::NodeStatus as i32, ..Default::default() }
}
