//! Opaque secrets: API tokens (`fogapi_<id>_<secret>`) and refresh tokens
//! (`fogrt_<session>_<generation>_<secret>`). Only the SHA-256 of a secret is
//! stored; the secret is shown once.

use rand::RngCore;
use sha2::{Digest, Sha256};

const API_PREFIX: &str = "fogapi_";
const REFRESH_PREFIX: &str = "fogrt_";

/// 32 random bytes, hex.
pub fn random_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// 8 random bytes, hex: ids of API tokens and sessions.
pub fn random_id() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// SHA-256 of a secret.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether a secret matches a stored hash. Compares digests, so the time taken
/// says nothing about the secret.
pub fn hash_matches(secret: &str, stored: &[u8; 32]) -> bool {
    let h = hash(secret);
    h.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A parsed API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenSecret {
    /// Public id.
    pub id: String,
    /// The secret part.
    pub secret: String,
}

impl ApiTokenSecret {
    /// A new token.
    pub fn generate() -> ApiTokenSecret {
        ApiTokenSecret { id: random_id(), secret: random_secret() }
    }

    /// Parses `fogapi_<16 hex>_<64 hex>`; anything else is not an API token.
    pub fn parse(s: &str) -> Option<ApiTokenSecret> {
        let (id, secret) = s.strip_prefix(API_PREFIX)?.split_once('_')?;
        (is_hex(id, 16) && is_hex(secret, 64)).then(|| ApiTokenSecret { id: id.into(), secret: secret.into() })
    }

    /// The bearer string.
    pub fn encode(&self) -> String {
        format!("{API_PREFIX}{}_{}", self.id, self.secret)
    }
}

/// A parsed refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSecret {
    /// Sign-in session id.
    pub session: String,
    /// Rotation number within the session.
    pub generation: u64,
    /// The secret part.
    pub secret: String,
}

impl RefreshSecret {
    /// Parses `fogrt_<16 hex>_<generation>_<64 hex>`.
    pub fn parse(s: &str) -> Option<RefreshSecret> {
        let mut parts = s.strip_prefix(REFRESH_PREFIX)?.split('_');
        let (session, generation, secret) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_hex(session, 16) || !is_hex(secret, 64) || generation.len() > 19 {
            return None;
        }
        Some(RefreshSecret { session: session.into(), generation: generation.parse().ok()?, secret: secret.into() })
    }

    /// The bearer string.
    pub fn encode(&self) -> String {
        format!("{REFRESH_PREFIX}{}_{}_{}", self.session, self.generation, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let a = ApiTokenSecret::generate();
        assert_eq!(ApiTokenSecret::parse(&a.encode()), Some(a.clone()));
        let r = RefreshSecret { session: random_id(), generation: 7, secret: random_secret() };
        assert_eq!(RefreshSecret::parse(&r.encode()), Some(r));
        assert!(hash_matches(&a.secret, &hash(&a.secret)));
        assert!(!hash_matches("x", &hash(&a.secret)));
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_only_accept_their_shape(s in ".{0,200}") {
            if let Some(a) = ApiTokenSecret::parse(&s) { prop_assert_eq!(a.encode(), s.clone()); }
            if let Some(r) = RefreshSecret::parse(&s) { prop_assert!(s.starts_with(REFRESH_PREFIX)); let _ = r; }
        }
    }
}
