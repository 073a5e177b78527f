//! Signatures by a certificate that chains to certificate authorities a site
//! pins (model-signing's `certificate` method): no transparency log, no
//! Fulcio, only X.509. Path building, the signatures along the path,
//! validity and basic constraints are rustls-webpki's; this module picks
//! the time, the key usage and the algorithms, and checks the signature
//! the leaf's key made.

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::der::Decode as _;

use crate::error::{Error, Result};

/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), DER content octets.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// The algorithms a certificate along the path may be signed with.
const PATH_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// The algorithms the leaf's key may sign the message with: ECDSA with the
/// hash its curve calls for (as model-signing signs), DER-encoded.
const MESSAGE_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] =
    &[webpki::ring::ECDSA_P256_SHA256, webpki::ring::ECDSA_P384_SHA384];

/// Certificate authorities a policy pins (a PEM file of one or more).
pub struct Authorities {
    certificates: Vec<CertificateDer<'static>>,
    /// The file as the policy names it.
    pub label: String,
}

impl std::fmt::Debug for Authorities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Authorities({}, {} certificates)", self.label, self.certificates.len())
    }
}

impl Authorities {
    /// The certificates of a PEM file; `origin` names it in errors.
    pub fn from_pem(pem: &[u8], label: &str, origin: &str) -> Result<Authorities> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "{origin}: {why}; pin the PEM certificate of the authority that issued the signing certificates"
            ))
        };
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| bad("not a PEM file of certificates"))?;
        if certificates.is_empty() {
            return Err(bad("holds no certificate (-----BEGIN CERTIFICATE-----)"));
        }
        for der in &certificates {
            webpki::anchor_from_trusted_cert(der)
                .map_err(|e| bad(&format!("a certificate in it is unusable ({e})")))?;
        }
        Ok(Authorities { certificates, label: label.to_owned() })
    }

    fn anchors(&self) -> Vec<TrustAnchor<'_>> {
        self.certificates.iter().filter_map(|der| webpki::anchor_from_trusted_cert(der).ok()).collect()
    }
}

/// Checks that `chain` (DER, the signing certificate first, then any
/// intermediates) leads to one of `authorities`, and that the signing
/// certificate's key made `signature` (DER ECDSA) over `message`. The path
/// is judged at the signing certificate's own start of validity, as
/// model-signing judges it: a signature outlives its short-lived
/// certificate, and nothing here can tell when it was made. If the
/// certificate lists extended key usages, code signing must be one of them.
/// Returns the signing certificate's subject, for the report.
pub fn verify_signed(
    authorities: &Authorities,
    chain: &[Vec<u8>],
    message: &[u8],
    signature: &[u8],
) -> std::result::Result<String, String> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err("it carries no signing certificate".into());
    };
    let parsed =
        x509_cert::Certificate::from_der(leaf).map_err(|_| "its signing certificate is not X.509 DER".to_owned())?;
    let tbs = &parsed.tbs_certificate;
    let time = UnixTime::since_unix_epoch(tbs.validity.not_before.to_unix_duration());
    let leaf_der = CertificateDer::from(leaf.as_slice());
    let end_entity =
        EndEntityCert::try_from(&leaf_der).map_err(|e| format!("its signing certificate is unusable ({e})"))?;
    let intermediates: Vec<CertificateDer<'_>> =
        intermediates.iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    let anchors = authorities.anchors();
    end_entity
        .verify_for_usage(
            PATH_ALGORITHMS,
            &anchors,
            &intermediates,
            time,
            KeyUsage::required_if_present(CODE_SIGNING),
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CaUsedAsEndEntity => format!(
                "its signing certificate is a CA certificate (basic constraints CA:TRUE), which airlock does not take as a signer; have the signer issue it without the CA flag ({})",
                authorities.label
            ),
            e => format!("its certificate does not chain to {} ({e:?})", authorities.label),
        })?;
    if !MESSAGE_ALGORITHMS.iter().any(|alg| end_entity.verify_signature(*alg, message, signature).is_ok()) {
        return Err("its signature does not verify with its certificate's key".into());
    }
    Ok(tbs.subject.to_string())
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::{Authorities, verify_signed};

    /// model-signing's own certificate vector (fixtures/model-signing): its
    /// signing certificate carries CA:TRUE, which model-signing (OpenSSL)
    /// accepts and airlock (webpki, as TLS stacks do) refuses, by name.
    #[test]
    fn a_signing_certificate_that_is_a_ca_is_refused_by_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/model-signing/v1.1.0-certificate");
        let b64 = base64::engine::general_purpose::STANDARD;
        let pem = std::fs::read(dir.join("ca-cert.pem")).unwrap();
        let authorities = Authorities::from_pem(&pem, "ca-cert.pem", "policy").unwrap();
        let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("model.sig")).unwrap()).unwrap();
        let chain: Vec<Vec<u8>> = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| b64.decode(c["rawBytes"].as_str().unwrap()).unwrap())
            .collect();
        let signature = b64.decode(bundle["dsseEnvelope"]["signatures"][0]["sig"].as_str().unwrap()).unwrap();
        let why = verify_signed(&authorities, &chain, b"the message", &signature).unwrap_err();
        assert!(why.contains("is a CA certificate (basic constraints CA:TRUE)"), "{why}");
        // Without the intermediate the path does not reach the authority at all.
        let why = verify_signed(&authorities, &chain[..1], b"the message", &signature).unwrap_err();
        assert!(why.contains("CA certificate") || why.contains("does not chain"), "{why}");
        assert!(verify_signed(&authorities, &[], b"m", &signature).unwrap_err().contains("no signing certificate"));
    }

    #[test]
    fn authorities_must_be_pem_certificates() {
        assert!(
            Authorities::from_pem(b"nope", "x.pem", "x.pem").unwrap_err().to_string().contains("holds no certificate")
        );
        let bad = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(Authorities::from_pem(bad, "x.pem", "x.pem").unwrap_err().to_string().contains("unusable"));
    }
}
