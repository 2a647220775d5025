use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(name = "Tick", allow_pading)]
struct Tick {
    price: u64,
}

// Other misuses of `#[ring_event(...)]`, each reported at its own token.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding, allow_padding)]
#[ring_event(name = "")]
#[ring_event(expect_fingerprint = 7u32)]
struct Quote {
    #[ring_event(name = "bid_price")]
    bid: u64,
}

fn main() {}
