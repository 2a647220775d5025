//! Single-process checks of the producer and consumer API: sequences, backpressure, timeouts, batches,
//! closing, and joining a running ring. Cross-process behaviour is tested in the workspace's `tests/`.

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name, AttachError,
    ConsumeError, CreateError, NameError, PublishError, SharedConsumer, SharedProducer,
};
use std::time::{Duration, Instant};

/// A segment name unique to this test process, short enough for every platform.
fn unique(label: &str) -> String {
    portable_shm_segment_name(&format!("dmp-api-{label}-{}", std::process::id()))
}

/// A fresh ring of `u64` with one attached consumer.
fn ring(label: &str, capacity: usize) -> (SharedProducer<u64>, SharedConsumer<u64>) {
    let name = unique(label);
    let producer = build_shared_single_producer::<u64>(&name, capacity)
        .build_producer()
        .unwrap();
    let consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    (producer, consumer)
}

#[test]
fn events_arrive_in_order_with_their_sequences() {
    let (mut producer, mut consumer) = ring("order", 8);
    assert_eq!(consumer.capacity(), 8);
    assert_eq!(producer.attached_consumers(), 1);
    for round in 0..100u64 {
        for i in 0..5 {
            assert_eq!(producer.publish(round * 10 + i).unwrap(), round * 5 + i);
        }
        for i in 0..5 {
            let lease = consumer.try_consume_next_leased().unwrap().unwrap();
            assert_eq!((*lease, lease.sequence()), (round * 10 + i, round * 5 + i));
        }
        assert!(consumer.try_consume_next_leased().unwrap().is_none());
    }
}

#[test]
fn full_ring_refuses_then_accepts_after_consumption() {
    let (mut producer, mut consumer) = ring("full", 4);
    for i in 0..4 {
        producer.try_publish(i).unwrap();
    }
    assert_eq!(
        producer.try_publish(99),
        Err(PublishError::Full { capacity: 4 })
    );
    let start = Instant::now();
    assert_eq!(
        producer.publish_timeout(99, Duration::from_millis(30)),
        Err(PublishError::Timeout {
            timeout: Duration::from_millis(30)
        })
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    // Once for the failed try_publish, once for the publish that waited: not once per poll.
    assert_eq!(producer.stats().ring_full, 2);
    assert_eq!(consumer.try_consume_next().unwrap(), Some((0, 0)));
    assert_eq!(producer.try_publish(4), Ok(4));
    let mut seen = Vec::new();
    while let Some((event, _)) = consumer.try_consume_next().unwrap() {
        seen.push(event);
    }
    assert_eq!(seen, [1, 2, 3, 4]);
}

#[test]
fn a_lease_holds_its_slot_until_dropped() {
    let (mut producer, mut consumer) = ring("lease", 2);
    producer.publish(1).unwrap();
    producer.publish(2).unwrap();
    let lease = consumer.try_consume_next_leased().unwrap().unwrap();
    // The consumer still holds sequence 0: the ring (capacity 2) stays full.
    assert!(producer.try_publish(3).is_err());
    assert_eq!(*lease, 1);
    drop(lease);
    assert_eq!(producer.try_publish(3), Ok(2));
}

#[test]
fn batches_commit_once_and_mark_their_end() {
    let (mut producer, mut consumer) = ring("batch", 16);
    let events: Vec<u64> = (100..110).collect();
    assert_eq!(producer.publish_batch(&events).unwrap(), 0..10);
    let mut seen = Vec::new();
    let handled = consumer
        .try_consume_batch(4, |event, sequence, end| seen.push((*event, sequence, end)))
        .unwrap();
    assert_eq!(handled, 4);
    assert_eq!(seen.last(), Some(&(103, 3, true)));
    assert!(seen[..3].iter().all(|&(_, _, end)| !end));
    let handled = consumer
        .consume_batch_timeout(usize::MAX, Duration::from_secs(1), |event, sequence, _| {
            assert_eq!(*event, 100 + sequence)
        })
        .unwrap();
    assert_eq!(handled, 6);
    // A batch larger than the whole ring is published in pieces as the consumer frees room.
    assert_eq!(
        producer.try_publish_batch(&[0; 17]),
        Err(PublishError::Full { capacity: 16 })
    );
    let big: Vec<u64> = (0..40).collect();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut next = 0;
            while next < 40 {
                if let Ok((event, _)) = consumer.consume_next_timeout(Duration::from_secs(5)) {
                    assert_eq!(event, next);
                    next += 1;
                } else {
                    panic!("consumer timed out at {next}");
                }
            }
        });
        assert_eq!(
            producer
                .publish_batch_timeout(&big, Duration::from_secs(5))
                .unwrap(),
            10..50
        );
    });
}

#[test]
fn consumers_drain_then_see_closed() {
    let (mut producer, mut consumer) = ring("closed", 8);
    let name = producer.segment_name().to_string();
    producer.publish(7).unwrap();
    drop(producer);
    assert_eq!(consumer.try_consume_next().unwrap(), Some((7, 0)));
    assert_eq!(consumer.try_consume_next(), Err(ConsumeError::Closed));
    assert_eq!(
        consumer.consume_next_timeout(Duration::from_secs(1)),
        Err(ConsumeError::Closed)
    );
    // The producer removed the name: nobody new can attach.
    assert!(matches!(
        attach_shared_consumer::<u64>(&name).build_consumer(),
        Err(AttachError::NotFound { .. })
    ));
}

/// A producer whose name was removed and then taken by a newer producer must not remove the newer one's
/// name when it drops. (Linux only: the test removes the name through `/dev/shm`.)
#[cfg(target_os = "linux")]
#[test]
fn dropping_a_producer_leaves_a_newer_segment_of_the_same_name_alone() {
    let name = unique("renamed");
    let old = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    std::fs::remove_file(format!("/dev/shm{}", old.segment_name())).unwrap();
    let new = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    assert_ne!(old.epoch(), new.epoch());
    drop(old);
    let consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .expect("the newer segment keeps its name");
    assert_eq!(consumer.epoch(), new.epoch());
    drop(consumer);
    drop(new);
    assert!(matches!(
        attach_shared_consumer::<u64>(&name).build_consumer(),
        Err(AttachError::NotFound { .. })
    ));
}

#[test]
fn consume_timeout_expires_on_an_idle_ring() {
    let name = unique("idle");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        consumer.consume_next_timeout(Duration::from_millis(20)),
        Err(ConsumeError::Timeout {
            timeout: Duration::from_millis(20)
        })
    );
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_late_consumer_starts_at_the_next_publish_and_gates_from_then_on() {
    let name = unique("late");
    let mut producer = build_shared_single_producer::<u64>(&name, 4)
        .build_producer()
        .unwrap();
    // No consumer: the producer is not held back.
    for i in 0..10 {
        producer.try_publish(i).unwrap();
    }
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    assert_eq!(consumer.next_sequence(), 10);
    for i in 10..14 {
        producer.try_publish(i).unwrap();
    }
    assert!(producer.try_publish(14).is_err());
    assert_eq!(consumer.try_consume_next().unwrap(), Some((10, 10)));
    drop(consumer);
    // Once the consumer left, the producer is free again.
    for i in 14..30 {
        producer.try_publish(i).unwrap();
    }
    assert_eq!(producer.attached_consumers(), 0);
}

#[test]
fn duplicate_names_and_bad_parameters_are_refused() {
    let name = unique("dup");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    let taken = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap_err();
    assert!(matches!(taken, CreateError::AlreadyExists { .. }));
    #[cfg(target_os = "linux")]
    assert!(
        taken.to_string().contains(&format!("at /dev/shm{name}")),
        "{taken}"
    );
    assert!(matches!(
        build_shared_single_producer::<u64>(&unique("cap"), 1000).build_producer(),
        Err(CreateError::InvalidCapacity { capacity: 1000, .. })
    ));
    assert!(matches!(
        build_shared_single_producer::<u64>(&unique("slots"), 8)
            .with_consumer_slots(0)
            .build_producer(),
        Err(CreateError::InvalidConsumerSlots { slots: 0, .. })
    ));
    assert!(matches!(
        build_shared_single_producer::<u64>("a/b", 8).build_producer(),
        Err(CreateError::InvalidName(_))
    ));
    for dots in [".", ".."] {
        assert!(matches!(
            build_shared_single_producer::<u64>(dots, 8).build_producer(),
            Err(CreateError::InvalidName(NameError::Reserved { .. }))
        ));
    }
    assert!(matches!(
        attach_shared_consumer::<u64>(&name)
            .with_consumer_id(&"x".repeat(49))
            .build_consumer(),
        Err(AttachError::InvalidConsumerId { .. })
    ));
}

#[test]
fn a_full_consumer_table_is_refused_and_freed_slots_are_reused() {
    let name = unique("table");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .with_consumer_slots(2)
        .build_producer()
        .unwrap();
    let first = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("first")
        .build_consumer()
        .unwrap();
    let _second = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    match attach_shared_consumer::<u64>(&name).build_consumer() {
        Err(AttachError::ConsumerTableFull { slots: 2, .. }) => {}
        other => panic!("expected ConsumerTableFull, got {other:?}"),
    }
    let freed = first.slot_index();
    drop(first);
    let third = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    assert_eq!(third.slot_index(), freed);
}

#[test]
fn a_missing_segment_is_reported_after_the_attach_timeout() {
    let name = unique("missing");
    let start = Instant::now();
    match attach_shared_consumer::<u64>(&name)
        .with_attach_timeout(Duration::from_millis(50))
        .build_consumer()
    {
        Err(AttachError::NotFound { waited, .. }) => assert!(waited >= Duration::from_millis(50)),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_different_primitive_type_of_the_same_size_is_refused() {
    let name = unique("prim");
    let _producer = build_shared_single_producer::<u64>(&name, 8)
        .build_producer()
        .unwrap();
    let error = attach_shared_consumer::<f64>(&name)
        .build_consumer()
        .unwrap_err();
    let AttachError::EventTypeMismatch(mismatch) = &error else {
        panic!("expected a type mismatch, got {error:?}");
    };
    assert_eq!(mismatch.here.name, "f64");
    assert_eq!(mismatch.segment.name, "u64");
    let text = error.to_string();
    assert!(text.contains("f64  size 8 align 8"), "{text}");
    assert!(
        text.contains("offset 0, f64 (here) vs offset 0, u64 (segment)"),
        "{text}"
    );
}

#[test]
fn an_event_too_large_for_the_header_is_refused_at_creation() {
    // 4 GiB + 1 byte: the header records event sizes in 32 bits. Nothing of this size is ever built.
    type Huge = [u8; (1 << 32) + 1];
    let error = build_shared_single_producer::<Huge>(&unique("huge"), 1)
        .build_producer()
        .unwrap_err();
    assert!(
        matches!(error, CreateError::UnsupportedEvent { .. }),
        "{error}"
    );
}

#[test]
fn a_batch_whose_sequences_would_overflow_is_refused_without_publishing() {
    let (mut producer, mut consumer) = ring("overflow", 8);
    producer.publish(1).unwrap();
    let mut filled = 0;
    let refused = producer.publish_batch_with(usize::MAX, |_, _| filled += 1);
    assert_eq!(
        refused,
        Err(PublishError::BatchTooLarge {
            count: usize::MAX as u64,
            next_sequence: 1
        })
    );
    assert_eq!(filled, 0);
    assert_eq!(producer.next_sequence(), 1);
    assert_eq!(consumer.try_consume_next().unwrap(), Some((1, 0)));
    assert_eq!(consumer.try_consume_next().unwrap(), None);
}
