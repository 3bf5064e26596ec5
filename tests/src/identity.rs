//! Node identity helpers for mTLS tests: a device key and CSR, join tokens,
//! joining, and the PEM of an issued certificate.

use crate::Coord;
use fog_proto::v1 as pb;
use fog_proto::v1::node_service_client::NodeServiceClient;

/// A device-generated key and CSR; the private key never leaves the "device".
pub struct DeviceKey {
    /// The key pair.
    pub key: rcgen::KeyPair,
}

impl Default for DeviceKey {
    fn default() -> DeviceKey {
        DeviceKey::new()
    }
}

impl DeviceKey {
    pub fn new() -> DeviceKey {
        DeviceKey { key: rcgen::KeyPair::generate().expect("P-256 key") }
    }

    /// A CSR that asks for far more than it will get.
    pub fn csr(&self) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["admin.example".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "admin");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.serialize_request(&self.key).unwrap().der().to_vec()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

pub fn cert_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

pub async fn token(c: &Coord, name: &str, labels: &[(&str, &str)]) -> String {
    c.fleet()
        .create_join_token(pb::CreateJoinTokenRequest {
            ttl_seconds: 0,
            node_name: name.to_string(),
            labels: labels.iter().map(|(k, v)| pb::Label { key: k.to_string(), value: v.to_string() }).collect(),
        })
        .await
        .expect("token created")
        .into_inner()
        .token
}

pub async fn join(c: &Coord, token: &str, name: &str, csr: Vec<u8>) -> Result<pb::JoinResponse, tonic::Status> {
    NodeServiceClient::new(c.channel.clone())
        .join(pb::JoinRequest { token: token.to_string(), csr_der: csr, node_name: name.to_string() })
        .await
        .map(|r| r.into_inner())
}

pub fn hello(node_id: &str) -> pb::Hello {
    pb::Hello {
        node_id: node_id.to_string(),
        capacity: Some(pb::Resources { cpu_millis: 2000, memory_mb: 2048, ..Default::default() }),
        agent_version: "identity-test".into(),
        ..Default::default()
    }
}

/// Joins a node named `name` and returns its key and certificate PEM.
pub async fn joined(c: &Coord, name: &str) -> (DeviceKey, String) {
    let key = DeviceKey::new();
    let t = token(c, name, &[]).await;
    let r = join(c, &t, name, key.csr()).await.expect("join accepted");
    (key, cert_pem(&r.certificate_der))
}
