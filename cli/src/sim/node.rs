//! One simulated node: a single tokio task that holds a `NodeService.Session`
//! stream open, heartbeats, runs the built-ins it is assigned and reports their
//! results until each is acknowledged, and reconnects with backoff.
//!
//! Cost per node is one task, a small channel and a few maps: the gRPC
//! `Channel` (HTTP/2 connection) is shared with many other nodes, and running
//! attempts are futures polled by the node's own task, not spawned tasks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use fog_proto::v1::node_service_client::NodeServiceClient;
use fog_proto::v1::session_request::Msg as Up;
use fog_proto::v1::session_response::Msg as Down;
use fog_proto::v1::{
    Assignment, AttemptOutcome, AttemptRef, Heartbeat, Hello, Label, Pong, PowerMode, Resources, SessionRequest,
    SessionResponse, TaskResult, TaskUpdate,
};
use futures::future::{AbortHandle, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tracing::{Instrument, debug, info_span};

use super::builtin::{self, Execution};
use super::spec::SimNodeSpec;

/// How simulated nodes behave on the wire.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Base of the reconnect backoff: the n-th consecutive retry waits a random
    /// time in `[0, min(reconnect_cap, reconnect_after * 2^n)]` (full jitter).
    pub reconnect_after: Duration,
    /// Upper bound of one reconnect wait.
    pub reconnect_cap: Duration,
    /// How long to wait for `Welcome` after opening a session before retrying.
    pub welcome_timeout: Duration,
    /// Heartbeat interval until the coordinator sets one (and if it sends 0).
    pub default_heartbeat_interval: Duration,
    /// Probability (0 to 1) that a built-in which would succeed reports FAILED instead.
    pub fail_rate: f64,
    /// Messages buffered towards the coordinator per node.
    pub outbound_buffer: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            reconnect_after: Duration::from_millis(500),
            reconnect_cap: Duration::from_secs(5),
            welcome_timeout: Duration::from_secs(10),
            default_heartbeat_interval: Duration::from_secs(1),
            fail_rate: 0.0,
            outbound_buffer: 32,
        }
    }
}

/// Counters of one simulated node, since it was spawned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimNodeStats {
    /// Heartbeats sent.
    pub heartbeats_sent: u64,
    /// Sessions that got a `Welcome`.
    pub sessions_opened: u64,
    /// Session attempts that ended before a `Welcome` (refused, failed, timed out).
    pub sessions_failed: u64,
    /// Assignments received (duplicates included).
    pub assignments_received: u64,
    /// `TaskResult` messages sent (resends included).
    pub results_sent: u64,
    /// Results the coordinator acknowledged.
    pub results_acked: u64,
    /// Cancellations received.
    pub cancellations_received: u64,
    /// Attempts executing now.
    pub running: u64,
    /// Finished attempts whose result is not acknowledged yet.
    pub unacked_results: u64,
    /// Whether a welcomed session is open now.
    pub connected: bool,
}

#[derive(Default)]
struct StatCells {
    heartbeats_sent: AtomicU64,
    sessions_opened: AtomicU64,
    sessions_failed: AtomicU64,
    assignments_received: AtomicU64,
    results_sent: AtomicU64,
    results_acked: AtomicU64,
    cancellations_received: AtomicU64,
    running: AtomicU64,
    unacked_results: AtomicU64,
    connected: AtomicBool,
}

fn bump(cell: &AtomicU64) {
    cell.fetch_add(1, Ordering::Relaxed);
}

/// What the handle asks of the node; the node task watches it.
#[derive(Clone, Copy, Debug)]
struct Control {
    paused: bool,
    stopped: bool,
    /// Incremented by each `disconnect()`; a session ends when it changes.
    disconnects: u64,
    speed: f64,
}

struct Shared {
    id: String,
    control: watch::Sender<Control>,
    stats: StatCells,
}

/// Clone-able control of one running simulated node.
#[derive(Clone)]
pub struct SimNodeHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SimNodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimNodeHandle").field("id", &self.shared.id).finish_non_exhaustive()
    }
}

impl SimNodeHandle {
    /// The node id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// While paused the node keeps its stream open but sends nothing at all
    /// (no heartbeats, pongs, updates or results): a silent partition. Results
    /// finished meanwhile are sent when it resumes.
    pub fn set_heartbeats_paused(&self, paused: bool) {
        self.shared.control.send_modify(|c| c.paused = paused);
    }

    /// Drops the stream abruptly, like a crash or a reset link. Running
    /// attempts go on; the node reconnects after the backoff unless stopped.
    pub fn disconnect(&self) {
        self.shared.control.send_modify(|c| c.disconnects += 1);
    }

    /// Ends the node for good: the stream is dropped and running attempts abandoned.
    pub fn stop(&self) {
        self.shared.control.send_modify(|c| c.stopped = true);
    }

    /// Scales how fast `sleep_ms` tasks run (2.0 = twice as fast), for
    /// assignments received from now on.
    pub fn set_task_speed(&self, factor: f64) {
        self.shared.control.send_modify(|c| c.speed = factor);
    }

    /// The node's counters now.
    pub fn stats(&self) -> SimNodeStats {
        let s = &self.shared.stats;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SimNodeStats {
            heartbeats_sent: get(&s.heartbeats_sent),
            sessions_opened: get(&s.sessions_opened),
            sessions_failed: get(&s.sessions_failed),
            assignments_received: get(&s.assignments_received),
            results_sent: get(&s.results_sent),
            results_acked: get(&s.results_acked),
            cancellations_received: get(&s.cancellations_received),
            running: get(&s.running),
            unacked_results: get(&s.unacked_results),
            connected: s.connected.load(Ordering::Relaxed),
        }
    }
}

/// Starts a simulated node on the current tokio runtime. Many nodes may share
/// one `channel`: each session is one HTTP/2 stream on it.
pub fn spawn_node(channel: Channel, spec: SimNodeSpec, opts: SimOptions) -> SimNodeHandle {
    let (control, control_rx) = watch::channel(Control { paused: false, stopped: false, disconnects: 0, speed: 1.0 });
    let shared = Arc::new(Shared { id: spec.id.clone(), control, stats: StatCells::default() });
    let span = info_span!("sim_node", node.id = %spec.id);
    let node = Node {
        spec,
        opts,
        channel,
        shared: shared.clone(),
        control: control_rx,
        attempts: FuturesUnordered::new(),
        running: HashMap::new(),
        unacked: BTreeMap::new(),
        draining: false,
        heartbeat_every: Duration::ZERO,
    };
    tokio::spawn(node.run().instrument(span));
    SimNodeHandle { shared }
}

type AttemptKey = (String, u64);

fn key_of(a: Option<&AttemptRef>) -> AttemptKey {
    a.map(|a| (a.task_id.clone(), a.attempt)).unwrap_or_default()
}

fn attempt_ref(key: &AttemptKey) -> AttemptRef {
    AttemptRef { task_id: key.0.clone(), attempt: key.1 }
}

fn result_of(key: &AttemptKey, e: &Execution) -> TaskResult {
    TaskResult {
        attempt: Some(attempt_ref(key)),
        outcome: e.outcome as i32,
        exit_code: 0,
        output: Some(e.output()),
        error: e.error.clone(),
        // Simulated work makes no spans: the coordinator's completion span
        // hangs off the task's own trace.
        traceparent: String::new(),
    }
}

/// A finished attempt: `None` when it was aborted (its result was already made).
type Finished = (AttemptKey, Option<Execution>);

struct Running {
    abort: AbortHandle,
    reserved: Resources,
}

/// Why a session ended.
#[derive(Debug)]
enum SessionEnd {
    Stopped,
    /// `disconnect()`, the stream failing or ending, or no welcome in time.
    Lost {
        welcomed: bool,
        why: String,
    },
}

struct Node {
    spec: SimNodeSpec,
    opts: SimOptions,
    channel: Channel,
    shared: Arc<Shared>,
    control: watch::Receiver<Control>,
    attempts: FuturesUnordered<BoxFuture<'static, Finished>>,
    running: HashMap<AttemptKey, Running>,
    /// Results kept until the coordinator acknowledges them.
    unacked: BTreeMap<AttemptKey, TaskResult>,
    draining: bool,
    heartbeat_every: Duration,
}

/// The sending half of a session. A failed send means the stream is gone.
struct Outbox {
    tx: mpsc::Sender<SessionRequest>,
}

impl Outbox {
    async fn send(&self, msg: Up) -> Result<(), SessionEnd> {
        self.tx
            .send(SessionRequest { msg: Some(msg) })
            .await
            .map_err(|_| SessionEnd::Lost { welcomed: true, why: "request stream closed".into() })
    }
}

fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..=1.1))
}

impl Node {
    async fn run(mut self) {
        let mut retries: u32 = 0;
        loop {
            if self.control.borrow().stopped {
                break;
            }
            match self.session().await {
                SessionEnd::Stopped => break,
                SessionEnd::Lost { welcomed, why } => {
                    self.shared.stats.connected.store(false, Ordering::Relaxed);
                    if welcomed {
                        retries = 0;
                    } else {
                        bump(&self.shared.stats.sessions_failed);
                    }
                    debug!(retries, why = %why, "session lost");
                }
            }
            let ceiling =
                self.opts.reconnect_after.saturating_mul(1u32 << retries.min(16)).min(self.opts.reconnect_cap);
            let wait = ceiling.mul_f64(rand::rng().random_range(0.0..=1.0));
            retries = retries.saturating_add(1);
            if self.wait_offline(Instant::now() + wait).await.is_err() {
                break;
            }
        }
        self.shared.stats.connected.store(false, Ordering::Relaxed);
        for (_, r) in self.running.drain() {
            r.abort.abort();
        }
        self.publish_counts();
        debug!("stopped");
    }

    /// Waits until `until` while attempts go on; `Err` if stopped meanwhile.
    async fn wait_offline(&mut self, until: Instant) -> Result<(), ()> {
        loop {
            tokio::select! {
                _ = sleep_until(until) => return Ok(()),
                Some(done) = self.attempts.next(), if !self.attempts.is_empty() => {
                    self.finish(done);
                }
                changed = self.control.changed() => {
                    if changed.is_err() || self.control.borrow_and_update().stopped {
                        return Err(());
                    }
                }
            }
        }
    }

    fn publish_counts(&self) {
        let s = &self.shared.stats;
        s.running.store(self.running.len() as u64, Ordering::Relaxed);
        s.unacked_results.store(self.unacked.len() as u64, Ordering::Relaxed);
    }

    /// Records a finished attempt's result; returns it so a live session can send it.
    fn finish(&mut self, (key, exec): Finished) -> Option<TaskResult> {
        let exec = exec?;
        self.running.remove(&key)?;
        let result = result_of(&key, &exec);
        debug!(task.id = %key.0, attempt = key.1, outcome = ?exec.outcome, "attempt finished");
        self.unacked.insert(key, result.clone());
        self.publish_counts();
        Some(result)
    }

    fn hello(&self) -> Hello {
        let mut running: Vec<AttemptRef> = self.running.keys().map(attempt_ref).collect();
        running.extend(self.unacked.keys().map(attempt_ref));
        Hello {
            node_id: self.spec.id.clone(),
            name: self.spec.name.clone(),
            node_type: self.spec.node_type as i32,
            capacity: Some(self.spec.capacity),
            location: Some(self.spec.location.clone()),
            labels: self
                .spec
                .labels
                .iter()
                .map(|(key, value)| Label { key: key.clone(), value: value.clone() })
                .collect(),
            agent_version: concat!("fog-sim/", env!("CARGO_PKG_VERSION")).to_string(),
            supports_onion_routing: self.spec.supports_onion_routing,
            running,
        }
    }

    fn heartbeat(&self, sequence: u64) -> Heartbeat {
        let cap = &self.spec.capacity;
        let (cpu, mem) = self
            .running
            .values()
            .fold((0u64, 0u64), |(c, m), r| (c + u64::from(r.reserved.cpu_millis), m + r.reserved.memory_mb));
        let noise: f64 = rand::rng().random_range(0.0..0.02);
        let cpu_usage = (0.03 + noise + cpu as f64 / f64::from(cap.cpu_millis.max(1))).min(1.0);
        let memory_usage = (0.15 + noise + mem as f64 / cap.memory_mb.max(1) as f64).min(1.0);
        Heartbeat {
            sequence,
            cpu_usage,
            memory_usage,
            load_average: cpu_usage * f64::from(cap.cpu_millis) / 1000.0,
            battery_percent: -1,
            charging: false,
            temperature_celsius: -1000.0,
            power_mode: PowerMode::Performance as i32,
            running: self.running.keys().map(attempt_ref).collect(),
            region_rtt_ms: Default::default(),
            // A simulated node keeps no state on disk.
            state_unwritable: false,
        }
    }

    /// One session, from opening the stream to losing it.
    async fn session(&mut self) -> SessionEnd {
        let disconnects = self.control.borrow_and_update().disconnects;
        let (tx, rx) = mpsc::channel(self.opts.outbound_buffer.max(1));
        let out = Outbox { tx };
        if out.send(Up::Hello(self.hello())).await.is_err() {
            return SessionEnd::Lost { welcomed: false, why: "request stream closed".into() };
        }
        let welcome_deadline = Instant::now() + self.opts.welcome_timeout;
        let mut client = NodeServiceClient::new(self.channel.clone());
        let call = client.session(ReceiverStream::new(rx));
        tokio::pin!(call);
        let opened = loop {
            tokio::select! {
                r = &mut call => break r,
                Some(done) = self.attempts.next(), if !self.attempts.is_empty() => {
                    self.finish(done);
                }
                _ = sleep_until(welcome_deadline) => {
                    return SessionEnd::Lost { welcomed: false, why: "no response to hello".into() };
                }
                changed = self.control.changed() => {
                    if let Some(end) = self.control_end(changed.is_err(), disconnects, false) {
                        return end;
                    }
                }
            }
        };
        let mut inbound = match opened {
            Ok(response) => response.into_inner(),
            Err(status) => {
                return SessionEnd::Lost { welcomed: false, why: format!("{:?}: {}", status.code(), status.message()) };
            }
        };

        let mut welcomed = false;
        let mut paused = self.control.borrow().paused;
        let mut sequence = 0u64;
        let heartbeat = sleep_until(welcome_deadline);
        tokio::pin!(heartbeat);
        let why: String = loop {
            tokio::select! {
                msg = inbound.next() => {
                    let msg = match msg {
                        Some(Ok(SessionResponse { msg: Some(m) })) => m,
                        Some(Ok(SessionResponse { msg: None })) => continue,
                        Some(Err(status)) => break format!("{:?}: {}", status.code(), status.message()),
                        None => break "stream ended by coordinator".into(),
                    };
                    let welcome = matches!(msg, Down::Welcome(_));
                    if !welcomed && !welcome {
                        debug!("message before welcome ignored");
                        continue;
                    }
                    let before = self.heartbeat_every;
                    if let Err(end) = self.on_message(msg, &out, paused, welcomed).await {
                        return end;
                    }
                    if welcome && !welcomed {
                        welcomed = true;
                        // Beat right away: the coordinator sees the node live at once.
                        heartbeat.as_mut().reset(Instant::now());
                    } else if before != self.heartbeat_every {
                        heartbeat.as_mut().reset(Instant::now() + jittered(self.heartbeat_every));
                    }
                }
                _ = &mut heartbeat => {
                    if !welcomed {
                        break "no welcome in time".into();
                    }
                    heartbeat.as_mut().reset(Instant::now() + jittered(self.heartbeat_every));
                    if !paused {
                        sequence += 1;
                        if let Err(end) = out.send(Up::Heartbeat(self.heartbeat(sequence))).await {
                            return end;
                        }
                        bump(&self.shared.stats.heartbeats_sent);
                    }
                }
                Some(done) = self.attempts.next(), if !self.attempts.is_empty() => {
                    if let Some(result) = self.finish(done)
                        && welcomed
                        && !paused
                        && let Err(end) = self.send_result(&out, result).await
                    {
                        return end;
                    }
                }
                changed = self.control.changed() => {
                    if let Some(end) = self.control_end(changed.is_err(), disconnects, welcomed) {
                        return end;
                    }
                    let now_paused = self.control.borrow().paused;
                    if paused
                        && !now_paused
                        && welcomed
                        && let Err(end) = self.resend_unacked(&out).await
                    {
                        return end;
                    }
                    paused = now_paused;
                }
            }
        };
        SessionEnd::Lost { welcomed, why }
    }

    /// Whether a control change ends the session.
    fn control_end(&mut self, closed: bool, disconnects: u64, welcomed: bool) -> Option<SessionEnd> {
        let c = *self.control.borrow_and_update();
        if closed || c.stopped {
            Some(SessionEnd::Stopped)
        } else if c.disconnects != disconnects {
            Some(SessionEnd::Lost { welcomed, why: "disconnect requested".into() })
        } else {
            None
        }
    }

    // These two take `&mut self` although they only read: `Node` is not `Sync`
    // (its attempt futures are not), so a `&Node` held across an await would
    // make the node's future not `Send`.
    async fn send_result(&mut self, out: &Outbox, result: TaskResult) -> Result<(), SessionEnd> {
        out.send(Up::TaskResult(result)).await?;
        bump(&self.shared.stats.results_sent);
        Ok(())
    }

    async fn resend_unacked(&mut self, out: &Outbox) -> Result<(), SessionEnd> {
        let pending: Vec<TaskResult> = self.unacked.values().cloned().collect();
        for result in pending {
            self.send_result(out, result).await?;
        }
        Ok(())
    }

    async fn on_message(&mut self, msg: Down, out: &Outbox, paused: bool, welcomed: bool) -> Result<(), SessionEnd> {
        // While paused (a silent partition) the node still listens and works but says nothing.
        let speak = !paused;
        match msg {
            Down::Welcome(w) => {
                if welcomed {
                    return Ok(());
                }
                bump(&self.shared.stats.sessions_opened);
                self.shared.stats.connected.store(true, Ordering::Relaxed);
                self.draining = false;
                self.set_interval(w.config.map(|c| c.heartbeat_interval_ms).unwrap_or(0));
                for gone in &w.cancel {
                    let key = key_of(Some(gone));
                    if let Some(r) = self.running.remove(&key) {
                        r.abort.abort();
                    }
                    self.unacked.remove(&key);
                }
                self.publish_counts();
                debug!(session.id = %w.session_id, cancelled = w.cancel.len(), "welcomed");
                if speak {
                    self.resend_unacked(out).await?;
                }
            }
            Down::Config(c) => self.set_interval(c.heartbeat_interval_ms),
            Down::Assignment(a) => self.on_assignment(a, out, speak).await?,
            Down::Cancellation(c) => {
                bump(&self.shared.stats.cancellations_received);
                let key = key_of(c.attempt.as_ref());
                if let Some(r) = self.running.remove(&key) {
                    r.abort.abort();
                    let exec = Execution::ended(AttemptOutcome::Cancelled, c.reason.clone());
                    let result = result_of(&key, &exec);
                    self.unacked.insert(key.clone(), result.clone());
                    self.publish_counts();
                    debug!(task.id = %key.0, attempt = key.1, reason = %c.reason, "attempt cancelled");
                    if speak {
                        self.send_result(out, result).await?;
                    }
                } else if let (Some(result), true) = (self.unacked.get(&key).cloned(), speak) {
                    self.send_result(out, result).await?;
                }
            }
            Down::Drain(d) => {
                debug!(reason = %d.reason, "draining");
                self.draining = true;
            }
            Down::ResultAck(ack) => {
                if self.unacked.remove(&key_of(ack.attempt.as_ref())).is_some() {
                    bump(&self.shared.stats.results_acked);
                    self.publish_counts();
                }
            }
            Down::Ping(p) => {
                if speak {
                    out.send(Up::Pong(Pong { nonce: p.nonce })).await?;
                }
            }
            Down::CertificateRenewed(_) => {}
        }
        Ok(())
    }

    fn set_interval(&mut self, ms: u32) {
        self.heartbeat_every =
            if ms == 0 { self.opts.default_heartbeat_interval } else { Duration::from_millis(u64::from(ms)) };
    }

    async fn on_assignment(&mut self, a: Assignment, out: &Outbox, speak: bool) -> Result<(), SessionEnd> {
        bump(&self.shared.stats.assignments_received);
        let key = key_of(a.attempt.as_ref());
        if self.running.contains_key(&key) {
            return Ok(()); // a duplicate: it is already running
        }
        if let Some(result) = self.unacked.get(&key).cloned() {
            return if speak { self.send_result(out, result).await } else { Ok(()) };
        }
        if self.draining {
            let exec = Execution::ended(AttemptOutcome::Refused, "node is draining");
            let result = result_of(&key, &exec);
            self.unacked.insert(key, result.clone());
            self.publish_counts();
            return if speak { self.send_result(out, result).await } else { Ok(()) };
        }
        if speak {
            let update = TaskUpdate { attempt: Some(attempt_ref(&key)), running: true, progress: 0.0 };
            out.send(Up::TaskUpdate(update)).await?;
        }
        let spec = a.spec.unwrap_or_default();
        let deadline = attempt_deadline(a.deadline, spec.timeout_ms);
        let speed = self.control.borrow().speed;
        let fail = self.opts.fail_rate > 0.0 && rand::rng().random_bool(self.opts.fail_rate.min(1.0));
        let task_id = key.0.clone();
        let work =
            async move {
                let exec =
                    match tokio::time::timeout_at(deadline, builtin::execute(&task_id, spec.workload.as_ref(), speed))
                        .await
                    {
                        Ok(exec) => exec,
                        Err(_) => Execution::ended(AttemptOutcome::TimedOut, "deadline exceeded"),
                    };
                if fail && exec.outcome == AttemptOutcome::Succeeded {
                    Execution::ended(AttemptOutcome::Failed, "simulated failure (fail rate)")
                } else {
                    exec
                }
            };
        let (work, abort) = futures::future::abortable(work);
        let finished_key = key.clone();
        self.attempts.push(Box::pin(async move { (finished_key, work.await.ok()) }));
        debug!(task.id = %key.0, attempt = key.1, "attempt started");
        self.running.insert(key, Running { abort, reserved: spec.resources.unwrap_or_default() });
        self.publish_counts();
        Ok(())
    }
}

/// When an attempt must be done: the assignment's deadline, else the task's
/// timeout (0 means the contract's default of 300,000 ms) from now.
fn attempt_deadline(deadline: Option<prost_types::Timestamp>, timeout_ms: u64) -> Instant {
    let now = Instant::now();
    if let Some(at) = deadline.and_then(|t| SystemTime::try_from(t).ok()) {
        return now + at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
    }
    let ms = if timeout_ms == 0 { 300_000 } else { timeout_ms };
    now + Duration::from_millis(ms)
}
