//! The protocol's steps on the words the producer and the consumers share, written once for wherever
//! those words live: a mapped segment ([`Segment`](crate::segment) implements [`SharedWords`]), or the
//! heap of the loom model in this module's tests.
//!
//! Every atomic access that carries the protocol is here, with its ordering: publishing and reading the
//! published count, committing, the join handshake with the producer's gate refresh, leaving, eviction and
//! its acknowledgement, closing, and the sleep/wake pairings on both lines. Callers add what is not
//! protocol: claiming a slot under a liveness lock, ids, counters, errors with names.
//!
//! # The loom model
//!
//! Built with `RUSTFLAGS="--cfg loom"`, the crate compiles only this module, [`wait`](crate::wait),
//! [`backend::wake`](crate::backend::wake) and [`sync`](crate::sync), on loom's atomics, and the tests in
//! `model.rs` run these very functions under [loom](https://docs.rs/loom), which explores every
//! interleaving of their threads (up to a preemption bound) and the weak-memory outcomes it models:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" cargo test -p disruptor-mp --release --lib protocol_steps
//! ```
//!
//! Events live in loom cells, so a slot the producer rewrites while a consumer may still read it is
//! reported as a data race, and a read that is not ordered after the write it should see is reported too.
//! A sleeper whose wake-up is lost blocks for ever in the model's futex, which loom reports as a deadlock.
//! Without `cfg(loom)` the same scenarios run as ordinary threads (many times each), which is how Miri and
//! ThreadSanitizer check them. `model.rs` lists what the model covers and what it does not.

use crate::backend::wake::FencePair;
use crate::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use crate::wait;
use std::time::Duration;

#[cfg(test)]
mod model;

/// Where the protocol's shared words live, with the geometry validated when they were mapped: bounds
/// come from here, never from the shared words themselves.
pub(crate) trait SharedWords {
    /// The ring's capacity in events, a power of two.
    fn capacity(&self) -> u64;
    /// Entries in the consumer table.
    fn slot_count(&self) -> usize;
    /// The published count's line.
    fn published_line(&self) -> &PublishedLine;
    /// Non-zero once the producer closed the ring.
    fn closed(&self) -> &AtomicU32;
    /// The membership counter and the producer's horizon.
    fn membership(&self) -> &MembershipLine;
    /// Where whoever waits for a consumer's commit sleeps.
    fn commit_wait(&self) -> &CommitWaitLine;
    /// Table entry `index`'s cursor (`index < slot_count()`).
    fn cursor(&self, index: usize) -> &AtomicU64;
    /// Table entry `index`'s ownership word (`index < slot_count()`).
    fn ownership_word(&self, index: usize) -> &AtomicU64;
    /// Counts a wake-up the producer sent to sleeping consumers (observability only).
    fn count_consumer_wakeup(&self) {}
}

/// The line every consumer loads to learn what it may read.
#[repr(C)]
pub(crate) struct PublishedLine {
    /// Number of events published; event `s` is readable once `count > s`. Release-stored by the producer
    /// after writing the slots, acquire-loaded by consumers.
    pub(crate) count: AtomicU64,
    /// Bumped each time a consumer is told to leave (its slot marked EVICTING). It shares the line that
    /// consumers load anyway, so that a consumer learns of an eviction without touching another line on
    /// its read path: it looks at its own slot only when this changed.
    pub(crate) evictions: AtomicU64,
    /// Non-zero while some consumer sleeps (or is about to) waiting for events; set by each consumer
    /// before it sleeps, cleared by the producer when it wakes them. On this line so that the producer's
    /// check after each publish loads a line it has just written.
    pub(crate) consumers_sleeping: AtomicU32,
    /// The futex word sleeping consumers wait on: bumped by every wake-up the producer sends.
    pub(crate) consumer_wake: AtomicU32,
}

/// The line consumers bump when they join or leave, and the producer's horizon.
#[repr(C)]
pub(crate) struct MembershipLine {
    /// Bumped by every consumer join and leave, so the producer rescans the table only when it changed.
    pub(crate) changes: AtomicU64,
    /// The highest gate the producer has used: it never wrote a sequence at or above it without first
    /// seeing the table as it is now. Stored before the fence of each gate refresh; a consumer joining at
    /// an earlier start reads it to learn which held events the producer cannot overwrite before it sees
    /// the new consumer (see [`join`]).
    pub(crate) horizon: AtomicU64,
}

/// The line through which whoever waits for a consumer's commit sleeps, and the committing consumer wakes
/// them: the producer blocked on a full ring, and consumers that follow another consumer in a pipeline
/// (see [`crate::ConsumerBuilder::after`]).
#[repr(C)]
pub(crate) struct CommitWaitLine {
    /// [`commit_sleepers`] bits, raised while the producer or a dependent consumer sleeps (or is about to)
    /// waiting for a commit; cleared by the consumer that wakes them. One word, so that a commit checks
    /// for both kinds of sleeper with one load.
    pub(crate) sleeping: AtomicU32,
    /// The futex word the sleeping producer waits on: bumped by every wake-up a consumer sends it.
    pub(crate) wake: AtomicU32,
    /// The futex word sleeping dependent consumers wait on: bumped by every wake-up a consumer sends them.
    pub(crate) dependent_wake: AtomicU32,
}

/// Bits of [`CommitWaitLine::sleeping`]: who sleeps waiting for a consumer to commit.
pub(crate) mod commit_sleepers {
    /// The producer, waiting for room.
    pub(crate) const PRODUCER: u32 = 1;
    /// One or more consumers that read only what another consumer has committed.
    pub(crate) const DEPENDENTS: u32 = 2;
}

/// Slot states in the consumer table. A slot's state and generation share one 64-bit *ownership word*
/// (see [`Ownership`]), so that every transition is one compare-and-swap that also proves the slot was not
/// freed and claimed again in between.
pub(crate) mod slot_state {
    /// Unused; any consumer may claim it.
    pub(crate) const FREE: u32 = 0;
    /// Claimed by a joining consumer that is writing its identity; not yet gating.
    pub(crate) const CLAIMED: u32 = 1;
    /// Gating the producer from a provisional cursor while the consumer fixes its start sequence; not yet
    /// counted as attached.
    pub(crate) const JOINING: u32 = 2;
    /// Gating the producer with its cursor; its start sequence is fixed, so it is counted as attached.
    pub(crate) const ACTIVE: u32 = 3;
    /// Being evicted by the producer's policy: still gating (an event the consumer may be reading is not
    /// overwritten) until the consumer acknowledges with EVICTED, or its process is found dead.
    pub(crate) const EVICTING: u32 = 4;
    /// The consumer acknowledged its eviction and reads nothing more; no longer gating.
    pub(crate) const EVICTED: u32 = 5;
    /// A named, durable slot with no live owner: it keeps gating at its cursor until its consumer (re)attaches
    /// under its id and resumes there.
    pub(crate) const RESERVED: u32 = 6;
    /// An untethered reader: it reads without gating the producer, validating each copy it makes (see
    /// `crate::untethered`). Its cursor is informational.
    pub(crate) const UNTETHERED: u32 = 7;

    /// Whether a slot in `state` holds the producer back.
    pub(crate) fn gates(state: u32) -> bool {
        matches!(state, JOINING | ACTIVE | EVICTING | RESERVED)
    }

    /// Whether a slot in `state` belongs to a (possibly dead) process whose lock tells if it is alive.
    pub(crate) fn has_owner(state: u32) -> bool {
        matches!(
            state,
            CLAIMED | JOINING | ACTIVE | EVICTING | EVICTED | UNTETHERED
        )
    }
}

/// A decoded ownership word: the slot's state (one of [`slot_state`]) and its generation, which changes at
/// every claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ownership {
    pub(crate) state: u32,
    pub(crate) generation: u32,
}

impl Ownership {
    /// The word as stored: state in the low half, generation in the high half.
    pub(crate) fn pack(self) -> u64 {
        u64::from(self.state) | (u64::from(self.generation) << 32)
    }

    /// The word decoded.
    pub(crate) fn unpack(word: u64) -> Ownership {
        Ownership {
            state: word as u32,
            generation: (word >> 32) as u32,
        }
    }

    /// The same generation in another state.
    pub(crate) fn with_state(self, state: u32) -> Ownership {
        Ownership { state, ..self }
    }
}

/// Where a consumer that joins a running ring starts reading; see
/// [`SharedConsumerBuilder::with_start_position`](crate::SharedConsumerBuilder::with_start_position).
///
/// Whatever the start, the consumer is never lapped: from its first event on it gates the producer, and
/// it receives every later event exactly, in order. How the join guarantees that for each start is in the
/// [`protocol`](crate::protocol#joining-a-running-ring-without-being-lapped) docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// The next event published after the consumer joins (the default).
    #[default]
    Latest,
    /// The oldest event the ring still holds that the producer cannot overwrite before it sees this
    /// consumer. On a closed ring (its producer exited) that is the ring's last `capacity` events; on a
    /// live ring, the events no gating consumer has released yet, and those the producer has not lapped
    /// since it last looked at the consumer table (at least the events since that look).
    Earliest,
    /// The event with this sequence, if the ring still holds it in the sense of `Earliest` (or it is the
    /// next one to be published); otherwise the attach fails with
    /// [`AttachError::SequenceNotHeld`](crate::AttachError::SequenceNotHeld), naming the oldest sequence
    /// held.
    Sequence(u64),
}

// ---------------------------------------------------------------------------------------------------------
// Publishing, reading, committing, closing
// ---------------------------------------------------------------------------------------------------------

/// The producer makes every event below `end` readable: its writes to their slots happen-before any
/// consumer's acquire load that sees the count.
#[inline(always)]
pub(crate) fn publish<W: SharedWords + ?Sized>(words: &W, end: u64) {
    // Release: pairs with the consumers' Acquire load of the count.
    words.published_line().count.store(end, Ordering::Release);
}

/// The published count, with the slots below it visible.
#[inline(always)]
pub(crate) fn load_published<W: SharedWords + ?Sized>(words: &W) -> u64 {
    // Acquire: pairs with the producer's Release store; the slots below are now visible.
    words.published_line().count.load(Ordering::Acquire)
}

/// Consumer `index` is done with every event below `cursor`: the producer may reuse their slots, and
/// stages that follow it may read them.
#[inline(always)]
pub(crate) fn commit<W: SharedWords + ?Sized>(words: &W, index: usize, cursor: u64) {
    // Release: our reads of the slots happen-before the producer's Acquire load of this cursor.
    words.cursor(index).store(cursor, Ordering::Release);
}

/// Consumer `index`'s committed cursor, with everything it did before committing visible.
pub(crate) fn load_cursor<W: SharedWords + ?Sized>(words: &W, index: usize) -> u64 {
    // Acquire: pairs with the consumer's Release store in `commit`.
    words.cursor(index).load(Ordering::Acquire)
}

/// Whether the producer closed the ring (Acquire: its last publish is visible after `true`).
pub(crate) fn is_closed<W: SharedWords + ?Sized>(words: &W) -> bool {
    words.closed().load(Ordering::Acquire) != 0
}

/// The producer closes the ring after its last publish and wakes sleeping consumers, which drain what is
/// published and then find it closed.
pub(crate) fn close<W: SharedWords + ?Sized>(words: &W) {
    // Release: pairs with the consumers' Acquire load; every publish happened before.
    words.closed().store(1, Ordering::Release);
    // Sleeping consumers re-check the closed flag when woken; the fence orders the store before the
    // look at the sleeper word.
    fence(Ordering::SeqCst);
    wake_consumers_if_sleeping(words);
}

// ---------------------------------------------------------------------------------------------------------
// Sleeping and waking (the handshake in `crate::wait`)
// ---------------------------------------------------------------------------------------------------------

/// Wakes the consumers sleeping for events, if any. Call it after the store they wait for (an event
/// published, the ring closed, an eviction noticed) and a fence between that store and this: the light
/// fence on the hot path, a full fence elsewhere.
#[inline(always)]
pub(crate) fn wake_consumers_if_sleeping<W: SharedWords + ?Sized>(words: &W) {
    if words
        .published_line()
        .consumers_sleeping
        .load(Ordering::Relaxed)
        != 0
    {
        wake_sleeping_consumers(words);
    }
}

#[cold]
#[inline(never)]
fn wake_sleeping_consumers<W: SharedWords + ?Sized>(words: &W) {
    let line = words.published_line();
    if wait::wake_sleepers(
        &line.consumers_sleeping,
        &[(wait::SLEEPING, &line.consumer_wake)],
    ) {
        words.count_consumer_wakeup();
    }
}

/// Wakes whoever sleeps waiting for a consumer's commit: the producer waiting for room, and consumers
/// that follow another consumer (the mirror of [`wake_consumers_if_sleeping`], after a commit or a
/// change of the table).
#[inline(always)]
pub(crate) fn wake_commit_sleepers<W: SharedWords + ?Sized>(words: &W) {
    if words.commit_wait().sleeping.load(Ordering::Relaxed) != 0 {
        wake_sleeping_committers(words);
    }
}

#[cold]
#[inline(never)]
fn wake_sleeping_committers<W: SharedWords + ?Sized>(words: &W) {
    let line = words.commit_wait();
    wait::wake_sleepers(
        &line.sleeping,
        &[
            (commit_sleepers::PRODUCER, &line.wake),
            (commit_sleepers::DEPENDENTS, &line.dependent_wake),
        ],
    );
}

/// A consumer with nothing to read sleeps until the producer wakes consumers or `bound` passes, unless
/// something arrived by the re-check after its fence: an event at or after `next`, an eviction notice
/// beyond `evictions_seen`, or the ring closed.
pub(crate) fn sleep_for_events<W: SharedWords + ?Sized>(
    words: &W,
    fences: FencePair,
    next: u64,
    evictions_seen: u64,
    bound: Duration,
) {
    let line = words.published_line();
    let ticket = wait::announce_sleep(
        &line.consumers_sleeping,
        wait::SLEEPING,
        &line.consumer_wake,
        fences,
    );
    // The re-check after the fence: whatever the producer stored before it looked at the flag is seen.
    let nothing_new = load_published(words) <= next
        && line.evictions.load(Ordering::Acquire) == evictions_seen
        && !is_closed(words);
    if nothing_new {
        ticket.sleep(&line.consumer_wake, bound);
    }
}

/// Whoever waits for a commit (the producer for room: `bit` [`commit_sleepers::PRODUCER`]; a pipeline
/// stage for its upstream stages: [`commit_sleepers::DEPENDENTS`]) announces its sleep: the caller then
/// re-checks what it waits for and, if it still waits, calls [`CommitSleep::sleep`]. A commit, or a change
/// of the table, made before its author looked at the flag is seen by that re-check; one made after wakes
/// the sleeper.
pub(crate) fn announce_commit_sleep<W: SharedWords + ?Sized>(
    words: &W,
    fences: FencePair,
    bit: u32,
) -> CommitSleep {
    let line = words.commit_wait();
    let word = commit_wake_word(line, bit);
    CommitSleep {
        ticket: wait::announce_sleep(&line.sleeping, bit, word, fences),
        bit,
    }
}

/// A sleep announced by [`announce_commit_sleep`].
#[must_use = "a sleep announced and not slept leaves no trace, but was pointless"]
pub(crate) struct CommitSleep {
    ticket: wait::SleepTicket,
    bit: u32,
}

impl CommitSleep {
    /// Sleeps until a commit wakes this kind of sleeper, or `bound` passes.
    pub(crate) fn sleep<W: SharedWords + ?Sized>(self, words: &W, bound: Duration) {
        let word = commit_wake_word(words.commit_wait(), self.bit);
        self.ticket.sleep(word, bound);
    }
}

fn commit_wake_word(line: &CommitWaitLine, bit: u32) -> &AtomicU32 {
    if bit == commit_sleepers::PRODUCER {
        &line.wake
    } else {
        &line.dependent_wake
    }
}

// ---------------------------------------------------------------------------------------------------------
// The consumer table
// ---------------------------------------------------------------------------------------------------------

/// Table entry `index`'s ownership, with what its owner stored before setting it visible.
pub(crate) fn ownership<W: SharedWords + ?Sized>(words: &W, index: usize) -> Ownership {
    // Acquire: pairs with the Release (or stronger) store or swap that set it.
    Ownership::unpack(words.ownership_word(index).load(Ordering::Acquire))
}

/// Compare-and-swap of entry `index`'s ownership word from `from` to `to`.
pub(crate) fn swap<W: SharedWords + ?Sized>(
    words: &W,
    index: usize,
    from: Ownership,
    to: Ownership,
) -> bool {
    words
        .ownership_word(index)
        .compare_exchange(from.pack(), to.pack(), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Tells the producer that the table changed, so its next gate refresh rescans it, and wakes whoever
/// sleeps waiting for a commit (a consumer that left may have been the one holding them back).
pub(crate) fn bump_membership<W: SharedWords + ?Sized>(words: &W) {
    words.membership().changes.fetch_add(1, Ordering::SeqCst);
    // SeqCst fence: pairs with the producer's fence in each gate refresh (see `join`), and orders the
    // bump before the look at the sleeper word.
    fence(Ordering::SeqCst);
    wake_commit_sleepers(words);
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinRefusal<E> {
    /// The requested sequence is not held: it is below `oldest_held` or above `next`.
    NotHeld {
        requested: u64,
        oldest_held: u64,
        next: u64,
    },
    /// What finding the upstream stages' floor reported.
    Upstream(E),
}

/// The join handshake of a consumer that claimed entry `index` under `generation`: makes it gate the
/// producer and returns the first sequence it will read, chosen by `start`, never below the floor that
/// `upstream_floor` (called after the fence) returns for the stages it follows. On a refusal the entry is
/// still claimed: the caller leaves it.
///
/// ```text
/// consumer                                          producer (every gate refresh)
///   cursor := provisional                             (published was stored before)
///   state := JOINING                                  read membership; rescan the table if it moved
///   membership += 1                                   gate := min(gating cursors, own position) + capacity
///   fence (SeqCst)                                    horizon := max(horizon, gate)
///   first := from published, horizon, closed          fence (SeqCst)
///   cursor := first; state := ACTIVE                  read membership; if it moved, rescan and go again
/// ```
///
/// The two fences order the consumer's membership bump against the producer's final membership read of a
/// refresh. Either that read sees the bump, and the gate was computed over a table in which the consumer
/// gates from its provisional cursor (the producer then never writes at or above `provisional + capacity`,
/// so it overwrites no sequence at or above `provisional`); or it does not, and then everything the
/// producer stored before its fence (its `published` count and the horizon announcing that gate) is
/// visible to the consumer's loads after its own fence. So the producer, until it sees the consumer, writes
/// only below `published` (as loaded after the fence) plus `capacity`, and below the horizon (as loaded
/// after the fence): the horizon is a high-water mark, and each gate was announced before it was used.
///
/// How the first sequence is chosen, by [`StartPosition`]:
/// - `Latest`: `provisional` is the current `published`, and `first` is `published` loaded after the
///   fence: no sequence at or above it can be overwritten before the producer sees the consumer.
/// - `Earliest`: `provisional` is `published - capacity` (the oldest event the ring holds), and `first` is
///   the later of `provisional` and `horizon - capacity`: sequences below the horizon minus one capacity are
///   the only ones a producer that has not seen the consumer may still overwrite. On a closed ring nothing
///   is written any more, and `first` is `published - capacity` (the ring's last lap).
/// - `Sequence(n)`: `provisional` is `n`, refused at once unless `published - capacity <= n <= published`;
///   after the fence it is refused if below the same bound as `Earliest`, naming that bound.
///
/// In every case `provisional <= first`, so gating on the provisional cursor is safe, and `first` is at
/// most `published`. An entry gates the producer from JOINING on, but counts as attached only once
/// ACTIVE, after its start is fixed.
pub(crate) fn join<W: SharedWords + ?Sized, E>(
    words: &W,
    index: usize,
    generation: u32,
    start: StartPosition,
    upstream_floor: impl FnOnce() -> Result<u64, E>,
) -> Result<u64, JoinRefusal<E>> {
    let capacity = words.capacity();
    let published = load_published(words);
    let provisional = match start {
        StartPosition::Latest => published,
        StartPosition::Earliest => published.saturating_sub(capacity),
        StartPosition::Sequence(requested) => {
            let oldest_held = published.saturating_sub(capacity);
            if requested < oldest_held || requested > published {
                return Err(JoinRefusal::NotHeld {
                    requested,
                    oldest_held,
                    next: published,
                });
            }
            requested
        }
    };
    let joining = Ownership {
        state: slot_state::JOINING,
        generation,
    };
    // Release: a dependent consumer that reads this cursor while it still follows the entry's previous
    // owner then sees our claim of the entry too (see `registry::UpstreamStage::progress`).
    words.cursor(index).store(provisional, Ordering::Release);
    // SeqCst (a release, among others): the producer that sees JOINING sees the provisional cursor.
    words
        .ownership_word(index)
        .store(joining.pack(), Ordering::SeqCst);
    // Its SeqCst fence pairs with the producer's fence in each gate refresh.
    bump_membership(words);
    // Upstream cursors only grow: a floor read after the fence is still a floor when reading starts.
    let floor = upstream_floor().map_err(JoinRefusal::Upstream)?;
    let first = match start {
        StartPosition::Latest => load_published(words).max(floor),
        StartPosition::Earliest => oldest_protected(words, provisional).max(floor),
        StartPosition::Sequence(requested) => {
            let oldest_held = oldest_protected(words, provisional).max(floor);
            if requested < oldest_held {
                return Err(JoinRefusal::NotHeld {
                    requested,
                    oldest_held,
                    next: load_published(words),
                });
            }
            requested
        }
    };
    // Fixes the start, then counts the consumer as attached. Only then: whoever counts it
    // (`wait_for_consumers`) and then publishes, publishes at or after `first`, so the consumer gets it.
    occupy(words, index, generation, slot_state::ACTIVE, first);
    Ok(first)
}

/// After the join's fence: the oldest sequence that the producer cannot overwrite before it sees the
/// joiner, given that the joiner gates from `provisional`; never beyond the published count (a horizon
/// beyond it can only be a rewrite by another process).
fn oldest_protected<W: SharedWords + ?Sized>(words: &W, provisional: u64) -> u64 {
    let published = load_published(words);
    if is_closed(words) {
        // Nothing will be written any more (the flag follows the last publish): the ring holds its last
        // `capacity` events.
        return published.saturating_sub(words.capacity());
    }
    // Relaxed: ordered after the producer's store by its fence and the joiner's (see `join`).
    let horizon = words.membership().horizon.load(Ordering::Relaxed);
    provisional
        .max(horizon.saturating_sub(words.capacity()))
        .min(published)
}

/// Makes entry `index`, claimed under `generation`, an untethered reader, which never gates the
/// producer, and returns the first sequence it will read, chosen by `start`. No handshake with the
/// producer is needed: every copy the reader makes is validated against the producer's horizon (see
/// `crate::untethered`), so a start the producer overwrites meanwhile is reported as lapped, never read
/// torn. The membership bump makes the producer announce its horizon in finer steps from its next gate
/// refresh on.
pub(crate) fn join_untethered<W: SharedWords + ?Sized, E>(
    words: &W,
    index: usize,
    generation: u32,
    start: StartPosition,
) -> Result<u64, JoinRefusal<E>> {
    let capacity = words.capacity();
    // Acquire: the events below the horizon's announcement are as the producer left them then.
    let horizon = words.membership().horizon.load(Ordering::Acquire);
    let published = load_published(words);
    let mut oldest_held = published.saturating_sub(capacity);
    if !is_closed(words) {
        oldest_held = oldest_held
            .max(horizon.saturating_sub(capacity))
            .min(published);
    }
    let first = match start {
        StartPosition::Latest => published,
        StartPosition::Earliest => oldest_held,
        StartPosition::Sequence(requested) if requested < oldest_held || requested > published => {
            return Err(JoinRefusal::NotHeld {
                requested,
                oldest_held,
                next: published,
            });
        }
        StartPosition::Sequence(requested) => requested,
    };
    occupy(words, index, generation, slot_state::UNTETHERED, first);
    bump_membership(words);
    Ok(first)
}

/// Stores a reader's first sequence as entry `index`'s cursor, then puts the entry in the reading `state`
/// under `generation`.
pub(crate) fn occupy<W: SharedWords + ?Sized>(
    words: &W,
    index: usize,
    generation: u32,
    state: u32,
    first: u64,
) {
    // Release: pairs with the producer's Acquire load of cursors in its gate refresh.
    words.cursor(index).store(first, Ordering::Release);
    // Release: whoever sees the state sees the cursor.
    words
        .ownership_word(index)
        .store(Ownership { state, generation }.pack(), Ordering::Release);
}

/// Gives entry `index` up, if its owner still holds it under `generation`: an anonymous entry becomes
/// FREE (the producer stops gating on it at its next refresh), a durable ACTIVE one RESERVED (it keeps its
/// cursor and gates until its consumer comes back). `before_free` runs before an entry is freed (to clear
/// what should not outlive it). Returns whether the entry changed.
pub(crate) fn leave<W: SharedWords + ?Sized>(
    words: &W,
    index: usize,
    generation: u32,
    durable: bool,
    before_free: impl FnOnce(),
) -> bool {
    let current = ownership(words, index);
    if current.generation != generation || !slot_state::has_owner(current.state) {
        return false;
    }
    let next = if durable && current.state == slot_state::ACTIVE {
        current.with_state(slot_state::RESERVED)
    } else {
        current.with_state(slot_state::FREE)
    };
    if next.state == slot_state::FREE {
        before_free();
    }
    let left = swap(words, index, current, next);
    if left {
        bump_membership(words);
    }
    left
}

/// What [`evict`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// The entry no longer gates the producer (its consumer was dead, or had acknowledged).
    Done,
    /// Its live consumer was told to leave (EVICTING) and gates until it acknowledges or dies.
    Pending,
}

/// Evicts the consumer in entry `index` by policy, two-phase for a live consumer (`alive` tells, for an
/// owned entry): a dead or absent owner's entry is freed at once, reservation included; a live one is
/// marked EVICTING and keeps gating until it acknowledges, since it may be reading an event in place.
pub(crate) fn evict<W: SharedWords + ?Sized>(
    words: &W,
    index: usize,
    alive: impl Fn() -> bool,
) -> Eviction {
    loop {
        let current = ownership(words, index);
        let alive = slot_state::has_owner(current.state) && alive();
        let next = match current.state {
            slot_state::FREE | slot_state::CLAIMED => return Eviction::Done,
            slot_state::EVICTING if alive => return Eviction::Pending,
            slot_state::ACTIVE | slot_state::JOINING if alive => {
                current.with_state(slot_state::EVICTING)
            }
            // An untethered reader does not gate: nothing to wait for. It notices at its next read.
            slot_state::UNTETHERED if alive => current.with_state(slot_state::EVICTED),
            _ => current.with_state(slot_state::FREE),
        };
        if swap(words, index, current, next) {
            if matches!(next.state, slot_state::EVICTING | slot_state::EVICTED) {
                // Release: a consumer that sees the bump sees its entry EVICTING (or EVICTED).
                words
                    .published_line()
                    .evictions
                    .fetch_add(1, Ordering::Release);
                // A sleeping consumer must wake to notice it.
                fence(Ordering::SeqCst);
                wake_consumers_if_sleeping(words);
            }
            bump_membership(words);
            return if next.state == slot_state::EVICTING {
                Eviction::Pending
            } else {
                Eviction::Done
            };
        }
    }
}

/// The eviction notice count (Acquire: pairs with the producer's Release bump in [`evict`]).
#[inline(always)]
pub(crate) fn load_evictions<W: SharedWords + ?Sized>(words: &W) -> u64 {
    words.published_line().evictions.load(Ordering::Acquire)
}

/// Whether the reader of entry `index` still holds it as `ours` (after an eviction notice: if not, it must
/// stop reading and [`acknowledge_eviction`]).
pub(crate) fn still_holds<W: SharedWords + ?Sized>(
    words: &W,
    index: usize,
    ours: Ownership,
) -> bool {
    ownership(words, index) == ours
}

/// The reader of entry `index` (claimed under `generation`) acknowledges an eviction the producer started
/// (EVICTING → EVICTED): from here on it reads nothing, and the producer stops gating on it.
pub(crate) fn acknowledge_eviction<W: SharedWords + ?Sized>(
    words: &W,
    index: usize,
    generation: u32,
) {
    let evicting = Ownership {
        state: slot_state::EVICTING,
        generation,
    };
    if swap(
        words,
        index,
        evicting,
        evicting.with_state(slot_state::EVICTED),
    ) {
        bump_membership(words);
    }
}

// ---------------------------------------------------------------------------------------------------------
// The producer's gate
// ---------------------------------------------------------------------------------------------------------

/// The producer's cached list of gating entries, rebuilt only when the membership counter moves, and the
/// horizon it has announced.
#[derive(Debug)]
pub(crate) struct GatingSet {
    membership_seen: u64,
    active: Vec<usize>,
    /// Whether an untethered reader was in the table at the last rescan: then gates are capped at
    /// [`untethered_step`] ahead, so that the horizon stays close enough behind for it to validate reads.
    untethered: bool,
    /// The highest gate announced in the horizon word (mirrors it: only the producer writes it).
    horizon: u64,
}

impl GatingSet {
    /// An empty set that rescans on first use.
    pub(crate) fn new() -> GatingSet {
        GatingSet {
            membership_seen: u64::MAX,
            active: Vec::new(),
            untethered: false,
            horizon: 0,
        }
    }

    /// The producer's new gate: the lowest cursor among gating consumers (or `own_position` when none
    /// gates) plus the capacity; while untethered readers are attached, at most [`untethered_step`] past
    /// `own_position`, or `wanted_end` if that is further (so that a batch of any size can still fit). Must
    /// be called after the producer's last [`publish`].
    ///
    /// The gate is computed over the table as of the membership counter, announced in the horizon word
    /// (when it is the highest so far) before the fence, and the counter read again after it; if the table
    /// changed, all of it again. So the gate returned was announced before a fence after which the table
    /// was seen unchanged. [`join`] says what joiners conclude from that.
    pub(crate) fn gate<W: SharedWords + ?Sized>(
        &mut self,
        words: &W,
        own_position: u64,
        wanted_end: u64,
    ) -> u64 {
        let capacity = words.capacity();
        let membership = words.membership();
        let mut changes = membership.changes.load(Ordering::Acquire);
        for _ in 0..MAX_GATE_RESCANS {
            if changes != self.membership_seen {
                self.membership_seen = changes;
                self.active.clear();
                self.untethered = false;
                for index in 0..words.slot_count() {
                    let state = ownership(words, index).state;
                    if slot_state::gates(state) {
                        self.active.push(index);
                    }
                    self.untethered |= state == slot_state::UNTETHERED;
                }
            }
            let lowest = self
                .active
                .iter()
                .map(|&index| load_cursor(words, index))
                .fold(own_position, u64::min);
            let mut gate = lowest + capacity;
            if self.untethered {
                gate = gate.min((own_position + untethered_step(capacity)).max(wanted_end));
            }
            if gate > self.horizon {
                self.horizon = gate;
                // Relaxed: ordered before the joiner's load by the fence below and the joiner's own fence.
                membership.horizon.store(gate, Ordering::Relaxed);
            }
            // SeqCst fence: pairs with the joiner's fence (see `join`). The published count and the
            // horizon were stored before it; the membership counter is read after it.
            fence(Ordering::SeqCst);
            changes = membership.changes.load(Ordering::Acquire);
            if changes == self.membership_seen {
                return gate;
            }
        }
        // The table kept changing: no room for now (always safe). The caller's wait, with its deadline,
        // comes back later; a process that bumps the counter without end cannot hold the producer here.
        own_position
    }
}

/// Rescans of the table one gate refresh makes while consumers keep joining or leaving, before it reports
/// no room for now. Joins and leaves are rare; only a process rewriting the membership counter in a loop
/// reaches this.
const MAX_GATE_RESCANS: usize = 64;

/// How far past its position the producer may write, at most, between two announcements of its horizon
/// while untethered readers are attached: a quarter of the ring. An untethered reader can then validate
/// any event within three quarters of a ring of the newest, and the producer pays one more gate refresh
/// (a fence and a look at the gating cursors) every quarter ring instead of about once a ring.
pub(crate) fn untethered_step(capacity: u64) -> u64 {
    (capacity / 4).max(1)
}
