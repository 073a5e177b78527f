//! The read-only OCI distribution API in `airlock serve`, from the layout
//! in `MIRROR/oci/`, so `skopeo copy docker://HOST:PORT/...` and `podman
//! pull` work with no registry on the inside:
//!
//! - `GET /v2/`: 200 `{}` with `Docker-Distribution-API-Version: registry/2.0`;
//! - `GET|HEAD /v2/NAME/manifests/TAG|DIGEST`: the manifest as carried,
//!   typed by its own `mediaType`, with `Docker-Content-Digest`;
//! - `GET|HEAD /v2/NAME/blobs/DIGEST`: streamed from disk, one byte range
//!   answered 206 (416 past the end);
//! - `GET /v2/NAME/tags/list` (`n` and `last` as the spec pages them);
//! - `GET /v2/NAME/referrers/DIGEST` (`artifactType` filter): an image index
//!   of the carried manifests whose `subject` is DIGEST, and of cosign's
//!   tag-scheme `.sig`/`.att`/`.sbom` for it; an empty index when none.
//!
//! NAME is the carried repository without its registry, or with it (see
//! [`super::layout`]). A repository serves only the manifests and blobs its
//! own names lead to, as a registry would. Errors are the spec's JSON
//! (`NAME_UNKNOWN`, `MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, `DIGEST_INVALID`).
//! The same API answers below `/oci/` too.

use std::fs;
use std::io::Read as _;

use serde_json::{Value, json};

use super::INDEX_TYPES;
use super::layout::{
    INDEX_JSON, LayoutIndex, MAX_MANIFEST, Reachable, Resolved, digest_hex, referrer_descriptor, subject_hex,
    tag_scheme,
};
use crate::http::{BINARY, Folder, Found, JSON, Response, Route, open};

const API_VERSION: (&str, &str) = ("Docker-Distribution-API-Version", "registry/2.0");

pub(super) fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    let segments = route.segments;
    let response = match segments {
        [] => Response::bytes(200, JSON, "{}"),
        [name @ .., "tags", "list"] if !name.is_empty() && !route.dir => {
            with_repository(folder, name, |index, repository| tags_list(index, repository, route.query()))
        }
        [name @ .., kind @ ("manifests" | "blobs" | "referrers"), reference] if !name.is_empty() && !route.dir => {
            with_repository(folder, name, |index, repository| match *kind {
                "manifests" => manifest(folder, index, repository, reference),
                "blobs" => blob(folder, index, repository, reference),
                _ => referrers(folder, index, repository, reference, route.query()),
            })
        }
        _ => error(404, "NAME_UNKNOWN", "no such route of the distribution API"),
    };
    response.header(API_VERSION.0, API_VERSION.1.into())
}

/// Reads index.json and finds the carried repository `name` means.
fn with_repository(
    folder: &Folder<'_>,
    name: &[&str],
    answer: impl FnOnce(&LayoutIndex, &str) -> Response,
) -> Response {
    let index = match folder.find(&[INDEX_JSON]) {
        Found::File(path) => match fs::read(&path) {
            Ok(bytes) => LayoutIndex::parse(&bytes).unwrap_or_default(),
            Err(e) => return Response::from_error(&e),
        },
        _ => LayoutIndex::default(),
    };
    let name = name.join("/");
    match index.resolve(&name) {
        Resolved::Repository(repository) => answer(&index, repository),
        Resolved::Unknown => error(404, "NAME_UNKNOWN", &format!("repository {name} is not in the mirror")),
        Resolved::Ambiguous(all) => error(
            404,
            "NAME_UNKNOWN",
            &format!("{name} is carried from several registries ({}); name it with its registry", all.join(", ")),
        ),
    }
}

/// The spec's error body.
fn error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "code": code, "message": message, "detail": null }] });
    Response::bytes(status, JSON, serde_json::to_vec(&body).expect("JSON serializes"))
}

/// A blob of the layout by hex, if it is a regular file there.
fn blob_file(folder: &Folder<'_>, hex: &str) -> Option<std::path::PathBuf> {
    match folder.find(&["blobs", "sha256", hex]) {
        Found::File(path) => Some(path),
        _ => None,
    }
}

/// A manifest-sized document of the layout, read whole (at most [`MAX_MANIFEST`]).
fn read_document(folder: &Folder<'_>, hex: &str) -> Option<Vec<u8>> {
    let file = fs::File::open(blob_file(folder, hex)?).ok()?;
    let mut doc = Vec::new();
    file.take(MAX_MANIFEST + 1).read_to_end(&mut doc).ok()?;
    (doc.len() as u64 <= MAX_MANIFEST).then_some(doc)
}

fn reachable(folder: &Folder<'_>, index: &LayoutIndex, repository: &str) -> Reachable {
    Reachable::of(index, repository, &|hex| read_document(folder, hex))
}

fn manifest(folder: &Folder<'_>, index: &LayoutIndex, repository: &str, reference: &str) -> Response {
    let hex = if reference.contains(':') {
        match digest_hex(reference) {
            Some(hex) => hex.to_owned(),
            None => return error(400, "DIGEST_INVALID", &format!("{reference} is not a sha256 digest")),
        }
    } else {
        match index.by_tag(repository, reference) {
            Some(named) => named.hex.clone(),
            None => return error(404, "MANIFEST_UNKNOWN", &format!("{repository} has no tag {reference}")),
        }
    };
    let reachable = reachable(folder, index, repository);
    match reachable.manifests.get(&hex) {
        Some((media, doc)) => Response::bytes(200, JSON, doc.clone())
            .typed(media.clone())
            .header("Docker-Content-Digest", format!("sha256:{hex}")),
        None => error(404, "MANIFEST_UNKNOWN", &format!("{repository} has no manifest sha256:{hex}")),
    }
}

fn blob(folder: &Folder<'_>, index: &LayoutIndex, repository: &str, digest: &str) -> Response {
    let Some(hex) = digest_hex(digest) else {
        return error(400, "DIGEST_INVALID", &format!("{digest} is not a sha256 digest"));
    };
    let reachable = reachable(folder, index, repository);
    let listed = reachable.blobs.contains_key(hex) || reachable.manifests.contains_key(hex);
    match blob_file(folder, hex) {
        Some(path) if listed => {
            // A `Range` is answered by the server for every file (206 or 416).
            open(&path, BINARY).header("Docker-Content-Digest", format!("sha256:{hex}"))
        }
        _ => error(404, "BLOB_UNKNOWN", &format!("{repository} has no blob sha256:{hex}")),
    }
}

/// The repository's tags; `n` and `last` page them as the spec says.
fn tags_list(index: &LayoutIndex, repository: &str, query: Option<&str>) -> Response {
    let mut tags = index.tags(repository);
    let param = |key: &str| {
        query?.split('&').find_map(|pair| pair.strip_prefix(key).and_then(|v| v.strip_prefix('=')).map(str::to_owned))
    };
    if let Some(last) = param("last") {
        tags.retain(|t| *t > last.as_str());
    }
    if let Some(n) = param("n").and_then(|n| n.parse::<usize>().ok()) {
        tags.truncate(n);
    }
    let name = repository.split_once('/').map_or(repository, |(_, path)| path);
    let body = json!({ "name": name, "tags": tags });
    Response::bytes(200, JSON, serde_json::to_vec(&body).expect("JSON serializes"))
}

/// The referrers of `digest`: the repository's manifests whose subject it
/// is, and cosign's tag-scheme artifacts for it.
fn referrers(
    folder: &Folder<'_>,
    index: &LayoutIndex,
    repository: &str,
    digest: &str,
    query: Option<&str>,
) -> Response {
    let Some(hex) = digest_hex(digest) else {
        return error(400, "DIGEST_INVALID", &format!("{digest} is not a sha256 digest"));
    };
    let reachable = reachable(folder, index, repository);
    let by_tag: Vec<&str> =
        tag_scheme(hex).iter().filter_map(|tag| index.by_tag(repository, tag)).map(|n| n.hex.as_str()).collect();
    let filter = query.and_then(|q| q.split('&').find_map(|p| p.strip_prefix("artifactType=")));
    let filter = filter.map(|f| f.replace("%2B", "+").replace("%2b", "+").replace("%2F", "/").replace("%2f", "/"));
    let mut manifests: Vec<Value> = Vec::new();
    for (child, (media, doc)) in &reachable.manifests {
        if subject_hex(doc).as_deref() == Some(hex) || by_tag.contains(&child.as_str()) {
            let d = referrer_descriptor(child, media, doc);
            if filter.as_deref().is_none_or(|f| d["artifactType"].as_str() == Some(f)) {
                manifests.push(d);
            }
        }
    }
    let body = json!({ "schemaVersion": 2, "mediaType": INDEX_TYPES[0], "manifests": manifests });
    let response =
        Response::bytes(200, JSON, serde_json::to_vec(&body).expect("JSON serializes")).typed(INDEX_TYPES[0].into());
    if filter.is_some() { response.header("OCI-Filters-Applied", "artifactType".into()) } else { response }
}
