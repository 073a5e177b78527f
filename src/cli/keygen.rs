//! `airlock keygen`

use std::path::PathBuf;

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
        if let (true, Some(prefix)) = (self.openpgp, &self.out) {
            return self.openpgp_key(prefix, out);
        }
        let report = match (&self.encrypt, &self.pkcs11, &self.out) {
            (Some(key), _, _) => self.encrypt_existing(key)?,
            (None, Some(uri), Some(prefix)) => self.on_token(uri, prefix)?,
            (None, None, Some(prefix)) => self.in_files(prefix)?,
            (None, _, None) => return Err(Error::Usage("pass --out PREFIX (or --encrypt KEY)".into())),
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

    /// `--openpgp`: an Ed25519 OpenPGP key whose primary key signs, named
    /// after the file it is written to.
    fn openpgp_key(&self, prefix: &std::path::Path, out: &Output) -> Result<()> {
        let with = |suffix: &str| {
            let mut name = prefix.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        let (secret_path, public_path) = (with(".asc"), with(".pub.asc"));
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

    fn in_files(&self, prefix: &std::path::Path) -> Result<KeygenReport> {
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

    fn encrypt_existing(&self, path: &std::path::Path) -> Result<KeygenReport> {
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

    fn on_token(&self, uri: &Pkcs11Uri, prefix: &std::path::Path) -> Result<KeygenReport> {
        let mut public_path = prefix.as_os_str().to_owned();
        public_path.push(".pub");
        let public_path = PathBuf::from(public_path);
        check_key_outputs(&[&public_path], self.force)?;
        let unlock = self.unlock.unlock();
        let public =
            if self.existing { pkcs11::existing_public(uri, &unlock)? } else { pkcs11::generate(uri, &unlock)? };
        write_public(&public, &public_path, Some(&uri.to_string()))?;
        Ok(report(&public, uri.to_string(), "pkcs11", Some(&public_path)))
    }
}

fn report(
    public: &PublicKey,
    secret_key: String,
    storage: &'static str,
    public_path: Option<&std::path::Path>,
) -> KeygenReport {
    KeygenReport {
        key_id: public.id().short(),
        secret_key,
        storage,
        public_key: public_path.map(|p| p.display().to_string()),
    }
}
