//! Cross-process plumbing for the peers that are not disruptor-mp: a shared mapping of a file (the
//! cache-line floor and the hand-written SPSC ring), anonymous pipes a child inherits, and Unix socket
//! paths. Every file is removed when its owner drops.

use std::fs::File;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A unique path for a benchmark file: in `/dev/shm` where it exists (memory, as POSIX shared memory),
/// else in the temporary directory. Its text travels in a child's role string, so it has no spaces.
pub fn unique_path(label: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let path = dir.join(format!(
        "dmp-bench-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    assert!(
        !path.to_string_lossy().contains(char::is_whitespace),
        "{} contains whitespace; set TMPDIR to a directory without spaces",
        path.display()
    );
    path
}

/// Removes a file when dropped (a missing one is fine): declared before a child, so that it outlives it.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A shared, writable mapping of a whole file, page-aligned (so every 128-byte offset is 128-byte
/// aligned). The creator sizes the file (zero-filled); the peer opens it by path.
pub struct SharedRegion {
    base: *mut u8,
    len: usize,
}

// SAFETY: the region is plain shared memory; every access through it goes through atomics or is
// ordered by them (see the users), so handing the pointer to another thread is sound.
unsafe impl Send for SharedRegion {}

impl SharedRegion {
    /// Creates (or truncates) the file at `path` with `len` zero bytes and maps it.
    pub fn create(path: &Path, len: usize) -> SharedRegion {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        file.set_len(len as u64).expect("size the shared file");
        Self::map(&file, len)
    }

    /// Maps the existing file at `path`, `len` bytes.
    pub fn open(path: &Path, len: usize) -> SharedRegion {
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        Self::map(&file, len)
    }

    fn map(file: &File, len: usize) -> SharedRegion {
        use std::os::fd::AsRawFd;
        // SAFETY: a fresh shared mapping of `len` bytes of an open file, at an address the kernel
        // chooses; the file is at least `len` bytes long (sized by its creator).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert!(
            base != libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        SharedRegion {
            base: base.cast(),
            len,
        }
    }

    /// The start of the mapping.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// The atomic word at `offset` (8-byte aligned, within the mapping).
    pub fn atomic_at(&self, offset: usize) -> &std::sync::atomic::AtomicU64 {
        assert!(
            offset % 8 == 0 && offset + 8 <= self.len,
            "bad offset {offset}"
        );
        // SAFETY: the word is within the mapping, 8-byte aligned (the mapping is page-aligned), lives as
        // long as `self`, and is only ever accessed atomically by both processes.
        unsafe { &*self.base.add(offset).cast::<std::sync::atomic::AtomicU64>() }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` are exactly the mapping made in `map`, unmapped only here; no
        // reference into it outlives `self` (they borrow it).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

/// One direction of an anonymous pipe whose descriptors a child inherits: the parent keeps one end and
/// passes the other end's number to the child, then closes its copy with [`Pipe::close_child_end`].
pub struct Pipe {
    /// The parent's end.
    pub parent_end: File,
    child_end: Option<File>,
    child_fd: i32,
}

impl Pipe {
    /// A pipe whose read end (`child_reads`) or write end goes to the child. Neither end is close-on-exec
    /// until [`close_child_end`](Self::close_child_end), so spawn the child in between and nothing else.
    pub fn new(child_reads: bool) -> Pipe {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` has room for the two descriptors `pipe` writes.
        let rc = unsafe { libc::pipe(fds.as_mut_ptr()) };
        assert!(rc == 0, "pipe: {}", std::io::Error::last_os_error());
        let (parent_fd, child_fd) = if child_reads {
            (fds[1], fds[0])
        } else {
            (fds[0], fds[1])
        };
        // SAFETY: both descriptors were just created by `pipe` and are owned by nothing else.
        let (parent_end, child_end) =
            unsafe { (File::from_raw_fd(parent_fd), File::from_raw_fd(child_fd)) };
        // The parent's end must not leak into the child, or the child would never see end of file.
        // SAFETY: `parent_fd` is an open descriptor owned by `parent_end`.
        unsafe { libc::fcntl(parent_fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        Pipe {
            parent_end,
            child_end: Some(child_end),
            child_fd,
        }
    }

    /// The descriptor number the child uses.
    pub fn child_fd(&self) -> i32 {
        self.child_fd
    }

    /// Closes the parent's copy of the child's end, once the child has been spawned.
    pub fn close_child_end(&mut self) {
        drop(self.child_end.take());
    }
}

/// Adopts a pipe end inherited from the parent (in the child).
pub fn inherited_pipe(fd: &str) -> File {
    let fd: i32 = fd.parse().expect("descriptor number");
    // SAFETY: the parent passed this descriptor open (not close-on-exec) for this child alone, and
    // nothing else in this process owns it.
    unsafe { File::from_raw_fd(fd) }
}
