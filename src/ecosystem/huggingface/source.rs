//! Models and datasets on the export side, over the hub's API: the revision
//! resolved once (`/api/models/REPO/revision/REV` -> `sha`), the file list
//! with its digests from the tree API (`/api/models/REPO/tree/COMMIT?recursive=true`,
//! paginated by `Link`), every file from `/REPO/resolve/COMMIT/PATH` checked
//! against its digest: an LFS file's SHA-256 while it streams, another
//! file's git blob id as soon as it is in the cache (before it is used),
//! which its entry then records as its `git-sha1` digest.
//!
//! The hub is `[huggingface] endpoint`, else `HF_ENDPOINT` (what the hub's
//! own clients honour), else <https://huggingface.co>; the token is
//! `HF_TOKEN`, else the client's token file (`HF_TOKEN_PATH`, else
//! `$HF_HOME/token`, else `~/.cache/huggingface/token`), sent only to that
//! endpoint (a redirect elsewhere, as for LFS downloads, drops it).

use std::path::PathBuf;

use serde_json::Value;

use super::listing::{self, Listing};
use super::{Kind, NAME, Repo, SIGNATURE_FILE, check_repo_id, check_revision, is_commit, snapshot_prefix};
use crate::ecosystem::endpoints::{env_nonempty, home};
use crate::ecosystem::registry::{Artifact, FetchContext, carry, carry_needed, digest_mismatch, entry, join_url};
use crate::ecosystem::{Pinned, Planned, Source};
use crate::error::{Error, Result};
use crate::escape::url_segment;
use crate::fetch::{Digests, Extra, parallel};
use crate::id::RelPath;

/// The public hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Largest API answer accepted (one page of a tree listing, a repository's info).
const MAX_API: u64 = 64 << 20;
/// Largest signature file fetched as evidence.
const MAX_SIGNATURE: u64 = 8 << 20;

/// The Hugging Face part of an export.
#[derive(Debug, Clone, Default)]
pub struct Repos {
    /// `ORG/NAME[@REVISION]` of models.
    pub models: Vec<String>,
    pub datasets: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub endpoint: Option<String>,
}

/// One repository asked for.
#[derive(Debug, Clone)]
struct Wanted {
    repo: Repo,
    revision: String,
}

/// The flag that names repositories of `kind`.
fn flag(kind: Kind) -> &'static str {
    match kind {
        Kind::Model => "--hf-model",
        Kind::Dataset => "--hf-dataset",
    }
}

/// `ORG/NAME[@REVISION]`.
fn parse_wanted(text: &str, kind: Kind) -> Result<Wanted> {
    let flag = flag(kind);
    let (id, revision) = text.split_once('@').unwrap_or((text, "main"));
    check_repo_id(id).map_err(|m| Error::Usage(format!("{flag} {text:?}: {m}")))?;
    check_revision(revision).map_err(|m| Error::Usage(format!("{flag} {text:?}: {m}")))?;
    Ok(Wanted { repo: Repo { kind, id: id.to_owned() }, revision: revision.to_owned() })
}

impl Source for Repos {
    fn lockfiles(&self) -> &[PathBuf] {
        &[]
    }

    fn names_inputs(&self) -> bool {
        !self.models.is_empty() || !self.datasets.is_empty()
    }

    fn read(&self) -> Result<Box<dyn Pinned + '_>> {
        let mut wanted = Vec::new();
        for text in &self.models {
            wanted.push(parse_wanted(text, Kind::Model)?);
        }
        for text in &self.datasets {
            wanted.push(parse_wanted(text, Kind::Dataset)?);
        }
        for glob in self.include.iter().chain(&self.exclude) {
            if glob.is_empty() || glob.chars().any(char::is_control) {
                return Err(Error::Usage(format!("--hf-include/--hf-exclude {glob:?}: not a glob")));
            }
        }
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| env_nonempty("HF_ENDPOINT"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !endpoint.starts_with("https://") && !endpoint.starts_with("http://") {
            return Err(Error::Usage(format!("hub endpoint {endpoint:?}: write an http:// or https:// URL")));
        }
        Ok(Box::new(Plan { source: self, wanted, endpoint, token: token() }))
    }
}

/// `HF_TOKEN`, else the hub client's token file.
fn token() -> Option<String> {
    if let Some(token) = env_nonempty("HF_TOKEN") {
        return Some(token.trim().to_owned());
    }
    let file = env_nonempty("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
        env_nonempty("HF_HOME")
            .map(PathBuf::from)
            .or_else(|| env_nonempty("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("huggingface")))
            .or_else(|| home().map(|h| h.join(".cache/huggingface")))
            .map(|h| h.join("token"))
    })?;
    std::fs::read_to_string(file).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

struct Plan<'a> {
    source: &'a Repos,
    wanted: Vec<Wanted>,
    endpoint: String,
    token: Option<String>,
}

/// One file of the hub's tree listing.
#[derive(Debug, Clone)]
struct TreeFile {
    path: String,
    size: u64,
    oid: String,
    lfs: Option<String>,
}

impl Pinned for Plan<'_> {
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>> {
        let mut artifacts = Vec::new();
        for wanted in &self.wanted {
            let commit = self.resolve(ctx, wanted)?;
            let id = format!("{}@{commit}", wanted.repo.entry_name());
            let tree = self.tree(ctx, &wanted.repo, &commit, &id)?;
            let carried: Vec<&TreeFile> = tree.iter().filter(|f| self.selected(&f.path)).collect();
            if carried.is_empty() {
                return Err(Error::Usage(format!("{id}: no file of the repository matches --hf-include/--hf-exclude")));
            }
            let mut files = parallel(&carried, ctx.jobs, |f| self.file(ctx, wanted, &commit, f, &id))?;
            files.sort_by(|a, b| a.0.path.cmp(&b.0.path));
            let (signature, looked) = self.signature(ctx, wanted, &commit, &tree, &id)?;
            if let Some(size) = signature.as_deref().and_then(super::evidence::shard_size) {
                for (file, artifact) in files.iter_mut().filter(|(f, _)| f.size > size) {
                    shard(file, artifact, size)?;
                }
            }
            let revision = (!is_commit(&wanted.revision)).then(|| wanted.revision.clone());
            let listing = Listing {
                repo: wanted.repo.entry_name(),
                commit: commit.clone(),
                revision: revision.clone(),
                files: files.iter().map(|(f, _)| f.clone()).collect(),
            };
            for (i, (file, mut artifact)) in files.into_iter().enumerate() {
                if let Some(revision) = &revision {
                    artifact.entry.attributes.insert("revision".into(), revision.clone());
                }
                artifact.entry.attributes.insert("etag".into(), file.etag());
                if i == 0 {
                    carry_needed(&mut artifact.entry, "hf-files", listing.to_bytes(), &id)?;
                    carry(&mut artifact.entry, "model-signature", signature.clone(), &looked);
                }
                artifacts.push(artifact);
            }
        }
        Ok(artifacts)
    }

    /// The repositories as the flags name them; their files are found only in the hub's tree.
    fn planned(&self) -> Vec<Planned> {
        let planned = |w: &Wanted| Planned {
            ecosystem: NAME,
            name: w.repo.entry_name(),
            version: Some(w.revision.clone()),
            from: self.endpoint.clone(),
            input: flag(w.repo.kind).to_owned(),
        };
        self.wanted.iter().map(planned).collect()
    }
}

impl Plan<'_> {
    /// The token header, for requests to the endpoint only.
    fn headers(&self, url: &str) -> Vec<(&'static str, String)> {
        match &self.token {
            Some(token) if url.starts_with(&format!("{}/", self.endpoint)) => {
                vec![("Authorization", format!("Bearer {token}"))]
            }
            _ => Vec::new(),
        }
    }

    fn api(&self, repo: &Repo, rest: &str) -> String {
        let id = repo.id.split('/').map(url_segment).collect::<Vec<_>>().join("/");
        join_url(&self.endpoint, &format!("api/{}/{id}/{rest}", repo.kind.plural()))
    }

    fn resolve_url(&self, repo: &Repo, commit: &str, path: &str) -> String {
        let id = repo.id.split('/').map(url_segment).collect::<Vec<_>>().join("/");
        let path = path.split('/').map(url_segment).collect::<Vec<_>>().join("/");
        join_url(&self.endpoint, &format!("{}{id}/resolve/{commit}/{path}", repo.url_prefix()))
    }

    fn page(&self, ctx: &FetchContext<'_>, url: &str, cap: u64) -> Result<Option<crate::fetch::Page>> {
        ctx.client.get_page(url, &self.headers(url), cap)
    }

    fn json(&self, ctx: &FetchContext<'_>, url: &str, what: &str) -> Result<Option<(Value, Option<String>)>> {
        let Some(page) = self.page(ctx, url, MAX_API)? else { return Ok(None) };
        let value = serde_json::from_slice(&page.body)
            .map_err(|e| Error::Usage(format!("{url}: the hub's {what} is not JSON ({e}); check the endpoint")))?;
        Ok(Some((value, page.next)))
    }

    /// The commit a revision names, asked once.
    fn resolve(&self, ctx: &FetchContext<'_>, wanted: &Wanted) -> Result<String> {
        let label = format!("{}@{}", wanted.repo.entry_name(), wanted.revision);
        let url = self.api(&wanted.repo, &format!("revision/{}", url_segment(&wanted.revision)));
        let (info, _) = self.json(ctx, &url, "repository info")?.ok_or_else(|| {
            Error::Usage(format!("{label}: no such repository or revision ({url}); check the name, or set HF_TOKEN for a private or gated one"))
        })?;
        let sha = info.get("sha").and_then(Value::as_str).unwrap_or_default();
        if !is_commit(sha) {
            return Err(Error::Usage(format!("{url}: the hub names no commit (sha) for {label}")));
        }
        if is_commit(&wanted.revision) && sha != wanted.revision {
            return Err(digest_mismatch(&label, &format!("the hub resolves it to another commit, {sha}")));
        }
        Ok(sha.to_owned())
    }

    /// Every file of the repository at `commit`, page by page.
    fn tree(&self, ctx: &FetchContext<'_>, repo: &Repo, commit: &str, id: &str) -> Result<Vec<TreeFile>> {
        let mut url = Some(format!("{}?recursive=true", self.api(repo, &format!("tree/{commit}"))));
        let mut files = Vec::new();
        let mut pages = 0;
        while let Some(page_url) = url.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(Error::Usage(format!("{id}: the hub's tree listing does not end")));
            }
            let (value, next) = self
                .json(ctx, &page_url, "tree listing")?
                .ok_or_else(|| Error::Usage(format!("{id}: the hub has no tree for the commit ({page_url})")))?;
            let items = value.as_array().ok_or_else(|| {
                Error::Usage(format!("{page_url}: the hub's tree listing is not a list; check the endpoint"))
            })?;
            for item in items {
                if item.get("type").and_then(Value::as_str) != Some("file") {
                    continue;
                }
                files.push(tree_file(item).map_err(|m| Error::Usage(format!("{id}: {page_url}: {m}")))?);
            }
            url = next;
        }
        Ok(files)
    }

    /// Whether `path` is carried under the include and exclude globs.
    fn selected(&self, path: &str) -> bool {
        let include = &self.source.include;
        (include.is_empty() || include.iter().any(|g| glob_matches(g, path)))
            && !self.source.exclude.iter().any(|g| glob_matches(g, path))
    }

    /// One file, through the cache, checked against the tree's digest.
    fn file(
        &self,
        ctx: &FetchContext<'_>,
        wanted: &Wanted,
        commit: &str,
        f: &TreeFile,
        id: &str,
    ) -> Result<(listing::File, Artifact)> {
        let url = self.resolve_url(&wanted.repo, commit, &f.path);
        let label = format!("{id} {}", f.path);
        let check = |d: &Digests| {
            if d.size != f.size {
                return Err(digest_mismatch(
                    &label,
                    &format!("the hub served {} bytes, its tree lists {}", d.size, f.size),
                ));
            }
            if let Some(lfs) = &f.lfs
                && hex::encode(&d.sha256) != *lfs
            {
                return Err(digest_mismatch(
                    &label,
                    "the hub served bytes whose sha256 is not the LFS oid its tree lists",
                ));
            }
            Ok(())
        };
        let cached = ctx.cache.fetch_with(ctx.client, &url, &self.headers(&url), Extra::default(), &check)?;
        ctx.progress.advance(cached.digests.size);
        let sha256 = hex::encode(&cached.digests.sha256);
        if f.lfs.is_none() {
            let oid =
                listing::git_blob_id_of(&cached.path, cached.digests.size).map_err(|e| Error::io(&cached.path, e))?;
            if oid != f.oid {
                // A copy from an earlier run that is not what was downloaded is the cache's fault, not the hub's.
                if !cached.downloaded && !cached.intact() {
                    return Err(cached.damaged());
                }
                // Out of the cache, so the next export fetches it again.
                let _ = std::fs::remove_file(&cached.path);
                return Err(digest_mismatch(
                    &label,
                    &format!("the hub served bytes whose git blob id is {oid}, its tree lists {}", f.oid),
                ));
            }
        }
        let path = format!("{}{}", snapshot_prefix(&wanted.repo, commit), f.path);
        let path = RelPath::new(&path).map_err(|m| Error::Usage(format!("{label}: {m}")))?;
        let mut e = entry(NAME, &wanted.repo.entry_name(), commit, path, &cached);
        if f.lfs.is_none() {
            // Checked against the bytes above; verify and import recompute it.
            let oid =
                hex::decode(&f.oid).map_err(|_| Error::Usage(format!("{label}: the tree gives no git blob id")))?;
            e.digests.insert("git-sha1".to_owned(), crate::manifest::Digest(oid));
        }
        e.source = Some(url);
        let file = listing::File {
            path: f.path.clone(),
            size: f.size,
            oid: f.oid.clone(),
            sha256,
            lfs: f.lfs.is_some(),
            shards: None,
        };
        Ok((file, Artifact { entry: e, source: cached.path }))
    }

    /// model.sig, when the repository has one, and where it was looked for.
    fn signature(
        &self,
        ctx: &FetchContext<'_>,
        wanted: &Wanted,
        commit: &str,
        tree: &[TreeFile],
        id: &str,
    ) -> Result<(Option<Vec<u8>>, String)> {
        let url = self.resolve_url(&wanted.repo, commit, SIGNATURE_FILE);
        if !tree.iter().any(|f| f.path == SIGNATURE_FILE) {
            return Ok((None, url));
        }
        let page = self
            .page(ctx, &url, MAX_SIGNATURE + 1)?
            .ok_or_else(|| Error::Usage(format!("{id}: its tree lists {SIGNATURE_FILE}, but {url} is missing")))?;
        if page.body.len() as u64 > MAX_SIGNATURE {
            return Ok((None, format!("{url}, which is over {MAX_SIGNATURE} bytes")));
        }
        Ok((Some(page.body), url))
    }
}

/// The SHA-256 of each `size`-byte shard of a downloaded file, for a model
/// signature that hashes it so (model-signing's `shards` method): into the
/// listing, and into the entry as its `sha256-shards` digest, which the
/// import checks against the bytes as they stream.
fn shard(file: &mut listing::File, artifact: &mut Artifact, size: u64) -> Result<()> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let path = &artifact.source;
    let mut input = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut digests = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let mut hasher = sha2::Sha256::new();
        let mut shard = (&mut input).take(size);
        let mut read = 0u64;
        loop {
            let n = shard.read(&mut buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            read += n as u64;
        }
        if read == 0 {
            break;
        }
        digests.push(hex::encode(hasher.finalize()));
    }
    let shards = listing::Shards { size, sha256: digests };
    artifact.entry.digests.insert(crate::manifest::SHA256_SHARDS.to_owned(), crate::manifest::Digest(shards.digest()));
    file.shards = Some(shards);
    Ok(())
}

/// A file item of the tree API: `{"type":"file","oid":..,"size":..,"path":..,"lfs":{"oid":..,"size":..}}`.
fn tree_file(item: &Value) -> Result<TreeFile, String> {
    let path = item.get("path").and_then(Value::as_str).ok_or("a tree item has no path")?;
    if RelPath::new(path).is_err() || path.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(format!("the tree lists {path:?}, which is not a relative path inside the repository"));
    }
    let size = item.get("size").and_then(Value::as_u64).ok_or_else(|| format!("{path}: no size"))?;
    let oid = item.get("oid").and_then(Value::as_str).unwrap_or_default();
    if oid.len() != 40 || !is_commit(oid) {
        return Err(format!("{path}: the tree gives no git blob id"));
    }
    let lfs = match item.get("lfs") {
        None | Some(Value::Null) => None,
        Some(lfs) => {
            let sha = lfs.get("oid").and_then(Value::as_str).unwrap_or_default();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return Err(format!("{path}: the tree gives no LFS sha256"));
            }
            if lfs.get("size").and_then(Value::as_u64).is_some_and(|s| s != size) {
                return Err(format!("{path}: the tree gives two sizes"));
            }
            Some(sha.to_owned())
        }
    };
    Ok(TreeFile { path: path.to_owned(), size, oid: oid.to_owned(), lfs })
}

/// `fnmatch` as `huggingface_hub`'s allow/ignore patterns use it: `*` matches
/// any run (`/` too), `?` one character; a pattern ending in `/` matches
/// everything below that folder.
#[must_use]
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let pattern = if pattern.ends_with('/') { format!("{pattern}*") } else { pattern.to_owned() };
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(star) = star {
            pi = star + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_as_the_hub_client() {
        assert!(glob_matches("*.json", "config.json"));
        assert!(glob_matches("*.json", "sub/config.json"));
        assert!(!glob_matches("*.json", "model.safetensors"));
        assert!(glob_matches("onnx/", "onnx/model.onnx"));
        assert!(glob_matches("model-?.bin", "model-1.bin"));
        assert!(!glob_matches("model-?.bin", "model-10.bin"));
    }

    #[test]
    fn wanted_repositories() {
        let w = parse_wanted("org/m@v1.0", Kind::Model).unwrap();
        assert_eq!((w.repo.id.as_str(), w.revision.as_str()), ("org/m", "v1.0"));
        assert_eq!(parse_wanted("org/m", Kind::Dataset).unwrap().revision, "main");
        for bad in ["org/a--b", "../x", "org/m@", "org/m@../x", "a/b/c"] {
            assert!(parse_wanted(bad, Kind::Model).is_err(), "{bad}");
        }
    }

    #[test]
    fn tree_items() {
        let lfs = serde_json::json!({"type":"file","oid":"a".repeat(40),"size":5,"path":"w.bin","lfs":{"oid":"b".repeat(64),"size":5,"pointerSize":130}});
        assert_eq!(tree_file(&lfs).unwrap().lfs.as_deref(), Some("b".repeat(64).as_str()));
        let bad = serde_json::json!({"type":"file","oid":"a".repeat(40),"size":5,"path":"../w.bin"});
        assert!(tree_file(&bad).is_err());
    }
}
