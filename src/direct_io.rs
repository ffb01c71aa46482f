//! What reading and writing large files with `O_DIRECT` needs: aligned buffers, and switching a
//! descriptor's direct mode.
//!
//! Large exports are read ([`crate::source`]'s `local_file`) and import files written
//! ([`crate::plan::out_file`]) with direct I/O where the data is not in the page cache, because
//! on virtual machines whose host reclaims the guest's free memory, every fresh page-cache page
//! costs a host fault on first touch: measured on this project's 2-core VM, buffered writes of
//! 1.3 GB into a new file took 0.3–3.0 s of system time and direct ones 0.12–0.14 s; reads of an
//! evicted 3.4 GB export 0.4–2.7 s against 0.1–0.2 s. Direct I/O transfers between the device and
//! the process's own buffers, which it touched once and reuses. Linux only.

use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::ptr::NonNull;

/// Direct I/O alignment of buffers, offsets and lengths (the largest logical block size in use).
pub(crate) const ALIGN: usize = 4096;
/// Bytes per buffer (and per direct read or write): large enough to keep a disk busy with one
/// request, small enough that the few buffers in flight are a few MiB.
pub(crate) const CHUNK: usize = 1 << 20;

/// One [`ALIGN`]-aligned buffer of [`CHUNK`] bytes, of which the first `len` hold data.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    pub len: usize,
}

// SAFETY: an AlignedBuf owns its allocation alone; it is handed between threads whole, never
// shared.
unsafe impl Send for AlignedBuf {}

impl AlignedBuf {
    fn layout() -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(CHUNK, ALIGN).expect("valid layout")
    }

    pub fn new() -> AlignedBuf {
        // Zeroed, so that the whole buffer is initialised memory from the start.
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(AlignedBuf::layout()) };
        let ptr = NonNull::new(ptr)
            .unwrap_or_else(|| std::alloc::handle_alloc_error(AlignedBuf::layout()));
        AlignedBuf { ptr, len: 0 }
    }

    /// All [`CHUNK`] bytes.
    pub fn all_mut(&mut self) -> &mut [u8] {
        // SAFETY: CHUNK initialised bytes owned by `self`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), CHUNK) }
    }

    /// The first `len` bytes.
    pub fn data(&self) -> &[u8] {
        // SAFETY: `len <= CHUNK` initialised bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len.min(CHUNK)) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `AlignedBuf::new` with this layout and not freed before.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), AlignedBuf::layout()) }
    }
}

/// Turns `O_DIRECT` on or off for `file`'s open file description. Fails (`EINVAL`) where the
/// file system has no direct I/O, e.g. tmpfs.
pub(crate) fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns; F_GETFL/F_SETFL read and set flags only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        if libc::fcntl(fd, libc::F_SETFL, flags) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
