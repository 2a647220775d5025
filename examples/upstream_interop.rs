//! Code written against the upstream `disruptor` crate publishes to another process unchanged.
//!
//! ```text
//! cargo run --release --example upstream_interop -- [EVENTS]
//! ```
//!
//! `publish_ticks` knows only upstream's `disruptor::Producer` trait. It runs twice: (a) on upstream's own
//! in-process disruptor, whose handler thread counts the ticks and sums them into a checksum, and (b) on
//! the producer of a disruptor-mp ring turned into an upstream producer with `Producer::into_upstream`,
//! with a consumer in a child process (this program, re-executed) counting and summing what it reads. Both
//! sides print what they received; the verdict says whether they match.

use disruptor::BusySpinWithSpinLoopHint;
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name, ConsumeError,
    RingEvent,
};
use disruptor_mp_suite::{child_arg, dispatch_child_role, fold_checksum, ChildProcess};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

const SEGMENT: &str = "DMP_UPSTREAM_SEGMENT";
/// Longest any wait may take before the example gives up.
const STALL: Duration = Duration::from_secs(30);
const CAPACITY: usize = 4096;

/// A market-data tick, as both programs define it.
#[derive(RingEvent, Clone, Copy, Default, Debug)]
#[repr(C)]
struct Tick {
    instrument: u32,
    side: u8,
    _pad: [u8; 3],
    price: f64,
    qty: u64,
}

/// The `n`th tick of the stream.
fn tick(n: u64) -> Tick {
    Tick {
        instrument: (n % 7) as u32,
        side: (n % 2) as u8,
        price: 100.0 + (n % 1000) as f64 * 0.25,
        qty: n,
        ..Tick::default()
    }
}

/// What a receiver saw: how many ticks, and an order-sensitive checksum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Received {
    count: u64,
    checksum: u64,
}

impl Received {
    fn add(&mut self, tick: &Tick) {
        self.count += 1;
        let word = tick.qty ^ tick.price.to_bits() ^ (u64::from(tick.instrument) << 56);
        self.checksum = fold_checksum(self.checksum, word ^ u64::from(tick.side));
    }
}

/// Written against upstream's trait only: publishes ticks `0..count`, singly and in batches of 32.
fn publish_ticks<P: disruptor::Producer<Tick>>(producer: &mut P, count: u64) {
    let mut n = 0;
    while n < count {
        if (n / 1024) % 2 == 0 {
            let value = n;
            producer.publish(|slot| *slot = tick(value));
            n += 1;
        } else {
            let batch = (count - n).min(32);
            producer.batch_publish(batch as usize, |slots| {
                for slot in slots {
                    *slot = tick(n);
                    n += 1;
                }
            });
        }
    }
}

/// Runs `work` on a thread of its own, giving up after `limit`: upstream's blocking publishes and its
/// drop (which joins the handler thread) have no timeout of their own.
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    receiver
        .recv_timeout(limit)
        .map_err(|_| format!("{what} did not finish within {limit:?}"))
}

/// (a) Upstream's in-process disruptor, its handler counting and summing.
fn in_process(events: u64) -> Result<Received, String> {
    let received = Arc::new(Mutex::new(Received::default()));
    let handler_received = Arc::clone(&received);
    let mut producer =
        disruptor::build_single_producer(CAPACITY, Tick::default, BusySpinWithSpinLoopHint)
            .handle_events_with(move |tick: &Tick, _sequence, _end_of_batch| {
                handler_received.lock().expect("handler state").add(tick)
            })
            .build();
    within(STALL, "publishing in process", move || {
        publish_ticks(&mut producer, events);
        drop(producer); // joins the handler once it has seen every tick
    })?;
    let received = *received.lock().expect("handler state");
    Ok(received)
}

/// (b) A disruptor-mp ring behind an upstream producer, read by a consumer process.
fn across_processes(events: u64) -> Result<Received, String> {
    let name = portable_shm_segment_name(&format!("dmp-upstream-example-{}", std::process::id()));
    let producer = build_shared_single_producer::<Tick>(&name, CAPACITY)
        .build_producer()
        .map_err(|e| e.to_string())?;
    let consumer = ChildProcess::spawn_binary_role("consumer", &[(SEGMENT, name.clone())])
        .map_err(|e| format!("starting the consumer process: {e}"))?;
    producer
        .wait_for_consumers(1, STALL)
        .map_err(|e| e.to_string())?;
    println!(
        "(b) consumer process {} attached to {}",
        consumer.id(),
        producer.segment_name()
    );
    let mut bridge = producer.into_upstream(BusySpinWithSpinLoopHint);
    within(STALL, "publishing through the bridge", move || {
        publish_ticks(bridge.producer(), events);
        drop(bridge); // delivers every tick, then closes the ring and removes its name
    })?;
    let report = consumer.expect_success(STALL)?;
    let mut words = report.split_whitespace().map(str::parse::<u64>);
    match (words.next(), words.next()) {
        (Some(Ok(count)), Some(Ok(checksum))) => Ok(Received { count, checksum }),
        _ => Err(format!("malformed report from the consumer: {report:?}")),
    }
}

/// The consumer process: reads until the producer closes the ring; reports `count checksum`.
fn consume() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let mut consumer = attach_shared_consumer::<Tick>(&name)
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let mut received = Received::default();
    loop {
        match consumer.consume_batch_timeout(4096, STALL, |tick, _, _| received.add(tick)) {
            Ok(_) => {}
            Err(ConsumeError::Closed) => break,
            Err(e) => return Err(format!("after {} ticks: {e}", received.count)),
        }
    }
    Ok(format!("{} {}", received.count, received.checksum))
}

fn run(events: u64) -> Result<bool, String> {
    let started = Instant::now();
    let upstream = in_process(events)?;
    println!(
        "(a) upstream in-process handler: {} ticks, checksum {:#018x} ({:.3} s)",
        upstream.count,
        upstream.checksum,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let ours = across_processes(events)?;
    println!(
        "(b) disruptor-mp consumer process: {} ticks, checksum {:#018x} ({:.3} s)",
        ours.count,
        ours.checksum,
        started.elapsed().as_secs_f64()
    );
    let matched = upstream == ours && ours.count == events;
    println!(
        "{}",
        if matched {
            "match: the same function fed both, and both received the same ticks"
        } else {
            "MISMATCH: the two receivers saw different ticks"
        }
    );
    Ok(matched)
}

fn main() {
    dispatch_child_role(|role| match role {
        "consumer" => consume(),
        other => Err(format!("unknown role {other}")),
    });
    let events = match std::env::args()
        .nth(1)
        .map(|arg| arg.replace('_', "").parse())
    {
        None => 1_000_000,
        Some(Ok(events)) => events,
        Some(Err(_)) => {
            eprintln!("usage: upstream_interop [EVENTS]");
            std::process::exit(2);
        }
    };
    match run(events) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(error) => {
            eprintln!("upstream_interop: {error}");
            std::process::exit(1);
        }
    }
}
