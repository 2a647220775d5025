//! Attaching to garbage: random bytes, truncated segments, and a valid segment with each header field
//! corrupted in turn. Every case must end in a clear error, promptly — never a panic, a crash or a hang.
//!
//! Segments are forged through `/dev/shm`, where Linux keeps POSIX shared-memory objects as files. macOS
//! has no such directory, so this file is Linux-only; the validation it exercises is platform-independent
//! code in `segment.rs`.
#![cfg(target_os = "linux")]

use disruptor_mp::segment::{HEADER_FIELDS, READY};
use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, AttachError};
use disruptor_mp_suite::{unique_segment_name, CheckedEvent};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A forged segment file, removed on drop.
struct Forged {
    name: String,
    path: PathBuf,
}

impl Forged {
    fn new(label: &str, bytes: &[u8]) -> Forged {
        let name = unique_segment_name(label);
        // Linux keeps POSIX shared-memory objects as files here, named without the leading slash.
        let path = PathBuf::from(format!("/dev/shm/{}", name.trim_start_matches('/')));
        std::fs::write(&path, bytes).unwrap();
        Forged { name, path }
    }

    /// Attaches with a short timeout and returns the error, checking it came promptly.
    fn attach_error(&self, timeout: Duration) -> AttachError {
        let start = Instant::now();
        let result = attach_shared_consumer::<CheckedEvent>(&self.name)
            .with_attach_timeout(timeout)
            .build_consumer();
        assert!(
            start.elapsed() < timeout + Duration::from_secs(2),
            "attach took {:?}",
            start.elapsed()
        );
        match result {
            Ok(_) => panic!("attached to forged segment {}", self.name),
            Err(error) => error,
        }
    }
}

impl Drop for Forged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The bytes of a real, ready segment for `CheckedEvent`.
fn valid_segment_bytes() -> Vec<u8> {
    let name = unique_segment_name("template");
    let producer = build_shared_single_producer::<CheckedEvent>(&name, 64)
        .with_consumer_slots(4)
        .build_producer()
        .unwrap();
    let bytes = std::fs::read(format!("/dev/shm{}", producer.segment_name())).unwrap();
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

#[test]
fn the_template_itself_passes_every_check() {
    // Guards the tests below: a forged copy of a valid segment passes every header and type check when
    // left intact. Only then is its producer checked, and nobody holds the copy's producer lock: the
    // attach reports the producer gone.
    let forged = Forged::new("intact", &valid_segment_bytes());
    match forged.attach_error(Duration::ZERO) {
        AttachError::ProducerGone { pid, .. } => assert_eq!(pid, std::process::id()),
        other => panic!("expected ProducerGone, got {other}"),
    }
}

#[test]
fn random_bytes_are_not_a_ring() {
    for seed in 1..=20u64 {
        let forged = Forged::new("random", &pseudo_random_bytes(64 * 1024, seed));
        let error = forged.attach_error(Duration::ZERO);
        assert!(
            matches!(error, AttachError::BadMagic { .. }),
            "seed {seed}: {error}"
        );
        assert!(error.to_string().contains("is not a disruptor-mp ring"));
    }
}

#[test]
fn truncated_segments_are_refused_with_both_lengths() {
    let valid = valid_segment_bytes();
    let forged = Forged::new("trunc100", &valid[..100]);
    match forged.attach_error(Duration::ZERO) {
        AttachError::Truncated { len: 100, .. } => {}
        other => panic!("expected Truncated, got {other}"),
    }
    // Long enough for the header, shorter than the header says the ring is.
    let short = valid.len() - 4096;
    let forged = Forged::new("trunc-ring", &valid[..short]);
    match forged.attach_error(Duration::ZERO) {
        AttachError::Truncated { len, required, .. } => {
            assert_eq!((len, required), (short as u64, valid.len() as u64))
        }
        other => panic!("expected Truncated, got {other}"),
    }
}

#[test]
fn every_corrupted_header_field_is_refused() {
    let valid = valid_segment_bytes();
    for &(field, offset, len) in HEADER_FIELDS {
        let mut bytes = valid.clone();
        for byte in &mut bytes[offset..offset + len] {
            *byte ^= 0xa5;
        }
        let forged = Forged::new("field", &bytes);
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

#[test]
fn an_impossible_capacity_is_named() {
    let mut bytes = valid_segment_bytes();
    let (_, offset, _) = HEADER_FIELDS.iter().find(|f| f.0 == "capacity").unwrap();
    bytes[*offset..offset + 8].copy_from_slice(&1000u64.to_ne_bytes());
    let forged = Forged::new("capacity", &bytes);
    match forged.attach_error(Duration::ZERO) {
        AttachError::InvalidCapacity { capacity: 1000, .. } => {}
        other => panic!("expected InvalidCapacity, got {other}"),
    }
}

#[test]
fn a_segment_that_never_becomes_ready_times_out() {
    let mut bytes = valid_segment_bytes();
    let (_, offset, _) = HEADER_FIELDS.iter().find(|f| f.0 == "ready").unwrap();
    assert_eq!(bytes[*offset..offset + 4], READY.to_ne_bytes());
    bytes[*offset..offset + 4].copy_from_slice(&0u32.to_ne_bytes());
    let forged = Forged::new("unready", &bytes);
    match forged.attach_error(Duration::from_millis(100)) {
        AttachError::NotReady { waited, .. } => assert!(waited >= Duration::from_millis(100)),
        other => panic!("expected NotReady, got {other}"),
    }
    // An empty object (a creator between shm_open and ftruncate) is not ready either.
    let forged = Forged::new("empty", &[]);
    assert!(matches!(
        forged.attach_error(Duration::from_millis(20)),
        AttachError::NotReady { .. }
    ));
}
