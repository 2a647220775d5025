use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C, packed)]
struct Tick {
    side: u8,
    price: u64,
}

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[repr(packed(4))]
struct Quote {
    price: u64,
}

fn main() {}
