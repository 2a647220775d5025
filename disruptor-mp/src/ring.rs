//! Slot addressing and the publish/consume protocol over a validated segment.
//!
//! Sequence `s` lives in slot `s & (capacity - 1)`. The producer may write sequence `s` only while every
//! gating consumer's cursor is above `s - capacity` (it has consumed the event that slot held), which the
//! cached *gate* tracks: `s < gate` where `gate = min(gating cursors) + capacity`, refreshed only when
//! exhausted. It writes the slot in place, then release-stores `published = s + 1`. A consumer
//! acquire-loads `published` (caching it, so a batch costs one load), reads slots below it in place, and
//! release-stores its cursor once it is done with them — after a batch, or when a lease drops. No system
//! call and no lock on either path. [`crate::protocol`] explains the whole protocol.

use crate::backend::wake::FencePair;
use crate::consumer::StartPosition;
use crate::error::AttachError;
use crate::event::RingEvent;
use crate::registry::{self, GatingSet, SlotClaim};
use crate::segment::{
    add, slot_state, ConsumerSlot, Endpoint, Ownership, ProducerCounters, PublishedLine, Segment,
};
use crate::wait;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

/// The slot array of a segment, typed.
#[derive(Debug)]
struct Slots<E> {
    base: NonNull<E>,
    mask: u64,
    _marker: PhantomData<E>,
}

// SAFETY: `Slots` is an address into a mapping owned by the same endpoint; moving it to another thread
// moves the endpoint with it. Access to the slots follows the ring protocol, not thread identity, and
// `E: Send + Sync` (RingEvent bound at every use).
unsafe impl<E: Send> Send for Slots<E> {}
// SAFETY: shared references to an endpoint only read atomics and immutable geometry; every slot access
// needs `&mut` of the endpoint or a lease borrowed from it.
unsafe impl<E: Sync> Sync for Slots<E> {}

impl<E: RingEvent> Slots<E> {
    fn new(segment: &Segment) -> Slots<E> {
        let geometry = segment.geometry();
        assert_eq!(geometry.event_size, std::mem::size_of::<E>() as u64);
        assert_eq!(
            segment.slots_base().as_ptr() as usize % std::mem::align_of::<E>(),
            0
        );
        Slots {
            base: segment.slots_base().cast::<E>(),
            mask: geometry.capacity - 1,
            _marker: PhantomData,
        }
    }

    fn slot_ptr(&self, sequence: u64) -> *mut E {
        // SAFETY: `sequence & mask < capacity`, and the segment maps `capacity` events from `base`
        // (validated geometry), so the offset stays inside the slot array.
        unsafe { self.base.as_ptr().add((sequence & self.mask) as usize) }
    }
}

/// The producer's side of the protocol. Owns the segment mapping.
#[derive(Debug)]
pub(crate) struct ProducerRing<E> {
    segment: Segment,
    slots: Slots<E>,
    capacity: u64,
    /// Sequence of the next event to publish (= events published so far).
    next: u64,
    /// Sequences below the gate may be written without looking at consumer cursors.
    gate: u64,
    gating: GatingSet,
    /// The process that created the ring; a child that inherited a copy through `fork` is not it.
    owner_pid: u32,
    /// The sleep/wake handshake's fences (see [`crate::wait`]).
    fences: FencePair,
}

impl<E: RingEvent> ProducerRing<E> {
    /// Takes over a freshly created segment (nothing published yet).
    pub(crate) fn new(segment: Segment) -> ProducerRing<E> {
        let slots = Slots::new(&segment);
        let capacity = segment.geometry().capacity;
        ProducerRing {
            segment,
            slots,
            capacity,
            next: 0,
            gate: 0,
            gating: GatingSet::new(),
            owner_pid: std::process::id(),
            fences: FencePair::get(),
        }
    }

    /// The segment.
    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The ring's capacity in events.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Sequence the next published event will get.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next
    }

    /// The producer's counters in the segment.
    pub(crate) fn counters(&self) -> &ProducerCounters {
        &self.segment.producer_region().counters.0
    }

    /// Counts time spent waiting for room (a cold path: after a wait).
    pub(crate) fn add_wait_time(&self, waited: Duration) {
        add(&self.counters().wait_ns, waited.as_nanos() as u64);
    }

    /// Stops gating on consumers whose process died (see [`registry::sweep_dead`]); returns how many. A
    /// system call per occupied slot: cold paths only.
    pub(crate) fn sweep_dead_consumers(&mut self) -> usize {
        registry::sweep_dead(&self.segment)
    }

    /// Consumers stopped gating because their process died, over the ring's life (by the producer, or by
    /// a consumer that swept the table looking for a free slot).
    pub(crate) fn dead_evicted_count(&self) -> u64 {
        registry::dead_consumers_evicted(&self.segment)
    }

    /// Consumers that gate the producer now, read from the table (a cold path).
    pub(crate) fn gating_consumers(&self) -> usize {
        registry::gating_count(&self.segment)
    }

    /// Whether `count` (at most the capacity) more events fit; refreshes the gate when the cached one is
    /// exhausted.
    #[inline(always)]
    pub(crate) fn has_room(&mut self, count: u64) -> bool {
        debug_assert!(count <= self.capacity);
        let end = self.next + count;
        if end <= self.gate {
            return true;
        }
        self.refresh_gate(end)
    }

    /// Counts one time the producer found the ring full: a publish that waited for room, or a `try_`
    /// publish that failed (not every poll of a wait).
    #[cold]
    pub(crate) fn note_ring_full(&mut self) {
        add(&self.counters().ring_full, 1);
    }

    /// Recomputes the gate from the consumers' cursors; whether sequences below `end` may be written.
    fn refresh_gate(&mut self, end: u64) -> bool {
        self.gate = self.gating.gate(&self.segment, self.next, self.capacity);
        end <= self.gate
    }

    /// Sleeps until a consumer wakes the producer or `bound` passes, unless `count` more events fit by
    /// then: the producer's half of the handshake in [`crate::wait`].
    #[cold]
    pub(crate) fn sleep_for_room(&mut self, count: u64, bound: Duration) {
        let line = &self.segment.producer_region().producer_wait.0;
        let ticket = wait::announce_sleep(&line.sleeping, &line.wake, self.fences);
        add(&self.counters().sleeps, 1);
        // The re-check after the fence: a commit the waker made before it saw the flag is seen here.
        if !self.refresh_gate(self.next + count) {
            ticket.sleep(&self.segment.producer_region().producer_wait.0.wake, bound);
        }
    }

    /// Release-stores the published count: everything written to slots below it becomes visible to any
    /// consumer that acquire-loads it. Then wakes the consumers that sleep waiting for it, if any: one load
    /// of the line just written.
    #[inline(always)]
    fn publish_up_to(&mut self, end: u64) {
        self.next = end;
        self.segment
            .producer_region()
            .published
            .0
            .count
            .store(end, Ordering::Release);
        self.fences.light();
        self.segment.wake_consumers_if_sleeping();
    }

    /// Lets `write` fill the next slot in place and publishes it, if there is room; returns its sequence.
    /// The slot holds whatever event was there before (or zeroes), always a valid `E`.
    #[inline(always)]
    pub(crate) fn try_publish_with(&mut self, write: impl FnOnce(&mut E)) -> Option<u64> {
        if !self.has_room(1) {
            return None;
        }
        Some(self.publish_next_with(write))
    }

    /// Lets `write` fill the next slot in place and publishes it; returns its sequence. The caller has
    /// just seen [`has_room`](Self::has_room) return `true`; the assert restates that as one compare.
    #[inline(always)]
    pub(crate) fn publish_next_with(&mut self, write: impl FnOnce(&mut E)) -> u64 {
        let sequence = self.next;
        assert!(sequence < self.gate, "publish without room");
        // SAFETY: `sequence < gate` means every gating consumer has consumed sequence
        // `sequence - capacity`, the previous occupant of this slot, and no consumer reads at or above
        // `published == sequence`, so no other process reads or writes this slot until we publish it.
        // Any bit pattern is a valid `E` (RingEvent contract), so handing out `&mut E` is sound.
        write(unsafe { &mut *self.slots.slot_ptr(sequence) });
        self.publish_up_to(sequence + 1);
        sequence
    }

    /// Lets `fill` write `count` (at most the capacity) consecutive slots in place, each with its sequence,
    /// and publishes them all with one release store, if there is room for all of them; returns the first
    /// sequence. Slots hold older events (always valid `E`s) when `fill` sees them.
    #[inline(always)]
    pub(crate) fn try_publish_many_with(
        &mut self,
        count: u64,
        mut fill: impl FnMut(u64, &mut E),
    ) -> Option<u64> {
        if !self.has_room(count) {
            return None;
        }
        let first = self.next;
        for sequence in first..first + count {
            // SAFETY: as in `try_publish_with`, for each of the `count` sequences `has_room` cleared.
            fill(sequence, unsafe { &mut *self.slots.slot_ptr(sequence) });
        }
        self.publish_up_to(first + count);
        Some(first)
    }

    /// Marks the ring closed after the last publish (consumers drain, then see `Closed`) and removes its
    /// name so no new consumer attaches, unless the name now belongs to a newer segment. In a process that
    /// inherited the producer through `fork`, does nothing: the ring belongs to the parent.
    pub(crate) fn close(&self) {
        if std::process::id() != self.owner_pid {
            return;
        }
        // Release: pairs with the consumers' Acquire load; every publish happened before.
        self.segment
            .producer_region()
            .closed
            .0
            .store(1, Ordering::Release);
        // Sleeping consumers re-check the closed flag when woken.
        fence(Ordering::SeqCst);
        self.segment.wake_consumers_if_sleeping();
        let _ = self.segment.unlink_if_current();
    }
}

/// The consumer's side of the protocol. Owns the segment mapping and its table slot.
#[derive(Debug)]
pub(crate) struct ConsumerRing<E> {
    segment: Segment,
    slots: Slots<E>,
    claim: SlotClaim,
    /// The process that joined; a child that inherited a copy through `fork` is not it.
    owner_pid: u32,
    /// Set once we acknowledged an eviction: nothing is readable any more.
    evicted: bool,
    /// The eviction notice count last seen on the published line.
    evictions_seen: u64,
    /// Next sequence to read (= the cursor once committed).
    next: u64,
    /// Cached `published`: sequences below it are readable.
    available: u64,
    /// The sleep/wake handshake's fences (see [`crate::wait`]).
    fences: FencePair,
}

impl<E: RingEvent> ConsumerRing<E> {
    /// Joins the producer through the claimed table slot, starting where `start` says; on an error the
    /// slot is given up again.
    pub(crate) fn join(
        segment: Segment,
        claim: SlotClaim,
        start: StartPosition,
    ) -> Result<ConsumerRing<E>, AttachError> {
        let slots = Slots::new(&segment);
        let start = match registry::join(&segment, claim, start) {
            Ok(start) => start,
            Err(error) => {
                registry::leave(&segment, claim);
                return Err(error);
            }
        };
        Ok(ConsumerRing {
            segment,
            slots,
            claim,
            owner_pid: std::process::id(),
            evicted: false,
            evictions_seen: 0,
            next: start,
            available: start,
            fences: FencePair::get(),
        })
    }

    /// The segment.
    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }

    /// This consumer's index in the table.
    pub(crate) fn slot_index(&self) -> usize {
        self.claim.index
    }

    /// Sequence of the next event to read.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Number of events readable now, loading `published` only when the cached value is used up.
    #[inline(always)]
    pub(crate) fn poll(&mut self) -> u64 {
        if self.next == self.available {
            // Acquire: pairs with the producer's Release bump after marking a slot EVICTING. The word is
            // on the line loaded just below anyway; only when it moved do we look at our own slot.
            let evictions = self.published_line().evictions.load(Ordering::Acquire);
            if (evictions != self.evictions_seen || self.evicted) && self.notice_eviction() {
                return 0;
            }
            // Acquire: pairs with the producer's Release store; the slots below are now visible.
            let published = self.published_line().count.load(Ordering::Acquire);
            // Stored only when it moved: an empty poll of a spinning consumer then writes nothing, which
            // keeps its loop short when the producer's store finally lands.
            if published > self.next {
                self.available = published;
            }
        }
        self.available - self.next
    }

    #[inline(always)]
    fn published_line(&self) -> &PublishedLine {
        &self.segment.producer_region().published.0
    }

    /// The event at `sequence`, which must be readable: `next <= sequence < available`.
    #[inline(always)]
    pub(crate) fn event(&self, sequence: u64) -> &E {
        assert!(
            sequence >= self.next && sequence < self.available,
            "sequence {sequence} is not readable"
        );
        // SAFETY: `sequence < available <= published`, so the producer wrote it and released it before
        // our Acquire load; our cursor is `<= next <= sequence`, so the producer cannot overwrite this
        // slot (it waits until the cursor passes `sequence`) while `&self` is borrowed. Every bit pattern
        // is a valid `E`.
        unsafe { &*self.slots.slot_ptr(sequence) }
    }

    /// Marks `count` more events consumed and release-stores the cursor, letting the producer reuse
    /// their slots.
    #[inline(always)]
    pub(crate) fn commit(&mut self, count: u64) {
        debug_assert!(self.next + count <= self.available);
        self.next += count;
        // Release: our reads of the slots happen-before the producer's Acquire load of this cursor.
        self.segment
            .consumer_slot(self.claim.index)
            .cursor
            .0
            .store(self.next, Ordering::Release);
        self.fences.light();
        self.segment.wake_producer_if_sleeping();
    }

    /// Sleeps until the producer wakes consumers or `bound` passes, unless something to read or to notice
    /// (an event, the ring closed, an eviction) arrived by then: the consumer's half of the handshake in
    /// [`crate::wait`].
    #[cold]
    pub(crate) fn sleep_for_events(&self, bound: Duration) {
        let line = self.published_line();
        let ticket =
            wait::announce_sleep(&line.consumers_sleeping, &line.consumer_wake, self.fences);
        add(&self.own_slot().sleeps, 1);
        // The re-check after the fence: whatever the producer stored before it looked at the flag is
        // seen here.
        let nothing_new = line.count.load(Ordering::Acquire) <= self.next
            && line.evictions.load(Ordering::Acquire) == self.evictions_seen
            && !self.segment.is_closed();
        if nothing_new {
            ticket.sleep(&line.consumer_wake, bound);
        }
    }

    /// Looks at our own slot after an eviction notice; returns whether this consumer is evicted. If the
    /// producer is evicting us (or took our slot), stops reading for good, acknowledging so that the
    /// producer stops gating. While the slot is ours and ACTIVE, or EVICTING until we acknowledge, the
    /// producer gates on our cursor, so nothing we were handed can have been overwritten.
    #[cold]
    fn notice_eviction(&mut self) -> bool {
        if !self.evicted {
            self.evictions_seen = self.published_line().evictions.load(Ordering::Acquire);
            let ours = Ownership {
                state: slot_state::ACTIVE,
                generation: self.claim.generation,
            };
            let ownership = self
                .segment
                .consumer_slot(self.claim.index)
                .ownership
                .load(Ordering::Acquire);
            if ownership != ours.pack() {
                self.evicted = true;
                registry::acknowledge_eviction(&self.segment, self.claim);
            }
        }
        self.evicted
    }

    /// This consumer's entry in the table.
    fn own_slot(&self) -> &ConsumerSlot {
        self.segment.consumer_slot(self.claim.index)
    }

    /// Records this consumer's empty polls so far and adds time spent waiting for events (cold paths: a
    /// liveness check, the end of a blocking read).
    pub(crate) fn record_idle(&self, empty_polls: u64, waited: Duration) {
        let slot = self.own_slot();
        slot.empty_polls.store(empty_polls, Ordering::Relaxed);
        add(&slot.wait_ns, waited.as_nanos() as u64);
    }

    /// True once this consumer was evicted (see [`ConsumeError::Evicted`](crate::ConsumeError)).
    pub(crate) fn is_evicted(&self) -> bool {
        self.evicted
    }

    /// The producer's pid if it died without closing the ring. A system call: cold paths only. Poll again
    /// after a `Some` before concluding the ring is drained: the kernel's release of the dead producer's lock
    /// happens after its last store of `published`.
    pub(crate) fn producer_gone(&self) -> Option<u32> {
        (!self.segment.is_closed() && !self.segment.is_alive(Endpoint::Producer))
            .then(|| self.segment.stamp(Endpoint::Producer).pid)
    }

    /// Whether reading may have ended for good: evicted, or the closed flag set (a relaxed look, for the
    /// hot empty-poll path; [`is_drained_and_closed`](Self::is_drained_and_closed) decides).
    #[inline(always)]
    pub(crate) fn may_have_ended(&self) -> bool {
        self.evicted
            || self
                .segment
                .producer_region()
                .closed
                .0
                .load(Ordering::Relaxed)
                != 0
    }

    /// True once the producer closed the ring and every event it published has been read.
    pub(crate) fn is_drained_and_closed(&mut self) -> bool {
        let closed = self
            .segment
            .producer_region()
            .closed
            .0
            .load(Ordering::Acquire)
            != 0;
        // The closed flag was stored after the last publish: poll again to see it.
        closed && self.poll() == 0
    }
}

impl<E> Drop for ConsumerRing<E> {
    fn drop(&mut self) {
        // A child that inherited this consumer through `fork` only unmaps its copy: the slot is the
        // parent's.
        if std::process::id() == self.owner_pid {
            registry::leave(&self.segment, self.claim);
        }
    }
}
