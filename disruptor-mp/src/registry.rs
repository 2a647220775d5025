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

use crate::error::AttachError;
use crate::segment::{slot_state, Ownership, Segment, MAX_CONSUMER_ID_LEN};
use std::sync::atomic::{fence, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// A slot of the table held by this process: its index and the generation it was claimed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotClaim {
    pub(crate) index: usize,
    pub(crate) generation: u32,
}

/// Claims a free slot of the table for this process and records its identity. The slot does not gate the
/// producer until [`join`].
pub(crate) fn claim_slot(segment: &Segment, id: &str) -> Result<SlotClaim, AttachError> {
    let slots = segment.geometry().consumer_slots;
    for index in 0..slots as usize {
        let slot = segment.consumer_slot(index);
        let current = Ownership::unpack(slot.ownership.load(Ordering::Relaxed));
        if current.state != slot_state::FREE {
            continue;
        }
        let claimed = Ownership {
            state: slot_state::CLAIMED,
            generation: current.generation.wrapping_add(1),
        };
        if slot
            .ownership
            .compare_exchange(
                current.pack(),
                claimed.pack(),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        slot.pid.store(std::process::id(), Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        slot.joined_unix_ns.store(now, Ordering::Relaxed);
        for (byte, cell) in id.bytes().zip(&slot.id) {
            cell.store(byte, Ordering::Relaxed);
        }
        slot.id_len.store(id.len() as u32, Ordering::Release);
        return Ok(SlotClaim {
            index,
            generation: claimed.generation,
        });
    }
    Err(AttachError::ConsumerTableFull {
        name: segment.name().to_string(),
        slots,
    })
}

/// Makes a claimed slot gate the producer and returns the first sequence the consumer will read (see the
/// module docs for why it is never lapped).
pub(crate) fn join(segment: &Segment, claim: SlotClaim) -> u64 {
    begin_join(segment, claim);
    finish_join(segment, claim)
}

/// The first half of [`join`]: the slot gates the producer from a provisional cursor.
fn begin_join(segment: &Segment, claim: SlotClaim) {
    let slot = segment.consumer_slot(claim.index);
    let producer = segment.producer_region();
    let owned = Ownership {
        state: slot_state::CLAIMED,
        generation: claim.generation,
    };
    // A provisional cursor no later than the start fixed below, so gating on it is safe; it is close to
    // the producer's position, so a refresh that sees it rarely has to wait for the start.
    slot.cursor
        .0
        .store(producer.published.0.load(Ordering::Acquire), Ordering::Relaxed);
    // SeqCst (a release, among others): the producer that sees JOINING sees the provisional cursor.
    slot.ownership
        .store(owned.with_state(slot_state::JOINING).pack(), Ordering::SeqCst);
    producer.membership.0.fetch_add(1, Ordering::SeqCst);
}

/// The second half of [`join`]: fixes the start sequence, then counts the consumer as attached.
fn finish_join(segment: &Segment, claim: SlotClaim) -> u64 {
    let slot = segment.consumer_slot(claim.index);
    let producer = segment.producer_region();
    fence(Ordering::SeqCst);
    let start = producer.published.0.load(Ordering::Acquire);
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

/// Returns the slot to the table, if this process still owns it under the claimed generation; the
/// producer stops gating on it at its next refresh. A process that inherited the endpoint through `fork`
/// must not call this (the caller checks): it shares the owner's generation.
pub(crate) fn leave(segment: &Segment, claim: SlotClaim) {
    let slot = segment.consumer_slot(claim.index);
    let current = Ownership::unpack(slot.ownership.load(Ordering::Acquire));
    if current.generation != claim.generation || !slot_state::gates(current.state) {
        return;
    }
    slot.id_len.store(0, Ordering::Relaxed);
    let freed = current.with_state(slot_state::FREE);
    if slot
        .ownership
        .compare_exchange(
            current.pack(),
            freed.pack(),
            Ordering::Release,
            Ordering::Relaxed,
        )
        .is_ok()
    {
        segment
            .producer_region()
            .membership
            .0
            .fetch_add(1, Ordering::Release);
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
