//! Writes the seed corpus of the `attach` fuzz target: real ring files in the states a fuzzer should
//! start from (fresh, with events, closed, with anonymous, named, durable and untethered consumers,
//! with a pipeline stage), into `corpus/attach/` (or the directory given as the first argument).

use disruptor_mp::{attach_mmap_consumer, build_mmap_single_producer};
use std::path::{Path, PathBuf};

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus/attach"));
    std::fs::create_dir_all(&out).expect("create the corpus directory");
    let scratch = std::env::temp_dir().join(format!("dmp-fuzz-seeds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir(&scratch).expect("create a scratch directory");
    let mut written = 0;
    for (label, capacity, slots, events, close) in [
        ("fresh", 16, 1, 0, false),
        ("published", 16, 2, 5, false),
        ("lapped", 16, 4, 40, true),
        ("wide", 64, 8, 100, true),
    ] {
        let path = scratch.join(label);
        let mut producer = build_mmap_single_producer::<u64>(&path, capacity)
            .with_consumer_slots(slots)
            .discover_consumer_with_prefix(1, "named")
            .build_producer()
            .expect("create a ring");
        let mut named = attach_mmap_consumer::<u64>(&path)
            .with_consumer_id("named_0")
            .build_consumer()
            .expect("attach the named consumer");
        let mut stage = (slots >= 2).then(|| {
            attach_mmap_consumer::<u64>(&path)
                .with_consumer_id("stage")
                .after(["named_0"])
                .build_consumer()
                .expect("attach a pipeline stage")
        });
        let audit = (slots >= 4).then(|| {
            attach_mmap_consumer::<u64>(&path)
                .untethered()
                .build_consumer()
                .expect("attach an untethered reader")
        });
        for value in 0..events {
            if producer.try_publish(value).is_err() {
                let _ = named.try_consume_batch(usize::MAX, |_, _, _| {});
                if let Some(stage) = &mut stage {
                    let _ = stage.try_consume_batch(usize::MAX, |_, _, _| {});
                }
                producer.try_publish(value).expect("room after reading");
            }
        }
        copy(&path, &out.join(format!("{label}-open")));
        drop((stage, audit));
        if close {
            drop(named);
            drop(producer);
            copy(&path, &out.join(format!("{label}-closed")));
            written += 1;
        }
        written += 1;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!("wrote {written} seeds to {}", out.display());
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy a ring file");
}
