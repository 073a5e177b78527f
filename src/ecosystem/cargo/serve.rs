//! Cargo's routes in `airlock serve`, below `/cargo/`: a sparse registry.
//!
//! ```text
//! GET /cargo/index/config.json                  generated: the registry config, `dl` pointing back here
//! GET /cargo/index/<prefix>/<name>              index files
//! GET /cargo/crates/<name>/<version>/download   MIRROR/cargo/<name>-<version>.crate
//! GET /cargo/<name>-<version>.crate             the same (a --base-url config's `dl`)
//! ```
//!
//! The config's `dl` starts with `http://HOST` from the request's Host
//! header, so downloads come back to this server under whatever name the
//! client used.

use super::{CONFIG_PATH, INDEX, NAME, crate_file};
use crate::http::{BINARY, Folder, JSON, Response, Route, TEXT};

/// The download endpoint the config names: `crates/{crate}/{version}/download`.
const CRATES: &str = "crates";
const DOWNLOAD: &str = "download";

pub(super) fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    if route.dir {
        return Response::status(404);
    }
    if route.is(CONFIG_PATH) {
        // Written by an import given --base-url: final, served as it is.
        if folder.is_file(route.segments) {
            return folder.file(route.segments, JSON);
        }
        let dl = format!("{}/{NAME}/{CRATES}/{{crate}}/{{version}}/{DOWNLOAD}", route.base());
        return Response::bytes(200, JSON, serde_json::json!({ "dl": dl }).to_string());
    }
    match route.segments {
        [INDEX, _, ..] => folder.file(route.segments, TEXT),
        [CRATES, name, version, DOWNLOAD] => folder.file(&[&crate_file(name, version)], BINARY),
        // Where a --base-url config's `dl` points.
        [file] if std::path::Path::new(file).extension().is_some_and(|e| e == "crate") => {
            folder.file(route.segments, BINARY)
        }
        _ => Response::status(404),
    }
}

pub(super) fn client_url(base: &str) -> String {
    format!("sparse+{base}/{NAME}/{INDEX}/")
}
