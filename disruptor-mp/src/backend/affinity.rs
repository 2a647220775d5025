//! Pinning the calling thread to one CPU core, for event processors
//! ([`ProcessorBuilder::pinned_to_core`](crate::ProcessorBuilder::pinned_to_core)).
//!
//! - **Linux:** `sched_setaffinity` on the calling thread with a one-core set.
//! - **macOS** has no way to pin a thread: its thread affinity policy only groups threads as a hint, and
//!   Apple silicon ignores it. Pinning reports [`io::ErrorKind::Unsupported`] there rather than pretending.

use std::io;

/// Restricts the calling thread to run on `core` only.
pub(crate) fn pin_current_thread(core: usize) -> io::Result<()> {
    os::pin_current_thread(core)
}

#[cfg(target_os = "linux")]
mod os {
    use std::io;

    pub(super) fn pin_current_thread(core: usize) -> io::Result<()> {
        if core >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "core {core} is beyond the {} cores a CPU set can name",
                    libc::CPU_SETSIZE
                ),
            ));
        }
        // SAFETY: `cpu_set_t` is a plain bit array, valid when zeroed.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `core < CPU_SETSIZE`, checked above, so the bit lies inside `set`.
        unsafe { libc::CPU_SET(core, &mut set) };
        // SAFETY: pid 0 is the calling thread; `set` is a valid, initialized set of the size passed.
        let result =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

#[cfg(target_os = "macos")]
mod os {
    use std::io;

    pub(super) fn pin_current_thread(_core: usize) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "macOS cannot pin a thread to a core (thread affinity there is only a hint)",
        ))
    }
}
