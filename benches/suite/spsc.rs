//! A minimal hand-written single-producer single-consumer ring across two processes, in one shared
//! mapping: the producer's `head` on one 128-byte line, the consumer's `tail` on another, then the slots.
//! Each side caches the other's counter and reloads it only when it seems to lack room or events. It
//! is the least a cross-process ring can do, and so the bar for throughput.

use crate::ipc::SharedRegion;
use crate::payload::Payload;
use crate::wait::Spin;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::Ordering;

const HEAD: usize = 0;
const TAIL: usize = 128;
const SLOTS: usize = 256;

/// The mapping's length for `capacity` events of `P`.
fn region_len<P: Payload>(capacity: usize) -> usize {
    SLOTS + capacity * P::BYTES
}

/// The producer side.
pub struct SpscProducer<P: Payload> {
    region: SharedRegion,
    mask: u64,
    head: u64,
    cached_tail: u64,
    spin: Spin,
    event: PhantomData<P>,
}

impl<P: Payload> SpscProducer<P> {
    /// Creates the ring's file at `path` for `capacity` (a power of two) events.
    pub fn create(path: &Path, capacity: usize) -> SpscProducer<P> {
        assert!(
            capacity.is_power_of_two(),
            "capacity must be a power of two"
        );
        SpscProducer {
            region: SharedRegion::create(path, region_len::<P>(capacity)),
            mask: capacity as u64 - 1,
            head: 0,
            cached_tail: 0,
            spin: Spin::new("room in the SPSC ring"),
            event: PhantomData,
        }
    }

    /// Publishes `count` events (at most the capacity), each written in place by `fill(seq, slot)`, with
    /// one release store of `head`.
    #[inline(always)]
    pub fn publish_with(&mut self, count: u64, mut fill: impl FnMut(u64, &mut P)) {
        let capacity = self.mask + 1;
        while self.head + count - self.cached_tail > capacity {
            self.cached_tail = self.region.atomic_at(TAIL).load(Ordering::Acquire);
            if self.head + count - self.cached_tail > capacity {
                self.spin.idle();
            }
        }
        self.spin.progress();
        for seq in self.head..self.head + count {
            // SAFETY: the slot of `seq` lies within the mapping (masked index), is aligned for `P` (page-
            // aligned base, 256-byte offset, slots of a multiple of 8 bytes), and the consumer does not
            // read it: `tail` shows it has finished with every sequence below `head + count − capacity`.
            let slot = unsafe { &mut *self.slot(seq) };
            fill(seq, slot);
        }
        self.head += count;
        self.region
            .atomic_at(HEAD)
            .store(self.head, Ordering::Release);
    }

    fn slot(&self, seq: u64) -> *mut P {
        let index = (seq & self.mask) as usize;
        // SAFETY: `index` < capacity, so the offset stays within the mapping made for it.
        unsafe { self.region.base().add(SLOTS + index * P::BYTES).cast::<P>() }
    }
}

/// The consumer side.
pub struct SpscConsumer<P: Payload> {
    region: SharedRegion,
    mask: u64,
    tail: u64,
    cached_head: u64,
    event: PhantomData<P>,
}

impl<P: Payload> SpscConsumer<P> {
    /// Opens the ring the producer created at `path`.
    pub fn open(path: &Path, capacity: usize) -> SpscConsumer<P> {
        SpscConsumer {
            region: SharedRegion::open(path, region_len::<P>(capacity)),
            mask: capacity as u64 - 1,
            tail: 0,
            cached_head: 0,
            event: PhantomData,
        }
    }

    /// Hands up to `max` published events to `handle` and releases their slots with one store; returns
    /// how many.
    #[inline(always)]
    pub fn poll(&mut self, max: u64, mut handle: impl FnMut(&P)) -> u64 {
        if self.cached_head == self.tail {
            self.cached_head = self.region.atomic_at(HEAD).load(Ordering::Acquire);
        }
        let count = (self.cached_head - self.tail).min(max);
        for seq in self.tail..self.tail + count {
            let index = (seq & self.mask) as usize;
            // SAFETY: the slot lies within the mapping and is aligned (as in the producer), and the
            // producer finished writing it before its release store of `head` (acquired above); it does not
            // write it again until `tail` passes it.
            let event = unsafe { &*self.region.base().add(SLOTS + index * P::BYTES).cast::<P>() };
            handle(event);
        }
        if count > 0 {
            self.tail += count;
            self.region
                .atomic_at(TAIL)
                .store(self.tail, Ordering::Release);
        }
        count
    }
}
