//! The etcd backend of [`Store`] (`--store etcd`): the same records as the
//! embedded store, prost-encoded under `<prefix>tasks/<id>` (active),
//! `<prefix>finished/<id>`,
//! `<prefix>nodes/<id>` and `<prefix>meta/<key>`.
//!
//! - A batch is one etcd transaction: atomic, and durable on a quorum of
//!   members when it returns. etcd refuses two operations on one key in a
//!   transaction, so a batch is first reduced to its final effect per key
//!   (the last mutation of each key wins, which is what applying them in
//!   order leaves behind).
//! - etcd caps a transaction at `--max-txn-ops` operations (128 by default)
//!   and a request at `--max-request-bytes` (1.5 MiB); the writer's group
//!   commit makes batches of up to 4,096 mutations (a finished task is up to
//!   three operations: the move and its request id), so Fogplane's etcd needs
//!   `--max-txn-ops 16384 --max-request-bytes 33554432` (the error says so).
//! - With a [`Fence`], every transaction also compares the leader key's
//!   creation revision: once another replica holds the leadership, this one's
//!   writes fail with [`StoreError::Fenced`] and change nothing.
//! - `load_recent` reads every table at one revision, in pages; of
//!   `<prefix>finished/` only the first keys, which are the newest (the ids
//!   are stored inverted, see `finished_key`). `<prefix>requests/<id>` maps
//!   a finished task's request id to its task id.
//! - TLS ([`EtcdTls`]): `https://` endpoints, etcd's CA, and a client
//!   certificate when etcd asks for one (`--client-cert-auth`).

use super::{Mutation, Snapshot, Store, StoreError};
use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use fog_proto::v1::{Node, Task};
use prost::Message;
use std::collections::BTreeMap;

/// The leadership a replica's writes are conditional on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The election's leader key.
    pub key: Vec<u8>,
    /// Its creation revision when this replica won.
    pub create_revision: i64,
}

/// TLS to etcd: the CA that signed etcd's serving certificates (the system
/// roots are not used: etcd clusters run their own CA), and a client
/// certificate and key (PEM) when etcd requires one.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdTls {
    /// The CA certificate(s), PEM.
    pub ca_pem: String,
    /// Client certificate and key, PEM.
    pub identity: Option<(String, String)>,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("EtcdTls").field("client_certificate", &self.identity.is_some()).finish_non_exhaustive()
    }
}

/// Tasks, nodes and metadata in etcd.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    prefix: String,
    fence: Option<Fence>,
}

/// Keys read per range request in `load`.
const PAGE: i64 = 5_000;

fn backend(e: etcd_client::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("too many operations in txn request") || text.contains("request is too large") {
        StoreError::Backend(format!(
            "{text} (Fogplane's etcd needs --max-txn-ops 16384 --max-request-bytes 33554432: the writer commits up to 4,096 mutations at once)"
        ))
    } else {
        StoreError::Backend(format!("etcd: {text}"))
    }
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (e.g. `http://127.0.0.1:2379`, or
    /// `https://` with `tls`); every key lives under `prefix` (e.g.
    /// `/fogplane/`), so clusters can share an etcd. Checks that etcd answers.
    pub async fn connect(endpoints: &[String], prefix: &str, tls: Option<&EtcdTls>) -> Result<EtcdStore, StoreError> {
        if endpoints.is_empty() {
            return Err(StoreError::Invalid("no etcd endpoints".into()));
        }
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(5))
            .with_timeout(std::time::Duration::from_secs(10))
            .with_keep_alive(std::time::Duration::from_secs(10), std::time::Duration::from_secs(5));
        if let Some(tls) = tls {
            let mut t = etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(&tls.ca_pem));
            if let Some((cert, key)) = &tls.identity {
                t = t.identity(etcd_client::Identity::from_pem(cert, key));
            }
            options = options.with_tls(t);
        }
        let mut client = Client::connect(endpoints, Some(options)).await.map_err(backend)?;
        // Connecting is lazy; a read proves there is a cluster with a leader.
        client.get(prefix, Some(GetOptions::new().with_count_only())).await.map_err(backend)?;
        Ok(EtcdStore { client, prefix: prefix.to_string(), fence: None })
    }

    /// The same store, writing only while `fence` holds.
    pub fn fenced(&self, fence: Fence) -> EtcdStore {
        EtcdStore { fence: Some(fence), ..self.clone() }
    }

    /// The etcd client (elections, leases, watches share its connection).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn key(&self, table: &str, id: &str) -> Vec<u8> {
        format!("{}{table}/{id}", self.prefix).into_bytes()
    }

    /// A finished task's key: `<prefix>finished/` then the id's bytes and a
    /// 0 byte, each inverted (255 − b), so the keys sort in reverse order of
    /// ids (newest first: ids are time-ordered). A plain range with a limit
    /// then reads the newest; etcd reads a whole range to sort it, limit or
    /// not.
    fn finished_key(&self, id: &str) -> Vec<u8> {
        let mut key = self.key("finished", "");
        key.extend(id.bytes().chain([0]).map(|b| 255 - b));
        key
    }

    /// One task record.
    async fn get(&self, key: Vec<u8>) -> Result<Option<Task>, StoreError> {
        let resp = self.client.kv_client().get(key, None).await.map_err(backend)?;
        let Some(item) = resp.kvs().first() else { return Ok(None) };
        Task::decode(item.value())
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", String::from_utf8_lossy(item.key()))))
    }

    /// Up to `limit` records of `table` in key order, at `revision` (0: the
    /// current one, which is then set), in pages.
    async fn scan(
        &self,
        table: &str,
        revision: &mut i64,
        limit: usize,
    ) -> Result<Vec<etcd_client::KeyValue>, StoreError> {
        let mut kv = self.client.kv_client();
        let start = self.key(table, "");
        let end = prefix_end(&start);
        let mut from = start;
        let mut out = Vec::new();
        while out.len() < limit {
            let page = PAGE.min(i64::try_from(limit - out.len()).unwrap_or(PAGE));
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(page);
            if *revision > 0 {
                options = options.with_revision(*revision);
            }
            let mut resp = kv.get(from.clone(), Some(options)).await.map_err(backend)?;
            if *revision == 0 {
                *revision = resp.header().map_or(0, |h| h.revision());
            }
            let more = resp.more();
            let kvs = resp.take_kvs();
            let Some(last) = kvs.last() else { break };
            from = last.key().to_vec();
            from.push(0);
            out.extend(kvs);
            if !more {
                break;
            }
        }
        Ok(out)
    }

    /// How many records `table` holds at `revision`.
    async fn count(&self, table: &str, revision: i64) -> Result<u64, StoreError> {
        let start = self.key(table, "");
        let options = GetOptions::new().with_range(prefix_end(&start)).with_count_only().with_revision(revision);
        let resp = self.client.kv_client().get(start, Some(options)).await.map_err(backend)?;
        Ok(u64::try_from(resp.count()).unwrap_or(0))
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn commit(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some(m) = batch.iter().find(|m| m.key().is_empty()) {
            return Err(StoreError::Invalid(format!("empty key in {m:?}")));
        }
        // The final value of each key (None: deleted), in key order.
        let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for m in batch {
            let (key, value) = match m {
                Mutation::PutTask(t) if super::is_finished(&t) => {
                    // Moved from the active tasks to the finished ones.
                    last.insert(self.key("tasks", &t.id), None);
                    if !t.request_id.is_empty() {
                        last.insert(self.key("requests", &t.request_id), Some(t.id.clone().into_bytes()));
                    }
                    (self.finished_key(&t.id), Some(t.encode_to_vec()))
                }
                Mutation::PutTask(t) => (self.key("tasks", &t.id), Some(t.encode_to_vec())),
                Mutation::DeleteTask(id) => {
                    last.insert(self.finished_key(&id), None);
                    (self.key("tasks", &id), None)
                }
                Mutation::PutNode(n) => (self.key("nodes", &n.id), Some(n.encode_to_vec())),
                Mutation::DeleteNode(id) => (self.key("nodes", &id), None),
                Mutation::PutMeta { key, value } => (self.key("meta", &key), Some(value)),
                Mutation::DeleteMeta(key) => (self.key("meta", &key), None),
            };
            last.insert(key, value);
        }
        let ops: Vec<TxnOp> = last
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => TxnOp::put(k, v, None),
                None => TxnOp::delete(k, None),
            })
            .collect();
        let mut txn = Txn::new();
        if let Some(f) = &self.fence {
            txn = txn.when([Compare::create_revision(f.key.clone(), CompareOp::Equal, f.create_revision)]);
        }
        let resp = self.client.kv_client().txn(txn.and_then(ops)).await.map_err(backend)?;
        if !resp.succeeded() {
            return Err(StoreError::Fenced(
                "this replica is no longer the leader (the leader key changed); the write was refused".into(),
            ));
        }
        Ok(())
    }

    async fn load_recent(&self, finished: usize) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot::default();
        let mut revision = 0;
        let corrupt =
            |key: &[u8], e: prost::DecodeError| StoreError::Corrupt(format!("{}: {e}", String::from_utf8_lossy(key)));
        for item in self.scan("tasks", &mut revision, usize::MAX).await? {
            snapshot.tasks.push(Task::decode(item.value()).map_err(|e| corrupt(item.key(), e))?);
        }
        // Newest first: the keys sort in reverse order of task ids.
        let mut newest = Vec::new();
        for item in self.scan("finished", &mut revision, finished).await? {
            newest.push(Task::decode(item.value()).map_err(|e| corrupt(item.key(), e))?);
        }
        let total = self.count("finished", revision).await?;
        snapshot.finished_not_loaded = total.saturating_sub(newest.len() as u64);
        snapshot.tasks.extend(newest);
        snapshot.tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        for item in self.scan("nodes", &mut revision, usize::MAX).await? {
            snapshot.nodes.push(Node::decode(item.value()).map_err(|e| corrupt(item.key(), e))?);
        }
        let meta = self.key("meta", "").len();
        for item in self.scan("meta", &mut revision, usize::MAX).await? {
            let key = String::from_utf8_lossy(&item.key()[meta..]).into_owned();
            snapshot.meta.push((key, item.value().to_vec()));
        }
        Ok(snapshot)
    }

    async fn get_task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        // Finished first: a task moves from active to finished, never back,
        // so a move between the two reads cannot hide it.
        if let Some(t) = self.get(self.finished_key(id)).await? {
            return Ok(Some(t));
        }
        self.get(self.key("tasks", id)).await
    }

    async fn task_for_request(&self, request_id: &str) -> Result<Option<Task>, StoreError> {
        let resp = self.client.kv_client().get(self.key("requests", request_id), None).await.map_err(backend)?;
        let Some(id) = resp.kvs().first() else { return Ok(None) };
        self.get(self.finished_key(&String::from_utf8_lossy(id.value()))).await
    }

    fn backend(&self) -> &'static str {
        "etcd"
    }
}

/// The smallest key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
