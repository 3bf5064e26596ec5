//! A node's identity, read from its (already verified) client certificate.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{IdentityError, TrustDomain, from_unix_secs, validate_node_id};

/// Certificates we issue are well under 1 KiB; a peer certificate larger than
/// this is refused before parsing.
const MAX_CERT_LEN: usize = 64 * 1024;

/// Who a session speaks for, as its certificate says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The node id from the SPIFFE URI SAN.
    pub node_id: String,
    /// The certificate's serial, lowercase hex without leading zero bytes
    /// (what [`super::CertDenylist`] is keyed by).
    pub serial_hex: String,
    /// End of the certificate's validity: when to close the session at the
    /// latest, and when a denylist entry for it can be pruned.
    pub not_after: SystemTime,
}

/// `spiffe://<trust-domain>/node/<node-id>`, the single URI SAN of a node certificate.
pub fn spiffe_node_uri(trust_domain: &TrustDomain, node_id: &str) -> String {
    format!("spiffe://{trust_domain}/node/{node_id}")
}

/// `spiffe://<trust-domain>/replica/coordinator`, the single URI SAN of the
/// client certificate a standby coordinator uses to forward node sessions to
/// the leader (see [`FORWARDED_CLIENT_CERT`]).
pub fn spiffe_replica_uri(trust_domain: &TrustDomain) -> String {
    format!("spiffe://{trust_domain}/replica/coordinator")
}

/// Request header on a node session a standby forwards: the node's client
/// certificate (DER, standard base64), which the standby's TLS handshake
/// verified against the cluster CA. The leader believes it only from a peer
/// whose own certificate is a replica's ([`is_replica`]), as Envoy's
/// `x-forwarded-client-cert` is believed only from the proxy.
pub const FORWARDED_CLIENT_CERT: &str = "fog-forwarded-client-cert";

/// Whether a (verified) peer certificate is a coordinator replica's: not a
/// CA, exactly one URI SAN, and that is [`spiffe_replica_uri`].
pub fn is_replica(cert_der: &[u8], trust_domain: &TrustDomain) -> bool {
    if cert_der.len() > MAX_CERT_LEN {
        return false;
    }
    let Ok((rest, cert)) = X509Certificate::from_der(cert_der) else { return false };
    if !rest.is_empty() || cert.is_ca() {
        return false;
    }
    single_uri(&cert).is_ok_and(|u| u == spiffe_replica_uri(trust_domain))
}

/// The one URI SAN of a certificate.
fn single_uri<'a>(cert: &'a X509Certificate<'a>) -> Result<&'a str, IdentityError> {
    // Errors on a duplicated SAN extension, so a second one cannot hide a name.
    let san = cert
        .subject_alternative_name()
        .map_err(|_| IdentityError::CertMalformed("bad subject alternative name extension"))?
        .ok_or(IdentityError::CertNoIdentity("no subject alternative name"))?;
    let mut uris = san.value.general_names.iter().filter_map(|n| match n {
        GeneralName::URI(u) => Some(*u),
        _ => None,
    });
    let uri = uris.next().ok_or(IdentityError::CertNoIdentity("no URI SAN"))?;
    if uris.next().is_some() {
        return Err(IdentityError::CertNoIdentity("more than one URI SAN"));
    }
    Ok(uri)
}

/// The identity in a peer's end-entity certificate (the first of the chain
/// rustls verified against our CA). It has exactly one URI SAN, of the form
/// `spiffe://<trust_domain>/node/<node-id>` with a valid node id; the subject
/// and any other SAN are ignored. A CA certificate is never a node identity.
///
/// This does not check the chain, validity dates or the denylist: the TLS
/// handshake did the first two, the caller does the third with `serial_hex`.
pub fn node_identity(cert_der: &[u8], trust_domain: &TrustDomain) -> Result<NodeIdentity, IdentityError> {
    if cert_der.len() > MAX_CERT_LEN {
        return Err(IdentityError::CertMalformed("larger than 64 KiB"));
    }
    let (rest, cert) =
        X509Certificate::from_der(cert_der).map_err(|_| IdentityError::CertMalformed("not an X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(IdentityError::CertMalformed("trailing bytes after the certificate"));
    }
    if cert.is_ca() {
        return Err(IdentityError::CertNoIdentity("a CA certificate"));
    }
    let node_id = parse_node_uri(single_uri(&cert)?, trust_domain)?;

    let raw = cert.raw_serial();
    let first = raw.iter().position(|b| *b != 0).unwrap_or(raw.len().saturating_sub(1));
    Ok(NodeIdentity {
        node_id: node_id.to_owned(),
        serial_hex: hex::encode(&raw[first..]),
        not_after: from_unix_secs(cert.validity().not_after.timestamp()),
    })
}

fn parse_node_uri<'a>(uri: &'a str, trust_domain: &TrustDomain) -> Result<&'a str, IdentityError> {
    let rest = uri.strip_prefix("spiffe://").ok_or(IdentityError::CertNoIdentity("URI SAN is not a SPIFFE ID"))?;
    let (domain, path) = rest.split_once('/').unwrap_or((rest, ""));
    if domain != trust_domain.as_str() {
        return Err(IdentityError::CertWrongTrustDomain {
            expected: trust_domain.to_string(),
            // Bounded and printable, since it goes into logs and statuses.
            got: domain.chars().take(64).filter(|c| !c.is_control()).collect(),
        });
    }
    let node_id = path.strip_prefix("node/").ok_or(IdentityError::CertNoIdentity("SPIFFE ID is not a node"))?;
    // The id syntax excludes `/`, `?`, `#`, `%` and dots, so no path tricks.
    validate_node_id(node_id).map_err(|_| IdentityError::CertNoIdentity("SPIFFE ID has an invalid node id"))?;
    Ok(node_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, SanType};

    fn td() -> TrustDomain {
        TrustDomain::new("fog.local").unwrap()
    }

    /// A client certificate with the given URI SANs, signed by a throwaway CA
    /// (node_identity does not verify chains, so the CA does not matter).
    fn cert_with_uris(uris: &[&str]) -> Vec<u8> {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = Issuer::new(ca_params, ca_key);
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "n1");
        p.subject_alt_names = uris.iter().map(|u| SanType::URI((*u).try_into().unwrap())).collect();
        p.subject_alt_names.push(SanType::DnsName("n1.example".try_into().unwrap()));
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8a, 0x01]));
        p.signed_by(&KeyPair::generate().unwrap(), &issuer).unwrap().der().to_vec()
    }

    #[test]
    fn extracts_the_node_id_and_a_normalised_serial() {
        let id = node_identity(&cert_with_uris(&["spiffe://fog.local/node/n1"]), &td()).unwrap();
        assert_eq!(id.node_id, "n1");
        // DER pads 0x8a01 with a zero byte; the hex leaves it out.
        assert_eq!(id.serial_hex, "8a01");
    }

    #[test]
    fn a_replica_certificate_is_not_a_node_and_a_node_certificate_is_not_a_replica() {
        let replica = cert_with_uris(&["spiffe://fog.local/replica/coordinator"]);
        assert!(is_replica(&replica, &td()));
        assert!(node_identity(&replica, &td()).is_err());
        let node = cert_with_uris(&["spiffe://fog.local/node/coordinator"]);
        assert!(!is_replica(&node, &td()));
        assert!(!is_replica(&cert_with_uris(&["spiffe://other.example/replica/coordinator"]), &td()));
        let two = cert_with_uris(&["spiffe://fog.local/replica/coordinator", "spiffe://fog.local/node/n1"]);
        assert!(!is_replica(&two, &td()));
        assert!(!is_replica(b"not a certificate", &td()));
    }

    #[test]
    fn refuses_another_trust_domain() {
        let der = cert_with_uris(&["spiffe://other.example/node/n1"]);
        assert_eq!(
            node_identity(&der, &td()),
            Err(IdentityError::CertWrongTrustDomain { expected: "fog.local".into(), got: "other.example".into() })
        );
        // A trust domain that merely starts with ours.
        let der = cert_with_uris(&["spiffe://fog.local.evil/node/n1"]);
        assert!(matches!(node_identity(&der, &td()), Err(IdentityError::CertWrongTrustDomain { .. })));
    }

    #[test]
    fn refuses_two_uri_sans_even_if_one_is_valid() {
        let der = cert_with_uris(&["spiffe://fog.local/node/n1", "spiffe://fog.local/node/n2"]);
        assert_eq!(node_identity(&der, &td()), Err(IdentityError::CertNoIdentity("more than one URI SAN")));
        let der = cert_with_uris(&["https://fog.local/x", "spiffe://fog.local/node/n1"]);
        assert!(node_identity(&der, &td()).is_err());
    }

    #[test]
    fn refuses_missing_or_malformed_identities() {
        for uris in [
            &[][..],
            &["https://fog.local/node/n1"],
            &["spiffe://fog.local"],
            &["spiffe://fog.local/"],
            &["spiffe://fog.local/agent/n1"],
            &["spiffe://fog.local/node/"],
            &["spiffe://fog.local/node/n1/extra"],
            &["spiffe://fog.local/node/N1"],
            &["spiffe://fog.local/node/n1?x=1"],
            &["spiffe://fog.local/node/.."],
            &["SPIFFE://fog.local/node/n1"],
        ] {
            let der = cert_with_uris(uris);
            assert!(node_identity(&der, &td()).is_err(), "{uris:?} accepted");
        }
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        for junk in [&b""[..], b"\x30", b"\x30\x03\x02\x01", &[0xff; 100], &vec![0x30; MAX_CERT_LEN + 1]] {
            assert!(matches!(node_identity(junk, &td()), Err(IdentityError::CertMalformed(_))));
        }
        let mut der = cert_with_uris(&["spiffe://fog.local/node/n1"]);
        der.push(0);
        assert!(node_identity(&der, &td()).is_err());
    }
}
