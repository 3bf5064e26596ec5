//! Which replica holds each node session, recorded in etcd under that
//! replica's own lease (`<prefix>sessions/<node id>` → the replica's URL).
//!
//! This is how heartbeats stay out of etcd (Kubernetes' KEP-589 made the same
//! move with node leases): a session's heartbeats go to the leader's memory
//! over the session itself, and etcd sees one put when a session opens and one
//! delete when it closes. When a replica dies, its lease expires and etcd
//! deletes every record it held, so the directory never names a dead replica
//! for longer than the lease TTL.
//!
//! - [`SessionOwners`]: the writer side, one per replica process. Callers
//!   [`SessionOwners::hold`] a node for as long as its session lasts; the
//!   returned guard releases it. A background task owns the lease (kept
//!   alive like the election lease) and applies the changes in order; when
//!   the lease is lost or etcd fails, it takes a new lease and writes every
//!   session it holds again, so the records converge on the local truth.
//! - [`SessionDirectory`]: the reader side, on the leader. A copy of the
//!   records kept by an etcd watch that tracks revisions: the watch starts
//!   after the revision of the list it follows, and is listed again when etcd
//!   says the revision was compacted or the stream ends (the client does not
//!   resume watches by itself).

use super::keep_alive;
use crate::store::EtcdStore;
use etcd_client::{Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

fn sessions_prefix(prefix: &str) -> String {
    format!("{prefix}sessions/")
}

/// A change of one node's record, for the background task.
enum Change {
    Hold(String),
    Release(String),
}

/// The sessions this replica holds, recorded in etcd under its own lease.
pub struct SessionOwners {
    me: String,
    /// Node → the generation of its current hold (a node that reconnects to
    /// this replica before its old session is released keeps its record).
    held: Mutex<HashMap<String, u64>>,
    next: std::sync::atomic::AtomicU64,
    changes: mpsc::UnboundedSender<Change>,
    stop: CancellationToken,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for SessionOwners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOwners").field("me", &self.me).field("held", &self.held_count()).finish()
    }
}

/// A node held by this replica; dropping it releases the record.
#[derive(Debug)]
pub struct Held {
    owners: Arc<SessionOwners>,
    node: String,
    generation: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.owners.release(&self.node, self.generation);
    }
}

impl SessionOwners {
    /// Starts recording for the replica `me` (its URL) under a lease of `ttl`.
    pub fn start(store: &EtcdStore, prefix: &str, me: &str, ttl: Duration) -> Arc<Self> {
        let (changes, rx) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let owners = Arc::new(SessionOwners {
            me: me.to_string(),
            held: Mutex::new(HashMap::new()),
            next: std::sync::atomic::AtomicU64::new(1),
            changes,
            stop: stop.clone(),
            task: Mutex::new(None),
        });
        let weak = Arc::downgrade(&owners);
        let task = tokio::spawn(record(store.clone(), sessions_prefix(prefix), me.to_string(), ttl, weak, rx, stop));
        *owners.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        owners
    }

    /// Stops recording and revokes the lease, which deletes this replica's
    /// records at once (waits at most a second; otherwise they expire with
    /// the lease).
    pub async fn close(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }

    /// Records that this replica holds `node`'s session until the guard is dropped.
    pub fn hold(self: &Arc<Self>, node: &str) -> Held {
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.held.lock().unwrap_or_else(PoisonError::into_inner).insert(node.to_string(), generation);
        let _ = self.changes.send(Change::Hold(node.to_string()));
        Held { owners: self.clone(), node: node.to_string(), generation }
    }

    fn release(&self, node: &str, generation: u64) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.get(node) == Some(&generation) {
            held.remove(node);
            let _ = self.changes.send(Change::Release(node.to_string()));
        }
    }

    /// How many sessions this replica holds.
    pub fn held_count(&self) -> usize {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn snapshot(&self) -> Vec<String> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    fn holds(&self, node: &str) -> bool {
        self.held.lock().unwrap_or_else(PoisonError::into_inner).contains_key(node)
    }
}

/// The background task: a lease, kept alive; every change applied in order.
/// Any failure (lease lost, etcd unreachable) leads to a new lease and every
/// held session written again.
async fn record(
    store: EtcdStore,
    prefix: String,
    me: String,
    ttl: Duration,
    owners: std::sync::Weak<SessionOwners>,
    mut rx: mpsc::UnboundedReceiver<Change>,
    stop: CancellationToken,
) {
    let mut client = store.client().clone();
    let ttl_s = ttl.as_secs().max(2) as i64;
    'lease: loop {
        let lease = tokio::select! {
            _ = stop.cancelled() => return,
            r = client.lease_grant(ttl_s, None) => match r {
                Ok(l) => l.id(),
                Err(e) => {
                    warn!(error = %e, "cannot take a lease for session ownership; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let lost = CancellationToken::new();
        let _keeper = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(keep_alive(
            client.clone(),
            lease,
            ttl,
            lost.clone(),
        )));
        // Everything held now, under the new lease; changes queued meanwhile
        // are applied after (a release of a node written here deletes it).
        let Some(all) = owners.upgrade().map(|o| o.snapshot()) else { return };
        for node in &all {
            if let Err(e) = put(&mut client, &prefix, node, &me, lease).await {
                warn!(error = %e, "cannot record session ownership; taking a new lease");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'lease;
            }
        }
        info!(lease, sessions = all.len(), "session ownership recorded under this replica's lease");
        loop {
            let change = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = client.lease_revoke(lease).await;
                    return;
                }
                _ = lost.cancelled() => continue 'lease,
                c = rx.recv() => match c {
                    Some(c) => c,
                    None => {
                        let _ = client.lease_revoke(lease).await;
                        return;
                    }
                },
            };
            let result = match &change {
                Change::Hold(node) => match owners.upgrade() {
                    // Released again before it was written: nothing to write.
                    Some(o) if o.holds(node) => put(&mut client, &prefix, node, &me, lease).await,
                    _ => Ok(()),
                },
                Change::Release(node) => release(&mut client, &prefix, node, &me).await,
            };
            if let Err(e) = result {
                warn!(error = %e, "cannot update session ownership; taking a new lease and writing every session again");
                let _ = client.lease_revoke(lease).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue 'lease;
            }
        }
    }
}

async fn put(client: &mut etcd_client::Client, prefix: &str, node: &str, me: &str, lease: i64) -> anyhow::Result<()> {
    let key = format!("{prefix}{node}");
    client.put(key, me, Some(PutOptions::new().with_lease(lease))).await?;
    debug!(node, "session held");
    Ok(())
}

/// Deletes the record only if it still names this replica: the node may
/// already hold a session through another replica, whose record stays.
async fn release(client: &mut etcd_client::Client, prefix: &str, node: &str, me: &str) -> anyhow::Result<()> {
    let key = format!("{prefix}{node}");
    let txn = Txn::new()
        .when(vec![Compare::value(key.clone(), CompareOp::Equal, me)])
        .and_then(vec![TxnOp::delete(key, None)]);
    client.txn(txn).await?;
    debug!(node, "session released");
    Ok(())
}

/// A copy of every replica's session records, kept by a revision-tracking
/// etcd watch.
#[derive(Debug, Default)]
pub struct SessionDirectory {
    owners: RwLock<HashMap<String, String>>,
    /// The etcd revision the copy reflects.
    revision: std::sync::atomic::AtomicI64,
}

impl SessionDirectory {
    /// Starts following the records until `stop`.
    pub fn start(store: &EtcdStore, prefix: &str, stop: CancellationToken) -> Arc<Self> {
        Self::spawn(store, prefix, None, stop)
    }

    /// Starts with an empty copy and a watch from `revision` instead of a
    /// list: for tests of what happens when that revision was compacted.
    #[doc(hidden)]
    pub fn start_watching_from(store: &EtcdStore, prefix: &str, revision: i64, stop: CancellationToken) -> Arc<Self> {
        Self::spawn(store, prefix, Some(revision), stop)
    }

    fn spawn(store: &EtcdStore, prefix: &str, from: Option<i64>, stop: CancellationToken) -> Arc<Self> {
        let dir = Arc::new(SessionDirectory::default());
        tokio::spawn(follow(store.clone(), sessions_prefix(prefix), Arc::downgrade(&dir), from, stop));
        dir
    }

    /// The URL of the replica holding `node`'s session, if any.
    pub fn replica_of(&self, node: &str) -> Option<String> {
        self.owners.read().unwrap_or_else(PoisonError::into_inner).get(node).cloned()
    }

    /// The etcd revision the copy reflects (0 before the first list).
    pub fn revision(&self) -> i64 {
        self.revision.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// List, then watch from the revision after the list; list again when the
/// watch is compacted away, cancelled or ends. (`from`: skip the first list
/// and watch from that revision.)
async fn follow(
    store: EtcdStore,
    prefix: String,
    dir: std::sync::Weak<SessionDirectory>,
    mut from: Option<i64>,
    stop: CancellationToken,
) {
    let mut client = store.client().clone();
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        first = false;
        let mut revision = match from.take() {
            Some(r) => r - 1,
            None => {
                let listed = match client.get(prefix.as_str(), Some(GetOptions::new().with_prefix())).await {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(error = %e, "cannot list session owners; retrying");
                        continue;
                    }
                };
                let revision = listed.header().map_or(0, |h| h.revision());
                let copy: HashMap<String, String> = listed
                    .kvs()
                    .iter()
                    .map(|kv| (node_of(&prefix, kv.key()), String::from_utf8_lossy(kv.value()).into_owned()))
                    .collect();
                let Some(d) = dir.upgrade() else { return };
                *d.owners.write().unwrap_or_else(PoisonError::into_inner) = copy;
                d.revision.store(revision, std::sync::atomic::Ordering::Relaxed);
                revision
            }
        };
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = match client.watch(prefix.as_str(), Some(options)).await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot watch session owners; listing again");
                continue;
            }
        };
        loop {
            let msg = tokio::select! {
                _ = stop.cancelled() => return,
                m = stream.message() => m,
            };
            let resp = match msg {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "session owner watch failed; listing again");
                    break;
                }
            };
            if resp.compact_revision() > 0 || resp.canceled() {
                info!(
                    compacted = resp.compact_revision(),
                    reason = resp.cancel_reason(),
                    "session owner watch cancelled; listing again"
                );
                break;
            }
            let Some(d) = dir.upgrade() else { return };
            let mut owners = d.owners.write().unwrap_or_else(PoisonError::into_inner);
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let node = node_of(&prefix, kv.key());
                match ev.event_type() {
                    EventType::Put => owners.insert(node, String::from_utf8_lossy(kv.value()).into_owned()),
                    EventType::Delete => owners.remove(&node),
                };
                revision = revision.max(kv.mod_revision());
            }
            drop(owners);
            d.revision.store(revision, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

fn node_of(prefix: &str, key: &[u8]) -> String {
    String::from_utf8_lossy(key.get(prefix.len()..).unwrap_or_default()).into_owned()
}
