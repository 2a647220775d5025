//! Property tests of everything that reads a segment before trusting it: arbitrary bytes, every header
//! field mutated, truncated files, and garbage in the consumer table and the producer's words. Whatever
//! the bytes, attaching, snapshotting and reading return an error or behave; they never panic, never read
//! outside the mapping and never hang (a watchdog aborts the test binary if a case stops making progress).
//!
//! The cases run over ring files, which make it cheap to write any bytes and attach: the validation is the
//! same code for shared memory.

use disruptor_mp::observability::RingSnapshot;
use disruptor_mp::segment::HEADER_FIELDS;
use disruptor_mp::{attach_mmap_consumer, build_mmap_single_producer, StartPosition};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// Cases per property: enough to reach every field many times, within a couple of seconds each.
const CASES: u32 = 10_000;
/// A property that takes longer than this has hung: the watchdog aborts the binary.
const HANG: Duration = Duration::from_secs(240);

/// A private directory for this test binary's files, removed at the end of each property.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("dmp-hostile-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap();
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Aborts the process if it is not dropped within [`HANG`]: a hang fails the suite instead of stalling it.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn start(what: &'static str) -> Watchdog {
        let (done, finished) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(HANG) {
                eprintln!("{what}: no progress within {HANG:?}; a case hangs");
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

/// The bytes of a real, closed ring file (16 events of `u64`, 4 consumer slots, 20 published), made once.
fn template() -> &'static [u8] {
    static TEMPLATE: OnceLock<Vec<u8>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let scratch = Scratch::new("template");
        let path = scratch.0.join("template.ring");
        let mut producer = build_mmap_single_producer::<u64>(&path, 16)
            .with_consumer_slots(4)
            .build_producer()
            .unwrap();
        for value in 0..20 {
            producer.publish(value).unwrap();
        }
        drop(producer); // closed: a consumer may attach to it without a live producer
        std::fs::read(&path).unwrap()
    })
}

/// A header field's offset and length.
fn header_field(name: &str) -> (usize, usize) {
    let (_, offset, len) = HEADER_FIELDS
        .iter()
        .find(|(field, _, _)| *field == name)
        .unwrap();
    (*offset, *len)
}

fn read_u64(bytes: &[u8], offset: usize) -> usize {
    u64::from_ne_bytes(bytes[offset..offset + 8].try_into().unwrap()) as usize
}

/// Attaches and snapshots `path` every way a user can; returns whether the attach succeeded. Reads a few
/// events when it does. Panics (failing the case) only through the library.
fn look_at(path: &Path) -> bool {
    let snapshot = RingSnapshot::open_file(path);
    let consumer = attach_mmap_consumer::<u64>(path)
        .with_start_position(StartPosition::Earliest)
        .build_consumer();
    if let Ok(snapshot) = &snapshot {
        for consumer in &snapshot.consumers {
            assert!(consumer.slot < snapshot.consumer_slots as usize);
        }
    }
    match consumer {
        Ok(mut consumer) => {
            for _ in 0..64 {
                if !matches!(consumer.try_consume_next(), Ok(Some(_))) {
                    break;
                }
            }
            true
        }
        Err(_) => false,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn arbitrary_bytes_are_never_a_ring() {
    let _watchdog = Watchdog::start("arbitrary_bytes_are_never_a_ring");
    let scratch = Scratch::new("bytes");
    let path = scratch.0.join("ring");
    proptest!(config(), |(bytes in prop::collection::vec(any::<u8>(), 0..20_000))| {
        std::fs::write(&path, &bytes).unwrap();
        prop_assert!(RingSnapshot::open_file(&path).is_err());
        prop_assert!(!look_at(&path));
    });
}

#[test]
fn a_changed_header_field_is_always_refused() {
    let _watchdog = Watchdog::start("a_changed_header_field_is_always_refused");
    let scratch = Scratch::new("fields");
    let path = scratch.0.join("ring");
    let template = template();
    let fields = HEADER_FIELDS.len();
    proptest!(config(), |(field in 0..fields, value in any::<u64>(), flip in any::<bool>())| {
        let (_, offset, len) = HEADER_FIELDS[field];
        let mut bytes = template.to_vec();
        // Either an arbitrary value, or one bit of the stored one flipped (values close to valid ones).
        let stored = &mut bytes[offset..offset + len.min(8)];
        if flip {
            let bit = (value % (stored.len() as u64 * 8)) as usize;
            stored[bit / 8] ^= 1 << (bit % 8);
        } else {
            stored.copy_from_slice(&value.to_ne_bytes()[..stored.len()]);
        }
        let changed = bytes != template;
        std::fs::write(&path, &bytes).unwrap();
        let attached = look_at(&path);
        prop_assert!(!(changed && attached), "field {} changed, yet the ring attached", HEADER_FIELDS[field].0);
        prop_assert_eq!(RingSnapshot::open_file(&path).is_ok(), !changed);
    });
}

#[test]
fn a_truncated_ring_is_always_refused() {
    let _watchdog = Watchdog::start("a_truncated_ring_is_always_refused");
    let scratch = Scratch::new("truncated");
    let path = scratch.0.join("ring");
    let template = template();
    proptest!(config(), |(len in 0..template.len())| {
        std::fs::write(&path, &template[..len]).unwrap();
        prop_assert!(RingSnapshot::open_file(&path).is_err());
        prop_assert!(!look_at(&path));
    });
}

#[test]
fn garbage_in_the_consumer_table_and_producer_words_never_breaks_a_reader() {
    let _watchdog = Watchdog::start("garbage_in_the_consumer_table");
    let scratch = Scratch::new("table");
    let path = scratch.0.join("ring");
    let template = template();
    let producer_offset = read_u64(template, header_field("producer_offset").0);
    let slots_offset = read_u64(template, header_field("slots_offset").0);
    // The producer region and the consumer table: words other processes write after attach, which the
    // header's checksum does not cover.
    let shared = producer_offset..slots_offset;
    proptest!(config(), |(
        writes in prop::collection::vec((shared.clone(), any::<u64>()), 1..24),
    )| {
        let mut bytes = template.to_vec();
        for (offset, value) in writes {
            let offset = offset & !7; // word-aligned, as the fields are
            if offset + 8 <= slots_offset {
                bytes[offset..offset + 8].copy_from_slice(&value.to_ne_bytes());
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        // Attaching may succeed or not; either way, nothing panics, hangs or reads outside the mapping.
        look_at(&path);
        let _ = RingSnapshot::open_file(&path);
    });
}

/// The range of bytes of a live ring that other processes write after attach: the producer region and the
/// consumer table.
fn shared_words(path: &Path) -> std::ops::Range<usize> {
    let bytes = std::fs::read(path).unwrap();
    read_u64(&bytes, header_field("producer_offset").0)
        ..read_u64(&bytes, header_field("slots_offset").0)
}

#[test]
fn words_rewritten_after_attach_never_break_the_producer_or_a_consumer() {
    use disruptor_mp::{ConsumeError, MmapConsumer, MmapProducer, UntetheredConsumer};
    use std::os::unix::fs::FileExt;

    let _watchdog = Watchdog::start("words_rewritten_after_attach");
    let scratch = Scratch::new("after-attach");
    let path = scratch.0.join("ring");
    let shared = {
        let _producer = build_mmap_single_producer::<u64>(&path, 16)
            .with_consumer_slots(4)
            .build_producer()
            .unwrap();
        shared_words(&path)
    };
    // Timed calls run their wait loop once: the property is about what they do, not how long they wait.
    let short = Duration::ZERO;
    proptest!(config(), |(
        before in 0..40u64,
        writes in prop::collection::vec((shared.clone(), any::<u64>(), any::<bool>()), 1..8),
    )| {
        let _ = std::fs::remove_file(&path);
        let mut producer: MmapProducer<u64> = build_mmap_single_producer::<u64>(&path, 16)
            .with_consumer_slots(4)
            .build_producer()
            .unwrap();
        let mut journal: MmapConsumer<u64> = attach_mmap_consumer::<u64>(&path)
            .with_consumer_id("journal")
            .build_consumer()
            .unwrap();
        let mut business: MmapConsumer<u64> = attach_mmap_consumer::<u64>(&path)
            .with_consumer_id("business")
            .after(["journal"])
            .build_consumer()
            .unwrap();
        let mut audit: UntetheredConsumer<u64, _> = attach_mmap_consumer::<u64>(&path)
            .untethered()
            .build_consumer()
            .unwrap();
        for value in 0..before.min(16) {
            producer.try_publish(value).unwrap();
        }
        let _ = journal.try_consume_batch(8, |_, _, _| {});
        // Another process with write access rewrites shared words: whole words, or a small nudge of the
        // stored value (close to valid ones, where off-by-one mistakes live).
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        for (offset, value, nudge) in writes {
            let offset = offset & !7;
            if offset + 8 > shared.end {
                continue;
            }
            let mut word = [0u8; 8];
            file.read_exact_at(&mut word, offset as u64).unwrap();
            let stored = u64::from_ne_bytes(word);
            // Values near the end of the range too, where sequence arithmetic overflows.
            let new = if nudge {
                stored.wrapping_add(value % 40).wrapping_sub(20)
            } else if value % 4 == 0 {
                u64::MAX - (value >> 2) % 64
            } else {
                value
            };
            file.write_all_at(&new.to_ne_bytes(), offset as u64).unwrap();
        }
        // Every endpoint keeps working or reports an error; nothing panics, and every call returns.
        for value in 0..20 {
            let _ = producer.try_publish(value);
        }
        let _ = producer.publish_timeout(99, short);
        let _ = producer.try_publish_batch(&[1, 2, 3]);
        let _ = producer.stats();
        let _ = producer.gating_consumers();
        for consumer in [&mut journal, &mut business] {
            for _ in 0..40 {
                match consumer.try_consume_batch(64, |_, _, _| {}) {
                    Ok(_) => {}
                    Err(ConsumeError::CorruptSegment { .. }) | Err(_) => break,
                }
            }
            let _ = consumer.consume_next_timeout(short);
        }
        for _ in 0..40 {
            if audit.try_consume_next().is_err() {
                break;
            }
        }
        let _ = audit.consume_next_timeout(short);
        let _ = RingSnapshot::open_file(&path);
    });
}

#[test]
fn a_published_count_more_than_a_ring_ahead_is_reported_not_read() {
    use disruptor_mp::ConsumeError;
    use std::os::unix::fs::FileExt;

    let scratch = Scratch::new("published-ahead");
    let path = scratch.0.join("ring");
    let mut producer = build_mmap_single_producer::<u64>(&path, 16)
        .build_producer()
        .unwrap();
    let mut consumer = attach_mmap_consumer::<u64>(&path).build_consumer().unwrap();
    producer.publish(7).unwrap();
    assert_eq!(consumer.try_consume_next().unwrap(), Some((7, 0)));
    let published_at = shared_words(&path).start as u64;
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&(1 + 16 + 1u64).to_ne_bytes(), published_at)
        .unwrap();
    match consumer.try_consume_next() {
        Err(ConsumeError::CorruptSegment { word, value, .. }) => {
            assert_eq!((word, value), ("published count", 18));
        }
        other => panic!("{other:?}"),
    }
    // For good: reading does not resume.
    assert!(matches!(
        consumer.try_consume_next(),
        Err(ConsumeError::CorruptSegment { .. })
    ));
}

/// Found by the `attach` fuzz target: a closed ring whose published count is near `u64::MAX` made an
/// untethered reader's validation overflow.
#[test]
fn an_untethered_reader_of_a_published_count_near_the_end_of_u64_does_not_overflow() {
    use disruptor_mp::ConsumeError;
    use std::os::unix::fs::FileExt;

    let scratch = Scratch::new("published-max");
    let path = scratch.0.join("ring");
    let published_at = {
        let mut producer = build_mmap_single_producer::<u64>(&path, 16)
            .build_producer()
            .unwrap();
        producer.publish(1).unwrap();
        shared_words(&path).start as u64
    }; // closed
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for published in [u64::MAX, u64::MAX - 3, u64::MAX - 16, u64::MAX - 17] {
        file.write_all_at(&published.to_ne_bytes(), published_at)
            .unwrap();
        let mut reader = attach_mmap_consumer::<u64>(&path)
            .with_start_position(StartPosition::Earliest)
            .untethered()
            .build_consumer()
            .unwrap();
        for _ in 0..40 {
            match reader.try_consume_next() {
                Ok(Some(_)) | Err(ConsumeError::Lapped { .. }) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}
