//! Password hashes: argon2id with the crate's defaults (OWASP's minimum:
//! 19 MiB, 2 passes), stored as PHC strings. Hashing is slow on purpose, so
//! callers run it on the blocking pool.

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

/// Shortest and longest password accepted.
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 12..=256;

/// Hashes a password with a fresh salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Whether `password` matches the stored hash; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash of nothing anyone knows, verified against when the user does not
/// exist, so that "no such user" costs as much time as "wrong password".
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash(&uuid::Uuid::new_v4().to_string()).expect("argon2 hashes"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hashes_verify_and_are_salted() {
        let a = super::hash("correct horse battery").unwrap();
        let b = super::hash("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery", &a));
        assert!(!super::verify("correct horse batterY", &a));
        assert!(!super::verify("x", "not a hash"));
    }
}
