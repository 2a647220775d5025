//! Durable named consumers (`discover_consumer_with_prefix`) killed with `SIGKILL` and restarted while the
//! producer publishes: each incarnation resumes exactly at the cursor its predecessor committed, as the
//! segment records it; the slot keeps gating while nobody owns it; the sibling never killed receives
//! everything from sequence 0; and two live consumers never share the id.
//!
//! Cursors are read from the file Linux keeps for the segment (`/dev/shm/NAME`), so this file is
//! Linux-only.
#![cfg(target_os = "linux")]

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, AttachError, ConsumeError,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, read_until_error, unique_segment_name, BackgroundPublisher,
    CheckedEvent, ChildProcess, SegmentFile, SignalFile, StreamCheck, TestRng,
};
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";
const CONSUMER_ID: &str = "DMP_CONSUMER_ID";
const SIGNAL: &str = "DMP_SIGNAL";
const PACED: &str = "DMP_PACED";

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(10);

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "named" => named_consumer(),
        other => Err(format!("unknown role {other}")),
    });
}

/// Attaches as `CONSUMER_ID`, reads its first event and raises `SIGNAL` (unless empty) with
/// `slot first sequence event_sequence intact`; then reads on, verifying (`PACED`: slowly, so that it is killed
/// mid-stream), until the ring closes. Reports `first count checksum`.
fn named_consumer() -> Result<String, String> {
    let id: String = child_arg(CONSUMER_ID);
    let signal: String = child_arg(SIGNAL);
    let paced = child_arg::<String>(PACED) == "yes";
    let mut consumer = attach_shared_consumer::<CheckedEvent>(&child_arg::<String>(SEGMENT))
        .with_consumer_id(&id)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| format!("attach as {id}: {e}"))?;
    let first = consumer.next_sequence();
    let (event, sequence) = consumer
        .consume_next_timeout(STALL)
        .map_err(|e| format!("{id}: first read: {e}"))?;
    if !signal.is_empty() {
        let message = format!(
            "{} {first} {sequence} {} {}",
            consumer.slot_index(),
            event.sequence,
            u8::from(event.is_intact())
        );
        SignalFile::raise(&signal, &message).map_err(|e| e.to_string())?;
    }
    let mut check = StreamCheck::new(first);
    check.observe(&event, sequence);
    check.result()?;
    let terminal = if paced {
        loop {
            match consumer.consume_batch_timeout(8, STALL, |event, sequence, _| {
                check.observe(event, sequence)
            }) {
                Ok(_) => check.result()?,
                Err(error) => break error,
            }
            std::thread::sleep(Duration::from_micros(250));
        }
    } else {
        read_until_error(&mut consumer, &mut check, 256, STALL)?
    };
    match terminal {
        ConsumeError::Closed => Ok(check.report()),
        other => Err(format!("{id} after {} events: {other}", check.count())),
    }
}

fn spawn_named(name: &str, id: &str, signal: &str, paced: bool) -> ChildProcess {
    ChildProcess::spawn_test_role(
        "named",
        &[
            (SEGMENT, name.to_string()),
            (CONSUMER_ID, id.to_string()),
            (SIGNAL, signal.to_string()),
            (PACED, if paced { "yes" } else { "no" }.to_string()),
        ],
    )
    .unwrap()
}

#[test]
fn a_killed_named_consumer_resumes_exactly_at_its_committed_cursor() {
    const CAPACITY: u64 = 64;
    const EVENTS: u64 = 20_000;
    const KILLS: usize = 10;
    let mut rng = TestRng::from_env_or_clock("named consumer kills");
    let name = unique_segment_name("named");
    let segment = SegmentFile::new(&name);
    let signal = SignalFile::new("named");
    let producer = build_shared_single_producer::<CheckedEvent>(&name, CAPACITY as usize)
        .discover_consumer_with_prefix(2, "n")
        .build_producer()
        .unwrap();
    let sibling = spawn_named(&name, "n_1", "", false);
    let publisher = BackgroundPublisher::spawn(producer, EVENTS);

    // Where the next incarnation of n_0 must start: 0 at first (reserved from the first event), then
    // the cursor its killed predecessor committed.
    let mut resume_at = 0;
    let mut resumed = Vec::new();
    let mut final_incarnation = None;
    for kill in 0..=KILLS {
        let last = kill == KILLS;
        let mut incarnation = spawn_named(&name, "n_0", &signal.path(), !last);
        let message = signal.wait_for(&mut incarnation, STALL).unwrap();
        let [slot, first, sequence, event_sequence, intact] = message
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap())
            .collect::<Vec<_>>()[..]
        else {
            panic!("signal {message:?}")
        };
        let context = format!("incarnation {kill}");
        assert_eq!(
            slot, 0,
            "{context}: n_0 took another slot than its reserved one"
        );
        assert_eq!(
            first, resume_at,
            "{context}: resumed at {first}, its predecessor committed {resume_at}"
        );
        assert_eq!(
            sequence, first,
            "{context}: first read skipped to {sequence}"
        );
        assert_eq!(event_sequence, first, "{context}: first event is stale");
        assert_eq!(intact, 1, "{context}: first event is torn");
        resumed.push(first);

        // A second live consumer under the same id is refused, naming the holder.
        match attach_shared_consumer::<CheckedEvent>(&name)
            .with_consumer_id("n_0")
            .build_consumer()
        {
            Err(AttachError::ConsumerIdInUse { id, pid, .. }) => {
                assert_eq!((id.as_str(), pid), ("n_0", incarnation.id()), "{context}")
            }
            Err(other) => panic!("{context}: expected ConsumerIdInUse, got: {other}"),
            Ok(_) => panic!("{context}: two live consumers share the id n_0"),
        }
        if last {
            final_incarnation = Some((incarnation, first));
            break;
        }

        std::thread::sleep(Duration::from_micros(rng.between(0, 30_000)));
        assert!(
            incarnation.is_running(),
            "{context} exited before it was killed (its error is above)"
        );
        incarnation.kill();
        resume_at = segment.consumer_cursor(0).unwrap();
        assert!(
            resume_at >= first,
            "{context}: cursor went back to {resume_at}"
        );
        // The dead consumer's slot keeps gating at its cursor: the producer stops exactly a ring past it.
        segment
            .wait_until(STALL, "the producer reaches a ring past n_0", |s| {
                Ok(s.published()? == resume_at + CAPACITY)
            })
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        if kill == 0 {
            // And it stays there for several liveness intervals: a durable consumer is not evicted.
            std::thread::sleep(Duration::from_millis(300));
            assert_eq!(segment.published().unwrap(), resume_at + CAPACITY);
            assert_eq!(segment.consumer_cursor(0).unwrap(), resume_at);
        }
    }
    let done = publisher.finish(STALL);
    assert_eq!(done.producer.evicted_consumers(), 0);
    drop(done.producer);
    let report = sibling.expect_success(STALL).unwrap();
    assert_eq!(report.trim(), StreamCheck::expected_report(0, EVENTS, 0));
    let (incarnation, first) = final_incarnation.unwrap();
    let report = incarnation.expect_success(STALL).unwrap();
    assert_eq!(
        report.trim(),
        StreamCheck::expected_report(first, EVENTS - first, 0)
    );
    println!("n_0 incarnations started at {resumed:?}");
    assert!(
        resumed.windows(2).filter(|w| w[1] > w[0]).count() >= KILLS / 2,
        "n_0 was mostly killed before it read anything: {resumed:?}"
    );
}
