use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy)]
#[repr(C)]
struct Node {
    next: *const u64,
    callback: fn(u64),
}

fn main() {}
