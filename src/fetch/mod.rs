//! Fetching from registries on the connected side.
//!
//! - TLS trusts the operating system's store, including `SSL_CERT_FILE` and
//!   `SSL_CERT_DIR` (rustls-native-certs reads them), so the exporter works
//!   behind a TLS-intercepting corporate proxy; `HTTPS_PROXY`, `HTTP_PROXY`
//!   and `NO_PROXY` are honoured; loopback addresses never go through the proxy.
//! - Every read has a deadline, so a registry that drips bytes is cut off.
//! - Transient failures (connection errors, 429, 5xx) are retried with backoff.
//! - Artifacts stream into a content-addressed cache while being hashed;
//!   an interrupted download resumes with a range request; a URL fetched
//!   before is not fetched again.

pub mod cache;

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

pub use cache::{Cache, Cached, Digests, Extra};

/// Largest metadata document accepted (npm packuments of popular packages reach tens of MiB).
pub const MAX_METADATA_BYTES: u64 = 256 << 20;

/// An HTTP client configured for registries.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    /// The same without the environment's proxy, for loopback addresses.
    direct: ureq::Agent,
    retries: u32,
    /// How long a body may stay below the minimum rate before it is cut off.
    grace: Duration,
}

/// Whether `url`'s host is `localhost` or a loopback address.
fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.split_once("://").map(|(_, rest)| rest) else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Slowest average a download may keep up after the grace period: a
/// registry (or something posing as one) that drips bytes to hold the
/// export forever is cut off, as TUF's slow-retrieval defence does.
pub const MIN_BYTES_PER_SEC: u64 = 1024;

/// Cuts a body off when its average rate stays below [`MIN_BYTES_PER_SEC`]
/// past the grace period (a per-read timeout alone lets one byte a second through).
struct SlowGuard<R> {
    inner: R,
    started: std::time::Instant,
    grace: Duration,
    bytes: u64,
}

impl<R> SlowGuard<R> {
    fn new(inner: R, grace: Duration) -> Self {
        SlowGuard { inner, started: std::time::Instant::now(), grace, bytes: 0 }
    }
}

impl<R: Read> Read for SlowGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        let elapsed = self.started.elapsed();
        // Judge only small reads: a small file that arrives late in one piece is
        // not a drip, while a drip shows as a stream of tiny reads.
        let dribble = n > 0 && (n as u64) < MIN_BYTES_PER_SEC;
        if dribble && elapsed > self.grace && self.bytes < MIN_BYTES_PER_SEC * elapsed.as_secs() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the server sent {} bytes in {}s, below {MIN_BYTES_PER_SEC} bytes/s",
                    self.bytes,
                    elapsed.as_secs()
                ),
            ));
        }
        Ok(n)
    }
}

/// A response that is not success, kept apart from transport failures.
#[derive(Debug)]
pub enum HttpError {
    Status(u16),
    Transport(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Status(code) => write!(f, "HTTP {code}"),
            HttpError::Transport(m) => f.write_str(m),
        }
    }
}

impl Client {
    /// A client trusting the system certificate store. `read_timeout` bounds
    /// every wait for data (a registry that drips bytes is cut off);
    /// `retries` is how often a transient failure is retried.
    pub fn new(read_timeout: Duration, retries: u32) -> Result<Self> {
        let loaded = rustls_native_certs::load_native_certs();
        if loaded.certs.is_empty() {
            let why = loaded.errors.first().map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(Error::Usage(format!(
                "no trusted CA certificates ({why}); install ca-certificates or point SSL_CERT_FILE at your CA bundle"
            )));
        }
        let roots: Vec<_> =
            loaded.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build();
        let config = |proxy| {
            ureq::Agent::config_builder()
                .tls_config(tls.clone())
                .proxy(proxy)
                .http_status_as_error(false)
                .user_agent(format!("airlock/{}", env!("CARGO_PKG_VERSION")))
                .timeout_connect(Some(Duration::from_secs(20)))
                .timeout_recv_response(Some(read_timeout * 2))
                .timeout_per_read(Some(read_timeout))
                .max_redirects(5)
                .build()
        };
        Ok(Client {
            agent: config(ureq::Proxy::try_from_env()).into(),
            direct: config(None).into(),
            retries,
            grace: read_timeout,
        })
    }

    /// The agent for `url`: a loopback address is never sent through the
    /// environment's proxy (as Go's HTTP client decides): a registry on this
    /// machine, `airlock demo`'s, is not behind the proxy, and a proxy set
    /// for the way out would refuse or misroute it.
    fn agent_for(&self, url: &str) -> &ureq::Agent {
        if is_loopback(url) { &self.direct } else { &self.agent }
    }

    /// GETs `url` with `headers` (`range` may ask for a suffix), retrying
    /// transient failures. Returns the status and a body reader.
    pub fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<(u16, Box<dyn Read + Send>), HttpError> {
        let mut attempt = 0;
        loop {
            let mut request = self.agent_for(url).get(url);
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let outcome = request.call();
            let transient = match &outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    status == 429 || (500..600).contains(&status)
                }
                Err(_) => true,
            };
            if !transient || attempt >= self.retries {
                return match outcome {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = SlowGuard::new(response.into_body().into_reader(), self.grace);
                        Ok((status, Box::new(body)))
                    }
                    Err(e) => Err(HttpError::Transport(e.to_string())),
                };
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(250 * 2u64.pow(attempt)));
        }
    }

    /// Sends `method` to `url` with `headers` and `payload`, retrying
    /// transient failures as [`Client::get`] does (a streamed payload is
    /// opened afresh for each attempt). Returns the status, the response
    /// headers and a body reader: for protocols that read headers or
    /// write (the distribution API's uploads).
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
    ) -> Result<Reply, HttpError> {
        let mut attempt = 0;
        loop {
            let outcome = self.send_once(method, url, headers, payload);
            let transient = match &outcome {
                Ok(reply) => reply.status == 429 || (500..600).contains(&reply.status),
                Err(_) => true,
            };
            if !transient || attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(250 * 2u64.pow(attempt)));
        }
    }

    fn send_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
    ) -> Result<Reply, HttpError> {
        let transport = |e: &dyn std::fmt::Display| HttpError::Transport(e.to_string());
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let outcome = match payload {
            Payload::Empty => self.agent_for(url).run(request.body(()).map_err(|e| transport(&e))?),
            Payload::Bytes(bytes) => self.agent_for(url).run(request.body(*bytes).map_err(|e| transport(&e))?),
            Payload::Stream(open, length) => {
                let reader = open().map_err(|e| transport(&e))?;
                let body = ureq::SendBody::from_owned_reader(reader);
                let request = request.header("Content-Length", length.to_string());
                self.agent_for(url).run(request.body(body).map_err(|e| transport(&e))?)
            }
        };
        let response = outcome.map_err(|e| transport(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect();
        let body = SlowGuard::new(response.into_body().into_reader(), self.grace);
        Ok(Reply { status, headers, body: Box::new(body) })
    }

    /// GETs a metadata document of at most `cap` bytes. 404 is `Ok(None)`.
    pub fn get_document(&self, url: &str, accept: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let (status, body) =
            self.get(url, &[("Accept", accept.to_owned())]).map_err(|e| unreachable_registry(url, &e))?;
        match status {
            200 => {}
            404 | 410 => return Ok(None),
            other => return Err(unreachable_registry(url, &HttpError::Status(other))),
        }
        let mut out = Vec::new();
        body.take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| unreachable_registry(url, &HttpError::Transport(e.to_string())))?;
        if out.len() as u64 > cap {
            return Err(Error::Usage(format!(
                "{url}: the registry sent more than {cap} bytes of metadata; check the registry URL"
            )));
        }
        Ok(Some(out))
    }
}

/// A request body for [`Client::send`].
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A body of a known length, streamed; `open` gives a fresh reader for each attempt.
    Stream(&'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send + 'static>> + Sync), u64),
}

/// A response of [`Client::send`]: status, headers, body.
pub struct Reply {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Box<dyn Read + Send>,
}

impl Reply {
    /// The first header `name` (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body, read to its end, of at most `cap` bytes (more is cut off).
    #[must_use]
    pub fn text(self, cap: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.body.take(cap).read_to_end(&mut out);
        out
    }
}

/// One page of a paginated JSON API: its body and the `Link: <URL>; rel="next"` it names.
pub struct Page {
    pub body: Vec<u8>,
    pub next: Option<String>,
}

impl Client {
    /// GETs a document of at most `cap` bytes sending `headers` (a token),
    /// with the next page its `Link` header names. 404 is `Ok(None)`.
    pub fn get_page(&self, url: &str, headers: &[(&str, String)], cap: u64) -> Result<Option<Page>> {
        let mut attempt = 0;
        let response = loop {
            let mut request = self.agent_for(url).get(url);
            for (name, value) in headers {
                request = request.header(*name, value);
            }
            let outcome = request.call();
            let transient = match &outcome {
                Ok(r) => r.status().as_u16() == 429 || r.status().is_server_error(),
                Err(_) => true,
            };
            if !transient || attempt >= self.retries {
                break outcome.map_err(|e| unreachable_registry(url, &HttpError::Transport(e.to_string())))?;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(250 * 2u64.pow(attempt)));
        };
        match response.status().as_u16() {
            200 => {}
            404 | 410 => return Ok(None),
            other => return Err(unreachable_registry(url, &HttpError::Status(other))),
        }
        let next = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| Some(part.split_once('<')?.1.split_once('>')?.0.to_owned()));
        let mut body = Vec::new();
        SlowGuard::new(response.into_body().into_reader(), self.grace)
            .take(cap + 1)
            .read_to_end(&mut body)
            .map_err(|e| unreachable_registry(url, &HttpError::Transport(e.to_string())))?;
        if body.len() as u64 > cap {
            return Err(Error::Usage(format!(
                "{url}: the registry sent more than {cap} bytes of metadata; check the registry URL"
            )));
        }
        Ok(Some(Page { body, next }))
    }
}

/// The error for a registry that failed us.
pub(crate) fn unreachable_registry(url: &str, e: &HttpError) -> Error {
    Error::Usage(format!(
        "{url}: {e}; check the registry URL, your proxy (HTTPS_PROXY) and CA settings (SSL_CERT_FILE), then run the export again"
    ))
}

/// Runs `work` on every item with at most `jobs` threads, keeping the
/// items' order; the first error (in item order) wins.
pub fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, work: impl Fn(&T) -> Result<R> + Sync) -> Result<Vec<R>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<R>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() || failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = work(&items[i]);
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    results.lock().expect("no worker panics while holding the lock")[i] = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(items.len());
    // Items are taken in order, so any item skipped after a failure comes
    // after the failed one, whose error is returned first.
    for result in results.into_inner().expect("workers are done").into_iter().flatten() {
        out.push(result?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:8080/simple/",
            "http://localhost/x",
            "https://[::1]:443/",
            "http://127.8.0.1",
            "http://u:p@127.0.0.1:1/",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "https://pypi.org/simple/",
            "http://10.0.0.1/",
            "http://127.0.0.1.evil.example/",
            "http://localhost.example/",
            "not a url",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }
}
