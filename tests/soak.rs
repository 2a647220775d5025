//! The soak lane: minutes of random churn on one ring name, with an invariant checker. Not part of the
//! default suite (`#[ignore]`); `scripts/soak MINUTES` runs it in release mode, or
//! `DMP_SOAK_SECS=60 cargo test --release -p disruptor-mp-suite --test soak -- --ignored --nocapture soak`.
//!
//! For `DMP_SOAK_SECS` seconds (default 60) the test process, the orchestrator, picks a random action
//! every few milliseconds: start an anonymous consumer process, or one of the durable named consumers
//! `named_0..named_2` (reserved by every producer; at most one live process per id); SIGSTOP a consumer
//! for 1–200 ms, then SIGCONT it; SIGKILL a consumer; tell one to leave cleanly; SIGKILL the producer, or
//! tell it to exit cleanly, and start a new one on the same name after up to 300 ms (a killed producer's
//! segment is reclaimed: a new instance with a new epoch). Population control keeps 2–6 consumers alive,
//! and a named consumer that is gone is restarted within 300 ms (three times in four only once a
//! producer is up), since its reservation holds the producer back once the ring is full. The seed is
//! printed (`DMP_TEST_SEED` repeats the sequence of choices; the timing, and so the run, still differs).
//! `DMP_VERBOSE=1` prints each producer instance as it ends.
//!
//! Every producer instance publishes `CheckedEvent::new(epoch / 4 + sequence)`, so events of two
//! instances differ; every consumer verifies every event it reads (at the expected next sequence,
//! intact, of the instance it attached to: [`StreamCheck::with_offset`]) and keeps a status file up to
//! date (`epoch first count checksum state`), written atomically every 50 ms and at its end. What the
//! checker verifies, and what it cannot see:
//!
//! - **Every run is exact and gap-free.** A consumer that ends by itself (it left when told, or its
//!   instance ended: `Closed` or `ProducerGone` after draining) must exit successfully, and the checksum
//!   in its final status must be that of exactly `first..first+count` of its instance. A consumer whose
//!   instance ended must have read up to the instance's last event (`first + count` = events published,
//!   known exactly: a cleanly exiting producer reports it, and a killed one's segment is read with a
//!   [`RingSnapshot`] after the kill, before the next producer reclaims the name). A killed consumer
//!   reports nothing final; it checks each batch before it records progress and records a violation the
//!   moment it sees one, so what it verified counts. Blind spot: a violation seen in the microseconds
//!   between a batch and the status write that records it is lost if the SIGKILL lands there.
//! - **Every named consumer resumes exactly.** Before a named consumer is started, its previous
//!   incarnation has been reaped, so no live process can move the slot's cursor: the orchestrator reads it
//!   with a [`RingSnapshot`] (the slot must have no live owner, RESERVED or ACTIVE under a dead one), and
//!   the new process must report that cursor as its first sequence if it attached to the same instance.
//!   The snapshot is also compared with the predecessor: equal to where it stopped if it ended cleanly,
//!   at least its last recorded progress if it was killed. Blind spot: when the producer is restarted
//!   between the snapshot and the attach (the new instance starts its reservation at 0), the resume is
//!   not checked, only counted as unchecked.
//! - **Nothing is left.** At the end every consumer is continued, a producer is (re)started if the last
//!   was killed (it reclaims the dead segment), every consumer is allowed to attach, and the producer
//!   exits cleanly: every consumer must then end by itself with its run complete, no process the test
//!   started may remain (checked in `/proc`), and nothing named after the ring may remain in `/dev/shm`.
//!   Blind spot: every instance has the same name, so this sees what is left under that name (or any
//!   name starting with it) at the end, not what each reclaim removed; an unlinked instance's memory
//!   goes once no process maps it, which the check of child processes covers.
//!
//! Also checked: dead consumers evicted by the producers never outnumber the anonymous consumers killed
//! (durable ones are never evicted), and publishing makes progress (the longest time a live producer
//! published nothing is printed, and must stay under 30 s). The counts are printed in one line starting
//! with `soak counts:`.
#![cfg(target_os = "linux")]

use disruptor_mp::observability::{ConsumerState, RingSnapshot};
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, PublishError,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, unique_segment_name, CheckedEvent, ChildProcess, SegmentFile,
    SignalFile, StreamCheck, TestRng,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_SEGMENT";
const CONSUMER_ID: &str = "DMP_CONSUMER_ID";
const STATUS: &str = "DMP_STATUS";
/// A flag file: a consumer leaves, a producer exits cleanly, once it exists.
const FLAG: &str = "DMP_FLAG";
const SEED: &str = "DMP_SEED";

/// Run length in seconds.
const SOAK_SECS_ENV: &str = "DMP_SOAK_SECS";
const DEFAULT_SOAK_SECS: u64 = 60;

const CAPACITY: usize = 1024;
/// Durable named consumers reserved by every producer: `named_0` to `named_{NAMED - 1}`.
const NAMED: usize = 3;
const PREFIX: &str = "named";
/// How often blocked endpoints check whether the other side is alive: dead consumers stop gating, and a
/// killed producer is noticed, within about this long.
const LIVENESS: Duration = Duration::from_millis(20);
/// How long one publish or read waits before the endpoint looks at its flag file again.
const POLL: Duration = Duration::from_millis(20);
/// How often a consumer records its progress and looks for its flag.
const STATUS_EVERY: Duration = Duration::from_millis(50);
/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(30);
/// Consumers the orchestrator keeps alive (roughly: kills and leaves come at random).
const MIN_CONSUMERS: usize = 2;
const MAX_CONSUMERS: usize = 6;
/// How often a long run prints its counts so far.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// Longest a gone named consumer, or a gone producer, stays away.
const MAX_ABSENCE_MS: u64 = 300;

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "soak_producer" => soak_producer(),
        "soak_consumer" => soak_consumer(),
        other => Err(format!("unknown role {other}")),
    });
}

/// The payload offset of the instance with this epoch: `epoch / 4`, so that offset plus any sequence
/// fits in a `u64` and two instances' payloads do not overlap.
fn instance_offset(epoch: u64) -> u64 {
    epoch >> 2
}

// ---------------------------------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------------------------------

/// Creates (or reclaims) the ring with the named reservations, writes its epoch to `STATUS`, then
/// publishes bursts of random sizes with short pauses until `FLAG` exists. Reports `epoch published
/// evicted timeouts ring_full`.
fn soak_producer() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let stop = PathBuf::from(child_arg::<String>(FLAG));
    let mut rng = TestRng::seeded(child_arg(SEED));
    let mut producer = build_shared_single_producer::<CheckedEvent>(&name, CAPACITY)
        .discover_consumer_with_prefix(NAMED, PREFIX)
        .with_liveness_interval(LIVENESS)
        .build_producer()
        .map_err(|e| format!("build_producer: {e}"))?;
    let epoch = producer.epoch();
    let offset = instance_offset(epoch);
    SignalFile::raise(&child_arg::<String>(STATUS), &epoch.to_string())
        .map_err(|e| format!("writing the epoch: {e}"))?;
    let mut timeouts = 0u64;
    while !stop.exists() {
        for _ in 0..rng.log_uniform(4096) {
            let sequence = producer.next_sequence();
            match producer.publish_timeout(CheckedEvent::new(offset + sequence), POLL) {
                Ok(published) if published == sequence => {}
                Ok(published) => {
                    return Err(format!("published at {published}, expected {sequence}"))
                }
                // A gone named consumer, or a stopped one, holds the ring full: look at the flag.
                Err(PublishError::Timeout { .. }) => {
                    timeouts += 1;
                    break;
                }
                Err(error) => return Err(format!("publish {sequence}: {error}")),
            }
        }
        let pause = rng.between(0, 1000);
        if pause >= 500 {
            std::thread::sleep(Duration::from_micros(pause - 500));
        }
    }
    let stats = producer.stats();
    drop(producer);
    Ok(format!(
        "{epoch} {} {} {timeouts} {}",
        stats.published, stats.evicted_consumers, stats.ring_full
    ))
}

/// Attaches as `CONSUMER_ID` (empty: anonymous) and reads, verifying every event, until `FLAG` exists
/// (`left`) or its instance ends (`closed`, `gone`). Keeps `STATUS` at `epoch first count checksum
/// state`: `running` while it reads, its end when done, `violation TEXT` at the first bad event.
fn soak_consumer() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let id: String = child_arg(CONSUMER_ID);
    let status: String = child_arg(STATUS);
    let leave = PathBuf::from(child_arg::<String>(FLAG));
    let write = |line: String| {
        SignalFile::raise(&status, &line).map_err(|e| format!("writing {status}: {e}"))
    };
    let mut consumer = match attach_shared_consumer::<CheckedEvent>(&name)
        .with_consumer_id(&id)
        .with_attach_timeout(STALL)
        .with_liveness_interval(LIVENESS)
        .build_consumer()
    {
        Ok(consumer) => consumer,
        Err(error) => {
            let text = format!("attach as {id:?}: {error}");
            write(format!("0 0 0 0 violation {text}"))?;
            return Err(text);
        }
    };
    let epoch = consumer.epoch();
    let mut check = StreamCheck::with_offset(consumer.next_sequence(), instance_offset(epoch));
    let line = |check: &StreamCheck, state: &str| format!("{epoch} {} {state}", check.report());
    write(line(&check, "running"))?;
    let mut last_write = Instant::now();
    let end = loop {
        let read = consumer.consume_batch_timeout(256, POLL, |event, sequence, _| {
            check.observe(event, sequence)
        });
        let failure = match read {
            Ok(_) | Err(ConsumeError::Timeout { .. }) => check.result().err(),
            Err(ConsumeError::Closed) => break "closed",
            Err(ConsumeError::ProducerGone { .. }) => break "gone",
            Err(other) => Some(format!(
                "read failed after {} events: {other}",
                check.count()
            )),
        };
        if let Some(text) = failure {
            write(line(&check, &format!("violation {text}")))?;
            return Err(text);
        }
        if last_write.elapsed() >= STATUS_EVERY {
            if leave.exists() {
                break "left";
            }
            write(line(&check, "running"))?;
            last_write = Instant::now();
        }
    };
    // Every batch was checked as it came; this is the record's last word.
    if let Err(text) = check.result() {
        write(line(&check, &format!("violation {text}")))?;
        return Err(text);
    }
    drop(consumer);
    write(line(&check, end))?;
    Ok(line(&check, end))
}

// ---------------------------------------------------------------------------------------------------
// The orchestrator
// ---------------------------------------------------------------------------------------------------

/// Sends `signal` to our own child `pid`, which has not been reaped; whether it was delivered.
fn signal(pid: libc::pid_t, signal: libc::c_int) -> bool {
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is a child this test started and has not
    // reaped (a child leaves the orchestrator's lists when it is reaped), so the pid cannot have been
    // reused.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// A private directory for the run's status and flag files, removed when dropped.
struct RunDir(PathBuf);

impl RunDir {
    fn new() -> RunDir {
        let dir = std::env::temp_dir().join(format!("dmp-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the soak's directory");
        RunDir(dir)
    }

    fn file(&self, name: String) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a consumer's status file says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    epoch: u64,
    first: u64,
    count: u64,
    checksum: u64,
    /// `running`, `left`, `closed`, `gone`, or `violation TEXT`.
    state: String,
}

impl Status {
    fn read(path: &Path) -> Option<Status> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut fields = text.splitn(5, ' ');
        let mut number = || fields.next()?.parse::<u64>().ok();
        let (epoch, first, count, checksum) = (number()?, number()?, number()?, number()?);
        Some(Status {
            epoch,
            first,
            count,
            checksum,
            state: fields.next()?.to_string(),
        })
    }

    fn next(&self) -> u64 {
        self.first + self.count
    }

    fn is_final(&self) -> bool {
        matches!(self.state.as_str(), "left" | "closed" | "gone")
    }
}

/// Where a named consumer about to start must resume, as its slot showed it before the start.
#[derive(Debug, Clone, Copy)]
struct Resume {
    epoch: u64,
    cursor: u64,
}

struct LiveConsumer {
    child: ChildProcess,
    info: ConsumerInfo,
}

struct ConsumerInfo {
    pid: libc::pid_t,
    label: String,
    named: Option<usize>,
    status: PathBuf,
    leave: PathBuf,
    stopped_until: Option<Instant>,
    leaving_since: Option<Instant>,
    resume: Option<Resume>,
}

/// Where the last incarnation of a named consumer stopped: exactly (`exact`, it ended by itself), or at
/// least (it was killed after recording this progress).
#[derive(Debug, Clone, Copy)]
struct LastRun {
    epoch: u64,
    next: u64,
    exact: bool,
}

struct NamedSlot {
    live: bool,
    restart_at: Instant,
    /// Restart only once a producer has created its ring (three times in four): so that the slot's
    /// snapshot is of the instance the consumer attaches to, and its resume can be checked.
    after_producer: bool,
    last: Option<LastRun>,
}

struct ProducerChild {
    child: ChildProcess,
    status: PathBuf,
    stop: PathBuf,
    epoch: Option<u64>,
    started: Instant,
}

enum ProducerSlot {
    Running(ProducerChild),
    Stopping(ProducerChild, Instant),
    Down(Instant),
}

/// One producer instance (segment) that ended: how many events it published, and how many dead
/// consumers it evicted.
#[derive(Debug, Clone, Copy)]
struct Instance {
    published: u64,
    evicted: u64,
}

#[derive(Debug, Default)]
struct Counts {
    joins: u64,
    named_joins: u64,
    leaves: u64,
    closed_ends: u64,
    gone_ends: u64,
    kills: u64,
    anonymous_kills: u64,
    killed_before_attaching: u64,
    stops: u64,
    producer_kills: u64,
    producer_clean_exits: u64,
    producer_restarts: u64,
    verified: u64,
    resumes_checked: u64,
    resumes_unchecked: u64,
    handoffs_checked: u64,
    publish_timeouts: u64,
}

struct Soak {
    name: String,
    dir: RunDir,
    rng: TestRng,
    serial: u64,
    producer: ProducerSlot,
    consumers: Vec<LiveConsumer>,
    named: Vec<NamedSlot>,
    instances: BTreeMap<u64, Instance>,
    /// Consumers whose instance ended (`closed` or `gone`): `(epoch, next, label)`, to compare with the
    /// instance's published count once it is known.
    ends: Vec<(u64, u64, String)>,
    counts: Counts,
    violations: Vec<String>,
    /// No more restarts: the run is shutting down.
    winding_down: bool,
    /// `DMP_VERBOSE` is set: print each producer instance as it ends.
    verbose: bool,
    /// Publishing progress: when a producer last published something new, and the longest gap.
    last_sample: Instant,
    last_progress: (u64, u64, Instant),
    longest_stall: Duration,
}

impl Soak {
    fn new(name: String, rng: TestRng) -> Soak {
        let now = Instant::now();
        Soak {
            name,
            dir: RunDir::new(),
            rng,
            serial: 0,
            producer: ProducerSlot::Down(now),
            consumers: Vec::new(),
            named: (0..NAMED)
                .map(|_| NamedSlot {
                    live: false,
                    restart_at: now,
                    after_producer: true,
                    last: None,
                })
                .collect(),
            instances: BTreeMap::new(),
            ends: Vec::new(),
            counts: Counts::default(),
            violations: Vec::new(),
            winding_down: false,
            verbose: std::env::var_os("DMP_VERBOSE").is_some(),
            last_sample: now,
            last_progress: (0, 0, now),
            longest_stall: Duration::ZERO,
        }
    }

    fn violation(&mut self, text: String) {
        println!("soak: VIOLATION: {text}");
        self.violations.push(text);
    }

    fn absence(&mut self) -> Duration {
        Duration::from_millis(self.rng.between(0, MAX_ABSENCE_MS + 1))
    }

    fn pick(&mut self, len: usize) -> usize {
        self.rng.between(0, len as u64) as usize
    }

    // --- the producer -------------------------------------------------------------------------------

    fn start_producer(&mut self) {
        self.serial += 1;
        let status = self.dir.file(format!("p{}.status", self.serial));
        let stop = self.dir.file(format!("p{}.stop", self.serial));
        let child = ChildProcess::spawn_test_role(
            "soak_producer",
            &[
                (SEGMENT, self.name.clone()),
                (STATUS, status.display().to_string()),
                (FLAG, stop.display().to_string()),
                (SEED, self.rng.next_u64().to_string()),
            ],
        )
        .expect("spawning a producer");
        self.producer = ProducerSlot::Running(ProducerChild {
            child,
            status,
            stop,
            epoch: None,
            started: Instant::now(),
        });
    }

    /// The epoch of the running producer, once it has created its ring.
    fn producer_epoch(&self) -> Option<u64> {
        match &self.producer {
            ProducerSlot::Running(producer) => producer.epoch,
            _ => None,
        }
    }

    fn record_instance(&mut self, epoch: u64, instance: Instance, how: &str, age: Duration) {
        if self.verbose {
            println!(
                "soak: instance {epoch:016x} {how} after {age:.2?}: published {}, evicted {} dead \
                 consumers",
                instance.published, instance.evicted
            );
        }
        if self.instances.insert(epoch, instance).is_some() {
            self.violation(format!("instance {epoch:016x} ended twice"));
        }
    }

    fn service_producer(&mut self) {
        let now = Instant::now();
        match std::mem::replace(&mut self.producer, ProducerSlot::Down(now)) {
            ProducerSlot::Running(mut producer) => {
                if producer.epoch.is_none() {
                    producer.epoch = std::fs::read_to_string(&producer.status)
                        .ok()
                        .and_then(|text| text.parse().ok());
                    assert!(
                        producer.epoch.is_some() || producer.started.elapsed() < STALL,
                        "a producer did not create its ring within {STALL:?}"
                    );
                }
                if producer.child.is_running() {
                    self.producer = ProducerSlot::Running(producer);
                } else {
                    let output = producer.child.wait_timeout(STALL);
                    self.violation(format!(
                        "a producer (epoch {:?}) exited by itself: {output:?}",
                        producer.epoch
                    ));
                    let restart_at = now + self.absence();
                    self.producer = ProducerSlot::Down(restart_at);
                }
            }
            ProducerSlot::Stopping(mut producer, since) => {
                if producer.child.is_running() {
                    assert!(
                        since.elapsed() < STALL,
                        "a producer told to stop did not exit within {STALL:?}"
                    );
                    self.producer = ProducerSlot::Stopping(producer, since);
                    return;
                }
                let epoch = producer.epoch;
                match producer.child.expect_success(STALL) {
                    Ok(report) => {
                        let fields: Vec<u64> = report
                            .split_whitespace()
                            .filter_map(|f| f.parse().ok())
                            .collect();
                        match fields[..] {
                            [reported, published, evicted, timeouts, _ring_full]
                                if Some(reported) == epoch =>
                            {
                                self.counts.producer_clean_exits += 1;
                                self.counts.publish_timeouts += timeouts;
                                let instance = Instance { published, evicted };
                                self.record_instance(
                                    reported,
                                    instance,
                                    "closed",
                                    producer.started.elapsed(),
                                );
                            }
                            _ => self.violation(format!(
                                "producer of epoch {epoch:?} reported {report:?}"
                            )),
                        }
                    }
                    Err(error) => self.violation(format!("a producer told to stop: {error}")),
                }
                let restart_at = now + self.absence();
                self.producer = ProducerSlot::Down(restart_at);
            }
            ProducerSlot::Down(restart_at) => {
                self.producer = ProducerSlot::Down(restart_at);
                if !self.winding_down && now >= restart_at {
                    self.start_producer();
                    self.counts.producer_restarts += 1;
                }
            }
        }
    }

    /// SIGKILLs the producer, then reads what its segment recorded (the next producer reclaims it).
    fn kill_producer(&mut self) {
        let ProducerSlot::Running(mut producer) =
            std::mem::replace(&mut self.producer, ProducerSlot::Down(Instant::now()))
        else {
            unreachable!("kill_producer is only called with a running producer")
        };
        let epoch = producer
            .epoch
            .expect("only a producer with a ring is killed");
        producer.child.kill();
        self.counts.producer_kills += 1;
        match RingSnapshot::open_shared_memory(&self.name) {
            Ok(snapshot)
                if snapshot.epoch == epoch && !snapshot.producer.alive && !snapshot.closed =>
            {
                let instance = Instance {
                    published: snapshot.producer.published,
                    evicted: snapshot.producer.dead_consumers_evicted,
                };
                let age = producer.started.elapsed();
                self.record_instance(epoch, instance, "killed", age);
            }
            Ok(snapshot) => self.violation(format!(
                "after killing the producer of {epoch:016x}, the ring is {:016x} (producer alive: {}, \
                 closed: {})",
                snapshot.epoch, snapshot.producer.alive, snapshot.closed
            )),
            Err(error) => self.violation(format!(
                "after killing the producer of {epoch:016x}, no snapshot: {error}"
            )),
        }
        let restart_at = Instant::now() + self.absence();
        self.producer = ProducerSlot::Down(restart_at);
    }

    fn stop_producer(&mut self) {
        let ProducerSlot::Running(producer) =
            std::mem::replace(&mut self.producer, ProducerSlot::Down(Instant::now()))
        else {
            unreachable!("stop_producer is only called with a running producer")
        };
        std::fs::write(&producer.stop, "").expect("raising a producer's stop flag");
        self.producer = ProducerSlot::Stopping(producer, Instant::now());
    }

    /// Samples the published count: the longest time a running producer published nothing.
    fn sample_progress(&mut self) {
        let now = Instant::now();
        if now - self.last_sample < Duration::from_millis(100) {
            return;
        }
        self.last_sample = now;
        let Some(epoch) = self.producer_epoch() else {
            return;
        };
        let Ok(snapshot) = RingSnapshot::open_shared_memory(&self.name) else {
            return;
        };
        let (last_epoch, last_published, since) = self.last_progress;
        if snapshot.epoch != epoch {
            return;
        }
        if epoch != last_epoch || snapshot.producer.published != last_published {
            self.last_progress = (epoch, snapshot.producer.published, now);
        } else {
            self.longest_stall = self.longest_stall.max(now - since);
        }
    }

    // --- consumers ----------------------------------------------------------------------------------

    fn start_consumer(&mut self, named: Option<usize>) {
        self.serial += 1;
        let id = named.map_or_else(String::new, |k| format!("{PREFIX}_{k}"));
        let resume = named.and_then(|k| self.resume_point(k));
        let status = self.dir.file(format!("c{}.status", self.serial));
        let leave = self.dir.file(format!("c{}.leave", self.serial));
        let child = ChildProcess::spawn_test_role(
            "soak_consumer",
            &[
                (SEGMENT, self.name.clone()),
                (CONSUMER_ID, id.clone()),
                (STATUS, status.display().to_string()),
                (FLAG, leave.display().to_string()),
            ],
        )
        .expect("spawning a consumer");
        let label = if id.is_empty() {
            format!("consumer {} (pid {})", self.serial, child.id())
        } else {
            format!("{id} {} (pid {})", self.serial, child.id())
        };
        self.counts.joins += 1;
        if let Some(k) = named {
            self.counts.named_joins += 1;
            self.named[k].live = true;
        }
        let info = ConsumerInfo {
            pid: child.id() as libc::pid_t,
            label,
            named,
            status,
            leave,
            stopped_until: None,
            leaving_since: None,
            resume,
        };
        self.consumers.push(LiveConsumer { child, info });
    }

    /// Reads the cursor of `named_k`'s slot, whose previous process (if any) has been reaped, so that no
    /// live process can move it; checks it against where that process stopped.
    fn resume_point(&mut self, k: usize) -> Option<Resume> {
        let id = format!("{PREFIX}_{k}");
        let snapshot = RingSnapshot::open_shared_memory(&self.name).ok()?;
        let slots: Vec<_> = snapshot.consumers.iter().filter(|c| c.id == id).collect();
        let [slot] = slots[..] else {
            self.violation(format!(
                "instance {:016x} has {} slots for {id}",
                snapshot.epoch,
                slots.len()
            ));
            return None;
        };
        if slot.alive {
            self.violation(format!(
                "{id}'s slot in {:016x} has a live owner (pid {}) while no process of ours runs it",
                snapshot.epoch, slot.pid
            ));
            return None;
        }
        if !matches!(slot.state, ConsumerState::Reserved | ConsumerState::Active) {
            return None;
        }
        if let Some(last) = self.named[k]
            .last
            .filter(|last| last.epoch == snapshot.epoch)
        {
            self.counts.handoffs_checked += 1;
            let consistent = if last.exact {
                slot.cursor == last.next
            } else {
                slot.cursor >= last.next
            };
            if !consistent {
                self.violation(format!(
                    "{id}'s slot in {:016x} is at {}, but its last process stopped at {} ({})",
                    snapshot.epoch,
                    slot.cursor,
                    last.next,
                    if last.exact { "exactly" } else { "at least" }
                ));
            }
        }
        Some(Resume {
            epoch: snapshot.epoch,
            cursor: slot.cursor,
        })
    }

    /// Accounts for a consumer that is gone (reaped): killed by us (`exit` is `None`), or exited with
    /// `exit`.
    fn finish_consumer(&mut self, consumer: ConsumerInfo, exit: Option<std::process::ExitStatus>) {
        let killed = exit.is_none();
        let status = Status::read(&consumer.status);
        let _ = std::fs::remove_file(&consumer.status);
        let _ = std::fs::remove_file(&consumer.leave);
        if let Some(k) = consumer.named {
            let absence = self.absence();
            let after_producer = self.rng.between(0, 4) != 0;
            let slot = &mut self.named[k];
            slot.live = false;
            slot.restart_at = Instant::now() + absence;
            slot.after_producer = after_producer;
            slot.last = match &status {
                Some(status) => Some(LastRun {
                    epoch: status.epoch,
                    next: status.next(),
                    exact: status.is_final(),
                }),
                // Killed before it recorded anything: it may still have attached and read on.
                None => slot.last.map(|last| LastRun {
                    exact: false,
                    ..last
                }),
            };
        }
        let label = consumer.label;
        let Some(status) = status else {
            if killed {
                self.counts.killed_before_attaching += 1;
            } else {
                self.violation(format!("{label} exited ({exit:?}) without a status"));
            }
            return;
        };
        if let Some(text) = status.state.strip_prefix("violation") {
            self.violation(format!("{label}:{text}"));
            return;
        }
        // A process that ended by itself must have ended well; a killed one may stop anywhere.
        let ended_well = status.is_final() && exit.is_some_and(|e| e.success());
        if !(killed || ended_well) {
            self.violation(format!("{label} exited ({exit:?}) with status {status:?}"));
            return;
        }
        self.counts.verified += status.count;
        if let Some(resume) = consumer.resume {
            if resume.epoch == status.epoch {
                self.counts.resumes_checked += 1;
                if status.first != resume.cursor {
                    self.violation(format!(
                        "{label} resumed at {} in {:016x}; its slot was at {}",
                        status.first, status.epoch, resume.cursor
                    ));
                }
            } else {
                self.counts.resumes_unchecked += 1;
            }
        } else if consumer.named.is_some() {
            self.counts.resumes_unchecked += 1;
        }
        if status.is_final() {
            let expected = StreamCheck::expected_report(
                status.first,
                status.count,
                instance_offset(status.epoch),
            );
            let reported = format!("{} {} {}", status.first, status.count, status.checksum);
            if reported != expected {
                self.violation(format!(
                    "{label} in {:016x} reported {reported:?}, expected {expected:?}",
                    status.epoch
                ));
            }
            match status.state.as_str() {
                "left" => self.counts.leaves += 1,
                "closed" => self.counts.closed_ends += 1,
                _ => self.counts.gone_ends += 1,
            }
            if status.state != "left" {
                self.ends.push((status.epoch, status.next(), label));
            }
        }
    }

    fn service_consumers(&mut self) {
        let now = Instant::now();
        let mut index = 0;
        while index < self.consumers.len() {
            let LiveConsumer { child, info } = &mut self.consumers[index];
            if info.stopped_until.is_some_and(|until| now >= until) {
                signal(info.pid, libc::SIGCONT);
                info.stopped_until = None;
            }
            if child.is_running() {
                if info
                    .leaving_since
                    .is_some_and(|since| since.elapsed() > STALL)
                {
                    let label = info.label.clone();
                    self.violation(format!("{label} did not leave within {STALL:?}"));
                    self.kill_consumer(index);
                    continue;
                }
                index += 1;
                continue;
            }
            let LiveConsumer { child, info } = self.consumers.swap_remove(index);
            match child.wait_timeout(STALL) {
                Ok(output) => self.finish_consumer(info, Some(output.status)),
                Err(error) => {
                    let label = &info.label;
                    self.violation(format!("{label}: {error}"));
                    // Still account for what it recorded (and let a named id run again).
                    self.finish_consumer(info, None);
                }
            }
        }
        if !self.winding_down {
            let producer_ready = self.producer_epoch().is_some();
            for k in 0..NAMED {
                let slot = &self.named[k];
                if !slot.live && now >= slot.restart_at && (producer_ready || !slot.after_producer)
                {
                    self.start_consumer(Some(k));
                }
            }
        }
    }

    fn kill_consumer(&mut self, index: usize) {
        let LiveConsumer { mut child, info } = self.consumers.swap_remove(index);
        child.kill();
        self.counts.kills += 1;
        if info.named.is_none() {
            self.counts.anonymous_kills += 1;
        }
        self.finish_consumer(info, None);
    }

    /// Consumers that can be acted on: not told to leave.
    fn actionable(&self) -> Vec<usize> {
        (0..self.consumers.len())
            .filter(|&i| self.consumers[i].info.leaving_since.is_none())
            .collect()
    }

    fn random_action(&mut self) {
        let actionable = self.actionable();
        let live = actionable.len();
        let roll = self.rng.between(0, 10_000);
        if live < MIN_CONSUMERS {
            self.start_consumer(None);
            return;
        }
        if live > MAX_CONSUMERS {
            let victim = actionable[self.pick(live)];
            if roll < 5_000 {
                self.kill_consumer(victim);
            } else {
                self.leave(victim);
            }
            return;
        }
        match roll {
            0..=399 if live < MAX_CONSUMERS => self.start_consumer(None),
            400..=899 => {
                let candidates: Vec<usize> = actionable
                    .into_iter()
                    .filter(|&i| self.consumers[i].info.stopped_until.is_none())
                    .collect();
                if !candidates.is_empty() {
                    let victim = candidates[self.pick(candidates.len())];
                    let pause = Duration::from_millis(self.rng.between(1, 201));
                    let consumer = &mut self.consumers[victim].info;
                    if signal(consumer.pid, libc::SIGSTOP) {
                        consumer.stopped_until = Some(Instant::now() + pause);
                        self.counts.stops += 1;
                    }
                }
            }
            900..=1_199 => {
                let victim = actionable[self.pick(live)];
                self.kill_consumer(victim);
            }
            1_200..=1_449 => {
                let victim = actionable[self.pick(live)];
                self.leave(victim);
            }
            1_450..=1_464 if self.producer_epoch().is_some() => self.kill_producer(),
            1_465..=1_471 if self.producer_epoch().is_some() => self.stop_producer(),
            _ => {}
        }
    }

    fn leave(&mut self, index: usize) {
        let consumer = &mut self.consumers[index].info;
        std::fs::write(&consumer.leave, "").expect("raising a consumer's leave flag");
        consumer.leaving_since = Some(Instant::now());
    }

    fn tick(&mut self) {
        self.service_producer();
        self.service_consumers();
        self.sample_progress();
    }

    /// Ticks until `done` holds, at most `timeout`; panics naming `what` otherwise.
    fn tick_until(&mut self, what: &str, timeout: Duration, done: impl Fn(&Soak) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(Instant::now() < deadline, "waited {timeout:?} for {what}");
            self.tick();
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Continues every consumer, brings a producer up (one that reclaims a killed producer's segment),
    /// lets every consumer attach, stops the producer cleanly and waits for every consumer to end.
    fn shut_down(&mut self) {
        for LiveConsumer { info: consumer, .. } in &mut self.consumers {
            if consumer.stopped_until.take().is_some() {
                signal(consumer.pid, libc::SIGCONT);
            }
        }
        if let ProducerSlot::Down(_) = self.producer {
            self.producer = ProducerSlot::Down(Instant::now());
        }
        self.tick_until("a last producer ready", STALL, |soak| {
            soak.producer_epoch().is_some()
        });
        self.winding_down = true;
        self.tick_until("every consumer attached or ended", STALL, |soak| {
            soak.consumers.iter().all(|c| c.info.status.exists())
        });
        self.stop_producer();
        self.tick_until("the last producer gone", STALL, |soak| {
            matches!(soak.producer, ProducerSlot::Down(_))
        });
        self.tick_until("every consumer ended", STALL, |soak| {
            soak.consumers.is_empty()
        });
    }

    /// The counts so far, in one line (events published: those of the instances that ended, plus what
    /// the running one had published when last sampled).
    fn counts_line(&self) -> String {
        let c = &self.counts;
        let mut published: u64 = self.instances.values().map(|i| i.published).sum();
        let evicted: u64 = self.instances.values().map(|i| i.evicted).sum();
        let (epoch, current, _) = self.last_progress;
        if self.producer_epoch() == Some(epoch) {
            published += current;
        }
        format!(
            "events {published}, verified {}, joins {} (named {}), leaves {}, kills {}, stops {}, \
             producer kills {}, producer restarts {} (after {} clean exits), evictions {evicted}, \
             named resumes checked {}, violations {}",
            c.verified,
            c.joins,
            c.named_joins,
            c.leaves,
            c.kills,
            c.stops,
            c.producer_kills,
            c.producer_restarts,
            c.producer_clean_exits,
            c.resumes_checked,
            self.violations.len(),
        )
    }

    /// The checks that need every instance ended.
    fn final_checks(&mut self) {
        for (epoch, next, label) in std::mem::take(&mut self.ends) {
            match self.instances.get(&epoch) {
                Some(instance) if instance.published == next => {}
                Some(instance) => self.violation(format!(
                    "{label} ended at {next}, but {epoch:016x} published {}",
                    instance.published
                )),
                None => {
                    self.violation(format!("{label} ended in an unknown instance {epoch:016x}"))
                }
            }
        }
        let evicted: u64 = self.instances.values().map(|i| i.evicted).sum();
        if evicted > self.counts.anonymous_kills {
            self.violation(format!(
                "{evicted} dead consumers evicted, but only {} anonymous consumers killed",
                self.counts.anonymous_kills
            ));
        }
        let body = self.name.trim_start_matches('/').to_string();
        let left: Vec<String> = std::fs::read_dir("/dev/shm")
            .expect("reading /dev/shm")
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|file| file.starts_with(&body))
            .collect();
        if !left.is_empty() {
            self.violation(format!("left in /dev/shm: {left:?}"));
        }
        let children = live_children();
        if !children.is_empty() {
            self.violation(format!("child processes left: {children:?}"));
        }
    }
}

/// Process ids whose parent is this process.
fn live_children() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .expect("reading /proc")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(me)
            })
        })
        .collect()
}

#[test]
#[ignore = "the soak lane: minutes long; run it with scripts/soak"]
fn soak() {
    let seconds: u64 = std::env::var(SOAK_SECS_ENV).map_or(DEFAULT_SOAK_SECS, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{SOAK_SECS_ENV}={value:?} is not a number of seconds"))
    });
    let duration = Duration::from_secs(seconds);
    let rng = TestRng::from_env_or_clock("soak");
    let name = unique_segment_name("soak");
    // Removes the segment if the test fails half-way; the final check looks before this drops.
    let _segment = SegmentFile::new(&name);
    let mut soak = Soak::new(name, rng);
    let started = Instant::now();
    soak.start_producer();
    soak.tick_until("the first producer ready", STALL, |soak| {
        soak.producer_epoch().is_some()
    });
    let startup = started.elapsed();
    let churn_started = Instant::now();
    let deadline = churn_started + duration;
    let mut next_report = churn_started + REPORT_EVERY;
    while Instant::now() < deadline {
        if Instant::now() >= next_report {
            next_report += REPORT_EVERY;
            let elapsed = churn_started.elapsed().as_secs();
            println!("soak: after {elapsed} s: {}", soak.counts_line());
        }
        soak.tick();
        soak.random_action();
        let pause = soak.rng.between(2, 13);
        std::thread::sleep(Duration::from_millis(pause));
    }
    let shutdown_started = Instant::now();
    soak.shut_down();
    let shutdown = shutdown_started.elapsed();
    soak.final_checks();

    let c = &soak.counts;
    let published: u64 = soak.instances.values().map(|i| i.published).sum();
    println!(
        "soak: {seconds} s of churn; startup {startup:?}, shutdown {shutdown:?}; {} producer instances; \
         longest time a live producer published nothing: {:?}; {} publish timeouts; {} consumers ended \
         Closed, {} ProducerGone; {} killed before attaching; {} named resumes unchecked (the producer \
         changed in between); {} named handoffs checked against the slot",
        soak.instances.len(),
        soak.longest_stall,
        c.publish_timeouts,
        c.closed_ends,
        c.gone_ends,
        c.killed_before_attaching,
        c.resumes_unchecked,
        c.handoffs_checked,
    );
    println!("soak counts: {}", soak.counts_line());
    assert!(
        soak.violations.is_empty(),
        "{} violations (seed above):\n{}",
        soak.violations.len(),
        soak.violations.join("\n")
    );
    assert!(
        published > 0 && c.verified > 0,
        "nothing was published or read"
    );
    assert!(
        soak.longest_stall < STALL,
        "publishing stalled for {:?}",
        soak.longest_stall
    );
    if seconds >= 30 {
        assert!(c.kills > 0 && c.leaves > 0 && c.stops > 0, "{c:?}");
        assert!(c.producer_kills > 0 && c.producer_clean_exits > 0, "{c:?}");
        assert!(c.resumes_checked > 0, "no named resume was checked: {c:?}");
    }
}
