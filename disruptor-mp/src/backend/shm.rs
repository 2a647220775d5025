//! Named POSIX shared-memory objects: `shm_open`, `ftruncate`, `fstat`, `shm_unlink`, and the name limit.
//!
//! Linux and macOS both provide these calls, with differences this module absorbs:
//! - **Name length.** Linux keeps objects as files under `/dev/shm`, so a name may have up to `NAME_MAX`
//!   (255) bytes. macOS refuses names longer than `PSHMNAMLEN` (31) bytes with `ENAMETOOLONG`;
//!   [`MAX_NAME_LEN`] is the limit of the platform being built, and names are checked against it before
//!   any call.
//! - **Sizing.** A macOS object can be sized only once (a second `ftruncate` fails with `EINVAL`) and its
//!   `fstat` size may be rounded up to a whole page. [`set_len`] sizes exactly once, and
//!   attachers only ever require the object to be *at least* the size the header claims.
//! - **Listing.** macOS has no `/dev/shm` (nor any other way to list objects), so nothing in the crate
//!   enumerates segments through the file system.
//! - **Reserving memory.** Linux reserves every page at creation (see [`reserve`]); macOS has no
//!   size-limited file system behind its objects and nothing to reserve.
//! - **Mode argument.** `shm_open` is variadic on macOS, where `mode_t` is 16 bits and a variadic argument
//!   must be passed at its promoted width; the mode is therefore a `c_uint` on both systems (Linux's
//!   `mode_t` is a `c_uint` too).

use super::SegmentObject;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

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

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

/// Creates a new, empty object, failing with `AlreadyExists` if the name is taken (`O_EXCL`). Size it with
/// [`set_len`]; the caller removes the name again if it gives up on the object.
pub(crate) fn create(name: &str, mode: libc::c_uint) -> io::Result<SegmentObject> {
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
    Ok(SegmentObject::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Sizes a freshly created object to `len` zero bytes and reserves its memory (see [`reserve`]). Call it
/// once: macOS cannot resize an object.
pub(crate) fn set_len(object: &SegmentObject, len: u64) -> io::Result<()> {
    let size = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    let fd = object.as_fd().as_raw_fd();
    // SAFETY: the descriptor is valid and open read-write.
    if unsafe { libc::ftruncate(fd, size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    reserve(fd, size)
}

/// Opens an existing object read-write.
pub(crate) fn open(name: &str) -> io::Result<SegmentObject> {
    open_with(name, libc::O_RDWR)
}

/// Opens an existing object read-only.
pub(crate) fn open_read_only(name: &str) -> io::Result<SegmentObject> {
    open_with(name, libc::O_RDONLY)
}

fn open_with(name: &str, access: libc::c_int) -> io::Result<SegmentObject> {
    let c_name = c_name(name)?;
    // SAFETY: `c_name` is a valid NUL-terminated string; the result is checked below.
    let fd = unsafe { libc::shm_open(c_name.as_ptr(), access, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by a successful `shm_open` and is owned by nobody else.
    Ok(SegmentObject::from_fd(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Reserves the memory behind the first `size` bytes of a freshly sized object, so that a file system too
/// small for the ring fails here, with `ENOSPC`, instead of killing the first process that touches an
/// unbacked page with `SIGBUS`.
///
/// Linux: `ftruncate` on tmpfs is sparse and `MAP_POPULATE` ignores allocation failures, so a ring larger
/// than the free space of `/dev/shm` (64 MiB in a default Docker container) would be created fine and then
/// fault on its first publish. `posix_fallocate` allocates every page now.
///
/// macOS: shared-memory objects are not files in a size-limited file system; their pages come from the
/// virtual-memory system (memory, then swap) when first touched, and there is no call to reserve them
/// ahead. A ring that does not fit in memory and swap fails as any other memory does there; nothing is
/// reserved here.
#[cfg(target_os = "linux")]
fn reserve(fd: libc::c_int, size: libc::off_t) -> io::Result<()> {
    loop {
        // SAFETY: the descriptor is valid and open read-write; `0..size` is within the sized object.
        // posix_fallocate returns the error number instead of setting errno.
        match unsafe { libc::posix_fallocate(fd, 0, size) } {
            0 => return Ok(()),
            libc::EINTR => continue,
            error => return Err(io::Error::from_raw_os_error(error)),
        }
    }
}

/// See the Linux version: macOS has nothing to reserve ahead.
#[cfg(target_os = "macos")]
fn reserve(_fd: libc::c_int, _size: libc::off_t) -> io::Result<()> {
    Ok(())
}

/// Where the object named `name` lives in the file system, for messages: `/dev/shm/NAME` on Linux;
/// `None` on macOS, whose objects have no path.
pub(crate) fn location(name: &str) -> Option<String> {
    #[cfg(target_os = "linux")]
    return Some(format!("/dev/shm/{}", name.trim_start_matches('/')));
    #[cfg(target_os = "macos")]
    {
        let _ = name;
        None
    }
}

/// Bytes still free for shared-memory objects (Linux: in the tmpfs mounted on `/dev/shm`), for error
/// messages; `None` where the platform cannot tell (macOS).
pub(crate) fn available_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `statvfs` is plain data for which all-zero bytes are valid.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: the path is a NUL-terminated literal and `stat` is a writable `struct statvfs`.
        if unsafe { libc::statvfs(c"/dev/shm".as_ptr(), &mut stat) } != 0 {
            return None;
        }
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    #[cfg(target_os = "macos")]
    None
}

/// The permission bits and owner of the object named `name`, for explaining a refused open: `None` where
/// the platform cannot tell without opening it (macOS) or the object is gone.
pub(crate) fn mode_and_owner(name: &str) -> Option<(u32, u32)> {
    #[cfg(target_os = "linux")]
    {
        let path = CString::new(location(name)?).ok()?;
        // SAFETY: `stat` is plain data for which all-zero bytes are valid.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is NUL-terminated and `stat` is a writable `struct stat`. Looking a file up in
        // `/dev/shm` needs no permission on the file itself.
        if unsafe { libc::stat(path.as_ptr(), &mut stat) } != 0 {
            return None;
        }
        Some((stat.st_mode & 0o7777, stat.st_uid))
    }
    #[cfg(target_os = "macos")]
    {
        let _ = name;
        None
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
