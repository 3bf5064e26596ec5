//! The embedded backend: one redb file, `fog.redb`, and its write-ahead
//! log, `fog.wal`, in the data directory.
//!
//! redb is synchronous, so every call runs on tokio's blocking pool. A commit
//! applies the batch to redb as a non-durable transaction (held in memory by
//! redb), appends it to the log with one `fdatasync` (see [`super::wal`]) and
//! only then returns. A checkpoint — a durable redb commit with quick-repair,
//! so that opening after a crash loads the allocator state instead of
//! scanning the whole file — runs every second while there are new commits,
//! and whenever the log passes 32 MiB; the log then starts over. Opening
//! replays the log on top of the last checkpoint. Tables `tasks` (active),
//! `finished`, `nodes` and `meta` map ids to prost-encoded `fog.v1` messages
//! (meta: raw bytes); `requests` maps a finished task's request id to its id.

use super::wal::{Encoded, Wal};
use super::{Mutation, Snapshot, Store, StoreError};
use fog_proto::v1::Task;
use prost::Message;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Tasks in a final state (`tasks` holds the active ones).
const FINISHED: TableDefinition<&str, &[u8]> = TableDefinition::new("finished");
/// Request id → id of the finished task submitted with it.
const REQUESTS: TableDefinition<&str, &str> = TableDefinition::new("requests");
/// The store's own facts (not records): `layout`, the version of the tables' layout.
const STORE_INFO: TableDefinition<&str, u64> = TableDefinition::new("store_info");
/// Layout 2: finished tasks in `finished`, indexed in `requests`.
const LAYOUT: u64 = 2;

/// Name of the database file in the data directory.
pub const FILE_NAME: &str = "fog.redb";

/// A checkpoint runs this often while there are new commits.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// ... and as soon as the log holds this much.
const CHECKPOINT_BYTES: u64 = 32 << 20;

/// The embedded store.
#[derive(Clone)]
pub struct RedbStore {
    // Dropped first: the checkpoint thread has let go of the store before
    // `inner` goes, so the last handle's drop closes it, on the dropping
    // thread (a checkpoint in flight used to close it a moment later, after
    // the file lock was expected to be free).
    _checkpointer: Arc<Checkpointer>,
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    path: PathBuf,
    log: Mutex<Log>,
}

struct Log {
    wal: Wal,
    /// Set when an append failed after its batch reached redb in memory:
    /// from then on nothing is committed or checkpointed, so the batch that
    /// was reported as failed can never become durable. A restart replays the
    /// log on top of the last checkpoint, without it.
    failed: Option<String>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

pub(super) fn io_error(path: &Path, source: io::Error) -> StoreError {
    let path = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => StoreError::ReadOnly { path, source },
        _ => StoreError::Io { path, source },
    }
}

fn redb_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(source) => io_error(path, source),
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked(path.to_path_buf()),
        redb::Error::Corrupted(m) => StoreError::Corrupt(m),
        redb::Error::DatabaseClosed => StoreError::Closed,
        other => StoreError::Backend(other.to_string()),
    }
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`: the directory is created with
    /// mode 0700 and the file with 0600, as they hold the fleet's state.
    pub fn open(dir: &Path) -> Result<RedbStore, StoreError> {
        create_dir(dir)?;
        let path: PathBuf = dir.join(FILE_NAME);
        let fresh = !path.exists();
        create_file(&path)?;
        if fresh {
            super::wal::sync_dir(dir).map_err(|e| io_error(dir, e))?;
        }
        let db = Database::create(&path).map_err(|e| redb_error(&path, e))?;
        // The log is opened after redb, whose file lock keeps a second process out of both.
        let (wal, logged) = Wal::open(dir)?;
        let replay: Vec<Encoded> = logged.into_iter().flatten().collect();
        for m in &replay {
            super::wal::check_value(m)?;
        }
        if !replay.is_empty() {
            tracing::info!(mutations = replay.len(), "replaying the store's log");
        }
        // Create the tables so a read of a fresh store finds them, fold in
        // what the log holds, and checkpoint with quick-repair from the start.
        let init = || -> Result<(), redb::Error> {
            let mut tx = db.begin_write()?;
            tx.set_quick_repair(true);
            tx.open_table(TASKS)?;
            tx.open_table(NODES)?;
            tx.open_table(META)?;
            tx.open_table(FINISHED)?;
            tx.open_table(REQUESTS)?;
            write_batch(&tx, &replay)?;
            migrate(&tx)?;
            tx.commit()?;
            Ok(())
        };
        init().map_err(|e| redb_error(&path, e))?;
        let mut wal = wal;
        wal.reset().map_err(|e| io_error(&dir.join(super::wal::FILE_NAME), e))?;
        let inner = Arc::new(Inner { db, path, log: Mutex::new(Log { wal, failed: None }) });
        let checkpointer = Arc::new(spawn_checkpointer(Arc::downgrade(&inner)));
        Ok(RedbStore { _checkpointer: checkpointer, inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Makes everything committed so far durable in the redb file and starts
    /// the log over (the store does this by itself every second).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.inner.checkpoint()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| {
            if e.is_cancelled() { StoreError::Closed } else { StoreError::Backend(format!("store call panicked: {e}")) }
        })?
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // A panic while holding the lock may have left a batch in redb's
        // memory without its log record: stop writing, as after a log failure.
        self.log.lock().unwrap_or_else(|poisoned| {
            let mut log = poisoned.into_inner();
            log.failed.get_or_insert_with(|| "a store call panicked".into());
            log
        })
    }

    fn commit(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        let batch: Vec<Encoded> = batch.into_iter().map(Encoded::from_mutation).collect();
        // Refused before anything is applied: the log could not hold it.
        super::wal::check_size(&batch)?;
        let mut log = self.lock();
        if let Some(why) = &log.failed {
            return Err(StoreError::Stopped(format!(
                "a log write failed earlier ({why}); restart the coordinator once the disk is fixed"
            )));
        }
        // redb first: if the batch cannot be applied, nothing is logged.
        let apply = || -> Result<(), redb::Error> {
            let mut tx = self.db.begin_write()?;
            tx.set_durability(Durability::None)?;
            write_batch(&tx, &batch)?;
            tx.commit()?;
            Ok(())
        };
        apply().map_err(|e| redb_error(&self.path, e))?;
        let wal_path = self.path.with_file_name(super::wal::FILE_NAME);
        if let Err(e) = log.wal.append(&batch) {
            // The record may have reached the page cache before the sync
            // failed (Linux reports a failed writeback once, then forgets the
            // pages' state): its outcome is unknown, so say so, and write
            // nothing more — the same stance etcd and PostgreSQL take.
            tracing::error!(error = %e, "store log append failed; refusing further writes");
            log.failed = Some(e.to_string());
            return Err(StoreError::Stopped(format!(
                "{}; the last write may or may not be stored; the coordinator stops and must be restarted once the disk is fixed",
                io_error(&wal_path, e)
            )));
        }
        if log.wal.len() >= CHECKPOINT_BYTES
            && let Err(e) = Self::checkpoint_locked(&self.db, &self.path, &mut log)
        {
            // The batch is durable in the log; the checkpoint is retried.
            tracing::warn!(error = %e, "store checkpoint failed; will retry");
        }
        Ok(())
    }

    fn checkpoint(&self) -> Result<(), StoreError> {
        let waited = std::time::Instant::now();
        let mut log = self.lock();
        let started = std::time::Instant::now();
        let r = Self::checkpoint_locked(&self.db, &self.path, &mut log);
        tracing::debug!(
            waited_ms = (started - waited).as_millis() as u64,
            ms = started.elapsed().as_millis() as u64,
            "store checkpoint"
        );
        r
    }

    fn checkpoint_locked(db: &Database, path: &Path, log: &mut Log) -> Result<(), StoreError> {
        if log.failed.is_some() || log.wal.is_empty() {
            return Ok(());
        }
        let durable = || -> Result<(), redb::Error> {
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::Immediate)?;
            tx.set_quick_repair(true);
            tx.commit()?;
            Ok(())
        };
        durable().map_err(|e| redb_error(path, e))?;
        // Only now is the log redundant. A crash before the reset replays
        // batches redb already has: puts and deletes in order, same result.
        if let Err(e) = log.wal.reset() {
            // A header that reached the page cache but not the disk would
            // hide every later record after a crash: write nothing more
            // (redb is durable up to here, so a restart is clean).
            log.failed = Some(format!("log reset: {e}"));
            return Err(io_error(&path.with_file_name(super::wal::FILE_NAME), e));
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let started = std::time::Instant::now();
        match self.checkpoint() {
            Ok(()) => tracing::info!(
                target: "fog::lifecycle",
                ms = started.elapsed().as_millis() as u64,
                "store: final checkpoint"
            ),
            Err(e) => tracing::warn!(error = %e, "final checkpoint failed; the log will be replayed at the next start"),
        }
    }
}

/// The thread that checkpoints every [`CHECKPOINT_EVERY`]; dropping this
/// stops it and waits for a checkpoint in flight.
struct Checkpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spawn_checkpointer(inner: Weak<Inner>) -> Checkpointer {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("fog-store-checkpoint".into()).spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
            let Some(inner) = inner.upgrade() else { return };
            if let Err(e) = inner.checkpoint() {
                tracing::warn!(error = %e, "store checkpoint failed; will retry");
            }
        }
    });
    match spawned {
        Ok(thread) => Checkpointer { stop: Some(stop), thread: Some(thread) },
        Err(e) => {
            // Commits still checkpoint when the log passes CHECKPOINT_BYTES.
            tracing::warn!(error = %e, "no checkpoint thread");
            Checkpointer { stop: None, thread: None }
        }
    }
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| io_error(dir, e))
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))
}

/// Creates the file with mode 0600 before redb opens it (redb would use the
/// umask's default), and takes group/other access away from an existing one.
#[cfg(unix)]
fn create_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    let mode = file.metadata().map_err(|e| io_error(path, e))?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700)).map_err(|e| io_error(path, e))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn create_file(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

fn check_keys(batch: &[Mutation]) -> Result<(), StoreError> {
    match batch.iter().find(|m| m.key().is_empty()) {
        Some(m) => Err(StoreError::Invalid(format!("empty key in {m:?}"))),
        None => Ok(()),
    }
}

fn write_batch(tx: &redb::WriteTransaction, batch: &[Encoded]) -> Result<(), redb::Error> {
    let mut tasks = tx.open_table(TASKS)?;
    let mut nodes = tx.open_table(NODES)?;
    let mut meta = tx.open_table(META)?;
    let mut finished = tx.open_table(FINISHED)?;
    let mut requests = tx.open_table(REQUESTS)?;
    for m in batch {
        match m {
            Encoded::PutTask { key, value } => {
                tasks.insert(key.as_str(), value.as_slice())?;
            }
            Encoded::PutFinishedTask { key, value, request } => {
                tasks.remove(key.as_str())?;
                finished.insert(key.as_str(), value.as_slice())?;
                if !request.is_empty() {
                    requests.insert(request.as_str(), key.as_str())?;
                }
            }
            Encoded::DeleteTask(k) => {
                tasks.remove(k.as_str())?;
                finished.remove(k.as_str())?;
            }
            Encoded::PutNode { key, value } => {
                nodes.insert(key.as_str(), value.as_slice())?;
            }
            Encoded::DeleteNode(k) => {
                nodes.remove(k.as_str())?;
            }
            Encoded::PutMeta { key, value } => {
                meta.insert(key.as_str(), value.as_slice())?;
            }
            Encoded::DeleteMeta(k) => {
                meta.remove(k.as_str())?;
            }
        }
    }
    // Dropping the transaction on an error above aborts it: the batch is all or nothing.
    Ok(())
}

/// Once, for a store written before layout 2: moves the finished tasks out
/// of `tasks` and indexes their request ids (the same as writing each again).
fn migrate(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let mut info = tx.open_table(STORE_INFO)?;
    if info.get("layout")?.is_some_and(|v| v.value() >= LAYOUT) {
        return Ok(());
    }
    let mut moves = Vec::new();
    for row in tx.open_table(TASKS)?.iter()? {
        let (_, v) = row?;
        // An unreadable record stays where it is; the engine reports it at restore.
        if let Ok(t) = Task::decode(v.value())
            && super::is_finished(&t)
        {
            moves.push(Encoded::from_mutation(Mutation::PutTask(t)));
        }
    }
    if !moves.is_empty() {
        tracing::info!(tasks = moves.len(), "store layout 2: moving finished tasks to their own table");
    }
    write_batch(tx, &moves)?;
    info.insert("layout", LAYOUT)?;
    Ok(())
}

fn decode_task(key: &str, value: &[u8]) -> Result<Task, StoreError> {
    Task::decode(value).map_err(|e| StoreError::Corrupt(format!("task {key:?}: {e}")))
}

/// Active tasks, the newest `finished` finished ones, nodes and metadata, at one read transaction.
fn read_recent(db: &Database, path: &Path, finished: usize) -> Result<Snapshot, StoreError> {
    let err = |e: redb::Error| redb_error(path, e);
    let tx = db.begin_read().map_err(|e| err(e.into()))?;
    let mut snap = Snapshot::default();
    let tasks = tx.open_table(TASKS).map_err(|e| err(e.into()))?;
    for row in tasks.iter().map_err(|e| err(e.into()))? {
        let (k, v) = row.map_err(|e| err(e.into()))?;
        snap.tasks.push(decode_task(k.value(), v.value())?);
    }
    let done = tx.open_table(FINISHED).map_err(|e| err(e.into()))?;
    let total = done.len().map_err(|e| err(e.into()))?;
    let mut newest = Vec::with_capacity(finished.min(total as usize));
    for row in done.iter().map_err(|e| err(e.into()))?.rev().take(finished) {
        let (k, v) = row.map_err(|e| err(e.into()))?;
        newest.push(decode_task(k.value(), v.value())?);
    }
    snap.finished_not_loaded = total - newest.len() as u64;
    newest.reverse();
    snap.tasks.extend(newest);
    snap.tasks.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let nodes = tx.open_table(NODES).map_err(|e| err(e.into()))?;
    for row in nodes.iter().map_err(|e| err(e.into()))? {
        let (k, v) = row.map_err(|e| err(e.into()))?;
        let n = Message::decode(v.value()).map_err(|e| StoreError::Corrupt(format!("node {:?}: {e}", k.value())))?;
        snap.nodes.push(n);
    }
    let meta = tx.open_table(META).map_err(|e| err(e.into()))?;
    for row in meta.iter().map_err(|e| err(e.into()))? {
        let (k, v) = row.map_err(|e| err(e.into()))?;
        snap.meta.push((k.value().to_string(), v.value().to_vec()));
    }
    Ok(snap)
}

#[async_trait::async_trait]
impl Store for RedbStore {
    async fn commit(&self, batch: Vec<Mutation>) -> Result<(), StoreError> {
        check_keys(&batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        self.blocking(move |inner| inner.commit(batch)).await
    }

    async fn load_recent(&self, finished: usize) -> Result<Snapshot, StoreError> {
        self.blocking(move |inner| read_recent(&inner.db, &inner.path, finished)).await
    }

    async fn get_task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        let id = id.to_string();
        self.blocking(move |inner| {
            let err = |e: redb::Error| redb_error(&inner.path, e);
            let tx = inner.db.begin_read().map_err(|e| err(e.into()))?;
            for table in [TASKS, FINISHED] {
                let t = tx.open_table(table).map_err(|e| err(e.into()))?;
                if let Some(v) = t.get(id.as_str()).map_err(|e| err(e.into()))? {
                    return decode_task(&id, v.value()).map(Some);
                }
            }
            Ok(None)
        })
        .await
    }

    async fn task_for_request(&self, request_id: &str) -> Result<Option<Task>, StoreError> {
        let request = request_id.to_string();
        self.blocking(move |inner| {
            let err = |e: redb::Error| redb_error(&inner.path, e);
            let tx = inner.db.begin_read().map_err(|e| err(e.into()))?;
            let requests = tx.open_table(REQUESTS).map_err(|e| err(e.into()))?;
            let Some(id) = requests.get(request.as_str()).map_err(|e| err(e.into()))? else { return Ok(None) };
            let done = tx.open_table(FINISHED).map_err(|e| err(e.into()))?;
            let found = done.get(id.value()).map_err(|e| err(e.into()))?;
            found.map(|v| decode_task(id.value(), v.value())).transpose()
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "redb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fog_proto::v1::{Node, Task};

    fn task(id: &str) -> Task {
        Task { id: id.into(), retries_used: 1, ..Default::default() }
    }

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.backend(), "redb");
        crate::store::conformance::run_all(&store).await;
    }

    #[tokio::test]
    async fn reopen_after_drop_sees_everything() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RedbStore::open(dir.path()).unwrap();
            store
                .commit(vec![
                    Mutation::PutTask(task("t1")),
                    Mutation::PutNode(Node { id: "n1".into(), name: "edge".into(), ..Default::default() }),
                    Mutation::PutMeta { key: "ca".into(), value: b"pem".to_vec() },
                ])
                .await
                .unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        let snap = store.load().await.unwrap();
        assert_eq!(snap.tasks, vec![task("t1")]);
        assert_eq!(snap.nodes[0].name, "edge");
        assert_eq!(snap.meta, vec![("ca".to_string(), b"pem".to_vec())]);
    }

    /// A copy of the data directory's files taken while the store holds its
    /// lock (no commit or checkpoint in between): what a crash at that
    /// instant leaves on disk, as far as the page cache is concerned.
    fn crash_image(store: &RedbStore, into: &Path) {
        let _frozen = store.inner.lock();
        for name in [FILE_NAME, super::super::wal::FILE_NAME] {
            std::fs::copy(store.inner.path.with_file_name(name), into.join(name)).unwrap();
        }
    }

    #[tokio::test]
    async fn a_store_from_before_layout_2_has_its_finished_tasks_moved_once() {
        let dir = tempfile::tempdir().unwrap();
        drop(RedbStore::open(dir.path()).unwrap());
        // As an older coordinator left it: a finished task among the active ones.
        let done = Task { state: fog_proto::v1::TaskState::Failed as i32, request_id: "old-req".into(), ..task("t1") };
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(TASKS).unwrap().insert("t1", done.encode_to_vec().as_slice()).unwrap();
            tx.open_table(TASKS).unwrap().insert("t2", task("t2").encode_to_vec().as_slice()).unwrap();
            tx.open_table(STORE_INFO).unwrap().insert("layout", 1).unwrap();
            tx.commit().unwrap();
        }
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(store.load_recent(0).await.unwrap().tasks, vec![task("t2")], "the finished task moved");
        assert_eq!(store.task_for_request("old-req").await.unwrap(), Some(done.clone()), "and is indexed");
        assert_eq!(store.load().await.unwrap().tasks, vec![done, task("t2")], "nothing lost");
    }

    #[tokio::test]
    async fn commits_after_the_last_checkpoint_survive_a_crash() {
        let (dir, image) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = RedbStore::open(dir.path()).unwrap();
        store.commit(vec![Mutation::PutTask(task("t1")), Mutation::PutTask(task("t2"))]).await.unwrap();
        store.checkpoint().unwrap();
        // After the checkpoint: in redb only in memory, and in the log.
        store.commit(vec![Mutation::DeleteTask("t1".into()), Mutation::PutTask(task("t3"))]).await.unwrap();
        store.commit(vec![Mutation::PutMeta { key: "m".into(), value: vec![7] }]).await.unwrap();
        // t2 finishes: the move to the finished tasks and the request index are replayed too.
        let done = Task { state: fog_proto::v1::TaskState::Succeeded as i32, request_id: "req-2".into(), ..task("t2") };
        store.commit(vec![Mutation::PutTask(done.clone())]).await.unwrap();
        crash_image(&store, image.path());
        let reopened = RedbStore::open(image.path()).unwrap();
        let snap = reopened.load().await.unwrap();
        assert_eq!(snap.tasks, vec![done.clone(), task("t3")]);
        assert_eq!(snap.meta, vec![("m".to_string(), vec![7])]);
        assert_eq!(reopened.load_recent(0).await.unwrap().tasks, vec![task("t3")], "t2 is among the finished");
        assert_eq!(reopened.task_for_request("req-2").await.unwrap(), Some(done));
        // Replay was folded in and the log started over: a second crash image agrees.
        let again = tempfile::tempdir().unwrap();
        crash_image(&reopened, again.path());
        drop(reopened);
        assert_eq!(RedbStore::open(again.path()).unwrap().load().await.unwrap(), snap);
    }

    #[tokio::test]
    async fn many_checkpoints_and_commits_then_a_crash_lose_nothing() {
        let (dir, image) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = RedbStore::open(dir.path()).unwrap();
        for round in 0..20 {
            let batch = (0..10).map(|i| Mutation::PutTask(task(&format!("t{round:02}-{i}")))).collect();
            store.commit(batch).await.unwrap();
            if round % 3 == 0 {
                store.checkpoint().unwrap();
            }
            if round % 4 == 0 {
                store.commit(vec![Mutation::DeleteTask(format!("t{round:02}-0"))]).await.unwrap();
            }
        }
        crash_image(&store, image.path());
        let tasks = RedbStore::open(image.path()).unwrap().load().await.unwrap().tasks;
        assert_eq!(tasks.len(), 200 - 5);
        assert!(!tasks.iter().any(|t| t.id == "t04-0") && tasks.iter().any(|t| t.id == "t05-0"));
    }

    #[test]
    fn a_second_open_of_the_same_store_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RedbStore::open(dir.path()).unwrap();
        let err = RedbStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
    }

    #[test]
    fn dropping_the_store_during_a_checkpoint_closes_it_before_drop_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        // Hold the log so that the next checkpoint waits, holding the store.
        let inner = store.inner.clone();
        let guard = inner.lock();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&inner) < 3 {
            assert!(std::time::Instant::now() < deadline, "the checkpoint thread never ran");
            std::thread::yield_now();
        }
        let dropping = std::thread::spawn(move || drop(store));
        // While that checkpoint waits for the log, the drop waits for it.
        let watch_until = std::time::Instant::now() + Duration::from_millis(200);
        while std::time::Instant::now() < watch_until {
            assert!(!dropping.is_finished(), "the drop returned while a checkpoint still held the store");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(guard);
        drop(inner);
        dropping.join().unwrap();
        // The file lock is free the moment the last handle's drop returned.
        RedbStore::open(dir.path()).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/data");
        let store = RedbStore::open(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&data), 0o700);
        drop(store);
        // An existing file with a loose mode is tightened on open.
        std::fs::set_permissions(data.join(FILE_NAME), std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = RedbStore::open(&data).unwrap();
        assert_eq!(mode(store.path()), 0o600);
    }

    /// True if the process ignores file permissions (root, CAP_DAC_OVERRIDE).
    #[cfg(unix)]
    fn permissions_are_bypassed(dir: &Path) -> bool {
        let probe = dir.join("probe");
        let ok = std::fs::write(&probe, b"x").is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_unwritable_directory_is_a_clear_error_not_a_panic() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        if permissions_are_bypassed(&ro) {
            // Running as root: permissions cannot fail us, so check the other
            // way a directory is unusable: a file in its place.
            let not_dir = dir.path().join("file");
            std::fs::write(&not_dir, b"").unwrap();
            let err = RedbStore::open(&not_dir).unwrap_err();
            assert!(matches!(err, StoreError::Io { .. }), "{err}");
            assert!(err.to_string().contains("file"), "{err}");
        } else {
            let err = RedbStore::open(&ro.join("data")).unwrap_err();
            assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
            assert!(err.to_string().contains("not writable"), "{err}");
            let err = RedbStore::open(&ro).unwrap_err();
            assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
            // A store whose file was made read-only.
            let rw = dir.path().join("rw");
            drop(RedbStore::open(&rw).unwrap());
            std::fs::set_permissions(rw.join(FILE_NAME), std::fs::Permissions::from_mode(0o400)).unwrap();
            let err = RedbStore::open(&rw).unwrap_err();
            assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}
