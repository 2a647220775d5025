//! Rings stored in regular files: creating, installing and opening a file that is then memory-mapped.
//!
//! A [`RingPath`] opens the ring file's parent directory once and does everything else relative to that
//! descriptor (`openat`, `renameat2`/`renameatx_np`, `linkat`, `unlinkat`, `fstatat`), so a directory that
//! is renamed or swapped for another after [`RingPath::new`] cannot redirect a later call. A new ring is
//! built in a temporary file next to its final name ([`RingPath::create_temp`], [`set_len`]) and only then
//! given that name ([`RingPath::install`]), which never replaces an existing file: whoever opens the name
//! finds either nothing or a fully built file. The final path component is never followed if it is a
//! symbolic link, and only regular files are opened.
//!
//! The directory must not let another user replace the ring file: one writable by its group or by others
//! is refused unless it is sticky (as `/tmp` is), because in a sticky directory only a file's owner (or the
//! directory's, or root) may rename or remove it.
//!
//! Linux and macOS differ in these ways, which this module absorbs:
//! - **Renaming without replacing.** Linux has `renameat2(RENAME_NOREPLACE)`, called through `syscall`
//!   because older C libraries lack a wrapper; a kernel without it (`ENOSYS`) or a file system without it
//!   (`EINVAL`, `EOPNOTSUPP`) gets a fallback. macOS has `renameatx_np(RENAME_EXCL)`, which fails with
//!   `ENOTSUP` on file systems without it. The fallback on both is `linkat` to the final name, which fails
//!   if the name exists, then `unlinkat` of the temporary name.
//! - **Reserving blocks.** A sparse file whose blocks cannot be allocated later kills the first process to
//!   touch an unbacked page with `SIGBUS`. Linux reserves them with `posix_fallocate` after `ftruncate`;
//!   macOS with `fcntl(F_PREALLOCATE)` before it. Both report a full disk as `ENOSPC` from [`set_len`].
//! - **Symbolic links.** `O_NOFOLLOW` fails with `ELOOP` on both systems when the last component is a
//!   link; the file is then looked at with `fstatat(AT_SYMLINK_NOFOLLOW)` to tell why the open failed.
//! - **Mode width.** `mode_t` is 16 bits on macOS and 32 on Linux; `openat` is variadic, so its mode is
//!   passed as a `c_uint`, its promoted width, on both.

use std::collections::hash_map::RandomState;
use std::ffi::{CStr, CString};
use std::hash::{BuildHasher, Hash, Hasher};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

/// Why a path cannot hold a ring, found before or instead of an OS error (public, as callers see it).
pub(crate) use crate::error::PathRefusal as Refusal;

/// An error from this module: the OS's, or a refusal.
#[derive(Debug)]
pub(crate) enum FileError {
    /// The OS failed `operation` (a phrase such as "open the ring file").
    Os {
        operation: &'static str,
        source: io::Error,
    },
    /// The path was refused before or instead of an OS error.
    Refused(Refusal),
}

fn os(operation: &'static str) -> impl FnOnce(io::Error) -> FileError {
    move |source| FileError::Os { operation, source }
}

fn invalid_name(message: &'static str) -> FileError {
    os("use the ring file path")(io::Error::new(io::ErrorKind::InvalidInput, message))
}

/// Turns a negative libc result into the `errno` it set.
fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// Takes ownership of the descriptor returned by an `open`-like call, or its `errno`.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    let fd = check(fd)?;
    // SAFETY: `fd` was just returned by a successful open call and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: `stat` is plain data for which all-zero bytes are valid.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is valid for the borrow and `stat` is a writable `struct stat`.
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut stat) })?;
    Ok(stat)
}

/// The refusal for a file of mode `mode`, or `None` for a regular file.
fn refusal_for(mode: libc::mode_t) -> Option<Refusal> {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFREG => return None,
        libc::S_IFLNK => return Some(Refusal::Symlink),
        libc::S_IFDIR => "directory",
        libc::S_IFIFO => "FIFO",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        _ => "unknown file type",
    };
    Some(Refusal::NotRegularFile { kind })
}

/// The parent directory of a ring file, opened once, and the file's name in it. Every call works relative
/// to the directory descriptor, so a directory renamed or swapped meanwhile cannot redirect it.
#[derive(Debug)]
pub(crate) struct RingPath {
    dir: OwnedFd,
    file_name: CString,
    path: PathBuf,
}

impl RingPath {
    /// Splits `path` into its directory (`.` when it has none) and file name, opens the directory and
    /// checks that no other user can replace files in it. An empty file name, `.`, `..` or a NUL byte is
    /// an `InvalidInput` error; a directory writable by its group or others and not sticky is refused.
    pub(crate) fn new(path: &Path) -> Result<RingPath, FileError> {
        let bytes = path.as_os_str().as_bytes();
        // Split on the last slash by hand: `Path::file_name` would skip a trailing `.` ("dir/." names
        // "dir") or slash, and a ring path must end in the file's own name.
        let (dir, name) = match bytes.iter().rposition(|&byte| byte == b'/') {
            Some(0) => (&b"/"[..], &bytes[1..]),
            Some(slash) => (&bytes[..slash], &bytes[slash + 1..]),
            None => (&b"."[..], bytes),
        };
        if matches!(name, b"" | b"." | b"..") {
            return Err(invalid_name("the path does not end in a file name"));
        }
        let file_name = CString::new(name).map_err(|_| invalid_name("NUL in the path"))?;
        let dir_name = CString::new(dir).map_err(|_| invalid_name("NUL in the path"))?;
        // SAFETY: `dir_name` is NUL-terminated; `owned` checks the result. Links in the directory's own
        // path are followed: the user chose that path.
        let dir = owned(unsafe {
            libc::open(
                dir_name.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
        .map_err(os("open the ring file's directory"))?;
        let mode = fstat(dir.as_fd())
            .map_err(os("inspect the ring file's directory"))?
            .st_mode;
        if mode & libc::S_ISVTX == 0 {
            let reason = if mode & libc::S_IWOTH != 0 {
                Some("writable by other users and not sticky")
            } else if mode & libc::S_IWGRP != 0 {
                Some("writable by its group and not sticky")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(FileError::Refused(Refusal::UnsafeDirectory { reason }));
            }
        }
        Ok(RingPath {
            dir,
            file_name,
            path: path.to_path_buf(),
        })
    }

    /// The path as given (for messages).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a fresh, empty file named `.<file_name>.tmp-<pid>-<random hex>` in the directory, with
    /// permission bits exactly `mode` (set again with `fchmod`, so the umask neither weakens nor
    /// strengthens them). A name that happens to exist already is retried with another suffix.
    pub(crate) fn create_temp(&self, mode: u32) -> Result<TempFile, FileError> {
        const ATTEMPTS: u32 = 8;
        const OPERATION: &str = "create a temporary ring file";
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut name = b".".to_vec();
            name.extend_from_slice(self.file_name.as_bytes());
            let suffix = format!(".tmp-{}-{:016x}", std::process::id(), random());
            name.extend_from_slice(suffix.as_bytes());
            let name = CString::new(name).map_err(|_| invalid_name("NUL in the path"))?;
            let flags =
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
            // SAFETY: the directory descriptor is open and `name` is NUL-terminated; the mode is a
            // `c_uint`, the promoted width of the variadic argument (module docs); `owned` checks it.
            let fd =
                owned(unsafe { libc::openat(self.dir.as_raw_fd(), name.as_ptr(), flags, mode) });
            match fd {
                Ok(fd) => {
                    let temp = TempFile { fd, name };
                    // SAFETY: the descriptor is open; `fchmod` only changes the file's permission bits.
                    let chmod = check(unsafe {
                        libc::fchmod(temp.fd.as_raw_fd(), (mode & 0o7777) as libc::mode_t)
                    });
                    if let Err(source) = chmod {
                        self.discard(&temp);
                        return Err(os(OPERATION)(source));
                    }
                    return Ok(temp);
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    if attempt == ATTEMPTS {
                        return Err(os(OPERATION)(error));
                    }
                }
                Err(error) => return Err(os(OPERATION)(error)),
            }
        }
    }

    /// Gives `temp` the final name without replacing an existing file (see the module docs for how each
    /// system does it). If the name exists the error's kind is `AlreadyExists` and `temp` keeps its name
    /// for the caller to retry or [`discard`](Self::discard). On success the temporary name is gone.
    pub(crate) fn install(&self, temp: &TempFile) -> Result<(), FileError> {
        let dir = self.dir.as_raw_fd();
        match rename_noreplace(dir, &temp.name, &self.file_name) {
            Ok(()) => return Ok(()),
            Err(error) if !NO_NOREPLACE.contains(&error.raw_os_error().unwrap_or(0)) => {
                return Err(os("move the ring file into place")(error));
            }
            Err(_) => {}
        }
        // SAFETY: the directory descriptor is open and both names are NUL-terminated; flags 0 links the
        // name itself, and `linkat` fails with `EEXIST` rather than replace the final name.
        check(unsafe { libc::linkat(dir, temp.name.as_ptr(), dir, self.file_name.as_ptr(), 0) })
            .map_err(os("link the ring file into place"))?;
        // The ring now has its final name. Should removing the temporary one fail, what is left is a second
        // hidden link to the same complete file, harmless, so the ring is installed either way.
        self.discard(temp);
        Ok(())
    }

    /// Removes a temporary file that will not be installed. Best effort: a name already gone, or any other
    /// failure, leaves the caller nothing to do.
    pub(crate) fn discard(&self, temp: &TempFile) {
        // SAFETY: the directory descriptor is open and the name is NUL-terminated; the result is ignored
        // on purpose.
        unsafe { libc::unlinkat(self.dir.as_raw_fd(), temp.name.as_ptr(), 0) };
    }

    /// Opens the ring file read-write. A symbolic link is refused without being followed, and anything but
    /// a regular file is refused; a missing file or one the caller may not open is an OS error
    /// (`NotFound`, `PermissionDenied`).
    pub(crate) fn open(&self) -> Result<OwnedFd, FileError> {
        self.open_with(libc::O_RDWR)
    }

    /// Opens the ring file read-only, with the same checks as [`open`](Self::open).
    pub(crate) fn open_read_only(&self) -> Result<OwnedFd, FileError> {
        self.open_with(libc::O_RDONLY)
    }

    fn open_with(&self, access: libc::c_int) -> Result<OwnedFd, FileError> {
        const OPERATION: &str = "open the ring file";
        // Refuse what plainly is no regular file before opening it: opening a device can have effects.
        if let Some(refusal) = self.stat().ok().and_then(|stat| refusal_for(stat.st_mode)) {
            return Err(FileError::Refused(refusal));
        }
        // `O_NONBLOCK`: a FIFO put in place since the check must not block the open; `O_NOCTTY`: a
        // terminal put there must not become our controlling terminal.
        let flags = access | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;
        let (dir, name) = (self.dir.as_raw_fd(), self.file_name.as_ptr());
        // SAFETY: the directory descriptor is open and the name is NUL-terminated; `owned` checks it.
        let fd = match owned(unsafe { libc::openat(dir, name, flags) }) {
            Ok(fd) => fd,
            Err(error) => {
                // `ELOOP` (a link, with `O_NOFOLLOW`), `EISDIR`, `ENXIO` (a socket) and others may mean
                // the name was replaced since the check: look again to tell which.
                let refusal = self.stat().ok().and_then(|stat| refusal_for(stat.st_mode));
                let refusal = refusal.or_else(|| {
                    (error.raw_os_error() == Some(libc::EISDIR))
                        .then_some(Refusal::NotRegularFile { kind: "directory" })
                });
                return Err(refusal.map_or_else(|| os(OPERATION)(error), FileError::Refused));
            }
        };
        if let Some(refusal) = refusal_for(fstat(fd.as_fd()).map_err(os(OPERATION))?.st_mode) {
            return Err(FileError::Refused(refusal));
        }
        let raw = fd.as_raw_fd();
        // SAFETY: the descriptor is open; `F_GETFL` only reads its status flags.
        let status = check(unsafe { libc::fcntl(raw, libc::F_GETFL) }).map_err(os(OPERATION))?;
        // SAFETY: the descriptor is open; `F_SETFL` only clears `O_NONBLOCK` among its status flags.
        check(unsafe { libc::fcntl(raw, libc::F_SETFL, status & !libc::O_NONBLOCK) })
            .map_err(os(OPERATION))?;
        Ok(fd)
    }

    /// Whether the name in the directory refers to the same file (device and inode) as `fd` now; `false`
    /// when the name is gone.
    pub(crate) fn names(&self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        let open = fstat(fd)?;
        match self.stat() {
            Ok(named) => Ok((named.st_dev, named.st_ino) == (open.st_dev, open.st_ino)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Removes the final name; processes that have the file open or mapped keep it.
    pub(crate) fn unlink(&self) -> io::Result<()> {
        // SAFETY: the directory descriptor is open and the name is NUL-terminated.
        check(unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.file_name.as_ptr(), 0) })?;
        Ok(())
    }

    /// The permission bits and owner uid of the file with the final name, for explaining a refused open;
    /// `None` if it is gone.
    pub(crate) fn mode_and_owner(&self) -> Option<(u32, u32)> {
        let stat = self.stat().ok()?;
        // `mode_t` is 16 bits on macOS, 32 on Linux.
        let mode: libc::mode_t = stat.st_mode & 0o7777;
        Some((mode as u32, stat.st_uid))
    }

    /// Bytes free to unprivileged users in the directory's file system, for `ENOSPC` messages.
    pub(crate) fn available_bytes(&self) -> Option<u64> {
        // SAFETY: `statvfs` is plain data for which all-zero bytes are valid.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: the directory descriptor is open and `stat` is a writable `struct statvfs`.
        check(unsafe { libc::fstatvfs(self.dir.as_raw_fd(), &mut stat) }).ok()?;
        // `fsblkcnt_t` is 32 bits on macOS, 64 on Linux.
        Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
    }

    /// `fstatat` of the final name, not following a symbolic link.
    fn stat(&self) -> io::Result<libc::stat> {
        // SAFETY: `stat` is plain data for which all-zero bytes are valid.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        let (dir, name) = (self.dir.as_raw_fd(), self.file_name.as_ptr());
        // SAFETY: the directory descriptor is open, the name NUL-terminated, `stat` a writable `struct stat`.
        check(unsafe { libc::fstatat(dir, name, &mut stat, libc::AT_SYMLINK_NOFOLLOW) })?;
        Ok(stat)
    }
}

/// A temporary file being built; the caller installs or discards it.
#[derive(Debug)]
pub(crate) struct TempFile {
    fd: OwnedFd,
    name: CString,
}

impl TempFile {
    /// The open temporary file, to size and map.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// 64 unpredictable bits for temporary names: `RandomState` keys come from the OS's random source, and the
/// time and a counter make every call differ.
fn random() -> u64 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    CALLS.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    SystemTime::now().hash(&mut hasher);
    hasher.finish()
}

/// Errors from [`rename_noreplace`] that mean "not supported here", so the link fallback is used.
#[cfg(target_os = "linux")]
const NO_NOREPLACE: [libc::c_int; 3] = [libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP];
/// Errors from [`rename_noreplace`] that mean "not supported here", so the link fallback is used.
#[cfg(target_os = "macos")]
const NO_NOREPLACE: [libc::c_int; 1] = [libc::ENOTSUP];

#[cfg(target_os = "linux")]
fn rename_noreplace(dir: libc::c_int, from: &CStr, to: &CStr) -> io::Result<()> {
    let (dir, flags) = (
        libc::c_long::from(dir),
        libc::c_long::from(libc::RENAME_NOREPLACE),
    );
    let (from, to) = (from.as_ptr(), to.as_ptr());
    // SAFETY: `renameat2(olddirfd, oldpath, newdirfd, newpath, flags)` gets an open directory descriptor,
    // two NUL-terminated names and its flags, the integers widened to the `long` that `syscall` reads.
    if unsafe { libc::syscall(libc::SYS_renameat2, dir, from, dir, to, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(target_os = "macos")]
fn rename_noreplace(dir: libc::c_int, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: the directory descriptor is open and both names are NUL-terminated.
    check(unsafe { libc::renameatx_np(dir, from.as_ptr(), dir, to.as_ptr(), libc::RENAME_EXCL) })?;
    Ok(())
}

/// Sizes a fresh file to `len` zero bytes and reserves its blocks, so that a full disk fails here with
/// `ENOSPC` instead of with `SIGBUS` in the first process to touch an unbacked page.
pub(crate) fn set_len(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let size = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ring file too large"))?;
    #[cfg(target_os = "macos")]
    {
        let mut store = libc::fstore_t {
            fst_flags: libc::F_ALLOCATEALL,
            fst_posmode: libc::F_PEOFPOSMODE,
            fst_offset: 0,
            fst_length: size,
            fst_bytesalloc: 0,
        };
        // SAFETY: the descriptor is open for writing and `store` is a writable `fstore_t`, which
        // `F_PREALLOCATE` reads and updates.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_PREALLOCATE, &mut store) } != 0 {
            // A full disk is what this is for; other failures (a file system that cannot preallocate)
            // leave the file sparse, as `ftruncate` alone would.
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::ENOSPC) {
                return Err(error);
            }
        }
    }
    // SAFETY: the descriptor is open for writing; `ftruncate` only sets the file's length.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })?;
    #[cfg(target_os = "linux")]
    loop {
        // SAFETY: the descriptor is open for writing and `0..size` lies within the file just sized.
        // posix_fallocate returns the error number instead of setting errno.
        match unsafe { libc::posix_fallocate(fd.as_raw_fd(), 0, size) } {
            0 => break,
            libc::EINTR => continue,
            // A file system that cannot allocate ahead (EOPNOTSUPP; EINVAL, also for a zero size) leaves
            // the file sparse: it works, but a full disk shows up as SIGBUS on first touch.
            libc::EOPNOTSUPP | libc::EINVAL => break,
            error => return Err(io::Error::from_raw_os_error(error)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A fresh directory for one test, removed when the test ends.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(test: &str) -> TestDir {
            let name = format!("disruptor-mp-file-{}-{test}", std::process::id());
            let dir = std::env::temp_dir().join(name);
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
            TestDir(dir)
        }

        fn ring(&self, name: &str) -> RingPath {
            RingPath::new(&self.0.join(name)).unwrap()
        }

        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn os_kind(result: Result<impl std::fmt::Debug, FileError>) -> io::ErrorKind {
        match result {
            Err(FileError::Os { source, .. }) => source.kind(),
            other => panic!("expected an OS error, got {other:?}"),
        }
    }

    #[test]
    fn installs_with_the_requested_mode_and_size() {
        let dir = TestDir::new("installs");
        for (name, mode) in [("a.ring", 0o600), ("b.ring", 0o640)] {
            let ring = dir.ring(name);
            let temp = ring.create_temp(mode).unwrap();
            set_len(temp.fd(), 3 * 4096 + 5).unwrap();
            ring.install(&temp).unwrap();
            let fd = temp.fd().try_clone_to_owned().unwrap();
            let metadata = fs::symlink_metadata(ring.path()).unwrap();
            assert!(metadata.is_file());
            assert_eq!(metadata.permissions().mode() & 0o7777, mode);
            assert_eq!(metadata.len(), 3 * 4096 + 5);
            assert_eq!(ring.mode_and_owner().unwrap().0, mode);
            assert!(ring.names(fd.as_fd()).unwrap());
        }
        assert_eq!(dir.names(), ["a.ring", "b.ring"]);
        assert!(dir.ring("a.ring").available_bytes().is_some());
    }

    #[test]
    fn install_never_replaces_an_existing_file() {
        let dir = TestDir::new("no-replace");
        fs::write(dir.0.join("x.ring"), b"existing").unwrap();
        let ring = dir.ring("x.ring");
        let temp = ring.create_temp(0o600).unwrap();
        assert_eq!(os_kind(ring.install(&temp)), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(ring.path()).unwrap(), b"existing");
        let temp_name = temp.name.to_str().unwrap().to_owned();
        assert!(temp_name.starts_with(".x.ring.tmp-"), "{temp_name}");
        assert_eq!(dir.names(), [temp_name, "x.ring".to_owned()]);
        ring.discard(&temp);
        assert_eq!(dir.names(), ["x.ring"]);
    }

    #[test]
    fn open_refuses_links_and_non_regular_files() {
        let dir = TestDir::new("open");
        fs::write(dir.0.join("target.ring"), b"ring").unwrap();
        assert!(dir.ring("target.ring").open().is_ok());
        symlink(dir.0.join("target.ring"), dir.0.join("link.ring")).unwrap();
        let refused = |name: &str| match dir.ring(name).open() {
            Err(FileError::Refused(refusal)) => refusal,
            other => panic!("{name}: expected a refusal, got {other:?}"),
        };
        assert_eq!(refused("link.ring"), Refusal::Symlink);
        fs::create_dir(dir.0.join("dir.ring")).unwrap();
        assert_eq!(
            refused("dir.ring"),
            Refusal::NotRegularFile { kind: "directory" }
        );
        let fifo = CString::new(dir.0.join("fifo.ring").as_os_str().as_bytes()).unwrap();
        // SAFETY: `fifo` is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        // A blocking open of a FIFO would wait for a writer forever: fail instead of hanging.
        let ring = dir.ring("fifo.ring");
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            sender.send(match ring.open() {
                Err(FileError::Refused(refusal)) => Some(refusal),
                _ => None,
            })
        });
        let refusal = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening a FIFO blocked");
        assert_eq!(refusal, Some(Refusal::NotRegularFile { kind: "FIFO" }));
        assert_eq!(
            os_kind(dir.ring("missing.ring").open()),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn names_tells_whether_the_name_still_leads_to_the_file() {
        let dir = TestDir::new("names");
        let ring = dir.ring("x.ring");
        let temp = ring.create_temp(0o600).unwrap();
        ring.install(&temp).unwrap();
        let fd = temp.fd().try_clone_to_owned().unwrap();
        assert!(ring.names(fd.as_fd()).unwrap());
        ring.unlink().unwrap();
        assert!(!ring.names(fd.as_fd()).unwrap());
        assert_eq!(ring.mode_and_owner(), None);
        fs::write(ring.path(), b"another").unwrap();
        assert!(!ring.names(fd.as_fd()).unwrap());
    }

    #[test]
    fn new_refuses_shared_directories_unless_sticky() {
        let dir = TestDir::new("sticky");
        for (mode, refused) in [
            (0o777, true),
            (0o770, true),
            (0o1777, false),
            (0o755, false),
        ] {
            fs::set_permissions(&dir.0, fs::Permissions::from_mode(mode)).unwrap();
            match RingPath::new(&dir.0.join("x.ring")) {
                Ok(_) => assert!(!refused, "{mode:o}"),
                Err(FileError::Refused(Refusal::UnsafeDirectory { .. })) => {
                    assert!(refused, "{mode:o}")
                }
                Err(error) => panic!("{mode:o}: {error:?}"),
            }
        }
    }

    #[test]
    fn new_splits_the_path_and_refuses_missing_file_names() {
        let ring = RingPath::new(Path::new("x.ring")).unwrap();
        assert_eq!(ring.path(), Path::new("x.ring"));
        assert_eq!(ring.file_name.as_bytes(), b"x.ring");
        for path in ["", ".", "..", "dir/..", "dir/.", "dir/"] {
            let kind = os_kind(RingPath::new(Path::new(path)));
            assert_eq!(kind, io::ErrorKind::InvalidInput, "{path:?}");
        }
    }
}
