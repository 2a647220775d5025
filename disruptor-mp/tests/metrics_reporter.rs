//! `metrics_reporter`: the gauges a reporter publishes for live and missing rings, read back through a
//! recorder installed by the test.
#![cfg(feature = "metrics")]

use disruptor_mp::metrics_reporter::MetricsReporter;
use disruptor_mp::{
    attach_shared_consumer, build_mmap_single_producer, build_shared_single_producer,
};
use metrics::{
    Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A gauge storing its last value.
#[derive(Default)]
struct Value(AtomicU64);

impl GaugeFn for Value {
    fn increment(&self, value: f64) {
        self.set(f64::from_bits(self.0.load(Ordering::Relaxed)) + value);
    }

    fn decrement(&self, value: f64) {
        self.increment(-value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// A metric's name and labels.
type SeriesKey = (String, BTreeMap<String, String>);

/// Gauges by name and labels, and how often each was registered.
#[derive(Default)]
struct Registry {
    gauges: HashMap<SeriesKey, (Arc<Value>, usize)>,
    described: HashMap<String, String>,
}

#[derive(Default, Clone)]
struct TestRecorder(Arc<Mutex<Registry>>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, key: KeyName, _: Option<Unit>, description: SharedString) {
        let mut registry = self.0.lock().unwrap();
        registry
            .described
            .insert(key.as_str().to_string(), description.to_string());
    }

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let labels = key
            .labels()
            .map(|label| (label.key().to_string(), label.value().to_string()))
            .collect();
        let mut registry = self.0.lock().unwrap();
        let (value, registrations) = registry
            .gauges
            .entry((key.name().to_string(), labels))
            .or_default();
        *registrations += 1;
        Gauge::from_arc(Arc::clone(value))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

/// The process-wide recorder (the reporter's thread uses the global one), installed on first use.
fn recorder() -> &'static TestRecorder {
    static RECORDER: OnceLock<TestRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = TestRecorder::default();
        metrics::set_global_recorder(recorder.clone()).expect("no other recorder is installed");
        recorder
    })
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

/// The value of a gauge, if it was registered.
fn gauge(name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    let registry = recorder().0.lock().unwrap();
    registry
        .gauges
        .get(&(name.to_string(), labels(pairs)))
        .map(|(value, _)| f64::from_bits(value.0.load(Ordering::Relaxed)))
}

/// How often a gauge was registered.
fn registrations(name: &str, pairs: &[(&str, &str)]) -> usize {
    let registry = recorder().0.lock().unwrap();
    registry
        .gauges
        .get(&(name.to_string(), labels(pairs)))
        .map_or(0, |(_, registrations)| *registrations)
}

/// Waits up to 10 s for a gauge to read `expected`.
#[track_caller]
fn wait_for(name: &str, pairs: &[(&str, &str)], expected: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = gauge(name, pairs);
        if value == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{pairs:?} is {value:?}, expected {expected}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn unique(label: &str) -> String {
    format!("dmp-metrics-{label}-{}", std::process::id())
}

#[test]
fn a_live_ring_reports_the_producer_and_each_consumer_with_its_lag() {
    recorder();
    let name = unique("live");
    let mut producer = build_shared_single_producer::<u64>(&name, 1024)
        .build_producer()
        .unwrap();
    // Never reads: its lag is everything published.
    let _paused = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("paused")
        .build_consumer()
        .unwrap();
    let mut anonymous = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    for value in 0..10 {
        producer.publish(value).unwrap();
    }
    while anonymous.try_consume_next().unwrap().is_some() {}

    let reporter = MetricsReporter::builder()
        .ring(name.as_str())
        .interval(Duration::from_millis(20))
        .prefix("live")
        .start()
        .unwrap();
    let ring = [("ring", name.as_str())];
    let paused = [("ring", name.as_str()), ("consumer", "paused")];
    let slot_1 = [("ring", name.as_str()), ("consumer", "slot-1")];
    wait_for("live_published", &ring, 10.0);
    assert_eq!(gauge("live_ring_up", &ring), Some(1.0));
    assert_eq!(gauge("live_producer_alive", &ring), Some(1.0));
    assert_eq!(gauge("live_closed", &ring), Some(0.0));
    assert_eq!(gauge("live_capacity", &ring), Some(1024.0));
    assert_eq!(gauge("live_consumers", &ring), Some(2.0));
    assert_eq!(gauge("live_consumer_lag", &paused), Some(10.0));
    assert_eq!(gauge("live_consumer_cursor", &paused), Some(0.0));
    assert_eq!(gauge("live_consumer_alive", &paused), Some(1.0));
    assert_eq!(gauge("live_consumer_gating", &paused), Some(1.0));
    assert_eq!(gauge("live_consumer_lag", &slot_1), Some(0.0));
    assert_eq!(gauge("live_consumer_cursor", &slot_1), Some(10.0));
    assert_eq!(gauge("live_consumer_alive", &slot_1), Some(1.0));
    // The counters are exported too (what they count is tested in `observability`).
    assert_eq!(gauge("live_ring_full", &ring), Some(0.0));
    assert_eq!(
        gauge("live_wakeups_sent", &ring).map(|v| v >= 0.0),
        Some(true)
    );
    assert!(gauge("live_consumer_empty_polls", &paused).is_some());
    assert!(gauge("live_consumer_wait_seconds", &slot_1).is_some());
    {
        let registry = recorder().0.lock().unwrap();
        assert!(registry.described["live_consumer_lag"].contains("behind"));
    }

    // The paused consumer's lag grows with every event published.
    for value in 10..30 {
        producer.publish(value).unwrap();
    }
    wait_for("live_consumer_lag", &paused, 30.0);
    assert_eq!(gauge("live_published", &ring), Some(30.0));
    assert_eq!(gauge("live_consumer_lag", &slot_1), Some(20.0));

    // A consumer that leaves is reported dead, and no longer counted.
    drop(anonymous);
    wait_for("live_consumer_alive", &slot_1, 0.0);
    wait_for("live_consumers", &ring, 1.0);

    // Steady state: many ticks later the handles are still the ones registered first.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(registrations("live_published", &ring), 1);
    assert_eq!(registrations("live_consumer_lag", &paused), 1);

    // A producer that exits removes its shared-memory segment: the ring is down, its series keep their
    // last values.
    drop(producer);
    wait_for("live_ring_up", &ring, 0.0);
    assert_eq!(gauge("live_published", &ring), Some(30.0));
    reporter.stop();
}

#[test]
fn stop_wakes_the_reporter_at_once() {
    recorder();
    let name = unique("stop");
    let _producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let reporter = MetricsReporter::builder()
        .ring(name.as_str())
        .interval(Duration::from_secs(10))
        .prefix("stop")
        .start()
        .unwrap();
    // The first tick is taken at start; then the thread waits out its 10 s interval.
    wait_for("stop_ring_up", &[("ring", name.as_str())], 1.0);
    let started = Instant::now();
    reporter.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        started.elapsed()
    );

    // Dropping stops it as promptly.
    let reporter = MetricsReporter::builder()
        .ring(name.as_str())
        .interval(Duration::from_secs(10))
        .prefix("stop_drop")
        .start()
        .unwrap();
    wait_for("stop_drop_ring_up", &[("ring", name.as_str())], 1.0);
    let started = Instant::now();
    drop(reporter);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// A private directory for ring files, removed on drop.
struct PrivateDir(std::path::PathBuf);

impl PrivateDir {
    fn new(label: &str) -> PrivateDir {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(unique(label));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap();
        PrivateDir(path)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_missing_ring_is_down_and_retried_until_it_appears() {
    recorder();
    let name = unique("missing");
    let dir = PrivateDir::new("files");
    let path = dir.0.join("fills.ring");
    let file = path.to_str().unwrap().to_string();
    let reporter = MetricsReporter::builder()
        .ring(name.as_str())
        .ring(file.as_str())
        .interval(Duration::from_millis(20))
        .prefix("missing")
        .start()
        .unwrap();
    let shm_ring = [("ring", name.as_str())];
    let file_ring = [("ring", file.as_str())];
    wait_for("missing_ring_up", &shm_ring, 0.0);
    wait_for("missing_ring_up", &file_ring, 0.0);
    assert_eq!(gauge("missing_published", &shm_ring), Some(0.0));

    // Created later, a ring is picked up on a following tick.
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    producer.publish(1).unwrap();
    wait_for("missing_ring_up", &shm_ring, 1.0);
    wait_for("missing_published", &shm_ring, 1.0);
    assert_eq!(gauge("missing_ring_up", &file_ring), Some(0.0));

    // A ring file outlives its producer: closed, producer gone, still up.
    let mut file_producer = build_mmap_single_producer::<u64>(&path, 16)
        .build_producer()
        .unwrap();
    file_producer.publish_batch(&[1, 2, 3]).unwrap();
    drop(file_producer);
    wait_for("missing_closed", &file_ring, 1.0);
    assert_eq!(gauge("missing_ring_up", &file_ring), Some(1.0));
    assert_eq!(gauge("missing_published", &file_ring), Some(3.0));
    assert_eq!(gauge("missing_producer_alive", &file_ring), Some(0.0));
    reporter.stop();
}

#[test]
fn start_refuses_an_unusable_configuration() {
    recorder();
    let refused = |builder: disruptor_mp::metrics_reporter::MetricsReporterBuilder| {
        builder.start().unwrap_err().kind() == std::io::ErrorKind::InvalidInput
    };
    assert!(refused(MetricsReporter::builder()), "no ring");
    let one = MetricsReporter::builder().ring(unique("config"));
    assert!(
        refused(one.clone().interval(Duration::ZERO)),
        "zero interval"
    );
    for bad in ["", "9dmp", "d-mp", "dmp ", "dmé"] {
        assert!(refused(one.clone().prefix(bad)), "prefix {bad:?}");
    }
    for good in ["config", "_x", "a:b_9"] {
        one.clone().prefix(good).start().unwrap().stop();
    }
}
