//! Liveness of endpoints: whether the process behind a producer or consumer slot is still running.
//!
//! Each endpoint owns one *lock byte* of the segment, beyond the data (DESIGN §11: `LOCK_BASE + 0` for the
//! producer, `LOCK_BASE + 1 + slot` for consumer slot `slot`), and records a [`ProcessStamp`] in the segment.
//! An endpoint calls [`hold`] when it attaches and [`release`] when it leaves cleanly; anyone may ask
//! [`is_held`] to learn whether the endpoint is still alive. The answer comes from the kernel, not from a
//! heartbeat or a PID probe the endpoint has to keep up, so a process killed with `SIGKILL`, or one that
//! crashes before any cleanup runs, reads as dead at once.
//!
//! # Linux: open-file-description locks
//!
//! [`hold`] takes an exclusive open-file-description (OFD) lock (`fcntl(F_OFD_SETLK)`, `F_WRLCK`) on the
//! single byte `[byte, byte + 1)` of the segment's descriptor; [`is_held`] asks `F_OFD_GETLK` whether a
//! write lock on that byte would conflict. OFD locks are owned by the *open file description* (what one
//! `open`/`shm_open` call creates), not by a process, and:
//! - the kernel drops the lock when the last reference to that description goes away: when the process
//!   exits or is killed (even by `SIGKILL`), every descriptor and mapping it had is released, and with them
//!   the lock. No cooperation from the dying process is needed;
//! - no PID is involved, so the answer is right across PID namespaces (containers sharing `/dev/shm`) and
//!   cannot be fooled by PID reuse. [`ProcessStamp::pid`] is kept for display only, and
//!   [`ProcessStamp::start_time`] is 0 on Linux: the lock makes it unnecessary;
//! - two different descriptions conflict even inside one process, so a producer and a consumer that each
//!   `shm_open` the segment in the same process (as the tests do) are told apart; closing one endpoint's
//!   description releases its lock while the process keeps running. Conversely, `dup`, and descriptors
//!   inherited over `fork`, share the description and therefore share the lock;
//! - a lock may lie at any offset up to [`MAX_BYTE`] (`i64::MAX`), far beyond the end of the object, and
//!   never changes its size or contents. Locks work on tmpfs (`/dev/shm`, where POSIX shared-memory objects
//!   live) as on any other file system.
//!
//! Caveats for the callers:
//! - **A child forked without `exec` keeps the endpoint alive.** It inherits the descriptor (and any
//!   mapping made from it), so the description, and the lock, live until the parent *and* the child have
//!   closed or unmapped it. An endpoint whose process forked a long-lived worker therefore reads as alive
//!   after the parent dies. `exec` closes the inherited descriptor (`shm_open` sets `FD_CLOEXEC`) and drops
//!   every mapping, so only a plain `fork` matters.
//! - **A mapping made from the locking descriptor keeps the lock too.** `mmap` holds a reference to the
//!   description, so closing the descriptor of a mapped object does not release the lock; unmapping (or
//!   [`release`]) does. A clean shutdown should call [`release`] explicitly rather than rely on `close`.
//! - [`hold`] needs a descriptor open for writing (a write lock on a read-only descriptor fails with
//!   `EBADF`); [`is_held`] works through a read-only one.
//! - [`is_held`] cannot see a lock held through the very description it is asked through (the kernel never
//!   reports a description's own locks as conflicts), hence its precondition.
//!
//! # macOS: process stamp
//!
//! macOS has no OFD locks, and its other advisory locks cannot be taken on the segment: xnu accepts
//! `fcntl(F_SETLK/F_GETLK)` and `flock` only on vnode descriptors, and a POSIX shared-memory object is not
//! a vnode (its descriptor is of type `DTYPE_PSXSHM`), so they fail with `EBADF`. (POSIX record locks would
//! be unfit anyway: they belong to the process, so a producer and a consumer in one process could not be
//! told apart, and closing *any* descriptor of the file drops all of the process's locks on it.) Liveness
//! on macOS therefore uses the [`ProcessStamp`] recorded in the segment: the endpoint is alive while a
//! process with that PID exists *and* started at the recorded time (`proc_pidinfo(PROC_PIDTBSDINFO)`,
//! `pbi_start_tvsec`/`pbi_start_tvusec`, in microseconds). The start time makes the test safe against PID
//! reuse, and macOS has no PID namespaces, so a PID means the same process to every observer. This is
//! still the kernel's answer, from its process table, and needs nothing from the endpoint once recorded.
//! [`hold`] always succeeds and [`release`] does nothing: exclusivity of an endpoint's slot on macOS rests
//! entirely on the caller's compare-and-swap of the slot state, which must be the arbiter on both systems
//! anyway.
//!
//! Differences the callers must allow for on macOS:
//! - an endpoint dropped without updating its slot state still reads as alive while its process runs (on
//!   Linux, closing its description releases it); clean drops therefore always mark the slot as left;
//! - `PROC_PIDTBSDINFO` on another user's process is refused (`EPERM`) unless the caller is root, so the
//!   start time cannot be compared: such an endpoint is reported alive while its PID exists. The error is
//!   on the safe side (a dead endpoint whose PID went to another user's process keeps gating until that
//!   process exits, but a live endpoint is never declared dead);
//! - a process that `exec`s keeps its PID and start time, so its endpoint stays alive across the `exec`
//!   (on Linux the close-on-exec descriptor goes, and the endpoint with it);
//! - a zombie (exited, not yet reaped) reads as dead, as on Linux, where a zombie has released its files.

use std::io;
use std::os::fd::BorrowedFd;

/// Who holds an endpoint, as recorded in the segment: for display on both systems, and on macOS for the
/// liveness check itself.
///
/// `start_time` is opaque and platform-specific: microseconds since the Unix epoch at which the process
/// started on macOS, 0 on Linux (where the lock decides liveness and the stamp is display-only). A stamp
/// with `pid == 0` (a zeroed slot) never denotes a live endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ProcessStamp {
    /// The process ID, as seen from the process that recorded it (its own PID namespace on Linux).
    pub(crate) pid: u32,
    /// When the process started (see the type's docs for the unit); 0 when unknown or unused.
    pub(crate) start_time: u64,
}

impl ProcessStamp {
    /// The stamp of the calling process.
    ///
    /// Nothing is cached: every call asks the kernel (one cheap system call on macOS, none beyond `getpid`
    /// on Linux), so a child forked without `exec` gets its own PID and start time, never its parent's.
    pub(crate) fn current() -> ProcessStamp {
        let pid = std::process::id();
        ProcessStamp {
            pid,
            start_time: imp::start_time_of_self(pid),
        }
    }
}

/// Takes the endpoint's liveness lock: an exclusive lock on the single byte at offset `byte` of the open
/// file `fd` (the byte may lie far past the end of the file; see [`MAX_BYTE`]).
///
/// `Ok(true)`: the lock is now held by this open file description (taking it again is harmless).
/// `Ok(false)`: it is held by another live open file description, of another process or of this one. On
/// Linux `fd` must be open for writing. On macOS this always returns `Ok(true)`: the caller's CAS on the slot
/// state is what makes an endpoint exclusive there (see the module docs).
pub(crate) fn hold(fd: BorrowedFd<'_>, byte: u64) -> io::Result<bool> {
    let offset = lock_offset(byte)?;
    imp::hold(fd, offset)
}

/// Drops the endpoint's liveness lock; does nothing if this description does not hold it (and nothing on
/// macOS).
pub(crate) fn release(fd: BorrowedFd<'_>, byte: u64) -> io::Result<()> {
    let offset = lock_offset(byte)?;
    imp::release(fd, offset)
}

/// Whether the endpoint whose lock byte is `byte` and whose recorded stamp is `stamp` is alive, asked
/// through `fd`, which must not itself hold `byte` (a description never sees its own lock as held).
///
/// Linux answers from the lock alone and ignores `stamp`; macOS answers from `stamp` alone and ignores `fd`
/// and `byte` (see the module docs).
pub(crate) fn is_held(fd: BorrowedFd<'_>, byte: u64, stamp: ProcessStamp) -> io::Result<bool> {
    let offset = lock_offset(byte)?;
    imp::is_held(fd, offset, stamp)
}

/// The largest lock byte offset: the largest file offset, `off_t::MAX` (`i64::MAX` on 64-bit Linux and on
/// macOS).
pub(crate) const MAX_BYTE: u64 = libc::off_t::MAX as u64;

/// Checks `byte` against [`MAX_BYTE`] and converts it to a file offset. Checked on both systems, although
/// macOS does not use the byte, so that a bad offset fails the same way everywhere.
fn lock_offset(byte: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(byte).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "liveness lock byte beyond the largest file offset",
        )
    })
}

#[cfg(target_os = "linux")]
mod imp {
    use super::ProcessStamp;
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd};

    // The lock types are `c_int` constants in `libc` but `c_short` in `struct flock`; all fit.
    const WRITE_LOCK: libc::c_short = libc::F_WRLCK as libc::c_short;
    const UNLOCK: libc::c_short = libc::F_UNLCK as libc::c_short;

    /// Linux needs no start time: the OFD lock is immune to PID reuse and namespaces.
    pub(super) fn start_time_of_self(_pid: u32) -> u64 {
        0
    }

    /// A request for the one byte at `offset`. `l_pid` must be 0 for the OFD commands (`EINVAL` otherwise).
    fn one_byte(lock_type: libc::c_short, offset: libc::off_t) -> libc::flock {
        // SAFETY: `flock` is plain old data (integers only, plus padding), for which all-zero bytes are a
        // valid value; zeroing also leaves `l_pid` at the 0 the OFD commands require.
        let mut request: libc::flock = unsafe { std::mem::zeroed() };
        request.l_type = lock_type;
        request.l_whence = libc::SEEK_SET as libc::c_short;
        request.l_start = offset;
        request.l_len = 1;
        request
    }

    /// `fcntl(fd, command, request)` for the OFD lock commands, retried on `EINTR`.
    fn fcntl_lock(
        fd: BorrowedFd<'_>,
        command: libc::c_int,
        request: &mut libc::flock,
    ) -> io::Result<()> {
        loop {
            // SAFETY: `fd` is a live descriptor for the duration of the borrow, `command` is one of the OFD
            // lock commands, whose third argument is a pointer to a `struct flock`, and `request` is a valid,
            // writable `flock` (`F_OFD_GETLK` writes its answer into it).
            let result =
                unsafe { libc::fcntl(fd.as_raw_fd(), command, request as *mut libc::flock) };
            if result != -1 {
                return Ok(());
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    pub(super) fn hold(fd: BorrowedFd<'_>, offset: libc::off_t) -> io::Result<bool> {
        let mut request = one_byte(WRITE_LOCK, offset);
        match fcntl_lock(fd, libc::F_OFD_SETLK, &mut request) {
            Ok(()) => Ok(true),
            // POSIX allows either errno for "a conflicting lock is held"; Linux uses EAGAIN.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(super) fn release(fd: BorrowedFd<'_>, offset: libc::off_t) -> io::Result<()> {
        // Unlocking a range this description does not hold succeeds and changes nothing.
        fcntl_lock(fd, libc::F_OFD_SETLK, &mut one_byte(UNLOCK, offset))
    }

    pub(super) fn is_held(
        fd: BorrowedFd<'_>,
        offset: libc::off_t,
        _stamp: ProcessStamp,
    ) -> io::Result<bool> {
        // Asking for a write lock conflicts with any lock another description holds on the byte; the
        // kernel answers F_UNLCK when there is none (and never reports `fd`'s own description).
        let mut request = one_byte(WRITE_LOCK, offset);
        fcntl_lock(fd, libc::F_OFD_GETLK, &mut request)?;
        Ok(request.l_type != UNLOCK)
    }
}

#[cfg(target_os = "macos")]
mod imp {
    use super::ProcessStamp;
    use std::io;
    use std::os::fd::BorrowedFd;

    /// What `proc_pidinfo(PROC_PIDTBSDINFO)` says about a PID.
    enum Lookup {
        /// The process exists and started at this time (microseconds since the Unix epoch).
        Started(u64),
        /// No such process (or only a zombie: the call does not look at zombies unless asked to).
        Gone,
        /// The process exists but belongs to another user (or a sandbox hides it); its start time is unknown.
        Hidden,
    }

    fn lookup(pid: u32) -> io::Result<Lookup> {
        // PID 0 (a zeroed stamp) is the kernel task on macOS, never an endpoint; PIDs above `pid_t`'s range
        // cannot exist.
        let pid = match libc::pid_t::try_from(pid) {
            Ok(pid) if pid > 0 => pid,
            _ => return Ok(Lookup::Gone),
        };
        // SAFETY: `proc_bsdinfo` is plain old data (integers and byte arrays) for which all-zero bytes are a
        // valid value.
        let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        // SAFETY: `info` is a valid, writable `proc_bsdinfo` of exactly `size` bytes, which is what the
        // `PROC_PIDTBSDINFO` flavour writes; the call reads nothing else from this process.
        let written = unsafe {
            libc::proc_pidinfo(
                pid,
                libc::PROC_PIDTBSDINFO,
                0,
                (&mut info as *mut libc::proc_bsdinfo).cast::<libc::c_void>(),
                size,
            )
        };
        if written == size {
            let micros = info
                .pbi_start_tvsec
                .saturating_mul(1_000_000)
                .saturating_add(info.pbi_start_tvusec);
            return Ok(Lookup::Started(micros));
        }
        if written > 0 {
            return Err(io::Error::other(
                "proc_pidinfo(PROC_PIDTBSDINFO) returned a short record",
            ));
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ESRCH) => Ok(Lookup::Gone),
            Some(libc::EPERM | libc::EACCES) => Ok(Lookup::Hidden),
            _ => Err(error),
        }
    }

    /// The calling process's start time; 0 ("unknown", which `is_held` treats as "do not compare") if the
    /// kernel refuses, which it does not for a process asking about itself outside a strict sandbox.
    pub(super) fn start_time_of_self(pid: u32) -> u64 {
        match lookup(pid) {
            Ok(Lookup::Started(micros)) => micros,
            _ => 0,
        }
    }

    pub(super) fn hold(_fd: BorrowedFd<'_>, _offset: libc::off_t) -> io::Result<bool> {
        // Nothing to take: liveness is the recorded stamp, exclusivity is the caller's CAS on the slot.
        Ok(true)
    }

    pub(super) fn release(_fd: BorrowedFd<'_>, _offset: libc::off_t) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn is_held(
        _fd: BorrowedFd<'_>,
        _offset: libc::off_t,
        stamp: ProcessStamp,
    ) -> io::Result<bool> {
        Ok(match lookup(stamp.pid)? {
            // A stamp recorded without a start time can only be matched by PID.
            Lookup::Started(micros) => stamp.start_time == 0 || micros == stamp.start_time,
            Lookup::Gone => false,
            // Alive as far as can be told: never declare a live endpoint dead (see the module docs).
            Lookup::Hidden => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::os::fd::AsFd;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
    #[cfg(target_os = "linux")]
    use std::time::{Duration, Instant};

    /// A test that forks without `exec` gives the child, for a moment, a reference to every description
    /// this test process has open, which keeps their locks alive (the module's fork caveat). Tests that
    /// fork take this exclusively; tests that expect a lock to go away with its last descriptor share it.
    static FORK: RwLock<()> = RwLock::new(());

    fn no_fork() -> RwLockReadGuard<'static, ()> {
        FORK.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn forking() -> RwLockWriteGuard<'static, ()> {
        FORK.write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A file in the temporary directory with a name no other test (or run) uses, removed on drop.
    struct TempFile {
        path: PathBuf,
    }

    impl TempFile {
        fn new(tag: &str) -> TempFile {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "disruptor-mp-liveness-{}-{}-{tag}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("create temp file");
            TempFile { path }
        }

        /// A new open file description of the file, read-write.
        fn open(&self) -> File {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.path)
                .expect("open temp file")
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Polls `condition` every millisecond until it is true or `limit` has passed; returns the last answer.
    #[cfg(target_os = "linux")]
    fn within(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if condition() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn current_stamp_is_this_process() {
        let stamp = ProcessStamp::current();
        assert_eq!(stamp.pid, std::process::id());
        assert_eq!(stamp, ProcessStamp::current());
        #[cfg(target_os = "linux")]
        assert_eq!(stamp.start_time, 0);
        #[cfg(target_os = "macos")]
        assert_ne!(stamp.start_time, 0);
    }

    #[test]
    fn byte_beyond_the_largest_offset_is_refused() {
        let _guard = no_fork();
        let file = TempFile::new("range");
        let fd = file.open();
        for byte in [MAX_BYTE + 1, u64::MAX] {
            let kind = |r: io::Result<()>| r.unwrap_err().kind();
            assert_eq!(
                kind(hold(fd.as_fd(), byte).map(drop)),
                io::ErrorKind::InvalidInput
            );
            assert_eq!(kind(release(fd.as_fd(), byte)), io::ErrorKind::InvalidInput);
            assert_eq!(
                kind(is_held(fd.as_fd(), byte, ProcessStamp::current()).map(drop)),
                io::ErrorKind::InvalidInput
            );
        }
    }

    /// A forked child's stamp is its own: nothing is inherited from a cache in the parent.
    #[test]
    fn forked_child_gets_its_own_stamp() {
        let _guard = forking();
        let parent = ProcessStamp::current();
        let mut ends = [0 as libc::c_int; 2];
        // SAFETY: `ends` is a writable array of two descriptors, as `pipe` requires.
        assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
        let [read_end, write_end] = ends;
        // SAFETY: the child calls only `getpid`, `proc_pidinfo` (through `ProcessStamp::current`, which
        // allocates nothing), `write` and `_exit`, all safe after `fork` in a multithreaded process.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let stamp = ProcessStamp::current();
            let mut bytes = [0u8; 12];
            bytes[..4].copy_from_slice(&stamp.pid.to_ne_bytes());
            bytes[4..].copy_from_slice(&stamp.start_time.to_ne_bytes());
            // SAFETY: `bytes` is readable for its length; `_exit` ends the child without running the
            // parent's destructors or at-exit handlers.
            unsafe {
                let written = libc::write(write_end, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(if written == bytes.len() as isize {
                    0
                } else {
                    1
                });
            }
        }
        assert!(child > 0, "fork: {}", io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: `child` is our own child, not yet reaped; `status` is writable. It exits right away.
        let reaped = unsafe { libc::waitpid(child, &mut status, 0) };
        assert_eq!(reaped, child);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        let mut bytes = [0u8; 12];
        // SAFETY: `bytes` is writable for its length; the child wrote all 12 bytes before exiting.
        let read = unsafe { libc::read(read_end, bytes.as_mut_ptr().cast(), bytes.len()) };
        // SAFETY: both ends are ours and closed once.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        assert_eq!(read, 12);
        let pid = u32::from_ne_bytes(bytes[..4].try_into().unwrap());
        let start_time = u64::from_ne_bytes(bytes[4..].try_into().unwrap());
        assert_eq!(pid, child as u32);
        assert_ne!(pid, parent.pid);
        #[cfg(target_os = "macos")]
        assert!(start_time >= parent.start_time && start_time != 0);
        #[cfg(target_os = "linux")]
        assert_eq!(start_time, 0);
    }

    /// macOS: liveness is the recorded stamp. (Compiled, not run, on the Linux CI machine.)
    #[cfg(target_os = "macos")]
    #[test]
    fn stamp_decides_liveness() {
        let file = TempFile::new("stamp");
        let fd = file.open();
        let me = ProcessStamp::current();
        assert!(hold(fd.as_fd(), 0).unwrap());
        assert!(is_held(fd.as_fd(), 0, me).unwrap());
        // The same PID with another start time is a reused PID: dead.
        let reused = ProcessStamp {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!is_held(fd.as_fd(), 0, reused).unwrap());
        // A zeroed slot and a PID no process can have are dead.
        assert!(!is_held(fd.as_fd(), 0, ProcessStamp::default()).unwrap());
        let impossible = ProcessStamp {
            pid: u32::MAX,
            start_time: 1,
        };
        assert!(!is_held(fd.as_fd(), 0, impossible).unwrap());
        release(fd.as_fd(), 0).unwrap();
        // Release takes nothing away on macOS: the process is still running.
        assert!(is_held(fd.as_fd(), 0, me).unwrap());
    }

    #[cfg(target_os = "linux")]
    mod linux {
        use super::*;
        use crate::backend::shm;
        use std::process::{Child, Command, Stdio};

        /// The stamp is ignored on Linux; pass a live one so a wrong answer cannot come from it.
        fn any_stamp() -> ProcessStamp {
            ProcessStamp::current()
        }

        #[test]
        fn two_descriptions_in_one_process_exclude_each_other() {
            let _guard = no_fork();
            let file = TempFile::new("exclusive");
            let (producer, consumer) = (file.open(), file.open());
            let (a, b) = (producer.as_fd(), consumer.as_fd());

            assert!(!is_held(b, 0, any_stamp()).unwrap());
            assert!(hold(a, 0).unwrap(), "a fresh byte is free");
            assert!(
                hold(a, 0).unwrap(),
                "holding again through the holder is harmless"
            );
            assert!(is_held(b, 0, any_stamp()).unwrap());
            assert!(!hold(b, 0).unwrap(), "another description is refused");
            // Other bytes are independent: the consumer takes its own.
            assert!(!is_held(b, 1, any_stamp()).unwrap());
            assert!(hold(b, 1).unwrap());
            assert!(is_held(a, 1, any_stamp()).unwrap());

            release(a, 0).unwrap();
            release(a, 0).unwrap(); // releasing what is not held does nothing
            assert!(!is_held(b, 0, any_stamp()).unwrap());
            assert!(hold(b, 0).unwrap(), "free again after release");
            assert!(is_held(a, 0, any_stamp()).unwrap());
            assert!(!hold(a, 0).unwrap());
        }

        #[test]
        fn closing_the_last_descriptor_releases() {
            let _guard = no_fork();
            let file = TempFile::new("close");
            let holder = file.open();
            let observer = file.open();
            assert!(hold(holder.as_fd(), 7).unwrap());
            assert!(is_held(observer.as_fd(), 7, any_stamp()).unwrap());
            drop(holder);
            assert!(!is_held(observer.as_fd(), 7, any_stamp()).unwrap());
        }

        #[test]
        fn a_duplicate_descriptor_shares_the_lock() {
            let _guard = no_fork();
            let file = TempFile::new("dup");
            let holder = file.open();
            let duplicate = holder.try_clone().unwrap();
            let observer = file.open();
            assert!(hold(holder.as_fd(), 3).unwrap());
            // Same description: the duplicate is the holder, so it can take the lock and cannot see it.
            assert!(hold(duplicate.as_fd(), 3).unwrap());
            assert!(!is_held(duplicate.as_fd(), 3, any_stamp()).unwrap());
            // Closing one of the two descriptors does not release the description's lock.
            drop(holder);
            assert!(is_held(observer.as_fd(), 3, any_stamp()).unwrap());
            drop(duplicate);
            assert!(!is_held(observer.as_fd(), 3, any_stamp()).unwrap());
        }

        #[test]
        fn a_byte_far_beyond_the_end_of_the_file_works() {
            let _guard = no_fork();
            let file = TempFile::new("far");
            let (holder, observer) = (file.open(), file.open());
            // (A 32-bit `off_t` cannot reach 2^41; the crate's 64-bit targets all can.)
            for byte in [1u64 << 41, MAX_BYTE]
                .into_iter()
                .filter(|&b| b <= MAX_BYTE)
            {
                assert!(hold(holder.as_fd(), byte).unwrap());
                assert!(is_held(observer.as_fd(), byte, any_stamp()).unwrap());
                assert!(!hold(observer.as_fd(), byte).unwrap());
                assert!(!is_held(observer.as_fd(), byte - 1, any_stamp()).unwrap());
                release(holder.as_fd(), byte).unwrap();
                assert!(!is_held(observer.as_fd(), byte, any_stamp()).unwrap());
            }
            assert_eq!(std::fs::metadata(&file.path).unwrap().len(), 0);
        }

        #[test]
        fn a_read_only_descriptor_can_ask_but_not_hold() {
            let _guard = no_fork();
            let file = TempFile::new("read-only");
            let holder = file.open();
            let reader = File::open(&file.path).unwrap();
            assert!(!is_held(reader.as_fd(), 5, any_stamp()).unwrap());
            assert!(hold(holder.as_fd(), 5).unwrap());
            assert!(is_held(reader.as_fd(), 5, any_stamp()).unwrap());
            let error = hold(reader.as_fd(), 6).unwrap_err();
            assert_eq!(error.raw_os_error(), Some(libc::EBADF));
        }

        /// Removes a shared-memory object on drop.
        struct Unlink(String);

        impl Drop for Unlink {
            fn drop(&mut self) {
                let _ = shm::unlink(&self.0);
            }
        }

        /// The real setting: two `shm_open`s of one object on tmpfs (`/dev/shm`) in one process, as a
        /// producer and a consumer of the same process have. A mapping of the holder's description keeps
        /// its lock after the descriptor closes.
        #[test]
        fn shm_objects_on_tmpfs_and_mappings() {
            let _guard = no_fork();
            let name = format!("/dmp-liveness-test-{}", std::process::id());
            let _unlink = Unlink(name.clone());
            let producer = shm::create(&name, 0o600).unwrap();
            shm::set_len(&producer, 4096).unwrap();
            let consumer = shm::open(&name).unwrap();
            let lock_base = 1u64 << 40;

            assert!(hold(producer.as_fd(), lock_base).unwrap());
            assert!(hold(consumer.as_fd(), lock_base + 1).unwrap());
            assert!(is_held(consumer.as_fd(), lock_base, any_stamp()).unwrap());
            assert!(is_held(producer.as_fd(), lock_base + 1, any_stamp()).unwrap());
            assert!(!hold(consumer.as_fd(), lock_base).unwrap());

            let mapping = producer.map(4096, false).unwrap();
            drop(producer);
            assert!(
                is_held(consumer.as_fd(), lock_base, any_stamp()).unwrap(),
                "the mapping still references the producer's description"
            );
            drop(mapping);
            assert!(!is_held(consumer.as_fd(), lock_base, any_stamp()).unwrap());
            assert_eq!(
                consumer.len().unwrap(),
                4096,
                "locks do not grow the object"
            );
        }

        /// Where the child helper finds the file to lock; set only for the child.
        const CHILD_FILE: &str = "DISRUPTOR_MP_LIVENESS_CHILD_FILE";
        /// The byte the child locks.
        const CHILD_BYTE: u64 = (1 << 41) + 9;

        /// Not a test: the body of the child process [`a_killed_holder_releases_its_lock`] starts by running
        /// this test binary again on this test alone. It takes the lock through its own description and
        /// waits to be killed (at most 30 s, in case the parent never does).
        #[test]
        #[ignore = "child process of a_killed_holder_releases_its_lock"]
        fn child_holds_until_killed() {
            let Some(path) = std::env::var_os(CHILD_FILE) else {
                return;
            };
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            assert!(hold(file.as_fd(), CHILD_BYTE).unwrap());
            std::thread::sleep(Duration::from_secs(30));
        }

        /// Kills and reaps the child on drop, so that a failing assertion leaves no process behind.
        struct Reap(Child);

        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }

        /// A process that holds a lock and is killed by `SIGKILL` (no cleanup of any kind runs) releases it.
        ///
        /// The child is this test binary run again (fork + exec), not a bare `fork`: a child forked without
        /// `exec` would inherit every description, and every mapping, the other tests running in this
        /// process have open, and keep their locks alive for as long as it lives, which is the fork caveat
        /// itself. After `exec` the child holds only what it opens.
        #[test]
        fn a_killed_holder_releases_its_lock() {
            // Spawning forks this process for a moment (until `exec`), and the copy holds every
            // description and mapping of the tests running beside it: exclusive, like any fork here.
            let _guard = forking();
            let file = TempFile::new("sigkill");
            let observer = file.open();
            let child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "backend::liveness::tests::linux::child_holds_until_killed",
                    "--ignored",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(CHILD_FILE, &file.path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id();
            let mut child = Reap(child);

            let held = || is_held(observer.as_fd(), CHILD_BYTE, any_stamp()).unwrap();
            assert!(
                within(Duration::from_secs(5), held),
                "the child (pid {pid}) never took the lock: {:?}",
                child.0.try_wait()
            );
            assert!(!hold(observer.as_fd(), CHILD_BYTE).unwrap());

            // `Child::kill` is `SIGKILL` on Unix: the child gets no chance to clean up.
            child.0.kill().unwrap();
            let status = child.0.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(libc::SIGKILL)
            );
            assert!(
                within(Duration::from_secs(5), || !held()),
                "the lock outlived its killed holder"
            );
            assert!(hold(observer.as_fd(), CHILD_BYTE).unwrap());
        }
    }
}
