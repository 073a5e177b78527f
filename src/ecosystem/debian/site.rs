//! Site-signed publication (`[debian] publish = "site-signed"`), offered
//! as a choice beside the default of publishing Debian's files untouched:
//! once the upstream chain verified, the mirror writes for each suite it
//! holds a `Packages` per component and architecture listing only the
//! `.deb` files it holds (their upstream paragraphs, verbatim), a `Release`
//! of its own (dated now, `Valid-Until` after `site-valid-for`, the SHA256
//! and size of each file it lists) and signs it with the site's OpenPGP key
//! as `InRelease` and `Release.gpg`. apt on the targets then trusts the
//! site's key (`signed-by=`) instead of Debian's. Debian's own `InRelease`
//! is kept beside it as `InRelease.upstream` (apt ignores it), so the
//! mirror still shows what the site's signature rests on, and a later
//! import's rollback check compares Debian's dates, not the site's.

// Debian's and OpenPGP's names (InRelease, Packages.xz, OpenPGP) are words in these docs, not code.
#![allow(clippy::doc_markdown)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use pgp::composed::{
    CleartextSignedMessage, Deserializable, DetachedSignature, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::Password;

use super::{Kind, NAME, control, kind, unxz};
use crate::error::{Error, Result};
use crate::manifest::Entry;
use crate::mirror::Layout;

/// The default `site-valid-for`: apt refuses the Release after it, so a
/// site that stops importing notices (a Release that never expires would
/// let a stale mirror look current forever).
pub const DEFAULT_VALID_FOR: u64 = 30 * 86_400;

/// Where the upstream `InRelease` goes in site-signed mode.
pub const UPSTREAM_SUFFIX: &str = ".upstream";

/// The site's key and how long its Releases are valid.
#[derive(Debug, Clone)]
pub struct SiteSigning {
    key: SignedSecretKey,
    /// Seconds.
    pub valid_for: u64,
}

impl SiteSigning {
    /// The site's secret key from `bytes` (armored or binary, not protected
    /// by a passphrase), its self-signatures checked; `what` names it in errors.
    pub fn from_bytes(bytes: &[u8], valid_for: u64, what: &str) -> std::result::Result<Self, String> {
        let key = match SignedSecretKey::from_armor_single(std::io::Cursor::new(bytes)) {
            Ok((key, _)) => key,
            Err(_) => SignedSecretKey::from_bytes(std::io::Cursor::new(bytes))
                .map_err(|e| format!("{what}: not an OpenPGP secret key ({e})"))?,
        };
        key.verify_bindings().map_err(|e| format!("{what}: its self-signatures do not verify ({e})"))?;
        let probe = CleartextSignedMessage::sign(rand::rngs::OsRng, "probe", &key.primary_key, &Password::empty());
        probe.map_err(|e| {
            format!(
                "{what}: its primary key cannot sign here ({e}); use a key without a passphrase whose primary key signs"
            )
        })?;
        Ok(SiteSigning { key, valid_for })
    }

    /// The armored public key the targets' apt trusts (`signed-by=`).
    pub fn public_armored(&self) -> std::result::Result<String, String> {
        let public = SignedPublicKey::from(self.key.clone());
        public.to_armored_string(pgp::composed::ArmorOptions::default()).map_err(|e| e.to_string())
    }

    fn clearsign(&self, text: &str) -> Result<String> {
        let signed = CleartextSignedMessage::sign(rand::rngs::OsRng, text, &self.key.primary_key, &Password::empty())
            .and_then(|m| m.to_armored_string(pgp::composed::ArmorOptions::default()));
        signed.map_err(|e| Error::Usage(format!("the site key could not sign a Release: {e}")))
    }

    fn detached(&self, data: &[u8]) -> Result<String> {
        let key = &self.key.primary_key;
        let signed = DetachedSignature::sign_binary_data(
            rand::rngs::OsRng,
            key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )
        .and_then(|s| s.to_armored_string(pgp::composed::ArmorOptions::default()));
        signed.map_err(|e| Error::Usage(format!("the site key could not sign a Release: {e}")))
    }
}

/// A new site key (Ed25519, its primary key signs) for `user`, armored:
/// the secret key, then the public key.
pub fn generate(user: &str) -> std::result::Result<(String, String), String> {
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(pgp::composed::KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(user.into());
    let params = params.build().map_err(|e| e.to_string())?;
    let key = params.generate(rand::rngs::OsRng).map_err(|e| e.to_string())?;
    let secret = key.to_armored_string(pgp::composed::ArmorOptions::default()).map_err(|e| e.to_string())?;
    let public = SignedPublicKey::from(key)
        .to_armored_string(pgp::composed::ArmorOptions::default())
        .map_err(|e| e.to_string())?;
    Ok((secret, public))
}

/// One suite the mirror holds: its index files by component and architecture.
#[derive(Default)]
struct Suite<'a> {
    /// `(component, arch)` → the upstream `Packages.xz` entry.
    packages: BTreeMap<(&'a str, &'a str), &'a Entry>,
    /// Carried translation files, listed as they are.
    translations: Vec<(&'a str, &'a Entry)>,
}

/// Writes the site's `Packages`, `Release`, `InRelease` and `Release.gpg`
/// of every suite in `all` (the ecosystem's entries after the import), at
/// `now`. The upstream index files must be in `tree` already.
pub fn publish_site(all: &[&Entry], tree: &mut dyn Layout, site: &SiteSigning, now: u64) -> Result<()> {
    let mut suites: BTreeMap<(&str, &str), Suite<'_>> = BTreeMap::new();
    let mut held: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for entry in all {
        match kind(entry.path.as_str()) {
            Ok(Kind::Index { archive, suite, rel }) => {
                let parts: Vec<&str> = rel.split('/').collect();
                let of = suites.entry((archive, suite)).or_default();
                match parts[..] {
                    [component, dir, "Packages.xz"] => {
                        let arch = dir.strip_prefix("binary-").unwrap_or(dir);
                        of.packages.insert((component, arch), entry);
                    }
                    _ => of.translations.push((rel, entry)),
                }
            }
            Ok(Kind::Deb { archive, filename }) => {
                held.entry(archive).or_default().insert(filename);
            }
            _ => {}
        }
    }
    let none = BTreeSet::new();
    for ((archive, suite), of) in &suites {
        let held = held.get(archive).unwrap_or(&none);
        write_suite(archive, suite, of, held, tree, site, now)?;
    }
    Ok(())
}

fn write_suite(
    archive: &str,
    suite: &str,
    of: &Suite<'_>,
    held: &BTreeSet<&str>,
    tree: &mut dyn Layout,
    signing: &SiteSigning,
    now: u64,
) -> Result<()> {
    let dists = format!("{archive}/dists/{suite}");
    let mut listed = Vec::new();
    for ((component, arch), entry) in &of.packages {
        let packed = tree.read(NAME, entry.path.as_str()).unwrap_or_default();
        let text = unxz(&packed, entry.path.as_str()).map_err(Error::Usage)?;
        let kept: Vec<&str> = control::split_paragraphs(&text)
            .filter(|p| {
                control::paragraph(p)
                    .ok()
                    .and_then(|p| p.get("Filename").map(str::to_owned))
                    .is_some_and(|f| held.contains(f.as_str()))
            })
            .map(|p| p.trim_matches('\n'))
            .collect();
        let mut packages = kept.join("\n\n");
        if !packages.is_empty() {
            packages.push('\n');
        }
        let rel = format!("{component}/binary-{arch}/Packages");
        tree.write(NAME, &format!("{dists}/{rel}"), packages.as_bytes())?;
        listed.push((rel, sha256_hex(packages.as_bytes()), packages.len() as u64));
    }
    for (rel, entry) in &of.translations {
        let sha = entry.digests.get("sha256").map(|d| hex::encode(&d.0)).unwrap_or_default();
        listed.push(((*rel).to_owned(), sha, entry.size));
    }
    listed.sort();
    let release = release_text(suite, archive, of, &listed, now, signing.valid_for);
    tree.write(NAME, &format!("{dists}/Release"), release.as_bytes())?;
    tree.write(NAME, &format!("{dists}/InRelease"), signing.clearsign(&release)?.as_bytes())?;
    tree.write(NAME, &format!("{dists}/Release.gpg"), signing.detached(release.as_bytes())?.as_bytes())
}

fn release_text(
    suite: &str,
    archive: &str,
    of: &Suite<'_>,
    listed: &[(String, String, u64)],
    now: u64,
    valid_for: u64,
) -> String {
    let components: BTreeSet<&str> = of.packages.keys().map(|(c, _)| *c).collect();
    let arches: BTreeSet<&str> = of.packages.keys().map(|(_, a)| *a).collect();
    let join = |set: &BTreeSet<&str>| set.iter().copied().collect::<Vec<_>>().join(" ");
    let mut text = format!(
        "Suite: {suite}\nCodename: {suite}\nDate: {}\nValid-Until: {}\nArchitectures: {}\nComponents: {}\nDescription: {suite} of {archive}, the packages this site mirrors, signed by the site\nSHA256:\n",
        rfc2822(now),
        rfc2822(now.saturating_add(valid_for)),
        join(&arches),
        join(&components)
    );
    for (rel, sha, size) in listed {
        let _ = writeln!(text, " {sha} {size:>16} {rel}");
    }
    text
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `Wed, 02 Dec 2026 08:00:00 UTC`, the form Release files date themselves in.
#[must_use]
pub fn rfc2822(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = secs / 86_400;
    // The rfc3339 form already has the civil date: take it from there.
    let iso = crate::time::rfc3339(secs);
    let (year, month, day) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let month = MONTHS[month.parse::<usize>().unwrap_or(1).saturating_sub(1) % 12];
    format!("{}, {day} {month} {year} {} UTC", DAYS[(days % 7) as usize], &iso[11..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_as_release_files_write_them() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 UTC");
        assert_eq!(rfc2822(1_796_005_301), "Mon, 30 Nov 2026 02:21:41 UTC");
        assert_eq!(control::parse_date(&rfc2822(1_796_005_301)).unwrap(), 1_796_005_301);
    }

    #[test]
    fn a_generated_key_signs_what_the_keyring_check_accepts() {
        let (secret, public) = generate("site archive key").unwrap();
        let site = SiteSigning::from_bytes(secret.as_bytes(), DEFAULT_VALID_FOR, "site.asc").unwrap();
        let signed = site.clearsign("Suite: x\n").unwrap();
        let keyring = super::super::openpgp::Keyring::from_bytes(public.as_bytes()).unwrap();
        let verified = super::super::openpgp::verify_cleartext(signed.as_bytes(), &keyring).unwrap();
        assert_eq!(verified.text.trim_end(), "Suite: x");
        assert!(
            SiteSigning::from_bytes(public.as_bytes(), 1, "site.pub")
                .unwrap_err()
                .contains("not an OpenPGP secret key")
        );
    }
}
