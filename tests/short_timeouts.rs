//! A process dies while its peer waits in a loop of short timeouts (each shorter than the liveness
//! interval): the peer still learns of the death within about one interval, instead of timing out for
//! ever. The liveness check is paced across calls, not within one wait.

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, PublishError,
};
use disruptor_mp_suite::{child_arg, dispatch_child_role, unique_segment_name, ChildProcess};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_SEGMENT";
const LIVENESS: Duration = Duration::from_millis(50);
const SHORT: Duration = Duration::from_millis(5);
/// Far more than the liveness interval, for a noisy machine; the test fails rather than hangs past it.
const BOUND: Duration = Duration::from_secs(5);

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "producer" => {
            let name: String = child_arg(SEGMENT);
            let mut producer = build_shared_single_producer::<u64>(&name, 16)
                .build_producer()
                .map_err(|e| e.to_string())?;
            producer
                .wait_for_consumers(1, BOUND)
                .map_err(|e| e.to_string())?;
            producer
                .publish_batch(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
                .map_err(|e| e.to_string())?;
            std::thread::sleep(BOUND * 6); // killed long before
            Err("not killed".into())
        }
        "idle-consumer" => {
            let name: String = child_arg(SEGMENT);
            let _consumer = attach_shared_consumer::<u64>(&name)
                .with_attach_timeout(BOUND)
                .build_consumer()
                .map_err(|e| e.to_string())?;
            std::thread::sleep(BOUND * 6); // never reads; killed long before
            Err("not killed".into())
        }
        other => Err(format!("unknown role {other}")),
    });
}

/// Removes a segment whose producer was killed (nobody else would).
struct RemoveOnDrop(String);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0.trim_start_matches('/')));
    }
}

#[test]
fn a_consumer_polling_with_short_timeouts_learns_that_its_producer_died() {
    let name = unique_segment_name("short-consume");
    let _cleanup = RemoveOnDrop(name.clone());
    let mut producer =
        ChildProcess::spawn_test_role("producer", &[(SEGMENT, name.clone())]).unwrap();
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .with_attach_timeout(BOUND)
        .with_liveness_interval(LIVENESS)
        .build_consumer()
        .unwrap();
    let mut received = Vec::new();
    while received.len() < 10 {
        match consumer.consume_next_timeout(BOUND) {
            Ok((event, _)) => received.push(event),
            Err(e) => panic!("before the kill: {e}"),
        }
    }
    producer.kill();
    let killed = Instant::now();
    let outcome = loop {
        match consumer.consume_next_timeout(SHORT) {
            Err(ConsumeError::Timeout { .. }) if killed.elapsed() < BOUND => continue,
            other => break other,
        }
    };
    assert!(
        matches!(outcome, Err(ConsumeError::ProducerGone { .. })),
        "{outcome:?}"
    );
    assert_eq!(received, (0..10).collect::<Vec<u64>>());
    println!("ProducerGone {:?} after the kill", killed.elapsed());
}

#[test]
fn a_producer_publishing_with_short_timeouts_stops_waiting_for_a_dead_consumer() {
    let name = unique_segment_name("short-publish");
    let mut producer = build_shared_single_producer::<u64>(&name, 4)
        .with_liveness_interval(LIVENESS)
        .build_producer()
        .unwrap();
    let mut consumer =
        ChildProcess::spawn_test_role("idle-consumer", &[(SEGMENT, name.clone())]).unwrap();
    producer.wait_for_consumers(1, BOUND).unwrap();
    for i in 0..4 {
        producer.publish_timeout(i, SHORT).unwrap();
    }
    consumer.kill();
    let killed = Instant::now();
    let outcome = loop {
        match producer.publish_timeout(4, SHORT) {
            Err(PublishError::Timeout { .. }) if killed.elapsed() < BOUND => continue,
            other => break other,
        }
    };
    assert_eq!(outcome, Ok(4));
    assert_eq!(producer.evicted_consumers(), 1);
    println!("went on {:?} after the kill", killed.elapsed());
}
