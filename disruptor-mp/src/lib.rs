//! disruptor-mp: a typed, cross-process ring buffer.
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as disruptor_mp;

pub mod event;
pub mod layout;

#[doc(hidden)]
pub mod __private;

pub use disruptor_mp_derive::RingEvent;
pub use event::RingEvent;
