//! `fog.v1.NodeService`: the agents' session stream.
//!
//! The first message must be a hello. In insecure dev mode the node's
//! identity is the hello's `node_id`; with mTLS (the agent issue) it will come
//! only from the verified client certificate. After the hello, a reader task
//! turns each inbound message into an engine event; the engine answers through
//! the session's bounded outbound queue.

use super::validate::Violations;
use super::{ApiError, ask};
use crate::convert;
use crate::engine::session::{RegionNames, SessionEventKind, heartbeat_state, outcome};
use crate::engine::{Command, EngineHandle, SessionEvent, SessionOpen};
use crate::identity::{self, IdentityContext};
use fog_core::domain::NodeId;
use fog_core::registry::NodeRegistration;
use fog_proto::v1 as pb;
use fog_proto::v1::node_service_server::NodeService;
use fog_proto::v1::session_request::Msg;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tracing::debug;

/// How long a new session may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The node service.
pub struct NodeApi {
    engine: EngineHandle,
    session_queue: usize,
    /// Messages per second and burst one session may send; a session over it is closed.
    session_budget: (std::num::NonZeroU32, std::num::NonZeroU32),
    /// One clock for every session's budget: making a `quanta` clock
    /// calibrates it (CPUID and a TSC read loop), which cost 14 % of the
    /// coordinator's CPU in a reconnect storm when each session made its own.
    clock: governor::clock::QuantaClock,
    next_session: AtomicU64,
    identity: Option<Arc<IdentityContext>>,
    /// With several replicas: records the sessions this replica holds itself.
    owners: Option<Arc<crate::ha::sessions::SessionOwners>>,
}

impl NodeApi {
    /// A service over the engine; `identity` is None in insecure dev mode.
    pub fn new(
        engine: EngineHandle,
        session_queue: usize,
        identity: Option<Arc<IdentityContext>>,
        limits: &crate::auth::LimitSettings,
    ) -> NodeApi {
        let nz = |v: u32| std::num::NonZeroU32::new(v.max(1)).expect("positive");
        let session_budget = (nz(limits.session_msg_rate), nz(limits.session_msg_burst.max(limits.session_msg_rate)));
        NodeApi {
            engine,
            session_queue,
            session_budget,
            clock: governor::clock::QuantaClock::default(),
            next_session: AtomicU64::new(1),
            identity,
            owners: None,
        }
    }

    /// Records the sessions this replica holds (not those a standby relays:
    /// the standby records those under its own lease).
    pub fn with_owners(mut self, owners: Option<Arc<crate::ha::sessions::SessionOwners>>) -> NodeApi {
        self.owners = owners;
        self
    }

    /// The node a session speaks for: from the verified client certificate
    /// with mTLS (the hello may only repeat it), from the hello in insecure
    /// dev mode. Returns the id and the certificate serial.
    /// The node id, and its certificate's serial and expiry (none in insecure dev mode).
    fn identify<T>(
        &self,
        req: &Request<T>,
        hello: &pb::Hello,
    ) -> Result<(String, Option<(String, std::time::SystemTime)>), ApiError> {
        let Some(ctx) = &self.identity else {
            return Ok((hello.node_id.clone(), None));
        };
        let certs = req
            .peer_certs()
            .ok_or_else(|| ApiError::Unauthenticated("a node session needs the node's client certificate".into()))?;
        let leaf = certs.first().ok_or_else(|| ApiError::Unauthenticated("no client certificate presented".into()))?;
        // A standby forwarding a node's session: the node's certificate (which
        // the standby's handshake verified against the same CA) rides in a
        // header, believed only because the peer is a replica.
        let forwarded;
        let leaf: &[u8] = if identity::is_replica(leaf, ctx.trust_domain()) {
            use base64::Engine;
            let header = req.metadata().get(identity::FORWARDED_CLIENT_CERT).ok_or_else(|| {
                ApiError::Unauthenticated("a replica forwarding a session must send the node's certificate".into())
            })?;
            forwarded = base64::engine::general_purpose::STANDARD
                .decode(header.as_bytes())
                .map_err(|_| ApiError::Unauthenticated(format!("{}: not base64", identity::FORWARDED_CLIENT_CERT)))?;
            &forwarded
        } else {
            leaf
        };
        let who = identity::node_identity(leaf, ctx.trust_domain())
            .map_err(|e| ApiError::Unauthenticated(format!("client certificate: {e}")))?;
        if !hello.node_id.is_empty() && hello.node_id != who.node_id {
            return Err(ApiError::PermissionDenied(format!(
                "this certificate is node {}; it cannot speak for node {}",
                who.node_id, hello.node_id
            )));
        }
        Ok((who.node_id, Some((who.serial_hex, who.not_after))))
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<pb::SessionResponse, Status>> + Send>>;

/// A (task id, attempt number) pair a node reports.
pub type AttemptKey = (Arc<str>, u64);

/// Validates a hello and turns it into a registration.
pub fn registration(h: pb::Hello) -> Result<(NodeRegistration, Vec<AttemptKey>), ApiError> {
    let mut v = Violations::declared_at("hello", &h);
    v.id("hello.node_id", &h.node_id);
    v.max_len("hello.name", &h.name, 128);
    v.enum_value::<pb::NodeType>("hello.node_type", h.node_type, true);
    v.labels("hello.labels", &h.labels, false);
    v.max_len("hello.agent_version", &h.agent_version, 128);
    if let Some(l) = &h.location {
        v.location("hello.location", l);
    }
    v.max_items("hello.running", &h.running, 10_000);
    if h.capacity.is_none() {
        v.add("hello.capacity", "is required");
    }
    v.finish()?;
    let running = h.running.iter().map(|a| (Arc::from(a.task_id.as_str()), a.attempt)).collect();
    let id: NodeId = Arc::from(h.node_id.as_str());
    let reg = NodeRegistration {
        name: if h.name.is_empty() { h.node_id.clone() } else { h.name },
        id,
        node_type: convert::node_type(h.node_type),
        capacity: convert::resources(h.capacity.as_ref()),
        location: convert::location(h.location.as_ref()),
        labels: h.labels.into_iter().map(|l| (l.key, l.value)).collect(),
        agent_version: h.agent_version,
        supports_onion_routing: h.supports_onion_routing,
    };
    Ok((reg, running))
}

/// Turns one inbound message into a session event (None for messages the
/// engine need not see). `names` is the session's cache of region names.
pub fn session_event(msg: Msg, names: &mut RegionNames) -> Result<Option<SessionEventKind>, ApiError> {
    Ok(Some(match msg {
        Msg::Hello(_) => return Err(ApiError::field("hello", "only the first message may be a hello")),
        Msg::Heartbeat(h) => {
            let mut v = Violations::declared_at("heartbeat", &h);
            v.max_items("heartbeat.running", &h.running, 10_000);
            if h.region_rtt_ms.len() > 64 {
                v.add("heartbeat.region_rtt_ms", "must have at most 64 entries");
            }
            v.finish()?;
            SessionEventKind::Heartbeat(heartbeat_state(&h, names))
        }
        Msg::TaskUpdate(u) => {
            Violations::declared_at("task_update", &u).finish()?;
            let a = u.attempt.ok_or_else(|| ApiError::field("task_update.attempt", "is required"))?;
            if !u.running {
                return Ok(None);
            }
            SessionEventKind::Running(Arc::from(a.task_id.as_str()), a.attempt)
        }
        Msg::TaskResult(r) => {
            Violations::declared_at("task_result", &r).finish()?;
            let a = r.attempt.clone().ok_or_else(|| ApiError::field("task_result.attempt", "is required"))?;
            SessionEventKind::Result(Arc::from(a.task_id.as_str()), a.attempt, outcome(&r), r.traceparent.clone())
        }
        Msg::Pong(p) => SessionEventKind::Pong(p.nonce),
        Msg::RenewCertificate(r) => {
            Violations::declared_at("renew_certificate", &r).finish()?;
            if r.csr_der.is_empty() || r.csr_der.len() > 16 * 1024 {
                return Err(ApiError::field("renew_certificate.csr_der", "must be 1 to 16384 bytes"));
            }
            // The engine ignores it in insecure dev mode (there is no CA).
            SessionEventKind::Renew(r.csr_der)
        }
    }))
}

#[tonic::async_trait]
impl NodeService for NodeApi {
    async fn join(&self, req: Request<pb::JoinRequest>) -> Result<Response<pb::JoinResponse>, Status> {
        let declared = Violations::declared(req.get_ref());
        let Some(ctx) = &self.identity else {
            return Err(ApiError::FailedPrecondition(
                "this coordinator runs in insecure dev mode: nodes connect without joining".into(),
            )
            .into());
        };
        let r = req.into_inner();
        let mut v = declared;
        let token = match identity::parse_join_token(r.token.trim()) {
            Ok(t) => Some(t),
            Err(e) => {
                v.add("token", e.to_string());
                None
            }
        };
        if !r.node_name.is_empty() {
            v.id("node_name", &r.node_name);
        }
        if r.csr_der.is_empty() || r.csr_der.len() > 16 * 1024 {
            v.add("csr_der", "must be 1 to 16384 bytes of DER");
        }
        v.finish()?;
        let token = token.expect("validated");
        if !token.ca_fingerprint.eq_ignore_ascii_case(&ctx.ca.fingerprint()) {
            return Err(ApiError::FailedPrecondition(
                "this join token was made for another coordinator (its CA fingerprint differs)".into(),
            )
            .into());
        }
        let (node_name, csr_der) = (r.node_name, r.csr_der);
        Ok(Response::new(ask(&self.engine, |reply| Command::Join { token, node_name, csr_der, reply }).await?))
    }

    type SessionStream = SessionStream;

    async fn session(&self, req: Request<Streaming<pb::SessionRequest>>) -> Result<Response<SessionStream>, Status> {
        // With mTLS, no certificate means no session: refuse before reading.
        if self.identity.is_some() && req.peer_certs().is_none() {
            return Err(ApiError::Unauthenticated("a node session needs the node's client certificate".into()).into());
        }
        // Keep the connection facts (peer certificates) while the stream is consumed.
        let (meta, ext, mut inbound) = req.into_parts();
        let relayed = meta.get(crate::ha::FORWARDED_BY).is_some();
        let req_for_identity = Request::from_parts(meta, ext, ());
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10 s"))??;
        let hello = match first.and_then(|m| m.msg) {
            Some(Msg::Hello(h)) => h,
            _ => return Err(ApiError::field("hello", "the first message of a session must be a hello").into()),
        };
        let (node_id, cert) = self.identify(&req_for_identity, &hello)?;
        let (cert_serial, cert_expires_at) = cert.unzip();
        let mut hello = hello;
        hello.node_id = node_id;
        let (registration, running) = registration(hello)?;
        let node = registration.id.clone();
        let session_id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = tokio::sync::mpsc::channel(self.session_queue);
        let (admit, admitted) = tokio::sync::oneshot::channel();
        let open = SessionOpen { session_id, registration, running, tx, cert_serial, cert_expires_at, reply: admit };
        self.engine.send_node(Command::SessionOpen(open)).await?;
        admitted.await.map_err(super::error::engine_gone)??;

        let engine = self.engine.clone();
        let held = self.owners.as_ref().filter(|_| !relayed).map(|o| o.hold(&node));
        // Only a standby relaying the session needs to be told the node's id.
        let session_node = relayed.then(|| tonic::metadata::MetadataValue::try_from(node.as_ref()));
        // A bad message ends the session with its status, so the node learns which field.
        let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<Status>();
        let mut fail_tx = Some(fail_tx);
        // One node cannot flood the engine's node lane: past its budget its
        // session ends (it reconnects, and opens are limited per address).
        // Not throttled by reading slower: an unread stream would hold the
        // HTTP/2 connection window that other sessions on the connection share.
        let (rate, burst) = self.session_budget;
        let budget = governor::RateLimiter::direct_with_clock(
            governor::Quota::per_second(rate).allow_burst(burst),
            self.clock.clone(),
        );
        // When the response stream is gone (the engine ended the session, or
        // the node went away), the reader stops and drops the request stream:
        // the HTTP/2 stream closes even if the node keeps sending, so a
        // graceful shutdown does not wait out its grace on open sessions.
        // The response stream holds the sender; the reader polls the
        // receiver each time no message is ready, i.e. after every heartbeat.
        // That is one atomic load, but of a line that went cold in the 5 s
        // since: 2.8 % of the coordinator's CPU samples at 100k nodes every
        // 5 s (a `CancellationToken`, whose check also takes a mutex, was
        // 3.4 %). Ending the reader from the response stream's drop instead
        // would save it. No span per session either: it was entered and
        // left on every poll of the reader, and it held ~200 bytes per node;
        // the reader's few log lines carry the node and session themselves.
        let (response_gone, mut response_ended) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            // Released when the session's reader ends.
            let _held = held;
            let mut names = RegionNames::default();
            loop {
                let next = tokio::select! {
                    biased;
                    next = inbound.message() => next,
                    // The engine ignores a close for a session it already ended.
                    _ = &mut response_ended => Ok(None),
                };
                let kind = match next {
                    Ok(Some(_)) if budget.check().is_err() => {
                        tracing::warn!(node.id = %node, session = session_id, "session message rate exceeded; closing the session");
                        if let Some(tx) = fail_tx.take() {
                            let _ = tx.send(Status::resource_exhausted(format!(
                                "more than {rate} session messages per second (burst {burst}); reconnect and slow down"
                            )));
                        }
                        SessionEventKind::Closed
                    }
                    Ok(Some(pb::SessionRequest { msg: Some(msg) })) => match session_event(msg, &mut names) {
                        Ok(Some(kind)) => kind,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(node.id = %node, session = session_id, error = %e, "bad session message; closing the session");
                            if let Some(tx) = fail_tx.take() {
                                let _ = tx.send(e.into());
                            }
                            SessionEventKind::Closed
                        }
                    },
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => SessionEventKind::Closed,
                };
                let closed = matches!(kind, SessionEventKind::Closed);
                let ev = SessionEvent { node: node.clone(), session_id, kind };
                if engine.session_event(ev).await.is_err() || closed {
                    break;
                }
            }
            debug!(node.id = %node, session = session_id, "session reader ended");
        });
        // Checked only once the engine has let go of the session: never waits.
        let mut fail_rx = fail_rx;
        let failure = futures::stream::poll_fn(move |_| {
            let _reader_stops_when_this_is_dropped = &response_gone;
            std::task::Poll::Ready(fail_rx.try_recv().ok().map(Err::<pb::SessionResponse, Status>))
        });
        let out = tokio_stream::wrappers::ReceiverStream::new(rx).map(|m| Ok(*m)).chain(failure);
        let mut response = Response::new(Box::pin(out) as SessionStream);
        // The session is admitted: a standby relaying it records that it holds it.
        if let Some(Ok(v)) = session_node {
            response.metadata_mut().insert(crate::ha::SESSION_NODE, v);
        }
        Ok(response)
    }
}
