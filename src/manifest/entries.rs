//! A manifest's entries: held decoded (what an exporter builds, a format 1
//! document, a test), or as the canonical bytes of their segments, each
//! decoded when it is read.
//!
//! A format 2 manifest is checked one segment at a time as it is decoded
//! ([`super::segments`]); what is kept of each is its bytes, in a
//! [`crate::sort::Spool`] (in memory up to a budget, beyond it in an
//! unnamed temporary file in `TMPDIR`), and where it starts. Decoded, an
//! entry of plain files is about 350 bytes and every command held all of
//! them; as bytes on disk they take no memory, and a reader holds the one
//! segment (about 32 entries) it is in. The bytes were checked against the
//! signed root and decoded once before they were spooled, so decoding them
//! again cannot fail but for the temporary file failing to read back.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::segments::Items;
use super::{Entry, canonical, lean_vec};
use crate::sort::{Spool, SpooledBytes};

/// What a spool of segments holds in memory before it spills to a file.
const SPOOL_BUDGET: usize = 1 << 20;

/// Segments kept decoded for lookups by index or place.
const RECENT_SEGMENTS: usize = 4;

/// The entries of a manifest, in order.
#[derive(Clone, Default)]
pub struct Entries(Store);

#[derive(Clone)]
enum Store {
    Decoded(Vec<Entry>),
    Spooled(Arc<Spooled>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Decoded(Vec::new())
    }
}

/// Segments' bytes and where each is.
struct Spooled {
    bytes: SpooledBytes,
    /// Each segment, in the order of its entries.
    segments: Vec<SegmentAt>,
    len: usize,
    /// The segments read last, most recent first, for lookups near one
    /// another (an entry, then the folder on the way to it).
    recent: Mutex<Vec<(usize, Arc<Vec<Entry>>)>>,
}

struct SegmentAt {
    /// Where its bytes start in the spool, and their length.
    offset: u64,
    size: u64,
    /// Index of its first entry.
    first: usize,
    /// That entry's place, to find the segment holding a place.
    first_place: (String, String),
}

impl Spooled {
    /// Segment `k`'s entries.
    fn segment(&self, k: usize) -> Arc<Vec<Entry>> {
        let mut recent = self.recent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(at) = recent.iter().position(|(held, _)| *held == k) {
            let hit = recent.remove(at);
            recent.insert(0, hit);
            return Arc::clone(&recent[0].1);
        }
        let at = &self.segments[k];
        let entries = Arc::new(decode_spooled(&self.bytes, at.offset, at.size));
        recent.truncate(RECENT_SEGMENTS - 1);
        recent.insert(0, (k, Arc::clone(&entries)));
        entries
    }

    /// The segment holding entry `index`.
    fn segment_of(&self, index: usize) -> usize {
        self.segments.partition_point(|s| s.first <= index) - 1
    }
}

/// Decodes a spooled segment: bytes this run checked and decoded before it
/// wrote them, so that only the temporary file failing to read back can
/// make this fail, and nothing could be done but stop.
fn decode_spooled(bytes: &SpooledBytes, offset: u64, size: u64) -> Vec<Entry> {
    let raw = bytes.read_at(offset, size).unwrap_or_else(|e| {
        panic!("airlock cannot read back its temporary file in TMPDIR ({e}); check that file system and run again")
    });
    // Its shape was checked before it was first decoded.
    let Items::<Entry>(entries) = ciborium::de::from_reader_with_recursion_limit(&raw[..], canonical::RECURSION_LIMIT)
        .expect("a spooled segment decodes as it did before");
    entries
}

/// One entry, borrowed from decoded entries or sharing its decoded segment.
#[derive(Clone)]
pub enum EntryRef<'a> {
    Borrowed(&'a Entry),
    Shared(Arc<Vec<Entry>>, usize),
}

impl Deref for EntryRef<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        match self {
            EntryRef::Borrowed(entry) => entry,
            EntryRef::Shared(segment, at) => &segment[*at],
        }
    }
}

impl std::fmt::Debug for EntryRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Entry::fmt(self, f)
    }
}

impl Serialize for EntryRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Entry::serialize(self, serializer)
    }
}

impl Entries {
    /// How many.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.0 {
            Store::Decoded(entries) => entries.len(),
            Store::Spooled(spooled) => spooled.len,
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `index`, if there is one.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<EntryRef<'_>> {
        match &self.0 {
            Store::Decoded(entries) => entries.get(index).map(EntryRef::Borrowed),
            Store::Spooled(spooled) if index < spooled.len => {
                let k = spooled.segment_of(index);
                Some(EntryRef::Shared(spooled.segment(k), index - spooled.segments[k].first))
            }
            Store::Spooled(_) => None,
        }
    }

    /// Every entry in order.
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// The entries from index `start` on, in order.
    #[must_use]
    pub fn iter_from(&self, start: usize) -> Iter<'_> {
        Iter { entries: self, at: start, segment: None }
    }

    /// The entries decoded, borrowed where they are held so.
    #[must_use]
    pub fn decoded(&self) -> std::borrow::Cow<'_, [Entry]> {
        match &self.0 {
            Store::Decoded(entries) => std::borrow::Cow::Borrowed(entries),
            Store::Spooled(spooled) => {
                // Each segment decoded straight into the whole: nothing cloned.
                let mut all = Vec::with_capacity(spooled.len);
                for at in &spooled.segments {
                    all.extend(decode_spooled(&spooled.bytes, at.offset, at.size));
                }
                std::borrow::Cow::Owned(all)
            }
        }
    }

    /// The entries decoded, to change them (decoding the segments first).
    pub fn decoded_mut(&mut self) -> &mut Vec<Entry> {
        if let Store::Spooled(_) = &self.0 {
            self.0 = Store::Decoded(self.decoded().into_owned());
        }
        match &mut self.0 {
            Store::Decoded(entries) => entries,
            Store::Spooled(_) => unreachable!("decoded just above"),
        }
    }

    /// The entries decoded, each to change in place.
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Entry> {
        self.decoded_mut().iter_mut()
    }

    /// The entries, decoded.
    #[must_use]
    pub fn into_vec(self) -> Vec<Entry> {
        match self.0 {
            Store::Decoded(entries) => entries,
            Store::Spooled(_) => self.decoded().into_owned(),
        }
    }

    /// Whether the entries are sorted by place, one per place (those held
    /// as segments are: format 2's rule, checked before they are used).
    #[must_use]
    pub fn is_sorted_by_place(&self) -> bool {
        match &self.0 {
            Store::Decoded(entries) => entries.windows(2).all(|pair| pair[0].place() < pair[1].place()),
            Store::Spooled(_) => true,
        }
    }

    /// Every entry in the order of their places.
    #[must_use]
    pub fn by_place(&self) -> Box<dyn Iterator<Item = EntryRef<'_>> + '_> {
        match &self.0 {
            Store::Decoded(entries) if !self.is_sorted_by_place() => {
                let mut sorted: Vec<&Entry> = entries.iter().collect();
                sorted.sort_by(|a, b| a.place().cmp(&b.place()));
                Box::new(sorted.into_iter().map(EntryRef::Borrowed))
            }
            _ => Box::new(self.iter()),
        }
    }

    /// The index of the entry at `place`, if one is there: the entries must
    /// be sorted by place (format 2's rule).
    #[must_use]
    pub fn find_place(&self, place: (&str, &str)) -> Option<usize> {
        match &self.0 {
            Store::Decoded(entries) => entries.binary_search_by(|e| e.place().cmp(&place)).ok(),
            Store::Spooled(spooled) => {
                let after =
                    spooled.segments.partition_point(|s| (s.first_place.0.as_str(), s.first_place.1.as_str()) <= place);
                let k = after.checked_sub(1)?;
                let segment = spooled.segment(k);
                let at = segment.binary_search_by(|e| e.place().cmp(&place)).ok()?;
                Some(spooled.segments[k].first + at)
            }
        }
    }

    /// The range of indexes of `ecosystem`'s entries, found by bisection
    /// when they are sorted by place (format 2's rule, checked before a
    /// manifest's entries are used: they are held as segments only then);
    /// `None` when they are not (format 1 allowed it).
    #[must_use]
    pub fn range_of(&self, ecosystem: &str) -> Option<std::ops::Range<usize>> {
        if !self.is_sorted_by_place() {
            return None;
        }
        let before = |bound: &dyn Fn(&str) -> bool| self.partition_point(|e| bound(&e.ecosystem));
        Some(before(&|e| e < ecosystem)..before(&|e| e <= ecosystem))
    }

    /// The first index whose entry is not `below` (which must hold of a prefix).
    fn partition_point(&self, below: impl Fn(&Entry) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if below(&self.get(mid).expect("within the entries")) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(entries: Vec<Entry>) -> Self {
        Entries(Store::Decoded(entries))
    }
}

impl FromIterator<Entry> for Entries {
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        Entries(Store::Decoded(iter.into_iter().collect()))
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| *a == *b)
    }
}

impl Eq for Entries {}

impl std::fmt::Debug for Entries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Entries {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lean_vec::deserialize(deserializer).map(Entries::from)
    }
}

/// The entries in order, a segment held at a time.
pub struct Iter<'a> {
    entries: &'a Entries,
    at: usize,
    /// The segment being read: its index, first entry and entries.
    segment: Option<(usize, usize, Arc<Vec<Entry>>)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = EntryRef<'a>;

    fn next(&mut self) -> Option<EntryRef<'a>> {
        let index = self.at;
        let item = match &self.entries.0 {
            Store::Decoded(entries) => EntryRef::Borrowed(entries.get(index)?),
            Store::Spooled(spooled) => {
                if index >= spooled.len {
                    return None;
                }
                let held =
                    self.segment.as_ref().is_some_and(|(_, first, s)| index >= *first && index < first + s.len());
                if !held {
                    let k = spooled.segment_of(index);
                    // Read on its own, not through the shared recent ones: iterators in step keep theirs.
                    let at = &spooled.segments[k];
                    self.segment = Some((k, at.first, Arc::new(decode_spooled(&spooled.bytes, at.offset, at.size))));
                }
                let (_, first, segment) = self.segment.as_ref().expect("the segment of this entry, read just above");
                EntryRef::Shared(Arc::clone(segment), index - first)
            }
        };
        self.at += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.entries.len().saturating_sub(self.at);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Entries {
    type Item = EntryRef<'a>;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Entries gathered as segments' bytes, in any order of the segments.
pub struct SpoolBuilder {
    spool: Spool,
    segments: Vec<SegmentAt>,
    len: usize,
}

impl Default for SpoolBuilder {
    fn default() -> Self {
        SpoolBuilder { spool: Spool::new(SPOOL_BUDGET), segments: Vec::new(), len: 0 }
    }
}

impl SpoolBuilder {
    /// Adds a segment: its canonical bytes, checked; its entries, decoded
    /// from them; the index of the first.
    pub fn add(&mut self, bytes: &[u8], entries: &[Entry], first: usize) -> std::io::Result<()> {
        let Some(head) = entries.first() else { return Ok(()) };
        let offset = self.spool.len();
        std::io::Write::write_all(&mut self.spool, bytes)?;
        let first_place = (head.ecosystem.clone(), head.path.as_str().to_owned());
        lean_vec::reserve(&mut self.segments, 1);
        self.segments.push(SegmentAt { offset, size: bytes.len() as u64, first, first_place });
        self.len += entries.len();
        Ok(())
    }

    /// The entries, once every segment is added.
    pub fn finish(mut self) -> std::io::Result<Entries> {
        self.segments.sort_unstable_by_key(|s| s.first);
        self.segments.shrink_to_fit();
        let bytes = self.spool.finish()?;
        Ok(Entries(Store::Spooled(Arc::new(Spooled {
            bytes,
            segments: self.segments,
            len: self.len,
            recent: Mutex::new(Vec::new()),
        }))))
    }
}

/// What tests do to entries as to a vector: held decoded first.
#[cfg(test)]
impl Entries {
    pub fn push(&mut self, entry: Entry) {
        self.decoded_mut().push(entry);
    }
    pub fn insert(&mut self, at: usize, entry: Entry) {
        self.decoded_mut().insert(at, entry);
    }
    pub fn remove(&mut self, at: usize) -> Entry {
        self.decoded_mut().remove(at)
    }
    pub fn reverse(&mut self) {
        self.decoded_mut().reverse();
    }
    pub fn sort_by(&mut self, order: impl FnMut(&Entry, &Entry) -> std::cmp::Ordering) {
        self.decoded_mut().sort_by(order);
    }
}

#[cfg(test)]
impl std::ops::Index<usize> for Entries {
    type Output = Entry;
    fn index(&self, at: usize) -> &Entry {
        match &self.0 {
            Store::Decoded(entries) => &entries[at],
            Store::Spooled(_) => panic!("entries held as segments are read with get(), or decoded_mut() first"),
        }
    }
}

#[cfg(test)]
impl std::ops::IndexMut<usize> for Entries {
    fn index_mut(&mut self, at: usize) -> &mut Entry {
        &mut self.decoded_mut()[at]
    }
}

/// The entries decoded, each to change in place.
impl<'a> IntoIterator for &'a mut Entries {
    type Item = &'a mut Entry;
    type IntoIter = std::slice::IterMut<'a, Entry>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}
