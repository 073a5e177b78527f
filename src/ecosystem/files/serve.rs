//! Plain files in `airlock serve`: `GET /files/PATH` is `MIRROR/files/PATH`,
//! typed by its extension; folders are never listed.

use crate::http::{Folder, Response, Route, content_type};

pub(super) fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    match route.segments.last() {
        Some(name) if !route.dir => folder.file(route.segments, content_type(name)),
        _ => Response::status(404),
    }
}
