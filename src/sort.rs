//! Sorting more records than memory should hold: an external merge sort.
//!
//! The checks that compare every entry with every other (two entries
//! claiming one path of the mirror, two paths a case-insensitive file
//! system takes for one) sort what they compare. Held as a vector, that is
//! some tens of bytes per entry and per path, which at a million entries is
//! more than the whole import should take. A [`Sorter`] holds at most its
//! budget of records; beyond that it sorts what it holds into a run in an
//! unnamed temporary file (`tempfile`, in `TMPDIR`: nothing is left behind,
//! whatever happens) and starts again, and [`Sorted`] merges the runs.
//!
//! Records are byte strings compared byte by byte: callers encode what
//! they sort so that this order is theirs (a path, a NUL, then the rest,
//! sorts by path, as paths hold no NUL).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

/// What a sorter holds in memory unless told otherwise: the records' bytes
/// and 8 bytes of bookkeeping each, the room reserved for them included.
pub const DEFAULT_BUDGET: usize = 2 << 20;

/// Runs merged at once: more are first merged into one, so that a sort of
/// any size holds at most this many files open and this many read buffers.
const MAX_RUNS: usize = 64;

/// Read and write buffer of one run.
const RUN_BUFFER: usize = 32 << 10;

/// Records to sort, pushed one at a time.
#[derive(Debug)]
pub struct Sorter {
    budget: usize,
    /// The records held, back to back.
    bytes: Vec<u8>,
    /// Where each held record is in `bytes`: start and length.
    spans: Vec<(u32, u32)>,
    /// Sorted runs spilled to temporary files, each read from its start.
    runs: Vec<File>,
}

impl Sorter {
    /// A sorter that holds about `budget` bytes of records before it spills
    /// them to a run (a record larger than that is a run of its own).
    #[must_use]
    pub fn new(budget: usize) -> Self {
        // Held records are addressed by 32 bits.
        let budget = budget.min(u32::MAX as usize);
        Sorter { budget, bytes: Vec::new(), spans: Vec::new(), runs: Vec::new() }
    }

    /// Adds one record.
    pub fn push(&mut self, record: &[u8]) -> io::Result<()> {
        let held = self.bytes.len() + 8 * self.spans.len();
        if !self.spans.is_empty() && held + record.len() + 8 > self.budget {
            self.spill()?;
        }
        let len = u32::try_from(record.len()).map_err(|_| io::Error::other("a record of 4 GiB or more"))?;
        let needed = self.bytes.len() + record.len();
        if needed > self.bytes.capacity() {
            // Doubling, but not past the budget: a spill comes before the bytes would outgrow it.
            let want = (2 * self.bytes.capacity()).clamp(4096, self.budget.max(4096)).max(needed);
            self.bytes.reserve_exact(want - self.bytes.len());
        }
        let start = u32::try_from(self.bytes.len()).expect("held records are within the budget, below 4 GiB");
        self.spans.push((start, len));
        self.bytes.extend_from_slice(record);
        Ok(())
    }

    /// Every record pushed, in order.
    pub fn finish(mut self) -> io::Result<Sorted> {
        if self.runs.is_empty() {
            self.sort_held();
            return Ok(Sorted::Held { bytes: self.bytes, spans: self.spans, next: 0 });
        }
        if !self.spans.is_empty() {
            self.spill()?;
        }
        Merge::of(std::mem::take(&mut self.runs)).map(Sorted::Merged)
    }

    fn sort_held(&mut self) {
        let bytes = &self.bytes;
        self.spans.sort_unstable_by(|a, b| record_at(bytes, *a).cmp(record_at(bytes, *b)));
    }

    /// Writes what is held, sorted, to a new run; merges the runs into one
    /// when there are as many as are merged at once.
    fn spill(&mut self) -> io::Result<()> {
        self.sort_held();
        let mut run = RunWriter::new()?;
        for &span in &self.spans {
            run.write(record_at(&self.bytes, span))?;
        }
        self.runs.push(run.finish()?);
        self.bytes.clear();
        self.spans.clear();
        if self.runs.len() >= MAX_RUNS {
            let mut merged = Merge::of(std::mem::take(&mut self.runs))?;
            let mut run = RunWriter::new()?;
            while let Some(record) = merged.next_record()? {
                run.write(record)?;
            }
            self.runs.push(run.finish()?);
        }
        Ok(())
    }
}

/// The records of a [`Sorter`], in order.
#[derive(Debug)]
pub enum Sorted {
    /// They never left memory.
    Held { bytes: Vec<u8>, spans: Vec<(u32, u32)>, next: usize },
    /// They are merged from runs on disk.
    Merged(Merge),
}

impl Sorted {
    /// The next record, or `None` after the last.
    pub fn next_record(&mut self) -> io::Result<Option<&[u8]>> {
        match self {
            Sorted::Held { bytes, spans, next } => {
                let Some(&span) = spans.get(*next) else { return Ok(None) };
                *next += 1;
                Ok(Some(record_at(bytes, span)))
            }
            Sorted::Merged(merge) => merge.next_record(),
        }
    }
}

/// The held record at `span`.
fn record_at(bytes: &[u8], (start, len): (u32, u32)) -> &[u8] {
    &bytes[start as usize..(start + len) as usize]
}

/// A run being written: each record as its length (u32, little-endian) and
/// its bytes.
struct RunWriter(BufWriter<File>);

impl RunWriter {
    fn new() -> io::Result<Self> {
        Ok(RunWriter(BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile()?)))
    }

    fn write(&mut self, record: &[u8]) -> io::Result<()> {
        let len = u32::try_from(record.len()).map_err(|_| io::Error::other("a record of 4 GiB or more"))?;
        self.0.write_all(&len.to_le_bytes())?;
        self.0.write_all(record)
    }

    /// The run, to be read from its start.
    fn finish(self) -> io::Result<File> {
        let mut file = self.0.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        Ok(file)
    }
}

/// The runs' records merged: each run's next record in a heap.
#[derive(Debug)]
pub struct Merge {
    runs: Vec<BufReader<File>>,
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    /// The record [`Merge::next_record`] last returned.
    current: Vec<u8>,
}

impl Merge {
    fn of(files: Vec<File>) -> io::Result<Self> {
        let mut merge = Merge {
            runs: files.into_iter().map(|f| BufReader::with_capacity(RUN_BUFFER, f)).collect(),
            heap: BinaryHeap::new(),
            current: Vec::new(),
        };
        for run in 0..merge.runs.len() {
            let mut record = Vec::new();
            if read_record(&mut merge.runs[run], &mut record)? {
                merge.heap.push(Reverse((record, run)));
            }
        }
        Ok(merge)
    }

    fn next_record(&mut self) -> io::Result<Option<&[u8]>> {
        let Some(Reverse((record, run))) = self.heap.pop() else { return Ok(None) };
        // The buffer of the record returned before is reused for the run's next.
        let mut spare = std::mem::replace(&mut self.current, record);
        if read_record(&mut self.runs[run], &mut spare)? {
            self.heap.push(Reverse((spare, run)));
        }
        Ok(Some(&self.current))
    }
}

/// Reads the next record of a run into `into`; `false` at the run's end.
fn read_record(run: &mut impl Read, into: &mut Vec<u8>) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match run.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    into.clear();
    into.resize(u32::from_le_bytes(len) as usize, 0);
    run.read_exact(into)?;
    Ok(true)
}

/// Bytes written once, then read back a piece at a time: held up to a
/// budget, beyond it in an unnamed temporary file in `TMPDIR`, so that
/// what is written while other large things are held (a manifest's
/// segments while its entries are) does not sit beside them in memory.
#[derive(Debug)]
pub struct Spool {
    budget: usize,
    held: Vec<u8>,
    file: Option<BufWriter<File>>,
    len: u64,
    /// The first write that failed, for the caller of what wrote here
    /// (which may have turned it into a message of its own).
    failed: Option<io::Error>,
}

impl Spool {
    /// A spool that holds at most `budget` bytes in memory.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        Spool { budget, held: Vec::new(), file: None, len: 0, failed: None }
    }

    /// Bytes written so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Why a write failed, if one did.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// Adds `buf` to the held bytes, or to the file once they would pass the budget.
    fn append(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.held.len() + buf.len() > self.budget {
            let mut file = BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile()?);
            file.write_all(&self.held)?;
            self.held = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => self.held.extend_from_slice(buf),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    /// Everything written, to be read back a piece at a time.
    pub fn finish(self) -> io::Result<SpooledBytes> {
        match self.file {
            None => Ok(SpooledBytes::Held(self.held)),
            Some(file) => Ok(SpooledBytes::File(file.into_inner().map_err(io::IntoInnerError::into_error)?)),
        }
    }
}

/// What a [`Spool`] held, read back at any offset.
#[derive(Debug)]
pub enum SpooledBytes {
    Held(Vec<u8>),
    File(File),
}

impl SpooledBytes {
    /// The `len` bytes at `offset` (borrowed when they are held).
    pub fn read_at(&self, offset: u64, len: u64) -> io::Result<std::borrow::Cow<'_, [u8]>> {
        let short = || io::Error::new(io::ErrorKind::UnexpectedEof, "a temporary file was cut short");
        let len = usize::try_from(len).map_err(io::Error::other)?;
        match self {
            SpooledBytes::Held(bytes) => {
                let start = usize::try_from(offset).map_err(io::Error::other)?;
                let held = bytes.get(start..start.checked_add(len).ok_or_else(short)?).ok_or_else(short)?;
                Ok(std::borrow::Cow::Borrowed(held))
            }
            SpooledBytes::File(file) => {
                let mut buf = vec![0; len];
                std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)?;
                Ok(std::borrow::Cow::Owned(buf))
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.append(buf).inspect_err(|e| {
            self.failed.get_or_insert_with(|| io::Error::new(e.kind(), e.to_string()));
        })
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut sorter: Sorter, records: &[Vec<u8>]) -> Vec<Vec<u8>> {
        for record in records {
            sorter.push(record).unwrap();
        }
        let mut records = sorter.finish().unwrap();
        let mut out = Vec::new();
        while let Some(record) = records.next_record().unwrap() {
            out.push(record.to_vec());
        }
        out
    }

    fn records(n: usize) -> Vec<Vec<u8>> {
        // Deterministic, of varied lengths, with repeats and an empty record.
        (0..n).map(|i| format!("{:x}", (i * 7919) % (n / 2 + 1)).into_bytes().repeat(i % 3)).collect()
    }

    #[test]
    fn records_come_back_in_byte_order_held_or_spilled_and_merged_in_stages() {
        let input = records(5000);
        let mut expected = input.clone();
        expected.sort();
        // Held, a few runs, and more runs than are merged at once (merged in two stages).
        for budget in [usize::MAX, 4096, 64] {
            assert_eq!(sorted(Sorter::new(budget), &input), expected, "budget {budget}");
        }
    }

    #[test]
    fn a_record_larger_than_the_budget_is_a_run_of_its_own() {
        let input = vec![vec![9u8; 100], vec![1u8; 3], vec![5u8; 200], Vec::new()];
        let mut expected = input.clone();
        expected.sort();
        assert_eq!(sorted(Sorter::new(16), &input), expected);
    }

    #[test]
    fn nothing_pushed_is_nothing_sorted() {
        assert!(sorted(Sorter::new(16), &[]).is_empty());
    }

    #[test]
    fn a_spool_gives_back_what_it_was_given_held_or_spilled() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        for budget in [0, 1000, 1 << 20] {
            let mut spool = Spool::new(budget);
            bytes.chunks(777).try_for_each(|chunk| spool.write_all(chunk)).unwrap();
            assert_eq!(spool.len(), bytes.len() as u64);
            assert_eq!(spool.file.is_some(), budget < bytes.len(), "spilled only past its budget");
            let spooled = spool.finish().unwrap();
            assert_eq!(&spooled.read_at(0, bytes.len() as u64).unwrap()[..], &bytes[..]);
            assert_eq!(&spooled.read_at(99_000, 1000).unwrap()[..], &bytes[99_000..]);
            assert!(spooled.read_at(99_000, 1001).is_err(), "past the end");
        }
    }
}
