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

use serde::Deserialize;

use super::Huggingface;
use crate::ecosystem::signer_keys::SignerTable;
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
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
        let signers = SIGNERS.resolve(json, references, origin, |rule: SignerRule| (rule.models, rule.key))?;
        Ok(Some(Pinned { roots: Arc::new(signers), document: json.as_bytes().to_vec() }))
    }
}

/// `huggingface-signer` in schemas/policy.cddl, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRule {
    models: Vec<String>,
    key: String,
}

/// How `[[huggingface.signers]]` reads.
const SIGNERS: SignerTable = SignerTable {
    table: "huggingface.signers",
    governs: "models",
    key_what: "model-signing public key",
    not_p256: "not an ECDSA P-256 public key (airlock checks model-signing's key method with P-256)",
};

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
