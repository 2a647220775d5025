//! A named-field `repr(C)` struct without padding, in a crate that denies warnings and missing docs.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// A price tick.
#[derive(RingEvent, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
pub struct Tick {
    /// Price in ticks.
    pub price: u64,
    /// Quantity.
    pub qty: u32,
    /// Side: 0 buy, 1 sell.
    pub side: u8,
    /// Explicit padding.
    pub _pad: [u8; 3],
}

fn main() {
    assert_eq!(Tick::LAYOUT.name, "Tick");
    assert_eq!(Tick::LAYOUT.size, 16);
    assert_eq!(Tick::LAYOUT.flatten().len(), 4);
}
