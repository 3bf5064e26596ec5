//! The gateway's Prometheus metrics, on `--metrics-listen` (off by default):
//! HTTP requests by route and status, their time to response headers, API
//! calls as gRPC server metrics (go-grpc-prometheus names, counted after the
//! grpc-web translation, so with their gRPC status), per-IP refusals and
//! open connections.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use fog_telemetry::grpc::GrpcMetrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;

/// Label: what kind of request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    route: &'static str,
}

/// Labels: kind of request and HTTP status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteCodeLabels {
    route: &'static str,
    code: u16,
}

/// Every gateway metric.
pub struct GatewayMetrics {
    registry: Registry,
    /// Forwarded API calls.
    pub grpc: Arc<GrpcMetrics>,
    /// API calls refused by the per-IP limit.
    pub rate_limited: Counter,
    requests: Family<RouteCodeLabels, Counter>,
    duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    connections: Gauge,
}

fn buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        GatewayMetrics::new()
    }
}

impl GatewayMetrics {
    /// A registry with every gateway metric.
    pub fn new() -> GatewayMetrics {
        let mut m = GatewayMetrics {
            registry: Registry::default(),
            grpc: Arc::new(GrpcMetrics::new(&[fog_proto::FILE_DESCRIPTOR_SET])),
            rate_limited: Counter::default(),
            requests: Family::default(),
            duration: Family::new_with_constructor(buckets),
            connections: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register(
            "fog_gateway_http_requests",
            "HTTP requests by route (api, panel, health, other) and status",
            m.requests.clone(),
        );
        r.register_with_unit(
            "fog_gateway_http_request_duration",
            "Time to response headers by route (for API streams: until the stream opened)",
            Unit::Seconds,
            m.duration.clone(),
        );
        r.register(
            "fog_gateway_rate_limited_requests",
            "API calls refused by the per-IP limit",
            m.rate_limited.clone(),
        );
        r.register("fog_gateway_open_connections", "Client connections open", m.connections.clone());
        m.grpc.register(r);
        m
    }

    /// The exposition, with `open_connections` as the connection gauge.
    pub fn encode(&self, open_connections: usize) -> String {
        self.connections.set(open_connections as i64);
        fog_telemetry::encode(&self.registry)
    }
}

fn route(req: &Request) -> &'static str {
    let path = req.uri().path();
    if path == "/healthz" || path == "/readyz" {
        "health"
    } else if crate::is_grpc_web_call(req) {
        "api"
    } else if matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        "panel"
    } else {
        "other"
    }
}

/// Middleware: counts and times every request.
pub async fn record(State(metrics): State<Arc<GatewayMetrics>>, req: Request, next: Next) -> Response {
    let route = route(&req);
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    metrics.requests.get_or_create(&RouteCodeLabels { route, code: res.status().as_u16() }).inc();
    metrics.duration.get_or_create(&RouteLabel { route }).observe(started.elapsed().as_secs_f64());
    res
}
