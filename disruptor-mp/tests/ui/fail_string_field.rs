use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Default)]
#[repr(C)]
struct Message {
    text: String,
}

fn main() {}
