//! `observability`: snapshots of live, closed, corrupted and foreign rings, taken from outside.

use disruptor_mp::observability::{list_files, list_shared_memory, ConsumerState, RingSnapshot};
use disruptor_mp::{
    attach_shared_consumer, build_mmap_single_producer, build_shared_single_producer, AttachError,
    RingEvent, WaitStrategy,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(RingEvent, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
struct Level {
    price: f64,
    qty: u64,
}

#[derive(RingEvent, Clone, Copy, Default, Debug, PartialEq)]
#[repr(C)]
struct Book {
    instrument: u32,
    _pad: [u8; 4],
    levels: [Level; 2],
}

fn unique(label: &str) -> String {
    format!("dmp-observe-{label}-{}", std::process::id())
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
fn a_snapshot_shows_the_event_type_the_producer_and_each_consumer_with_its_lag() {
    let name = unique("live");
    let mut producer = build_shared_single_producer::<Book>(&name, 64)
        .build_producer()
        .unwrap();
    let mut fast = attach_shared_consumer::<Book>(&name)
        .with_consumer_id("fast")
        .build_consumer()
        .unwrap();
    let slow = attach_shared_consumer::<Book>(&name)
        .with_consumer_id("slow")
        .build_consumer()
        .unwrap();
    // Counted from the table, not from the producer's last gate refresh (there was none yet).
    assert_eq!(producer.gating_consumers(), 2);
    for instrument in 0..10 {
        producer
            .publish(Book {
                instrument,
                ..Book::default()
            })
            .unwrap();
    }
    for _ in 0..10 {
        fast.try_consume_next().unwrap().unwrap();
    }

    let snapshot = RingSnapshot::open(&name).unwrap();
    assert_eq!(snapshot.location, format!("/{name}"));
    assert_eq!(snapshot.backend, "shared memory");
    assert_eq!((snapshot.capacity, snapshot.closed), (64, false));
    assert_eq!(snapshot.event.name, "Book");
    assert_eq!((snapshot.event.size, snapshot.event.align), (40, 8));
    assert_eq!(snapshot.event.fingerprint, Book::LAYOUT.fingerprint);
    let fields: Vec<(&str, usize, &str)> = snapshot
        .event
        .fields
        .iter()
        .map(|f| (f.path.as_str(), f.offset, f.type_name.as_str()))
        .collect();
    assert!(fields.contains(&("instrument", 0, "u32")), "{fields:?}");
    assert!(fields.contains(&("levels", 8, "[Level; 2]")), "{fields:?}");
    assert_eq!(snapshot.producer.pid, std::process::id());
    assert!(snapshot.producer.alive);
    assert_eq!(snapshot.producer.published, 10);

    assert_eq!(snapshot.consumers.len(), 2);
    let by_id = |id: &str| snapshot.consumers.iter().find(|c| c.id == id).unwrap();
    let (fast_view, slow_view) = (by_id("fast"), by_id("slow"));
    assert_eq!((fast_view.cursor, fast_view.lag), (10, 0));
    assert_eq!((slow_view.cursor, slow_view.lag), (0, 10));
    for view in [fast_view, slow_view] {
        assert_eq!(view.state, ConsumerState::Active);
        assert!(view.alive && view.gating && !view.durable);
        assert_eq!(view.pid, std::process::id());
    }
    assert_eq!(snapshot.gating_consumers().count(), 2);

    // Plain data for tools: the JSON carries the same facts.
    let json: serde_json::Value = serde_json::to_value(&snapshot).unwrap();
    assert_eq!(json["event"]["name"], "Book");
    assert_eq!(json["producer"]["published"], 10);
    assert_eq!(json["consumers"][1]["state"], "active");
    drop(slow);
}

#[test]
fn a_closed_ring_file_shows_its_producer_gone_and_lists_with_its_directory() {
    let dir = PrivateDir::new("closed");
    let path = dir.0.join("book.ring");
    let mut producer = build_mmap_single_producer::<Book>(&path, 16)
        .build_producer()
        .unwrap();
    producer.publish(Book::default()).unwrap();
    drop(producer);
    std::fs::write(dir.0.join("notes.txt"), b"not a ring").unwrap();

    let snapshot = RingSnapshot::open(path.to_str().unwrap()).unwrap();
    assert_eq!(snapshot.backend, "file");
    assert!(snapshot.closed && !snapshot.producer.alive);
    assert_eq!(snapshot.producer.published, 1);

    let listed = list_files(&dir.0).unwrap();
    assert_eq!(listed.len(), 1, "only the ring is listed: {listed:?}");
    assert_eq!(listed[0].location, path.display().to_string());
    assert!(listed[0].snapshot.is_ok());
}

#[test]
fn shared_memory_rings_are_listed() {
    let name = unique("listed");
    let _producer = build_shared_single_producer::<u64>(&name, 16)
        .build_producer()
        .unwrap();
    let listed = list_shared_memory().unwrap();
    let ours = listed
        .iter()
        .find(|ring| ring.location == format!("/{name}"))
        .expect("our ring is listed");
    assert_eq!(ours.snapshot.as_ref().unwrap().event.name, "u64");
}

#[test]
fn garbage_truncated_and_foreign_version_files_are_errors_not_panics() {
    let dir = PrivateDir::new("garbage");
    let garbage = dir.0.join("garbage.ring");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).unwrap();
    assert!(matches!(
        RingSnapshot::open_file(&garbage),
        Err(AttachError::BadMagic { .. })
    ));

    let ring = dir.0.join("real.ring");
    drop(
        build_mmap_single_producer::<u64>(&ring, 16)
            .build_producer()
            .unwrap(),
    );
    let bytes = std::fs::read(&ring).unwrap();
    let truncated = dir.0.join("truncated.ring");
    std::fs::write(&truncated, &bytes[..5000]).unwrap();
    assert!(matches!(
        RingSnapshot::open_file(&truncated),
        Err(AttachError::Truncated { len: 5000, .. })
    ));
    let mut foreign = bytes.clone();
    foreign[8] = foreign[8].wrapping_add(1); // the format version's low byte
    let foreign_path = dir.0.join("foreign.ring");
    std::fs::write(&foreign_path, &foreign).unwrap();
    assert!(matches!(
        RingSnapshot::open_file(&foreign_path),
        Err(AttachError::UnsupportedVersion { .. })
    ));
    assert!(matches!(
        RingSnapshot::open_file(dir.0.join("missing.ring")),
        Err(AttachError::NotFound { .. })
    ));
}

#[test]
fn a_thousand_snapshots_during_traffic_change_nothing() {
    const EVENTS: u64 = 200_000;
    let name = unique("traffic");
    let mut producer = build_shared_single_producer::<u64>(&name, 256)
        .build_producer()
        .unwrap();
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("reader")
        .build_consumer()
        .unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let publisher = scope.spawn(|| {
            for value in 0..EVENTS {
                producer
                    .publish_timeout(value, Duration::from_secs(10))
                    .unwrap();
            }
            producer
        });
        let reader = scope.spawn(|| {
            let mut expected = 0;
            while expected < EVENTS {
                let (value, sequence) = consumer
                    .consume_next_timeout(Duration::from_secs(10))
                    .unwrap();
                assert_eq!((value, sequence), (expected, expected));
                expected += 1;
            }
            done.store(true, Ordering::Release);
        });
        let mut taken = 0;
        while taken < 1000 || !done.load(Ordering::Acquire) {
            let snapshot = RingSnapshot::open_shared_memory(&name).unwrap();
            assert_eq!(snapshot.consumers.len(), 1, "a snapshot joined the ring");
            // The cursor is read after the published count, so it may be ahead of it; the lag, clamped
            // at zero, never exceeds the ring, which the consumer gates.
            let consumer = &snapshot.consumers[0];
            assert!(
                consumer.cursor <= EVENTS && consumer.lag <= 256,
                "{consumer:?}"
            );
            taken += 1;
            if taken > 1_000_000 {
                break;
            }
        }
        reader.join().unwrap();
        let producer = publisher.join().unwrap();
        assert_eq!(producer.next_sequence(), EVENTS);
        assert_eq!(producer.attached_consumers(), 1);
    });
}

#[test]
fn counters_record_waits_sleeps_wake_ups_and_empty_polls() {
    let name = unique("counters");
    // Sleep at once, without spinning or yielding first, so that every wait below sleeps however
    // loaded the machine is.
    let sleep_at_once = WaitStrategy::Blocking {
        spins: 0,
        yields: 0,
    };
    let mut producer = build_shared_single_producer::<u64>(&name, 4)
        .with_wait_strategy(sleep_at_once)
        .build_producer()
        .unwrap();
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("counted")
        .with_wait_strategy(sleep_at_once)
        .build_consumer()
        .unwrap();

    // The consumer: ten empty non-blocking reads, then a blocking read that times out (it sleeps).
    for _ in 0..10 {
        assert_eq!(consumer.try_consume_next().unwrap(), None);
    }
    let wait = Duration::from_millis(50);
    assert!(consumer.consume_next_timeout(wait).is_err());
    // The producer: fill the ring, then a publish that waits for room and times out.
    for value in 0..4 {
        producer.publish(value).unwrap();
    }
    assert!(producer.publish_timeout(4, wait).is_err());

    let snapshot = RingSnapshot::open_shared_memory(&name).unwrap();
    let counted = &snapshot.consumers[0];
    assert!(counted.empty_polls >= 10, "{counted:?}");
    assert!(counted.sleeps >= 1, "{counted:?}");
    // With no spinning, the whole wait is timed.
    assert!(counted.wait_ns >= wait.as_nanos() as u64 / 2, "{counted:?}");
    let stats = producer.stats();
    assert_eq!((snapshot.producer.ring_full, stats.ring_full), (1, 1));
    assert!(snapshot.producer.sleeps >= 1 && stats.sleeps == snapshot.producer.sleeps);
    assert!(stats.time_waiting_for_room >= wait);
    assert_eq!(
        snapshot.producer.wait_ns,
        stats.time_waiting_for_room.as_nanos() as u64
    );

    // A consumer asleep when the producer publishes costs the producer one wake-up call.
    for _ in 0..4 {
        consumer.try_consume_next().unwrap().unwrap();
    }
    let woken = std::thread::scope(|scope| {
        let reader = scope.spawn(|| consumer.consume_next_timeout(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(100));
        producer.publish(4).unwrap();
        reader.join().unwrap()
    });
    assert_eq!(woken.unwrap(), (4, 4));
    assert!(producer.stats().wakeups_sent >= 1, "{:?}", producer.stats());
}
