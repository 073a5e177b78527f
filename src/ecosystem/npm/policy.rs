//! npm's table of the import policy (`[npm]`): the common rules, and the
//! registry's keys document the registry signatures and publish
//! attestations are checked against, by file (`registry-keys`) or inline
//! (`registry-keys-json`, what a signed statement must use).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Npm;
use super::registry_keys::RegistryKeys;
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::{Pinned, References, Table};

impl Table for Npm {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn evidence(&self) -> &'static [EvidenceKind] {
        &super::evidence::EVIDENCE
    }

    fn needs_sigstore(&self, kind: &str) -> bool {
        kind == "npm-attestations"
    }

    fn settings(&self) -> &'static [&'static str] {
        &["registry-keys", "registry-keys-json"]
    }

    fn resolve(
        &self,
        settings: &BTreeMap<&'static str, String>,
        require: &[String],
        references: References<'_>,
        origin: &str,
    ) -> Result<Option<Pinned>> {
        let pinned = match registry_keys_document(settings, references, origin)? {
            Some((document, label)) => {
                let keys = RegistryKeys::from_json(&document, &label)?;
                Some(Pinned { roots: Arc::new(keys), document })
            }
            None => None,
        };
        if require.iter().any(|k| k == "npm-signatures") && pinned.is_none() {
            return Err(Error::Usage(format!(
                "{origin}: [npm] requires npm-signatures but pins no registry-keys to check them with"
            )));
        }
        Ok(pinned)
    }
}

/// The pinned keys document and a label naming it in errors.
fn registry_keys_document(
    settings: &BTreeMap<&'static str, String>,
    references: References<'_>,
    origin: &str,
) -> Result<Option<(Vec<u8>, String)>> {
    match (settings.get("registry-keys"), settings.get("registry-keys-json"), references) {
        (None, None, _) => Ok(None),
        (Some(_), Some(_), _) => {
            Err(Error::Usage(format!("{origin}: [npm] has both registry-keys and registry-keys-json; keep one")))
        }
        (None, Some(json), _) => Ok(Some((json.as_bytes().to_vec(), format!("{origin}: [npm] registry-keys-json")))),
        (Some(file), None, References::Beside(base)) => {
            let path = base.join(file);
            let document = std::fs::read(&path).map_err(|e| Error::input(&path, "npm registry keys", &e))?;
            Ok(Some((document, path.display().to_string())))
        }
        (Some(file), None, References::Refused) => Err(Error::Usage(format!(
            "{origin}: [npm] registry-keys names the file {file:?}; a policy statement must carry the document itself: use registry-keys-json = '''<the file's contents>''' instead"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::ecosystem::POLICY_TABLES;
    use crate::policy::Policy;
    use crate::sign::SecretKey;

    #[test]
    fn a_statement_takes_inline_registry_keys_but_not_a_file_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretKey::generate().unwrap();
        let parse = |text: &str, references: References<'_>| Policy::parse(text, references, "p", POLICY_TABLES);
        let inline =
            format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\npublic = \"{}\"\n", a.public().to_text());
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/registry/upstream/registry-keys.json");
        let document = fs::read_to_string(fixture).unwrap();
        fs::write(dir.path().join("npm-keys.json"), &document).unwrap();
        let by_name = format!("{inline}[npm]\nregistry-keys = \"npm-keys.json\"\n");
        let beside = parse(&by_name, References::Beside(dir.path())).unwrap();
        assert!(beside.rules("npm").unwrap().roots::<RegistryKeys>().is_some());
        let err = parse(&by_name, References::Refused).unwrap_err();
        assert!(err.to_string().contains("registry-keys-json"), "{err}");
        let carried = format!("{inline}[npm]\nrequire = [\"npm-signatures\"]\nregistry-keys-json = '''{document}'''\n");
        let policy = parse(&carried, References::Refused).unwrap();
        assert_eq!(policy.rules("npm").unwrap().pinned_document(), Some(document.as_bytes()));
        let both = format!("{by_name}registry-keys-json = '''{document}'''\n");
        assert!(parse(&both, References::Beside(dir.path())).unwrap_err().to_string().contains("keep one"));
    }

    #[test]
    fn unknown_tables_and_fields_are_refused_as_before() {
        let a = SecretKey::generate().unwrap();
        let head =
            format!("version = 1\nthreshold = 1\n[[keys]]\nname = \"a\"\npublic = \"{}\"\n", a.public().to_text());
        let err = |extra: &str| {
            Policy::parse(&format!("{head}{extra}"), References::Refused, "p", POLICY_TABLES).unwrap_err().to_string()
        };
        assert!(
            err("[alpine]\n").contains("unknown field `alpine`, expected one of `version`, `serial`, `threshold`, `keys`, `revoked`, `channels`, `npm`, `pypi`, `cargo`, `debian`, `oci`, `huggingface`, `sigstore`"),
            "{}",
            err("[alpine]\n")
        );
        assert!(err("[npm]\ncolour = 1\n").contains(
            "unknown field `colour`, expected one of `require`, `registry-keys`, `registry-keys-json`, `keyring`, `valid-until-grace`, `publish`, `site-key`, `site-valid-for`, `signers`, `publishers`, `names`"
        ));
        assert_eq!(err("[cargo]\nregistry-keys = \"x.json\"\n"), "p: registry-keys is an npm setting, not cargo");
        assert_eq!(
            err("[pypi]\nrequire = [\"npm-signatures\"]\n"),
            "p: [pypi] requires unknown evidence \"npm-signatures\"; use one of pypi-core-metadata, pypi-provenance"
        );
    }
}
