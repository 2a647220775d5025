//! `#[ring_event(name = "...")]` replaces the identifier as the stable name.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// Version 2 of the tick, shared under the old name.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(name = "Tick")]
pub struct TickV2 {
    /// Price.
    pub price: u64,
}

/// A raw identifier's name has no `r#`.
#[allow(non_camel_case_types)]
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct r#type {
    /// A field with a raw name.
    pub r#match: u64,
}

fn main() {
    assert_eq!(TickV2::LAYOUT.name, "Tick");
    assert_eq!(r#type::LAYOUT.name, "type");
    assert_eq!(r#type::LAYOUT.flatten()[0].path, "match");
}
