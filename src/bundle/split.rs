//! `export --split SIZE`: how large a volume may be, and which data volume
//! carries each blob.
//!
//! Blobs are packed in archive order, each volume taking blobs while an
//! upper bound of its size stays within the limit. The bound is exact for
//! the manifest and seal frames and uses zstd's worst case for frame 2
//! (incompressible data grows by at most 1/256 plus a few block headers),
//! so no volume can come out larger than SIZE, whatever compresses.
//! A blob that fits in a volume is never cut; one larger than a volume is
//! cut into pieces, one per volume, each authenticated on its own by the
//! manifest (`Blob::pieces`).

use crate::bundle::{BLOCK, padding};

/// Named media: the name, the bytes one volume may take, and why.
pub const MEDIA: [(&str, u64, &str); 3] = [
    ("fat32", 4_294_967_295, "the largest file FAT32 can hold, 4 GiB - 1"),
    (
        "dvd",
        4_691_984_384,
        "a single-layer DVD±R (2,295,104 sectors of 2048 bytes) less 8 MiB for the disc's file system",
    ),
    (
        "bd25",
        25_016_926_208,
        "a single-layer BD-R (12,219,392 sectors of 2048 bytes) less 8 MiB for the disc's file system",
    ),
];

/// Smallest `--split` accepted: below this the manifest alone fills a volume.
pub const MIN_SPLIT: u64 = 16 << 10;

/// Most bytes of one parity stripe per data volume (the memory a rebuild
/// holds is this times the number of volumes). The importer refuses a
/// parity volume that declares more.
pub const MAX_STRIPE: u64 = 64 << 10;

/// Whether `name` is a name the exporter gives a volume of a split bundle
/// (`volume-03-of-12.airlock`, `parity-1-of-2.airlock`, see
/// [`super::volume_file_name`]): what `--split --force` may replace.
#[must_use]
pub fn is_volume_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".airlock") else { return false };
    let parts: Vec<&str> = stem.split('-').collect();
    let [kind, number, "of", count] = parts[..] else { return false };
    let (Ok(number), Ok(count)) = (number.parse::<u32>(), count.parse::<u32>()) else { return false };
    if number == 0 || number > count {
        return false;
    }
    // The names are built from (data, parity) counts; only the kind's own count shows in them.
    let made = match kind {
        "volume" => super::volume_file_name(number - 1, count, 0),
        "parity" => super::volume_file_name(number - 1, 0, count),
        _ => return false,
    };
    made == name
}

/// Parses `4GiB`, `700MiB`, `100KiB`, `4GB`, `123456` (bytes) or a medium's
/// name; `4000M`, `64K`, `4G` are binary units, as GNU `split -b` reads them.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    if let Some((_, bytes, _)) = MEDIA.iter().find(|(name, _, _)| *name == lower) {
        return Ok(*bytes);
    }
    let bytes = parse_bytes(text).ok_or_else(|| size_help(text))?;
    if bytes < MIN_SPLIT {
        return Err(format!("{text:?} is smaller than the smallest volume, {} KiB", MIN_SPLIT >> 10));
    }
    Ok(bytes)
}

/// A number of bytes with an optional unit, as [`parse_size`] reads it
/// (without the media names and the smallest volume).
#[must_use]
pub fn parse_bytes(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.find(|c: char| !c.is_ascii_digit()).unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits);
    let unit_bytes: u64 = match unit.trim() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "tib" | "t" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return None,
    };
    number.parse::<u64>().ok().and_then(|n| n.checked_mul(unit_bytes))
}

fn size_help(text: &str) -> String {
    let media: Vec<&str> = MEDIA.iter().map(|(name, _, _)| *name).collect();
    format!("{text:?} is not a size: use e.g. 4GiB, 700MiB, 100KiB, 4GB, a number of bytes, or {}", media.join(", "))
}

/// zstd's worst case for `n` bytes of input (`ZSTD_COMPRESSBOUND`), plus
/// room for the frame header and checksum.
#[must_use]
pub fn compress_bound(n: u64) -> u64 {
    const BLOCK_MAX: u64 = 128 << 10;
    n + n / 256 + if n < BLOCK_MAX { (BLOCK_MAX - n) >> 11 } else { 0 } + 64
}

/// Bytes a member of `size` bytes takes in the tar stream.
#[must_use]
pub fn member_len(size: u64) -> u64 {
    BLOCK as u64 + size + padding(size)
}

/// Bytes of frame 1 holding a manifest envelope of `envelope` bytes.
#[must_use]
pub fn manifest_frame_len(envelope: u64) -> u64 {
    let member = member_len(envelope);
    // Magic, header and content size, then a 3-byte header per raw block of 128 KiB.
    9 + 3 * member.div_ceil(128 << 10) + member
}

/// What every volume of the set spends besides its members.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The largest a volume may be (`--split`).
    pub split: u64,
    /// Frame 1 (the signed manifest).
    pub manifest_frame: u64,
    /// The seal frame, at its largest.
    pub seal_frame: u64,
    /// The `volume.cbor` member of a data volume, at its largest.
    pub info_member: u64,
    /// Parity volumes to follow the data volumes.
    pub parity: u32,
    /// The `volume.cbor` member of a parity volume, at its largest.
    pub parity_info_member: u64,
}

impl Budget {
    /// Upper bound of a data volume whose blob members take `members` bytes.
    #[must_use]
    pub fn data_volume_bound(&self, members: u64) -> u64 {
        self.manifest_frame + compress_bound(self.info_member + members + 2 * BLOCK as u64) + self.seal_frame
    }

    /// Upper bound of a parity volume over data volumes of at most `largest` bytes.
    #[must_use]
    pub fn parity_volume_bound(&self, largest: u64) -> u64 {
        let stripe = self.stripe();
        let member = member_len(largest.div_ceil(stripe) * stripe);
        self.manifest_frame + compress_bound(self.parity_info_member + member + 2 * BLOCK as u64) + self.seal_frame
    }

    /// The largest a data volume may be: `split`, less what a parity volume
    /// needs beyond the data volume it covers, so parity volumes fit too.
    #[must_use]
    pub fn data_limit(&self) -> u64 {
        if self.parity == 0 {
            return self.split;
        }
        // parity_volume_bound grows by at most 1 + 1/256 per byte of `largest`: step down until it fits.
        let mut limit = self.split;
        while limit > 0 && self.parity_volume_bound(limit) > self.split {
            let over = self.parity_volume_bound(limit) - self.split;
            limit = limit.saturating_sub(over.max(1));
        }
        limit
    }

    /// Bytes each data volume contributes to one parity stripe: a 64th of
    /// the volume size, in whole tar blocks, at most 64 KiB.
    #[must_use]
    pub fn stripe(&self) -> u64 {
        (self.split / 64 / BLOCK as u64 * BLOCK as u64).clamp(BLOCK as u64, MAX_STRIPE)
    }
}

/// Where [`pack`] puts a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Whole, in this data volume.
    Whole(u32),
    /// Cut into pieces, one per volume in increasing order: (volume, bytes).
    Pieces(Vec<(u32, u64)>),
}

/// The volumes of the requested size have no room for a blob beside the
/// manifest (whose frame every volume repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    /// The smallest `--split` (in whole KiB) with room for a blob of
    /// [`MIN_PIECE`] bytes beside the manifest.
    pub smallest_split: u64,
}

/// The smallest piece a cut starts with in a volume that holds blobs
/// already (or an eighth of a volume, if less): below this the rest of the
/// volume is left empty and the blob starts a volume of its own (fewer,
/// larger pieces).
pub const MIN_PIECE: u64 = 64 << 10;

/// Assigns the blobs of `sizes` (archive order) to data volumes; returns
/// where each blob goes and the number of volumes (at least one). A blob
/// that fits in a volume is never cut, and blobs are packed as before
/// chunking existed (so such bundles keep their bytes); one larger than a
/// volume is cut: its first piece takes what the current volume has left
/// (unless that is little, see [`MIN_PIECE`]), the next ones a volume each, and
/// the blobs after it follow its last piece.
pub fn pack(sizes: &[u64], budget: &Budget) -> Result<(Vec<Placement>, u32), NoRoom> {
    let limit = budget.data_limit();
    let mut placements = Vec::with_capacity(sizes.len());
    let (mut current, mut used) = (0u32, 0u64);
    let empty_room = room(0, budget);
    for size in sizes {
        let member = member_len(*size);
        if budget.data_volume_bound(member) <= limit {
            if used > 0 && budget.data_volume_bound(used + member) > limit {
                current += 1;
                used = 0;
            }
            used += member;
            placements.push(Placement::Whole(current));
            continue;
        }
        if empty_room == 0 {
            return Err(NoRoom { smallest_split: smallest_split(member_len(MIN_PIECE), budget) });
        }
        let mut pieces = Vec::new();
        let mut left = *size;
        if used > 0 && room(used, budget) < MIN_PIECE.min(empty_room / 8) {
            current += 1;
            used = 0;
        }
        loop {
            let take = room(used, budget).min(left);
            pieces.push((current, take));
            used += member_len(take);
            left -= take;
            if left == 0 {
                break;
            }
            current += 1;
            used = 0;
        }
        placements.push(Placement::Pieces(pieces));
    }
    Ok((placements, current + 1))
}

/// The most bytes a piece may have in a data volume whose members take
/// `used` bytes already (0 when not even one byte fits).
#[must_use]
pub fn room(used: u64, budget: &Budget) -> u64 {
    let limit = budget.data_limit();
    let fits = |size: u64| budget.data_volume_bound(used.saturating_add(member_len(size))) <= limit;
    if !fits(1) {
        return 0;
    }
    let (mut low, mut high) = (1u64, limit);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if fits(mid) { low = mid } else { high = mid - 1 }
    }
    low
}

/// The smallest `--split` (rounded up to a KiB) whose volumes hold a blob member of `member` bytes.
fn smallest_split(member: u64, budget: &Budget) -> u64 {
    let fits = |split: u64| {
        let b = Budget { split, ..*budget };
        b.data_volume_bound(member) <= b.data_limit()
    };
    let mut high = budget.data_volume_bound(member).max(MIN_SPLIT);
    while !fits(high) {
        high = high.saturating_mul(2);
    }
    let mut low = MIN_SPLIT;
    while low < high {
        let mid = low + (high - low) / 2;
        if fits(mid) { high = mid } else { low = mid + 1 }
    }
    high.div_ceil(1024) * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(split: u64, parity: u32) -> Budget {
        Budget {
            split,
            manifest_frame: manifest_frame_len(3000),
            seal_frame: 200,
            info_member: member_len(16),
            parity,
            parity_info_member: member_len(100),
        }
    }

    #[test]
    fn volume_file_names_are_recognised_exactly() {
        for (index, data, parity) in [(0, 1, 0), (2, 12, 0), (11, 12, 3), (12, 12, 3), (14, 12, 3), (99, 100, 1)] {
            assert!(is_volume_file_name(&crate::bundle::volume_file_name(index, data, parity)));
        }
        for name in [
            "volume-3-of-12.airlock",
            "volume-00-of-12.airlock",
            "volume-13-of-12.airlock",
            "parity-1-of-1.airlock.bak",
            "volume-1-of-1",
            "thesis.pdf",
            "volume-1-of-1-x.airlock",
            "volume-+1-of-1.airlock",
        ] {
            assert!(!is_volume_file_name(name), "{name}");
        }
    }

    #[test]
    fn sizes_and_media_parse() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("700MiB").unwrap(), 700 << 20);
        assert_eq!(parse_size("100KiB").unwrap(), 100 << 10);
        assert_eq!(parse_size("4GB").unwrap(), 4_000_000_000);
        // GNU split's units: binary.
        assert_eq!(parse_size("4000M").unwrap(), 4000 << 20);
        assert!(parse_size("4000M").unwrap() <= parse_size("fat32").unwrap());
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("fat32").unwrap(), u64::from(u32::MAX));
        assert_eq!(parse_size("DVD").unwrap(), 4_691_984_384);
        assert!(parse_size("12 parsecs").unwrap_err().contains("not a size"));
        assert!(parse_size("1KiB").unwrap_err().contains("smallest"));
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    /// Member bytes per volume of a packing.
    fn members_per_volume(sizes: &[u64], placements: &[Placement], count: u32) -> Vec<u64> {
        let mut members = vec![0u64; count as usize];
        for (size, placement) in sizes.iter().zip(placements) {
            match placement {
                Placement::Whole(v) => members[*v as usize] += member_len(*size),
                Placement::Pieces(pieces) => {
                    assert!(pieces.len() >= 2);
                    assert_eq!(pieces.iter().map(|(_, s)| s).sum::<u64>(), *size);
                    assert!(pieces.windows(2).all(|w| w[0].0 < w[1].0), "one piece per volume, in order");
                    for (v, s) in pieces {
                        assert!(*s > 0);
                        members[*v as usize] += member_len(*s);
                    }
                }
            }
        }
        members
    }

    fn first_volume(placement: &Placement) -> u32 {
        match placement {
            Placement::Whole(v) => *v,
            Placement::Pieces(pieces) => pieces[0].0,
        }
    }

    #[test]
    fn packing_keeps_every_volume_within_the_limit() {
        let sizes: Vec<u64> = (0..200).map(|i| (i * 7919) % 30_000).collect();
        for parity in [0, 2] {
            let b = budget(100 << 10, parity);
            let (placements, count) = pack(&sizes, &b).unwrap();
            assert!(count > 1);
            assert!(placements.iter().all(|p| matches!(p, Placement::Whole(_))), "nothing is cut that fits");
            for (v, members) in members_per_volume(&sizes, &placements, count).into_iter().enumerate() {
                assert!(members > 0, "volume {v} is empty");
                assert!(b.data_volume_bound(members) <= b.data_limit());
            }
            if parity > 0 {
                assert!(b.parity_volume_bound(b.data_limit()) <= b.split);
            }
            // Archive order is kept: volume numbers never go down.
            assert!(placements.windows(2).all(|w| first_volume(&w[0]) <= first_volume(&w[1])));
        }
    }

    #[test]
    fn a_blob_larger_than_a_volume_is_cut_across_volumes_that_stay_within_the_limit() {
        for parity in [0, 1] {
            let b = budget(64 << 10, parity);
            let sizes = [10, 200_000, 10, 1_000_000, 30_000];
            let (placements, count) = pack(&sizes, &b).unwrap();
            assert_eq!(placements[0], Placement::Whole(0));
            assert!(matches!(placements[1], Placement::Pieces(_)));
            assert!(matches!(placements[3], Placement::Pieces(_)));
            for members in members_per_volume(&sizes, &placements, count) {
                assert!(members > 0 && b.data_volume_bound(members) <= b.data_limit());
            }
            // The first piece shares volume 0 with the small blob before it.
            let Placement::Pieces(pieces) = &placements[1] else { unreachable!() };
            assert_eq!(pieces[0].0, 0);
            assert!(placements.windows(2).all(|w| first_volume(&w[0]) <= first_volume(&w[1])));
        }
    }

    #[test]
    fn a_volume_with_no_room_beside_the_manifest_names_a_size_that_works() {
        let mut b = budget(MIN_SPLIT, 0);
        b.manifest_frame = MIN_SPLIT;
        let err = pack(&[100_000], &b).unwrap_err();
        let named = Budget { split: err.smallest_split, ..b };
        assert!(room(0, &named) >= MIN_PIECE);
        assert!(pack(&[100_000], &named).is_ok());
    }

    #[test]
    fn no_blobs_make_one_volume() {
        assert_eq!(pack(&[], &budget(1 << 20, 0)).unwrap(), (Vec::new(), 1));
    }
}
