//! `repr(transparent)` newtypes, including with zero-sized fields.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// A price in ticks.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(transparent)]
pub struct Price(pub i64);

/// A quantity, with a zero-sized marker field.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(transparent)]
pub struct Qty {
    /// The value.
    pub value: u64,
    /// Zero-sized.
    pub marker: [u8; 0],
}

fn main() {
    assert_eq!(Price::LAYOUT.size, 8);
    assert_eq!(Qty::LAYOUT.size, 8);
    assert_ne!(Price::LAYOUT.fingerprint, i64::LAYOUT.fingerprint);
}
