//! The models' table of the import policy (`[huggingface]`): the common
//! rules, and `[[huggingface.signers]]`, who must have signed the
//! repositories whose entry name (`ORG/NAME`, `datasets/ORG/NAME`) matches
//! `models`: a model-signing key (ECDSA P-256, P-384 or P-521, PEM; the `key` method), or a
//! Sigstore keyless identity (the certificate's SAN and OIDC issuer, checked
//! against the pinned `[sigstore] trusted-root`; the `sigstore` method).
//!
//! ```toml
//! [huggingface]
//! require = ["model-signature"]
//! [[huggingface.signers]]
//! models = ["org/*"]
//! key = "model-signing.pub"
//! [[huggingface.signers]]
//! models = ["other/*"]
//! identity = "release@other.example"
//! issuer = "https://accounts.google.com"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::Huggingface;
use crate::ecosystem::signer_keys::{KeySigners, SignerTable};
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::{Pinned, References, Table};
use crate::provenance::certificate::Authorities;

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
        let rules: Vec<SignerRule> = SIGNERS.rules(json, origin)?;
        let mut keys = Vec::new();
        let mut identities = Vec::new();
        let mut authorities = Vec::new();
        for rule in rules {
            SIGNERS.check_patterns(&rule.models, origin)?;
            match (rule.key, rule.identity, rule.issuer, rule.certificate_chain) {
                (Some(key), None, None, None) => keys.push((rule.models, key)),
                (None, Some(identity), Some(issuer), None) => {
                    identities.push(IdentitySigner { patterns: rule.models, identity, issuer });
                }
                (None, None, None, Some(file)) => {
                    let authority = read_authorities(&file, references, origin)?;
                    authorities.push(AuthoritySigner { patterns: rule.models, authority });
                }
                (None, Some(_), None, None) => {
                    return Err(Error::Usage(format!(
                        "{origin}: [[huggingface.signers]] names an identity without its issuer; add issuer = \"https://...\" (the OIDC issuer of the signing certificate)"
                    )));
                }
                _ => {
                    return Err(Error::Usage(format!(
                        "{origin}: [[huggingface.signers]] must name one signer: key = \"FILE.pub\", identity and issuer (Sigstore keyless), or certificate-chain = \"CA.pem\"; not several, not none"
                    )));
                }
            }
        }
        let signers = ModelSigners { keys: SIGNERS.keys(keys, references, origin)?, identities, authorities };
        Ok(Some(Pinned { roots: Arc::new(signers), document: json.as_bytes().to_vec() }))
    }
}

/// The certificate authorities of a `certificate-chain` file beside the policy.
fn read_authorities(file: &str, references: References<'_>, origin: &str) -> Result<Authorities> {
    let References::Beside(base) = references else {
        return Err(Error::Usage(format!(
            "{origin}: [[huggingface.signers]] certificate-chain names the file {file:?}; a policy statement cannot name files"
        )));
    };
    let path = base.join(file);
    let pem = std::fs::read(&path).map_err(|e| Error::input(&path, "certificate authorities", &e))?;
    Authorities::from_pem(&pem, file, &path.display().to_string())
}

/// The pinned signers of models: keys, and keyless identities.
#[derive(Debug)]
pub struct ModelSigners {
    pub keys: KeySigners,
    pub identities: Vec<IdentitySigner>,
    pub authorities: Vec<AuthoritySigner>,
}

/// Certificate authorities (model-signing's `certificate` method): a
/// signature counts when its certificate chains to one of them.
#[derive(Debug)]
pub struct AuthoritySigner {
    pub patterns: Vec<String>,
    pub authority: Authorities,
}

/// A Sigstore keyless signer: the certificate's identity (SAN: an e-mail
/// address or a URI) and its OIDC issuer, both compared exactly.
#[derive(Debug)]
pub struct IdentitySigner {
    pub patterns: Vec<String>,
    pub identity: String,
    pub issuer: String,
}

impl ModelSigners {
    /// Whether any rule governs `name`.
    #[must_use]
    pub fn governs(&self, name: &str) -> bool {
        self.keys.governing(name).next().is_some()
            || self.identities(name).next().is_some()
            || self.authorities(name).next().is_some()
    }

    /// The certificate authorities that govern `name`.
    pub fn authorities<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a AuthoritySigner> {
        self.authorities.iter().filter(move |s| SignerTable::governs(&s.patterns, name))
    }

    /// The identities that govern `name`.
    pub fn identities<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a IdentitySigner> {
        self.identities.iter().filter(move |s| SignerTable::governs(&s.patterns, name))
    }
}

/// `huggingface-signer` in schemas/policy.cddl, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerRule {
    models: Vec<String>,
    key: Option<String>,
    identity: Option<String>,
    issuer: Option<String>,
    #[serde(rename = "certificate-chain")]
    certificate_chain: Option<String>,
}

/// How `[[huggingface.signers]]` reads.
const SIGNERS: SignerTable = SignerTable {
    table: "huggingface.signers",
    governs: "models",
    key_what: "model-signing public key",
    not_ecdsa: "not an ECDSA P-256, P-384 or P-521 public key (the curves airlock checks model-signing's key method with)",
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
        // Keyless signers: an identity with its issuer, never half of one, never beside a key.
        let keyless = "[[huggingface.signers]]\nmodels = [\"o/*\"]\nidentity = \"a@example.com\"\n";
        assert!(parse(&format!("{keyless}issuer = \"https://accounts.google.com\"\n")).is_ok());
        assert!(parse(keyless).unwrap_err().contains("without its issuer"));
        std::fs::write(dir.path().join("k.pub"), "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n")
            .unwrap();
        assert!(
            parse(&format!("{keyless}issuer = \"i\"\nkey = \"k.pub\"\n"))
                .unwrap_err()
                .contains("not several, not none")
        );
        assert!(parse("[[huggingface.signers]]\nmodels = [\"o/*\"]\n").unwrap_err().contains("not several, not none"));
        assert!(
            parse("[[huggingface.signers]]\nmodels = []\nidentity = \"a\"\nissuer = \"i\"\n")
                .unwrap_err()
                .contains("names no models")
        );
    }
}
