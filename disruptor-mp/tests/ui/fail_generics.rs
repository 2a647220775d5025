use disruptor_mp::RingEvent;
use std::marker::PhantomData;

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Wrapper<T> {
    value: T,
}

#[derive(RingEvent, Clone, Copy)]
#[repr(C)]
struct Buffer<const N: usize> {
    bytes: [u8; N],
}

#[derive(RingEvent, Clone, Copy)]
#[repr(C)]
struct View<'a> {
    bytes: [u8; 4],
    borrowed: PhantomData<&'a u8>,
}

fn main() {}
