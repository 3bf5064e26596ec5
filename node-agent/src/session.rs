//! The agent's one session with the coordinator, and everything it owns: the
//! attempts running, the results not yet acknowledged, heartbeats, reconnects.
//!
//! One task (the [`Agent`] loop) owns all of it; each running attempt is a
//! spawned task that reports progress and its end over a bounded channel.
//! While no session is open the loop keeps collecting finished attempts and
//! persists their results, so work goes on through a coordinator outage and
//! the results are delivered — once acknowledged, forgotten — when a session
//! is back.
//!
//! Identity is whatever [`Identity`] says; the transport is the [`Transport`]
//! seam. With mTLS ([`Agent::with_credentials`]) the loop also renews the
//! certificate over the live session at a jittered 70–90 % of its lifetime:
//! a new key, `RenewCertificate`, and on `CertificateRenewed` the key and
//! certificate are stored (crash-safe) and used for the next connection; the
//! current session goes on.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fog_proto::v1::node_service_client::NodeServiceClient;
use fog_proto::v1::session_request::Msg as Up;
use fog_proto::v1::session_response::Msg as Down;
use fog_proto::v1::{
    Assignment, AttemptOutcome, AttemptRef, CertificateRenewed, Heartbeat, Hello, Label, Location, NodeType, Pong,
    RenewCertificate, Resources, SessionRequest, SessionResponse, TaskResult, TaskUpdate,
};
use fog_telemetry::trace::{self, Span};
use futures::StreamExt;
use opentelemetry::KeyValue;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::exec::{Execution, Executor};
use crate::identity::{self, Credentials};
use crate::metrics::Sampler;
use crate::state::{AttemptKey, LocalState, key_of};
use crate::transport::Transport;

/// Who the node says it is in its hello.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Node id (insecure mode: the identity itself; with mTLS it must match the certificate).
    pub node_id: String,
    /// Human-friendly name.
    pub name: String,
    /// Kind of device.
    pub node_type: NodeType,
    /// What it offers.
    pub capacity: Resources,
    /// Where it is.
    pub location: Location,
    /// Node labels.
    pub labels: Vec<(String, String)>,
    /// Onion routing capability.
    pub supports_onion_routing: bool,
}

/// How the session behaves on the wire.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// Coordinator addresses, tried in turn.
    pub coordinators: Vec<String>,
    /// How to reach them.
    pub transport: Transport,
    /// The n-th consecutive reconnect waits a random time in
    /// `[0, min(reconnect_max, reconnect_min * 2^n)]` (full jitter).
    pub reconnect_min: Duration,
    /// Cap of one reconnect wait.
    pub reconnect_max: Duration,
    /// How long to wait for `Welcome` after the hello.
    pub welcome_timeout: Duration,
    /// Heartbeat interval until the coordinator sets one.
    pub default_heartbeat: Duration,
}

/// What an attempt task tells the loop.
enum Event {
    Progress(AttemptKey, f64),
    Finished(AttemptKey, Execution),
}

struct Running {
    cancel: CancellationToken,
    /// The coordinator no longer wants it (or the agent is stopping): its end
    /// is not reported.
    discard: bool,
    /// The run span's W3C `traceparent` (empty when not traced), sent with the result.
    traceparent: String,
    _task: JoinHandle<()>,
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
    Lost { welcomed: bool, why: String },
}

fn lost(welcomed: bool, why: impl Into<String>) -> SessionEnd {
    SessionEnd::Lost { welcomed, why: why.into() }
}

/// The sending half of a session. A failed send means the stream is gone.
struct Outbox {
    tx: mpsc::Sender<SessionRequest>,
}

impl Outbox {
    async fn send(&self, msg: Up) -> Result<(), SessionEnd> {
        self.tx.send(SessionRequest { msg: Some(msg) }).await.map_err(|_| lost(true, "request stream closed"))
    }
}

fn attempt_ref(key: &AttemptKey) -> AttemptRef {
    AttemptRef { task_id: key.0.clone(), attempt: key.1 }
}

fn key_from(a: Option<&AttemptRef>) -> AttemptKey {
    a.map(|a| (a.task_id.clone(), a.attempt)).unwrap_or_default()
}

fn result_of(key: &AttemptKey, e: &Execution, traceparent: String) -> TaskResult {
    TaskResult {
        attempt: Some(attempt_ref(key)),
        outcome: e.outcome as i32,
        exit_code: e.exit_code,
        output: Some(e.output()),
        error: e.error.clone(),
        traceparent,
    }
}

/// ±10 % jitter, so a fleet restarted at once does not beat in lockstep.
fn jittered(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.9..=1.1))
}

/// If a renewal gets no answer, ask again after this long.
const RENEW_RETRY: Duration = Duration::from_secs(60);
/// Below this much free space in the state directory the agent takes no new
/// work: an attempt's record and its result (up to 128 KiB of output) must fit.
const MIN_FREE_BYTES: u64 = 1 << 20;

/// The node's certificate and its rotation.
struct Rotation {
    creds: Credentials,
    state_dir: PathBuf,
    fraction: Option<f64>,
    /// When to ask for a new certificate.
    due: Instant,
    /// The key generated for the renewal in flight (PEM).
    pending_key: Option<String>,
}

impl Rotation {
    fn schedule(&mut self) {
        let at = identity::renew_at(&self.creds.info, self.fraction);
        let wait = at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        self.due = Instant::now() + wait;
        info!(in_secs = wait.as_secs(), "certificate renewal scheduled");
    }
}

/// The agent: session, attempts, results.
pub struct Agent {
    id: Identity,
    settings: SessionSettings,
    state: LocalState,
    executor: Arc<Executor>,
    sampler: Sampler,
    running: HashMap<AttemptKey, Running>,
    /// Results kept (and persisted) until the coordinator acknowledges them.
    unacked: BTreeMap<AttemptKey, TaskResult>,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    draining: bool,
    /// Why the state directory cannot be written now (None: it can). While
    /// set, heartbeats say so and new attempts are refused.
    unwritable: Option<String>,
    /// The last heartbeat's sequence number in this session.
    sequence: u64,
    heartbeat_every: Duration,
    shutdown: CancellationToken,
    next_addr: usize,
    rotation: Option<Rotation>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("node_id", &self.id.node_id).finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent that will resend `unacked` (recovered from `state`) after its
    /// first welcome.
    pub fn new(
        id: Identity,
        settings: SessionSettings,
        state: LocalState,
        unacked: Vec<TaskResult>,
        executor: Executor,
        sampler: Sampler,
        shutdown: CancellationToken,
    ) -> Agent {
        let (events_tx, events) = mpsc::channel(256);
        let heartbeat_every = settings.default_heartbeat;
        Agent {
            id,
            settings,
            state,
            executor: Arc::new(executor),
            sampler,
            running: HashMap::new(),
            unacked: unacked.into_iter().map(|r| (key_of(&r), r)).collect(),
            events_tx,
            events,
            draining: false,
            unwritable: None,
            sequence: 0,
            heartbeat_every,
            shutdown,
            next_addr: 0,
            rotation: None,
        }
    }

    /// mTLS: renews `creds` (stored in `state_dir`) over the live session at
    /// `fraction` of its lifetime (None: random 70–90 %).
    pub fn with_credentials(mut self, creds: Credentials, state_dir: PathBuf, fraction: Option<f64>) -> Agent {
        let mut r = Rotation { creds, state_dir, fraction, due: Instant::now(), pending_key: None };
        r.schedule();
        self.rotation = Some(r);
        self
    }

    fn renew_due(&self) -> Instant {
        self.rotation.as_ref().map_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600), |r| r.due)
    }

    /// Asks for a new certificate for a new key, on the live session.
    async fn start_renewal(&mut self, out: &Outbox) -> Result<(), SessionEnd> {
        let Some(r) = self.rotation.as_mut() else { return Ok(()) };
        r.due = Instant::now() + RENEW_RETRY;
        let (key, csr) = match identity::new_key_and_csr() {
            Ok(k) => k,
            Err(e) => {
                error!(error = %e, "could not make a key for the certificate renewal");
                return Ok(());
            }
        };
        r.pending_key = Some(key.serialize_pem());
        info!("renewing the node certificate");
        out.send(Up::RenewCertificate(RenewCertificate { csr_der: csr })).await
    }

    fn on_renewed(&mut self, renewed: CertificateRenewed) {
        let Some(r) = self.rotation.as_mut() else { return };
        let Some(key) = r.pending_key.take() else {
            warn!("unrequested certificate ignored");
            return;
        };
        match r.creds.store_renewed(&r.state_dir, &key, &renewed.certificate_der) {
            Ok(creds) => {
                if let Transport::Tls { cert, key, .. } = &mut self.settings.transport {
                    cert.clone_from(&creds.cert_pem);
                    key.clone_from(&creds.key_pem);
                }
                r.creds = creds;
                info!("node certificate renewed; the next connection uses it");
                r.schedule();
            }
            Err(e) => error!(error = %e, "renewed certificate not usable; will retry"),
        }
    }

    /// Runs until `shutdown` fires: sessions, reconnects with backoff across
    /// the coordinator list, then stops running attempts.
    pub async fn run(mut self) {
        let span = info_span!("agent", node.id = %self.id.node_id);
        async move {
            let mut retries: u32 = 0;
            loop {
                let n = self.settings.coordinators.len().max(1);
                let addr = self.settings.coordinators[self.next_addr % n].clone();
                match self.session(&addr).await {
                    SessionEnd::Shutdown => break,
                    SessionEnd::Lost { welcomed, why } => {
                        if welcomed {
                            retries = 0;
                            info!(coordinator = %addr, why = %why, "session lost");
                        } else {
                            // Unreachable or unwelcoming: the next try goes to the next address.
                            self.next_addr = self.next_addr.wrapping_add(1);
                            debug!(coordinator = %addr, retries, why = %why, "no session");
                        }
                    }
                }
                let s = &self.settings;
                let ceiling = s.reconnect_min.saturating_mul(1u32 << retries.min(16)).min(s.reconnect_max);
                let wait = ceiling.mul_f64(rand::rng().random_range(0.0..=1.0));
                retries = retries.saturating_add(1);
                if self.pump(tokio::time::sleep(wait)).await.is_none() {
                    break;
                }
            }
            self.stop_running().await;
        }
        .instrument(span)
        .await
    }

    /// Stopping: running attempts are stopped and not reported; their
    /// `.assigned` records stay, so the next start forgets them and the
    /// coordinator re-queues them.
    async fn stop_running(&mut self) {
        for r in self.running.values_mut() {
            r.discard = true;
            r.cancel.cancel();
        }
        let deadline = Instant::now() + self.executor.kill_grace + Duration::from_secs(2);
        while !self.running.is_empty() {
            tokio::select! {
                Some(Event::Finished(key, _)) = self.events.recv() => { self.running.remove(&key); }
                _ = sleep_until(deadline) => break,
            }
        }
        info!(left = self.running.len(), "stopped");
    }

    /// Polls `fut` while handling attempt events (no session: results are only
    /// persisted). `None` if shutdown fired first.
    async fn pump<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                r = &mut fut => return Some(r),
                Some(ev) = self.events.recv() => { self.on_event(ev); }
                _ = self.shutdown.cancelled() => return None,
            }
        }
    }

    /// Applies an attempt event; returns what a live session should send.
    fn on_event(&mut self, ev: Event) -> Option<Up> {
        match ev {
            Event::Progress(key, p) => {
                let r = self.running.get(&key)?;
                (!r.discard).then(|| {
                    Up::TaskUpdate(TaskUpdate { attempt: Some(attempt_ref(&key)), running: true, progress: p })
                })
            }
            Event::Finished(key, exec) => {
                let r = self.running.remove(&key)?;
                if r.discard {
                    if let Err(e) = self.state.forget(&key) {
                        warn!(error = %e, "could not forget a discarded attempt");
                    }
                    debug!(task.id = %key.0, attempt = key.1, "discarded attempt ended");
                    return None;
                }
                info!(task.id = %key.0, attempt = key.1, outcome = ?exec.outcome, exit_code = exec.exit_code, "attempt finished");
                Some(Up::TaskResult(self.keep_result(&key, &exec, r.traceparent)))
            }
        }
    }

    /// Persists and remembers a result until it is acknowledged.
    fn keep_result(&mut self, key: &AttemptKey, exec: &Execution, traceparent: String) -> TaskResult {
        let result = result_of(key, exec, traceparent);
        if let Err(e) = self.state.record_result(&result) {
            // Still sent from memory; only a crash before the ack would lose it.
            warn!(task.id = %key.0, error = %e, "could not persist a result");
            self.state_write_failed(&e);
        }
        self.unacked.insert(key.clone(), result.clone());
        result
    }

    fn live_attempts(&self) -> impl Iterator<Item = AttemptRef> + '_ {
        self.running.iter().filter(|(_, r)| !r.discard).map(|(k, _)| attempt_ref(k))
    }

    fn hello(&self) -> Hello {
        let mut running: Vec<AttemptRef> = self.live_attempts().collect();
        running.extend(self.unacked.keys().map(attempt_ref));
        Hello {
            node_id: self.id.node_id.clone(),
            name: self.id.name.clone(),
            node_type: self.id.node_type as i32,
            capacity: Some(self.id.capacity),
            location: Some(self.id.location.clone()),
            labels: self.id.labels.iter().map(|(k, v)| Label { key: k.clone(), value: v.clone() }).collect(),
            agent_version: concat!("fog-agent/", env!("CARGO_PKG_VERSION")).to_string(),
            supports_onion_routing: self.id.supports_onion_routing,
            running,
        }
    }

    /// Sends the next heartbeat.
    async fn beat(&mut self, out: &Outbox) -> Result<(), SessionEnd> {
        self.sequence += 1;
        let hb = self.heartbeat(self.sequence);
        out.send(Up::Heartbeat(hb)).await
    }

    fn heartbeat(&mut self, sequence: u64) -> Heartbeat {
        self.check_state_dir();
        let mut hb = Heartbeat { sequence, ..Default::default() };
        self.sampler.sample().fill(&mut hb);
        hb.running = self.live_attempts().collect();
        hb.state_unwritable = self.unwritable.is_some();
        hb
    }

    /// One session, from connecting to losing it.
    async fn session(&mut self, addr: &str) -> SessionEnd {
        let transport = self.settings.transport.clone();
        let channel = match self.pump(transport.connect(addr)).await {
            None => return SessionEnd::Shutdown,
            Some(Err(e)) => return lost(false, e.to_string()),
            Some(Ok(c)) => c,
        };
        let (tx, rx) = mpsc::channel(64);
        let out = Outbox { tx };
        if out.send(Up::Hello(self.hello())).await.is_err() {
            return lost(false, "request stream closed");
        }
        let mut client = NodeServiceClient::new(channel);
        let welcome_deadline = Instant::now() + self.settings.welcome_timeout;
        let call = client.session(ReceiverStream::new(rx));
        let opened = match self.pump(tokio::time::timeout_at(welcome_deadline, call)).await {
            None => return SessionEnd::Shutdown,
            Some(Err(_)) => return lost(false, "no response to hello"),
            Some(Ok(r)) => r,
        };
        let mut inbound = match opened {
            Ok(response) => response.into_inner(),
            Err(status) => {
                if matches!(status.code(), tonic::Code::PermissionDenied | tonic::Code::Unauthenticated) {
                    // Not a network blip: an operator should see it (e.g. a revoked certificate).
                    warn!(coordinator = %addr, code = ?status.code(), reason = %status.message(), "session refused");
                }
                return lost(false, format!("{:?}: {}", status.code(), status.message()));
            }
        };

        let mut welcomed = false;
        self.sequence = 0;
        let heartbeat = sleep_until(welcome_deadline);
        tokio::pin!(heartbeat);
        let renew = sleep_until(self.renew_due());
        tokio::pin!(renew);
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
                    if welcome && welcomed {
                        continue;
                    }
                    let before = self.heartbeat_every;
                    let renewed = matches!(msg, Down::CertificateRenewed(_));
                    if let Err(end) = self.on_message(msg, &out).await {
                        return end;
                    }
                    if renewed {
                        renew.as_mut().reset(self.renew_due());
                    }
                    if welcome {
                        welcomed = true;
                        info!(coordinator = %addr, "session open");
                        // Beat at once: the coordinator sees the node live right away.
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
                    if let Err(end) = self.beat(&out).await {
                        return end;
                    }
                }
                Some(ev) = self.events.recv() => {
                    if let Some(up) = self.on_event(ev)
                        && welcomed
                        && let Err(end) = out.send(up).await
                    {
                        return end;
                    }
                }
                _ = &mut renew, if welcomed && self.rotation.is_some() => {
                    if let Err(end) = self.start_renewal(&out).await {
                        return end;
                    }
                    renew.as_mut().reset(self.renew_due());
                }
                _ = self.shutdown.cancelled() => return SessionEnd::Shutdown,
            }
        };
        lost(welcomed, why)
    }

    async fn resend_unacked(&mut self, out: &Outbox) -> Result<(), SessionEnd> {
        let pending: Vec<TaskResult> = self.unacked.values().cloned().collect();
        if !pending.is_empty() {
            info!(results = pending.len(), "resending unacknowledged results");
        }
        for result in pending {
            out.send(Up::TaskResult(result)).await?;
        }
        Ok(())
    }

    async fn on_message(&mut self, msg: Down, out: &Outbox) -> Result<(), SessionEnd> {
        match msg {
            Down::Welcome(w) => {
                self.draining = false;
                self.set_interval(w.config.map(|c| c.heartbeat_interval_ms).unwrap_or(0));
                for gone in &w.cancel {
                    let key = key_from(Some(gone));
                    if let Some(r) = self.running.get_mut(&key) {
                        r.discard = true;
                        r.cancel.cancel();
                    }
                    if self.unacked.remove(&key).is_some()
                        && let Err(e) = self.state.forget(&key)
                    {
                        warn!(error = %e, "could not forget a cancelled result");
                    }
                }
                debug!(session.id = %w.session_id, cancelled = w.cancel.len(), "welcomed");
                self.resend_unacked(out).await?;
            }
            Down::Config(c) => self.set_interval(c.heartbeat_interval_ms),
            Down::Assignment(a) => self.on_assignment(a, out).await?,
            Down::Cancellation(c) => {
                let key = key_from(c.attempt.as_ref());
                if let Some(r) = self.running.get(&key) {
                    // The result (CANCELLED) is sent once the work has really stopped.
                    info!(task.id = %key.0, attempt = key.1, reason = %c.reason, "cancelling attempt");
                    r.cancel.cancel();
                } else if let Some(result) = self.unacked.get(&key).cloned() {
                    out.send(Up::TaskResult(result)).await?;
                }
            }
            Down::Drain(d) => {
                info!(reason = %d.reason, "draining: running tasks finish, new ones are refused");
                self.draining = true;
            }
            Down::ResultAck(ack) => {
                let key = key_from(ack.attempt.as_ref());
                if self.unacked.remove(&key).is_some() {
                    debug!(task.id = %key.0, attempt = key.1, accepted = ack.accepted, "result acknowledged");
                    if let Err(e) = self.state.forget(&key) {
                        warn!(error = %e, "could not forget an acknowledged result");
                    }
                }
            }
            Down::Ping(p) => out.send(Up::Pong(Pong { nonce: p.nonce })).await?,
            Down::CertificateRenewed(r) => self.on_renewed(r),
        }
        Ok(())
    }

    /// A write to the state directory failed: no new work until one succeeds.
    fn state_write_failed(&mut self, e: &std::io::Error) {
        if self.unwritable.is_none() {
            error!(error = %e, "cannot write the state directory; refusing new work until it can");
        }
        self.unwritable = Some(e.to_string());
    }

    /// Before each heartbeat: too little free space marks the state directory
    /// unwritable before a write fails; once marked, a synced probe write
    /// that succeeds (with enough space free) clears it.
    fn check_state_dir(&mut self) {
        match self.state.free_bytes() {
            Ok(free) if free < MIN_FREE_BYTES => {
                if self.unwritable.is_none() {
                    error!(free_bytes = free, "state directory nearly full; refusing new work until space is freed");
                }
                self.unwritable = Some(format!("only {free} bytes free (at least {MIN_FREE_BYTES} needed)"));
            }
            _ if self.unwritable.is_some() && self.state.probe().is_ok() => {
                info!("state directory writable again; taking new work");
                self.unwritable = None;
            }
            _ => {}
        }
    }

    fn set_interval(&mut self, ms: u32) {
        self.heartbeat_every =
            if ms == 0 { self.settings.default_heartbeat } else { Duration::from_millis(u64::from(ms)) };
    }

    async fn on_assignment(&mut self, a: Assignment, out: &Outbox) -> Result<(), SessionEnd> {
        let key = key_from(a.attempt.as_ref());
        if self.running.contains_key(&key) {
            return Ok(()); // a duplicate: it is already running
        }
        if let Some(result) = self.unacked.get(&key).cloned() {
            return out.send(Up::TaskResult(result)).await;
        }
        if self.draining {
            let exec = Execution::ended(AttemptOutcome::Refused, "node is draining");
            let result = self.keep_result(&key, &exec, String::new());
            return out.send(Up::TaskResult(result)).await;
        }
        // An attempt that cannot be recorded could not be recovered after a
        // crash (its process could outlive the agent unseen): refused.
        let why = match &self.unwritable {
            Some(why) => Some(why.clone()),
            None => match self.state.record_assigned(&key, &a) {
                Ok(()) => None,
                Err(e) => {
                    self.state_write_failed(&e);
                    // The coordinator learns first, so the task it re-queues
                    // on the refusal goes elsewhere.
                    self.beat(out).await?;
                    Some(e.to_string())
                }
            },
        };
        if let Some(why) = why {
            let exec =
                Execution::ended(AttemptOutcome::Refused, format!("agent cannot write its state directory: {why}"));
            let result = self.keep_result(&key, &exec, String::new());
            return out.send(Up::TaskResult(result)).await;
        }
        out.send(Up::TaskUpdate(TaskUpdate { attempt: Some(attempt_ref(&key)), running: true, progress: 0.0 })).await?;
        let spec = a.spec.unwrap_or_default();
        let deadline = attempt_deadline(a.deadline, spec.timeout_ms);
        let cancel = CancellationToken::new();
        let executor = self.executor.clone();
        let events = self.events_tx.clone();
        let state = self.state.clone();
        let (key2, token) = (key.clone(), cancel.clone());
        let span = info_span!("attempt", task.id = %key.0, attempt = key.1);
        info!(task.id = %key.0, attempt = key.1, "attempt started");
        let mut run = run_span(&a.traceparent, &key, &self.id.node_id);
        let traceparent = run.as_ref().map(|s| trace::traceparent(s.span_context())).unwrap_or_default();
        let task = tokio::spawn(
            async move {
                let (ptx, mut prx) = mpsc::channel(4);
                // Persisted before the attempt can end (its record is removed
                // only on `Finished`), so a restart after a crash can kill it.
                let started = |pid| {
                    if let Err(e) = state.record_process(&key2, pid) {
                        warn!(pid, error = %e, "could not persist the attempt's process");
                    }
                };
                let exec = {
                    let work = executor.run(&key2.0, key2.1, &spec, deadline, token, ptx, started);
                    tokio::pin!(work);
                    loop {
                        tokio::select! {
                            e = &mut work => break e,
                            Some(p) = prx.recv() => { let _ = events.try_send(Event::Progress(key2.clone(), p)); }
                        }
                    }
                };
                if let Some(s) = &mut run {
                    s.set_attribute(KeyValue::new(
                        "fog.outcome",
                        exec.outcome.as_str_name().trim_start_matches("ATTEMPT_OUTCOME_").to_lowercase(),
                    ));
                    if exec.outcome != AttemptOutcome::Succeeded {
                        s.set_status(trace::Status::error(exec.error.clone()));
                    }
                    s.end();
                }
                // A failed send means the agent is gone; nothing to report to.
                let _ = events.send(Event::Finished(key2, exec)).await;
            }
            .instrument(span),
        );
        self.running.insert(key, Running { cancel, discard: false, traceparent, _task: task });
        Ok(())
    }
}

/// The `run` span of an attempt, child of the coordinator's dispatch span
/// (`traceparent` from the assignment), when spans are exported.
fn run_span(traceparent: &str, key: &AttemptKey, node_id: &str) -> Option<trace::BoxedSpan> {
    if !trace::enabled() {
        return None;
    }
    let parent = trace::parse_traceparent(traceparent);
    if !parent.is_valid() {
        return None;
    }
    let mut span = trace::start("run", trace::SpanKind::Consumer, &trace::context_of(&parent));
    span.set_attributes([
        KeyValue::new("fog.task.id", key.0.clone()),
        KeyValue::new("fog.attempt", key.1 as i64),
        KeyValue::new("fog.node.id", node_id.to_string()),
    ]);
    Some(span)
}

/// When an attempt must be done: the earlier of the assignment's deadline and
/// the task's timeout from now (0 means the contract's default of 300,000 ms).
fn attempt_deadline(deadline: Option<prost_types::Timestamp>, timeout_ms: u64) -> Instant {
    let now = Instant::now();
    let ms = if timeout_ms == 0 { 300_000 } else { timeout_ms };
    let by_timeout = now + Duration::from_millis(ms);
    match deadline.and_then(|t| SystemTime::try_from(t).ok()) {
        Some(at) => by_timeout.min(now + at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO)),
        None => by_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_the_earlier_of_both() {
        let now = Instant::now();
        let soon = SystemTime::now() + Duration::from_secs(2);
        let d = attempt_deadline(Some(soon.into()), 60_000);
        assert!(d <= now + Duration::from_secs(3) && d >= now + Duration::from_secs(1));
        let d = attempt_deadline(Some((SystemTime::now() + Duration::from_secs(600)).into()), 500);
        assert!(d <= Instant::now() + Duration::from_millis(600));
        let d = attempt_deadline(None, 0);
        assert!(d >= now + Duration::from_secs(299));
    }
}
