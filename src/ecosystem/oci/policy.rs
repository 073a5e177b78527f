//! The images' table of the import policy (`[oci]`): the common rules, and
//! `[[oci.signers]]`, who must have signed the images whose repository
//! matches `images`: a cosign key (ECDSA P-256, P-384 or P-521, PEM), or a
//! Sigstore keyless identity (the Fulcio certificate's SAN, exactly or as a
//! workflow of a repository, and its OIDC issuer, as `[[npm.publishers]]`
//! reads), checked against the pinned `[sigstore] trusted-root`.
//!
//! ```toml
//! [oci]
//! require = ["cosign-signature"]
//! [[oci.signers]]
//! images = ["registry.example/team/*"]
//! key = "cosign.pub"
//! [[oci.signers]]
//! images = ["ghcr.io/org/*"]
//! repository = "https://github.com/org/app"
//! workflow = ".github/workflows/release.yml"
//! issuer = "https://token.actions.githubusercontent.com"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::Oci;
use crate::ecosystem::signer_keys::{KeySigners, SignerTable};
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::{Pinned, Publisher, References, Table};

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
        let mut keys = Vec::new();
        let mut identities = Vec::new();
        for rule in SIGNERS.rules::<SignerRule>(json, origin)? {
            SIGNERS.check_patterns(&rule.images, origin)?;
            match (rule.key, rule.issuer) {
                (Some(key), None) if rule.identity.is_none() && rule.repository.is_none() => {
                    keys.push((rule.images, key));
                }
                (None, Some(issuer)) => {
                    let identity = Publisher {
                        packages: rule.images,
                        identity: rule.identity,
                        repository: rule.repository,
                        workflow: rule.workflow,
                        issuer,
                    };
                    identity.validate(origin, SIGNERS.table)?;
                    identities.push(identity);
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "{origin}: [[oci.signers]] must name one signer: key = \"cosign.pub\", or a keyless identity (identity, or repository with an optional workflow) with its issuer"
                    )));
                }
            }
        }
        let signers = ImageSigners { keys: SIGNERS.keys(keys, references, origin)?, identities };
        Ok(Some(Pinned { roots: Arc::new(signers), document: json.as_bytes().to_vec() }))
    }
}

/// The pinned signers of images: cosign keys, and keyless identities.
#[derive(Debug)]
pub struct ImageSigners {
    pub keys: KeySigners,
    pub identities: Vec<Publisher>,
}

impl ImageSigners {
    /// The keyless identities whose patterns match the repository `name`.
    pub fn identities<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Publisher> {
        self.identities.iter().filter(move |p| SignerTable::governs(&p.packages, name))
    }
}

/// `oci-signer` in schemas/policy.cddl, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRule {
    images: Vec<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    identity: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    workflow: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
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
                .contains("must name one signer")
        );
        assert!(err("[[oci.signers]]\nimages = [\"r.io/*\"]\nidentity = \"x\"\n").contains("must name one signer"));
        assert!(
            err("[[oci.signers]]\nimages = [\"r.io/*\"]\nworkflow = \"w.yml\"\nissuer = \"https://i\"\n")
                .contains("needs exactly one of identity or repository")
        );
        assert!(
            err("[[oci.signers]]\nimages = [\"r.io/*\"]\nrepository = \"org/app\"\nissuer = \"https://i\"\n")
                .contains("must be a URL")
        );
        assert!(
            err("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"k.pub\"\nsubject = \"x\"\n")
                .contains("unknown field `subject`")
        );
        let keyless = "[[oci.signers]]\nimages = [\"r.io/*\"]\nrepository = \"https://github.com/org/app\"\nissuer = \"https://i\"\n";
        assert!(parse(keyless, References::Refused).is_ok());
        assert!(err("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"missing.pub\"\n").contains("missing.pub"));
        std::fs::write(dir.path().join("bad.pub"), "not a key").unwrap();
        assert!(err("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"bad.pub\"\n").contains("not a PEM public key"));
        let statement = parse("[[oci.signers]]\nimages = [\"r.io/*\"]\nkey = \"k.pub\"\n", References::Refused);
        assert!(statement.unwrap_err().to_string().contains("cannot name files"));
    }
}
