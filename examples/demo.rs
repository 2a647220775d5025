//! The main demonstration: one producer process broadcasting millions of events to consumer processes.
//!
//! ```text
//! cargo run --release --example demo -- [--consumers N] [--events N] [--capacity N]
//! ```
//!
//! The producer creates a ring, starts N consumer processes (this same program, re-executed), waits until
//! they have attached, publishes the events and closes the ring. Each consumer verifies every event
//! (sequence, payload checksum, order) and reports what it received; the producer prints the verdict.

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name,
};
use disruptor_mp::{ConsumeError, RingEvent};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, fold_checksum, CheckedEvent, ChildProcess,
};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_DEMO_SEGMENT";
const STALL: Duration = Duration::from_secs(30);

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

fn main() {
    dispatch_child_role(|role| match role {
        "consumer" => consume(),
        other => Err(format!("unknown role {other}")),
    });
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("demo: {error}\nusage: demo [--consumers N] [--events N] [--capacity N]");
            std::process::exit(2);
        }
    };
    match run(&options) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("demo: {error}");
            std::process::exit(1);
        }
    }
}
