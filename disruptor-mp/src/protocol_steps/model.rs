//! The protocol model: the producer's and consumers' steps from [`protocol_steps`](super), run by threads
//! over a ring whose words live on the heap ([`HeapRing`]) and whose events live in checked cells.
//!
//! With `--cfg loom` each scenario runs under loom, which explores the interleavings of its threads (up to
//! `LOOM_MAX_PREEMPTIONS` preemptions per execution, 3 unless set) and the weak-memory outcomes it models,
//! and fails on a data race on an event cell, a causality violation, a deadlock (a lost wake-up), or a
//! failed assertion. Without it (the ordinary test suite, Miri, ThreadSanitizer) each scenario runs as
//! ordinary threads many times.
//!
//! # What the model covers
//!
//! - Publishing and reading in place: the producer's gate against the consumers' cursors, the release
//!   publish and the acquire read, the commit that frees a slot (`publish_then_read_in_place`).
//! - A consumer joining a ring that is publishing, from `Latest` and from `Earliest`: the fence handshake
//!   between the join and the producer's gate refresh, and the horizon (`a_consumer_joins_*`).
//! - Leaving and re-joining the same table entry under a new generation while the producer publishes
//!   (`a_consumer_leaves_and_joins_again_*`), and eviction while the consumer reads in place: the producer
//!   keeps gating until the consumer acknowledges (`an_evicted_consumer_*`).
//! - Close against drain: a consumer that finds the ring closed has read every event
//!   (`a_closed_ring_is_drained_*`).
//! - Every sleep/wake pairing: a consumer sleeping for events, the producer sleeping for room, a pipeline
//!   stage sleeping for its upstream stage's commit (`*_is_woken`).
//!
//! # What it does not cover
//!
//! - Liveness (kernel locks), claiming a slot under its lock, consumer ids and durable reservations: they
//!   are kernel and process behaviour, checked by the cross-process tests and the soak lane.
//! - The untethered reader's copy-then-validate read: it races with the producer's writes by design (a
//!   seqlock), which a data-race checker reports whatever the validation; its argument is in
//!   `crate::untethered`, and `tests/untethered.rs` checks it under load.
//! - `membarrier`'s asymmetric fences: the model uses a full fence on both sides, which is what
//!   `membarrier` guarantees (see `crate::backend::wake`); loom cannot model the syscall itself.
//! - Loom treats SeqCst loads and stores as AcqRel (which can only add false alarms, none of which
//!   appear), and it bounds preemptions, so executions with more preemptions than the bound are not
//!   explored.

use super::{
    commit_sleepers, load_cursor, load_evictions, load_published, slot_state, CommitWaitLine,
    GatingSet, MembershipLine, Ownership, PublishedLine, SharedWords, StartPosition,
};
use crate::backend::wake::FencePair;
use crate::sync::atomic::{AtomicU32, AtomicU64};
use crate::sync::cell::UnsafeCell;
use std::time::Duration;

#[cfg(loom)]
use loom::{sync::Arc, thread};
#[cfg(not(loom))]
use std::{sync::Arc, thread};

/// How long a sleep may last outside loom (loom's futex ignores it and blocks until woken).
const SLEEP_BOUND: Duration = Duration::from_millis(5);

/// The fences of a process registered for `membarrier`, as every process is on Linux: the hot path's
/// light fence is only a compiler fence. Scenarios without sleeps use these, so that no ordering they
/// check leans on a hardware fence that production does not issue.
const HOT_PATH_FENCES: bool = true;

/// Full fences on both sides of a sleep/wake handshake: what `membarrier` provides to the pairing (every
/// running thread executes a full barrier), which loom cannot model as a system call. Sleep scenarios use
/// these; the orderings they would mask are checked by the scenarios above, which use the light fence.
const SLEEP_WAKE_FENCES: bool = false;

/// Runs `scenario` under loom's exhaustive exploration, or many times on ordinary threads.
fn check(scenario: impl Fn() + Send + Sync + 'static) {
    #[cfg(loom)]
    {
        let mut builder = loom::model::Builder::new();
        if builder.preemption_bound.is_none() {
            builder.preemption_bound = Some(3);
        }
        builder.check(scenario);
    }
    #[cfg(not(loom))]
    {
        let runs = if cfg!(miri) { 16 } else { 300 };
        for _ in 0..runs {
            scenario();
        }
    }
}

/// A ring whose shared words live on the heap, with one checked cell per event slot.
struct HeapRing {
    mask: u64,
    published: PublishedLine,
    closed: AtomicU32,
    membership: MembershipLine,
    commit_wait: CommitWaitLine,
    cursors: Vec<AtomicU64>,
    ownerships: Vec<AtomicU64>,
    events: Vec<UnsafeCell<u64>>,
}

// SAFETY: the event cells are shared between the producer's and the consumers' threads exactly as slots
// of a mapping are shared between processes: who may touch which cell when is the protocol under test,
// and the cells (loom's) report any access the protocol does not order.
unsafe impl Sync for HeapRing {}
// SAFETY: as above; the ring owns its words and cells.
unsafe impl Send for HeapRing {}

impl HeapRing {
    fn new(capacity: u64, consumer_slots: usize) -> Arc<HeapRing> {
        assert!(capacity.is_power_of_two());
        Arc::new(HeapRing {
            mask: capacity - 1,
            published: PublishedLine {
                count: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
                consumers_sleeping: AtomicU32::new(0),
                consumer_wake: AtomicU32::new(0),
            },
            closed: AtomicU32::new(0),
            membership: MembershipLine {
                changes: AtomicU64::new(0),
                horizon: AtomicU64::new(0),
            },
            commit_wait: CommitWaitLine {
                sleeping: AtomicU32::new(0),
                wake: AtomicU32::new(0),
                dependent_wake: AtomicU32::new(0),
            },
            cursors: (0..consumer_slots).map(|_| AtomicU64::new(0)).collect(),
            ownerships: (0..consumer_slots).map(|_| AtomicU64::new(0)).collect(),
            events: (0..capacity).map(|_| UnsafeCell::new(u64::MAX)).collect(),
        })
    }

    /// Writes event `sequence` into its slot; the producer holds the slot by the gate.
    fn write(&self, sequence: u64) {
        // SAFETY: called only for a sequence below the producer's gate and at or above `published`, so
        // no consumer reads the cell (loom checks exactly that).
        self.events[(sequence & self.mask) as usize].with_mut(|event| unsafe { *event = sequence });
    }

    /// Reads event `sequence` in place; the caller may read it (it is published and its cursor holds
    /// the slot).
    fn read(&self, sequence: u64) -> u64 {
        // SAFETY: called only below the published count and at or above the reader's gating cursor, so
        // the producer does not write the cell (loom checks exactly that).
        self.events[(sequence & self.mask) as usize].with(|event| unsafe { *event })
    }
}

impl SharedWords for HeapRing {
    fn capacity(&self) -> u64 {
        self.mask + 1
    }

    fn slot_count(&self) -> usize {
        self.cursors.len()
    }

    fn published_line(&self) -> &PublishedLine {
        &self.published
    }

    fn closed(&self) -> &AtomicU32 {
        &self.closed
    }

    fn membership(&self) -> &MembershipLine {
        &self.membership
    }

    fn commit_wait(&self) -> &CommitWaitLine {
        &self.commit_wait
    }

    fn cursor(&self, index: usize) -> &AtomicU64 {
        &self.cursors[index]
    }

    fn ownership_word(&self, index: usize) -> &AtomicU64 {
        &self.ownerships[index]
    }
}

/// The producer's side, as `ring::ProducerRing` composes the steps.
struct Producer {
    ring: Arc<HeapRing>,
    next: u64,
    gate: u64,
    gating: GatingSet,
    fences: FencePair,
}

impl Producer {
    fn new(ring: &Arc<HeapRing>, asymmetric_fences: bool) -> Producer {
        Producer {
            ring: Arc::clone(ring),
            next: 0,
            gate: 0,
            gating: GatingSet::new(),
            fences: FencePair::for_model(asymmetric_fences),
        }
    }

    fn has_room(&mut self) -> bool {
        let end = self.next + 1;
        if end > self.gate {
            self.gate = self.gating.gate(&*self.ring, self.next, end);
        }
        end <= self.gate
    }

    /// Publishes the next event if there is room.
    fn try_publish(&mut self) -> bool {
        if !self.has_room() {
            return false;
        }
        self.ring.write(self.next);
        self.next += 1;
        super::publish(&*self.ring, self.next);
        self.fences.light();
        super::wake_consumers_if_sleeping(&*self.ring);
        true
    }

    /// Publishes the next event, yielding while the ring is full.
    fn publish_spinning(&mut self) {
        while !self.try_publish() {
            thread::yield_now();
        }
    }

    /// Publishes the next event, sleeping for room while the ring is full.
    fn publish_sleeping(&mut self) {
        while !self.try_publish() {
            let sleep =
                super::announce_commit_sleep(&*self.ring, self.fences, commit_sleepers::PRODUCER);
            // The re-check after the fence, as `ProducerRing::sleep_for_room` makes it.
            if !self.has_room() {
                sleep.sleep(&*self.ring, SLEEP_BOUND);
            }
        }
    }

    fn close(&self) {
        super::close(&*self.ring);
    }
}

/// A consumer's side, as `ring::ConsumerRing` and `ring::ReaderSlot` compose the steps.
struct Consumer {
    ring: Arc<HeapRing>,
    index: usize,
    generation: u32,
    next: u64,
    available: u64,
    evictions_seen: u64,
    evicted: bool,
    fences: FencePair,
}

impl Consumer {
    /// Claims table entry `index` (FREE → CLAIMED, a new generation) and joins from `start`.
    fn join(
        ring: &Arc<HeapRing>,
        index: usize,
        start: StartPosition,
        asymmetric_fences: bool,
    ) -> Consumer {
        let current = super::ownership(&**ring, index);
        assert_eq!(current.state, slot_state::FREE);
        let claimed = Ownership {
            state: slot_state::CLAIMED,
            generation: current.generation.wrapping_add(1),
        };
        assert!(super::swap(&**ring, index, current, claimed));
        let first = super::join(&**ring, index, claimed.generation, start, || {
            Ok::<u64, ()>(0)
        })
        .unwrap();
        Consumer {
            ring: Arc::clone(ring),
            index,
            generation: claimed.generation,
            next: first,
            available: first,
            evictions_seen: 0,
            evicted: false,
            fences: FencePair::for_model(asymmetric_fences),
        }
    }

    /// Events readable now; looks at the published count (and the eviction notice) when none is cached.
    fn poll(&mut self) -> u64 {
        if self.next == self.available && !self.evicted {
            let evictions = load_evictions(&*self.ring);
            if evictions != self.evictions_seen {
                self.evictions_seen = evictions;
                let ours = Ownership {
                    state: slot_state::ACTIVE,
                    generation: self.generation,
                };
                if !super::still_holds(&*self.ring, self.index, ours) {
                    self.evicted = true;
                    super::acknowledge_eviction(&*self.ring, self.index, self.generation);
                    return 0;
                }
            }
            self.available = load_published(&*self.ring);
        }
        if self.evicted {
            return 0;
        }
        self.available - self.next
    }

    /// Reads the next event in place, checks it, and commits it.
    fn read_and_commit(&mut self) {
        assert_eq!(
            self.ring.read(self.next),
            self.next,
            "a torn or stale event"
        );
        self.next += 1;
        super::commit(&*self.ring, self.index, self.next);
        self.fences.light();
        super::wake_commit_sleepers(&*self.ring);
    }

    /// Whether the ring is closed and everything published was read (the end of `consumer.rs`'s reads).
    fn drained(&self) -> bool {
        super::is_closed(&*self.ring) && load_published(&*self.ring) <= self.next
    }

    /// Reads until `end` is read, yielding while nothing is readable.
    fn read_spinning_until(&mut self, end: u64) {
        while self.next < end {
            if self.poll() == 0 {
                thread::yield_now();
            } else {
                self.read_and_commit();
            }
        }
    }

    /// Reads until `done` says so (checked when nothing is readable), sleeping while nothing is
    /// readable; returns the number of events read.
    fn read_sleeping_until(&mut self, done: impl Fn(&Consumer) -> bool) -> u64 {
        let first = self.next;
        loop {
            if self.poll() > 0 {
                self.read_and_commit();
            } else if done(self) {
                return self.next - first;
            } else {
                super::sleep_for_events(
                    &*self.ring,
                    self.fences,
                    self.next,
                    self.evictions_seen,
                    SLEEP_BOUND,
                );
            }
        }
    }

    fn leave(self) {
        assert!(super::leave(
            &*self.ring,
            self.index,
            self.generation,
            false,
            || ()
        ));
    }
}

#[test]
fn publish_then_read_in_place() {
    check(|| {
        let ring = HeapRing::new(2, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, HOT_PATH_FENCES);
        let mut producer = Producer::new(&ring, HOT_PATH_FENCES);
        let publisher = thread::spawn(move || {
            for _ in 0..3 {
                producer.publish_spinning();
            }
        });
        consumer.read_spinning_until(3);
        publisher.join().unwrap();
    });
}

/// A consumer joins while the producer publishes into a ring no one else gates: whatever interleaving,
/// the producer never rewrites a slot the joiner reads, and the joiner reads every event from its first.
fn joins_while_publishing(start: StartPosition) {
    check(move || {
        let ring = HeapRing::new(2, 1);
        let mut producer = Producer::new(&ring, HOT_PATH_FENCES);
        producer.publish_spinning();
        let publisher = thread::spawn(move || {
            for _ in 0..3 {
                producer.publish_spinning();
            }
        });
        let mut consumer = Consumer::join(&ring, 0, start, HOT_PATH_FENCES);
        assert!(consumer.next <= 4);
        consumer.read_spinning_until(4);
        publisher.join().unwrap();
    });
}

#[test]
fn a_consumer_joins_a_publishing_ring_from_latest() {
    joins_while_publishing(StartPosition::Latest);
}

#[test]
fn a_consumer_joins_a_publishing_ring_from_earliest() {
    joins_while_publishing(StartPosition::Earliest);
}

#[test]
fn a_consumer_leaves_and_joins_again_while_the_producer_publishes() {
    check(|| {
        let ring = HeapRing::new(2, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, HOT_PATH_FENCES);
        let mut producer = Producer::new(&ring, HOT_PATH_FENCES);
        let publisher = thread::spawn(move || {
            for _ in 0..4 {
                producer.publish_spinning();
            }
        });
        consumer.read_spinning_until(1);
        consumer.leave();
        let mut again = Consumer::join(&ring, 0, StartPosition::Earliest, HOT_PATH_FENCES);
        again.read_spinning_until(4);
        publisher.join().unwrap();
    });
}

#[test]
fn an_evicted_consumer_never_reads_a_slot_the_producer_rewrites() {
    check(|| {
        let ring = HeapRing::new(2, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, HOT_PATH_FENCES);
        let mut producer = Producer::new(&ring, HOT_PATH_FENCES);
        producer.publish_spinning();
        producer.publish_spinning();
        let publisher = thread::spawn(move || {
            let eviction = super::evict(&*producer.ring, 0, || true);
            assert_eq!(eviction, super::Eviction::Pending);
            // The ring is full: these wait until the consumer acknowledges, however far it has read.
            producer.publish_spinning();
            producer.publish_spinning();
        });
        // It reads on (safely: an EVICTING entry still gates) until it notices the notice.
        while !consumer.evicted {
            if consumer.poll() > 0 {
                consumer.read_and_commit();
            } else {
                thread::yield_now();
            }
        }
        publisher.join().unwrap();
        let ours = super::ownership(&*ring, 0);
        assert_eq!(ours.state, slot_state::EVICTED);
    });
}

#[test]
fn a_closed_ring_is_drained_before_its_consumer_stops() {
    check(|| {
        let ring = HeapRing::new(2, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, HOT_PATH_FENCES);
        let mut producer = Producer::new(&ring, HOT_PATH_FENCES);
        let publisher = thread::spawn(move || {
            producer.publish_spinning();
            producer.publish_spinning();
            producer.close();
        });
        let mut read = 0;
        loop {
            if consumer.poll() > 0 {
                consumer.read_and_commit();
                read += 1;
            } else if consumer.drained() {
                break;
            } else {
                thread::yield_now();
            }
        }
        assert_eq!(read, 2);
        publisher.join().unwrap();
    });
}

#[test]
fn a_consumer_sleeping_for_events_is_woken_by_the_close() {
    check(|| {
        let ring = HeapRing::new(2, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, SLEEP_WAKE_FENCES);
        let mut producer = Producer::new(&ring, SLEEP_WAKE_FENCES);
        let publisher = thread::spawn(move || {
            producer.publish_spinning();
            producer.close();
        });
        assert_eq!(consumer.read_sleeping_until(Consumer::drained), 1);
        publisher.join().unwrap();
    });
}

#[test]
fn a_consumer_sleeping_for_events_is_woken_by_each_publish() {
    check(|| {
        let ring = HeapRing::new(2, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, SLEEP_WAKE_FENCES);
        let mut producer = Producer::new(&ring, SLEEP_WAKE_FENCES);
        let publisher = thread::spawn(move || {
            producer.publish_spinning();
            producer.publish_spinning();
        });
        assert_eq!(consumer.read_sleeping_until(|c| c.next == 2), 2);
        publisher.join().unwrap();
    });
}

#[test]
fn a_producer_sleeping_for_room_is_woken() {
    check(|| {
        let ring = HeapRing::new(1, 1);
        let mut consumer = Consumer::join(&ring, 0, StartPosition::Latest, SLEEP_WAKE_FENCES);
        let mut producer = Producer::new(&ring, SLEEP_WAKE_FENCES);
        let publisher = thread::spawn(move || {
            for _ in 0..2 {
                producer.publish_sleeping();
            }
        });
        consumer.read_spinning_until(2);
        publisher.join().unwrap();
    });
}

#[test]
fn a_pipeline_stage_sleeping_for_its_upstream_stage_is_woken() {
    check(|| {
        let ring = HeapRing::new(2, 2);
        let mut upstream = Consumer::join(&ring, 0, StartPosition::Latest, SLEEP_WAKE_FENCES);
        let mut dependent = Consumer::join(&ring, 1, StartPosition::Latest, SLEEP_WAKE_FENCES);
        let mut producer = Producer::new(&ring, SLEEP_WAKE_FENCES);
        producer.publish_spinning();
        let stage = thread::spawn(move || upstream.read_spinning_until(1));
        // The dependent reads only what the upstream stage committed, as `ConsumerRing::upstream_limit`
        // bounds it, and sleeps on the commit line when it has caught up with it.
        while dependent.next < 1 {
            let limit = load_published(&*ring).min(load_cursor(&*ring, 0));
            if limit > dependent.next {
                dependent.available = limit;
                dependent.read_and_commit();
                continue;
            }
            let sleep =
                super::announce_commit_sleep(&*ring, dependent.fences, commit_sleepers::DEPENDENTS);
            // The re-check after the fence, as `ConsumerRing::sleep_for_events` makes it.
            if load_cursor(&*ring, 0) <= dependent.next {
                sleep.sleep(&*ring, SLEEP_BOUND);
            }
        }
        stage.join().unwrap();
        // Both consumers committed: the producer has room for a whole ring again.
        assert!(producer.try_publish() && producer.try_publish());
        assert!(!producer.try_publish());
    });
}
