//! Consumers that join while the producer publishes at full speed are never lapped: from their first event
//! on, every event arrives intact, in order, without a gap. Joiners start at the next event published
//! (`StartPosition::Latest`) or at the oldest event the ring still holds for them
//! (`StartPosition::Earliest`, possibly behind the producer). Each test runs on both backends.

use disruptor_mp::{MappedFile, PublishError, SharedMemory, StartPosition};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, on_both_backends, on_child_backend, CheckedEvent, ChildProcess,
    TestBackend,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";
const READ: &str = "DMP_READ";
const START: &str = "DMP_START";
const STALL: Duration = Duration::from_secs(30);
const CAPACITY: u64 = 1024;

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "joiner" => on_child_backend(
            join_and_verify::<SharedMemory>,
            join_and_verify::<MappedFile>,
        ),
        other => Err(format!("unknown role {other}")),
    });
}

/// `START` as the parent passes it.
fn start_position(start: &str) -> Result<StartPosition, String> {
    match start {
        "latest" => Ok(StartPosition::Latest),
        "earliest" => Ok(StartPosition::Earliest),
        other => Err(format!("unknown start position {other}")),
    }
}

/// Attaches to the running ring from `START` and reads `READ` events, verifying that the first is intact
/// and that every later one follows it without a gap; reports the start sequence.
fn join_and_verify<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let to_read: u64 = child_arg(READ);
    let mut consumer = B::consumer::<CheckedEvent>(&name)
        .with_start_position(start_position(&child_arg::<String>(START))?)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let start = consumer.next_sequence();
    let mut next = start;
    while next < start + to_read {
        let mut failure = None;
        consumer
            .consume_batch_timeout(1024, STALL, |event, sequence, _| {
                if failure.is_none()
                    && (sequence != next || event.sequence != next || !event.is_intact())
                {
                    failure = Some(format!(
                        "joined at {start}: expected {next}, slot {sequence} holds event {} \
                         (intact: {})",
                        event.sequence,
                        event.is_intact()
                    ));
                }
                next += 1;
            })
            .map_err(|e| format!("joined at {start}, at {next}: {e}"))?;
        if let Some(failure) = failure {
            return Err(failure);
        }
    }
    Ok(start.to_string())
}

/// Fifty joiners, two at a time, each reading 20,000 events from `start` while the producer publishes
/// at full speed; checks where each started against the producer's position before it was spawned.
fn fifty_joiners<B: TestBackend>(start: &str) {
    const JOINERS: usize = 50;
    let ring = B::new_ring("late-join");
    let name = ring.id();
    let mut producer = B::producer::<CheckedEvent>(name, CAPACITY as usize)
        .build_producer()
        .unwrap();
    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    std::thread::scope(|scope| {
        let publisher = scope.spawn(|| {
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match producer.publish_timeout(CheckedEvent::new(sequence), STALL) {
                    Ok(_) => {
                        sequence += 1;
                        progress.store(sequence, Ordering::Release);
                    }
                    Err(PublishError::Timeout { .. }) => {
                        return Err(format!("producer stalled at {sequence}"))
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(sequence)
        });
        let result = std::panic::catch_unwind(|| {
            // (events published before a joiner was spawned, the sequence it started at)
            let mut starts = Vec::new();
            // Two joiners at a time, so joins also overlap with another consumer's reading and leaving.
            for _ in 0..JOINERS / 2 {
                let before = progress.load(Ordering::Acquire);
                let pair: Vec<ChildProcess> = (0..2)
                    .map(|_| {
                        ChildProcess::spawn_test_role(
                            "joiner",
                            &[
                                (SEGMENT, name.to_string()),
                                (READ, "20000".to_string()),
                                (START, start.to_string()),
                                B::env(),
                            ],
                        )
                        .expect("spawn joiner")
                    })
                    .collect();
                for joiner in pair {
                    let report = joiner.expect_success(Duration::from_secs(60)).unwrap();
                    starts.push((before, report.trim().parse::<u64>().unwrap()));
                }
            }
            starts
        });
        stop.store(true, Ordering::Relaxed);
        let published = publisher.join().unwrap().unwrap();
        let starts = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        assert_eq!(starts.len(), JOINERS);
        for &(before, first) in &starts {
            // The producer had published `before` events when the joiner was spawned. `Latest` starts at
            // the next one published after the join; `Earliest` at most one ring further back, the
            // oldest event the ring can still hold.
            let oldest_possible = match start {
                "latest" => before,
                _ => before.saturating_sub(CAPACITY),
            };
            assert!(
                first >= oldest_possible,
                "a {start} joiner spawned after event {before} started at {first}"
            );
        }
        // The joiners really joined a moving ring, not one at rest: each pair joined after the pair
        // before had read its 20,000 events, so further along.
        let firsts: Vec<u64> = starts.iter().map(|&(_, first)| first).collect();
        for (k, pairs) in firsts.chunks(2).collect::<Vec<_>>().windows(2).enumerate() {
            let (earlier, later) = (pairs[0], pairs[1]);
            assert!(
                later.iter().min() > earlier.iter().max(),
                "pair {} started at {later:?}, not after pair {k} at {earlier:?}",
                k + 1
            );
        }
        if start == "latest" {
            // Within a pair too, mostly: the second joiner usually attaches once the producer moved on.
            // (From `Earliest`, the two often start at the same event: the first one gates the producer
            // from where it started until it reads, so the second finds the same oldest event held.)
            assert!(firsts.windows(2).filter(|w| w[1] > w[0]).count() >= JOINERS / 2);
        }
        assert!(published > *firsts.iter().max().unwrap());
    });
}

fn fifty_consumers_joining_under_full_speed_publishing_see_no_gap<B: TestBackend>() {
    fifty_joiners::<B>("latest");
}

/// With `Earliest` a joiner may start behind the producer, on events published before it joined: the
/// first of them must still be intact (not overwritten while the joiner attached), and it must then get
/// every event from there, exactly sequence-consecutive.
fn fifty_consumers_joining_from_the_earliest_held_event_see_no_gap<B: TestBackend>() {
    fifty_joiners::<B>("earliest");
}

on_both_backends! {
    fifty_consumers_joining_under_full_speed_publishing_see_no_gap =>
        fifty_consumers_joining_under_full_speed_publishing_see_no_gap_shm,
        fifty_consumers_joining_under_full_speed_publishing_see_no_gap_file;
    fifty_consumers_joining_from_the_earliest_held_event_see_no_gap =>
        fifty_consumers_joining_from_the_earliest_held_event_see_no_gap_shm,
        fifty_consumers_joining_from_the_earliest_held_event_see_no_gap_file;
}
