//! Bounded waiting: a spin budget that fails a stalled loop, and a watchdog for steps that block
//! without a timeout of their own. A bug on either side fails the benchmark instead of hanging it.

use crate::config::IDLE_TIMEOUT;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Empty polls between two clock checks: keeps the clock off the hot path.
const CHECK_EVERY: u32 = 1 << 16;

/// Counts consecutive empty polls of a spin loop and panics once no progress has been made for
/// [`IDLE_TIMEOUT`] (or, in a child, once its parent has died). The clock is read only every
/// [`CHECK_EVERY`] empty polls, never while events flow.
pub struct Spin {
    what: &'static str,
    empty: u32,
    idle_since: Option<Instant>,
    parent: Option<u32>,
}

impl Spin {
    /// A spin budget for waiting on `what`.
    pub fn new(what: &'static str) -> Spin {
        Spin {
            what,
            empty: 0,
            idle_since: None,
            parent: None,
        }
    }

    /// A spin budget that also gives up when the process that started this child exits.
    pub fn in_child(what: &'static str) -> Spin {
        Spin {
            parent: Some(std::os::unix::process::parent_id()),
            ..Spin::new(what)
        }
    }

    /// Records an empty poll.
    #[inline(always)]
    pub fn idle(&mut self) {
        self.empty = self.empty.wrapping_add(1);
        if self.empty % CHECK_EVERY == 0 {
            self.check();
        }
        std::hint::spin_loop();
    }

    /// Records progress: the idle clock starts again.
    #[inline(always)]
    pub fn progress(&mut self) {
        self.empty = 0;
        self.idle_since = None;
    }

    #[cold]
    #[inline(never)]
    fn check(&mut self) {
        let now = Instant::now();
        let since = *self.idle_since.get_or_insert(now);
        assert!(
            now.duration_since(since) <= IDLE_TIMEOUT,
            "no progress for {IDLE_TIMEOUT:?} while waiting for {}",
            self.what
        );
        if let Some(parent) = self.parent {
            assert!(
                std::os::unix::process::parent_id() == parent,
                "parent process exited while waiting for {}",
                self.what
            );
        }
    }
}

/// Bounds a step that may block without a timeout of its own (a blocking `publish` whose consumer died,
/// a pipe read): if the guard is not dropped within `limit`, a watcher thread removes `files` and the
/// run's iceoryx2 domain (which the exit would otherwise leave behind), reports and exits the process with
/// status 3. Children notice the
/// exit (their parent is gone, or their pipe or socket closes) and exit too.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Arms a watchdog for `what`.
    pub fn arm(what: &str, limit: Duration, files: Vec<PathBuf>) -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        let what = what.to_owned();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                eprintln!(
                    "watchdog: {what} did not finish within {limit:?}; aborting the benchmark"
                );
                crate::iox::remove_domain();
                for path in &files {
                    let _ = std::fs::remove_file(path);
                    if let Some(dir) = path.parent().filter(|dir| !dir.ends_with("shm")) {
                        let _ = std::fs::remove_dir(dir); // only succeeds when empty
                    }
                }
                std::process::exit(3);
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process on the machine, so a time taken in one
/// process can be compared with a time taken in another.
#[inline(always)]
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable `timespec`; CLOCK_MONOTONIC exists on every supported system.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
