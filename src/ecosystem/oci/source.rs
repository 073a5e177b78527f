//! Images on the export side: images.txt in; each image's manifests, its
//! configs and layers, its cosign signature, attestations and SBOM and its
//! OCI 1.1 referrers out, over the distribution
//! API (`/v2/<repo>/manifests/<ref>`, `/v2/<repo>/blobs/<digest>`). A tag is
//! resolved once, and everything after is fetched by digest and checked
//! against it while it streams.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::client::{Access, Session};
use super::lockfile::{self, ImageRef};
use super::{
    INDEX_TYPES, MANIFEST_TYPES, NAME, blob_rel_path, blobs_of, media_type, parse_index, parse_manifest, sha256_hex,
};
use crate::ecosystem::registry::{Artifact, FetchContext, carry, carry_needed, digest_mismatch, entry};
use crate::ecosystem::{Pinned, Planned, Source};
use crate::error::{Error, Result};
use crate::fetch::{Digests, Extra, HttpError, Payload, parallel};

/// Largest manifest accepted (distribution's own limit is 4 MiB).
const MAX_MANIFEST: u64 = 4 << 20;

/// Most OCI 1.1 referrers carried for one image.
const MAX_REFERRERS: usize = 64;
/// Largest blob of a signature, SBOM or referrer carried (the evidence cap of `cosign-blob`).
const MAX_EVIDENCE_BLOB: u64 = 4 << 20;

/// The manifest types asked for, in the `Accept` header.
fn accept() -> String {
    INDEX_TYPES.iter().chain(&MANIFEST_TYPES).copied().collect::<Vec<_>>().join(", ")
}

/// The OCI part of an export.
#[derive(Debug, Clone, Default)]
pub struct Images {
    /// images.txt files.
    pub lists: Vec<PathBuf>,
    /// `OS/ARCH[/VARIANT]` carried from an index.
    pub platforms: Vec<String>,
    /// Carry every platform of an index (`--oci-all-platforms`).
    pub all_platforms: bool,
    /// Registries spoken to over plain HTTP.
    pub plain_http: Vec<String>,
}

impl Source for Images {
    fn lockfiles(&self) -> &[PathBuf] {
        &self.lists
    }

    fn read(&self) -> Result<Box<dyn Pinned + '_>> {
        let mut refs = Vec::new();
        let mut inputs = Vec::new();
        for path in &self.lists {
            let origin = path.display().to_string();
            let listed = lockfile::parse_images(&crate::lockfile::read(path)?, &origin)?;
            inputs.extend(std::iter::repeat_n(origin, listed.len()));
            refs.extend(listed);
        }
        for platform in &self.platforms {
            let parts = platform.split('/').count();
            if !(2..=3).contains(&parts) || platform.split('/').any(str::is_empty) {
                return Err(Error::Usage(format!("--oci-platform {platform:?}: write OS/ARCH or OS/ARCH/VARIANT")));
            }
        }
        Ok(Box::new(Refs { source: self, wanted: refs, inputs }))
    }
}

struct Refs<'a> {
    source: &'a Images,
    wanted: Vec<ImageRef>,
    /// The list that names each of `wanted`.
    inputs: Vec<String>,
}

impl Pinned for Refs<'_> {
    fn fetch(&self, ctx: &FetchContext<'_>) -> Result<Vec<Artifact>> {
        if self.wanted.is_empty() {
            return Ok(Vec::new());
        }
        let registry = Registry { ctx, images: self.source, sessions: Mutex::new(BTreeMap::new()) };
        let resolved = parallel(&self.wanted, ctx.jobs, |r| registry.resolve(r))?;
        let images = merge(resolved)?;
        let mut artifacts = parallel(&images, ctx.jobs, |image| registry.image(image))?;
        let mut blobs: BTreeMap<String, (&str, u64)> = BTreeMap::new();
        for (image, artifact) in images.iter().zip(&artifacts) {
            for manifest in super::Chain::of(&artifact.entry)
                .map_err(|m| Error::Usage(format!("{}: {m}", image.repository)))?
                .manifests
            {
                for d in blobs_of(&manifest) {
                    let hex = d.as_digest_sha256().ok_or_else(|| {
                        Error::Usage(format!(
                            "{}: a blob has no sha256 digest ({}); airlock carries sha256 images",
                            image.repository,
                            d.digest()
                        ))
                    })?;
                    blobs.entry(hex.to_owned()).or_insert((image.repository.as_str(), d.size()));
                }
            }
        }
        let blobs: Vec<(String, (&str, u64))> = blobs.into_iter().collect();
        artifacts.extend(parallel(&blobs, ctx.jobs, |(hex, (repo, size))| registry.blob(repo, hex, *size))?);
        Ok(artifacts)
    }

    /// The images as the lists name them; their platforms, layers and
    /// evidence are found only in the registry.
    fn planned(&self) -> Vec<Planned> {
        let pinned = |r: &ImageRef| match (&r.tag, &r.digest) {
            (Some(tag), Some(digest)) => Some(format!("{tag}@sha256:{digest}")),
            (Some(tag), None) => Some(tag.clone()),
            (None, Some(digest)) => Some(format!("sha256:{digest}")),
            (None, None) => None,
        };
        let planned = |(r, input): (&ImageRef, &String)| Planned {
            ecosystem: NAME,
            name: r.repository.clone(),
            version: pinned(r),
            from: r.host().to_owned(),
            input: input.clone(),
        };
        self.wanted.iter().zip(&self.inputs).map(planned).collect()
    }
}

/// A reference resolved to its digest.
struct Resolved {
    reference: ImageRef,
    hex: String,
}

/// One image to carry: a repository's digest and the tags that named it.
struct Image {
    repository: String,
    hex: String,
    tags: Vec<String>,
}

/// Tags naming one digest of a repository make one image; one digest in
/// two repositories would be two entries on one path of the layout.
fn merge(resolved: Vec<Resolved>) -> Result<Vec<Image>> {
    let mut images: BTreeMap<String, Image> = BTreeMap::new();
    for Resolved { reference, hex } in resolved {
        let image = images.entry(hex.clone()).or_insert_with(|| Image {
            repository: reference.repository.clone(),
            hex: hex.clone(),
            tags: Vec::new(),
        });
        if image.repository != reference.repository {
            return Err(Error::Usage(format!(
                "{} and {} are the same image (sha256:{hex}); carry it under one repository",
                image.repository, reference.repository
            )));
        }
        if let Some(tag) = reference.tag
            && !image.tags.contains(&tag)
        {
            image.tags.push(tag);
        }
    }
    let mut images: Vec<Image> = images.into_values().collect();
    for image in &mut images {
        image.tags.sort();
    }
    Ok(images)
}

struct Registry<'a, 'c> {
    ctx: &'a FetchContext<'c>,
    images: &'a Images,
    /// One session (credentials, tokens) per registry host.
    sessions: Mutex<BTreeMap<String, Arc<Session<'c>>>>,
}

/// A repository's registry host and its path there.
fn split(repository: &str) -> (&str, &str) {
    repository.split_once('/').unwrap_or((repository, ""))
}

impl<'c> Registry<'_, 'c> {
    /// The session with `repository`'s registry, and the repository's path there.
    fn session<'r>(&self, repository: &'r str) -> Result<(Arc<Session<'c>>, &'r str)> {
        let (host, path) = split(repository);
        let mut sessions = self.sessions.lock().expect("no thread panics holding the sessions");
        if let Some(session) = sessions.get(host) {
            return Ok((Arc::clone(session), path));
        }
        let plain = self.images.plain_http.iter().any(|h| h == host);
        let session = Arc::new(Session::new(self.ctx.client, host, plain)?);
        sessions.insert(host.to_owned(), Arc::clone(&session));
        Ok((session, path))
    }

    /// A small document of `repository` (a manifest, a signature's blob),
    /// authenticated as the registry asks; `None` on 404.
    fn document(&self, repository: &str, url: &str, accept: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        self.document_or_none(repository, url, accept, cap, &[404, 410])
    }

    /// [`Self::document`], `None` on any status of `none`.
    fn document_or_none(
        &self,
        repository: &str,
        url: &str,
        accept: &str,
        cap: u64,
        none: &[u16],
    ) -> Result<Option<Vec<u8>>> {
        let (session, path) = self.session(repository)?;
        let reply = session.send(path, Access::Pull, "GET", url, &[("Accept", accept.to_owned())], &Payload::Empty)?;
        match reply.status {
            200 => {}
            status if none.contains(&status) => return Ok(None),
            other => return Err(session.unreachable(url, &HttpError::Status(other))),
        }
        let mut out = Vec::new();
        reply
            .body
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| session.unreachable(url, &HttpError::Transport(e.to_string())))?;
        if out.len() as u64 > cap {
            return Err(Error::Usage(format!(
                "{url}: the registry sent more than {cap} bytes for a manifest; check the registry URL"
            )));
        }
        Ok(Some(out))
    }

    /// The headers a cached GET of `repository` needs: its token, fetched first if the registry wants one.
    fn auth_headers(&self, repository: &str) -> Result<Vec<(&'static str, String)>> {
        let (session, path) = self.session(repository)?;
        session.authorize(path, Access::Pull)?;
        Ok(session.auth_headers(path))
    }

    /// `https://HOST/v2/PATH/`, or `http://` for a host named by --oci-plain-http.
    fn base(&self, repository: &str) -> String {
        let (host, path) = repository.split_once('/').unwrap_or((repository, ""));
        let scheme = if self.images.plain_http.iter().any(|h| h == host) { "http" } else { "https" };
        let host = if host == "docker.io" { "registry-1.docker.io" } else { host };
        format!("{scheme}://{host}/v2/{path}")
    }

    /// A manifest by tag or digest; `None` on 404.
    fn manifest(&self, repository: &str, reference: &str) -> Result<Option<(String, Vec<u8>)>> {
        let url = format!("{}/manifests/{reference}", self.base(repository));
        let body = self.document(repository, &url, &accept(), MAX_MANIFEST)?;
        Ok(body.map(|b| (url, b)))
    }

    /// The digest a reference names: its tag resolved once, checked against its pinned digest.
    fn resolve(&self, reference: &ImageRef) -> Result<Resolved> {
        let by = reference
            .tag
            .clone()
            .unwrap_or_else(|| format!("sha256:{}", reference.digest.as_deref().unwrap_or_default()));
        let (url, body) = self.manifest(&reference.repository, &by)?.ok_or_else(|| {
            Error::Usage(format!("{reference}: no such image ({}); check images.txt", self.base(&reference.repository)))
        })?;
        let hex = sha256_hex(&body);
        if let Some(pinned) = &reference.digest
            && *pinned != hex
        {
            return Err(digest_mismatch(
                &reference.to_string(),
                &format!("{url} is sha256:{hex}, not the pinned digest"),
            ));
        }
        Ok(Resolved { reference: reference.clone(), hex })
    }

    /// The image's entry: its top document by digest through the cache,
    /// the platform manifests of an index, its signature.
    fn image(&self, image: &Image) -> Result<Artifact> {
        let id = format!("{}@sha256:{}", image.repository, image.hex);
        let url = format!("{}/manifests/sha256:{}", self.base(&image.repository), image.hex);
        let check = |d: &Digests| {
            if hex::encode(&d.sha256) != image.hex {
                return Err(digest_mismatch(&id, "the registry served another manifest for its digest"));
            }
            Ok(())
        };
        let mut headers = vec![("Accept", accept())];
        headers.extend(self.auth_headers(&image.repository)?);
        let cached = self.ctx.cache.fetch_with(self.ctx.client, &url, &headers, Extra::default(), &check)?;
        let top = cached.read_checked()?;
        let media = media_type(&top).map_err(|m| Error::Usage(format!("{id}: {m}")))?;
        let mut e =
            entry(NAME, &image.repository, &format!("sha256:{}", image.hex), blob_rel_path(&image.hex), &cached);
        e.source = Some(url);
        e.attributes.insert("media-type".into(), media.clone());
        if !image.tags.is_empty() {
            e.attributes.insert("tags".into(), image.tags.join(" "));
        }
        carry_needed(&mut e, "oci-manifest", top.clone(), &id)?;
        if INDEX_TYPES.contains(&media.as_str()) {
            for doc in self.platform_manifests(&image.repository, &top, &id)? {
                carry_needed(&mut e, "oci-manifest", doc, &id)?;
            }
        }
        self.tag_scheme(&mut e, &image.repository, &image.hex, &id, "sig", "cosign-signature")?;
        self.tag_scheme(&mut e, &image.repository, &image.hex, &id, "att", "cosign-attestation")?;
        self.tag_scheme(&mut e, &image.repository, &image.hex, &id, "sbom", "cosign-sbom")?;
        self.referrers(&mut e, &image.repository, &image.hex, &id)?;
        Ok(Artifact { entry: e, source: cached.path })
    }

    /// The manifests of the chosen platforms an index lists, each checked against its descriptor.
    fn platform_manifests(&self, repository: &str, index: &[u8], id: &str) -> Result<Vec<Vec<u8>>> {
        let index = parse_index(index).map_err(|m| Error::Usage(format!("{id}: {m}")))?;
        let mut docs = Vec::new();
        let mut offered = Vec::new();
        for d in index.manifests() {
            let name = d.platform().as_ref().map(|platform| match platform.variant() {
                Some(variant) => format!("{}/{}/{variant}", platform.os(), platform.architecture()),
                None => format!("{}/{}", platform.os(), platform.architecture()),
            });
            let wanted = self.images.all_platforms
                || name.as_ref().is_some_and(|name| {
                    self.images
                        .platforms
                        .iter()
                        .any(|p| *p == *name || (p.matches('/').count() == 1 && name.starts_with(&format!("{p}/"))))
                });
            offered.extend(name);
            if !wanted {
                continue;
            }
            let hex =
                d.as_digest_sha256().ok_or_else(|| Error::Usage(format!("{id}: a manifest has no sha256 digest")))?;
            let (url, doc) = self.manifest(repository, &format!("sha256:{hex}"))?.ok_or_else(|| {
                Error::Usage(format!("{id}: its index lists sha256:{hex}, which the registry does not have"))
            })?;
            if sha256_hex(&doc) != hex || doc.len() as u64 != d.size() {
                return Err(digest_mismatch(id, &format!("{url} is not the manifest its index lists")));
            }
            docs.push(doc);
        }
        if docs.is_empty() {
            return Err(Error::Usage(format!(
                "{id}: the index has none of the platforms {} (it has {}); choose with --oci-platform",
                self.images.platforms.join(", "),
                offered.join(", ")
            )));
        }
        Ok(docs)
    }

    /// cosign's signature, attestations or SBOM by their tag,
    /// `sha256-<hex>.sig`, `.att` or `.sbom`, as evidence `kind` with its
    /// blobs (`cosign-blob`); where it was looked for when there is none.
    fn tag_scheme(
        &self,
        e: &mut crate::manifest::Entry,
        repository: &str,
        hex: &str,
        id: &str,
        suffix: &str,
        kind: &str,
    ) -> Result<()> {
        let tag = format!("sha256-{hex}.{suffix}");
        let Some((url, doc)) = self.manifest(repository, &tag)? else {
            let looked = format!("{}/manifests/{tag}", self.base(repository));
            carry(e, kind, None, &looked);
            return Ok(());
        };
        self.carry_with_blobs(e, repository, (kind, "cosign-blob"), doc, &url, id)
    }

    /// Carries evidence manifest `doc` (from `url`) as `kinds.0` with its
    /// blobs as `kinds.1`, or, when its blobs are too large to carry, where
    /// it was and why not.
    fn carry_with_blobs(
        &self,
        e: &mut crate::manifest::Entry,
        repository: &str,
        (kind, blob_kind): (&str, &str),
        doc: Vec<u8>,
        url: &str,
        id: &str,
    ) -> Result<()> {
        match self.evidence_blobs(repository, &doc, id, kind)? {
            Ok(blobs) => {
                carry(e, kind, Some(doc), url);
                for blob in blobs {
                    carry(e, blob_kind, Some(blob), url);
                }
            }
            Err(why) => carry(e, kind, None, &format!("{url} ({why})")),
        }
        Ok(())
    }

    /// The OCI 1.1 referrers of image `hex` (Sigstore bundles, SBOMs,
    /// attestations attached by `subject`): from the referrers API, or
    /// where a registry has none (404), from the index at the fallback tag
    /// `sha256-<hex>`. Each is carried as `oci-referrer` with its blobs
    /// (`oci-referrer-blob`), fetched by digest and checked; one whose
    /// blobs are larger than evidence may be is recorded as missing.
    fn referrers(&self, e: &mut crate::manifest::Entry, repository: &str, hex: &str, id: &str) -> Result<()> {
        let api = format!("{}/referrers/sha256:{hex}", self.base(repository));
        let (looked, listing) = match self.referrers_api(repository, &api)? {
            Some(listing) => (api, Some(listing)),
            None => match self.manifest(repository, &format!("sha256-{hex}"))? {
                Some((url, listing)) => (url, Some(listing)),
                None => (format!("{api} and the tag sha256-{hex}"), None),
            },
        };
        let listed = match listing.as_deref().map(parse_index).transpose() {
            Ok(Some(index)) => index.manifests().clone(),
            Ok(None) => Vec::new(),
            Err(m) => return Err(Error::Usage(format!("{id}: its referrers {looked}: {m}"))),
        };
        if listed.is_empty() {
            carry(e, "oci-referrer", None, &looked);
            return Ok(());
        }
        if listed.len() > MAX_REFERRERS {
            return Err(Error::Usage(format!(
                "{id}: {looked} lists {} referrers, more than the {MAX_REFERRERS} airlock carries for one image; report the registry's contents",
                listed.len()
            )));
        }
        let mut looked_at_one = false;
        for d in &listed {
            let Some(referrer) = d.as_digest_sha256() else { continue };
            let url = format!("{}/manifests/sha256:{referrer}", self.base(repository));
            let doc = self.document(repository, &url, &accept(), 1 << 20)?.ok_or_else(|| {
                Error::Usage(format!("{id}: {looked} lists referrer sha256:{referrer}, which {url} does not serve"))
            })?;
            if sha256_hex(&doc) != referrer {
                return Err(digest_mismatch(id, &format!("{url} is not the referrer its listing names")));
            }
            match super::layout::subject_hex(&doc) {
                // Not a referrer by the spec's meaning: a registry (airlock serve is one) listing
                // cosign's tag-scheme artifacts beside the referrers; those are fetched by their tags.
                None => continue,
                Some(subject) if subject != hex => {
                    return Err(digest_mismatch(id, &format!("its referrer {url} names another subject")));
                }
                Some(_) => {}
            }
            self.carry_with_blobs(e, repository, ("oci-referrer", "oci-referrer-blob"), doc, &url, id)?;
            looked_at_one = true;
        }
        if !looked_at_one {
            carry(e, "oci-referrer", None, &looked);
        }
        Ok(())
    }

    /// The referrers API's index for an image, or `None` where the
    /// registry has no such API (the spec's fallback is then the tag).
    fn referrers_api(&self, repository: &str, url: &str) -> Result<Option<Vec<u8>>> {
        self.document_or_none(repository, url, INDEX_TYPES[0], MAX_MANIFEST, &[400, 404, 405, 501])
    }

    /// The config and layers of an evidence manifest (a signature, an
    /// SBOM, a referrer), each fetched by digest and checked; or why they
    /// are not carried (larger than evidence may be).
    fn evidence_blobs(
        &self,
        repository: &str,
        doc: &[u8],
        id: &str,
        kind: &str,
    ) -> Result<std::result::Result<Vec<Vec<u8>>, String>> {
        let manifest = parse_manifest(doc).map_err(|m| Error::Usage(format!("{id}: its {kind}: {m}")))?;
        if let Some(big) = blobs_of(&manifest).find(|d| d.size() > MAX_EVIDENCE_BLOB) {
            return Ok(Err(format!(
                "its blob {} is {} bytes, more than the {MAX_EVIDENCE_BLOB} airlock carries as evidence",
                big.digest(),
                big.size()
            )));
        }
        let mut blobs = Vec::new();
        for d in blobs_of(&manifest) {
            let hex = d
                .as_digest_sha256()
                .ok_or_else(|| Error::Usage(format!("{id}: its {kind} lists a blob without a sha256")))?;
            let url = format!("{}/blobs/sha256:{hex}", self.base(repository));
            let body = self.document(repository, &url, "*/*", d.size())?;
            let body = body.ok_or_else(|| Error::Usage(format!("{id}: its {kind}'s blob {url} is missing")))?;
            if sha256_hex(&body) != hex {
                return Err(digest_mismatch(id, &format!("{url} is not the {kind} blob its manifest lists")));
            }
            blobs.push(body);
        }
        Ok(Ok(blobs))
    }

    /// A config or layer, streamed into the cache and checked against its digest and size.
    fn blob(&self, repository: &str, hex: &str, size: u64) -> Result<Artifact> {
        let id = format!("{repository} blob sha256:{hex}");
        let url = format!("{}/blobs/sha256:{hex}", self.base(repository));
        let check = |d: &Digests| {
            if hex::encode(&d.sha256) != hex || d.size != size {
                return Err(digest_mismatch(&id, "the registry served other bytes for the blob's digest"));
            }
            Ok(())
        };
        let cached = self.ctx.cache.fetch_with(
            self.ctx.client,
            &url,
            &self.auth_headers(repository)?,
            Extra::default(),
            &check,
        )?;
        self.ctx.progress.advance(cached.digests.size);
        let mut e = entry(NAME, repository, "", blob_rel_path(hex), &cached);
        e.version = None;
        e.source = Some(url);
        Ok(Artifact { entry: e, source: cached.path })
    }
}
