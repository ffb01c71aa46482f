//! Opening an input and reading it with positions.
//!
//! [`open_reader`] turns a location (a path, `-` for stdin) into a buffered byte stream,
//! decompressing gzip on the fly, so that every format reader works on any size of input in
//! constant memory. [`Input`] wraps that stream and counts the byte offset and line number of
//! everything consumed, which is where each record's [`Position`](crate::record::Position) comes
//! from. Remote inputs (S3) plug in through [`decompress_if_gzip`] and `from_reader`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

use super::error::SourceError;

/// Buffer size for files, stdin and the decompressor: large enough that the per-call overhead of
/// `fill_buf` through a `dyn BufRead` is negligible, small enough to be irrelevant for memory.
pub(crate) const BUFFER_SIZE: usize = 256 * 1024;

/// Buffer size for local files: a large read per system call for multi-GB exports.
const FILE_BUFFER_SIZE: usize = 1 << 20;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UTF8_BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// Opens `location` for reading: a file path, or `-` for standard input.
///
/// Gzip input (recognised by its magic bytes, whatever its name) is decompressed transparently,
/// including multi-member files as written by `cat a.gz b.gz` or parallel compressors. A name
/// ending in `.gz` whose content is not gzip is refused rather than read as plain text. `s3://`
/// locations are not handled here.
pub fn open_reader(location: &str) -> Result<Box<dyn BufRead + Send>, SourceError> {
    if location.starts_with("s3://") {
        return Err(SourceError::Unsupported(format!(
            "{location}: S3 locations are not readable by the local reader; download the object or use the S3 input"
        )));
    }
    let raw: Box<dyn BufRead + Send> = if location == "-" {
        Box::new(BufReader::with_capacity(BUFFER_SIZE, io::stdin()))
    } else {
        let file = File::open(location).map_err(|e| SourceError::io(location, e))?;
        open_file(file).map_err(|e| SourceError::io(location, e))?
    };
    let (reader, was_gzip) = decompress_if_gzip(raw).map_err(|e| SourceError::io(location, e))?;
    if !was_gzip && location.to_ascii_lowercase().ends_with(".gz") && location != "-" {
        return Err(SourceError::invalid(
            location,
            "the name ends in .gz but the content is not gzip",
        ));
    }
    Ok(reader)
}

/// A local file as a buffered stream with a [`FILE_BUFFER_SIZE`] buffer. The kernel's readahead
/// sees the sequential reads and keeps ahead of the parser; no hint is given, because
/// `posix_fadvise` would need `unsafe` (an earlier reader with `O_DIRECT` and `cachestat(2)` on
/// a thread was removed: measured warm, it was no faster, see issue #16).
fn open_file(file: File) -> io::Result<Box<dyn BufRead + Send>> {
    Ok(Box::new(BufReader::with_capacity(FILE_BUFFER_SIZE, file)))
}

/// `Read::read` for a reader whose bytes are in its `BufRead` buffer: copies what is buffered
/// (refilling first if nothing is).
pub(crate) fn read_from_buffer<R: BufRead + ?Sized>(
    r: &mut R,
    out: &mut [u8],
) -> io::Result<usize> {
    let buf = r.fill_buf()?;
    let n = buf.len().min(out.len());
    out[..n].copy_from_slice(&buf[..n]);
    r.consume(n);
    Ok(n)
}

/// Wraps `reader` in a streaming gzip decoder if its first bytes are the gzip magic number.
///
/// Returns the (possibly wrapped) reader and whether it was gzip. Only peeks at the buffer, so
/// nothing is lost when the input is not compressed. Meant for inputs that do not come from
/// [`open_reader`], e.g. an S3 object body.
pub fn decompress_if_gzip(
    reader: Box<dyn BufRead + Send>,
) -> io::Result<(Box<dyn BufRead + Send>, bool)> {
    let mut reader = with_first_line(reader)?;
    let head = reader.fill_buf()?;
    if head.len() >= 2 && head[..2] == GZIP_MAGIC {
        let decoder = flate2::bufread::MultiGzDecoder::new(reader);
        Ok((
            Box::new(BufReader::with_capacity(BUFFER_SIZE, decoder)),
            true,
        ))
    } else {
        Ok((reader, false))
    }
}

/// Longest start of an input that [`with_first_line`] gathers.
const HEAD_MAX: usize = 64 * 1024;

/// Makes the first `fill_buf` of `reader` show the input's whole first line (at most 64 KiB;
/// less only where the input ends). Formats are recognised by their first bytes — gzip's magic
/// number, a byte-order mark, UTF-16, the CSV delimiter, a header row — but a stream may hand
/// its start out in pieces (a pipe, a network body, a gzip member boundary): one byte at first
/// made a gzip input read as text. Costs nothing when the first read holds a line already.
pub(crate) fn with_first_line(
    mut reader: Box<dyn BufRead + Send>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let buf = fill_buf_retrying(&mut *reader)?;
    if buf.is_empty() || buf.len() >= HEAD_MAX || memchr::memchr(b'\n', buf).is_some() {
        return Ok(reader);
    }
    let mut head = Vec::new();
    loop {
        let buf = fill_buf_retrying(&mut *reader)?;
        if buf.is_empty() {
            break;
        }
        let line = memchr::memchr(b'\n', buf).map(|i| i + 1);
        let take = line.unwrap_or(buf.len()).min(HEAD_MAX - head.len());
        head.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if line.is_some_and(|n| n == take) || head.len() == HEAD_MAX {
            break;
        }
    }
    Ok(Box::new(io::Cursor::new(head).chain(reader)))
}

/// `fill_buf`, retried while a signal interrupts it.
#[inline]
fn fill_buf_retrying(r: &mut (dyn BufRead + Send)) -> io::Result<&[u8]> {
    // The second call returns the buffer the first one filled.
    while let Err(e) = r.fill_buf() {
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    r.fill_buf()
}

/// A byte stream that knows where it is: the offset and the 1-based line of its next byte.
pub(crate) struct Input {
    inner: Box<dyn BufRead + Send>,
    /// Offset of the next unread byte in the (decompressed) stream.
    pub offset: u64,
    /// 1-based line of the next unread byte.
    pub line: u64,
    /// Names the input in error messages.
    pub location: String,
}

impl Input {
    pub fn new(inner: Box<dyn BufRead + Send>, location: &str) -> Self {
        Input {
            inner,
            offset: 0,
            line: 1,
            location: location.to_string(),
        }
    }

    /// The buffered bytes not yet consumed; empty at the end of the input.
    #[inline]
    pub fn fill(&mut self) -> io::Result<&[u8]> {
        fill_buf_retrying(&mut *self.inner)
    }

    /// Consumes `n` buffered bytes of which the caller already counted `newlines` `\n` bytes.
    #[inline]
    pub fn consume_counted(&mut self, n: usize, newlines: u64) {
        self.inner.consume(n);
        self.offset += n as u64;
        self.line += newlines;
    }

    /// Skips a UTF-8 byte-order mark at the current position; true if there was one.
    pub fn skip_bom(&mut self) -> io::Result<bool> {
        // A BOM could in theory straddle buffer refills only if the buffer were < 3 bytes; the
        // buffers used here are far larger, but be exact anyway.
        let buf = self.fill()?;
        if buf.len() >= 3 {
            if buf[..3] == UTF8_BOM {
                self.consume_counted(3, 0);
                return Ok(true);
            }
            return Ok(false);
        }
        Ok(false)
    }

    /// Skips JSON whitespace and returns the next byte without consuming it (`None` at the end).
    pub fn peek_non_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            let buf = self.fill()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let mut newlines = 0;
            let mut i = 0;
            while i < buf.len() {
                match buf[i] {
                    b'\n' => newlines += 1,
                    b' ' | b'\t' | b'\r' => {}
                    other => {
                        self.consume_counted(i, newlines);
                        return Ok(Some(other));
                    }
                }
                i += 1;
            }
            let n = buf.len();
            self.consume_counted(n, newlines);
        }
    }

    /// The first non-whitespace byte of the input, for format detection, and whether a UTF-8 BOM
    /// was skipped. Consumes nothing beyond the BOM as long as that byte lies in the current buffer
    /// (so that a CSV's first row stays intact).
    pub fn sniff_keep(&mut self) -> io::Result<(Option<u8>, bool)> {
        let bom = self.skip_bom()?;
        let buf = self.fill()?;
        if let Some(&b) = buf
            .iter()
            .find(|&&b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Ok((Some(b), bom));
        }
        Ok((self.peek_non_ws()?, bom))
    }
}

/// Number of `\n` bytes in `bytes`; written so that the compiler vectorises it.
#[inline]
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn boxed(bytes: Vec<u8>) -> Box<dyn BufRead + Send> {
        Box::new(Cursor::new(bytes))
    }

    #[test]
    fn gzip_is_detected_by_magic_and_decompressed_across_members() {
        let mut all = Vec::new();
        for part in [&b"hello "[..], &b"world\n"[..]] {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(part).unwrap();
            all.extend(enc.finish().unwrap());
        }
        let (mut r, gz) = decompress_if_gzip(boxed(all)).unwrap();
        assert!(gz);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world\n");

        let (mut r, gz) = decompress_if_gzip(boxed(b"plain".to_vec())).unwrap();
        assert!(!gz);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "plain");
    }

    #[test]
    fn open_reader_refuses_s3_and_reports_missing_files() {
        assert!(matches!(
            open_reader("s3://bucket/users.csv"),
            Err(SourceError::Unsupported(_))
        ));
        let err = open_reader("/nonexistent/users.csv").err().unwrap();
        assert!(matches!(err, SourceError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/users.csv"));
    }

    #[test]
    fn input_counts_offsets_lines_and_skips_bom() {
        let mut input = Input::new(boxed(b"\xef\xbb\xbf \n\n  {x".to_vec()), "t");
        assert!(input.skip_bom().unwrap());
        assert_eq!(input.peek_non_ws().unwrap(), Some(b'{'));
        assert_eq!(input.offset, 8);
        assert_eq!(input.line, 3);
    }

    use std::io::Read;
}
