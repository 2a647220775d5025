//! The `dmp` inspector, run as a subprocess against rings this test process creates (and one whose
//! producer, a child process, was killed with SIGKILL). Every wait on a subprocess is bounded.
//!
//! Run with `cargo test -p disruptor-mp --features cli --test dmp_cli`; without the feature this file
//! compiles to nothing.
#![cfg(feature = "cli")]

use disruptor_mp::{
    attach_shared_consumer, build_mmap_single_producer, build_shared_single_producer,
    portable_shm_segment_name, RingEvent,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
/// Environment variable that makes the re-executed test binary a producer child (see `child_process_entry`).
const CHILD_RING_ENV: &str = "DMP_CLI_CHILD_RING";
/// What the producer child prints once its ring exists.
const READY: &str = "dmp-cli-child-ready";

#[derive(RingEvent, Clone, Copy, Default, Debug)]
#[repr(C)]
struct Quote {
    bid: f64,
    ask: f64,
}

#[derive(RingEvent, Clone, Copy, Default, Debug)]
#[repr(C)]
struct Tick {
    instrument: u32,
    side: u8,
    _pad: [u8; 3],
    quote: Quote,
    levels: [u64; 2],
}

/// The flattened fields of `Tick` (nested structs are expanded, arrays are one field): (path, offset,
/// size, type).
const TICK_FIELDS: &[(&str, usize, usize, &str)] = &[
    ("instrument", 0, 4, "u32"),
    ("side", 4, 1, "u8"),
    ("_pad", 5, 3, "[u8; 3]"),
    ("quote.bid", 8, 8, "f64"),
    ("quote.ask", 16, 8, "f64"),
    ("levels", 24, 16, "[u64; 2]"),
];

fn unique(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "dmp-cli-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private (mode 0700) temporary directory, removed with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(label));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Reads a pipe to its end on a thread, so neither pipe can fill up and stall the child.
fn drain(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(pipe).read_to_string(&mut text);
        let _ = send.send(text);
    });
    receive
}

/// Waits for `child` at most [`WAIT`], killing it if it takes longer.
fn wait_bounded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `dmp ARGS`, bounded by [`WAIT`].
fn dmp(args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmp"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_bounded(&mut child, &format!("dmp {args:?}"));
    let run = Run {
        code: status.code(),
        stdout: stdout.recv_timeout(WAIT).unwrap(),
        stderr: stderr.recv_timeout(WAIT).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "dmp {args:?} panicked: {}",
        run.stderr
    );
    run
}

/// Runs `dmp ARGS`, requires success, and parses its JSON output.
fn dmp_json(args: &[&str]) -> Value {
    let run = dmp(args);
    assert_eq!(run.code, Some(0), "dmp {args:?} failed: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn consumer<'a>(snapshot: &'a Value, id: &str) -> &'a Value {
    snapshot["consumers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no consumer {id:?} in {snapshot:#}"))
}

#[test]
fn inspect_prints_the_field_table_and_the_consumers() {
    let name = portable_shm_segment_name(&unique("text"));
    let mut producer = build_shared_single_producer::<Tick>(&name, 64)
        .build_producer()
        .unwrap();
    let _risk = attach_shared_consumer::<Tick>(&name)
        .with_consumer_id("risk")
        .build_consumer()
        .unwrap();
    let _audit = attach_shared_consumer::<Tick>(&name)
        .with_consumer_id("audit")
        .build_consumer()
        .unwrap();
    producer.publish(Tick::default()).unwrap();

    let run = dmp(&["inspect", &name]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    for &(path, offset, size, type_name) in TICK_FIELDS {
        let row = format!("{path} {offset} {size} {type_name}");
        assert!(
            lines.iter().any(|line| line.join(" ") == row),
            "no field row {row:?} in:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("Tick"), "{}", run.stdout);
    for id in ["risk", "audit"] {
        assert!(
            lines.iter().any(|line| line.get(1) == Some(&id)
                && line.get(2) == Some(&"active")
                && line.contains(&"1")),
            "no consumer row for {id:?} with lag 1 in:\n{}",
            run.stdout
        );
    }
}

#[test]
fn inspect_json_is_the_whole_snapshot() {
    let name = portable_shm_segment_name(&unique("json"));
    let mut producer = build_shared_single_producer::<Tick>(&name, 64)
        .build_producer()
        .unwrap();
    let mut risk = attach_shared_consumer::<Tick>(&name)
        .with_consumer_id("risk")
        .build_consumer()
        .unwrap();
    for i in 0..5 {
        producer
            .publish(Tick {
                instrument: i,
                ..Tick::default()
            })
            .unwrap();
    }
    for _ in 0..2 {
        risk.try_consume_next().unwrap().unwrap();
    }

    let snapshot = dmp_json(&["inspect", &name, "--json"]);
    assert_eq!(snapshot["location"], name.as_str());
    assert_eq!(snapshot["capacity"], 64);
    assert_eq!(snapshot["closed"], false);
    assert_eq!(snapshot["event"]["name"], "Tick");
    assert_eq!(snapshot["event"]["size"], 40);
    let fields = snapshot["event"]["fields"].as_array().unwrap();
    assert_eq!(fields.len(), TICK_FIELDS.len());
    for (field, &(path, offset, size, type_name)) in fields.iter().zip(TICK_FIELDS) {
        assert_eq!(field["path"], path);
        assert_eq!(field["offset"], offset);
        assert_eq!(field["size"], size);
        assert_eq!(field["type_name"], type_name);
    }
    assert_eq!(snapshot["producer"]["published"], 5);
    assert_eq!(snapshot["producer"]["alive"], true);
    assert_eq!(snapshot["producer"]["pid"], std::process::id());
    let risk_view = consumer(&snapshot, "risk");
    assert_eq!(risk_view["cursor"], 2);
    assert_eq!(risk_view["lag"], 3);
    assert_eq!(risk_view["state"], "active");
    assert_eq!(risk_view["gating"], true);
}

#[test]
fn lag_grows_while_a_consumer_pauses_and_shrinks_when_it_reads() {
    let name = portable_shm_segment_name(&unique("lag"));
    let mut producer = build_shared_single_producer::<Tick>(&name, 64)
        .build_producer()
        .unwrap();
    let mut slow = attach_shared_consumer::<Tick>(&name)
        .with_consumer_id("slow")
        .build_consumer()
        .unwrap();
    let lag = || consumer(&dmp_json(&["inspect", &name, "--json"]), "slow")["lag"].clone();
    assert_eq!(lag(), 0);

    for _ in 0..10 {
        producer.publish(Tick::default()).unwrap();
    }
    assert_eq!(lag(), 10);
    for _ in 0..5 {
        producer.publish(Tick::default()).unwrap();
    }
    assert_eq!(lag(), 15, "lag grows while the consumer is paused");

    for _ in 0..12 {
        slow.try_consume_next().unwrap().unwrap();
    }
    assert_eq!(lag(), 3, "lag shrinks when the consumer resumes");
    while slow.try_consume_next().unwrap().is_some() {}
    assert_eq!(lag(), 0);
}

#[test]
fn list_shows_shared_memory_rings_and_ring_files_in_dirs() {
    let name = portable_shm_segment_name(&unique("list"));
    let mut producer = build_shared_single_producer::<Tick>(&name, 64)
        .build_producer()
        .unwrap();
    producer.publish(Tick::default()).unwrap();
    let dir = TempDir::new("list");
    let path = dir.0.join("fills.ring");
    let mut file_producer = build_mmap_single_producer::<u64>(&path, 16)
        .build_producer()
        .unwrap();
    file_producer.publish_batch(&[1, 2, 3]).unwrap();
    std::fs::write(dir.0.join("notes.txt"), "not a ring").unwrap();

    let find = |listed: &Value, location: &str| -> Option<Value> {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["location"] == location)
            .cloned()
    };
    let listed = dmp_json(&["list", "--json"]);
    let shm = find(&listed, &name).unwrap_or_else(|| panic!("{name} not listed: {listed:#}"));
    assert_eq!(shm["snapshot"]["event"]["name"], "Tick");
    assert_eq!(shm["snapshot"]["producer"]["published"], 1);
    let file_location = path.display().to_string();
    assert!(find(&listed, &file_location).is_none());

    let dir_arg = dir.0.display().to_string();
    let listed = dmp_json(&["list", "--dir", &dir_arg, "--json"]);
    assert!(find(&listed, &name).is_some());
    let file = find(&listed, &file_location)
        .unwrap_or_else(|| panic!("{file_location} not listed: {listed:#}"));
    assert_eq!(file["snapshot"]["backend"], "file");
    assert_eq!(file["snapshot"]["event"]["name"], "u64");
    assert_eq!(file["snapshot"]["producer"]["published"], 3);
    let in_dir = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["location"].as_str().unwrap().starts_with(&dir_arg))
        .count();
    assert_eq!(in_dir, 1, "only ring files are listed: {listed:#}");

    // The table names both rings, with their event types and producers.
    let table = dmp(&["list", "--dir", &dir_arg]);
    assert_eq!(table.code, Some(0), "{}", table.stderr);
    for expected in [
        name.as_str(),
        file_location.as_str(),
        "Tick",
        "u64",
        "alive",
    ] {
        assert!(
            table.stdout.contains(expected),
            "{expected}: {}",
            table.stdout
        );
    }
}

/// The producer child of `clean_removes_only_rings_whose_producer_is_dead`: creates a file ring, attaches a
/// consumer `doomed` to it, publishes one event, prints [`READY`], and waits to be killed. In the normal
/// test run, does nothing.
#[test]
fn child_process_entry() {
    let Some(path) = std::env::var_os(CHILD_RING_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let mut producer = build_mmap_single_producer::<Tick>(&path, 16)
        .build_producer()
        .unwrap();
    let _consumer = disruptor_mp::attach_mmap_consumer::<Tick>(&path)
        .with_consumer_id("doomed")
        .build_consumer()
        .unwrap();
    producer.publish(Tick::default()).unwrap();
    println!("\n{READY}");
    std::thread::sleep(WAIT * 2);
    std::process::exit(3); // never reached in a passing run: the parent kills this process first
}

/// Creates a file ring at `path` in a child process, which is then killed with SIGKILL: the ring is left
/// unclosed, with a dead producer.
fn ring_with_killed_producer(path: &Path) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_entry", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_RING_ENV, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, ready) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line.is_ok_and(|line| line.trim() == READY) {
                let _ = send.send(());
            }
        }
    });
    let ready = ready.recv_timeout(WAIT);
    child.kill().unwrap(); // SIGKILL
    wait_bounded(&mut child, "the killed producer child");
    ready.expect("the producer child did not become ready");
}

#[test]
fn clean_removes_only_rings_whose_producer_is_dead() {
    let dir = TempDir::new("clean");
    let dead = dir.0.join("dead.ring");
    ring_with_killed_producer(&dead);
    let live = dir.0.join("live.ring");
    let mut live_producer = build_mmap_single_producer::<Tick>(&live, 16)
        .build_producer()
        .unwrap();
    live_producer.publish(Tick::default()).unwrap();
    let (dead_arg, live_arg) = (dead.display().to_string(), live.display().to_string());
    let dir_arg = dir.0.display().to_string();

    let snapshot = dmp_json(&["inspect", &dead_arg, "--json"]);
    assert_eq!(snapshot["producer"]["alive"], false);
    assert_eq!(snapshot["closed"], false);
    assert_eq!(snapshot["producer"]["published"], 1);
    assert_ne!(snapshot["producer"]["pid"], std::process::id());
    // The killed process's consumer is shown dead too, one event behind.
    let doomed = consumer(&snapshot, "doomed");
    assert_eq!(
        (&doomed["alive"], &doomed["lag"]),
        (&Value::from(false), &Value::from(1))
    );
    let text = dmp(&["inspect", &dead_arg]);
    assert!(text.stdout.contains("dead"), "{}", text.stdout);

    let dry = dmp(&[
        "clean",
        "--no-shared-memory",
        "--dry-run",
        "--dir",
        &dir_arg,
    ]);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(
        dry.stdout.contains(&format!("would remove {dead_arg}")),
        "{}",
        dry.stdout
    );
    assert!(!dry.stdout.contains(&live_arg), "{}", dry.stdout);
    assert!(dead.exists() && live.exists(), "--dry-run removed a file");

    let clean = dmp(&["clean", "--no-shared-memory", "--dir", &dir_arg]);
    assert_eq!(clean.code, Some(0), "{}", clean.stderr);
    assert!(
        clean.stdout.contains(&format!("removed {dead_arg}")),
        "{}",
        clean.stdout
    );
    assert!(!clean.stdout.contains(&live_arg), "{}", clean.stdout);
    assert!(!dead.exists(), "the dead ring is still there");
    assert!(live.exists(), "the live ring was removed");
    assert_eq!(
        dmp_json(&["inspect", &live_arg, "--json"])["producer"]["alive"],
        true
    );

    // A closed ring whose producer exited cleanly has no live producer either.
    drop(live_producer);
    let clean = dmp(&["clean", "--no-shared-memory", "--dir", &dir_arg]);
    assert!(
        clean.stdout.contains(&format!("removed {live_arg}")) && clean.stdout.contains("closed"),
        "{}",
        clean.stdout
    );
    assert!(!live.exists());
}

#[test]
fn broken_and_missing_rings_are_one_line_errors_with_status_1() {
    let dir = TempDir::new("garbage");
    let garbage = dir.0.join("garbage.ring");
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    // Larger than any header, so that it is refused for its magic bytes, not its length.
    let bytes: Vec<u8> = (0..1 << 16)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let run = dmp(&["inspect", &garbage.display().to_string()]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(
        run.stderr.contains("not a disruptor-mp ring"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    let truncated = dir.0.join("truncated.ring");
    drop(
        build_mmap_single_producer::<Tick>(&truncated, 16)
            .build_producer()
            .unwrap(),
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&truncated)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let run = dmp(&["inspect", &truncated.display().to_string()]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("1000"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // A ring of another format version.
    let foreign = dir.0.join("foreign.ring");
    drop(
        build_mmap_single_producer::<Tick>(&foreign, 16)
            .build_producer()
            .unwrap(),
    );
    let mut bytes = std::fs::read(&foreign).unwrap();
    bytes[8] = bytes[8].wrapping_add(1); // the format version's low byte
    std::fs::write(&foreign, bytes).unwrap();
    let run = dmp(&["inspect", &foreign.display().to_string()]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("format version"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    let missing = portable_shm_segment_name(&unique("missing"));
    let run = dmp(&["inspect", &missing]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
    let run = dmp(&["inspect", &dir.0.join("missing.ring").display().to_string()]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    // Usage errors are clap's: status 2.
    assert_eq!(dmp(&["inspect"]).code, Some(2));
    assert_eq!(dmp(&["frobnicate"]).code, Some(2));
}

/// The `producer` line's publish rate in a `dmp watch` frame, if it has one (`-` at the first frame).
fn publish_rate(frame: &str) -> Option<f64> {
    let line = frame.lines().find(|line| line.starts_with("producer"))?;
    line.rsplit(", ")
        .next()?
        .strip_suffix(" events/s")?
        .parse()
        .ok()
}

#[test]
fn watch_prints_frames_with_publish_and_read_rates() {
    let name = portable_shm_segment_name(&unique("watch"));
    let mut producer = build_shared_single_producer::<Tick>(&name, 1024)
        .build_producer()
        .unwrap();
    let mut reader = attach_shared_consumer::<Tick>(&name)
        .with_consumer_id("watched")
        .build_consumer()
        .unwrap();
    // About 1000 events every 100 ms, read as they come.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = std::thread::spawn({
        let stop = stop.clone();
        move || {
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    producer.publish(Tick::default()).unwrap();
                }
                while reader.try_consume_next().unwrap().is_some() {}
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });

    let run = dmp(&["watch", &name, "--interval", "100", "--count", "4"]);
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stdout.contains('\x1b'), "escape codes in a pipe");
    let frames: Vec<&str> = run.stdout.split("\n\n").collect();
    assert_eq!(frames.len(), 4, "{}", run.stdout);
    for (i, frame) in frames.iter().enumerate() {
        assert!(
            frame.starts_with(&format!("dmp watch: frame {}", i + 1)),
            "{frame}"
        );
        assert!(frame.contains(&name) && frame.contains("Tick"), "{frame}");
        let row = frame
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|cells| cells.get(1) == Some(&"watched"))
            .unwrap_or_else(|| panic!("no row for the consumer in:\n{frame}"));
        assert_eq!(row[2], "active", "{frame}");
        if i == 0 {
            assert_eq!(publish_rate(frame), None, "no rate before a second frame");
            assert_eq!(row[7], "-", "{frame}");
        }
    }
    assert!(
        frames[1..]
            .iter()
            .any(|frame| publish_rate(frame).is_some_and(|rate| rate > 0.0)),
        "no publish rate above zero in:\n{}",
        run.stdout
    );
}

#[test]
fn watch_of_a_missing_ring_is_a_one_line_error_with_status_1() {
    let missing = portable_shm_segment_name(&unique("watch-missing"));
    let run = dmp(&["watch", &missing, "--count", "2"]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}
