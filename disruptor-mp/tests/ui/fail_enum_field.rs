use disruptor_mp::RingEvent;

#[derive(Clone, Copy, Default)]
enum Side {
    #[default]
    Buy,
    Sell,
}

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Order {
    side: Side,
}

fn main() {}
