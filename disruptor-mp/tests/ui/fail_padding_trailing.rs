use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Tick {
    price: u64,
    side: u8,
}

fn main() {}
