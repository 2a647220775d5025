use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Order {
    id: u64,
    flags: [bool; 8],
}

fn main() {}
