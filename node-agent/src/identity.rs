//! The node's identity on the device: join tokens, its key pair (generated
//! here; the private key never leaves the state dir), its certificate, the
//! coordinator's CA, and when to renew.
//!
//! Files in the state dir, each written to a temporary file, fsynced and
//! renamed into place (mode 0600):
//! - `node.key` — the private key (PKCS#8 PEM), written before anything is sent;
//! - `node.crt` — the client certificate (PEM) the coordinator issued;
//! - `ca.crt` — the coordinator's CA (PEM), pinned at join by the token's fingerprint;
//! - `node-id` — the node id (also in the certificate's SPIFFE URI);
//! - `coordinator` — the address joined, the default for `run`.
//!
//! Rotation writes the new key as `node.key.next`, then the new certificate,
//! then renames the key into place. A crash in between is repaired at load:
//! `node.key.next` is kept if it matches `node.crt`, otherwise dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;

/// The private key file.
pub const KEY_FILE: &str = "node.key";
/// The key written during a rotation, before the certificate.
pub const NEXT_KEY_FILE: &str = "node.key.next";
/// The node certificate file.
pub const CERT_FILE: &str = "node.crt";
/// The pinned CA certificate file.
pub const CA_FILE: &str = "ca.crt";
/// The node id file.
pub const NODE_ID_FILE: &str = "node-id";
/// The coordinator address used at join.
pub const COORDINATOR_FILE: &str = "coordinator";

/// Test knob: renew at this fraction of the certificate's validity
/// (`not_before`…`not_after`) instead of a random 70–90 %. Node certificates
/// live at least 10 minutes and the coordinator backdates `not_before` by
/// 5 minutes, so a test that wants a rotation a few seconds after issue with
/// `--node-cert-ttl 10m` sets `0.34` (306 s of 900 s: 6 s after issue).
pub const RENEW_AT_FRACTION_ENV: &str = "FOG_AGENT_RENEW_AT_FRACTION";

/// A join token taken apart: `FOG1<64-hex CA SHA-256>::<16-hex id>.<64-hex secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// SHA-256 of the CA certificate (DER), lowercase hex.
    pub ca_fingerprint: String,
    /// The whole token, as sent to the coordinator.
    pub raw: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken").field("ca_fingerprint", &self.ca_fingerprint).finish_non_exhaustive()
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a join token strictly (surrounding whitespace is trimmed). The
/// error never repeats the secret.
pub fn parse_token(s: &str) -> Result<JoinToken, String> {
    let s = s.trim();
    if s.len() > 256 {
        return Err("malformed join token: too long".into());
    }
    let rest = s.strip_prefix("FOG1").ok_or("malformed join token: does not start with FOG1")?;
    let (fp, rest) = rest.split_once("::").ok_or("malformed join token: missing `::` after the CA fingerprint")?;
    let (id, secret) = rest.split_once('.').ok_or("malformed join token: missing `.` between id and secret")?;
    if !is_lower_hex(fp, 64) {
        return Err("malformed join token: CA fingerprint must be 64 lowercase hex digits".into());
    }
    if !is_lower_hex(id, 16) {
        return Err("malformed join token: id must be 16 lowercase hex digits".into());
    }
    if !is_lower_hex(secret, 64) {
        return Err("malformed join token: secret must be 64 lowercase hex digits".into());
    }
    Ok(JoinToken { ca_fingerprint: fp.to_string(), raw: s.to_string() })
}

/// A new key pair (ECDSA P-256) and a CSR for it, DER. The coordinator uses
/// only the CSR's public key; nothing else is asked for.
pub fn new_key_and_csr() -> Result<(rcgen::KeyPair, Vec<u8>), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| format!("key generation failed: {e}"))?;
    let csr = csr_for(&key)?;
    Ok((key, csr))
}

/// A CSR for `key`, DER.
pub fn csr_for(key: &rcgen::KeyPair) -> Result<Vec<u8>, String> {
    let params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let csr = params.serialize_request(key).map_err(|e| format!("CSR: {e}"))?;
    Ok(csr.der().to_vec())
}

/// DER → PEM certificate.
pub fn cert_pem(der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new("CERTIFICATE", der.to_vec()), config)
}

/// PEM certificate → DER.
pub fn cert_der(pem_text: &str) -> Result<Vec<u8>, String> {
    let p = pem::parse(pem_text).map_err(|e| format!("not a PEM certificate: {e}"))?;
    if p.tag() != "CERTIFICATE" {
        return Err(format!("expected a CERTIFICATE, found {}", p.tag()));
    }
    Ok(p.into_contents())
}

/// What the agent needs to know about a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// The node id from the SPIFFE URI SAN (`spiffe://<domain>/node/<id>`), if any.
    pub node_id: Option<String>,
    /// The certificate's SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
}

fn from_unix(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0).unsigned_abs())
}

/// Reads validity, node id and public key from a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    let validity = cert.validity();
    let mut node_id = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::URI(uri) = name
                && let Some(rest) = uri.strip_prefix("spiffe://")
                && let Some((_, id)) = rest.split_once("/node/")
            {
                node_id = Some(id.to_string());
            }
        }
    }
    Ok(CertInfo {
        not_before: from_unix(validity.not_before.timestamp()),
        not_after: from_unix(validity.not_after.timestamp()),
        node_id,
        spki: cert.public_key().raw.to_vec(),
    })
}

/// When to renew a certificate: at `fraction` of its lifetime, where
/// `fraction` is the test override if set, else random in 70–90 %.
pub fn renew_at(info: &CertInfo, fraction_override: Option<f64>) -> SystemTime {
    let lifetime = info.not_after.duration_since(info.not_before).unwrap_or(Duration::ZERO);
    let fraction = fraction_override.unwrap_or_else(|| rand::rng().random_range(0.7..=0.9));
    info.not_before + lifetime.mul_f64(fraction.clamp(0.0, 1.0))
}

/// The test override from the environment, if set and a number in (0, 1].
pub fn renew_fraction_from_env() -> Option<f64> {
    let v: f64 = std::env::var(RENEW_AT_FRACTION_ENV).ok()?.parse().ok()?;
    (v > 0.0 && v <= 1.0).then_some(v)
}

/// Writes `bytes` to `dir/name` atomically (temp, fsync, rename, fsync dir), mode 0600.
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// The node's credentials, as loaded from the state dir.
#[derive(Clone)]
pub struct Credentials {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The node certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// Facts from the certificate.
    pub info: CertInfo,
    /// The node id.
    pub node_id: String,
    /// The coordinator joined, if recorded.
    pub coordinator: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("node_id", &self.node_id).field("info", &self.info).finish_non_exhaustive()
    }
}

fn spki_of_key_pem(key_pem: &str) -> Option<Vec<u8>> {
    let key = rcgen::KeyPair::from_pem(key_pem).ok()?;
    Some(rcgen::PublicKeyData::subject_public_key_info(&key))
}

impl Credentials {
    /// Whether the state dir holds a node certificate.
    pub fn exist(state_dir: &Path) -> bool {
        state_dir.join(CERT_FILE).exists()
    }

    /// Loads the credentials, repairing an interrupted rotation first.
    pub fn load(state_dir: &Path) -> Result<Credentials, String> {
        let read = |name: &str| -> Result<String, String> {
            fs::read_to_string(state_dir.join(name)).map_err(|e| format!("{}: {e}", state_dir.join(name).display()))
        };
        let cert_pem = read(CERT_FILE)?;
        let info = cert_info(&cert_der(&cert_pem)?).map_err(|e| format!("{CERT_FILE}: {e}"))?;
        let next: PathBuf = state_dir.join(NEXT_KEY_FILE);
        if let Ok(next_pem) = fs::read_to_string(&next) {
            if spki_of_key_pem(&next_pem).as_deref() == Some(&info.spki[..]) {
                fs::rename(&next, state_dir.join(KEY_FILE)).map_err(|e| format!("{}: {e}", next.display()))?;
            } else {
                let _ = fs::remove_file(&next);
            }
        }
        let key_pem = read(KEY_FILE)?;
        if spki_of_key_pem(&key_pem).as_deref() != Some(&info.spki[..]) {
            return Err(format!("{KEY_FILE} does not belong to {CERT_FILE} in {}", state_dir.display()));
        }
        let ca_pem = read(CA_FILE)?;
        let node_id = match &info.node_id {
            Some(id) => id.clone(),
            None => read(NODE_ID_FILE)?.trim().to_string(),
        };
        let coordinator = fs::read_to_string(state_dir.join(COORDINATOR_FILE)).ok().map(|s| s.trim().to_string());
        Ok(Credentials { ca_pem, cert_pem, key_pem, info, node_id, coordinator })
    }

    /// Stores a renewed key and certificate (crash-safe, see the module docs)
    /// and returns the updated credentials.
    pub fn store_renewed(&self, state_dir: &Path, key_pem: &str, cert_der: &[u8]) -> Result<Credentials, String> {
        let info = cert_info(cert_der)?;
        if spki_of_key_pem(key_pem).as_deref() != Some(&info.spki[..]) {
            return Err("the renewed certificate is not for the key we generated".into());
        }
        if info.node_id.as_deref() != Some(self.node_id.as_str()) {
            return Err(format!("the renewed certificate is for node {:?}, not {:?}", info.node_id, self.node_id));
        }
        let cert_pem = cert_pem(cert_der);
        let io = |e: io::Error| format!("state dir {}: {e}", state_dir.display());
        write_private(state_dir, NEXT_KEY_FILE, key_pem.as_bytes()).map_err(io)?;
        write_private(state_dir, CERT_FILE, cert_pem.as_bytes()).map_err(io)?;
        fs::rename(state_dir.join(NEXT_KEY_FILE), state_dir.join(KEY_FILE)).map_err(io)?;
        File::open(state_dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(Credentials { cert_pem, key_pem: key_pem.to_string(), info, ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn token(fp: &str, id: &str, secret: &str) -> String {
        format!("FOG1{fp}::{id}.{secret}")
    }

    #[test]
    fn tokens_are_parsed_strictly() {
        let good = token(FP, "00112233aabbccdd", FP);
        let t = parse_token(&format!("  {good}\n")).unwrap();
        assert_eq!(t.ca_fingerprint, FP);
        assert_eq!(t.raw, good);
        assert!(!format!("{t:?}").contains("::"), "debug hides the secret");
        for bad in [
            String::new(),
            good.replace("FOG1", "FOG2"),
            token(&FP.to_uppercase(), "00112233aabbccdd", FP),
            token(&FP[1..], "00112233aabbccdd", FP),
            token(FP, "00112233aabbccd", FP),
            token(FP, "00112233aabbccdd", &FP[..63]),
            good.replace("::", ":"),
            good.replace('.', ""),
            format!("{good}0"),
        ] {
            assert!(parse_token(&bad).is_err(), "{bad:?} accepted");
        }
        let err = parse_token(&token(FP, "00112233aabbccdd", "zz")).unwrap_err();
        assert!(!err.contains("zz"), "{err}");
    }

    fn self_signed(key: &rcgen::KeyPair, node: &str, days: i64) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![rcgen::SanType::URI(format!("spiffe://fog.local/node/{node}").try_into().unwrap())];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now;
        p.not_after = now + time::Duration::days(days);
        p.self_signed(key).unwrap().der().to_vec()
    }

    #[test]
    fn cert_facts_and_renewal_schedule() {
        let (key, csr) = new_key_and_csr().unwrap();
        assert!(!csr.is_empty());
        let info = cert_info(&self_signed(&key, "edge-7", 10)).unwrap();
        assert_eq!(info.node_id.as_deref(), Some("edge-7"));
        assert_eq!(info.spki, rcgen::PublicKeyData::subject_public_key_info(&key));
        let life = info.not_after.duration_since(info.not_before).unwrap();
        for _ in 0..50 {
            let at = renew_at(&info, None).duration_since(info.not_before).unwrap();
            assert!(at >= life.mul_f64(0.7) && at <= life.mul_f64(0.9), "{at:?} of {life:?}");
        }
        let at = renew_at(&info, Some(0.5)).duration_since(info.not_before).unwrap();
        assert_eq!(at, life / 2);
    }

    #[test]
    fn rotation_is_crash_safe() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (k1, _) = new_key_and_csr().unwrap();
        let c1 = self_signed(&k1, "n1", 1);
        write_private(d, KEY_FILE, k1.serialize_pem().as_bytes()).unwrap();
        write_private(d, CERT_FILE, cert_pem(&c1).as_bytes()).unwrap();
        write_private(d, CA_FILE, cert_pem(&c1).as_bytes()).unwrap();
        let creds = Credentials::load(d).unwrap();
        assert_eq!(creds.node_id, "n1");
        // A renewal that crashed after writing the next key only: dropped.
        let (k2, _) = new_key_and_csr().unwrap();
        write_private(d, NEXT_KEY_FILE, k2.serialize_pem().as_bytes()).unwrap();
        assert_eq!(Credentials::load(d).unwrap().key_pem, k1.serialize_pem());
        assert!(!d.join(NEXT_KEY_FILE).exists());
        // …after writing the certificate too: the next key is taken.
        let c2 = self_signed(&k2, "n1", 1);
        write_private(d, NEXT_KEY_FILE, k2.serialize_pem().as_bytes()).unwrap();
        write_private(d, CERT_FILE, cert_pem(&c2).as_bytes()).unwrap();
        assert_eq!(Credentials::load(d).unwrap().key_pem, k2.serialize_pem());
        // A full renewal.
        let (k3, _) = new_key_and_csr().unwrap();
        let c3 = self_signed(&k3, "n1", 1);
        let creds = Credentials::load(d).unwrap();
        assert!(creds.store_renewed(d, &k1.serialize_pem(), &c3).is_err(), "wrong key refused");
        let renewed = creds.store_renewed(d, &k3.serialize_pem(), &c3).unwrap();
        assert_eq!(Credentials::load(d).unwrap().cert_pem, renewed.cert_pem);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(d.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        let other = self_signed(&k3, "n2", 1);
        assert!(creds.store_renewed(d, &k3.serialize_pem(), &other).is_err(), "another node's certificate");
    }
}
