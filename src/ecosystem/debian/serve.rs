//! Debian's routes in `airlock serve`, below `/debian/`: the apt repository
//! as published, `GET /debian/ARCHIVE/dists/...` and `/debian/ARCHIVE/pool/...`
//! (by-hash names included) are the files of `MIRROR/debian/ARCHIVE/`, byte
//! for byte: apt checks Debian's signature itself. Folders are never listed.

use crate::http::{BINARY, Folder, Response, Route, TEXT};

pub(super) fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    match route.segments {
        [_, "dists", .., "InRelease"] if !route.dir => folder.file(route.segments, TEXT),
        [_, "dists" | "pool", _, ..] if !route.dir => folder.file(route.segments, BINARY),
        _ => Response::status(404),
    }
}
