//! The images' table of the import policy (`[oci]`): the common rules, and
//! `[[oci.signers]]`, the cosign keys (ECDSA P-256, PEM) that must have
//! signed the images whose repository matches `images`.
//!
//! ```toml
//! [oci]
//! require = ["cosign-signature"]
//! [[oci.signers]]
//! images = ["registry.example/team/*"]
//! key = "cosign.pub"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

use super::Oci;
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::names::matches;
use crate::policy::{Pinned, References, Table};

impl Table for Oci {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn evidence(&self) -> &'static [EvidenceKind] {
        &super::evidence::EVIDENCE
    }

    fn no_publishers(&self) -> Option<&'static str> {
        Some("images name their signers in [[oci.signers]]")
    }

    fn settings(&self) -> &'static [&'static str] {
        &["signers"]
    }

    fn table_settings(&self) -> &'static [&'static str] {
        &["signers"]
    }

    fn resolve(
        &self,
        settings: &BTreeMap<&'static str, String>,
        require: &[String],
        references: References<'_>,
        origin: &str,
    ) -> Result<Option<Pinned>> {
        let Some(json) = settings.get("signers") else {
            if require.iter().any(|k| k == "cosign-signature") {
                return Err(Error::Usage(format!(
                    "{origin}: [oci] requires cosign-signature but has no [[oci.signers]] to check them with"
                )));
            }
            return Ok(None);
        };
        let written: Vec<SignerRule> =
            serde_json::from_str(json).map_err(|e| Error::Usage(format!("{origin}: [[oci.signers]]: {e}")))?;
        let mut signers = Vec::new();
        for rule in written {
            if rule.images.is_empty() {
                return Err(Error::Usage(format!(
                    "{origin}: [[oci.signers]] names no images; list the repository patterns it governs"
                )));
            }
            let References::Beside(base) = references else {
                return Err(Error::Usage(format!(
                    "{origin}: [[oci.signers]] key names the file {:?}; a policy statement cannot name files",
                    rule.key
                )));
            };
            let path = base.join(&rule.key);
            let pem = std::fs::read_to_string(&path).map_err(|e| Error::input(&path, "cosign public key", &e))?;
            let key = parse_pem(&pem).map_err(|m| Error::Usage(format!("{}: {m}", path.display())))?;
            signers.push(Signer { images: rule.images, key, label: rule.key });
        }
        Ok(Some(Pinned { roots: Arc::new(Signers(signers)), document: json.as_bytes().to_vec() }))
    }
}

/// `oci-signer` in schemas/policy.cddl, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRule {
    images: Vec<String>,
    key: String,
}

/// The pinned cosign keys.
#[derive(Debug)]
pub struct Signers(Vec<Signer>);

#[derive(Debug)]
pub struct Signer {
    /// Repository patterns (`*` wildcard).
    pub images: Vec<String>,
    pub key: VerifyingKey,
    /// The key file as the policy names it.
    pub label: String,
}

impl Signers {
    /// The signers whose patterns match `repository`.
    pub fn governing<'a>(&'a self, repository: &'a str) -> impl Iterator<Item = &'a Signer> {
        self.0.iter().filter(move |s| s.images.iter().any(|p| matches(p, repository)))
    }
}

/// A PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`) of an ECDSA P-256 key, as `cosign generate-key-pair` writes it.
pub fn parse_pem(pem: &str) -> std::result::Result<VerifyingKey, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PUBLIC KEY-----")
        .collect();
    if body.is_empty() {
        return Err("not a PEM public key (-----BEGIN PUBLIC KEY-----)".into());
    }
    let der =
        base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| "its PEM body is not base64".to_owned())?;
    VerifyingKey::from_public_key_der(&der).map_err(|_| "not an ECDSA P-256 public key".to_owned())
}

#[cfg(test)]
mod tests {
    use crate::ecosystem::POLICY_TABLES;
    use crate::policy::{Policy, References};
    use crate::sign::SecretKey;

    #[test]
    fn signers_are_tables_naming_a_p256_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::generate().unwrap();
        let head =
            format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\npublic = \"{}\"\n", a.public().to_text());
        let parse = |extra: &str, references| Policy::parse(&format!("{head}{extra}"), references, "p", POLICY_TABLES);
        let err = |extra: &str| parse(extra, References::Beside(dir.path())).unwrap_err().to_string();
        assert!(err("[oci]\nrequire = [\"cosign-signature\"]\n").contains("no [[oci.signers]]"));
        assert!(err("[oci]\nsigners = \"cosign.pub\"\n").contains("invalid type"));
        assert!(
            err("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"k.pub\"\nidentity = \"x\"\n")
                .contains("unknown field `identity`")
        );
        assert!(err("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"missing.pub\"\n").contains("missing.pub"));
        std::fs::write(dir.path().join("bad.pub"), "not a key").unwrap();
        assert!(err("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"bad.pub\"\n").contains("not a PEM public key"));
        let statement = parse("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"k.pub\"\n", References::Refused);
        assert!(statement.unwrap_err().to_string().contains("cannot name files"));
    }
}
