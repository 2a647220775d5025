//! Sleeping in the kernel on a word of a shared mapping, waking its sleepers from another process, and the
//! store-load fence pair that makes a sleep/wake handshake lose no wake-up.
//!
//! # Sleeping and waking
//!
//! [`wait`] sleeps while a 32-bit word of the segment holds an expected value; [`wake_all`] wakes every
//! thread of every process sleeping on that word. The kernel compares the word and queues the sleeper
//! atomically with respect to a wake on the same word, so a wake issued after the word changed is never
//! missed by a sleeper that compared before the change: it either sees the new value and returns at once,
//! or is queued before the wake and is woken by it.
//!
//! - **Linux:** `futex(FUTEX_WAIT)` / `futex(FUTEX_WAKE)`, *shared* (no `FUTEX_PRIVATE_FLAG`): the kernel
//!   keys the futex by the page of the shared object and the offset in it, so two processes that map the
//!   same segment at different addresses sleep and wake on the same futex.
//! - **macOS:** `__ulock_wait` / `__ulock_wake` with `UL_COMPARE_AND_WAIT_SHARED`, the same operation keyed
//!   the same way (it is what the system's own cross-process locks use; available since macOS 10.12).
//!   `os_sync_wait_on_address` is the public equivalent but exists only from macOS 14.4, and linking it
//!   would stop the library from loading on older systems.
//!
//! # The store-load fences
//!
//! A sleep/wake handshake is a Dekker pairing: the *fast side* stores its progress and then loads "does
//! anyone sleep?"; the *slow side* stores "I sleep" and then loads the progress. Without a store-load
//! barrier on both sides, each load can be satisfied before the other side's store is visible (a store
//! buffer on x86, weaker orderings on ARM), both sides miss each other, and the sleeper sleeps through the
//! event it waits for. A full fence (`mfence`, `dmb ish`) on the fast side would close the race but cost
//! every publish and every commit.
//!
//! [`FencePair`] moves that cost to the slow side, which is about to make a system call anyway:
//! - **Linux:** every process that uses the ring registers once for `membarrier(2)`'s
//!   `MEMBARRIER_CMD_GLOBAL_EXPEDITED`. The fast side's fence is then only a compiler fence, and the slow
//!   side's is `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which returns only after every running thread
//!   of every registered process has executed a full memory barrier (threads not running passed through
//!   one when they were switched out). So either the fast side's load comes after the barrier and sees "I
//!   sleep", or its store came before the barrier and the slow side's later load sees it.
//! - Where registration fails (a kernel before 4.16, or a seccomp policy that forbids `membarrier`), this
//!   process's fast side uses a full fence instead, which pairs with any slow side. Where the slow side's
//!   `membarrier` fails, [`FencePair::heavy`] issues a full fence and reports that the pairing is not
//!   guaranteed (a registered peer's fast side may have no barrier); the caller then bounds its sleep (see
//!   `wait.rs`), so that a missed wake-up costs at most that bound instead of hanging.
//! - **macOS** has no `membarrier`: both sides use a full fence, which always pairs.

use crate::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::atomic::compiler_fence;
use std::sync::Mutex;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: until woken). Returns at once if the
/// word differs; may also return early (a signal, a spurious wake-up): the caller re-checks its condition.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    os::wait(word, expected, timeout)
}

/// Wakes every thread, in any process, sleeping in [`wait`] on `word`.
pub(crate) fn wake_all(word: &AtomicU32) {
    os::wake_all(word)
}

/// The two halves of the store-load fence for a sleep/wake handshake (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FencePair {
    /// This process registered for the asymmetric barrier: its fast side needs only a compiler fence.
    asymmetric: bool,
}

impl FencePair {
    /// The fence pair of this process, registering it for the asymmetric barrier on first use. Called
    /// when an endpoint is built (a cold path).
    ///
    /// The registration belongs to the process's address space, which a child made by `fork` does not
    /// inherit: a forked child registers again, so that its endpoints never rely on its parent's.
    pub(crate) fn get() -> FencePair {
        static REGISTERED: Mutex<Option<(u32, bool)>> = Mutex::new(None);
        let pid = std::process::id();
        let mut registered = REGISTERED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let asymmetric = match *registered {
            Some((registered_pid, asymmetric)) if registered_pid == pid => asymmetric,
            _ => {
                let asymmetric = os::register_asymmetric();
                *registered = Some((pid, asymmetric));
                asymmetric
            }
        };
        FencePair { asymmetric }
    }

    /// The pair of a process that is (`asymmetric`) or is not registered for the asymmetric barrier,
    /// for the protocol model, which chooses per scenario (see `protocol_steps::model`).
    #[cfg(test)]
    pub(crate) fn for_model(asymmetric: bool) -> FencePair {
        FencePair { asymmetric }
    }

    /// The fast side's fence, between its progress store and its load of the sleeper word.
    #[inline(always)]
    pub(crate) fn light(self) {
        if self.asymmetric {
            // The slow side's membarrier supplies the hardware barrier; only keep the compiler from
            // moving the load above the store.
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The slow side's fence, between its store to the sleeper word and its re-check of the progress.
    /// Returns whether the pairing with every peer's [`light`](Self::light) is guaranteed; `false` means
    /// a peer's wake-up may be missed, so the caller must bound its sleep.
    #[must_use]
    pub(crate) fn heavy(self) -> bool {
        fence(Ordering::SeqCst);
        os::global_barrier()
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
mod os {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    // From <linux/membarrier.h>; the values are part of the kernel ABI.
    const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
    const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_long = 1 << 1;
    const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_long = 1 << 2;

    fn membarrier(command: libc::c_long) -> libc::c_long {
        if cfg!(miri) {
            // Miri has no membarrier: behave as a kernel without it (full fences on both sides).
            return -1;
        }
        // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
        unsafe { libc::syscall(libc::SYS_membarrier, command, 0 as libc::c_long) }
    }

    pub(super) fn register_asymmetric() -> bool {
        let supported = membarrier(MEMBARRIER_CMD_QUERY);
        supported >= 0
            && supported & MEMBARRIER_CMD_GLOBAL_EXPEDITED != 0
            && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0
    }

    pub(super) fn global_barrier() -> bool {
        membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let timespec = timeout.map(|t| libc::timespec {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: t.subsec_nanos().into(),
        });
        let timespec_ptr = timespec
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `word` is a live, 4-byte aligned atomic in a mapping that outlives the call; FUTEX_WAIT
        // only reads it, atomically, in the kernel. The timeout pointer is null or points to a timespec
        // that lives across the call. Errors (EAGAIN: the word differs; EINTR; ETIMEDOUT) all mean
        // "return and let the caller re-check".
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                timespec_ptr,
            );
        }
    }

    pub(super) fn wake_all(word: &AtomicU32) {
        // SAFETY: as in `wait`; FUTEX_WAKE does not touch the word, it only wakes the queue keyed by it.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                libc::c_int::MAX,
            );
        }
    }
}

#[cfg(all(target_os = "macos", not(loom)))]
mod os {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    // From xnu's <sys/ulock.h>: compare-and-wait on a 32-bit word, keyed for sharing across processes.
    const UL_COMPARE_AND_WAIT_SHARED: u32 = 3;
    const ULF_WAKE_ALL: u32 = 0x0000_0100;

    extern "C" {
        fn __ulock_wait(
            operation: u32,
            addr: *mut libc::c_void,
            value: u64,
            timeout_us: u32,
        ) -> libc::c_int;
        fn __ulock_wake(operation: u32, addr: *mut libc::c_void, wake_value: u64) -> libc::c_int;
    }

    pub(super) fn register_asymmetric() -> bool {
        false
    }

    pub(super) fn global_barrier() -> bool {
        // No membarrier: both sides use full fences, which always pair.
        true
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        // 0 means "no timeout" to __ulock_wait: a zero timeout returns at once instead, and a longer one
        // than u32 microseconds (71 minutes) is cut; the caller re-checks and waits again.
        let timeout_us = match timeout {
            None => 0,
            Some(t) if t.is_zero() => return,
            Some(t) => u32::try_from(t.as_micros()).unwrap_or(u32::MAX).max(1),
        };
        // SAFETY: `word` is a live, 4-byte aligned atomic in a mapping that outlives the call; the kernel
        // only reads it, atomically. Errors (the word differs, EINTR, ETIMEDOUT) mean "re-check".
        unsafe {
            __ulock_wait(
                UL_COMPARE_AND_WAIT_SHARED,
                word.as_ptr().cast(),
                u64::from(expected),
                timeout_us,
            );
        }
    }

    pub(super) fn wake_all(word: &AtomicU32) {
        // SAFETY: as in `wait`; waking does not touch the word.
        unsafe {
            __ulock_wake(
                UL_COMPARE_AND_WAIT_SHARED | ULF_WAKE_ALL,
                word.as_ptr().cast(),
                0,
            );
        }
    }
}

/// The loom model's kernel (see `crate::protocol_steps`): a futex made of loom's mutex and condition
/// variable. A wait checks the word under the mutex and blocks until a wake, whatever its timeout, so a
/// sleeper whose wake-up is lost stays blocked and loom reports the deadlock instead of the model timing
/// out into success. Every wake wakes every sleeper, which a futex allows (callers re-check). Both fences
/// are full fences here: that is what `membarrier` provides on Linux (every running thread executes a full
/// barrier), and what macOS uses.
#[cfg(loom)]
mod os {
    use crate::sync::atomic::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    use std::time::Duration;

    loom::lazy_static! {
        static ref FUTEX: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(super) fn register_asymmetric() -> bool {
        false
    }

    pub(super) fn global_barrier() -> bool {
        true
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
        let (lock, woken) = &*FUTEX;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(woken.wait(guard).unwrap());
        }
    }

    pub(super) fn wake_all(_word: &AtomicU32) {
        let (lock, woken) = &*FUTEX;
        let _guard = lock.lock().unwrap();
        woken.notify_all();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_wait_on_a_changed_word_returns_at_once() {
        let word = AtomicU32::new(5);
        let start = Instant::now();
        wait(&word, 4, Some(Duration::from_secs(10)));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_wait_times_out() {
        let word = AtomicU32::new(5);
        let start = Instant::now();
        wait(&word, 5, Some(Duration::from_millis(30)));
        assert!(
            start.elapsed() >= Duration::from_millis(25),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_sleeper_is_woken_after_the_word_changes() {
        let word = Arc::new(AtomicU32::new(0));
        let sleeper = {
            let word = Arc::clone(&word);
            std::thread::spawn(move || {
                let start = Instant::now();
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0, Some(Duration::from_secs(20)));
                }
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        word.store(1, Ordering::Release);
        wake_all(&word);
        let slept = sleeper.join().unwrap();
        assert!(slept < Duration::from_secs(10), "{slept:?}");
    }

    #[test]
    fn the_fence_pair_is_registered_where_membarrier_works() {
        let pair = FencePair::get();
        pair.light();
        let ordered = pair.heavy();
        #[cfg(target_os = "linux")]
        if pair.asymmetric {
            assert!(ordered, "registered, yet the global barrier failed");
        }
        #[cfg(target_os = "macos")]
        assert!(ordered && !pair.asymmetric);
    }
}
