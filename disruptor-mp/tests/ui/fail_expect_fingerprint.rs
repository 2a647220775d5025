use disruptor_mp::RingEvent;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(expect_fingerprint = 0x0123_4567_89ab_cdef)]
struct Tick {
    price: u64,
    qty: u64,
}

fn main() {}
