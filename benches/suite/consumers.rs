//! How consumers consume (shared memory, busy spin, 8-byte events):
//!
//! 1. **A pipeline stage's cost.** Round trips where the echoing consumer reads behind another consumer
//!    (`after(["first"])`) against round trips where it reads behind the producer only. So that the run
//!    fits two cores, the first stage runs in the pinger's own thread: it consumes each ping right after
//!    publishing it. What the second variant adds is exactly the dependent's extra hand-off.
//! 2. **A slow untethered reader beside a fast tethered consumer.** The untethered reader takes 100 µs
//!    per event (it sleeps, so that it does not take a core from the two busy ones). With and without it,
//!    in interleaved rounds: the round trip through the fast tethered echo, and the producer's throughput
//!    into a fast tethered drain.

use crate::config::{by_mode, Pinning, SETUP_TIMEOUT};
use crate::contender::{finish, spawn};
use crate::report::{median, Percentiles};
use crate::round_trip::latency_histogram;
use crate::wait::Spin;
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, SharedConsumer,
    SharedMemory, SharedProducer, WaitStrategy,
};
use disruptor_mp_suite::TestBackend;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const RING_CAPACITY: usize = 1024;
/// How long the slow untethered reader takes per event.
const SLOW_READ: Duration = Duration::from_micros(100);

/// What the section measured.
pub struct ConsumerResults {
    pub one_stage: Percentiles,
    pub two_stages: Percentiles,
    pub alone: Percentiles,
    pub beside_slow: Percentiles,
    /// Producer events per second into a tethered drain, alone and beside the slow reader.
    pub rate_alone: f64,
    pub rate_beside_slow: f64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stages {
    One,
    Two,
}

/// Runs the variants in interleaved rounds.
pub fn measure(pinning: &Pinning) -> ConsumerResults {
    let rounds = by_mode(4, 1);
    let per_round = by_mode(250_000, 2_000);
    let warmup = per_round / 10;
    let events = by_mode(50_000_000, 200_000);
    let mut hists = [(); 4].map(|_| latency_histogram());
    let (mut rates_alone, mut rates_beside_slow) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let variants = [
            (Stages::One, false),
            (Stages::Two, false),
            (Stages::One, false),
            (Stages::One, true),
        ];
        for (hist, (stages, slow)) in hists.iter_mut().zip(variants) {
            let measured = round_trips(pinning, stages, slow, warmup, per_round);
            hist.add(measured).expect("same histogram bounds");
        }
        rates_alone.push(throughput(pinning, false, events));
        rates_beside_slow.push(throughput(pinning, true, events));
    }
    let [one_stage, two_stages, alone, beside_slow] = hists.map(|hist| Percentiles::of(&hist));
    ConsumerResults {
        one_stage,
        two_stages,
        alone,
        beside_slow,
        rate_alone: median(&rates_alone),
        rate_beside_slow: median(&rates_beside_slow),
    }
}

/// Round trips: the parent publishes a ping on ring A, the child's consumer echoes it on ring B. With
/// `Stages::Two` the child's consumer reads behind the parent's own consumer "first", which consumes
/// each ping right after it is published. With `slow` an untethered reader taking [`SLOW_READ`] per
/// event reads ring A from a third process.
fn round_trips(
    pinning: &Pinning,
    stages: Stages,
    slow: bool,
    warmup: u64,
    measured: u64,
) -> Histogram<u64> {
    // Declared before the children, so that they drop after them and remove what a killed child leaves.
    let ping_ring = SharedMemory::new_ring("cs-a");
    let pong_ring = SharedMemory::new_ring("cs-b");
    let mut ping = producer(ping_ring.id());
    let mut first = (stages == Stages::Two).then(|| {
        attach_shared_consumer::<u64>(ping_ring.id())
            .with_consumer_id("first")
            .with_wait_strategy(WaitStrategy::BusySpin)
            .build_consumer()
            .expect("attach the first stage")
    });
    let after = if stages == Stages::Two { "first" } else { "-" };
    let child = spawn(&format!(
        "stage-echo {} {} {} {after}",
        ping_ring.id(),
        pong_ring.id(),
        pinning.peer_arg(0)
    ));
    let slow_reader = slow.then(|| spawn(&format!("slow-reader {}", ping_ring.id())));
    let mut pong = consumer(pong_ring.id(), None);
    let expected = 1 + usize::from(stages == Stages::Two);
    ping.wait_for_consumers(expected, SETUP_TIMEOUT)
        .expect("the echo attached");
    if slow {
        wait_for_untethered(ping_ring.id());
    }
    let mut hist = latency_histogram();
    let mut spin = Spin::new("the echo");
    for seq in 0..warmup + measured {
        let start = Instant::now();
        ping.publish(seq).expect("publish a ping");
        if let Some(first) = &mut first {
            let (event, _) = first
                .try_consume_next()
                .expect("the first stage")
                .expect("the ping just published");
            assert_eq!(event, seq, "the first stage read the wrong event");
        }
        loop {
            match pong.try_consume_next().expect("the pong ring") {
                Some((echo, _)) => {
                    assert_eq!(echo, seq, "echo out of order");
                    spin.progress();
                    break;
                }
                None => spin.idle(),
            }
        }
        if seq >= warmup {
            hist.saturating_record((start.elapsed().as_nanos() as u64).max(1));
        }
    }
    drop(first);
    drop(ping);
    finish(child);
    if let Some(reader) = slow_reader {
        finish(reader);
    }
    hist
}

/// Publishes `events` as fast as the tethered drain in the child allows (with `slow`, beside an
/// untethered reader); returns events per second.
fn throughput(pinning: &Pinning, slow: bool, events: u64) -> f64 {
    let ring = SharedMemory::new_ring("cs-t");
    let mut producer = producer(ring.id());
    let child = spawn(&format!(
        "drain {} {events} {}",
        ring.id(),
        pinning.peer_arg(0)
    ));
    let slow_reader = slow.then(|| spawn(&format!("slow-reader {}", ring.id())));
    producer
        .wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("the drain attached");
    if slow {
        wait_for_untethered(ring.id());
    }
    let start = Instant::now();
    for seq in 0..events {
        producer.publish(seq).expect("publish");
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    drop(producer);
    finish(child);
    if let Some(reader) = slow_reader {
        finish(reader);
    }
    rate
}

fn producer(ring: &str) -> SharedProducer<u64> {
    build_shared_single_producer::<u64>(ring, RING_CAPACITY)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .expect("create a ring")
}

fn consumer(ring: &str, after: Option<&str>) -> SharedConsumer<u64> {
    let builder = attach_shared_consumer::<u64>(ring)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(WaitStrategy::BusySpin);
    match after {
        Some(upstream) => builder.after([upstream]),
        None => builder,
    }
    .build_consumer()
    .expect("attach a consumer")
}

/// Waits until the slow reader has registered, so that it is there for the whole measurement.
fn wait_for_untethered(ring: &str) {
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        let there = disruptor_mp::observability::RingSnapshot::open_shared_memory(ring)
            .map(|snapshot| {
                snapshot
                    .consumers
                    .iter()
                    .any(|consumer| consumer.id == "slow")
            })
            .unwrap_or(false);
        if there {
            return;
        }
        assert!(Instant::now() < deadline, "the slow reader did not attach");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Child side: `stage-echo PING PONG CPU AFTER`, `drain RING EVENTS CPU` or `slow-reader RING`.
pub fn consumers_child(words: &[&str]) -> Result<String, String> {
    match words {
        ["stage-echo", ping, pong, cpu, after] => {
            crate::config::pin_to(cpu);
            let mut ping = consumer(ping, (*after != "-").then_some(*after));
            let mut pong = producer(pong);
            pong.wait_for_consumers(1, SETUP_TIMEOUT)
                .map_err(|e| format!("the parent attached to the pong ring: {e}"))?;
            let mut spin = Spin::in_child("the next ping");
            loop {
                match ping.try_consume_next() {
                    Ok(Some((event, _))) => {
                        spin.progress();
                        pong.publish(event)
                            .map_err(|e| format!("publish an echo: {e}"))?;
                    }
                    Ok(None) => spin.idle(),
                    Err(ConsumeError::Closed) | Err(ConsumeError::UpstreamGone { .. }) => {
                        return Ok(String::new())
                    }
                    Err(error) => return Err(format!("the ping ring: {error}")),
                }
            }
        }
        ["drain", ring, events, cpu] => {
            crate::config::pin_to(cpu);
            let events: u64 = events.parse().map_err(|_| format!("bad count {events}"))?;
            let mut drain = consumer(ring, None);
            let mut spin = Spin::in_child("the producer");
            let (mut next, mut bad) = (0u64, None);
            loop {
                let handled = drain.try_consume_batch(usize::MAX, |event, sequence, _| {
                    if *event != sequence && bad.is_none() {
                        bad = Some(sequence);
                    }
                });
                match handled {
                    Ok(0) => spin.idle(),
                    Ok(count) => {
                        spin.progress();
                        next += count as u64;
                    }
                    Err(ConsumeError::Closed) => break,
                    Err(error) => return Err(format!("drain: {error}")),
                }
            }
            if let Some(sequence) = bad {
                return Err(format!("drain: wrong event at sequence {sequence}"));
            }
            if next != events {
                return Err(format!("drained {next} of {events} events"));
            }
            Ok(String::new())
        }
        ["slow-reader", ring] => {
            let mut reader = attach_shared_consumer::<u64>(ring)
                .with_consumer_id("slow")
                .with_attach_timeout(SETUP_TIMEOUT)
                .untethered()
                .build_consumer()
                .map_err(|e| format!("attach the slow reader: {e}"))?;
            let (mut read, mut missed) = (0u64, 0u64);
            loop {
                match reader.consume_next_timeout(SETUP_TIMEOUT) {
                    Ok((event, sequence)) => {
                        if event != sequence {
                            return Err(format!("a torn or stale event at {sequence}"));
                        }
                        read += 1;
                        std::thread::sleep(SLOW_READ);
                    }
                    Err(ConsumeError::Lapped { missed: lost, .. }) => missed += lost,
                    Err(ConsumeError::Closed) => return Ok(format!("{read} {missed}")),
                    Err(error) => return Err(format!("the slow reader: {error}")),
                }
            }
        }
        _ => Err(format!("unknown consumers role {words:?}")),
    }
}
