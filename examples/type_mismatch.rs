//! What a consumer compiled with a different event type sees.
//!
//! ```text
//! cargo run --example type_mismatch
//! ```
//!
//! The producer's `Tick` has `qty: u64`; the consumer's `Tick` (a separate definition, as in another
//! program built from an older commit) has `qty: f64`. Same name, same size, same alignment: a size check
//! would let it through and every quantity would be read as garbage. The attach is refused instead.

use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};

mod producer_program {
    /// The producer's event.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub instrument: u32,
        pub side: u32,
        pub price: f64,
        pub qty: u64,
    }
}

mod consumer_program {
    /// The consumer's stale copy of the event.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub instrument: u32,
        pub side: u32,
        pub price: f64,
        pub qty: f64,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("ticks-{}", std::process::id());
    let _producer =
        build_shared_single_producer::<producer_program::Tick>(&name, 1024).build_producer()?;
    match attach_shared_consumer::<consumer_program::Tick>(&name).build_consumer() {
        Ok(_) => Err("the mismatched consumer was accepted".into()),
        Err(error) => {
            println!("{error}");
            Ok(())
        }
    }
}
