//! The images' table of the import policy (`[oci]`): the common rules, and
//! `[[oci.signers]]`, the cosign keys (ECDSA P-256, P-384 or P-521, PEM) that must have
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

use serde::Deserialize;

use super::Oci;
use crate::ecosystem::signer_keys::SignerTable;
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
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
        let signers = SIGNERS.resolve(json, references, origin, |rule: SignerRule| (rule.images, rule.key))?;
        Ok(Some(Pinned { roots: Arc::new(signers), document: json.as_bytes().to_vec() }))
    }
}

/// `oci-signer` in schemas/policy.cddl, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRule {
    images: Vec<String>,
    key: String,
}

/// How `[[oci.signers]]` reads.
const SIGNERS: SignerTable = SignerTable {
    table: "oci.signers",
    governs: "images",
    key_what: "cosign public key",
    not_ecdsa: "not an ECDSA P-256, P-384 or P-521 public key",
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
