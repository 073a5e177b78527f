//! Response bodies as hyper sends them: bytes held in memory, or a file
//! streamed in chunks read off the async threads (and gzip-compressed on the
//! way when the client asked for it), with the request's log line written
//! once the body is done or abandoned, counting what was handed to the
//! connection.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use flate2::write::GzEncoder;
use hyper::body::{Frame, SizeHint};
use tokio::task::JoinHandle;

/// How much of a file one read takes: one chunk per connection is in memory
/// (512 KiB: 256 KiB cost large files 10% of their rate, 1 MiB doubled the
/// memory of slow readers; bench/serve).
const CHUNK: u64 = 512 * 1024;

/// Where request lines go.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// The request's log line, `TIME CLIENT METHOD TARGET STATUS`, to which the
/// body adds the bytes it sent when it is dropped.
pub struct LogLine {
    pub(super) log: Log,
    pub(super) head: String,
}

/// A response body.
pub struct Sent {
    inner: Inner,
    log: Option<LogLine>,
    /// Body bytes handed to the connection so far.
    counted: u64,
}

enum Inner {
    Bytes(Option<Bytes>),
    File(Box<FileStream>),
}

type Encoder = GzEncoder<Vec<u8>>;
/// What one read hands back: the reader for the next, and the data.
type Chunk = io::Result<(Reader, Vec<u8>)>;

/// A file read a chunk at a time on the blocking pool, through an optional
/// placeholder replacement and an optional gzip encoder.
pub struct Reader {
    file: File,
    replace: Option<Replace>,
    encoder: Option<Encoder>,
}

/// Every `from` in the stream becomes `to`; the bytes that may begin an
/// occurrence split across two reads wait in `carry`.
pub struct Replace {
    pub from: Vec<u8>,
    pub to: Vec<u8>,
    carry: Vec<u8>,
}

impl Replace {
    #[must_use]
    pub fn new(from: &str, to: &str) -> Self {
        Replace { from: from.as_bytes().to_vec(), to: to.as_bytes().to_vec(), carry: Vec::new() }
    }

    /// `data` with the occurrences replaced, holding back a possible start
    /// of one unless `last`.
    pub(super) fn apply(&mut self, data: &[u8], last: bool) -> Vec<u8> {
        let mut input = std::mem::take(&mut self.carry);
        input.extend_from_slice(data);
        let mut out = Vec::with_capacity(input.len());
        let mut at = 0;
        while let Some(found) = find(&input[at..], &self.from) {
            out.extend_from_slice(&input[at..at + found]);
            out.extend_from_slice(&self.to);
            at += found + self.from.len();
        }
        let keep = if last { 0 } else { (self.from.len() - 1).min(input.len() - at) };
        out.extend_from_slice(&input[at..input.len() - keep]);
        self.carry = input[input.len() - keep..].to_vec();
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

struct FileStream {
    /// The reader between reads (`None` while a read runs).
    idle: Option<Reader>,
    reading: Option<JoinHandle<Chunk>>,
    /// Bytes of the file not yet read.
    unread: u64,
    /// Bytes of the body not yet sent, when known (not when compressing or replacing).
    unsent: Option<u64>,
}

impl Sent {
    #[must_use]
    pub fn bytes(data: Vec<u8>, log: LogLine) -> Self {
        Sent { inner: Inner::Bytes(Some(Bytes::from(data))), log: Some(log), counted: 0 }
    }

    /// `len` bytes of `file` from where it is positioned, with `replace`
    /// made, compressed when `gzip`.
    #[must_use]
    pub fn file(file: File, len: u64, replace: Option<Replace>, gzip: bool, log: LogLine) -> Self {
        let encoder = gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let unsent = (!gzip && replace.is_none()).then_some(len);
        let reader = Reader { file, replace, encoder };
        let stream = FileStream { idle: Some(reader), reading: None, unread: len, unsent };
        Sent { inner: Inner::File(Box::new(stream)), log: Some(log), counted: 0 }
    }
}

/// A bare 500, for what went wrong inside the server (a handler that
/// panicked, a header value it made that HTTP cannot carry); not logged.
#[must_use]
pub fn internal_error() -> hyper::Response<Sent> {
    let quiet = LogLine { log: Arc::new(|_: &str| {}), head: String::new() };
    let mut response = hyper::Response::new(Sent::bytes(b"500 Internal Server Error\n".to_vec(), quiet));
    *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl Drop for Sent {
    fn drop(&mut self) {
        if let Some(line) = self.log.take() {
            (line.log)(&format!("{} {}", line.head, self.counted));
        }
    }
}

impl hyper::body::Body for Sent {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        let data = match &mut this.inner {
            Inner::Bytes(data) => data.take(),
            Inner::File(stream) => ready!(stream.poll_chunk(cx)?),
        };
        Poll::Ready(data.map(|data| {
            this.counted += data.len() as u64;
            Ok(Frame::data(data))
        }))
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Bytes(data) => data.is_none(),
            Inner::File(stream) => stream.unsent == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Bytes(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::File(stream) => stream.unsent.map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

impl FileStream {
    /// The next piece of the body, `None` at its end.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Bytes>>> {
        loop {
            if let Some(reading) = &mut self.reading {
                let read = ready!(Pin::new(reading).poll(cx));
                self.reading = None;
                let (reader, data) = read.map_err(io::Error::other)??;
                self.idle = Some(reader);
                if !data.is_empty() {
                    if let Some(unsent) = &mut self.unsent {
                        *unsent -= data.len() as u64;
                    }
                    return Poll::Ready(Ok(Some(Bytes::from(data))));
                }
                continue;
            }
            let Some(reader) = self.idle.take() else { return Poll::Ready(Ok(None)) };
            if self.unread == 0 && reader.encoder.is_none() && reader.replace.is_none() {
                return Poll::Ready(Ok(None));
            }
            let want = self.unread.min(CHUNK);
            self.unread -= want;
            let last = self.unread == 0;
            self.reading = Some(tokio::task::spawn_blocking(move || read_chunk(reader, want, last)));
        }
    }
}

/// The next `len` bytes of `file`; a file that shrank since it was opened
/// is an error: the client must not take a short body for the whole.
pub(super) fn read_exactly(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut data)?;
    if (data.len() as u64) < len {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file shrank while it was sent"));
    }
    Ok(data)
}

/// Reads `want` bytes, through the replacement and the encoder if there
/// are any, finishing both after the `last` read.
fn read_chunk(mut reader: Reader, want: u64, last: bool) -> Chunk {
    let mut data = read_exactly(&reader.file, want)?;
    if let Some(replace) = &mut reader.replace {
        data = replace.apply(&data, last);
        if last {
            reader.replace = None;
        }
    }
    let Some(mut encoder) = reader.encoder.take() else { return Ok((reader, data)) };
    encoder.write_all(&data)?;
    if last {
        let out = encoder.finish()?;
        Ok((reader, out))
    } else {
        let out = std::mem::take(encoder.get_mut());
        reader.encoder = Some(encoder);
        Ok((reader, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_span_reads() {
        let mut replace = Replace::new("{{BASE}}", "http://h");
        let mut out = replace.apply(b"a{{BA", false);
        out.extend(replace.apply(b"SE}}b{{", false));
        out.extend(replace.apply(b"BASE}}{", false));
        out.extend(replace.apply(b"", true));
        assert_eq!(out, b"ahttp://hbhttp://h{");
        let mut once = Replace::new("{{BASE}}", "x");
        assert_eq!(once.apply(b"{{BASE}}{{BASE}}", true), b"xx");
    }
}
