//! How the agent reaches a coordinator: the session code asks a [`Transport`]
//! for a channel and never builds one itself. The default is mTLS with the
//! node's certificate ([`Transport::Tls`]); plaintext exists only for dev and
//! must be asked for explicitly (`--insecure`, coordinator on `--insecure-dev`).

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

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

fn connect_error(addr: &str) -> impl FnOnce(tonic::transport::Error) -> TransportError + '_ {
    move |source| TransportError::Connect { addr: addr.to_string(), source }
}

/// A way to reach the coordinator. Its `Debug` never shows the key.
#[derive(Clone)]
pub enum Transport {
    /// Plaintext HTTP/2 (insecure dev mode only): the coordinator learns the
    /// node's identity from its hello.
    Plaintext {
        /// Bound on TCP connect.
        connect_timeout: Duration,
    },
    /// mTLS: the coordinator is verified against `ca` (the only trust root;
    /// server name from the address's host) and the node presents `cert`,
    /// which is its identity.
    Tls {
        /// The CA certificate, PEM.
        ca: String,
        /// The node certificate, PEM.
        cert: String,
        /// The node's private key, PEM.
        key: String,
        /// Bound on TCP connect and handshake.
        connect_timeout: Duration,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Plaintext { connect_timeout } => {
                f.debug_struct("Plaintext").field("connect_timeout", connect_timeout).finish()
            }
            Transport::Tls { connect_timeout, .. } => {
                f.debug_struct("Tls").field("connect_timeout", connect_timeout).finish_non_exhaustive()
            }
        }
    }
}

/// `host:port` → `http://host:port`; URLs are kept.
pub fn normalize(addr: &str) -> String {
    if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") }
}

/// `host:port` → `https://host:port`; URLs are kept.
pub fn normalize_tls(addr: &str) -> String {
    if addr.contains("://") { addr.to_string() } else { format!("https://{addr}") }
}

impl Transport {
    /// Checks an address without connecting (config validation).
    pub fn check_address(&self, addr: &str) -> Result<(), TransportError> {
        let url = self.url(addr);
        let bad = |reason: String| TransportError::BadAddress { addr: addr.to_string(), reason };
        let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
        match (self, uri.scheme_str()) {
            (Transport::Plaintext { .. }, Some("http")) | (Transport::Tls { .. }, Some("https")) => {}
            (Transport::Plaintext { .. }, s) => {
                return Err(bad(format!("scheme {s:?} needs TLS; without --insecure the agent uses mTLS")));
            }
            (Transport::Tls { .. }, s) => {
                return Err(bad(format!("scheme {s:?}: mTLS needs https:// (plaintext only with --insecure)")));
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
        let url = self.url(addr);
        let connect_timeout = match self {
            Transport::Plaintext { connect_timeout } | Transport::Tls { connect_timeout, .. } => *connect_timeout,
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| TransportError::BadAddress { addr: addr.to_string(), reason: e.to_string() })?
            .connect_timeout(connect_timeout)
            // Keepalive notices a dead link even when the session is idle
            // between heartbeats (e.g. a NAT dropping the mapping).
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .tcp_nodelay(true);
        if let Transport::Tls { ca, cert, key, .. } = self {
            // Only the pinned CA is trusted (no system roots in this build);
            // the server name is the address's host.
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert, key));
            endpoint = endpoint.tls_config(tls).map_err(connect_error(addr))?;
        }
        endpoint.connect().await.map_err(connect_error(addr))
    }

    fn url(&self, addr: &str) -> String {
        match self {
            Transport::Plaintext { .. } => normalize(addr),
            Transport::Tls { .. } => normalize_tls(addr),
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
        let t = Transport::Tls {
            ca: String::new(),
            cert: String::new(),
            key: String::new(),
            connect_timeout: Duration::from_secs(1),
        };
        assert!(t.check_address("localhost:7443").is_ok());
        assert!(t.check_address("https://127.0.0.1:7443").is_ok());
        assert!(t.check_address("http://127.0.0.1:7443").is_err());
    }
}
