use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
struct Tick {
    price: u64,
    qty: u64,
}

fn main() {}
