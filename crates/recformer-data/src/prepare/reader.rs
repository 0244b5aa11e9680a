//! Streaming line reader over plain or gzip files (detected by the magic bytes), with progress.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;

use crate::error::{Error, Result};

/// Progress of a file read, given to the observer of the `*_with_progress` functions.
#[derive(Debug, Clone, Copy)]
pub struct ProgressEvent<'a> {
    /// The file being read.
    pub file: &'a Path,
    /// What the pass is for (e.g. `"metadata"`, `"reviews"`).
    pub stage: &'static str,
    /// Bytes of the file read so far (compressed bytes for gzip files).
    pub bytes_read: u64,
    /// Size of the file in bytes.
    pub total_bytes: u64,
    /// Whether the file has been read to the end.
    pub finished: bool,
}

/// An observer of [`ProgressEvent`]s (e.g. a CLI progress bar). Called at the start, about
/// every MiB, and at the end of each file.
pub type Progress<'a> = &'a dyn Fn(&ProgressEvent<'_>);

/// A no-op progress observer.
pub fn no_progress(_: &ProgressEvent<'_>) {}

const REPORT_EVERY: u64 = 1 << 20;

struct CountingReader<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

pub(crate) struct LineReader<'p> {
    path: PathBuf,
    stage: &'static str,
    inner: Box<dyn BufRead>,
    gzip: bool,
    bytes: Rc<Cell<u64>>,
    total: u64,
    last_report: u64,
    line: u64,
    buf: Vec<u8>,
    progress: Progress<'p>,
}

impl<'p> LineReader<'p> {
    pub(crate) fn open(path: &Path, stage: &'static str, progress: Progress<'p>) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let bytes = Rc::new(Cell::new(0));
        let mut raw = BufReader::with_capacity(
            1 << 16,
            CountingReader {
                inner: file,
                count: bytes.clone(),
            },
        );
        let gzip = raw
            .fill_buf()
            .map_err(|e| Error::io(path, e))?
            .starts_with(&[0x1f, 0x8b]);
        let inner: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(raw)))
        } else {
            Box::new(raw)
        };
        let reader = Self {
            path: path.into(),
            stage,
            inner,
            gzip,
            bytes,
            total,
            last_report: 0,
            line: 0,
            buf: Vec::with_capacity(1 << 12),
            progress,
        };
        reader.report(false);
        Ok(reader)
    }

    fn report(&self, finished: bool) {
        (self.progress)(&ProgressEvent {
            file: &self.path,
            stage: self.stage,
            bytes_read: self.bytes.get(),
            total_bytes: self.total,
            finished,
        });
    }

    /// Number of lines returned so far.
    pub(crate) fn lines(&self) -> u64 {
        self.line
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The next line without its line ending, and its 1-based number; `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        let n = match self.inner.read_until(b'\n', &mut self.buf) {
            Ok(n) => n,
            Err(source) if self.gzip => {
                return Err(Error::Gzip {
                    path: self.path.clone(),
                    line: self.line,
                    source,
                })
            }
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        if n == 0 {
            self.report(true);
            return Ok(None);
        }
        self.line += 1;
        if self.bytes.get() - self.last_report >= REPORT_EVERY {
            self.last_report = self.bytes.get();
            self.report(false);
        }
        let mut line = self.buf.as_slice();
        if let Some(rest) = line.strip_suffix(b"\n") {
            line = rest;
        }
        if let Some(rest) = line.strip_suffix(b"\r") {
            line = rest;
        }
        Ok(Some((self.line, line)))
    }
}
