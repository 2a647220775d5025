//! Code written against the upstream `disruptor` crate's `Producer` trait publishes to consumer processes
//! through `Producer::into_upstream`: one generic function, mixing all four of the trait's methods, feeds
//! an in-process upstream disruptor and a consumer process alike, and both see the same million events.
//! Upstream's semantics hold through the bridge: `RingBufferFull` and `MissingFreeSlots` once the rings
//! are full (nothing lost, nothing half-published), batches of zero, and the sequence numbers returned.

use disruptor::{BusySpinWithSpinLoopHint, MissingFreeSlots, Producer as _, RingBufferFull, Sleep};
use disruptor_mp::{Backend, ConsumeError, Consumer, MappedFile, SharedMemory, UpstreamBridge};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, on_both_backends, on_child_backend, read_until_error,
    CheckedEvent, ChildProcess, StreamCheck, TestBackend,
};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_SEGMENT";

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(20);

/// Events in each block the generic publisher hands to one of the trait's four methods.
const BLOCK: u64 = 64;

/// Capacity of the rings in the tests of single semantics.
const SMALL: usize = 64;

/// How the bridge thread waits for events in the tests of single semantics: gentle on a small machine.
fn idle_bridge() -> Sleep {
    Sleep::new(Duration::from_micros(100))
}

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "consumer" => on_child_backend(
            consume_until_closed::<SharedMemory>,
            consume_until_closed::<MappedFile>,
        ),
        other => Err(format!("unknown role {other}")),
    });
}

/// Attaches, reads until the producer closes the ring, verifying every event; reports
/// `first count checksum`.
fn consume_until_closed<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut consumer = B::consumer::<CheckedEvent>(&name)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let mut check = StreamCheck::new(consumer.next_sequence());
    match read_until_error(&mut consumer, &mut check, 4096, STALL)? {
        ConsumeError::Closed => Ok(check.report()),
        other => Err(format!("after {} events: {other}", check.count())),
    }
}

/// Publishes `count` events through any upstream producer, the event of upstream sequence `s` being
/// `CheckedEvent::new(first + s)`, handing blocks of [`BLOCK`] events in turn to `publish`, `try_publish`,
/// `batch_publish` and `try_batch_publish`; checks the sequences the `try_` methods return, and retries
/// them (until `deadline`) when the ring is full.
fn publish_checked_events<P: disruptor::Producer<CheckedEvent>>(
    producer: &mut P,
    first: u64,
    count: u64,
    deadline: Instant,
) -> Result<(), String> {
    let mut next = 0u64;
    let mut block = 0u64;
    while next < count {
        let n = (count - next).min(BLOCK);
        match block % 4 {
            0 => {
                for s in next..next + n {
                    producer.publish(|slot| *slot = CheckedEvent::new(first + s));
                }
            }
            1 => {
                for s in next..next + n {
                    loop {
                        match producer.try_publish(|slot| *slot = CheckedEvent::new(first + s)) {
                            Ok(sequence) if sequence == s as i64 => break,
                            Ok(sequence) => {
                                return Err(format!("try_publish returned {sequence}, not {s}"))
                            }
                            Err(RingBufferFull) => pause_until(deadline, "try_publish")?,
                        }
                    }
                }
            }
            2 => {
                let mut filled = 0;
                producer.batch_publish(n as usize, |slots| {
                    for (i, slot) in slots.enumerate() {
                        *slot = CheckedEvent::new(first + next + i as u64);
                        filled += 1;
                    }
                });
                if filled != n {
                    return Err(format!("batch_publish({n}) handed out {filled} slots"));
                }
            }
            _ => loop {
                let mut filled = 0;
                let outcome = producer.try_batch_publish(n as usize, |slots| {
                    for (i, slot) in slots.enumerate() {
                        *slot = CheckedEvent::new(first + next + i as u64);
                        filled += 1;
                    }
                });
                match outcome {
                    Ok(upper) if upper == (next + n - 1) as i64 && filled == n => break,
                    Ok(upper) => {
                        return Err(format!(
                            "try_batch_publish({n}) at {next} returned {upper} and filled {filled} slots"
                        ))
                    }
                    Err(MissingFreeSlots(missing)) if (1..=n).contains(&missing) && filled == 0 => {
                        pause_until(deadline, "try_batch_publish")?
                    }
                    Err(MissingFreeSlots(missing)) => {
                        return Err(format!(
                            "try_batch_publish({n}) missed {missing} slots and filled {filled}"
                        ))
                    }
                }
            },
        }
        next += n;
        block += 1;
    }
    Ok(())
}

/// Yields the core before a retry, or fails once `deadline` has passed.
fn pause_until(deadline: Instant, what: &str) -> Result<(), String> {
    if Instant::now() > deadline {
        return Err(format!("{what} found no room before the deadline"));
    }
    std::thread::yield_now();
    Ok(())
}

/// Runs `work` on a thread of its own and returns its result, failing the test if it takes longer than
/// `limit` (a blocking upstream publish has no timeout of its own).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver
        .recv_timeout(limit)
        .unwrap_or_else(|e| panic!("{what} did not finish within {limit:?} ({e})"))
}

/// Reads from `consumer` until `check` has seen `count` events, each verified.
fn read_exactly<B: Backend>(
    consumer: &mut Consumer<CheckedEvent, B>,
    check: &mut StreamCheck,
    count: u64,
) -> Result<(), String> {
    while check.count() < count {
        let max = (count - check.count()) as usize;
        consumer
            .consume_batch_timeout(max, STALL, |event, sequence, _| {
                check.observe(event, sequence)
            })
            .map_err(|e| format!("after {} events: {e}", check.count()))?;
        check.result()?;
    }
    Ok(())
}

/// Drops `bridge` (which delivers what is left, then closes the ring), failing the test if that takes
/// longer than [`STALL`].
fn drop_bridge(bridge: UpstreamBridge<CheckedEvent>) {
    within(STALL, "dropping the bridge", move || drop(bridge));
}

#[test]
fn one_generic_function_feeds_an_upstream_disruptor_and_a_consumer_process_alike() {
    const EVENTS: u64 = 1_000_000;
    const CAPACITY: usize = 1024;
    let expected = StreamCheck::expected_report(0, EVENTS, 0);

    // Upstream's own in-process disruptor, its handler verifying every event.
    let started = Instant::now();
    let upstream_check = Arc::new(Mutex::new(StreamCheck::new(0)));
    let handler_check = Arc::clone(&upstream_check);
    let upstream =
        disruptor::build_single_producer(CAPACITY, CheckedEvent::default, BusySpinWithSpinLoopHint)
            .handle_events_with(move |event: &CheckedEvent, sequence, _| {
                handler_check
                    .lock()
                    .unwrap()
                    .observe(event, sequence as u64)
            })
            .build();
    within(STALL, "publishing in process", move || {
        let mut upstream = upstream;
        let published = publish_checked_events(&mut upstream, 0, EVENTS, Instant::now() + STALL);
        drop(upstream); // joins the handler after it has seen every event
        published
    })
    .unwrap();
    let upstream_check = upstream_check.lock().unwrap().clone();
    upstream_check.result().unwrap();
    let upstream_elapsed = started.elapsed();

    // The same function, through the bridge, to a consumer process.
    let started = Instant::now();
    let ring = SharedMemory::new_ring("upstream");
    let producer = SharedMemory::producer::<CheckedEvent>(ring.id(), CAPACITY)
        .build_producer()
        .unwrap();
    let consumer = ChildProcess::spawn_test_role(
        "consumer",
        &[(SEGMENT, ring.id().to_string()), SharedMemory::env()],
    )
    .unwrap();
    producer.wait_for_consumers(1, STALL).unwrap();
    let mut bridge = producer.into_upstream(BusySpinWithSpinLoopHint);
    let first = bridge.first_sequence();
    assert_eq!(first, 0);
    within(STALL, "publishing through the bridge", move || {
        let published =
            publish_checked_events(bridge.producer(), first, EVENTS, Instant::now() + STALL);
        drop(bridge); // delivers every event, then closes the ring
        published
    })
    .unwrap();
    let report = consumer.expect_success(STALL).unwrap();
    let bridge_elapsed = started.elapsed();

    assert_eq!(upstream_check.report(), expected, "in process");
    assert_eq!(report, expected, "consumer process");
    assert!(
        !ring.path().exists(),
        "dropping the bridge removes the segment's name"
    );
    eprintln!(
        "{EVENTS} events: in process {upstream_elapsed:?}, through the bridge to a consumer process \
         {bridge_elapsed:?}"
    );
}

/// Publishes with `try_publish` until the bridge refuses, and keeps trying until the refusal is stable:
/// the shared ring is full (the bridge thread has forwarded a whole capacity, and the consumer reads
/// nothing) and the in-process ring is full behind it. Returns how many events were accepted.
fn try_publish_until_both_rings_are_full(bridge: &mut UpstreamBridge<CheckedEvent>) -> u64 {
    let capacity = bridge.capacity() as u64;
    let deadline = Instant::now() + STALL;
    let (mut accepted, mut refusals) = (0u64, 0u32);
    while refusals < 20 {
        assert!(Instant::now() < deadline, "the rings never filled up");
        match bridge
            .producer()
            .try_publish(|slot| *slot = CheckedEvent::new(accepted))
        {
            Ok(sequence) => {
                assert_eq!(sequence, accepted as i64);
                accepted += 1;
                refusals = 0;
                assert!(
                    accepted <= 2 * capacity,
                    "accepted {accepted} events with {capacity} + {capacity} slots"
                );
            }
            Err(RingBufferFull) => {
                if bridge.forwarded() == capacity {
                    refusals += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    accepted
}

#[test]
fn try_publish_returns_ring_buffer_full_once_both_rings_are_full_and_loses_nothing() {
    let ring = SharedMemory::new_ring("full");
    let producer = SharedMemory::producer::<CheckedEvent>(ring.id(), SMALL)
        .build_producer()
        .unwrap();
    let mut consumer = SharedMemory::consumer::<CheckedEvent>(ring.id())
        .build_consumer()
        .unwrap();
    let mut bridge = producer.into_upstream(idle_bridge());

    let accepted = try_publish_until_both_rings_are_full(&mut bridge);
    let capacity = SMALL as u64;
    assert!(
        (capacity..=2 * capacity).contains(&accepted),
        "accepted {accepted} events"
    );
    assert_eq!(bridge.forwarded(), capacity);
    // Upstream's batch publish is refused as a whole, without calling the closure.
    let mut called = false;
    assert_eq!(
        bridge.producer().try_batch_publish(5, |_| called = true),
        Err(MissingFreeSlots(5))
    );
    assert!(!called);

    // The consumer reads: the bridge thread forwards the rest, in order.
    let mut check = StreamCheck::new(0);
    read_exactly(&mut consumer, &mut check, accepted).unwrap();
    assert_eq!(bridge.forwarded(), accepted);
    drop_bridge(bridge);
    assert_eq!(consumer.try_consume_next(), Err(ConsumeError::Closed));
    assert_eq!(check.report(), StreamCheck::expected_report(0, accepted, 0));
}

#[test]
fn try_batch_publish_reports_the_missing_slots_and_publishes_nothing() {
    let ring = SharedMemory::new_ring("missing");
    let producer = SharedMemory::producer::<CheckedEvent>(ring.id(), SMALL)
        .build_producer()
        .unwrap();
    let mut consumer = SharedMemory::consumer::<CheckedEvent>(ring.id())
        .build_consumer()
        .unwrap();
    let mut bridge = producer.into_upstream(idle_bridge());

    // More than the capacity: upstream reports how many slots are missing now, all being free.
    let mut called = false;
    assert_eq!(
        bridge
            .producer()
            .try_batch_publish(SMALL + 3, |_| called = true),
        Err(MissingFreeSlots(3))
    );
    assert!(!called);
    // A batch that fits goes through whole; its upper sequence is returned.
    assert_eq!(
        bridge.producer().try_batch_publish(10, |slots| {
            for (sequence, slot) in slots.enumerate() {
                *slot = CheckedEvent::new(sequence as u64);
            }
        }),
        Ok(9)
    );

    let mut check = StreamCheck::new(0);
    read_exactly(&mut consumer, &mut check, 10).unwrap();
    drop_bridge(bridge);
    assert_eq!(consumer.try_consume_next(), Err(ConsumeError::Closed));
    assert_eq!(check.report(), StreamCheck::expected_report(0, 10, 0));
}

/// What one call of [`zero_batches`] returned (`None` for `batch_publish`, which returns nothing), and
/// how many slots it handed to its closure.
type Outcome = (&'static str, Option<Result<i64, MissingFreeSlots>>, usize);

/// Batches of zero around one event, through any upstream producer.
fn zero_batches<P: disruptor::Producer<CheckedEvent>>(producer: &mut P) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut handed = usize::MAX;
    let returned = producer.try_batch_publish(0, |slots| handed = slots.count());
    outcomes.push(("try_batch_publish(0)", Some(returned), handed));
    handed = usize::MAX;
    producer.batch_publish(0, |slots| handed = slots.count());
    outcomes.push(("batch_publish(0)", None, handed));
    let returned = producer.try_publish(|slot| *slot = CheckedEvent::new(0));
    assert_eq!(returned, Ok(0));
    handed = usize::MAX;
    let returned = producer.try_batch_publish(0, |slots| handed = slots.count());
    outcomes.push((
        "try_batch_publish(0) after one event",
        Some(returned),
        handed,
    ));
    outcomes
}

#[test]
fn a_batch_of_zero_publishes_nothing_and_returns_the_last_sequence_as_upstream_does() {
    let mut upstream =
        disruptor::build_single_producer(SMALL, CheckedEvent::default, idle_bridge())
            .handle_events_with(|_: &CheckedEvent, _, _| {})
            .build();
    let upstream_outcomes = zero_batches(&mut upstream);
    // Upstream calls the closure with no slots and returns the last published sequence (-1: none).
    assert_eq!(
        upstream_outcomes,
        vec![
            ("try_batch_publish(0)", Some(Ok(-1)), 0),
            ("batch_publish(0)", None, 0),
            ("try_batch_publish(0) after one event", Some(Ok(0)), 0),
        ]
    );

    let ring = SharedMemory::new_ring("zero");
    let producer = SharedMemory::producer::<CheckedEvent>(ring.id(), SMALL)
        .build_producer()
        .unwrap();
    let mut consumer = SharedMemory::consumer::<CheckedEvent>(ring.id())
        .build_consumer()
        .unwrap();
    let mut bridge = producer.into_upstream(idle_bridge());
    assert_eq!(zero_batches(bridge.producer()), upstream_outcomes);

    let mut check = StreamCheck::new(0);
    read_exactly(&mut consumer, &mut check, 1).unwrap();
    drop_bridge(bridge);
    assert_eq!(consumer.try_consume_next(), Err(ConsumeError::Closed));
}

/// A single event, a batch of four and another single event through any upstream producer, built for
/// shared-ring sequences from `first`; returns the sequences the `try_` methods returned.
fn sequences_returned<P: disruptor::Producer<CheckedEvent>>(
    producer: &mut P,
    first: u64,
) -> Vec<i64> {
    let mut sequences = Vec::new();
    let event = |s: u64| CheckedEvent::new(first + s);
    sequences.push(producer.try_publish(|slot| *slot = event(0)).unwrap());
    sequences.push(
        producer
            .try_batch_publish(4, |slots| {
                for (i, slot) in slots.enumerate() {
                    *slot = event(1 + i as u64);
                }
            })
            .unwrap(),
    );
    sequences.push(producer.try_publish(|slot| *slot = event(5)).unwrap());
    sequences
}

#[test]
fn returned_sequences_count_from_zero_as_upstream_and_map_to_the_shared_ring_after_first_sequence()
{
    let mut upstream =
        disruptor::build_single_producer(SMALL, CheckedEvent::default, idle_bridge())
            .handle_events_with(|_: &CheckedEvent, _, _| {})
            .build();
    let upstream_sequences = sequences_returned(&mut upstream, 0);
    assert_eq!(upstream_sequences, vec![0, 4, 5]);

    // Five events published natively first: the bridge's events follow them in the shared ring.
    let ring = SharedMemory::new_ring("sequences");
    let mut producer = SharedMemory::producer::<CheckedEvent>(ring.id(), SMALL)
        .build_producer()
        .unwrap();
    let mut consumer = SharedMemory::consumer::<CheckedEvent>(ring.id())
        .build_consumer()
        .unwrap();
    for sequence in 0..5 {
        producer.publish(CheckedEvent::new(sequence)).unwrap();
    }
    let mut bridge = producer.into_upstream(idle_bridge());
    assert_eq!(bridge.first_sequence(), 5);
    assert_eq!(sequences_returned(bridge.producer(), 5), upstream_sequences);

    // Each event sits at the upstream sequence returned plus `first_sequence`.
    let mut check = StreamCheck::new(0);
    read_exactly(&mut consumer, &mut check, 11).unwrap();
    drop_bridge(bridge);
    assert_eq!(consumer.try_consume_next(), Err(ConsumeError::Closed));
}

on_both_backends! {
    the_bridge_delivers_to_a_consumer_process_then_closes_the_ring =>
        the_bridge_delivers_to_a_consumer_process_then_closes_the_ring_shm,
        the_bridge_delivers_to_a_consumer_process_then_closes_the_ring_file;
}

fn the_bridge_delivers_to_a_consumer_process_then_closes_the_ring<B: TestBackend>() {
    const EVENTS: u64 = 20_000;
    let ring = B::new_ring("bridge");
    let producer = B::producer::<CheckedEvent>(ring.id(), 256)
        .build_producer()
        .unwrap();
    let consumer =
        ChildProcess::spawn_test_role("consumer", &[(SEGMENT, ring.id().to_string()), B::env()])
            .unwrap();
    producer.wait_for_consumers(1, STALL).unwrap();
    let mut bridge = producer.into_upstream(idle_bridge());
    within(STALL, "publishing through the bridge", move || {
        let published =
            publish_checked_events(bridge.producer(), 0, EVENTS, Instant::now() + STALL);
        drop(bridge);
        published
    })
    .unwrap();
    let report = consumer.expect_success(STALL).unwrap();
    assert_eq!(report, StreamCheck::expected_report(0, EVENTS, 0));
    // Closed as a producer closes its ring: a shared-memory name is removed, a ring file stays.
    assert_eq!(ring.path().exists(), B::KIND == MappedFile::KIND);
}
