//! Docker's credential helpers (`docker-credential-<name>`, from `PATH`):
//! `get` with the registry on its input answers `{"ServerURL", "Username",
//! "Secret"}` as JSON, or that it holds nothing for that registry. The
//! protocol is docker's; the helpers (`pass`, `secretservice`, `ecr-login`,
//! `gcloud`, ...) are the site's.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Credentials;
use crate::error::{Error, Result};

/// How long a helper may take (one that asks a keyring can be slow, one
/// waiting for a desktop prompt never answers).
const ANSWER_WITHIN: Duration = Duration::from_mins(1);
/// More than any helper's answer.
const MAX_ANSWER: u64 = 64 << 10;

/// The credentials helper `name` holds for `host`; `None` when it holds none.
pub(super) fn get(name: &str, host: &str, config: &Path) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{name}");
    let refuse = |why: String| Error::Usage(format!("{}: {program}: {why}", config.display()));
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(refuse("is not a credential helper's name (letters, digits, '.', '_' and '-')".into()));
    }
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refuse(
                "the credential helper the file names is not on PATH; install it, or take it out of the file".into(),
            ));
        }
        Err(e) => return Err(refuse(format!("cannot be run ({e})"))),
    };
    let server = if host == "docker.io" { "https://index.docker.io/v1/" } else { host };
    if let Some(mut input) = child.stdin.take() {
        // A helper that exits without reading is judged by its answer.
        let _ = input.write_all(server.as_bytes());
    }
    // Both read while it runs, so a helper that writes much never blocks on a full pipe.
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let status = wait(&mut child).map_err(&refuse)?;
    let answer = out.and_then(|t| t.join().ok()).unwrap_or_default();
    let said = err.and_then(|t| t.join().ok()).unwrap_or_default();
    let text = String::from_utf8_lossy(&answer);
    if !status.success() {
        if text.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        let said = if text.trim().is_empty() { String::from_utf8_lossy(&said).into_owned() } else { text.into_owned() };
        return Err(refuse(format!("get for {host} failed ({})", crate::escape::one_line(said.trim()))));
    }
    parse(&answer, host).map(Some).map_err(refuse).map(|found| {
        found.map(|(user, secret)| {
            let from = PathBuf::from(format!("{} ({program})", config.display()));
            if user == super::IDENTITY_TOKEN_USER {
                Credentials::identity_token(secret, from)
            } else {
                Credentials::password(user, secret, from)
            }
        })
    })
}

/// What `pipe` gives until it ends, at most [`MAX_ANSWER`] bytes of it, read on a thread of its own.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = (&mut pipe).take(MAX_ANSWER).read_to_end(&mut bytes);
        let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        bytes
    })
}

/// Waits for the helper, killing it once [`ANSWER_WITHIN`] is over.
fn wait(child: &mut std::process::Child) -> std::result::Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + ANSWER_WITHIN;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not answer within {} s; check that it runs unattended",
                    ANSWER_WITHIN.as_secs()
                ));
            }
            Err(e) => return Err(format!("could not be waited for ({e})")),
        }
    }
}

/// (user, secret) from a helper's answer.
fn parse(answer: &[u8], host: &str) -> std::result::Result<(String, String), String> {
    let value: Value =
        serde_json::from_slice(answer).map_err(|_| format!("answered for {host} with something other than JSON"))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (user, secret) = (field("Username"), field("Secret"));
    // `<token>` as the user name: the secret is an identity (refresh) token.
    if user.is_empty() || secret.is_empty() {
        return Err(format!("answered for {host} without a Username and Secret"));
    }
    Ok((user, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        assert_eq!(
            parse(br#"{"ServerURL":"r","Username":"u","Secret":"s"}"#, "r"),
            Ok(("u".to_owned(), "s".to_owned()))
        );
        assert_eq!(parse(br#"{"Username":"<token>","Secret":"s"}"#, "r"), Ok(("<token>".to_owned(), "s".to_owned())));
        assert!(parse(b"nope", "r").unwrap_err().contains("other than JSON"));
        assert!(parse(br#"{"Username":"u"}"#, "r").unwrap_err().contains("without a Username and Secret"));
    }

    #[test]
    fn a_name_with_a_path_is_not_run() {
        let err = get("../../bin/sh", "r", Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("is not a credential helper's name"), "{err}");
        let err = get("airlock-no-such-helper", "r", Path::new("config.json")).unwrap_err();
        assert!(err.to_string().contains("is not on PATH"), "{err}");
    }
}
