//! `repr(C, align(N))`, also spelled as two separate `repr` attributes.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// A cache line.
#[derive(RingEvent, Clone, Copy)]
#[repr(C, align(64))]
pub struct Line {
    /// The counter.
    pub value: u64,
    /// The rest of the line.
    pub _pad: [u8; 56],
}

// `[u8; 56]` is not `Default` (arrays longer than 32 are not), so `Default` is written by hand.
impl Default for Line {
    fn default() -> Self {
        Line {
            value: 0,
            _pad: [0; 56],
        }
    }
}

/// The same, with the representation hints split.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[repr(align(16))]
pub struct Pair {
    /// First.
    pub a: u64,
    /// Second.
    pub b: u64,
}

fn main() {
    assert_eq!(Line::LAYOUT.align, 64);
    assert_eq!(Line::LAYOUT.size, 64);
    assert_eq!(Pair::LAYOUT.align, 16);
    assert_ne!(Line::LAYOUT.fingerprint, Pair::LAYOUT.fingerprint);
}
