//! `Option<NonZero*>` fields: the all-zero pattern is `None`, every other one a `Some`.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;
use std::num::{NonZeroU32, NonZeroU64};

/// An order that may reference a parent order.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Order {
    /// Parent id, if any.
    pub parent: Option<NonZeroU64>,
    /// Venue, if known.
    pub venue: Option<NonZeroU32>,
    /// Explicit padding.
    pub _pad: [u8; 4],
}

fn main() {
    assert_eq!(Order::LAYOUT.size, 16);
    assert_eq!(Order::LAYOUT.flatten()[1].type_name, "Option<NonZeroU32>");
}
