//! Users, API tokens, sign-in sessions and signing keys, as the engine keeps
//! them (store meta keys `user/…`, `apitoken/…`, `session/…`, `auth/keys`).
//! Every change is a durable batch; replies carrying a secret, and the new
//! [`AuthView`] the auth layer checks against, are effects of its commit.
//!
//! Refresh tokens rotate: each refresh spends the current one and issues the
//! next. Presenting a spent one is reuse — someone else has a copy — and ends
//! the whole session, its access tokens included (they carry the session id).

use super::{Engine, now_ms};
use crate::api::ApiError;
use crate::auth::records::{
    API_TOKEN_PREFIX, ApiTokenRecord, KEYS_KEY, SESSION_PREFIX, SessionRecord, USER_PREFIX, UserRecord,
};
use crate::auth::secrets::{self, ApiTokenSecret, RefreshSecret};
use crate::auth::{ApiTokenView, AuthSettings, AuthView, KeyRing, Role, SigningKeyRecord};
use crate::store::Mutation;
use fog_proto::v1 as pb;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// Spent refresh-token hashes remembered per session, to recognise reuse.
const SPENT_KEPT: usize = 16;
/// Live sign-in sessions per user; a new one beyond this ends the oldest.
const SESSIONS_PER_USER: usize = 64;

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A command about users and credentials.
pub enum AuthCommand {
    /// The stored password hash and role of a user (for sign-in; verified off the engine).
    PasswordHash {
        /// Who.
        username: String,
        /// Hash and role, if the user exists.
        reply: oneshot::Sender<Option<(String, Role)>>,
    },
    /// Start a sign-in session (the password was verified).
    StartSession {
        /// Who.
        username: String,
        /// Tokens and role.
        reply: Reply<(pb::TokenPair, Role)>,
    },
    /// Rotate a refresh token.
    Refresh {
        /// The presented token.
        token: RefreshSecret,
        /// New tokens.
        reply: Reply<pb::TokenPair>,
    },
    /// End the session of a refresh token.
    SignOut {
        /// The presented token.
        token: RefreshSecret,
        /// Done.
        reply: Reply<()>,
    },
    /// Create a user.
    CreateUser {
        /// Name.
        username: String,
        /// argon2id hash.
        password_hash: String,
        /// Role.
        role: Role,
        /// The user.
        reply: Reply<pb::User>,
    },
    /// List users.
    ListUsers {
        /// Users by name.
        reply: Reply<Vec<pb::User>>,
    },
    /// Delete a user and end their sessions.
    DeleteUser {
        /// Name.
        username: String,
        /// Done.
        reply: Reply<()>,
    },
    /// Create an API token.
    CreateApiToken {
        /// What for.
        name: String,
        /// Role.
        role: Role,
        /// Lifetime.
        ttl: std::time::Duration,
        /// Creator.
        created_by: String,
        /// Description and secret.
        reply: Reply<pb::CreateApiTokenResponse>,
    },
    /// List API tokens.
    ListApiTokens {
        /// Tokens.
        reply: Reply<Vec<pb::ApiToken>>,
    },
    /// Revoke an API token.
    RevokeApiToken {
        /// Id.
        id: String,
        /// Done.
        reply: Reply<()>,
    },
    /// Start signing with a new key.
    RotateKey {
        /// The new key's id.
        reply: Reply<String>,
    },
    /// A commit failed: put back what its batch changed in memory.
    Undo(Vec<Undo>),
}

/// The state of one auth record before a change, to restore if the change's
/// commit fails (nothing in memory may claim more than the store holds).
pub enum Undo {
    /// A user (None: it did not exist).
    User(String, Option<UserRecord>),
    /// An API token.
    ApiToken(String, Option<ApiTokenRecord>),
    /// A sign-in session with its spent hashes.
    Session(String, Option<(SessionRecord, Vec<String>)>),
    /// The signing keys.
    Keys(Arc<KeyRing>),
}

/// The auth state.
pub struct AuthBook {
    settings: AuthSettings,
    users: BTreeMap<String, UserRecord>,
    api_tokens: BTreeMap<String, ApiTokenRecord>,
    sessions: HashMap<String, (SessionRecord, Vec<String>)>,
    keys: Arc<KeyRing>,
    view_tx: watch::Sender<Arc<AuthView>>,
}

fn json<T: serde::Serialize>(key: String, v: &T) -> Mutation {
    Mutation::PutMeta { key, value: serde_json::to_vec(v).expect("auth records serialise") }
}

fn ts(ms: u64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: (ms / 1000) as i64, nanos: ((ms % 1000) * 1_000_000) as i32 })
}

fn user_pb(name: &str, u: &UserRecord) -> pb::User {
    pb::User { username: name.to_string(), role: u.role.to_pb() as i32, created_at: ts(u.created_at_ms) }
}

fn api_token_pb(id: &str, t: &ApiTokenRecord) -> pb::ApiToken {
    pb::ApiToken {
        id: id.to_string(),
        name: t.name.clone(),
        role: t.role.to_pb() as i32,
        created_at: ts(t.created_at_ms),
        expires_at: ts(t.expires_at_ms),
        created_by: t.created_by.clone(),
    }
}

fn hash_hex(secret: &str) -> String {
    hex::encode(secrets::hash(secret))
}

impl AuthBook {
    /// Rebuilds the book from the store's meta entries. Returns the mutations
    /// to persist a signing key created because none was stored.
    pub fn restore(settings: AuthSettings, meta: &[(String, Vec<u8>)], now: u64) -> (AuthBook, Vec<Mutation>) {
        let mut users = BTreeMap::new();
        let mut api_tokens = BTreeMap::new();
        let mut sessions = HashMap::new();
        let mut keys: Vec<SigningKeyRecord> = Vec::new();
        for (key, value) in meta {
            if let Some(name) = key.strip_prefix(USER_PREFIX) {
                if let Ok(r) = serde_json::from_slice::<UserRecord>(value) {
                    users.insert(name.to_string(), r);
                }
            } else if let Some(id) = key.strip_prefix(API_TOKEN_PREFIX) {
                if let Ok(r) = serde_json::from_slice::<ApiTokenRecord>(value) {
                    api_tokens.insert(id.to_string(), r);
                }
            } else if let Some(id) = key.strip_prefix(SESSION_PREFIX) {
                if let Ok(r) = serde_json::from_slice::<(SessionRecord, Vec<String>)>(value) {
                    sessions.insert(id.to_string(), r);
                }
            } else if key == KEYS_KEY
                && let Ok(k) = serde_json::from_slice(value)
            {
                keys = k;
            }
        }
        let mut mutations = Vec::new();
        if !keys.iter().any(|k| k.retire_at_ms.is_none()) {
            keys.push(SigningKeyRecord::generate(now).expect("Ed25519 key generation"));
            mutations.push(json(KEYS_KEY.into(), &keys));
            info!("created a token signing key");
        }
        let ring = Arc::new(Self::ring(&settings, keys));
        let (view_tx, _) = watch::channel(Arc::new(AuthView {
            keys: ring.clone(),
            users: HashMap::new(),
            api_tokens: HashMap::new(),
            ended_sessions: Default::default(),
        }));
        if users.is_empty() {
            warn!("no users exist: create the first admin with `fog-coordinator admin create` (coordinator stopped)");
        }
        let book = AuthBook { settings, users, api_tokens, sessions, keys: ring, view_tx };
        book.view_tx.send_replace(Arc::new(book.view()));
        (book, mutations)
    }

    fn ring(s: &AuthSettings, keys: Vec<SigningKeyRecord>) -> KeyRing {
        KeyRing::new(keys, &s.issuer, &s.audience, s.leeway.as_secs())
    }

    /// A receiver of the view the auth layer checks against.
    pub fn subscribe(&self) -> watch::Receiver<Arc<AuthView>> {
        self.view_tx.subscribe()
    }

    fn view(&self) -> AuthView {
        AuthView {
            keys: self.keys.clone(),
            users: self.users.iter().map(|(n, u)| (n.clone(), u.role)).collect(),
            api_tokens: self
                .api_tokens
                .iter()
                .filter_map(|(id, t)| {
                    let mut h = [0u8; 32];
                    hex::decode_to_slice(&t.secret_hash, &mut h).ok()?;
                    Some((id.clone(), ApiTokenView { secret_hash: h, role: t.role, expires_at_ms: t.expires_at_ms }))
                })
                .collect(),
            ended_sessions: self.sessions.iter().filter(|(_, (s, _))| s.ended).map(|(id, _)| id.clone()).collect(),
        }
    }

    /// Counts for status: users, API tokens, live sessions.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.users.len(), self.api_tokens.len(), self.sessions.values().filter(|(s, _)| !s.ended).count())
    }

    fn token_pair(
        &self,
        user: &str,
        role: Role,
        sid: &str,
        next: &RefreshSecret,
        session_end: u64,
        now: u64,
    ) -> Result<pb::TokenPair, ApiError> {
        let ttl_s = self.settings.access_ttl.as_secs().min(session_end.saturating_sub(now) / 1000).max(1);
        let claims = self.keys.claims(user, role, sid, now / 1000, ttl_s);
        let access = self.keys.sign(&claims).map_err(|e| ApiError::Internal(format!("signing: {e}")))?;
        Ok(pb::TokenPair {
            access_token: access,
            access_expires_at: ts(claims.exp * 1000),
            refresh_token: next.encode(),
            refresh_expires_at: ts(session_end),
        })
    }
}

impl Engine {
    /// Queues a publication of the auth view after the pending batch commits.
    fn publish_auth_view(&mut self) {
        let view = Arc::new(self.auth.view());
        let tx = self.auth.view_tx.clone();
        self.pending.effects.push(Box::new(move |res| {
            if res.is_ok() {
                tx.send_replace(view);
            }
        }));
    }

    /// Replies after the pending batch commits; if it fails, the reply says so
    /// and `undo` puts the in-memory records back as the store has them.
    fn reply_after_commit<T: Send + 'static>(&mut self, reply: Reply<T>, value: Result<T, ApiError>, undo: Vec<Undo>) {
        let engine = self.self_tx.clone();
        self.pending.effects.push(Box::new(move |res| match res {
            Ok(()) => {
                let _ = reply.send(value);
            }
            Err(e) => {
                let _ = reply.send(Err(ApiError::Unavailable(format!("not stored: {e}"))));
                if let Some(tx) = engine.upgrade() {
                    let _ = tx.try_send(super::Command::Auth(AuthCommand::Undo(undo)));
                }
            }
        }));
    }

    fn undo_session(&self, id: &str) -> Undo {
        Undo::Session(id.to_string(), self.auth.sessions.get(id).cloned())
    }

    fn undo(&mut self, undo: Vec<Undo>) {
        for u in undo {
            match u {
                Undo::User(name, Some(r)) => drop(self.auth.users.insert(name, r)),
                Undo::User(name, None) => drop(self.auth.users.remove(&name)),
                Undo::ApiToken(id, Some(r)) => drop(self.auth.api_tokens.insert(id, r)),
                Undo::ApiToken(id, None) => drop(self.auth.api_tokens.remove(&id)),
                Undo::Session(id, Some(r)) => drop(self.auth.sessions.insert(id, r)),
                Undo::Session(id, None) => drop(self.auth.sessions.remove(&id)),
                Undo::Keys(k) => self.auth.keys = k,
            }
        }
        warn!("an auth change was not stored; restored the previous state");
        // The restored state is what the store holds: publish it at once.
        self.auth.view_tx.send_replace(Arc::new(self.auth.view()));
    }

    fn put_session(&mut self, id: &str) {
        if let Some(s) = self.auth.sessions.get(id) {
            self.pending.mutations.push(json(format!("{SESSION_PREFIX}{id}"), s));
        }
    }

    /// Ends a session; returns how to undo it.
    fn end_session(&mut self, id: &str) -> Option<Undo> {
        let before = self.undo_session(id);
        if let Some((s, _)) = self.auth.sessions.get_mut(id)
            && !s.ended
        {
            s.ended = true;
            self.put_session(id);
            return Some(before);
        }
        None
    }

    pub(super) fn handle_auth(&mut self, cmd: AuthCommand) {
        let now = now_ms();
        match cmd {
            AuthCommand::Undo(undo) => self.undo(undo),
            AuthCommand::PasswordHash { username, reply } => {
                let _ = reply.send(self.auth.users.get(&username).map(|u| (u.password_hash.clone(), u.role)));
            }
            AuthCommand::StartSession { username, reply } => {
                let Some(role) = self.auth.users.get(&username).map(|u| u.role) else {
                    let _ = reply.send(Err(ApiError::Unauthenticated("wrong username or password".into())));
                    return;
                };
                let sid = secrets::random_id();
                let next = RefreshSecret { session: sid.clone(), generation: 0, secret: secrets::random_secret() };
                let end = now + self.auth.settings.session_ttl.as_millis() as u64;
                let record = SessionRecord {
                    user: username.clone(),
                    generation: 0,
                    secret_hash: hash_hex(&next.secret),
                    expires_at_ms: end,
                    ended: false,
                };
                match self.auth.token_pair(&username, role, &sid, &next, end, now) {
                    Err(e) => drop(reply.send(Err(e))),
                    Ok(pair) => {
                        // Bounded sessions per user: the oldest goes.
                        let mut undo = vec![Undo::Session(sid.clone(), None)];
                        let mut live: Vec<(u64, String)> = self
                            .auth
                            .sessions
                            .iter()
                            .filter(|(_, (s, _))| s.user == username && !s.ended)
                            .map(|(id, (s, _))| (s.expires_at_ms, id.clone()))
                            .collect();
                        live.sort();
                        let excess = (live.len() + 1).saturating_sub(SESSIONS_PER_USER);
                        for (_, old) in live.into_iter().take(excess) {
                            undo.extend(self.end_session(&old));
                        }
                        self.auth.sessions.insert(sid.clone(), (record, Vec::new()));
                        self.put_session(&sid);
                        if excess > 0 {
                            self.publish_auth_view();
                        }
                        info!(user = %username, session = %sid, "signed in");
                        self.reply_after_commit(reply, Ok((pair, role)), undo);
                    }
                }
            }
            AuthCommand::Refresh { token, reply } => {
                let undo = vec![self.undo_session(&token.session)];
                let queued = self.pending.mutations.len();
                let r = self.refresh(&token, now);
                if self.pending.mutations.len() == queued {
                    // Refused without changing anything: no commit to wait for.
                    let _ = reply.send(r);
                } else {
                    // Success, and a reuse that ended the session, are told once stored.
                    self.reply_after_commit(reply, r, undo);
                }
            }
            AuthCommand::SignOut { token, reply } => {
                let known = self.auth.sessions.get(&token.session).is_some_and(|(s, spent)| {
                    let h = hash_hex(&token.secret);
                    s.secret_hash == h || spent.contains(&h)
                });
                if !known {
                    let _ = reply.send(Err(ApiError::Unauthenticated("refresh token not recognised".into())));
                    return;
                }
                let undo = self.end_session(&token.session).into_iter().collect();
                self.publish_auth_view();
                self.reply_after_commit(reply, Ok(()), undo);
            }
            AuthCommand::CreateUser { username, password_hash, role, reply } => {
                if self.auth.users.contains_key(&username) {
                    let _ = reply.send(Err(ApiError::AlreadyExists(format!("user {username:?} already exists"))));
                    return;
                }
                let u = UserRecord { role, password_hash, created_at_ms: now };
                self.pending.mutations.push(json(format!("{USER_PREFIX}{username}"), &u));
                let out = user_pb(&username, &u);
                let undo = vec![Undo::User(username.clone(), None)];
                self.auth.users.insert(username, u);
                self.publish_auth_view();
                self.reply_after_commit(reply, Ok(out), undo);
            }
            AuthCommand::ListUsers { reply } => {
                let _ = reply.send(Ok(self.auth.users.iter().map(|(n, u)| user_pb(n, u)).collect()));
            }
            AuthCommand::DeleteUser { username, reply } => {
                let Some(u) = self.auth.users.get(&username) else {
                    let _ = reply.send(Err(ApiError::NotFound(format!("no user {username:?}"))));
                    return;
                };
                if u.role == Role::Admin && self.auth.users.values().filter(|u| u.role == Role::Admin).count() == 1 {
                    let _ = reply.send(Err(ApiError::FailedPrecondition("cannot delete the last admin".into())));
                    return;
                }
                let mut undo = vec![Undo::User(username.clone(), self.auth.users.remove(&username))];
                self.pending.mutations.push(Mutation::DeleteMeta(format!("{USER_PREFIX}{username}")));
                let theirs: Vec<String> = self
                    .auth
                    .sessions
                    .iter()
                    .filter(|(_, (s, _))| s.user == username)
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in theirs {
                    undo.extend(self.end_session(&id));
                }
                self.publish_auth_view();
                self.reply_after_commit(reply, Ok(()), undo);
            }
            AuthCommand::CreateApiToken { name, role, ttl, created_by, reply } => {
                let secret = ApiTokenSecret::generate();
                let t = ApiTokenRecord {
                    name,
                    role,
                    secret_hash: hash_hex(&secret.secret),
                    created_at_ms: now,
                    expires_at_ms: now + ttl.as_millis() as u64,
                    created_by,
                };
                self.pending.mutations.push(json(format!("{API_TOKEN_PREFIX}{}", secret.id), &t));
                let out =
                    pb::CreateApiTokenResponse { token: Some(api_token_pb(&secret.id, &t)), secret: secret.encode() };
                info!(id = %secret.id, name = %t.name, role = t.role.name(), by = %t.created_by, "API token created");
                self.auth.api_tokens.insert(secret.id.clone(), t);
                self.publish_auth_view();
                self.reply_after_commit(reply, Ok(out), vec![Undo::ApiToken(secret.id, None)]);
            }
            AuthCommand::ListApiTokens { reply } => {
                let _ = reply.send(Ok(self.auth.api_tokens.iter().map(|(id, t)| api_token_pb(id, t)).collect()));
            }
            AuthCommand::RevokeApiToken { id, reply } => {
                let Some(old) = self.auth.api_tokens.remove(&id) else {
                    let _ = reply.send(Err(ApiError::NotFound(format!("no API token {id:?}"))));
                    return;
                };
                self.pending.mutations.push(Mutation::DeleteMeta(format!("{API_TOKEN_PREFIX}{id}")));
                info!(%id, "API token revoked");
                self.publish_auth_view();
                self.reply_after_commit(reply, Ok(()), vec![Undo::ApiToken(id, Some(old))]);
            }
            AuthCommand::RotateKey { reply } => {
                let new = match SigningKeyRecord::generate(now) {
                    Ok(k) => k,
                    Err(e) => return drop(reply.send(Err(ApiError::Internal(format!("key generation: {e}"))))),
                };
                // Tokens signed with the old key live at most one access TTL more.
                let overlap = (self.auth.settings.access_ttl + self.auth.settings.leeway).as_millis() as u64;
                let mut keys: Vec<SigningKeyRecord> = self
                    .auth
                    .keys
                    .records()
                    .iter()
                    .filter(|k| k.retire_at_ms.is_none_or(|r| r > now))
                    .cloned()
                    .collect();
                for k in keys.iter_mut().filter(|k| k.retire_at_ms.is_none()) {
                    k.retire_at_ms = Some(now + overlap);
                }
                let kid = new.kid.clone();
                keys.push(new);
                self.pending.mutations.push(json(KEYS_KEY.into(), &keys));
                let old = std::mem::replace(&mut self.auth.keys, Arc::new(AuthBook::ring(&self.auth.settings, keys)));
                info!(%kid, "token signing key rotated");
                self.publish_auth_view();
                self.reply_after_commit(reply, Ok(kid), vec![Undo::Keys(old)]);
            }
        }
    }

    fn refresh(&mut self, token: &RefreshSecret, now: u64) -> Result<pb::TokenPair, ApiError> {
        let unknown = || ApiError::Unauthenticated("refresh token not recognised".into());
        let (record, spent) = self.auth.sessions.get(&token.session).ok_or_else(unknown)?;
        let presented = hash_hex(&token.secret);
        if record.ended {
            return Err(ApiError::Unauthenticated("session ended; sign in again".into()));
        }
        if record.expires_at_ms <= now {
            return Err(ApiError::Unauthenticated("session expired; sign in again".into()));
        }
        if spent.contains(&presented) {
            warn!(session = %token.session, user = %record.user, "refresh token reuse: ending the session");
            let _ = self.end_session(&token.session);
            self.publish_auth_view();
            return Err(ApiError::Unauthenticated(
                "refresh token was already used: the session is ended (sign in again)".into(),
            ));
        }
        if record.secret_hash != presented || record.generation != token.generation {
            return Err(unknown());
        }
        let (user, end) = (record.user.clone(), record.expires_at_ms);
        let Some(role) = self.auth.users.get(&user).map(|u| u.role) else {
            let _ = self.end_session(&token.session);
            self.publish_auth_view();
            return Err(ApiError::Unauthenticated("user no longer exists".into()));
        };
        let next = RefreshSecret {
            session: token.session.clone(),
            generation: token.generation + 1,
            secret: secrets::random_secret(),
        };
        let pair = self.auth.token_pair(&user, role, &token.session, &next, end, now)?;
        let (record, spent) = self.auth.sessions.get_mut(&token.session).expect("checked above");
        spent.push(std::mem::replace(&mut record.secret_hash, hash_hex(&next.secret)));
        if spent.len() > SPENT_KEPT {
            spent.remove(0);
        }
        record.generation = next.generation;
        self.put_session(&token.session);
        Ok(pair)
    }

    /// Forgets sessions past their end and API tokens past their expiry.
    pub(super) fn prune_auth(&mut self) {
        let now = now_ms();
        // Kept past their end by the verification leeway, so an ended
        // session's last access token cannot come back to life.
        let grace = self.auth.settings.leeway.as_millis() as u64 + 60_000;
        let dead: Vec<String> = self
            .auth
            .sessions
            .iter()
            .filter(|(_, (s, _))| s.expires_at_ms.saturating_add(grace) <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let expired: Vec<String> =
            self.auth.api_tokens.iter().filter(|(_, t)| t.expires_at_ms <= now).map(|(id, _)| id.clone()).collect();
        if dead.is_empty() && expired.is_empty() {
            return;
        }
        for id in dead {
            self.auth.sessions.remove(&id);
            self.pending.mutations.push(Mutation::DeleteMeta(format!("{SESSION_PREFIX}{id}")));
        }
        for id in expired {
            self.auth.api_tokens.remove(&id);
            self.pending.mutations.push(Mutation::DeleteMeta(format!("{API_TOKEN_PREFIX}{id}")));
        }
        self.publish_auth_view();
    }
}
