//! The consumer table as processes use it: claiming a slot under its liveness lock, consumer ids and
//! durable reservations, finding dead owners, and the pipeline's view of upstream stages. The protocol's
//! own steps on the table (the join handshake, leaving, eviction, the producer's gate) are in
//! [`protocol_steps`]; the functions here wrap them with what is not protocol: locks, ids, errors that
//! name the ring.

use crate::backend::liveness::ProcessStamp;
use crate::error::{AttachError, UpstreamEnd};
use crate::protocol_steps::{self, slot_state, JoinRefusal, Ownership, StartPosition};
use crate::segment::{now_unix_ns, slot_flags, Endpoint, Segment, MAX_CONSUMER_ID_LEN};
use std::io;
use std::sync::atomic::{fence, Ordering};

pub(crate) use protocol_steps::Eviction;

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
        segment
            .consumer_slot(index)
            .flags
            .store(0, Ordering::Relaxed);
        let claimed = Ownership {
            state: slot_state::CLAIMED,
            generation: current.generation.wrapping_add(1),
        };
        if !protocol_steps::swap(segment, index, current, claimed) {
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
    protocol_steps::swap(
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
        if protocol_steps::swap(segment, index, current, resumed) {
            segment.record_stamp(endpoint, stamp);
            reset_counters(segment, index);
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
    reset_counters(segment, index);
    slot.flags.store(flags, Ordering::Relaxed);
    slot.joined_unix_ns.store(now_unix_ns(), Ordering::Relaxed);
    for (byte, cell) in id.bytes().zip(&slot.id) {
        cell.store(byte, Ordering::Relaxed);
    }
    slot.id_len.store(id.len() as u32, Ordering::Release);
}

/// Zeroes a slot's counters for its new owner (they count what the current owner did).
fn reset_counters(segment: &Segment, index: usize) {
    let slot = segment.consumer_slot(index);
    for counter in [&slot.empty_polls, &slot.sleeps, &slot.wait_ns] {
        counter.store(0, Ordering::Relaxed);
    }
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

pub(crate) fn is_durable(segment: &Segment, index: usize) -> bool {
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
            slot_state::JOINING
                | slot_state::ACTIVE
                | slot_state::EVICTING
                | slot_state::UNTETHERED
        );
        let earlier_claim = state == slot_state::CLAIMED && i < own;
        ((established || earlier_claim)
            && slot_id(segment, i) == id
            && segment.is_alive(Endpoint::Consumer(i)))
        .then(|| segment.stamp(Endpoint::Consumer(i)).pid)
    })
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
        if protocol_steps::swap(segment, index, current, next) {
            if slot_state::gates(current.state) && !slot_state::gates(next.state) {
                stopped_gating += 1;
                segment
                    .producer_region()
                    .lifecycle
                    .0
                    .dead_consumers_evicted
                    .fetch_add(1, Ordering::Relaxed);
            }
            protocol_steps::bump_membership(segment);
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

/// Makes a claimed slot gate the producer and returns the first sequence the consumer will read, chosen
/// by `start` (the handshake in [`protocol_steps::join`] makes sure it is never lapped) and never below
/// where its `upstreams` are (a dependent cannot know which older events they saw). A durable slot
/// resumes at its cursor whatever `start` says. On an error the slot is still claimed: the caller
/// [`leave`]s it.
pub(crate) fn join(
    segment: &Segment,
    claim: SlotClaim,
    start: StartPosition,
    upstreams: &[UpstreamStage],
) -> Result<u64, AttachError> {
    if claim.durable {
        // A durable slot gated at its cursor all along: resume exactly after the last committed event.
        return Ok(cursor(segment, claim.index));
    }
    let upstream_floor = || {
        upstreams
            .iter()
            .try_fold(0, |floor, upstream| match upstream.progress(segment) {
                UpstreamProgress::Running { cursor } => Ok(u64::max(floor, cursor)),
                UpstreamProgress::Stopped { .. } | UpstreamProgress::Replaced => {
                    Err(AttachError::UpstreamNotFound {
                        name: segment.name().to_string(),
                        id: upstream.id.clone(),
                    })
                }
            })
    };
    protocol_steps::join(
        segment,
        claim.index,
        claim.generation,
        start,
        upstream_floor,
    )
    .map_err(|refusal| join_error(segment, refusal))
}

/// Makes a claimed slot an untethered reader (see [`protocol_steps::join_untethered`]) and returns the
/// first sequence it will read.
pub(crate) fn join_untethered(
    segment: &Segment,
    claim: SlotClaim,
    start: StartPosition,
) -> Result<u64, AttachError> {
    protocol_steps::join_untethered(segment, claim.index, claim.generation, start)
        .map_err(|refusal| join_error(segment, refusal))
}

fn join_error(segment: &Segment, refusal: JoinRefusal<AttachError>) -> AttachError {
    match refusal {
        JoinRefusal::NotHeld {
            requested,
            oldest_held,
            next,
        } => AttachError::SequenceNotHeld {
            name: segment.name().to_string(),
            requested,
            oldest_held,
            next,
        },
        JoinRefusal::Upstream(error) => error,
    }
}

/// A consumer that a dependent consumer follows (see
/// [`ConsumerBuilder::after`](crate::ConsumerBuilder::after)): the slot it holds, and how the dependent
/// recognizes it there.
///
/// An anonymous stage is followed as one owner of its slot (index and generation): its leaving, death or
/// eviction ends the dependent. A durable stage (a slot reserved by name) is followed as the reservation:
/// every consumer that takes it resumes at its cursor, so the dependent keeps following it across restarts
/// and waits while it is down, as the producer does; only the reservation's release ends the dependent.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamStage {
    pub(crate) id: String,
    index: usize,
    generation: u32,
    durable: bool,
}

/// One look at an upstream stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamProgress {
    /// The stage runs (or, durable, is reserved and expected back): it has committed everything below
    /// `cursor`.
    Running { cursor: u64 },
    /// The stage stopped after committing everything below `cursor`.
    Stopped { cursor: u64, reason: UpstreamEnd },
    /// The slot belongs to another consumer now: its cursor says nothing about the stage.
    Replaced,
}

impl UpstreamStage {
    /// The stage named `id`, once it is attached (or, durable, reserved): `None` while it is not. Never
    /// the slot `own`.
    pub(crate) fn find(segment: &Segment, id: &str, own: usize) -> Option<UpstreamStage> {
        (0..segment.geometry().consumer_slots as usize).find_map(|index| {
            if index == own || slot_id(segment, index) != id {
                return None;
            }
            let ownership = slot_ownership(segment, index);
            let durable = is_durable(segment, index);
            let established = if durable {
                matches!(
                    ownership.state,
                    slot_state::RESERVED | slot_state::ACTIVE | slot_state::EVICTING
                )
            } else {
                ownership.state == slot_state::ACTIVE
            };
            established.then(|| UpstreamStage {
                id: id.to_string(),
                index,
                generation: ownership.generation,
                durable,
            })
        })
    }

    /// How far the stage has got, and whether it still runs. Two loads on the stage's slot and, for a
    /// durable stage, a third on its identity line (which changes only when the slot changes hands).
    #[inline]
    pub(crate) fn progress(&self, segment: &Segment) -> UpstreamProgress {
        let slot = segment.consumer_slot(self.index);
        // Acquire, before the ownership word: a new owner stores a cursor (with Release) only after it
        // has claimed the slot, so if this load saw a new owner's cursor, the loads below see the claim.
        let cursor = slot.cursor.0.load(Ordering::Acquire);
        let ownership = slot_ownership(segment, self.index);
        if self.durable {
            // A claimer clears the durable flag before it takes the slot.
            if slot.flags.load(Ordering::Acquire) & slot_flags::DURABLE == 0 {
                return UpstreamProgress::Replaced;
            }
            match ownership.state {
                slot_state::RESERVED | slot_state::ACTIVE | slot_state::EVICTING => {
                    UpstreamProgress::Running { cursor }
                }
                slot_state::FREE | slot_state::EVICTED => UpstreamProgress::Stopped {
                    cursor,
                    reason: UpstreamEnd::Evicted,
                },
                _ => UpstreamProgress::Replaced,
            }
        } else if ownership.generation != self.generation {
            UpstreamProgress::Replaced
        } else {
            match ownership.state {
                slot_state::ACTIVE | slot_state::EVICTING => UpstreamProgress::Running { cursor },
                slot_state::EVICTED => UpstreamProgress::Stopped {
                    cursor,
                    reason: UpstreamEnd::Evicted,
                },
                _ => UpstreamProgress::Stopped {
                    cursor,
                    reason: UpstreamEnd::Left,
                },
            }
        }
    }

    /// The pid of the stage's process if it died while attached (an anonymous stage; a durable one is
    /// expected back). A system call: cold paths only.
    pub(crate) fn died(&self, segment: &Segment) -> Option<u32> {
        if self.durable {
            return None;
        }
        let ownership = slot_ownership(segment, self.index);
        let endpoint = Endpoint::Consumer(self.index);
        (ownership.generation == self.generation
            && slot_state::has_owner(ownership.state)
            && !segment.is_alive(endpoint))
        .then(|| segment.stamp(endpoint).pid)
    }
}

/// Gives the slot up, if this process still owns it under the claimed generation: an anonymous slot
/// becomes FREE (the producer stops gating on it at its next refresh), a durable one RESERVED (it keeps its
/// cursor and gates until its consumer comes back). Then drops the liveness lock. A process that
/// inherited the endpoint through `fork` must not call this (the caller checks): it shares the owner's
/// generation.
pub(crate) fn leave(segment: &Segment, claim: SlotClaim) {
    let clear_id = || {
        segment
            .consumer_slot(claim.index)
            .id_len
            .store(0, Ordering::Relaxed)
    };
    protocol_steps::leave(
        segment,
        claim.index,
        claim.generation,
        claim.durable,
        clear_id,
    );
    segment.release_lock(Endpoint::Consumer(claim.index));
}

/// Acknowledges an eviction the producer started on this consumer's slot (EVICTING → EVICTED) and drops
/// the liveness lock: from here on the consumer reads nothing, and the producer stops gating on it.
pub(crate) fn acknowledge_eviction(segment: &Segment, claim: SlotClaim) {
    protocol_steps::acknowledge_eviction(segment, claim.index, claim.generation);
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
    protocol_steps::load_cursor(segment, index)
}

/// Evicts the consumer in slot `index` by policy (see [`protocol_steps::evict`] and the
/// [`required`](crate::required) module docs), asking the kernel whether its owner is alive.
pub(crate) fn evict(segment: &Segment, index: usize) -> Eviction {
    protocol_steps::evict(segment, index, || {
        segment.is_alive(Endpoint::Consumer(index))
    })
}

/// Slot `index`'s state and generation.
pub(crate) fn slot_ownership(segment: &Segment, index: usize) -> Ownership {
    protocol_steps::ownership(segment, index)
}

/// Indexes of the slots gating the producer right now.
fn gating_slots(segment: &Segment) -> impl Iterator<Item = usize> + '_ {
    (0..segment.geometry().consumer_slots as usize)
        .filter(|&i| slot_state::gates(slot_ownership(segment, i).state))
}

/// Number of consumers gating the producer right now (attached, joining, being evicted, or reserved by
/// name).
pub(crate) fn gating_count(segment: &Segment) -> usize {
    gating_slots(segment).count()
}

/// Number of consumers attached right now: those whose start sequence is fixed, so that every event
/// published from now on reaches them.
pub(crate) fn active_count(segment: &Segment) -> usize {
    (0..segment.geometry().consumer_slots as usize)
        .filter(|&i| slot_ownership(segment, i).state == slot_state::ACTIVE)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{CreateParams, Location, Trust};
    use crate::{attach_shared_consumer, SharedConsumer};
    use crate::{build_shared_single_producer, PublishError, RingEvent};
    use std::time::Duration;

    fn segment(label: &str) -> Segment {
        let name = format!("/dmp-unit-registry-{label}-{}", std::process::id());
        let segment = Segment::create(CreateParams {
            location: Location::SharedMemory(name.clone()),
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
        // The upstream floor is looked at mid-handshake, after the fence and before the start is fixed.
        let mid_join = || {
            // Gating already (it must not be lapped), but `wait_for_consumers` must not return for it
            // yet: an event published now could precede its start.
            assert_eq!(gating_slots(&segment).count(), 1);
            assert_eq!(active_count(&segment), 0);
            Ok::<u64, ()>(0)
        };
        let start = StartPosition::Latest;
        protocol_steps::join(&segment, claim.index, claim.generation, start, mid_join).unwrap();
        assert_eq!(active_count(&segment), 1);
        leave(&segment, claim);
        assert_eq!(gating_slots(&segment).count(), 0);
    }

    #[test]
    fn leaving_with_a_stale_generation_leaves_the_new_owner_alone() {
        let segment = segment("stale-leave");
        let first = claim_slot(&segment, "a").unwrap();
        join(&segment, first, StartPosition::Latest, &[]).unwrap();
        leave(&segment, first);
        let second = claim_slot(&segment, "b").unwrap();
        assert_eq!(second.index, first.index);
        assert_ne!(second.generation, first.generation);
        join(&segment, second, StartPosition::Latest, &[]).unwrap();
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
        let segment = Segment::attach(
            Location::SharedMemory(format!("/{name}")),
            &u64::LAYOUT,
            Trust::default(),
            Duration::ZERO,
        )
        .unwrap();
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
            .changes
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
            assert!(
                matches!(result, Err(PublishError::Timeout { .. })),
                "{result:?}"
            );
        }
        leave(&segment, claim);
    }

    fn consumer_from(name: &str, start: StartPosition) -> Result<SharedConsumer<u64>, AttachError> {
        attach_shared_consumer::<u64>(name)
            .with_start_position(start)
            .build_consumer()
    }

    #[test]
    fn earliest_starts_at_what_the_producer_cannot_overwrite_before_it_sees_the_consumer() {
        let name = format!("dmp-unit-earliest-{}", std::process::id());
        let mut producer = build_shared_single_producer::<u64>(&name, 8)
            .build_producer()
            .unwrap();
        for i in 0..5 {
            producer.publish(i).unwrap();
        }
        // Nothing lapped yet: the whole history.
        let mut early = consumer_from(&name, StartPosition::Earliest).unwrap();
        assert_eq!(early.next_sequence(), 0);
        drop(early);
        for i in 5..20 {
            producer.publish(i).unwrap();
        }
        // With nobody gating, the producer looked at the table at 0, 8 and 16, each time allowing itself a
        // whole ring ahead: it may still write up to 23 without looking again, overwriting 12 to 15.
        early = consumer_from(&name, StartPosition::Earliest).unwrap();
        assert_eq!(early.next_sequence(), 16);
        // A start inside the ring's last lap but below that is refused, naming the oldest start allowed;
        // one outside the last lap or not yet published is refused at once.
        for (requested, oldest) in [(13, 16), (3, 12), (21, 12)] {
            match consumer_from(&name, StartPosition::Sequence(requested)) {
                Err(AttachError::SequenceNotHeld {
                    requested: r,
                    oldest_held,
                    next,
                    ..
                }) => assert_eq!((r, oldest_held, next), (requested, oldest, 20)),
                other => panic!("Sequence({requested}): {other:?}"),
            }
        }
        let exact = consumer_from(&name, StartPosition::Sequence(17)).unwrap();
        assert_eq!(exact.next_sequence(), 17);
        let next = consumer_from(&name, StartPosition::Sequence(20)).unwrap();
        assert_eq!(next.next_sequence(), 20);
        // Refused joins gave their slots back.
        assert_eq!(producer.attached_consumers(), 3);
        // The early consumer gates from 16: the producer can publish up to 23, not 24.
        for i in 20..24 {
            producer.try_publish(i).unwrap();
        }
        assert!(producer.try_publish(24).is_err());
        for expected in 16..24 {
            assert_eq!(
                early.try_consume_next().unwrap(),
                Some((expected, expected))
            );
        }
    }

    #[test]
    fn earliest_on_a_closed_ring_reads_its_last_lap() {
        let name = format!("dmp-unit-earliest-closed-{}", std::process::id());
        let mut producer = build_shared_single_producer::<u64>(&name, 8)
            .build_producer()
            .unwrap();
        for i in 0..20 {
            producer.publish(i).unwrap();
        }
        let segment = Segment::attach(
            Location::SharedMemory(format!("/{name}")),
            &u64::LAYOUT,
            Trust::default(),
            Duration::ZERO,
        )
        .unwrap();
        drop(producer);
        let claim = claim_slot(&segment, "").unwrap();
        assert_eq!(
            join(&segment, claim, StartPosition::Earliest, &[]).unwrap(),
            12
        );
        leave(&segment, claim);
    }
}
