//! Generic forwarding of gRPC calls to the coordinator.
//!
//! Nothing here knows a service or a method: every request whose content type
//! is gRPC or grpc-web goes through tonic-web's translation (grpc-web framing,
//! base64 text mode, trailers carried in the body) and then, as plain gRPC
//! over one HTTP/2 connection, to the coordinator. A new RPC needs no gateway
//! code. The coordinator authenticates and authorizes every call; the
//! `authorization` header passes through untouched.

use crate::config::{Config, ConfigError};
use crate::limit::{ClientIp, IpLimits};
use http::{HeaderMap, HeaderValue, Request, Response, header};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::body::Body;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tower::Service;

/// Opens the (lazy) channel to the coordinator: the gateway starts and serves
/// the panel even while the coordinator is down; calls then fail `UNAVAILABLE`.
pub fn coordinator_channel(cfg: &Config) -> Result<Channel, ConfigError> {
    let bad = |e: &dyn std::fmt::Display| ConfigError::Coordinator(cfg.coordinator.clone(), e.to_string());
    let mut endpoint = Endpoint::from_shared(cfg.coordinator.clone())
        .map_err(|e| bad(&e))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if cfg.coordinator.starts_with("https://") {
        let path = cfg.ca_file.as_ref().ok_or(ConfigError::CaFileMissing)?;
        let pem = std::fs::read(path).map_err(|e| ConfigError::CaFile(path.clone(), e))?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        endpoint = endpoint.tls_config(tls).map_err(|e| bad(&e))?;
    }
    Ok(endpoint.connect_lazy())
}

/// Headers that describe one HTTP hop (RFC 9110 §7.6.1) or the browser, not
/// the call; HTTP/2 forbids the connection-specific ones outright. Cookies
/// are never forwarded: the API authenticates with bearer tokens only.
const HOP_HEADERS: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::HOST,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::CONTENT_LENGTH,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    header::TE,
];

fn scrub(headers: &mut HeaderMap) {
    // Headers the client named in `Connection` are hop-by-hop too.
    let named: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| header::HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_HEADERS {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
}

/// The inner service tonic-web calls with a translated gRPC request.
#[derive(Clone)]
pub struct Forward {
    channel: Channel,
    limits: IpLimits,
    /// Counts refusals by `limits`.
    refused: prometheus_client::metrics::counter::Counter,
}

impl Forward {
    pub fn new(channel: Channel, limits: IpLimits, refused: prometheus_client::metrics::counter::Counter) -> Forward {
        Forward { channel, limits, refused }
    }
}

impl Service<Request<Body>> for Forward {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The channel is polled for readiness inside `call` (on a clone), so
        // one slow coordinator connection never wedges the router.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>().copied()
            && let Err(wait) = self.limits.check(ip)
        {
            tracing::info!(%ip, path = req.uri().path(), "rate limited");
            self.refused.inc();
            return Box::pin(std::future::ready(Ok(rate_limited(wait))));
        }
        scrub(req.headers_mut());
        // The browser's leg may be HTTP/1.1; the coordinator's is always HTTP/2.
        *req.version_mut() = http::Version::HTTP_2;
        let channel = self.channel.clone();
        Box::pin(async move {
            let mut channel = channel;
            let result = async {
                std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
                channel.call(req).await
            }
            .await;
            Ok(result.unwrap_or_else(|e| {
                // The detail is for the operator's log, not the browser.
                tracing::warn!(error = %e, "coordinator unreachable");
                status_response(tonic::Status::unavailable(
                    "the gateway cannot reach the coordinator; try again shortly",
                ))
            }))
        })
    }
}

/// `RESOURCE_EXHAUSTED` with `google.rpc.RetryInfo`, as the coordinator's own limits answer.
fn rate_limited(wait: Duration) -> Response<Body> {
    use tonic_types::{ErrorDetails, StatusExt};
    let wait = wait.max(Duration::from_millis(1));
    let status = tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!("too many calls from this address through the gateway; retry in {} ms", wait.as_millis()),
        ErrorDetails::with_retry_info(Some(wait)),
    );
    status_response(status)
}

/// A trailers-only gRPC response carrying `status` (tonic-web turns it into grpc-web).
pub fn status_response(status: tonic::Status) -> Response<Body> {
    status.into_http()
}
