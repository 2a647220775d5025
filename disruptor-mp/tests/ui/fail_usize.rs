use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Fill {
    qty: usize,
}

fn main() {}
