//! The `volume` target's structure-aware mutator. It takes a volume apart
//! ([`Volume::decode`]), changes one to three things a hostile or careless
//! exporter could change — a tar header field (name, size, type, mode,
//! checksum ...), member order and data, frame 1's block layout and
//! declared sizes, frame 2's compressed bytes and frame boundaries, the
//! seal, the manifest — and puts it together again, re-signing the manifest
//! and the seal with the fuzzing key so that most mutants get past the
//! signature checks into the code behind them. One time in ten, and for
//! inputs that are no volume at all, it leaves the bytes to libFuzzer.

use airlock::bundle::VolumeSeal;
use airlock::ecosystem::ManifestExt as _;
use airlock::id::ContentId;
use airlock::manifest::{Manifest, canonical};
use airlock::sign::envelope;

use crate::layout::{
    self, BLOCK, DEVICE, GID, LINK_NAME, MAGIC, MODE, MTIME, Member, NAME, OWNER_NAMES, PREFIX, SIZE, TYPE, Tar, UID,
    VERSION, Volume,
};
use crate::rng::Rng;

/// libFuzzer's own mutation of `data[..size]` within `max_size` (`libfuzzer_sys::fuzzer_mutate`).
pub type ByteMutator = fn(&mut [u8], usize, usize) -> usize;

/// The mutator: writes the mutant into `data` and returns its length.
pub fn mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32, bytes: ByteMutator) -> usize {
    let mut rng = Rng::new(seed);
    let volume = if rng.one_in(10) { None } else { Volume::decode(&data[..size]) };
    let Some(volume) = volume else { return bytes(data, size, max_size) };
    let mut edit = Edit::new(volume);
    // One change most often, so that a mutant is refused for one reason.
    let changes = *rng.pick(&[1, 1, 1, 2, 2, 3]);
    for _ in 0..changes {
        edit.mutate_once(&mut rng, bytes);
    }
    let out = edit.encode(&mut rng);
    if out.len() > max_size.min(data.len()) {
        return bytes(data, size, max_size);
    }
    data[..out.len()].copy_from_slice(&out);
    out.len()
}

/// Names and pieces of names a hostile exporter would try.
const NAME_TOKENS: &[&[u8]] = &[
    b"..",
    b"/..",
    b"../",
    b"/../",
    b"/",
    b"//",
    b".",
    b"./",
    b"/./",
    b"\0",
    b"\\",
    b"..\\",
    b" ",
    b"\n",
    b"\xff",
    b"\xc3\xa9",
    b"%2e%2e",
    b"blobs/",
    b"blobs/../",
    b"manifest.cose",
    b"manifest.segments",
    b"volume.cbor",
    b"parity.bin",
    b"~",
    b"A",
];
/// Tar type flags: regular (two spellings), links, devices, folder, FIFO, contiguous, pax and GNU records.
const TYPE_FLAGS: &[u8] = b"0\x00123456789gxLKSVMDA";
const KNOWN_NAMES: &[&[u8]] =
    &[b"manifest.cose", b"manifest.segments", b"volume.cbor", b"parity.bin", b"blobs/", b"blobs", b"", b"."];

/// A volume taken apart, and how to put it together again.
struct Edit {
    /// Frame 1: the manifest member's header, its envelope, what follows.
    header: [u8; BLOCK],
    envelope: Vec<u8>,
    padding: Vec<u8>,
    /// Format 2: the `manifest.segments` member after the envelope's padding
    /// (its data; header and padding are written as airlock writes them).
    segments: Option<Vec<u8>>,
    /// The manifest inside the envelope, when the envelope opens.
    payload: Option<Vec<u8>>,
    /// Frame 2 decompressed, when it decompresses; `tar_changed` says to compress it again.
    tar: Option<Tar>,
    tar_changed: bool,
    blob_frame: Vec<u8>,
    old_seal: Option<Vec<u8>>,
    /// Which volume of its set the old seal said this is.
    volume_index: u32,
    plan: Plan,
}

/// The choices made at encoding time.
struct Plan {
    /// Re-sign the manifest (false: keep the envelope's bytes as they are).
    resign: bool,
    /// Signatures per envelope (0, 1 or 2 of the same key).
    signatures: usize,
    /// Frame 1's header follows the envelope's length and padding.
    header_follows: bool,
    padding_follows: bool,
    checksum: Checksum,
    /// Frame 1: raw block size, a delta on the declared content size, bytes changed in its first 12.
    raw_block: usize,
    declared_delta: i64,
    frame_header_byte: Option<(usize, u8)>,
    frame1_compressed: bool,
    frame1_cut: usize,
    between_frames: Vec<u8>,
    /// Frame 2: how to compress, then what to do to the compressed bytes.
    level: i32,
    zstd_checksum: bool,
    content_size: bool,
    split_at: Option<usize>,
    blob_frame_edits: Vec<ByteEdit>,
    /// The seal.
    seal: SealPlan,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Checksum {
    Fix,
    Stale,
    Garbage,
}

enum ByteEdit {
    Truncate(usize),
    Flip(usize, u8),
    Append(Vec<u8>),
    Prepend(Vec<u8>),
}

struct SealPlan {
    keep_old: bool,
    missing: bool,
    volume_delta: u32,
    format: u32,
    frame_size_delta: i64,
    stale_digest: bool,
    declared_delta: i64,
    after: Vec<u8>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            resign: true,
            signatures: 1,
            header_follows: true,
            padding_follows: true,
            checksum: Checksum::Fix,
            raw_block: 128 << 10,
            declared_delta: 0,
            frame_header_byte: None,
            frame1_compressed: false,
            frame1_cut: 0,
            between_frames: Vec::new(),
            level: 3,
            zstd_checksum: true,
            content_size: false,
            split_at: None,
            blob_frame_edits: Vec::new(),
            seal: SealPlan {
                keep_old: false,
                missing: false,
                volume_delta: 0,
                format: 1,
                frame_size_delta: 0,
                stale_digest: false,
                declared_delta: 0,
                after: Vec::new(),
            },
        }
    }
}

impl Edit {
    fn new(volume: Volume) -> Self {
        let member = volume.manifest_member;
        let mut header = [0u8; BLOCK];
        let head = member.len().min(BLOCK);
        header[..head].copy_from_slice(&member[..head]);
        let rest = member.get(BLOCK..).unwrap_or_default();
        let declared = layout::field_number(&header[SIZE]).unwrap_or(0);
        let split = usize::try_from(declared).unwrap_or(usize::MAX).min(rest.len());
        let (envelope, after) = rest.split_at(split);
        let (padding, segments) = split_segments(after, envelope.len());
        let payload = envelope::open_untrusted(envelope, envelope::MANIFEST).ok().map(|o| o.payload.to_vec());
        let tar = layout::decompress(&volume.blob_frame).map(|t| Tar::split(&t));
        let volume_index = volume
            .seal
            .as_deref()
            .and_then(|s| envelope::open_untrusted(s, envelope::VOLUME_SEAL).ok())
            .and_then(|o| canonical::from_slice::<VolumeSeal>(o.payload).ok())
            .map_or(0, |s| s.volume);
        Edit {
            header,
            envelope: envelope.to_vec(),
            padding: padding.to_vec(),
            segments,
            payload,
            tar,
            tar_changed: false,
            blob_frame: volume.blob_frame,
            old_seal: volume.seal,
            volume_index,
            plan: Plan::default(),
        }
    }

    fn mutate_once(&mut self, rng: &mut Rng, bytes: ByteMutator) {
        // Most weight behind the signature (frame 2, the seal, the manifest):
        // a broken frame 1 is refused before anything else is read.
        match rng.below(100) {
            0..32 if self.tar.as_ref().is_some_and(|t| !t.members.is_empty()) => self.blob_member_header(rng),
            0..47 if self.tar.is_some() => self.tar_structure(rng),
            0..57 => self.manifest_member_header(rng),
            57..61 => self.frame1_layout(rng),
            61..67 => self.frame1_encoding(rng),
            67..77 => self.blob_frame_encoding(rng),
            77..85 => self.seal(rng),
            85..95 => self.manifest(rng),
            _ => self.raw_bytes(rng, bytes),
        }
    }

    /// A field of one blob member's header in frame 2.
    fn blob_member_header(&mut self, rng: &mut Rng) {
        let names = self.names();
        let tar = self.tar.as_mut().expect("checked by the caller");
        let at = rng.below(tar.members.len());
        let member = &mut tar.members[at];
        let checksum = checksum_choice(rng);
        if let Some(size) = mutate_header(&mut member.header, rng, &names) {
            // Sometimes the data follows the new size, as a careful forger's would.
            if rng.one_in(2) {
                resize(&mut member.data, size, rng);
            }
        }
        finish_header(&mut member.header, checksum, rng);
        self.tar_changed = true;
    }

    /// Frame 1's header: the `manifest.cose` member's.
    fn manifest_member_header(&mut self, rng: &mut Rng) {
        let names = self.names();
        if mutate_header(&mut self.header, rng, &names).is_some() {
            self.plan.header_follows = false;
        }
        self.plan.checksum = checksum_choice(rng);
    }

    /// Member order, member data, padding and the end of the archive in frame 2.
    fn tar_structure(&mut self, rng: &mut Rng) {
        let tar = self.tar.as_mut().expect("checked by the caller");
        let n = tar.members.len();
        match rng.below(10) {
            0 if n >= 2 => {
                let (a, b) = (rng.below(n), rng.below(n));
                tar.members.swap(a, b);
            }
            1 if n >= 1 => {
                let copy = tar.members[rng.below(n)].clone();
                tar.members.insert(rng.below(n + 1), copy);
            }
            2 if n >= 1 => {
                tar.members.remove(rng.below(n));
            }
            3 if n >= 1 => {
                let member = &mut tar.members[rng.below(n)];
                let size = layout::field_number(&member.header[SIZE]).unwrap_or(0);
                let size = match rng.below(4) {
                    0 => size.saturating_sub(1 + rng.below(BLOCK) as u64),
                    1 => size.saturating_add(1 + rng.below(2 * BLOCK) as u64),
                    2 => 0,
                    _ => size,
                };
                resize(&mut member.data, size, rng);
                if rng.one_in(2) {
                    layout::set_number(&mut member.header[SIZE], size);
                    layout::set_checksum(&mut member.header);
                }
            }
            4 if n >= 1 => {
                // A non-zero byte in the padding, or anywhere in the data.
                let member = &mut tar.members[rng.below(n)];
                if !member.data.is_empty() {
                    let at = if rng.one_in(2) { member.data.len() - 1 } else { rng.below(member.data.len()) };
                    member.data[at] ^= 1 << rng.below(8);
                }
            }
            5 => match rng.below(4) {
                0 => tar.end.clear(),
                1 => tar.end.truncate(BLOCK),
                2 => tar.end.extend_from_slice(&[0; BLOCK]),
                _ => tar.end.push(rng.byte()),
            },
            6 if n >= 1 => {
                // An early end-of-archive block.
                let at = rng.below(n);
                tar.members.insert(at, Member { header: [0; BLOCK], data: Vec::new() });
            }
            _ => {
                let member = new_member(rng);
                tar.members.insert(rng.below(n + 1), member);
            }
        }
        self.tar_changed = true;
    }

    /// The envelope's bytes and the padding after it in frame 1.
    fn frame1_layout(&mut self, rng: &mut Rng) {
        match rng.below(5) {
            0 => {
                self.plan.padding_follows = false;
                match rng.below(3) {
                    0 => self.padding.clear(),
                    1 => self.padding.extend_from_slice(&[0; BLOCK]),
                    _ => self.padding.push(1),
                }
            }
            1 => {
                // Bytes after the member, inside frame 1: a second member, or garbage.
                self.plan.padding_follows = false;
                let member = new_member(rng);
                self.padding.extend_from_slice(&member.header);
                self.padding.extend_from_slice(&member.data);
            }
            2 => {
                self.plan.header_follows = rng.one_in(2);
                let cut = rng.below(self.envelope.len() + 1);
                self.envelope.truncate(cut);
                self.payload = None;
                self.plan.resign = false;
            }
            3 => self.plan.signatures = rng.below(3),
            _ => {
                self.plan.header_follows = false;
                let size = layout::field_number(&self.header[SIZE]).unwrap_or(0);
                let size = if rng.one_in(2) { size.saturating_add(1) } else { size.saturating_sub(1) };
                layout::set_number(&mut self.header[SIZE], size);
            }
        }
    }

    /// How frame 1 is encoded: block sizes, declared size, header bytes, where it ends.
    fn frame1_encoding(&mut self, rng: &mut Rng) {
        let p = &mut self.plan;
        match rng.below(6) {
            0 => p.raw_block = *rng.pick(&[1, BLOCK, BLOCK + 1, 4096, (128 << 10) + 1, 1 << 21]),
            1 => p.declared_delta = *rng.pick(&[-1, 1, -512, 512, i64::from(u32::MAX), -(1 << 40)]),
            2 => p.frame_header_byte = Some((rng.below(12), rng.byte())),
            3 => p.frame1_compressed = true,
            4 => p.frame1_cut = 1 + rng.below(BLOCK),
            _ => {
                let n = 1 + rng.below(16);
                p.between_frames = random_bytes(rng, n);
            }
        }
    }

    /// How frame 2 is compressed, and its compressed bytes.
    fn blob_frame_encoding(&mut self, rng: &mut Rng) {
        let p = &mut self.plan;
        self.tar_changed = true;
        match rng.below(8) {
            0 => p.level = *rng.pick(&[-5, 1, 19]),
            1 => p.zstd_checksum = false,
            2 => p.content_size = true,
            3 => p.split_at = Some(rng.below(1 << 14)),
            4 => p.blob_frame_edits.push(ByteEdit::Truncate(rng.below(64))),
            5 => p.blob_frame_edits.push(ByteEdit::Flip(rng.next_u64() as usize, 1 << rng.below(8))),
            6 => p.blob_frame_edits.push(ByteEdit::Append(random_append(rng))),
            _ => p.blob_frame_edits.push(ByteEdit::Prepend(layout::skippable_frame(&random_bytes(rng, 4)))),
        }
    }

    fn seal(&mut self, rng: &mut Rng) {
        let s = &mut self.plan.seal;
        match rng.below(8) {
            0 => s.keep_old = true,
            1 => s.missing = true,
            2 => s.volume_delta = *rng.pick(&[1, u32::MAX, 10_000]),
            3 => s.format = *rng.pick(&[0, 2, u32::MAX]),
            4 => s.frame_size_delta = *rng.pick(&[-1, 1, 1 << 40]),
            5 => s.stale_digest = true,
            6 => s.declared_delta = *rng.pick(&[-1, 1, -8, i64::from(u32::MAX)]),
            _ => s.after = random_append(rng),
        }
    }

    /// The manifest's blob table, volume counts and entries: what a
    /// trusted but hostile signer writes (re-signed, so it gets past the signature).
    fn manifest(&mut self, rng: &mut Rng) {
        let decoded = self.payload.as_deref().and_then(|p| Manifest::decode(p, self.segments.as_deref(), &airlock::manifest::segments::NoSegments).ok());
        let Some(mut m) = decoded else { return };
        let nb = m.blobs.len();
        let ne = m.entries.len();
        match rng.below(9) {
            0 if nb > 0 => {
                let b = &mut m.blobs[rng.below(nb)];
                b.size = *rng.pick(&[0, b.size.saturating_add(1), b.size.saturating_sub(1), u64::MAX, 1 << 40]);
            }
            1 if nb > 0 => m.blobs[rng.below(nb)].volume = *rng.pick(&[1, u32::MAX]),
            2 if nb > 0 => m.blobs[rng.below(nb)].carried = false,
            3 if nb > 1 => {
                let (a, b) = (rng.below(nb), rng.below(nb));
                let id = m.blobs[a].id;
                m.blobs[a].id = m.blobs[b].id;
                m.blobs[b].id = id;
            }
            4 if nb > 0 => {
                let copy = m.blobs[rng.below(nb)].clone();
                m.blobs.push(copy);
            }
            5 if nb > 0 => {
                m.blobs.remove(rng.below(nb));
            }
            6 => m.volumes = *rng.pick(&[0, 2, 3, u32::MAX]),
            7 => m.parity = *rng.pick(&[1, 2]),
            _ if ne > 0 => {
                let e = &mut m.entries.decoded_mut()[rng.below(ne)];
                e.size = *rng.pick(&[0, e.size.saturating_add(1), u64::MAX]);
            }
            _ => {}
        }
        // In the manifest's own format: a format 2 root with its new segments.
        if let Ok((bytes, segments)) = m.encode() {
            self.payload = Some(bytes);
            self.segments = segments;
        }
    }

    /// libFuzzer's byte mutations on the manifest (then re-signed) or on the envelope (then not).
    fn raw_bytes(&mut self, rng: &mut Rng, bytes: ByteMutator) {
        let target = match &mut self.payload {
            Some(payload) if rng.one_in(2) => payload,
            _ => {
                self.plan.resign = false;
                self.plan.header_follows = rng.one_in(2);
                &mut self.envelope
            }
        };
        let len = target.len();
        target.resize(len + 64, 0);
        let max = target.len();
        let n = bytes(target, len, max);
        target.truncate(n);
    }

    /// Every name in the volume, for names copied from one member to another.
    fn names(&self) -> Vec<Vec<u8>> {
        let mut names = vec![layout::name(&self.header).to_vec()];
        if let Some(tar) = &self.tar {
            names.extend(tar.members.iter().map(|m| layout::name(&m.header).to_vec()));
        }
        names
    }

    fn encode(mut self, rng: &mut Rng) -> Vec<u8> {
        let keys: Vec<_> = std::iter::repeat_n(crate::key().clone(), self.plan.signatures).collect();
        if self.plan.resign
            && let Some(payload) = &self.payload
            && let Ok(envelope) = envelope::seal(payload, &keys, envelope::MANIFEST)
        {
            self.envelope = envelope;
        }
        let frame1 = self.encode_frame1();
        let blob_frame = self.encode_blob_frame();
        let seal = self.encode_seal(&blob_frame, &keys, rng);
        let mut out = frame1;
        out.extend_from_slice(&self.plan.between_frames);
        out.extend_from_slice(&blob_frame);
        out.extend_from_slice(&seal);
        out
    }

    fn encode_frame1(&mut self) -> Vec<u8> {
        let p = &self.plan;
        if p.header_follows {
            layout::set_number(&mut self.header[SIZE], self.envelope.len() as u64);
        }
        if p.padding_follows {
            self.padding = vec![0; self.envelope.len().next_multiple_of(BLOCK) - self.envelope.len()];
        }
        finish_header_plain(&mut self.header, p.checksum);
        let mut content = self.header.to_vec();
        content.extend_from_slice(&self.envelope);
        content.extend_from_slice(&self.padding);
        if let Some(segments) = &self.segments
            && let Some(header) =
                airlock::bundle::member_header(airlock::bundle::SEGMENTS_MEMBER, segments.len() as u64)
        {
            content.extend_from_slice(header.as_bytes());
            content.extend_from_slice(segments);
            content.resize(content.len().next_multiple_of(BLOCK), 0);
        }
        let mut frame = if p.frame1_compressed {
            layout::compress(&content, 3, false, true)
        } else {
            layout::raw_frame(&content, p.raw_block)
        };
        if p.declared_delta != 0 && frame.len() >= 9 {
            let declared = i64::from(u32::from_le_bytes(frame[5..9].try_into().expect("4 bytes")));
            let changed = (declared + p.declared_delta).clamp(0, i64::from(u32::MAX)) as u32;
            frame[5..9].copy_from_slice(&changed.to_le_bytes());
        }
        if let Some((at, byte)) = p.frame_header_byte
            && let Some(slot) = frame.get_mut(at)
        {
            *slot = byte;
        }
        frame.truncate(frame.len().saturating_sub(p.frame1_cut));
        frame
    }

    fn encode_blob_frame(&self) -> Vec<u8> {
        let p = &self.plan;
        let mut frame = match &self.tar {
            Some(tar) if self.tar_changed => {
                let bytes = tar.join();
                match p.split_at {
                    Some(at) => {
                        let at = at.min(bytes.len());
                        let mut two = layout::compress(&bytes[..at], p.level, p.zstd_checksum, p.content_size);
                        two.extend(layout::compress(&bytes[at..], p.level, p.zstd_checksum, p.content_size));
                        two
                    }
                    None => layout::compress(&bytes, p.level, p.zstd_checksum, p.content_size),
                }
            }
            _ => self.blob_frame.clone(),
        };
        for edit in &p.blob_frame_edits {
            match edit {
                ByteEdit::Truncate(n) => frame.truncate(frame.len().saturating_sub(*n)),
                ByteEdit::Flip(at, bit) => {
                    if !frame.is_empty() {
                        let at = at % frame.len();
                        frame[at] ^= bit;
                    }
                }
                ByteEdit::Append(bytes) => frame.extend_from_slice(bytes),
                ByteEdit::Prepend(bytes) => {
                    frame.splice(0..0, bytes.iter().copied());
                }
            }
        }
        frame
    }

    /// The seal over `blob_frame` as written, signed with `keys`, as its frame.
    fn encode_seal(&self, blob_frame: &[u8], keys: &[airlock::sign::SecretKey], rng: &mut Rng) -> Vec<u8> {
        let s = &self.plan.seal;
        if s.missing {
            return s.after.clone();
        }
        let content = match (&self.old_seal, &self.payload) {
            (Some(old), _) if s.keep_old => old.clone(),
            (_, Some(payload)) => {
                let (digest_of, size) = if s.stale_digest {
                    (&self.blob_frame[..], self.blob_frame.len())
                } else {
                    (blob_frame, blob_frame.len())
                };
                let seal = VolumeSeal {
                    format: s.format,
                    manifest: ContentId::of(payload),
                    volume: self.volume_index.wrapping_add(s.volume_delta),
                    frame: ContentId::of(digest_of),
                    frame_size: (size as i64).saturating_add(s.frame_size_delta).max(0) as u64,
                };
                let bytes = canonical::to_vec(&seal).expect("a seal encodes");
                envelope::seal(&bytes, keys, envelope::VOLUME_SEAL).expect("sealing in memory")
            }
            (Some(old), None) => old.clone(),
            (None, None) => random_bytes(rng, 8),
        };
        let mut frame = layout::skippable_frame(&content);
        if s.declared_delta != 0 {
            let declared = i64::from(u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes")));
            let changed = (declared + s.declared_delta).clamp(0, i64::from(u32::MAX)) as u32;
            frame[4..8].copy_from_slice(&changed.to_le_bytes());
        }
        frame.extend_from_slice(&s.after);
        frame
    }
}

/// What follows the envelope in frame 1: its padding, then (format 2) the
/// segments member's data when a member of that name and a fitting size is there.
fn split_segments(after: &[u8], envelope_len: usize) -> (&[u8], Option<Vec<u8>>) {
    let pad = (envelope_len.next_multiple_of(BLOCK) - envelope_len).min(after.len());
    let (padding, rest) = after.split_at(pad);
    let header: Option<&[u8; BLOCK]> = rest.get(..BLOCK).and_then(|h| h.try_into().ok());
    let header = header.filter(|h| layout::name(h) == b"manifest.segments");
    let size = header.and_then(|h| layout::field_number(&h[SIZE])).and_then(|n| usize::try_from(n).ok());
    // A declared size is any 12 octal digits' worth: never trusted in arithmetic.
    match size.and_then(|n| BLOCK.checked_add(n)).and_then(|end| rest.get(BLOCK..end)) {
        Some(data) => (padding, Some(data.to_vec())),
        None => (after, None),
    }
}

fn checksum_choice(rng: &mut Rng) -> Checksum {
    match rng.below(16) {
        0 | 1 => Checksum::Stale,
        2 => Checksum::Garbage,
        _ => Checksum::Fix,
    }
}

fn finish_header(header: &mut [u8; BLOCK], checksum: Checksum, rng: &mut Rng) {
    finish_header_plain(header, checksum);
    if checksum == Checksum::Garbage {
        header[layout::CHECKSUM.start + rng.below(8)] = rng.byte();
    }
}

fn finish_header_plain(header: &mut [u8; BLOCK], checksum: Checksum) {
    match checksum {
        Checksum::Fix => layout::set_checksum(header),
        Checksum::Stale => {}
        Checksum::Garbage => layout::set_number(&mut header[layout::CHECKSUM], 0o7777777),
    }
}

/// Changes one field of a tar header; returns the new size when the size changed.
fn mutate_header(header: &mut [u8; BLOCK], rng: &mut Rng, names: &[Vec<u8>]) -> Option<u64> {
    match rng.below(100) {
        0..50 => {
            let name = mutate_name(layout::name(header), rng, names);
            layout::set_name(header, &name);
            None
        }
        50..65 => {
            let old = layout::field_number(&header[SIZE]).unwrap_or(0);
            let size = match rng.below(8) {
                0 => 0,
                1 => old.saturating_add(1),
                2 => old.saturating_sub(1),
                3 => old.saturating_add(BLOCK as u64),
                4 => (1 << 33) - 1,
                5 => 1 << 33,
                6 => u64::MAX,
                _ => rng.next_u64() % (1 << 20),
            };
            if rng.one_in(8) {
                // Not a number at all: digits 8 and 9, spaces.
                header[SIZE.start + rng.below(11)] = *rng.pick(b"89 \xff");
            } else {
                layout::set_number(&mut header[SIZE], size);
            }
            Some(size)
        }
        65..75 => {
            header[TYPE] = *rng.pick(TYPE_FLAGS);
            if header[TYPE] == b'1' || header[TYPE] == b'2' {
                let target = *rng.pick(&[&b"../../etc/passwd"[..], b"/etc/passwd", b"manifest.cose", b"blobs"]);
                header[LINK_NAME].fill(0);
                header[LINK_NAME.start..LINK_NAME.start + target.len()].copy_from_slice(target);
            }
            None
        }
        75..85 => {
            let field = rng.pick(&[MODE, UID, GID, MTIME]).clone();
            let random = rng.next_u64();
            let value = *rng.pick(&[0o755, 0o4755, 0o777, 1, 1000, 0o644, random]);
            layout::set_number(&mut header[field], value);
            None
        }
        85..89 => {
            let magic = *rng.pick(&[&b"ustar  \0"[..], b"\0\0\0\0\0\0\0\0", b"ustar\x0000", b"ustar\x0001"]);
            header[MAGIC.start..VERSION.end].copy_from_slice(magic);
            None
        }
        89..96 => {
            let field = rng.pick(&[LINK_NAME, OWNER_NAMES, DEVICE, PREFIX, NAME.end - 1..NAME.end]).clone();
            let token = *rng.pick(NAME_TOKENS);
            let at = field.start + rng.below(field.len().saturating_sub(token.len()) + 1);
            let end = (at + token.len()).min(field.end);
            header[at..end].copy_from_slice(&token[..end - at]);
            None
        }
        _ => {
            header[rng.below(BLOCK)] = rng.byte();
            None
        }
    }
}

/// A name with a token written over it, put into it or cut out of it, or another name altogether.
fn mutate_name(name: &[u8], rng: &mut Rng, names: &[Vec<u8>]) -> Vec<u8> {
    let mut name = name.to_vec();
    let token = *rng.pick(NAME_TOKENS);
    match rng.below(8) {
        // Over the name, keeping its length (a 70-byte blob name stays 70 bytes).
        0 | 1 if name.len() >= token.len() => {
            let at = rng.below(name.len() - token.len() + 1);
            name[at..at + token.len()].copy_from_slice(token);
        }
        2 => {
            let at = rng.below(name.len() + 1);
            name.splice(at..at, token.iter().copied());
        }
        3 if !name.is_empty() => {
            let at = rng.below(name.len());
            let end = (at + 1 + rng.below(4)).min(name.len());
            name.drain(at..end);
        }
        4 => name = rng.pick(names).clone(),
        5 => name = rng.pick(KNOWN_NAMES).to_vec(),
        6 => {
            let hex_len = *rng.pick(&[64, 63, 65, 94, 128]);
            name = b"blobs/".to_vec();
            name.extend((0..hex_len).map(|_| *rng.pick(b"0123456789abcdef")));
        }
        _ if !name.is_empty() => {
            let at = rng.below(name.len());
            name[at] = if rng.one_in(2) { name[at].to_ascii_uppercase() } else { rng.byte() };
        }
        _ => name.push(rng.byte()),
    }
    name
}

/// `data` made `size` bytes long with its padding, or not padded, or padded with garbage.
fn resize(data: &mut Vec<u8>, size: u64, rng: &mut Rng) {
    let size = usize::try_from(size).unwrap_or(usize::MAX).min(1 << 20);
    data.resize(size, 0);
    match rng.below(4) {
        0 => {}
        1 => data.push(rng.byte()),
        _ => data.resize(size.next_multiple_of(BLOCK), 0),
    }
}

/// A member no exporter writes: a link, a folder, a pax or GNU record, a
/// `volume.cbor` or `parity.bin` out of place.
fn new_member(rng: &mut Rng) -> Member {
    let name = *rng.pick(&[&b"volume.cbor"[..], b"parity.bin", b"blobs/../../x", b"blobs", b"././@LongLink"]);
    // Built from an accepted header by hand: the library's own builder refuses `..`.
    let mut header =
        *airlock::bundle::member_header(airlock::bundle::VOLUME_MEMBER, 0).expect("a member name").as_bytes();
    layout::set_name(&mut header, name);
    let n = rng.below(40);
    let data = if rng.one_in(2) { vec![0xa0] } else { random_bytes(rng, n) };
    layout::set_number(&mut header[SIZE], data.len() as u64);
    header[TYPE] = *rng.pick(b"0125xgL");
    layout::set_checksum(&mut header);
    let mut padded = data;
    padded.resize(padded.len().next_multiple_of(BLOCK), 0);
    Member { header, data: padded }
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.byte()).collect()
}

/// Something after a frame: zeros, garbage, an empty skippable frame, another zstd frame.
fn random_append(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => vec![0; 1 + rng.below(BLOCK)],
        1 => {
            let n = 1 + rng.below(16);
            random_bytes(rng, n)
        }
        2 => layout::skippable_frame(&[]),
        _ => layout::compress(&[0; 2 * BLOCK], 3, true, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segments_header_declaring_any_size_is_taken_apart_without_panicking() {
        let envelope_len = 10;
        let mut after = vec![0u8; BLOCK - envelope_len];
        let mut header = [0u8; BLOCK];
        header[..17].copy_from_slice(b"manifest.segments");
        // Binary: near 2^64, where data end = header + size overflows; then octal 3.
        let binary = [0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0];
        for size in [&binary, b"00000000003\0"] {
            header[SIZE].copy_from_slice(size);
            let mut bytes = after.clone();
            bytes.extend_from_slice(&header);
            bytes.extend_from_slice(b"abc");
            let (_, segments) = split_segments(&bytes, envelope_len);
            assert_eq!(segments.is_some(), size[0] == b'0');
        }
        after.clear();
        assert_eq!(split_segments(&after, envelope_len).1, None);
    }
}
