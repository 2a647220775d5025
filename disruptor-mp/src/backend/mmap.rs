//! Shared read-write mappings of a segment: `mmap`, `munmap`, and pre-faulting.
//!
//! A [`Mapping`] maps a whole segment shared and read-write and unmaps itself on drop. Everything above the
//! backend addresses the segment through the mapping's base pointer and length.
//!
//! Pre-faulting keeps page faults off the hot path. Linux does it in the `mmap` call (`MAP_POPULATE`).
//! macOS has no such flag, and `madvise(MADV_WILLNEED)` is only a hint that need not map anything, so there
//! the mapping is pre-faulted by reading one byte of every page; this maps each page of the shared object
//! into the process (a first write may still take a cheap soft fault to mark the page dirty).

use std::io;
use std::ptr::NonNull;

/// A shared read-write mapping of a segment, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all concurrent access to it goes through atomics or through
// the ring protocol, which the segment and ring layers uphold. The pointer itself may move between threads.
unsafe impl Send for Mapping {}
// SAFETY: as above; `Mapping` exposes only its base pointer and length.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write; with `populate`, pre-faults the pages so the hot
    /// path takes no page faults (see the module docs for how each platform does it).
    pub(crate) fn map(fd: libc::c_int, len: usize, populate: bool) -> io::Result<Mapping> {
        Mapping::map_with(fd, 0, len, populate, libc::PROT_READ | libc::PROT_WRITE)
    }

    /// Maps `len` bytes of `fd` shared and read-only: for looking at a segment without being able to
    /// change it (see `observability`). Not pre-faulted.
    pub(crate) fn map_read_only(fd: libc::c_int, len: usize) -> io::Result<Mapping> {
        Mapping::map_with(fd, 0, len, false, libc::PROT_READ)
    }

    /// Maps `len` bytes of `fd` from `offset` (a multiple of the page size) shared and read-only, with
    /// `populate` as for [`map`](Self::map): a consumer's view of the event slots, which it only reads.
    pub(crate) fn map_read_only_at(
        fd: libc::c_int,
        offset: usize,
        len: usize,
        populate: bool,
    ) -> io::Result<Mapping> {
        Mapping::map_with(fd, offset, len, populate, libc::PROT_READ)
    }

    /// The system's page size (mapping offsets must be multiples of it).
    pub(crate) fn page_size() -> usize {
        // SAFETY: sysconf only reads a system value; -1 (error) is handled below.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(page)
            .ok()
            .filter(|&p| p > 0)
            .unwrap_or(4096)
    }

    fn map_with(
        fd: libc::c_int,
        offset: usize,
        len: usize,
        populate: bool,
        protection: libc::c_int,
    ) -> io::Result<Mapping> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot map an empty segment",
            ));
        }
        #[cfg(target_os = "linux")]
        let flags = if populate {
            libc::MAP_SHARED | libc::MAP_POPULATE
        } else {
            libc::MAP_SHARED
        };
        #[cfg(not(target_os = "linux"))]
        let flags = libc::MAP_SHARED;
        // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps nothing we own; `fd` is a valid
        // descriptor owned by the caller for the duration of the call; a misaligned or out-of-range offset
        // makes mmap fail, which is checked below.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, protection, flags, fd, offset) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        let mapping = Mapping { base, len };
        #[cfg(not(target_os = "linux"))]
        if populate {
            mapping.touch_every_page();
        }
        Ok(mapping)
    }

    /// Reads one byte of every page, so each is mapped before the hot path needs it (platforms without
    /// `MAP_POPULATE`). The read is atomic because other processes may be writing the same bytes.
    #[cfg(not(target_os = "linux"))]
    fn touch_every_page(&self) {
        use std::sync::atomic::{AtomicU8, Ordering};
        let page = Mapping::page_size();
        for offset in (0..self.len).step_by(page) {
            // SAFETY: `offset < len`, so the byte lies inside this live mapping and any value is a valid
            // `AtomicU8`. Another process may be writing the byte (a producer filling slots while a
            // consumer attaches); the load is atomic so that it never forms a data race in this process,
            // and its value is discarded.
            let byte = unsafe { AtomicU8::from_ptr(self.base.as_ptr().add(offset)) };
            std::hint::black_box(byte.load(Ordering::Relaxed));
        }
    }

    /// The first byte of the mapping (page-aligned).
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` describe exactly the mapping created in `map`, and every reference into it is
        // tied to a borrow of the segment that owns this `Mapping`, so none outlives it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
