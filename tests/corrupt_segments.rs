//! Attaching to garbage: random bytes, truncated segments, and a valid segment with each header field
//! corrupted in turn. Every case must end in a clear error, promptly — never a panic, a crash or a hang.
//! Each test runs on both backends.
//!
//! Segments are forged through the file each ring lives in: a file-backed ring's own, or for shared
//! memory the one Linux keeps in `/dev/shm` ([`TestRing::path`]). macOS has no such directory, so this
//! file is Linux-only; the validation it exercises is platform-independent code in `segment.rs`.
#![cfg(target_os = "linux")]

use disruptor_mp::segment::{HEADER_FIELDS, READY};
use disruptor_mp::{AttachError, MappedFile};
use disruptor_mp_suite::{on_both_backends, CheckedEvent, TestBackend, TestRing};
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A forged segment on backend `B`; its [`TestRing`] removes it on drop.
struct Forged<B> {
    ring: TestRing,
    _backend: PhantomData<B>,
}

impl<B: TestBackend> Forged<B> {
    fn new(label: &str, bytes: &[u8]) -> Forged<B> {
        let ring = B::new_ring(label);
        std::fs::write(ring.path(), bytes).unwrap();
        Forged {
            ring,
            _backend: PhantomData,
        }
    }

    /// Attaches with a short timeout and returns the error, checking it came promptly.
    fn attach_error(&self, timeout: Duration) -> AttachError {
        let start = Instant::now();
        let result = B::consumer::<CheckedEvent>(self.ring.id())
            .with_attach_timeout(timeout)
            .build_consumer();
        assert!(
            start.elapsed() < timeout + Duration::from_secs(2),
            "attach took {:?}",
            start.elapsed()
        );
        match result {
            Ok(_) => panic!("attached to forged {} segment {}", B::KIND, self.ring.id()),
            Err(error) => error,
        }
    }
}

/// The bytes of a real, ready segment for `CheckedEvent`.
fn valid_segment_bytes<B: TestBackend>() -> Vec<u8> {
    let ring = B::new_ring("template");
    let producer = B::producer::<CheckedEvent>(ring.id(), 64)
        .with_consumer_slots(4)
        .build_producer()
        .unwrap();
    let bytes = std::fs::read(ring.path()).unwrap();
    drop(producer);
    bytes
}

fn pseudo_random_bytes(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

on_both_backends! {
    the_template_itself_passes_every_check =>
        the_template_itself_passes_every_check_shm,
        the_template_itself_passes_every_check_file;
    random_bytes_are_not_a_ring =>
        random_bytes_are_not_a_ring_shm,
        random_bytes_are_not_a_ring_file;
    truncated_segments_are_refused_with_both_lengths =>
        truncated_segments_are_refused_with_both_lengths_shm,
        truncated_segments_are_refused_with_both_lengths_file;
    every_corrupted_header_field_is_refused =>
        every_corrupted_header_field_is_refused_shm,
        every_corrupted_header_field_is_refused_file;
    an_impossible_capacity_is_named =>
        an_impossible_capacity_is_named_shm,
        an_impossible_capacity_is_named_file;
    a_segment_that_never_becomes_ready_times_out =>
        a_segment_that_never_becomes_ready_times_out_shm,
        a_segment_that_never_becomes_ready_times_out_file;
}

fn the_template_itself_passes_every_check<B: TestBackend>() {
    // Guards the tests below: a forged copy of a valid segment passes every header and type check when
    // left intact. Only then is its producer checked, and nobody holds the copy's producer lock: the
    // attach reports the producer gone.
    let forged = Forged::<B>::new("intact", &valid_segment_bytes::<B>());
    match forged.attach_error(Duration::ZERO) {
        AttachError::ProducerGone { pid, .. } => assert_eq!(pid, std::process::id()),
        other => panic!("expected ProducerGone, got {other}"),
    }
}

fn random_bytes_are_not_a_ring<B: TestBackend>() {
    for seed in 1..=20u64 {
        let forged = Forged::<B>::new("random", &pseudo_random_bytes(64 * 1024, seed));
        let error = forged.attach_error(Duration::ZERO);
        assert!(
            matches!(error, AttachError::BadMagic { .. }),
            "seed {seed}: {error}"
        );
        assert!(error.to_string().contains("is not a disruptor-mp ring"));
    }
}

fn truncated_segments_are_refused_with_both_lengths<B: TestBackend>() {
    let valid = valid_segment_bytes::<B>();
    let forged = Forged::<B>::new("trunc100", &valid[..100]);
    match forged.attach_error(Duration::ZERO) {
        AttachError::Truncated { len: 100, .. } => {}
        other => panic!("expected Truncated, got {other}"),
    }
    // Long enough for the header, shorter than the header says the ring is.
    let short = valid.len() - 4096;
    let forged = Forged::<B>::new("trunc-ring", &valid[..short]);
    match forged.attach_error(Duration::ZERO) {
        AttachError::Truncated { len, required, .. } => {
            assert_eq!((len, required), (short as u64, valid.len() as u64))
        }
        other => panic!("expected Truncated, got {other}"),
    }
}

fn every_corrupted_header_field_is_refused<B: TestBackend>() {
    let valid = valid_segment_bytes::<B>();
    for &(field, offset, len) in HEADER_FIELDS {
        let mut bytes = valid.clone();
        for byte in &mut bytes[offset..offset + len] {
            *byte ^= 0xa5;
        }
        let forged = Forged::<B>::new("field", &bytes);
        let error = forged.attach_error(Duration::from_millis(50));
        let text = error.to_string();
        match field {
            "magic" => assert!(matches!(error, AttachError::BadMagic { .. }), "{text}"),
            "format_version" => assert!(
                matches!(error, AttachError::UnsupportedVersion { .. }),
                "{text}"
            ),
            "platform" => assert!(
                matches!(error, AttachError::PlatformMismatch { .. }),
                "{text}"
            ),
            "capacity" => assert!(
                matches!(error, AttachError::InvalidCapacity { .. }),
                "{text}"
            ),
            _ => assert!(
                matches!(error, AttachError::CorruptHeader { .. }),
                "{field}: {text}"
            ),
        }
    }
}

fn an_impossible_capacity_is_named<B: TestBackend>() {
    let mut bytes = valid_segment_bytes::<B>();
    let (_, offset, _) = HEADER_FIELDS.iter().find(|f| f.0 == "capacity").unwrap();
    bytes[*offset..offset + 8].copy_from_slice(&1000u64.to_ne_bytes());
    let forged = Forged::<B>::new("capacity", &bytes);
    match forged.attach_error(Duration::ZERO) {
        AttachError::InvalidCapacity { capacity: 1000, .. } => {}
        other => panic!("expected InvalidCapacity, got {other}"),
    }
}

fn a_segment_that_never_becomes_ready_times_out<B: TestBackend>() {
    let mut bytes = valid_segment_bytes::<B>();
    let (_, offset, _) = HEADER_FIELDS.iter().find(|f| f.0 == "ready").unwrap();
    assert_eq!(bytes[*offset..offset + 4], READY.to_ne_bytes());
    bytes[*offset..offset + 4].copy_from_slice(&0u32.to_ne_bytes());
    let forged = Forged::<B>::new("unready", &bytes);
    match forged.attach_error(Duration::from_millis(100)) {
        AttachError::NotReady { waited, .. } => assert!(waited >= Duration::from_millis(100)),
        other => panic!("expected NotReady, got {other}"),
    }
    let forged = Forged::<B>::new("empty", &[]);
    let error = forged.attach_error(Duration::from_millis(20));
    if B::KIND == <MappedFile as TestBackend>::KIND {
        // A ring file gets its name only once complete (it is built under a temporary name), so an
        // empty one is no ring being created: it is refused as truncated, at once.
        assert!(
            matches!(error, AttachError::Truncated { len: 0, .. }),
            "{error}"
        );
    } else {
        // An empty object (a creator between shm_open and ftruncate) is not ready either.
        assert!(matches!(error, AttachError::NotReady { .. }), "{error}");
    }
}
