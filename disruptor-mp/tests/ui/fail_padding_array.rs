use disruptor_mp::RingEvent;

/// Opts in: 7 bytes of trailing padding.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding)]
struct Level {
    price: u64,
    flag: u8,
}

/// Opts in too, and has no padding of its own: it carries `Level`'s.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(allow_padding)]
struct Book {
    levels: [Level; 4],
}

/// An array of padded structs, two levels deep, and a struct that carries padding only through its field.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Snapshot {
    seq: u64,
    grid: [[Level; 2]; 3],
}

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Update {
    seq: u64,
    book: Book,
}

fn main() {}
