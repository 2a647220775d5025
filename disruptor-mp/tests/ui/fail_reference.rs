use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy)]
#[repr(C)]
struct Borrowed {
    value: &'static u64,
}

fn main() {}
