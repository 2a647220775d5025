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
use crate::error::{AttachError, ConsumeError, UpstreamEnd};
use crate::event::RingEvent;
use crate::protocol_steps::{
    self, commit_sleepers, slot_state, GatingSet, Ownership, SharedWords, StartPosition,
};
use crate::registry::{self, SlotClaim, UpstreamProgress, UpstreamStage};
use crate::segment::{add, ConsumerSlot, Endpoint, ProducerCounters, Segment};
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

    /// The ring's capacity in events.
    fn capacity(&self) -> u64 {
        self.mask + 1
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
        ProducerRing {
            segment,
            slots,
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
        self.slots.capacity()
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
        debug_assert!(count <= self.capacity());
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
        self.gate = self.gating.gate(&self.segment, self.next, end);
        end <= self.gate
    }

    /// Sleeps until a consumer wakes the producer or `bound` passes, unless `count` more events fit by
    /// then: the producer's half of the handshake in [`crate::wait`].
    #[cold]
    pub(crate) fn sleep_for_room(&mut self, count: u64, bound: Duration) {
        let sleep = protocol_steps::announce_commit_sleep(
            &self.segment,
            self.fences,
            commit_sleepers::PRODUCER,
        );
        add(&self.counters().sleeps, 1);
        // The re-check after the fence: a commit the waker made before it saw the flag is seen here.
        if !self.refresh_gate(self.next + count) {
            sleep.sleep(&self.segment, bound);
        }
    }

    /// Release-stores the published count: everything written to slots below it becomes visible to any
    /// consumer that acquire-loads it. Then wakes the consumers that sleep waiting for it, if any: one load
    /// of the line just written.
    #[inline(always)]
    fn publish_up_to(&mut self, end: u64) {
        self.next = end;
        protocol_steps::publish(&self.segment, end);
        self.fences.light();
        protocol_steps::wake_consumers_if_sleeping(&self.segment);
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
        protocol_steps::close(&self.segment);
        let _ = self.segment.unlink_if_current();
    }
}

/// What every reader of a ring holds, tethered or untethered: the mapping, its table slot, and why it
/// stopped reading, once it has. Dropping it gives the slot up.
#[derive(Debug)]
pub(crate) struct ReaderSlot {
    segment: Segment,
    claim: SlotClaim,
    /// The state the slot holds while this reader owns it: ACTIVE, or UNTETHERED.
    reading_state: u32,
    /// The process that joined; a child that inherited a copy through `fork` is not it.
    owner_pid: u32,
    /// Why reading ended for good (evicted, or an upstream stage gone), once it has.
    ended: Option<ConsumeError>,
    /// The eviction notice count last seen on the published line.
    evictions_seen: u64,
    /// The sleep/wake handshake's fences (see [`crate::wait`]).
    fences: FencePair,
}

impl ReaderSlot {
    /// Makes the claimed slot a reader in `reading_state` with `join`, which returns the first sequence to
    /// read; on an error the slot is given up again.
    fn join(
        segment: Segment,
        claim: SlotClaim,
        reading_state: u32,
        join: impl FnOnce(&Segment) -> Result<u64, AttachError>,
    ) -> Result<(ReaderSlot, u64), AttachError> {
        match join(&segment) {
            Ok(first) => Ok((
                ReaderSlot {
                    segment,
                    claim,
                    reading_state,
                    owner_pid: std::process::id(),
                    ended: None,
                    evictions_seen: 0,
                    fences: FencePair::get(),
                },
                first,
            )),
            Err(error) => {
                registry::leave(&segment, claim);
                Err(error)
            }
        }
    }

    /// The segment.
    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }

    /// This reader's index in the table.
    pub(crate) fn slot_index(&self) -> usize {
        self.claim.index
    }

    /// The published count, or `None` once reading has ended. Looks at the eviction notice first: the word
    /// is on the line loaded anyway; only when it moved does the reader look at its own slot.
    #[inline(always)]
    fn load_published(&mut self) -> Option<u64> {
        let evictions = protocol_steps::load_evictions(&self.segment);
        if (evictions != self.evictions_seen || self.ended.is_some()) && self.notice_eviction() {
            return None;
        }
        Some(protocol_steps::load_published(&self.segment))
    }

    /// Looks at our own slot after an eviction notice; returns whether reading has ended. If the producer
    /// is evicting this reader (or took its slot), it stops reading for good, acknowledging so that the
    /// producer stops gating. While the slot is ours and ACTIVE, or EVICTING until we acknowledge, the
    /// producer gates on our cursor, so nothing we were handed can have been overwritten.
    #[cold]
    fn notice_eviction(&mut self) -> bool {
        if self.ended.is_none() {
            self.evictions_seen = protocol_steps::load_evictions(&self.segment);
            let ours = Ownership {
                state: self.reading_state,
                generation: self.claim.generation,
            };
            if !protocol_steps::still_holds(&self.segment, self.claim.index, ours) {
                self.ended = Some(ConsumeError::Evicted);
                registry::acknowledge_eviction(&self.segment, self.claim);
            }
        }
        self.ended.is_some()
    }

    /// Ends reading for good with `why`, unless it has ended already.
    #[cold]
    fn end(&mut self, why: ConsumeError) {
        self.ended.get_or_insert(why);
    }

    /// Why reading ended for good, once it has.
    pub(crate) fn ended(&self) -> Option<&ConsumeError> {
        self.ended.as_ref()
    }

    /// This reader's entry in the table.
    #[inline(always)]
    fn own_slot(&self) -> &ConsumerSlot {
        self.segment.consumer_slot(self.claim.index)
    }

    /// Records this reader's empty polls so far and adds time spent waiting for events (cold paths: a
    /// liveness check, the end of a blocking read).
    pub(crate) fn record_idle(&self, empty_polls: u64, waited: Duration) {
        let slot = self.own_slot();
        slot.empty_polls.store(empty_polls, Ordering::Relaxed);
        add(&slot.wait_ns, waited.as_nanos() as u64);
    }

    /// The producer's pid if it died without closing the ring. A system call: cold paths only. Poll again
    /// after a `Some` before concluding the ring is drained: the kernel's release of the dead producer's
    /// lock happens after its last store of `published`.
    pub(crate) fn producer_gone(&self) -> Option<u32> {
        (!self.segment.is_closed() && !self.segment.is_alive(Endpoint::Producer))
            .then(|| self.segment.stamp(Endpoint::Producer).pid)
    }

    /// Whether reading may have ended for good: ended, or the closed flag set (a relaxed look, for the
    /// hot empty-poll path; the endpoint decides with [`Reader::caught_up`] and the acquire load of
    /// [`Segment::is_closed`]).
    #[inline(always)]
    pub(crate) fn may_have_ended(&self) -> bool {
        self.ended.is_some() || self.segment.closed().load(Ordering::Relaxed) != 0
    }

    /// Sleeps until the producer wakes consumers or `bound` passes, unless something to read or to notice
    /// (an event at or after `next`, the ring closed, an eviction) arrived by then: the consumer's half of
    /// the handshake in [`crate::wait`].
    #[cold]
    fn sleep_for_events(&self, next: u64, bound: Duration) {
        add(&self.own_slot().sleeps, 1);
        protocol_steps::sleep_for_events(
            &self.segment,
            self.fences,
            next,
            self.evictions_seen,
            bound,
        );
    }

    /// Whether every event published so far lies before `next` (a fresh acquire load).
    fn caught_up(&self, next: u64) -> bool {
        protocol_steps::load_published(&self.segment) <= next
    }
}

impl Drop for ReaderSlot {
    fn drop(&mut self) {
        // A child that inherited this reader through `fork` only unmaps its copy: the slot is the parent's.
        if std::process::id() == self.owner_pid {
            registry::leave(&self.segment, self.claim);
        }
    }
}

/// What the endpoints' waiting and liveness logic needs from a ring reader (see `consumer`).
pub(crate) trait Reader {
    /// Number of events readable now (may load `published`).
    fn poll(&mut self) -> u64;
    /// The reader's slot.
    fn slot(&self) -> &ReaderSlot;
    /// Sleeps until woken or `bound` passes, unless something arrived meanwhile.
    fn sleep_for_events(&mut self, bound: Duration);
    /// Whether every event published so far has been read (a fresh look at `published`).
    fn caught_up(&self) -> bool;
    /// Checks the peers this reader depends on, besides the producer (a system call per peer: cold paths
    /// only); a peer found gone ends reading with the reason.
    fn check_peers(&mut self) {}
}

/// The consumer's side of the protocol. Owns the segment mapping and its table slot.
#[derive(Debug)]
pub(crate) struct ConsumerRing<E> {
    reader: ReaderSlot,
    slots: Slots<E>,
    /// The consumers this one reads behind (a pipeline stage); empty for an ordinary consumer.
    upstreams: Vec<UpstreamStage>,
    /// Next sequence to read (= the cursor once committed).
    next: u64,
    /// Sequences below it are readable: published, and committed by every upstream stage.
    available: u64,
}

impl<E: RingEvent> ConsumerRing<E> {
    /// Joins the producer through the claimed table slot, starting where `start` says and reading only
    /// what every one of `upstreams` has committed; on an error the slot is given up again.
    pub(crate) fn join(
        segment: Segment,
        claim: SlotClaim,
        start: StartPosition,
        upstreams: Vec<UpstreamStage>,
    ) -> Result<ConsumerRing<E>, AttachError> {
        let slots = Slots::new(&segment);
        let (reader, start) = ReaderSlot::join(segment, claim, slot_state::ACTIVE, |segment| {
            registry::join(segment, claim, start, &upstreams)
        })?;
        Ok(ConsumerRing {
            reader,
            slots,
            upstreams,
            next: start,
            available: start,
        })
    }

    /// Sequence of the next event to read.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next
    }

    /// The ids of the consumers this one reads behind.
    pub(crate) fn upstream_ids(&self) -> impl Iterator<Item = &str> {
        self.upstreams.iter().map(|upstream| upstream.id.as_str())
    }

    /// Number of events readable now, loading `published` only when the cached value is used up.
    #[inline(always)]
    pub(crate) fn poll(&mut self) -> u64 {
        if self.next == self.available {
            let Some(published) = self.reader.load_published() else {
                return 0;
            };
            // Stored only when it moved: an empty poll of a spinning consumer then writes nothing, which
            // keeps its loop short when the producer's store finally lands.
            if published > self.next {
                // This consumer gates the producer from at most `next`: more than a ring beyond it can only
                // be a rewrite by another process, and reading it would hand out overwritten slots.
                if published - self.next > self.slots.capacity() {
                    self.corrupt_published(published);
                    return 0;
                }
                let limit = if self.upstreams.is_empty() {
                    published
                } else {
                    self.upstream_limit(published)
                };
                if limit > self.next {
                    self.available = limit;
                }
            }
        }
        self.available - self.next
    }

    /// Stops reading for good: the published count is beyond what the protocol allows.
    #[cold]
    #[inline(never)]
    fn corrupt_published(&mut self, published: u64) {
        self.reader.end(ConsumeError::CorruptSegment {
            word: "published count",
            value: published,
            reason: "more than a ring beyond this consumer, which gates the producer",
        });
    }

    /// The end of what is readable for a pipeline stage: `published`, and no further than any upstream
    /// stage has committed. Ends reading once an upstream stage that stopped has nothing more for us (or
    /// its slot has changed hands). Out of line, so that an ordinary consumer's poll stays as short as it
    /// was: a call costs a pipeline stage nothing next to the upstream cursor lines it loads.
    #[inline(never)]
    fn upstream_limit(&mut self, published: u64) -> u64 {
        let mut limit = published;
        let mut stopped = None;
        for upstream in &self.upstreams {
            match upstream.progress(self.reader.segment()) {
                UpstreamProgress::Running { cursor } => limit = limit.min(cursor),
                UpstreamProgress::Stopped { cursor, reason } => {
                    limit = limit.min(cursor);
                    // Over once we have read everything it committed (other stages may still limit us
                    // further).
                    if cursor <= self.next {
                        stopped.get_or_insert((upstream, reason));
                    }
                }
                // Its cursor belongs to another consumer now: nothing beyond what we already had.
                UpstreamProgress::Replaced => {
                    limit = self.next;
                    stopped.get_or_insert((upstream, UpstreamEnd::Left));
                }
            }
        }
        if let Some((upstream, reason)) = stopped {
            let why = ConsumeError::UpstreamGone {
                id: upstream.id.clone(),
                reason,
            };
            self.reader.end(why);
        }
        limit
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

    /// Hands each of the next `count` readable events to `handle` with its sequence, checking the whole
    /// range once instead of once per event (a batch's per-event cost is then the caller's work alone).
    #[inline(always)]
    pub(crate) fn for_each_readable(&self, count: u64, mut handle: impl FnMut(&E, u64)) {
        assert!(
            count <= self.available - self.next,
            "{count} events are not readable"
        );
        for sequence in self.next..self.next + count {
            // SAFETY: `next <= sequence < next + count <= available`, the condition under which `event`
            // hands out a reference (see there), checked once above for the whole range.
            handle(unsafe { &*self.slots.slot_ptr(sequence) }, sequence);
        }
    }

    /// Marks `count` more events consumed and release-stores the cursor, letting the producer reuse
    /// their slots and dependent stages read them; then wakes whoever sleeps waiting for a commit.
    #[inline(always)]
    pub(crate) fn commit(&mut self, count: u64) {
        debug_assert!(self.next + count <= self.available);
        self.next += count;
        protocol_steps::commit(&self.reader.segment, self.reader.claim.index, self.next);
        self.reader.fences.light();
        protocol_steps::wake_commit_sleepers(&self.reader.segment);
    }
}

impl<E: RingEvent> Reader for ConsumerRing<E> {
    #[inline(always)]
    fn poll(&mut self) -> u64 {
        ConsumerRing::poll(self)
    }

    #[inline(always)]
    fn slot(&self) -> &ReaderSlot {
        &self.reader
    }

    /// A pipeline stage that has everything published but not yet committed upstream sleeps until a
    /// consumer commits (the dependents' half of the handshake in [`crate::wait`], on the commit line);
    /// any other consumer sleeps until the producer publishes.
    #[cold]
    fn sleep_for_events(&mut self, bound: Duration) {
        let published = protocol_steps::load_published(&self.reader.segment);
        if self.upstreams.is_empty() || published <= self.next {
            return self.reader.sleep_for_events(self.next, bound);
        }
        let sleep = protocol_steps::announce_commit_sleep(
            &self.reader.segment,
            self.reader.fences,
            commit_sleepers::DEPENDENTS,
        );
        add(&self.reader.own_slot().sleeps, 1);
        // The re-check after the fence: a commit made before its consumer looked at the flag is seen here.
        let evictions_seen = self.reader.evictions_seen;
        let nothing_new = self.upstream_limit(published) <= self.next
            && self.reader.ended.is_none()
            && protocol_steps::load_evictions(&self.reader.segment) == evictions_seen;
        if nothing_new {
            sleep.sleep(&self.reader.segment, bound);
        }
    }

    fn caught_up(&self) -> bool {
        self.reader.caught_up(self.next)
    }

    /// Ends reading when an anonymous upstream stage's process died and everything it committed has been
    /// read.
    fn check_peers(&mut self) {
        for upstream in &self.upstreams {
            let Some(pid) = upstream.died(self.reader.segment()) else {
                continue;
            };
            let committed = match upstream.progress(self.reader.segment()) {
                UpstreamProgress::Running { cursor } | UpstreamProgress::Stopped { cursor, .. } => {
                    cursor
                }
                UpstreamProgress::Replaced => 0,
            };
            if committed <= self.next {
                let why = ConsumeError::UpstreamGone {
                    id: upstream.id.clone(),
                    reason: UpstreamEnd::Died { pid },
                };
                self.reader.end(why);
                return;
            }
        }
    }
}

/// An untethered reader's side of the protocol: it reads by copying each event out of its slot and then
/// validating the copy against the producer's horizon, never gating the producer (see
/// [`crate::untethered`]).
#[derive(Debug)]
pub(crate) struct UntetheredRing<E> {
    reader: ReaderSlot,
    slots: Slots<E>,
    /// Next sequence to read.
    next: u64,
    /// Cached `published`: sequences below it have been published (they may have been overwritten since).
    available: u64,
}

/// What an untethered read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UntetheredRead<E> {
    /// A validated copy of the event and its sequence.
    Event(E, u64),
    /// The producer overwrote the event this reader was about to read: `missed` events are lost, and the
    /// next read starts at `resumed_at`.
    Lapped { missed: u64, resumed_at: u64 },
}

impl<E: RingEvent> UntetheredRing<E> {
    /// Makes the claimed table slot an untethered reader starting where `start` says; on an error the slot
    /// is given up again.
    pub(crate) fn join(
        segment: Segment,
        claim: SlotClaim,
        start: StartPosition,
    ) -> Result<UntetheredRing<E>, AttachError> {
        let slots = Slots::new(&segment);
        let (reader, start) =
            ReaderSlot::join(segment, claim, slot_state::UNTETHERED, |segment| {
                registry::join_untethered(segment, claim, start)
            })?;
        Ok(UntetheredRing {
            reader,
            slots,
            next: start,
            available: start,
        })
    }

    /// Sequence of the next event to read.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Number of events published and not read yet (some may turn out overwritten when read).
    #[inline(always)]
    pub(crate) fn poll(&mut self) -> u64 {
        if self.next >= self.available {
            let Some(published) = self.reader.load_published() else {
                return 0;
            };
            if published > self.next {
                self.available = published;
            }
        }
        self.available.saturating_sub(self.next)
    }

    /// Reads the next event, which [`poll`](Self::poll) said is published: a validated copy, or the news
    /// that it was overwritten.
    #[inline]
    pub(crate) fn read(&mut self) -> UntetheredRead<E> {
        let sequence = self.next;
        debug_assert!(sequence < self.available);
        // SAFETY: `slot_ptr` stays inside the slot array and is aligned for `E` (checked in `Slots::new`);
        // the mapping is readable. The producer may be writing this slot right now (this reader does not
        // gate it), so the copy may be torn: it is a volatile read of plain bytes, every bit pattern of
        // which is a valid `E`, and it is returned only once validated below. (Rust has no atomic memcpy
        // yet; a volatile copy of an `E` that is then validated is the seqlock idiom.)
        let copy = unsafe { std::ptr::read_volatile(self.slots.slot_ptr(sequence)) };
        // Acquire: pairs with the fence after which the producer announces its horizon before it writes
        // any sequence below it. If the copy saw any byte of a write of `sequence + capacity` or later,
        // the horizon loaded below is past that sequence.
        fence(Ordering::Acquire);
        let horizon = self
            .reader
            .segment
            .producer_region()
            .membership
            .0
            .horizon
            .load(Ordering::Relaxed);
        let capacity = self.slots.capacity();
        // `sequence + capacity >= horizon`, without overflow whatever the shared words hold.
        if sequence >= horizon.saturating_sub(capacity) {
            self.next = sequence + 1;
            // Informational only (no one gates on it): lets observers show this reader's lag.
            self.reader
                .own_slot()
                .cursor
                .0
                .store(self.next, Ordering::Relaxed);
            UntetheredRead::Event(copy, sequence)
        } else {
            // Sequences below `horizon - capacity` may have been overwritten; those at or above it cannot
            // have been yet. (Never past what was published: a horizon further ahead was rewritten by
            // another process.)
            let resumed_at = (horizon - capacity).min(self.available.max(sequence + 1));
            self.next = resumed_at;
            // Poll afresh before reading `resumed_at`, so that its publication is acquired.
            self.available = self.available.min(resumed_at);
            UntetheredRead::Lapped {
                missed: resumed_at - sequence,
                resumed_at,
            }
        }
    }
}

impl<E: RingEvent> Reader for UntetheredRing<E> {
    #[inline(always)]
    fn poll(&mut self) -> u64 {
        UntetheredRing::poll(self)
    }

    #[inline(always)]
    fn slot(&self) -> &ReaderSlot {
        &self.reader
    }

    #[cold]
    fn sleep_for_events(&mut self, bound: Duration) {
        self.reader.sleep_for_events(self.next, bound)
    }

    fn caught_up(&self) -> bool {
        self.reader.caught_up(self.next)
    }
}
