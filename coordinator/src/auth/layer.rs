//! The tower layer in front of every gRPC service: it looks the RPC up in the
//! [`policy`](super::policy) table, applies the per-address budget, checks the
//! credential the rule asks for, the role, the per-identity budget and the
//! concurrency caps, and hands the [`Principal`] to the handler in the
//! request's extensions. Everything is decided here, in one place; handlers
//! never check roles.

use super::Role;
use super::limits::{self, Exhausted, Limits};
use super::policy::{self, Access, Budget};
use super::{AuthView, Principal};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, oneshot, watch};
use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::debug;

/// Builds [`AuthService`]s around the router.
#[derive(Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

struct Shared {
    view: watch::Receiver<Arc<AuthView>>,
    limits: Arc<Limits>,
}

impl AuthLayer {
    /// A layer checking credentials against the engine's published view.
    pub fn new(view: watch::Receiver<Arc<AuthView>>, limits: Arc<Limits>) -> AuthLayer {
        AuthLayer { shared: Arc::new(Shared { view, limits }) }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, shared: self.shared.clone() }
    }
}

/// The service the layer wraps around the router.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

const NODE_SERVICE: &str = "/fog.v1.NodeService/";

/// A status for a request over a limit: `RESOURCE_EXHAUSTED` with `google.rpc.RetryInfo`.
pub fn exhausted(e: Exhausted) -> Status {
    let retry = e.retry_after.max(std::time::Duration::from_millis(1));
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("rate limit: {} exceeded; retry after {} ms", e.what, retry.as_millis()),
        ErrorDetails::with_retry_info(Some(retry)),
    )
}

/// What an admitted request holds while it runs.
#[derive(Default)]
struct Admission {
    principal: Option<Principal>,
    /// Released when the handler has answered (unary).
    inflight: Vec<OwnedSemaphorePermit>,
    /// Released when the response stream ends (watches).
    stream: Option<OwnedSemaphorePermit>,
    /// Fires when the credential of a watch stops being valid.
    revoked: Option<oneshot::Receiver<Status>>,
}

/// Ends a watch when its credential expires or stops being valid (session
/// ended, user deleted or demoted, API token revoked): re-checked against
/// every new auth view. Returns the receiver the response body listens to.
fn watch_credential(
    mut view: watch::Receiver<Arc<AuthView>>,
    token: String,
    required: Role,
    expires_at_ms: u64,
) -> oneshot::Receiver<Status> {
    let (mut tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(std::time::Duration::from_millis(expires_at_ms.saturating_sub(now_ms())));
        tokio::pin!(deadline);
        view.mark_unchanged();
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = &mut deadline => {
                    let _ = tx.send(Status::unauthenticated("credential expired: refresh it and watch again"));
                    return;
                }
                changed = view.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let verdict = view.borrow_and_update().authenticate(&token, now_ms());
                    match verdict {
                        Ok(p) if p.role >= required => {}
                        Ok(_) => {
                            let _ = tx.send(Status::permission_denied("role lowered; the watch ends"));
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Status::unauthenticated(e.to_string()));
                            return;
                        }
                    }
                }
            }
        }
    });
    rx
}

fn peer(req: &http::Request<Body>) -> (Option<IpAddr>, bool) {
    let ext = req.extensions();
    if let Some(tls) = ext.get::<TlsConnectInfo<TcpConnectInfo>>() {
        let certs = tls.peer_certs().is_some_and(|c| !c.is_empty());
        return (tls.get_ref().remote_addr().map(|a| a.ip()), certs);
    }
    (ext.get::<TcpConnectInfo>().and_then(|c| c.remote_addr()).map(|a| a.ip()), false)
}

fn bearer(req: &http::Request<Body>) -> Result<Option<&str>, Status> {
    let Some(v) = req.headers().get(http::header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| Status::unauthenticated("authorization header is not ASCII"))?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(Status::unauthenticated("authorization header must be `Bearer <token>`")),
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Shared {
    fn admit(&self, req: &http::Request<Body>) -> Result<Admission, Status> {
        let path = req.uri().path();
        let Some(rule) = policy::rule(path) else {
            return Err(Status::permission_denied(format!("{path}: no access rule for this method")));
        };
        let (ip, has_client_cert) = peer(req);
        let token = bearer(req)?;
        if token.is_some() && path.starts_with(NODE_SERVICE) {
            return Err(Status::permission_denied(
                "user and API tokens are not valid on NodeService; nodes authenticate with their certificate or a join token",
            ));
        }
        match rule.access {
            Access::Public => {
                let mut admission = Admission::default();
                if let Some(ip) = ip {
                    self.limits.check_address(ip, rule.budget).map_err(exhausted)?;
                    if rule.budget == Budget::PublicStream {
                        admission.stream = Some(self.limits.stream_slot(&limits::address_key(ip)).map_err(exhausted)?);
                    }
                }
                Ok(admission)
            }
            Access::Node => {
                if let Some(ip) = ip {
                    self.limits.check_address(ip, rule.budget).map_err(exhausted)?;
                }
                Ok(Admission::default())
            }
            Access::User(required) => {
                if let Some(ip) = ip {
                    self.limits.check_address(ip, rule.budget).map_err(exhausted)?;
                }
                if has_client_cert {
                    return Err(Status::permission_denied(
                        "node certificates are valid only on NodeService; people and programs use a bearer token",
                    ));
                }
                let token = token.ok_or_else(|| {
                    Status::unauthenticated(
                        "missing credentials: send `authorization: Bearer <token>` (fogctl login, or an API token)",
                    )
                })?;
                let principal = self.view.borrow().authenticate(token, now_ms()).map_err(|e| {
                    debug!(%path, error = %e, "refused credentials");
                    Status::unauthenticated(e.to_string())
                })?;
                if principal.role < required {
                    return Err(Status::permission_denied(format!(
                        "{path} requires role {}; {} has role {}",
                        required.name(),
                        principal.subject,
                        principal.role.name()
                    )));
                }
                self.limits.check_identity(&principal.subject, rule.budget).map_err(exhausted)?;
                let mut admission = Admission::default();
                if rule.budget == Budget::Watch {
                    admission.stream = Some(self.limits.stream_slot(&principal.subject).map_err(exhausted)?);
                    admission.revoked =
                        Some(watch_credential(self.view.clone(), token.to_string(), required, principal.expires_at_ms));
                } else {
                    admission.inflight = self.limits.inflight_slots(&principal.subject).map_err(exhausted)?;
                }
                admission.principal = Some(principal);
                Ok(admission)
            }
        }
    }
}

impl<S> tower::Service<http::Request<Body>> for AuthService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // The clone is the one not yet polled ready; keep it for next time.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        match self.shared.admit(&req) {
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
            Ok(admission) => {
                if let Some(p) = admission.principal {
                    req.extensions_mut().insert(p);
                }
                let (inflight, stream, revoked) = (admission.inflight, admission.stream, admission.revoked);
                Box::pin(async move {
                    let resp = inner.call(req).await?;
                    drop(inflight);
                    Ok(match stream {
                        Some(permit) => {
                            resp.map(|b| Body::new(Held { inner: b, _permit: permit, revoked, ended: false }))
                        }
                        None => resp,
                    })
                })
            }
        }
    }
}

/// A response body that holds a permit until the stream ends, and ends the
/// stream with the given status when its credential is revoked.
struct Held {
    inner: Body,
    _permit: OwnedSemaphorePermit,
    revoked: Option<oneshot::Receiver<Status>>,
    ended: bool,
}

impl http_body::Body for Held {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(rx) = &mut this.revoked {
            match Pin::new(rx).poll(cx) {
                Poll::Ready(Ok(status)) => {
                    this.ended = true;
                    let mut trailers = http::HeaderMap::new();
                    let _ = status.add_header(&mut trailers);
                    return Poll::Ready(Some(Ok(http_body::Frame::trailers(trailers))));
                }
                // The watcher task is gone: nothing more to watch for.
                Poll::Ready(Err(_)) => this.revoked = None,
                Poll::Pending => {}
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
