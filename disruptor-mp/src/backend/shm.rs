//! POSIX shared-memory backend: `shm_open`, `ftruncate`, `fstat`, `mmap`, `shm_unlink`.

use super::Mapping;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An open shared-memory object. The descriptor closes on drop; the name stays until [`unlink`].
#[derive(Debug)]
pub(crate) struct ShmObject {
    fd: OwnedFd,
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

impl ShmObject {
    /// Creates a new object, failing with `AlreadyExists` if the name is taken (`O_EXCL`), and sizes it
    /// to `len` zero bytes.
    pub(crate) fn create(name: &str, len: usize, mode: u32) -> io::Result<ShmObject> {
        let c_name = c_name(name)?;
        // SAFETY: `c_name` is a valid NUL-terminated string; the returned descriptor is checked and then
        // owned by `OwnedFd`.
        let fd = unsafe {
            libc::shm_open(
                c_name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                mode as libc::mode_t,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by a successful `shm_open` and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let object = ShmObject { fd };
        let size = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        // SAFETY: the descriptor is valid and open read-write.
        if unsafe { libc::ftruncate(object.fd.as_raw_fd(), size) } != 0 {
            let error = io::Error::last_os_error();
            // Do not leave a zero-length object behind under a name we just claimed.
            let _ = unlink(name);
            return Err(error);
        }
        Ok(object)
    }

    /// Opens an existing object read-write.
    pub(crate) fn open(name: &str) -> io::Result<ShmObject> {
        let c_name = c_name(name)?;
        // SAFETY: `c_name` is a valid NUL-terminated string; the result is checked below.
        let fd = unsafe { libc::shm_open(c_name.as_ptr(), libc::O_RDWR, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by a successful `shm_open` and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(ShmObject { fd })
    }

    /// The object's current size in bytes.
    pub(crate) fn len(&self) -> io::Result<u64> {
        // SAFETY: `stat` is plain data for which all-zero bytes are valid.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the descriptor is valid and `stat` is a writable `struct stat`.
        if unsafe { libc::fstat(self.fd.as_raw_fd(), &mut stat) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stat.st_size as u64)
    }

    /// Maps the first `len` bytes shared and read-write (see [`Mapping::map`] for `populate`).
    pub(crate) fn map(&self, len: usize, populate: bool) -> io::Result<Mapping> {
        Mapping::map(self.fd.as_raw_fd(), len, populate)
    }
}

/// Removes the name; processes that have the object mapped keep their mapping.
pub(crate) fn unlink(name: &str) -> io::Result<()> {
    let c_name = c_name(name)?;
    // SAFETY: `c_name` is a valid NUL-terminated string.
    if unsafe { libc::shm_unlink(c_name.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
