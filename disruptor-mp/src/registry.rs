//! The consumer table: claiming a slot, joining without being lapped, leaving, and the producer's view of
//! who gates it.
//!
//! The join handshake and why it is never lapped are explained in [`crate::protocol`]; in short:
//!
//! - consumer: cursor := published (provisional); state := JOINING; membership += 1; **fence**;
//!   start := published; cursor := start; state := ACTIVE
//! - producer (every gate refresh): published was stored before; **fence**; read membership (rescan the table
//!   if it changed); gate := min(gating cursors, own position) + capacity
//!
//! A slot gates the producer from JOINING on, but counts as attached ([`active_count`], which
//! `wait_for_consumers` reads) only once ACTIVE, after its start is fixed.

use crate::backend::liveness::ProcessStamp;
use crate::error::AttachError;
use crate::segment::{
    now_unix_ns, slot_flags, slot_state, Endpoint, Ownership, Segment, MAX_CONSUMER_ID_LEN,
};
use std::io;
use std::sync::atomic::{fence, Ordering};

/// Checks a consumer id: at most [`MAX_CONSUMER_ID_LEN`] bytes, no NUL.
pub(crate) fn validate_consumer_id(id: &str) -> Result<(), AttachError> {
    let reason = if id.len() > MAX_CONSUMER_ID_LEN {
        "longer than 48 bytes"
    } else if id.contains('\0') {
        "contains a NUL byte"
    } else {
        return Ok(());
    };
    Err(AttachError::InvalidConsumerId {
        id: id.to_string(),
        reason,
    })
}

/// A slot of the table held by this process: its index, the generation it was claimed with, and whether
/// it is a durable, named slot (which resumes at its cursor instead of joining).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotClaim {
    pub(crate) index: usize,
    pub(crate) generation: u32,
    pub(crate) durable: bool,
}

fn os_error<'a>(
    segment: &'a Segment,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> AttachError + 'a {
    move |source| AttachError::Os {
        name: segment.name().to_string(),
        operation,
        source,
    }
}

/// Claims a slot of the table for this process and records its identity.
///
/// A consumer whose `id` names a durable slot reserved by the producer takes that slot, and will resume
/// at its cursor; any other consumer takes a free slot, which does not gate the producer until [`join`].
/// A non-empty id held by another live consumer is refused. When no slot is free, slots of dead consumers
/// are swept first.
pub(crate) fn claim_slot(segment: &Segment, id: &str) -> Result<SlotClaim, AttachError> {
    if !id.is_empty() {
        if let Some(index) = find_durable(segment, id) {
            if let Some(claim) = claim_durable(segment, index, id)? {
                return Ok(claim);
            }
            // The reservation was released meanwhile: an ordinary labelled consumer, then.
        }
    }
    for sweep_first in [false, true] {
        if sweep_first {
            sweep_dead(segment);
        }
        if let Some(claim) = claim_free(segment, id)? {
            if let Some(pid) = live_holder_of(segment, id, claim.index) {
                abandon(segment, claim);
                return Err(AttachError::ConsumerIdInUse {
                    name: segment.name().to_string(),
                    id: id.to_string(),
                    pid,
                });
            }
            return Ok(claim);
        }
    }
    Err(AttachError::ConsumerTableFull {
        name: segment.name().to_string(),
        slots: segment.geometry().consumer_slots,
    })
}

/// Takes a FREE slot: its liveness lock first (so that a slot in any other state with a free lock always
/// means a dead owner), then the slot by compare-and-swap.
fn claim_free(segment: &Segment, id: &str) -> Result<Option<SlotClaim>, AttachError> {
    let stamp = ProcessStamp::current();
    for index in 0..segment.geometry().consumer_slots as usize {
        let current = slot_ownership(segment, index);
        if current.state != slot_state::FREE {
            continue;
        }
        let endpoint = Endpoint::Consumer(index);
        if !segment
            .hold_lock(endpoint)
            .map_err(os_error(segment, "fcntl(F_OFD_SETLK)"))?
        {
            continue; // another claimer is on it
        }
        // Recorded before the swap too, so that a sweeper that sees the slot claimed (on macOS, where
        // the stamp decides liveness) never sees a stale owner's stamp; recorded again after, because a
        // losing claimer may have written its own in between.
        segment.record_stamp(endpoint, stamp);
        // A FREE slot may still carry the flags of a durable reservation that was released; only the
        // slot's state says whether a reservation holds, but clear them before the slot is ours so that no
        // one sees a claimed slot as durable. (Claimers only ever write zero here.)
        segment.consumer_slot(index).flags.store(0, Ordering::Relaxed);
        let claimed = Ownership {
            state: slot_state::CLAIMED,
            generation: current.generation.wrapping_add(1),
        };
        if !swap(segment, index, current, claimed) {
            segment.release_lock(endpoint);
            continue;
        }
        segment.record_stamp(endpoint, stamp);
        write_identity(segment, index, id, 0);
        return Ok(Some(SlotClaim {
            index,
            generation: claimed.generation,
            durable: false,
        }));
    }
    Ok(None)
}

/// Gives a claimed, never joined slot back (an attach that failed after claiming).
fn abandon(segment: &Segment, claim: SlotClaim) {
    let claimed = Ownership {
        state: slot_state::CLAIMED,
        generation: claim.generation,
    };
    swap(
        segment,
        claim.index,
        claimed,
        claimed.with_state(slot_state::FREE),
    );
    segment.release_lock(Endpoint::Consumer(claim.index));
}

/// Takes over the durable slot `index` reserved for `id`, keeping its cursor; `None` if the reservation
/// was released meanwhile.
fn claim_durable(
    segment: &Segment,
    index: usize,
    id: &str,
) -> Result<Option<SlotClaim>, AttachError> {
    let endpoint = Endpoint::Consumer(index);
    let in_use = || AttachError::ConsumerIdInUse {
        name: segment.name().to_string(),
        id: id.to_string(),
        pid: segment.stamp(endpoint).pid,
    };
    let current = slot_ownership(segment, index);
    if slot_state::has_owner(current.state) && segment.is_alive(endpoint) {
        return Err(in_use());
    }
    if !segment
        .hold_lock(endpoint)
        .map_err(os_error(segment, "fcntl(F_OFD_SETLK)"))?
    {
        return Err(in_use());
    }
    let stamp = ProcessStamp::current();
    segment.record_stamp(endpoint, stamp);
    loop {
        let current = slot_ownership(segment, index);
        // RESERVED, or ACTIVE under an owner that died before anyone noticed: either way the slot has
        // gated the producer at its cursor all along, so resuming there loses nothing.
        if !matches!(current.state, slot_state::RESERVED | slot_state::ACTIVE) {
            segment.release_lock(endpoint);
            return Ok(None);
        }
        let resumed = Ownership {
            state: slot_state::ACTIVE,
            generation: current.generation.wrapping_add(1),
        };
        if swap(segment, index, current, resumed) {
            segment.record_stamp(endpoint, stamp);
            segment
                .consumer_slot(index)
                .joined_unix_ns
                .store(now_unix_ns(), Ordering::Relaxed);
            return Ok(Some(SlotClaim {
                index,
                generation: resumed.generation,
                durable: true,
            }));
        }
    }
}

/// Reserves slot `index` for the durable, named consumer `id` at creation: it gates from sequence 0.
pub(crate) fn reserve(segment: &Segment, index: usize, id: &str) {
    write_identity(segment, index, id, slot_flags::DURABLE);
    let reserved = Ownership {
        state: slot_state::RESERVED,
        generation: 1,
    };
    let slot = segment.consumer_slot(index);
    slot.cursor.0.store(0, Ordering::Relaxed);
    slot.ownership.store(reserved.pack(), Ordering::Release);
}

fn write_identity(segment: &Segment, index: usize, id: &str, flags: u32) {
    let slot = segment.consumer_slot(index);
    slot.flags.store(flags, Ordering::Relaxed);
    slot.joined_unix_ns.store(now_unix_ns(), Ordering::Relaxed);
    for (byte, cell) in id.bytes().zip(&slot.id) {
        cell.store(byte, Ordering::Relaxed);
    }
    slot.id_len.store(id.len() as u32, Ordering::Release);
}

/// The id recorded in slot `index`.
pub(crate) fn slot_id(segment: &Segment, index: usize) -> String {
    let slot = segment.consumer_slot(index);
    let len = (slot.id_len.load(Ordering::Acquire) as usize).min(MAX_CONSUMER_ID_LEN);
    let bytes: Vec<u8> = slot.id[..len]
        .iter()
        .map(|cell| cell.load(Ordering::Relaxed))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn is_durable(segment: &Segment, index: usize) -> bool {
    segment.consumer_slot(index).flags.load(Ordering::Acquire) & slot_flags::DURABLE != 0
}

fn find_durable(segment: &Segment, id: &str) -> Option<usize> {
    (0..segment.geometry().consumer_slots as usize)
        .find(|&i| is_durable(segment, i) && slot_id(segment, i) == id)
}

/// The pid of another live consumer using `id`, besides ours in slot `own`.
///
/// Two consumers claiming the same id at once each write their id, fence, then look for the other, so at
/// least one sees the other (the fences order the two writes before the two reads). A consumer that is
/// still only CLAIMED yields to one in a lower slot and is yielded to by one in a higher slot, so exactly
/// one of two racing claimers goes on.
fn live_holder_of(segment: &Segment, id: &str, own: usize) -> Option<u32> {
    if id.is_empty() {
        return None;
    }
    fence(Ordering::SeqCst);
    (0..segment.geometry().consumer_slots as usize).find_map(|i| {
        if i == own {
            return None;
        }
        let state = slot_ownership(segment, i).state;
        let established = matches!(
            state,
            slot_state::JOINING | slot_state::ACTIVE | slot_state::EVICTING
        );
        let earlier_claim = state == slot_state::CLAIMED && i < own;
        ((established || earlier_claim)
            && slot_id(segment, i) == id
            && segment.is_alive(Endpoint::Consumer(i)))
        .then(|| segment.stamp(Endpoint::Consumer(i)).pid)
    })
}

/// Compare-and-swap of slot `index`'s ownership word from `from` to `to`.
fn swap(segment: &Segment, index: usize, from: Ownership, to: Ownership) -> bool {
    segment
        .consumer_slot(index)
        .ownership
        .compare_exchange(from.pack(), to.pack(), Ordering::AcqRel, Ordering::Relaxed)
        .is_ok()
}

/// Tells the producer that the table changed, so its next gate refresh rescans it.
fn bump_membership(segment: &Segment) {
    segment
        .producer_region()
        .membership
        .0
        .fetch_add(1, Ordering::SeqCst);
}

/// Frees the slots of consumers whose process died: an anonymous slot becomes FREE (the producer stops
/// gating on it), a durable slot becomes RESERVED (it keeps gating at its cursor, waiting for its consumer
/// to come back). Returns how many consumers stopped gating the producer, and counts them in the segment.
/// Makes a system call per occupied slot: call it only on cold paths.
pub(crate) fn sweep_dead(segment: &Segment) -> usize {
    let mut stopped_gating = 0;
    for index in 0..segment.geometry().consumer_slots as usize {
        let current = slot_ownership(segment, index);
        if !slot_state::has_owner(current.state) || segment.is_alive(Endpoint::Consumer(index)) {
            continue;
        }
        let keeps_cursor = is_durable(segment, index)
            && matches!(current.state, slot_state::ACTIVE | slot_state::JOINING);
        let next = if keeps_cursor {
            current.with_state(slot_state::RESERVED)
        } else {
            current.with_state(slot_state::FREE)
        };
        if swap(segment, index, current, next) {
            if slot_state::gates(current.state) && !slot_state::gates(next.state) {
                stopped_gating += 1;
                segment
                    .producer_region()
                    .lifecycle
                    .0
                    .dead_consumers_evicted
                    .fetch_add(1, Ordering::Relaxed);
            }
            bump_membership(segment);
        }
    }
    stopped_gating
}

/// Consumers whose process died and that stopped gating, over the ring's life, whoever found them.
pub(crate) fn dead_consumers_evicted(segment: &Segment) -> u64 {
    segment
        .producer_region()
        .lifecycle
        .0
        .dead_consumers_evicted
        .load(Ordering::Relaxed)
}

/// Makes a claimed slot gate the producer and returns the first sequence the consumer will read (see the
/// module docs for why it is never lapped).
pub(crate) fn join(segment: &Segment, claim: SlotClaim) -> u64 {
    if claim.durable {
        // A durable slot gated at its cursor all along: resume exactly after the last committed event.
        return cursor(segment, claim.index);
    }
    begin_join(segment, claim);
    finish_join(segment, claim)
}

/// The first half of [`join`]: the slot gates the producer from a provisional cursor.
fn begin_join(segment: &Segment, claim: SlotClaim) {
    let slot = segment.consumer_slot(claim.index);
    let producer = segment.producer_region();
    let joining = Ownership {
        state: slot_state::JOINING,
        generation: claim.generation,
    };
    // A provisional cursor no later than the start fixed below, so gating on it is safe; it is close to
    // the producer's position, so a refresh that sees it rarely has to wait for the start.
    slot.cursor
        .0
        .store(producer.published.0.count.load(Ordering::Acquire), Ordering::Relaxed);
    // SeqCst (a release, among others): the producer that sees JOINING sees the provisional cursor.
    slot.ownership.store(joining.pack(), Ordering::SeqCst);
    bump_membership(segment);
}

/// The second half of [`join`]: fixes the start sequence, then counts the consumer as attached.
fn finish_join(segment: &Segment, claim: SlotClaim) -> u64 {
    let slot = segment.consumer_slot(claim.index);
    let producer = segment.producer_region();
    fence(Ordering::SeqCst);
    let start = producer.published.0.count.load(Ordering::Acquire);
    // Release: pairs with the producer's Acquire load of cursors in its gate refresh.
    slot.cursor.0.store(start, Ordering::Release);
    // Only now is the consumer attached: whoever counts it (`wait_for_consumers`) and then publishes,
    // publishes at or after `start`, so the consumer receives it.
    let joined = Ownership {
        state: slot_state::ACTIVE,
        generation: claim.generation,
    };
    slot.ownership.store(joined.pack(), Ordering::Release);
    start
}

/// Gives the slot up, if this process still owns it under the claimed generation: an anonymous slot
/// becomes FREE (the producer stops gating on it at its next refresh), a durable one RESERVED (it keeps its
/// cursor and gates until its consumer comes back). Then drops the liveness lock. A process that
/// inherited the endpoint through `fork` must not call this (the caller checks): it shares the owner's
/// generation.
pub(crate) fn leave(segment: &Segment, claim: SlotClaim) {
    let current = slot_ownership(segment, claim.index);
    if current.generation == claim.generation && slot_state::has_owner(current.state) {
        let next = if claim.durable && current.state == slot_state::ACTIVE {
            current.with_state(slot_state::RESERVED)
        } else {
            current.with_state(slot_state::FREE)
        };
        if next.state == slot_state::FREE {
            segment.consumer_slot(claim.index).id_len.store(0, Ordering::Relaxed);
        }
        if swap(segment, claim.index, current, next) {
            bump_membership(segment);
        }
    }
    segment.release_lock(Endpoint::Consumer(claim.index));
}

/// Acknowledges an eviction the producer started on this consumer's slot (EVICTING → EVICTED) and drops
/// the liveness lock: from here on the consumer reads nothing, and the producer stops gating on it.
pub(crate) fn acknowledge_eviction(segment: &Segment, claim: SlotClaim) {
    let evicting = Ownership {
        state: slot_state::EVICTING,
        generation: claim.generation,
    };
    if swap(
        segment,
        claim.index,
        evicting,
        evicting.with_state(slot_state::EVICTED),
    ) {
        bump_membership(segment);
    }
    segment.release_lock(Endpoint::Consumer(claim.index));
}

/// A slot the consumer `id` owns or owned: the one a live or dead consumer with that id holds, or its
/// durable reservation.
pub(crate) fn find_consumer(segment: &Segment, id: &str) -> Option<usize> {
    (0..segment.geometry().consumer_slots as usize).find(|&i| {
        let state = slot_ownership(segment, i).state;
        (slot_state::gates(state) || state == slot_state::CLAIMED) && slot_id(segment, i) == id
    })
}

/// Whether slot `index` holds a consumer whose start is fixed (it is attached).
pub(crate) fn is_attached(segment: &Segment, index: usize) -> bool {
    matches!(
        slot_ownership(segment, index).state,
        slot_state::ACTIVE | slot_state::EVICTING
    )
}

/// The committed cursor of slot `index`: the next sequence its consumer will read.
pub(crate) fn cursor(segment: &Segment, index: usize) -> u64 {
    segment
        .consumer_slot(index)
        .cursor
        .0
        .load(Ordering::Acquire)
}

/// What [`evict`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Eviction {
    /// The slot no longer gates the producer (its consumer was dead, or had acknowledged).
    Done,
    /// Its live consumer was told to leave (EVICTING) and gates until it acknowledges or dies.
    Pending,
}

/// Evicts the consumer in slot `index` by policy, two-phase for a live consumer (see the
/// [`required`](crate::required) module docs): a dead or absent owner's slot is freed at once, reservation
/// included; a live one is marked EVICTING and keeps gating until it acknowledges.
pub(crate) fn evict(segment: &Segment, index: usize) -> Eviction {
    loop {
        let current = slot_ownership(segment, index);
        let alive = slot_state::has_owner(current.state) && segment.is_alive(Endpoint::Consumer(index));
        let next = match current.state {
            slot_state::FREE | slot_state::CLAIMED => return Eviction::Done,
            slot_state::EVICTING if alive => return Eviction::Pending,
            slot_state::ACTIVE | slot_state::JOINING if alive => {
                current.with_state(slot_state::EVICTING)
            }
            _ => current.with_state(slot_state::FREE),
        };
        if swap(segment, index, current, next) {
            if next.state == slot_state::EVICTING {
                // Release: a consumer that sees the bump sees its slot EVICTING.
                segment
                    .producer_region()
                    .published
                    .0
                    .evictions
                    .fetch_add(1, Ordering::Release);
            }
            bump_membership(segment);
            return if next.state == slot_state::FREE {
                Eviction::Done
            } else {
                Eviction::Pending
            };
        }
    }
}

fn slot_ownership(segment: &Segment, index: usize) -> Ownership {
    Ownership::unpack(
        segment
            .consumer_slot(index)
            .ownership
            .load(Ordering::Acquire),
    )
}

/// Indexes of the slots gating the producer right now.
fn gating_slots(segment: &Segment) -> impl Iterator<Item = usize> + '_ {
    (0..segment.geometry().consumer_slots as usize)
        .filter(|&i| slot_state::gates(slot_ownership(segment, i).state))
}

/// Number of consumers attached right now: those whose start sequence is fixed, so that every event
/// published from now on reaches them.
pub(crate) fn active_count(segment: &Segment) -> usize {
    (0..segment.geometry().consumer_slots as usize)
        .filter(|&i| slot_ownership(segment, i).state == slot_state::ACTIVE)
        .count()
}

/// The producer's cached list of gating slots, rebuilt only when the membership counter moves.
#[derive(Debug)]
pub(crate) struct GatingSet {
    membership_seen: u64,
    active: Vec<usize>,
}

impl GatingSet {
    /// An empty set that rescans on first use.
    pub(crate) fn new() -> GatingSet {
        GatingSet {
            membership_seen: u64::MAX,
            active: Vec::new(),
        }
    }

    /// The lowest cursor among gating consumers, or `own_position` when none gates. Must be called after
    /// the producer's last `published` store (see the module docs for the fence).
    pub(crate) fn min_cursor(&mut self, segment: &Segment, own_position: u64) -> u64 {
        fence(Ordering::SeqCst);
        let membership = segment
            .producer_region()
            .membership
            .0
            .load(Ordering::Acquire);
        if membership != self.membership_seen {
            self.membership_seen = membership;
            self.active.clear();
            self.active.extend(gating_slots(segment));
        }
        self.active
            .iter()
            .map(|&i| segment.consumer_slot(i).cursor.0.load(Ordering::Acquire))
            .fold(own_position, u64::min)
    }

    /// Number of gating consumers as of the last refresh.
    pub(crate) fn len(&self) -> usize {
        self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::CreateParams;
    use crate::{build_shared_single_producer, PublishError, RingEvent};
    use std::time::Duration;

    fn segment(label: &str) -> Segment {
        let name = format!("/dmp-unit-registry-{label}-{}", std::process::id());
        let segment = Segment::create(CreateParams {
            name: &name,
            capacity: 8,
            consumer_slots: 4,
            mode: 0o600,
            layout: &u64::LAYOUT,
        })
        .unwrap();
        crate::backend::shm::unlink(&name).unwrap();
        segment
    }

    #[test]
    fn a_joining_consumer_gates_at_once_but_counts_as_attached_only_once_its_start_is_fixed() {
        let segment = segment("join-count");
        let claim = claim_slot(&segment, "late").unwrap();
        begin_join(&segment, claim);
        // Gating already (it must not be lapped), but `wait_for_consumers` must not return for it yet: an
        // event published now could precede its start.
        assert_eq!(gating_slots(&segment).count(), 1);
        assert_eq!(active_count(&segment), 0);
        finish_join(&segment, claim);
        assert_eq!(active_count(&segment), 1);
        leave(&segment, claim);
        assert_eq!(gating_slots(&segment).count(), 0);
    }

    #[test]
    fn leaving_with_a_stale_generation_leaves_the_new_owner_alone() {
        let segment = segment("stale-leave");
        let first = claim_slot(&segment, "a").unwrap();
        join(&segment, first);
        leave(&segment, first);
        let second = claim_slot(&segment, "b").unwrap();
        assert_eq!(second.index, first.index);
        assert_ne!(second.generation, first.generation);
        join(&segment, second);
        leave(&segment, first); // a stale copy of the first consumer
        assert_eq!(active_count(&segment), 1);
    }

    #[test]
    fn batch_publishes_wait_with_their_deadline_when_a_stalled_joiner_shrinks_the_room() {
        let name = format!("dmp-unit-stalled-joiner-{}", std::process::id());
        let mut producer = build_shared_single_producer::<u64>(&name, 8)
            .build_producer()
            .unwrap();
        for i in 0..20 {
            producer.publish(i).unwrap();
        }
        // A joiner stopped right after taking a provisional cursor that the producer has since passed by
        // more than a ring: the producer's next gate refresh drops the room below what it already saw.
        let segment = Segment::attach(&format!("/{name}"), &u64::LAYOUT, Duration::ZERO).unwrap();
        let claim = claim_slot(&segment, "stalled").unwrap();
        let slot = segment.consumer_slot(claim.index);
        slot.cursor.0.store(0, Ordering::Release);
        let joining = Ownership {
            state: slot_state::JOINING,
            generation: claim.generation,
        };
        slot.ownership.store(joining.pack(), Ordering::SeqCst);
        segment
            .producer_region()
            .membership
            .0
            .fetch_add(1, Ordering::SeqCst);

        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let timeout = Duration::from_millis(50);
            let results = [
                producer.publish_batch_timeout(&[1; 8], timeout),
                producer.publish_batch_timeout(&[1; 3], timeout),
            ];
            let _ = done.send(results);
        });
        let results = outcome
            .recv_timeout(Duration::from_secs(20))
            .expect("a batch publish ignored its timeout and spun");
        for result in results {
            assert!(matches!(result, Err(PublishError::Timeout { .. })), "{result:?}");
        }
        leave(&segment, claim);
    }
}
