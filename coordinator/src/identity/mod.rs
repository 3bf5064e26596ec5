//! Node identity: the coordinator's certificate authority, join tokens, CSR
//! signing, and reading a node's identity back from its client certificate.
//!
//! This module is pure: no files, no sockets, no clock. Every function takes
//! `now` as an argument and returns or accepts plain, serialisable state
//! ([`JoinTokenRecord`], the CA's PEM strings, [`CertDenylist`] entries); the
//! caller decides where it is stored and when it is durable.
//!
//! What it guarantees:
//! - A node certificate is built only from the coordinator's own choices plus
//!   the public key of a CSR whose signature was verified (proof that the node
//!   holds the private key). Nothing else in the CSR is read.
//! - A node's identity is the single SPIFFE URI SAN
//!   `spiffe://<trust-domain>/node/<node-id>` of its certificate, and nothing
//!   else ([`node_identity`]).
//! - Join tokens are stored only as a hash of their secret, are checked in
//!   constant time, and say precisely why they were refused.
//!
//! What it is not: it does not verify certificate chains (rustls does, during
//! the TLS handshake, before [`node_identity`] is asked), it does not mark
//! tokens used (the caller must do that durably before issuing a
//! certificate), and it does not keep the CA key in protected memory.
//!
//! Keys are ECDSA P-256 (see [`CertificateAuthority`] for why).

mod ca;
mod context;
mod csr;
mod denylist;
mod peer;
mod tokens;

pub use ca::{CertificateAuthority, DEFAULT_NODE_CERT_TTL, IssuedCert};
pub use context::IdentityContext;
pub use denylist::CertDenylist;
pub use peer::{FORWARDED_CLIENT_CERT, NodeIdentity, is_replica, node_identity, spiffe_node_uri, spiffe_replica_uri};
pub use tokens::{
    DEFAULT_JOIN_TOKEN_TTL, JoinTokenRecord, ParsedToken, check_join_token, create_join_token, parse_join_token,
};

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fog_core::domain::NameError;

/// Why an identity operation was refused. Messages never contain secrets
/// (token secrets, private keys) — only ids, names and reasons.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The trust domain is not a valid lowercase DNS name.
    #[error("invalid trust domain: {0}")]
    InvalidTrustDomain(&'static str),
    /// The node id does not follow the id syntax.
    #[error("invalid node id: {0}")]
    InvalidNodeId(NameError),
    /// The CA certificate could not be used.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCert(&'static str),
    /// The CA private key could not be parsed (PKCS#8 PEM is required).
    #[error("invalid CA private key: {0}")]
    InvalidCaKey(&'static str),
    /// The CA key does not belong to the CA certificate.
    #[error("the CA private key does not match the CA certificate")]
    CaKeyMismatch,
    /// The CA has expired (or is not yet valid) at `now`.
    #[error("the CA certificate is not valid at this time")]
    CaNotValid,
    /// The CSR is not a well-formed PKCS#10 request.
    #[error("malformed certificate signing request: {0}")]
    CsrMalformed(&'static str),
    /// The CSR's signature does not verify with its own public key: it was
    /// tampered with, or the requester does not hold the private key.
    #[error("certificate signing request signature is invalid")]
    CsrSignatureInvalid,
    /// The CSR's key or signature algorithm is not one we issue for.
    #[error("unsupported key in certificate signing request (accepted: ECDSA P-256, ECDSA P-384, Ed25519)")]
    CsrUnsupportedKey,
    /// A server certificate was asked for with no or bad names.
    #[error("invalid subject alternative name: {0}")]
    InvalidSan(String),
    /// A zero or absurd lifetime, or a time outside what X.509 can encode.
    #[error("invalid time or lifetime: {0}")]
    InvalidTime(&'static str),
    /// rcgen refused to build the certificate (an internal error).
    #[error("certificate generation failed: {0}")]
    Generation(String),
    /// The peer certificate could not be parsed.
    #[error("malformed peer certificate: {0}")]
    CertMalformed(&'static str),
    /// The peer certificate carries no usable node identity.
    #[error("peer certificate has no valid node identity: {0}")]
    CertNoIdentity(&'static str),
    /// The peer certificate's identity is from another trust domain.
    #[error("peer certificate belongs to trust domain {got:?}, expected {expected:?}")]
    CertWrongTrustDomain {
        /// Our trust domain.
        expected: String,
        /// The certificate's.
        got: String,
    },
    /// The token string is not a well-formed join token.
    #[error("malformed join token: {0}")]
    TokenMalformed(&'static str),
    /// No such token, or the secret is wrong (deliberately indistinguishable).
    #[error("unknown join token")]
    TokenUnknown,
    /// The token was already used to join.
    #[error("join token already used")]
    TokenUsed,
    /// The token's lifetime is over.
    #[error("join token expired")]
    TokenExpired,
    /// The token is bound to another node name.
    #[error("join token is bound to node {bound:?}, not {presented:?}")]
    TokenNameMismatch {
        /// The name in the record.
        bound: String,
        /// The name the node asked for.
        presented: String,
    },
}

/// A SPIFFE trust domain, e.g. `fog.local`: a lowercase DNS name (labels of
/// `[a-z0-9-]`, 1–63 characters, no leading or trailing `-`; at most 253 in
/// all). It names the fleet in every node identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrustDomain(String);

impl TrustDomain {
    /// Validates and wraps a trust domain name.
    pub fn new(s: &str) -> Result<Self, IdentityError> {
        if s.is_empty() {
            return Err(IdentityError::InvalidTrustDomain("must not be empty"));
        }
        if s.len() > 253 {
            return Err(IdentityError::InvalidTrustDomain("must be at most 253 characters"));
        }
        for label in s.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(IdentityError::InvalidTrustDomain("each dot-separated label must be 1 to 63 characters"));
            }
            if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return Err(IdentityError::InvalidTrustDomain("only a-z 0-9 - and . are allowed"));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(IdentityError::InvalidTrustDomain("a label must not start or end with -"));
            }
        }
        Ok(TrustDomain(s.to_owned()))
    }

    /// The name, e.g. `fog.local`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TrustDomain {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TrustDomain::new(s)
    }
}

fn validate_node_id(node_id: &str) -> Result<(), IdentityError> {
    fog_core::domain::validate_id(node_id).map_err(IdentityError::InvalidNodeId)
}

/// Whole seconds since the Unix epoch; X.509 times have second precision, so
/// every validity bound is computed in seconds and reported exactly as encoded.
fn unix_secs(t: SystemTime) -> Result<i64, IdentityError> {
    let d = t.duration_since(UNIX_EPOCH).map_err(|_| IdentityError::InvalidTime("time is before 1970"))?;
    i64::try_from(d.as_secs()).map_err(|_| IdentityError::InvalidTime("time out of range"))
}

fn from_unix_secs(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0).unsigned_abs())
}

fn ttl_secs(ttl: Duration) -> Result<i64, IdentityError> {
    // 100 years is far beyond any sane lifetime and keeps arithmetic in range.
    const MAX: u64 = 100 * 366 * 24 * 3600;
    match ttl.as_secs() {
        0 => Err(IdentityError::InvalidTime("lifetime must be at least one second")),
        s if s > MAX => Err(IdentityError::InvalidTime("lifetime is longer than 100 years")),
        s => Ok(s as i64),
    }
}

fn offset_date_time(secs: i64) -> Result<time::OffsetDateTime, IdentityError> {
    time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| IdentityError::InvalidTime("time out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_domain_accepts_dns_names() {
        for ok in ["fog.local", "a", "edge-1.example.com", "x1.y2"] {
            assert_eq!(TrustDomain::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn trust_domain_refuses_bad_names() {
        let long_label = "a".repeat(64);
        let long_total = ["abc"; 70].join(".");
        for bad in ["", "Fog.local", "fog..local", ".fog", "fog.", "-fog.local", "fog-.local", "fog_local", "fog/x"] {
            assert!(TrustDomain::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(TrustDomain::new(&long_label).is_err());
        assert!(TrustDomain::new(&long_total).is_err());
    }
}
