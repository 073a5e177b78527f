//! Registry credentials and the distribution API's authentication.
//!
//! - Credentials are read as podman and docker keep them: the first of
//!   `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//!   `~/.config/containers/auth.json` and `$DOCKER_CONFIG/config.json` (or
//!   `~/.docker/config.json`) with an entry for the registry, whose
//!   `auths.<host>.auth` is base64 `user:password` (or `username` and
//!   `password` apart), or that names a credential helper for it, as docker
//!   decides: `credHelpers.<host>`, else `credsStore`, is run as
//!   `docker-credential-<name> get` from `PATH` with the host on its input,
//!   and answers `{"Username": .., "Secret": ..}` (or that it has none).
//!   An identity token (`auths.<host>.identitytoken`, or a helper's answer
//!   whose user name is `<token>`, as Azure's and others' logins leave) is
//!   an `OAuth2` refresh token: it is exchanged at the token realm (POST,
//!   `grant_type=refresh_token`) for an access token, and never sent to
//!   the registry itself.
//! - A 401 names the scheme in `WWW-Authenticate`: `Basic` is answered with
//!   the credentials; `Bearer realm=..,service=..,scope=..` with a token
//!   fetched from the realm (with the credentials, if any; anonymously
//!   otherwise), kept for its `expires_in` and sent to that registry only.
//! - Credentials go only to the registry they are filed under and to the
//!   token realm it names, never over plain HTTP to a realm when the
//!   registry itself is spoken to over HTTPS; redirects (a blob served by a
//!   CDN) get no `Authorization` header (the fetch layer's client never
//!   forwards it).

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::Value;

use crate::error::{Error, Result};

mod helper;

/// A user name and password for one registry, or an identity token. Its
/// `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    password: zeroize::Zeroizing<String>,
    /// The secret is an `OAuth2` refresh token for the registry's token
    /// service, not a password the registry takes.
    pub identity_token: bool,
    /// The file they came from, for error messages.
    pub from: PathBuf,
}

/// The user name a credential helper answers with for an identity token.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} from {})", self.user, self.from.display())
    }
}

impl Credentials {
    #[must_use]
    pub fn password(user: String, password: String, from: PathBuf) -> Credentials {
        Credentials { user, password: zeroize::Zeroizing::new(password), identity_token: false, from }
    }

    #[must_use]
    pub fn identity_token(token: String, from: PathBuf) -> Credentials {
        let user = IDENTITY_TOKEN_USER.to_owned();
        Credentials { user, password: zeroize::Zeroizing::new(token), identity_token: true, from }
    }

    /// The form body of the `OAuth2` refresh-token grant for an identity
    /// token, asking for `scopes` of `service`.
    #[must_use]
    pub fn refresh_grant(&self, service: Option<&str>, scopes: &[&str]) -> zeroize::Zeroizing<String> {
        let encode = crate::escape::url_segment;
        let service = service.map(|s| format!("&service={}", encode(s))).unwrap_or_default();
        zeroize::Zeroizing::new(format!(
            "grant_type=refresh_token&client_id=airlock&scope={}{service}&refresh_token={}",
            encode(&scopes.join(" ")),
            encode(&self.password)
        ))
    }

    /// The `Authorization` value of HTTP Basic.
    #[must_use]
    pub fn basic(&self) -> String {
        let pair = zeroize::Zeroizing::new(format!("{}:{}", self.user, *self.password));
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()))
    }
}

/// The auth files looked in, in order.
#[must_use]
pub fn auth_files() -> Vec<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut files = Vec::new();
    files.extend(env("REGISTRY_AUTH_FILE"));
    files.extend(env("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
    let home = env("HOME");
    files.extend(home.as_ref().map(|h| h.join(".config/containers/auth.json")));
    files.extend(env("DOCKER_CONFIG").map(|d| d.join("config.json")));
    files.extend(home.map(|h| h.join(".docker/config.json")));
    files
}

/// The names a registry's credentials may be filed under.
fn keys_for(host: &str) -> Vec<&str> {
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => vec!["docker.io", "index.docker.io"],
        other => vec![other],
    }
}

/// The host an `auths` key names (`https://index.docker.io/v1/` is `index.docker.io`).
fn key_host(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The credentials filed for `host` in the first auth file that has some;
/// an auth file that is there but unreadable is an error naming it.
pub fn credentials(host: &str) -> Result<Option<Credentials>> {
    credentials_in(&auth_files(), host)
}

fn credentials_in(files: &[PathBuf], host: &str) -> Result<Option<Credentials>> {
    let wanted = keys_for(host);
    for file in files {
        let text = match std::fs::read(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::input(file, "the registry auth file", &e)),
        };
        let bad = |why: &str| Error::Usage(format!("{}: {why}; fix or remove the file", file.display()));
        let value: Value = serde_json::from_slice(&text).map_err(|e| bad(&format!("is not JSON ({e})")))?;
        if let Some(helper) = helper_for(&value, &wanted) {
            return helper::get(helper, host, file);
        }
        let Some(auths) = value.get("auths").and_then(Value::as_object) else { continue };
        let Some((_, entry)) = auths.iter().find(|(key, _)| wanted.contains(&key_host(key))) else { continue };
        let text_of = |name: &str| entry.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        if let Some(token) = text_of("identitytoken") {
            return Ok(Some(Credentials::identity_token(token.to_owned(), file.clone())));
        }
        let (user, password) = if let Some(auth) = text_of("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad(&format!("auths.{host}.auth is not base64")))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| bad(&format!("auths.{host}.auth is not user:password")))?;
            let (user, password) =
                decoded.split_once(':').ok_or_else(|| bad(&format!("auths.{host}.auth is not user:password")))?;
            (user.to_owned(), password.to_owned())
        } else if let (Some(user), Some(password)) = (text_of("username"), text_of("password")) {
            (user.to_owned(), password.to_owned())
        } else {
            continue;
        };
        return Ok(Some(Credentials::password(user, password, file.clone())));
    }
    Ok(None)
}

/// The credential helper a config names for a registry: its own in
/// `credHelpers`, else the `credsStore` every registry's go to.
fn helper_for<'v>(config: &'v Value, wanted: &[&str]) -> Option<&'v str> {
    let own = config
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|helpers| helpers.iter().find(|(key, _)| wanted.contains(&key_host(key))))
        .and_then(|(_, name)| name.as_str());
    own.or_else(|| config.get("credsStore").and_then(Value::as_str)).filter(|name| !name.is_empty())
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses the challenge of a 401 (`Basic realm=".."` or `Bearer
/// realm="..",service="..",scope=".."`); `None` for any other scheme.
#[must_use]
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = auth_params(rest);
    let get = |name: &str| params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    Some(Challenge::Bearer { realm: get("realm")?, service: get("service"), scope: get("scope") })
}

/// `key=value` and `key="quoted, value"` pairs separated by commas.
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            let bare: String = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            value.push_str(bare.trim());
        }
        out.push((key.trim().to_owned(), value));
    }
}

/// The token endpoint's URL for a challenge, asking for `scopes` (one
/// `scope` parameter each, as the token spec writes several).
#[must_use]
pub fn token_url(realm: &str, service: Option<&str>, scopes: &[&str]) -> String {
    let mut url = realm.to_owned();
    let mut sep = if realm.contains('?') { '&' } else { '?' };
    let params = service.map(|s| ("service", s)).into_iter().chain(scopes.iter().map(|s| ("scope", *s)));
    for (key, value) in params {
        url.push(sep);
        url.push_str(key);
        url.push('=');
        url.push_str(&crate::escape::url_segment(value));
        sep = '&';
    }
    url
}

/// A token endpoint's answer: the token and how long it lasts (seconds;
/// the spec's default is 60).
pub fn parse_token(body: &[u8]) -> Option<(String, u64)> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let token = value.get("token").or_else(|| value.get("access_token"))?.as_str()?.to_owned();
    let expires = value.get("expires_in").and_then(Value::as_u64).unwrap_or(60).max(10);
    (!token.is_empty()).then_some((token, expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:team/app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge("bearer realm=http://127.0.0.1:1/t"),
            Some(Challenge::Bearer { realm: "http://127.0.0.1:1/t".into(), service: None, scope: None })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(
            token_url("https://a/token", Some("reg x"), &["repository:team/app:pull,push", "repository:b:pull"]),
            "https://a/token?service=reg%20x&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository%3Ab%3Apull"
        );
        assert_eq!(parse_token(br#"{"token":"t","expires_in":300}"#), Some(("t".into(), 300)));
        assert_eq!(parse_token(br#"{"access_token":"t"}"#), Some(("t".into(), 60)));
        assert_eq!(parse_token(br#"{"token":""}"#), None);
    }

    #[test]
    fn credentials_come_from_the_first_file_naming_the_registry() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        std::fs::write(&a, r#"{"auths":{"other.example":{"auth":"eDp5"}}}"#).unwrap();
        let pair = base64::engine::general_purpose::STANDARD.encode("alice:s3cr:et");
        std::fs::write(&b, format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{pair}"}},"127.0.0.1:5000":{{"username":"bob","password":"pw"}}}}}}"#)).unwrap();
        let files = [dir.path().join("missing.json"), a.clone(), b.clone()];
        let hub = credentials_in(&files, "registry-1.docker.io").unwrap().unwrap();
        assert_eq!((hub.user.as_str(), hub.from.as_path()), ("alice", b.as_path()));
        assert_eq!(hub.basic(), format!("Basic {pair}"));
        assert!(!format!("{hub:?}").contains("s3cr"));
        assert_eq!(credentials_in(&files, "127.0.0.1:5000").unwrap().unwrap().user, "bob");
        assert_eq!(credentials_in(&files, "other.example").unwrap().unwrap().user, "x");
        assert!(credentials_in(&files, "nowhere.example").unwrap().is_none());
        std::fs::write(&a, "not json").unwrap();
        let err = credentials_in(&files, "127.0.0.1:5000").unwrap_err().to_string();
        assert!(err.contains("a.json") && err.contains("not JSON"), "{err}");
    }

    #[test]
    fn an_identity_token_is_a_refresh_grant() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, r#"{"auths":{"acr.example":{"auth":"","identitytoken":"r&t=1"}}}"#).unwrap();
        let token = credentials_in(std::slice::from_ref(&file), "acr.example").unwrap().unwrap();
        assert!(token.identity_token && !format!("{token:?}").contains("r&t"));
        let form = token.refresh_grant(Some("acr.example"), &["repository:a:pull", "repository:b:pull,push"]);
        assert_eq!(
            form.as_str(),
            "grant_type=refresh_token&client_id=airlock&scope=repository%3Aa%3Apull%20repository%3Ab%3Apull%2Cpush&service=acr.example&refresh_token=r%26t%3D1"
        );
    }
}
