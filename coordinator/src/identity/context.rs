//! The identity settings a running coordinator shares between its API and
//! its engine: the CA and the lifetimes it issues with.

use super::{CertificateAuthority, TrustDomain};
use std::time::Duration;

/// What the coordinator needs to admit and identify nodes over mTLS.
#[derive(Debug)]
pub struct IdentityContext {
    /// The certificate authority.
    pub ca: CertificateAuthority,
    /// Lifetime of node certificates.
    pub node_cert_ttl: Duration,
    /// Default lifetime of join tokens.
    pub join_token_ttl: Duration,
}

impl IdentityContext {
    /// The trust domain node identities belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        self.ca.trust_domain()
    }
}
