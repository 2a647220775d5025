//! The producer endpoint: [`build_shared_single_producer`] and [`build_mmap_single_producer`],
//! [`ProducerBuilder`], [`Producer`] (named [`SharedProducer`] and [`MmapProducer`] by backend).

use crate::error::{CreateError, PublishError, WaitForConsumersError};
use crate::event::RingEvent;
use crate::registry;
use crate::required::{RequiredConsumerError, RequiredConsumerLivenessConfig, RequiredMonitor};
use crate::ring::ProducerRing;
use crate::segment::{
    Backend, CreateParams, MappedFile, Segment, SharedMemory, Target, DEFAULT_CONSUMER_SLOTS,
};
use crate::wait::{deadline_after, PollPacer, WaitStrategy, Waiter};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Starts building the single producer of a new ring named `name` holding `capacity` events of type `E`.
///
/// `name` is a POSIX shared-memory name, with or without its leading slash (`"ticks"` or `"/ticks"`); use
/// [`portable_shm_segment_name`](crate::portable_shm_segment_name) to derive one from any label.
/// `capacity` must be a power of two. Nothing is created until
/// [`build_producer`](SharedProducerBuilder::build_producer).
///
/// ```
/// use disruptor_mp::{build_shared_single_producer, RingEvent};
///
/// #[derive(RingEvent, Clone, Copy, Default, Debug)]
/// #[repr(C)]
/// struct Tick {
///     price: f64,
///     qty: u64,
/// }
///
/// # let name = format!("doc-producer-{}", std::process::id());
/// let mut producer = build_shared_single_producer::<Tick>(&name, 1024)
///     .build_producer()?;
/// let sequence = producer.publish(Tick { price: 101.5, qty: 7 })?;
/// assert_eq!(sequence, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build_shared_single_producer<E: RingEvent>(
    name: &str,
    capacity: usize,
) -> SharedProducerBuilder<E> {
    ProducerBuilder::new(Target::SharedMemory(name.to_string()), capacity)
}

/// Starts building the single producer of a new ring stored in the file at `path`, holding `capacity`
/// events of type `E`: the same ring, options and semantics as [`build_shared_single_producer`], in a
/// memory-mapped file instead of shared memory.
///
/// The ring is built in a temporary file in the same directory and moved to `path` only when complete,
/// without ever replacing an existing file: a file whose producer is alive is refused
/// ([`CreateError::AlreadyExists`], with its pid), one left by a dead or exited producer is reclaimed. The
/// file is created with mode 0600 unless [configured](ProducerBuilder::with_mode), never through a symbolic
/// link, and only in a directory no other user can replace it in (see [`PathRefusal`](crate::PathRefusal)).
/// When the producer exits, the file stays: a closed ring that consumers can still read (from
/// [`StartPosition::Earliest`](crate::StartPosition::Earliest)) until a new producer reclaims the path.
///
/// ```
/// use disruptor_mp::{attach_mmap_consumer, build_mmap_single_producer, StartPosition};
/// use std::time::Duration;
///
/// # let dir = std::env::temp_dir().join(format!("dmp-doc-mmap-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let path = dir.join("prices.ring");
/// let mut producer = build_mmap_single_producer::<u64>(&path, 1024).build_producer()?;
/// for price in [101, 102, 103] {
///     producer.publish(price)?;
/// }
/// drop(producer); // the file stays, closed
///
/// let mut replay = attach_mmap_consumer::<u64>(&path)
///     .with_start_position(StartPosition::Earliest)
///     .build_consumer()?;
/// let (first, sequence) = replay.consume_next_timeout(Duration::from_secs(1))?;
/// assert_eq!((first, sequence), (101, 0));
/// # drop(replay);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn build_mmap_single_producer<E: RingEvent>(
    path: impl AsRef<Path>,
    capacity: usize,
) -> MmapProducerBuilder<E> {
    ProducerBuilder::new(Target::File(path.as_ref().to_path_buf()), capacity)
}

/// How often a blocked endpoint checks whether the process it waits on is alive, unless configured: a
/// death is noticed within about this long (plus one poll).
pub const DEFAULT_LIVENESS_INTERVAL: Duration = Duration::from_millis(100);

/// When [`SharedProducerBuilder::build_producer`] returns, relative to consumers attaching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CoordinationMode {
    /// Return at once; publishing starts gated by whoever is attached (or reserved by name) at each
    /// publish. Consumers that attach later start at the next event published. The default.
    #[default]
    Immediate,
    /// Return once at least `min_consumers` consumers are attached, so all of them receive every event
    /// from the first one; fail with [`CreateError::ConsumersMissing`] (and remove the ring) if they have
    /// not within `timeout`.
    WaitForConsumers {
        /// Consumers that must be attached.
        min_consumers: usize,
        /// How long to wait for them.
        timeout: Duration,
    },
}

/// Configures a new ring before creating it; see [`build_shared_single_producer`] and
/// [`build_mmap_single_producer`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build_producer() is called"]
pub struct ProducerBuilder<E, B> {
    target: Target,
    capacity: u64,
    consumer_slots: u32,
    mode: u32,
    wait_strategy: WaitStrategy,
    liveness_interval: Duration,
    coordination: CoordinationMode,
    named_consumers: Option<(usize, String)>,
    required: Option<RequiredConsumerLivenessConfig>,
    _types: PhantomData<fn() -> (E, B)>,
}

/// The builder of a shared-memory ring's producer.
pub type SharedProducerBuilder<E> = ProducerBuilder<E, SharedMemory>;
/// The builder of a file-backed ring's producer.
pub type MmapProducerBuilder<E> = ProducerBuilder<E, MappedFile>;

impl<E: RingEvent, B: Backend> ProducerBuilder<E, B> {
    fn new(target: Target, capacity: usize) -> Self {
        ProducerBuilder {
            target,
            capacity: capacity as u64,
            consumer_slots: DEFAULT_CONSUMER_SLOTS,
            mode: 0o600,
            wait_strategy: WaitStrategy::default(),
            liveness_interval: DEFAULT_LIVENESS_INTERVAL,
            coordination: CoordinationMode::Immediate,
            named_consumers: None,
            required: None,
            _types: PhantomData,
        }
    }

    /// Sets the number of consumer slots in the segment's table (default 64, at most 1024): the most
    /// consumers that can be attached at once.
    pub fn with_consumer_slots(mut self, slots: u32) -> Self {
        self.consumer_slots = slots;
        self
    }

    /// Sets the permission bits of the segment (default `0o600`: the creating user only). Widen it to let
    /// processes of other users in the same group attach, e.g. `0o660`.
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Sets how blocking publishes wait for room (default [`WaitStrategy::DEFAULT_BLOCKING`]: spin
    /// briefly, then sleep in the kernel until a consumer commits; choose [`WaitStrategy::BusySpin`] for
    /// the lowest latency at the cost of a core).
    pub fn with_wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// Sets how often a publish blocked on a full ring checks whether the consumers it waits for are
    /// alive (default [`DEFAULT_LIVENESS_INTERVAL`]). A consumer whose process died stops gating within
    /// about this long; a durable named consumer keeps gating (see
    /// [`discover_consumer_with_prefix`](Self::discover_consumer_with_prefix)).
    pub fn with_liveness_interval(mut self, interval: Duration) -> Self {
        self.liveness_interval = interval;
        self
    }

    /// Sets when [`build_producer`](Self::build_producer) returns (default
    /// [`CoordinationMode::Immediate`]).
    pub fn with_coordination(mut self, mode: CoordinationMode) -> Self {
        self.coordination = mode;
        self
    }

    /// Reserves durable consumer slots for `count` named consumers, `{prefix}_0` to
    /// `{prefix}_{count - 1}`, when the ring is created.
    ///
    /// A reserved slot gates the producer from the first event, so a named consumer that starts late
    /// still receives every event from sequence 0. A consumer attaching with
    /// [`with_consumer_id`](crate::SharedConsumerBuilder::with_consumer_id)`("{prefix}_k")` takes its
    /// slot. If it dies (or is dropped), the slot keeps its cursor and keeps gating, and a consumer that
    /// attaches again under the same id resumes exactly after the last event it committed.
    ///
    /// ```
    /// use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};
    ///
    /// # let name = format!("doc-named-{}", std::process::id());
    /// let mut producer = build_shared_single_producer::<u64>(&name, 64)
    ///     .discover_consumer_with_prefix(2, "audit")
    ///     .build_producer()?;
    /// producer.publish_batch(&[1, 2, 3])?; // gated by audit_0 and audit_1, not yet attached
    ///
    /// let mut audit = attach_shared_consumer::<u64>(&name)
    ///     .with_consumer_id("audit_1")
    ///     .build_consumer()?;
    /// assert_eq!(audit.try_consume_next()?, Some((1, 0))); // from sequence 0
    /// drop(audit); // its slot keeps the cursor: 1
    ///
    /// let mut audit = attach_shared_consumer::<u64>(&name)
    ///     .with_consumer_id("audit_1")
    ///     .build_consumer()?;
    /// assert_eq!(audit.try_consume_next()?, Some((2, 1))); // resumes after the last committed event
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn discover_consumer_with_prefix(mut self, count: usize, prefix: &str) -> Self {
        self.named_consumers = Some((count, prefix.to_string()));
        self
    }

    /// Makes the managed publishes ([`SharedProducer::publish_managed`],
    /// [`SharedProducer::publish_batch_managed`]) enforce `config`: wait for these consumers to attach, and
    /// act when one stalls. See [`RequiredConsumerLivenessConfig`].
    pub fn with_required_consumers(mut self, config: RequiredConsumerLivenessConfig) -> Self {
        self.required = Some(config);
        self
    }

    /// The ids of the reserved named consumers, checked.
    fn reserved_ids(&self) -> Result<Vec<String>, CreateError> {
        let Some((count, prefix)) = &self.named_consumers else {
            return Ok(Vec::new());
        };
        let invalid = |reason: String| CreateError::InvalidNamedConsumers {
            count: *count,
            prefix: prefix.clone(),
            reason,
        };
        if *count > self.consumer_slots as usize {
            return Err(invalid(format!(
                "more than the {} consumer slots (with_consumer_slots)",
                self.consumer_slots
            )));
        }
        (0..*count)
            .map(|k| {
                let id = format!("{prefix}_{k}");
                registry::validate_consumer_id(&id)
                    .map(|()| id)
                    .map_err(|e| invalid(e.to_string()))
            })
            .collect()
    }

    /// Creates the segment and returns the producer, once the [coordination
    /// mode](Self::with_coordination) is satisfied.
    ///
    /// A segment of the same name whose producer is dead (killed, or exited without closing it) is
    /// reclaimed: its name is removed and a new segment, with a new epoch, takes it; consumers still
    /// mapped to the old one get [`ConsumeError::ProducerGone`](crate::ConsumeError::ProducerGone). A name
    /// whose producer is alive is refused with [`CreateError::AlreadyExists`], naming its pid.
    pub fn build_producer(self) -> Result<Producer<E, B>, CreateError> {
        let location = self.target.locate()?;
        let reserved = self.reserved_ids()?;
        let segment = Segment::create(CreateParams {
            location,
            capacity: self.capacity,
            consumer_slots: self.consumer_slots,
            mode: self.mode,
            layout: &E::LAYOUT,
        })?;
        for (index, id) in reserved.iter().enumerate() {
            registry::reserve(&segment, index, id);
        }
        segment.mark_ready();
        let producer = Producer {
            ring: ProducerRing::new(segment),
            wait_strategy: self.wait_strategy,
            liveness_pacer: PollPacer::new(self.liveness_interval),
            required: self.required.map(RequiredMonitor::new),
            _backend: PhantomData,
        };
        if let CoordinationMode::WaitForConsumers {
            min_consumers,
            timeout,
        } = self.coordination
        {
            if let Err(WaitForConsumersError::Timeout { attached, .. }) =
                producer.wait_for_consumers(min_consumers, timeout)
            {
                return Err(CreateError::ConsumersMissing {
                    name: producer.segment_name().to_string(),
                    wanted: min_consumers,
                    attached,
                    timeout,
                });
            }
        }
        Ok(producer)
    }
}

/// The single producer of a ring: [`SharedProducer`] for a shared-memory ring, [`MmapProducer`] for a
/// file-backed one (the backend `B` changes only where the ring lives).
///
/// Every attached consumer sees every event, and the slowest one bounds the producer: a publish waits (or
/// fails, for `try_` variants) rather than overwrite an event some consumer has not read. Dropping the
/// producer closes the ring: consumers drain what was published, then get
/// [`ConsumeError::Closed`](crate::ConsumeError::Closed), and a shared-memory segment's name is removed (a
/// ring file stays, closed).
///
/// After `fork`, the child's copy of a producer is inert: dropping it neither closes nor unlinks the
/// parent's ring. Do not publish through it (see [`protocol`](crate::protocol#leaving-and-fork)).
#[derive(Debug)]
pub struct Producer<E: RingEvent, B: Backend> {
    ring: ProducerRing<E>,
    wait_strategy: WaitStrategy,
    /// Paces the dead-consumer sweeps of blocked publishes, across calls.
    liveness_pacer: PollPacer,
    required: Option<RequiredMonitor>,
    _backend: PhantomData<fn() -> B>,
}

/// The producer of a shared-memory ring ([`build_shared_single_producer`]).
pub type SharedProducer<E> = Producer<E, SharedMemory>;
/// The producer of a file-backed ring ([`build_mmap_single_producer`]).
pub type MmapProducer<E> = Producer<E, MappedFile>;

/// Counters kept by a producer, read with [`SharedProducer::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Events published.
    pub published: u64,
    /// Times a publish found the ring full (the slowest consumer a whole ring behind): once per publish
    /// that had to wait for room, or per `try_` publish that failed; not once per poll of a wait.
    pub ring_full: u64,
    /// Consumers the producer stopped waiting for because their process died (see
    /// [`SharedProducer::evicted_consumers`]).
    pub evicted_consumers: u64,
    /// Time publishes spent waiting for room.
    pub time_waiting_for_room: Duration,
    /// Times the producer slept in the kernel waiting for room ([`WaitStrategy::Blocking`]).
    pub sleeps: u64,
    /// Wake-up system calls the producer made for consumers sleeping in the kernel.
    pub wakeups_sent: u64,
}

impl<E: RingEvent, B: Backend> Producer<E, B> {
    /// Publishes `event` if there is room now; returns its sequence, or [`PublishError::Full`].
    #[inline(always)]
    pub fn try_publish(&mut self, event: E) -> Result<u64, PublishError> {
        self.try_publish_with(|slot| *slot = event)
    }

    /// Publishes `event`, waiting as long as it takes for the slowest consumer to make room.
    #[inline(always)]
    pub fn publish(&mut self, event: E) -> Result<u64, PublishError> {
        self.publish_with(|slot| *slot = event)
    }

    /// Publishes `event`, waiting at most `timeout` for room; [`PublishError::Timeout`] if none came.
    pub fn publish_timeout(&mut self, event: E, timeout: Duration) -> Result<u64, PublishError> {
        self.publish_with_deadline(Some(timeout), |slot| *slot = event)
    }

    /// Fills the next slot in place with `write` and publishes it, waiting as long as it takes for room.
    /// The slot holds an older event when `write` is called: set every field you care about.
    #[inline(always)]
    pub fn publish_with(&mut self, write: impl FnOnce(&mut E)) -> Result<u64, PublishError> {
        self.publish_with_deadline(None, write)
    }

    /// [`publish_with`](Self::publish_with) that fails with [`PublishError::Full`] instead of waiting.
    #[inline(always)]
    pub fn try_publish_with(&mut self, write: impl FnOnce(&mut E)) -> Result<u64, PublishError> {
        match self.ring.try_publish_with(write) {
            Some(sequence) => Ok(sequence),
            None => Err(self.found_full()),
        }
    }

    /// Counts a publish that found the ring full, and the error for a `try_` publish.
    #[cold]
    fn found_full(&mut self) -> PublishError {
        self.ring.note_ring_full();
        PublishError::Full {
            capacity: self.ring.capacity(),
        }
    }

    #[inline(always)]
    fn publish_with_deadline(
        &mut self,
        timeout: Option<Duration>,
        write: impl FnOnce(&mut E),
    ) -> Result<u64, PublishError> {
        if !self.ring.has_room(1) {
            self.wait_for_room(1, timeout, deadline_after(timeout))?;
        }
        Ok(self.ring.publish_next_with(write))
    }

    /// Waits until `count` (at most the capacity) more events fit, until `deadline`; `timeout` is only
    /// reported in the error. The slow path of every blocking publish: kept out of line.
    #[cold]
    #[inline(never)]
    fn wait_for_room(
        &mut self,
        count: u64,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        let mut waiter = Waiter::until(self.wait_strategy, deadline);
        let max_sleep = self.liveness_pacer.interval();
        let room = wait_until_room(
            &mut self.ring,
            &mut self.liveness_pacer,
            &mut waiter,
            count,
            max_sleep,
            |_, _| Ok::<(), PublishError>(()),
        )?;
        if room {
            Ok(())
        } else {
            Err(PublishError::Timeout {
                timeout: timeout.unwrap_or_default(),
            })
        }
    }

    /// Publishes every event of `events` in order, waiting for room as needed, and returns their
    /// sequences. Each run of events that fits is copied in and made visible with a single release store,
    /// so consumers may see a prefix of the batch before the rest.
    pub fn publish_batch(&mut self, events: &[E]) -> Result<Range<u64>, PublishError> {
        self.publish_events(events, None)
    }

    /// [`publish_batch`](Self::publish_batch) waiting at most `timeout` in all; the wait strategy paces
    /// every wait. On
    /// [`PublishError::Timeout`] a prefix of the batch may have been published:
    /// [`next_sequence`](Self::next_sequence) tells how far it got.
    pub fn publish_batch_timeout(
        &mut self,
        events: &[E],
        timeout: Duration,
    ) -> Result<Range<u64>, PublishError> {
        self.publish_events(events, Some(timeout))
    }

    /// Copies `events` into the ring in order, waiting for room at most `timeout` in all (`None`: as long
    /// as it takes).
    fn publish_events(
        &mut self,
        events: &[E],
        timeout: Option<Duration>,
    ) -> Result<Range<u64>, PublishError> {
        let first = self.ring.next_sequence();
        self.publish_many_with_deadline(events.len() as u64, timeout, |sequence, slot| {
            *slot = events[(sequence - first) as usize]
        })
    }

    /// Publishes `count` events written in place by `fill(sequence, slot)`, in sequence order, waiting
    /// for room as needed; like [`publish_batch`](Self::publish_batch) without building the events
    /// elsewhere first. Slots hold older events when `fill` sees them: set every field you care about.
    ///
    /// ```
    /// # use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};
    /// # let name = format!("doc-batch-with-{}", std::process::id());
    /// # let mut producer = build_shared_single_producer::<u64>(&name, 64).build_producer()?;
    /// # let mut consumer = attach_shared_consumer::<u64>(&name).build_consumer()?;
    /// let sequences = producer.publish_batch_with(3, |sequence, slot| *slot = sequence * 10)?;
    /// assert_eq!(sequences, 0..3);
    /// assert_eq!(consumer.try_consume_next()?, Some((0, 0)));
    /// assert_eq!(consumer.try_consume_next()?, Some((10, 1)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch_with(
        &mut self,
        count: usize,
        fill: impl FnMut(u64, &mut E),
    ) -> Result<Range<u64>, PublishError> {
        self.publish_many_with_deadline(count as u64, None, fill)
    }

    /// Publishes all of `events` (at most the capacity) with one release store if they all fit now;
    /// otherwise publishes nothing and returns [`PublishError::Full`].
    pub fn try_publish_batch(&mut self, events: &[E]) -> Result<Range<u64>, PublishError> {
        let capacity = self.ring.capacity();
        let count = events.len() as u64;
        if count > capacity {
            return Err(PublishError::Full { capacity });
        }
        let first = self.ring.next_sequence();
        self.ring
            .try_publish_many_with(count, |sequence, slot| {
                *slot = events[(sequence - first) as usize]
            })
            .ok_or_else(|| self.found_full())?;
        Ok(first..first + count)
    }

    fn publish_many_with_deadline(
        &mut self,
        count: u64,
        timeout: Option<Duration>,
        fill: impl FnMut(u64, &mut E),
    ) -> Result<Range<u64>, PublishError> {
        let deadline = deadline_after(timeout);
        self.publish_many(count, fill, |producer| {
            producer.wait_for_room(1, timeout, deadline)
        })
    }

    /// Publishes `count` events written in place by `fill`, calling `wait_for_room_for_one` whenever the
    /// ring has no room for even one.
    fn publish_many<Er: From<PublishError>>(
        &mut self,
        count: u64,
        mut fill: impl FnMut(u64, &mut E),
        mut wait_for_room_for_one: impl FnMut(&mut Self) -> Result<(), Er>,
    ) -> Result<Range<u64>, Er> {
        let first = self.ring.next_sequence();
        let end = first
            .checked_add(count)
            .ok_or(PublishError::BatchTooLarge {
                count,
                next_sequence: first,
            })?;
        let capacity = self.ring.capacity();
        while self.ring.next_sequence() < end {
            // Wait for room for one event, then publish the largest run that fits (halving), so a nearly
            // full ring still makes progress instead of waiting for a whole ring's worth of room. Room seen
            // by the wait can shrink again before the run is published (a joining consumer gates from a
            // cursor below ours until it has fixed its start); then no run fits, and the loop waits again,
            // with the deadline and the wait strategy, instead of retrying an empty run.
            if !self.ring.has_room(1) {
                wait_for_room_for_one(self)?;
            }
            let mut chunk = (end - self.ring.next_sequence()).min(capacity);
            while chunk > 0 && self.ring.try_publish_many_with(chunk, &mut fill).is_none() {
                chunk /= 2;
            }
        }
        Ok(first..end)
    }

    /// Enforces `config` in every managed publish from now on (replacing any earlier one; its startup
    /// check runs again at the next managed publish). See [`RequiredConsumerLivenessConfig`].
    pub fn set_required_consumers(&mut self, config: RequiredConsumerLivenessConfig) {
        self.required = Some(RequiredMonitor::new(config));
    }

    /// Publishes `event` as [`publish`](Self::publish) does, enforcing the required consumers (see
    /// [`RequiredConsumerLivenessConfig`] and the [`required`](crate::required) module): the first call
    /// waits for them to attach, and while it waits for room it watches their progress and applies the
    /// failure action to one that stalls. Without a configuration it is a plain `publish`.
    pub fn publish_managed(&mut self, event: E) -> Result<u64, RequiredConsumerError> {
        self.await_required_startup()?;
        if !self.ring.has_room(1) {
            self.wait_for_room_managed(1)?;
        }
        Ok(self.ring.publish_next_with(|slot| *slot = event))
    }

    /// [`publish_batch`](Self::publish_batch) with the required consumers enforced, as
    /// [`publish_managed`](Self::publish_managed) does. On an error a prefix of the batch may have been
    /// published: [`next_sequence`](Self::next_sequence) tells how far it got.
    pub fn publish_batch_managed(
        &mut self,
        events: &[E],
    ) -> Result<Range<u64>, RequiredConsumerError> {
        self.await_required_startup()?;
        let first = self.ring.next_sequence();
        self.publish_many(
            events.len() as u64,
            |sequence, slot| *slot = events[(sequence - first) as usize],
            |producer| producer.wait_for_room_managed(1),
        )
    }

    fn await_required_startup(&mut self) -> Result<(), RequiredConsumerError> {
        match &mut self.required {
            Some(monitor) => monitor.await_startup(self.ring.segment()),
            None => Ok(()),
        }
    }

    /// [`wait_for_room`](Self::wait_for_room) without a deadline, watching the required consumers.
    #[cold]
    #[inline(never)]
    fn wait_for_room_managed(&mut self, count: u64) -> Result<(), RequiredConsumerError> {
        let Producer {
            ring,
            required,
            wait_strategy,
            liveness_pacer,
            _backend,
        } = self;
        let Some(monitor) = required else {
            return Ok(self.wait_for_room(count, None, None)?);
        };
        monitor.begin_wait(ring.segment());
        let mut progress_pacer = PollPacer::new(monitor.check_interval());
        let mut waiter = Waiter::until(*wait_strategy, None);
        let max_sleep = liveness_pacer.interval().min(monitor.check_interval());
        wait_until_room(
            ring,
            liveness_pacer,
            &mut waiter,
            count,
            max_sleep,
            |ring, waiter| {
                if progress_pacer.poll_waiting(waiter) {
                    let needed_cursor =
                        (ring.next_sequence() + count).saturating_sub(ring.capacity());
                    monitor.check(ring.segment(), needed_cursor)?;
                }
                Ok(())
            },
        )
        .map(drop)
    }

    /// Waits until at least `count` consumers are attached, at most `timeout`; returns how many are.
    ///
    /// A consumer counts once its start sequence is fixed, so every event published after this returns
    /// reaches each consumer it counted.
    pub fn wait_for_consumers(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<usize, WaitForConsumersError> {
        let mut waiter = Waiter::new(
            WaitStrategy::SpinThenSleep {
                spins: 0,
                sleep: Duration::from_micros(200),
            },
            Some(timeout),
        );
        loop {
            let attached = self.attached_consumers();
            if attached >= count {
                return Ok(attached);
            }
            if !waiter.pause() {
                return Err(WaitForConsumersError::Timeout {
                    wanted: count,
                    attached: self.attached_consumers(),
                    timeout,
                });
            }
        }
    }

    /// Consumers attached to the ring right now (each gates the producer), counting only those whose start
    /// sequence is fixed. Reserved named slots without a consumer gate too but are not counted.
    pub fn attached_consumers(&self) -> usize {
        registry::active_count(self.ring.segment())
    }

    /// Sequence the next published event will get (= events published so far).
    pub fn next_sequence(&self) -> u64 {
        self.ring.next_sequence()
    }

    /// The ring's capacity in events.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// The segment name, with its leading slash.
    pub fn segment_name(&self) -> &str {
        self.ring.segment().name()
    }

    /// The random epoch chosen when this segment was created.
    pub fn epoch(&self) -> u64 {
        self.ring.segment().epoch()
    }

    /// Counters: events published, times the ring was found full, consumers evicted because they died.
    pub fn stats(&self) -> ProducerStats {
        let counters = self.ring.counters();
        ProducerStats {
            published: self.ring.next_sequence(),
            ring_full: counters.ring_full.load(Ordering::Relaxed),
            evicted_consumers: self.ring.dead_evicted_count(),
            time_waiting_for_room: Duration::from_nanos(counters.wait_ns.load(Ordering::Relaxed)),
            sleeps: counters.sleeps.load(Ordering::Relaxed),
            wakeups_sent: counters.wakeups_sent.load(Ordering::Relaxed),
        }
    }

    /// Consumers that stopped gating the ring because their process died, over its life. An anonymous
    /// consumer is evicted when a blocked publish finds its process dead (checked every
    /// [liveness interval](SharedProducerBuilder::with_liveness_interval) while blocked), at
    /// [`evict_dead_consumers`](Self::evict_dead_consumers), or when a new consumer finds the table full
    /// and sweeps it; the count lives in the segment, so all of these are counted. A durable named
    /// consumer is never evicted for dying: its slot keeps gating until it comes back. Consumers evicted
    /// by the [required-consumer policy](crate::required) are not counted here.
    pub fn evicted_consumers(&self) -> u64 {
        self.ring.dead_evicted_count()
    }

    /// Checks every consumer slot now and stops gating on consumers whose process died; returns how many
    /// it evicted. Publishing does this by itself while blocked; call it to free their slots sooner (a
    /// system call per occupied slot: not for a hot loop).
    pub fn evict_dead_consumers(&mut self) -> usize {
        self.ring.sweep_dead_consumers()
    }

    /// Consumers that hold the producer back now: attached, joining, being evicted, or reserved by name
    /// (read from the consumer table: a cold call). [`attached_consumers`](Self::attached_consumers)
    /// counts only the attached ones.
    pub fn gating_consumers(&self) -> usize {
        self.ring.gating_consumers()
    }
}

/// The loop of every blocked publish: pauses as `waiter` says until `count` more events fit (sleeping at
/// most `max_sleep` at a time), stops gating on consumers whose process died (about once per liveness
/// interval, paced by `liveness_pacer`, which outlives the call so that a loop of short timeouts still
/// checks), and calls `each_pause` after every pause. Returns whether there is room (`false`: the
/// waiter's deadline passed). Counts the wait, and the time it took, in the producer's counters.
fn wait_until_room<E: RingEvent, Er>(
    ring: &mut ProducerRing<E>,
    liveness_pacer: &mut PollPacer,
    waiter: &mut Waiter,
    count: u64,
    max_sleep: Duration,
    each_pause: impl FnMut(&ProducerRing<E>, &Waiter) -> Result<(), Er>,
) -> Result<bool, Er> {
    ring.note_ring_full();
    let started = Instant::now();
    let outcome = wait_loop(ring, liveness_pacer, waiter, count, max_sleep, each_pause);
    ring.add_wait_time(started.elapsed());
    outcome
}

fn wait_loop<E: RingEvent, Er>(
    ring: &mut ProducerRing<E>,
    liveness_pacer: &mut PollPacer,
    waiter: &mut Waiter,
    count: u64,
    max_sleep: Duration,
    mut each_pause: impl FnMut(&ProducerRing<E>, &Waiter) -> Result<(), Er>,
) -> Result<bool, Er> {
    loop {
        let keep_waiting =
            waiter.pause_or_sleep(max_sleep, |bound| ring.sleep_for_room(count, bound));
        if ring.has_room(count) {
            return Ok(true);
        }
        // A consumer whose process died would gate for ever: stop waiting for it.
        if liveness_pacer.poll_waiting(waiter)
            && ring.sweep_dead_consumers() > 0
            && ring.has_room(count)
        {
            return Ok(true);
        }
        each_pause(ring, waiter)?;
        if !keep_waiting {
            return Ok(false);
        }
    }
}

impl<E: RingEvent, B: Backend> Drop for Producer<E, B> {
    fn drop(&mut self) {
        self.ring.close();
    }
}
