//! fog-gateway: serves the control panel and translates grpc-web (HTTP/1.1
//! and HTTP/2) to gRPC towards the coordinator.
//!
//! The gateway is deliberately thin. It holds no state about the fleet and
//! makes no authorization decisions: the coordinator does both. What it adds
//! is what a browser-facing edge needs — per-IP limits, CORS for configured
//! origins only, security headers with a strict Content-Security-Policy,
//! optional TLS, its own health endpoints, and request logs that carry the
//! caller's W3C `traceparent`.

pub mod config;
pub mod forward;
pub mod limit;
pub mod metrics;
pub mod panel;
mod serve;

pub use config::{Config, ConfigError, LogFormat};
pub use serve::{Running, start};

use crate::forward::Forward;
use crate::limit::IpLimits;
use crate::panel::Panel;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// What the panel may load and talk to: only this origin, no inline code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

struct App {
    grpc: tonic_web::GrpcWebService<fog_telemetry::grpc::GrpcMetricsService<Forward>>,
    panel: Option<Panel>,
    coordinator: tonic::transport::Channel,
}

/// Builds the gateway's HTTP service (shared by plain and TLS listeners).
pub fn router(
    cfg: &Config,
    channel: tonic::transport::Channel,
    limits: IpLimits,
    metrics: Arc<metrics::GatewayMetrics>,
) -> Router {
    use tower::Layer;
    let forward = Forward::new(channel.clone(), limits, metrics.rate_limited.clone());
    let counted = fog_telemetry::grpc::GrpcMetricsLayer::new(metrics.grpc.clone()).layer(forward);
    let app = Arc::new(App {
        grpc: tonic_web::GrpcWebLayer::new().layer(counted),
        panel: cfg.panel_dir.as_deref().map(Panel::new),
        coordinator: channel,
    });
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(dispatch)
        .with_state(app)
        // Files only: the default predicate skips application/grpc but not
        // grpc-web, whose streams must not sit in a compressor.
        .layer(
            CompressionLayer::new()
                .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/grpc-web"))),
        );
    if !cfg.cors_origins.is_empty() {
        router = router.layer(cors(&cfg.cors_origins));
    }
    let headers: [(&str, &str); 7] = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if cfg.tls_cert.is_some() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    router.layer(axum::middleware::from_fn_with_state(metrics, metrics::record)).layer(
        TraceLayer::new_for_http()
            .make_span_with(|req: &Request<Body>| {
                let ip = req.extensions().get::<limit::ClientIp>().map(|c| c.0.to_string()).unwrap_or_default();
                let traceparent = req.headers().get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), client = %ip, traceparent)
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
    )
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers(
            [
                "content-type",
                "authorization",
                "x-grpc-web",
                "x-user-agent",
                "grpc-timeout",
                "traceparent",
                "tracestate",
                "connect-protocol-version",
            ]
            .map(HeaderName::from_static),
        )
        .expose_headers(["grpc-status", "grpc-message", "grpc-status-details-bin"].map(HeaderName::from_static))
        .max_age(Duration::from_secs(86_400))
}

fn content_type(req: &Request<Body>) -> &str {
    req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A grpc-web call: `POST /package.Service/Method` with a grpc-web content
/// type. Only grpc-web is forwarded: native gRPC clients talk to the
/// coordinator directly, and the node-facing RPCs stay off the browser edge's
/// path (and a request without a proper path never reaches the channel).
fn is_grpc_web_call(req: &Request<Body>) -> bool {
    let path = req.uri().path();
    req.method() == Method::POST
        && content_type(req).starts_with("application/grpc-web")
        && path.starts_with('/')
        && path[1..]
            .split_once('/')
            .is_some_and(|(service, method)| !service.is_empty() && !method.is_empty() && !method.contains('/'))
}

async fn dispatch(State(app): State<Arc<App>>, req: Request<Body>) -> Response {
    if content_type(&req).starts_with("application/grpc") && !is_grpc_web_call(&req) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the gateway forwards grpc-web calls (POST /package.Service/Method); native gRPC goes to the coordinator\n",
        )
            .into_response();
    }
    if is_grpc_web_call(&req) {
        return match app.grpc.clone().oneshot(req).await {
            Ok(res) => res.map(Body::new),
            Err(never) => match never {},
        };
    }
    match (&app.panel, req.method()) {
        (Some(panel), &Method::GET | &Method::HEAD) => panel.serve(req).await,
        (None, &Method::GET | &Method::HEAD) => {
            (StatusCode::NOT_FOUND, "this gateway serves the API only (no --panel-dir)\n").into_response()
        }
        _ => (StatusCode::METHOD_NOT_ALLOWED, "only GET for files, POST with a gRPC content type for the API\n")
            .into_response(),
    }
}

/// Ready when the coordinator answers its standard gRPC health check.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let mut client = HealthClient::new(app.coordinator.clone());
    let mut req = tonic::Request::new(HealthCheckRequest { service: String::new() });
    req.set_timeout(Duration::from_secs(2));
    match client.check(req).await {
        Ok(res) if res.get_ref().status() == ServingStatus::Serving => "ready\n".into_response(),
        Ok(res) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("coordinator is {:?}\n", res.get_ref().status())).into_response()
        }
        Err(status) => (StatusCode::SERVICE_UNAVAILABLE, format!("coordinator unreachable: {}\n", status.message()))
            .into_response(),
    }
}
