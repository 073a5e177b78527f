//! The exporter's content-addressed download cache.
//!
//! ```text
//! CACHE/blobs/<blake3>        downloaded artifacts, named by content
//! CACHE/urls/<sha256(url)>    which blob a URL gave last time, with all its digests
//! CACHE/partial/<sha256(url)> an interrupted download, resumed with a range request
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::{Client, HttpError, unreachable_registry};
use crate::durable::write_atomically;
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;

/// Every digest a registry might state for an artifact, computed in one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    pub size: u64,
    #[serde(with = "hex_id")]
    pub blake3: ContentId,
    #[serde(with = "hex_bytes")]
    pub sha1: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub sha256: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub sha512: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        hex::decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Content ids as hex in the cache's JSON records.
mod hex_id {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::id::ContentId;

    pub fn serialize<S: Serializer>(v: &ContentId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ContentId, D::Error> {
        ContentId::from_hex(&String::deserialize(d)?).ok_or_else(|| serde::de::Error::custom("not a BLAKE3 hex digest"))
    }
}

/// A cached artifact.
/// The digests a download computes beyond BLAKE3 and SHA-256, which every
/// artifact gets: each costs a pass of CPU over every byte, and only npm
/// (its `integrity` SHA-512 and legacy `shasum` SHA-1) asks for them.
/// A digest not computed is empty in [`Digests`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
    pub sha1: bool,
    pub sha512: bool,
}

impl Extra {
    /// SHA-1 and SHA-512 as well.
    pub const BOTH: Extra = Extra { sha1: true, sha512: true };

    /// Whether `digests` lacks one of these.
    fn missing_from(self, digests: &Digests) -> bool {
        (self.sha1 && digests.sha1.is_empty()) || (self.sha512 && digests.sha512.is_empty())
    }
}

#[derive(Debug, Clone)]
pub struct Cached {
    pub path: PathBuf,
    pub digests: Digests,
    /// Whether this call went to the network.
    pub downloaded: bool,
}

impl Cached {
    /// The artifact's bytes, for the few that are read whole (index files,
    /// image manifests), checked against the BLAKE3 recorded when they were
    /// downloaded: downloads are not fsynced, and a copy a crash damaged
    /// must not be parsed. A damaged copy is removed, so the next run
    /// fetches it again.
    pub fn read_checked(&self) -> Result<Vec<u8>> {
        let bytes = fs::read(&self.path).map_err(|e| Error::input(&self.path, "cached download", &e))?;
        if ContentId::of(&bytes) != self.digests.blake3 {
            return Err(self.damaged());
        }
        Ok(bytes)
    }

    /// Whether the cached file still hashes to the BLAKE3 recorded at download.
    #[must_use]
    pub fn intact(&self) -> bool {
        let mut hasher = blake3::Hasher::new();
        File::open(&self.path).and_then(|file| hasher.update_reader(file).map(|_| ())).is_ok()
            && ContentId(*hasher.finalize().as_bytes()) == self.digests.blake3
    }

    /// The error for a cached copy whose bytes are not the ones recorded;
    /// the copy is removed from the cache.
    #[must_use]
    pub fn damaged(&self) -> Error {
        damaged_copy(&self.path)
    }
}

/// Removes the cached copy at `path`, whose bytes are not the ones
/// recorded at download, and says so: the next run fetches it again.
#[must_use]
pub fn damaged_copy(path: &Path) -> Error {
    let _ = fs::remove_file(path);
    Error::Usage(format!(
        "{}: the download cache's copy is not what was downloaded (damaged by a crash, or changed by hand); it is removed from the cache: run the export again",
        path.display()
    ))
}

/// The download cache.
pub struct Cache {
    root: PathBuf,
    downloads: std::sync::atomic::AtomicUsize,
}

#[derive(Serialize, Deserialize)]
struct UrlRecord {
    url: String,
    digests: Digests,
}

impl Cache {
    /// Opens (creating) the cache at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        for sub in ["blobs", "urls", "partial"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).at(&dir)?;
        }
        Ok(Cache { root: root.to_owned(), downloads: std::sync::atomic::AtomicUsize::new(0) })
    }

    /// The default location: `$XDG_CACHE_HOME/airlock` or `~/.cache/airlock`.
    #[must_use]
    pub fn default_dir() -> PathBuf {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("airlock")
    }

    /// Returns the artifact at `url`, downloading it only if the cache does
    /// not hold it. `check` judges the digests (against a lockfile's pins or
    /// the registry's metadata); a cached copy that fails it is fetched
    /// again, a fresh download that fails it is discarded and reported.
    pub fn fetch(
        &self,
        client: &Client,
        url: &str,
        extra: Extra,
        check: &dyn Fn(&Digests) -> Result<()>,
    ) -> Result<Cached> {
        self.fetch_with(client, url, &[], extra, check)
    }

    /// [`Cache::fetch`] sending `headers` too (an `Accept` a registry
    /// chooses the document by, a token). The cache is keyed by URL alone,
    /// so `check` must pin the content (a content-addressed URL).
    pub fn fetch_with(
        &self,
        client: &Client,
        url: &str,
        headers: &[(&str, String)],
        extra: Extra,
        check: &dyn Fn(&Digests) -> Result<()>,
    ) -> Result<Cached> {
        let key = hex::encode(sha2::Sha256::digest(url.as_bytes()));
        let record_path = self.root.join("urls").join(&key);
        if let Some(mut record) = fs::read(&record_path).ok().and_then(|b| serde_json::from_slice::<UrlRecord>(&b).ok())
        {
            let path = self.blob_path(&record.digests.blake3);
            let intact = fs::metadata(&path).is_ok_and(|m| m.len() == record.digests.size);
            if record.url == url && intact && extra.missing_from(&record.digests) {
                // Cached by an export that did not need these digests: hash the file again.
                record.digests = hash_file(&path, extra)?;
                write_atomically(&record_path, &serde_json::to_vec(&record).expect("record serializes"), 0o644)?;
            }
            if record.url == url && intact && check(&record.digests).is_ok() {
                return Ok(Cached { path, digests: record.digests, downloaded: false });
            }
        }
        let partial = self.root.join("partial").join(&key);
        self.downloads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let digests = download(client, url, headers, extra, &partial)?;
        if let Err(e) = check(&digests) {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
        let path = self.blob_path(&digests.blake3);
        fs::rename(&partial, &path).at(&path)?;
        let record = UrlRecord { url: url.to_owned(), digests: digests.clone() };
        write_atomically(&record_path, &serde_json::to_vec(&record).expect("record serializes"), 0o644)?;
        Ok(Cached { path, digests, downloaded: true })
    }

    /// How many artifacts this cache had to download since it was opened.
    pub fn downloads(&self) -> usize {
        self.downloads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn blob_path(&self, id: &ContentId) -> PathBuf {
        self.root.join("blobs").join(id.to_hex())
    }
}

/// Downloads `url` into `partial`, resuming what an earlier run left there.
fn download(client: &Client, url: &str, headers: &[(&str, String)], extra: Extra, partial: &Path) -> Result<Digests> {
    let mut file = OpenOptions::new().create(true).read(true).append(true).open(partial).at(partial)?;
    let mut hashers = Hashers::new(extra);
    let have = file.metadata().at(partial)?.len();
    if have > 0 {
        // Re-hash what is already there, so the digests cover the whole file.
        file.seek(io::SeekFrom::Start(0)).at(partial)?;
        io::copy(&mut (&file).take(have), &mut hashers).at(partial)?;
    }
    let mut sent = headers.to_vec();
    if have > 0 {
        sent.push(("Range", format!("bytes={have}-")));
    }
    let (status, mut body) = client.get(url, &sent).map_err(|e| unreachable_registry(url, &e))?;
    match status {
        206 if have > 0 => {}
        200 => {
            if have > 0 {
                file.set_len(0).at(partial)?;
                hashers = Hashers::new(extra);
            }
        }
        416 if have > 0 => {
            // Our partial file is longer than the artifact: start over.
            file.set_len(0).at(partial)?;
            drop(file);
            return download(client, url, headers, extra, partial);
        }
        other => return Err(unreachable_registry(url, &HttpError::Status(other))),
    }
    let mut tee = Tee { file: &mut file, hashers: &mut hashers };
    copy_large(&mut body, &mut tee).map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::Other => unreachable_registry(
            url,
            &HttpError::Transport(format!("download interrupted ({e}); run the export again to resume")),
        ),
        _ => Error::io(partial, e),
    })?;
    // Not fsynced: the export checks every cached byte against these
    // digests as it writes the bundle, and a copy a crash damaged is
    // removed then (`export::volume::changed`); waiting here for the disk
    // cost as much as writing the bundle itself.
    Ok(hashers.finish())
}

/// Bytes read and written at a time while downloading: `io::copy`'s 8 KiB
/// made a gigabyte 131 072 writes (and as many hasher calls).
const COPY_BUFFER: usize = 1 << 20;

/// `io::copy` with a [`COPY_BUFFER`] buffer; the count copied.
fn copy_large(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buffer = vec![0u8; COPY_BUFFER];
    let mut total = 0;
    loop {
        let mut filled = 0;
        // Fill the buffer as far as the body gives before writing, so a
        // write is a megabyte whatever size the socket reads come in.
        while filled < buffer.len() {
            match from.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(total);
        }
        to.write_all(&buffer[..filled])?;
        total += filled as u64;
    }
}

struct Tee<'a> {
    file: &'a mut File,
    hashers: &'a mut Hashers,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hashers.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The digests of a file already in the cache.
fn hash_file(path: &Path, extra: Extra) -> Result<Digests> {
    let mut hashers = Hashers::new(extra);
    copy_large(&mut File::open(path).at(path)?, &mut hashers).at(path)?;
    Ok(hashers.finish())
}

struct Hashers {
    size: u64,
    blake3: blake3::Hasher,
    sha256: sha2::Sha256,
    sha1: Option<sha1::Sha1>,
    sha512: Option<sha2::Sha512>,
}

impl Hashers {
    fn new(extra: Extra) -> Hashers {
        Hashers {
            size: 0,
            blake3: blake3::Hasher::new(),
            sha256: sha2::Sha256::new(),
            sha1: extra.sha1.then(sha1::Sha1::new),
            sha512: extra.sha512.then(sha2::Sha512::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        self.blake3.update(data);
        self.sha256.update(data);
        if let Some(h) = &mut self.sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.sha512 {
            h.update(data);
        }
    }

    fn finish(self) -> Digests {
        Digests {
            size: self.size,
            blake3: ContentId(*self.blake3.finalize().as_bytes()),
            sha1: self.sha1.map(|h| h.finalize().to_vec()).unwrap_or_default(),
            sha256: self.sha256.finalize().to_vec(),
            sha512: self.sha512.map(|h| h.finalize().to_vec()).unwrap_or_default(),
        }
    }
}

impl Write for Hashers {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Cache, Cached, Extra, Hashers, UrlRecord, hash_file};
    use crate::fetch::Client;

    /// Downloads are not fsynced: a copy read whole is checked against the
    /// BLAKE3 recorded at download, and a damaged one leaves the cache.
    #[test]
    fn a_damaged_copy_is_not_read_and_leaves_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.xz");
        std::fs::write(&path, b"the index file").unwrap();
        let cached =
            Cached { path: path.clone(), digests: hash_file(&path, Extra::default()).unwrap(), downloaded: false };
        assert!(cached.intact());
        assert_eq!(cached.read_checked().unwrap(), b"the index file");
        std::fs::write(&path, b"the index fild").unwrap();
        assert!(!cached.intact());
        let message = cached.read_checked().unwrap_err().to_string();
        assert!(message.contains("download cache's copy") && message.contains("run the export again"), "{message}");
        assert!(!path.exists(), "the damaged copy stayed in the cache");
    }

    /// An artifact cached by an export that needed no SHA-512 gets it from
    /// the file when a later export asks, without downloading it again.
    #[test]
    fn digests_a_cached_file_lacks_are_computed_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let data = b"the artifact".repeat(1000);
        let mut hashers = Hashers::new(Extra::default());
        hashers.update(&data);
        let plain = hashers.finish();
        assert!(plain.sha1.is_empty() && plain.sha512.is_empty() && !plain.sha256.is_empty());
        std::fs::write(cache.blob_path(&plain.blake3), &data).unwrap();
        // Nothing listens there: a download would fail.
        let url = "http://127.0.0.1:9/artifact.tgz";
        let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(url.as_bytes()));
        let record = UrlRecord { url: url.to_owned(), digests: plain.clone() };
        std::fs::write(dir.path().join("urls").join(key), serde_json::to_vec(&record).unwrap()).unwrap();

        let client = Client::new(Duration::from_secs(1), 0).unwrap();
        let full = hash_file(&cache.blob_path(&plain.blake3), Extra::BOTH).unwrap();
        assert_eq!(full.sha512.len(), 64);
        assert_eq!(full.sha1.len(), 20);
        let want = full.sha512.clone();
        let cached = cache
            .fetch(&client, url, Extra::BOTH, &|d| {
                if d.sha512 == want { Ok(()) } else { Err(crate::error::Error::Usage("sha512".into())) }
            })
            .unwrap();
        assert!(!cached.downloaded);
        assert_eq!(cached.digests, full);
        assert_eq!(cache.downloads(), 0);
    }
}
