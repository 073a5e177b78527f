//! Parity volumes: Reed-Solomon recovery bytes over the data volume files,
//! so that any N lost or damaged data volumes of a set with N parity
//! volumes can be rebuilt byte for byte and then verified by their own seal.
//!
//! The code works in stripes: stripe `i` takes bytes `i*S .. (i+1)*S` of
//! every data volume file (zero past a file's end) as the original shards
//! and yields one recovery shard per parity volume, which that parity
//! volume's `parity.bin` member holds at offset `i*S`. Encoding and
//! rebuilding read the files in step, so memory stays at one stripe per
//! volume whatever the volume size.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::bundle::ParityInfo;
use crate::bundle::reader::{Member, VolumeReader};
use crate::error::{Error, Rejection, Result};

/// Whether `data` data volumes can have `parity` parity volumes.
#[must_use]
pub fn supported(data: u32, parity: u32) -> bool {
    ReedSolomonEncoder::supports(data as usize, parity as usize)
}

/// Computes the recovery bytes over the data volume files `data`, stripe by
/// stripe, handing parity volume `k`'s share of each stripe to `out(k, bytes)`.
pub fn encode(
    data: &[PathBuf],
    info: &ParityInfo,
    parity: u32,
    mut out: impl FnMut(usize, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let stripe = info.stripe as usize;
    let mut readers = data.iter().map(|p| File::open(p).map(padded)).collect::<io::Result<Vec<_>>>()?;
    let mut shard = vec![0u8; stripe];
    let mut encoder = ReedSolomonEncoder::new(data.len(), parity as usize, stripe).map_err(io::Error::other)?;
    for _ in 0..info.stripes() {
        for reader in &mut readers {
            reader.read_exact(&mut shard)?;
            encoder.add_original_shard(&shard).map_err(io::Error::other)?;
        }
        let result = encoder.encode().map_err(io::Error::other)?;
        for (k, recovery) in result.recovery_iter().enumerate() {
            out(k, recovery)?;
        }
    }
    Ok(())
}

/// A file followed by zeros for ever (stripes past its end).
fn padded(file: File) -> impl Read {
    BufReader::with_capacity(1 << 16, file).chain(io::repeat(0))
}

/// The bytes of one missing data volume, rebuilt from the other data
/// volumes and enough parity volumes. The caller verifies the result like
/// any volume read from a medium: its manifest, blobs and own seal.
pub struct Rebuild {
    target: usize,
    /// Bytes of the target still to hand out.
    remaining: u64,
    data: Vec<(usize, Box<dyn Read>)>,
    parity: Vec<(usize, VolumeReader<File>)>,
    decoder: ReedSolomonDecoder,
    shard: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
}

impl Rebuild {
    /// Rebuilds data volume `target` from the data volumes `data` and the
    /// parity volumes `parity` (each with its index in the set; parity
    /// volumes verified already, so their `info` is the one they sealed) of
    /// a set with `parity_count` parity volumes.
    pub fn new(
        target: u32,
        info: &ParityInfo,
        parity_count: u32,
        data: &[(u32, PathBuf)],
        parity: &[(u32, PathBuf)],
    ) -> Result<Self> {
        let count = info.sizes.len();
        let first_parity = u32::try_from(count).expect("volume counts fit u32");
        let needed = count - data.len();
        if parity.len() < needed {
            return Err(Error::Usage(format!(
                "rebuilding volume {} needs {needed} parity volume(s), {} given",
                target + 1,
                parity.len()
            )));
        }
        let mut readers: Vec<(usize, Box<dyn Read>)> = Vec::with_capacity(data.len());
        for (index, path) in data {
            let file = File::open(path).map_err(|e| Error::input(path, "volume", &e))?;
            let len = file.metadata().map_err(|e| Error::input(path, "volume", &e))?.len();
            let expected = info.sizes[*index as usize];
            if len != expected {
                return Err(Error::rejected(
                    path.display(),
                    Rejection::Truncated(format!("{len} bytes where the parity volumes record {expected}")),
                ));
            }
            readers.push((*index as usize, Box::new(padded(file))));
        }
        let mut sources = Vec::with_capacity(needed);
        for (index, path) in &parity[..needed] {
            sources.push(((index - first_parity) as usize, open_recovery(path, info)?));
        }
        let stripe = info.stripe as usize;
        let decoder = ReedSolomonDecoder::new(count, parity_count as usize, stripe)
            .map_err(|e| Error::Usage(format!("cannot rebuild volume {}: {e}", target + 1)))?;
        Ok(Rebuild {
            target: target as usize,
            remaining: info.sizes[target as usize],
            data: readers,
            parity: sources,
            decoder,
            shard: vec![0u8; stripe],
            out: Vec::with_capacity(stripe),
            pos: 0,
        })
    }

    /// Decodes the next stripe of the target into `out`.
    fn next_stripe(&mut self) -> io::Result<()> {
        for (index, reader) in &mut self.data {
            reader.read_exact(&mut self.shard)?;
            self.decoder.add_original_shard(*index, &self.shard).map_err(io::Error::other)?;
        }
        for (index, volume) in &mut self.parity {
            volume.read_data(&mut self.shard).map_err(io::Error::other)?;
            self.decoder.add_recovery_shard(*index, &self.shard).map_err(io::Error::other)?;
        }
        let result = self.decoder.decode().map_err(io::Error::other)?;
        let restored = result
            .restored_original(self.target)
            .ok_or_else(|| io::Error::other("the decoder did not restore the volume"))?;
        let take = (restored.len() as u64).min(self.remaining) as usize;
        self.out.clear();
        self.out.extend_from_slice(&restored[..take]);
        self.pos = 0;
        self.remaining -= take as u64;
        Ok(())
    }
}

impl Read for Rebuild {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.out.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            self.next_stripe()?;
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Opens a parity volume and positions it at its recovery bytes.
fn open_recovery(path: &Path, info: &ParityInfo) -> Result<VolumeReader<File>> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::input(path, "volume", &e))?;
    let (mut volume, _) = VolumeReader::open(file, &name)?;
    let wrong = || Error::rejected(&name, Rejection::Malformed("not the parity volume it was a moment ago".into()));
    let Member::Info { size } = volume.next_member()? else { return Err(wrong()) };
    if volume.read_info(size)?.parity.as_ref() != Some(info) {
        return Err(wrong());
    }
    match volume.next_member()? {
        Member::Parity { size } if size == info.member_size() => Ok(volume),
        _ => Err(wrong()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_one_lost_volume_is_rebuilt_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let contents: Vec<Vec<u8>> =
            [1000usize, 2600, 1, 1500].iter().map(|n| (0..*n).map(|i| (i * 31 % 251) as u8).collect()).collect();
        let paths: Vec<PathBuf> = contents
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let p = dir.path().join(format!("d{i}"));
                std::fs::write(&p, c).unwrap();
                p
            })
            .collect();
        let info = ParityInfo { stripe: 512, sizes: contents.iter().map(|c| c.len() as u64).collect() };
        let mut recovery = vec![Vec::new(); 2];
        encode(&paths, &info, 2, |k, bytes| {
            recovery[k].extend_from_slice(bytes);
            Ok(())
        })
        .unwrap();
        assert_eq!(recovery[0].len() as u64, info.member_size());
        // The decoder itself, without the volume framing around parity.bin.
        for lost in 0..contents.len() {
            let mut decoder = ReedSolomonDecoder::new(4, 2, 512).unwrap();
            let mut rebuilt = Vec::new();
            for stripe in 0..info.stripes() as usize {
                let range = stripe * 512..(stripe + 1) * 512;
                for (i, c) in contents.iter().enumerate().filter(|(i, _)| *i != lost) {
                    let mut shard = vec![0u8; 512];
                    let end = c.len().min(range.end);
                    if range.start < end {
                        shard[..end - range.start].copy_from_slice(&c[range.start..end]);
                    }
                    decoder.add_original_shard(i, &shard).unwrap();
                }
                decoder.add_recovery_shard(1, &recovery[1][range]).unwrap();
                rebuilt.extend_from_slice(decoder.decode().unwrap().restored_original(lost).unwrap());
            }
            rebuilt.truncate(contents[lost].len());
            assert_eq!(rebuilt, contents[lost], "volume {lost}");
        }
    }

    #[test]
    fn one_data_volume_can_have_parity() {
        assert!(supported(1, 1));
        assert!(supported(1, 3));
        assert!(supported(200, 10));
    }
}
