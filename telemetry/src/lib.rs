//! Telemetry every Fogplane process shares: gRPC server metrics with the
//! names dashboards expect ([`grpc`]), the plain-HTTP endpoint that serves a
//! Prometheus registry ([`serve_metrics`]), and OpenTelemetry traces with W3C
//! context propagation ([`trace`]).

pub mod grpc;
pub mod trace;

use std::future::Future;

/// Content type of OpenMetrics text (what `prometheus_client` encodes).
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Encodes a registry as OpenMetrics text (ending with `# EOF`).
pub fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// Serves `GET /metrics` on `listener` until `stop` resolves. `scrape`
/// produces the exposition, or `None` when the process cannot answer now
/// (503, which Prometheus records as `up == 0`).
pub async fn serve_metrics<F, Fut>(
    listener: tokio::net::TcpListener,
    scrape: F,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send + 'static,
{
    use axum::http::{StatusCode, header};
    let handler = move || {
        let scrape = scrape.clone();
        async move {
            match scrape().await {
                Some(text) => (StatusCode::OK, [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text),
                None => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "not ready to report metrics\n".to_string(),
                ),
            }
        }
    };
    let app = axum::Router::new().route("/metrics", axum::routing::get(handler));
    axum::serve(listener, app).with_graceful_shutdown(stop).await
}
