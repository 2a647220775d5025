//! An open segment, whatever holds it: a POSIX shared-memory object ([`shm`](super::shm)) or a regular
//! file ([`file`](super::file)). Both are plain descriptors once open, so everything after the open (size,
//! identity, mapping, the liveness locks taken on it) is the same code.

use super::Mapping;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// An open segment. The descriptor closes on drop; the name stays until its backend removes it.
#[derive(Debug)]
pub(crate) struct SegmentObject {
    fd: OwnedFd,
}

impl SegmentObject {
    /// Wraps the descriptor of a shared-memory object or a ring file, open read-write.
    pub(crate) fn from_fd(fd: OwnedFd) -> SegmentObject {
        SegmentObject { fd }
    }

    /// The object's current size in bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        Ok(self.stat()?.st_size as u64)
    }

    /// Whether `other` is an open of the same object (same device and inode), e.g. to tell whether a name
    /// still leads to an object opened earlier. macOS gives shared-memory objects no inode numbers to
    /// compare; there two opens compare equal when their sizes do, which is weaker (files have inodes on
    /// both systems).
    pub(crate) fn same_object(&self, other: &SegmentObject) -> io::Result<bool> {
        let (a, b) = (self.stat()?, other.stat()?);
        Ok((a.st_dev, a.st_ino, a.st_size) == (b.st_dev, b.st_ino, b.st_size))
    }

    /// The object's permission bits and its owner's user id.
    pub(crate) fn mode_and_owner(&self) -> io::Result<(u32, u32)> {
        let stat = self.stat()?;
        // `mode_t` is 32 bits on Linux and 16 on macOS.
        #[allow(clippy::useless_conversion)]
        let mode = u32::from(stat.st_mode);
        Ok((mode & 0o7777, stat.st_uid))
    }

    fn stat(&self) -> io::Result<libc::stat> {
        // SAFETY: `stat` is plain data for which all-zero bytes are valid.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is valid and `stat` is a writable `struct stat`.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stat)
    }

    /// Maps the first `len` bytes shared and read-write (see [`Mapping::map`] for `populate`).
    pub(crate) fn map(&self, len: u64, populate: bool) -> io::Result<Mapping> {
        Mapping::map(self.fd.as_raw_fd(), address_space_len(len)?, populate)
    }

    /// Maps `len` bytes from `offset` (a multiple of the page size) shared and read-only, pre-faulted if
    /// `populate`.
    pub(crate) fn map_read_only_at(
        &self,
        offset: u64,
        len: u64,
        populate: bool,
    ) -> io::Result<Mapping> {
        Mapping::map_read_only_at(
            self.fd.as_raw_fd(),
            address_space_len(offset)?,
            address_space_len(len)?,
            populate,
        )
    }

    /// Maps the first `len` bytes shared and read-only.
    pub(crate) fn map_read_only(&self, len: u64) -> io::Result<Mapping> {
        Mapping::map_read_only(self.fd.as_raw_fd(), address_space_len(len)?)
    }
}

fn address_space_len(len: u64) -> io::Result<usize> {
    usize::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "segment larger than the address space",
        )
    })
}

/// The object's descriptor, for the liveness lock (`backend::liveness`), which is taken on it.
impl AsFd for SegmentObject {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
