//! Fetching from registries on the connected side.
//!
//! - TLS trusts the operating system's store, including `SSL_CERT_FILE` and
//!   `SSL_CERT_DIR` (rustls-native-certs reads them), so the exporter works
//!   behind a TLS-intercepting corporate proxy; `HTTPS_PROXY`, `HTTP_PROXY`
//!   and `NO_PROXY` are honoured.
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

pub use cache::{Cache, Cached, Digests};

/// Largest metadata document accepted (npm packuments of popular packages reach tens of MiB).
pub const MAX_METADATA_BYTES: u64 = 256 << 20;

/// An HTTP client configured for registries.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    retries: u32,
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
    /// A client trusting the system certificate store.
    pub fn new() -> Result<Self> {
        let loaded = rustls_native_certs::load_native_certs();
        if loaded.certs.is_empty() {
            let why = loaded.errors.first().map_or_else(|| "none found".to_owned(), ToString::to_string);
            return Err(Error::Usage(format!(
                "no trusted CA certificates ({why}); install ca-certificates or point SSL_CERT_FILE at your CA bundle"
            )));
        }
        let roots: Vec<_> = loaded.certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
        let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(roots))).build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(ureq::Proxy::try_from_env())
            .http_status_as_error(false)
            .user_agent(format!("airlock/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(30)))
            .max_redirects(5)
            .build();
        Ok(Client { agent: config.into(), retries: 3 })
    }

    /// Fewer retries and shorter deadlines, for tests of failure handling.
    #[must_use]
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// GETs `url` with `headers` (`range` may ask for a suffix), retrying
    /// transient failures. Returns the status and a body reader.
    pub fn get(&self, url: &str, headers: &[(&str, String)]) -> Result<(u16, Box<dyn Read + Send>), HttpError> {
        let mut attempt = 0;
        loop {
            let mut request = self.agent.get(url);
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
                        Ok((status, Box::new(response.into_body().into_reader())))
                    }
                    Err(e) => Err(HttpError::Transport(e.to_string())),
                };
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(250 * 2u64.pow(attempt)));
        }
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
        body.take(cap + 1).read_to_end(&mut out).map_err(|e| unreachable_registry(url, &HttpError::Transport(e.to_string())))?;
        if out.len() as u64 > cap {
            return Err(Error::Usage(format!("{url}: the registry sent more than {cap} bytes of metadata; check the registry URL")));
        }
        Ok(Some(out))
    }
}

/// The error for a registry that failed us.
pub(crate) fn unreachable_registry(url: &str, e: &HttpError) -> Error {
    Error::Usage(format!(
        "{url}: {e}; check the registry URL, your proxy (HTTPS_PROXY) and CA settings (SSL_CERT_FILE), then run the export again"
    ))
}
