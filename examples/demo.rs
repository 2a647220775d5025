//! The main demonstration: one producer process broadcasting millions of events to consumer processes.
//!
//! ```text
//! cargo run --release --example demo -- [--consumers N] [--events N] [--capacity N]
//! ```
//!
//! Part 1, broadcast: the producer creates a ring, starts N consumer processes (this same program,
//! re-executed), waits until they have attached, publishes the events and closes the ring. Each consumer
//! verifies every event (sequence, payload checksum, order) and reports what it received; the producer
//! prints the verdict.
//!
//! Part 2, crashes: a consumer that stops reading is killed with SIGKILL while the producer is blocked on
//! it (the producer goes on without it), then a producer is killed mid-stream (its consumers read
//! everything it published, then learn it is gone) and a new producer takes over the name.
//!
//! Part 3, a ring in a file: a producer process writes more than a ring's worth of events to a
//! memory-mapped file and exits; a consumer process started afterwards replays what the file still holds
//! (`StartPosition::Earliest`), while another consumer waits on an idle ring and reports how little CPU
//! its blocking wait used.
//!
//! Part 4, how consumers consume: a two-stage pipeline across processes (a journal stage, and a business
//! stage that sees only what the journal has committed), each run by an event processor thread, beside
//! an untethered audit process that takes 100 µs per event and never slows the producer.

use disruptor_mp::{
    attach_mmap_consumer, attach_shared_consumer, build_mmap_single_producer,
    build_shared_single_producer, portable_shm_segment_name, StartPosition,
};
use disruptor_mp::{ConsumeError, CoordinationMode, ProcessorExit, RingEvent};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, fold_checksum, CheckedEvent, ChildProcess, SignalFile,
    StreamCheck,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_DEMO_SEGMENT";
const STALL_AFTER: &str = "DMP_DEMO_STALL_AFTER";
const RING_FILE: &str = "DMP_DEMO_RING_FILE";
/// Events the part 3 producer writes to its file ring, and the ring's capacity.
const FILE_EVENTS: u64 = 10_000;
const FILE_CAPACITY: usize = 4096;
/// How long the part 3 idle consumer waits on a ring nobody publishes to.
const IDLE_WAIT: Duration = Duration::from_secs(1);
const STALL: Duration = Duration::from_secs(30);
const STAGE_ID: &str = "DMP_DEMO_STAGE_ID";
const AFTER: &str = "DMP_DEMO_AFTER";
const READY: &str = "DMP_DEMO_READY";
/// Events the part 4 producer publishes through the pipeline.
const PIPELINE_EVENTS: u64 = 1_000_000;
/// How long the part 4 untethered audit takes per event.
const AUDIT_PER_EVENT: Duration = Duration::from_micros(100);

struct Options {
    consumers: usize,
    events: u64,
    capacity: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        consumers: 3,
        events: 10_000_000,
        capacity: 4096,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--consumers" => options.consumers = number()? as usize,
            "--events" => options.events = number()?,
            "--capacity" => options.capacity = number()? as usize,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.consumers == 0 || options.consumers > 64 {
        return Err("--consumers must be between 1 and 64".into());
    }
    Ok(options)
}

/// A consumer process: reads until the producer closes, verifying every event.
fn consume() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut consumer = attach_shared_consumer::<CheckedEvent>(&name)
        .with_consumer_id(&format!("demo-consumer-{}", std::process::id()))
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let (mut next, mut checksum, mut bad) = (consumer.next_sequence(), 0u64, 0u64);
    let mut started: Option<Instant> = None;
    loop {
        match consumer.consume_batch_timeout(4096, STALL, |event, sequence, _| {
            if sequence != next || event.sequence != next || !event.is_intact() {
                bad += 1;
            }
            checksum = fold_checksum(checksum, event.sequence);
            next += 1;
        }) {
            Ok(_) => {
                started.get_or_insert_with(Instant::now);
            }
            Err(ConsumeError::Closed) => break,
            Err(e) => return Err(format!("stalled after {next} events: {e}")),
        }
    }
    let seconds = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(format!(
        "{} {} {} {} {}",
        std::process::id(),
        next,
        checksum,
        bad,
        seconds
    ))
}

fn run(options: &Options) -> Result<bool, Box<dyn std::error::Error>> {
    let name = portable_shm_segment_name(&format!("disruptor-mp-demo-{}", std::process::id()));
    let mut producer =
        build_shared_single_producer::<CheckedEvent>(&name, options.capacity).build_producer()?;
    println!(
        "producer (pid {}): ring {} of {} x {}-byte `{}` events, {} CPUs",
        std::process::id(),
        producer.segment_name(),
        options.capacity,
        CheckedEvent::LAYOUT.size,
        CheckedEvent::LAYOUT.name,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let consumers = (0..options.consumers)
        .map(|_| ChildProcess::spawn_binary_role("consumer", &[(SEGMENT, name.clone())]))
        .collect::<Result<Vec<_>, _>>()?;
    producer.wait_for_consumers(options.consumers, STALL)?;
    println!(
        "producer: {} consumer processes attached",
        options.consumers
    );

    let started = Instant::now();
    let mut batch = Vec::with_capacity(256);
    let mut sequence = 0;
    while sequence < options.events {
        batch.clear();
        batch.extend((sequence..options.events.min(sequence + 256)).map(CheckedEvent::new));
        producer.publish_batch_timeout(&batch, STALL)?;
        sequence += batch.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats = producer.stats();
    drop(producer); // closes the ring: consumers drain, then stop
    println!(
        "producer: published {} events in {:.3} s ({:.1} M events/s), found the ring full {} times",
        stats.published,
        elapsed,
        stats.published as f64 / elapsed / 1e6,
        stats.ring_full
    );

    let expected_checksum = (0..options.events).fold(0, fold_checksum);
    let mut all_good = true;
    for (index, consumer) in consumers.into_iter().enumerate() {
        let report = consumer.expect_success(Duration::from_secs(300))?;
        let fields: Vec<&str> = report.split_whitespace().collect();
        let [pid, count, checksum, bad, seconds] = fields[..] else {
            return Err(format!("malformed consumer report {report:?}").into());
        };
        let (count, bad): (u64, u64) = (count.parse()?, bad.parse()?);
        let good =
            count == options.events && bad == 0 && checksum.parse::<u64>()? == expected_checksum;
        all_good &= good;
        let seconds: f64 = seconds.parse()?;
        println!(
            "consumer {} (pid {pid}): received {count} events, {} out of order or corrupted, checksum {} ({:.1} M events/s)",
            index + 1,
            bad,
            if good { "OK" } else { "MISMATCH" },
            count as f64 / seconds.max(1e-9) / 1e6
        );
    }
    println!(
        "verdict: {}",
        if all_good {
            "every consumer received every event once, in order, intact"
        } else {
            "FAILED"
        }
    );
    Ok(all_good)
}

/// Part 2 consumer: reads until the ring closes or its producer is gone; `stall-after` > 0 makes it stop
/// reading (and sleep until killed) after that many events. Reports `count bad outcome monotonic_ns`.
fn crash_consume() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let stall_after: u64 = child_arg(STALL_AFTER);
    let mut consumer = attach_shared_consumer::<CheckedEvent>(&name)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let (mut next, mut bad) = (consumer.next_sequence(), 0u64);
    loop {
        let result = consumer.consume_batch_timeout(256, STALL, |event, sequence, _| {
            if sequence != next || event.sequence != next || !event.is_intact() {
                bad += 1;
            }
            next += 1;
        });
        if stall_after > 0 && next >= stall_after {
            std::thread::sleep(STALL); // stuck: the parent kills it
        }
        let outcome = match result {
            Ok(_) => continue,
            Err(ConsumeError::Closed) => "closed",
            Err(ConsumeError::ProducerGone { .. }) => "producer-gone",
            Err(e) => return Err(format!("after {next} events: {e}")),
        };
        return Ok(format!("{next} {bad} {outcome} {}", monotonic_ns()));
    }
}

/// Part 2 producer that will be killed: publishes events in small batches, a little at a time.
fn doomed_producer() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut producer = build_shared_single_producer::<CheckedEvent>(&name, 1024)
        .with_coordination(CoordinationMode::WaitForConsumers {
            min_consumers: 2,
            timeout: STALL,
        })
        .build_producer()
        .map_err(|e| e.to_string())?;
    for sequence in 0.. {
        producer
            .publish(CheckedEvent::new(sequence))
            .map_err(|e| e.to_string())?;
        if sequence % 64 == 63 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    unreachable!("publishes until killed")
}

/// The monotonic clock in nanoseconds, comparable between processes of this machine.
fn monotonic_ns() -> u64 {
    // SAFETY: `clock_gettime` writes a `timespec` that the zeroed value provides room for.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `now` is a valid out-pointer; CLOCK_MONOTONIC is always available.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

fn spawn_crash_consumer(name: &str, stall_after: u64) -> Result<ChildProcess, std::io::Error> {
    ChildProcess::spawn_binary_role(
        "crash-consumer",
        &[
            (SEGMENT, name.to_string()),
            (STALL_AFTER, stall_after.to_string()),
        ],
    )
}

/// `count bad outcome monotonic_ns` from a part 2 consumer.
fn crash_report(
    child: ChildProcess,
) -> Result<(u64, u64, String, u64), Box<dyn std::error::Error>> {
    let report = child.expect_success(STALL)?;
    let fields: Vec<&str> = report.split_whitespace().collect();
    let [count, bad, outcome, at] = fields[..] else {
        return Err(format!("malformed consumer report {report:?}").into());
    };
    Ok((
        count.parse()?,
        bad.parse()?,
        outcome.to_string(),
        at.parse()?,
    ))
}

/// Part 2: what a SIGKILL does, to a consumer and to the producer.
fn crashes() -> Result<bool, Box<dyn std::error::Error>> {
    println!();
    println!("part 2: killing processes with SIGKILL");

    // A consumer stops reading, so the producer blocks on it; then the consumer is killed.
    println!("a consumer dies while the producer waits for it:");
    let name = portable_shm_segment_name(&format!("disruptor-mp-crash-{}", std::process::id()));
    let mut producer =
        build_shared_single_producer::<CheckedEvent>(&name, 1024).build_producer()?;
    let survivors = [
        spawn_crash_consumer(&name, 0)?,
        spawn_crash_consumer(&name, 0)?,
    ];
    let victim = spawn_crash_consumer(&name, 5_000)?;
    producer.wait_for_consumers(3, STALL)?;
    let victim_pid = victim.id() as libc::pid_t;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signals our own child, which is alive (it sleeps until killed) and not yet reaped.
        unsafe { libc::kill(victim_pid, libc::SIGKILL) };
        Instant::now()
    });
    let events = 100_000;
    let (mut longest, mut longest_ended) = (Duration::ZERO, Instant::now());
    for sequence in 0..events {
        let start = Instant::now();
        producer.publish(CheckedEvent::new(sequence))?; // no timeout: it must not wait for ever
        if start.elapsed() > longest {
            (longest, longest_ended) = (start.elapsed(), Instant::now());
        }
    }
    let killed = killer.join().map_err(|_| "killer thread panicked")?;
    let evicted = producer.evicted_consumers();
    drop(producer);
    drop(victim);
    println!(
        "  consumer 3 (pid {victim_pid}) stopped reading; the producer blocked on it for {:.0} ms until it \
         was killed, and went on {:.0} ms after the kill (evicted consumers: {evicted})",
        longest.as_secs_f64() * 1e3,
        longest_ended.saturating_duration_since(killed).as_secs_f64() * 1e3,
    );
    let mut all_good = evicted == 1;
    for (index, survivor) in survivors.into_iter().enumerate() {
        let (count, bad, outcome, _) = crash_report(survivor)?;
        let good = count == events && bad == 0 && outcome == "closed";
        all_good &= good;
        println!(
            "  consumer {} received {count} of {events} events, {bad} out of order or corrupted, then the \
             ring {outcome}: {}",
            index + 1,
            if good { "OK" } else { "MISMATCH" }
        );
    }

    // The producer is killed mid-stream, then a new producer takes over its name.
    println!("the producer dies mid-stream:");
    let name = portable_shm_segment_name(&format!("disruptor-mp-doomed-{}", std::process::id()));
    let mut doomed =
        ChildProcess::spawn_binary_role("doomed-producer", &[(SEGMENT, name.clone())])?;
    let consumers = [
        spawn_crash_consumer(&name, 0)?,
        spawn_crash_consumer(&name, 0)?,
    ];
    std::thread::sleep(Duration::from_millis(500));
    let doomed_pid = doomed.id();
    let killed_ns = monotonic_ns();
    doomed.kill();
    let mut counts = Vec::new();
    for (index, consumer) in consumers.into_iter().enumerate() {
        let (count, bad, outcome, at_ns) = crash_report(consumer)?;
        let good = bad == 0 && outcome == "producer-gone";
        all_good &= good;
        counts.push(count);
        println!(
            "  consumer {} read {count} events, {bad} out of order or corrupted, then learned that producer \
             {doomed_pid} was gone {:.0} ms after the kill: {}",
            index + 1,
            at_ns.saturating_sub(killed_ns) as f64 / 1e6,
            if good { "OK" } else { "MISMATCH" }
        );
    }
    all_good &= counts.windows(2).all(|pair| pair[0] == pair[1]);
    let restarted = build_shared_single_producer::<CheckedEvent>(&name, 1024).build_producer()?;
    println!(
        "  a new producer (pid {}) reclaimed the dead producer's name {} (new epoch {:#x})",
        std::process::id(),
        restarted.segment_name(),
        restarted.epoch()
    );
    println!(
        "verdict: {}",
        if all_good {
            "no process death wedged or misled a peer; nothing was lost"
        } else {
            "FAILED"
        }
    );
    Ok(all_good)
}

/// Part 3 producer: writes `FILE_EVENTS` events to the file ring and exits, leaving the file.
fn file_producer() -> Result<String, String> {
    let path: String = child_arg(RING_FILE);
    let mut producer = build_mmap_single_producer::<CheckedEvent>(&path, FILE_CAPACITY)
        .build_producer()
        .map_err(|e| e.to_string())?;
    for sequence in 0..FILE_EVENTS {
        producer
            .publish(CheckedEvent::new(sequence))
            .map_err(|e| e.to_string())?;
    }
    Ok(format!("{FILE_EVENTS}"))
}

/// Part 3 replay: reads what the closed file ring still holds, from its oldest event.
fn file_replay() -> Result<String, String> {
    let path: String = child_arg(RING_FILE);
    let mut consumer = attach_mmap_consumer::<CheckedEvent>(&path)
        .with_start_position(StartPosition::Earliest)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let first = consumer.next_sequence();
    let (mut next, mut bad) = (first, 0u64);
    loop {
        match consumer.consume_batch_timeout(4096, STALL, |event, sequence, _| {
            if sequence != next || event.sequence != next || !event.is_intact() {
                bad += 1;
            }
            next += 1;
        }) {
            Ok(_) => {}
            Err(ConsumeError::Closed) => break,
            Err(e) => return Err(format!("replay stopped at {next}: {e}")),
        }
    }
    Ok(format!("{first} {} {bad}", next - first))
}

/// Part 3 idle consumer: waits `IDLE_WAIT` on a ring nobody publishes to, with the default (blocking)
/// wait strategy, and reports the CPU time the wait used.
fn idle_consumer() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let cpu_before = cpu_time();
    let started = Instant::now();
    match consumer.consume_next_timeout(IDLE_WAIT) {
        Err(ConsumeError::Timeout { .. }) => {}
        other => return Err(format!("expected a timeout on an idle ring, got {other:?}")),
    }
    let cpu = cpu_time().saturating_sub(cpu_before);
    Ok(format!(
        "{} {}",
        started.elapsed().as_micros(),
        cpu.as_micros()
    ))
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: `rusage` is plain data for which all-zero bytes are valid, and getrusage only writes it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Part 3: a ring in a file outlives its producer; a blocking wait costs no CPU.
fn file_ring() -> Result<bool, Box<dyn std::error::Error>> {
    println!();
    println!("part 3: a ring in a file, and a consumer that sleeps while idle");
    let dir = std::env::temp_dir().join(format!("disruptor-mp-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ticks.ring");
    let env = [(RING_FILE, path.display().to_string())];
    let outcome = (|| -> Result<bool, Box<dyn std::error::Error>> {
        ChildProcess::spawn_test_role("file-producer", &env)?.expect_success(STALL)?;
        println!(
            "  a producer process wrote {FILE_EVENTS} events to {} (capacity {FILE_CAPACITY}) and exited; \
             the file stays",
            path.display()
        );
        let report = ChildProcess::spawn_test_role("file-replay", &env)?.expect_success(STALL)?;
        let fields: Vec<u64> = report
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let (first, count, bad) = (fields[0], fields[1], fields[2]);
        let replay_ok = first == FILE_EVENTS - FILE_CAPACITY as u64
            && count == FILE_CAPACITY as u64
            && bad == 0;
        println!(
            "  a consumer process started afterwards replayed {count} events from sequence {first} \
             (StartPosition::Earliest), {bad} bad, then saw the ring closed: {}",
            if replay_ok { "ok" } else { "FAILED" }
        );

        let name =
            portable_shm_segment_name(&format!("disruptor-mp-demo-idle-{}", std::process::id()));
        let producer = build_shared_single_producer::<u64>(&name, 1024).build_producer()?;
        let idle = ChildProcess::spawn_test_role("idle-consumer", &[(SEGMENT, name.clone())])?;
        let report = idle.expect_success(STALL)?;
        drop(producer);
        let fields: Vec<u64> = report
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let (waited_us, cpu_us) = (fields[0], fields[1]);
        let share = cpu_us as f64 / waited_us.max(1) as f64 * 100.0;
        println!(
            "  an idle consumer waited {:.2} s for events with the default wait strategy (Blocking) and \
             used {:.2} ms of CPU: {share:.2}% of a core",
            waited_us as f64 / 1e6,
            cpu_us as f64 / 1e3
        );
        Ok(replay_ok)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// Part 4 stage: an event processor behind the producer (or behind the stage named in `AFTER`) that
/// verifies every event; reports `first count ok|failure`.
fn pipeline_stage() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let id: String = child_arg(STAGE_ID);
    let after: String = std::env::var(AFTER).unwrap_or_default();
    let builder = attach_shared_consumer::<CheckedEvent>(&name)
        .with_consumer_id(&id)
        .with_attach_timeout(STALL);
    let builder = if after.is_empty() {
        builder
    } else {
        builder.after([after.as_str()])
    };
    let consumer = builder.build_consumer().map_err(|e| e.to_string())?;
    let check = Arc::new(Mutex::new(StreamCheck::new(consumer.next_sequence())));
    let shared = Arc::clone(&check);
    let processor = consumer
        .handle_events_with(move |event, sequence, _end_of_batch| {
            shared.lock().unwrap().observe(event, sequence);
        })
        .map_err(|e| e.to_string())?;
    SignalFile::raise(&child_arg::<String>(READY), "attached").map_err(|e| e.to_string())?;
    let exit = processor
        .join_timeout(STALL * 4)
        .map_err(|_| "the processor did not end".to_string())?;
    if exit != ProcessorExit::Ended(ConsumeError::Closed) {
        return Err(format!("the processor ended with {exit:?}"));
    }
    let check = check.lock().unwrap();
    check.result()?;
    Ok(format!("{} {}", check.first(), check.count()))
}

/// Part 4 audit: an untethered reader taking `AUDIT_PER_EVENT` per event; reports
/// `read missed laps bad`.
fn pipeline_audit() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut audit = attach_shared_consumer::<CheckedEvent>(&name)
        .with_consumer_id("audit")
        .with_attach_timeout(STALL)
        .untethered()
        .build_consumer()
        .map_err(|e| e.to_string())?;
    SignalFile::raise(&child_arg::<String>(READY), "attached").map_err(|e| e.to_string())?;
    let (mut read, mut missed, mut laps, mut bad) = (0u64, 0u64, 0u64, 0u64);
    loop {
        match audit.consume_next_timeout(STALL) {
            Ok((event, sequence)) => {
                read += 1;
                if event.sequence != sequence || !event.is_intact() {
                    bad += 1;
                }
                std::thread::sleep(AUDIT_PER_EVENT);
            }
            Err(ConsumeError::Lapped { missed: lost, .. }) => {
                missed += lost;
                laps += 1;
            }
            Err(ConsumeError::Closed) => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(format!("{read} {missed} {laps} {bad}"))
}

/// Part 4: a pipeline across processes, and an untethered reader that never slows the producer.
fn pipeline() -> Result<bool, Box<dyn std::error::Error>> {
    println!();
    println!(
        "part 4: a pipeline across processes, and a slow reader that never slows the producer"
    );
    let name = portable_shm_segment_name(&format!("disruptor-mp-demo-pipe-{}", std::process::id()));
    let mut producer =
        build_shared_single_producer::<CheckedEvent>(&name, 4096).build_producer()?;
    let start = |role: &str,
                 id: &str,
                 after: &str|
     -> Result<(ChildProcess, SignalFile), Box<dyn std::error::Error>> {
        let ready = SignalFile::new(&format!("demo-{id}"));
        let child = ChildProcess::spawn_test_role(
            role,
            &[
                (SEGMENT, name.clone()),
                (STAGE_ID, id.to_string()),
                (AFTER, after.to_string()),
                (READY, ready.path()),
            ],
        )?;
        Ok((child, ready))
    };
    let mut children = vec![
        ("business", start("pipeline-stage", "business", "journal")?),
        ("journal", start("pipeline-stage", "journal", "")?),
        ("audit", start("pipeline-audit", "audit", "")?),
    ];
    for (_, (child, ready)) in &mut children {
        ready.wait_for(child, STALL)?;
    }
    let started = Instant::now();
    for sequence in 0..PIPELINE_EVENTS {
        producer.publish(CheckedEvent::new(sequence))?;
    }
    let elapsed = started.elapsed();
    let stats = producer.stats();
    drop(producer);
    let mut ok = true;
    for (role, (child, _)) in children {
        let pid = child.id();
        let report = child.expect_success(STALL * 4)?;
        let fields: Vec<u64> = report
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        match role {
            "audit" => {
                let (read, missed, laps, bad) = (fields[0], fields[1], fields[2], fields[3]);
                ok &= bad == 0 && read + missed <= PIPELINE_EVENTS;
                println!(
                    "  audit (pid {pid}), untethered, {} µs per event: read {read} validated events, was told \
                     it missed {missed} in {laps} laps, {bad} bad",
                    AUDIT_PER_EVENT.as_micros()
                );
            }
            stage => {
                let (first, count) = (fields[0], fields[1]);
                ok &= first == 0 && count == PIPELINE_EVENTS;
                let behind = if stage == "business" {
                    ", behind the journal"
                } else {
                    ""
                };
                println!(
                    "  {stage} (pid {pid}), an event processor{behind}: handled {count} events from sequence \
                     {first}, in order, intact, then saw the ring closed"
                );
            }
        }
    }
    println!(
        "  the producer published {PIPELINE_EVENTS} events in {:.3} s ({:.1} M events/s); only the two stages \
         held it back (found the ring full {} times), never the audit",
        elapsed.as_secs_f64(),
        PIPELINE_EVENTS as f64 / elapsed.as_secs_f64() / 1e6,
        stats.ring_full
    );
    println!(
        "verdict: {}",
        if ok {
            "every stage saw every event once, in order, intact; the slow reader lost events, not \
             the producer"
        } else {
            "FAILED"
        }
    );
    Ok(ok)
}

fn main() {
    dispatch_child_role(|role| match role {
        "pipeline-stage" => pipeline_stage(),
        "pipeline-audit" => pipeline_audit(),
        "consumer" => consume(),
        "crash-consumer" => crash_consume(),
        "doomed-producer" => doomed_producer(),
        "file-producer" => file_producer(),
        "file-replay" => file_replay(),
        "idle-consumer" => idle_consumer(),
        other => Err(format!("unknown role {other}")),
    });
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("demo: {error}\nusage: demo [--consumers N] [--events N] [--capacity N]");
            std::process::exit(2);
        }
    };
    let outcome = run(&options)
        .and_then(|broadcast| Ok(crashes()? && broadcast))
        .and_then(|earlier| Ok(file_ring()? && earlier))
        .and_then(|earlier| Ok(pipeline()? && earlier));
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("demo: {error}");
            std::process::exit(1);
        }
    }
}
