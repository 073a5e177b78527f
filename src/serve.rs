//! `airlock serve`: a read-only HTTP/1.1 server over a published mirror, so
//! the clients of each ecosystem on the disconnected side install from it.
//!
//! `GET /<ecosystem>/...` is answered by that ecosystem's routes
//! ([`ecosystem::Ecosystem::route`], in `src/ecosystem/<name>/serve.rs`, which list
//! their URLs) from its folder of the mirror; anything else is 404. This
//! module is the layer between the ecosystems and the HTTP core
//! ([`crate::http`]: connections, limits, safety rules, file responses): it
//! checks the mirror, binds, and dispatches by the first path segment (an
//! ecosystem's name, or the root its protocol fixes, as the distribution
//! API's `/v2/`).

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use crate::ecosystem;
use crate::error::{Error, Result, io_reason};
use crate::http::{self, Folder, HTML, Response, Route};
use crate::mirror::{REPORTS, View};

pub use crate::http::{MAX_CONNECTIONS, MAX_HEAD, ServerHandle, TIMEOUT};

/// What to serve and where.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The mirror folder `airlock import` publishes into.
    pub mirror: PathBuf,
    /// The address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
}

/// A bound server, ready to [`run`](Server::run).
#[derive(Debug)]
pub struct Server {
    http: http::Server,
    site: Site,
}

/// Checks that `options.mirror` is an airlock mirror and binds the listen address.
pub fn bind(options: &ServeOptions) -> Result<Server> {
    let mirror = &options.mirror;
    if crate::mirror::is_bucket(mirror) {
        return Err(Error::Usage(format!(
            "{}: serve reads a mirror folder; clients read a mirror in object storage from the bucket itself (its website endpoint, or a CDN in front of it)",
            mirror.display()
        )));
    }
    match fs::metadata(mirror) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::Usage(format!(
                "{}: is not a folder; give --mirror the folder airlock import publishes into",
                mirror.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Usage(format!(
                "{}: no such folder; give --mirror the folder airlock import publishes into",
                mirror.display()
            )));
        }
        Err(e) => return Err(Error::input(mirror, "the mirror folder", &e)),
    }
    if !mirror.join(".airlock").is_dir() {
        return Err(Error::Usage(format!(
            "{}: is not an airlock mirror (no .airlock inside); give --mirror the folder airlock import publishes into",
            mirror.display()
        )));
    }
    let root = fs::canonicalize(mirror).map_err(|e| Error::input(mirror, "the mirror folder", &e))?;
    let http = http::bind(options.listen).map_err(|e| bind_error(options.listen, &e))?;
    Ok(Server { http, site: Site { root, catalog: std::sync::Mutex::default() } })
}

fn bind_error(addr: SocketAddr, e: &io::Error) -> Error {
    if e.kind() == io::ErrorKind::AddrInUse {
        Error::Usage(format!("{addr}: address already in use; choose another port with --listen"))
    } else {
        Error::Usage(format!("{addr}: cannot listen there ({}); choose another address with --listen", io_reason(e)))
    }
}

impl Server {
    /// The address actually bound (with the real port when 0 was asked for).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.http.local_addr()
    }

    /// Serves until stopped through a [`ServerHandle`] (from [`spawn`](Server::spawn)),
    /// or forever. Each request is passed to `log` as one line.
    pub fn run(self, log: impl Fn(&str) + Send + Sync + 'static) -> Result<()> {
        self.http.run(self.site, log)
    }

    /// Serves at most `limit` connections at once (more are answered 503).
    #[must_use]
    pub fn with_connection_limit(mut self, limit: usize) -> Self {
        self.http = self.http.with_connection_limit(limit);
        self
    }

    /// Runs the server on its own thread; the handle stops it (also when dropped).
    #[must_use]
    pub fn spawn(self, log: impl Fn(&str) + Send + Sync + 'static) -> ServerHandle {
        self.http.spawn(self.site, log)
    }
}

/// The mirror, as every connection sees it.
#[derive(Debug)]
struct Site {
    /// The canonical mirror folder; nothing outside it is served.
    root: PathBuf,
    /// The catalog page last rendered, and what it was rendered from: the
    /// generation, the number of imports and when the reports last changed.
    catalog: std::sync::Mutex<Option<(CatalogKey, fs::File)>>,
}

type CatalogKey = (Option<u64>, usize, Option<std::time::SystemTime>);

impl http::Handler for Site {
    /// `/<name>/...` goes to the ecosystem `name`, with its mirror folder;
    /// so does `/<root>/...` for an ecosystem whose protocol fixes its root
    /// ([`ecosystem::Ecosystem::api_root`]).
    fn respond(&self, route: &Route<'_>) -> Response {
        let Some((first, rest)) = route.split_first() else {
            return self.catalog();
        };
        if first == "-" {
            return self.report(&rest);
        }
        match ecosystem::ALL.iter().find(|e| e.name() == first || e.api_root() == Some(first)) {
            Some(ecosystem) => ecosystem.route(&rest, &Folder::new(&self.root, ecosystem.name())),
            None => Response::status(404),
        }
    }
}

impl Site {
    /// `/`: what the mirror holds and where each entry came from, linking
    /// each import's audit page. Rendered once for each published state
    /// into an unnamed file and streamed from it: made for each request in
    /// memory, a crowd of clients asking for the page of a mirror of
    /// 100 000 entries took the server past 180 MiB.
    fn catalog(&self) -> Response {
        let Ok(view) = View::open(&self.root) else { return Response::status(503) };
        let (Ok(current), Ok(state)) = (view.current(), view.state()) else { return Response::status(503) };
        let reports = Folder::new(&self.root, REPORTS);
        let reports_changed = fs::metadata(self.root.join(REPORTS)).and_then(|m| m.modified()).ok();
        let key = (current.map(|(n, _)| n), state.imports.len(), reports_changed);
        let mut cached = self.catalog.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.as_ref().is_none_or(|(k, _)| *k != key) {
            let href = |digest: &str| {
                let page = format!("{digest}.html");
                reports.is_file(&[page.as_str()]).then(|| format!("/-/reports/{page}"))
            };
            match render_catalog(&view, &state.imports, &href) {
                Ok(file) => *cached = Some((key, file)),
                Err(_) => return Response::status(503),
            }
        }
        let Some((_, file)) = cached.as_ref() else { return Response::status(503) };
        // Each response reads through its own handle, opened anew (one
        // shared, or a dup of it, would share the offset).
        with_page_policy(http::open(&PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())), HTML))
    }

    /// `/-/reports/<manifest digest>.html` (or `.json`): an import's audit page.
    fn report(&self, rest: &Route<'_>) -> Response {
        let ["reports", name] = rest.segments else { return Response::status(404) };
        let Some((digest, kind)) = name.rsplit_once('.') else { return Response::status(404) };
        let is_digest = digest.len() == 64 && digest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let content_type = match kind {
            "html" => "text/html; charset=utf-8",
            "json" => "application/json",
            _ => return Response::status(404),
        };
        if !is_digest {
            return Response::status(404);
        }
        with_page_policy(Folder::new(&self.root, REPORTS).file(&[name], content_type))
    }
}

/// The catalog of the published generation of `view`, written one entry
/// at a time into an unnamed file of `TMPDIR`: it goes when the last
/// handle is closed, however the server ends (a response still reading it
/// keeps it until it is sent).
fn render_catalog(
    view: &View,
    imports: &[crate::mirror::ImportRecord],
    report_href: &dyn Fn(&str) -> Option<String>,
) -> io::Result<fs::File> {
    let file = tempfile::tempfile()?;
    // The state read along the inventory: the page, the catalog begun on it
    // (or why not), and the first failure to write a row.
    let (mut page, begun, written) = view
        .each_stored(
            |count| {
                let mut page = io::BufWriter::new(file);
                let begun = crate::audit::CatalogPage::begin(&mut page, count, imports, report_href);
                (page, begun, Ok(()))
            },
            |(page, begun, written), stored| {
                if written.is_ok()
                    && let Ok(catalog) = begun
                {
                    *written = catalog.row(page, &stored);
                }
            },
        )
        .map_err(|e| io::Error::other(e.to_string()))?;
    written?;
    begun?.end(&mut page)?;
    page.into_inner().map_err(io::IntoInnerError::into_error)
}

/// The pages load nothing and run nothing, whatever a bundle named.
fn with_page_policy(response: Response) -> Response {
    response
        .header("Content-Security-Policy", crate::audit::PAGE_POLICY.into())
        .header("X-Content-Type-Options", "nosniff".into())
}
