//! disruptor-mp moves fixed-size, plain-data events between OS processes through a shared-memory ring
//! buffer, Disruptor style: one producer, broadcast to any number of consumers, strict backpressure from
//! the slowest one, and no system call or lock on the hot path.
//!
//! What sets it apart is that **the event type is checked across processes**. `#[derive(RingEvent)]`
//! proves at compile time that a struct can live in shared memory and computes its layout fingerprint and
//! field descriptor; the producer stores both in the segment header, and a consumer compiled with a
//! different type is refused with an error naming the first differing field.
//!
//! ```
//! use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, RingEvent};
//! use std::time::Duration;
//!
//! #[derive(RingEvent, Clone, Copy, Default, Debug)]
//! #[repr(C)]
//! struct Tick {
//!     instrument: u32,
//!     side: u8,
//!     _pad: [u8; 3],
//!     price: f64,
//!     qty: u64,
//! }
//!
//! # let name = format!("doc-crate-{}", std::process::id());
//! // Producer process:
//! let mut producer = build_shared_single_producer::<Tick>(&name, 4096).build_producer()?;
//!
//! // Consumer process (here the same one, for the example):
//! let mut consumer = attach_shared_consumer::<Tick>(&name)
//!     .with_attach_timeout(Duration::from_secs(5))
//!     .build_consumer()?;
//!
//! producer.publish(Tick { instrument: 7, price: 101.25, qty: 300, ..Tick::default() })?;
//! let tick = consumer.consume_next_leased_timeout(Duration::from_secs(1))?;
//! assert_eq!((tick.sequence(), tick.instrument, tick.qty), (0, 7, 300));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A consumer attaching with another type gets [`AttachError::EventTypeMismatch`], which prints like:
//!
//! ```text
//! event type mismatch on segment "/ticks":
//!   this process : Tick  size 24 align 8 fp 0x3c1e...
//!   segment      : Tick  size 24 align 8 fp 0x9a07...
//!   first difference at field `qty`: offset 16, u64 (here) vs offset 16, f64 (segment)
//! ```
//!
//! Modules follow the architecture: [`event`] and [`layout`] (the type contract), [`segment`] (the
//! shared-memory format), the producer and consumer endpoints, [`wait`] (how blocked endpoints wait) and
//! [`name`] (segment names). Unsafe code lives only in the backend, segment and ring layers.
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as disruptor_mp;

mod backend;
mod consumer;
pub mod error;
pub mod event;
pub mod layout;
pub mod name;
mod producer;
mod registry;
mod ring;
pub mod segment;
pub mod wait;

#[doc(hidden)]
pub mod __private;

/// Compiles the README's Rust examples as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

pub use consumer::{attach_shared_consumer, EventLease, SharedConsumer, SharedConsumerBuilder};
/// Derives [`RingEvent`](trait@RingEvent) for a `#[repr(C)]` struct, proving at compile time that it can
/// live in shared memory. See the [`event`] module.
pub use disruptor_mp_derive::RingEvent;
pub use error::{
    AttachError, ConsumeError, CreateError, EventSummary, NameError, PublishError, TypeMismatch,
    WaitForConsumersError,
};
pub use event::RingEvent;
pub use name::portable_shm_segment_name;
pub use producer::{
    build_shared_single_producer, ProducerStats, SharedProducer, SharedProducerBuilder,
};
pub use wait::WaitStrategy;
