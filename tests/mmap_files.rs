//! File-backed rings as files: what a producer leaves behind when it exits or is killed, what a new
//! producer does with it, and what the library refuses to open or create (a symbolic link, a file that is
//! not a ring, a directory, a live producer's file, a directory other users could write to), leaving
//! whatever it refused untouched.
//!
//! Rings live in a private directory per test ([`TestBackend::new_ring`]), removed when the test ends;
//! producers and consumers that must be other processes are children of the test binary, each wait on
//! them bounded.

use disruptor_mp::{
    attach_mmap_consumer, build_mmap_single_producer, AttachError, ConsumeError, CoordinationMode,
    CreateError, MappedFile, MmapConsumer, PathRefusal, StartPosition,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, CheckedEvent, ChildProcess, SignalFile, StreamCheck,
    TestBackend, TestRing,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PATH: &str = "DMP_PATH";
const COUNT: &str = "DMP_COUNT";
const OFFSET: &str = "DMP_OFFSET";
const MODE: &str = "DMP_MODE";
const START: &str = "DMP_START";
const CONSUMERS: &str = "DMP_CONSUMERS";
const SIGNAL: &str = "DMP_SIGNAL";

/// Longest any single wait may take before a test calls it a failure.
const STALL: Duration = Duration::from_secs(10);
/// How long a child that should be killed waits for it before giving up.
const AWAIT_KILL: Duration = Duration::from_secs(60);
/// Bound on the time from a kill to its detection: the liveness interval is 100 ms; a noisy, shared
/// two-core machine may stall a process for a good while on top.
const DETECTION_BOUND: Duration = Duration::from_secs(2);

/// The capacity of the rings the tests leave behind, and how many events they publish into them: more
/// than two laps, so that the ring holds only its last `CAPACITY` events.
const CAPACITY: u64 = 1024;
const PUBLISHED: u64 = 3000;
/// Payload offset of the events of a second ring under the same path, so that they cannot be mistaken
/// for the first ring's (see [`StreamCheck::with_offset`]).
const SECOND_RING: u64 = 1_000_000;

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "file-producer" => file_producer(),
        "file-consumer" => file_consumer(),
        other => Err(format!("unknown role {other}")),
    });
}

// ---------------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------------

/// Creates the ring at `PATH` (capacity [`CAPACITY`]), waits for `CONSUMERS` consumers (if any),
/// publishes `COUNT` events built with `OFFSET`; then, `MODE` `exit`: drops the producer (closing the
/// ring) and reports its pid; `hold`: raises `SIGNAL` with its pid and waits to be killed.
fn file_producer() -> Result<String, String> {
    let count: u64 = child_arg(COUNT);
    let offset: u64 = child_arg(OFFSET);
    let consumers: usize = child_arg(CONSUMERS);
    let coordination = match consumers {
        0 => CoordinationMode::Immediate,
        n => CoordinationMode::WaitForConsumers {
            min_consumers: n,
            timeout: STALL,
        },
    };
    let mut producer =
        build_mmap_single_producer::<CheckedEvent>(child_arg::<String>(PATH), CAPACITY as usize)
            .with_coordination(coordination)
            .build_producer()
            .map_err(|e| format!("build: {e}"))?;
    for sequence in 0..count {
        producer
            .publish_timeout(CheckedEvent::new(offset + sequence), STALL)
            .map_err(|e| format!("publish {sequence}: {e}"))?;
    }
    let pid = std::process::id().to_string();
    match child_arg::<String>(MODE).as_str() {
        "exit" => {
            drop(producer);
            Ok(pid)
        }
        "hold" => {
            SignalFile::raise(&child_arg::<String>(SIGNAL), &pid).map_err(|e| e.to_string())?;
            std::thread::sleep(AWAIT_KILL);
            Err("the holding producer was not killed".to_string())
        }
        other => Err(format!("unknown mode {other}")),
    }
}

/// Attaches to the ring at `PATH` from `START` (`earliest`, `latest` or a sequence) and reads, verifying
/// events built with `OFFSET`, until a read fails. Reports `read FIRST COUNT CHECKSUM END` (`END`:
/// `closed`, or `gone PID`), or `not-held REQUESTED OLDEST NEXT` if the attach was refused with
/// `SequenceNotHeld`.
fn file_consumer() -> Result<String, String> {
    let start = match child_arg::<String>(START).as_str() {
        "earliest" => StartPosition::Earliest,
        "latest" => StartPosition::Latest,
        sequence => StartPosition::Sequence(
            sequence
                .parse()
                .map_err(|_| format!("bad start {sequence:?}"))?,
        ),
    };
    let consumer = attach_mmap_consumer::<CheckedEvent>(child_arg::<String>(PATH))
        .with_start_position(start)
        .with_attach_timeout(STALL)
        .build_consumer();
    let mut consumer = match consumer {
        Ok(consumer) => consumer,
        Err(AttachError::SequenceNotHeld {
            requested,
            oldest_held,
            next,
            ..
        }) => return Ok(format!("not-held {requested} {oldest_held} {next}")),
        Err(other) => return Err(format!("attach from {start:?}: {other}")),
    };
    let mut check = StreamCheck::with_offset(consumer.next_sequence(), child_arg(OFFSET));
    let end = read_to_end(&mut consumer, &mut check)?;
    let end = match end {
        ConsumeError::Closed => "closed".to_string(),
        ConsumeError::ProducerGone { pid } => format!("gone {pid}"),
        other => return Err(format!("after {} events: {other}", check.count())),
    };
    Ok(format!("read {} {end}", check.report()))
}

/// Reads `consumer` one event at a time, verifying each with `check`, until a read fails; returns that
/// error.
fn read_to_end(
    consumer: &mut MmapConsumer<CheckedEvent>,
    check: &mut StreamCheck,
) -> Result<ConsumeError, String> {
    loop {
        match consumer.consume_next_timeout(STALL) {
            Ok((event, sequence)) => {
                check.observe(&event, sequence);
                check.result()?;
            }
            Err(error) => return Ok(error),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Parent-side helpers
// ---------------------------------------------------------------------------------------------------

/// A fresh ring path in a private directory (removed when the [`TestRing`] drops).
fn new_ring(label: &str) -> (TestRing, PathBuf) {
    let ring = <MappedFile as TestBackend>::new_ring(label);
    let path = PathBuf::from(ring.id());
    (ring, path)
}

fn spawn(role: &str, env: &[(&str, String)]) -> ChildProcess {
    ChildProcess::spawn_test_role(role, env).unwrap_or_else(|e| panic!("spawn {role}: {e}"))
}

/// Runs a producer child that publishes `count` events built with `offset` into a new ring at `path`
/// and exits cleanly; returns its pid.
fn produce_and_exit(path: &Path, count: u64, offset: u64) -> u32 {
    let child = spawn(
        "file-producer",
        &[
            (PATH, path.display().to_string()),
            (COUNT, count.to_string()),
            (OFFSET, offset.to_string()),
            (CONSUMERS, "0".to_string()),
            (MODE, "exit".to_string()),
        ],
    );
    child.expect_success(STALL).unwrap().trim().parse().unwrap()
}

/// Starts a consumer child reading the ring at `path` from `start` (see [`file_consumer`]).
fn spawn_consumer(path: &Path, start: &str, offset: u64) -> ChildProcess {
    spawn(
        "file-consumer",
        &[
            (PATH, path.display().to_string()),
            (START, start.to_string()),
            (OFFSET, offset.to_string()),
        ],
    )
}

/// Runs a consumer child to its end and returns its report.
fn consume(path: &Path, start: &str, offset: u64) -> String {
    spawn_consumer(path, start, offset)
        .expect_success(STALL + Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("consumer from {start}: {e}"))
}

/// The report of a consumer that read exactly `count` events from `first`, built with `offset`, then
/// found the ring closed.
fn read_then_closed(first: u64, count: u64, offset: u64) -> String {
    format!(
        "read {} closed",
        StreamCheck::expected_report(first, count, offset)
    )
}

/// The file's permission bits.
fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Attaches to `path` at once (no attach timeout) and returns the error.
fn attach_error(path: &Path) -> AttachError {
    match attach_mmap_consumer::<CheckedEvent>(path).build_consumer() {
        Ok(_) => panic!("attached to {}", path.display()),
        Err(error) => error,
    }
}

/// Tries to create a ring at `path` and returns the error.
fn create_error(path: &Path) -> CreateError {
    match build_mmap_single_producer::<CheckedEvent>(path, 64).build_producer() {
        Ok(_) => panic!("created a ring at {}", path.display()),
        Err(error) => error,
    }
}

/// The names in `dir`, sorted: to check that a refused create left no temporary file behind.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------

/// A ring whose producer (another process) published 3000 events into 1024 slots and exited cleanly stays
/// on disk, closed: a new consumer process reading from `Earliest` gets exactly the last 1024 events,
/// intact and in order, then `Closed`. A new producer then reclaims the path, and a consumer of the new
/// ring, from `Earliest`, sees only the new ring's events.
#[test]
fn a_file_left_by_an_exited_producer_is_read_back_from_earliest_then_reclaimed() {
    let (_ring, path) = new_ring("left-behind");
    let pid = produce_and_exit(&path, PUBLISHED, 0);
    assert!(
        path.is_file(),
        "the ring file did not stay after its producer exited"
    );
    assert_ne!(pid, std::process::id());

    let oldest = PUBLISHED - CAPACITY;
    assert_eq!(
        consume(&path, "earliest", 0),
        read_then_closed(oldest, CAPACITY, 0),
        "replay from Earliest"
    );
    // Reading does not change the file: a second replay reads the same.
    assert_eq!(
        consume(&path, "earliest", 0),
        read_then_closed(oldest, CAPACITY, 0),
        "second replay from Earliest"
    );

    // A new producer reclaims the path of the closed ring.
    let mut producer = build_mmap_single_producer::<CheckedEvent>(&path, CAPACITY as usize)
        .build_producer()
        .unwrap_or_else(|e| panic!("reclaiming the closed ring: {e}"));
    for sequence in 0..10 {
        producer
            .publish(CheckedEvent::new(SECOND_RING + sequence))
            .unwrap();
    }
    // A consumer joining the live new ring from Earliest sees only new events (the ten already published
    // or some of them, then the rest), whatever it starts at.
    let live = spawn_consumer(&path, "earliest", SECOND_RING);
    producer.wait_for_consumers(1, STALL).unwrap();
    for sequence in 10..20 {
        producer
            .publish_timeout(CheckedEvent::new(SECOND_RING + sequence), STALL)
            .unwrap();
    }
    drop(producer);
    let report = live.expect_success(STALL).unwrap();
    let first: u64 = report.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(first <= 10, "the live consumer started at {first}");
    assert_eq!(report, read_then_closed(first, 20 - first, SECOND_RING));
    println!("a consumer joining the live new ring from Earliest started at {first}");
    // Closed again: Earliest is now all of the new ring, and nothing of the old one.
    assert_eq!(
        consume(&path, "earliest", SECOND_RING),
        read_then_closed(0, 20, SECOND_RING),
        "replay of the new ring"
    );
}

/// `StartPosition::Sequence` on a closed file ring, in other processes: a held sequence is where reading
/// starts; the next one to be published is held too (and the ring is then at its end); one the producer
/// has overwritten, or one past the end, is refused naming what the ring holds.
#[test]
fn a_start_sequence_on_a_closed_file_ring_starts_there_or_is_refused() {
    let (_ring, path) = new_ring("start-sequence");
    produce_and_exit(&path, PUBLISHED, 0);
    let oldest = PUBLISHED - CAPACITY;
    assert_eq!(oldest, 1976);
    assert_eq!(
        consume(&path, "2500", 0),
        read_then_closed(2500, PUBLISHED - 2500, 0)
    );
    assert_eq!(
        consume(&path, &oldest.to_string(), 0),
        read_then_closed(oldest, CAPACITY, 0)
    );
    assert_eq!(
        consume(&path, &PUBLISHED.to_string(), 0),
        read_then_closed(PUBLISHED, 0, 0)
    );
    assert_eq!(
        consume(&path, "100", 0),
        format!("not-held 100 {oldest} {PUBLISHED}")
    );
    assert_eq!(
        consume(&path, &(oldest - 1).to_string(), 0),
        format!("not-held {} {oldest} {PUBLISHED}", oldest - 1)
    );
    assert_eq!(
        consume(&path, &(PUBLISHED + 1).to_string(), 0),
        format!("not-held {} {oldest} {PUBLISHED}", PUBLISHED + 1)
    );
    // In this process too, with the error's fields.
    match attach_mmap_consumer::<CheckedEvent>(&path)
        .with_start_position(StartPosition::Sequence(100))
        .build_consumer()
    {
        Err(AttachError::SequenceNotHeld {
            requested: 100,
            oldest_held: 1976,
            next: 3000,
            ..
        }) => {}
        other => panic!("expected SequenceNotHeld {{ 100, 1976, 3000 }}, got {other:?}"),
    }
}

/// A symbolic link where the ring should be is neither followed by an attach nor by a create, and what it
/// points to is left exactly as it was (or, for a dangling link, not created).
#[test]
fn a_symlink_in_place_of_the_ring_is_refused_and_its_target_untouched() {
    let (_ring, path) = new_ring("symlink");
    let dir = path.parent().unwrap();
    let target = dir.join("target");
    let contents = b"not a ring: these bytes must survive\n".repeat(100);
    std::fs::write(&target, &contents).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();

    match attach_error(&path) {
        AttachError::PathRefused {
            reason: PathRefusal::Symlink,
            ..
        } => {}
        other => panic!("attach through a symlink: expected PathRefused(Symlink), got {other}"),
    }
    match create_error(&path) {
        CreateError::PathRefused {
            reason: PathRefusal::Symlink,
            ..
        } => {}
        other => panic!("create over a symlink: expected PathRefused(Symlink), got {other}"),
    }
    assert_eq!(
        std::fs::read(&target).unwrap(),
        contents,
        "the target changed"
    );
    assert!(std::fs::symlink_metadata(&path)
        .unwrap()
        .file_type()
        .is_symlink());

    // A link to a real ring is refused just the same.
    let real = dir.join("real");
    produce_and_exit(&real, 10, 0);
    let real_contents = std::fs::read(&real).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&real, &path).unwrap();
    assert!(matches!(
        attach_error(&path),
        AttachError::PathRefused {
            reason: PathRefusal::Symlink,
            ..
        }
    ));
    assert!(matches!(
        create_error(&path),
        CreateError::PathRefused {
            reason: PathRefusal::Symlink,
            ..
        }
    ));
    assert_eq!(std::fs::read(&real).unwrap(), real_contents);

    // A dangling link: the create must not make its target.
    let nowhere = dir.join("nowhere");
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&nowhere, &path).unwrap();
    assert!(matches!(
        create_error(&path),
        CreateError::PathRefused {
            reason: PathRefusal::Symlink,
            ..
        }
    ));
    assert!(matches!(
        attach_error(&path),
        AttachError::PathRefused {
            reason: PathRefusal::Symlink,
            ..
        }
    ));
    assert!(!nowhere.exists(), "the create made the link's target");
    assert_eq!(names_in(dir), ["real", "ring", "target"]);
}

/// Files that are not rings: 64 KiB of text (`BadMagic`), 100 bytes (`Truncated`), a directory
/// (`PathRefused(NotRegularFile)`). A create refuses to replace any of them, and leaves them as they were.
#[test]
fn files_that_are_not_rings_are_refused_and_left_alone() {
    let (_ring, path) = new_ring("not-a-ring");
    let dir = path.parent().unwrap().to_path_buf();

    let text: Vec<u8> = b"The quick brown fox jumps over the lazy dog.\n"
        .iter()
        .copied()
        .cycle()
        .take(64 * 1024)
        .collect();
    std::fs::write(&path, &text).unwrap();
    match attach_error(&path) {
        AttachError::BadMagic { found, .. } => assert_eq!(&found, b"The quic"),
        other => panic!("64 KiB of text: expected BadMagic, got {other}"),
    }
    match create_error(&path) {
        CreateError::AlreadyExists {
            producer_pid: None, ..
        } => {}
        other => panic!("create over text: expected AlreadyExists without a pid, got {other}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), text, "the text file changed");

    let short = vec![0xa5u8; 100];
    std::fs::write(&path, &short).unwrap();
    match attach_error(&path) {
        AttachError::Truncated { len: 100, .. } => {}
        other => panic!("100 bytes: expected Truncated with len 100, got {other}"),
    }
    match create_error(&path) {
        CreateError::AlreadyExists {
            producer_pid: None, ..
        } => {}
        other => panic!("create over 100 bytes: expected AlreadyExists without a pid, got {other}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        short,
        "the short file changed"
    );

    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), b"kept").unwrap();
    match attach_error(&path) {
        AttachError::PathRefused {
            reason: PathRefusal::NotRegularFile { kind: "directory" },
            ..
        } => {}
        other => panic!("a directory: expected PathRefused(NotRegularFile directory), got {other}"),
    }
    match create_error(&path) {
        CreateError::PathRefused {
            reason: PathRefusal::NotRegularFile { kind: "directory" },
            ..
        } => {}
        other => panic!("create over a directory: expected PathRefused(directory), got {other}"),
    }
    assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"kept");
    // No temporary file left behind by the refused creates.
    assert_eq!(names_in(&dir), ["ring"]);
}

/// A second producer on a live producer's file is refused with the first one's pid, whether the first
/// lives in another process or in this one, and the first one's ring is left working.
#[test]
fn a_live_producers_file_is_refused_naming_its_pid() {
    let (_ring, path) = new_ring("live-producer");
    let signal = SignalFile::new("live-producer");
    let mut child = spawn(
        "file-producer",
        &[
            (PATH, path.display().to_string()),
            (COUNT, "5".to_string()),
            (OFFSET, "0".to_string()),
            (CONSUMERS, "0".to_string()),
            (MODE, "hold".to_string()),
            (SIGNAL, signal.path()),
        ],
    );
    let signalled = signal.wait_for(&mut child, STALL).unwrap();
    assert_eq!(signalled, child.id().to_string());
    match create_error(&path) {
        CreateError::AlreadyExists {
            producer_pid: Some(pid),
            ..
        } => assert_eq!(pid, child.id(), "AlreadyExists names the wrong pid"),
        other => panic!("expected AlreadyExists with the child's pid, got {other}"),
    }
    // The live ring is untouched: a consumer still attaches to it and replays its events.
    let mut consumer = attach_mmap_consumer::<CheckedEvent>(&path)
        .with_start_position(StartPosition::Earliest)
        .build_consumer()
        .unwrap();
    assert_eq!(consumer.producer_pid(), child.id());
    let mut check = StreamCheck::new(consumer.next_sequence());
    while let Some((event, sequence)) = consumer.try_consume_next().unwrap() {
        check.observe(&event, sequence);
    }
    check.result().unwrap();
    assert_eq!((check.first(), check.next()), (0, 5));
    drop(consumer);
    drop(child); // killed

    // The first producer in this very process.
    let (_ring, path) = new_ring("live-here");
    let _producer = build_mmap_single_producer::<CheckedEvent>(&path, 64)
        .build_producer()
        .unwrap();
    match create_error(&path) {
        CreateError::AlreadyExists {
            producer_pid: Some(pid),
            ..
        } => assert_eq!(pid, std::process::id()),
        other => panic!("expected AlreadyExists with this process's pid, got {other}"),
    }
}

/// A producer killed with SIGKILL leaves its file. Its consumer (attached before) reads every event it
/// published, then gets `ProducerGone` within the liveness bound; a new attach gets
/// `AttachError::ProducerGone` once its timeout expires; a new producer reclaims the path, and the old
/// consumer, still mapped to the old file, keeps reporting `ProducerGone` and sees nothing of the new ring.
#[test]
fn a_killed_producers_file_is_reported_gone_then_reclaimed() {
    const EVENTS: u64 = 5;
    let (_ring, path) = new_ring("killed-producer");
    let signal = SignalFile::new("killed-producer");
    let mut child = spawn(
        "file-producer",
        &[
            (PATH, path.display().to_string()),
            (COUNT, EVENTS.to_string()),
            (OFFSET, "0".to_string()),
            (CONSUMERS, "1".to_string()),
            (MODE, "hold".to_string()),
            (SIGNAL, signal.path()),
        ],
    );
    let mut old = attach_mmap_consumer::<CheckedEvent>(&path)
        .with_attach_timeout(STALL)
        .build_consumer()
        .unwrap();
    let pid: u32 = signal.wait_for(&mut child, STALL).unwrap().parse().unwrap();
    assert_eq!(pid, child.id());
    let mut check = StreamCheck::new(0);
    while check.next() < EVENTS {
        let (event, sequence) = old.consume_next_timeout(STALL).unwrap();
        check.observe(&event, sequence);
    }
    check.result().unwrap();

    assert!(child.is_running(), "the producer exited before the kill");
    let killed_at = Instant::now();
    child.kill();
    match old.consume_next_timeout(STALL) {
        Err(ConsumeError::ProducerGone { pid: gone }) => assert_eq!(gone, pid),
        other => panic!("the old consumer: expected ProducerGone, got {other:?}"),
    }
    let detected = killed_at.elapsed();
    println!(
        "old consumer: ProducerGone {detected:.2?} after the kill (bound {DETECTION_BOUND:?})"
    );
    assert!(
        detected < DETECTION_BOUND,
        "ProducerGone after {detected:?}"
    );
    assert!(path.is_file(), "the killed producer's file is gone");

    let attach_timeout = Duration::from_millis(200);
    let start = Instant::now();
    match attach_mmap_consumer::<CheckedEvent>(&path)
        .with_attach_timeout(attach_timeout)
        .build_consumer()
    {
        Err(AttachError::ProducerGone { pid: gone, .. }) => assert_eq!(gone, pid),
        other => panic!("a new attach: expected ProducerGone, got {other:?}"),
    }
    let waited = start.elapsed();
    println!("new attach: ProducerGone after {waited:.2?} (attach timeout {attach_timeout:?})");
    assert!(
        waited < attach_timeout + DETECTION_BOUND,
        "ProducerGone after {waited:?}"
    );

    let mut producer = build_mmap_single_producer::<CheckedEvent>(&path, 64)
        .build_producer()
        .unwrap_or_else(|e| panic!("reclaiming the killed producer's file: {e}"));
    let mut fresh = attach_mmap_consumer::<CheckedEvent>(&path)
        .build_consumer()
        .unwrap();
    assert_ne!(fresh.epoch(), old.epoch(), "the new ring has the old epoch");
    assert_eq!(fresh.producer_pid(), std::process::id());
    producer.publish(CheckedEvent::new(SECOND_RING)).unwrap();
    assert_eq!(
        fresh.consume_next_timeout(STALL).unwrap(),
        (CheckedEvent::new(SECOND_RING), 0)
    );
    match old.consume_next_timeout(STALL) {
        Err(ConsumeError::ProducerGone { pid: gone }) => assert_eq!(gone, pid),
        other => panic!("the old consumer after the reclaim: expected ProducerGone, got {other:?}"),
    }
}

/// The file's mode is 0600 unless configured (0640 when asked), whatever the umask; a directory other
/// users may write to is refused for both create and attach unless it is sticky.
#[test]
fn file_modes_and_unsafe_directories() {
    let (_ring, path) = new_ring("modes");
    let dir = path.parent().unwrap().to_path_buf();
    let producer = build_mmap_single_producer::<CheckedEvent>(&path, 64)
        .build_producer()
        .unwrap();
    assert_eq!(mode_of(&path), 0o600, "default mode");
    drop(producer);

    let wider = dir.join("wider");
    let _producer = build_mmap_single_producer::<CheckedEvent>(&wider, 64)
        .with_mode(0o640)
        .build_producer()
        .unwrap();
    assert_eq!(mode_of(&wider), 0o640, "with_mode(0o640)");

    for (mode, refused) in [
        (0o777, true),
        (0o770, true),
        (0o1777, false),
        (0o700, false),
    ] {
        let shared = dir.join(format!("dir-{mode:o}"));
        std::fs::create_dir(&shared).unwrap();
        set_mode(&shared, mode);
        let ring = shared.join("ring");
        let created = build_mmap_single_producer::<CheckedEvent>(&ring, 64).build_producer();
        let attached = attach_mmap_consumer::<CheckedEvent>(&ring).build_consumer();
        if refused {
            match created {
                Err(CreateError::PathRefused {
                    reason: PathRefusal::UnsafeDirectory { .. },
                    ..
                }) => {}
                other => panic!(
                    "create in a {mode:o} directory: expected UnsafeDirectory, got {other:?}"
                ),
            }
            match attached {
                Err(AttachError::PathRefused {
                    reason: PathRefusal::UnsafeDirectory { .. },
                    ..
                }) => {}
                other => panic!(
                    "attach in a {mode:o} directory: expected UnsafeDirectory, got {other:?}"
                ),
            }
            assert!(
                names_in(&shared).is_empty(),
                "{mode:o}: the refused create left files"
            );
        } else {
            let producer =
                created.unwrap_or_else(|e| panic!("create in a {mode:o} directory: {e}"));
            attached.unwrap_or_else(|e| panic!("attach in a {mode:o} directory: {e}"));
            assert_eq!(mode_of(&ring), 0o600);
            drop(producer);
        }
    }
}
