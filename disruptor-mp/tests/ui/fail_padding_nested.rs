use disruptor_mp::RingEvent;

/// Opts in: 4 bytes of implicit padding after `side`.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding)]
struct Padded {
    side: u32,
    price: u64,
}

/// No padding of its own, but does not opt in, so it must not carry `Padded`'s padding.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Outer {
    seq: u64,
    tick: Padded,
}

fn main() {}
