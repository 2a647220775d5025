use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy)]
#[repr(C)]
union Bits {
    int: u64,
    float: f64,
}

fn main() {}
