//! `#[ring_event(allow_padding)]` accepts implicit padding, also together with other keys, and padding
//! inside field types; a struct that does not opt in may still hold an opted-in type that has no padding.
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

/// No padding of its own, but padded fields: allowed, because it opts in itself.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding)]
pub struct Batch {
    /// Sequence number.
    pub seq: u64,
    /// One padded tick.
    pub last: Tick,
    /// More padded ticks.
    pub ticks: [Tick; 4],
}

/// Opts in, but has no padding.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding)]
pub struct Dense {
    /// Price.
    pub price: u64,
}

/// Does not opt in, and holds only types without padding.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Plain {
    /// A type that opted in but has no padding.
    pub dense: Dense,
    /// An empty array of a padded type is no bytes at all.
    pub none: [Tick; 0],
}

fn main() {
    assert_eq!(Tick::LAYOUT.size, 24);
    assert_eq!(Tick::LAYOUT.name, "Padded");
    assert!(Tick::LAYOUT.has_padding);
    assert!(Batch::LAYOUT.has_padding);
    assert!(!Dense::LAYOUT.has_padding);
    assert!(!Plain::LAYOUT.has_padding);
}
