//! Named POSIX shared-memory objects: `shm_open`, `ftruncate`, `fstat`, `shm_unlink`, and the name limit.
//!
//! Linux and macOS both provide these calls, with differences this module absorbs:
//! - **Name length.** Linux keeps objects as files under `/dev/shm`, so a name may have up to `NAME_MAX`
//!   (255) bytes. macOS refuses names longer than `PSHMNAMLEN` (31) bytes with `ENAMETOOLONG`;
//!   [`MAX_NAME_LEN`] is the limit of the platform being built, and names are checked against it before
//!   any call.
//! - **Sizing.** A macOS object can be sized only once (a second `ftruncate` fails with `EINVAL`) and its
//!   `fstat` size may be rounded up to a whole page. [`ShmObject::create`] sizes exactly once, and
//!   attachers only ever require the object to be *at least* the size the header claims.
//! - **Listing.** macOS has no `/dev/shm` (nor any other way to list objects), so nothing in the crate
//!   enumerates segments through the file system.
//! - **Mode argument.** `shm_open` is variadic on macOS, where `mode_t` is 16 bits and a variadic argument
//!   must be passed at its promoted width; the mode is therefore a `c_uint` on both systems (Linux's
//!   `mode_t` is a `c_uint` too).

use super::Mapping;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Longest object name the platform accepts, leading slash included: Linux's `NAME_MAX`.
#[cfg(target_os = "linux")]
pub(crate) const MAX_NAME_LEN: usize = 255;
/// Longest object name the platform accepts, leading slash included: macOS's `PSHMNAMLEN`.
#[cfg(target_os = "macos")]
pub(crate) const MAX_NAME_LEN: usize = 31;

/// The platform [`MAX_NAME_LEN`] belongs to, for error messages.
#[cfg(target_os = "linux")]
pub(crate) const PLATFORM_NAME: &str = "Linux";
/// The platform [`MAX_NAME_LEN`] belongs to, for error messages.
#[cfg(target_os = "macos")]
pub(crate) const PLATFORM_NAME: &str = "macOS";

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
    pub(crate) fn create(name: &str, len: usize, mode: libc::c_uint) -> io::Result<ShmObject> {
        let c_name = c_name(name)?;
        // SAFETY: `c_name` is a valid NUL-terminated string; the returned descriptor is checked and then
        // owned by `OwnedFd`.
        let fd = unsafe {
            libc::shm_open(
                c_name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
                mode,
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

/// The object's descriptor, for the liveness lock (`backend::liveness`), which is taken on it.
impl AsFd for ShmObject {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
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
