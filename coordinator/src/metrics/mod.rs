//! Prometheus metrics, in the OpenMetrics text format on `--metrics-listen`
//! (off by default; `GET /metrics`).
//!
//! Two kinds: what is counted as it happens (heartbeats and their
//! inter-arrival times, routing decision time per strategy, queue wait and
//! SLA outcome per tier, rate-limit rejections, gRPC calls), and what is read
//! off the engine's state at scrape time (nodes by status, tasks by state,
//! heartbeat ages, sessions, watchers), so that state costs nothing between
//! scrapes. Names follow the Prometheus conventions: `fog_` prefix, base
//! units in the name (`_seconds`), `_total` on counters; gRPC server metrics
//! use the names of go-grpc-prometheus (`grpc_server_handled_total`, …) so
//! existing dashboards work.

use fog_core::domain::{SlaTier, Strategy};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Label: node status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    status: &'static str,
}

/// Label: task state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    state: &'static str,
}

/// Label: routing strategy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabel {
    strategy: &'static str,
}

/// Label: SLA tier.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    sla_tier: &'static str,
}

/// Labels: SLA tier and whether the placement target was met.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierOutcomeLabel {
    sla_tier: &'static str,
    outcome: &'static str,
}

/// Label: which rate limit or cap refused a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    limit: &'static str,
}

/// Label: which stream watchers watch.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    stream: &'static str,
}

/// Label: a quantile over the current nodes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuantileLabel {
    quantile: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The engine's state as read at a scrape ([`crate::engine::Command::Metrics`]).
#[derive(Clone, Debug, Default)]
pub struct StateSample {
    /// Nodes by status name (every status present).
    pub nodes: Vec<(&'static str, u64)>,
    /// Tasks by state name (every state present).
    pub tasks: Vec<(&'static str, u64)>,
    /// Seconds since the last heartbeat of every node that is not offline.
    pub heartbeat_ages: Vec<f64>,
    /// Open node sessions.
    pub sessions: u64,
    /// Share of placed tasks that met their tier's placement target.
    pub sla_compliance: f64,
}

/// Every metric of a coordinator. Cheap to share (`Arc`); recording is
/// lock-free for plain metrics and a read lock for labelled ones.
pub struct Metrics {
    registry: Registry,
    /// Heartbeats applied.
    pub heartbeats: Counter,
    /// Time between two heartbeats of one node (as the engine applies them,
    /// in batches of up to 5 ms).
    pub heartbeat_interarrival: Histogram,
    /// Routing decision time per strategy.
    pub routing_decision: HistogramFamily<StrategyLabel>,
    /// Submit → first placement, per SLA tier.
    pub queue_wait: HistogramFamily<TierLabel>,
    /// First placements per tier, by whether the tier's target was met.
    pub placements: Family<TierOutcomeLabel, Counter>,
    /// Requests refused by a rate limit or cap.
    pub rate_limited: Family<LimitLabel, Counter>,
    /// Store commits (group commit batches): time to durable.
    pub store_commit: Histogram,
    /// gRPC server calls.
    pub grpc: Arc<fog_telemetry::grpc::GrpcMetrics>,
    nodes: Family<StatusLabel, Gauge>,
    tasks: Family<StateLabel, Gauge>,
    heartbeat_age: Family<QuantileLabel, FloatGauge>,
    sessions: Gauge,
    watchers: Family<StreamLabel, Gauge>,
    sla_compliance: FloatGauge,
}

/// Buckets from 50 µs to ~26 s, doubling.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// Buckets for routing decisions: 1 µs to ~0.5 s, doubling.
fn decision_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_001, 2.0, 20))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every coordinator metric.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            heartbeats: Counter::default(),
            heartbeat_interarrival: Histogram::new([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0]),
            routing_decision: Family::new_with_constructor(decision_buckets),
            queue_wait: Family::new_with_constructor(latency_buckets),
            placements: Family::default(),
            rate_limited: Family::default(),
            store_commit: latency_buckets(),
            grpc: Arc::new(fog_telemetry::grpc::GrpcMetrics::new(&[
                fog_proto::FILE_DESCRIPTOR_SET,
                tonic_health::pb::FILE_DESCRIPTOR_SET,
                tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            ])),
            nodes: Family::default(),
            tasks: Family::default(),
            heartbeat_age: Family::default(),
            sessions: Gauge::default(),
            watchers: Family::default(),
            sla_compliance: FloatGauge::default(),
            registry: Registry::default(),
        };
        let r = &mut m.registry;
        r.register("fog_heartbeats", "Heartbeats applied", m.heartbeats.clone());
        r.register_with_unit(
            "fog_heartbeat_interarrival",
            "Time between two heartbeats of one node, as applied (batched: ±5 ms)",
            Unit::Seconds,
            m.heartbeat_interarrival.clone(),
        );
        r.register_with_unit(
            "fog_routing_decision_duration",
            "Time to choose a node for one replica, by the strategy applied",
            Unit::Seconds,
            m.routing_decision.clone(),
        );
        r.register_with_unit(
            "fog_task_queue_wait",
            "Submit to first placement, by SLA tier",
            Unit::Seconds,
            m.queue_wait.clone(),
        );
        r.register(
            "fog_task_placements",
            "First placements by SLA tier and outcome (met or missed the tier's placement target)",
            m.placements.clone(),
        );
        r.register("fog_rate_limited_requests", "Requests refused by a rate limit or cap", m.rate_limited.clone());
        r.register_with_unit(
            "fog_store_commit_duration",
            "Group commits of the embedded store: submit to durable",
            Unit::Seconds,
            m.store_commit.clone(),
        );
        m.grpc.register(r);
        r.register("fog_nodes", "Nodes by status", m.nodes.clone());
        r.register("fog_tasks", "Tasks by state", m.tasks.clone());
        r.register_with_unit(
            "fog_node_heartbeat_age",
            "Time since the last heartbeat over the nodes that are not offline (quantile 1 = the stalest)",
            Unit::Seconds,
            m.heartbeat_age.clone(),
        );
        r.register("fog_node_sessions", "Open node sessions", m.sessions.clone());
        r.register("fog_watchers", "Open watch streams by stream", m.watchers.clone());
        r.register_with_unit(
            "fog_sla_compliance",
            "Share of placed tasks that met their tier's placement target (1 when none was placed)",
            Unit::Other("ratio".into()),
            m.sla_compliance.clone(),
        );
        m
    }

    /// Records a routing decision.
    pub fn decision(&self, strategy: Strategy, took: std::time::Duration) {
        self.routing_decision.get_or_create(&StrategyLabel { strategy: strategy.as_str() }).observe(took.as_secs_f64());
    }

    /// Records a task's first placement.
    pub fn placed(&self, tier: SlaTier, waited_ms: u64, met: bool) {
        let sla_tier = tier.as_str();
        self.queue_wait.get_or_create(&TierLabel { sla_tier }).observe(waited_ms as f64 / 1000.0);
        let outcome = if met { "met" } else { "missed" };
        self.placements.get_or_create(&TierOutcomeLabel { sla_tier, outcome }).inc();
    }

    /// Counts a refusal by the limit named.
    pub fn limited(&self, limit: &'static str) {
        self.rate_limited.get_or_create(&LimitLabel { limit }).inc();
    }

    /// Sets the scrape-time gauges.
    pub fn set_state(&self, s: &StateSample, topology_watchers: usize, task_watchers: usize) {
        for &(status, n) in &s.nodes {
            self.nodes.get_or_create(&StatusLabel { status }).set(n as i64);
        }
        for &(state, n) in &s.tasks {
            self.tasks.get_or_create(&StateLabel { state }).set(n as i64);
        }
        let mut ages = s.heartbeat_ages.clone();
        ages.sort_by(f64::total_cmp);
        for (quantile, q) in [("0.5", 0.5), ("0.99", 0.99), ("1", 1.0)] {
            let v = if ages.is_empty() { 0.0 } else { ages[((ages.len() - 1) as f64 * q).round() as usize] };
            self.heartbeat_age.get_or_create(&QuantileLabel { quantile }).set(v);
        }
        self.sessions.set(s.sessions as i64);
        self.watchers.get_or_create(&StreamLabel { stream: "topology" }).set(topology_watchers as i64);
        self.watchers.get_or_create(&StreamLabel { stream: "tasks" }).set(task_watchers as i64);
        self.sla_compliance.set(s.sla_compliance);
    }

    /// The exposition (OpenMetrics text, ending with `# EOF`).
    pub fn encode(&self) -> String {
        fog_telemetry::encode(&self.registry)
    }
}

/// Serves `GET /metrics` on `listener` until `stop`: reads the engine's state
/// (2 s at most; a stalled engine fails the scrape), then encodes everything.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    engine: crate::engine::EngineHandle,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let scrape = move || {
        let (metrics, engine) = (metrics.clone(), engine.clone());
        async move {
            let sample = tokio::time::timeout(std::time::Duration::from_secs(2), engine.metrics_sample()).await;
            let sample = sample.ok()?.ok()?;
            let (topology, tasks) = engine.watcher_counts();
            metrics.set_state(&sample, topology, tasks);
            Some(metrics.encode())
        }
    };
    fog_telemetry::serve_metrics(listener, scrape, async move { stop.cancelled().await }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_conventional_names_and_state() {
        let m = Metrics::new();
        m.heartbeats.inc();
        m.decision(Strategy::Proximity, std::time::Duration::from_micros(3));
        m.placed(SlaTier::Gold, 120, true);
        m.limited("identity");
        let sample = StateSample {
            nodes: vec![("idle", 3), ("offline", 1)],
            tasks: vec![("queued", 2)],
            heartbeat_ages: vec![0.5, 1.0, 4.0],
            sessions: 3,
            sla_compliance: 0.75,
        };
        m.set_state(&sample, 2, 1);
        let text = m.encode();
        for line in [
            "fog_heartbeats_total 1",
            "fog_routing_decision_duration_seconds_count{strategy=\"proximity\"} 1",
            "fog_task_queue_wait_seconds_sum{sla_tier=\"gold\"} 0.12",
            "fog_task_placements_total{sla_tier=\"gold\",outcome=\"met\"} 1",
            "fog_rate_limited_requests_total{limit=\"identity\"} 1",
            "fog_nodes{status=\"idle\"} 3",
            "fog_tasks{state=\"queued\"} 2",
            "fog_node_heartbeat_age_seconds{quantile=\"1\"} 4.0",
            "fog_node_heartbeat_age_seconds{quantile=\"0.5\"} 1.0",
            "fog_node_sessions 3",
            "fog_watchers{stream=\"topology\"} 2",
            "fog_sla_compliance_ratio 0.75",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
