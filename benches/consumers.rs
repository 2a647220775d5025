//! How consumers consume, measured (shared memory, busy spin, 8-byte events):
//!
//! 1. **A pipeline stage's cost.** Round trips where the echoing consumer reads behind another consumer
//!    (`after(["first"])`) against round trips where it reads behind the producer only. So that the run
//!    fits two cores, the first stage runs in the pinger's own thread: it consumes each ping right after
//!    publishing it. What the second variant adds is exactly the dependent's extra hand-off: it learns
//!    that an event is readable from the upstream stage's cursor line as well as the published line.
//! 2. **A slow untethered reader beside a fast tethered consumer.** The untethered reader takes 100 µs
//!    per event (it sleeps, so that it does not take a core from the two busy ones). With and without it,
//!    in interleaved rounds: the round trip through the fast tethered echo, and the producer's throughput
//!    into a fast tethered drain. Attaching it makes the producer announce its horizon every quarter ring.
//!
//! Run with `cargo bench --bench consumers` (add `DMP_BENCH_QUICK=1` for a smoke run).

mod common;

use common::{
    iterations, latency_header, latency_histogram, latency_row, machine_line, new_ring, p50,
    peer_cpu_arg, pin_child, pin_main_thread, ratio, record_since, ChildGuard, Pinning, Spin,
    EXIT_TIMEOUT, SETUP_TIMEOUT,
};
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, SharedConsumer,
    SharedMemory, SharedProducer, WaitStrategy,
};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

const RING_CAPACITY: usize = 1024;
/// Measured round trips per variant (full mode), over all rounds.
const ROUND_TRIPS: u64 = 1_000_000;
/// Warm-up round trips per variant (full mode), over all rounds.
const WARMUP: u64 = 100_000;
/// Rounds the variants take turns in.
const ROUNDS: u64 = 4;
/// Events per throughput run (full mode), over all rounds.
const THROUGHPUT_EVENTS: u64 = 200_000_000;
/// How long the slow untethered reader takes per event.
const SLOW_READ: Duration = Duration::from_micros(100);

const ROLE_ECHO: &str = "cs-echo";
const ROLE_DRAIN: &str = "cs-drain";
const ROLE_SLOW: &str = "cs-slow";

fn main() {
    if let Some(role) = common::child_role() {
        run_child(&role);
        return;
    }
    let pinning = pin_main_thread();
    println!("consumers: pipeline stages and untethered readers");
    println!("{}", machine_line(pinning));
    let per_round = iterations(ROUND_TRIPS / ROUNDS, 1);
    let warmup = iterations(WARMUP / ROUNDS, 1);
    let events = iterations(THROUGHPUT_EVENTS / ROUNDS, 1);
    println!(
        "{} round trips per variant in {ROUNDS} interleaved rounds (after {warmup} warm-up each); \
         {} events per throughput variant; ring capacity {RING_CAPACITY}; busy spin",
        per_round * ROUNDS,
        events * ROUNDS
    );
    println!();

    let mut one_stage = latency_histogram();
    let mut two_stage = latency_histogram();
    let mut alone = latency_histogram();
    let mut beside_slow = latency_histogram();
    let (mut rate_alone, mut rate_beside_slow) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let add = |total: &mut Histogram<u64>, what: &str, hist: Histogram<u64>| {
            println!("  measured {what} (round {round}): p50 {} ns", p50(&hist));
            total.add(hist).expect("same histogram bounds");
        };
        add(
            &mut one_stage,
            "one stage",
            round_trips(pinning, Stages::One, false, warmup, per_round),
        );
        add(
            &mut two_stage,
            "two stages",
            round_trips(pinning, Stages::Two, false, warmup, per_round),
        );
        add(
            &mut alone,
            "tethered echo alone",
            round_trips(pinning, Stages::One, false, warmup, per_round),
        );
        add(
            &mut beside_slow,
            "tethered echo beside a slow untethered reader",
            round_trips(pinning, Stages::One, true, warmup, per_round),
        );
        let rate = throughput(pinning, false, events);
        println!(
            "  measured producer alone (round {round}): {:.1} M events/s",
            rate / 1e6
        );
        rate_alone.push(rate);
        let rate = throughput(pinning, true, events);
        println!(
            "  measured producer beside a slow untethered reader (round {round}): {:.1} M events/s",
            rate / 1e6
        );
        rate_beside_slow.push(rate);
    }

    println!();
    println!("== a pipeline stage: round trip, 8-byte events, busy spin ==");
    println!("{}", latency_header());
    println!(
        "{}",
        latency_row("echo behind the producer (one stage)", &one_stage)
    );
    println!(
        "{}",
        latency_row("echo behind another stage (two stages)", &two_stage)
    );
    let added = p50(&two_stage) as f64 - p50(&one_stage) as f64;
    println!(
        "  two stages / one stage: p50 {:.2}x, p99 {:.2}x; a stage adds {added:.0} ns at p50",
        ratio(p50(&two_stage) as f64, p50(&one_stage) as f64),
        ratio(
            two_stage.value_at_quantile(0.99) as f64,
            one_stage.value_at_quantile(0.99) as f64
        ),
    );
    println!();
    println!(
        "== a slow untethered reader ({} µs per event) beside a fast tethered consumer ==",
        SLOW_READ.as_micros()
    );
    println!("{}", latency_header());
    println!("{}", latency_row("tethered echo, alone", &alone));
    println!(
        "{}",
        latency_row("tethered echo, beside the slow reader", &beside_slow)
    );
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let (rate_alone, rate_beside_slow) = (median(&mut rate_alone), median(&mut rate_beside_slow));
    println!(
        "  producer throughput into a tethered drain (median of {ROUNDS} rounds): alone {:.1} M events/s, \
         beside the slow reader {:.1} M events/s",
        rate_alone / 1e6,
        rate_beside_slow / 1e6
    );
    println!(
        "  with / without the slow reader: round trip p50 {:.2}x, p99 {:.2}x, p99.9 {:.2}x; throughput \
         {:.2}x",
        ratio(p50(&beside_slow) as f64, p50(&alone) as f64),
        ratio(
            beside_slow.value_at_quantile(0.99) as f64,
            alone.value_at_quantile(0.99) as f64
        ),
        ratio(
            beside_slow.value_at_quantile(0.999) as f64,
            alone.value_at_quantile(0.999) as f64
        ),
        ratio(rate_beside_slow, rate_alone),
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stages {
    One,
    Two,
}

/// Round trips: the parent publishes a ping on ring A, the child's consumer echoes it on ring B. With
/// `Stages::Two` the child's consumer reads behind the parent's own consumer "first", which consumes
/// each ping right after it is published. With `slow` an untethered reader taking [`SLOW_READ`] per
/// event reads ring A from a third process.
fn round_trips(
    pinning: Option<Pinning>,
    stages: Stages,
    slow: bool,
    warmup: u64,
    measured: u64,
) -> Histogram<u64> {
    let ping_ring = new_ring::<SharedMemory>("cs-a");
    let pong_ring = new_ring::<SharedMemory>("cs-b");
    let mut ping = producer(ping_ring.id());
    let mut first = (stages == Stages::Two).then(|| {
        attach_shared_consumer::<u64>(ping_ring.id())
            .with_consumer_id("first")
            .with_wait_strategy(WaitStrategy::BusySpin)
            .build_consumer()
            .expect("attach the first stage")
    });
    let after = if stages == Stages::Two { "first" } else { "-" };
    let child = ChildGuard::spawn(&format!(
        "{ROLE_ECHO} {} {} {} {after}",
        ping_ring.id(),
        pong_ring.id(),
        peer_cpu_arg(pinning)
    ));
    let slow_reader = slow.then(|| ChildGuard::spawn(&format!("{ROLE_SLOW} {}", ping_ring.id())));
    let mut pong = consumer(pong_ring.id(), None);
    let expected = 1 + usize::from(stages == Stages::Two);
    ping.wait_for_consumers(expected, SETUP_TIMEOUT)
        .expect("the echo attached");
    if slow {
        wait_for_untethered(ping_ring.id());
    }
    let mut hist = latency_histogram();
    let mut spin = Spin::new("the echo");
    let mut seq = 0u64;
    for phase in [warmup, measured] {
        hist.reset();
        for _ in 0..phase {
            let start = Instant::now();
            ping.publish(seq).expect("publish a ping");
            if let Some(first) = &mut first {
                let (event, _) = first
                    .try_consume_next()
                    .expect("the first stage")
                    .expect("the ping just published");
                assert_eq!(event, seq);
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
            record_since(&mut hist, start);
            seq += 1;
        }
    }
    drop(first);
    drop(ping);
    child.wait_success(EXIT_TIMEOUT);
    if let Some(reader) = slow_reader {
        reader.wait_success(EXIT_TIMEOUT + SLOW_READ * 1000);
    }
    hist
}

/// Publishes `events` as fast as the tethered drain in the child allows (with `slow`, beside an untethered
/// reader); returns events per second.
fn throughput(pinning: Option<Pinning>, slow: bool, events: u64) -> f64 {
    let ring = new_ring::<SharedMemory>("cs-t");
    let mut producer = producer(ring.id());
    let child = ChildGuard::spawn(&format!(
        "{ROLE_DRAIN} {} {events} {}",
        ring.id(),
        peer_cpu_arg(pinning)
    ));
    let slow_reader = slow.then(|| ChildGuard::spawn(&format!("{ROLE_SLOW} {}", ring.id())));
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
    child.wait_success(EXIT_TIMEOUT);
    if let Some(reader) = slow_reader {
        reader.wait_success(EXIT_TIMEOUT + SLOW_READ * 1000);
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

fn run_child(role: &[String]) {
    match role {
        [name, ping, pong, cpu, after] if name == ROLE_ECHO => {
            pin_child(cpu);
            let mut ping = consumer(ping, (after != "-").then_some(after.as_str()));
            let mut pong = producer(pong);
            pong.wait_for_consumers(1, SETUP_TIMEOUT)
                .expect("child: the parent attached to the pong ring");
            let mut spin = Spin::in_child("the next ping");
            loop {
                match ping.try_consume_next() {
                    Ok(Some((event, _))) => {
                        spin.progress();
                        pong.publish(event).expect("child: publish an echo");
                    }
                    Ok(None) => spin.idle(),
                    Err(ConsumeError::Closed) | Err(ConsumeError::UpstreamGone { .. }) => break,
                    Err(error) => panic!("child: the ping ring: {error}"),
                }
            }
        }
        [name, ring, events, cpu] if name == ROLE_DRAIN => {
            pin_child(cpu);
            let events: u64 = events.parse().expect("an event count");
            let mut drain = consumer(ring, None);
            let mut spin = Spin::in_child("the producer");
            let (mut next, mut sum) = (0u64, 0u64);
            loop {
                match drain
                    .try_consume_batch(usize::MAX, |event, _, _| sum = sum.wrapping_add(*event))
                {
                    Ok(0) => spin.idle(),
                    Ok(count) => {
                        spin.progress();
                        next += count as u64;
                    }
                    Err(ConsumeError::Closed) => break,
                    Err(error) => panic!("child: drain: {error}"),
                }
            }
            assert_eq!(next, events, "child: drained a different count");
            assert_eq!(sum, common::sum_of_range(0, events), "child: bad checksum");
        }
        [name, ring] if name == ROLE_SLOW => {
            let mut reader = attach_shared_consumer::<u64>(ring)
                .with_consumer_id("slow")
                .with_attach_timeout(SETUP_TIMEOUT)
                .untethered()
                .build_consumer()
                .expect("child: attach the slow reader");
            let (mut read, mut missed) = (0u64, 0u64);
            loop {
                match reader.consume_next_timeout(SETUP_TIMEOUT) {
                    Ok((event, sequence)) => {
                        assert_eq!(event, sequence, "child: a torn or stale event");
                        read += 1;
                        std::thread::sleep(SLOW_READ);
                    }
                    Err(ConsumeError::Lapped { missed: lost, .. }) => missed += lost,
                    Err(ConsumeError::Closed) => break,
                    Err(error) => panic!("child: the slow reader: {error}"),
                }
            }
            println!(
                "    (the slow untethered reader read {read} validated events and missed {missed})"
            );
        }
        _ => panic!("unknown child role {role:?}"),
    }
}
