//! Pipelines across processes (`ConsumerBuilder::after`): each stage is its own process and an event
//! processor; every stage sees every event in order, intact, and never one its upstream stages have not
//! committed. Each stage also records, in a shared marker file, how many events it has finished, and
//! checks before handling an event that every upstream stage's marker is past it: a stage that read ahead
//! of its upstream stages' commits would see a marker that is not.
//!
//! Plus what ends a dependent: an upstream that dies, or leaves, ends it with `UpstreamGone` once it has
//! read everything that upstream committed.

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, MappedFile, ProcessorExit,
    SharedMemory, UpstreamEnd,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, on_both_backends, on_child_backend, unique_segment_name,
    CheckedEvent, ChildProcess, SignalFile, StreamCheck, TestBackend,
};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_SEGMENT";
const STAGE_ID: &str = "DMP_STAGE_ID";
const STAGE_INDEX: &str = "DMP_STAGE_INDEX";
/// Comma-separated `id:index` pairs of the stage's upstream stages (empty: behind the producer only).
const UPSTREAMS: &str = "DMP_UPSTREAMS";
const MARKERS: &str = "DMP_MARKERS";
const READY: &str = "DMP_READY";

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(60);
const EVENTS: u64 = 100_000;

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "stage" => on_child_backend(run_stage::<SharedMemory>, run_stage::<MappedFile>),
        "journal_then_wait" => journal_then_wait(),
        other => Err(format!("unknown role {other}")),
    });
}

/// The marker table: one `u64` per stage, the number of events the stage has finished handling.
struct Markers(File);

impl Markers {
    fn create(path: &std::path::Path, stages: usize) -> Markers {
        let file = File::create(path).expect("create the marker file");
        file.set_len(8 * stages as u64)
            .expect("size the marker file");
        Markers(file)
    }

    fn open(path: &str) -> Markers {
        Markers(
            File::options()
                .read(true)
                .write(true)
                .open(path)
                .expect("open the marker file"),
        )
    }

    fn set(&self, stage: usize, finished: u64) {
        self.0
            .write_all_at(&finished.to_ne_bytes(), 8 * stage as u64)
            .expect("write a marker");
    }

    fn get(&self, stage: usize) -> u64 {
        let mut bytes = [0u8; 8];
        self.0
            .read_exact_at(&mut bytes, 8 * stage as u64)
            .expect("read a marker");
        u64::from_ne_bytes(bytes)
    }
}

/// What a stage found, shared between its processor's handler and the role.
struct StageState {
    check: StreamCheck,
    ahead_of_upstream: Option<String>,
    batches: u64,
}

/// One pipeline stage: attaches behind its upstream stages, runs an event processor that checks every
/// event and every upstream marker, and reports `first count checksum` once the ring closes.
fn run_stage<B: TestBackend>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let id: String = child_arg(STAGE_ID);
    let index: usize = child_arg(STAGE_INDEX);
    let upstreams_arg: String = std::env::var(UPSTREAMS).unwrap_or_default();
    let upstreams: Vec<(String, usize)> = upstreams_arg
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (id, index) = pair.split_once(':').expect("id:index");
            (id.to_string(), index.parse().expect("a stage index"))
        })
        .collect();
    let markers = Markers::open(&child_arg::<String>(MARKERS));
    let consumer = B::consumer::<CheckedEvent>(&name)
        .with_consumer_id(&id)
        .with_attach_timeout(STALL)
        .after(upstreams.iter().map(|(id, _)| id.as_str()))
        .build_consumer()
        .map_err(|e| format!("{id}: attach: {e}"))?;
    let first = consumer.next_sequence();
    let state = Arc::new(Mutex::new(StageState {
        check: StreamCheck::new(first),
        ahead_of_upstream: None,
        batches: 0,
    }));
    let shared = Arc::clone(&state);
    let processor = consumer
        .processor()
        .with_max_batch(256)
        .spawn(move |event, sequence, end_of_batch| {
            let mut state = shared.lock().unwrap();
            for (upstream, upstream_index) in &upstreams {
                let finished = markers.get(*upstream_index);
                if finished <= sequence && state.ahead_of_upstream.is_none() {
                    state.ahead_of_upstream = Some(format!(
                        "read sequence {sequence} while upstream {upstream} had finished only {finished}"
                    ));
                }
            }
            state.check.observe(event, sequence);
            // Finished with this event: downstream stages may see it once the batch is committed.
            markers.set(index, sequence + 1);
            state.batches += u64::from(end_of_batch);
        })
        .map_err(|e| format!("{id}: spawn: {e}"))?;
    SignalFile::raise(&child_arg::<String>(READY), "attached").map_err(|e| e.to_string())?;
    let exit = match processor.join_timeout(STALL) {
        Ok(exit) => exit,
        Err(processor) => {
            let _ = processor.shutdown();
            return Err(format!("{id}: the processor did not end within {STALL:?}"));
        }
    };
    if exit != ProcessorExit::Ended(ConsumeError::Closed) {
        return Err(format!("{id}: the processor ended with {exit:?}"));
    }
    let state = state.lock().unwrap();
    if let Some(ahead) = &state.ahead_of_upstream {
        return Err(format!("{id}: {ahead}"));
    }
    state.check.result().map_err(|e| format!("{id}: {e}"))?;
    if state.batches == 0 {
        return Err(format!("{id}: no end_of_batch flag"));
    }
    Ok(state.check.report())
}

/// A pipeline: `(id, upstream ids)` per stage, in any order (each stage waits for its upstream stages to
/// attach). Runs every stage in its own process, publishes `EVENTS` events once all are attached, closes
/// the ring and checks every stage's report.
fn run_pipeline<B: TestBackend>(label: &str, stages: &[(&str, &[&str])]) {
    let ring = B::new_ring(label);
    let dir = TempDir::new(label);
    let markers_path = dir.join("markers");
    let _markers = Markers::create(&markers_path, stages.len());
    let index_of = |id: &str| stages.iter().position(|(stage, _)| *stage == id).unwrap();
    let mut producer = B::producer::<CheckedEvent>(ring.id(), 1024)
        .build_producer()
        .unwrap();
    let mut children = Vec::new();
    let mut signals = Vec::new();
    // Started downstream first: each must wait for its upstream stages to attach.
    for (index, (id, upstreams)) in stages.iter().enumerate().rev() {
        let upstreams = upstreams
            .iter()
            .map(|upstream| format!("{upstream}:{}", index_of(upstream)))
            .collect::<Vec<_>>()
            .join(",");
        let ready = SignalFile::new(&format!("{label}-{id}"));
        let child = ChildProcess::spawn_test_role(
            "stage",
            &[
                B::env(),
                (SEGMENT, ring.id().to_string()),
                (STAGE_ID, id.to_string()),
                (STAGE_INDEX, index.to_string()),
                (UPSTREAMS, upstreams),
                (MARKERS, markers_path.display().to_string()),
                (READY, ready.path()),
            ],
        )
        .unwrap();
        children.push((id, child));
        signals.push(ready);
    }
    for ((id, child), ready) in children.iter_mut().zip(&signals) {
        ready
            .wait_for(child, STALL)
            .unwrap_or_else(|e| panic!("stage {id}: {e}"));
    }
    assert_eq!(producer.attached_consumers(), stages.len());
    for sequence in 0..EVENTS {
        producer
            .publish_timeout(CheckedEvent::new(sequence), STALL)
            .unwrap();
    }
    drop(producer);
    for (id, child) in children {
        let report = child
            .expect_success(STALL)
            .unwrap_or_else(|e| panic!("stage {id}: {e}"));
        assert_eq!(
            report,
            StreamCheck::expected_report(0, EVENTS, 0),
            "stage {id}"
        );
    }
}

/// A private directory for one test's files, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dmp-pipeline-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn three_stage_chain<B: TestBackend>() {
    run_pipeline::<B>(
        "chain",
        &[
            ("journal", &[]),
            ("replicate", &["journal"]),
            ("business", &["replicate"]),
        ],
    );
}

fn diamond<B: TestBackend>() {
    run_pipeline::<B>("diamond", &[("a", &[]), ("b", &[]), ("c", &["a", "b"])]);
}

on_both_backends! {
    three_stage_chain => three_stage_chain_across_processes_shm, three_stage_chain_across_processes_file;
    diamond => diamond_across_processes_shm, diamond_across_processes_file;
}

/// Reads exactly 10 events as "journal", then waits to be killed.
fn journal_then_wait() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut journal = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("journal")
        .build_consumer()
        .map_err(|e| e.to_string())?;
    SignalFile::raise(&child_arg::<String>(READY), "attached").map_err(|e| e.to_string())?;
    for _ in 0..10 {
        journal
            .consume_next_timeout(STALL)
            .map_err(|e| e.to_string())?;
    }
    SignalFile::raise(&child_arg::<String>(READY), "read 10").map_err(|e| e.to_string())?;
    std::thread::sleep(STALL);
    Err("not killed".to_string())
}

#[test]
fn a_dependent_ends_with_upstream_gone_when_its_upstream_process_dies() {
    let name = unique_segment_name("upstream-dies");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let ready = SignalFile::new("upstream-dies");
    let mut journal = ChildProcess::spawn_test_role(
        "journal_then_wait",
        &[(SEGMENT, name.clone()), (READY, ready.path())],
    )
    .unwrap();
    ready.wait_for(&mut journal, STALL).unwrap();
    let mut replicate = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("replicate")
        .with_liveness_interval(Duration::from_millis(20))
        .after(["journal"])
        .build_consumer()
        .unwrap();
    for i in 0..20 {
        producer.publish(i).unwrap();
    }
    ready.wait_for(&mut journal, STALL).unwrap();
    let journal_pid = journal.id();
    journal.kill();
    // Everything the journal committed, then the news: never events 10..20, which it never finished.
    for expected in 0..10 {
        assert_eq!(
            replicate.consume_next_timeout(STALL).unwrap(),
            (expected, expected)
        );
    }
    let started = Instant::now();
    match replicate.consume_next_timeout(STALL) {
        Err(ConsumeError::UpstreamGone { id, reason }) => {
            assert_eq!(id, "journal");
            assert_eq!(reason, UpstreamEnd::Died { pid: journal_pid });
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_dependent_drains_what_a_departed_upstream_committed_then_ends() {
    let name = unique_segment_name("upstream-leaves");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let mut journal = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("journal")
        .build_consumer()
        .unwrap();
    let mut replicate = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("replicate")
        .after(["journal"])
        .build_consumer()
        .unwrap();
    producer.publish_batch(&[0, 1, 2, 3, 4]).unwrap();
    assert_eq!(replicate.try_consume_next().unwrap(), None);
    assert_eq!(journal.try_consume_batch(3, |_, _, _| {}).unwrap(), 3);
    drop(journal);
    for expected in 0..3 {
        assert_eq!(
            replicate.try_consume_next().unwrap(),
            Some((expected, expected))
        );
    }
    assert_eq!(
        replicate.try_consume_next(),
        Err(ConsumeError::UpstreamGone {
            id: "journal".to_string(),
            reason: UpstreamEnd::Left,
        })
    );
    // A slot reclaimed by someone else is not mistaken for the journal.
    let _other = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("journal")
        .build_consumer()
        .unwrap();
    assert!(matches!(
        replicate.try_consume_next(),
        Err(ConsumeError::UpstreamGone { .. })
    ));
}

#[test]
fn a_missing_anonymous_or_own_upstream_is_refused_at_attach() {
    let name = unique_segment_name("upstream-missing");
    let _producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let started = Instant::now();
    match attach_shared_consumer::<u64>(&name)
        .with_consumer_id("business")
        .with_attach_timeout(Duration::from_millis(50))
        .after(["journal"])
        .build_consumer()
    {
        Err(disruptor_mp::AttachError::UpstreamNotFound { id, .. }) => assert_eq!(id, "journal"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_millis(50));
    let _anonymous = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    for (own, upstream) in [("loop", "loop"), ("named", "")] {
        assert!(matches!(
            attach_shared_consumer::<u64>(&name)
                .with_consumer_id(own)
                .after([upstream])
                .build_consumer(),
            Err(disruptor_mp::AttachError::UpstreamNotFound { .. })
        ));
    }
}

#[test]
fn a_dependent_of_a_durable_stage_follows_it_across_restarts() {
    let name = unique_segment_name("durable-upstream");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .discover_consumer_with_prefix(1, "journal")
        .build_producer()
        .unwrap();
    // The reservation exists before its consumer: the dependent can attach first.
    let mut replicate = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("replicate")
        .after(["journal_0"])
        .build_consumer()
        .unwrap();
    producer.publish_batch(&[0, 1, 2, 3]).unwrap();
    assert_eq!(replicate.try_consume_next().unwrap(), None);
    let mut journal = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("journal_0")
        .build_consumer()
        .unwrap();
    assert_eq!(journal.try_consume_batch(2, |_, _, _| {}).unwrap(), 2);
    drop(journal); // back to RESERVED: the dependent waits for it
    assert_eq!(replicate.try_consume_next().unwrap(), Some((0, 0)));
    assert_eq!(replicate.try_consume_next().unwrap(), Some((1, 1)));
    assert_eq!(replicate.try_consume_next().unwrap(), None);
    let mut journal = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("journal_0")
        .build_consumer()
        .unwrap();
    assert_eq!(journal.next_sequence(), 2);
    assert_eq!(journal.try_consume_batch(10, |_, _, _| {}).unwrap(), 2);
    assert_eq!(replicate.try_consume_next().unwrap(), Some((2, 2)));
    assert_eq!(replicate.try_consume_next().unwrap(), Some((3, 3)));
}
