//! A hand-driven node session, for tests that need to say exactly what a node
//! says (stale results, wrong attempts, malformed messages).

use fog_proto::v1 as pb;
use fog_proto::v1::node_service_client::NodeServiceClient;
use fog_proto::v1::session_request::Msg as Up;
use fog_proto::v1::session_response::Msg as Down;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::transport::Channel;

/// One raw session.
pub struct RawNode {
    tx: mpsc::Sender<pb::SessionRequest>,
    rx: tonic::Streaming<pb::SessionResponse>,
    /// The node id.
    pub id: String,
}

impl RawNode {
    /// Opens a session with a hello; returns it and the welcome.
    pub async fn connect(
        channel: Channel,
        id: &str,
        cpu_millis: u32,
        running: Vec<pb::AttemptRef>,
    ) -> (RawNode, pb::Welcome) {
        let hello = pb::Hello {
            node_id: id.to_string(),
            name: id.to_string(),
            capacity: Some(pb::Resources { cpu_millis, memory_mb: 4096, storage_mb: 1024, gpus: 0 }),
            agent_version: "raw-test".into(),
            running,
            ..Default::default()
        };
        RawNode::open(channel, hello).await.expect("session accepted")
    }

    /// Opens a session with any hello; the error is the coordinator's refusal.
    pub async fn open(channel: Channel, hello: pb::Hello) -> Result<(RawNode, pb::Welcome), tonic::Status> {
        let (tx, rx_up) = mpsc::channel(64);
        let id = hello.node_id.clone();
        tx.send(pb::SessionRequest { msg: Some(Up::Hello(hello)) }).await.expect("queue hello");
        let mut client = NodeServiceClient::new(channel);
        let rx = client.session(tokio_stream::wrappers::ReceiverStream::new(rx_up)).await?.into_inner();
        let mut node = RawNode { tx, rx, id };
        match node.next().await {
            Some(Down::Welcome(w)) => {
                node.id = w.node_id.clone();
                Ok((node, w))
            }
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Waits for the stream to end (the coordinator closed the session); None if it did not within `limit`.
    pub async fn ended_within(&mut self, limit: Duration) -> Option<()> {
        tokio::time::timeout(limit, async { while let Ok(Some(_)) = self.rx.message().await {} }).await.ok()
    }

    /// Waits for the stream to end with an error status (None if it ended cleanly or not within `limit`).
    pub async fn ended_with_status(&mut self, limit: Duration) -> Option<tonic::Status> {
        tokio::time::timeout(limit, async {
            loop {
                match self.rx.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => return None,
                    Err(s) => return Some(s),
                }
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// The sending half of the session, for tests that send from another task.
    pub fn sender(&self) -> mpsc::Sender<pb::SessionRequest> {
        self.tx.clone()
    }

    /// Sends a message.
    pub async fn send(&self, msg: Up) {
        self.tx.send(pb::SessionRequest { msg: Some(msg) }).await.expect("session open");
    }

    /// Sends a heartbeat.
    pub async fn heartbeat(&self, seq: u64) {
        self.send(Up::Heartbeat(pb::Heartbeat {
            sequence: seq,
            battery_percent: -1,
            temperature_celsius: -1000.0,
            ..Default::default()
        }))
        .await;
    }

    /// The next message that is not a ping (pings are answered), or None at the end.
    pub async fn next(&mut self) -> Option<Down> {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(15), self.rx.message())
                .await
                .expect("a message within 15 s")
                .ok()??;
            match m.msg {
                Some(Down::Ping(p)) => self.send(Up::Pong(pb::Pong { nonce: p.nonce })).await,
                Some(other) => return Some(other),
                None => {}
            }
        }
    }

    /// Waits for the next assignment (skipping other messages), heartbeating meanwhile is up to the caller.
    pub async fn next_assignment(&mut self) -> pb::Assignment {
        loop {
            match self.next().await {
                Some(Down::Assignment(a)) => return a,
                Some(_) => continue,
                None => panic!("session ended before an assignment"),
            }
        }
    }

    /// Waits for the ack of an attempt's result.
    pub async fn next_ack(&mut self) -> pb::ResultAck {
        loop {
            match self.next().await {
                Some(Down::ResultAck(a)) => return a,
                Some(_) => continue,
                None => panic!("session ended before an ack"),
            }
        }
    }

    /// Reports a result.
    pub async fn result(&self, task_id: &str, attempt: u64, outcome: pb::AttemptOutcome, stdout: &str) {
        self.send(Up::TaskResult(pb::TaskResult {
            attempt: Some(pb::AttemptRef { task_id: task_id.to_string(), attempt }),
            outcome: outcome as i32,
            exit_code: 0,
            output: Some(pb::TaskOutput { stdout: stdout.as_bytes().to_vec(), stderr: Vec::new(), truncated: false }),
            error: String::new(),
            traceparent: String::new(),
        }))
        .await;
    }
}
