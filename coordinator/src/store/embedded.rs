//! The embedded backend: one redb file, `fog.redb`, in the data directory.
//!
//! redb is synchronous, so every call runs on tokio's blocking pool; each
//! commit is one write transaction with `Durability::Immediate` (fsync before
//! it returns). Tables `tasks`, `nodes` and `meta` map ids to prost-encoded
//! `fog.v1` messages (meta: raw bytes).

use super::{Mutation, Snapshot, Store, StoreError};
use prost::Message;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Name of the database file in the data directory.
pub const FILE_NAME: &str = "fog.redb";

/// The embedded store.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    path: Arc<Path>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn io_error(path: &Path, source: io::Error) -> StoreError {
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
        create_file(&path)?;
        let db = Database::create(&path).map_err(|e| redb_error(&path, e))?;
        // Create the tables so a read of a fresh store finds them.
        let init = || -> Result<(), redb::Error> {
            let tx = db.begin_write()?;
            tx.open_table(TASKS)?;
            tx.open_table(NODES)?;
            tx.open_table(META)?;
            tx.commit()?;
            Ok(())
        };
        init().map_err(|e| redb_error(&path, e))?;
        Ok(RedbStore { db: Arc::new(db), path: path.into() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, &Path) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (db, path) = (self.db.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || f(&db, &path)).await.map_err(|e| {
            if e.is_cancelled() { StoreError::Closed } else { StoreError::Backend(format!("store call panicked: {e}")) }
        })?
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

fn apply(db: &Database, batch: &[Mutation]) -> Result<(), redb::Error> {
    let mut tx = db.begin_write()?;
    tx.set_durability(Durability::Immediate)?;
    {
        let mut tasks = tx.open_table(TASKS)?;
        let mut nodes = tx.open_table(NODES)?;
        let mut meta = tx.open_table(META)?;
        for m in batch {
            match m {
                Mutation::PutTask(t) => {
                    tasks.insert(t.id.as_str(), t.encode_to_vec().as_slice())?;
                }
                Mutation::DeleteTask(k) => {
                    tasks.remove(k.as_str())?;
                }
                Mutation::PutNode(n) => {
                    nodes.insert(n.id.as_str(), n.encode_to_vec().as_slice())?;
                }
                Mutation::DeleteNode(k) => {
                    nodes.remove(k.as_str())?;
                }
                Mutation::PutMeta { key, value } => {
                    meta.insert(key.as_str(), value.as_slice())?;
                }
                Mutation::DeleteMeta(k) => {
                    meta.remove(k.as_str())?;
                }
            }
        }
    }
    // Dropping `tx` on an error above aborts it: the batch is all or nothing.
    tx.commit()?;
    Ok(())
}

fn read_all(db: &Database, path: &Path) -> Result<Snapshot, StoreError> {
    let err = |e: redb::Error| redb_error(path, e);
    let tx = db.begin_read().map_err(|e| err(e.into()))?;
    let mut snap = Snapshot::default();
    let tasks = tx.open_table(TASKS).map_err(|e| err(e.into()))?;
    for row in tasks.iter().map_err(|e| err(e.into()))? {
        let (k, v) = row.map_err(|e| err(e.into()))?;
        let t = Message::decode(v.value()).map_err(|e| StoreError::Corrupt(format!("task {:?}: {e}", k.value())))?;
        snap.tasks.push(t);
    }
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
        self.blocking(move |db, path| apply(db, &batch).map_err(|e| redb_error(path, e))).await
    }

    async fn load(&self) -> Result<Snapshot, StoreError> {
        self.blocking(read_all).await
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

    #[test]
    fn a_second_open_of_the_same_store_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RedbStore::open(dir.path()).unwrap();
        let err = RedbStore::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked(_)), "{err}");
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
