//! One task and its attempts.

use crate::domain::{AttemptNo, Millis, NodeId, SlaTier, TaskId};
use crate::scheduling::TaskNeeds;

/// Lifecycle state of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// Waiting for a node.
    Queued,
    /// Sent to node(s).
    Assigned,
    /// Running on at least one node.
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl TaskState {
    /// Succeeded, failed or cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Assigned => "assigned",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }
}

/// State of one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttemptState {
    /// Sent.
    Assigned,
    /// Running.
    Running,
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Timed out.
    TimedOut,
    /// Node lost.
    Lost,
    /// Cancelled.
    Cancelled,
    /// Refused by the node's policy.
    Refused,
}

impl AttemptState {
    /// Assigned or running.
    pub fn is_active(self) -> bool {
        matches!(self, AttemptState::Assigned | AttemptState::Running)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Assigned => "assigned",
            AttemptState::Running => "running",
            AttemptState::Succeeded => "succeeded",
            AttemptState::Failed => "failed",
            AttemptState::TimedOut => "timed out",
            AttemptState::Lost => "lost",
            AttemptState::Cancelled => "cancelled",
            AttemptState::Refused => "refused",
        }
    }
}

/// How a node says an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Success.
    Succeeded,
    /// Failure.
    Failed,
    /// The agent's timeout fired.
    TimedOut,
    /// Cancelled on request.
    Cancelled,
    /// Refused by policy.
    Refused,
}

impl OutcomeKind {
    pub(crate) fn attempt_state(self) -> AttemptState {
        match self {
            OutcomeKind::Succeeded => AttemptState::Succeeded,
            OutcomeKind::Failed => AttemptState::Failed,
            OutcomeKind::TimedOut => AttemptState::TimedOut,
            OutcomeKind::Cancelled => AttemptState::Cancelled,
            OutcomeKind::Refused => AttemptState::Refused,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        self.attempt_state().as_str()
    }
}

/// Output of an attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskOutput {
    /// Tail of stdout.
    pub stdout: Vec<u8>,
    /// Tail of stderr.
    pub stderr: Vec<u8>,
    /// Cut to fit.
    pub truncated: bool,
}

/// A node's report of how an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// How.
    pub kind: OutcomeKind,
    /// Exit code.
    pub exit_code: i32,
    /// Error text.
    pub error: String,
    /// Output.
    pub output: Option<TaskOutput>,
}

/// What the core needs to know of a task to schedule and supervise it; the
/// rest of the spec (the workload) travels as the opaque payload `P`.
#[derive(Clone, Debug, Default)]
pub struct TaskParams {
    /// Placement needs.
    pub needs: TaskNeeds,
    /// Tier.
    pub tier: SlaTier,
    /// Replicas at once on distinct nodes (≥ 1).
    pub replicas: u32,
    /// Retries after failed attempts.
    pub max_retries: u32,
    /// Time limit of one attempt.
    pub timeout_ms: u64,
    /// Idempotency key.
    pub request_id: Option<String>,
}

/// One attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// Number (fencing token).
    pub number: AttemptNo,
    /// Node.
    pub node: NodeId,
    /// State.
    pub state: AttemptState,
    /// Assigned at.
    pub assigned_at: Millis,
    /// Must finish by.
    pub deadline: Millis,
    /// Finished at.
    pub finished_at: Option<Millis>,
    /// Exit code.
    pub exit_code: i32,
    /// Error text.
    pub error: String,
    /// A result that arrived after the attempt stopped being active (recorded, not accepted).
    pub late_result: Option<&'static str>,
}

impl Attempt {
    /// A freshly assigned attempt.
    pub fn new(number: AttemptNo, node: NodeId, now: Millis, deadline: Millis) -> Attempt {
        Attempt {
            number,
            node,
            state: AttemptState::Assigned,
            assigned_at: now,
            deadline,
            finished_at: None,
            exit_code: 0,
            error: String::new(),
            late_result: None,
        }
    }
}

/// A task.
#[derive(Clone, Debug)]
pub struct Task<P> {
    /// Id.
    pub id: TaskId,
    /// Scheduling parameters.
    pub params: TaskParams,
    /// The rest of the spec, opaque to the core.
    pub payload: P,
    /// State.
    pub state: TaskState,
    /// Attempts, oldest first.
    pub attempts: Vec<Attempt>,
    /// Next attempt number to hand out.
    pub next_attempt: AttemptNo,
    /// The accepted attempt.
    pub accepted_attempt: Option<AttemptNo>,
    /// Output of the accepted attempt.
    pub output: Option<TaskOutput>,
    /// Why it failed or was cancelled.
    pub error: String,
    /// Retries used.
    pub retries_used: u32,
    /// Re-queues because a node was lost.
    pub lost_requeues: u32,
    /// Submitted at.
    pub submitted_at: Millis,
    /// First placed at.
    pub placed_at: Option<Millis>,
    /// Finished at.
    pub finished_at: Option<Millis>,
    /// Whether the first placement met the tier's target.
    pub sla_met: Option<bool>,
    /// Idempotency key.
    pub request_id: Option<String>,
}

impl<P> Task<P> {
    /// A new queued task.
    pub fn new(id: TaskId, params: TaskParams, payload: P, now: Millis) -> Task<P> {
        let request_id = params.request_id.clone();
        Task {
            id,
            params,
            payload,
            state: TaskState::Queued,
            attempts: Vec::new(),
            next_attempt: 1,
            accepted_attempt: None,
            output: None,
            error: String::new(),
            retries_used: 0,
            lost_requeues: 0,
            submitted_at: now,
            placed_at: None,
            finished_at: None,
            sla_met: None,
            request_id,
        }
    }

    /// An attempt by number.
    pub fn attempt(&self, number: AttemptNo) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.number == number)
    }

    pub(crate) fn attempt_mut(&mut self, number: AttemptNo) -> Option<&mut Attempt> {
        self.attempts.iter_mut().find(|a| a.number == number)
    }
}
