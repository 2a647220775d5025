//! The atomics and cells the protocol is written against: the standard library's, or, when the crate is
//! built with `RUSTFLAGS="--cfg loom"`, the [loom](https://docs.rs/loom) model checker's, which explore
//! every interleaving (and every weak-memory outcome loom models) of the threads that use them.
//!
//! Only the protocol's steps ([`protocol_steps`](crate::protocol_steps)), the sleep/wake handshake
//! ([`wait`](crate::wait)) and its kernel wait ([`backend::wake`](crate::backend::wake)) name these types,
//! so that the model runs the library's own code. Everything else (the segment, its mapping, liveness)
//! uses the standard library directly and is not built under loom.

#[cfg(loom)]
pub(crate) use loom::sync::atomic;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

/// A cell whose accesses a model can check: loom's under `cfg(loom)`, which reports a read and a write
/// that no happens-before edge orders as a data race; the standard `UnsafeCell` with the same closure API
/// otherwise.
#[cfg(test)]
pub(crate) mod cell {
    #[cfg(loom)]
    pub(crate) use loom::cell::UnsafeCell;

    /// The standard `UnsafeCell` behind loom's closure API.
    #[cfg(not(loom))]
    #[derive(Debug, Default)]
    pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

    #[cfg(not(loom))]
    impl<T> UnsafeCell<T> {
        pub(crate) fn new(value: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(value))
        }

        /// Runs `f` with a pointer for reading.
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a pointer for writing.
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}
