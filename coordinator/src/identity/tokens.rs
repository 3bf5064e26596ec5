//! Join tokens: single-use, short-lived secrets that let a new node ask for
//! its first certificate.
//!
//! The string is `FOG1<ca-fingerprint>::<id>.<secret>` (after K3s's
//! `K10<ca-hash>::<id>.<secret>`): 64 hex digits of the CA certificate's
//! SHA-256, so the agent can pin the coordinator before it sends anything;
//! a 64-bit id, the store key; a 256-bit secret, of which only the SHA-256 is
//! stored. All hex is lowercase; a token is exactly 151 characters.

use std::fmt;
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::IdentityError;

/// The default lifetime of a join token.
pub const DEFAULT_JOIN_TOKEN_TTL: Duration = Duration::from_secs(3600);

const PREFIX: &str = "FOG1";
const FINGERPRINT_HEX: usize = 64;
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;
/// Anything longer is refused before it is looked at.
const MAX_TOKEN_LEN: usize = 256;

/// What the store keeps for a join token. Never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    /// The token id (16 lowercase hex digits), the store key.
    pub id: String,
    /// SHA-256 of the secret, lowercase hex.
    pub secret_hash: String,
    /// Unix milliseconds after which the token is refused.
    pub expires_at_ms: u64,
    /// If set, only a node joining under this name may use the token.
    pub node_name: Option<String>,
    /// Labels the node gets when it joins (validated by the caller).
    pub labels: Vec<(String, String)>,
    /// Set, durably, before a certificate is issued for the token.
    pub used: bool,
    /// Unix milliseconds.
    pub created_at_ms: u64,
}

/// A token string taken apart. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// SHA-256 of the CA certificate, lowercase hex.
    pub ca_fingerprint: String,
    /// The token id.
    pub id: String,
    /// The secret, lowercase hex.
    pub secret: String,
}

impl fmt::Debug for ParsedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedToken")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Creates a token for the CA with fingerprint `ca_fingerprint` (from
/// [`super::CertificateAuthority::fingerprint`]). Returns the string to hand
/// to the operator — shown once, never stored — and the record to store.
/// The node name and labels are stored as given; validate them first.
pub fn create_join_token(
    ca_fingerprint: &str,
    ttl: Duration,
    node_name: Option<String>,
    labels: Vec<(String, String)>,
    now_ms: u64,
) -> (String, JoinTokenRecord) {
    let fingerprint = ca_fingerprint.to_ascii_lowercase();
    debug_assert!(is_lower_hex(&fingerprint, FINGERPRINT_HEX), "not a CA fingerprint");
    let mut rng = rand::rng();
    let mut id = [0u8; ID_HEX / 2];
    let mut secret = [0u8; SECRET_HEX / 2];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let record = JoinTokenRecord {
        id: id.clone(),
        secret_hash: hash_secret(&secret),
        expires_at_ms: now_ms.saturating_add(ttl_ms),
        node_name,
        labels,
        used: false,
        created_at_ms: now_ms,
    };
    (format!("{PREFIX}{fingerprint}::{id}.{secret}"), record)
}

/// Takes a token string apart. Strict: the exact prefix, lengths and
/// lowercase hex, nothing before or after (trim user input first). Never
/// panics; the error names the first problem found, never the secret.
pub fn parse_join_token(s: &str) -> Result<ParsedToken, IdentityError> {
    if s.is_empty() {
        return Err(IdentityError::TokenMalformed("empty"));
    }
    if s.len() > MAX_TOKEN_LEN {
        return Err(IdentityError::TokenMalformed("too long"));
    }
    let rest = s.strip_prefix(PREFIX).ok_or(IdentityError::TokenMalformed("does not start with FOG1"))?;
    let (fingerprint, rest) =
        rest.split_once("::").ok_or(IdentityError::TokenMalformed("missing `::` after the CA fingerprint"))?;
    let (id, secret) =
        rest.split_once('.').ok_or(IdentityError::TokenMalformed("missing `.` between id and secret"))?;
    if !is_lower_hex(fingerprint, FINGERPRINT_HEX) {
        return Err(IdentityError::TokenMalformed("CA fingerprint must be 64 lowercase hex digits"));
    }
    if !is_lower_hex(id, ID_HEX) {
        return Err(IdentityError::TokenMalformed("id must be 16 lowercase hex digits"));
    }
    if !is_lower_hex(secret, SECRET_HEX) {
        return Err(IdentityError::TokenMalformed("secret must be 64 lowercase hex digits"));
    }
    Ok(ParsedToken { ca_fingerprint: fingerprint.to_owned(), id: id.to_owned(), secret: secret.to_owned() })
}

/// Checks a presented token against its stored record for a node joining as
/// `node_name`. In order: the id and secret (a wrong secret is reported as
/// [`IdentityError::TokenUnknown`], so a guesser learns nothing about the
/// token's state), unused, unexpired (`now_ms < expires_at_ms`), name binding.
///
/// It does not mark the token used: the caller must persist `used = true`
/// before it issues the certificate, so two concurrent joins cannot both
/// succeed. The CA fingerprint in the token is for the agent; a caller may
/// compare it with its own CA's for a clearer error.
pub fn check_join_token(
    presented: &ParsedToken,
    record: &JoinTokenRecord,
    node_name: &str,
    now_ms: u64,
) -> Result<(), IdentityError> {
    if presented.id != record.id {
        return Err(IdentityError::TokenUnknown);
    }
    let Ok(stored) = hex::decode(&record.secret_hash) else {
        return Err(IdentityError::TokenUnknown);
    };
    if !constant_time_eq(&Sha256::digest(presented.secret.as_bytes()), &stored) {
        return Err(IdentityError::TokenUnknown);
    }
    if record.used {
        return Err(IdentityError::TokenUsed);
    }
    if now_ms >= record.expires_at_ms {
        return Err(IdentityError::TokenExpired);
    }
    match &record.node_name {
        Some(bound) if bound != node_name => {
            Err(IdentityError::TokenNameMismatch { bound: bound.clone(), presented: node_name.to_owned() })
        }
        _ => Ok(()),
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Compares without an early exit, so the time taken does not tell how many
/// leading bytes matched. (The inputs are hashes, which already leaves an
/// attacker little to learn; this closes the rest.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const NOW: u64 = 1_750_000_000_000;

    fn token(node_name: Option<&str>) -> (String, JoinTokenRecord) {
        create_join_token(
            FP,
            DEFAULT_JOIN_TOKEN_TTL,
            node_name.map(str::to_owned),
            vec![("zone".into(), "a".into())],
            NOW,
        )
    }

    #[test]
    fn round_trip_create_parse_check() {
        let (s, rec) = token(None);
        assert_eq!(s.len(), 151);
        let p = parse_join_token(&s).unwrap();
        assert_eq!(p.ca_fingerprint, FP);
        assert_eq!(p.id, rec.id);
        assert_eq!(rec.secret_hash, hash_secret(&p.secret));
        assert!(!s.contains(&rec.secret_hash), "the stored hash is not the secret");
        assert_eq!(rec.expires_at_ms, NOW + 3_600_000);
        assert_eq!((rec.created_at_ms, rec.used), (NOW, false));
        assert_eq!(rec.labels, [("zone".to_owned(), "a".to_owned())]);
        assert_eq!(check_join_token(&p, &rec, "any-name", NOW), Ok(()));
        assert_eq!(check_join_token(&p, &rec, "any-name", NOW + 3_599_999), Ok(()));
    }

    #[test]
    fn tokens_are_unique() {
        let (a, ra) = token(None);
        let (b, rb) = token(None);
        assert_ne!(a, b);
        assert_ne!(ra.id, rb.id);
        assert_ne!(ra.secret_hash, rb.secret_hash);
    }

    #[test]
    fn uppercase_fingerprint_is_normalised() {
        let (s, _) = create_join_token(&FP.to_uppercase(), DEFAULT_JOIN_TOKEN_TTL, None, vec![], NOW);
        assert_eq!(parse_join_token(&s).unwrap().ca_fingerprint, FP);
    }

    #[test]
    fn used_token_is_refused() {
        let (s, mut rec) = token(None);
        rec.used = true;
        assert_eq!(check_join_token(&parse_join_token(&s).unwrap(), &rec, "n1", NOW), Err(IdentityError::TokenUsed));
    }

    #[test]
    fn expired_token_is_refused() {
        let (s, rec) = token(None);
        let p = parse_join_token(&s).unwrap();
        assert_eq!(check_join_token(&p, &rec, "n1", NOW + 3_600_000), Err(IdentityError::TokenExpired));
        assert_eq!(check_join_token(&p, &rec, "n1", u64::MAX), Err(IdentityError::TokenExpired));
        // A huge ttl saturates instead of wrapping into the past.
        let (s, rec) = create_join_token(FP, Duration::MAX, None, vec![], NOW);
        assert_eq!(rec.expires_at_ms, u64::MAX);
        assert_eq!(check_join_token(&parse_join_token(&s).unwrap(), &rec, "n1", NOW), Ok(()));
    }

    #[test]
    fn wrong_secret_or_id_is_unknown_whatever_the_record_state() {
        let (s, mut rec) = token(Some("n1"));
        let mut p = parse_join_token(&s).unwrap();
        let good = p.secret.clone();
        p.secret = format!("{}{}", &good[..63], if good.ends_with('0') { '1' } else { '0' });
        assert_eq!(check_join_token(&p, &rec, "n1", NOW), Err(IdentityError::TokenUnknown));
        // Used, expired and bound to another name, but the secret is wrong:
        // none of that is revealed.
        rec.used = true;
        assert_eq!(check_join_token(&p, &rec, "n2", u64::MAX), Err(IdentityError::TokenUnknown));
        rec.used = false;
        p.secret = good;
        p.id = "ffffffffffffffff".into();
        assert_eq!(check_join_token(&p, &rec, "n1", NOW), Err(IdentityError::TokenUnknown));
        // A corrupt stored hash never matches.
        let (s, mut rec) = token(None);
        rec.secret_hash = "zz".into();
        assert_eq!(check_join_token(&parse_join_token(&s).unwrap(), &rec, "n1", NOW), Err(IdentityError::TokenUnknown));
    }

    #[test]
    fn token_bound_to_another_name_is_refused() {
        let (s, rec) = token(Some("gateway-1"));
        let p = parse_join_token(&s).unwrap();
        assert_eq!(check_join_token(&p, &rec, "gateway-1", NOW), Ok(()));
        assert_eq!(
            check_join_token(&p, &rec, "gateway-2", NOW),
            Err(IdentityError::TokenNameMismatch { bound: "gateway-1".into(), presented: "gateway-2".into() })
        );
    }

    #[test]
    fn malformed_strings_are_refused() {
        let (s, _) = token(None);
        let id_at = 4 + 64 + 2;
        let secret_at = id_at + 17;
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("x".repeat(MAX_TOKEN_LEN + 1), "too long"),
            (format!("{s}{}", "0".repeat(200)), "too long"),
            (format!("K10{}", &s[4..]), "does not start with FOG1"),
            (format!("fog1{}", &s[4..]), "does not start with FOG1"),
            (format!(" {s}"), "does not start with FOG1"),
            ("FOG1".into(), "missing `::` after the CA fingerprint"),
            (s.replacen("::", ":", 1), "missing `::` after the CA fingerprint"),
            (s[..secret_at - 1].to_owned(), "missing `.` between id and secret"),
            (format!("FOG1{FP}::"), "missing `.` between id and secret"),
            (format!("FOG1::{}", &s[id_at..]), "CA fingerprint must be 64 lowercase hex digits"),
            (s.replacen(&s[4..8], "ABCD", 1), "CA fingerprint must be 64 lowercase hex digits"),
            (format!("FOG1{}g::{}", &FP[..63], &s[id_at..]), "CA fingerprint must be 64 lowercase hex digits"),
            (format!("{}.{}", &s[..secret_at - 2], &s[secret_at..]), "id must be 16 lowercase hex digits"),
            (format!("{}x.{}", &s[..secret_at - 2], &s[secret_at..]), "id must be 16 lowercase hex digits"),
            (format!("{}..{}", &s[..secret_at - 1], &s[secret_at..]), "secret must be 64 lowercase hex digits"),
            (format!("{} ", s), "secret must be 64 lowercase hex digits"),
            (format!("{}\n", s), "secret must be 64 lowercase hex digits"),
            (s[..s.len() - 1].to_owned(), "secret must be 64 lowercase hex digits"),
            (format!("{}é", &s[..s.len() - 2]), "secret must be 64 lowercase hex digits"),
        ];
        for (input, reason) in cases {
            assert_eq!(parse_join_token(&input), Err(IdentityError::TokenMalformed(reason)), "{input:?}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let (s, rec) = token(Some("n1"));
        let p = parse_join_token(&s).unwrap();
        assert!(!format!("{p:?}").contains(&p.secret));
        for e in [check_join_token(&p, &rec, "n2", NOW).unwrap_err(), parse_join_token(&format!("{s}x")).unwrap_err()] {
            assert!(!e.to_string().contains(&p.secret));
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse_join_token(&s);
        }

        #[test]
        fn parse_never_panics_near_valid_tokens(cut in 0usize..160, byte in any::<char>(), at in 0usize..160) {
            let (s, _) = token(None);
            let mut chars: Vec<char> = s.chars().collect();
            let at = at.min(chars.len());
            chars.insert(at, byte);
            chars.truncate(cut.max(1));
            let mutated: String = chars.into_iter().collect();
            if let Ok(p) = parse_join_token(&mutated) {
                // Anything accepted must re-serialise to the exact input.
                prop_assert_eq!(format!("{PREFIX}{}::{}.{}", p.ca_fingerprint, p.id, p.secret), mutated);
            }
        }

        #[test]
        fn every_created_token_parses_back(ttl_s in 1u64..1_000_000, now in 0u64..u64::MAX / 2) {
            let (s, rec) = create_join_token(FP, Duration::from_secs(ttl_s), None, vec![], now);
            let p = parse_join_token(&s).unwrap();
            prop_assert_eq!(&p.id, &rec.id);
            prop_assert_eq!(check_join_token(&p, &rec, "n", now), Ok(()));
        }
    }
}
