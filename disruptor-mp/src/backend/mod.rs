//! Operating-system backends: the only code that calls `libc` to create, open and map segments and to
//! tell whether their endpoints are alive.
//!
//! # Design rule: one module per OS-specific facility
//!
//! Every facility the crate takes from the operating system gets its own module here, with one portable,
//! crate-private API and the per-OS code behind `#[cfg(target_os = ...)]` inside that module. Above this
//! layer, `cfg(target_os)` appears only in `lib.rs`'s platform gate and in platform-specific tests; other
//! code calls the facility and relies on its documented guarantees.
//!
//! The supported platforms are Linux (tested) and macOS (type-checked for `x86_64-apple-darwin` and
//! `aarch64-apple-darwin` in CI); `lib.rs` refuses every other target with one `compile_error!`. A new
//! facility must therefore arrive with both implementations from its first commit, and where macOS lacks
//! the Linux mechanism (open-file-description locks, futexes, `MAP_POPULATE`, …) the module picks a portable
//! alternative and says in a comment why, rather than leaving macOS with a stub.
//!
//! The facilities today:
//! - [`affinity`]: pinning the calling thread to a CPU core (Linux; refused on macOS, which cannot).
//! - [`shm`]: named POSIX shared-memory objects (`shm_open`, sizing, `fstat`, `shm_unlink`) and the
//!   platform's limit on their names.
//! - [`mmap`]: a shared read-write mapping of a whole segment, optionally pre-faulted.
//! - [`file`](mod@file): rings in regular files: the directory checked and opened once, temporary files
//!   installed without replacing a file, opened without following links, their blocks reserved.
//! - [`object`]: an open segment of either kind (size, identity, mapping), a plain descriptor.
//! - [`liveness`]: whether the process behind an endpoint is alive, kernel-backed: an open-file-description
//!   lock on one byte of the segment on Linux, the process's PID and start time on macOS.
//! - [`wake`]: sleeping in the kernel on a word of the segment and waking its sleepers from another
//!   process (futex; `__ulock` on macOS), and the store-load fences of the sleep/wake handshake.
//!
//! Identifying the creating process for display needs no backend (`std::process::id` serves on both
//! systems); telling whether an endpoint's process is still alive does, and is [`liveness`].

// Under `cfg(loom)` only `wake` is built, with the model's futex (see `crate::protocol_steps`).
#[cfg(not(loom))]
pub(crate) mod affinity;
#[cfg(not(loom))]
pub(crate) mod file;
#[cfg(not(loom))]
pub(crate) mod liveness;
#[cfg(not(loom))]
pub(crate) mod mmap;
#[cfg(not(loom))]
pub(crate) mod object;
#[cfg(not(loom))]
pub(crate) mod shm;
pub(crate) mod wake;

#[cfg(not(loom))]
pub(crate) use mmap::Mapping;
#[cfg(not(loom))]
pub(crate) use object::SegmentObject;
