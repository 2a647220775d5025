//! Operating-system backends: the only code that calls `libc` to create, open and map segments.
//!
//! A backend yields a [`Mapping`]: a shared, read-write mapping of a whole segment that unmaps itself on
//! drop. Everything above this layer addresses the segment through the mapping's base pointer and length.

pub(crate) mod shm;

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
    /// Maps `len` bytes of `fd` shared and read-write; with `populate`, pre-faults the pages (on Linux) so
    /// the hot path takes no page faults.
    pub(crate) fn map(fd: libc::c_int, len: usize, populate: bool) -> io::Result<Mapping> {
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
        let flags = {
            let _ = populate;
            libc::MAP_SHARED
        };
        // SAFETY: a fresh mapping chosen by the kernel (null hint) overlaps nothing we own; `fd` is a valid
        // descriptor owned by the caller for the duration of the call; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mapping { base, len })
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
