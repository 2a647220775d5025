use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Delta {
    change: std::primitive::isize,
}

fn main() {}
