//! `fog-agent join`: exchange a one-time token for a certificate.
//!
//! 1. Generate the key pair and write the private key (0600) before anything else.
//! 2. Pin the coordinator: one TLS handshake whose verifier only *captures* the
//!    presented chain and then aborts it (nothing is ever sent on it); the CA
//!    is the certificate in that chain whose SHA-256 equals the token's
//!    fingerprint. None → refuse: the token is never sent.
//! 3. Call `NodeService.Join` over ordinary TLS with that CA as the only trust
//!    root (standard verification, server name from the URL host).
//! 4. Store CA, certificate, node id and the coordinator address (0600).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fog_proto::v1::JoinRequest;
use fog_proto::v1::node_service_client::NodeServiceClient;
use sha2::{Digest, Sha256};
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{DigitallySignedStruct, SignatureScheme};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::exec::process::create_private_dir;
use crate::identity::{self, CA_FILE, CERT_FILE, COORDINATOR_FILE, KEY_FILE, NODE_ID_FILE, write_private};

/// What `join` needs.
#[derive(Clone, Debug)]
pub struct JoinArgs {
    /// The token string.
    pub token: String,
    /// `https://host:port` (or `host:port`).
    pub coordinator: String,
    /// The name to join under (optional; the token may bind one).
    pub name: Option<String>,
    /// The state dir.
    pub state_dir: PathBuf,
    /// Bound on connecting.
    pub timeout: Duration,
}

/// Why a join failed; the message is for people.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JoinError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, JoinError> {
    Err(JoinError(msg.into()))
}

/// The message when no certificate in the presented chain matches the token.
pub const CA_MISMATCH: &str = "the coordinator's CA does not match the token; wrong coordinator or tampered connection";

/// A verifier that records the chain and refuses it: the handshake it takes
/// part in never completes, so nothing is trusted or sent because of it.
#[derive(Debug)]
struct CaptureChain {
    chain: Mutex<Vec<Vec<u8>>>,
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for CaptureChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut chain = self.chain.lock().unwrap_or_else(|p| p.into_inner());
        chain.push(end_entity.to_vec());
        chain.extend(intermediates.iter().map(|c| c.to_vec()));
        Err(rustls::Error::General("chain captured; this handshake is never completed".into()))
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("capture only".into()))
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("capture only".into()))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// `https://host:port` → (url, host, port). `host:port` gets `https://`.
pub fn parse_https(addr: &str) -> Result<(String, String, u16), JoinError> {
    let url = if addr.contains("://") { addr.to_string() } else { format!("https://{addr}") };
    let uri: tonic::codegen::http::Uri =
        url.parse().map_err(|e| JoinError(format!("invalid coordinator address {addr:?}: {e}")))?;
    if uri.scheme_str() != Some("https") {
        return fail(format!("coordinator address {addr:?}: joining needs https://"));
    }
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        return fail(format!("coordinator address {addr:?}: expected https://host:port"));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((url, host, port))
}

/// The certificates the server at `host:port` presents (leaf first).
pub async fn presented_chain(host: &str, port: u16, timeout: Duration) -> Result<Vec<Vec<u8>>, JoinError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let capture = Arc::new(CaptureChain {
        chain: Mutex::new(Vec::new()),
        schemes: provider.signature_verification_algorithms.supported_schemes(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| JoinError(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let server_name =
        ServerName::try_from(host.to_string()).map_err(|e| JoinError(format!("coordinator host {host:?}: {e}")))?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| JoinError(format!("could not connect to {host}:{port}: {e}")))?;
        // Expected to fail: the verifier aborts the handshake once it has the chain.
        let _ = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, tcp).await;
        Ok::<_, JoinError>(())
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| JoinError(format!("could not connect to {host}:{port}: timed out")))??;
    let chain = std::mem::take(&mut *capture.chain.lock().unwrap_or_else(|p| p.into_inner()));
    if chain.is_empty() {
        return fail(format!("{host}:{port} presented no TLS certificate (is it a coordinator in mTLS mode?)"));
    }
    Ok(chain)
}

/// The certificate in `chain` whose SHA-256 is `fingerprint` (lowercase hex).
pub fn pinned_ca(chain: &[Vec<u8>], fingerprint: &str) -> Option<Vec<u8>> {
    chain.iter().find(|c| hex::encode(Sha256::digest(c)) == fingerprint).cloned()
}

fn join_status_message(s: &tonic::Status) -> String {
    use tonic::Code;
    let what = match s.code() {
        Code::Unauthenticated => "the coordinator refused the token",
        Code::PermissionDenied => "the token does not allow this name",
        Code::InvalidArgument => "the coordinator refused the request",
        Code::FailedPrecondition => "the coordinator cannot accept this join",
        Code::Unavailable => "the coordinator is unreachable",
        _ => "join failed",
    };
    format!("{what}: {} ({:?})", s.message(), s.code())
}

/// Joins; returns the node id.
pub async fn join(args: &JoinArgs) -> Result<String, JoinError> {
    let token = identity::parse_token(&args.token).map_err(JoinError)?;
    let (url, host, port) = parse_https(&args.coordinator)?;
    let dir = &args.state_dir;
    let io = |e: std::io::Error| JoinError(format!("state dir {}: {e}", dir.display()));
    if identity::Credentials::exist(dir) {
        return fail(format!(
            "{} already holds a node certificate ({}); use another --state-dir or remove it to join again",
            dir.display(),
            dir.join(CERT_FILE).display()
        ));
    }
    // The private key first: it exists only here, before anything is sent.
    create_private_dir(dir).map_err(io)?;
    let (key, csr) = identity::new_key_and_csr().map_err(JoinError)?;
    write_private(dir, KEY_FILE, key.serialize_pem().as_bytes()).map_err(io)?;

    let chain = presented_chain(&host, port, args.timeout).await?;
    let Some(ca_der) = pinned_ca(&chain, &token.ca_fingerprint) else {
        return fail(CA_MISMATCH);
    };
    let ca_pem = identity::cert_pem(&ca_der);
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca_pem)).domain_name(host.clone());
    let channel = Endpoint::from_shared(url.clone())
        .map_err(|e| JoinError(format!("invalid coordinator address: {e}")))?
        .connect_timeout(args.timeout)
        .timeout(args.timeout)
        .tls_config(tls)
        .map_err(|e| JoinError(format!("TLS setup: {e}")))?
        .connect()
        .await
        .map_err(|e| JoinError(format!("could not connect to {url} over TLS: {e}")))?;
    let req = JoinRequest { token: token.raw.clone(), csr_der: csr, node_name: args.name.clone().unwrap_or_default() };
    let resp = NodeServiceClient::new(channel).join(req).await.map_err(|s| JoinError(join_status_message(&s)))?;
    let resp = resp.into_inner();
    let info = identity::cert_info(&resp.certificate_der).map_err(|e| JoinError(format!("issued certificate: {e}")))?;
    if info.spki != rcgen::PublicKeyData::subject_public_key_info(&key) {
        return fail("the issued certificate is not for our key");
    }
    if info.node_id.as_deref() != Some(resp.node_id.as_str()) {
        return fail(format!("the issued certificate is not for node {:?}", resp.node_id));
    }
    write_private(dir, CA_FILE, ca_pem.as_bytes()).map_err(io)?;
    write_private(dir, NODE_ID_FILE, format!("{}\n", resp.node_id).as_bytes()).map_err(io)?;
    write_private(dir, COORDINATOR_FILE, format!("{url}\n").as_bytes()).map_err(io)?;
    // The certificate last: its presence means "joined".
    write_private(dir, CERT_FILE, identity::cert_pem(&resp.certificate_der).as_bytes()).map_err(io)?;
    Ok(resp.node_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_https_with_a_port() {
        assert_eq!(parse_https("localhost:7443").unwrap().1, "localhost");
        assert_eq!(parse_https("https://127.0.0.1:1").unwrap().2, 1);
        assert!(parse_https("http://localhost:7443").is_err());
        assert!(parse_https("https://localhost").is_err());
    }

    #[test]
    fn the_ca_is_found_by_fingerprint_only() {
        let chain = vec![b"leaf".to_vec(), b"ca".to_vec()];
        let fp = hex::encode(Sha256::digest(b"ca"));
        assert_eq!(pinned_ca(&chain, &fp), Some(b"ca".to_vec()));
        assert_eq!(pinned_ca(&chain, &"0".repeat(64)), None);
    }
}
