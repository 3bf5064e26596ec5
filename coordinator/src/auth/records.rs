//! The auth records as stored (JSON in the store's meta table) and the rules
//! for names and passwords.

use super::Role;
use serde::{Deserialize, Serialize};

/// Meta key prefix of users.
pub const USER_PREFIX: &str = "user/";
/// Meta key prefix of API tokens.
pub const API_TOKEN_PREFIX: &str = "apitoken/";
/// Meta key prefix of sign-in sessions.
pub const SESSION_PREFIX: &str = "session/";
/// Meta key of the signing keys.
pub const KEYS_KEY: &str = "auth/keys";

/// A user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserRecord {
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Created (ms).
    pub created_at_ms: u64,
}

/// An API token (its secret's hash only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// What it is for.
    pub name: String,
    /// Role.
    pub role: Role,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    /// Created (ms).
    pub created_at_ms: u64,
    /// Expires (ms).
    pub expires_at_ms: u64,
    /// Who created it.
    pub created_by: String,
}

/// A sign-in session: the chain of refresh tokens from one sign-in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The user.
    pub user: String,
    /// Generation of the only refresh token that works now.
    pub generation: u64,
    /// SHA-256 of that token's secret, hex.
    pub secret_hash: String,
    /// The session ends at this time whatever happens (ms).
    pub expires_at_ms: u64,
    /// Ended early (sign-out, reuse detected, user deleted).
    pub ended: bool,
}

/// Usernames: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("must be 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit".into())
    }
}

/// Passwords: 12–256 characters.
pub fn check_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if super::password::PASSWORD_LEN.contains(&n) && password.len() <= 1024 {
        Ok(())
    } else {
        Err(format!(
            "must be {}-{} characters",
            super::password::PASSWORD_LEN.start(),
            super::password::PASSWORD_LEN.end()
        ))
    }
}
