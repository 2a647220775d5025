//! Untethered consumers: readers that never slow the producer down ([`ConsumerBuilder::untethered`]).
//!
//! An ordinary consumer *gates* the producer: the producer never overwrites an event it has not read, so
//! a slow consumer slows the feed. An untethered consumer does not gate. It cannot read in place, since
//! the slot may be rewritten under it, so it copies each event out and then checks that the copy cannot
//! have been touched by a later write; if it was lapped, it reports how many events it lost, once, and
//! resumes at the oldest event still valid. It never hands out a torn event, and never a reference into
//! a slot the producer may be writing.
//!
//! # The validation protocol
//!
//! The producer already announces a *horizon*: the highest gate it has used, stored in the segment before
//! a full fence in each gate refresh, and never written at or above until a later refresh raises it (see
//! the crate's `protocol_steps` module). The slot of sequence `s` is next written by sequence
//! `s + capacity`. So:
//!
//! ```text
//! untethered reader                                 producer (each gate refresh)
//!   p := published                (acquire)           horizon := gate        (before the fence)
//!   if s < p:                                         fence (SeqCst)
//!       copy := slot[s]           (volatile)          ... writes sequences below the gate ...
//!       fence (acquire)                               published := end       (release)
//!       h := horizon
//!       valid if s + capacity >= h, else lapped: resume at h - capacity
//! ```
//!
//! If the copy saw any byte written for `s + capacity` or later, that write came after the producer's
//! fence that followed announcing a horizon above it, so the reader's acquire fence makes the horizon it
//! loads next at least that high, and the check fails. If the check passes, no such write had begun when
//! the copy was made: the copy is exactly the event published as `s`. Sequences at or above
//! `h - capacity` cannot have been overwritten yet, so that is where a lapped reader resumes.
//!
//! **What it costs.** The tethered fast path pays nothing: no store or fence is added to a publish. But a
//! horizon announced once per ring lap would be almost a whole ring ahead of the newest event, leaving
//! nothing an untethered reader could validate. So while an untethered consumer is attached (it registers
//! in the consumer table, without gating), the producer caps each gate at a quarter ring past its position:
//! it refreshes its gate (a fence and a look at the gating cursors) every quarter ring instead of about
//! once a ring, and an untethered reader can validate any event within three quarters of a ring of the
//! newest. A reader lapped further than that resumes there. A read costs the reader the copy, a fence
//! that is free on x86, and one load of the horizon's line, which the producer writes once per quarter
//! ring.
//!
//! The copy is a volatile read: Rust has no atomic memcpy yet, and every bit pattern of a
//! [`RingEvent`] is a valid value, so a torn copy is harmless until validation discards it.

use crate::consumer::ReadWaiting;
use crate::error::{AttachError, ConsumeError};
use crate::event::RingEvent;
use crate::ring::{Reader, UntetheredRead, UntetheredRing};
use crate::segment::Backend;
use crate::ConsumerBuilder;
use std::marker::PhantomData;
use std::time::Duration;

impl<E: RingEvent, B: Backend> ConsumerBuilder<E, B> {
    /// Makes this consumer untethered: it never gates the producer, so however slow it is (or stopped),
    /// the producer and the other consumers do not slow down. It reads copies of events, each validated
    /// against being overwritten meanwhile; when the producer has lapped it, a read reports
    /// [`ConsumeError::Lapped`] once, with how many events it lost, and the next read resumes at the
    /// oldest event still valid. See the [`untethered`](crate::untethered) module for the protocol and
    /// its cost.
    ///
    /// The consumer id, attach timeout, start position, wait strategy, liveness interval and trust options
    /// set on this builder apply. An untethered consumer cannot be a pipeline stage
    /// ([`after`](Self::after)): it would not hold back what its upstream stages commit.
    ///
    /// ```
    /// use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, ConsumeError};
    ///
    /// # let name = format!("doc-untethered-{}", std::process::id());
    /// let mut producer = build_shared_single_producer::<u64>(&name, 64).build_producer()?;
    /// let mut audit = attach_shared_consumer::<u64>(&name)
    ///     .with_consumer_id("audit")
    ///     .untethered()
    ///     .build_consumer()?;
    ///
    /// // Nobody gates the producer: it never waits, even though `audit` reads nothing.
    /// for i in 0..1000 {
    ///     producer.try_publish(i)?;
    /// }
    /// match audit.try_consume_next() {
    ///     Err(ConsumeError::Lapped { missed, resumed_at }) => assert_eq!(missed, resumed_at),
    ///     other => panic!("{other:?}"),
    /// }
    /// let (event, sequence) = audit.try_consume_next()?.expect("a valid event");
    /// assert_eq!(event, sequence);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn untethered(self) -> UntetheredConsumerBuilder<E, B> {
        UntetheredConsumerBuilder { options: self }
    }
}

/// Configures an untethered consumer before attaching; see [`ConsumerBuilder::untethered`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build_consumer() is called"]
pub struct UntetheredConsumerBuilder<E, B> {
    /// The options set before [`ConsumerBuilder::untethered`].
    options: ConsumerBuilder<E, B>,
}

impl<E: RingEvent, B: Backend> UntetheredConsumerBuilder<E, B> {
    /// Attaches: opens and validates the segment, checks the event type, and registers in the consumer
    /// table without gating the producer. The first event read is chosen by the start position:
    /// [`StartPosition::Earliest`](crate::StartPosition::Earliest) is the oldest event it can still
    /// validate.
    pub fn build_consumer(self) -> Result<UntetheredConsumer<E, B>, AttachError> {
        let options = self.options;
        if !options.upstream_ids.is_empty() {
            return Err(AttachError::UntetheredStage {
                name: options.target.locate()?.display_name(),
            });
        }
        let (segment, claim) = options.attach_and_claim()?;
        Ok(UntetheredConsumer {
            ring: UntetheredRing::join(segment, claim, options.start_position)?,
            waiting: options.read_waiting(),
            consumer_id: options.consumer_id,
            _backend: PhantomData,
        })
    }
}

/// A consumer that never gates the producer ([`ConsumerBuilder::untethered`]): it reads validated
/// copies of events, and reports [`ConsumeError::Lapped`] once each time the producer overwrote events it
/// had not read. Dropping it frees its table slot.
#[derive(Debug)]
pub struct UntetheredConsumer<E: RingEvent, B: Backend> {
    ring: UntetheredRing<E>,
    waiting: ReadWaiting,
    consumer_id: String,
    _backend: PhantomData<fn() -> B>,
}

impl<E: RingEvent, B: Backend> UntetheredConsumer<E, B> {
    /// A copy of the next event and its sequence, if one is available now; `Ok(None)`: none yet.
    ///
    /// [`ConsumeError::Lapped`] when the producer overwrote the next event before it could be read (the
    /// following read resumes at the oldest valid one); once every event has been read, why nothing more
    /// will come ([`ConsumeError::Closed`], [`ConsumeError::ProducerGone`], [`ConsumeError::Evicted`]).
    #[inline]
    pub fn try_consume_next(&mut self) -> Result<Option<(E, u64)>, ConsumeError> {
        if self.ring.poll() == 0 {
            return self.waiting.empty(&mut self.ring).map(|()| None);
        }
        self.read().map(Some)
    }

    /// A copy of the next event and its sequence, waiting at most `timeout` for one; reports what
    /// [`try_consume_next`](Self::try_consume_next) does, and [`ConsumeError::Timeout`].
    pub fn consume_next_timeout(&mut self, timeout: Duration) -> Result<(E, u64), ConsumeError> {
        self.waiting.wait_for_events(&mut self.ring, timeout)?;
        self.read()
    }

    #[inline]
    fn read(&mut self) -> Result<(E, u64), ConsumeError> {
        match self.ring.read() {
            UntetheredRead::Event(event, sequence) => Ok((event, sequence)),
            UntetheredRead::Lapped { missed, resumed_at } => {
                Err(ConsumeError::Lapped { missed, resumed_at })
            }
        }
    }

    /// Sequence of the next event this consumer will read.
    pub fn next_sequence(&self) -> u64 {
        self.ring.next_sequence()
    }

    /// The ring's capacity in events, as recorded in the segment.
    pub fn capacity(&self) -> usize {
        self.ring.slot().segment().geometry().capacity as usize
    }

    /// The segment name, with its leading slash.
    pub fn segment_name(&self) -> &str {
        self.ring.slot().segment().name()
    }

    /// This consumer's id.
    pub fn consumer_id(&self) -> &str {
        &self.consumer_id
    }

    /// This consumer's index in the segment's consumer table.
    pub fn slot_index(&self) -> usize {
        self.ring.slot().slot_index()
    }
}
