//! One producer, several consumer processes: every consumer gets every event once, in order, intact;
//! a slow consumer holds the producer back without losing anything; consumers started before the producer
//! attach once it is ready. Each test runs on both backends (shared memory and a mapped file).

use disruptor_mp::{ConsumeError, MappedFile, SharedMemory};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, fold_checksum, on_both_backends, on_child_backend,
    CheckedEvent, ChildProcess, TestBackend,
};
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";
const ATTACH_TIMEOUT_MS: &str = "DMP_ATTACH_TIMEOUT_MS";
const PAUSE_EVERY: &str = "DMP_PAUSE_EVERY";

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(30);

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

/// Attaches, reads until the producer closes, verifying each event; reports `first count checksum`.
fn consume_until_closed<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let attach_timeout = Duration::from_millis(child_arg(ATTACH_TIMEOUT_MS));
    let pause_every: u64 = child_arg(PAUSE_EVERY);
    let mut consumer = B::consumer::<CheckedEvent>(&name)
        .with_consumer_id(&format!("consumer-{}", std::process::id()))
        .with_attach_timeout(attach_timeout)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let first = consumer.next_sequence();
    let (mut next, mut checksum) = (first, 0u64);
    let mut failure: Option<String> = None;
    loop {
        let result = consumer.consume_batch_timeout(4096, STALL, |event, sequence, _| {
            if failure.is_none()
                && (sequence != next || event.sequence != next || !event.is_intact())
            {
                failure = Some(format!(
                    "expected sequence {next}, got slot sequence {sequence} holding {event:?}"
                ));
            }
            checksum = fold_checksum(checksum, event.sequence);
            next += 1;
            if pause_every != 0 && sequence % pause_every == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        match result {
            Ok(_) => {}
            Err(ConsumeError::Closed) => break,
            Err(e) => return Err(format!("after {} events: {e}", next - first)),
        }
    }
    match failure {
        Some(failure) => Err(failure),
        None => Ok(format!("{first} {} {checksum}", next - first)),
    }
}

fn spawn_consumers<B: TestBackend>(
    name: &str,
    count: usize,
    pause_every: u64,
    attach_ms: u64,
) -> Vec<ChildProcess> {
    (0..count)
        .map(|_| {
            ChildProcess::spawn_test_role(
                "consumer",
                &[
                    (SEGMENT, name.to_string()),
                    (ATTACH_TIMEOUT_MS, attach_ms.to_string()),
                    (PAUSE_EVERY, pause_every.to_string()),
                    B::env(),
                ],
            )
            .expect("spawn consumer")
        })
        .collect()
}

fn expected_checksum(events: u64) -> u64 {
    (0..events).fold(0, fold_checksum)
}

/// Waits for every consumer and checks that each saw exactly `events` events from sequence 0.
fn assert_every_consumer_saw_everything(consumers: Vec<ChildProcess>, events: u64) {
    let expected = format!("0 {events} {}", expected_checksum(events));
    for consumer in consumers {
        let report = consumer.expect_success(Duration::from_secs(240)).unwrap();
        assert_eq!(report.trim(), expected);
    }
}

on_both_backends! {
    three_consumer_processes_each_receive_millions_of_events_in_order =>
        three_consumer_processes_each_receive_millions_of_events_in_order_shm,
        three_consumer_processes_each_receive_millions_of_events_in_order_file;
    a_slow_consumer_holds_the_producer_back_and_loses_nothing =>
        a_slow_consumer_holds_the_producer_back_and_loses_nothing_shm,
        a_slow_consumer_holds_the_producer_back_and_loses_nothing_file;
    consumers_started_before_the_producer_attach_once_it_is_ready =>
        consumers_started_before_the_producer_attach_once_it_is_ready_shm,
        consumers_started_before_the_producer_attach_once_it_is_ready_file;
}

fn three_consumer_processes_each_receive_millions_of_events_in_order<B: TestBackend>() {
    // Five million on shared memory; three million on a file, which keeps the suite's time in bounds
    // (both variants share the machine's cores) and still laps the ring thousands of times.
    let events: u64 = if B::KIND == <MappedFile as TestBackend>::KIND {
        3_000_000
    } else {
        5_000_000
    };
    let ring = B::new_ring("broadcast");
    let name = ring.id();
    let mut producer = B::producer::<CheckedEvent>(name, 1024)
        .build_producer()
        .unwrap();
    let consumers = spawn_consumers::<B>(name, 3, 0, 10_000);
    producer.wait_for_consumers(3, STALL).unwrap();
    for sequence in 0..events {
        producer
            .publish_timeout(CheckedEvent::new(sequence), STALL)
            .unwrap();
    }
    drop(producer);
    assert_every_consumer_saw_everything(consumers, events);
}

fn a_slow_consumer_holds_the_producer_back_and_loses_nothing<B: TestBackend>() {
    const EVENTS: u64 = 200_000;
    let ring = B::new_ring("slow");
    let name = ring.id();
    let mut producer = B::producer::<CheckedEvent>(name, 256)
        .build_producer()
        .unwrap();
    let mut consumers = spawn_consumers::<B>(name, 1, 0, 10_000);
    consumers.extend(spawn_consumers::<B>(name, 1, 2_000, 10_000));
    producer.wait_for_consumers(2, STALL).unwrap();
    for sequence in 0..EVENTS {
        producer
            .publish_timeout(CheckedEvent::new(sequence), STALL)
            .unwrap();
    }
    let ring_full = producer.stats().ring_full;
    drop(producer);
    assert_every_consumer_saw_everything(consumers, EVENTS);
    // The slow consumer sleeps 100 times for 1 ms; a 256-slot ring cannot absorb that.
    assert!(
        ring_full >= 50,
        "the producer found the ring full only {ring_full} times"
    );
}

fn consumers_started_before_the_producer_attach_once_it_is_ready<B: TestBackend>() {
    const EVENTS: u64 = 10_000;
    let ring = B::new_ring("early");
    let name = ring.id();
    let consumers = spawn_consumers::<B>(name, 2, 0, 20_000);
    std::thread::sleep(Duration::from_millis(300));
    let mut producer = B::producer::<CheckedEvent>(name, 64)
        .build_producer()
        .unwrap();
    producer.wait_for_consumers(2, STALL).unwrap();
    producer
        .publish_batch_timeout(
            &(0..EVENTS).map(CheckedEvent::new).collect::<Vec<_>>(),
            STALL,
        )
        .unwrap();
    drop(producer);
    assert_every_consumer_saw_everything(consumers, EVENTS);
}
