//! `--split`: planning which volume carries each blob, writing the folder of
//! volumes, and the parity volumes over them.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read as _};
use std::path::{Path, PathBuf};

use super::checks::check_replaceable_bundle;
use super::manifest::{encode_volume_seal, envelope_len, seal_volume};
use super::volume::{
    VolumeContents, changed_while_exported, fill_volume, out_dir, pieces_with_sources, start_volume, with_sources,
};
use super::{ExportOptions, Split};
use crate::bundle::split::{self, Budget, Placement};
use crate::bundle::writer::{BlobFrame, VolumeWriter, write_seal};
use crate::bundle::{ManifestFrame, PARITY_MEMBER, ParityInfo, VOLUME_MEMBER, VolumeInfo, parity, volume_file_name};
use crate::error::{Error, IoContext, Result};
use crate::id::ContentId;
use crate::manifest::{Manifest, Piece, canonical};
use crate::progress::{Progress, ProgressReader};
use crate::sign::{OperatorKey, envelope};

/// Decides which data volume carries each blob so that no volume exceeds
/// `split.size`, cutting a blob larger than a volume into pieces (each
/// hashed here, from `sources`, so that the manifest authenticates every
/// piece on its own), and records it in the manifest (with the parity count).
pub(super) fn plan_volumes(
    manifest: &mut Manifest,
    split: &Split,
    keys: &[OperatorKey],
    sources: &[PathBuf],
    progress: &dyn Progress,
) -> Result<Budget> {
    // The envelope as it is now, with every blob in volume 0; the final one
    // is larger by at most 2 bytes per blob (volume numbers below 65536) and
    // the `volumes` and `parity` fields, and by the pieces of chunked blobs
    // (`reserve`, worked out from a first packing: none without them, so
    // a bundle without chunked blobs is planned exactly as before).
    let envelope = envelope_len(manifest, keys)? + 2 * manifest.blobs.len() as u64 + 32;
    // Worked out, not signed: a token key should sign only what is written.
    let largest_seal =
        encode_volume_seal(ContentId([0; 32]), u32::MAX, BlobFrame { digest: ContentId([0; 32]), size: u64::MAX })?;
    let largest_seal_len = envelope::sealed_len(largest_seal.len() as u64, keys, envelope::VOLUME_SEAL)?;
    let sizes: Vec<u64> = manifest.blobs.iter().filter(|b| b.carried).map(|b| b.size).collect();
    let mut reserve = 0u64;
    let (budget, placements, count) = loop {
        let pieces_bound = sizes.iter().map(|s| s / (split.size / 2).max(1) + 2).sum::<u64>();
        let most_volumes =
            (manifest.blobs.len() as u64 + 1 + pieces_bound).min(u64::from(crate::manifest::MAX_VOLUMES));
        let budget = Budget {
            split: split.size,
            manifest_frame: split::manifest_frame_len(envelope + reserve),
            seal_frame: 8 + largest_seal_len,
            info_member: split::member_len(MAX_DATA_INFO),
            parity: split.parity,
            parity_info_member: split::member_len(MAX_DATA_INFO + 16 + 9 * most_volumes),
        };
        let (placements, count) = split::pack(&sizes, &budget).map_err(|no_room| {
            Error::Usage(format!(
                "--split {} leaves no room for blobs beside the manifest every volume repeats; the smallest --split that does is {} ({} bytes)",
                split.size,
                human_size(no_room.smallest_split),
                no_room.smallest_split
            ))
        })?;
        let needed: u64 = placements
            .iter()
            .map(|p| match p {
                Placement::Whole(_) => 0,
                Placement::Pieces(pieces) => PIECES_FIELD + PIECE_BYTES * pieces.len() as u64,
            })
            .sum();
        if needed <= reserve {
            break (budget, placements, count);
        }
        reserve = needed + needed / 8;
    };
    if count + split.parity > crate::manifest::MAX_VOLUMES || !parity::supported(count, split.parity.max(1)) {
        return Err(Error::Usage(format!(
            "--split {} makes {count} data volumes and --parity {} more: too many; choose a larger --split",
            split.size, split.parity
        )));
    }
    let carried = manifest.blobs.iter_mut().zip(sources).filter(|(b, _)| b.carried);
    for ((blob, source), placement) in carried.zip(placements) {
        match placement {
            Placement::Whole(volume) => blob.volume = volume,
            Placement::Pieces(pieces) => {
                blob.volume = pieces[0].0;
                blob.pieces = hash_pieces(source, blob.size, &pieces, progress)?;
            }
        }
    }
    manifest.volumes = count;
    manifest.parity = split.parity;
    Ok(budget)
}

/// Most bytes one piece adds to the manifest: a map of `id` (32-byte
/// string), `size` (up to a 9-byte integer) and `volume` (up to 5).
const PIECE_BYTES: u64 = 1 + 3 + 34 + 5 + 9 + 7 + 5;
/// The `pieces` key and the array's head.
const PIECES_FIELD: u64 = 7 + 9;

/// The BLAKE3 of each piece of the file `source`, read once in order.
fn hash_pieces(source: &Path, size: u64, pieces: &[(u32, u64)], progress: &dyn Progress) -> Result<Vec<Piece>> {
    let file = File::open(source).map_err(|e| Error::input(source, "file", &e))?;
    let changed = || changed_while_exported(source);
    if file.metadata().at(source)?.len() != size {
        return Err(changed());
    }
    progress.start("hashing pieces", size);
    let mut reader = ProgressReader { inner: BufReader::with_capacity(1 << 20, file), progress };
    let mut out = Vec::with_capacity(pieces.len());
    for (volume, len) in pieces {
        let mut hasher = blake3::Hasher::new();
        let copied = std::io::copy(&mut (&mut reader).take(*len), &mut hasher).at(source)?;
        if copied != *len {
            return Err(changed());
        }
        out.push(Piece { id: ContentId(*hasher.finalize().as_bytes()), size: *len, volume: *volume });
    }
    progress.finish();
    Ok(out)
}

/// Largest `volume.cbor` of a data volume: `{"volume": u32}`.
const MAX_DATA_INFO: u64 = 16;

/// `1536 KiB`, `3 MiB`: a size in the largest binary unit that divides it.
fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}")
}

/// Writes the folder of volumes: into a temporary folder beside `out`,
/// every file made durable, then renamed into place; returns the bytes written.
pub(super) fn write_split(
    options: &ExportOptions,
    manifest: &Manifest,
    manifest_digest: ContentId,
    sealed: &ManifestFrame,
    sources: &[PathBuf],
    budget: &Budget,
    progress: &dyn Progress,
) -> Result<u64> {
    let out = &options.out;
    let parent = out_dir(out)?;
    let tmp = tempfile::Builder::new().prefix(".airlock-export-").tempdir_in(parent).at(parent)?;
    let (data, parity) = (manifest.volumes, manifest.parity);
    let mut paths = Vec::new();
    progress.start("writing", manifest.carried_bytes());
    for index in 0..data {
        let path = tmp.path().join(volume_file_name(index, data, parity));
        let file = File::create(&path).at(&path)?;
        let info = VolumeInfo { volume: index, parity: None };
        let info = canonical::to_vec(&info).map_err(|e| Error::Usage(format!("cannot encode {VOLUME_MEMBER}: {e}")))?;
        let blobs = with_sources(manifest, sources, |b| b.carried && !b.is_chunked() && b.volume == index);
        let pieces = pieces_with_sources(manifest, sources, index);
        let contents = VolumeContents { index, info: Some(info), blobs, pieces };
        let writer = start_volume(&file, &path, sealed, options.threads)?;
        fill_volume(writer, &file, &path, options, manifest_digest, &contents, progress)?;
        check_volume_size(&path, budget.data_limit())?;
        paths.push(path);
    }
    progress.finish();
    if parity > 0 {
        write_parity(tmp.path(), &paths, options, manifest_digest, sealed, budget, progress)?;
    }
    let mut total = 0;
    for entry in std::fs::read_dir(tmp.path()).at(tmp.path())? {
        let path = entry.at(tmp.path())?.path();
        total += std::fs::metadata(&path).at(&path)?.len();
        crate::durable::set_mode(&path, 0o644).at(&path)?;
    }
    crate::durable::set_mode(tmp.path(), 0o755).at(tmp.path())?;
    crate::durable::sync_dir(tmp.path())?;
    let written = tmp.keep();
    replace_with(&written, out, options.force)?;
    crate::durable::sync_dir(parent)?;
    Ok(total)
}

/// Moves the finished folder `written` to `out`, replacing what `--force`
/// allows to replace: checked again, as the export may have taken hours,
/// and removed volume by volume, so that a file put there since stays.
fn replace_with(written: &Path, out: &Path, force: bool) -> Result<()> {
    if let Ok(meta) = out.symlink_metadata() {
        if !force {
            return Err(Error::Usage(format!(
                "{}: appeared while the bundle was written; it is kept in {}",
                out.display(),
                written.display()
            )));
        }
        check_replaceable_bundle(out)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(out).at(out)? {
                let path = entry.at(out)?.path();
                if path.file_name().and_then(|n| n.to_str()).is_some_and(split::is_volume_file_name) {
                    std::fs::remove_file(&path).at(&path)?;
                }
            }
            std::fs::remove_dir(out).at(out)?;
        } else {
            std::fs::remove_file(out).at(out)?;
        }
    }
    std::fs::rename(written, out).at(out)
}

/// The packing guarantees the limit; this catches a mistake in it before a medium does.
fn check_volume_size(path: &Path, limit: u64) -> Result<()> {
    let size = std::fs::metadata(path).at(path)?.len();
    if size > limit {
        return Err(Error::Usage(format!(
            "{}: came out at {size} bytes, over the {limit}-byte limit; this is a bug in airlock, please report it",
            path.display()
        )));
    }
    Ok(())
}

/// Writes the parity volumes over the data volume files `data`.
fn write_parity(
    dir: &Path,
    data: &[PathBuf],
    options: &ExportOptions,
    manifest_digest: ContentId,
    sealed: &ManifestFrame,
    budget: &Budget,
    progress: &dyn Progress,
) -> Result<()> {
    let count = u32::try_from(data.len()).expect("volume counts fit u32");
    let sizes = data.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).at(p)).collect::<Result<Vec<_>>>()?;
    let info = ParityInfo { stripe: u32::try_from(budget.stripe()).expect("stripes are at most 64 KiB"), sizes };
    let parity = budget.parity;
    let mut volumes = Vec::new();
    for k in 0..parity {
        let index = count + k;
        let path = dir.join(volume_file_name(index, count, parity));
        let file = File::create(&path).at(&path)?;
        // Recovery bytes do not compress: no worker threads for them.
        let mut writer = VolumeWriter::new(BufWriter::with_capacity(1 << 20, file), sealed, 0).at(&path)?;
        let volume_info = VolumeInfo { volume: index, parity: Some(info.clone()) };
        let bytes =
            canonical::to_vec(&volume_info).map_err(|e| Error::Usage(format!("cannot encode {VOLUME_MEMBER}: {e}")))?;
        writer.write_info(&bytes).at(&path)?;
        writer.begin_member(PARITY_MEMBER, info.member_size()).at(&path)?;
        volumes.push((index, path, writer));
    }
    progress.start("parity", info.member_size() * u64::from(count));
    let dir_name = dir.to_path_buf();
    parity::encode(data, &info, parity, |k, bytes| {
        progress.advance(bytes.len() as u64 * u64::from(count));
        volumes[k].2.write_data(bytes)
    })
    .at(&dir_name)?;
    progress.finish();
    for (index, path, mut writer) in volumes {
        writer.end_member(info.member_size()).at(&path)?;
        let (mut out, frame) = writer.finish().at(&path)?;
        let seal = seal_volume(&options.keys, manifest_digest, index, frame)?;
        write_seal(&mut out, &seal).and_then(|()| std::io::Write::flush(&mut out)).at(&path)?;
        let file = out.into_inner().map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().at(&path)?;
        check_volume_size(&path, budget.split)?;
    }
    Ok(())
}
