//! Tuple structs: fields are named "0", "1", ...
#![deny(warnings, missing_docs)]

use disruptor_mp::layout::TypeKind;
use disruptor_mp::RingEvent;

/// A (price, qty) pair.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Level(pub u64, pub u64);

/// A unit struct is an event of size 0.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Heartbeat;

fn main() {
    let TypeKind::Struct { fields } = Level::LAYOUT.kind else {
        panic!("not a struct")
    };
    assert_eq!(fields[0].name, "0");
    assert_eq!(fields[1].name, "1");
    assert_eq!(fields[1].offset, 8);
    assert_eq!(Heartbeat::LAYOUT.size, 0);
}
