//! Durable state: the [`Store`] trait, its embedded backend ([`RedbStore`]),
//! and the group-commit [`writer`] that the engine submits its decisions to.
//!
//! The store holds what must survive a coordinator restart (tasks, nodes and a
//! few metadata keys) as prost-encoded `fog.v1` messages keyed by id.
//! Finished tasks are kept apart from active ones (a `PutTask` whose state is
//! terminal moves the record), with an index from request id to task id, so
//! that a start reads the active tasks and only the newest finished ones. It is
//! written only through the writer: decisions are committed (fsync) before
//! their effects run, so nothing a client or node was told is ever lost.
//! What this module is not: it does not interpret the records; the engine
//! rebuilds its state from a [`Snapshot`] at startup.

pub mod conformance;
mod embedded;
pub mod etcd;
pub mod wal;
pub mod writer;

pub use embedded::{FILE_NAME, RedbStore};
pub use etcd::{EtcdStore, EtcdTls, Fence};
pub use writer::{
    Effect, Pending, TrySubmitError, WriterClosed, WriterHandle, WriterStats, spawn_writer, spawn_writer_timed,
};

use fog_proto::v1::{Node, Task};
use std::path::PathBuf;

/// One change of the stored state. Applied in order within a batch.
// Most mutations are puts, so boxing the large variants would cost an
// allocation on the common path to save space on the rare deletes.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Mutation {
    /// Insert or replace a task (keyed by its id).
    PutTask(Task),
    /// Remove a task; no error if absent.
    DeleteTask(String),
    /// Insert or replace a node (keyed by its id).
    PutNode(Node),
    /// Remove a node; no error if absent.
    DeleteNode(String),
    /// Insert or replace a metadata value.
    PutMeta {
        /// Key.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Remove a metadata value; no error if absent.
    DeleteMeta(String),
}

impl Mutation {
    /// The key the mutation touches.
    pub fn key(&self) -> &str {
        match self {
            Mutation::PutTask(t) => &t.id,
            Mutation::PutNode(n) => &n.id,
            Mutation::DeleteTask(k) | Mutation::DeleteNode(k) | Mutation::DeleteMeta(k) => k,
            Mutation::PutMeta { key, .. } => key,
        }
    }
}

/// What a start reads: every active task and the newest finished ones, every
/// node and every metadata value, each table sorted by key.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Active tasks, then the newest finished tasks (up to the limit the
    /// load was given), in key order (task ids are time-ordered).
    pub tasks: Vec<Task>,
    /// Finished tasks the store holds beyond those in `tasks`: they are read
    /// one at a time ([`Store::get_task`], [`Store::task_for_request`]).
    pub finished_not_loaded: u64,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Metadata.
    pub meta: Vec<(String, Vec<u8>)>,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store's directory or file cannot be written (permissions or a read-only file system).
    #[error("store at {path} is not writable: {source}")]
    ReadOnly {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Any other I/O error.
    #[error("store I/O error at {path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process holds the store.
    #[error("store at {0} is already open in another process")]
    Locked(PathBuf),
    /// The stored data cannot be read back.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// A mutation the store refuses (e.g. an empty key); the batch was not applied.
    #[error("invalid mutation: {0}")]
    Invalid(String),
    /// The store was shut down.
    #[error("store is closed")]
    Closed,
    /// A fenced write by a replica that is no longer the leader; nothing was applied.
    #[error("write refused: {0}")]
    Fenced(String),
    /// The store refuses every write from now on (a failed log sync leaves
    /// the page cache's state unknown); the coordinator must stop, and is
    /// restarted once the disk is fixed.
    #[error("the store accepts no more writes: {0}")]
    Stopped(String),
    /// A backend failure that fits none of the above.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// A durable key-value store of tasks, nodes and metadata.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the batch atomically (all of it or none of it, in order);
    /// returns only once it is durable (fsync). A mutation with an empty key
    /// fails the whole batch with [`StoreError::Invalid`]. An empty batch is Ok.
    async fn commit(&self, batch: Vec<Mutation>) -> Result<(), StoreError>;
    /// Everything stored.
    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.load_recent(usize::MAX).await
    }
    /// Every active task, node and metadata value, and of the finished
    /// tasks only the newest `finished` (by id, which is time-ordered): what
    /// a coordinator keeps in memory, so that a start does not depend on
    /// how much history the store holds.
    async fn load_recent(&self, finished: usize) -> Result<Snapshot, StoreError>;
    /// One task by id, finished or not.
    async fn get_task(&self, id: &str) -> Result<Option<Task>, StoreError>;
    /// The finished task submitted with this request id, if any (active
    /// tasks are in the coordinator's memory, and found there).
    async fn task_for_request(&self, request_id: &str) -> Result<Option<Task>, StoreError>;
    /// The backend's name: "redb" or "etcd".
    fn backend(&self) -> &'static str;
}

/// True for a task record in a final state (it moves to the finished tasks).
pub fn is_finished(task: &Task) -> bool {
    use fog_proto::v1::TaskState;
    matches!(TaskState::try_from(task.state), Ok(TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled))
}
