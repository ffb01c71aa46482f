//! Reading an export straight from S3, as a stream, resuming by range when the connection breaks.
//!
//! Exports of millions of users often live in a bucket; downloading them first doubles the disk and
//! the time. [`S3Object::head`] pins the object (size and ETag), and [`open_reader`] streams it
//! into the synchronous format readers through a small bounded channel: an async task on the
//! caller's Tokio runtime reads the body (`GetObject`) and hands its chunks to a blocking
//! [`BufRead`] ([`S3Reader`]), so memory stays at a few chunks whatever the object's size.
//!
//! When the body breaks off mid-way (connection reset, truncated answer, timeout), the task asks
//! again with `Range: bytes=<offset>-` from the first byte it has not delivered, and with
//! `If-Match: <ETag>`, so that a replaced object is refused ([`object_changed`]) rather than
//! spliced. Consecutive failed attempts without progress are bounded
//! ([`S3ReadOptions::max_attempts`]). Resuming happens below the gzip decoder, on the raw object
//! bytes, so `.gz` objects resume as well. A read can also start at a byte offset of the object
//! ([`S3ReadOptions::start_offset`]).
//!
//! The reader checks at the end that it received exactly `size - start_offset` bytes: a short
//! object is an error, never a silently shorter migration.

use std::io::{self, BufRead, Read};
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::error::SourceError;

/// `s3://bucket/key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
}

impl S3Location {
    /// Whether `location` names an S3 object.
    pub fn is_s3(location: &str) -> bool {
        location.starts_with("s3://")
    }

    pub fn parse(location: &str) -> Result<S3Location, SourceError> {
        let bad = || {
            SourceError::invalid(
                location,
                "an S3 location is s3://BUCKET/KEY (a bucket and a non-empty key)",
            )
        };
        let rest = location.strip_prefix("s3://").ok_or_else(bad)?;
        let (bucket, key) = rest.split_once('/').ok_or_else(bad)?;
        if bucket.is_empty() || key.is_empty() {
            return Err(bad());
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// An S3 object as it was when it was looked at: what a run's fingerprint is made of, and what a
/// read insists on (`If-Match` on the ETag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Object {
    pub location: S3Location,
    /// Size in bytes (of the stored, possibly compressed, object).
    pub size: u64,
    /// The ETag as S3 gives it, quotes included.
    pub etag: String,
    pub version_id: Option<String>,
}

impl S3Object {
    /// `HeadObject`: size, ETag and version of the object at `location`.
    pub async fn head(
        client: &aws_sdk_s3::Client,
        location: &str,
    ) -> Result<S3Object, SourceError> {
        let loc = S3Location::parse(location)?;
        let out = client
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .send()
            .await
            .map_err(|e| {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let what = match status {
                    Some(404) => "no such object (check the bucket and key)".to_string(),
                    Some(403) => "access denied (the caller needs s3:GetObject on it)".to_string(),
                    _ => DisplayErrorContext(&e).to_string(),
                };
                SourceError::io(location, io::Error::other(what))
            })?;
        let etag = out.e_tag().unwrap_or_default().to_string();
        if etag.is_empty() {
            return Err(SourceError::invalid(location, "S3 gave the object no ETag"));
        }
        Ok(S3Object {
            size: out.content_length().unwrap_or(0).max(0) as u64,
            etag,
            version_id: out.version_id().map(str::to_string),
            location: loc,
        })
    }

    /// The run fingerprint of the object (see
    /// [`fingerprint_s3`](super::fingerprint::fingerprint_s3)).
    pub fn fingerprint(&self) -> String {
        super::fingerprint::fingerprint_s3(&self.etag, self.size, self.version_id.as_deref())
    }
}

/// How an object is read.
#[derive(Clone, Debug)]
pub struct S3ReadOptions {
    /// First byte to read (0: the whole object). Offsets in the records read are then counted from
    /// here.
    pub start_offset: u64,
    /// Attempts in a row that may fail before the read gives up (each successful chunk resets
    /// the count). Default 5.
    pub max_attempts: u32,
    /// Wait before the first reopen; doubles per failed attempt, at most 5 s. Default 200 ms.
    pub initial_backoff: Duration,
    /// Chunks buffered between the download task and the reader. Default 8.
    pub buffered_chunks: usize,
}

impl Default for S3ReadOptions {
    fn default() -> Self {
        S3ReadOptions {
            start_offset: 0,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            buffered_chunks: 8,
        }
    }
}

/// The message of the error a read ends with when the object was replaced while it was read.
pub fn object_changed(loc: &S3Location) -> String {
    format!("{loc} changed while it was read (its ETag no longer matches); start again")
}

/// Opens `object` for streaming from `opts.start_offset`; the download runs on `runtime`.
///
/// The returned reader blocks (it must be used outside async code, e.g. in `spawn_blocking`);
/// nothing is fetched until it is first read.
pub fn open_reader(
    client: aws_sdk_s3::Client,
    object: &S3Object,
    opts: &S3ReadOptions,
    runtime: &tokio::runtime::Handle,
) -> Result<S3Reader, SourceError> {
    let name = object.location.to_string();
    if opts.start_offset > object.size {
        return Err(SourceError::invalid(
            &name,
            format!(
                "cannot start at byte {}: the object has {} bytes",
                opts.start_offset, object.size
            ),
        ));
    }
    let (tx, rx) = mpsc::channel(opts.buffered_chunks.max(1));
    let task = Pump {
        client,
        object: object.clone(),
        opts: opts.clone(),
        tx,
    };
    runtime.spawn(task.run());
    Ok(S3Reader {
        rx,
        current: Bytes::new(),
        received: 0,
        expected: object.size - opts.start_offset,
        done: false,
        name,
    })
}

/// The blocking end of an S3 read: a [`BufRead`] over the chunks the download task delivers.
pub struct S3Reader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    received: u64,
    expected: u64,
    done: bool,
    name: String,
}

impl S3Reader {
    /// Bytes handed out so far (from the start offset).
    pub fn received(&self) -> u64 {
        self.received
    }
}

impl BufRead for S3Reader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.current.is_empty() && !self.done {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    self.current = chunk;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    if self.received != self.expected {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "{}: the download ended after {} of {} bytes",
                                self.name, self.received, self.expected
                            ),
                        ));
                    }
                }
            }
        }
        Ok(&self.current)
    }

    fn consume(&mut self, amt: usize) {
        let _ = self.current.split_to(amt.min(self.current.len()));
    }
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::input::read_from_buffer(self, buf)
    }
}

/// The download task: GetObject from the next undelivered byte, with If-Match, until the end.
struct Pump {
    client: aws_sdk_s3::Client,
    object: S3Object,
    opts: S3ReadOptions,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

/// The longest wait between two reopens.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

enum Step {
    /// The whole object was delivered, or the reader went away.
    Stop,
    /// The body broke off: try again from the current offset.
    Retry(String),
}

impl Pump {
    async fn run(self) {
        let mut offset = self.opts.start_offset;
        let mut failures = 0u32;
        // One reader: nothing to spread out, so the delays are exact.
        let mut backoff = crate::retry::Backoff::new(self.opts.initial_backoff, MAX_BACKOFF)
            .with_jitter(crate::retry::Jitter::None);
        let loc = &self.object.location;
        loop {
            if offset >= self.object.size {
                return;
            }
            let before = offset;
            let step = self.attempt(&mut offset).await;
            let why = match step {
                Step::Stop => return,
                Step::Retry(why) => why,
            };
            if offset > before {
                failures = 0;
                backoff.reset();
            }
            failures += 1;
            if failures >= self.opts.max_attempts.max(1) {
                let _ = self
                    .tx
                    .send(Err(io::Error::other(format!(
                        "{loc}: giving up after {failures} attempts in a row at byte {offset}: {why}"
                    ))))
                    .await;
                return;
            }
            tracing::warn!(
                "{loc}: the download broke off at byte {offset} ({why}); resuming from there"
            );
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// One GetObject from `offset`; advances `offset` by what it delivered.
    async fn attempt(&self, offset: &mut u64) -> Step {
        let loc = &self.object.location;
        let mut req = self
            .client
            .get_object()
            .bucket(&loc.bucket)
            .key(&loc.key)
            .if_match(&self.object.etag);
        if *offset > 0 {
            req = req.range(format!("bytes={offset}-"));
        }
        if let Some(v) = &self.object.version_id {
            req = req.version_id(v);
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                let code = e.code().map(str::to_string);
                let fatal = match (status, code.as_deref()) {
                    (Some(412), _) | (_, Some("PreconditionFailed")) => Some(object_changed(loc)),
                    (Some(404), _) | (_, Some("NoSuchKey")) => {
                        Some(format!("{loc} no longer exists"))
                    }
                    (Some(403), _) => Some(format!("{loc}: access denied")),
                    _ => None,
                };
                if let Some(message) = fatal {
                    let _ = self.tx.send(Err(io::Error::other(message))).await;
                    return Step::Stop;
                }
                return Step::Retry(match &e {
                    SdkError::ServiceError(_) => DisplayErrorContext(&e).to_string(),
                    _ => format!("request failed: {}", DisplayErrorContext(&e)),
                });
            }
        };
        let mut body = out.body;
        loop {
            match body.next().await {
                Some(Ok(chunk)) => {
                    if chunk.is_empty() {
                        continue;
                    }
                    // Never hand out more than the object had when it was pinned.
                    let room = self.object.size - *offset;
                    let chunk = if (chunk.len() as u64) > room {
                        chunk.slice(..room as usize)
                    } else {
                        chunk
                    };
                    *offset += chunk.len() as u64;
                    if self.tx.send(Ok(chunk)).await.is_err() {
                        return Step::Stop; // the reader was dropped
                    }
                    if *offset >= self.object.size {
                        return Step::Stop;
                    }
                }
                Some(Err(e)) => return Step::Retry(format!("{}", DisplayErrorContext(&e))),
                None => {
                    return if *offset >= self.object.size {
                        Step::Stop
                    } else {
                        Step::Retry("the answer ended early".into())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_bad_ones_are_refused() {
        let l = S3Location::parse("s3://bucket/path/to/users.ndjson.gz").unwrap();
        assert_eq!(l.bucket, "bucket");
        assert_eq!(l.key, "path/to/users.ndjson.gz");
        assert_eq!(l.to_string(), "s3://bucket/path/to/users.ndjson.gz");
        for bad in [
            "s3://bucket",
            "s3://bucket/",
            "s3:///key",
            "/tmp/x",
            "s3:/b/k",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
        assert!(S3Location::is_s3("s3://b/k"));
        assert!(!S3Location::is_s3("./s3://b/k"));
    }

    #[test]
    fn reader_reports_a_short_download() {
        let (tx, rx) = mpsc::channel(2);
        tx.try_send(Ok(Bytes::from_static(b"abc"))).unwrap();
        drop(tx);
        let mut r = S3Reader {
            rx,
            current: Bytes::new(),
            received: 0,
            expected: 5,
            done: false,
            name: "s3://b/k".into(),
        };
        let mut s = String::new();
        let err = r.read_to_string(&mut s).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("after 3 of 5 bytes"), "{err}");
    }

    #[test]
    fn reader_passes_chunks_and_errors_through() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Ok(Bytes::from_static(b"hello "))).unwrap();
        tx.try_send(Ok(Bytes::from_static(b"world"))).unwrap();
        drop(tx);
        let mut r = S3Reader {
            rx,
            current: Bytes::new(),
            received: 0,
            expected: 11,
            done: false,
            name: "s3://b/k".into(),
        };
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
        assert_eq!(r.received(), 11);

        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Err(io::Error::other("the object changed")))
            .unwrap();
        let mut r = S3Reader {
            rx,
            current: Bytes::new(),
            received: 0,
            expected: 11,
            done: false,
            name: "s3://b/k".into(),
        };
        assert!(r.fill_buf().unwrap_err().to_string().contains("changed"));
    }
}
