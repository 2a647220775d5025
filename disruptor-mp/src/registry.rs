//! The consumer table: claiming a slot, joining without being lapped, leaving, and the producer's view of
//! who gates it.
//!
//! # Joining while the producer runs
//!
//! A joining consumer must never be lapped, even when the producer publishes at full speed and has not yet
//! noticed it. The join is a Dekker-style handshake between the consumer's membership bump and the
//! producer's gate refresh, each followed by a `SeqCst` fence:
//!
//! - consumer: cursor := 0; state := ACTIVE; membership += 1; **fence**; start := published; cursor := start
//! - producer (every gate refresh): published was stored before; **fence**; read membership (rescan the table
//!   if it changed); gate := min(active cursors, own position) + capacity
//!
//! By the fences, either the refresh sees the new member (and gates on its cursor: 0 until it stores
//! `start`, which only holds the producer back), or the consumer's load of `published` sees every event
//! the producer had published before that refresh, so `start >= published_at_refresh` and the refreshed
//! gate `<= start + capacity`: the producer cannot overwrite sequence `start` or later before the consumer
//! has read it. Earlier gates are smaller still. The consumer's first event is therefore `start`, and every
//! later one arrives in order without gaps.

use crate::error::AttachError;
use crate::segment::{slot_state, Segment, MAX_CONSUMER_ID_LEN};
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

/// Claims a free slot of the table for this process and records its identity. The slot does not gate the
/// producer until [`join`].
pub(crate) fn claim_slot(segment: &Segment, id: &str) -> Result<usize, AttachError> {
    let slots = segment.geometry().consumer_slots;
    for index in 0..slots as usize {
        let slot = segment.consumer_slot(index);
        if slot
            .state
            .compare_exchange(
                slot_state::FREE,
                slot_state::CLAIMED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        slot.generation.fetch_add(1, Ordering::Relaxed);
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
        return Ok(index);
    }
    Err(AttachError::ConsumerTableFull {
        name: segment.name().to_string(),
        slots,
    })
}

/// Makes a claimed slot gate the producer and returns the first sequence the consumer will read (see the
/// module docs for why it is never lapped).
pub(crate) fn join(segment: &Segment, index: usize) -> u64 {
    let slot = segment.consumer_slot(index);
    let producer = segment.producer_region();
    slot.cursor.0.store(0, Ordering::Relaxed);
    slot.state.store(slot_state::ACTIVE, Ordering::SeqCst);
    producer.membership.0.fetch_add(1, Ordering::SeqCst);
    fence(Ordering::SeqCst);
    let start = producer.published.0.load(Ordering::Acquire);
    // Release: pairs with the producer's Acquire load of cursors in its gate refresh.
    slot.cursor.0.store(start, Ordering::Release);
    start
}

/// Returns the slot to the table; the producer stops gating on it at its next refresh.
pub(crate) fn leave(segment: &Segment, index: usize) {
    let slot = segment.consumer_slot(index);
    slot.id_len.store(0, Ordering::Relaxed);
    slot.state.store(slot_state::FREE, Ordering::Release);
    segment
        .producer_region()
        .membership
        .0
        .fetch_add(1, Ordering::Release);
}

/// Indexes of the slots gating the producer right now.
fn active_slots(segment: &Segment) -> impl Iterator<Item = usize> + '_ {
    (0..segment.geometry().consumer_slots as usize)
        .filter(|&i| segment.consumer_slot(i).state.load(Ordering::Acquire) == slot_state::ACTIVE)
}

/// Number of slots currently gating the producer.
pub(crate) fn active_count(segment: &Segment) -> usize {
    active_slots(segment).count()
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
            self.active.extend(active_slots(segment));
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
