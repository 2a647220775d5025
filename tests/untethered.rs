//! Untethered consumers (`ConsumerBuilder::untethered`): they never gate the producer, report exactly how
//! many events they lost when lapped, and never return a torn or stale event.

use disruptor_mp::observability::{ConsumerState, RingSnapshot};
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, AttachError, ConsumeError, MappedFile,
    SharedMemory, StartPosition,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, on_both_backends, on_child_backend, unique_segment_name,
    CheckedEvent, ChildProcess, SignalFile, TestBackend,
};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_SEGMENT";
const READY: &str = "DMP_READY";

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(60);

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "untethered_reader" => on_child_backend(
            read_untethered::<SharedMemory>,
            read_untethered::<MappedFile>,
        ),
        other => Err(format!("unknown role {other}")),
    });
}

/// Reads untethered until the ring closes, checking every event it is given; reports
/// `first next received missed lapped_reports`.
fn read_untethered<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut reader = B::consumer::<CheckedEvent>(&name)
        .with_consumer_id("audit")
        .with_attach_timeout(STALL)
        .untethered()
        .build_consumer()
        .map_err(|e| e.to_string())?;
    SignalFile::raise(&child_arg::<String>(READY), "attached").map_err(|e| e.to_string())?;
    let first = reader.next_sequence();
    let (mut expected, mut received, mut missed, mut lapped) = (first, 0u64, 0u64, 0u64);
    loop {
        match reader.consume_next_timeout(STALL) {
            Ok((event, sequence)) => {
                if sequence != expected || event.sequence != sequence || !event.is_intact() {
                    return Err(format!(
                        "expected sequence {expected}, got {sequence} holding {event:?} (intact: {})",
                        event.is_intact()
                    ));
                }
                expected += 1;
                received += 1;
            }
            Err(ConsumeError::Lapped {
                missed: lost,
                resumed_at,
            }) => {
                if resumed_at != expected + lost {
                    return Err(format!(
                        "lapped at {expected}: missed {lost} but resumed at {resumed_at}"
                    ));
                }
                expected = resumed_at;
                missed += lost;
                lapped += 1;
            }
            Err(ConsumeError::Closed) => break,
            Err(error) => return Err(format!("at {expected}: {error}")),
        }
    }
    Ok(format!("{first} {expected} {received} {missed} {lapped}"))
}

/// A reader stopped with SIGSTOP while the producer publishes at full speed for `run`: the producer never
/// waits for room, and the reader, once continued, accounts for every sequence exactly (read intact, or
/// reported missed).
fn stopped_reader_never_slows_the_producer<B: TestBackend>(run: Duration) {
    let ring = B::new_ring("untethered-stop");
    let mut producer = B::producer::<CheckedEvent>(ring.id(), 4096)
        .build_producer()
        .unwrap();
    let ready = SignalFile::new("untethered-stop");
    let mut child = ChildProcess::spawn_test_role(
        "untethered_reader",
        &[
            B::env(),
            (SEGMENT, ring.id().to_string()),
            (READY, ready.path()),
        ],
    )
    .unwrap();
    ready.wait_for(&mut child, STALL).unwrap();
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let (stop_at, continue_at) = (run / 4, run / 2);
    let (mut stopped, mut continued) = (false, false);
    let mut sequence = 0u64;
    let mut rate_before = 0.0;
    let mut published_at_stop = 0;
    let mut rate_while_stopped = 0.0;
    while started.elapsed() < run {
        // Never a wait: an untethered reader does not gate, so the ring always has room.
        producer.try_publish(CheckedEvent::new(sequence)).unwrap();
        sequence += 1;
        if sequence % 1024 == 0 {
            let elapsed = started.elapsed();
            if !stopped && elapsed >= stop_at {
                rate_before = sequence as f64 / elapsed.as_secs_f64();
                published_at_stop = sequence;
                signal(pid, libc::SIGSTOP);
                stopped = true;
            } else if stopped && !continued && elapsed >= continue_at {
                rate_while_stopped =
                    (sequence - published_at_stop) as f64 / (elapsed - stop_at).as_secs_f64();
                signal(pid, libc::SIGCONT);
                continued = true;
            }
        }
    }
    assert_eq!(producer.stats().ring_full, 0);
    drop(producer);
    let report = child.expect_success(STALL).unwrap();
    let fields: Vec<u64> = report.split(' ').map(|f| f.parse().unwrap()).collect();
    let [first, next, received, missed, lapped] = fields[..] else {
        panic!("report {report}")
    };
    println!(
        "{}: published {sequence} in {run:?}: {:.1} M/s before the stop, {:.1} M/s while the reader was \
         stopped; the reader received {received}, missed {missed} in {lapped} laps",
        B::KIND,
        rate_before / 1e6,
        rate_while_stopped / 1e6
    );
    assert_eq!(next, sequence, "the reader did not reach the end");
    assert_eq!(first + received + missed, sequence);
    assert!(
        lapped >= 1 && missed > 0,
        "the stopped reader was never lapped"
    );
    assert!(received > 0);
}

/// Sends `signal` to our own child `pid`.
fn signal(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is a child this test started and has not
    // reaped, so the pid cannot have been reused.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

/// Ten seconds of full-speed publishing on shared memory; three on a file, to keep the suite short.
fn full_speed_run<B: TestBackend>() {
    let seconds = if B::KIND == "shm" { 10 } else { 3 };
    stopped_reader_never_slows_the_producer::<B>(Duration::from_secs(seconds));
}

on_both_backends! {
    full_speed_run => stopped_untethered_reader_under_full_speed_publishing_shm,
        stopped_untethered_reader_under_full_speed_publishing_file;
}

#[test]
fn a_reader_within_three_quarters_of_a_ring_is_never_lapped_and_one_further_is_told_exactly() {
    let name = unique_segment_name("untethered-window");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let mut reader = attach_shared_consumer::<u64>(&name)
        .untethered()
        .build_consumer()
        .unwrap();
    assert_eq!(producer.gating_consumers(), 0);
    // 48 events: the newest is 47 past the oldest unread, within three quarters of the ring.
    for i in 0..48 {
        producer.try_publish(i).unwrap();
    }
    for expected in 0..48 {
        assert_eq!(
            reader.try_consume_next().unwrap(),
            Some((expected, expected))
        );
    }
    assert_eq!(reader.try_consume_next().unwrap(), None);
    // A whole ring and more: lapped, told once, then reading resumes at the oldest valid event.
    for i in 48..1000 {
        producer.try_publish(i).unwrap();
    }
    let resumed_at = match reader.try_consume_next() {
        Err(ConsumeError::Lapped { missed, resumed_at }) => {
            assert_eq!(resumed_at, 48 + missed);
            assert!((1000 - 64..1000).contains(&resumed_at), "{resumed_at}");
            resumed_at
        }
        other => panic!("{other:?}"),
    };
    for expected in resumed_at..1000 {
        assert_eq!(
            reader.try_consume_next().unwrap(),
            Some((expected, expected))
        );
    }
    assert_eq!(reader.try_consume_next().unwrap(), None);
    drop(producer);
    assert_eq!(reader.try_consume_next(), Err(ConsumeError::Closed));
}

#[test]
fn start_positions_a_refused_pipeline_stage_and_inspection() {
    let name = unique_segment_name("untethered-start");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    for i in 0..100 {
        producer.try_publish(i).unwrap();
    }
    let mut earliest = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("audit")
        .with_start_position(StartPosition::Earliest)
        .untethered()
        .build_consumer()
        .unwrap();
    let first = earliest.next_sequence();
    assert!((36..100).contains(&first), "{first}");
    assert_eq!(earliest.try_consume_next().unwrap(), Some((first, first)));
    assert!(matches!(
        attach_shared_consumer::<u64>(&name)
            .with_start_position(StartPosition::Sequence(3))
            .untethered()
            .build_consumer(),
        Err(AttachError::SequenceNotHeld { requested: 3, .. })
    ));
    assert!(matches!(
        attach_shared_consumer::<u64>(&name)
            .after(["audit"])
            .untethered()
            .build_consumer(),
        Err(AttachError::UntetheredStage { .. })
    ));
    let snapshot = RingSnapshot::open_shared_memory(&name).unwrap();
    let audit = snapshot
        .consumers
        .iter()
        .find(|consumer| consumer.id == "audit")
        .unwrap();
    assert_eq!(audit.state, ConsumerState::Untethered);
    assert!(!audit.gating);
    assert_eq!(producer.gating_consumers(), 0);
    drop(earliest);
    assert_eq!(
        RingSnapshot::open_shared_memory(&name)
            .unwrap()
            .consumers
            .len(),
        0
    );
}
