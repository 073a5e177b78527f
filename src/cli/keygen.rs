//! `airlock keygen`

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::Output;
use super::keys::{UnlockArgs, UriParser};
use crate::error::{Error, Result};
use crate::sign::pkcs11::{self, Pkcs11Uri};
use crate::sign::{Cost, EncryptedKey, KeyFile, PublicKey, SecretKey, check_key_outputs, pair_paths, write_public};

/// Make an ed25519 signing key pair: PREFIX.key (secret, encrypted with a passphrase, mode 0600) and PREFIX.pub; or a key on a PKCS#11 token and PREFIX.pub
#[derive(Debug, Args)]
// Each bool is an independent command-line switch.
#[allow(clippy::struct_excessive_bools)]
pub struct KeygenArgs {
    /// Path prefix of the key files
    #[arg(long, value_name = "PREFIX", required_unless_present = "encrypt")]
    pub out: Option<PathBuf>,
    /// Replace existing key files (the old secret key is lost)
    #[arg(long)]
    pub force: bool,
    /// Store the secret key in clear (anyone who copies the file can sign); by default it is encrypted
    #[arg(long, conflicts_with_all = ["pkcs11", "encrypt"])]
    pub unencrypted: bool,
    /// Encrypt an existing secret key file stored in clear, in place (its key and key id stay the same)
    #[arg(long, value_name = "KEY", conflicts_with_all = ["out", "pkcs11", "force"])]
    pub encrypt: Option<PathBuf>,
    /// Make the key on a PKCS#11 token instead (e.g. pkcs11:token=ops;object=alice); only PREFIX.pub is written
    #[arg(long, value_name = "URI", value_parser = UriParser)]
    pub pkcs11: Option<Pkcs11Uri>,
    /// With --pkcs11: the key is already on the token (made by its own tools); write its PREFIX.pub
    #[arg(long, requires = "pkcs11")]
    pub existing: bool,
    /// Make an OpenPGP key instead, for the import policy's [debian] site-key (site-signed mirrors): PREFIX.asc (secret, unencrypted so imports can sign unattended, mode 0600) and PREFIX.pub.asc (for apt's signed-by)
    #[arg(long, requires = "out", conflicts_with_all = ["pkcs11", "encrypt", "unencrypted", "existing"])]
    pub openpgp: bool,
    /// Write PREFIX.pub again from this secret key file (encrypted or in clear; an encrypted one is opened, to prove the public key is its own)
    #[arg(long, value_name = "KEY", requires = "out", conflicts_with_all = ["pkcs11", "encrypt", "unencrypted", "existing", "openpgp"])]
    pub public_from: Option<PathBuf>,
    #[command(flatten)]
    pub unlock: UnlockArgs,
}

#[derive(Serialize)]
struct KeygenReport {
    key_id: String,
    /// The secret key file, or the token URI.
    secret_key: String,
    /// "encrypted", "clear" or "pkcs11".
    storage: &'static str,
    public_key: Option<String>,
}

impl KeygenArgs {
    pub fn run(&self, out: &Output) -> Result<()> {
        let prefix = match &self.out {
            Some(given) => Some(self.prefix(given, out)?),
            None => None,
        };
        if let (true, Some(prefix)) = (self.openpgp, &prefix) {
            return self.openpgp_key(prefix, out);
        }
        let report = match (&self.encrypt, &self.pkcs11, &self.public_from, &prefix) {
            (Some(key), _, _, _) => self.encrypt_existing(key)?,
            (None, _, Some(key), Some(prefix)) => self.public_again(key, prefix)?,
            (None, Some(uri), None, Some(prefix)) => self.on_token(uri, prefix)?,
            (None, None, None, Some(prefix)) => self.in_files(prefix)?,
            (None, _, _, None) => return Err(Error::Usage("pass --out PREFIX (or --encrypt KEY)".into())),
        };
        out.line(format!("key id      {}", report.key_id));
        let secret = match report.storage {
            "encrypted" => "encrypted with your passphrase; keep it on the connected side, mode 0600",
            "clear" => "NOT encrypted; keep it on the connected side, mode 0600",
            _ => "on the token; it never leaves it",
        };
        out.line(format!("secret key  {} ({secret})", report.secret_key));
        if let Some(public) = &report.public_key {
            out.line(format!("public key  {public} (pin it on the disconnected side with --trust)"));
        }
        out.report("keygen", &report);
        Ok(())
    }

    /// `--out` as the prefix the suffixes are added to. A folder is refused
    /// (the keys would be the hidden `.key` and `.pub` in it); a name that
    /// already ends in a suffix this mode adds (`carl.key`) loses it, with a
    /// warning, since `carl.key.key` is never what was meant.
    fn prefix(&self, given: &Path, out: &Output) -> Result<PathBuf> {
        if given.as_os_str().as_encoded_bytes().ends_with(b"/") || given.is_dir() || given.file_name().is_none() {
            let text = given.display().to_string();
            let folder = match text.trim_end_matches('/') {
                "" => ".",
                folder => folder,
            };
            return Err(Error::Usage(format!(
                "{text}: is a folder; --out is a file prefix, e.g. {folder}/alice (for {folder}/alice.key and {folder}/alice.pub)"
            )));
        }
        let suffixes: &[&str] = if self.openpgp { &[".pub.asc", ".asc"] } else { &[".key", ".pub"] };
        let stem = given.to_str().and_then(|text| suffixes.iter().find_map(|suffix| text.strip_suffix(suffix)));
        let Some(stem) = stem.filter(|stem| !stem.is_empty() && !stem.ends_with('/')) else {
            return Ok(given.to_path_buf());
        };
        out.warn(format!(
            "--out {}: is a file prefix and keygen adds the suffixes itself; using the prefix {stem}",
            given.display()
        ));
        Ok(PathBuf::from(stem))
    }

    /// `--openpgp`: an Ed25519 OpenPGP key whose primary key signs, named
    /// after the file it is written to.
    fn openpgp_key(&self, prefix: &Path, out: &Output) -> Result<()> {
        let (secret_path, public_path) = (with_suffix(prefix, ".asc"), with_suffix(prefix, ".pub.asc"));
        check_key_outputs(&[&secret_path, &public_path], self.force)?;
        let user = format!(
            "airlock site archive key ({})",
            prefix.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        );
        let (secret, public) = crate::ecosystem::debian::site::generate(&user)
            .map_err(|e| Error::Usage(format!("the OpenPGP key could not be made: {e}")))?;
        crate::durable::write_atomically(&secret_path, secret.as_bytes(), 0o600)?;
        crate::durable::write_atomically(&public_path, public.as_bytes(), 0o644)?;
        out.line(format!(
            "secret key  {} (OpenPGP, not encrypted: name it in the policy as [debian] site-key, mode 0600)",
            secret_path.display()
        ));
        out.line(format!("public key  {} (give it to apt: deb [signed-by=...])", public_path.display()));
        out.report(
            "keygen",
            &serde_json::json!({
                "secret_key": secret_path.display().to_string(),
                "public_key": public_path.display().to_string(),
                "storage": "openpgp",
            }),
        );
        Ok(())
    }

    fn in_files(&self, prefix: &Path) -> Result<KeygenReport> {
        // The paths are checked before a passphrase is asked for.
        let (secret_path, public_path) = pair_paths(prefix, self.force)?;
        let key = SecretKey::generate()?;
        let storage = if self.unencrypted {
            key.write_secret(&secret_path, None)?;
            "clear"
        } else {
            let passphrase = self.unlock.unlock().new_passphrase(&secret_path)?;
            let sealed = EncryptedKey::seal(&key, &passphrase, Cost::DEFAULT)?;
            key.write_secret(&secret_path, Some(&sealed))?;
            "encrypted"
        };
        write_public(key.public(), &public_path, None)?;
        Ok(report(key.public(), secret_path.display().to_string(), storage, Some(&public_path)))
    }

    fn encrypt_existing(&self, path: &Path) -> Result<KeygenReport> {
        let key = match KeyFile::read(path)? {
            KeyFile::Clear(key) => key,
            KeyFile::Encrypted(_) => {
                return Err(Error::Usage(format!("{}: is already encrypted; nothing to do", path.display())));
            }
        };
        let passphrase = self.unlock.unlock().new_passphrase(path)?;
        let sealed = EncryptedKey::seal(&key, &passphrase, Cost::DEFAULT)?;
        key.write_secret(path, Some(&sealed))?;
        Ok(report(key.public(), path.display().to_string(), "encrypted", None))
    }

    /// `--public-from`: PREFIX.pub again. An encrypted file carries its public
    /// key in clear, bound to the seed only through the cipher's associated
    /// data, so it is opened: a .pub is a trust anchor and must be the key's own.
    fn public_again(&self, key_path: &Path, prefix: &Path) -> Result<KeygenReport> {
        let public_path = with_suffix(prefix, ".pub");
        check_key_outputs(&[&public_path], self.force)?;
        let (key, storage) = match KeyFile::read(key_path)? {
            KeyFile::Clear(key) => (key, "clear"),
            KeyFile::Encrypted(sealed) => {
                let passphrase = self.unlock.unlock().passphrase(key_path)?;
                (sealed.open(&passphrase, &key_path.display().to_string())?, "encrypted")
            }
        };
        write_public(key.public(), &public_path, None)?;
        Ok(report(key.public(), key_path.display().to_string(), storage, Some(&public_path)))
    }

    fn on_token(&self, uri: &Pkcs11Uri, prefix: &Path) -> Result<KeygenReport> {
        let public_path = with_suffix(prefix, ".pub");
        check_key_outputs(&[&public_path], self.force)?;
        let unlock = self.unlock.unlock();
        let public =
            if self.existing { pkcs11::existing_public(uri, &unlock)? } else { pkcs11::generate(uri, &unlock)? };
        write_public(&public, &public_path, Some(&uri.to_string()))?;
        Ok(report(&public, uri.to_string(), "pkcs11", Some(&public_path)))
    }
}

/// PREFIX with `suffix` appended to its last component (not an extension: `a.b` gives `a.b.pub`).
fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn report(public: &PublicKey, secret_key: String, storage: &'static str, public_path: Option<&Path>) -> KeygenReport {
    KeygenReport {
        key_id: public.id().short(),
        secret_key,
        storage,
        public_key: public_path.map(|p| p.display().to_string()),
    }
}
