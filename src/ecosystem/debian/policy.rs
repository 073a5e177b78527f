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
use super::site::{DEFAULT_VALID_FOR, SiteSigning};
use crate::error::{Error, Result};
use crate::manifest::evidence::EvidenceKind;
use crate::policy::{Pinned, References, Table};

/// The default `valid-until-grace`.
pub const DEFAULT_GRACE: u64 = 14 * 86_400;

/// What `[debian]` pins: the keyring and the grace, and the site's own
/// key when the mirror publishes site-signed.
#[derive(Debug, Clone)]
pub struct Roots {
    pub keyring: Keyring,
    /// Seconds.
    pub grace: u64,
    /// `publish = "site-signed"`: the key that signs the mirror's Releases.
    pub site: Option<SiteSigning>,
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
        &["keyring", "valid-until-grace", "publish", "site-key", "site-valid-for"]
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
            if let Some(setting) = ["valid-until-grace", "publish", "site-key", "site-valid-for"]
                .into_iter()
                .find(|s| settings.contains_key(s))
            {
                return Err(Error::Usage(format!(
                    "{origin}: [debian] {setting} without a keyring; pin keyring = \"FILE\" too (Debian's chain is checked before anything is published)"
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
        let site = site_signing(settings, base, origin)?;
        Ok(Some(Pinned { roots: Arc::new(Roots { keyring, grace, site }), document }))
    }
}

/// `publish` (`"debian"`, the default: Debian's files untouched; or
/// `"site-signed"`), with `site-key` (the site's OpenPGP secret key, beside
/// the policy, readable by its owner only) and `site-valid-for`.
fn site_signing(
    settings: &BTreeMap<&'static str, String>,
    base: &std::path::Path,
    origin: &str,
) -> Result<Option<SiteSigning>> {
    let mode = settings.get("publish").map_or("debian", String::as_str);
    let site_settings = ["site-key", "site-valid-for"];
    match mode {
        "debian" => match site_settings.into_iter().find(|s| settings.contains_key(s)) {
            Some(setting) => Err(Error::Usage(format!(
                "{origin}: [debian] {setting} applies only with publish = \"site-signed\"; add that or remove {setting}"
            ))),
            None => Ok(None),
        },
        "site-signed" => {
            let Some(file) = settings.get("site-key") else {
                return Err(Error::Usage(format!(
                    "{origin}: [debian] publish = \"site-signed\" needs site-key = \"FILE\", the site's OpenPGP secret key (airlock keygen --openpgp makes one)"
                )));
            };
            let valid_for = match settings.get("site-valid-for") {
                Some(text) => humantime::parse_duration(text).map(|d| d.as_secs()).map_err(|e| {
                    Error::Usage(format!(
                        "{origin}: [debian] site-valid-for {text:?} is not a duration such as \"30d\" ({e})"
                    ))
                })?,
                None => DEFAULT_VALID_FOR,
            };
            let path = base.join(file);
            let bytes = std::fs::read(&path).map_err(|e| Error::input(&path, "Debian site key", &e))?;
            check_private(&path)?;
            let what = path.display().to_string();
            Ok(Some(SiteSigning::from_bytes(&bytes, valid_for, &what).map_err(Error::Usage)?))
        }
        other => Err(Error::Usage(format!(
            "{origin}: [debian] publish = {other:?}; use \"debian\" (Debian's files untouched, the default) or \"site-signed\""
        ))),
    }
}

/// A secret key others can read is refused, as the operator keys are.
fn check_private(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).map_err(|e| Error::input(path, "Debian site key", &e))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "{}: the site's secret key is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}
