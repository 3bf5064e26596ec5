//! The engine: one actor task that owns all mutable coordinator state (node
//! table, task book, scheduler, liveness detector, topology log) and is fed
//! commands through a bounded channel.
//!
//! Each loop iteration handles a batch of commands by asking the pure core
//! for decisions, runs a placement round if anything could have changed
//! placement, then hands the round's store mutations to the group-commit
//! writer together with the effects (replies, messages to node sessions, task
//! watch events) that may only happen once those mutations are durable.
//! Nothing here holds a lock, and nothing here waits on a node.
//!
//! Topology events describe in-memory live state (heartbeats, liveness) and
//! are published at once; task events are published after their commit.

pub mod auth;
mod commands;
mod identity;
mod queries;
pub mod session;
mod spans;

pub use commands::{AdminOp, Command, NodeFilter, TaskFilter};
pub use session::{HeartbeatInbox, SessionEvent, SessionOpen};

use crate::convert::{self, Spec};
use crate::store::{Mutation, Snapshot, WriterHandle};
use fog_core::domain::{Millis, NodeId, TaskId};
use fog_core::liveness::{LivenessConfig, LivenessDetector, Transition};
use fog_core::registry::{Liveness, NodeTable};
use fog_core::scheduling::{LatencyModel, Scheduler};
use fog_core::tasks::TaskBook;
use fog_core::topology::{self, Aggregates, Change, History, TopoNode, TopologyLog};
use fog_proto::v1 as pb;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

/// Milliseconds since the Unix epoch, now. The engine is the only caller of
/// the clock; the core receives `now` as an argument.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Failure detector.
    pub liveness: LivenessConfig,
    /// Aggregate snapshot interval.
    pub snapshot_interval: Duration,
    /// Topology events retained for resume.
    pub topology_retained: usize,
    /// Topology events buffered per watcher.
    pub watch_buffer: usize,
    /// Interval between RTT pings on a session.
    pub ping_interval: Duration,
    /// Capacity of each session's outbound queue; overflow closes the session.
    pub session_queue: usize,
    /// Finished tasks kept in memory (the newest); the rest are in the store only.
    pub finished_tasks_kept: usize,
    /// The CA and lifetimes, when mTLS is on.
    pub identity: Option<Arc<crate::identity::IdentityContext>>,
    /// Token lifetimes and names.
    pub auth: crate::auth::AuthSettings,
    /// Where the engine records what it counts.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl EngineConfig {
    /// From the validated coordinator configuration.
    pub fn from(cfg: &crate::config::Config) -> EngineConfig {
        EngineConfig {
            liveness: cfg.liveness.clone(),
            snapshot_interval: cfg.snapshot_interval,
            topology_retained: cfg.topology_retained,
            watch_buffer: cfg.watch_buffer,
            ping_interval: cfg.ping_interval,
            session_queue: 1024,
            finished_tasks_kept: cfg.finished_tasks_kept,
            identity: None,
            auth: cfg.auth.clone(),
            metrics: Arc::default(),
        }
    }
}

/// A cheap, cloneable handle to the engine.
#[derive(Clone)]
pub struct EngineHandle {
    tx: mpsc::Sender<Command>,
    /// Node session traffic: a lane of its own, read before API commands, so
    /// a flood of API requests cannot delay heartbeats.
    node_tx: mpsc::Sender<Command>,
    /// Heartbeats, applied in batches (see [`HeartbeatInbox`]).
    beats: Arc<HeartbeatInbox>,
    auth_view: tokio::sync::watch::Receiver<Arc<crate::auth::AuthView>>,
    task_events: broadcast::Sender<Arc<pb::WatchTasksResponse>>,
    topo_events: broadcast::Sender<Arc<topology::Event>>,
    epoch: Arc<str>,
    stopping: tokio_util::sync::CancellationToken,
    older_tasks: Arc<std::sync::atomic::AtomicBool>,
}

impl EngineHandle {
    /// True once some finished tasks are in the store only (not loaded at
    /// the start, or evicted since): a task or request id the engine does
    /// not know may then still be found in the store.
    pub fn tasks_beyond_memory(&self) -> bool {
        self.older_tasks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends a command (waits for queue space: back-pressure).
    pub async fn send(&self, cmd: Command) -> Result<(), crate::api::ApiError> {
        self.tx.send(cmd).await.map_err(crate::api::error::engine_gone)
    }

    /// Sends node session traffic on the priority lane.
    pub async fn send_node(&self, cmd: Command) -> Result<(), crate::api::ApiError> {
        self.node_tx.send(cmd).await.map_err(crate::api::error::engine_gone)
    }

    /// Hands a session event to the engine: heartbeats through the batch
    /// inbox, everything else (or a heartbeat when the inbox is full) on the
    /// priority lane, waiting for room.
    ///
    /// The lane's send is boxed: every session's reader task holds this
    /// future inline, and an unboxed send (a whole `Command` and the
    /// channel's permit future) made each reader ~1.6 KB larger at 100,000
    /// sessions for a path most heartbeats never take.
    pub async fn session_event(&self, ev: SessionEvent) -> Result<(), crate::api::ApiError> {
        match self.beats.offer(ev) {
            None => Ok(()),
            Some(ev) => Box::pin(self.send_node(Command::Session(ev))).await,
        }
    }

    /// The credentials view the auth layer checks against (replaced after each auth commit).
    pub fn auth_view(&self) -> tokio::sync::watch::Receiver<Arc<crate::auth::AuthView>> {
        self.auth_view.clone()
    }

    /// Subscribes to task events (published after their commit).
    pub fn subscribe_tasks(&self) -> broadcast::Receiver<Arc<pb::WatchTasksResponse>> {
        self.task_events.subscribe()
    }

    /// Subscribes to topology events.
    pub fn subscribe_topology(&self) -> broadcast::Receiver<Arc<topology::Event>> {
        self.topo_events.subscribe()
    }

    /// The engine's state for a metrics scrape.
    pub async fn metrics_sample(&self) -> Result<crate::metrics::StateSample, crate::api::ApiError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.send(Command::Metrics(reply)).await?;
        rx.await.map_err(crate::api::error::engine_gone)?
    }

    /// Open watch streams: (topology, tasks).
    pub fn watcher_counts(&self) -> (usize, usize) {
        (self.topo_events.receiver_count(), self.task_events.receiver_count())
    }

    /// This run's topology epoch.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Asks the engine to close every node session, flush and stop, even
    /// while other handles exist; streams waiting on [`EngineHandle::stopped`] end.
    pub async fn shutdown(&self) {
        self.stopping.cancel();
        let _ = self.tx.send(Command::Shutdown).await;
    }

    /// Resolves once shutdown has begun.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await
    }
}

struct SessionSlot {
    id: u64,
    /// Expiry of the client certificate the session was opened with (mTLS only).
    cert_expires_at: Option<std::time::SystemTime>,
    tx: mpsc::Sender<session::Outbound>,
    last_ping: Millis,
    ping: Option<(u64, std::time::Instant)>,
}

/// Things to write and do at the end of this iteration.
#[derive(Default)]
struct Pending {
    mutations: Vec<Mutation>,
    effects: Vec<crate::store::Effect>,
    tasks: BTreeSet<TaskId>,
    /// Tasks whose only change nobody waits on (an attempt the node reports
    /// running): written with the next batch that is written anyway, or
    /// [`DEFER_MS`] after the first of them, whichever comes first.
    deferred: BTreeSet<TaskId>,
    /// When the oldest entry of `deferred` was marked.
    deferred_since: Option<Millis>,
    nodes: BTreeSet<NodeId>,
    submits: Vec<(TaskId, tokio::sync::oneshot::Sender<Result<pb::Task, crate::api::ApiError>>)>,
}

impl Pending {
    /// Moves the deferred changes in with the rest, unless they are all
    /// there is and may still wait (younger than [`DEFER_MS`], and not
    /// `all`). Returns false when this flush should write nothing yet.
    fn take_deferred(&mut self, now: Millis, all: bool) -> bool {
        if self.deferred.is_empty() {
            return true;
        }
        let alone =
            self.tasks.is_empty() && self.submits.is_empty() && self.mutations.is_empty() && self.effects.is_empty();
        let young = self.deferred_since.is_some_and(|since| now < since + DEFER_MS);
        if alone && young && !all {
            return false;
        }
        self.tasks.append(&mut self.deferred);
        self.deferred_since = None;
        true
    }
}

/// The engine state. Created by [`Engine::start`].
pub struct Engine {
    cfg: EngineConfig,
    nodes: NodeTable,
    tasks: TaskBook<Spec>,
    scheduler: Scheduler,
    liveness: LivenessDetector,
    topo: TopologyLog,
    history: History,
    published: fog_core::domain::IdMap<TopoNode>,
    last_aggregates: Option<Aggregates>,
    sessions: fog_core::domain::IdMap<SessionSlot>,
    writer: WriterHandle,
    rx: mpsc::Receiver<Command>,
    node_rx: mpsc::Receiver<Command>,
    beats: Arc<HeartbeatInbox>,
    beat_spare: Vec<SessionEvent>,
    self_tx: mpsc::WeakSender<Command>,
    task_events: broadcast::Sender<Arc<pb::WatchTasksResponse>>,
    topo_events: broadcast::Sender<Arc<topology::Event>>,
    pending: Pending,
    task_seq: u64,
    place_needed: bool,
    started_at: Millis,
    epoch: Arc<str>,
    stats: queries::Stats,
    stopping: bool,
    identity: identity::IdentityBook,
    auth: auth::AuthBook,
    traces: spans::TaskTraces,
    /// The task totals as last written to the store.
    totals_stored: TaskTotals,
    /// Which batches are durable, for evicting finished tasks.
    batches: Batches,
    /// Shared with the handle: some finished tasks are in the store only.
    older_tasks: Arc<std::sync::atomic::AtomicBool>,
}

/// Batches handed to the writer, numbered, and how far they are durable.
#[derive(Default)]
struct Batches {
    /// The last batch number handed to the writer.
    sent: u64,
    /// The highest batch number whose commit succeeded (set by the writer's effects).
    durable: Arc<std::sync::atomic::AtomicU64>,
    /// Batches whose commit failed (their finished tasks stay in memory).
    failed: Arc<std::sync::Mutex<Vec<u64>>>,
    /// Finished tasks in memory → the batch with their latest record.
    finals: HashMap<TaskId, u64>,
}

/// How long a change nobody waits on may wait for a batch to ride with.
///
/// Every placed task changes twice: placed (the submitter waits for that
/// commit) and running (reported by the node a moment later, awaited by no
/// one). Committed on its own, each running report cost an fsync: with one
/// submit in flight, 1.8 `fdatasync`s per submit. Deferred, it rides with the
/// next submit's commit. A crash in the window loses only the running mark,
/// which the node's next hello restores.
const DEFER_MS: Millis = 10;

/// Store meta key of [`TaskTotals`].
const TOTALS_KEY: &str = "tasks/totals";

/// Counts over every task ever stored, not only those in memory: written
/// with the batch that changes them, read back at a start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct TaskTotals {
    completed: u64,
    failed: u64,
    cancelled: u64,
    placed: u64,
    sla_met: u64,
}

impl TaskTotals {
    fn of(c: fog_core::tasks::Counts) -> TaskTotals {
        TaskTotals {
            completed: c.completed,
            failed: c.failed,
            cancelled: c.cancelled,
            placed: c.placed,
            sla_met: c.sla_met,
        }
    }

    fn counts(self) -> fog_core::tasks::Counts {
        fog_core::tasks::Counts {
            completed: self.completed,
            failed: self.failed,
            cancelled: self.cancelled,
            placed: self.placed,
            sla_met: self.sla_met,
            ..Default::default()
        }
    }
}

impl Engine {
    /// Restores state from the store snapshot and starts the engine task.
    pub fn start(
        cfg: EngineConfig,
        snapshot: Snapshot,
        writer: WriterHandle,
    ) -> (EngineHandle, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let (node_tx, node_rx) = mpsc::channel(4096);
        let beats = Arc::new(HeartbeatInbox::new());
        let (task_events, _) = broadcast::channel(4096);
        let (topo_events, _) = broadcast::channel(cfg.watch_buffer);
        let epoch: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string()[..12].to_string());
        let now = now_ms();
        let (auth, auth_mutations) = auth::AuthBook::restore(cfg.auth.clone(), &snapshot.meta, now);
        let auth_view = auth.subscribe();
        let mut engine = Engine {
            nodes: NodeTable::new(),
            tasks: TaskBook::new(),
            scheduler: Scheduler::new(LatencyModel::default()).with_probe({
                let metrics = cfg.metrics.clone();
                Arc::new(move |strategy, took| metrics.decision(strategy, took))
            }),
            liveness: LivenessDetector::new(cfg.liveness.clone()),
            topo: TopologyLog::new(cfg.topology_retained),
            history: History::new(100),
            published: Default::default(),
            last_aggregates: None,
            sessions: Default::default(),
            writer,
            rx,
            node_rx,
            beats: beats.clone(),
            beat_spare: Vec::new(),
            self_tx: tx.downgrade(),
            task_events: task_events.clone(),
            topo_events: topo_events.clone(),
            pending: Pending::default(),
            task_seq: 0,
            place_needed: true,
            started_at: now,
            epoch: epoch.clone(),
            stats: queries::Stats::default(),
            stopping: false,
            identity: identity::IdentityBook::restore(&snapshot.meta),
            auth,
            traces: spans::TaskTraces::default(),
            totals_stored: TaskTotals::default(),
            batches: Batches::default(),
            older_tasks: Arc::default(),
            cfg,
        };
        engine.pending.mutations.extend(auth_mutations);
        let older_tasks = engine.older_tasks.clone();
        engine.restore(snapshot, now);
        let handle = EngineHandle {
            tx,
            node_tx,
            beats,
            auth_view,
            task_events,
            topo_events,
            epoch,
            stopping: tokio_util::sync::CancellationToken::new(),
            older_tasks,
        };
        let join = tokio::spawn(async move { engine.run().await });
        (handle, join)
    }

    fn restore(&mut self, snapshot: Snapshot, now: Millis) {
        let started = std::time::Instant::now();
        let entries =
            snapshot.nodes.iter().map(convert::node_from_record).inspect(|e| self.liveness.restore(e.id.clone(), now));
        self.nodes.extend(entries);
        let mut unusable = 0;
        for r in snapshot.tasks {
            match convert::task_from_record(r) {
                Some(t) => self.tasks.restore(t, &mut self.nodes),
                None => unusable += 1,
            }
        }
        if unusable > 0 {
            warn!(count = unusable, "skipped unreadable task records");
        }
        if let Some((_, v)) = snapshot.meta.iter().find(|(k, _)| k == TOTALS_KEY) {
            match serde_json::from_slice::<TaskTotals>(v) {
                Ok(totals) => {
                    self.tasks.restore_totals(totals.counts());
                    self.totals_stored = totals;
                }
                Err(e) => warn!(error = %e, "unreadable task totals; counting only the tasks loaded"),
            }
        }
        if snapshot.finished_not_loaded > 0 {
            self.older_tasks.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let ids: Vec<NodeId> = self.nodes.iter().map(|e| e.id.clone()).collect();
        for id in ids {
            self.publish_node(&id);
        }
        info!(
            target: "fog::lifecycle",
            nodes = self.nodes.len(),
            tasks = self.tasks.len(),
            finished_in_store_only = snapshot.finished_not_loaded,
            ms = started.elapsed().as_millis(),
            "state restored"
        );
    }

    async fn run(mut self) {
        let tick_ms = (self.cfg.liveness.heartbeat_interval_ms / 4).clamp(10, 100);
        let mut tick = tokio::time::interval(Duration::from_millis(tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat_tick = tokio::time::interval(HeartbeatInbox::EVERY);
        beat_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_aggregate = 0;
        let mut next_snapshot = self.started_at;
        let mut next_node_flush = 0;
        let mut next_prune = self.started_at + 60_000;
        loop {
            tokio::select! {
                // Timers first (they are periodic, so they cannot starve
                // anything), then node traffic, then API commands; the drain
                // below interleaves the two lanes so neither starves the other.
                biased;
                _ = tick.tick() => {
                    let now = now_ms();
                    self.drain_heartbeats(now);
                    self.on_tick(now);
                    if now >= next_aggregate {
                        next_aggregate = now + 1000;
                        self.publish_aggregates(now, now >= next_snapshot);
                        if now >= next_snapshot {
                            next_snapshot = now + self.cfg.snapshot_interval.as_millis() as u64;
                        }
                    }
                    if now >= next_prune {
                        next_prune = now + 60_000;
                        self.prune_tokens();
                        self.prune_auth();
                    }
                    if now >= next_node_flush {
                        next_node_flush = now + 2000;
                        self.flush_nodes();
                    }
                }
                _ = self.beats.full() => self.drain_heartbeats(now_ms()),
                _ = beat_tick.tick() => self.drain_heartbeats(now_ms()),
                Some(cmd) = self.node_rx.recv() => {
                    self.handle(cmd);
                    self.drain_queued();
                }
                cmd = self.rx.recv() => {
                    let Some(cmd) = cmd else { break };
                    self.handle(cmd);
                    self.drain_queued();
                }
            }
            if self.place_needed {
                self.place_needed = false;
                self.placement_round(now_ms());
            }
            self.flush(false).await;
            if self.stopping {
                break;
            }
        }
        self.flush_nodes();
        self.flush(true).await;
        let _ = self.writer.flush().await;
        info!(target: "fog::lifecycle", "stopping: the engine's last changes are durable");
        // The writer first (its end is queued ahead of the sessions'), then
        // dropping the senders ends every session's response stream.
        let Engine { writer, mut sessions, .. } = self;
        drop(writer);
        info!(target: "fog::lifecycle", sessions = sessions.len(), "stopping: the engine ends node sessions");
        sessions.clear();
    }

    /// Takes whatever else is already queued (bounded): node traffic first,
    /// but every fourth command from the API lane when it has one, so a node
    /// flood cannot stall the API (and the API cannot stall heartbeats).
    fn drain_queued(&mut self) {
        for i in 0..1024 {
            let (first, second) =
                if i % 4 == 3 { (&mut self.rx, &mut self.node_rx) } else { (&mut self.node_rx, &mut self.rx) };
            let cmd = match first.try_recv() {
                Ok(cmd) => cmd,
                Err(_) => match second.try_recv() {
                    Ok(cmd) => cmd,
                    Err(_) => break,
                },
            };
            self.handle(cmd);
        }
    }

    fn on_tick(&mut self, now: Millis) {
        for t in self.liveness.tick(now) {
            self.apply_transition(t, now);
        }
        let (changed, effects) = self.tasks.expire(&mut self.nodes, now);
        if !changed.is_empty() {
            self.place_needed = true;
        }
        self.mark_tasks(changed);
        self.core_effects(effects);
    }

    fn apply_transition(&mut self, t: Transition, now: Millis) {
        debug!(node.id = %t.node, liveness = ?t.liveness, flapping = t.flapping, reason = t.reason, "liveness");
        self.nodes.update(&t.node, |e| e.set_liveness(t.liveness, t.flapping, now));
        match t.liveness {
            Liveness::Offline => {
                info!(node.id = %t.node, "node offline; re-queueing its tasks");
                let changed = self.tasks.node_lost(&mut self.nodes, &t.node, now);
                self.mark_tasks(changed);
                self.place_needed = true;
            }
            Liveness::Healthy => self.place_needed = true,
            _ => {}
        }
        self.publish_node(&t.node);
    }

    fn placement_round(&mut self, now: Millis) {
        let started = std::time::Instant::now();
        let (changed, effects) = self.tasks.place_queued(&mut self.nodes, &mut self.scheduler, now);
        if !changed.is_empty() {
            self.stats.record_round(changed.len(), started.elapsed());
        }
        for t in changed.iter().filter_map(|id| self.tasks.get(id)) {
            // First placements only (a re-placed task was placed before).
            if let (Some(placed_at), Some(met)) = (t.placed_at, t.sla_met)
                && placed_at == now
            {
                self.cfg.metrics.placed(t.params.tier, placed_at.saturating_sub(t.submitted_at), met);
                self.traces.placed(t, now);
            }
        }
        self.mark_tasks(changed);
        self.core_effects(effects);
    }

    /// Marks tasks changed: they are persisted and published at the next flush.
    fn mark_tasks(&mut self, ids: impl IntoIterator<Item = TaskId>) {
        self.pending.tasks.extend(ids);
    }

    /// Marks a task changed in a way nobody waits on: persisted and
    /// published with the next batch, at most [`DEFER_MS`] later.
    fn mark_task_deferred(&mut self, id: TaskId, now: Millis) {
        self.pending.deferred.insert(id);
        self.pending.deferred_since.get_or_insert(now);
    }

    /// Publishes a node's topology change if it changed meaningfully.
    fn publish_node(&mut self, id: &str) {
        let Some(entry) = self.nodes.get(id) else {
            if self.published.remove(id).is_some() {
                self.append(Change::NodeRemoved(Arc::from(id)));
            }
            return;
        };
        let after = TopoNode::from_entry(entry);
        let kind = topology::classify(self.published.get(id), &after);
        let Some(kind) = kind else { return };
        self.published.insert(after.id.clone(), after.clone());
        match kind {
            topology::ChangeKind::Status => self.append(Change::NodeUpserted(after)),
            topology::ChangeKind::Metrics => self.append(Change::NodeMetrics(after)),
        }
    }

    fn append(&mut self, change: Change) {
        let revision = self.topo.append(change.clone());
        // No receivers is fine: nobody watches.
        let _ = self.topo_events.send(Arc::new(topology::Event { revision, change }));
    }

    fn publish_aggregates(&mut self, now: Millis, snapshot: bool) {
        let mut a = topology::aggregate(&self.nodes, &self.task_counts());
        // Whole percent: a mean that moves in the fourth decimal is no news.
        a.average_load = (a.average_load * 100.0).round() / 100.0;
        a.sla_compliance = (a.sla_compliance * 1000.0).round() / 1000.0;
        if self.last_aggregates.as_ref() != Some(&a) {
            self.last_aggregates = Some(a.clone());
            self.append(Change::Aggregates(a.clone()));
        }
        if snapshot {
            self.history.push(topology::AggregateSnapshot {
                taken_at: now,
                revision: self.topo.revision(),
                aggregates: a,
            });
        }
    }

    fn task_counts(&self) -> topology::TaskCounts {
        let c = self.tasks.counts();
        topology::TaskCounts {
            queued: c.queued,
            running: c.running,
            completed: c.completed,
            failed: c.failed,
            placed: c.placed,
            sla_met: c.sla_met,
        }
    }

    fn flush_nodes(&mut self) {
        let ids = std::mem::take(&mut self.pending.nodes);
        for id in ids {
            match self.nodes.get(&id) {
                Some(e) => self.pending.mutations.push(Mutation::PutNode(convert::node_record(e))),
                None => self.pending.mutations.push(Mutation::DeleteNode(id.to_string())),
            }
        }
    }

    /// Finished tasks beyond the limit leave memory, oldest first, once the
    /// batch with their final record is durable. One whose batch failed
    /// stays in memory (its record did not reach the store) until a later
    /// record of it is durable.
    fn evict_durable_finished(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let durable = self.batches.durable.load(Relaxed);
        let mut failed = self.batches.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let finals = &mut self.batches.finals;
        let gone = self.tasks.evict_finished(self.cfg.finished_tasks_kept, |t| {
            finals.get(&t.id).is_none_or(|b| *b <= durable && !failed.contains(b))
        });
        for id in &gone {
            finals.remove(id);
        }
        if failed.len() > 64 {
            // Forget failed batches no task in memory has its latest record in.
            let live: std::collections::HashSet<u64> = finals.values().copied().collect();
            failed.retain(|b| live.contains(b));
        }
        drop(failed);
        if !gone.is_empty() {
            self.older_tasks.store(true, Relaxed);
        }
    }

    /// Hands this iteration's mutations and effects to the writer.
    /// `all`: deferred changes too, however young (the engine is stopping).
    async fn flush(&mut self, all: bool) {
        if !self.pending.take_deferred(now_ms(), all) {
            return;
        }
        // The batch this flush hands to the writer (if it hands one).
        let batch = self.batches.sent + 1;
        let ids = std::mem::take(&mut self.pending.tasks);
        for id in &ids {
            let Some(task) = self.tasks.get(id) else { continue };
            if task.state.is_terminal() {
                self.traces.forget(id);
                self.batches.finals.insert(id.clone(), batch);
            }
            let record = convert::task_pb(task);
            self.task_seq += 1;
            let event =
                Arc::new(pb::WatchTasksResponse { task: Some(record.clone()), sequence: self.task_seq, lagged: false });
            self.pending.mutations.push(Mutation::PutTask(record));
            let tx = self.task_events.clone();
            self.pending.effects.push(Box::new(move |res| {
                if res.is_ok() {
                    let _ = tx.send(event);
                }
            }));
        }
        let totals = TaskTotals::of(self.tasks.counts());
        if totals != self.totals_stored {
            // In the same batch as the task records that changed them.
            let value = serde_json::to_vec(&totals).expect("plain numbers serialise");
            self.pending.mutations.push(Mutation::PutMeta { key: TOTALS_KEY.into(), value });
            self.totals_stored = totals;
        }
        for (id, reply) in std::mem::take(&mut self.pending.submits) {
            let task = self.tasks.get(&id).map(convert::task_pb);
            let rollback = self.self_tx.clone();
            self.pending.effects.push(Box::new(move |res| match (res, task) {
                (Ok(()), Some(t)) => {
                    let _ = reply.send(Ok(t));
                }
                (Ok(()), None) => {
                    let _ = reply.send(Err(crate::api::ApiError::Internal("task vanished before its reply".into())));
                }
                (Err(e), _) => {
                    let _ = reply.send(Err(crate::api::ApiError::Unavailable(format!("task not stored: {e}"))));
                    if let Some(tx) = rollback.upgrade() {
                        let _ = tx.try_send(Command::Rollback(id));
                    }
                }
            }));
        }
        self.evict_durable_finished();
        if self.pending.mutations.is_empty() && self.pending.effects.is_empty() {
            return;
        }
        self.batches.sent = batch;
        let (durable, failed) = (self.batches.durable.clone(), self.batches.failed.clone());
        self.pending.effects.push(Box::new(move |res| match res {
            Ok(()) => {
                durable.fetch_max(batch, std::sync::atomic::Ordering::Relaxed);
            }
            Err(_) => failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(batch),
        }));
        let mutations = std::mem::take(&mut self.pending.mutations);
        let effects = std::mem::take(&mut self.pending.effects);
        if self.writer.submit(mutations, effects).await.is_err() {
            warn!("store writer is gone; changes are not being persisted");
        }
    }

    /// Queues the core's effects (assignments, cancellations) as post-commit
    /// session messages.
    fn core_effects(&mut self, effects: Vec<fog_core::tasks::Effect>) {
        for e in effects {
            self.place_needed |= matches!(e, fog_core::tasks::Effect::Cancel { .. });
            match e {
                fog_core::tasks::Effect::Assign { node, task, attempt, deadline } => {
                    let spec = self.tasks.get(&task).map(|t| (*t.payload).clone());
                    let (span, traceparent) = self.traces.dispatch(&task, &node, attempt).unzip();
                    let msg = pb::session_response::Msg::Assignment(pb::Assignment {
                        attempt: Some(pb::AttemptRef { task_id: task.to_string(), attempt }),
                        spec,
                        deadline: Some(convert::ts(deadline)),
                        traceparent: traceparent.unwrap_or_default(),
                    });
                    self.send_after_commit(&node, msg);
                    if let Some(mut span) = span {
                        // Ends once the assignment is durable and handed to the session.
                        self.pending.effects.push(Box::new(move |res| {
                            use fog_telemetry::trace::{Span, Status};
                            if let Err(e) = res {
                                span.set_status(Status::error(e.to_string()));
                            }
                            span.end();
                        }));
                    }
                    self.publish_node(&node);
                }
                fog_core::tasks::Effect::Cancel { node, task, attempt, reason } => {
                    let msg = pb::session_response::Msg::Cancellation(pb::Cancellation {
                        attempt: Some(pb::AttemptRef { task_id: task.to_string(), attempt }),
                        reason: reason.to_string(),
                    });
                    self.send_after_commit(&node, msg);
                    self.publish_node(&node);
                }
            }
        }
    }

    /// Sends a message on a node's session once the current batch is durable.
    /// A full session queue closes the session (the node reconnects and
    /// reconciles) rather than blocking the engine.
    fn send_after_commit(&mut self, node: &str, msg: pb::session_response::Msg) {
        let Some(s) = self.sessions.get(node) else {
            debug!(node.id = %node, "no session; message dropped (the node reconciles on reconnect)");
            return;
        };
        let tx = s.tx.clone();
        let session_id = s.id;
        let node: NodeId = Arc::from(node);
        let engine = self.self_tx.clone();
        self.pending.effects.push(Box::new(move |res| {
            if res.is_err() {
                return;
            }
            if let Err(mpsc::error::TrySendError::Full(_)) =
                tx.try_send(Box::new(pb::SessionResponse { msg: Some(msg) }))
            {
                warn!(node.id = %node, "session queue full; closing the session");
                if let Some(engine) = engine.upgrade() {
                    let _ = engine.try_send(Command::CloseSession { node, session_id });
                }
            }
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deferred(id: &str, since: Millis) -> Pending {
        Pending { deferred: [TaskId::from(id)].into(), deferred_since: Some(since), ..Default::default() }
    }

    #[test]
    fn a_running_mark_waits_alone_but_rides_with_any_other_write() {
        // Alone and young: nothing is written yet.
        let mut p = deferred("t1", 1_000);
        assert!(!p.take_deferred(1_000 + DEFER_MS - 1, false));
        assert_eq!(p.deferred.len(), 1);
        assert!(p.tasks.is_empty());
        // Old enough: written on its own.
        assert!(p.take_deferred(1_000 + DEFER_MS, false));
        assert!(p.deferred.is_empty() && p.deferred_since.is_none());
        assert!(p.tasks.contains("t1"));
        // Young, but another task changed: it rides with that write.
        let mut p = deferred("t1", 1_000);
        p.tasks.insert(TaskId::from("t2"));
        assert!(p.take_deferred(1_001, false));
        assert_eq!(p.tasks.len(), 2);
        // Young, but a node record is to be written.
        let mut p = deferred("t1", 1_000);
        p.mutations.push(Mutation::DeleteNode("n1".into()));
        assert!(p.take_deferred(1_001, false));
        assert!(p.tasks.contains("t1"));
        // Stopping: everything is written.
        let mut p = deferred("t1", 1_000);
        assert!(p.take_deferred(1_001, true));
        assert!(p.tasks.contains("t1"));
        // Nothing deferred: nothing to hold back.
        assert!(Pending::default().take_deferred(0, false));
    }

    /// The size of the future a function returns, without calling it.
    fn future_size<F: std::future::Future>(_: impl FnOnce(&'static EngineHandle, SessionEvent) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every node session's reader task holds this future inline, so its
    /// size is paid once per connected node: a `Command` held unboxed in it
    /// made each of 100,000 readers ~1.6 KB larger.
    #[test]
    fn handing_a_session_event_to_the_engine_is_a_small_future() {
        let size = future_size(EngineHandle::session_event);
        assert!(
            size < std::mem::size_of::<Command>() + std::mem::size_of::<SessionEvent>(),
            "EngineHandle::session_event's future is {size} bytes; box what it awaits rarely"
        );
    }
}
