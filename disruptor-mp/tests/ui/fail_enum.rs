use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
enum Side {
    #[default]
    Buy,
    Sell,
}

fn main() {}
