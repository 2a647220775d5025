//! The consumer endpoint: [`attach_shared_consumer`] and [`attach_mmap_consumer`], [`ConsumerBuilder`],
//! [`Consumer`] (named [`SharedConsumer`] and [`MmapConsumer`] by backend), [`EventLease`] and
//! [`StartPosition`].

use crate::error::{AttachError, ConsumeError};
use crate::event::RingEvent;
use crate::producer::DEFAULT_LIVENESS_INTERVAL;
pub use crate::protocol_steps::StartPosition;
use crate::registry::{self, SlotClaim, UpstreamStage};
use crate::ring::{ConsumerRing, Reader};
use crate::segment::{Backend, MappedFile, Segment, SharedMemory, Target, Trust};
use crate::wait::{PollPacer, WaitStrategy, Waiter};
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts building a consumer of the ring named `name`, whose events must be of type `E`.
///
/// The attach checks `E` against the event type the producer recorded in the segment (name, size,
/// alignment, layout fingerprint) and refuses a mismatch with an error naming the first differing field.
/// The capacity comes from the segment.
///
/// ```
/// use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, RingEvent};
/// use std::time::Duration;
///
/// #[derive(RingEvent, Clone, Copy, Default, Debug, PartialEq)]
/// #[repr(C)]
/// struct Tick {
///     price: f64,
///     qty: u64,
/// }
///
/// # let name = format!("doc-consumer-{}", std::process::id());
/// // Normally the producer and the consumer are different processes.
/// let mut producer = build_shared_single_producer::<Tick>(&name, 1024).build_producer()?;
/// let mut consumer = attach_shared_consumer::<Tick>(&name)
///     .with_consumer_id("risk")
///     .with_attach_timeout(Duration::from_secs(5))
///     .build_consumer()?;
///
/// producer.publish(Tick { price: 101.5, qty: 7 })?;
/// while let Some(tick) = consumer.try_consume_next_leased()? {
///     assert_eq!(tick.sequence(), 0);
///     assert_eq!(tick.qty, 7);
/// } // each lease commits when it drops
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn attach_shared_consumer<E: RingEvent>(name: &str) -> SharedConsumerBuilder<E> {
    ConsumerBuilder::new(Target::SharedMemory(name.to_string()))
}

/// Starts building a consumer of the file-backed ring at `path` (see
/// [`build_mmap_single_producer`](crate::build_mmap_single_producer)), whose events must be of type `E`:
/// the same checks, options and semantics as [`attach_shared_consumer`].
///
/// The path is never followed if it is a symbolic link, and must name a regular file
/// ([`AttachError::PathRefused`] otherwise); a file that is not a ring is refused as a segment would be
/// (for example [`AttachError::BadMagic`]). A ring whose producer exited cleanly stays attachable: read it
/// from [`StartPosition::Earliest`], then get [`ConsumeError::Closed`].
pub fn attach_mmap_consumer<E: RingEvent>(path: impl AsRef<Path>) -> MmapConsumerBuilder<E> {
    ConsumerBuilder::new(Target::File(path.as_ref().to_path_buf()))
}

/// Configures a consumer before attaching; see [`attach_shared_consumer`] and [`attach_mmap_consumer`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build_consumer() is called"]
pub struct ConsumerBuilder<E, B> {
    pub(crate) target: Target,
    pub(crate) consumer_id: String,
    attach_timeout: Duration,
    wait_strategy: WaitStrategy,
    liveness_interval: Duration,
    pub(crate) start_position: StartPosition,
    trust: Trust,
    pub(crate) upstream_ids: Vec<String>,
    _types: PhantomData<fn() -> (E, B)>,
}

/// The builder of a shared-memory ring's consumer.
pub type SharedConsumerBuilder<E> = ConsumerBuilder<E, SharedMemory>;
/// The builder of a file-backed ring's consumer.
pub type MmapConsumerBuilder<E> = ConsumerBuilder<E, MappedFile>;

impl<E: RingEvent, B: Backend> ConsumerBuilder<E, B> {
    fn new(target: Target) -> Self {
        ConsumerBuilder {
            target,
            consumer_id: String::new(),
            attach_timeout: Duration::ZERO,
            wait_strategy: WaitStrategy::default(),
            liveness_interval: DEFAULT_LIVENESS_INTERVAL,
            start_position: StartPosition::Latest,
            trust: Trust::default(),
            upstream_ids: Vec::new(),
            _types: PhantomData,
        }
    }

    /// Makes this consumer a pipeline stage behind the consumers named `upstream_ids` (their
    /// [consumer ids](Self::with_consumer_id)), in the same ring: it sees an event only once every one of
    /// them has committed it (the Disruptor's dependency graph, across processes). Stages can form chains
    /// (journal → replicate → business) and diamonds (`a` and `b` behind the producer, `c` behind both).
    ///
    /// The attach waits, up to its [timeout](Self::with_attach_timeout), for each named consumer to be
    /// attached (or reserved by name), then fails with [`AttachError::UpstreamNotFound`]. The stage starts
    /// no earlier than where its upstream stages are when it joins: it cannot know which older events they
    /// saw.
    ///
    /// An upstream stage that stops ends this one with [`ConsumeError::UpstreamGone`] (saying whether it
    /// left, died or was evicted) once everything it committed has been read: a dependent never stalls
    /// silently behind a stage that is not coming back, and never reads past what its upstream stages
    /// committed. A durable upstream (reserved by name) is expected back: its consumer resumes at its
    /// cursor, so the dependent waits for it as the producer does, and follows each restart.
    ///
    /// A stage's wait for its upstream stages follows its [wait strategy](Self::with_wait_strategy): with
    /// [`WaitStrategy::Blocking`], a stage that has caught up with its upstream sleeps until a consumer
    /// commits.
    ///
    /// ```
    /// use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};
    /// use std::time::Duration;
    ///
    /// # let name = format!("doc-after-{}", std::process::id());
    /// let mut producer = build_shared_single_producer::<u64>(&name, 64).build_producer()?;
    /// let mut journal = attach_shared_consumer::<u64>(&name)
    ///     .with_consumer_id("journal")
    ///     .build_consumer()?;
    /// let mut business = attach_shared_consumer::<u64>(&name)
    ///     .with_consumer_id("business")
    ///     .after(["journal"])
    ///     .build_consumer()?;
    ///
    /// producer.publish(42)?;
    /// // Published, but not yet journaled: the business stage does not see it.
    /// assert_eq!(business.try_consume_next()?, None);
    /// assert_eq!(journal.try_consume_next()?, Some((42, 0)));
    /// assert_eq!(business.consume_next_timeout(Duration::from_secs(1))?, (42, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn after<I>(mut self, upstream_ids: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.upstream_ids = upstream_ids
            .into_iter()
            .map(|id| id.as_ref().to_string())
            .collect();
        self
    }

    /// Names this consumer in the segment's consumer table (at most 48 bytes). Default: empty.
    ///
    /// An id that the producer reserved with
    /// [`discover_consumer_with_prefix`](crate::SharedProducerBuilder::discover_consumer_with_prefix)
    /// takes that durable slot and resumes at its cursor. Any other non-empty id labels an ordinary
    /// consumer, for inspection. Either way, two live consumers never share an id: the second attach gets
    /// [`AttachError::ConsumerIdInUse`].
    pub fn with_consumer_id(mut self, id: &str) -> Self {
        self.consumer_id = id.to_string();
        self
    }

    /// How long [`build_consumer`](Self::build_consumer) waits for the segment to exist and become ready
    /// (default zero: one attempt). Set it when the consumer may start before the producer.
    pub fn with_attach_timeout(mut self, timeout: Duration) -> Self {
        self.attach_timeout = timeout;
        self
    }

    /// Where the consumer starts reading (default [`StartPosition::Latest`]). A consumer that takes a
    /// durable slot reserved by name resumes after its last committed event instead, whatever this says.
    pub fn with_start_position(mut self, start: StartPosition) -> Self {
        self.start_position = start;
        self
    }

    /// Accepts a segment that users other than its owner may write (group or other write bits in its
    /// mode). By default such a segment is refused with [`AttachError::WritableByOthers`]: any of those
    /// users could corrupt what this consumer reads.
    pub fn allow_writable_by_others(mut self) -> Self {
        self.trust.writable_by_others = true;
        self
    }

    /// Accepts a segment owned by another user. By default it is refused with
    /// [`AttachError::OwnedByOtherUser`]: its owner controls what this consumer reads.
    pub fn allow_other_owner(mut self) -> Self {
        self.trust.other_owner = true;
        self
    }

    /// Sets how blocking reads wait for events (default [`WaitStrategy::DEFAULT_BLOCKING`]: spin briefly,
    /// then sleep in the kernel until the producer publishes; choose [`WaitStrategy::BusySpin`] for the
    /// lowest latency at the cost of a core).
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// Sets how often a read that finds the ring empty checks whether the producer is alive (default
    /// [`DEFAULT_LIVENESS_INTERVAL`]): a killed producer is reported as [`ConsumeError::ProducerGone`],
    /// after every event it published, within about this long. Non-blocking reads check at most this
    /// often too, so an empty poll stays cheap.
    pub fn with_liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval;
        self
    }

    /// Attaches: opens and validates the segment, checks the event type, claims a consumer slot and joins
    /// the producer. The first event this consumer reads is chosen by the
    /// [start position](Self::with_start_position) (by default the first one published after it joined;
    /// for a reserved named consumer, the one after its last committed event), and from then on it gates
    /// the producer, so it misses none.
    ///
    /// A segment whose producer died is treated as not there yet: the attach waits (up to its timeout) for
    /// a new producer to reclaim the name, then fails with [`AttachError::ProducerGone`].
    pub fn build_consumer(self) -> Result<Consumer<E, B>, AttachError> {
        for id in &self.upstream_ids {
            registry::validate_consumer_id(id)?;
        }
        // `None`: a timeout too large to represent, never reached.
        let deadline = Instant::now().checked_add(self.attach_timeout);
        let (segment, claim) = self.attach_and_claim()?;
        let upstreams = match find_upstreams(&segment, &self.upstream_ids, claim.index, deadline) {
            Ok(upstreams) => upstreams,
            Err(error) => {
                registry::leave(&segment, claim);
                return Err(error);
            }
        };
        Ok(Consumer {
            ring: ConsumerRing::join(segment, claim, self.start_position, upstreams)?,
            waiting: self.read_waiting(),
            consumer_id: self.consumer_id,
            _backend: PhantomData,
        })
    }
}

/// The consumers named `ids`, waiting until `deadline` (`None`: as long as it takes) for each to be
/// attached (or reserved by name).
fn find_upstreams(
    segment: &Segment,
    ids: &[String],
    own: usize,
    deadline: Option<Instant>,
) -> Result<Vec<UpstreamStage>, AttachError> {
    let own_id = registry::slot_id(segment, own);
    ids.iter()
        .map(|id| loop {
            let not_found = || AttachError::UpstreamNotFound {
                name: segment.name().to_string(),
                id: id.clone(),
            };
            // An anonymous consumer cannot be named, and a stage cannot follow itself.
            if id.is_empty() || *id == own_id {
                return Err(not_found());
            }
            if let Some(upstream) = UpstreamStage::find(segment, id, own) {
                return Ok(upstream);
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Err(not_found());
            }
            std::thread::sleep(Duration::from_millis(1));
        })
        .collect()
}

impl<E: RingEvent, B: Backend> ConsumerBuilder<E, B> {
    /// The first steps of every attach, tethered or not: finds and validates the segment, checks the
    /// event type and the consumer id, and claims a slot of the table.
    pub(crate) fn attach_and_claim(&self) -> Result<(Segment, SlotClaim), AttachError> {
        let location = self.target.locate()?;
        registry::validate_consumer_id(&self.consumer_id)?;
        let segment = Segment::attach(location, &E::LAYOUT, self.trust, self.attach_timeout)?;
        let claim = registry::claim_slot(&segment, &self.consumer_id)?;
        Ok((segment, claim))
    }

    /// A reader's waiting: this builder's wait strategy and liveness interval.
    pub(crate) fn read_waiting(&self) -> ReadWaiting {
        ReadWaiting::new(self.wait_strategy, self.liveness_interval)
    }
}

/// How an endpoint that reads waits for events: its strategy, and the pacing of its liveness checks,
/// which outlives each call so that a loop of short reads still checks once per interval.
#[derive(Debug)]
pub(crate) struct ReadWaiting {
    wait_strategy: WaitStrategy,
    liveness_pacer: PollPacer,
}

impl ReadWaiting {
    pub(crate) fn new(wait_strategy: WaitStrategy, liveness_interval: Duration) -> ReadWaiting {
        ReadWaiting {
            wait_strategy,
            liveness_pacer: PollPacer::new(liveness_interval),
        }
    }

    /// The outcome of a non-blocking read that found nothing: why nothing more will come, once that is
    /// the case and every event has been read, else nothing yet. The peers' liveness is checked about once
    /// per liveness interval, and the clock read only every so many empty polls.
    #[inline(always)]
    pub(crate) fn empty<R: Reader>(&mut self, ring: &mut R) -> Result<(), ConsumeError> {
        // The empty poll of a spinning consumer is its hot loop: a countdown, a flag and one load of a
        // line that changes once in the ring's life; everything else is out of line.
        let check_peers = self.liveness_pacer.poll();
        if check_peers || ring.slot().may_have_ended() {
            self.why_empty(ring, check_peers)
        } else {
            Ok(())
        }
    }

    /// The slow side of [`empty`](Self::empty).
    #[cold]
    #[inline(never)]
    fn why_empty<R: Reader>(
        &mut self,
        ring: &mut R,
        check_peers: bool,
    ) -> Result<(), ConsumeError> {
        finished(ring)?;
        if check_peers {
            // Once per liveness interval: publish the empty polls counted so far (see `observability`).
            ring.slot()
                .record_idle(self.liveness_pacer.polls(), Duration::ZERO);
            peers_gone(ring)
        } else {
            Ok(())
        }
    }

    /// Waits until at least one event is readable; returns how many are. A wait that gets past spinning
    /// (yields or sleeps) records its time and the empty polls in the consumer's counters; a spinning wait
    /// reads no clock and records nothing, so that it stays as quick as the events it waits for.
    pub(crate) fn wait_for_events<R: Reader>(
        &mut self,
        ring: &mut R,
        timeout: Duration,
    ) -> Result<u64, ConsumeError> {
        let mut waiter: Option<Waiter> = None;
        let mut idle_since: Option<Instant> = None;
        let outcome = loop {
            let available = ring.poll();
            if available > 0 {
                break Ok(available);
            }
            if let Err(error) = finished(ring) {
                break Err(error);
            }
            let waiter =
                waiter.get_or_insert_with(|| Waiter::new(self.wait_strategy, Some(timeout)));
            if idle_since.is_none() && !waiter.is_spinning() {
                idle_since = Some(Instant::now());
            }
            // A sleep lasts at most one liveness interval, so that a dead peer is noticed on time.
            let keep_waiting = waiter.pause_or_sleep(self.liveness_pacer.interval(), |bound| {
                ring.sleep_for_events(bound)
            });
            if self.liveness_pacer.poll_waiting(waiter) {
                if let Err(error) = peers_gone(ring) {
                    break Err(error);
                }
            }
            if !keep_waiting {
                break match ring.poll() {
                    0 => Err(ConsumeError::Timeout { timeout }),
                    available => Ok(available),
                };
            }
        };
        if let Some(since) = idle_since {
            ring.slot()
                .record_idle(self.liveness_pacer.polls(), since.elapsed());
        }
        outcome
    }
}

/// Why nothing more will come to a reader that found nothing to read, if that is so: `Closed` once the
/// producer closed the ring and every event has been read, else why reading ended (evicted, an upstream
/// stage gone).
fn finished<R: Reader>(ring: &mut R) -> Result<(), ConsumeError> {
    // Acquire, then poll: the closed flag was stored after the last publish.
    let closed = ring.slot().segment().is_closed();
    if closed && ring.poll() == 0 && ring.caught_up() {
        return Err(ConsumeError::Closed);
    }
    match ring.slot().ended() {
        Some(why) => Err(why.clone()),
        None => Ok(()),
    }
}

/// `ProducerGone` if the producer died and every event it published has been read, or why reading ended
/// if a peer it depends on is gone. System calls: cold paths only.
#[cold]
fn peers_gone<R: Reader>(ring: &mut R) -> Result<(), ConsumeError> {
    ring.check_peers();
    if let Some(why) = ring.slot().ended() {
        return Err(why.clone());
    }
    match ring.slot().producer_gone() {
        // Poll again: the producer's last events may have become visible only now.
        Some(pid) if ring.poll() == 0 && ring.caught_up() => {
            Err(ConsumeError::ProducerGone { pid })
        }
        _ => Ok(()),
    }
}

/// A consumer of a ring ([`SharedConsumer`] for shared memory, [`MmapConsumer`] for a file): reads every
/// event the producer publishes from its start on, in order, in place. Dropping it frees its consumer
/// slot, and the producer stops waiting for it.
///
/// After `fork`, the child's copy of a consumer is inert: dropping it does not free the parent's slot. Do
/// not read through it (see [`protocol`](crate::protocol#leaving-and-fork)).
#[derive(Debug)]
pub struct Consumer<E: RingEvent, B: Backend> {
    ring: ConsumerRing<E>,
    waiting: ReadWaiting,
    consumer_id: String,
    _backend: PhantomData<fn() -> B>,
}

/// The consumer of a shared-memory ring ([`attach_shared_consumer`]).
pub type SharedConsumer<E> = Consumer<E, SharedMemory>;
/// The consumer of a file-backed ring ([`attach_mmap_consumer`]).
pub type MmapConsumer<E> = Consumer<E, MappedFile>;

/// An event read in place from the ring. Derefs to `&E`; when it drops, the event counts as consumed and
/// the producer may reuse its slot. (Forgetting a lease with `mem::forget` leaves the event unconsumed: the
/// next read returns it again.)
#[derive(Debug)]
#[must_use = "an unused lease consumes the event when dropped"]
pub struct EventLease<'a, E: RingEvent> {
    ring: &'a mut ConsumerRing<E>,
    sequence: u64,
}

impl<E: RingEvent> EventLease<'_, E> {
    /// The event's sequence number: 0 for the first event the producer published.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl<E: RingEvent> Deref for EventLease<'_, E> {
    type Target = E;

    #[inline]
    fn deref(&self) -> &E {
        self.ring.event(self.sequence)
    }
}

impl<E: RingEvent> Drop for EventLease<'_, E> {
    #[inline]
    fn drop(&mut self) {
        self.ring.commit(1);
    }
}

impl<E: RingEvent, B: Backend> Consumer<E, B> {
    /// The next event, read in place, if one is available now. `Ok(None)`: none yet.
    ///
    /// Once every published event has been read, an empty ring also reports why nothing more will come:
    /// [`ConsumeError::Closed`] (the producer dropped its end), [`ConsumeError::ProducerGone`] (it died;
    /// checked about once per [liveness interval](SharedConsumerBuilder::with_liveness_interval), without
    /// a system call on most empty polls) or [`ConsumeError::Evicted`]. The other reads report the same.
    #[inline(always)]
    pub fn try_consume_next_leased(&mut self) -> Result<Option<EventLease<'_, E>>, ConsumeError> {
        if self.ring.poll() == 0 {
            return self.waiting.empty(&mut self.ring).map(|()| None);
        }
        Ok(Some(self.lease()))
    }

    /// The next event, read in place, waiting at most `timeout` for one.
    pub fn consume_next_leased_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<EventLease<'_, E>, ConsumeError> {
        self.waiting.wait_for_events(&mut self.ring, timeout)?;
        Ok(self.lease())
    }

    /// A copy of the next event and its sequence, if one is available now.
    #[inline]
    pub fn try_consume_next(&mut self) -> Result<Option<(E, u64)>, ConsumeError> {
        Ok(self
            .try_consume_next_leased()?
            .map(|lease| (*lease, lease.sequence())))
    }

    /// A copy of the next event and its sequence, waiting at most `timeout` for one.
    pub fn consume_next_timeout(&mut self, timeout: Duration) -> Result<(E, u64), ConsumeError> {
        let lease = self.consume_next_leased_timeout(timeout)?;
        Ok((*lease, lease.sequence()))
    }

    /// Hands up to `max` available events to `handle` as `(event, sequence, end_of_batch)`, in place, then
    /// commits them all with one cursor store. Returns how many were handled (0: none available now).
    ///
    /// ```
    /// # use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};
    /// # let name = format!("doc-batch-{}", std::process::id());
    /// # let mut producer = build_shared_single_producer::<u64>(&name, 64).build_producer()?;
    /// # let mut consumer = attach_shared_consumer::<u64>(&name).build_consumer()?;
    /// producer.publish_batch(&[10, 20, 30])?;
    /// let mut sum = 0;
    /// let handled = consumer.try_consume_batch(usize::MAX, |event, sequence, end_of_batch| {
    ///     sum += *event;
    ///     assert_eq!(end_of_batch, sequence == 2);
    /// })?;
    /// assert_eq!((handled, sum), (3, 60));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn try_consume_batch(
        &mut self,
        max: usize,
        handle: impl FnMut(&E, u64, bool),
    ) -> Result<usize, ConsumeError> {
        let available = self.ring.poll();
        if available == 0 {
            return self.waiting.empty(&mut self.ring).map(|()| 0);
        }
        Ok(self.handle_batch(available, max, handle))
    }

    /// [`try_consume_batch`](Self::try_consume_batch) that waits at most `timeout` for the first event.
    pub fn consume_batch_timeout(
        &mut self,
        max: usize,
        timeout: Duration,
        handle: impl FnMut(&E, u64, bool),
    ) -> Result<usize, ConsumeError> {
        let available = self.waiting.wait_for_events(&mut self.ring, timeout)?;
        Ok(self.handle_batch(available, max, handle))
    }

    #[inline(always)]
    fn handle_batch(
        &mut self,
        available: u64,
        max: usize,
        mut handle: impl FnMut(&E, u64, bool),
    ) -> usize {
        let count = available.min(max as u64);
        let end = self.ring.next_sequence() + count;
        self.ring.for_each_readable(count, |event, sequence| {
            handle(event, sequence, sequence + 1 == end)
        });
        self.ring.commit(count);
        count as usize
    }

    fn lease(&mut self) -> EventLease<'_, E> {
        let sequence = self.ring.next_sequence();
        EventLease {
            ring: &mut self.ring,
            sequence,
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

    /// This consumer's id, as given to [`SharedConsumerBuilder::with_consumer_id`].
    pub fn consumer_id(&self) -> &str {
        &self.consumer_id
    }

    /// This consumer's index in the segment's consumer table.
    pub fn slot_index(&self) -> usize {
        self.ring.slot().slot_index()
    }

    /// The ids of the consumers this one reads behind (see [`ConsumerBuilder::after`]); none for an
    /// ordinary consumer.
    pub fn upstream_ids(&self) -> impl Iterator<Item = &str> {
        self.ring.upstream_ids()
    }

    /// The random epoch the producer chose when it created the segment.
    pub fn epoch(&self) -> u64 {
        self.ring.slot().segment().epoch()
    }

    /// Process id of the segment's creator.
    pub fn producer_pid(&self) -> u32 {
        self.ring.slot().segment().creator_pid()
    }
}
