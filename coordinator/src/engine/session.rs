//! Node sessions as the engine sees them: open (hello → register, reconcile,
//! welcome), heartbeats, task updates and results, pongs, close.

use super::{Engine, SessionSlot};
use crate::convert;
use fog_core::domain::{AttemptNo, Millis, NodeId, TaskId};
use fog_core::registry::{HeartbeatState, NodeRegistration};
use fog_core::tasks::{Outcome, ResultVerdict};
use fog_proto::v1 as pb;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, info};

/// A message queued for a node's session. Boxed: a tokio channel allocates
/// its slots 32 at a time when it is created, and an unboxed response is a few
/// hundred bytes, so every idle session would carry kilobytes of empty slots.
pub type Outbound = Box<pb::SessionResponse>;

/// A session that just opened, with its validated hello.
pub struct SessionOpen {
    /// Session id (unique per coordinator run).
    pub session_id: u64,
    /// Who the node says it is (insecure dev) or its certificate says.
    pub registration: NodeRegistration,
    /// Attempts the node runs or holds unacked results for.
    pub running: Vec<(TaskId, AttemptNo)>,
    /// Where to send messages to the node.
    pub tx: mpsc::Sender<Outbound>,
    /// Serial of the node's client certificate (None in insecure dev mode).
    pub cert_serial: Option<String>,
    /// When that certificate expires.
    pub cert_expires_at: Option<std::time::SystemTime>,
    /// Whether the session was admitted.
    pub reply: tokio::sync::oneshot::Sender<Result<(), crate::api::ApiError>>,
}

/// Something that arrived on a session.
pub struct SessionEvent {
    /// Node.
    pub node: NodeId,
    /// Session id.
    pub session_id: u64,
    /// What.
    pub kind: SessionEventKind,
}

/// The kinds of session events.
pub enum SessionEventKind {
    /// Heartbeat.
    Heartbeat(HeartbeatState),
    /// An attempt started running.
    Running(TaskId, AttemptNo),
    /// An attempt ended (with the node's run span as a W3C `traceparent`, or empty).
    Result(TaskId, AttemptNo, Outcome, String),
    /// Answer to a ping.
    Pong(u64),
    /// A CSR to renew the node's certificate.
    Renew(Vec<u8>),
    /// The stream ended or failed.
    Closed,
}

/// Heartbeats on their way to the engine, applied in batches.
///
/// A heartbeat needs no answer and nothing durable, and the failure detector
/// only needs it within a fraction of the heartbeat interval. So instead of
/// waking the engine once per heartbeat (100,000 nodes every 5 s is 20,000
/// wake-ups and context switches a second), session readers append here and
/// the engine takes the whole batch every [`HeartbeatInbox::EVERY`], or as
/// soon as [`HeartbeatInbox::WAKE_AT`] are waiting. A heartbeat reaches the
/// registry (and a metrics watcher) at most 10 ms late.
/// Past [`HeartbeatInbox::CAP`] a reader falls back to the engine's bounded
/// node lane, which pushes back on the connection: nothing is dropped.
pub struct HeartbeatInbox {
    queue: std::sync::Mutex<Vec<SessionEvent>>,
    wake: tokio::sync::Notify,
}

impl HeartbeatInbox {
    /// How often the engine takes the batch.
    pub const EVERY: std::time::Duration = std::time::Duration::from_millis(10);
    /// Batch size that wakes the engine early.
    pub const WAKE_AT: usize = 4096;
    /// Most heartbeats held; beyond it readers wait on the node lane instead.
    pub const CAP: usize = 65_536;

    pub(super) fn new() -> HeartbeatInbox {
        HeartbeatInbox { queue: std::sync::Mutex::new(Vec::new()), wake: tokio::sync::Notify::new() }
    }

    /// Queues a heartbeat event (None); any other event, or any event when
    /// the inbox is full, is handed back.
    pub fn offer(&self, ev: SessionEvent) -> Option<SessionEvent> {
        if !matches!(ev.kind, SessionEventKind::Heartbeat(_)) {
            return Some(ev);
        }
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if q.len() >= Self::CAP {
            return Some(ev);
        }
        q.push(ev);
        if q.len() == Self::WAKE_AT {
            self.wake.notify_one();
        }
        None
    }

    /// Resolves when a full batch is waiting.
    pub(super) async fn full(&self) {
        self.wake.notified().await
    }

    /// Everything queued so far, leaving `spare` (an empty vector with capacity) in its place.
    pub(super) fn take(&self, spare: Vec<SessionEvent>) -> Vec<SessionEvent> {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::replace(&mut *q, spare)
    }
}

impl Engine {
    /// Applies every queued heartbeat (in arrival order per reader).
    pub(super) fn drain_heartbeats(&mut self, now: Millis) {
        let mut batch = self.beats.take(std::mem::take(&mut self.beat_spare));
        for ev in batch.drain(..) {
            self.session_event(ev, now);
        }
        self.beat_spare = batch;
    }

    pub(super) fn session_open(&mut self, open: SessionOpen, now: Millis) {
        let id = open.registration.id.clone();
        if let Some(serial) = &open.cert_serial
            && self.identity.is_denied(serial)
        {
            info!(node.id = %id, serial = %serial, "refused a revoked certificate");
            let _ = open.reply.send(Err(crate::api::ApiError::PermissionDenied(format!(
                "the certificate of node {id} was revoked (the node was removed); join again with a new token"
            ))));
            return;
        }
        let _ = open.reply.send(Ok(()));
        let stored = self.nodes.get(&id).map(convert::node_record);
        let known = stored.is_some();
        self.nodes.register(open.registration, now);
        // A reconnect whose hello changes nothing durable writes nothing: after
        // a restart, a whole fleet says hello again with what the store holds.
        if stored != self.nodes.get(&id).map(convert::node_record) {
            self.pending.nodes.insert(id.clone());
        }
        if let Some(old) = self.sessions.remove(&id) {
            info!(node.id = %id, old = old.id, new = open.session_id, "replacing an older session of the same node");
        }
        self.sessions.insert(
            id.clone(),
            SessionSlot {
                id: open.session_id,
                tx: open.tx.clone(),
                last_ping: 0,
                ping: None,
                cert_expires_at: open.cert_expires_at,
            },
        );
        if let Some(t) = self.liveness.session_opened(id.clone(), now) {
            self.apply_transition(t, now);
        }
        let (cancel, changed) = self.tasks.reconcile(&mut self.nodes, &id, &open.running, now);
        if !changed.is_empty() {
            self.place_needed = true;
        }
        self.mark_tasks(changed);
        self.flush_nodes();
        let welcome = pb::Welcome {
            node_id: id.to_string(),
            session_id: open.session_id.to_string(),
            config: Some(pb::SessionConfig { heartbeat_interval_ms: self.cfg.liveness.heartbeat_interval_ms as u32 }),
            cancel: cancel
                .into_iter()
                .map(|(task_id, attempt)| pb::AttemptRef { task_id: task_id.to_string(), attempt })
                .collect(),
        };
        // The welcome is queued before anything else for this session.
        self.send_after_commit(&id, pb::session_response::Msg::Welcome(welcome));
        let draining = self.nodes.get(&id).is_some_and(|e| e.draining);
        if draining {
            self.send_after_commit(
                &id,
                pb::session_response::Msg::Drain(pb::Drain { reason: "node is draining".into() }),
            );
        }
        self.place_needed = true;
        self.publish_node(&id);
        info!(node.id = %id, session = open.session_id, known, "session opened");
    }

    pub(super) fn session_event(&mut self, ev: SessionEvent, now: Millis) {
        // Events from a replaced session are ignored: only the current one speaks for the node.
        if self.sessions.get(&ev.node).is_none_or(|s| s.id != ev.session_id) {
            return;
        }
        match ev.kind {
            SessionEventKind::Heartbeat(state) => self.heartbeat(&ev.node, state, now),
            SessionEventKind::Running(task, attempt) => {
                if self.tasks.attempt_running(&ev.node, &task, attempt) {
                    self.mark_task_deferred(task, now);
                }
            }
            SessionEventKind::Result(task, attempt, outcome, traceparent) => {
                // A session's messages apply in the order it sent them: a
                // heartbeat still waiting in the inbox (one that says the node
                // takes no new work, say) goes first, or the re-queue that a
                // refusal causes could place the task on the node again.
                self.drain_heartbeats(now);
                self.result(&ev.node, task, attempt, outcome, &traceparent, now)
            }
            SessionEventKind::Pong(nonce) => {
                if let Some(s) = self.sessions.get_mut(&ev.node)
                    && let Some((n, sent)) = s.ping
                    && n == nonce
                {
                    s.ping = None;
                    let rtt = sent.elapsed().as_secs_f64() * 1000.0;
                    self.nodes.update(&ev.node, |e| e.session_rtt_ms = rtt);
                    self.publish_node(&ev.node);
                }
            }
            SessionEventKind::Renew(csr) => self.renew(&ev.node, &csr),
            SessionEventKind::Closed => self.close_session(&ev.node, ev.session_id, now),
        }
    }

    fn heartbeat(&mut self, node: &NodeId, state: HeartbeatState, now: Millis) {
        let Some((accepts_work_changed, previous)) = self.nodes.heartbeat(node, state, now) else { return };
        self.place_needed |= accepts_work_changed;
        let metrics = &self.cfg.metrics;
        metrics.heartbeats.inc();
        if previous > 0 {
            metrics.heartbeat_interarrival.observe(now.saturating_sub(previous) as f64 / 1000.0);
        }
        if let Some(t) = self.liveness.heartbeat(node, now) {
            self.apply_transition(t, now);
        }
        self.maybe_ping(node, now);
        self.publish_node(node);
    }

    /// Pings ride on heartbeats, so RTT measurement costs no timer per node.
    fn maybe_ping(&mut self, node: &NodeId, now: Millis) {
        let interval = self.cfg.ping_interval.as_millis() as u64;
        let Some(s) = self.sessions.get_mut(node) else { return };
        // An unanswered ping older than the interval is simply replaced.
        if s.last_ping != 0 && now.saturating_sub(s.last_ping) < interval {
            return;
        }
        let nonce = rand::random::<u64>();
        s.last_ping = now;
        s.ping = Some((nonce, std::time::Instant::now()));
        // Pings change nothing durable: send at once.
        let _ = s
            .tx
            .try_send(Box::new(pb::SessionResponse { msg: Some(pb::session_response::Msg::Ping(pb::Ping { nonce })) }));
    }

    fn result(
        &mut self,
        node: &NodeId,
        task: TaskId,
        attempt: AttemptNo,
        outcome: Outcome,
        traceparent: &str,
        now: Millis,
    ) {
        let kind = outcome.kind;
        let (verdict, effects) = self.tasks.attempt_finished(&mut self.nodes, node, &task, attempt, outcome, now);
        debug!(node.id = %node, task.id = %task, attempt, ?verdict, "result");
        if matches!(verdict, ResultVerdict::Accepted | ResultVerdict::Stale) {
            let finished = self.tasks.get(&task).is_none_or(|t| t.state.is_terminal());
            self.traces.completed(&task, attempt, &format!("{kind:?}").to_lowercase(), traceparent, finished);
        }
        let accepted = match verdict {
            ResultVerdict::Accepted => {
                self.place_needed = true;
                self.pending.nodes.insert(node.clone());
                true
            }
            ResultVerdict::Duplicate => true,
            ResultVerdict::Stale | ResultVerdict::Unknown => false,
        };
        if matches!(verdict, ResultVerdict::Accepted | ResultVerdict::Stale) {
            self.mark_tasks([task.clone()]);
        }
        self.core_effects(effects);
        self.publish_node(node);
        // The ack goes out only after the result is durable: until then the
        // node keeps the result and resends it after a reconnect.
        let ack = pb::ResultAck { attempt: Some(pb::AttemptRef { task_id: task.to_string(), attempt }), accepted };
        self.send_after_commit(node, pb::session_response::Msg::ResultAck(ack));
    }

    pub(super) fn close_session(&mut self, node: &str, session_id: u64, now: Millis) {
        if self.sessions.get(node).is_none_or(|s| s.id != session_id) {
            return;
        }
        self.sessions.remove(node);
        if let Some(t) = self.liveness.session_closed(node, now) {
            self.apply_transition(t, now);
        }
        info!(node.id = %node, session = session_id, "session closed");
    }
}

/// Converts a node's result message into the core's outcome.
pub fn outcome(r: &pb::TaskResult) -> Outcome {
    use fog_core::tasks::OutcomeKind as K;
    let kind = match pb::AttemptOutcome::try_from(r.outcome).unwrap_or_default() {
        pb::AttemptOutcome::Succeeded => K::Succeeded,
        pb::AttemptOutcome::TimedOut => K::TimedOut,
        pb::AttemptOutcome::Cancelled => K::Cancelled,
        pb::AttemptOutcome::Refused => K::Refused,
        pb::AttemptOutcome::Failed | pb::AttemptOutcome::Unspecified => K::Failed,
    };
    Outcome {
        kind,
        exit_code: r.exit_code,
        error: r.error.clone(),
        output: r.output.as_ref().map(|o| fog_core::tasks::TaskOutput {
            stdout: o.stdout.clone(),
            stderr: o.stderr.clone(),
            truncated: o.truncated,
        }),
    }
}

/// Region names a session's heartbeats carry, kept so that each heartbeat
/// reuses them instead of allocating every name again (and so that the
/// registry compares them by pointer). At most [`RegionNames::MAX`] per session.
#[derive(Default)]
pub struct RegionNames(Vec<Arc<str>>);

impl RegionNames {
    /// Names remembered per session.
    pub const MAX: usize = 16;

    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.iter().find(|n| &***n == name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        if self.0.len() < Self::MAX {
            self.0.push(n.clone());
        }
        n
    }
}

/// The heartbeat message as the registry's live state.
pub fn heartbeat_state(h: &pb::Heartbeat, names: &mut RegionNames) -> HeartbeatState {
    let mut rtts: Vec<(Arc<str>, f32)> = h.region_rtt_ms.iter().map(|(r, ms)| (names.get(r), *ms as f32)).collect();
    rtts.sort_by(|a, b| a.0.cmp(&b.0));
    HeartbeatState {
        cpu_usage: h.cpu_usage.clamp(0.0, 1.0),
        memory_usage: h.memory_usage.clamp(0.0, 1.0),
        load_average: h.load_average.max(0.0),
        battery_percent: (0..=100).contains(&h.battery_percent).then_some(h.battery_percent as u8),
        charging: h.charging,
        temperature_c: (h.temperature_celsius > -273.0).then_some(h.temperature_celsius),
        power_mode: convert::power_mode(h.power_mode),
        region_rtt_ms: rtts,
        state_unwritable: h.state_unwritable,
    }
}
