//! Consumers that join while the producer publishes at full speed are never lapped: from their first event
//! on, every event arrives intact, in order, without a gap.

use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, PublishError};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, unique_segment_name, CheckedEvent, ChildProcess,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";
const READ: &str = "DMP_READ";
const STALL: Duration = Duration::from_secs(30);

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "joiner" => join_and_verify(),
        other => Err(format!("unknown role {other}")),
    });
}

/// Attaches to the running ring and reads `READ` events, verifying that they follow its start without a
/// gap; reports the start sequence.
fn join_and_verify() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let to_read: u64 = child_arg(READ);
    let mut consumer = attach_shared_consumer::<CheckedEvent>(&name)
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
                        "joined at {start}: expected {next}, slot {sequence} holds event {}",
                        event.sequence
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

#[test]
fn fifty_consumers_joining_under_full_speed_publishing_see_no_gap() {
    const JOINERS: usize = 50;
    let name = unique_segment_name("late-join");
    let mut producer = build_shared_single_producer::<CheckedEvent>(&name, 1024)
        .build_producer()
        .unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let publisher = scope.spawn(|| {
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match producer.publish_timeout(CheckedEvent::new(sequence), STALL) {
                    Ok(_) => sequence += 1,
                    Err(PublishError::Timeout { .. }) => {
                        return Err(format!("producer stalled at {sequence}"))
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(sequence)
        });
        let result = std::panic::catch_unwind(|| {
            let mut starts = Vec::new();
            // Two joiners at a time, so joins also overlap with another consumer's reading and leaving.
            for _ in 0..JOINERS / 2 {
                let pair: Vec<ChildProcess> = (0..2)
                    .map(|_| {
                        ChildProcess::spawn_test_role(
                            "joiner",
                            &[(SEGMENT, name.clone()), (READ, "20000".to_string())],
                        )
                        .expect("spawn joiner")
                    })
                    .collect();
                for joiner in pair {
                    let report = joiner.expect_success(Duration::from_secs(60)).unwrap();
                    starts.push(report.trim().parse::<u64>().unwrap());
                }
            }
            starts
        });
        stop.store(true, Ordering::Relaxed);
        let published = publisher.join().unwrap().unwrap();
        let starts = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        assert_eq!(starts.len(), JOINERS);
        // The joiners really joined a moving ring, not one at rest.
        assert!(starts.windows(2).filter(|w| w[1] > w[0]).count() >= JOINERS / 2);
        assert!(published > *starts.iter().max().unwrap());
    });
}
