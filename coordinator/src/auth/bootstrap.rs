//! The first admin: created offline, straight into the store, by
//! `fog-coordinator admin create` while the coordinator is stopped (the
//! embedded store is locked while it runs; in etcd the record is simply
//! written, and a running coordinator sees it at its next start). There is
//! no default account and no default password.

use super::Role;
use super::records::{USER_PREFIX, UserRecord, check_password, check_username};
use crate::store::{Mutation, RedbStore, Store, StoreError};
use std::path::Path;

/// Creates a user in the store at `data_dir` (created if missing). Fails if the
/// user exists or if a running coordinator holds the store.
pub async fn create_user(data_dir: &Path, username: &str, password: &str, role: Role) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let store = RedbStore::open(data_dir).map_err(|e| match e {
        StoreError::Locked(p) => anyhow::anyhow!(
            "the store at {} is in use by a running coordinator; stop it first, or create users with `fogctl users create` as an admin",
            p.display()
        ),
        e => e.into(),
    })?;
    create_user_in(&store, username, password, role).await
}

/// Creates a user in `store`. Fails if the user exists.
pub async fn create_user_in(store: &dyn Store, username: &str, password: &str, role: Role) -> anyhow::Result<()> {
    check_username(username).map_err(|e| anyhow::anyhow!("username {username:?} {e}"))?;
    check_password(password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let key = format!("{USER_PREFIX}{username}");
    // Only the metadata matters here: no finished tasks are read.
    if store.load_recent(0).await?.meta.iter().any(|(k, _)| *k == key) {
        anyhow::bail!("user {username:?} already exists");
    }
    let password = password.to_string();
    let password_hash = tokio::task::spawn_blocking(move || super::password::hash(&password)).await??;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let record = UserRecord { role, password_hash, created_at_ms: now };
    store.commit(vec![Mutation::PutMeta { key, value: serde_json::to_vec(&record)? }]).await?;
    Ok(())
}
