//! Progress reporting. The library never prints: long operations report
//! through this trait, which the CLI implements with indicatif and tests
//! replace with [`Silent`].

/// Receives progress of long operations.
pub trait Progress: Sync {
    /// A phase starts; `total` is its size in bytes (0 if unknown).
    fn start(&self, phase: &str, total: u64);
    /// `bytes` more of the current phase are done.
    fn advance(&self, bytes: u64);
    /// The current phase is over.
    fn finish(&self);
}

/// A reader that reports the bytes read to a [`Progress`].
pub struct ProgressReader<'p, R> {
    pub inner: R,
    pub progress: &'p dyn Progress,
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A writer that reports the bytes written to a [`Progress`].
pub struct ProgressWriter<'p, W> {
    pub inner: W,
    pub progress: &'p dyn Progress,
}

impl<W: std::io::Write> std::io::Write for ProgressWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _phase: &str, _total: u64) {}
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}
