//! The library's own per-event cost, with no second core involved: one thread publishes and consumes
//! 8-byte events through a shared-memory ring, and polls an empty ring. Without cache-line transfers
//! between cores the figures are steady to about a percent, so this is the bench that can tell whether
//! a change to the hot paths (publish, commit, an empty poll) costs anything; the cross-process benches
//! cannot resolve a few percent on a small shared machine.
//!
//! Run with `cargo bench --bench hot_path` (add `DMP_BENCH_QUICK=1` for a smoke run). To compare two
//! commits, build this bench at both and run the two binaries alternately.

use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};
use std::time::Instant;

/// Events per measured run (full mode), and runs per shape.
const EVENTS: u64 = 50_000_000;
const RUNS: usize = 7;
const BATCH: u64 = 64;

fn main() {
    let quick = std::env::var_os("DMP_BENCH_QUICK").is_some();
    let events = if quick { EVENTS / 100 } else { EVENTS };
    let name = format!("dmp-bench-hot-path-{}", std::process::id());
    let mut producer = build_shared_single_producer::<u64>(&name, 1024)
        .build_producer()
        .expect("create the ring");
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .expect("attach");
    println!(
        "hot_path: one thread, 8-byte events, ns per event (median of {RUNS} runs of {events})"
    );

    let publish_consume = median(RUNS, || {
        let start = Instant::now();
        let mut sum = 0u64;
        for value in 0..events {
            producer.try_publish(value).expect("room");
            let (event, _) = consumer
                .try_consume_next()
                .expect("read")
                .expect("an event");
            sum = sum.wrapping_add(event);
        }
        std::hint::black_box(sum);
        start.elapsed().as_nanos() as f64 / events as f64
    });
    println!("  publish + consume one event          {publish_consume:6.2}");

    let batched = median(RUNS, || {
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..events / BATCH {
            producer
                .try_publish_batch(&[7; BATCH as usize])
                .expect("room");
            let read = consumer
                .try_consume_batch(BATCH as usize, |event, _, _| sum = sum.wrapping_add(*event))
                .expect("read");
            assert_eq!(read, BATCH as usize);
        }
        std::hint::black_box(sum);
        start.elapsed().as_nanos() as f64 / events as f64
    });
    println!("  publish + consume, batches of {BATCH}     {batched:6.2}");

    let empty_poll = median(RUNS, || {
        let start = Instant::now();
        for _ in 0..events {
            assert!(consumer.try_consume_next().expect("poll").is_none());
        }
        start.elapsed().as_nanos() as f64 / events as f64
    });
    println!("  empty poll (nothing to read)         {empty_poll:6.2}");
}

fn median(runs: usize, mut run: impl FnMut() -> f64) -> f64 {
    let mut figures: Vec<f64> = (0..runs).map(|_| run()).collect();
    figures.sort_by(f64::total_cmp);
    figures[runs / 2]
}
