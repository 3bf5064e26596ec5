//! A task's trace, when span export is on: the submit call's server span,
//! then `place` (from submission to the first placement: the queue wait),
//! `dispatch` (the assignment made durable and handed to the node's session;
//! its context travels in the `Assignment`), the node's `run` (in the agent),
//! and `complete` (the result applied; child of the node's run span when the
//! node reports one). The engine keeps the latest span context per live task
//! and nothing at all when export is off.

use fog_core::domain::{Millis, TaskId};
use fog_core::tasks::Task;
use fog_telemetry::trace::{self, Span, SpanKind};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at(ms: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// The latest span context of each traced task.
#[derive(Default)]
pub(super) struct TaskTraces {
    current: HashMap<TaskId, SpanContext>,
}

impl TaskTraces {
    /// A task was submitted under `submit` (the call's server span).
    pub(super) fn submitted(&mut self, id: &TaskId, submit: Option<SpanContext>) {
        if let Some(sc) = submit.filter(|sc| sc.is_valid() && trace::enabled()) {
            self.current.insert(id.clone(), sc);
        }
    }

    /// First placement: a span over the queue wait, ending now.
    pub(super) fn placed<P>(&mut self, task: &Task<P>, now: Millis) {
        let Some(parent) = self.current.get(&task.id) else { return };
        let tracer = trace::tracer();
        let mut span = opentelemetry::trace::Tracer::span_builder(&tracer, "place")
            .with_kind(SpanKind::Internal)
            .with_start_time(at(task.submitted_at))
            .with_attributes([
                KeyValue::new("fog.task.id", task.id.to_string()),
                KeyValue::new("fog.sla_tier", task.params.tier.as_str()),
                KeyValue::new("fog.strategy", task.params.needs.strategy.as_str()),
                KeyValue::new("fog.replicas", i64::from(task.params.replicas)),
                KeyValue::new("fog.sla_met", task.sla_met.unwrap_or(false)),
                KeyValue::new(
                    "fog.nodes",
                    task.attempts.iter().map(|a| a.node.to_string()).collect::<Vec<_>>().join(","),
                ),
            ])
            .start_with_context(&tracer, &trace::context_of(parent));
        let sc = span.span_context().clone();
        span.end_with_timestamp(at(now));
        self.current.insert(task.id.clone(), sc);
    }

    /// An attempt is assigned: a `dispatch` span, to be ended once the
    /// assignment is handed to the node's session, and its `traceparent`.
    pub(super) fn dispatch(
        &self,
        id: &TaskId,
        node: &str,
        attempt: fog_core::domain::AttemptNo,
    ) -> Option<(trace::BoxedSpan, String)> {
        let parent = self.current.get(id)?;
        let mut span = trace::start("dispatch", SpanKind::Producer, &trace::context_of(parent));
        span.set_attributes([
            KeyValue::new("fog.task.id", id.to_string()),
            KeyValue::new("fog.node.id", node.to_string()),
            KeyValue::new("fog.attempt", attempt as i64),
        ]);
        let tp = trace::traceparent(span.span_context());
        Some((span, tp))
    }

    /// A result was applied: a `complete` span, child of the node's run span
    /// (`reported`) when it sent one. Forgets the task once it is finished.
    pub(super) fn completed(
        &mut self,
        id: &TaskId,
        attempt: fog_core::domain::AttemptNo,
        outcome: &str,
        reported: &str,
        finished: bool,
    ) {
        let Some(own) = self.current.get(id) else { return };
        let run = trace::parse_traceparent(reported);
        let parent = if run.is_valid() && run.trace_id() == own.trace_id() { run } else { own.clone() };
        let mut span = trace::start("complete", SpanKind::Consumer, &trace::context_of(&parent));
        span.set_attributes([
            KeyValue::new("fog.task.id", id.to_string()),
            KeyValue::new("fog.attempt", attempt as i64),
            KeyValue::new("fog.outcome", outcome.to_string()),
            KeyValue::new("fog.task.finished", finished),
        ]);
        span.end();
        if finished {
            self.current.remove(id);
        }
    }

    /// The task is gone or finished without a result (cancelled, rolled back).
    pub(super) fn forget(&mut self, id: &str) {
        self.current.remove(id);
    }
}
