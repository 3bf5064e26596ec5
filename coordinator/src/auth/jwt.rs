//! Access tokens: EdDSA (Ed25519) JWTs, verified strictly.
//!
//! - The algorithm is pinned: only `EdDSA` is accepted, whatever the header
//!   says (no `none`, no HMAC with a public key as the secret).
//! - `kid` is required and must name a key this coordinator holds and has not
//!   retired; keys rotate with an overlap of one access-token lifetime.
//! - `exp`, `nbf`, `iss`, `aud` and `sub` are required and checked; leeway is at
//!   most 30 s. Claims are decoded into typed fields, so a string `nbf` or `exp`
//!   (CVE-2026-25537) fails to decode instead of being skipped — and the
//!   library version in use also rejects it on its own.

use super::Role;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Longest token accepted (bytes); ours are ~400.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Longest lifetime a token may claim (`exp - nbf`), whatever signed it.
pub const MAX_TOKEN_LIFETIME_S: u64 = 3600;
/// The only `token_use` of access tokens.
const ACCESS: &str = "access";

/// Claims of an access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Username.
    pub sub: String,
    /// Issued at (s).
    pub iat: u64,
    /// Not before (s).
    pub nbf: u64,
    /// Expiry (s).
    pub exp: u64,
    /// Unique id.
    pub jti: String,
    /// Sign-in session the token belongs to.
    pub sid: String,
    /// Role at issue time.
    pub role: Role,
    /// Always `access`.
    pub token_use: String,
}

/// A signing key as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// Key id (`kid`).
    pub kid: String,
    /// PKCS#8 private key, base64.
    pub pkcs8: String,
    /// Raw 32-byte public key, base64.
    pub public: String,
    /// Created (ms since the epoch).
    pub created_at_ms: u64,
    /// After this, tokens signed with it are no longer accepted (set when a newer key takes over).
    pub retire_at_ms: Option<u64>,
}

impl SigningKeyRecord {
    /// A new random Ed25519 key.
    pub fn generate(now_ms: u64) -> anyhow::Result<SigningKeyRecord> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(SigningKeyRecord {
            kid: format!("k-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            pkcs8: b64.encode(pair.serialize_der()),
            public: b64.encode(pair.public_key_raw()),
            created_at_ms: now_ms,
            retire_at_ms: None,
        })
    }
}

/// Why an access token was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts, or longer than [`MAX_TOKEN_LEN`].
    #[error("malformed token")]
    Malformed,
    /// `alg` other than EdDSA.
    #[error("algorithm not allowed (only EdDSA)")]
    Algorithm,
    /// No `kid`, or one this coordinator does not hold (or retired).
    #[error("unknown signing key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("bad signature")]
    Signature,
    /// Past `exp`.
    #[error("expired")]
    Expired,
    /// Before `nbf`.
    #[error("not yet valid")]
    NotYetValid,
    /// Wrong `iss`.
    #[error("wrong issuer")]
    Issuer,
    /// Wrong `aud`.
    #[error("wrong audience")]
    Audience,
    /// A required claim is missing or has the wrong type.
    #[error("missing or mistyped claim: {0}")]
    Claim(String),
}

/// The keys: the newest signs, every unretired one verifies.
pub struct KeyRing {
    records: Vec<SigningKeyRecord>,
    current: Option<(String, EncodingKey)>,
    verifying: HashMap<String, (DecodingKey, Option<u64>)>,
    issuer: String,
    audience: String,
    leeway_s: u64,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("kids", &self.verifying.keys().collect::<Vec<_>>()).finish()
    }
}

impl KeyRing {
    /// Builds the ring from stored keys (oldest first; the last one signs).
    pub fn new(records: Vec<SigningKeyRecord>, issuer: &str, audience: &str, leeway_s: u64) -> KeyRing {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut verifying = HashMap::new();
        let mut current = None;
        for r in &records {
            let (Ok(private), Ok(public)) = (b64.decode(&r.pkcs8), b64.decode(&r.public)) else { continue };
            if public.len() != 32 {
                continue;
            }
            verifying.insert(r.kid.clone(), (DecodingKey::from_ed_der(&public), r.retire_at_ms));
            if r.retire_at_ms.is_none() {
                current = Some((r.kid.clone(), EncodingKey::from_ed_der(&private)));
            }
        }
        KeyRing {
            records,
            current,
            verifying,
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_s: leeway_s.min(30),
        }
    }

    /// The stored records.
    pub fn records(&self) -> &[SigningKeyRecord] {
        &self.records
    }

    /// Signs claims with the current key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        self.sign_json(&serde_json::to_value(claims).map_err(|_| TokenError::Malformed)?)
    }

    /// Signs any JSON payload with the current key (with its `kid`). The
    /// negative tests use it to forge well-signed tokens with wrong claims.
    pub fn sign_json(&self, payload: &serde_json::Value) -> Result<String, TokenError> {
        let (kid, key) = self.current.as_ref().ok_or(TokenError::UnknownKey)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, payload, key).map_err(|_| TokenError::Signature)
    }

    /// Verifies a token at `now_s` (seconds since the epoch).
    pub fn verify(&self, token: &str, now_s: u64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN || token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let (key, retire_at_ms) = self.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        if retire_at_ms.is_some_and(|r| r / 1000 <= now_s) {
            return Err(TokenError::UnknownKey);
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.leeway = self.leeway_s;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature | K::InvalidEcdsaKey | K::InvalidKeyFormat => TokenError::Signature,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidAlgorithm => TokenError::Algorithm,
                K::MissingRequiredClaim(c) | K::InvalidClaimFormat(c) => TokenError::Claim(c.clone()),
                K::Json(_) => TokenError::Claim("claims do not match the access token schema".into()),
                _ => TokenError::Malformed,
            }
        })?;
        let c = data.claims;
        // Our own clock and rules, on top of the library's.
        if c.exp + self.leeway_s <= now_s {
            return Err(TokenError::Expired);
        }
        if c.nbf > now_s + self.leeway_s {
            return Err(TokenError::NotYetValid);
        }
        if c.exp <= c.nbf || c.exp - c.nbf > MAX_TOKEN_LIFETIME_S {
            return Err(TokenError::Claim("exp".into()));
        }
        if c.iss != self.issuer {
            return Err(TokenError::Issuer);
        }
        if c.aud != self.audience {
            return Err(TokenError::Audience);
        }
        if c.token_use != ACCESS {
            return Err(TokenError::Claim("token_use".into()));
        }
        Ok(c)
    }

    /// Claims for a new access token.
    pub fn claims(&self, user: &str, role: Role, session: &str, now_s: u64, ttl_s: u64) -> AccessClaims {
        AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            iat: now_s,
            nbf: now_s,
            exp: now_s + ttl_s,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            sid: session.to_string(),
            role,
            token_use: ACCESS.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ring() -> KeyRing {
        KeyRing::new(vec![SigningKeyRecord::generate(0).unwrap()], "fogplane", "fogplane-api", 30)
    }

    // The library checks times against the real clock as well as ours: use it.
    static NOW_CELL: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    });
    #[allow(non_snake_case)]
    fn NOW_() -> u64 {
        *NOW_CELL
    }

    fn payload(r: &KeyRing) -> serde_json::Value {
        serde_json::to_value(r.claims("alice", Role::Operator, "s1", NOW_(), 600)).unwrap()
    }

    fn with(r: &KeyRing, f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
        let mut p = payload(r);
        f(p.as_object_mut().unwrap());
        r.sign_json(&p).unwrap()
    }

    #[test]
    fn a_good_token_verifies() {
        let r = ring();
        let c = r.verify(&r.sign(&r.claims("alice", Role::Operator, "s1", NOW_(), 600)).unwrap(), NOW_()).unwrap();
        assert_eq!((c.sub.as_str(), c.role, c.sid.as_str()), ("alice", Role::Operator, "s1"));
    }

    #[test]
    fn claims_are_checked() {
        let r = ring();
        let cases: Vec<(String, TokenError)> = vec![
            (with(&r, |m| drop(m.insert("exp".into(), json!(NOW_() - 31)))), TokenError::Expired),
            (with(&r, |m| drop(m.insert("nbf".into(), json!(NOW_() + 31)))), TokenError::NotYetValid),
            (with(&r, |m| drop(m.insert("iss".into(), json!("other")))), TokenError::Issuer),
            (with(&r, |m| drop(m.insert("aud".into(), json!("other")))), TokenError::Audience),
            (
                with(&r, |m| drop(m.remove("nbf"))),
                TokenError::Claim("claims do not match the access token schema".into()),
            ),
            (
                with(&r, |m| drop(m.remove("aud"))),
                TokenError::Claim("claims do not match the access token schema".into()),
            ),
            (
                with(&r, |m| drop(m.insert("iss".into(), json!(7)))),
                TokenError::Claim("claims do not match the access token schema".into()),
            ),
            (with(&r, |m| drop(m.insert("exp".into(), json!(NOW_() + 7200)))), TokenError::Claim("exp".into())),
            (with(&r, |m| drop(m.insert("token_use".into(), json!("refresh")))), TokenError::Claim("token_use".into())),
        ];
        for (token, want) in cases {
            assert_eq!(r.verify(&token, NOW_()), Err(want));
        }
    }

    #[test]
    fn string_nbf_far_in_the_future_is_refused() {
        // CVE-2026-25537: a string `nbf` used to be treated as absent.
        let r = ring();
        let t = with(&r, |m| drop(m.insert("nbf".into(), json!("99999999999"))));
        assert!(matches!(r.verify(&t, NOW_()), Err(TokenError::Claim(_))), "{:?}", r.verify(&t, NOW_()));
        let t = with(&r, |m| drop(m.insert("exp".into(), json!("99999999999"))));
        assert!(matches!(r.verify(&t, NOW_()), Err(TokenError::Claim(_))));
    }

    #[test]
    fn leeway_is_thirty_seconds() {
        let r = ring();
        let t = with(&r, |m| {
            m.insert("nbf".into(), json!(NOW_() - 600));
            m.insert("exp".into(), json!(NOW_() - 29));
        });
        assert!(r.verify(&t, NOW_()).is_ok());
        assert!(r.verify(&with(&r, |m| drop(m.insert("nbf".into(), json!(NOW_() + 29)))), NOW_()).is_ok());
    }

    fn b64(v: &serde_json::Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn none_and_hmac_with_the_public_key_are_refused() {
        let r = ring();
        let kid = r.current.as_ref().unwrap().0.clone();
        let body = b64(&payload(&r));
        let none = format!("{}.{body}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})));
        assert_eq!(r.verify(&none, NOW_()), Err(TokenError::Malformed));
        // HS256 keyed with the public key bytes: the classic confusion attack.
        let public = base64::engine::general_purpose::STANDARD.decode(&r.records()[0].public).unwrap();
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(kid);
        let hs = jsonwebtoken::encode(&h, &payload(&r), &EncodingKey::from_secret(&public).unwrap()).unwrap();
        assert_eq!(r.verify(&hs, NOW_()), Err(TokenError::Algorithm));
    }

    #[test]
    fn keys_are_looked_up_by_kid_and_rotate_with_overlap() {
        let old = SigningKeyRecord::generate(0).unwrap();
        let r1 = KeyRing::new(vec![old.clone()], "fogplane", "fogplane-api", 30);
        let t_old = r1.sign(&r1.claims("alice", Role::Viewer, "s", NOW_(), 600)).unwrap();
        let mut retired = old.clone();
        retired.retire_at_ms = Some((NOW_() + 600) * 1000);
        let new = SigningKeyRecord::generate(1).unwrap();
        let r2 = KeyRing::new(vec![retired, new.clone()], "fogplane", "fogplane-api", 30);
        assert!(r2.verify(&t_old, NOW_()).is_ok(), "old tokens work during the overlap");
        assert_eq!(r2.verify(&t_old, NOW_() + 600), Err(TokenError::UnknownKey), "and not after it");
        let t_new = r2.sign(&r2.claims("alice", Role::Viewer, "s", NOW_(), 600)).unwrap();
        assert_eq!(jsonwebtoken::decode_header(&t_new).unwrap().kid.unwrap(), new.kid);
        // A ring that never held the key refuses by kid; a forged kid too.
        let other = ring();
        assert_eq!(other.verify(&t_new, NOW_()), Err(TokenError::UnknownKey));
    }

    #[test]
    fn a_signature_from_another_key_with_a_known_kid_fails() {
        let r = ring();
        let mut evil = SigningKeyRecord::generate(0).unwrap();
        evil.kid = r.records()[0].kid.clone();
        let forged = KeyRing::new(vec![evil], "fogplane", "fogplane-api", 30)
            .sign(&r.claims("mallory", Role::Admin, "s", NOW_(), 600))
            .unwrap();
        assert_eq!(r.verify(&forged, NOW_()), Err(TokenError::Signature));
    }
}
