use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy)]
#[repr(C)]
struct Tick {
    price: u64,
}

fn main() {}
