//! How the agent reaches a coordinator. The seam where mTLS plugs in: the
//! session code asks a [`Transport`] for a channel and never builds one itself.
//! This build has only the plaintext variant, which the operator must ask for
//! explicitly (`--insecure`); the coordinator must run with `--insecure-dev`.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The address is not a usable URI.
    #[error("invalid coordinator address {addr:?}: {reason}")]
    BadAddress {
        /// The address as configured.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Connecting failed.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// A way to reach the coordinator.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Plaintext HTTP/2 (insecure dev mode only): the coordinator learns the
    /// node's identity from its hello.
    Plaintext {
        /// Bound on TCP connect.
        connect_timeout: Duration,
    },
}

/// `host:port` → `http://host:port`; URLs are kept.
pub fn normalize(addr: &str) -> String {
    if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") }
}

impl Transport {
    /// Checks an address without connecting (config validation).
    pub fn check_address(&self, addr: &str) -> Result<(), TransportError> {
        let url = normalize(addr);
        let bad = |reason: String| TransportError::BadAddress { addr: addr.to_string(), reason };
        let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
        match (self, uri.scheme_str()) {
            (Transport::Plaintext { .. }, Some("http")) => {}
            (Transport::Plaintext { .. }, s) => {
                return Err(bad(format!("scheme {s:?} needs TLS, not available in this build")));
            }
        }
        if uri.host().is_none() || uri.port().is_none() {
            return Err(bad("expected host:port".into()));
        }
        Ok(())
    }

    /// Opens a channel to `addr` (one HTTP/2 connection; the session is one
    /// stream on it).
    pub async fn connect(&self, addr: &str) -> Result<Channel, TransportError> {
        let url = normalize(addr);
        match self {
            Transport::Plaintext { connect_timeout } => {
                let endpoint = Endpoint::from_shared(url)
                    .map_err(|e| TransportError::BadAddress { addr: addr.to_string(), reason: e.to_string() })?
                    .connect_timeout(*connect_timeout)
                    // Keepalive notices a dead link even when the session is idle
                    // between heartbeats (e.g. a NAT dropping the mapping).
                    .http2_keep_alive_interval(Duration::from_secs(20))
                    .keep_alive_timeout(Duration::from_secs(10))
                    .tcp_nodelay(true);
                endpoint.connect().await.map_err(|source| TransportError::Connect { addr: addr.to_string(), source })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        let t = Transport::Plaintext { connect_timeout: Duration::from_secs(1) };
        assert!(t.check_address("127.0.0.1:7443").is_ok());
        assert!(t.check_address("http://coord.local:7443").is_ok());
        assert!(t.check_address("https://coord.local:7443").is_err());
        assert!(t.check_address("coord.local").is_err());
        assert!(t.check_address("not an address").is_err());
    }
}
