//! The events every contender carries: arrays of `u64` words (8, 64, 512 and 4096 bytes). Word `i` of the
//! event for sequence `s` holds `s + i`, so a consumer can check the order (word 0) and that it read the
//! whole event (the wrapping sum of all words, or the first and last word on a latency path).

use disruptor_mp::RingEvent;
use iceoryx2::prelude::ZeroCopySend;

/// An event of `WORDS` 64-bit words.
pub trait Payload:
    RingEvent + ZeroCopySend + Copy + Send + Sync + std::fmt::Debug + 'static
{
    /// Size in bytes.
    const BYTES: usize;
    /// All words zero.
    fn zeroed() -> Self;
    /// The words.
    fn words(&self) -> &[u64];
    /// The words, writable.
    fn words_mut(&mut self) -> &mut [u64];

    /// Writes the event for sequence `seq` in place.
    #[inline(always)]
    fn fill(&mut self, seq: u64) {
        for (i, word) in self.words_mut().iter_mut().enumerate() {
            *word = seq.wrapping_add(i as u64);
        }
    }

    /// The event for sequence `seq`.
    #[inline(always)]
    fn for_seq(seq: u64) -> Self {
        let mut event = Self::zeroed();
        event.fill(seq);
        event
    }

    /// The sequence the event carries.
    #[inline(always)]
    fn seq(&self) -> u64 {
        self.words()[0]
    }

    /// Whether the event is the one for `seq` at both ends (a cheap check for latency paths).
    #[inline(always)]
    fn ends_match(&self, seq: u64) -> bool {
        let words = self.words();
        words[0] == seq && words[words.len() - 1] == seq.wrapping_add(words.len() as u64 - 1)
    }

    /// Wrapping sum of all words.
    #[inline(always)]
    fn checksum(&self) -> u64 {
        self.words()
            .iter()
            .fold(0u64, |sum, word| sum.wrapping_add(*word))
    }

    /// Wrapping sum of [`checksum`](Self::checksum) over the events for `first..first + count`.
    fn expected_checksum(first: u64, count: u64) -> u64 {
        let words = (Self::BYTES / 8) as u64;
        // Σ_s Σ_i (s + i) = words · Σ s + count · (0 + 1 + … + words − 1).
        sum_of_range(first, count)
            .wrapping_mul(words)
            .wrapping_add(count.wrapping_mul(words * (words - 1) / 2))
    }
}

/// Wrapping sum of `first..first + count`.
fn sum_of_range(first: u64, count: u64) -> u64 {
    let (first, count) = (u128::from(first), u128::from(count));
    (count * first + count * count.saturating_sub(1) / 2) as u64
}

impl<const WORDS: usize> Payload for [u64; WORDS] {
    const BYTES: usize = WORDS * 8;

    #[inline(always)]
    fn zeroed() -> Self {
        [0; WORDS]
    }
    #[inline(always)]
    fn words(&self) -> &[u64] {
        self
    }
    #[inline(always)]
    fn words_mut(&mut self) -> &mut [u64] {
        self
    }
}

/// The event sizes of the suite, in bytes.
pub const SIZES: [usize; 4] = [8, 64, 512, 4096];

/// Runs `$body` with `$P` bound to the payload type of `$bytes` bytes (one of [`SIZES`]).
macro_rules! with_payload {
    ($bytes:expr, $P:ident => $body:expr) => {
        match $bytes {
            8 => {
                type $P = [u64; 1];
                $body
            }
            64 => {
                type $P = [u64; 8];
                $body
            }
            512 => {
                type $P = [u64; 64];
                $body
            }
            4096 => {
                type $P = [u64; 512];
                $body
            }
            other => panic!("no payload of {other} bytes"),
        }
    };
}
pub(crate) use with_payload;

/// One round of the multiply-rotate chain: the "real work" a consumer does per event in the
/// throughput-with-work shape.
#[inline(always)]
pub fn work_round(state: u64, word: u64) -> u64 {
    (state ^ word)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .rotate_left(29)
}

/// The event's bytes, for the byte-stream peers (socket, pipe).
#[inline(always)]
pub fn as_bytes<P: Payload>(event: &P) -> &[u8] {
    // SAFETY: a payload is an array of `u64` (see the one impl above): `BYTES` initialized bytes with no
    // padding, borrowed for as long as `event`.
    unsafe { std::slice::from_raw_parts((event as *const P).cast::<u8>(), P::BYTES) }
}

/// The event's bytes, writable, for reading a byte stream into it.
#[inline(always)]
pub fn as_bytes_mut<P: Payload>(event: &mut P) -> &mut [u8] {
    // SAFETY: as in `as_bytes`; every bit pattern is a valid `u64`, so any bytes written keep the event
    // valid, and the borrow is exclusive.
    unsafe { std::slice::from_raw_parts_mut((event as *mut P).cast::<u8>(), P::BYTES) }
}

/// A run of events as bytes.
#[inline(always)]
pub fn slice_as_bytes_mut<P: Payload>(events: &mut [P]) -> &mut [u8] {
    // SAFETY: as in `as_bytes_mut`, for `events.len()` contiguous payloads.
    unsafe {
        std::slice::from_raw_parts_mut(events.as_mut_ptr().cast::<u8>(), P::BYTES * events.len())
    }
}
