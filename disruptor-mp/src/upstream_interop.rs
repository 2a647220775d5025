//! Publishing across processes from code written against the upstream `disruptor` crate's
//! [`disruptor::Producer`] trait: [`Producer::into_upstream`] and [`UpstreamBridge`] (whose docs explain
//! why this is a bridge rather than an implementation of the trait).

use crate::event::RingEvent;
use crate::producer::Producer;
use crate::segment::Backend;
use disruptor::wait_strategies::WaitStrategy as UpstreamWaitStrategy;
use disruptor::{ProcessorSettings, SingleConsumerBarrier, SingleProducer};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The name of the bridge thread.
const BRIDGE_THREAD_NAME: &str = "dmp-upstream-bridge";

impl<E: RingEvent + Default, B: Backend> Producer<E, B> {
    /// Turns this producer into an [`UpstreamBridge`]: an in-process upstream [`disruptor::SingleProducer`]
    /// for code written against [`disruptor::Producer`], whose events a thread copies into this ring. See
    /// [`UpstreamBridge`] for what the extra hop costs and changes.
    ///
    /// `wait_strategy` is how the bridge thread waits for events when the in-process ring is empty
    /// (upstream's [`BusySpin`](disruptor::BusySpin),
    /// [`BusySpinWithSpinLoopHint`](disruptor::BusySpinWithSpinLoopHint) or
    /// [`Sleep`](disruptor::Sleep)); waiting for room in this ring uses this producer's own
    /// [wait strategy](crate::SharedProducerBuilder::with_wait_strategy). The in-process ring has this
    /// ring's capacity, and its slots start as `E::default()`.
    ///
    /// The bridge thread publishes with [`publish`](Self::publish), not
    /// [`publish_managed`](Self::publish_managed): a [required-consumer](crate::required) configuration is
    /// not enforced through the bridge.
    ///
    /// # Panics
    ///
    /// If the bridge thread cannot be spawned (upstream panics then).
    pub fn into_upstream<W>(self, wait_strategy: W) -> UpstreamBridge<E>
    where
        W: UpstreamWaitStrategy + 'static,
    {
        let forwarded = Arc::new(AtomicU64::new(0));
        let first_sequence = self.next_sequence();
        let capacity = self.capacity();
        let segment_name = self.segment_name().to_string();
        let mut producer = self;
        let counter = Arc::clone(&forwarded);
        let producer = disruptor::build_single_producer(capacity, E::default, wait_strategy)
            .thread_name(BRIDGE_THREAD_NAME)
            .handle_events_with(move |event: &E, upstream_sequence, _end_of_batch| {
                // Waits as long as the consumers need; a publish without a timeout has no error to
                // return (`Full` is for `try_` publishes, `Timeout` needs a timeout, `BatchTooLarge` a
                // batch), so a failure here is a bug in this crate.
                let sequence = match producer.publish(*event) {
                    Ok(sequence) => sequence,
                    Err(error) => unreachable!("a publish without a timeout failed: {error}"),
                };
                // Upstream hands the handler every event once, in order, from sequence 0.
                debug_assert_eq!(
                    Some(sequence),
                    u64::try_from(upstream_sequence)
                        .ok()
                        .map(|s| first_sequence + s)
                );
                counter.fetch_add(1, Ordering::Release);
            })
            .build();
        UpstreamBridge {
            producer,
            forwarded,
            first_sequence,
            capacity,
            segment_name,
        }
    }
}

/// An upstream [`disruptor::SingleProducer`] whose events a bridge thread copies into a disruptor-mp ring,
/// made by [`Producer::into_upstream`]: lets code written against [`disruptor::Producer`] publish to
/// consumer processes unchanged.
///
/// # Why a bridge, and not `impl disruptor::Producer for Producer`
///
/// Upstream's trait cannot be implemented outside upstream: its batch methods take
/// `F: FnOnce(MutBatchIter<'a, E>)`, and `MutBatchIter` lives in a private module of `disruptor` 4.4 and is
/// not re-exported, so no other crate can write that bound; without it an implementation could not call
/// the closure. (The single-event methods alone would be implementable, but a trait is implemented whole.)
///
/// So the bridge hands out an *upstream* producer instead: [`Producer::into_upstream`] builds an in-process
/// upstream ring ([`disruptor::build_single_producer`]) whose only event handler, on a thread of its own,
/// copies every event into the shared ring. Code generic over [`disruptor::Producer<E>`] gets
/// [`UpstreamBridge::producer`], upstream's own [`disruptor::SingleProducer`], so all four methods
/// (`publish`, `try_publish`, `batch_publish`, `try_batch_publish`) behave exactly as upstream documents
/// them, and their events reach every consumer process of the shared ring.
///
/// What the hop costs, and what it changes:
///
/// - **One more copy and one more thread.** Each event is written into the in-process ring, then copied
///   into the shared ring by the bridge thread, one publish per event, in order. The bridge thread polls
///   the in-process ring with the upstream wait strategy given to `into_upstream`
///   ([`disruptor::BusySpin`] holds a core; [`disruptor::Sleep`] adds up to its duration of latency when
///   idle). Code written for this crate should call [`Producer::publish_with`] or
///   [`Producer::publish_batch_with`] directly: they write in place in the shared ring, with no extra copy
///   and no thread.
/// - **"Published" means handed to the bridge.** A sequence returned by upstream's methods is the event's
///   sequence in the in-process ring, counted from 0; in the shared ring the event has that sequence plus
///   [`UpstreamBridge::first_sequence`] (the producer's [`next_sequence`](Producer::next_sequence) when it
///   was converted: 0 for a fresh producer). Consumers see it once the bridge thread has copied it
///   ([`UpstreamBridge::forwarded`] counts those).
/// - **Backpressure reaches the caller one ring later.** The in-process ring has the shared ring's capacity.
///   When the slowest consumer falls behind, the bridge thread waits for room in the shared ring (as
///   [`Producer::publish`] does, with the producer's wait strategy, and evicting consumers whose process
///   died); upstream releases the in-process slots only after each batch its handler has taken, so
///   upstream's `try_publish` returns [`disruptor::RingBufferFull`] (and `try_batch_publish`
///   [`disruptor::MissingFreeSlots`]) once the in-process ring is full too: after between one and two
///   capacities of events the consumers have not read. Upstream's `publish` and `batch_publish` then
///   busy-spin, as they always do; a `batch_publish` of more events than the capacity never returns.
/// - **Dropping the bridge delivers everything, then closes the ring.** Dropping [`UpstreamBridge`] drops
///   the upstream producer, which lets its handler copy every event already published and joins the
///   thread; the thread then drops the disruptor-mp [`Producer`], which closes the ring. That drop waits as long as the
///   consumers need to make room: consumers whose process died stop gating (as for a blocked
///   [`Producer::publish`]), but one that is alive and stops reading holds the drop, as it would hold a
///   blocking publish (so a consumer in the thread that drops the bridge must have read what does not
///   fit in the shared ring first).
///
/// ```
/// use disruptor::{BusySpinWithSpinLoopHint, Producer as _};
/// use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, ConsumeError};
/// use std::time::Duration;
///
/// /// Written against upstream's trait only: publishes 0..n, one at a time, then in batches of 8.
/// fn feed<P: disruptor::Producer<u64>>(producer: &mut P, n: u64) {
///     for value in 0..n / 2 {
///         producer.publish(|slot| *slot = value);
///     }
///     let mut value = n / 2;
///     while value < n {
///         let batch = (n - value).min(8);
///         producer.batch_publish(batch as usize, |slots| {
///             for slot in slots {
///                 *slot = value;
///                 value += 1;
///             }
///         });
///     }
/// }
///
/// # let name = format!("doc-upstream-{}", std::process::id());
/// let producer = build_shared_single_producer::<u64>(&name, 1024).build_producer()?;
/// // A consumer process (here the same one, for the example):
/// let mut consumer = attach_shared_consumer::<u64>(&name).build_consumer()?;
///
/// let mut bridge = producer.into_upstream(BusySpinWithSpinLoopHint);
/// feed(bridge.producer(), 100);
/// assert_eq!(bridge.producer().try_publish(|slot| *slot = 100), Ok(100));
///
/// for expected in 0..=100 {
///     let (value, sequence) = consumer.consume_next_timeout(Duration::from_secs(5))?;
///     assert_eq!((value, sequence), (expected, expected));
/// }
/// drop(bridge); // once every event is in the shared ring: closes it
/// assert_eq!(consumer.try_consume_next(), Err(ConsumeError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Upstream's `publish` and `try_publish` share their names with this crate's inherent
/// [`Producer::publish`] and [`Producer::try_publish`]; since the bridge is a separate upstream type,
/// nothing is ambiguous: the inherent methods take an event, upstream's take a closure.
pub struct UpstreamBridge<E: RingEvent> {
    producer: SingleProducer<E, SingleConsumerBarrier>,
    forwarded: Arc<AtomicU64>,
    first_sequence: u64,
    capacity: usize,
    segment_name: String,
}

impl<E: RingEvent> UpstreamBridge<E> {
    /// The upstream producer to hand to code generic over [`disruptor::Producer<E>`]. The sequences its
    /// methods return count from 0; add [`first_sequence`](Self::first_sequence) for the sequence in the
    /// shared ring.
    pub fn producer(&mut self) -> &mut SingleProducer<E, SingleConsumerBarrier> {
        &mut self.producer
    }

    /// The shared-ring sequence of the first event published through the bridge: the producer's
    /// [`next_sequence`](Producer::next_sequence) when it was converted (0 for a fresh producer).
    pub fn first_sequence(&self) -> u64 {
        self.first_sequence
    }

    /// Events the bridge thread has copied into the shared ring so far, where consumers can read them.
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Acquire)
    }

    /// The capacity of the shared ring, and of the in-process ring in front of it.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The shared ring's segment name, with its leading slash.
    pub fn segment_name(&self) -> &str {
        &self.segment_name
    }
}

impl<E: RingEvent> fmt::Debug for UpstreamBridge<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamBridge")
            .field("segment_name", &self.segment_name)
            .field("capacity", &self.capacity)
            .field("first_sequence", &self.first_sequence)
            .field("forwarded", &self.forwarded())
            .finish_non_exhaustive()
    }
}
