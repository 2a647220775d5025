use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Default)]
#[repr(C)]
struct Tick {
    price: u64,
}

fn main() {}
