//! Authentication and authorization of people and programs.
//!
//! - [`jwt`]: the signing keys and strict verification of access tokens.
//! - [`password`]: argon2id password hashes.
//! - [`secrets`]: opaque API tokens and rotating refresh tokens (only hashes stored).
//! - [`policy`]: the one table of which RPC needs which credential and role.
//! - [`limits`]: rate limits (GCRA, per address and per identity) and concurrency limits.
//! - [`layer`]: the tower layer that enforces all of it in front of every service.
//! - [`bootstrap`]: creating the first admin offline, before the coordinator runs.
//!
//! The state (users, API tokens, sign-in sessions, keys) is owned by the engine
//! (`engine/auth.rs`), which publishes an immutable [`AuthView`] after every
//! commit that changes what the layer must check.

pub mod bootstrap;
pub mod jwt;
pub mod layer;
pub mod limits;
pub mod password;
pub mod policy;
pub mod records;
pub mod secrets;

use fog_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

pub use jwt::{AccessClaims, KeyRing, SigningKeyRecord, TokenError};
pub use layer::AuthLayer;
pub use limits::{LimitSettings, Limits};

/// What a principal may do; each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read and watch.
    Viewer,
    /// Tasks, cordon, drain, maintenance.
    Operator,
    /// Join tokens, node removal and labels, users, API tokens, keys.
    Admin,
}

impl Role {
    /// From the wire; `None` for unspecified or unknown values.
    pub fn from_pb(v: i32) -> Option<Role> {
        match pb::Role::try_from(v).ok()? {
            pb::Role::Viewer => Some(Role::Viewer),
            pb::Role::Operator => Some(Role::Operator),
            pb::Role::Admin => Some(Role::Admin),
            pb::Role::Unspecified => None,
        }
    }

    /// To the wire.
    pub fn to_pb(self) -> pb::Role {
        match self {
            Role::Viewer => pb::Role::Viewer,
            Role::Operator => pb::Role::Operator,
            Role::Admin => pb::Role::Admin,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who is calling, as the auth layer established it; handlers find it in the
/// request's extensions.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Username, or `api-token:<id>`.
    pub subject: String,
    /// The role in force now (from the user record, not the token).
    pub role: Role,
    /// How the caller authenticated.
    pub credential: Credential,
    /// When the credential stops working (ms since the epoch).
    pub expires_at_ms: u64,
}

/// How a principal authenticated.
#[derive(Clone, Debug)]
pub enum Credential {
    /// An access token of this sign-in session.
    Access {
        /// Session id.
        session: String,
    },
    /// An API token.
    ApiToken {
        /// Token id.
        id: String,
    },
}

/// Token lifetimes and the names tokens are bound to.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// `iss` of access tokens.
    pub issuer: String,
    /// `aud` of access tokens.
    pub audience: String,
    /// Access token lifetime (5–15 min).
    pub access_ttl: Duration,
    /// Sign-in session lifetime (refresh tokens rotate within it).
    pub session_ttl: Duration,
    /// Clock skew tolerated on `exp` and `nbf` (≤ 30 s).
    pub leeway: Duration,
    /// Rate and concurrency limits.
    pub limits: LimitSettings,
}

impl Default for AuthSettings {
    fn default() -> AuthSettings {
        AuthSettings {
            issuer: "fogplane".into(),
            audience: "fogplane-api".into(),
            access_ttl: Duration::from_secs(10 * 60),
            session_ttl: Duration::from_secs(24 * 3600),
            leeway: Duration::from_secs(30),
            limits: LimitSettings::default(),
        }
    }
}

/// An API token as the layer checks it.
#[derive(Clone, Debug)]
pub struct ApiTokenView {
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// Its role.
    pub role: Role,
    /// Expiry (ms since the epoch).
    pub expires_at_ms: u64,
}

/// What the layer checks credentials against: immutable, replaced whole by the
/// engine after each commit that changes it.
#[derive(Debug)]
pub struct AuthView {
    /// Verification (and signing) keys.
    pub keys: std::sync::Arc<KeyRing>,
    /// Users and their current roles.
    pub users: HashMap<String, Role>,
    /// API tokens by id.
    pub api_tokens: HashMap<String, ApiTokenView>,
    /// Sign-in sessions that were ended (sign-out, refresh-token reuse, user
    /// deleted) and whose access tokens may still be unexpired.
    pub ended_sessions: HashSet<String>,
}

/// Why a credential was refused (the message says which check failed, never a secret).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// The access token failed verification.
    #[error("invalid access token: {0}")]
    Token(#[from] TokenError),
    /// Unknown or wrong API token.
    #[error("invalid API token")]
    ApiToken,
    /// The API token expired.
    #[error("API token expired")]
    ApiTokenExpired,
    /// The user no longer exists.
    #[error("user no longer exists")]
    UnknownUser,
    /// The session was ended.
    #[error("session ended (signed out or refresh token reused); sign in again")]
    SessionEnded,
}

impl AuthView {
    /// Checks a bearer credential (access token or API token) at `now_ms`.
    pub fn authenticate(&self, token: &str, now_ms: u64) -> Result<Principal, AuthError> {
        if let Some(parsed) = secrets::ApiTokenSecret::parse(token) {
            let t = self.api_tokens.get(&parsed.id).ok_or(AuthError::ApiToken)?;
            if !secrets::hash_matches(&parsed.secret, &t.secret_hash) {
                return Err(AuthError::ApiToken);
            }
            if t.expires_at_ms <= now_ms {
                return Err(AuthError::ApiTokenExpired);
            }
            return Ok(Principal {
                subject: format!("api-token:{}", parsed.id),
                role: t.role,
                credential: Credential::ApiToken { id: parsed.id },
                expires_at_ms: t.expires_at_ms,
            });
        }
        let claims = self.keys.verify(token, now_ms / 1000)?;
        if self.ended_sessions.contains(&claims.sid) {
            return Err(AuthError::SessionEnded);
        }
        let role = *self.users.get(&claims.sub).ok_or(AuthError::UnknownUser)?;
        Ok(Principal {
            subject: claims.sub,
            // Never more than the token says, never more than the user has now.
            role: role.min(claims.role),
            credential: Credential::Access { session: claims.sid },
            expires_at_ms: claims.exp * 1000,
        })
    }
}
