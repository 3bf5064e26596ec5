//! The commands the engine accepts, and their handling.

use super::session::{SessionEvent, SessionOpen};
use super::{Engine, now_ms};
use crate::api::ApiError;
use crate::convert::{self, Spec};
use fog_core::domain::{Labels, NodeType, SlaTier, TaskId};
use fog_core::registry::NodeStatus;
use fog_core::scheduling::TaskNeeds;
use fog_core::tasks::{TaskParams, TaskState};
use fog_proto::v1 as pb;
use std::sync::Arc;
use tokio::sync::oneshot;

/// Reply channel.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// Node list filters.
#[derive(Debug, Default, Clone)]
pub struct NodeFilter {
    /// Status.
    pub status: Option<NodeStatus>,
    /// Type.
    pub node_type: Option<NodeType>,
    /// Region.
    pub region: Option<String>,
    /// Labels that must all match.
    pub labels: Labels,
    /// Page size.
    pub page_size: usize,
    /// Start after this id.
    pub after: Option<String>,
}

/// Task list filters.
#[derive(Debug, Default, Clone)]
pub struct TaskFilter {
    /// States (empty = any).
    pub states: Vec<TaskState>,
    /// Tier.
    pub tier: Option<SlaTier>,
    /// Node holding an attempt.
    pub node: Option<String>,
    /// Page size.
    pub page_size: usize,
    /// Continue after this id (older ones follow).
    pub after: Option<String>,
}

/// An administrative change to a node.
#[derive(Debug, Clone)]
pub enum AdminOp {
    /// Cordon.
    Cordon,
    /// Uncordon (also ends a drain).
    Uncordon,
    /// Drain.
    Drain,
    /// Maintenance on/off.
    Maintenance(bool),
    /// Set and remove labels.
    Labels {
        /// To set.
        set: Labels,
        /// To remove.
        remove: Vec<String>,
    },
}

/// A command to the engine.
pub enum Command {
    /// Users, credentials, keys.
    Auth(super::auth::AuthCommand),
    /// A node session opened.
    SessionOpen(SessionOpen),
    /// Something arrived on a node session.
    Session(SessionEvent),
    /// Close a session (its queue overflowed).
    CloseSession {
        /// Node.
        node: fog_core::domain::NodeId,
        /// Which session.
        session_id: u64,
    },
    /// Submit a task.
    Submit {
        /// Spec (validated).
        spec: pb::TaskSpec,
        /// Idempotency key.
        request_id: Option<String>,
        /// The submit call's span, when traced.
        trace: Option<opentelemetry::trace::SpanContext>,
        /// The store's request index was already searched for `request_id`
        /// (else, when finished tasks are in the store only, the reply is
        /// [`ApiError::InStoreOnly`] and the caller searches it).
        store_checked: bool,
        /// Reply.
        reply: Reply<pb::Task>,
    },
    /// A submit's commit failed: forget the task.
    Rollback(TaskId),
    /// A submit repeated a request id: answer with that task if it was stored.
    Resubmitted(TaskId, Reply<pb::Task>),
    /// Get a task.
    GetTask(String, Reply<pb::Task>),
    /// List tasks.
    ListTasks(TaskFilter, Reply<pb::ListTasksResponse>),
    /// Cancel a task.
    Cancel {
        /// Task.
        id: String,
        /// Why.
        reason: String,
        /// Reply.
        reply: Reply<pb::Task>,
    },
    /// Explain placement of a spec or an existing task.
    Explain {
        /// Spec, or None to use the task's.
        spec: Option<pb::TaskSpec>,
        /// Task id if no spec.
        task_id: Option<String>,
        /// Limit.
        limit: usize,
        /// Reply.
        reply: Reply<pb::ExplainPlacementResponse>,
    },
    /// Current state of some tasks (for watch's initial state).
    TaskSnapshot(Vec<String>, Reply<Vec<pb::Task>>),
    /// List nodes.
    ListNodes(NodeFilter, Reply<pb::ListNodesResponse>),
    /// Get a node.
    GetNode(String, Reply<pb::GetNodeResponse>),
    /// Change a node's admin state.
    Admin(String, AdminOp, Reply<pb::Node>),
    /// Remove a node.
    RemoveNode(String, Reply<u32>),
    /// The topology now.
    GetTopology(bool, Reply<pb::GetTopologyResponse>),
    /// Topology events after a revision (resume), or Err if too old.
    TopologySince(u64, oneshot::Sender<Result<Vec<Arc<fog_core::topology::Event>>, u64>>),
    /// Aggregate history.
    History(usize, Reply<Vec<pb::AggregateSnapshot>>),
    /// System status.
    Status(Reply<pb::GetSystemStatusResponse>),
    /// The state a metrics scrape reads.
    Metrics(Reply<crate::metrics::StateSample>),
    /// Stop: flush what is pending and end the engine task.
    Shutdown,
    /// Store a new join token (its record; the secret is never stored).
    CreateToken(crate::identity::JoinTokenRecord, Reply<()>),
    /// A node joins: spend the token, sign its CSR, pre-register it.
    Join {
        /// The presented token.
        token: crate::identity::ParsedToken,
        /// The name the node asks for.
        node_name: String,
        /// Its CSR (DER).
        csr_der: Vec<u8>,
        /// Reply.
        reply: Reply<pb::JoinResponse>,
    },
}

impl Engine {
    pub(super) fn handle(&mut self, cmd: Command) {
        let now = now_ms();
        match cmd {
            Command::Auth(c) => self.handle_auth(c),
            Command::SessionOpen(open) => self.session_open(open, now),
            Command::Session(ev) => self.session_event(ev, now),
            Command::CloseSession { node, session_id } => self.close_session(&node, session_id, now),
            Command::Submit { spec, request_id, trace, store_checked, reply } => {
                self.submit(spec, request_id, trace, store_checked, reply, now)
            }
            Command::Rollback(id) => self.rollback(&id),
            Command::Resubmitted(id, reply) => {
                // Rolled back (forgotten, or cancelled with its request id released): not stored.
                let stored = self.tasks.get(&id).filter(|t| {
                    t.request_id.as_deref().and_then(|r| self.tasks.by_request_id(r)).is_some_and(|o| o.id == id)
                });
                let task = stored.map(convert::task_pb).ok_or_else(|| {
                    ApiError::Unavailable("the earlier submit with this request id was not stored; retry".into())
                });
                let _ = reply.send(task);
            }
            Command::GetTask(id, reply) => {
                let _ = reply.send(self.tasks.get(&id).map(convert::task_pb).ok_or_else(|| not_found_task(&id)));
            }
            Command::ListTasks(f, reply) => {
                let _ = reply.send(Ok(self.list_tasks(&f)));
            }
            Command::Cancel { id, reason, reply } => self.cancel(&id, &reason, reply, now),
            Command::Explain { spec, task_id, limit, reply } => {
                let _ = reply.send(self.explain(spec, task_id, limit));
            }
            Command::TaskSnapshot(ids, reply) => {
                let tasks = ids.iter().filter_map(|id| self.tasks.get(id)).map(convert::task_pb).collect();
                let _ = reply.send(Ok(tasks));
            }
            Command::ListNodes(f, reply) => {
                let _ = reply.send(Ok(self.list_nodes(&f, now)));
            }
            Command::GetNode(id, reply) => {
                let _ = reply.send(self.get_node(&id, now));
            }
            Command::Admin(id, op, reply) => {
                let _ = reply.send(self.admin(&id, op, now));
            }
            Command::RemoveNode(id, reply) => {
                let _ = reply.send(self.remove_node(&id, now));
            }
            Command::GetTopology(include_nodes, reply) => {
                let _ = reply.send(Ok(self.topology(include_nodes)));
            }
            Command::TopologySince(rev, reply) => {
                let r = self.topo.since(rev).map(|evs| evs.into_iter().map(|e| Arc::new(e.clone())).collect());
                let _ = reply.send(r.map_err(|_| self.topo.revision()));
            }
            Command::History(limit, reply) => {
                let _ = reply.send(Ok(self.history_pb(limit)));
            }
            Command::Status(reply) => {
                let _ = reply.send(Ok(self.system_status(now)));
            }
            Command::Metrics(reply) => {
                let _ = reply.send(Ok(self.metrics_sample(now)));
            }
            Command::CreateToken(record, reply) => self.create_token(record, reply),
            Command::Join { token, node_name, csr_der, reply } => self.join(token, node_name, csr_der, reply),
            // Sessions stay open until the last changes are durable (the
            // end of `run`): ending 100k of them first queued the engine's
            // final flush behind 100k waking tasks (a 1-2 s slower stop).
            Command::Shutdown => self.stopping = true,
        }
    }

    fn submit(
        &mut self,
        spec: pb::TaskSpec,
        request_id: Option<String>,
        trace: Option<opentelemetry::trace::SpanContext>,
        store_checked: bool,
        reply: Reply<pb::Task>,
        now: u64,
    ) {
        let known = request_id.as_deref().and_then(|r| self.tasks.by_request_id(r));
        if request_id.is_some()
            && known.is_none()
            && !store_checked
            && self.older_tasks.load(std::sync::atomic::Ordering::Relaxed)
        {
            // A task with this request id may have finished and left memory.
            let _ = reply.send(Err(ApiError::InStoreOnly));
            return;
        }
        if let Some(existing) = known {
            // The first submit may not be durable yet (or may fail and be rolled
            // back): answer once everything queued before this is committed, from
            // the state then.
            let id = existing.id.clone();
            let engine = self.self_tx.clone();
            self.pending.effects.push(Box::new(move |res| {
                let unstored = |why: String| Err(ApiError::Unavailable(format!("task not stored: {why}; retry")));
                match (res, engine.upgrade()) {
                    (Ok(()), Some(tx)) => {
                        if let Err(tokio::sync::mpsc::error::TrySendError::Full(Command::Resubmitted(_, reply))) =
                            tx.try_send(Command::Resubmitted(id, reply))
                        {
                            let _ = reply.send(unstored("the coordinator is busy".into()));
                        }
                    }
                    (Ok(()), None) => {}
                    (Err(e), _) => {
                        let _ = reply.send(unstored(e.to_string()));
                    }
                }
            }));
            return;
        }
        let params: TaskParams = convert::task_params(&spec, request_id);
        let spec = convert::with_effective_defaults(spec, &params);
        let id: TaskId = Arc::from(format!("t-{}", uuid::Uuid::now_v7().simple()));
        let spec: Spec = Arc::new(spec);
        self.tasks.submit(id.clone(), params, spec, now);
        self.traces.submitted(&id, trace);
        self.pending.tasks.insert(id.clone());
        self.pending.submits.push((id, reply));
        self.place_needed = true;
    }

    /// A submit's commit failed and the client was told so: the task must not
    /// run. A task still queued is forgotten; one already placed in a later
    /// round is cancelled (its record, if a later commit stored it, says so).
    fn rollback(&mut self, id: &str) {
        tracing::warn!(task.id = %id, "submit not durable; task withdrawn");
        self.traces.forget(id);
        if self.tasks.forget(id) {
            return;
        }
        // Already placed: it is cancelled, and a retry with its request id makes a new task.
        self.tasks.release_request_id(id);
        if let Ok(effects) = self.tasks.cancel(&mut self.nodes, id, "submission could not be stored", now_ms()) {
            self.core_effects(effects);
            self.pending.tasks.insert(Arc::from(id));
        }
    }

    fn cancel(&mut self, id: &str, reason: &str, reply: Reply<pb::Task>, now: u64) {
        match self.tasks.cancel(&mut self.nodes, id, reason, now) {
            Ok(effects) => {
                self.core_effects(effects);
                self.pending.tasks.insert(Arc::from(id));
                // Reply after the cancellation is durable.
                let task = self.tasks.get(id).map(convert::task_pb);
                self.pending.effects.push(Box::new(move |res| {
                    let r = match (res, task) {
                        (Ok(()), Some(t)) => Ok(t),
                        (Ok(()), None) => Err(ApiError::Internal("task vanished".into())),
                        (Err(e), _) => Err(ApiError::Unavailable(format!("cancellation not stored: {e}"))),
                    };
                    let _ = reply.send(r);
                }));
            }
            Err(fog_core::tasks::TaskError::NotFound(_)) => {
                let _ = reply.send(Err(not_found_task(id)));
            }
            Err(e @ fog_core::tasks::TaskError::Finished(..)) => {
                let _ = reply.send(Err(ApiError::FailedPrecondition(e.to_string())));
            }
        }
    }

    fn explain(
        &mut self,
        spec: Option<pb::TaskSpec>,
        task_id: Option<String>,
        limit: usize,
    ) -> Result<pb::ExplainPlacementResponse, ApiError> {
        let needs: TaskNeeds = match (spec, task_id) {
            (Some(s), _) => convert::task_params(&s, None).needs,
            (None, Some(id)) => self.tasks.get(&id).ok_or_else(|| not_found_task(&id))?.params.needs.clone(),
            (None, None) => return Err(ApiError::field("spec", "one of spec or task_id is required")),
        };
        let ex = self.scheduler.explain(&self.nodes, &needs, limit);
        Ok(pb::ExplainPlacementResponse {
            strategy: convert::strategy_pb(needs.strategy) as i32,
            chosen_node_id: ex.chosen.map(|n| n.to_string()).unwrap_or_default(),
            candidates: ex
                .candidates
                .into_iter()
                .map(|c| pb::PlacementCandidate { node_id: c.node.to_string(), score: c.score, reason: c.reason })
                .collect(),
            rejected: ex
                .rejected
                .into_iter()
                .map(|r| pb::RejectedNode { node_id: r.node.to_string(), reasons: r.reasons })
                .collect(),
            nodes_considered: ex.considered,
            nodes_fitting: ex.fitting,
            rejection_counts: ex.rejection_counts.into_iter().collect(),
        })
    }

    fn admin(&mut self, id: &str, op: AdminOp, now: u64) -> Result<pb::Node, ApiError> {
        let drain = matches!(op, AdminOp::Drain);
        let changed = self.nodes.update(id, |e| match op {
            AdminOp::Cordon => e.cordoned = true,
            AdminOp::Uncordon => {
                e.cordoned = false;
                e.draining = false;
            }
            AdminOp::Drain => {
                e.cordoned = true;
                e.draining = true;
            }
            AdminOp::Maintenance(on) => e.maintenance = on,
            AdminOp::Labels { set, remove } => {
                for k in remove {
                    e.remove_operator_label(&k);
                }
                e.set_operator_labels(set);
            }
        });
        if changed.is_none() {
            return Err(not_found_node(id));
        }
        if drain {
            self.send_after_commit(
                id,
                pb::session_response::Msg::Drain(pb::Drain { reason: "drained by operator".into() }),
            );
        }
        self.pending.nodes.insert(Arc::from(id));
        self.flush_nodes();
        self.place_needed = true;
        self.publish_node(id);
        Ok(self.node_pb(self.nodes.get(id).expect("updated above"), now))
    }

    fn remove_node(&mut self, id: &str, now: u64) -> Result<u32, ApiError> {
        if self.nodes.get(id).is_none() {
            return Err(not_found_node(id));
        }
        let changed = self.tasks.node_lost(&mut self.nodes, id, now);
        let requeued = changed.len() as u32;
        self.mark_tasks(changed);
        self.nodes.remove(id);
        self.liveness.forget(id);
        self.revoke_node(id);
        // Dropping the sender ends the node's session stream.
        self.sessions.remove(id);
        self.pending.nodes.insert(Arc::from(id));
        self.flush_nodes();
        self.place_needed = true;
        self.publish_node(id);
        tracing::info!(node.id = %id, requeued, "node removed");
        Ok(requeued)
    }
}

pub(super) fn not_found_task(id: &str) -> ApiError {
    ApiError::NotFound(format!("task {id} not found"))
}

pub(super) fn not_found_node(id: &str) -> ApiError {
    ApiError::NotFound(format!("node {id} not found"))
}
