//! PyPI's routes in `airlock serve`, below `/pypi/`:
//!
//! ```text
//! GET /pypi/simple/[<project>/]                             index.html (index.json for PEP 691 clients)
//! GET /pypi/simple/<project>/<file>                         artifacts and *.metadata
//! GET /pypi/integrity/<project>/<version>/<file>/provenance PEP 740 provenance
//! ```

use super::{INTEGRITY, NAME, PAGE_HTML, PAGE_JSON, PROVENANCE, SIMPLE, SIMPLE_JSON};

const SIMPLE_LATEST_JSON: &str = "application/vnd.pypi.simple.latest+json";
use crate::http::{Folder, Found, HTML, JSON, Response, Route, content_type, open};

pub(super) fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    let (segments, dir) = (route.segments, route.dir);
    match segments {
        [SIMPLE, ..] => simple(route, folder),
        [INTEGRITY, .., last] if !dir => {
            let kind = if *last == PROVENANCE { JSON } else { content_type(last) };
            folder.file(segments, kind)
        }
        _ => Response::status(404),
    }
}

pub(super) fn client_url(base: &str) -> String {
    format!("{base}/{NAME}/{SIMPLE}/")
}

/// The simple API: a folder is its index page (PEP 691 JSON when the client
/// asks for it, else HTML), a folder without its slash is redirected.
fn simple(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    let (path, dir) = (route.segments, route.dir);
    match folder.find(path) {
        Found::Dir if !dir => {
            if folder.is_file(&with(path, PAGE_HTML)) {
                route.redirect_to_dir()
            } else {
                Response::status(404)
            }
        }
        Found::Dir => {
            // PEP 691: the client may name the version or ask for the latest.
            if (route.request.accepts(SIMPLE_JSON) || route.request.accepts(SIMPLE_LATEST_JSON))
                && let Found::File(json) = folder.find(&with(path, PAGE_JSON))
            {
                return open(&json, SIMPLE_JSON).header("Vary", "Accept".into());
            }
            match folder.find(&with(path, PAGE_HTML)) {
                Found::File(html) => open(&html, HTML).header("Vary", "Accept".into()),
                _ => Response::status(404),
            }
        }
        Found::File(file) if !dir => open(&file, content_type(path.last().expect("not empty"))),
        _ => Response::status(404),
    }
}

fn with<'a>(path: &[&'a str], last: &'a str) -> Vec<&'a str> {
    let mut path = path.to_vec();
    path.push(last);
    path
}
