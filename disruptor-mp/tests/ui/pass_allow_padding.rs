//! `#[ring_event(allow_padding)]` accepts implicit padding, also together with other keys.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// Padding after `side`, and at the end.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding, name = "Padded")]
pub struct Tick {
    /// Side.
    pub side: u8,
    /// Price.
    pub price: u64,
    /// Flag.
    pub flag: u8,
}

fn main() {
    assert_eq!(Tick::LAYOUT.size, 24);
    assert_eq!(Tick::LAYOUT.name, "Padded");
}
