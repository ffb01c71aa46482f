//! Reading a large local export: from the page cache where it is cached, with direct I/O where
//! it is not, a few chunks ahead of the parser on a reader thread.
//!
//! A plain buffered `read` of data that is not in the page cache first gives the kernel fresh
//! pages to read it into and then copies it out of them. On virtual machines whose host takes
//! back the guest's free memory (free page reporting, ballooning), touching those fresh pages
//! appears to be the expensive part (the profile shows the time in the copy out of them).
//! Measured here, reading a 3.4 GB export that had been evicted cost 2.2–2.7 s of system time
//! on every other run, against 0.4 s from the page cache and 0.1–0.2 s with `O_DIRECT`, which
//! reads straight into this reader's own (long since touched) buffers. For
//! `plan` of 5 million users that was up to a third of its time, and it also pushed the user's
//! other files out of the cache for data read exactly once.
//!
//! So each [`CHUNK`] is looked up first (`cachestat(2)`, Linux 6.5+): wholly cached, it is copied
//! from the cache (never slower than before, even from a slow disk); otherwise it is read with
//! `O_DIRECT`. Direct reads do not start the kernel's readahead, so a thread reads [`AHEAD`]
//! chunks ahead of the parser: the parser only waits for the disk where it would have anyway.
//!
//! Anything unusual falls back to the plain buffered reader, which is what the caller uses when
//! [`LocalFile::open`] gives the file back: not a regular file, smaller than a few chunks, no
//! `cachestat` (kernels before 6.5, or architectures with another syscall number), no
//! `/proc/self/fd`, a file system without `O_DIRECT`, or no thread. (A tmpfs file is always
//! wholly cached, so it is copied from memory however it was opened.) A direct read that fails
//! (`EINVAL` on an odd device) switches that chunk and all later ones to buffered reads; one that
//! comes back short (the end of the file) is completed buffered. The data read is the same on
//! every path.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::direct_io::{AlignedBuf as Chunk, ALIGN, CHUNK};

/// Chunks read ahead of the one being parsed.
const AHEAD: usize = 2;
/// Files smaller than this are read with the plain buffered reader.
const MIN_LEN: u64 = 4 * CHUNK as u64;
/// `cachestat(2)`, in the unified syscall table (x86_64, aarch64, riscv64, …; MIPS and Alpha
/// number it otherwise, and there the call fails and the buffered reader is used).
const SYS_CACHESTAT: libc::c_long = 451;

/// How many chunks were copied from the page cache and how many read directly.
#[derive(Default)]
struct Counts {
    cached: AtomicU64,
    direct: AtomicU64,
}

/// A large regular file read by a thread, a chunk at a time, ahead of the parser.
pub(crate) struct LocalFile {
    full: Option<Receiver<io::Result<Chunk>>>,
    empty: Option<SyncSender<Chunk>>,
    cur: Option<Chunk>,
    pos: usize,
    done: bool,
    /// The read error that ended the input, given again to every later call (as a buffered
    /// reader would retry and fail again), so that no caller can take it for the end.
    failed: Option<(io::ErrorKind, String)>,
    thread: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

impl LocalFile {
    /// `file` read as described in the module doc, or the file back when it should be read
    /// with the plain buffered reader.
    pub(crate) fn open(file: File) -> io::Result<Result<LocalFile, File>> {
        let meta = file.metadata()?;
        if !meta.is_file() || meta.len() < MIN_LEN || cached_pages(&file, 0, CHUNK).is_none() {
            return Ok(Err(file));
        }
        let Some(page) = page_size() else {
            return Ok(Err(file));
        };
        // The same open file, not the same path (which may have been replaced since).
        let direct = match File::options()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
        {
            Ok(d) => d,
            Err(_) => return Ok(Err(file)),
        };
        // Our own reads of the cached chunks must not start readahead: whatever it brought in
        // would land in fresh pages, which is what this reader avoids.
        readahead(&file, false);
        let (empty_tx, empty_rx) = sync_channel::<Chunk>(AHEAD + 1);
        let (full_tx, full_rx) = sync_channel::<io::Result<Chunk>>(AHEAD + 1);
        for _ in 0..=AHEAD {
            empty_tx.send(Chunk::new()).expect("the receiver is here");
        }
        let counts = Arc::new(Counts::default());
        let thread_counts = Arc::clone(&counts);
        // To fall back on if the thread cannot be started (reads are positioned, so sharing the
        // file's offset does not matter).
        let fallback = file.try_clone()?;
        let spawned = std::thread::Builder::new()
            .name("input-reader".into())
            .spawn(move || {
                let mut reader = Reader {
                    file,
                    direct: Some(direct),
                    offset: 0,
                    pages_per_chunk: CHUNK / page,
                    counts: thread_counts,
                };
                while let Ok(mut chunk) = empty_rx.recv() {
                    match reader.fill(&mut chunk) {
                        Ok(()) => {
                            let end = chunk.len == 0;
                            if full_tx.send(Ok(chunk)).is_err() || end {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = full_tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
        let thread = match spawned {
            Ok(t) => t,
            Err(_) => {
                readahead(&fallback, true);
                return Ok(Err(fallback));
            }
        };
        Ok(Ok(LocalFile {
            full: Some(full_rx),
            empty: Some(empty_tx),
            cur: None,
            pos: 0,
            done: false,
            failed: None,
            thread: Some(thread),
            counts,
        }))
    }

    /// (chunks copied from the page cache, chunks read directly) so far.
    #[cfg(test)]
    fn counts(&self) -> (u64, u64) {
        (
            self.counts.cached.load(Ordering::Relaxed),
            self.counts.direct.load(Ordering::Relaxed),
        )
    }
}

/// The reader thread's side.
struct Reader {
    file: File,
    /// The same file opened with `O_DIRECT`; `None` once a direct read failed.
    direct: Option<File>,
    offset: u64,
    /// Pages of the kernel's page size in a chunk (what `cachestat` counts in).
    pages_per_chunk: usize,
    counts: Arc<Counts>,
}

impl Reader {
    /// Fills `chunk` with the next bytes of the file: all [`CHUNK`] of them but at the end, so
    /// that offsets stay aligned for direct reads.
    fn fill(&mut self, chunk: &mut Chunk) -> io::Result<()> {
        let mut n = 0;
        let mut direct = false;
        let use_direct = self.offset.is_multiple_of(ALIGN as u64)
            && self.direct.is_some()
            && cached_pages(&self.file, self.offset, CHUNK)
                .is_some_and(|c| c < self.pages_per_chunk);
        if use_direct {
            let file = self.direct.as_ref().expect("checked");
            match read_at_retrying(file, chunk.all_mut(), self.offset) {
                Ok(k) => {
                    n = k;
                    direct = true;
                }
                // E.g. EINVAL from a device with larger blocks: read buffered from now on, with
                // the kernel's readahead back on.
                Err(_) => {
                    self.direct = None;
                    readahead(&self.file, true);
                }
            }
        }
        // Buffered: the whole chunk, or the rest of one a direct read left short (end of file,
        // or a file growing as it is read).
        while n < CHUNK {
            let k = read_at_retrying(
                &self.file,
                &mut chunk.all_mut()[n..],
                self.offset + n as u64,
            )?;
            if k == 0 {
                break;
            }
            n += k;
        }
        if n > 0 {
            let count = if direct {
                &self.counts.direct
            } else {
                &self.counts.cached
            };
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.offset += n as u64;
        chunk.len = n;
        Ok(())
    }
}

/// Turns the kernel's readahead for `file` on (the default) or off.
fn readahead(file: &File, on: bool) {
    let advice = if on {
        libc::POSIX_FADV_NORMAL
    } else {
        libc::POSIX_FADV_RANDOM
    };
    // SAFETY: an advisory call on a descriptor `file` owns; it reads no memory of ours.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, advice);
    }
}

/// The kernel's page size, in which `cachestat` counts (4 KiB on x86_64; 16 or 64 KiB on some
/// aarch64 systems).
fn page_size() -> Option<usize> {
    // SAFETY: sysconf reads no memory of ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n)
        .ok()
        .filter(|&p| p >= ALIGN && CHUNK.is_multiple_of(p))
}

fn read_at_retrying(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Pages of `file` in the page cache within `len` bytes from `offset`, or `None` if the
/// kernel cannot say (no `cachestat`).
fn cached_pages(file: &File, offset: u64, len: usize) -> Option<usize> {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = Range {
        off: offset,
        len: len as u64,
    };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat(fd, &range, &stat, 0) reads `range` and writes `stat`, both live and
    // of the kernel's layout (struct cachestat_range, struct cachestat).
    let r = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    (r == 0).then_some(stat.nr_cache as usize)
}

impl Read for LocalFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        super::input::read_from_buffer(self, out)
    }
}

impl BufRead for LocalFile {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if let Some((kind, message)) = &self.failed {
            return Err(io::Error::new(*kind, message.clone()));
        }
        let exhausted = self.cur.as_ref().is_none_or(|c| self.pos >= c.len);
        if exhausted && !self.done {
            if let (Some(chunk), Some(empty)) = (self.cur.take(), &self.empty) {
                // The thread may have stopped at the end or an error: then the chunk is freed.
                let _ = empty.send(chunk);
            }
            self.pos = 0;
            let failure = match self.full.as_ref().map(Receiver::recv) {
                Some(Ok(Ok(chunk))) if chunk.len > 0 => {
                    self.cur = Some(chunk);
                    None
                }
                Some(Ok(Ok(_))) => {
                    self.done = true;
                    None
                }
                Some(Ok(Err(e))) => Some(e),
                Some(Err(_)) | None => Some(io::Error::other("the input's reader thread stopped")),
            };
            if let Some(e) = failure {
                self.done = true;
                self.failed = Some((e.kind(), e.to_string()));
                return Err(e);
            }
        }
        Ok(match &self.cur {
            Some(c) if !self.done => &c.data()[self.pos..],
            _ => &[],
        })
    }

    fn consume(&mut self, n: usize) {
        let len = self.cur.as_ref().map_or(0, |c| c.len);
        self.pos = (self.pos + n).min(len);
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        // Closing both channels ends the thread wherever it waits; it finishes at most the one
        // read it is in.
        self.empty = None;
        self.full = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        tracing::debug!(
            "input: {} chunks of {CHUNK} bytes copied from the page cache, {} read directly",
            self.counts.cached.load(Ordering::Relaxed),
            self.counts.direct.load(Ordering::Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct TempFile(std::path::PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A file of `n` bytes that differ at every offset (so a chunk read at the wrong place
    /// shows), written and synced, in the crate's target directory (a disk, not tmpfs, so that
    /// direct reads are possible where the kernel has them).
    fn file_of(n: usize, tag: &str) -> (TempFile, Vec<u8>) {
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 4099) as u8).collect();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("local-file-{tag}-{}.bin", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        (TempFile(path), data)
    }

    fn evict(path: &std::path::Path, offset: u64, len: u64) {
        let f = File::open(path).unwrap();
        // SAFETY: an advisory call on our own descriptor.
        unsafe {
            libc::posix_fadvise(
                f.as_raw_fd(),
                offset as i64,
                len as i64,
                libc::POSIX_FADV_DONTNEED,
            );
        }
    }

    fn read_all(r: &mut impl BufRead) -> Vec<u8> {
        let mut got = Vec::new();
        let mut step = 1usize;
        loop {
            let buf = r.fill_buf().unwrap();
            if buf.is_empty() {
                break;
            }
            let take = step.min(buf.len());
            got.extend_from_slice(&buf[..take]);
            r.consume(take);
            step = step * 3 % 300_007 + 1;
        }
        got
    }

    #[test]
    fn small_files_are_left_to_the_buffered_reader() {
        let (f, _) = file_of(1000, "small");
        assert!(LocalFile::open(File::open(&f.0).unwrap()).unwrap().is_err());
    }

    #[test]
    fn reads_every_byte_of_a_partly_cached_file_from_both_paths() {
        let n = 9 * CHUNK + 12_345;
        let (f, data) = file_of(n, "partly");
        // Chunks 2..5 and the tail leave the page cache; the rest stays.
        evict(&f.0, 2 * CHUNK as u64, 3 * CHUNK as u64);
        evict(&f.0, 8 * CHUNK as u64, 0);
        // Which chunks the cache lacks now, as the kernel reports it (the last one is partial,
        // so never wholly cached).
        let probe = File::open(&f.0).unwrap();
        let per_chunk = CHUNK / page_size().unwrap_or(ALIGN);
        let missing: Vec<usize> = (0..10)
            .filter(|i| cached_pages(&probe, (i * CHUNK) as u64, CHUNK).unwrap_or(0) < per_chunk)
            .collect();
        let file = File::open(&f.0).unwrap();
        let mut r = match LocalFile::open(file).unwrap() {
            Ok(r) => r,
            Err(file) => {
                // No cachestat or no O_DIRECT here: the caller's buffered reader is used.
                eprintln!("local_file: not available on this machine, checking the fallback");
                let got = read_all(&mut io::BufReader::new(file));
                assert!(got == data, "bytes differ");
                return;
            }
        };
        // Only the advised chunks can be missing. How many go depends on the file system (tmpfs
        // keeps them all, leaving the partial last chunk alone) and on the kernel (a page still
        // in a per-CPU batch stays).
        assert!(
            missing.contains(&9) && missing.iter().all(|i| [2, 3, 4, 8, 9].contains(i)),
            "the evicted chunks: {missing:?}"
        );
        let got = read_all(&mut r);
        assert_eq!(got.len(), n);
        assert!(got == data, "bytes differ");
        assert!(r.fill_buf().unwrap().is_empty(), "the end stays the end");
        // Cached chunks were copied from the cache, the others read directly, one read each
        // (more directly if memory pressure evicted a page since the probe).
        let (cached, direct) = r.counts();
        assert_eq!(cached + direct, 10);
        assert!(
            direct >= missing.len() as u64,
            "{missing:?}: ({cached}, {direct})"
        );
        assert!(cached >= 1, "({cached}, {direct})");
    }

    #[test]
    fn a_read_error_is_given_again_never_taken_for_the_end() {
        let (f, _) = file_of(5 * CHUNK, "error");
        let mut r = LocalFile::open(File::open(&f.0).unwrap()).unwrap().ok();
        let Some(r) = r.as_mut() else { return };
        // What the thread sends when a read fails.
        let (tx, rx) = sync_channel(1);
        tx.send(Err(io::Error::other("disk gone"))).unwrap();
        r.full = Some(rx);
        r.cur = None;
        for _ in 0..3 {
            let e = r.fill_buf().unwrap_err();
            assert!(e.to_string().contains("disk gone"), "{e}");
        }
    }

    #[test]
    fn read_trait_and_dropping_early_work() {
        let n = 5 * CHUNK;
        let (f, data) = file_of(n, "read");
        evict(&f.0, 0, 0);
        let file = File::open(&f.0).unwrap();
        let Ok(mut r) = LocalFile::open(file).unwrap() else {
            return;
        };
        let mut small = [0u8; 1000];
        let k = r.read(&mut small).unwrap();
        assert!(k > 0);
        assert_eq!(&small[..k], &data[..k]);
        let mut rest = Vec::new();
        (&mut r)
            .take(2 * CHUNK as u64)
            .read_to_end(&mut rest)
            .unwrap();
        assert!(rest == data[k..k + 2 * CHUNK]);
        // Dropped with the thread still reading ahead: it stops and is joined.
        drop(r);
    }
}
