//! Writing one import file: with direct I/O on a writer thread where the file system has it,
//! through a buffer and early write-back elsewhere; `fsync`ed when finished either way.
//!
//! Import files are large (up to 100 MB each, 1.35 GB for five million users) and written once.
//! Buffered, every byte is copied into a fresh page-cache page, which on virtual machines whose
//! host reclaims free guest memory costs a host fault per page (see [`crate::direct_io`]), and
//! the files push the user's other data out of the cache. Direct, the bytes go from this
//! writer's own two [`CHUNK`] buffers to the device: one is filled while a thread writes the
//! other, so the writer only waits when the disk is slower than the rows are made. The last
//! partial block is written through the page cache (direct writes must be whole blocks), then the
//! file is synced.
//!
//! Where direct I/O is refused (tmpfs, non-Linux systems, or a direct write failing with
//! `EINVAL`), the data goes through a 1 MiB buffer and the kernel is asked to start writing back
//! every 8 MiB ([`Buffered::start_writeback`]), so that the `fsync` at the end finds little
//! left to do. The bytes in the file are the same on every path.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::chunks::create_private;
#[cfg(target_os = "linux")]
use crate::direct_io::{set_direct, AlignedBuf, ALIGN, CHUNK};

/// An import file being written; [`OutFile::finish`] completes it.
pub(crate) struct OutFile {
    inner: Inner,
}

enum Inner {
    #[cfg(target_os = "linux")]
    Direct(Direct),
    Buffered(Buffered),
}

impl OutFile {
    /// Creates `path` (mode 0600, truncated).
    pub(crate) fn create(path: &Path) -> io::Result<OutFile> {
        let file = create_private(path)?;
        #[cfg(target_os = "linux")]
        if set_direct(&file, true).is_ok() {
            return Ok(OutFile {
                inner: Inner::Direct(Direct::start(file)?),
            });
        }
        Ok(OutFile {
            inner: Inner::Buffered(Buffered {
                out: BufWriter::with_capacity(1 << 20, file),
                written: 0,
                written_back: 0,
            }),
        })
    }

    /// Whether the file is written with direct I/O.
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        !matches!(self.inner, Inner::Buffered(_))
    }

    /// Writes what is still buffered, waits for it, and syncs the file to disk.
    pub(crate) fn finish(self) -> io::Result<()> {
        match self.inner {
            #[cfg(target_os = "linux")]
            Inner::Direct(d) => d.finish(),
            Inner::Buffered(mut b) => {
                b.out.flush()?;
                b.out.get_ref().sync_all()
            }
        }
    }
}

impl Write for OutFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            #[cfg(target_os = "linux")]
            Inner::Direct(d) => d.write_all(data),
            Inner::Buffered(b) => {
                b.out.write_all(data)?;
                b.written += data.len() as u64;
                b.start_writeback();
                Ok(())
            }
        }
    }

    /// Nothing to do before [`OutFile::finish`]: direct writes can only be whole blocks, and the
    /// file is only complete (and synced) when finished.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Buffered {
    out: BufWriter<File>,
    /// Bytes accepted so far.
    written: u64,
    /// Bytes of the file handed to the kernel for write-back so far.
    written_back: u64,
}

/// How often (in bytes written) a buffered file's new data is handed to the kernel for
/// write-back.
const WRITEBACK_EVERY: u64 = 8 << 20;

impl Buffered {
    /// Starts (does not wait for) the write-back to disk of what has reached the file since the
    /// last call, so that the `fsync` when the file is closed finds little left to write:
    /// without it the whole file (up to 100 MB) is written out while the process waits.
    /// Linux only (`sync_file_range`, `SYNC_FILE_RANGE_WRITE`); elsewhere `fsync` does it all.
    fn start_writeback(&mut self) {
        let on_disk = self.written - self.out.buffer().len() as u64;
        if on_disk < self.written_back + WRITEBACK_EVERY {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::io::AsRawFd;
            let fd = self.out.get_ref().as_raw_fd();
            let (from, len) = (self.written_back, on_disk - self.written_back);
            // SAFETY: a plain system call on a file descriptor this struct owns; it reads no
            // memory of ours. Failure is harmless (the fsync at close writes everything).
            unsafe {
                libc::sync_file_range(
                    fd,
                    from as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.written_back = on_disk;
    }
}

/// What the filling side sends the writer thread.
#[cfg(target_os = "linux")]
enum Job {
    /// A full buffer, written at the next offset.
    Write(AlignedBuf),
    /// The last (partial) buffer: written, then the file is synced and the thread ends.
    Finish(AlignedBuf),
}

#[cfg(target_os = "linux")]
struct Direct {
    /// The buffer being filled.
    cur: AlignedBuf,
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    /// Written buffers coming back for reuse, or the write's error.
    back: std::sync::mpsc::Receiver<io::Result<AlignedBuf>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

#[cfg(target_os = "linux")]
impl Direct {
    fn start(file: File) -> io::Result<Direct> {
        use std::sync::mpsc::sync_channel;
        let (jobs_tx, jobs_rx) = sync_channel::<Job>(1);
        let (back_tx, back_rx) = sync_channel::<io::Result<AlignedBuf>>(2);
        // The second buffer, ready for when the first is full.
        back_tx
            .send(Ok(AlignedBuf::new()))
            .expect("the receiver is here");
        let thread = std::thread::Builder::new()
            .name("import-file-writer".into())
            .spawn(move || {
                let mut w = DirectWriter {
                    file,
                    offset: 0,
                    direct: true,
                };
                for job in jobs_rx {
                    match job {
                        Job::Write(buf) => match w.write(buf.data()) {
                            Ok(()) => {
                                let _ = back_tx.send(Ok(buf));
                            }
                            Err(e) => {
                                let _ = back_tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                                return Err(e);
                            }
                        },
                        Job::Finish(buf) => {
                            w.write(buf.data())?;
                            return w.file.sync_all();
                        }
                    }
                }
                // Dropped unfinished (the plan failed): the file is left as it is.
                Ok(())
            })?;
        Ok(Direct {
            cur: AlignedBuf::new(),
            jobs: Some(jobs_tx),
            back: back_rx,
            thread: Some(thread),
        })
    }

    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let at = self.cur.len;
            let n = data.len().min(CHUNK - at);
            self.cur.all_mut()[at..at + n].copy_from_slice(&data[..n]);
            self.cur.len += n;
            data = &data[n..];
            if self.cur.len == CHUNK {
                self.hand_off()?;
            }
        }
        Ok(())
    }

    /// Sends the full buffer to the thread and takes the other one back.
    fn hand_off(&mut self) -> io::Result<()> {
        let next = match self.back.recv() {
            Ok(Ok(buf)) => buf,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(self.stopped()),
        };
        let full = std::mem::replace(&mut self.cur, next);
        self.cur.len = 0;
        let jobs = self.jobs.as_ref().expect("open until finished");
        if jobs.send(Job::Write(full)).is_err() {
            return Err(self.stopped());
        }
        Ok(())
    }

    /// The thread's error, once it has stopped early.
    fn stopped(&mut self) -> io::Error {
        self.jobs = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the import file's writer thread stopped"),
        }
    }

    fn finish(mut self) -> io::Result<()> {
        let last = std::mem::replace(&mut self.cur, AlignedBuf::new());
        let jobs = self.jobs.take().expect("open until finished");
        if jobs.send(Job::Finish(last)).is_err() {
            return Err(self.stopped());
        }
        drop(jobs);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the import file's writer thread panicked")),
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Direct {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The writer thread's side.
#[cfg(target_os = "linux")]
struct DirectWriter {
    file: File,
    offset: u64,
    /// False once the file is written through the page cache (the tail, or after `EINVAL`).
    direct: bool,
}

#[cfg(target_os = "linux")]
impl DirectWriter {
    /// Writes `data` at the current offset: whole blocks directly, a partial last block (only
    /// ever at the end of the file) through the page cache.
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let whole = data.len() / ALIGN * ALIGN;
        let mut done = 0;
        if self.direct && whole > 0 {
            match self.file.write_all_at(&data[..whole], self.offset) {
                Ok(()) => done = whole,
                // A device with larger blocks, or a short write that left an odd offset: the
                // same bytes again, buffered (writing them twice at the same place is harmless).
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.buffered()?,
                Err(e) => return Err(e),
            }
        }
        if done < data.len() {
            self.buffered()?;
            self.file
                .write_all_at(&data[done..], self.offset + done as u64)?;
        }
        self.offset += data.len() as u64;
        Ok(())
    }

    fn buffered(&mut self) -> io::Result<()> {
        if self.direct {
            set_direct(&self.file, false)?;
            self.direct = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_and_read(n: usize, step: usize, tag: &str) -> (bool, Vec<u8>, Vec<u8>) {
        // In the crate's target directory: a disk, not tmpfs, so that direct I/O is possible.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("out-file-{tag}-{}.csv", std::process::id()));
        let data: Vec<u8> = (0..n).map(|i| (i * 13 + i / 4093) as u8).collect();
        let mut f = OutFile::create(&path).unwrap();
        let direct = f.is_direct();
        for part in data.chunks(step) {
            f.write_all(part).unwrap();
        }
        f.finish().unwrap();
        let got = std::fs::read(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_file(&path).unwrap();
        (direct, data, got)
    }

    #[test]
    fn the_file_holds_exactly_the_bytes_written_at_any_size() {
        for (n, step, tag) in [
            (0, 1, "empty"),
            (1, 1, "one"),
            (4095, 100, "under-a-block"),
            (4096, 4096, "a-block"),
            (3 * (1 << 20) + 7, 997, "chunks-and-tail"),
            (2 * (1 << 20), 1 << 20, "whole-chunks"),
            (5 * (1 << 20) + 4096 + 1, 65_537, "many-chunks"),
        ] {
            let (direct, data, got) = write_and_read(n, step, tag);
            if tag == "one" {
                eprintln!(
                    "out_file: direct I/O {}",
                    if direct { "used" } else { "not available" }
                );
            }
            assert_eq!(got.len(), data.len(), "{tag}");
            assert!(got == data, "{tag}: bytes differ");
        }
    }

    #[test]
    fn the_page_cache_is_left_alone_where_direct_io_is_used() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let path = dir.join(format!("out-file-cache-{}.csv", std::process::id()));
        let mut f = OutFile::create(&path).unwrap();
        if !f.is_direct() {
            return;
        }
        f.write_all(&vec![b'x'; 4 << 20]).unwrap();
        f.finish().unwrap();
        // mincore through a mapping: how many of the file's pages are in the page cache.
        let file = File::open(&path).unwrap();
        let len = 4 << 20;
        use std::os::unix::io::AsRawFd;
        // SAFETY: a read-only shared mapping of our own file, only passed to mincore, unmapped
        // below; nothing reads through it.
        let resident = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let mut vec = vec![0u8; len / 4096];
            assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0);
            libc::munmap(p, len);
            vec.iter().filter(|b| **b & 1 == 1).count()
        };
        std::fs::remove_file(&path).unwrap();
        assert!(resident < 16, "{resident} of 1024 pages cached");
    }
}
