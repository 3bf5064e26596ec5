//! Reading a node's CSR: verify its signature, keep only its public key.
//!
//! rcgen's `CertificateSigningRequestParams::from_der` also verifies the
//! signature, but it parses every requested extension into certificate
//! parameters and refuses ones it does not know — we want neither, since the
//! coordinator ignores everything but the key. So the CSR is parsed with
//! x509-parser and its signature checked explicitly here (ring underneath);
//! the key goes to rcgen as a bare SubjectPublicKeyInfo.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_SIG_ED25519};
use x509_parser::prelude::FromDer;

use super::IdentityError;

/// A PKCS#10 request for an EC or Ed25519 key is a few hundred bytes; anything
/// much larger is not a CSR we would sign and is refused before parsing.
pub(crate) const MAX_CSR_LEN: usize = 16 * 1024;

/// The public key of a CSR whose signature verified, as rcgen wants it.
pub(crate) fn verified_public_key(csr_der: &[u8]) -> Result<rcgen::SubjectPublicKeyInfo, IdentityError> {
    if csr_der.is_empty() {
        return Err(IdentityError::CsrMalformed("empty"));
    }
    if csr_der.len() > MAX_CSR_LEN {
        return Err(IdentityError::CsrMalformed("larger than 16 KiB"));
    }
    let (rest, csr) = X509CertificationRequest::from_der(csr_der)
        .map_err(|_| IdentityError::CsrMalformed("not a PKCS#10 request"))?;
    if !rest.is_empty() {
        return Err(IdentityError::CsrMalformed("trailing bytes after the request"));
    }
    let spki = &csr.certification_request_info.subject_pki;
    // Only key types we are willing to put in a node certificate. Checked
    // before the signature so an RSA or exotic key fails with a clear reason.
    let alg = &spki.algorithm;
    let supported = if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
        curve.is_some_and(|c| c == OID_EC_P256 || c == OID_NIST_EC_P384)
    } else {
        alg.algorithm == OID_SIG_ED25519 && alg.parameters.is_none()
    };
    if !supported {
        return Err(IdentityError::CsrUnsupportedKey);
    }
    // The proof of possession: the request info must be signed by the key it
    // carries. x509-parser picks the ring verifier from the signature
    // algorithm and the key's curve, and refuses algorithms it cannot check.
    csr.verify_signature().map_err(|_| IdentityError::CsrSignatureInvalid)?;
    rcgen::SubjectPublicKeyInfo::from_der(spki.raw).map_err(|_| IdentityError::CsrUnsupportedKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair, PublicKeyData};

    fn csr_for(key: &KeyPair) -> Vec<u8> {
        CertificateParams::new(vec!["node.example".to_owned()]).unwrap().serialize_request(key).unwrap().der().to_vec()
    }

    #[test]
    fn accepts_p256_p384_and_ed25519_and_keeps_the_key() {
        for alg in [&rcgen::PKCS_ECDSA_P256_SHA256, &rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = KeyPair::generate_for(alg).unwrap();
            let spki = verified_public_key(&csr_for(&key)).unwrap();
            assert_eq!(spki.der_bytes(), key.public_key_raw());
            assert_eq!(spki.algorithm(), alg);
        }
    }

    #[test]
    fn refuses_empty_oversized_and_trailing_bytes() {
        assert!(matches!(verified_public_key(&[]), Err(IdentityError::CsrMalformed(_))));
        assert!(matches!(verified_public_key(&vec![0x30; MAX_CSR_LEN + 1]), Err(IdentityError::CsrMalformed(_))));
        let mut der = csr_for(&KeyPair::generate().unwrap());
        der.push(0);
        assert_eq!(verified_public_key(&der), Err(IdentityError::CsrMalformed("trailing bytes after the request")));
    }
}
