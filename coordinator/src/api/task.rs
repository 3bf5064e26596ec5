//! `fog.v1.TaskService`.

use super::ApiError;
use super::validate::{self, Violations};
use super::{ask, page_size};
use crate::convert;
use crate::engine::{Command, EngineHandle, TaskFilter};
use crate::store::Store;
use fog_proto::v1 as pb;
use fog_proto::v1::task_service_server::TaskService;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The task service.
pub struct TaskApi {
    engine: EngineHandle,
    /// For finished tasks the engine no longer keeps in memory (weak: the
    /// service never keeps a stopped coordinator's store open).
    store: Weak<dyn Store>,
}

impl TaskApi {
    /// A service over the engine, reading older finished tasks from `store`.
    pub fn new(engine: EngineHandle, store: Arc<dyn Store>) -> TaskApi {
        TaskApi { engine, store: Arc::downgrade(&store) }
    }

    /// A finished task that is in the store only, when the engine does not
    /// know `id` (None: no such task anywhere).
    async fn stored_task(&self, id: &str) -> Result<Option<pb::Task>, ApiError> {
        if !self.engine.tasks_beyond_memory() {
            return Ok(None);
        }
        let store = self.store.upgrade().ok_or_else(|| ApiError::Unavailable("the coordinator is stopping".into()))?;
        store.get_task(id).await.map_err(|e| ApiError::Unavailable(format!("cannot read the task store: {e}")))
    }

    /// The finished task submitted earlier with `request_id`, when it is in
    /// the store only (active and recent tasks are found by the engine).
    async fn stored_request(&self, request_id: &str) -> Result<Option<pb::Task>, ApiError> {
        if !self.engine.tasks_beyond_memory() {
            return Ok(None);
        }
        let store = self.store.upgrade().ok_or_else(|| ApiError::Unavailable("the coordinator is stopping".into()))?;
        store
            .task_for_request(request_id)
            .await
            .map_err(|e| ApiError::Unavailable(format!("cannot read the task store: {e}")))
    }

    /// Asks the engine; if it does not know the task, looks in the store
    /// and answers with `found` applied to the stored task.
    async fn with_fallback<T>(
        &self,
        id: &str,
        asked: Result<T, ApiError>,
        found: impl FnOnce(pb::Task) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        match asked {
            Err(ApiError::NotFound(why)) => match self.stored_task(id).await? {
                Some(task) => found(task),
                None => Err(ApiError::NotFound(why)),
            },
            other => other,
        }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchTasksResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TaskService for TaskApi {
    async fn submit_task(
        &self,
        req: Request<pb::SubmitTaskRequest>,
    ) -> Result<Response<pb::SubmitTaskResponse>, Status> {
        use fog_telemetry::trace::{self, Span};
        // The submit's server span: child of the caller's `traceparent`.
        let mut span = trace::enabled().then(|| {
            let mut s =
                trace::start("fog.v1.TaskService/SubmitTask", trace::SpanKind::Server, &trace::extract(req.metadata()));
            s.set_attributes([
                opentelemetry::KeyValue::new("rpc.system", "grpc"),
                opentelemetry::KeyValue::new("rpc.service", "fog.v1.TaskService"),
                opentelemetry::KeyValue::new("rpc.method", "SubmitTask"),
            ]);
            s
        });
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        validate::task_spec(&mut v, "spec", r.spec.as_ref());
        v.max_len("request_id", &r.request_id, 64);
        let result = async {
            v.finish()?;
            let spec = r.spec.expect("validated");
            let request_id = (!r.request_id.is_empty()).then_some(r.request_id);
            let trace = span.as_ref().map(|s| s.span_context().clone());
            let submit = |store_checked: bool| {
                let (spec, request_id, trace) = (spec.clone(), request_id.clone(), trace.clone());
                ask(&self.engine, move |reply| Command::Submit { spec, request_id, trace, store_checked, reply })
            };
            match submit(false).await {
                // Unknown to the engine, while finished tasks are in the store
                // only: a retry of a submit whose task finished and left
                // memory answers with that task, not a second one.
                Err(ApiError::InStoreOnly) => {
                    let r = request_id.as_deref().unwrap_or_default();
                    match self.stored_request(r).await? {
                        Some(task) => Ok(task),
                        None => Ok(submit(true).await?),
                    }
                }
                other => Ok::<_, Status>(other?),
            }
        }
        .await;
        if let Some(s) = &mut span {
            match &result {
                Ok(task) => s.set_attribute(opentelemetry::KeyValue::new("fog.task.id", task.id.clone())),
                Err(status) => s.set_status(trace::Status::error(status.message().to_string())),
            }
            s.end();
        }
        Ok(Response::new(pb::SubmitTaskResponse { task: Some(result?) }))
    }

    async fn get_task(&self, req: Request<pb::GetTaskRequest>) -> Result<Response<pb::GetTaskResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        validate::task_id(&mut v, "task_id", &r.task_id);
        v.finish()?;
        let asked = ask(&self.engine, |reply| Command::GetTask(r.task_id.clone(), reply)).await;
        let task = self.with_fallback(&r.task_id, asked, Ok).await?;
        Ok(Response::new(pb::GetTaskResponse { task: Some(task) }))
    }

    async fn list_tasks(&self, req: Request<pb::ListTasksRequest>) -> Result<Response<pb::ListTasksResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.max_items("states", &r.states, 6);
        for (i, s) in r.states.iter().enumerate() {
            v.enum_value::<pb::TaskState>(&format!("states[{i}]"), *s, false);
        }
        v.enum_value::<pb::SlaTier>("sla_tier", r.sla_tier, true);
        if !r.node_id.is_empty() {
            v.id("node_id", &r.node_id);
        }
        v.page_size("page_size", r.page_size, 1000);
        if !r.page_token.is_empty() {
            validate::task_id(&mut v, "page_token", &r.page_token);
        }
        v.finish()?;
        let filter = TaskFilter {
            states: r.states.iter().filter_map(|s| convert::task_state(*s)).collect(),
            tier: (r.sla_tier != 0).then(|| convert::tier(r.sla_tier)),
            node: (!r.node_id.is_empty()).then_some(r.node_id),
            page_size: page_size(r.page_size, 100),
            after: (!r.page_token.is_empty()).then_some(r.page_token),
        };
        Ok(Response::new(ask(&self.engine, |reply| Command::ListTasks(filter, reply)).await?))
    }

    async fn cancel_task(
        &self,
        req: Request<pb::CancelTaskRequest>,
    ) -> Result<Response<pb::CancelTaskResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        validate::task_id(&mut v, "task_id", &r.task_id);
        v.max_len("reason", &r.reason, 256);
        v.finish()?;
        let asked = ask(&self.engine, |reply| Command::Cancel { id: r.task_id.clone(), reason: r.reason, reply }).await;
        let task = self
            .with_fallback(&r.task_id, asked, |t| {
                let state = pb::TaskState::try_from(t.state).map_or("finished", |s| s.as_str_name());
                Err(ApiError::FailedPrecondition(format!("task {} already finished ({state})", t.id)))
            })
            .await?;
        Ok(Response::new(pb::CancelTaskResponse { task: Some(task) }))
    }

    type WatchTasksStream = WatchStream;

    async fn watch_tasks(&self, req: Request<pb::WatchTasksRequest>) -> Result<Response<WatchStream>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        v.max_items("task_ids", &r.task_ids, 1000);
        for (i, id) in r.task_ids.iter().enumerate() {
            validate::task_id(&mut v, &format!("task_ids[{i}]"), id);
        }
        v.finish()?;
        // Subscribe before reading the initial state, so nothing falls between.
        let mut rx = self.engine.subscribe_tasks();
        let ids: std::collections::HashSet<String> = r.task_ids.iter().cloned().collect();
        let initial = if r.initial_state && !ids.is_empty() {
            let mut tasks = ask(&self.engine, |reply| Command::TaskSnapshot(r.task_ids.clone(), reply)).await?;
            // Finished tasks out of the engine's memory: their final state, from the store.
            for id in &r.task_ids {
                if !tasks.iter().any(|t| t.id == *id)
                    && let Some(t) = self.stored_task(id).await?
                {
                    tasks.push(t);
                }
            }
            tasks.into_iter().map(|t| pb::WatchTasksResponse { task: Some(t), sequence: 0, lagged: false }).collect()
        } else {
            Vec::new()
        };
        let engine = self.engine.clone();
        let stream = async_stream(initial, move |tx| async move {
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = engine.stopped() => return,
                };
                match ev {
                    Ok(ev) => {
                        let wanted = ids.is_empty() || ev.task.as_ref().is_some_and(|t| ids.contains(&t.id));
                        if wanted && tx.send(Ok((*ev).clone())).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        let lag = pb::WatchTasksResponse { task: None, sequence: 0, lagged: true };
                        if tx.send(Ok(lag)).await.is_err() {
                            return;
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn explain_placement(
        &self,
        req: Request<pb::ExplainPlacementRequest>,
    ) -> Result<Response<pb::ExplainPlacementResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let r = req.into_inner();
        let mut v = declared;
        match (&r.spec, r.task_id.is_empty()) {
            (Some(_), true) => validate::task_spec(&mut v, "spec", r.spec.as_ref()),
            (None, false) => validate::task_id(&mut v, "task_id", &r.task_id),
            (Some(_), false) => v.add("task_id", "set either spec or task_id, not both"),
            (None, true) => v.add("spec", "one of spec or task_id is required"),
        }
        v.page_size("limit", r.limit, 1000);
        v.finish()?;
        let limit = page_size(r.limit, 20);
        let task_id = (!r.task_id.is_empty()).then_some(r.task_id);
        let id = task_id.clone().unwrap_or_default();
        let spec = r.spec;
        let asked = ask(&self.engine, |reply| Command::Explain { spec, task_id, limit, reply }).await;
        // A finished task out of memory: explain its spec against the fleet now.
        let explained = match asked {
            Err(ApiError::NotFound(why)) => match self.stored_task(&id).await? {
                Some(t) => {
                    ask(&self.engine, |reply| Command::Explain { spec: t.spec, task_id: None, limit, reply }).await?
                }
                None => return Err(ApiError::NotFound(why).into()),
            },
            other => other?,
        };
        Ok(Response::new(explained))
    }
}

/// A server stream fed by a spawned producer through a small bounded channel:
/// a slow client back-pressures only its own producer.
pub(crate) fn async_stream<T, F, Fut>(
    initial: Vec<T>,
    produce: F,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let fut = produce(tx.clone());
    tokio::spawn(async move {
        for item in initial {
            if tx.send(Ok(item)).await.is_err() {
                return;
            }
        }
        drop(tx);
        fut.await;
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
