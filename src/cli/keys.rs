//! How the signing commands (export, sign, policy sign, keygen) take their
//! keys: a key file, encrypted or in clear, or a PKCS#11 URI; where the
//! passphrase, the PIN and the module come from; and asking on a terminal.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use zeroize::Zeroizing;

use super::Output;
use crate::error::{Error, Result};
use crate::sign::pkcs11::{self, Pkcs11Uri};
use crate::sign::signer::{Ask, KeySource, Question, Secret, Storage, Unlock};
use crate::sign::{OperatorKey, Signer as _};

/// Where passphrases, PINs and the PKCS#11 module come from.
#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {
    /// File whose first line is the passphrase of encrypted key files (else it is asked on the terminal)
    #[arg(long, value_name = "FILE", env = "AIRLOCK_PASSPHRASE_FILE", hide_env_values = true)]
    pub passphrase_file: Option<PathBuf>,
    /// PKCS#11 module for pkcs11: keys, e.g. /usr/lib/softhsm/libsofthsm2.so (a URI's module-path comes first)
    #[arg(long, value_name = "FILE", env = "AIRLOCK_PKCS11_MODULE", hide_env_values = true)]
    pub pkcs11_module: Option<PathBuf>,
    /// File whose first line is the token's user PIN (a URI's pin-source or pin-value comes first; else the token's own PIN pad, else it is asked on the terminal)
    #[arg(long, value_name = "FILE", env = "AIRLOCK_PIN_FILE", hide_env_values = true)]
    pub pin_file: Option<PathBuf>,
}

impl UnlockArgs {
    pub fn unlock(&self) -> Unlock<'static> {
        Unlock {
            passphrase_file: self.passphrase_file.clone(),
            pkcs11_module: self.pkcs11_module.clone(),
            pin_file: self.pin_file.clone(),
            ask: &Terminal,
        }
    }

    /// Opens every key (asking for passphrases and PINs as needed), and
    /// says which of them are key files stored in clear.
    pub fn open(&self, sources: &[KeySource]) -> Result<(Vec<OperatorKey>, ClearKeys)> {
        let opened = self.unlock().open_all(sources)?;
        refuse_repeated(sources, &opened)?;
        let clear = sources
            .iter()
            .zip(&opened)
            .filter(|(_, (_, storage))| *storage == Storage::ClearFile)
            .map(|(source, _)| source.to_string())
            .collect();
        Ok((opened.into_iter().map(|(key, _)| key).collect(), ClearKeys(clear)))
    }
}

/// One key given twice (the same file, or a copy of it) would sign twice and
/// be listed twice; a threshold counts it once anyway.
fn refuse_repeated<T>(sources: &[KeySource], opened: &[(OperatorKey, T)]) -> Result<()> {
    for (i, (key, _)) in opened.iter().enumerate() {
        if let Some(first) = opened[..i].iter().position(|(earlier, _)| earlier.public() == key.public()) {
            return Err(Error::Usage(format!(
                "--key {} is the same key ({}) as --key {}; give each key once",
                sources[i],
                key.public().id().short(),
                sources[first]
            )));
        }
    }
    Ok(())
}

/// The key files a command signed with that are stored in clear.
pub struct ClearKeys(Vec<String>);

impl ClearKeys {
    /// After the command succeeded (an error stays one line): a warning on
    /// standard error for each.
    pub fn warn(&self, out: &Output) {
        for source in &self.0 {
            out.warn(format!(
                "{source}: this secret key is stored in clear, so a copy of the disk signs as you; encrypt it with `airlock keygen --encrypt {source}`"
            ));
        }
    }
}

/// `--key`: a key file (any path), or a `pkcs11:` URI. A refused URI is
/// not quoted back, as clap would: it may hold a PIN (`pin-value`).
#[derive(Clone)]
pub struct KeyParser;

impl TypedValueParser for KeyParser {
    type Value = KeySource;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<KeySource, clap::Error> {
        if !value.as_encoded_bytes().starts_with(pkcs11::SCHEME.as_bytes()) {
            return KeySource::parse(&value.to_string_lossy())
                .map(|_| KeySource::File(PathBuf::from(value)))
                .map_err(|e| refused(cmd, arg, &e));
        }
        let text = value.to_str().ok_or_else(|| refused(cmd, arg, "a PKCS#11 URI is ASCII"))?;
        KeySource::parse(text).map_err(|e| refused(cmd, arg, &format!("not a usable PKCS#11 URI: {e}")))
    }
}

/// `keygen --pkcs11`: a `pkcs11:` URI, not quoted back when refused.
#[derive(Clone)]
pub struct UriParser;

impl TypedValueParser for UriParser {
    type Value = Pkcs11Uri;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Pkcs11Uri, clap::Error> {
        let text = value.to_str().ok_or_else(|| refused(cmd, arg, "a PKCS#11 URI is ASCII"))?;
        Pkcs11Uri::parse(text).map_err(|e| refused(cmd, arg, &format!("not a usable PKCS#11 URI: {e}")))
    }
}

fn refused(cmd: &clap::Command, arg: Option<&clap::Arg>, why: &str) -> clap::Error {
    let flag = arg.and_then(clap::Arg::get_long).map_or_else(|| "the key".to_owned(), |long| format!("--{long}"));
    clap::Error::raw(ErrorKind::ValueValidation, format!("{flag}: {why}\n")).with_cmd(cmd)
}

/// Asks on the terminal, without echo; with no terminal, says how to give the answer instead.
pub struct Terminal;

impl Ask for Terminal {
    fn ask(&self, question: Question<'_>) -> Result<Secret> {
        if !std::io::stdin().is_terminal() {
            return Err(no_terminal(question));
        }
        match question {
            Question::Passphrase(key) => read_hidden(&format!("passphrase for {}: ", key.display())),
            Question::Pin(token) => read_hidden(&format!("user PIN of token {token:?}: ")),
            Question::NewPassphrase(key) => {
                let first = read_hidden(&format!("new passphrase for {}: ", key.display()))?;
                let again = read_hidden("the same passphrase again: ")?;
                if first != again {
                    return Err(Error::Usage(format!(
                        "{}: the two passphrases differ; nothing was written, run the command again",
                        key.display()
                    )));
                }
                Ok(first)
            }
        }
    }
}

fn read_hidden(prompt: &str) -> Result<Secret> {
    let text = rpassword::prompt_password(prompt)
        .map_err(|e| Error::Usage(format!("cannot read from the terminal: {e}; pass the secret in a file instead")))?;
    Ok(Zeroizing::new(text.into_bytes()))
}

fn no_terminal(question: Question<'_>) -> Error {
    Error::Usage(match question {
        Question::Passphrase(key) => format!(
            "{}: is encrypted and there is no terminal to ask its passphrase on; pass --passphrase-file FILE or set AIRLOCK_PASSPHRASE_FILE",
            key.display()
        ),
        Question::NewPassphrase(key) => format!(
            "{}: keygen encrypts the secret key and there is no terminal to ask a passphrase on; pass --passphrase-file FILE (or set AIRLOCK_PASSPHRASE_FILE), or --unencrypted to store it in clear",
            key.display()
        ),
        Question::Pin(token) => format!(
            "token {token:?} wants its user PIN and there is no terminal to ask it on; pass --pin-file FILE (or set AIRLOCK_PIN_FILE), or add ?pin-source=FILE to the URI"
        ),
    })
}
