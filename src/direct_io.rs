//! The aligned buffers that reading with `O_DIRECT` needs.
//!
//! Large exports are read ([`crate::source`]'s `local_file`) with direct I/O where the data is not
//! in the page cache, because on virtual machines whose host reclaims the guest's free memory,
//! every fresh page-cache page seems to cost a host fault on first touch. Measured on this
//! project's 2-core VM, reads of an evicted 3.4 GB export took 0.4–2.7 s of system time
//! buffered against 0.1–0.2 s direct. Direct I/O transfers between the device and the process's own buffers, which
//! it touched once and reuses. Linux only.
//!
//! (Import files written the same way, on a writer thread, measured no better than buffered
//! writes with early write-back, see `plan::chunks`, and cost 6 MB more memory: not kept.)

use std::ptr::NonNull;

/// Direct I/O alignment of buffers, offsets and lengths (the largest logical block size in use).
pub(crate) const ALIGN: usize = 4096;
/// Bytes per buffer (and per direct read): large enough to keep a disk busy with one
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
