//! The coordinator's certificate authority: its own certificate and key, the
//! coordinator's serving certificate, and node client certificates.

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{IdentityError, TrustDomain, csr, from_unix_secs, offset_date_time, ttl_secs, unix_secs, validate_node_id};

/// The default lifetime of a node certificate; agents renew at 70–90 % of it.
pub const DEFAULT_NODE_CERT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The lifetime of a CA this module generates.
const CA_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Certificates start this much before `now`, so a peer whose clock is a
/// little behind ours does not see a certificate from the future.
const BACKDATE_SECS: i64 = 5 * 60;

/// The certificate authority that issues the coordinator's serving
/// certificate and every node's client certificate.
///
/// Keys are **ECDSA P-256** (signatures ECDSA with SHA-256): every TLS stack
/// the fleet and its clients use accepts it (rustls/webpki, BoringSSL in
/// Python/Node gRPC, Go's crypto/tls, browsers behind the gateway), and so do
/// the secure elements and TPMs a device may keep its key in. Ed25519 would be
/// smaller and faster but is still refused by browsers and some gRPC stacks in
/// certificate chains. Nodes may still use P-256, P-384 or Ed25519 keys in
/// their CSRs; the CA signs them all with its P-256 key.
///
/// The private key lives in ordinary memory and is not zeroed on drop
/// (rcgen's `zeroize` feature only clears its serialised copy, and ring's
/// key schedule is not reachable); [`key_pem`](Self::key_pem) hands out a
/// copy the caller must store with restricted permissions.
pub struct CertificateAuthority {
    trust_domain: TrustDomain,
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    not_before_secs: i64,
    not_after_secs: i64,
}

/// A certificate issued to a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    /// DER encoding.
    pub der: Vec<u8>,
    /// PEM encoding of the same certificate.
    pub pem: String,
    /// Serial number, lowercase hex (the key of [`super::CertDenylist`]).
    pub serial_hex: String,
    /// End of validity, exactly as encoded (whole seconds).
    pub not_after: SystemTime,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("trust_domain", &self.trust_domain)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a self-signed CA for `trust_domain`, valid for 10 years from
    /// `now` (less a few minutes of backdating). It may sign end-entity
    /// certificates only (path length 0).
    pub fn generate(trust_domain: &TrustDomain, now: SystemTime) -> Result<Self, IdentityError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let now_s = unix_secs(now)?;
        let mut params = CertificateParams::default();
        params.not_before = offset_date_time(now_s - BACKDATE_SECS)?;
        params.not_after = offset_date_time(now_s + ttl_secs(CA_TTL)?)?;
        params.serial_number = Some(random_serial().0);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "Fogplane");
        params.distinguished_name.push(DnType::CommonName, format!("Fogplane CA {trust_domain}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Self::from_parts(cert.der().to_vec(), key, trust_domain.clone())
    }

    /// Loads a CA: one generated earlier and read back from the store, or one
    /// an operator supplies. `cert_pem` is its certificate (the first PEM
    /// block is used), `key_pem` its private key as unencrypted PKCS#8
    /// (`-----BEGIN PRIVATE KEY-----`; convert SEC1 keys with
    /// `openssl pkcs8 -topk8 -nocrypt`). The certificate must be a CA allowed
    /// to sign certificates, and the key must be its key.
    ///
    /// The trust domain is an argument because an operator's CA need not
    /// record one; it is not read from the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str, trust_domain: &TrustDomain) -> Result<Self, IdentityError> {
        let block = pem::parse(cert_pem).map_err(|_| IdentityError::InvalidCaCert("not PEM"))?;
        if block.tag() != "CERTIFICATE" {
            return Err(IdentityError::InvalidCaCert("PEM block is not a CERTIFICATE"));
        }
        let key_block = pem::parse(key_pem).map_err(|_| IdentityError::InvalidCaKey("not PEM"))?;
        if key_block.tag() != "PRIVATE KEY" {
            return Err(IdentityError::InvalidCaKey("expected an unencrypted PKCS#8 PRIVATE KEY block"));
        }
        let key = KeyPair::try_from(key_block.contents())
            .map_err(|_| IdentityError::InvalidCaKey("not a supported PKCS#8 key (ECDSA P-256/P-384, Ed25519, RSA)"))?;
        Self::from_parts(block.contents().to_vec(), key, trust_domain.clone())
    }

    fn from_parts(cert_der: Vec<u8>, key: KeyPair, trust_domain: TrustDomain) -> Result<Self, IdentityError> {
        let (rest, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|_| IdentityError::InvalidCaCert("not an X.509 certificate"))?;
        if !rest.is_empty() {
            return Err(IdentityError::InvalidCaCert("trailing bytes after the certificate"));
        }
        let bc = cert.basic_constraints().map_err(|_| IdentityError::InvalidCaCert("bad basic constraints"))?;
        if !bc.is_some_and(|bc| bc.value.ca) {
            return Err(IdentityError::InvalidCaCert("not a CA (basic constraints CA:TRUE is missing)"));
        }
        let ku = cert.key_usage().map_err(|_| IdentityError::InvalidCaCert("bad key usage"))?;
        if ku.is_some_and(|ku| !ku.value.key_cert_sign()) {
            return Err(IdentityError::InvalidCaCert("key usage does not allow signing certificates"));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(IdentityError::CaKeyMismatch);
        }
        let not_before_secs = cert.validity().not_before.timestamp();
        let not_after_secs = cert.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)
            .map_err(|_| IdentityError::InvalidCaCert("subject name or extensions not supported"))?;
        Ok(CertificateAuthority { trust_domain, issuer, cert_der, not_before_secs, not_after_secs })
    }

    /// The trust domain node identities are issued in.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        to_pem("CERTIFICATE", &self.cert_der)
    }

    /// The CA private key, PKCS#8 PEM. A secret: store it with mode 0600.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> Vec<u8> {
        self.cert_der.clone()
    }

    /// SHA-256 of the CA certificate's DER, lowercase hex (64 characters).
    /// Join tokens carry it so an agent can pin the coordinator's CA.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.cert_der))
    }

    /// The end of the CA's own validity.
    pub fn not_after(&self) -> SystemTime {
        from_unix_secs(self.not_after_secs)
    }

    /// Issues the coordinator's serving certificate with a fresh P-256 key:
    /// the given DNS and IP subject alternative names, server-auth EKU only,
    /// not a CA. Returns `(cert_pem, key_pem)`; the key is PKCS#8.
    pub fn issue_server_cert(
        &self,
        dns_names: &[String],
        ips: &[IpAddr],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<(String, String), IdentityError> {
        if dns_names.is_empty() && ips.is_empty() {
            return Err(IdentityError::InvalidSan("at least one DNS name or IP address is required".into()));
        }
        let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
        for name in dns_names {
            if !is_dns_san(name) {
                return Err(IdentityError::InvalidSan(format!("{name:?} is not a DNS name")));
            }
            let ia5 = name.as_str().try_into().map_err(|_| IdentityError::InvalidSan(format!("{name:?}")))?;
            sans.push(SanType::DnsName(ia5));
        }
        sans.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let cn = dns_names.first().map_or("fog-coordinator", String::as_str);

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = self.leaf_params(cn, ttl, now)?;
        params.serial_number = Some(random_serial().0);
        params.subject_alt_names = sans;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issues a standby replica's client certificate with a fresh P-256 key:
    /// one URI SAN [`super::spiffe_replica_uri`], client-auth EKU only, not
    /// a CA. Returns `(cert_pem, key_pem)`. Only a holder of the CA key can
    /// make one, which every replica is.
    pub fn issue_replica_cert(&self, ttl: Duration, now: SystemTime) -> Result<(String, String), IdentityError> {
        let uri = super::spiffe_replica_uri(&self.trust_domain);
        let uri = uri.as_str().try_into().map_err(|_| IdentityError::InvalidSan(uri.clone()))?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = self.leaf_params("fog-coordinator-replica", ttl, now)?;
        params.serial_number = Some(random_serial().0);
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Signs a node's CSR. Only the CSR's public key is used, and only after
    /// the CSR's signature verified with it; the coordinator chooses every
    /// other field: subject CN = `node_id`, exactly one URI SAN
    /// `spiffe://<trust-domain>/node/<node-id>`, client-auth EKU only, not a
    /// CA, valid from `now` − 5 min to `now + ttl` (never past the CA's own
    /// end), a random 128-bit serial.
    pub fn sign_node_csr(
        &self,
        csr_der: &[u8],
        node_id: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<IssuedCert, IdentityError> {
        validate_node_id(node_id)?;
        let public_key = csr::verified_public_key(csr_der)?;
        let uri = super::spiffe_node_uri(&self.trust_domain, node_id);
        let uri = uri.as_str().try_into().map_err(|_| IdentityError::InvalidSan(uri.clone()))?;

        let mut params = self.leaf_params(node_id, ttl, now)?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (serial, serial_hex) = random_serial();
        params.serial_number = Some(serial);
        let not_after = from_unix_secs(params.not_after.unix_timestamp());
        let cert = params.signed_by(&public_key, &self.issuer).map_err(gen_err)?;
        Ok(IssuedCert { der: cert.der().to_vec(), pem: cert.pem(), serial_hex, not_after })
    }

    /// What every end-entity certificate shares; callers add the serial, SANs and EKU.
    fn leaf_params(&self, cn: &str, ttl: Duration, now: SystemTime) -> Result<CertificateParams, IdentityError> {
        let now_s = unix_secs(now)?;
        if now_s < self.not_before_secs || now_s >= self.not_after_secs {
            return Err(IdentityError::CaNotValid);
        }
        let mut params = CertificateParams::default();
        params.not_before = offset_date_time((now_s - BACKDATE_SECS).max(self.not_before_secs))?;
        params.not_after = offset_date_time((now_s + ttl_secs(ttl)?).min(self.not_after_secs))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }
}

/// A random positive 128-bit serial whose first byte has its top bit clear
/// and is non-zero, so the DER integer is exactly these 16 bytes and its hex
/// reads back unchanged from a parsed certificate. rcgen's default serial is
/// derived from the public key, which would repeat across renewals of a key.
fn random_serial() -> (SerialNumber, String) {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    (SerialNumber::from_slice(&bytes), hex::encode(bytes))
}

fn is_dns_san(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        })
}

fn to_pem(tag: &str, der: &[u8]) -> String {
    pem::encode_config(&pem::Pem::new(tag, der), pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}

fn gen_err(e: rcgen::Error) -> IdentityError {
    IdentityError::Generation(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::node_identity;
    use rcgen::{CustomExtension, PKCS_ED25519};
    use std::net::Ipv4Addr;
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::extensions::GeneralName;

    fn td() -> TrustDomain {
        TrustDomain::new("fog.local").unwrap()
    }

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000)
    }

    fn secs(t: SystemTime) -> i64 {
        unix_secs(t).unwrap()
    }

    /// A CSR that asks for everything a node must not get.
    fn greedy_csr(key: &KeyPair) -> Vec<u8> {
        let mut p = CertificateParams::new(vec!["coordinator.fog.local".to_owned(), "10.0.0.1".to_owned()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "admin");
        p.subject_alt_names.push(SanType::URI("spiffe://fog.local/node/someone-else".try_into().unwrap()));
        p.subject_alt_names.push(SanType::URI("spiffe://evil.example/admin".try_into().unwrap()));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::Any];
        p.custom_extensions.push(CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x05, 0x00]));
        p.serialize_request(key).unwrap().der().to_vec()
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        let (rest, cert) = X509Certificate::from_der(der).unwrap();
        assert!(rest.is_empty());
        cert
    }

    #[test]
    fn fingerprint_is_stable_across_pem_round_trip() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let fp = ca.fingerprint();
        assert_eq!(fp.len(), 64);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(fp, hex::encode(Sha256::digest(ca.cert_der())));
        let back = CertificateAuthority::from_pem(&ca.cert_pem(), &ca.key_pem(), &td()).unwrap();
        assert_eq!(back.fingerprint(), fp);
        assert_eq!(back.cert_der(), ca.cert_der());
        assert_eq!(back.key_pem(), ca.key_pem());
        // A reloaded CA signs certificates that the original's key verifies.
        let node_key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default().serialize_request(&node_key).unwrap();
        let issued = back.sign_node_csr(csr.der(), "n1", DEFAULT_NODE_CERT_TTL, t0()).unwrap();
        let ca_der = ca.cert_der();
        parse(&issued.der).verify_signature(Some(parse(&ca_der).public_key())).unwrap();
    }

    #[test]
    fn generated_ca_is_a_p256_ca_for_ten_years() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let der = ca.cert_der();
        let cert = parse(&der);
        assert!(cert.is_ca());
        assert!(cert.key_usage().unwrap().unwrap().value.key_cert_sign());
        assert_eq!(cert.basic_constraints().unwrap().unwrap().value.path_len_constraint, Some(0));
        assert_eq!(cert.signature_algorithm.algorithm, x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256);
        cert.verify_signature(None).unwrap();
        let life = cert.validity().not_after.timestamp() - secs(t0());
        assert_eq!(life, 10 * 365 * 24 * 3600);
        assert!(ca.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn from_pem_refuses_mismatched_key_non_ca_and_garbage() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let other = CertificateAuthority::generate(&td(), t0()).unwrap();
        assert_eq!(
            CertificateAuthority::from_pem(&ca.cert_pem(), &other.key_pem(), &td()).unwrap_err(),
            IdentityError::CaKeyMismatch
        );
        let (server_pem, server_key) =
            ca.issue_server_cert(&["c.fog.local".into()], &[], Duration::from_secs(3600), t0()).unwrap();
        assert!(matches!(
            CertificateAuthority::from_pem(&server_pem, &server_key, &td()),
            Err(IdentityError::InvalidCaCert(_))
        ));
        assert!(matches!(
            CertificateAuthority::from_pem("garbage", &ca.key_pem(), &td()),
            Err(IdentityError::InvalidCaCert(_))
        ));
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.cert_pem(), "garbage", &td()),
            Err(IdentityError::InvalidCaKey(_))
        ));
        // A key PEM handed in as the certificate.
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.key_pem(), &ca.key_pem(), &td()),
            Err(IdentityError::InvalidCaCert(_))
        ));
        let bad_key = to_pem("PRIVATE KEY", b"not a key");
        assert!(matches!(
            CertificateAuthority::from_pem(&ca.cert_pem(), &bad_key, &td()),
            Err(IdentityError::InvalidCaKey(_))
        ));
    }

    #[test]
    fn node_cert_has_only_what_the_coordinator_chose() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let node_key = KeyPair::generate().unwrap();
        let csr = greedy_csr(&node_key);
        let now = t0() + Duration::from_secs(3600);
        let issued = ca.sign_node_csr(&csr, "node-7", DEFAULT_NODE_CERT_TTL, now).unwrap();
        let cert = parse(&issued.der);
        let ca_der = ca.cert_der();
        let ca_cert = parse(&ca_der);

        // Signed by our CA, issued under its name.
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw());
        // The node's key, nothing else from the CSR.
        assert_eq!(cert.public_key().subject_public_key.data.as_ref(), node_key.public_key_raw());
        let cns: Vec<_> = cert.subject().iter_common_name().map(|cn| cn.as_str().unwrap()).collect();
        assert_eq!(cns, ["node-7"]);
        assert_eq!(cert.subject().iter().count(), 1, "subject is CN only");
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(san.value.general_names, [GeneralName::URI("spiffe://fog.local/node/node-7")]);
        assert!(!cert.is_ca());
        assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty());
        assert!(!eku.code_signing && !eku.email_protection && !eku.time_stamping && !eku.ocsp_signing);
        let ku = cert.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && !ku.key_cert_sign());
        let unknown = x509_parser::der_parser::oid!(1.3.6.1.4.1.99999.1);
        assert!(cert.get_extension_unique(&unknown).unwrap().is_none(), "CSR extension copied");

        // Validity: now − 5 min .. now + 24 h, and reported as encoded.
        assert_eq!(cert.validity().not_before.timestamp(), secs(now) - 300);
        assert_eq!(cert.validity().not_after.timestamp(), secs(now) + 24 * 3600);
        assert_eq!(secs(issued.not_after), secs(now) + 24 * 3600);

        // Serial as reported, and what node_identity reads back.
        assert_eq!(hex::encode(cert.raw_serial()), issued.serial_hex);
        let id = node_identity(&issued.der, &td()).unwrap();
        assert_eq!((id.node_id.as_str(), id.serial_hex.as_str()), ("node-7", issued.serial_hex.as_str()));
        assert_eq!(id.not_after, issued.not_after);
        assert_eq!(issued.pem, to_pem("CERTIFICATE", &issued.der));
    }

    #[test]
    fn serials_are_random_even_for_the_same_key() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default().serialize_request(&key).unwrap();
        let a = ca.sign_node_csr(csr.der(), "n1", DEFAULT_NODE_CERT_TTL, t0()).unwrap();
        let b = ca.sign_node_csr(csr.der(), "n1", DEFAULT_NODE_CERT_TTL, t0()).unwrap();
        assert_ne!(a.serial_hex, b.serial_hex);
        assert_eq!(a.serial_hex.len(), 32);
    }

    #[test]
    fn ed25519_and_p384_node_keys_are_signed() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        for alg in [&PKCS_ED25519, &rcgen::PKCS_ECDSA_P384_SHA384] {
            let key = KeyPair::generate_for(alg).unwrap();
            let csr = CertificateParams::default().serialize_request(&key).unwrap();
            let issued = ca.sign_node_csr(csr.der(), "n1", DEFAULT_NODE_CERT_TTL, t0()).unwrap();
            assert_eq!(parse(&issued.der).public_key().subject_public_key.data.as_ref(), key.public_key_raw());
        }
    }

    /// Flips one byte at each position of the CSR's signed content and of its
    /// signature: every variant must be refused, none may panic.
    #[test]
    fn tampered_csr_is_refused() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = greedy_csr(&key);
        assert!(ca.sign_node_csr(&csr, "n1", DEFAULT_NODE_CERT_TTL, t0()).is_ok());

        let (_, parsed) = X509CertificationRequest::from_der(&csr).unwrap();
        let info = parsed.certification_request_info.raw;
        let info_start = info.as_ptr() as usize - csr.as_ptr() as usize;
        let sig = parsed.signature_value.data.as_ref();
        let sig_start = sig.as_ptr() as usize - csr.as_ptr() as usize;

        // A byte inside the subject's CN value ("admin"), keeping the DER valid:
        // this must fail on the signature, not on parsing.
        let cn_at = info_start + info.windows(5).position(|w| w == b"admin").unwrap();
        let mut t = csr.clone();
        t[cn_at] ^= 0x01;
        assert_eq!(ca.sign_node_csr(&t, "n1", DEFAULT_NODE_CERT_TTL, t0()), Err(IdentityError::CsrSignatureInvalid));
        // A byte of the public key: the signature no longer matches the key.
        let pk = parsed.certification_request_info.subject_pki.subject_public_key.data.as_ref();
        let pk_at = pk.as_ptr() as usize - csr.as_ptr() as usize + pk.len() - 1;
        let mut t = csr.clone();
        t[pk_at] ^= 0x01;
        assert!(ca.sign_node_csr(&t, "n1", DEFAULT_NODE_CERT_TTL, t0()).is_err());

        for i in (info_start..info_start + info.len()).chain(sig_start..sig_start + sig.len()) {
            let mut t = csr.clone();
            t[i] ^= 0x5a;
            let r = ca.sign_node_csr(&t, "n1", DEFAULT_NODE_CERT_TTL, t0());
            assert!(r.is_err(), "byte {i} flipped and still signed");
        }
    }

    #[test]
    fn garbage_and_bad_node_ids_are_refused_without_panic() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        for junk in [&b""[..], b"\x30", b"\x30\x82\xff\xff", b"hello world", &[0u8; 300], &[0xff; 64]] {
            assert!(ca.sign_node_csr(junk, "n1", DEFAULT_NODE_CERT_TTL, t0()).is_err());
        }
        // A certificate is not a CSR.
        assert!(ca.sign_node_csr(&ca.cert_der(), "n1", DEFAULT_NODE_CERT_TTL, t0()).is_err());
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default().serialize_request(&key).unwrap();
        for bad in ["", "Node", "a/b", "n1/../admin", &"x".repeat(64)] {
            assert!(matches!(
                ca.sign_node_csr(csr.der(), bad, DEFAULT_NODE_CERT_TTL, t0()),
                Err(IdentityError::InvalidNodeId(_))
            ));
        }
        assert!(matches!(ca.sign_node_csr(csr.der(), "n1", Duration::ZERO, t0()), Err(IdentityError::InvalidTime(_))));
    }

    #[test]
    fn node_cert_never_outlives_the_ca_and_an_expired_ca_signs_nothing() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let key = KeyPair::generate().unwrap();
        let csr = CertificateParams::default().serialize_request(&key).unwrap();
        let issued = ca.sign_node_csr(csr.der(), "n1", Duration::from_secs(20 * 365 * 86400), t0()).unwrap();
        assert_eq!(issued.not_after, ca.not_after());
        let later = ca.not_after() + Duration::from_secs(1);
        assert_eq!(ca.sign_node_csr(csr.der(), "n1", DEFAULT_NODE_CERT_TTL, later), Err(IdentityError::CaNotValid));
    }

    #[test]
    fn server_cert_has_the_names_and_server_auth() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST), "::1".parse().unwrap()];
        let names = ["coordinator.fog.local".to_owned(), "localhost".to_owned()];
        let (cert_pem, key_pem) = ca.issue_server_cert(&names, &ips, Duration::from_secs(90 * 86400), t0()).unwrap();
        let der = pem::parse(&cert_pem).unwrap().into_contents();
        let cert = parse(&der);
        let ca_der = ca.cert_der();
        cert.verify_signature(Some(parse(&ca_der).public_key())).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            san.value.general_names,
            [
                GeneralName::DNSName("coordinator.fog.local"),
                GeneralName::DNSName("localhost"),
                GeneralName::IPAddress(&[127, 0, 0, 1]),
                GeneralName::IPAddress(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            ]
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth && !eku.any);
        assert!(!cert.is_ca());
        assert_eq!(cert.validity().not_after.timestamp(), secs(t0()) + 90 * 86400);
        // The key is the certificate's.
        let key = KeyPair::from_pem(&key_pem).unwrap();
        assert_eq!(cert.public_key().subject_public_key.data.as_ref(), key.public_key_raw());
        // A server certificate is not a node identity.
        assert!(node_identity(&der, &td()).is_err());
    }

    #[test]
    fn server_cert_refuses_missing_or_bad_names() {
        let ca = CertificateAuthority::generate(&td(), t0()).unwrap();
        let ttl = Duration::from_secs(3600);
        assert!(matches!(ca.issue_server_cert(&[], &[], ttl, t0()), Err(IdentityError::InvalidSan(_))));
        for bad in ["", "a..b", "spiffe://x", "héllo", "a b"] {
            assert!(
                matches!(ca.issue_server_cert(&[bad.to_owned()], &[], ttl, t0()), Err(IdentityError::InvalidSan(_))),
                "{bad:?} accepted"
            );
        }
    }
}
