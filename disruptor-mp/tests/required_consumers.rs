//! Required-consumer liveness in one process (the managed publish runs on a thread, the consumers on the
//! test thread): startup, a stall that recovers within the grace period, and each failure action for a
//! stall that does not. Every blocking call is bounded by a watchdog.

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name, ConsumeError,
    RequiredConsumerError, RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
    SharedConsumer, SharedProducer,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CAPACITY: usize = 4;
const PROGRESS: Duration = Duration::from_millis(60);
const GRACE: Duration = Duration::from_millis(400);
const WATCHDOG: Duration = Duration::from_secs(20);

fn unique(label: &str) -> String {
    portable_shm_segment_name(&format!("dmp-required-{label}-{}", std::process::id()))
}

fn config(id: &str, action: RequiredConsumerFailureAction) -> RequiredConsumerLivenessConfig {
    RequiredConsumerLivenessConfig::new([id])
        .with_startup_wait_timeout(Duration::from_secs(5))
        .with_progress_timeout(PROGRESS)
        .with_progress_check_interval(Duration::from_millis(5))
        .with_shutdown_grace_period(GRACE)
        .with_failure_action(action)
}

fn producer(name: &str, config: RequiredConsumerLivenessConfig) -> SharedProducer<u64> {
    build_shared_single_producer::<u64>(name, CAPACITY)
        .with_required_consumers(config)
        .build_producer()
        .unwrap()
}

fn consumer(name: &str, id: &str) -> SharedConsumer<u64> {
    attach_shared_consumer::<u64>(name)
        .with_consumer_id(id)
        .build_consumer()
        .unwrap()
}

/// The producer handed back by [`blocked_publish`], with the outcome and how long the call took.
type Outcome = (
    SharedProducer<u64>,
    Result<u64, RequiredConsumerError>,
    Duration,
);

/// Fills the ring (up to `CAPACITY` events in all), then runs one managed publish of `value` on a thread.
fn blocked_publish(mut producer: SharedProducer<u64>, value: u64) -> mpsc::Receiver<Outcome> {
    for i in producer.next_sequence()..CAPACITY as u64 {
        producer.publish_managed(i).unwrap();
    }
    let (done, outcome) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let result = producer.publish_managed(value);
        let _ = done.send((producer, result, start.elapsed()));
    });
    outcome
}

#[test]
fn a_required_consumer_that_never_appears_is_named() {
    let name = unique("startup");
    let config = RequiredConsumerLivenessConfig::new(["risk", "audit"])
        .with_startup_wait_timeout(Duration::from_millis(100));
    let mut producer = producer(&name, config);
    let _risk = consumer(&name, "risk");
    let start = Instant::now();
    assert_eq!(
        producer.publish_managed(1),
        Err(RequiredConsumerError::StartupTimeout {
            missing: vec!["audit".to_string()]
        })
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(producer.next_sequence(), 0, "nothing was published");
}

#[test]
fn a_stall_that_recovers_within_the_grace_period_lets_publishing_go_on() {
    let name = unique("recover");
    let alerts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&alerts);
    let config =
        config("risk", RequiredConsumerFailureAction::GracefulShutdown).with_alert(move |alert| {
            assert_eq!(alert.consumer_id, "risk");
            assert!(alert.alive);
            counted.fetch_add(1, Ordering::SeqCst);
        });
    let producer = producer(&name, config);
    let mut risk = consumer(&name, "risk");
    let outcome = blocked_publish(producer, 99);
    // Stalled past the progress timeout (the hook fires), then recovers within the grace period.
    std::thread::sleep(PROGRESS + GRACE / 3);
    assert_eq!(risk.try_consume_next().unwrap(), Some((0, 0)));
    let (_producer, result, _) = outcome.recv_timeout(WATCHDOG).expect("watchdog");
    assert_eq!(result, Ok(CAPACITY as u64));
    assert_eq!(alerts.load(Ordering::SeqCst), 1);
}

#[test]
fn graceful_shutdown_is_reported_for_a_consumer_stalled_past_the_grace_period() {
    let name = unique("shutdown");
    let producer = producer(
        &name,
        config("risk", RequiredConsumerFailureAction::GracefulShutdown),
    );
    let _risk = consumer(&name, "risk");
    let (producer, result, took) = blocked_publish(producer, 99)
        .recv_timeout(WATCHDOG)
        .expect("watchdog");
    match result {
        Err(RequiredConsumerError::GracefulShutdownTriggered {
            consumer_id,
            last_sequence,
            stalled_for,
        }) => {
            assert_eq!((consumer_id.as_str(), last_sequence), ("risk", 0));
            assert!(stalled_for >= PROGRESS + GRACE, "{stalled_for:?}");
        }
        other => panic!("expected GracefulShutdownTriggered, got {other:?}"),
    }
    assert!(took >= PROGRESS + GRACE);
    assert_eq!(
        producer.next_sequence(),
        CAPACITY as u64,
        "nothing more published"
    );
}

#[test]
fn evict_waits_for_a_live_consumer_to_acknowledge_and_then_goes_on() {
    let name = unique("evict-live");
    let producer = producer(&name, config("risk", RequiredConsumerFailureAction::Evict));
    let mut risk = consumer(&name, "risk");
    let mut other = consumer(&name, "other");
    // `other` keeps up; `risk` stalls, and looks again only once the eviction has started.
    let outcome = blocked_publish(producer, 99);
    let mut seen = Vec::new();
    let deadline = Instant::now() + PROGRESS + GRACE + GRACE / 3;
    while Instant::now() < deadline {
        while let Some((event, _)) = other.try_consume_next().unwrap() {
            seen.push(event);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(risk.try_consume_next(), Err(ConsumeError::Evicted));
    assert_eq!(risk.try_consume_next(), Err(ConsumeError::Evicted));
    let (producer, result, _) = outcome.recv_timeout(WATCHDOG).expect("watchdog");
    assert_eq!(result, Ok(CAPACITY as u64));
    while let Some((event, _)) = other.try_consume_next().unwrap() {
        seen.push(event);
    }
    assert_eq!(
        seen,
        [0, 1, 2, 3, 99],
        "the consumer that kept up lost nothing"
    );
    assert_eq!(producer.attached_consumers(), 1);
}

#[test]
fn evict_does_not_overwrite_a_consumer_that_never_reads_again_but_says_so() {
    let name = unique("evict-stuck");
    let producer = producer(&name, config("risk", RequiredConsumerFailureAction::Evict));
    let mut risk = consumer(&name, "risk");
    let (mut producer, result, _) = blocked_publish(producer, 99)
        .recv_timeout(WATCHDOG)
        .expect("watchdog");
    match result {
        Err(RequiredConsumerError::EvictionPending {
            consumer_id, pid, ..
        }) => assert_eq!((consumer_id.as_str(), pid), ("risk", std::process::id())),
        other => panic!("expected EvictionPending, got {other:?}"),
    }
    // Still gated: the stuck consumer's events are intact. Once it looks, it leaves, and publishing goes on.
    assert!(producer.try_publish(7).is_err());
    assert_eq!(risk.try_consume_next(), Err(ConsumeError::Evicted));
    assert_eq!(producer.publish_managed(100), Ok(CAPACITY as u64));
}

#[test]
fn evict_releases_a_durable_slot_whose_consumer_is_gone() {
    let name = unique("evict-durable");
    let required = config("risk_0", RequiredConsumerFailureAction::Evict)
        .with_alert(|alert| assert!(!alert.alive, "{alert:?}"));
    let mut producer = build_shared_single_producer::<u64>(&name, CAPACITY)
        .discover_consumer_with_prefix(1, "risk")
        .with_required_consumers(required)
        .build_producer()
        .unwrap();
    // The named consumer attaches (the startup check passes), then goes away without reading: its
    // durable slot keeps gating at its cursor.
    let risk = consumer(&name, "risk_0");
    producer.publish_managed(0).unwrap();
    drop(risk);
    let (producer, result, took) = blocked_publish(producer, 99)
        .recv_timeout(WATCHDOG)
        .expect("watchdog");
    assert_eq!(result, Ok(CAPACITY as u64));
    assert!(took >= PROGRESS + GRACE);
    // The reservation is gone: the id attaches as an ordinary consumer at the next event.
    let risk = consumer(&name, "risk_0");
    assert_eq!(risk.next_sequence(), producer.next_sequence());
}

#[test]
fn alert_only_keeps_alerting_and_waiting() {
    let name = unique("alert-only");
    let alerts = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&alerts);
    let config = config("risk", RequiredConsumerFailureAction::AlertOnly).with_alert(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    let producer = producer(&name, config);
    let mut risk = consumer(&name, "risk");
    let outcome = blocked_publish(producer, 99);
    std::thread::sleep(PROGRESS * 4 + GRACE);
    assert!(
        outcome.try_recv().is_err(),
        "AlertOnly gave up instead of waiting"
    );
    assert!(alerts.load(Ordering::SeqCst) >= 2);
    assert_eq!(risk.try_consume_next().unwrap(), Some((0, 0)));
    let (_producer, result, _) = outcome.recv_timeout(WATCHDOG).expect("watchdog");
    assert_eq!(result, Ok(CAPACITY as u64));
}
