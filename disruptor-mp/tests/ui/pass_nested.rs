//! Structs deriving RingEvent nest inside each other, also across modules.
#![deny(warnings, missing_docs)]

use disruptor_mp::RingEvent;

/// Price levels.
pub mod book {
    use disruptor_mp::RingEvent;

    /// One side of a quote.
    #[derive(RingEvent, Clone, Copy, Default)]
    #[repr(C)]
    pub struct Level {
        /// Price.
        pub price: i64,
        /// Quantity.
        pub qty: u64,
    }
}

/// A two-sided quote.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Quote {
    /// Best bid.
    pub bid: book::Level,
    /// Best ask.
    pub ask: book::Level,
}

/// A quote with a sequence number.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
pub struct Update {
    /// Sequence number.
    pub seq: u64,
    /// The quote.
    pub quote: Quote,
}

fn main() {
    let paths: Vec<_> = Update::LAYOUT.flatten().into_iter().map(|l| l.path).collect();
    assert_eq!(
        paths,
        ["seq", "quote.bid.price", "quote.bid.qty", "quote.ask.price", "quote.ask.qty"]
    );
}
