//! Several coordinator replicas on one etcd (`--ha`, with `--store etcd`):
//! one leader, the others warm standbys.
//!
//! - Every replica campaigns in an etcd election (`<prefix>election`) under a
//!   lease of `--leader-lease` (3 s), kept alive by a supervised task: a
//!   keepalive that fails, or comes back with the lease gone, means the
//!   leadership is lost.
//! - The winner loads the state from etcd and serves exactly like a single
//!   coordinator, with every write fenced on the creation revision of its
//!   election key ([`crate::store::Fence`]): once another replica has won, a
//!   deposed leader cannot write anything, even one paused for a while.
//!   Known nodes get the restart grace to reconnect instead of being
//!   re-queued at once.
//! - A leader that loses its lease stops at once (exit code 75), like a
//!   Kubernetes controller manager: its supervisor starts it again as a
//!   standby. A leader stopped with SIGTERM resigns, so a standby takes over
//!   without waiting for the lease to expire.
//! - A standby listens on the same address and forwards every call to the
//!   leader as it is (Nomad's followers do the same): reads, writes, watches
//!   and node sessions work through any replica, and the leader
//!   authenticates and authorizes them. A node's identity is its client
//!   certificate, and TLS ends at the standby, so a forwarded session goes
//!   with the standby's replica certificate and the node's certificate in a
//!   header the leader believes only from a replica
//!   ([`crate::identity::FORWARDED_CLIENT_CERT`]).
//!
//! - Each replica records the node sessions it holds — relayed ones on a
//!   standby, direct ones on the leader — in etcd under its own lease
//!   ([`sessions`]): heartbeats never reach etcd, only session opens and
//!   closes do (KEP-589's point), and a replica that dies takes its records
//!   with its lease. The leader follows the records with a watch and names
//!   the replica on each node (`Node.session_replica`).
//!
//! What is not built yet: standbys serving reads and watches from a follower
//! copy of the state (they forward them), and standbys terminating the
//! session protocol themselves (the leader decides liveness from the
//! heartbeats a standby relays; the standby holds the node's connection).

pub mod sessions;

use crate::config::Config;
use crate::store::{EtcdStore, Fence};
use etcd_client::{Client, ResignOptions};
use sessions::{Held, SessionDirectory, SessionOwners};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Exit code of a leader that lost its lease (EX_TEMPFAIL: start it again).
pub const EXIT_LOST_LEADERSHIP: i32 = 75;

/// This replica's leadership, while it lasts.
pub struct Leadership {
    /// What its writes are conditional on.
    pub fence: Fence,
    lost: CancellationToken,
    client: Client,
    leader: etcd_client::LeaderKey,
    lease: i64,
    keepalive: tokio::task::JoinHandle<()>,
}

impl Leadership {
    /// Cancelled when the lease is lost.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Gives the leadership up (a standby takes over at once).
    pub async fn resign(mut self) {
        self.keepalive.abort();
        let _ = self.client.resign(Some(ResignOptions::new().with_leader(self.leader.clone()))).await;
        let _ = self.client.lease_revoke(self.lease).await;
    }
}

fn election(prefix: &str) -> String {
    format!("{prefix}election")
}

/// Waits until this replica (`me`: the URL clients should use) is the leader.
pub async fn campaign(store: &EtcdStore, prefix: &str, me: &str, ttl: Duration) -> anyhow::Result<Leadership> {
    let mut client = store.client().clone();
    let ttl_s = ttl.as_secs().max(2) as i64;
    let lease = client.lease_grant(ttl_s, None).await?.id();
    let lost = CancellationToken::new();
    // The lease must stay alive while the campaign waits, too.
    let keepalive = tokio::spawn(keep_alive(client.clone(), lease, ttl, lost.clone()));
    let won = tokio::select! {
        r = client.campaign(election(prefix), me, lease) => r.map_err(anyhow::Error::from),
        _ = lost.cancelled() => Err(anyhow::anyhow!("the election lease was lost while campaigning")),
    };
    let leader =
        won.and_then(|w| w.leader().cloned().ok_or_else(|| anyhow::anyhow!("campaign answered without a leader key")));
    let leader = match leader {
        Ok(l) => l,
        Err(e) => {
            // A failed campaign may have left its candidate key: revoking the
            // lease deletes it, so that no orphan kept alive by a forgotten
            // keepalive can ever "win" the election.
            keepalive.abort();
            let _ = client.lease_revoke(lease).await;
            return Err(e);
        }
    };
    let fence = Fence { key: leader.key().to_vec(), create_revision: leader.rev() };
    info!(leader = me, revision = leader.rev(), "won the election: this replica leads");
    Ok(Leadership { fence, lost, client, leader, lease, keepalive })
}

/// Renews the lease every third of its TTL. A failed renewal stream (an
/// etcd member died, say) is opened again, on whichever member answers.
/// `lost` is cancelled when etcd says the lease is gone, or when no renewal
/// succeeded for twice the TTL (cut off from etcd). Not after one TTL: while
/// etcd elects a new leader of its own, renewals stall, and etcd extends
/// every lease when the new leader takes over. Leading a little too long is
/// safe: the store's writes are fenced, so a deposed leader changes nothing
/// and tells no node to do anything.
async fn keep_alive(mut client: Client, lease: i64, ttl: Duration, lost: CancellationToken) {
    let mut renewed = std::time::Instant::now();
    let limit = ttl * 2;
    let why = loop {
        let Some(left) = limit.checked_sub(renewed.elapsed()) else {
            break "no renewal for twice the lease TTL".to_string();
        };
        let stream = tokio::time::timeout(left, client.lease_keep_alive(lease)).await;
        let (mut keeper, mut responses) = match stream {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                warn!(error = %e, "lease keepalive stream failed; opening it again");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => continue,
        };
        let expired = loop {
            let Some(left) = limit.checked_sub(renewed.elapsed()) else { break false };
            // A send into a stream whose connection died can wait for ever: bounded too.
            match tokio::time::timeout(left, keeper.keep_alive()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(error = %e, "lease keepalive send failed");
                    break false;
                }
                Err(_) => {
                    warn!("lease keepalive send did not complete");
                    break false;
                }
            }
            match tokio::time::timeout(left, responses.message()).await {
                Ok(Ok(Some(r))) if r.ttl() > 0 => renewed = std::time::Instant::now(),
                Ok(Ok(Some(_))) => break true,
                other => {
                    warn!(outcome = ?other.map(|r| r.map(|_| ())), "lease keepalive answer missing");
                    break false;
                }
            }
            tokio::time::sleep(ttl / 3).await;
        };
        if expired {
            break "etcd says the lease expired".to_string();
        }
    };
    warn!(why, lease, "lease lost");
    lost.cancel();
}

/// The current leader's URL, if there is one.
pub async fn leader(store: &EtcdStore, prefix: &str) -> Option<String> {
    let mut client = store.client().clone();
    let r = client.leader(election(prefix)).await.ok()?;
    r.kv().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
}

/// Request header a standby adds to a call it forwards: a call that already
/// carries it is never forwarded again (at most one hop, so two replicas with
/// different ideas of the leader cannot bounce a call between them).
pub const FORWARDED_BY: &str = "fog-forwarded-by";
/// Response header on a forwarded call: the leader that answered it.
pub const FORWARDED_TO: &str = "fog-forwarded-to";

/// Response header of an admitted session that a standby relays: the node's id (what the
/// replica holding the session records in etcd).
pub const SESSION_NODE: &str = "fog-session-node";

/// A relayed session's response body, holding the session's ownership
/// record until the stream ends.
struct HeldBody<B> {
    inner: B,
    _held: Held,
}

impl<B: http_body::Body + Unpin> http_body::Body for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A standby's way to the leader: the leader's URL, followed with etcd's
/// election Observe ([`follow_leader`]), and channels to it, reopened when
/// the leader changes.
struct LeaderLink {
    store: EtcdStore,
    prefix: String,
    /// The leader as last observed (None until the first answer).
    leader: tokio::sync::watch::Receiver<Option<String>>,
    /// mTLS: the cluster CA (to check the leader's certificate) and this
    /// replica's client identity (for node sessions only: the leader refuses
    /// user calls that carry a client certificate).
    tls: Option<(String, tonic::transport::Identity)>,
    current: std::sync::Mutex<Option<Link>>,
    /// Records the node sessions this standby relays, under its own lease.
    owners: Arc<SessionOwners>,
}

/// Channels to one leader.
#[derive(Clone)]
struct Link {
    url: String,
    /// For user calls and joins: TLS without a client certificate.
    calls: tonic::transport::Channel,
    /// For node sessions: TLS with the replica's certificate.
    sessions: tonic::transport::Channel,
}

impl LeaderLink {
    async fn link(&self) -> Result<Link, tonic::Status> {
        let observed = self.leader.borrow().clone();
        let url = match observed {
            Some(url) => Some(url),
            None => leader(&self.store, &self.prefix).await,
        }
        .ok_or_else(|| tonic::Status::unavailable("no leader is elected right now; retry shortly"))?;
        let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(link) = current.as_ref().filter(|l| l.url == url) {
            return Ok(link.clone());
        }
        let bad = |e: &dyn std::fmt::Display| tonic::Status::unavailable(format!("leader address {url}: {e}"));
        let channel = |identity: Option<&tonic::transport::Identity>| -> Result<_, tonic::Status> {
            let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone())
                .map_err(|e| bad(&e))?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(2));
            if let Some((ca, _)) = &self.tls {
                let mut tls = tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca));
                if let Some(id) = identity {
                    tls = tls.identity(id.clone());
                }
                endpoint = endpoint.tls_config(tls).map_err(|e| bad(&e))?;
            }
            Ok(endpoint.connect_lazy())
        };
        let calls = channel(None)?;
        let sessions = match &self.tls {
            Some((_, id)) => channel(Some(id))?,
            None => calls.clone(),
        };
        let link = Link { url, calls, sessions };
        *current = Some(link.clone());
        Ok(link)
    }

    /// Forwards a call to the leader as it is (the leader authenticates and
    /// authorizes it), or answers `UNAVAILABLE` with the reason. A node
    /// session goes with this replica's certificate and the node's, which
    /// this replica's TLS handshake verified (see
    /// [`crate::identity::FORWARDED_CLIENT_CERT`]).
    async fn forward(&self, me: &str, req: http::Request<axum::body::Body>) -> http::Response<axum::body::Body> {
        use tower::Service;
        let refuse = |why: String| tonic::Status::unavailable(why).into_http::<axum::body::Body>();
        let link = match self.link().await {
            Ok(l) => l,
            Err(s) => return refuse(format!("this coordinator is a standby; {}", s.message())),
        };
        if req.headers().contains_key(FORWARDED_BY) {
            return refuse(format!("this coordinator is a standby; the leader is at {}", link.url));
        }
        let session = req.uri().path() == "/fog.v1.NodeService/Session";
        let (mut parts, body) = req.into_parts();
        parts.headers.remove(http::header::CONTENT_LENGTH);
        // Only this replica says which node a forwarded session is.
        parts.headers.remove(crate::identity::FORWARDED_CLIENT_CERT);
        if session && self.tls.is_some() {
            use base64::Engine;
            let leaf = parts
                .extensions
                .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
                .and_then(|t| t.peer_certs())
                .and_then(|c| c.first().map(|c| base64::engine::general_purpose::STANDARD.encode(c)));
            match leaf.map(|l| http::HeaderValue::from_str(&l)) {
                Some(Ok(v)) => parts.headers.insert(crate::identity::FORWARDED_CLIENT_CERT, v),
                _ => {
                    return tonic::Status::unauthenticated("a node session needs the node's client certificate")
                        .into_http();
                }
            };
        }
        if let Ok(v) = http::HeaderValue::from_str(me) {
            parts.headers.insert(FORWARDED_BY, v);
        }
        let req = http::Request::from_parts(parts, tonic::body::Body::new(body));
        let mut channel = if session { link.sessions } else { link.calls };
        let sent = async {
            std::future::poll_fn(|cx| channel.poll_ready(cx)).await?;
            channel.call(req).await
        };
        match sent.await {
            Ok(mut resp) => {
                if let Ok(v) = http::HeaderValue::from_str(&link.url) {
                    resp.headers_mut().insert(FORWARDED_TO, v);
                }
                // The leader admitted the session (a refusal has its
                // grpc-status in the headers): this replica holds it for as
                // long as the response stream lasts.
                let admitted = resp.headers().get(SESSION_NODE).and_then(|v| v.to_str().ok()).filter(|node| {
                    session
                        && !node.is_empty()
                        && resp.status() == http::StatusCode::OK
                        && !resp.headers().contains_key("grpc-status")
                });
                match admitted.map(|node| self.owners.hold(node)) {
                    Some(held) => resp.map(|b| axum::body::Body::new(HeldBody { inner: b, _held: held })),
                    None => resp.map(axum::body::Body::new),
                }
            }
            Err(e) => {
                warn!(leader = %link.url, error = %e, "standby could not forward a call to the leader");
                refuse(format!(
                    "this coordinator is a standby and cannot reach the leader at {}; retry shortly",
                    link.url
                ))
            }
        }
    }
}

/// Keeps `tx` at the election's current leader until `stop`: reads it, then
/// follows etcd's Observe stream (the election's leader changes). The
/// client does not resume a stream that ends or fails (an etcd member
/// dying, a compacted watch): then it reads the leader again and observes
/// anew, so nothing between the two is missed.
async fn follow_leader(
    store: EtcdStore,
    prefix: String,
    tx: tokio::sync::watch::Sender<Option<String>>,
    stop: CancellationToken,
) {
    loop {
        tx.send_replace(leader(&store, &prefix).await);
        let mut client = store.client().clone();
        match client.observe(election(&prefix)).await {
            Ok(mut stream) => loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    msg = stream.message() => match msg {
                        Ok(Some(r)) => {
                            let url = r.kv().map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
                            tx.send_replace(url);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            warn!(error = %e, "observing the election failed; reading the leader again");
                            break;
                        }
                    },
                }
            },
            Err(e) => warn!(error = %e, "cannot observe the election; retrying"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Serves as a standby until `stop`: every call, node sessions included, is
/// forwarded to the leader. With mTLS, only once the cluster CA exists.
async fn standby(
    cfg: &Config,
    store: &EtcdStore,
    prefix: &str,
    owners: Arc<SessionOwners>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut builder = tonic::transport::Server::builder();
    let mut tls = None;
    if let Some(settings) = &cfg.tls {
        match crate::server::standby_tls(settings, &crate::store::Store::load(store).await?)? {
            Some(t) => {
                builder = builder.tls_config(t.server)?;
                tls = Some((t.ca_pem, t.replica));
            }
            None => {
                info!("standby: no cluster CA yet (the first leader creates it); not listening");
                stop.cancelled().await;
                return Ok(());
            }
        }
    }
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(None);
    tokio::spawn(follow_leader(store.clone(), prefix.to_string(), leader_tx, stop.clone()));
    let link = Arc::new(LeaderLink {
        store: store.clone(),
        prefix: prefix.to_string(),
        leader: leader_rx,
        tls,
        current: std::sync::Mutex::new(None),
        owners,
    });
    let me: Arc<str> = cfg.advertise_url.clone().into();
    let forward = move |req: http::Request<axum::body::Body>| {
        let (link, me) = (link.clone(), me.clone());
        async move { link.forward(&me, req).await }
    };
    let routes = tonic::service::Routes::from(axum::Router::new().fallback(forward));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    info!(addr = %cfg.listen, "standby: forwarding calls and node sessions to the leader");
    builder.add_routes(routes).serve_with_incoming_shutdown(incoming, stop.cancelled()).await?;
    Ok(())
}

/// Runs one replica until SIGINT/SIGTERM (`signal`): standby, then leader.
/// Returns the process exit code.
pub async fn run(cfg: Config, signal: impl std::future::Future<Output = ()>) -> i32 {
    let crate::config::StoreChoice::Etcd { endpoints, prefix, tls } = cfg.store.clone() else {
        tracing::error!("--ha needs --store etcd");
        return crate::config::EXIT_CONFIG;
    };
    let store = match EtcdStore::connect(&endpoints, &prefix, tls.as_ref()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach etcd");
            return 1;
        }
    };
    let me = cfg.advertise_url.clone();
    tokio::pin!(signal);
    // The sessions this replica holds, as standby and as leader, under its own lease.
    let owners = SessionOwners::start(&store, &prefix, &me, cfg.leader_lease);
    // Standby until elected.
    let stop_standby = CancellationToken::new();
    let mut standby_task = {
        let (cfg, store, prefix, stop) = (cfg.clone(), store.clone(), prefix.clone(), stop_standby.clone());
        let owners = owners.clone();
        tokio::spawn(async move {
            if let Err(e) = standby(&cfg, &store, &prefix, owners, stop).await {
                warn!(error = %format!("{e:#}"), "standby listener failed");
            }
        })
    };
    // An election that fails (etcd unreachable, a member dying) is tried again.
    let campaign_until_won = async {
        loop {
            match campaign(&store, &prefix, &me, cfg.leader_lease).await {
                Ok(l) => break l,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "election failed; campaigning again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    };
    let leadership = tokio::select! {
        won = campaign_until_won => won,
        _ = &mut signal => {
            standby_task.abort();
            owners.close().await;
            return 0;
        }
    };
    // Open connections (a client's idle channel) must not hold the port: a
    // second to drain, then the standby is cut off.
    stop_standby.cancel();
    if tokio::time::timeout(Duration::from_secs(1), &mut standby_task).await.is_err() {
        standby_task.abort();
        let _ = standby_task.await;
    }
    let fenced: Arc<dyn crate::store::Store> = Arc::new(store.fenced(leadership.fence.clone()));
    let replica = crate::server::Replica {
        owners: owners.clone(),
        directory: SessionDirectory::start(&store, &prefix, leadership.lost()),
    };
    let running = match crate::server::start_replica(cfg, fenced, std::time::Instant::now(), Some(replica)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "could not start as leader");
            leadership.resign().await;
            owners.close().await;
            return 1;
        }
    };
    let lost = leadership.lost();
    tokio::select! {
        _ = &mut signal => {
            info!("shutting down; resigning the leadership");
            running.stop().await;
            leadership.resign().await;
            owners.close().await;
            0
        }
        _ = lost.cancelled() => {
            // Another replica may already lead: stop at once (our writes are fenced anyway).
            tracing::error!("lost the leadership; stopping so that the supervisor restarts this replica as a standby");
            EXIT_LOST_LEADERSHIP
        }
    }
}
