use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Tick {
    side: u32,
    price: u64,
}

fn main() {}
