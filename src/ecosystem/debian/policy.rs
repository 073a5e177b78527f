//! Debian's table of the import policy (`[debian]`): the `OpenPGP` keyring
//! `InRelease` files are checked against (`keyring`, a file beside the
//! policy: pinned on the disconnected side, never taken from a bundle) and
//! how long after its `Valid-Until` a Release is still accepted
//! (`valid-until-grace`, default 14 days: air-gapped transfers take longer
//! than the week a security suite's Release is valid).

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Debian;
use super::openpgp::Keyring;
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::{Pinned, References, Table};

/// The default `valid-until-grace`.
pub const DEFAULT_GRACE: u64 = 14 * 86_400;

/// What `[debian]` pins: the keyring and the grace.
#[derive(Debug, Clone)]
pub struct Roots {
    pub keyring: Keyring,
    /// Seconds.
    pub grace: u64,
}

impl Table for Debian {
    fn name(&self) -> &'static str {
        super::NAME
    }

    /// Every Debian name is one the pinned archive's signed index lists
    /// (checked before publishing): `libfoo2` beside `libfoo1` is the
    /// archive's doing, not a typosquatter's.
    fn screens_held_names(&self) -> bool {
        false
    }

    fn evidence(&self) -> &'static [EvidenceKind] {
        &super::evidence::EVIDENCE
    }

    fn no_publishers(&self) -> Option<&'static str> {
        Some("Debian packages carry no Sigstore provenance; pin the archive's keyring instead")
    }

    fn settings(&self) -> &'static [&'static str] {
        &["keyring", "valid-until-grace"]
    }

    fn resolve(
        &self,
        settings: &BTreeMap<&'static str, String>,
        require: &[String],
        references: References<'_>,
        origin: &str,
    ) -> Result<Option<Pinned>> {
        if let Some(kind) = require.first() {
            return Err(Error::Usage(format!(
                "{origin}: [debian] require = [{kind:?}]: every Debian entry carries the evidence it needs already; pin keyring = \"FILE\" to require Debian's signature"
            )));
        }
        let grace = match settings.get("valid-until-grace") {
            Some(text) => humantime::parse_duration(text).map(|d| d.as_secs()).map_err(|e| {
                Error::Usage(format!(
                    "{origin}: [debian] valid-until-grace {text:?} is not a duration such as \"14d\" ({e})"
                ))
            })?,
            None => DEFAULT_GRACE,
        };
        let Some(file) = settings.get("keyring") else {
            if settings.contains_key("valid-until-grace") {
                return Err(Error::Usage(format!(
                    "{origin}: [debian] valid-until-grace without a keyring; pin keyring = \"FILE\" too"
                )));
            }
            return Ok(None);
        };
        let References::Beside(base) = references else {
            return Err(Error::Usage(format!(
                "{origin}: [debian] keyring names the file {file:?}; a policy statement cannot pin a Debian keyring yet: put it in the policy file"
            )));
        };
        let path = base.join(file);
        let document = std::fs::read(&path).map_err(|e| Error::input(&path, "Debian keyring", &e))?;
        let keyring = Keyring::from_bytes(&document).map_err(|why| {
            Error::Usage(format!("{}: {why}; pin Debian's debian-archive-keyring.gpg", path.display()))
        })?;
        Ok(Some(Pinned { roots: Arc::new(Roots { keyring, grace }), document }))
    }
}
