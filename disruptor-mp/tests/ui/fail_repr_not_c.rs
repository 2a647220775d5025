use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(align(8))]
struct Tick {
    price: u64,
}

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(u8)]
struct Flags {
    bits: u8,
}

fn main() {}
