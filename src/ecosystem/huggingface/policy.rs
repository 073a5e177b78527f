//! The models' table of the import policy (`[huggingface]`): the common
//! rules, and `[[huggingface.signers]]`, the model-signing keys (ECDSA
//! P-256, PEM) that must have signed the repositories whose entry name
//! (`ORG/NAME`, `datasets/ORG/NAME`) matches `models`.
//!
//! ```toml
//! [huggingface]
//! require = ["model-signature"]
//! [[huggingface.signers]]
//! models = ["org/*"]
//! key = "model-signing.pub"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::DecodePublicKey as _;
use serde::Deserialize;

use super::Huggingface;
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::names::matches;
use crate::policy::{Pinned, References, Table};

impl Table for Huggingface {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn evidence(&self) -> &'static [EvidenceKind] {
        &super::evidence::EVIDENCE
    }

    fn no_publishers(&self) -> Option<&'static str> {
        Some("models name their signers in [[huggingface.signers]]")
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
            if require.iter().any(|k| k == "model-signature") {
                return Err(Error::Usage(format!(
                    "{origin}: [huggingface] requires model-signature but has no [[huggingface.signers]] to check them with"
                )));
            }
            return Ok(None);
        };
        let written: Vec<SignerRule> =
            serde_json::from_str(json).map_err(|e| Error::Usage(format!("{origin}: [[huggingface.signers]]: {e}")))?;
        let mut signers = Vec::new();
        for rule in written {
            if rule.models.is_empty() {
                return Err(Error::Usage(format!(
                    "{origin}: [[huggingface.signers]] names no models; list the repository patterns it governs"
                )));
            }
            let References::Beside(base) = references else {
                return Err(Error::Usage(format!(
                    "{origin}: [[huggingface.signers]] key names the file {:?}; a policy statement cannot name files",
                    rule.key
                )));
            };
            let path = base.join(&rule.key);
            let pem =
                std::fs::read_to_string(&path).map_err(|e| Error::input(&path, "model-signing public key", &e))?;
            let key = parse_pem(&pem).map_err(|m| Error::Usage(format!("{}: {m}", path.display())))?;
            signers.push(Signer { models: rule.models, key, label: rule.key });
        }
        Ok(Some(Pinned { roots: Arc::new(Signers(signers)), document: json.as_bytes().to_vec() }))
    }
}

/// `huggingface-signer` in schemas/policy.cddl, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRule {
    models: Vec<String>,
    key: String,
}

/// The pinned model-signing keys.
#[derive(Debug)]
pub struct Signers(Vec<Signer>);

#[derive(Debug)]
pub struct Signer {
    /// Entry-name patterns (`*` wildcard).
    pub models: Vec<String>,
    pub key: VerifyingKey,
    /// The key file as the policy names it.
    pub label: String,
}

impl Signers {
    /// The signers whose patterns match `name`.
    pub fn governing<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Signer> {
        self.0.iter().filter(move |s| s.models.iter().any(|p| matches(p, name)))
    }
}

/// A PEM `PUBLIC KEY` (`SubjectPublicKeyInfo`) of an ECDSA P-256 key, as
/// `openssl ec -pubout` writes it for model-signing's `key` method.
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
    VerifyingKey::from_public_key_der(&der)
        .map_err(|_| "not an ECDSA P-256 public key (airlock checks model-signing's key method with P-256)".to_owned())
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
        let parse = |extra: &str| {
            Policy::parse(&format!("{head}{extra}"), References::Beside(dir.path()), "p", POLICY_TABLES)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(
            parse("[huggingface]\nrequire = [\"model-signature\"]\n")
                .unwrap_err()
                .contains("no [[huggingface.signers]]")
        );
        assert!(
            parse("[[huggingface.signers]]\nmodels = [\"o/*\"]\nkey = \"k.pub\"\nx = 1\n")
                .unwrap_err()
                .contains("unknown field")
        );
        assert!(
            parse("[[huggingface.signers]]\nmodels = [\"o/*\"]\nkey = \"missing.pub\"\n")
                .unwrap_err()
                .contains("missing.pub")
        );
        std::fs::write(dir.path().join("bad.pub"), "nope").unwrap();
        assert!(
            parse("[[huggingface.signers]]\nmodels = [\"o/*\"]\nkey = \"bad.pub\"\n")
                .unwrap_err()
                .contains("not a PEM")
        );
        assert!(parse("[huggingface]\nrequire = [\"hf-files\"]\n").is_ok());
    }
}
