//! Attach and snapshot over arbitrary bytes: whatever a ring file holds, `RingSnapshot::open_file` and a
//! consumer's attach (then a few reads) return an error or behave; they never panic, never read outside
//! the mapping and never hang. Run with `cargo +nightly fuzz run attach -- -max_len=65536` from `fuzz/`
//! after `cargo run --bin seed_corpus` (see README.md there).
#![no_main]

use disruptor_mp::observability::RingSnapshot;
use disruptor_mp::{attach_mmap_consumer, StartPosition};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A private directory for this fuzzing process's ring file.
fn ring_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("dmp-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        dir.join("ring")
    })
}

fuzz_target!(|bytes: &[u8]| {
    let path = ring_path();
    std::fs::write(path, bytes).unwrap();
    if let Ok(snapshot) = RingSnapshot::open_file(path) {
        for consumer in &snapshot.consumers {
            assert!(consumer.slot < snapshot.consumer_slots as usize);
        }
    }
    if let Ok(mut consumer) = attach_mmap_consumer::<u64>(path)
        .with_start_position(StartPosition::Earliest)
        .build_consumer()
    {
        for _ in 0..64 {
            if !matches!(consumer.try_consume_next(), Ok(Some(_))) {
                break;
            }
        }
    }
    if let Ok(mut reader) = attach_mmap_consumer::<u64>(path)
        .with_start_position(StartPosition::Earliest)
        .untethered()
        .build_consumer()
    {
        for _ in 0..64 {
            if reader.try_consume_next().is_err() {
                break;
            }
        }
    }
});
