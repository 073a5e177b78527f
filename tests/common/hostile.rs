//! Building hostile bundles: a bundle taken apart into its three frames, the
//! part an attacker would change changed, and the volume put together
//! again, signed by whichever keys the attack has (or by none). Everything
//! goes through the library's public writer pieces or plain bytes, never
//! through `airlock export`, so a bundle can be made that export refuses to make.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use airlock::bundle::reader::{Member, VolumeReader};
use airlock::bundle::writer::{write_manifest_frame, write_seal};
use airlock::bundle::{ManifestFrame, VolumeSeal};
use airlock::ecosystem::ManifestExt as _;
use airlock::id::ContentId;
use airlock::manifest::carried::CarriedBytes;
use airlock::manifest::{Manifest, canonical};
use airlock::sign::{SecretKey, envelope};

/// A bundle taken apart.
pub struct Parts {
    /// Frame 1's envelope as stored.
    pub envelope: Vec<u8>,
    /// The manifest bytes it signs (in format 2, the root).
    pub payload: Vec<u8>,
    /// In format 2, the segments the root names (also known to [`assemble`] by the root).
    pub segments: Option<Vec<u8>>,
    pub manifest: Manifest,
    /// Frame 2 (the compressed blobs) as stored.
    pub frame: Vec<u8>,
    /// The seal envelope.
    pub seal: Vec<u8>,
    /// Every blob the volume carries.
    pub blobs: BTreeMap<ContentId, Vec<u8>>,
}

/// Takes `bundle` apart with the library's reader (it must be well formed).
pub fn open(bundle: &Path) -> Parts {
    open_bytes(&fs::read(bundle).unwrap())
}

/// Takes the volume `bytes` apart (it must be well formed).
pub fn open_bytes(bytes: &[u8]) -> Parts {
    let (mut volume, manifest_frame) = VolumeReader::open(bytes, "bundle").unwrap();
    let ManifestFrame { envelope, segments } = manifest_frame;
    let segments = segments.map(|s| s.to_vec().unwrap());
    let mut blobs = BTreeMap::new();
    while let Member::Blob { id, size } = volume.next_member().unwrap() {
        let mut data = Vec::new();
        volume.copy_member(size, &mut data).unwrap();
        blobs.insert(id, data);
    }
    let tail = volume.finish().unwrap();
    let frame_size = tail.frame.size as usize;
    let start = bytes.len() - 8 - tail.seal.len() - frame_size;
    let frame = bytes[start..start + frame_size].to_vec();
    let payload = envelope::open_untrusted(&envelope, envelope::MANIFEST).unwrap().payload.to_vec();
    let manifest = Manifest::decode(&payload, segments.as_deref(), &airlock::manifest::segments::NoSegments).unwrap();
    if let Some(segments) = &segments {
        remember_segments(&payload, segments);
    }
    Parts { envelope, payload, segments, manifest, frame, seal: tail.seal, blobs }
}

/// The segments of every format 2 root these helpers have seen, by the
/// root's digest: a root names its segments by digest, so it has one set,
/// and [`assemble`] puts them beside any envelope signing that root.
fn segments_by_root() -> &'static Mutex<HashMap<ContentId, Vec<u8>>> {
    static SEGMENTS: OnceLock<Mutex<HashMap<ContentId, Vec<u8>>>> = OnceLock::new();
    SEGMENTS.get_or_init(Mutex::default)
}

fn remember_segments(root: &[u8], segments: &[u8]) {
    segments_by_root().lock().unwrap().insert(ContentId::of(root), segments.to_vec());
}

/// What an envelope over `manifest` signs, in the manifest's own format (a
/// format 2 root's segments are remembered for [`assemble`]).
pub fn payload_of(manifest: &Manifest) -> Vec<u8> {
    let (payload, segments) = manifest.encode().unwrap();
    if let Some(segments) = segments {
        remember_segments(&payload, &segments);
    }
    payload
}

/// Frame 1 for `envelope`: with the segments of its root when it signs a
/// format 2 root these helpers know, else the envelope alone.
fn manifest_frame(envelope: &[u8]) -> ManifestFrame {
    let segments = envelope::open_untrusted(envelope, envelope::MANIFEST)
        .ok()
        .and_then(|opened| segments_by_root().lock().unwrap().get(&ContentId::of(opened.payload)).cloned());
    ManifestFrame { envelope: envelope.to_vec(), segments: segments.map(CarriedBytes::from_vec) }
}

fn owned(keys: &[&SecretKey]) -> Vec<SecretKey> {
    keys.iter().map(|k| (*k).clone()).collect()
}

/// `payload` (any bytes, canonical or not) in a manifest envelope signed by `keys`.
pub fn sign_manifest(payload: &[u8], keys: &[&SecretKey]) -> Vec<u8> {
    envelope::seal(payload, &owned(keys), envelope::MANIFEST).unwrap()
}

/// A seal over `frame` for the manifest `payload`, signed by `keys`.
pub fn seal(payload: &[u8], frame: &[u8], keys: &[&SecretKey]) -> Vec<u8> {
    let seal = VolumeSeal {
        format: 1,
        manifest: ContentId::of(payload),
        volume: 0,
        frame: ContentId::of(frame),
        frame_size: frame.len() as u64,
    };
    envelope::seal(&canonical::to_vec(&seal).unwrap(), &owned(keys), envelope::VOLUME_SEAL).unwrap()
}

/// A volume from its parts: frame 1 holding `envelope` (with the segments
/// of its root, if it is a format 2 root seen here), `frame` as is, the seal last.
pub fn assemble(envelope: &[u8], frame: &[u8], seal: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_manifest_frame(&mut out, &manifest_frame(envelope)).unwrap();
    out.extend_from_slice(frame);
    write_seal(&mut out, seal).unwrap();
    out
}

/// A volume whose frame 1 holds `envelope` and exactly `segments` (none,
/// or any bytes), whatever the root the envelope signs names.
pub fn assemble_with_segments(envelope: &[u8], segments: Option<&[u8]>, frame: &[u8], seal: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let manifest =
        ManifestFrame { envelope: envelope.to_vec(), segments: segments.map(|s| CarriedBytes::from_vec(s.to_vec())) };
    write_manifest_frame(&mut out, &manifest).unwrap();
    out.extend_from_slice(frame);
    write_seal(&mut out, seal).unwrap();
    out
}

/// The tar header airlock writes for blob `id` of `size` bytes.
pub fn blob_header(id: &ContentId, size: u64) -> tar::Header {
    airlock::bundle::member_header(&airlock::bundle::blob_member(id), size).unwrap()
}

/// A tar stream of `members` (header block, data, zero padding) and the end-of-archive blocks.
pub fn tar_stream(members: &[(tar::Header, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (header, data) in members {
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// One zstd frame of `data`, compressed as airlock's writer does.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_checksum(true).unwrap();
    encoder.include_contentsize(false).unwrap();
    encoder.window_log(22).unwrap();
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Frame 2 holding `blobs` in this order, each under its own id.
pub fn blob_frame(blobs: &[(ContentId, &[u8])]) -> Vec<u8> {
    let members: Vec<(tar::Header, &[u8])> =
        blobs.iter().map(|(id, data)| (blob_header(id, data.len() as u64), *data)).collect();
    compress(&tar_stream(&members))
}

/// A whole volume for `manifest`, carrying its carried blobs from `blobs`,
/// the manifest signed by `manifest_keys` and the seal by `seal_keys`.
pub fn rebuild(
    manifest: &Manifest,
    blobs: &BTreeMap<ContentId, Vec<u8>>,
    manifest_keys: &[&SecretKey],
    seal_keys: &[&SecretKey],
) -> Vec<u8> {
    let payload = payload_of(manifest);
    rebuild_payload(&payload, manifest, blobs, manifest_keys, seal_keys)
}

/// The same for manifest bytes that may not be what `manifest` encodes to
/// (a hostile encoding); `manifest` says which blobs to carry.
pub fn rebuild_payload(
    payload: &[u8],
    manifest: &Manifest,
    blobs: &BTreeMap<ContentId, Vec<u8>>,
    manifest_keys: &[&SecretKey],
    seal_keys: &[&SecretKey],
) -> Vec<u8> {
    let carried: Vec<(ContentId, &[u8])> =
        manifest.blobs.iter().filter(|b| b.carried).map(|b| (b.id, blobs[&b.id].as_slice())).collect();
    let frame = blob_frame(&carried);
    assemble(&sign_manifest(payload, manifest_keys), &frame, &seal(payload, &frame, seal_keys))
}

/// Keeps only the blobs some entry still points at (after entries were re-pointed).
pub fn prune_blobs(manifest: &mut Manifest) {
    let used: std::collections::BTreeSet<ContentId> = manifest.entries.iter().map(|e| e.blob).collect();
    manifest.blobs.retain(|b| used.contains(&b.id));
}

/// The manifest as a CBOR value, for changes its Rust types would refuse to represent.
pub fn manifest_value(manifest: &Manifest) -> ciborium::Value {
    ciborium::Value::serialized(manifest).unwrap()
}

/// Sets `field` of entry `index` in a manifest value to the text `to`.
pub fn set_entry_text(value: &mut ciborium::Value, index: usize, field: &str, to: &str) {
    let entries = map_get(value, "entries");
    let ciborium::Value::Array(entries) = entries else { panic!("entries is an array") };
    *map_get(&mut entries[index], field) = ciborium::Value::Text(to.to_owned());
}

fn map_get<'v>(value: &'v mut ciborium::Value, key: &str) -> &'v mut ciborium::Value {
    let ciborium::Value::Map(entries) = value else { panic!("not a map") };
    entries.iter_mut().find(|(k, _)| k.as_text() == Some(key)).map(|(_, v)| v).unwrap()
}

/// Peak resident memory (`VmHWM`, KiB) of `cmd` while it runs, sampled
/// until it exits, with its output. The high-water mark only grows, so the
/// last sample before exit holds the peak up to then.
pub fn run_measuring_memory(cmd: &mut std::process::Command) -> (std::process::Output, u64, usize) {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let fd_path = format!("/proc/{}/fd", child.id());
    let (mut peak, mut fds) = (0u64, 0usize);
    // Drain the pipes on threads so a chatty child never blocks on them.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).unwrap();
        buf
    });
    let status = loop {
        if let Ok(text) = fs::read_to_string(&status_path)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Ok(entries) = fs::read_dir(&fd_path) {
            fds = fds.max(entries.count());
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let output = std::process::Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    (output, peak, fds)
}
