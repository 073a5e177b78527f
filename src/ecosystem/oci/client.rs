//! One registry as the distribution API's client sees it: its origin
//! (`https://HOST`, or `http://` for a plain-HTTP registry), its
//! credentials, and the tokens it issued, by repository. Every request of
//! the export (`source.rs`) and of `airlock push` (`push.rs`) goes through
//! [`Session::send`], which answers a 401 as `auth.rs` describes and tries
//! once more.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::auth::{self, Challenge, Credentials};
use crate::error::{Error, Result};
use crate::fetch::{Client, HttpError, Payload, Reply};

/// The most of an error or token body read.
const MAX_SMALL_BODY: u64 = 64 << 10;

/// What a request asks of the repository, for the token's scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }
}

/// A registry, with its credentials and tokens.
pub struct Session<'c> {
    client: &'c Client,
    /// `HOST[:PORT]` as the user named it.
    host: String,
    /// `https://HOST[:PORT]` or `http://...`.
    origin: String,
    plain_http: bool,
    credentials: Option<Credentials>,
    /// The token last issued for a repository, with when it runs out, and whether it may push.
    tokens: Mutex<HashMap<String, (String, Instant, Access)>>,
    /// The registry asked for Basic: every request carries the credentials.
    basic: AtomicBool,
    /// Repositories the registry answered without asking for a token.
    open: Mutex<std::collections::HashSet<String>>,
}

impl<'c> Session<'c> {
    /// A session with `host` (`docker.io` is spoken to at
    /// `registry-1.docker.io`), its credentials read from the auth files.
    pub fn new(client: &'c Client, host: &str, plain_http: bool) -> Result<Self> {
        let address = if host == "docker.io" { "registry-1.docker.io" } else { host };
        let origin = format!("{}://{address}", if plain_http { "http" } else { "https" });
        Ok(Session {
            client,
            host: host.to_owned(),
            origin,
            plain_http,
            credentials: auth::credentials(host)?,
            tokens: Mutex::new(HashMap::new()),
            basic: AtomicBool::new(false),
            open: Mutex::new(std::collections::HashSet::new()),
        })
    }

    /// `ORIGIN/v2/PATH`.
    #[must_use]
    pub fn v2(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.origin)
    }

    /// A URL the registry gave (a `Location`), made absolute against its origin.
    #[must_use]
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_owned()
        } else {
            format!("{}/{}", self.origin, location.trim_start_matches('/'))
        }
    }

    /// The `Authorization` header for `repository`, if one is known yet.
    #[must_use]
    pub fn auth_headers(&self, repository: &str) -> Vec<(&'static str, String)> {
        let tokens = self.tokens.lock().expect("no thread panics holding the tokens");
        if let Some((token, until, _)) = tokens.get(repository)
            && Instant::now() < *until
        {
            return vec![("Authorization", format!("Bearer {token}"))];
        }
        drop(tokens);
        match &self.credentials {
            Some(credentials) if self.basic.load(Ordering::Relaxed) && !credentials.identity_token => {
                vec![("Authorization", credentials.basic())]
            }
            _ => Vec::new(),
        }
    }

    /// Whether the token held for `repository` is missing, expired or does not allow `access`.
    fn needs_token(&self, repository: &str, access: Access) -> bool {
        let tokens = self.tokens.lock().expect("no thread panics holding the tokens");
        tokens.get(repository).is_none_or(|(_, until, held)| {
            Instant::now() >= *until || (access == Access::Push && *held == Access::Pull)
        })
    }

    /// Sends a request about `repository` (its path on this registry), with
    /// the credentials or token it needs; a 401 is answered once.
    pub fn send(
        &self,
        repository: &str,
        access: Access,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
    ) -> Result<Reply> {
        let mut first = true;
        loop {
            let mut all: Vec<(&str, String)> = headers.to_vec();
            all.extend(self.auth_headers(repository));
            let reply = self.client.send(method, url, &all, payload).map_err(|e| self.unreachable(url, &e))?;
            if reply.status != 401 {
                return Ok(reply);
            }
            let challenge = reply.header("www-authenticate").map(str::to_owned);
            if !first {
                return Err(self.refused(url, 401));
            }
            first = false;
            match challenge.as_deref().and_then(auth::parse_challenge) {
                Some(Challenge::Basic) => {
                    match &self.credentials {
                        None => return Err(self.no_credentials()),
                        Some(c) if c.identity_token => {
                            return Err(Error::Usage(format!(
                                "{}: {} holds an identity token for it, which is exchanged at a token service, but the registry asks for a password (Basic); log in with a user name and password",
                                self.host,
                                c.from.display()
                            )));
                        }
                        Some(_) => {}
                    }
                    self.basic.store(true, Ordering::Relaxed);
                }
                Some(Challenge::Bearer { realm, service, scope }) => {
                    self.fetch_token(repository, access, &realm, service.as_deref(), scope.as_deref())?;
                }
                None => {
                    return Err(Error::Usage(format!(
                        "{url}: the registry asks for authentication airlock does not speak ({}); it knows Basic and Bearer",
                        challenge.unwrap_or_else(|| "no WWW-Authenticate".into())
                    )));
                }
            }
        }
    }

    /// `GET /v2/`: answered (200, or 401 asking for credentials) by a
    /// registry, or the error saying it cannot be reached.
    pub fn ping(&self) -> Result<()> {
        let url = self.v2("");
        let reply = self.client.send("GET", &url, &[], &Payload::Empty).map_err(|e| self.unreachable(&url, &e))?;
        match reply.status {
            200 | 401 => Ok(()),
            other => Err(self.unreachable(&url, &HttpError::Status(other))),
        }
    }

    /// Makes sure a token for `repository` is held when the registry uses
    /// tokens, so requests that cannot be repeated (a GET through the cache)
    /// carry one: a HEAD of its tags list, answered like any request.
    pub fn authorize(&self, repository: &str, access: Access) -> Result<()> {
        let open = || self.open.lock().expect("no thread panics holding the set").contains(repository);
        if !self.needs_token(repository, access) || self.basic.load(Ordering::Relaxed) || open() {
            return Ok(());
        }
        let url = self.v2(&format!("{repository}/tags/list"));
        self.send(repository, access, "HEAD", &url, &[], &Payload::Empty)?;
        if self.needs_token(repository, access) {
            self.open.lock().expect("no thread panics holding the set").insert(repository.to_owned());
        }
        Ok(())
    }

    fn fetch_token(
        &self,
        repository: &str,
        access: Access,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<()> {
        if !(realm.starts_with("https://") || (self.plain_http && realm.starts_with("http://"))) {
            return Err(Error::Usage(format!(
                "{}: the registry names the token service {realm:?}, which is not HTTPS; airlock sends no credentials there",
                self.host
            )));
        }
        let wanted = format!("repository:{repository}:{}", access.actions());
        // The challenge's scopes, and ours when it does not name this repository.
        let mut scopes: Vec<&str> = scope.unwrap_or_default().split(' ').filter(|s| !s.is_empty()).collect();
        if !scopes.iter().any(|s| s.starts_with(&format!("repository:{repository}:")))
            || access == Access::Push && !scopes.iter().any(|s| s.contains("push"))
        {
            scopes.push(&wanted);
        }
        let ours = format!("repository:{repository}:");
        let held = if scopes
            .iter()
            .any(|s| s.strip_prefix(&ours).is_some_and(|a| a.split(',').any(|a| a == "push" || a == "*")))
        {
            Access::Push
        } else {
            Access::Pull
        };
        let reply = match &self.credentials {
            // OAuth2: the identity token is a refresh token, exchanged by POST.
            Some(c) if c.identity_token => {
                let form = c.refresh_grant(service, &scopes);
                let headers = [("Content-Type", "application/x-www-form-urlencoded".to_owned())];
                self.client.send("POST", realm, &headers, &Payload::Bytes(form.as_bytes()))
            }
            credentials => {
                let url = auth::token_url(realm, service, &scopes);
                let headers: Vec<(&str, String)> = credentials.iter().map(|c| ("Authorization", c.basic())).collect();
                self.client.send("GET", &url, &headers, &Payload::Empty)
            }
        }
        .map_err(|e| self.unreachable(realm, &e))?;
        match reply.status {
            200 => {}
            401 | 403 => return Err(self.refused(realm, reply.status)),
            other => return Err(self.unreachable(realm, &HttpError::Status(other))),
        }
        let (token, expires) = auth::parse_token(&reply.text(MAX_SMALL_BODY))
            .ok_or_else(|| Error::Usage(format!("{realm}: the token service sent no token; check the registry")))?;
        let until = Instant::now() + Duration::from_secs(expires.saturating_sub(5));
        self.tokens
            .lock()
            .expect("no thread panics holding the tokens")
            .insert(repository.to_owned(), (token, until, held));
        Ok(())
    }

    /// The registry could not be reached or failed.
    #[must_use]
    pub fn unreachable(&self, url: &str, e: &HttpError) -> Error {
        let hint = if self.plain_http { "" } else { " (a registry on plain HTTP needs --plain-http)" };
        Error::Usage(format!(
            "{url}: {e}; check the registry address{hint}, your proxy (HTTPS_PROXY) and CA settings (SSL_CERT_FILE)"
        ))
    }

    fn refused(&self, url: &str, status: u16) -> Error {
        match &self.credentials {
            Some(c) => Error::Usage(format!(
                "{url}: HTTP {status}: the registry refused the credentials for {} ({} from {}); log in again with `podman login {}` or fix that file",
                self.host,
                c.user,
                c.from.display(),
                self.host
            )),
            None => self.no_credentials(),
        }
    }

    fn no_credentials(&self) -> Error {
        let files: Vec<String> = auth::auth_files().iter().map(|f| f.display().to_string()).collect();
        Error::Usage(format!(
            "{}: the registry asks for credentials and none are filed for it (looked in {}); log in with `podman login {}` or set REGISTRY_AUTH_FILE",
            self.host,
            files.join(", "),
            self.host
        ))
    }
}
