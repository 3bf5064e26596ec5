//! The task lifecycle: queue by SLA tier, placement rounds, attempts fenced by
//! number, results, retries, replicas, cancellation, timeouts and lost nodes.
//!
//! `TaskBook` owns every task and is changed only by the methods here, each of
//! which takes the node table (to reserve and release resources), the
//! scheduler where it places, and `now`, and returns [`Effect`]s for the engine
//! to carry out once the changed tasks are durable. Nothing here sends,
//! stores or sleeps.
//!
//! States: queued → assigned → running → succeeded | failed | cancelled.
//! An attempt's number is its fencing token: a result is accepted only from an
//! active attempt on the node it was assigned to; anything else is recorded on
//! the task (as a note on the attempt) and acknowledged as not accepted.

mod queue;
mod task;

pub use queue::TierQueues;
pub use task::{Attempt, AttemptState, Outcome, OutcomeKind, Task, TaskOutput, TaskParams, TaskState};

use crate::domain::{AttemptNo, Millis, NodeId, PrivacyLevel, SlaTier, TaskId};
use crate::registry::NodeTable;
use crate::scheduling::Scheduler;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Something the engine must do after the changed tasks are durable.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this attempt to the node.
    Assign {
        /// Node.
        node: NodeId,
        /// Task.
        task: TaskId,
        /// Attempt number.
        attempt: AttemptNo,
        /// Deadline (ms since epoch).
        deadline: Millis,
    },
    /// Tell the node to stop this attempt.
    Cancel {
        /// Node.
        node: NodeId,
        /// Task.
        task: TaskId,
        /// Attempt number.
        attempt: AttemptNo,
        /// Why.
        reason: &'static str,
    },
}

/// Why a request about a task was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No such task.
    #[error("task {0} not found")]
    NotFound(String),
    /// The task already finished.
    #[error("task {0} already finished ({1})")]
    Finished(String, &'static str),
}

/// What a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultVerdict {
    /// Accepted as the task's result, or as the end of an active attempt.
    Accepted,
    /// From an attempt that is no longer active (stale fencing token), or from a
    /// node the attempt was not assigned to: recorded, not accepted.
    Stale,
    /// A repeat of a result already accepted (the node did not get the ack): ack again.
    Duplicate,
    /// Unknown task or attempt.
    Unknown,
}

/// How many tasks are in each phase, and SLA figures (for aggregates).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Queued.
    pub queued: u64,
    /// Assigned or running.
    pub running: u64,
    /// Succeeded.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
    /// Cancelled.
    pub cancelled: u64,
    /// Placed at least once.
    pub placed: u64,
    /// Placed within their tier's target.
    pub sla_met: u64,
}

/// Lost-node re-queues allowed per task before it fails (a task that kills
/// every node it lands on must not loop forever).
pub const MAX_LOST_REQUEUES: u32 = 10;

/// How many consecutive tasks of one tier may fail to place in one round
/// before the round moves on (keeps a round cheap when the fleet is full).
pub const ROUND_MISS_LIMIT: usize = 64;

/// Every task, the queues, and the attempt deadlines.
pub struct TaskBook<P> {
    tasks: BTreeMap<TaskId, Task<P>>,
    queues: TierQueues,
    by_request: HashMap<String, TaskId>,
    deadlines: BTreeSet<(Millis, TaskId, AttemptNo)>,
    counts: Counts,
    /// Finished tasks in memory, oldest first (the order they finished or
    /// were restored in): [`TaskBook::evict_finished`] drops from the front.
    finished: std::collections::VecDeque<TaskId>,
}

impl<P> Default for TaskBook<P> {
    fn default() -> Self {
        TaskBook {
            tasks: BTreeMap::new(),
            queues: TierQueues::default(),
            by_request: HashMap::new(),
            deadlines: BTreeSet::new(),
            counts: Counts::default(),
            finished: std::collections::VecDeque::new(),
        }
    }
}

impl<P> TaskBook<P> {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// A task by id.
    pub fn get(&self, id: &str) -> Option<&Task<P>> {
        self.tasks.get(id)
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Tasks newest first (ids are time-ordered), starting after `after` if given.
    pub fn iter_newest_first<'a>(&'a self, after: Option<&str>) -> Box<dyn Iterator<Item = &'a Task<P>> + 'a> {
        match after {
            Some(a) => Box::new(
                self.tasks
                    .range::<str, _>((std::ops::Bound::Unbounded, std::ops::Bound::Excluded(a)))
                    .rev()
                    .map(|(_, t)| t),
            ),
            None => Box::new(self.tasks.values().rev()),
        }
    }

    /// The task created earlier with this idempotency key.
    pub fn by_request_id(&self, request_id: &str) -> Option<&Task<P>> {
        self.by_request.get(request_id).and_then(|id| self.tasks.get(id))
    }

    /// Phase counts.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Queued tasks per tier (bronze first).
    pub fn queued_by_tier(&self) -> [usize; 4] {
        self.queues.lens()
    }

    /// Adds a new task (queued).
    pub fn submit(&mut self, id: TaskId, params: TaskParams, payload: P, now: Millis) -> &Task<P> {
        let task = Task::new(id.clone(), params, payload, now);
        if let Some(r) = &task.request_id {
            self.by_request.insert(r.clone(), id.clone());
        }
        self.queues.push_back(task.params.tier, id.clone());
        self.counts.queued += 1;
        self.tasks.entry(id).or_insert(task)
    }

    /// Restores a task loaded from the store after a restart: re-queues it if
    /// queued, re-reserves its active attempts on their nodes (which get the
    /// restart grace to reconnect and reconcile).
    pub fn restore(&mut self, task: Task<P>, nodes: &mut NodeTable) {
        let id = task.id.clone();
        match task.state {
            TaskState::Queued => {
                self.queues.push_back(task.params.tier, id.clone());
                self.counts.queued += 1;
            }
            TaskState::Assigned | TaskState::Running => {
                self.counts.running += 1;
                for a in task.attempts.iter().filter(|a| a.state.is_active()) {
                    reserve(nodes, &a.node, &task, a.number);
                    self.deadlines.insert((a.deadline, id.clone(), a.number));
                }
            }
            TaskState::Succeeded => self.counts.completed += 1,
            TaskState::Failed => self.counts.failed += 1,
            TaskState::Cancelled => self.counts.cancelled += 1,
        }
        if task.state.is_terminal() {
            self.finished.push_back(id.clone());
        }
        if task.placed_at.is_some() {
            self.counts.placed += 1;
            if task.sla_met == Some(true) {
                self.counts.sla_met += 1;
            }
        }
        if let Some(r) = &task.request_id {
            self.by_request.insert(r.clone(), id.clone());
        }
        self.tasks.insert(id, task);
    }

    /// One placement round: tiers from platinum to bronze, FIFO within a tier.
    /// Returns the ids of tasks that changed and the assignments to send.
    pub fn place_queued(
        &mut self,
        nodes: &mut NodeTable,
        scheduler: &mut Scheduler,
        now: Millis,
    ) -> (Vec<TaskId>, Vec<Effect>) {
        let mut changed = Vec::new();
        let mut effects = Vec::new();
        for tier in SlaTier::BY_PRIORITY {
            let mut misses = 0;
            let mut kept = std::collections::VecDeque::new();
            while let Some(id) = self.queues.pop_front(tier) {
                if misses >= ROUND_MISS_LIMIT {
                    kept.push_back(id);
                    continue;
                }
                let Some(task) = self.tasks.get_mut(&id) else { continue };
                if task.state != TaskState::Queued {
                    continue;
                }
                let placed = place_replicas(task, nodes, scheduler, now, &mut self.deadlines, &mut effects);
                if placed == 0 {
                    misses += 1;
                    kept.push_back(id);
                    continue;
                }
                misses = 0;
                self.counts.queued -= 1;
                self.counts.running += 1;
                if task.placed_at.is_none() {
                    task.placed_at = Some(now);
                    let met = now.saturating_sub(task.submitted_at) <= task.params.tier.placement_target_ms();
                    task.sla_met = Some(met);
                    self.counts.placed += 1;
                    self.counts.sla_met += u64::from(met);
                }
                changed.push(id);
            }
            self.queues.replace(tier, kept);
        }
        (changed, effects)
    }

    /// The node reports an attempt running.
    pub fn attempt_running(&mut self, node: &str, task_id: &str, attempt: AttemptNo) -> bool {
        let Some(task) = self.tasks.get_mut(task_id) else { return false };
        let Some(a) = task.attempt_mut(attempt) else { return false };
        if &*a.node != node || a.state != AttemptState::Assigned {
            return false;
        }
        a.state = AttemptState::Running;
        if task.state == TaskState::Assigned {
            task.state = TaskState::Running;
        }
        true
    }

    /// The node reports the end of an attempt.
    pub fn attempt_finished(
        &mut self,
        nodes: &mut NodeTable,
        node: &str,
        task_id: &str,
        attempt: AttemptNo,
        outcome: Outcome,
        now: Millis,
    ) -> (ResultVerdict, Vec<Effect>) {
        let mut effects = Vec::new();
        let Some(task) = self.tasks.get_mut(task_id) else {
            return (ResultVerdict::Unknown, effects);
        };
        let Some(i) = task.attempts.iter().position(|a| a.number == attempt) else {
            return (ResultVerdict::Unknown, effects);
        };
        if &*task.attempts[i].node != node {
            return (ResultVerdict::Stale, effects);
        }
        if !task.attempts[i].state.is_active() {
            // The node resends a result whose ack it never got: the same
            // outcome for the same attempt changes nothing and is acked again.
            if task.accepted_attempt == Some(attempt) || task.attempts[i].state == outcome.kind.attempt_state() {
                return (ResultVerdict::Duplicate, effects);
            }
            let a = &mut task.attempts[i];
            if a.late_result.is_none() {
                a.late_result = Some(outcome.kind.as_str());
            }
            return (ResultVerdict::Stale, effects);
        }
        let a = &mut task.attempts[i];
        a.finished_at = Some(now);
        a.exit_code = outcome.exit_code;
        a.error = outcome.error.clone();
        a.state = outcome.kind.attempt_state();
        let state = a.state;
        let deadline = a.deadline;
        let succeeded = state == AttemptState::Succeeded;
        self.deadlines.remove(&(deadline, task.id.clone(), attempt));
        release(nodes, node, task, attempt);
        let node_ok = match state {
            AttemptState::Succeeded => Some(true),
            AttemptState::Failed | AttemptState::TimedOut | AttemptState::Refused => Some(false),
            _ => None,
        };
        if let Some(ok) = node_ok {
            nodes.update(node, |e| if ok { e.completed_tasks += 1 } else { e.failed_tasks += 1 });
        }
        if succeeded {
            task.accepted_attempt = Some(attempt);
            task.output = outcome.output;
            self.cancel_others(nodes, task_id, "another replica succeeded", &mut effects);
            self.finish(task_id, TaskState::Succeeded, String::new(), now);
        } else {
            self.after_attempt_ended(task_id, now);
        }
        (ResultVerdict::Accepted, effects)
    }

    /// Forgets a queued task whose submission could not be stored (the client
    /// got an error, so it must not run). Returns false if it is not queued.
    pub fn forget(&mut self, id: &str) -> bool {
        if self.tasks.get(id).is_none_or(|t| t.state != TaskState::Queued) {
            return false;
        }
        if let Some(t) = self.tasks.remove(id) {
            self.counts.queued -= 1;
            if let Some(r) = t.request_id {
                self.by_request.remove(&r);
            }
        }
        true
    }

    /// Frees a task's request id, so that a retry of its submission makes a
    /// new task (the task's submission was not stored; it is being cancelled).
    pub fn release_request_id(&mut self, id: &str) {
        let Some(task) = self.tasks.get_mut(id) else { return };
        // Off the task too, so that its record does not claim the id either.
        if let Some(r) = task.request_id.take()
            && self.by_request.get(&r).is_some_and(|t| &**t == id)
        {
            self.by_request.remove(&r);
        }
    }

    /// Cancels a task on a user's request.
    pub fn cancel(
        &mut self,
        nodes: &mut NodeTable,
        task_id: &str,
        reason: &str,
        now: Millis,
    ) -> Result<Vec<Effect>, TaskError> {
        let task = self.tasks.get(task_id).ok_or_else(|| TaskError::NotFound(task_id.into()))?;
        if task.state.is_terminal() {
            return Err(TaskError::Finished(task_id.into(), task.state.as_str()));
        }
        let mut effects = Vec::new();
        self.cancel_others(nodes, task_id, "cancelled by user", &mut effects);
        let reason = if reason.is_empty() { "cancelled by user".to_string() } else { reason.to_string() };
        self.finish(task_id, TaskState::Cancelled, reason, now);
        Ok(effects)
    }

    /// Attempts past their deadline time out: the node is told to stop, and the
    /// task is retried or failed. Returns the changed tasks and effects.
    pub fn expire(&mut self, nodes: &mut NodeTable, now: Millis) -> (Vec<TaskId>, Vec<Effect>) {
        let mut changed = Vec::new();
        let mut effects = Vec::new();
        while let Some((deadline, task_id, number)) = self.deadlines.first().cloned() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(task) = self.tasks.get_mut(&task_id) else { continue };
            let Some(a) = task.attempt_mut(number) else { continue };
            if !a.state.is_active() {
                continue;
            }
            a.state = AttemptState::TimedOut;
            a.finished_at = Some(now);
            a.error = "timed out".into();
            let node = a.node.clone();
            release(nodes, &node, task, number);
            nodes.update(&node, |e| e.failed_tasks += 1);
            effects.push(Effect::Cancel { node, task: task_id.clone(), attempt: number, reason: "timed out" });
            self.after_attempt_ended(&task_id, now);
            changed.push(task_id);
        }
        (changed, effects)
    }

    /// Every active attempt on a node that went offline or was removed is lost;
    /// the tasks are re-queued (this does not use up their retries).
    pub fn node_lost(&mut self, nodes: &mut NodeTable, node: &str, now: Millis) -> Vec<TaskId> {
        let attempts: Vec<(TaskId, AttemptNo)> =
            nodes.get(node).map(|e| e.attempts.iter().cloned().collect()).unwrap_or_default();
        let mut changed = Vec::new();
        for (task_id, number) in attempts {
            self.lose_attempt(nodes, node, &task_id, number, "node lost", now);
            changed.push(task_id);
        }
        changed
    }

    /// Reconciles a node's hello after a reconnect: attempts the node runs that
    /// the coordinator no longer wants are returned to be cancelled; attempts the
    /// coordinator placed there that the node does not report are lost; an
    /// attempt it reports that is still only assigned here is running (its
    /// running report may not have reached the store before a restart).
    /// Returns (attempts to cancel on the node, changed tasks).
    pub fn reconcile(
        &mut self,
        nodes: &mut NodeTable,
        node: &str,
        reported: &[(TaskId, AttemptNo)],
        now: Millis,
    ) -> (Vec<(TaskId, AttemptNo)>, Vec<TaskId>) {
        let reported_set: BTreeSet<(TaskId, AttemptNo)> = reported.iter().cloned().collect();
        let mut cancel = Vec::new();
        let mut changed = Vec::new();
        for (task_id, number) in reported {
            let wanted = self
                .tasks
                .get(task_id)
                .and_then(|t| t.attempt(*number))
                .is_some_and(|a| &*a.node == node && a.state.is_active());
            // A finished attempt whose result is unacked is also reported; the
            // result that follows settles it, so only cancel unknown/stale ones
            // that are not already finished on our side.
            let finished_here = self
                .tasks
                .get(task_id)
                .and_then(|t| t.attempt(*number))
                .is_some_and(|a| &*a.node == node && !a.state.is_active());
            if wanted {
                if self.attempt_running(node, task_id, *number) {
                    changed.push(task_id.clone());
                }
            } else if !finished_here {
                cancel.push((task_id.clone(), *number));
            }
        }
        let placed: Vec<(TaskId, AttemptNo)> =
            nodes.get(node).map(|e| e.attempts.iter().cloned().collect()).unwrap_or_default();
        for (task_id, number) in placed {
            if !reported_set.contains(&(task_id.clone(), number)) {
                self.lose_attempt(nodes, node, &task_id, number, "not running on the node after reconnect", now);
                changed.push(task_id);
            }
        }
        (cancel, changed)
    }

    fn lose_attempt(
        &mut self,
        nodes: &mut NodeTable,
        node: &str,
        task_id: &TaskId,
        number: AttemptNo,
        why: &str,
        now: Millis,
    ) {
        let Some(task) = self.tasks.get_mut(task_id) else {
            nodes.update(node, |e| {
                e.attempts.remove(&(task_id.clone(), number));
            });
            return;
        };
        if let Some(a) = task.attempt_mut(number)
            && a.state.is_active()
        {
            a.state = AttemptState::Lost;
            a.finished_at = Some(now);
            a.error = why.to_string();
            let deadline = a.deadline;
            self.deadlines.remove(&(deadline, task_id.clone(), number));
        }
        release(nodes, node, task, number);
        task.lost_requeues += 1;
        self.after_attempt_ended(task_id, now);
    }

    /// After an attempt ended without success: wait for the other replicas, or
    /// retry, or fail.
    fn after_attempt_ended(&mut self, task_id: &str, now: Millis) {
        let Some(task) = self.tasks.get_mut(task_id) else { return };
        if task.state.is_terminal() || task.attempts.iter().any(|a| a.state.is_active()) {
            return;
        }
        let last = task.attempts.last().map(|a| a.state);
        let lost = last == Some(AttemptState::Lost);
        let can_retry =
            if lost { task.lost_requeues <= MAX_LOST_REQUEUES } else { task.retries_used < task.params.max_retries };
        if can_retry {
            if !lost {
                task.retries_used += 1;
            }
            task.state = TaskState::Queued;
            self.counts.running -= 1;
            self.counts.queued += 1;
            self.queues.push_front(task.params.tier, task.id.clone());
        } else {
            let error = task
                .attempts
                .last()
                .map(|a| format!("attempt {} {}: {}", a.number, a.state.as_str(), a.error))
                .unwrap_or_default();
            self.finish(task_id, TaskState::Failed, error, now);
        }
    }

    fn cancel_others(&mut self, nodes: &mut NodeTable, task_id: &str, reason: &'static str, effects: &mut Vec<Effect>) {
        let Some(task) = self.tasks.get_mut(task_id) else { return };
        let mut ended = Vec::new();
        for a in task.attempts.iter_mut().filter(|a| a.state.is_active()) {
            a.state = AttemptState::Cancelled;
            a.error = reason.to_string();
            ended.push((a.node.clone(), a.number, a.deadline));
            effects.push(Effect::Cancel { node: a.node.clone(), task: task.id.clone(), attempt: a.number, reason });
        }
        for (node, number, deadline) in ended {
            self.deadlines.remove(&(deadline, task.id.clone(), number));
            release(nodes, &node, task, number);
        }
    }

    fn finish(&mut self, task_id: &str, state: TaskState, error: String, now: Millis) {
        let Some(task) = self.tasks.get_mut(task_id) else { return };
        match task.state {
            TaskState::Queued => self.counts.queued -= 1,
            TaskState::Assigned | TaskState::Running => self.counts.running -= 1,
            _ => return,
        }
        match state {
            TaskState::Succeeded => self.counts.completed += 1,
            TaskState::Failed => self.counts.failed += 1,
            TaskState::Cancelled => self.counts.cancelled += 1,
            _ => {}
        }
        for a in task.attempts.iter_mut().filter(|a| a.finished_at.is_none()) {
            a.finished_at = Some(now);
        }
        task.state = state;
        task.error = error;
        task.finished_at = Some(now);
        self.finished.push_back(task.id.clone());
    }

    /// Drops the oldest finished tasks from memory until at most `keep`
    /// remain, passing over those `may_evict` refuses (their final record
    /// is not durable yet: they stay, in order); returns the ids that went.
    /// Their records stay in the store. Counts are unchanged: they cover
    /// every task, in memory or not.
    pub fn evict_finished(&mut self, keep: usize, may_evict: impl Fn(&Task<P>) -> bool) -> Vec<TaskId> {
        let mut evicted = Vec::new();
        let mut excess = self.finished.len().saturating_sub(keep);
        let mut passed = Vec::new();
        while excess > 0
            && let Some(id) = self.finished.pop_front()
        {
            if self.tasks.get(&id).is_some_and(|t| t.state.is_terminal() && !may_evict(t)) {
                passed.push(id);
                continue;
            }
            excess -= 1;
            if let Some(t) = self.tasks.remove(&id) {
                if let Some(r) = t.request_id
                    && self.by_request.get(&r).is_some_and(|o| *o == id)
                {
                    self.by_request.remove(&r);
                }
                evicted.push(id);
            }
        }
        for id in passed.into_iter().rev() {
            self.finished.push_front(id);
        }
        evicted
    }

    /// Finished tasks in memory.
    pub fn finished_in_memory(&self) -> usize {
        self.finished.len()
    }

    /// After a restore: the totals of finished, placed and SLA-met tasks
    /// over every task ever stored (the book counted only those it was
    /// given). A lower figure than counted is ignored.
    pub fn restore_totals(&mut self, totals: Counts) {
        let c = &mut self.counts;
        c.completed = c.completed.max(totals.completed);
        c.failed = c.failed.max(totals.failed);
        c.cancelled = c.cancelled.max(totals.cancelled);
        c.placed = c.placed.max(totals.placed);
        c.sla_met = c.sla_met.max(totals.sla_met);
    }
}

/// Places as many replicas as the task still needs, on distinct nodes.
fn place_replicas<P>(
    task: &mut Task<P>,
    nodes: &mut NodeTable,
    scheduler: &mut Scheduler,
    now: Millis,
    deadlines: &mut BTreeSet<(Millis, TaskId, AttemptNo)>,
    effects: &mut Vec<Effect>,
) -> usize {
    let mut exclude = Vec::new();
    let mut placed = 0;
    for _ in 0..task.params.replicas.max(1) {
        let Some(slot) = scheduler.place(nodes, &task.params.needs, &exclude) else { break };
        exclude.push(slot);
        let node = nodes.entry(slot).expect("scheduler returns live slots").id.clone();
        let number = task.next_attempt;
        task.next_attempt += 1;
        let deadline = now.saturating_add(task.params.timeout_ms);
        task.attempts.push(Attempt::new(number, node.clone(), now, deadline));
        reserve(nodes, &node, task, number);
        deadlines.insert((deadline, task.id.clone(), number));
        effects.push(Effect::Assign { node, task: task.id.clone(), attempt: number, deadline });
        placed += 1;
    }
    if placed > 0 {
        task.state = TaskState::Assigned;
    }
    placed
}

fn reserve<P>(nodes: &mut NodeTable, node: &str, task: &Task<P>, number: AttemptNo) {
    let want = task.params.needs.resources;
    let exclusive = task.params.needs.privacy == PrivacyLevel::Secret;
    nodes.update(node, |e| {
        if e.attempts.insert((task.id.clone(), number)) {
            e.allocated = e.allocated.saturating_add(want);
            e.exclusive_attempts += u32::from(exclusive);
        }
    });
}

fn release<P>(nodes: &mut NodeTable, node: &str, task: &Task<P>, number: AttemptNo) {
    let want = task.params.needs.resources;
    let exclusive = task.params.needs.privacy == PrivacyLevel::Secret;
    nodes.update(node, |e| {
        if e.attempts.remove(&(task.id.clone(), number)) {
            e.allocated = e.allocated.saturating_sub(want);
            e.exclusive_attempts -= u32::from(exclusive && e.exclusive_attempts > 0);
        }
    });
}

#[cfg(test)]
mod tests;
