//! npm's routes in `airlock serve`, below `/npm/`:
//!
//! ```text
//! GET /npm/<name>, /npm/@scope%2fname, /npm/@scope/name   the packument
//! GET /npm/<name>/-/<file>.tgz                             tarballs
//! GET /npm/-/npm/v1/attestations/<name>@<version>          attestation documents
//! GET /npm/-/npm/v1/keys                                   the registry keys the import policy pins
//! ```
//!
//! Packuments carry [`BASE_PLACEHOLDER`] where the publish put the
//! registry's address; it is replaced by `http://HOST` from the request's
//! Host header, so the URLs in them point back at this server under whatever
//! name the client used. Whatever is not found is npm's JSON 404.

use std::path::Path;

use super::{ATTESTATIONS_DIR, BASE_PLACEHOLDER, KEYS_PATH, NAME, PACKUMENT};
use crate::http::{BINARY, Folder, JSON, Response, Route};

/// The registry's answer for what it does not have.
const NOT_FOUND: &str = r#"{"error":"Not found"}"#;

pub(super) fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    let response = answer(route, folder);
    if response.code() == 404 { Response::bytes(404, JSON, NOT_FOUND) } else { response }
}

pub(super) fn client_url(base: &str) -> String {
    format!("{base}/{NAME}/")
}

fn answer(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    let (segments, dir) = (route.segments, route.dir);
    if let Some(spec) = route.below(ATTESTATIONS_DIR)
        && !dir
        && (1..=2).contains(&spec.len())
    {
        return folder.file(segments, JSON);
    }
    // The registry keys pinned in the import policy, written by the import.
    if route.is(KEYS_PATH) {
        return folder.file(segments, JSON);
    }
    let unscoped = |name: &str| !name.starts_with('@') && name != "-";
    match segments {
        [name] if unscoped(name) => packument(route, folder, &[name, PACKUMENT]),
        [scope, name] if scope.starts_with('@') => packument(route, folder, &[scope, name, PACKUMENT]),
        [name, "-", file] if !dir && unscoped(name) && is_tarball(file) => folder.file(segments, BINARY),
        [scope, _, "-", file] if !dir && scope.starts_with('@') && is_tarball(file) => folder.file(segments, BINARY),
        _ => Response::status(404),
    }
}

/// The packument, with its URLs pointed at this server as it streams (a
/// packument of tens of MiB is never held whole, however many clients read it).
fn packument(route: &Route<'_>, folder: &Folder<'_>, path: &[&str]) -> Response {
    folder.file_replacing(path, JSON, BASE_PLACEHOLDER, &route.base())
}

fn is_tarball(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|extension| extension.eq_ignore_ascii_case("tgz"))
}
