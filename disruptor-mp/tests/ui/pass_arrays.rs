//! Arrays of primitives, of arrays and of derived structs are fields.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// One level.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Level {
    /// Price.
    pub price: u64,
    /// Quantity.
    pub qty: u64,
}

/// A book snapshot.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Book {
    /// Symbol, NUL-padded.
    pub symbol: [u8; 16],
    /// A matrix.
    pub matrix: [[f32; 4]; 4],
    /// Levels.
    pub levels: [Level; 8],
    /// No bytes at all.
    pub nothing: [u64; 0],
}

fn main() {
    assert_eq!(Book::LAYOUT.size, 16 + 64 + 8 * 16);
    let names: Vec<_> = Book::LAYOUT.flatten().into_iter().map(|l| l.type_name).collect();
    assert_eq!(names, ["[u8; 16]", "[[f32; 4]; 4]", "[Level; 8]", "[u64; 0]"]);
}
