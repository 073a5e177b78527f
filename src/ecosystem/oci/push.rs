//! `airlock push`: the mirror's images, with their cosign signatures and
//! every other carried artifact named in the layout, into the site's own
//! registry over the distribution API, so the cluster's admission policies
//! (which check cosign signatures) keep working on the inside.
//!
//! Read from the published generation of the mirror (what `airlock import`
//! verified), each document's and blob's sha256 recomputed as it is read or
//! streamed (a mirror changed on disk is refused, exit 1). For each image:
//! its configs and layers first, each skipped when the registry already has
//! it (`HEAD`), else uploaded monolithically (`POST` an upload, `PUT` the
//! bytes with their digest), or with `--chunk-size` in chunks (`PATCH` each
//! with its `Content-Range`, then `PUT` the digest); then the manifests, children of an index before
//! the index, by digest; then the tags. Repositories are named on the
//! registry as `airlock serve` names them: the carried repository without
//! its registry (`registry.example/team/app` is `REGISTRY/[PREFIX/]team/app`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::Digest as _;

use super::client::{Access, Session};
use super::layout::{INDEX_JSON, LayoutIndex, MAX_MANIFEST, Reachable, tag_scheme};
use super::{INDEX_TYPES, check_repository, parse_index, sha256_hex};
use crate::error::{Error, Rejection, Result};
use crate::fetch::{Client, Payload};
use crate::mirror::View;
use crate::policy::names::matches;

/// What to push where.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// The mirror `airlock import` publishes into.
    pub mirror: PathBuf,
    /// `[http[s]://]HOST[:PORT][/PREFIX]`.
    pub registry: String,
    /// Carried repositories to push (`registry.example/team/*`); all when empty.
    pub images: Vec<String>,
    /// Speak plain HTTP to the registry (also implied by an `http://` registry).
    pub plain_http: bool,
    /// Upload blobs larger than this in chunks of it (`PATCH` with
    /// `Content-Range`), for registries or proxies that cap a request's body.
    pub chunk: Option<u64>,
}

/// What a push did.
#[derive(Debug, Default, Serialize)]
pub struct PushReport {
    /// `HOST[:PORT][/PREFIX]`.
    pub registry: String,
    /// Carried repository → repository on the registry.
    pub repositories: BTreeMap<String, String>,
    pub tags: usize,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    pub blobs_present: usize,
    /// Blobs linked from another repository of the same push (cross-repository mount), not uploaded again.
    pub blobs_mounted: usize,
    pub manifests_uploaded: usize,
    pub manifests_present: usize,
    pub tags_set: usize,
}

/// `[http[s]://]HOST[:PORT][/PREFIX]` as (host, prefix, plain HTTP).
fn parse_registry(text: &str, plain_http: bool) -> Result<(String, String, bool)> {
    let (rest, plain) = match text.strip_prefix("http://") {
        Some(rest) => (rest, true),
        None => (text.strip_prefix("https://").unwrap_or(text), plain_http),
    };
    let rest = rest.trim_end_matches('/');
    let (host, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let probe = format!("{host}/{}", if prefix.is_empty() { "x" } else { prefix });
    if host.is_empty() || check_repository(&probe).is_err() {
        return Err(Error::Usage(format!(
            "--registry {text:?}: write HOST[:PORT] or HOST[:PORT]/PREFIX (lower case), as in registry.site:5000"
        )));
    }
    Ok((host.to_owned(), prefix.to_owned(), plain))
}

/// The mirror's layout folder, in its published generation.
fn layout_dir(mirror: &Path) -> Result<PathBuf> {
    let view = View::open(mirror)?;
    let Some((_, generation)) = view.current()? else {
        return Err(Error::Usage(format!(
            "{}: nothing is published in this mirror yet; import a bundle first",
            mirror.display()
        )));
    };
    let dir = generation.join(super::NAME);
    if !dir.join(INDEX_JSON).is_file() {
        return Err(Error::Usage(format!(
            "{}: the mirror holds no container images; import a bundle exported with --oci-images",
            mirror.display()
        )));
    }
    Ok(dir)
}

/// Pushes the mirror's images to the registry.
pub fn push(options: &PushOptions, client: &Client) -> Result<PushReport> {
    let (host, prefix, plain_http) = parse_registry(&options.registry, options.plain_http)?;
    let dir = layout_dir(&options.mirror)?;
    let index_path = dir.join(INDEX_JSON);
    let bytes = std::fs::read(&index_path).map_err(|e| Error::io(&index_path, e))?;
    let index = LayoutIndex::parse(&bytes).map_err(|m| Error::Usage(format!("{}: {m}", index_path.display())))?;
    let all = index.repositories();
    for pattern in &options.images {
        if !all.iter().any(|r| matches(pattern, r)) {
            let have: Vec<&str> = all.iter().copied().collect();
            return Err(Error::Usage(format!(
                "--images {pattern:?} matches no image of the mirror (it holds {}); check the pattern",
                if have.is_empty() { "none".to_owned() } else { have.join(", ") }
            )));
        }
    }
    let chosen: Vec<&str> = all
        .iter()
        .copied()
        .filter(|r| options.images.is_empty() || options.images.iter().any(|p| matches(p, r)))
        .collect();
    let mut targets: BTreeMap<String, String> = BTreeMap::new();
    for repository in &chosen {
        let path = repository.split_once('/').map_or(*repository, |(_, path)| path);
        let target = if prefix.is_empty() { path.to_owned() } else { format!("{prefix}/{path}") };
        if let Some((other, _)) = targets.iter().find(|(_, t)| **t == target) {
            return Err(Error::Usage(format!(
                "{other} and {repository} would both be {host}/{target}; push them one at a time with --images and a --registry prefix each"
            )));
        }
        targets.insert((*repository).to_owned(), target);
    }
    let session = Session::new(client, &host, plain_http)?;
    let display = if prefix.is_empty() { host.clone() } else { format!("{host}/{prefix}") };
    let mut pusher = Pusher {
        session,
        dir: &dir,
        chunk: options.chunk,
        uploaded: BTreeMap::new(),
        report: PushReport { registry: display, ..PushReport::default() },
    };
    // Reach the registry once before anything else, so a wrong address is one line.
    pusher.session.ping()?;
    for (repository, target) in &targets {
        pusher.repository(&index, repository, target)?;
    }
    pusher.report.repositories = targets;
    Ok(pusher.report)
}

/// Blobs in flight at once.
const PUSH_JOBS: usize = 4;

/// What sending one blob took.
enum Sent {
    /// The registry had it.
    Present,
    /// Linked from another repository this push filled.
    Mounted,
    Uploaded(u64),
}

struct Pusher<'a, 'c> {
    session: Session<'c>,
    dir: &'a Path,
    chunk: Option<u64>,
    /// Blobs this push put into a repository, and which.
    uploaded: BTreeMap<String, String>,
    report: PushReport,
}

impl Pusher<'_, '_> {
    fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(hex)
    }

    /// A document of the layout, checked against its digest.
    fn document(&self, hex: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(hex);
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut doc = Vec::new();
        file.take(MAX_MANIFEST + 1).read_to_end(&mut doc).map_err(|e| Error::io(&path, e))?;
        if sha256_hex(&doc) != hex {
            return Err(changed(&path));
        }
        Ok(doc)
    }

    fn repository(&mut self, index: &LayoutIndex, repository: &str, target: &str) -> Result<()> {
        let reachable = Reachable::of(index, repository, &|hex| self.document(hex).ok());
        // Images first, then cosign's tag-scheme artifacts (a signature after what it signs).
        let mut names: Vec<_> = index.of(repository).collect();
        let scheme: BTreeSet<String> = names.iter().flat_map(|n| tag_scheme(&n.hex)).collect();
        // Referrers (by their subject) after their images too.
        names.sort_by_key(|n| {
            n.tag.as_ref().is_some_and(|t| scheme.contains(t) || t.starts_with("sha256-"))
                || reachable.manifests.get(&n.hex).is_some_and(|(_, doc)| super::layout::subject_hex(doc).is_some())
        });
        // Every config and layer first, then the manifests that list them.
        let blobs: Vec<(String, u64)> = reachable.blobs.iter().map(|(hex, size)| (hex.clone(), *size)).collect();
        self.blobs(target, &blobs)?;
        let mut pushed: BTreeSet<String> = BTreeSet::new();
        for named in names {
            self.manifest_tree(&reachable, target, &named.hex, &mut pushed)?;
            if let Some(tag) = &named.tag {
                self.report.tags += 1;
                let (media, doc) = &reachable.manifests[&named.hex];
                self.tag(target, tag, &named.hex, media, doc)?;
            }
        }
        Ok(())
    }

    /// A manifest by digest, after its blobs (and, for an index, after the
    /// manifests it lists that the layout holds).
    fn manifest_tree(
        &mut self,
        reachable: &Reachable,
        target: &str,
        hex: &str,
        pushed: &mut BTreeSet<String>,
    ) -> Result<()> {
        if pushed.contains(hex) {
            return Ok(());
        }
        let (media, doc) = reachable.manifests.get(hex).ok_or_else(|| changed(&self.blob_path(hex)))?;
        let mut not_carried = Vec::new();
        if INDEX_TYPES.contains(&media.as_str()) {
            let children =
                parse_index(doc).map_err(|m| Error::Usage(format!("{}: {m}", self.blob_path(hex).display())))?;
            for child in children.manifests() {
                match child.as_digest_sha256() {
                    Some(child) if reachable.manifests.contains_key(child) => {
                        self.manifest_tree(reachable, target, child, pushed)?;
                    }
                    _ => not_carried.push(
                        child
                            .platform()
                            .as_ref()
                            .map_or_else(|| child.digest().to_string(), |p| format!("{}/{}", p.os(), p.architecture())),
                    ),
                }
            }
        } else {
            let manifest = super::parse_manifest(doc)
                .map_err(|m| Error::Usage(format!("{}: {m}", self.blob_path(hex).display())))?;
            // Its blobs went first (they are the repository's reachable ones); one
            // without a sha256 is not something airlock wrote.
            for d in super::blobs_of(&manifest) {
                d.as_digest_sha256().ok_or_else(|| changed(&self.blob_path(hex)))?;
            }
        }
        match self.put_manifest(target, &format!("sha256:{hex}"), hex, media, doc) {
            Err(e) if !not_carried.is_empty() && e.to_string().contains("MANIFEST_BLOB_UNKNOWN") => {
                return Err(Error::Usage(format!(
                    "{}: the registry refuses image index sha256:{hex} because it lists platforms that were not carried ({}); export with --oci-all-platforms to push the index whole",
                    self.session.v2(target),
                    not_carried.join(", ")
                )));
            }
            other => other?,
        }
        pushed.insert(hex.to_owned());
        Ok(())
    }

    /// Sends `blobs` into `target`, [`PUSH_JOBS`] at a time: layers are
    /// most of the bytes, and one stream at a time leaves the link idle
    /// between them.
    fn blobs(&mut self, target: &str, blobs: &[(String, u64)]) -> Result<()> {
        let sent = crate::fetch::parallel(blobs, PUSH_JOBS, |(hex, size)| self.blob(target, hex, *size))?;
        for ((hex, _), sent) in blobs.iter().zip(sent) {
            match sent {
                Sent::Present => self.report.blobs_present += 1,
                Sent::Mounted => self.report.blobs_mounted += 1,
                Sent::Uploaded(length) => {
                    self.report.blobs_uploaded += 1;
                    self.report.bytes_uploaded += length;
                }
            }
            self.uploaded.insert(hex.clone(), target.to_owned());
        }
        Ok(())
    }

    fn blob(&self, target: &str, hex: &str, size: u64) -> Result<Sent> {
        let url = self.session.v2(&format!("{target}/blobs/sha256:{hex}"));
        let head = self.session.send(target, Access::Push, "HEAD", &url, &[], &Payload::Empty)?;
        if head.status == 200 {
            return Ok(Sent::Present);
        }
        // A blob this push already put into another repository is mounted from there.
        let start = match self.uploaded.get(hex) {
            Some(from) => self.session.v2(&format!("{target}/blobs/uploads/?mount=sha256:{hex}&from={from}")),
            None => self.session.v2(&format!("{target}/blobs/uploads/")),
        };
        let reply = self.session.send(target, Access::Push, "POST", &start, &[], &Payload::Empty)?;
        if reply.status == 201 {
            return Ok(Sent::Mounted);
        }
        let location = match (reply.status, reply.header("location")) {
            (202, Some(location)) => self.session.absolute(location),
            (status, _) => return Err(Self::refused(&start, status, reply)),
        };
        let path = self.blob_path(hex);
        let length = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
        if length != size {
            return Err(changed(&path));
        }
        match self.chunk {
            Some(chunk) if size > chunk => self.chunked(target, hex, &path, size, location, chunk),
            _ => self.monolithic(target, hex, &path, &location, size),
        }
    }

    /// One `PUT` of the whole blob, its sha256 checked as it streams.
    fn monolithic(&self, target: &str, hex: &str, path: &Path, location: &str, size: u64) -> Result<Sent> {
        let (open_path, expected) = (path.to_owned(), hex.to_owned());
        let open = move || -> std::io::Result<Box<dyn Read + Send + 'static>> {
            Ok(Box::new(Checked::open(&open_path, size, &expected)?))
        };
        let headers = [("Content-Type", "application/octet-stream".to_owned())];
        let put = with_digest(location, hex);
        let reply = self.session.send(target, Access::Push, "PUT", &put, &headers, &Payload::Stream(&open, size));
        let reply = match reply {
            Err(e) if e.to_string().contains("does not match its digest") => return Err(changed(path)),
            other => other?,
        };
        if reply.status != 201 {
            return Err(Self::refused(location, reply.status, reply));
        }
        Ok(Sent::Uploaded(size))
    }

    /// The blob in chunks of `chunk` bytes, each a `PATCH` to the upload's
    /// latest location with its `Content-Range`, then a `PUT` of the
    /// digest. The file's sha256 is checked first (a retried chunk is read
    /// again, so it cannot be hashed as it goes); the registry checks the
    /// digest of what it received at the end.
    fn chunked(
        &self,
        target: &str,
        hex: &str,
        path: &Path,
        size: u64,
        mut location: String,
        chunk: u64,
    ) -> Result<Sent> {
        let mut checked = Checked::open(path, size, hex).map_err(|e| Error::io(path, e))?;
        if std::io::copy(&mut checked, &mut std::io::sink()).is_err() {
            return Err(changed(path));
        }
        let mut offset = 0;
        while offset < size {
            let length = chunk.min(size - offset);
            let open_path = path.to_owned();
            let open = move || -> std::io::Result<Box<dyn Read + Send + 'static>> {
                use std::io::Seek as _;
                let mut file = std::fs::File::open(&open_path)?;
                file.seek(std::io::SeekFrom::Start(offset))?;
                Ok(Box::new(file.take(length)))
            };
            let headers = [
                ("Content-Type", "application/octet-stream".to_owned()),
                ("Content-Range", format!("{offset}-{}", offset + length - 1)),
            ];
            let reply = self.session.send(
                target,
                Access::Push,
                "PATCH",
                &location,
                &headers,
                &Payload::Stream(&open, length),
            )?;
            location = match (reply.status, reply.header("location")) {
                (202, Some(next)) => self.session.absolute(next),
                (status, _) => return Err(Self::refused(&location, status, reply)),
            };
            offset += length;
        }
        let put = with_digest(&location, hex);
        let reply = self.session.send(target, Access::Push, "PUT", &put, &[], &Payload::Empty)?;
        if reply.status != 201 {
            return Err(Self::refused(&location, reply.status, reply));
        }
        Ok(Sent::Uploaded(size))
    }

    /// Whether the registry has `reference` as exactly this manifest.
    fn has_manifest(&self, target: &str, reference: &str, hex: &str, media: &str) -> Result<bool> {
        let url = self.session.v2(&format!("{target}/manifests/{reference}"));
        let headers = [("Accept", media.to_owned())];
        let head = self.session.send(target, Access::Push, "HEAD", &url, &headers, &Payload::Empty)?;
        Ok(head.status == 200 && head.header("docker-content-digest") == Some(&format!("sha256:{hex}")))
    }

    fn put_manifest(&mut self, target: &str, reference: &str, hex: &str, media: &str, doc: &[u8]) -> Result<()> {
        if self.has_manifest(target, reference, hex, media)? {
            self.report.manifests_present += 1;
            return Ok(());
        }
        self.put(target, reference, hex, media, doc)?;
        self.report.manifests_uploaded += 1;
        Ok(())
    }

    fn tag(&mut self, target: &str, tag: &str, hex: &str, media: &str, doc: &[u8]) -> Result<()> {
        if self.has_manifest(target, tag, hex, media)? {
            return Ok(());
        }
        self.put(target, tag, hex, media, doc)?;
        self.report.tags_set += 1;
        Ok(())
    }

    fn put(&self, target: &str, reference: &str, hex: &str, media: &str, doc: &[u8]) -> Result<()> {
        let url = self.session.v2(&format!("{target}/manifests/{reference}"));
        let headers = [("Content-Type", media.to_owned())];
        let reply = self.session.send(target, Access::Push, "PUT", &url, &headers, &Payload::Bytes(doc))?;
        if reply.status != 201 {
            return Err(Self::refused(&url, reply.status, reply));
        }
        if let Some(digest) = reply.header("docker-content-digest")
            && digest != format!("sha256:{hex}")
        {
            return Err(Error::Usage(format!(
                "{url}: the registry stored the manifest as {digest}, not sha256:{hex}; it rewrites manifests, which breaks their signatures"
            )));
        }
        Ok(())
    }

    /// A request the registry answered with an error: its own words, one line.
    fn refused(url: &str, status: u16, reply: crate::fetch::Reply) -> Error {
        let body = reply.text(16 << 10);
        let said = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v.get("errors")?.get(0)?.clone();
                Some(format!(
                    "{}: {}",
                    e.get("code").and_then(|c| c.as_str()).unwrap_or("error"),
                    e.get("message").and_then(|c| c.as_str()).unwrap_or_default()
                ))
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        Error::Usage(format!(
            "{url}: the registry refused it ({}); check the registry's permissions and storage",
            crate::escape::one_line(&said)
        ))
    }
}

/// An upload's location with the `digest` query that completes it.
fn with_digest(location: &str, hex: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest=sha256:{hex}")
}

/// A blob of the mirror that is not what its name says.
fn changed(path: &Path) -> Error {
    Error::rejected(
        path.display(),
        Rejection::DigestMismatch(
            "does not match its digest; the mirror was changed on disk, import the bundle again".into(),
        ),
    )
}

/// A file of `left` bytes read as it streams, failing with its last byte
/// (before the request is complete, so the registry never stores it)
/// unless its sha256 is `expected`.
struct Checked {
    inner: std::fs::File,
    hasher: sha2::Sha256,
    left: u64,
    expected: String,
    path: PathBuf,
}

impl Checked {
    /// The file at `path`, to be read as `size` bytes whose sha256 is `expected` (hex).
    fn open(path: &Path, size: u64, expected: &str) -> std::io::Result<Checked> {
        let inner = std::fs::File::open(path)?;
        let (expected, path) = (expected.to_owned(), path.to_owned());
        Ok(Checked { inner, hasher: sha2::Sha256::new(), left: size, expected, path })
    }
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let cap = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..cap])?;
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        let ended = self.left == 0 || (n == 0 && cap > 0);
        if ended && (self.left != 0 || hex::encode(self.hasher.clone().finalize()) != self.expected) {
            return Err(std::io::Error::other(format!("{} does not match its digest", self.path.display())));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_host_port_and_prefix() {
        assert_eq!(
            parse_registry("site.example:5000", false).unwrap(),
            ("site.example:5000".into(), String::new(), false)
        );
        assert_eq!(
            parse_registry("http://127.0.0.1:5000/mirror/", false).unwrap(),
            ("127.0.0.1:5000".into(), "mirror".into(), true)
        );
        assert_eq!(parse_registry("https://r.example/a/b", true).unwrap(), ("r.example".into(), "a/b".into(), true));
        for bad in ["", "http://", "R.example", "r.example/A", "r.example:x", "ftp://r"] {
            assert!(parse_registry(bad, false).is_err(), "{bad:?}");
        }
    }
}
