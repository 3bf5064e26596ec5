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
//! - A standby listens on the same address and answers every call with
//!   `UNAVAILABLE` naming the leader, so clients and agents (which walk their
//!   address list on failure) find it.
//!
//! What is not built yet: standbys serving reads and watches from a follower
//! copy of the state, and forwarding writes to the leader.

use crate::config::Config;
use crate::store::{EtcdStore, Fence};
use etcd_client::{Client, ResignOptions};
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
    warn!(why, "election lease lost");
    lost.cancel();
}

/// The current leader's URL, if there is one.
pub async fn leader(store: &EtcdStore, prefix: &str) -> Option<String> {
    let mut client = store.client().clone();
    let r = client.leader(election(prefix)).await.ok()?;
    r.kv().map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
}

/// Serves as a standby until `stop`: every call is answered `UNAVAILABLE`
/// with the leader's address. With mTLS, only once the cluster CA exists.
async fn standby(cfg: &Config, store: &EtcdStore, prefix: &str, stop: CancellationToken) -> anyhow::Result<()> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &cfg.tls {
        match crate::server::standby_tls(tls, &crate::store::Store::load(store).await?)? {
            Some(t) => builder = builder.tls_config(t)?,
            None => {
                info!("standby: no cluster CA yet (the first leader creates it); not listening");
                stop.cancelled().await;
                return Ok(());
            }
        }
    }
    let (store, prefix) = (Arc::new(store.clone()), prefix.to_string());
    let refuse = move || {
        let (store, prefix) = (store.clone(), prefix.clone());
        async move {
            let hint = match leader(&store, &prefix).await {
                Some(url) => format!("the leader is at {url}"),
                None => "no leader is elected right now; retry shortly".to_string(),
            };
            tonic::Status::unavailable(format!("this coordinator is a standby; {hint}")).into_http::<axum::body::Body>()
        }
    };
    let routes = tonic::service::Routes::from(axum::Router::new().fallback(refuse));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    info!(addr = %cfg.listen, "standby: answering UNAVAILABLE with the leader's address");
    builder.add_routes(routes).serve_with_incoming_shutdown(incoming, stop.cancelled()).await?;
    Ok(())
}

/// Runs one replica until SIGINT/SIGTERM (`signal`): standby, then leader.
/// Returns the process exit code.
pub async fn run(cfg: Config, signal: impl std::future::Future<Output = ()>) -> i32 {
    let crate::config::StoreChoice::Etcd { endpoints, prefix } = cfg.store.clone() else {
        tracing::error!("--ha needs --store etcd");
        return crate::config::EXIT_CONFIG;
    };
    let store = match EtcdStore::connect(&endpoints, &prefix).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot reach etcd");
            return 1;
        }
    };
    let me = cfg.advertise_url.clone();
    tokio::pin!(signal);
    // Standby until elected.
    let stop_standby = CancellationToken::new();
    let mut standby_task = {
        let (cfg, store, prefix, stop) = (cfg.clone(), store.clone(), prefix.clone(), stop_standby.clone());
        tokio::spawn(async move {
            if let Err(e) = standby(&cfg, &store, &prefix, stop).await {
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
    let running = match crate::server::start_on(cfg, fenced, std::time::Instant::now()).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "could not start as leader");
            leadership.resign().await;
            return 1;
        }
    };
    let lost = leadership.lost();
    tokio::select! {
        _ = &mut signal => {
            info!("shutting down; resigning the leadership");
            running.stop().await;
            leadership.resign().await;
            0
        }
        _ = lost.cancelled() => {
            // Another replica may already lead: stop at once (our writes are fenced anyway).
            tracing::error!("lost the leadership; stopping so that the supervisor restarts this replica as a standby");
            EXIT_LOST_LEADERSHIP
        }
    }
}
