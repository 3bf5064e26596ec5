//! Simulated nodes against an in-process fake `NodeService` on 127.0.0.1:0.
//! The fake only relays: each session is handed to the test, which plays the
//! coordinator's part message by message.

use std::time::Duration;

use fog_proto::v1::node_service_server::{NodeService, NodeServiceServer};
use fog_proto::v1::session_request::Msg as Up;
use fog_proto::v1::session_response::Msg as Down;
use fog_proto::v1::{
    Assignment, AttemptOutcome, AttemptRef, BuiltinTask, Cancellation, Drain, JoinRequest, JoinResponse, Ping,
    PowerMode, ResultAck, SessionConfig, SessionRequest, SessionResponse, TaskSpec, Welcome, builtin_task::Kind,
    task_spec::Workload,
};
use fogctl::sim::{SimNodeHandle, SimNodeSpec, SimNodeStats, SimOptions, spawn_node};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::transport::{Endpoint, Server};
use tonic::{Request, Response, Status, Streaming};

const WAIT: Duration = Duration::from_secs(5);

/// One session as the test sees it: what the node sent, and a way to answer.
struct FakeSession {
    from_node: mpsc::UnboundedReceiver<SessionRequest>,
    to_node: mpsc::UnboundedSender<Result<SessionResponse, Status>>,
}

impl FakeSession {
    fn send(&self, msg: Down) {
        self.to_node.send(Ok(SessionResponse { msg: Some(msg) })).expect("session gone");
    }

    /// The next message from the node, or `None` once its stream ended.
    async fn next(&mut self) -> Option<Up> {
        timeout(WAIT, self.from_node.recv()).await.expect("no message from the node in time").and_then(|r| r.msg)
    }

    /// The next message that is not a heartbeat.
    async fn next_non_heartbeat(&mut self) -> Option<Up> {
        loop {
            match self.next().await {
                Some(Up::Heartbeat(_)) => continue,
                other => return other,
            }
        }
    }

    /// Waits until the node's stream ends (skipping what it still sends).
    async fn ended(&mut self) {
        while self.next().await.is_some() {}
    }

    fn welcome(&self, interval_ms: u32) {
        self.send(Down::Welcome(Welcome {
            node_id: String::new(),
            session_id: "s".into(),
            config: Some(SessionConfig { heartbeat_interval_ms: interval_ms }),
            cancel: vec![],
        }));
    }
}

struct Fake {
    sessions: mpsc::UnboundedSender<FakeSession>,
}

#[tonic::async_trait]
impl NodeService for Fake {
    async fn join(&self, _: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        Err(Status::unimplemented("join"))
    }

    type SessionStream = UnboundedReceiverStream<Result<SessionResponse, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        let (down_tx, down_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = inbound.next().await {
                if up_tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let _ = self.sessions.send(FakeSession { from_node: up_rx, to_node: down_tx });
        Ok(Response::new(UnboundedReceiverStream::new(down_rx)))
    }
}

struct Harness {
    sessions: mpsc::UnboundedReceiver<FakeSession>,
    node: SimNodeHandle,
}

impl Harness {
    async fn start() -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, sessions) = mpsc::unbounded_channel();
        tokio::spawn(
            Server::builder()
                .add_service(NodeServiceServer::new(Fake { sessions: tx }))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        let channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
        let opts = SimOptions {
            reconnect_after: Duration::from_millis(20),
            reconnect_cap: Duration::from_millis(100),
            welcome_timeout: Duration::from_secs(5),
            default_heartbeat_interval: Duration::from_millis(50),
            ..SimOptions::default()
        };
        let node = spawn_node(channel, SimNodeSpec::demo(3), opts);
        Harness { sessions, node }
    }

    async fn session(&mut self) -> FakeSession {
        timeout(WAIT, self.sessions.recv()).await.expect("no session in time").expect("server gone")
    }

    /// A session past hello and welcome, with 50 ms heartbeats.
    async fn welcomed(&mut self) -> FakeSession {
        let mut s = self.session().await;
        assert!(matches!(s.next().await, Some(Up::Hello(_))));
        s.welcome(50);
        s
    }

    async fn stats_until(&self, what: &str, cond: impl Fn(&SimNodeStats) -> bool) -> SimNodeStats {
        let deadline = Instant::now() + WAIT;
        loop {
            let stats = self.node.stats();
            if cond(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {stats:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn attempt(task: &str, n: u64) -> AttemptRef {
    AttemptRef { task_id: task.into(), attempt: n }
}

fn assign(task: &str, n: u64, kind: Kind) -> Down {
    Down::Assignment(Assignment {
        attempt: Some(attempt(task, n)),
        spec: Some(TaskSpec {
            workload: Some(Workload::Builtin(BuiltinTask { kind: Some(kind) })),
            ..Default::default()
        }),
        deadline: None,
        traceparent: String::new(),
    })
}

#[tokio::test]
async fn hello_comes_first_then_heartbeats_at_the_configured_interval() {
    let mut h = Harness::start().await;
    let mut s = h.session().await;
    let Some(Up::Hello(hello)) = s.next().await else { panic!("first message is not a hello") };
    let spec = SimNodeSpec::demo(3);
    assert_eq!(hello.node_id, spec.id);
    assert_eq!(hello.capacity, Some(spec.capacity));
    assert!(hello.agent_version.starts_with("fog-sim/"), "{}", hello.agent_version);
    assert!(hello.running.is_empty());
    assert_eq!(hello.labels.len(), spec.labels.len());

    s.welcome(50);
    let started = Instant::now();
    let mut sequences = Vec::new();
    while sequences.len() < 4 {
        if let Some(Up::Heartbeat(hb)) = s.next().await {
            assert_eq!(hb.battery_percent, -1);
            assert_eq!(hb.temperature_celsius, -1000.0);
            assert_eq!(hb.power_mode, PowerMode::Performance as i32);
            assert!((0.0..=1.0).contains(&hb.cpu_usage));
            sequences.push(hb.sequence);
        }
    }
    assert_eq!(sequences, [1, 2, 3, 4]);
    // One right after the welcome, then three intervals of 50 ms ± 10 %.
    assert!(started.elapsed() >= Duration::from_millis(130), "{:?}", started.elapsed());
    let stats = h.stats_until("stats", |s| s.heartbeats_sent >= 4).await;
    assert_eq!(stats.sessions_opened, 1);
    assert!(stats.connected);
}

#[tokio::test]
async fn assignment_yields_update_and_result_kept_until_acked_across_reconnects() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    s.send(assign("t1", 3, Kind::Echo("hello".into())));
    let Some(Up::TaskUpdate(update)) = s.next_non_heartbeat().await else { panic!("no task update") };
    assert_eq!((update.attempt, update.running), (Some(attempt("t1", 3)), true));
    let Some(Up::TaskResult(result)) = s.next_non_heartbeat().await else { panic!("no result") };
    assert_eq!(result.attempt, Some(attempt("t1", 3)));
    assert_eq!(result.outcome, AttemptOutcome::Succeeded as i32);
    assert_eq!(result.output.unwrap().stdout, b"hello");

    // No ack: the result survives a crash of the stream and is offered again.
    h.node.disconnect();
    s.ended().await;
    let mut s = h.session().await;
    let Some(Up::Hello(hello)) = s.next().await else { panic!("no hello") };
    assert_eq!(hello.running, vec![attempt("t1", 3)]);
    s.welcome(50);
    let Some(Up::TaskResult(again)) = s.next_non_heartbeat().await else { panic!("result not resent") };
    assert_eq!(again.attempt, Some(attempt("t1", 3)));
    assert_eq!(again.output.unwrap().stdout, b"hello");

    s.send(Down::ResultAck(ResultAck { attempt: Some(attempt("t1", 3)), accepted: true }));
    let stats = h.stats_until("the ack", |s| s.results_acked == 1).await;
    assert_eq!((stats.unacked_results, stats.results_sent, stats.sessions_opened), (0, 2, 2));

    // Once acked, it is forgotten.
    h.node.disconnect();
    s.ended().await;
    let mut s = h.session().await;
    let Some(Up::Hello(hello)) = s.next().await else { panic!("no hello") };
    assert!(hello.running.is_empty());
}

#[tokio::test]
async fn hash_result_is_the_chain_of_the_task_id() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    s.send(assign("t-hash", 1, Kind::HashRounds(100)));
    loop {
        if let Some(Up::TaskResult(r)) = s.next_non_heartbeat().await {
            assert_eq!(r.output.unwrap().stdout, fogctl::sim::hash_chain("t-hash", 100).into_bytes());
            break;
        }
    }
}

#[tokio::test]
async fn cancellation_stops_the_attempt_and_reports_cancelled() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    s.send(assign("t2", 1, Kind::SleepMs(60_000)));
    assert!(matches!(s.next_non_heartbeat().await, Some(Up::TaskUpdate(_))));
    h.stats_until("the attempt to run", |s| s.running == 1).await;
    s.send(Down::Cancellation(Cancellation { attempt: Some(attempt("t2", 1)), reason: "user".into() }));
    let Some(Up::TaskResult(r)) = s.next_non_heartbeat().await else { panic!("no result") };
    assert_eq!(r.outcome, AttemptOutcome::Cancelled as i32);
    assert_eq!(r.attempt, Some(attempt("t2", 1)));
    let stats = h.stats_until("running to drop", |s| s.running == 0).await;
    assert_eq!(stats.cancellations_received, 1);
}

#[tokio::test]
async fn deadline_times_out_the_attempt() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    let deadline = std::time::SystemTime::now() + Duration::from_millis(100);
    s.send(Down::Assignment(Assignment {
        attempt: Some(attempt("t3", 2)),
        spec: Some(TaskSpec {
            workload: Some(Workload::Builtin(BuiltinTask { kind: Some(Kind::SleepMs(30_000)) })),
            ..Default::default()
        }),
        deadline: Some(deadline.into()),
        traceparent: String::new(),
    }));
    assert!(matches!(s.next_non_heartbeat().await, Some(Up::TaskUpdate(_))));
    let Some(Up::TaskResult(r)) = s.next_non_heartbeat().await else { panic!("no result") };
    assert_eq!(r.outcome, AttemptOutcome::TimedOut as i32);
}

#[tokio::test]
async fn ping_drain_and_exec_refusal() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    s.send(Down::Ping(Ping { nonce: 77 }));
    let Some(Up::Pong(p)) = s.next_non_heartbeat().await else { panic!("no pong") };
    assert_eq!(p.nonce, 77);

    s.send(assign("t4", 1, Kind::Fail("on purpose".into())));
    assert!(matches!(s.next_non_heartbeat().await, Some(Up::TaskUpdate(_))));
    let Some(Up::TaskResult(r)) = s.next_non_heartbeat().await else { panic!("no result") };
    assert_eq!((r.outcome, r.error.as_str()), (AttemptOutcome::Failed as i32, "on purpose"));

    s.send(Down::Drain(Drain { reason: "maintenance".into() }));
    s.send(assign("t5", 1, Kind::Echo("x".into())));
    let Some(Up::TaskResult(r)) = s.next_non_heartbeat().await else { panic!("no refusal") };
    assert_eq!(r.attempt, Some(attempt("t5", 1)));
    assert_eq!(r.outcome, AttemptOutcome::Refused as i32);
}

#[tokio::test]
async fn paused_node_is_silent_but_connected_then_catches_up() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    assert!(matches!(s.next().await, Some(Up::Heartbeat(_))));
    h.node.set_heartbeats_paused(true);
    s.send(assign("t6", 1, Kind::Echo("late".into())));
    h.stats_until("the result to be held", |s| s.unacked_results == 1).await;
    // Drop whatever was in flight before the pause took effect, then expect silence.
    while let Ok(Some(_)) = timeout(Duration::from_millis(120), s.from_node.recv()).await {}
    assert!(
        timeout(Duration::from_millis(300), s.from_node.recv()).await.is_err(),
        "a paused node sent something (or closed its stream)"
    );
    h.node.set_heartbeats_paused(false);
    let mut got_result = false;
    while !got_result {
        got_result = matches!(s.next().await, Some(Up::TaskResult(r)) if r.attempt == Some(attempt("t6", 1)));
    }
    assert_eq!(h.node.stats().sessions_opened, 1);
}

#[tokio::test]
async fn reconnects_when_the_coordinator_ends_the_stream_and_stop_is_final() {
    let mut h = Harness::start().await;
    let s = h.welcomed().await;
    drop(s); // the coordinator side goes away
    let mut s = h.welcomed().await;
    h.stats_until("the second session", |s| s.sessions_opened == 2).await;
    h.node.stop();
    s.ended().await;
    assert!(timeout(Duration::from_millis(300), h.sessions.recv()).await.is_err(), "a stopped node reconnected");
    assert!(!h.node.stats().connected);
}

#[tokio::test]
async fn welcome_cancel_drops_attempts_the_coordinator_no_longer_wants() {
    let mut h = Harness::start().await;
    let mut s = h.welcomed().await;
    s.send(assign("t7", 1, Kind::SleepMs(60_000)));
    assert!(matches!(s.next_non_heartbeat().await, Some(Up::TaskUpdate(_))));
    h.node.disconnect();
    s.ended().await;
    let mut s = h.session().await;
    let Some(Up::Hello(hello)) = s.next().await else { panic!("no hello") };
    assert_eq!(hello.running, vec![attempt("t7", 1)]);
    s.send(Down::Welcome(Welcome {
        cancel: vec![attempt("t7", 1)],
        config: Some(SessionConfig { heartbeat_interval_ms: 50 }),
        ..Default::default()
    }));
    let stats = h.stats_until("the attempt to be dropped", |s| s.running == 0).await;
    assert_eq!(stats.unacked_results, 0);
}
