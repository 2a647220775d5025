use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Symbol {
    text: &'static str,
}

fn main() {}
