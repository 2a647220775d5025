//! Processes killed with `SIGKILL` at random points: a producer mid-stream, an anonymous consumer
//! mid-stream, a consumer holding a lease or stopped inside a batch callback, a producer whose name is
//! then reclaimed, and endpoints in another PID namespace. Every survivor must lose nothing, the library
//! must notice each death promptly, and nothing may wait for ever. Every test runs on both backends; where
//! they differ (what a producer's clean drop leaves behind), the test says so.
//!
//! White-box checks read the producer's `published` count and consumer cursors from the file each ring
//! lives in (the one Linux keeps for a segment, `/dev/shm/NAME`, or the ring file itself), and detection
//! latencies compare `CLOCK_MONOTONIC` readings taken in different processes; PID namespaces are Linux's
//! too. So this file is Linux-only. Each ring is a [`TestRing`](disruptor_mp_suite::TestRing), which
//! removes whatever a killed producer left of it.
//!
//! Kill points come from a seeded generator whose seed is printed (`DMP_TEST_SEED` repeats a run); the
//! measured figures are printed too (`cargo test --test crash -- --nocapture` shows them;
//! `DMP_VERBOSE=1` adds each detection latency).
#![cfg(target_os = "linux")]

use disruptor_mp::{
    AttachError, ConsumeError, Consumer, CoordinationMode, CreateError, MappedFile, SharedMemory,
    StartPosition,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, on_both_backends, on_child_backend, read_until_error,
    BackgroundPublisher, CheckedEvent, ChildProcess, SegmentFile, SignalFile, StreamCheck,
    TestBackend, TestRng,
};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_SEGMENT";
const MODE: &str = "DMP_MODE";
const COUNT: &str = "DMP_COUNT";
const SEED: &str = "DMP_SEED";
const SIGNAL: &str = "DMP_SIGNAL";
const OFFSET: &str = "DMP_OFFSET";
const HOLD_AT: &str = "DMP_HOLD_AT";
const CONSUMER_ID: &str = "DMP_CONSUMER_ID";
const CONSUMERS: &str = "DMP_CONSUMERS";
const GO: &str = "DMP_GO";
const DONE: &str = "DMP_DONE";

/// Longest any single wait may take before a test calls it a failure.
const STALL: Duration = Duration::from_secs(10);
/// How long a child that should be killed waits for it before giving up.
const AWAIT_KILL: Duration = Duration::from_secs(60);
/// Bound on the time from a kill to its detection: the liveness interval is 100 ms, and a noisy, shared
/// two-core machine may stall a process for a good while on top.
const DETECTION_BOUND: Duration = Duration::from_secs(2);

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process on the machine, so readings taken by a
/// parent and its children can be subtracted.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "stream-producer" => on_child_backend(
            stream_producer::<SharedMemory>,
            stream_producer::<MappedFile>,
        ),
        "holding-producer" => on_child_backend(
            holding_producer::<SharedMemory>,
            holding_producer::<MappedFile>,
        ),
        "gone-consumer" => {
            on_child_backend(gone_consumer::<SharedMemory>, gone_consumer::<MappedFile>)
        }
        "closed-consumer" => on_child_backend(
            closed_consumer::<SharedMemory>,
            closed_consumer::<MappedFile>,
        ),
        "victim" => on_child_backend(
            victim_consumer::<SharedMemory>,
            victim_consumer::<MappedFile>,
        ),
        "stalled-consumer" => on_child_backend(
            stalled_consumer::<SharedMemory>,
            stalled_consumer::<MappedFile>,
        ),
        "idle-consumer" => {
            on_child_backend(idle_consumer::<SharedMemory>, idle_consumer::<MappedFile>)
        }
        "try-build" => on_child_backend(try_build::<SharedMemory>, try_build::<MappedFile>),
        "joiner" => on_child_backend(joiner::<SharedMemory>, joiner::<MappedFile>),
        "reclaimer" => on_child_backend(reclaimer::<SharedMemory>, reclaimer::<MappedFile>),
        other => Err(format!("unknown role {other}")),
    });
}

// ---------------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------------

fn attach<B: TestBackend>(name: &str) -> Result<Consumer<CheckedEvent, B>, String> {
    B::consumer::<CheckedEvent>(name)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| format!("attach: {e}"))
}

/// Publishes until killed, for two consumers that attach first: `single` plain publishes, `batch`
/// batches of random sizes (some larger than the ring), `burst` exactly `COUNT` events, then raises
/// `SIGNAL` and idles.
fn stream_producer<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mode: String = child_arg(MODE);
    let mut rng = TestRng::seeded(child_arg(SEED));
    let mut producer = B::producer::<CheckedEvent>(&name, 256)
        .with_coordination(CoordinationMode::WaitForConsumers {
            min_consumers: 2,
            timeout: STALL,
        })
        .build_producer()
        .map_err(|e| e.to_string())?;
    match mode.as_str() {
        "single" => loop {
            let sequence = producer.next_sequence();
            producer
                .publish(CheckedEvent::new(sequence))
                .map_err(|e| e.to_string())?;
        },
        "batch" => loop {
            let size = rng.between(1, 600) as usize;
            producer
                .publish_batch_with(size, |sequence, slot| *slot = CheckedEvent::new(sequence))
                .map_err(|e| e.to_string())?;
        },
        "burst" => {
            let count: u64 = child_arg(COUNT);
            for sequence in 0..count {
                producer
                    .publish_timeout(CheckedEvent::new(sequence), STALL)
                    .map_err(|e| e.to_string())?;
            }
            SignalFile::raise(&child_arg::<String>(SIGNAL), "published")
                .map_err(|e| e.to_string())?;
            std::thread::sleep(AWAIT_KILL);
            Err("the burst producer was not killed".to_string())
        }
        other => Err(format!("unknown mode {other}")),
    }
}

/// Waits for `CONSUMERS` consumers, publishes `COUNT` events, raises `SIGNAL` with its pid (as this
/// process sees it: namespace-local in a PID namespace), then waits to be killed.
fn holding_producer<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let count: u64 = child_arg(COUNT);
    let mut producer = B::producer::<CheckedEvent>(&name, 64)
        .with_coordination(CoordinationMode::WaitForConsumers {
            min_consumers: child_arg(CONSUMERS),
            timeout: STALL,
        })
        .build_producer()
        .map_err(|e| e.to_string())?;
    for sequence in 0..count {
        producer
            .publish_timeout(CheckedEvent::new(sequence), STALL)
            .map_err(|e| e.to_string())?;
    }
    SignalFile::raise(
        &child_arg::<String>(SIGNAL),
        &std::process::id().to_string(),
    )
    .map_err(|e| e.to_string())?;
    std::thread::sleep(AWAIT_KILL);
    Err("the holding producer was not killed".to_string())
}

/// Like [`read_until_error`], with non-blocking reads: `try_consume_batch`, yielding when empty.
fn poll_until_error<B: TestBackend>(
    consumer: &mut Consumer<CheckedEvent, B>,
    check: &mut StreamCheck,
) -> Result<ConsumeError, String> {
    let mut last_event = Instant::now();
    loop {
        match consumer.try_consume_batch(64, |event, sequence, _| check.observe(event, sequence)) {
            Ok(0) if last_event.elapsed() > STALL => {
                return Ok(ConsumeError::Timeout { timeout: STALL })
            }
            Ok(0) => std::thread::yield_now(),
            Ok(_) => {
                check.result()?;
                last_event = Instant::now();
            }
            Err(error) => return Ok(error),
        }
    }
}

/// Reads from sequence 0 (`MODE`: `waiting` reads or `polling` ones) until the producer is gone; reports
/// `first next gone_ns pid`, `gone_ns` being `CLOCK_MONOTONIC` when `ProducerGone` came.
fn gone_consumer<B: TestBackend>() -> Result<String, String> {
    let mut consumer = attach::<B>(&child_arg::<String>(SEGMENT))?;
    let mut check = StreamCheck::new(0);
    let terminal = match child_arg::<String>(MODE).as_str() {
        "waiting" => read_until_error(&mut consumer, &mut check, 64, STALL)?,
        "polling" => poll_until_error(&mut consumer, &mut check)?,
        other => return Err(format!("unknown mode {other}")),
    };
    let gone_ns = monotonic_ns();
    check.result()?;
    match terminal {
        ConsumeError::ProducerGone { pid } => Ok(format!(
            "{} {} {gone_ns} {pid}",
            check.first(),
            check.next()
        )),
        other => Err(format!("after {} events: {other}", check.count())),
    }
}

/// Reads until the ring closes, verifying events built with `OFFSET`; reports `first count checksum`.
fn closed_consumer<B: TestBackend>() -> Result<String, String> {
    let mut consumer = attach::<B>(&child_arg::<String>(SEGMENT))?;
    let mut check = StreamCheck::with_offset(consumer.next_sequence(), child_arg(OFFSET));
    match read_until_error(&mut consumer, &mut check, 256, STALL)? {
        ConsumeError::Closed => Ok(check.report()),
        other => Err(format!("after {} events: {other}", check.count())),
    }
}

/// Reads from sequence 0 (`MODE`: `batch` or `single`), verifying, until killed.
fn victim_consumer<B: TestBackend>() -> Result<String, String> {
    let mut consumer = attach::<B>(&child_arg::<String>(SEGMENT))?;
    let mut check = StreamCheck::new(0);
    let batch = child_arg::<String>(MODE) == "batch";
    loop {
        let read = if batch {
            consumer
                .consume_batch_timeout(32, STALL, |event, sequence, _| {
                    check.observe(event, sequence)
                })
                .map(drop)
        } else {
            consumer
                .consume_next_timeout(STALL)
                .map(|(event, sequence)| check.observe(&event, sequence))
        };
        read.map_err(|e| format!("the victim ended with {e} after {}", check.count()))?;
        check.result()?;
    }
}

/// Reads from sequence 0 up to `HOLD_AT`, then stops while it holds events it has not committed —
/// `MODE` `lease`: an `EventLease` on `HOLD_AT`; `try-batch` / `timeout-batch`: inside the callback of a
/// batch starting at `HOLD_AT` — raises `SIGNAL` with `committed slot`, and waits to be killed.
fn stalled_consumer<B: TestBackend>() -> Result<String, String> {
    let mut consumer = attach::<B>(&child_arg::<String>(SEGMENT))?;
    let signal: String = child_arg(SIGNAL);
    let hold_at: u64 = child_arg(HOLD_AT);
    let mode: String = child_arg(MODE);
    let slot = consumer.slot_index();
    let mut check = StreamCheck::new(0);
    while consumer.next_sequence() < hold_at {
        let room = (hold_at - consumer.next_sequence()).min(16) as usize;
        consumer
            .consume_batch_timeout(room, STALL, |event, sequence, _| {
                check.observe(event, sequence)
            })
            .map_err(|e| e.to_string())?;
        check.result()?;
    }
    let stop = |committed: u64| -> Result<String, String> {
        SignalFile::raise(&signal, &format!("{committed} {slot}")).map_err(|e| e.to_string())?;
        std::thread::sleep(AWAIT_KILL);
        Err(format!("the {mode} consumer was not killed"))
    };
    if mode == "lease" {
        let lease = consumer
            .consume_next_leased_timeout(STALL)
            .map_err(|e| e.to_string())?;
        check.observe(&lease, lease.sequence());
        check.result()?;
        return stop(lease.sequence());
    }
    // Let events pile up, so that the batch holds several and the callback stops in its middle.
    std::thread::sleep(Duration::from_millis(20));
    let first = consumer.next_sequence();
    let mut outcome = None;
    let mut handle = |event: &CheckedEvent, sequence: u64, end_of_batch: bool| {
        check.observe(event, sequence);
        if outcome.is_none() && (sequence == first + 2 || end_of_batch) {
            outcome = Some(check.result().and_then(|()| stop(first)));
        }
    };
    match mode.as_str() {
        "try-batch" => {
            let deadline = Instant::now() + STALL;
            while consumer
                .try_consume_batch(usize::MAX, &mut handle)
                .map_err(|e| e.to_string())?
                == 0
            {
                if Instant::now() > deadline {
                    return Err("no event to stop in".to_string());
                }
                std::thread::yield_now();
            }
        }
        "timeout-batch" => {
            consumer
                .consume_batch_timeout(usize::MAX, STALL, &mut handle)
                .map_err(|e| e.to_string())?;
        }
        other => return Err(format!("unknown mode {other}")),
    }
    outcome.unwrap_or_else(|| Err("the callback never stopped".to_string()))
}

/// Attaches as `CONSUMER_ID`, raises `SIGNAL` with its pid (namespace-local in a PID namespace), reads
/// nothing, and waits to be killed.
fn idle_consumer<B: TestBackend>() -> Result<String, String> {
    let _consumer = B::consumer::<CheckedEvent>(&child_arg::<String>(SEGMENT))
        .with_consumer_id(&child_arg::<String>(CONSUMER_ID))
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    SignalFile::raise(
        &child_arg::<String>(SIGNAL),
        &std::process::id().to_string(),
    )
    .map_err(|e| e.to_string())?;
    std::thread::sleep(AWAIT_KILL);
    Err("the idle consumer was not killed".to_string())
}

/// Tries to create the ring `SEGMENT`, whose producer is alive elsewhere; reports the pid the refusal
/// names.
fn try_build<B: TestBackend>() -> Result<String, String> {
    match B::producer::<CheckedEvent>(&child_arg::<String>(SEGMENT), 64).build_producer() {
        Err(CreateError::AlreadyExists {
            producer_pid: Some(pid),
            ..
        }) => Ok(pid.to_string()),
        Err(other) => Err(format!("expected AlreadyExists with a pid, got: {other}")),
        Ok(_) => Err("a second producer was built on a live producer's name".to_string()),
    }
}

/// Joins the running ring and reads from wherever it starts, verifying, until killed.
fn joiner<B: TestBackend>() -> Result<String, String> {
    let mut consumer = attach::<B>(&child_arg::<String>(SEGMENT))?;
    let mut check = StreamCheck::new(consumer.next_sequence());
    let error = read_until_error(&mut consumer, &mut check, 64, STALL)?;
    Err(format!(
        "the joiner ended with {error} after {}",
        check.count()
    ))
}

fn wait_for_file(path: &str) -> Result<(), String> {
    let deadline = Instant::now() + STALL;
    while !std::path::Path::new(path).exists() {
        if Instant::now() > deadline {
            return Err(format!("{path} did not appear within {STALL:?}"));
        }
        std::thread::sleep(Duration::from_micros(20));
    }
    Ok(())
}

/// Raises `SIGNAL` when ready, then, as soon as `GO` exists, races to build a producer on `SEGMENT`.
/// A winner holds its producer until `DONE` exists, then checks that its ring is the one the name leads
/// to (a consumer attaching by name lands on it: same epoch), and reports `won PID REACHABLE` (1 or 0);
/// a loser reports `lost PID` with the pid its `AlreadyExists` names (0 for none).
fn reclaimer<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    SignalFile::raise(&child_arg::<String>(SIGNAL), "ready").map_err(|e| e.to_string())?;
    wait_for_file(&child_arg::<String>(GO))?;
    match B::producer::<CheckedEvent>(&name, 64).build_producer() {
        Ok(producer) => {
            wait_for_file(&child_arg::<String>(DONE))?;
            let reachable = B::consumer::<CheckedEvent>(&name)
                .build_consumer()
                .is_ok_and(|consumer| consumer.epoch() == producer.epoch());
            drop(producer);
            Ok(format!(
                "won {} {}",
                std::process::id(),
                u8::from(reachable)
            ))
        }
        Err(CreateError::AlreadyExists { producer_pid, .. }) => {
            Ok(format!("lost {}", producer_pid.unwrap_or(0)))
        }
        Err(other) => Err(format!("neither won nor refused: {other}")),
    }
}

// ---------------------------------------------------------------------------------------------------
// Parent-side helpers
// ---------------------------------------------------------------------------------------------------

/// Starts a child running `role` on backend `B`.
fn spawn<B: TestBackend>(role: &str, env: &[(&str, String)]) -> ChildProcess {
    let env: Vec<(&str, String)> = env.iter().cloned().chain([B::env()]).collect();
    ChildProcess::spawn_test_role(role, &env).unwrap_or_else(|e| panic!("spawn {role}: {e}"))
}

/// The report of a child that must succeed, split into fields; panics with `context` if it failed.
fn report_fields(child: ChildProcess, context: &str) -> Vec<u64> {
    let report = child
        .expect_success(STALL + Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{context}: {e}"));
    report
        .split_whitespace()
        .map(|field| {
            field
                .parse()
                .unwrap_or_else(|_| panic!("{context}: report {report:?}"))
        })
        .collect()
}

/// Panics if `child` is no longer running: it failed a check and exited (its stderr, inherited, says
/// why) before the test could kill it.
fn assert_running(child: &mut ChildProcess, context: &str) {
    assert!(
        child.is_running(),
        "{context}: the child exited before it was killed (its error is above)"
    );
}

fn millis(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------

on_both_backends! {
    segment_file_offsets_hold_the_live_counters =>
        segment_file_offsets_hold_the_live_counters_shm,
        segment_file_offsets_hold_the_live_counters_file;
    a_producer_killed_mid_stream_leaves_each_consumer_an_exact_prefix_then_producer_gone =>
        a_producer_killed_mid_stream_leaves_each_consumer_an_exact_prefix_then_producer_gone_shm,
        a_producer_killed_mid_stream_leaves_each_consumer_an_exact_prefix_then_producer_gone_file;
    a_killed_anonymous_consumer_stops_gating_and_its_siblings_lose_nothing =>
        a_killed_anonymous_consumer_stops_gating_and_its_siblings_lose_nothing_shm,
        a_killed_anonymous_consumer_stops_gating_and_its_siblings_lose_nothing_file;
    a_consumer_killed_while_holding_a_lease_stops_gating =>
        a_consumer_killed_while_holding_a_lease_stops_gating_shm,
        a_consumer_killed_while_holding_a_lease_stops_gating_file;
    a_consumer_killed_inside_a_try_consume_batch_callback_stops_gating =>
        a_consumer_killed_inside_a_try_consume_batch_callback_stops_gating_shm,
        a_consumer_killed_inside_a_try_consume_batch_callback_stops_gating_file;
    a_consumer_killed_inside_a_consume_batch_timeout_callback_stops_gating =>
        a_consumer_killed_inside_a_consume_batch_timeout_callback_stops_gating_shm,
        a_consumer_killed_inside_a_consume_batch_timeout_callback_stops_gating_file;
    a_restarted_producer_reclaims_the_name_of_a_killed_one =>
        a_restarted_producer_reclaims_the_name_of_a_killed_one_shm,
        a_restarted_producer_reclaims_the_name_of_a_killed_one_file;
    consumers_killed_at_any_point_of_their_life_never_leak_a_slot_or_stall_the_producer =>
        consumers_killed_at_any_point_of_their_life_never_leak_a_slot_or_stall_the_producer_shm,
        consumers_killed_at_any_point_of_their_life_never_leak_a_slot_or_stall_the_producer_file;
    a_dead_consumer_swept_by_a_new_consumers_attach_counts_as_evicted =>
        a_dead_consumer_swept_by_a_new_consumers_attach_counts_as_evicted_shm,
        a_dead_consumer_swept_by_a_new_consumers_attach_counts_as_evicted_file;
    concurrent_reclaimers_of_a_dead_producers_name_each_win_or_are_refused =>
        concurrent_reclaimers_of_a_dead_producers_name_each_win_or_are_refused_shm,
        concurrent_reclaimers_of_a_dead_producers_name_each_win_or_are_refused_file;
    concurrent_reclaimers_of_a_dead_producers_name_elect_exactly_one =>
        concurrent_reclaimers_of_a_dead_producers_name_elect_exactly_one_shm,
        concurrent_reclaimers_of_a_dead_producers_name_elect_exactly_one_file;
    losers_of_a_reclaim_race_are_told_the_winners_pid =>
        losers_of_a_reclaim_race_are_told_the_winners_pid_shm,
        losers_of_a_reclaim_race_are_told_the_winners_pid_file;
    a_consumer_killed_in_another_pid_namespace_is_evicted =>
        a_consumer_killed_in_another_pid_namespace_is_evicted_shm,
        a_consumer_killed_in_another_pid_namespace_is_evicted_file;
    a_producer_killed_in_another_pid_namespace_is_reported_gone =>
        a_producer_killed_in_another_pid_namespace_is_reported_gone_shm,
        a_producer_killed_in_another_pid_namespace_is_reported_gone_file;
}

/// Guards the white-box reads below: the offsets `SegmentFile` reads at hold the live counters.
fn segment_file_offsets_hold_the_live_counters<B: TestBackend>() {
    let ring = B::new_ring("offsets");
    let name = ring.id().to_string();
    let segment = SegmentFile::at(ring.path());
    let mut producer = B::producer::<CheckedEvent>(&name, 64)
        .build_producer()
        .unwrap();
    let mut a = B::consumer::<CheckedEvent>(&name).build_consumer().unwrap();
    let mut b = B::consumer::<CheckedEvent>(&name).build_consumer().unwrap();
    for sequence in 0..10 {
        producer.publish(CheckedEvent::new(sequence)).unwrap();
    }
    for _ in 0..3 {
        a.try_consume_next().unwrap().unwrap();
    }
    for _ in 0..7 {
        b.try_consume_next().unwrap().unwrap();
    }
    assert_eq!(segment.published().unwrap(), 10);
    assert_eq!(segment.consumer_cursor(a.slot_index()).unwrap(), 3);
    assert_eq!(segment.consumer_cursor(b.slot_index()).unwrap(), 7);
    assert_ne!(a.slot_index(), b.slot_index());
}

/// A producer killed at random points (plain publishes, batches of random sizes, or idle after a burst):
/// both consumers (one blocking, one polling) read an exact, gap-free, intact prefix from sequence 0, up
/// to the last event the producer published as its segment records it, then get `ProducerGone` naming it,
/// after the kill and within the bound.
fn a_producer_killed_mid_stream_leaves_each_consumer_an_exact_prefix_then_producer_gone<
    B: TestBackend,
>() {
    const RUNS: usize = 24;
    let mut rng = TestRng::from_env_or_clock("producer kills");
    let mut latencies = Vec::new();
    for run in 0..RUNS {
        let mode = ["single", "batch", "burst"][run % 3];
        // The first burst kills the producer before it published anything.
        let kill_at = if run == 2 {
            0
        } else {
            rng.log_uniform(100_000)
        };
        let signal = SignalFile::new("burst");
        let context = format!("run {run} ({mode}, kill at {kill_at})");
        let ring = B::new_ring("kill-producer");
        let name = ring.id().to_string();
        let segment = SegmentFile::at(ring.path());
        let mut producer = spawn::<B>(
            "stream-producer",
            &[
                (SEGMENT, name.clone()),
                (MODE, mode.to_string()),
                (COUNT, kill_at.to_string()),
                (SEED, rng.next_u64().to_string()),
                (SIGNAL, signal.path()),
            ],
        );
        let consumers: Vec<ChildProcess> = ["waiting", "polling"]
            .iter()
            .map(|style| {
                spawn::<B>(
                    "gone-consumer",
                    &[(SEGMENT, name.clone()), (MODE, style.to_string())],
                )
            })
            .collect();
        segment
            .wait_until(STALL, "published reaches the kill point", |s| {
                Ok(s.published()? >= kill_at)
            })
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        if mode == "burst" {
            // Both consumers attached, caught up and waiting: the kill finds them idle.
            signal
                .wait_for(&mut producer, STALL)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            segment
                .wait_until(STALL, "both consumers caught up", |s| {
                    Ok(s.consumer_cursor(0)? == kill_at && s.consumer_cursor(1)? == kill_at)
                })
                .unwrap_or_else(|e| panic!("{context}: {e}"));
        }
        assert_running(&mut producer, &context);
        let producer_pid = u64::from(producer.id());
        let killed_ns = monotonic_ns();
        producer.kill();
        let published = segment.published().unwrap();
        if mode == "burst" {
            assert_eq!(published, kill_at, "{context}");
        }
        for (consumer, style) in consumers.into_iter().zip(["waiting", "polling"]) {
            let context = format!("{context}, {style} consumer");
            let fields = report_fields(consumer, &context);
            let [first, next, gone_ns, pid] = fields[..] else {
                panic!("{context}: report {fields:?}");
            };
            assert_eq!(first, 0, "{context}: did not start at 0");
            assert_eq!(
                next, published,
                "{context}: read up to {next}, the producer published {published}"
            );
            assert_eq!(
                pid, producer_pid,
                "{context}: ProducerGone names another pid"
            );
            assert!(
                gone_ns >= killed_ns,
                "{context}: ProducerGone came {} ms before the kill",
                millis(killed_ns - gone_ns)
            );
            let latency = gone_ns - killed_ns;
            assert!(
                Duration::from_nanos(latency) < DETECTION_BOUND,
                "{context}: ProducerGone came {} ms after the kill",
                millis(latency)
            );
            latencies.push(latency);
            if std::env::var_os("DMP_VERBOSE").is_some() {
                println!("{context}: {:.1} ms", millis(latency));
            }
        }
    }
    latencies.sort_unstable();
    println!(
        "producer kill → ProducerGone over {} consumers: median {:.1} ms, max {:.1} ms",
        latencies.len(),
        millis(latencies[latencies.len() / 2]),
        millis(*latencies.last().unwrap())
    );
}

/// An anonymous consumer killed at a random point of the stream (it may still be reading the last ring
/// of events) while the producer publishes with plain `publish` on a 64-event ring: the dead consumer
/// gates it, yet it goes on (it evicts exactly that consumer), and the one or two other consumers
/// receive every event, gap-free and intact. (A producer blocked on the consumer when it dies: see the
/// lease and batch tests below.)
fn a_killed_anonymous_consumer_stops_gating_and_its_siblings_lose_nothing<B: TestBackend>() {
    const RUNS: usize = 20;
    let mut rng = TestRng::from_env_or_clock("consumer kills");
    let mut max_stall = Duration::ZERO;
    for run in 0..RUNS {
        let consumers = rng.between(2, 4) as usize;
        let victim = rng.between(0, consumers as u64) as usize;
        let style = ["batch", "single"][rng.between(0, 2) as usize];
        let kill_at = rng.between(0, 20_000);
        let events = kill_at + rng.between(1_000, 3_000);
        let context = format!(
            "run {run} ({consumers} consumers, victim {victim} reading {style}, kill at {kill_at} of \
             {events})"
        );
        let ring = B::new_ring("kill-consumer");
        let name = ring.id().to_string();
        let producer = B::producer::<CheckedEvent>(&name, 64)
            .build_producer()
            .unwrap();
        let mut children: Vec<ChildProcess> = (0..consumers)
            .map(|i| {
                if i == victim {
                    spawn::<B>(
                        "victim",
                        &[(SEGMENT, name.clone()), (MODE, style.to_string())],
                    )
                } else {
                    spawn::<B>(
                        "closed-consumer",
                        &[(SEGMENT, name.clone()), (OFFSET, "0".to_string())],
                    )
                }
            })
            .collect();
        producer.wait_for_consumers(consumers, STALL).unwrap();
        // The producer pauses at the kill point, so that it is sure to have more than a ring left to
        // publish past the dead consumer (on a busy machine it could otherwise finish before the kill).
        let publisher = BackgroundPublisher::spawn_with_pause(producer, events, kill_at);
        publisher
            .wait_progress(kill_at, STALL)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_running(&mut children[victim], &context);
        children[victim].kill();
        publisher.resume();
        let done = publisher.finish(STALL);
        assert_eq!(done.producer.evicted_consumers(), 1, "{context}");
        assert_eq!(done.producer.stats().evicted_consumers, 1, "{context}");
        assert_eq!(
            done.producer.attached_consumers(),
            consumers - 1,
            "{context}"
        );
        max_stall = max_stall.max(done.max_stall);
        drop(done.producer);
        let expected = StreamCheck::expected_report(0, events, 0);
        for (i, child) in children.into_iter().enumerate() {
            if i != victim {
                let report = child
                    .expect_success(STALL)
                    .unwrap_or_else(|e| panic!("{context}: {e}"));
                assert_eq!(report.trim(), expected, "{context}: consumer {i}");
            }
        }
    }
    println!(
        "longest single publish (the producer stalled on a dead consumer): {:.1} ms",
        max_stall.as_secs_f64() * 1e3
    );
    assert!(max_stall < DETECTION_BOUND, "{max_stall:?}");
}

/// A consumer that stops while it holds uncommitted events (`mode`: a lease, or inside a batch
/// callback) gates the producer exactly one ring past its committed cursor, and, being alive, is not
/// evicted; once killed, the producer goes on and its sibling loses nothing.
fn kill_a_consumer_that_holds_events<B: TestBackend>(mode: &str) {
    const CAPACITY: u64 = 64;
    const EVENTS: u64 = 3_000;
    let mut rng = TestRng::from_env_or_clock(&format!("stalled {mode}"));
    let hold_at = rng.between(100, 1_000);
    let ring = B::new_ring("hold");
    let name = ring.id().to_string();
    let segment = SegmentFile::at(ring.path());
    let signal = SignalFile::new("hold");
    let producer = B::producer::<CheckedEvent>(&name, CAPACITY as usize)
        .build_producer()
        .unwrap();
    let mut victim = spawn::<B>(
        "stalled-consumer",
        &[
            (SEGMENT, name.clone()),
            (SIGNAL, signal.path()),
            (MODE, mode.to_string()),
            (HOLD_AT, hold_at.to_string()),
        ],
    );
    let sibling = spawn::<B>(
        "closed-consumer",
        &[(SEGMENT, name.clone()), (OFFSET, "0".to_string())],
    );
    producer.wait_for_consumers(2, STALL).unwrap();
    let publisher = BackgroundPublisher::spawn(producer, EVENTS);
    let message = signal.wait_for(&mut victim, STALL).unwrap();
    let [committed, slot] = message
        .split_whitespace()
        .map(|f| f.parse::<u64>().unwrap())
        .collect::<Vec<_>>()[..]
    else {
        panic!("signal {message:?}")
    };
    assert_eq!(committed, hold_at);
    publisher
        .wait_progress(committed + CAPACITY, STALL)
        .unwrap();
    // Several liveness intervals: a live consumer is never evicted for being slow.
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(publisher.progress(), committed + CAPACITY);
    assert_eq!(segment.published().unwrap(), committed + CAPACITY);
    assert_eq!(segment.consumer_cursor(slot as usize).unwrap(), committed);
    assert_running(&mut victim, mode);
    let killed = Instant::now();
    victim.kill();
    let done = publisher.finish(STALL);
    let resumed_after = killed.elapsed();
    assert_eq!(done.producer.evicted_consumers(), 1);
    drop(done.producer);
    let report = sibling.expect_success(STALL).unwrap();
    assert_eq!(report.trim(), StreamCheck::expected_report(0, EVENTS, 0));
    println!(
        "{mode}: the producer finished {:.1} ms after the kill",
        resumed_after.as_secs_f64() * 1e3
    );
}

fn a_consumer_killed_while_holding_a_lease_stops_gating<B: TestBackend>() {
    kill_a_consumer_that_holds_events::<B>("lease");
}

fn a_consumer_killed_inside_a_try_consume_batch_callback_stops_gating<B: TestBackend>() {
    kill_a_consumer_that_holds_events::<B>("try-batch");
}

fn a_consumer_killed_inside_a_consume_batch_timeout_callback_stops_gating<B: TestBackend>() {
    kill_a_consumer_that_holds_events::<B>("timeout-batch");
}

/// A producer is killed with consumers attached. While it lives, a second `build_producer` is refused
/// naming its pid; once dead, attaching is refused with `ProducerGone`, and a new `build_producer`
/// reclaims the name with a new epoch. The old consumers (one here, one in a child) read the old
/// events, never the new ring's, then get `ProducerGone`; a consumer started between the death and the
/// restart waits for the new ring and receives every event of it; a second producer in another process
/// is refused with this process's pid.
fn a_restarted_producer_reclaims_the_name_of_a_killed_one<B: TestBackend>() {
    const OLD_EVENTS: u64 = 40;
    const NEW_EVENTS: u64 = 5_000;
    const NEW_OFFSET: u64 = 1 << 40;
    let ring = B::new_ring("restart");
    let name = ring.id().to_string();
    let segment = SegmentFile::at(ring.path());
    let signal = SignalFile::new("restart");
    let mut old_producer = spawn::<B>(
        "holding-producer",
        &[
            (SEGMENT, name.clone()),
            (COUNT, OLD_EVENTS.to_string()),
            (CONSUMERS, "2".to_string()),
            (SIGNAL, signal.path()),
        ],
    );
    let old_child = spawn::<B>(
        "gone-consumer",
        &[(SEGMENT, name.clone()), (MODE, "waiting".to_string())],
    );
    let mut old_here = attach::<B>(&name).unwrap();
    signal.wait_for(&mut old_producer, STALL).unwrap();
    let old_pid = old_producer.id();
    assert_eq!(old_here.producer_pid(), old_pid);

    match B::producer::<CheckedEvent>(&name, 64).build_producer() {
        Err(CreateError::AlreadyExists {
            producer_pid: Some(pid),
            ..
        }) => assert_eq!(pid, old_pid),
        Err(other) => panic!("expected AlreadyExists naming {old_pid}, got: {other}"),
        Ok(_) => panic!("a second producer was built while the first is alive"),
    }

    old_producer.kill();
    let wait = Duration::from_millis(300);
    match B::consumer::<CheckedEvent>(&name)
        .with_attach_timeout(wait)
        .build_consumer()
    {
        Err(AttachError::ProducerGone { pid, waited, .. }) => {
            assert_eq!(pid, old_pid);
            assert!(waited >= wait, "{waited:?}");
        }
        Err(other) => panic!("expected ProducerGone, got: {other}"),
        Ok(_) => panic!("attached to a ring whose producer is dead"),
    }

    // A consumer that starts now waits (its attach timeout) for a new producer, then joins its ring.
    let mut new_consumer = spawn::<B>(
        "closed-consumer",
        &[(SEGMENT, name.clone()), (OFFSET, NEW_OFFSET.to_string())],
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_running(&mut new_consumer, "consumer waiting for a new producer");

    let mut new_producer = B::producer::<CheckedEvent>(&name, 64)
        .build_producer()
        .expect("reclaiming the name of a dead producer");
    assert_ne!(new_producer.epoch(), old_here.epoch());
    new_producer.wait_for_consumers(1, STALL).unwrap();
    let refused = spawn::<B>("try-build", &[(SEGMENT, name.clone())])
        .expect_success(STALL)
        .unwrap();
    assert_eq!(refused.trim(), std::process::id().to_string());
    for sequence in 0..NEW_EVENTS {
        new_producer
            .publish_timeout(CheckedEvent::new(NEW_OFFSET + sequence), STALL)
            .unwrap();
    }

    // The old consumers: the old ring's events, then ProducerGone, though a new producer is alive.
    let mut check = StreamCheck::new(0);
    match read_until_error(&mut old_here, &mut check, 16, STALL) {
        Ok(ConsumeError::ProducerGone { pid }) => assert_eq!(pid, old_pid),
        other => panic!(
            "old consumer here: {other:?} after {} events",
            check.count()
        ),
    }
    assert_eq!(check.next(), OLD_EVENTS);
    let fields = report_fields(old_child, "old consumer child");
    assert_eq!(
        (fields[0], fields[1], fields[3]),
        (0, OLD_EVENTS, u64::from(old_pid))
    );

    let epoch = new_producer.epoch();
    drop(new_producer);
    let report = new_consumer.expect_success(STALL).unwrap();
    assert_eq!(
        report.trim(),
        StreamCheck::expected_report(0, NEW_EVENTS, NEW_OFFSET)
    );
    if B::KIND == <MappedFile as TestBackend>::KIND {
        // A ring file outlives its producer's clean drop: it stays, closed, holding the new ring's last
        // lap, readable from the earliest event it holds.
        assert!(
            segment.exists(),
            "the new producer's clean drop removed its ring file"
        );
        let mut replay = B::consumer::<CheckedEvent>(&name)
            .with_start_position(StartPosition::Earliest)
            .build_consumer()
            .unwrap();
        assert_eq!(
            replay.epoch(),
            epoch,
            "the file left is not the new producer's ring"
        );
        let mut check = StreamCheck::with_offset(NEW_EVENTS - 64, NEW_OFFSET);
        match read_until_error(&mut replay, &mut check, 16, STALL) {
            Ok(ConsumeError::Closed) => {}
            other => panic!(
                "replaying the closed ring file: {other:?} after {} events",
                check.count()
            ),
        }
        check.result().unwrap();
        assert_eq!(check.next(), NEW_EVENTS);
    } else {
        // A shared-memory segment's name goes with its producer's clean drop.
        assert!(
            !segment.exists(),
            "the new producer's clean drop left the name"
        );
    }
}

/// Consumers killed at random points of their life — before they attach, while they attach (a slot
/// claimed or joining), or while they read — under a producer publishing with plain `publish`, with a
/// table of only four slots: the producer never stalls for good, no slot leaks (the table still takes
/// three new consumers), and the consumer that stays receives every event.
fn consumers_killed_at_any_point_of_their_life_never_leak_a_slot_or_stall_the_producer<
    B: TestBackend,
>() {
    const SLOTS: usize = 4;
    const KILLS: usize = 30;
    let mut rng = TestRng::from_env_or_clock("lifetime kills");
    let ring = B::new_ring("lifetime");
    let name = ring.id().to_string();
    let producer = B::producer::<CheckedEvent>(&name, 64)
        .with_consumer_slots(SLOTS as u32)
        .build_producer()
        .unwrap();
    let survivor = spawn::<B>(
        "closed-consumer",
        &[(SEGMENT, name.clone()), (OFFSET, "0".to_string())],
    );
    producer.wait_for_consumers(1, STALL).unwrap();
    let publisher = BackgroundPublisher::spawn(producer, u64::MAX);
    for kill in 0..KILLS {
        let mut victim = spawn::<B>("joiner", &[(SEGMENT, name.clone())]);
        std::thread::sleep(Duration::from_micros(rng.between(0, 8_000)));
        assert_running(&mut victim, &format!("victim {kill}"));
        victim.kill();
    }
    // More than a ring past every dead consumer's cursor: the producer must get past each of them.
    let at = publisher.progress();
    publisher.wait_progress(at + 1_000, STALL).unwrap();
    publisher.stop();
    let done = publisher.finish(STALL);
    let mut producer = done.producer;
    producer.evict_dead_consumers();
    assert_eq!(producer.attached_consumers(), 1);
    let extra: Vec<_> = (0..SLOTS - 1)
        .map(|k| {
            B::consumer::<CheckedEvent>(&name)
                .build_consumer()
                .unwrap_or_else(|e| panic!("extra consumer {k}: {e}"))
        })
        .collect();
    assert_eq!(producer.attached_consumers(), SLOTS);
    drop(extra);
    println!(
        "{KILLS} consumers killed at random points: {} events, the producer evicted {}, longest \
         publish {:.1} ms",
        done.events,
        producer.evicted_consumers(),
        done.max_stall.as_secs_f64() * 1e3
    );
    drop(producer);
    let report = survivor.expect_success(STALL).unwrap();
    assert_eq!(
        report.trim(),
        StreamCheck::expected_report(0, done.events, 0)
    );
}

/// A dead consumer's slot taken over by a new consumer's attach (the table was full, so the attach
/// swept it) stops gating the producer because its process died: the producer's `evicted_consumers`
/// (documented as "consumers the producer stopped waiting for because their process died, over its
/// life") should count it. Fails: `claim_slot` sweeps with `registry::sweep_dead`, whose count only
/// the producer's own sweeps (`ProducerRing::sweep_dead_consumers`) add to `evicted_consumers`.
fn a_dead_consumer_swept_by_a_new_consumers_attach_counts_as_evicted<B: TestBackend>() {
    let ring = B::new_ring("attach-sweep");
    let name = ring.id().to_string();
    let signal = SignalFile::new("attach-sweep");
    let mut producer = B::producer::<CheckedEvent>(&name, 64)
        .with_consumer_slots(1)
        .build_producer()
        .unwrap();
    let mut dead = spawn::<B>(
        "idle-consumer",
        &[
            (SEGMENT, name.clone()),
            (SIGNAL, signal.path()),
            (CONSUMER_ID, "doomed".to_string()),
        ],
    );
    signal.wait_for(&mut dead, STALL).unwrap();
    dead.kill();
    // The table's only slot belongs to the dead consumer: this attach sweeps it, then takes it.
    let _replacement = B::consumer::<CheckedEvent>(&name).build_consumer().unwrap();
    assert_eq!(producer.evict_dead_consumers(), 0, "nothing left to evict");
    assert_eq!(
        (
            producer.evicted_consumers(),
            producer.stats().evicted_consumers
        ),
        (1, 1),
        "the dead consumer's eviction was not counted"
    );
}

/// How one round of [`reclaim_race`] ended.
#[derive(Debug)]
struct ReclaimRound {
    /// The killed producer whose name was raced for.
    dead_pid: u32,
    /// Each winner's pid, and whether its ring is the one the name leads to.
    winners: Vec<(u32, bool)>,
    /// The pid each loser's `AlreadyExists` named (0: none).
    losers: Vec<u32>,
}

/// Kills a producer, then has `reclaimers` processes call `build_producer` on its name at the same
/// instant; `rounds` times. Every reclaimer must either win or be refused with `AlreadyExists` (the
/// children fail otherwise), and nothing may hang.
fn reclaim_race<B: TestBackend>(rounds: usize, reclaimers: usize) -> Vec<ReclaimRound> {
    (0..rounds)
        .map(|_| {
            let ring = B::new_ring("reclaim-race");
            let name = ring.id().to_string();
            let signal = SignalFile::new("reclaim-race");
            let mut dead = spawn::<B>(
                "holding-producer",
                &[
                    (SEGMENT, name.clone()),
                    (COUNT, "0".to_string()),
                    (CONSUMERS, "0".to_string()),
                    (SIGNAL, signal.path()),
                ],
            );
            signal.wait_for(&mut dead, STALL).unwrap();
            let dead_pid = dead.id();
            dead.kill();

            let (go, done) = (SignalFile::new("go"), SignalFile::new("done"));
            let ready: Vec<SignalFile> =
                (0..reclaimers).map(|_| SignalFile::new("ready")).collect();
            let mut children: Vec<ChildProcess> = ready
                .iter()
                .map(|ready| {
                    spawn::<B>(
                        "reclaimer",
                        &[
                            (SEGMENT, name.clone()),
                            (SIGNAL, ready.path()),
                            (GO, go.path()),
                            (DONE, done.path()),
                        ],
                    )
                })
                .collect();
            for (child, ready) in children.iter_mut().zip(&ready) {
                ready.wait_for(child, STALL).unwrap();
            }
            SignalFile::raise(&go.path(), "go").unwrap();
            // Losers return at once; a winner holds its producer until told (a second winner too).
            let deadline = Instant::now() + Duration::from_secs(1);
            while children
                .iter_mut()
                .map(|child| child.is_running())
                .filter(|&running| running)
                .count()
                > 1
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            SignalFile::raise(&done.path(), "done").unwrap();
            let mut round = ReclaimRound {
                dead_pid,
                winners: Vec::new(),
                losers: Vec::new(),
            };
            for child in children {
                let report = child.expect_success(STALL).unwrap();
                let fields: Vec<&str> = report.split_whitespace().collect();
                match fields[..] {
                    ["won", pid, reachable] => {
                        round.winners.push((pid.parse().unwrap(), reachable == "1"))
                    }
                    ["lost", pid] => round.losers.push(pid.parse().unwrap()),
                    _ => panic!("report {report:?}"),
                }
            }
            round
        })
        .collect()
}

/// Several processes reclaiming a dead producer's name at once: each either wins or is refused with
/// `AlreadyExists`, none hangs or fails otherwise, and the name ends up leading to a winner's ring.
fn concurrent_reclaimers_of_a_dead_producers_name_each_win_or_are_refused<B: TestBackend>() {
    for (round, outcome) in reclaim_race::<B>(4, 4).iter().enumerate() {
        assert!(
            outcome.winners.iter().any(|&(_, reachable)| reachable),
            "round {round}: no winner's ring is reachable by name: {outcome:?}"
        );
    }
}

/// DESIGN §11: between reclaimers, "only one O_EXCL create wins". Fails in most runs: two reclaimers
/// both get a producer, and one of them holds a ring whose name the other removed, so no consumer can
/// ever reach it (its `reachable` is false).
///
/// How (`segment.rs`, `claim_name` / `reclaim_stale`): reclaimers A and B both find the name taken by
/// the dead producer's object O and both open O. A takes O's free producer lock, unlinks the name,
/// returns (closing O, which drops the lock) and creates its new object X under the name. B, which
/// opened O before A's unlink, now finds O's lock free, takes it, and unlinks *the name* — which by
/// now leads to X. B then creates Y and wins as well; A goes on with X, nameless. `reclaim_stale`
/// checks one object and unlinks whatever the name leads to when it calls `shm_unlink`.
fn concurrent_reclaimers_of_a_dead_producers_name_elect_exactly_one<B: TestBackend>() {
    let rounds = reclaim_race::<B>(30, 8);
    let doubles: Vec<_> = rounds
        .iter()
        .enumerate()
        .filter(|(_, round)| round.winners.len() != 1)
        .collect();
    assert!(doubles.is_empty(), "{doubles:#?}");
}

/// DESIGN §11: "the loser reports AlreadyExists with the winner's pid". Fails reliably: losers are
/// told the *dead* producer's pid, as if it were alive (a loser that opened the dead object while
/// another reclaimer held its producer lock to unlink it reads the lock as held, and the dead
/// producer's recorded pid), or no pid at all (e.g. a loser that looked at the winner's new object
/// before the winner recorded its pid there).
fn losers_of_a_reclaim_race_are_told_the_winners_pid<B: TestBackend>() {
    let rounds = reclaim_race::<B>(10, 5);
    let misnamed: Vec<String> = rounds
        .iter()
        .enumerate()
        .flat_map(|(i, round)| {
            let winners: Vec<u32> = round.winners.iter().map(|&(pid, _)| pid).collect();
            round
                .losers
                .iter()
                .filter(move |pid| !winners.contains(pid))
                .map(move |pid| {
                    format!(
                        "round {i}: told pid {pid}; winners {:?}, dead producer {}",
                        round.winners, round.dead_pid
                    )
                })
        })
        .collect();
    assert!(misnamed.is_empty(), "{misnamed:#?}");
}

// ---------------------------------------------------------------------------------------------------
// PID namespaces
// ---------------------------------------------------------------------------------------------------

/// Runs the wrapped command as PID 1 of a new PID namespace; killed with the wrapper.
const NEW_PID_NAMESPACE: &[&str] = &["unshare", "--pid", "--fork", "--kill-child"];

/// Whether this process may create PID namespaces (root, and a kernel and container that allow it).
fn pid_namespaces() -> Result<(), String> {
    let output = std::process::Command::new(NEW_PID_NAMESPACE[0])
        .args(&NEW_PID_NAMESPACE[1..])
        .arg("true")
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "unshare --pid failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The pid, in this namespace, of the child of `parent` (the process `unshare --fork` started).
fn only_child_of(parent: u32) -> Result<u32, String> {
    let deadline = Instant::now() + STALL;
    loop {
        for entry in std::fs::read_dir("/proc")
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // The command name is in parentheses and may hold spaces: fields resume after the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|field| field.parse::<u32>().ok());
            if ppid == Some(parent) {
                return Ok(pid);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("process {parent} has no child"));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// SIGKILLs the process that `wrapper` (an `unshare --fork`) runs in its PID namespace, then reaps the
/// wrapper, which exits once its child died.
fn kill_namespaced(wrapper: ChildProcess) -> u32 {
    let inner = only_child_of(wrapper.id()).unwrap();
    // SAFETY: kill has no memory-safety preconditions; `inner` is the child of our own child `wrapper`,
    // which has not reaped it (it waits for it), so the pid cannot have been reused.
    let rc = unsafe { libc::kill(inner as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0, "kill({inner}): {}", std::io::Error::last_os_error());
    let _ = wrapper.wait_timeout(STALL).unwrap();
    inner
}

/// A consumer in another PID namespace records its namespace-local pid (the segment says so through
/// `ConsumerIdInUse`); alive, it gates and is not evicted; killed, the producer evicts it and goes on.
/// (Its recorded pid, 1, is the init of this namespace, alive for ever: only a kernel-backed liveness
/// check can tell it died.)
fn a_consumer_killed_in_another_pid_namespace_is_evicted<B: TestBackend>() {
    if let Err(reason) = pid_namespaces() {
        println!("SKIPPED: {reason}");
        return;
    }
    const CAPACITY: u64 = 64;
    let ring = B::new_ring("ns-consumer");
    let name = ring.id().to_string();
    let signal = SignalFile::new("ns-consumer");
    let mut producer = B::producer::<CheckedEvent>(&name, CAPACITY as usize)
        .build_producer()
        .unwrap();
    let mut wrapper = ChildProcess::spawn_test_role_wrapped(
        NEW_PID_NAMESPACE,
        "idle-consumer",
        &[
            (SEGMENT, name.clone()),
            (SIGNAL, signal.path()),
            (CONSUMER_ID, "ns-reader".to_string()),
            B::env(),
        ],
    )
    .unwrap();
    let namespace_pid: u32 = signal
        .wait_for(&mut wrapper, STALL)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(producer.attached_consumers(), 1);
    match B::consumer::<CheckedEvent>(&name)
        .with_consumer_id("ns-reader")
        .build_consumer()
    {
        Err(AttachError::ConsumerIdInUse { pid, .. }) => assert_eq!(pid, namespace_pid),
        Err(other) => panic!("expected ConsumerIdInUse, got: {other}"),
        Ok(_) => panic!("two live consumers share the id ns-reader"),
    }
    for sequence in 0..CAPACITY {
        producer.try_publish(CheckedEvent::new(sequence)).unwrap();
    }
    assert!(producer.try_publish(CheckedEvent::new(CAPACITY)).is_err());
    assert_eq!(
        producer.evict_dead_consumers(),
        0,
        "evicted a live consumer"
    );

    let outer_pid = kill_namespaced(wrapper);
    assert_ne!(outer_pid, namespace_pid);
    for sequence in CAPACITY..CAPACITY * 4 {
        producer
            .publish_timeout(CheckedEvent::new(sequence), STALL)
            .unwrap();
    }
    assert_eq!(producer.evicted_consumers(), 1);
    assert_eq!(producer.attached_consumers(), 0);
    println!("consumer in a PID namespace: pid {namespace_pid} there, {outer_pid} here; evicted");
}

/// A producer in another PID namespace, killed: a consumer here reads everything it published, then
/// gets `ProducerGone` naming its namespace-local pid.
fn a_producer_killed_in_another_pid_namespace_is_reported_gone<B: TestBackend>() {
    if let Err(reason) = pid_namespaces() {
        println!("SKIPPED: {reason}");
        return;
    }
    const EVENTS: u64 = 1_000;
    let ring = B::new_ring("ns-producer");
    let name = ring.id().to_string();
    let signal = SignalFile::new("ns-producer");
    let mut wrapper = ChildProcess::spawn_test_role_wrapped(
        NEW_PID_NAMESPACE,
        "holding-producer",
        &[
            (SEGMENT, name.clone()),
            (COUNT, EVENTS.to_string()),
            (CONSUMERS, "1".to_string()),
            (SIGNAL, signal.path()),
            B::env(),
        ],
    )
    .unwrap();
    let mut consumer = attach::<B>(&name).unwrap();
    // The producer publishes into a 64-event ring: read as it goes.
    let mut check = StreamCheck::new(0);
    while check.next() < EVENTS {
        consumer
            .consume_batch_timeout(64, STALL, |event, sequence, _| {
                check.observe(event, sequence)
            })
            .unwrap();
        check.result().unwrap();
    }
    let namespace_pid: u32 = signal
        .wait_for(&mut wrapper, STALL)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(consumer.producer_pid(), namespace_pid);
    let outer_pid = kill_namespaced(wrapper);
    assert_ne!(outer_pid, namespace_pid);
    let killed = Instant::now();
    match read_until_error(&mut consumer, &mut check, 64, STALL) {
        Ok(ConsumeError::ProducerGone { pid }) => assert_eq!(pid, namespace_pid),
        other => panic!("{other:?} after {} events", check.count()),
    }
    let latency = killed.elapsed();
    assert_eq!(check.next(), EVENTS);
    assert!(latency < DETECTION_BOUND, "{latency:?}");
    println!(
        "producer in a PID namespace: pid {namespace_pid} there, {outer_pid} here; ProducerGone \
         {:.1} ms after its wrapper was reaped",
        latency.as_secs_f64() * 1e3
    );
}
