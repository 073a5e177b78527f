//! The hub routes `airlock serve` answers under `/huggingface`, for
//! `HF_ENDPOINT=http://HOST:PORT/huggingface`, from the published cache:
//!
//! - `GET /api/{models|datasets}/REPO[/revision/REV]`: the repository's info
//!   at the revision (`id`, `sha`, `siblings`), what `snapshot_download` asks first;
//! - `GET /api/{models|datasets}/REPO/tree/REV[/...]`: every file (recursive),
//!   with `oid`, `size` and `lfs` as the hub lists them;
//! - `GET|HEAD /REPO/resolve/REV/PATH` (`/datasets/REPO/...` for datasets):
//!   the file, with the headers `hf_hub_download` checks: `X-Repo-Commit`,
//!   a quoted `ETag` (the git blob id, or for an LFS file its SHA-256, also
//!   as `X-Linked-Etag` with `X-Linked-Size`), and `Range` answered with 206,
//!   as the client resumes downloads.
//!
//! A revision is a commit of the cache's `snapshots/` or a name in its
//! `refs/`; one with a slash (`refs/pr/1`) is sent encoded as one segment
//! (`refs%2Fpr%2F1`), as the hub client sends it.

use serde_json::{Value, json};

use super::{HUB, Kind, Repo, check_repo_id, is_commit};
use crate::http::{self, Folder, Found, Response, Route};

pub fn route(route: &Route<'_>, folder: &Folder<'_>) -> Response {
    let sent = route.segments_as_sent().unwrap_or_else(|| route.segments.iter().map(|s| (*s).to_owned()).collect());
    let segments: Vec<&str> = sent.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["api", plural, rest @ ..] => {
            let kind = match *plural {
                "models" => Kind::Model,
                "datasets" => Kind::Dataset,
                _ => return Response::status(404),
            };
            api(kind, rest, folder)
        }
        ["datasets", rest @ ..] => resolve(Kind::Dataset, rest, folder),
        rest => resolve(Kind::Model, rest, folder),
    }
}

/// Splits `REPO/KEYWORD/...` where REPO is one or two segments.
fn split_repo<'a>(kind: Kind, segments: &'a [&'a str], keyword: &str) -> Option<(Repo, &'a [&'a str])> {
    for n in [2, 1] {
        if segments.len() > n && segments[n] == keyword {
            let id = segments[..n].join("/");
            check_repo_id(&id).ok()?;
            return Some((Repo { kind, id }, &segments[n + 1..]));
        }
    }
    None
}

/// The commit `revision` names in the repository's cache folder.
fn commit_of(repo: &Repo, revision: &str, folder: &Folder<'_>) -> Option<String> {
    let base = repo.folder();
    if is_commit(revision) && matches!(folder.find(&[HUB, &base, "snapshots", revision]), http::Found::Dir) {
        return Some(revision.to_owned());
    }
    if super::check_revision(revision).is_err() {
        return None;
    }
    let commit = folder.read_to_string(&[HUB, &base, "refs", revision]).ok()?;
    is_commit(&commit).then_some(commit)
}

/// The client's tree cache of a commit: path to its entry.
fn tree_of(repo: &Repo, commit: &str, folder: &Folder<'_>) -> Option<serde_json::Map<String, Value>> {
    let text = folder.read_to_string(&[HUB, &repo.folder(), "trees", &format!("{commit}.json")]).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    value.get("files")?.as_object().cloned()
}

fn api(kind: Kind, rest: &[&str], folder: &Folder<'_>) -> Response {
    let (repo, revision, tree) = if let Some((repo, after)) = split_repo(kind, rest, "revision") {
        let [revision] = after else { return Response::status(404) };
        (repo, *revision, false)
    } else if let Some((repo, after)) = split_repo(kind, rest, "tree") {
        let Some(revision) = after.first() else { return Response::status(404) };
        (repo, *revision, true)
    } else if (1..=2).contains(&rest.len()) && check_repo_id(&rest.join("/")).is_ok() {
        (Repo { kind, id: rest.join("/") }, "main", false)
    } else {
        return Response::status(404);
    };
    let Some(commit) = commit_of(&repo, revision, folder) else { return not_found("Revision Not Found") };
    let Some(files) = tree_of(&repo, &commit, folder) else { return not_found("Revision Not Found") };
    let body = if tree {
        let items: Vec<Value> = files
            .iter()
            .map(|(path, info)| {
                let size = info["size"].as_u64().unwrap_or_default();
                let mut item = json!({ "type": "file", "oid": info["blob_id"], "size": size, "path": path });
                if let Some(sha) = info.get("lfs_sha256") {
                    let pointer = format!(
                        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {size}\n",
                        sha.as_str().unwrap_or_default()
                    );
                    item["lfs"] = json!({ "oid": sha, "size": size, "pointerSize": pointer.len() });
                }
                item
            })
            .collect();
        Value::Array(items)
    } else {
        let siblings: Vec<Value> = files.keys().map(|p| json!({ "rfilename": p })).collect();
        json!({ "id": repo.id, "modelId": repo.id, "sha": commit, "private": false, "disabled": false,
                "gated": false, "siblings": siblings })
    };
    Response::bytes(200, http::JSON, serde_json::to_vec(&body).expect("JSON serializes"))
}

/// 404 with the hub's error header, which the client turns into its own error types.
fn not_found(message: &'static str) -> Response {
    let code = if message.starts_with("Revision") { "RevisionNotFound" } else { "EntryNotFound" };
    Response::bytes(404, http::JSON, serde_json::to_vec(&json!({ "error": message })).expect("JSON serializes"))
        .header("X-Error-Code", code.to_owned())
        .header("X-Error-Message", message.to_owned())
}

fn resolve(kind: Kind, rest: &[&str], folder: &Folder<'_>) -> Response {
    let Some((repo, after)) = split_repo(kind, rest, "resolve") else { return Response::status(404) };
    let [revision, path @ ..] = after else { return Response::status(404) };
    if path.is_empty() {
        return Response::status(404);
    }
    let Some(commit) = commit_of(&repo, revision, folder) else { return not_found("Revision Not Found") };
    let Some(files) = tree_of(&repo, &commit, folder) else { return not_found("Revision Not Found") };
    let file = path.join("/");
    let Some(info) = files.get(&file) else { return not_found("Entry Not Found") };
    let base = repo.folder();
    let mut segments = vec![HUB, base.as_str(), "snapshots", commit.as_str()];
    segments.extend_from_slice(path);
    let Found::File(found) = folder.find(&segments) else { return not_found("Entry Not Found") };
    // The client resumes downloads with Range, which the server answers for
    // every file (206, or a bare 416 without the headers below).
    let response = http::open(&found, http::BINARY);
    if response.code() != 200 {
        return response;
    }
    let mut response = response.header("X-Repo-Commit", commit.clone());
    match info.get("lfs_sha256").and_then(Value::as_str) {
        Some(sha) => {
            let size = info["size"].as_u64().unwrap_or_default();
            response = response
                .header("ETag", format!("\"{sha}\""))
                .header("X-Linked-Etag", format!("\"{sha}\""))
                .header("X-Linked-Size", size.to_string());
        }
        None => {
            response = response.header("ETag", format!("\"{}\"", info["blob_id"].as_str().unwrap_or_default()));
        }
    }
    response
}
