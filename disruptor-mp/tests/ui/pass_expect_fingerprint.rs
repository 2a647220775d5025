//! `#[ring_event(expect_fingerprint = ...)]` compiles when the fingerprint matches (the value is pinned in
//! tests/fingerprint.rs as well).
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// A frozen shared type.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(expect_fingerprint = 0x0c05_427c_c02d_ec77)]
pub struct Tick {
    /// Price.
    pub price: u64,
    /// Quantity.
    pub qty: u64,
}

fn main() {
    println!("{:#x}", Tick::LAYOUT.fingerprint);
}
