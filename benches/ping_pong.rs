//! Round-trip latency, busy spin: disruptor-mp across two processes against the upstream in-process
//! `disruptor` crate, the core-to-core floor (two atomics, no library) and a Unix socket.
//!
//! Every sample is one round trip timed with `Instant` on the measuring side: write an event carrying a
//! sequence number, wait for the echo, check it is the same sequence. Warm-up round trips are excluded.
//! Run with `cargo bench --bench ping_pong` (add `DMP_BENCH_QUICK=1` for a smoke run).

mod common;

use common::{
    iterations, latency_header, latency_histogram, latency_row, machine_line, p50, pin_child,
    pin_main_thread, pin_peer, ratio, record_since, segment_name, BenchEvent, ChildGuard, Event64,
    Pinning, Spin, EXIT_TIMEOUT, IDLE_TIMEOUT, SETUP_TIMEOUT,
};
use disruptor::{BusySpin, Polling, Producer};
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, WaitStrategy,
};
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Ring capacity for both libraries (a round trip holds at most one event, so it hardly matters).
const RING_CAPACITY: usize = 1024;
/// Measured round trips per library contender and event size (full mode), over all rounds.
const ROUND_TRIPS: u64 = 1_000_000;
/// Rounds the library contenders take turns in.
const ROUNDS: u64 = 4;
/// Warm-up round trips per contender (full mode), over all rounds: each round warms up with its share.
const WARMUP: u64 = 100_000;
/// Round trips of the before and after core-to-core floor probes, and of the interleaved floor slices
/// over all rounds (full mode).
const FLOOR_PROBE: u64 = 300_000;
/// Measured Unix socket round trips (full mode).
const SOCKET_ROUND_TRIPS: u64 = 100_000;
/// Samples of the clock-overhead probe (full mode).
const CLOCK_PROBE: u64 = 1_000_000;

const ROLE_ECHO: &str = "pp-echo";

fn main() {
    if let Some(role) = common::child_role() {
        run_child(&role);
        return;
    }

    let pinning = pin_main_thread();
    println!("ping_pong: round-trip latency, busy spin");
    println!("{}", machine_line(pinning));
    let per_round = iterations(ROUND_TRIPS / ROUNDS, 1);
    let warmup = iterations(WARMUP / ROUNDS, 1);
    let probe = iterations(FLOOR_PROBE, 1);
    println!(
        "{} round trips per library contender, in {ROUNDS} interleaved rounds of {per_round}, each after \
         {warmup} warm-up round trips; ring capacity {RING_CAPACITY}",
        per_round * ROUNDS
    );
    println!();

    let clock = clock_overhead(iterations(CLOCK_PROBE, 1));
    let floor_before = floor(pinning, probe / 10, probe);
    progress("core-to-core floor (before)", &floor_before);

    // The contenders take turns, so that a change in the machine's core-to-core latency during the run
    // (common on virtual machines) affects them alike; a floor slice runs in every round too.
    let mut mp8 = latency_histogram();
    let mut up8 = latency_histogram();
    let mut mp64 = latency_histogram();
    let mut up64 = latency_histogram();
    let mut floor_during = latency_histogram();
    for round in 1..=ROUNDS {
        let add = |total: &mut Histogram<u64>, what: &str, hist: Histogram<u64>| {
            progress(&format!("{what} (round {round})"), &hist);
            total.add(hist).expect("same histogram bounds");
        };
        add(
            &mut mp8,
            "disruptor-mp 8-byte",
            disruptor_mp_round_trips::<u64>(pinning, warmup, per_round),
        );
        add(
            &mut up8,
            "disruptor 8-byte",
            upstream_round_trips::<u64>(pinning, warmup, per_round),
        );
        add(
            &mut mp64,
            "disruptor-mp 64-byte",
            disruptor_mp_round_trips::<Event64>(pinning, warmup, per_round),
        );
        add(
            &mut up64,
            "disruptor 64-byte",
            upstream_round_trips::<Event64>(pinning, warmup, per_round),
        );
        add(
            &mut floor_during,
            "core-to-core floor",
            floor(pinning, probe / 10, probe / ROUNDS),
        );
    }
    let socket_round_trips = iterations(SOCKET_ROUND_TRIPS, 1);
    let socket = unix_socket_round_trips(pinning, socket_round_trips / 10, socket_round_trips);
    progress("unix socket 8-byte", &socket);

    let floor_after = floor(pinning, probe / 10, probe);
    progress("core-to-core floor (after)", &floor_after);

    let floors = Floors {
        before: &floor_before,
        during: &floor_during,
        after: &floor_after,
    };
    println!();
    print_table::<u64>(&mp8, &up8, &floors, Some(&socket), &clock);
    println!();
    print_table::<Event64>(&mp64, &up64, &floors, None, &clock);
    let (before, after) = (p50(&floor_before) as f64, p50(&floor_after) as f64);
    if ratio(before.max(after), before.min(after)) > 1.5 {
        println!();
        println!(
            "NOTE: the core-to-core floor moved during the run (p50 {before} ns before, {after} ns after): \
             the machine changed latency tier, so compare contenders through the interleaved rows and \
             ratios, and rerun before comparing with other runs."
        );
    }
}

fn progress(what: &str, hist: &Histogram<u64>) {
    println!(
        "  measured {what:<30} {:>8} samples, p50 {} ns",
        hist.len(),
        p50(hist)
    );
}

struct Floors<'a> {
    before: &'a Histogram<u64>,
    during: &'a Histogram<u64>,
    after: &'a Histogram<u64>,
}

fn print_table<E: BenchEvent>(
    mp: &Histogram<u64>,
    upstream: &Histogram<u64>,
    floors: &Floors<'_>,
    socket: Option<&Histogram<u64>>,
    clock: &Histogram<u64>,
) {
    println!(
        "== round trip, {} events ({} B), busy spin ==",
        E::LABEL,
        std::mem::size_of::<E>()
    );
    println!("{}", latency_header());
    println!(
        "{}",
        latency_row("disruptor-mp (2 processes, shared memory)", mp)
    );
    println!(
        "{}",
        latency_row("disruptor 4.4 upstream (2 threads)", upstream)
    );
    println!(
        "{}",
        latency_row("core-to-core floor, before (2 atomics)", floors.before)
    );
    println!(
        "{}",
        latency_row("core-to-core floor, interleaved (2 atomics)", floors.during)
    );
    println!(
        "{}",
        latency_row("core-to-core floor, after (2 atomics)", floors.after)
    );
    if let Some(socket) = socket {
        println!(
            "{}",
            latency_row("unix socket (2 threads, 8-byte messages)", socket)
        );
    }
    println!(
        "{}",
        latency_row("clock overhead (Instant::now + elapsed)", clock)
    );
    let mp50 = p50(mp) as f64;
    println!(
        "  ratio disruptor-mp p50 / upstream p50 = {:.2}x (target <= 1.50x)",
        ratio(mp50, p50(upstream) as f64)
    );
    println!(
        "  ratio disruptor-mp p50 / floor p50    = {:.2}x (interleaved floor); {:.2}x (before) / {:.2}x (after)",
        ratio(mp50, p50(floors.during) as f64),
        ratio(mp50, p50(floors.before) as f64),
        ratio(mp50, p50(floors.after) as f64)
    );
}

/// What one timed sample costs by itself: a clock read and an elapsed computation, nothing between.
fn clock_overhead(samples: u64) -> Histogram<u64> {
    let mut hist = latency_histogram();
    for _ in 0..samples {
        let start = Instant::now();
        record_since(&mut hist, start);
    }
    hist
}

// ---------------------------------------------------------------------------------------------------
// disruptor-mp, two processes
// ---------------------------------------------------------------------------------------------------

/// Parent side: ring A carries pings to the child, ring B carries the echoes back.
fn disruptor_mp_round_trips<E: BenchEvent>(
    pinning: Option<Pinning>,
    warmup: u64,
    measured: u64,
) -> Histogram<u64> {
    let ping_name = segment_name(&format!("pp-a-{}", E::TAG));
    let pong_name = segment_name(&format!("pp-b-{}", E::TAG));
    let mut ping = build_shared_single_producer::<E>(&ping_name, RING_CAPACITY)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .expect("create ping ring");
    let child = ChildGuard::spawn(
        &format!(
            "{ROLE_ECHO} {} {ping_name} {pong_name} {}",
            E::TAG,
            common::peer_cpu_arg(pinning)
        ),
        &[&pong_name],
    );
    let mut pong = attach_shared_consumer::<E>(&pong_name)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_consumer()
        .expect("attach to the child's pong ring");
    ping.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child attached to the ping ring");

    let mut hist = latency_histogram();
    let mut spin = Spin::new("the disruptor-mp echo");
    let mut seq = 0u64;
    for phase_len in [warmup, measured] {
        hist.reset();
        for _ in 0..phase_len {
            let start = Instant::now();
            ping.publish(E::for_seq(seq)).expect("publish ping");
            loop {
                match pong.try_consume_next_leased() {
                    Ok(Some(echo)) => {
                        assert_eq!(echo.seq(), seq, "disruptor-mp echo out of order");
                        break;
                    }
                    Ok(None) => spin.idle(),
                    Err(e) => panic!("disruptor-mp pong ring: {e}"),
                }
            }
            record_since(&mut hist, start);
            spin.progress();
            seq += 1;
        }
    }
    drop(ping); // closes ring A: the child sees Closed and exits
    child.wait_success(EXIT_TIMEOUT);
    hist
}

/// Child side: echo every event of ring A onto ring B until A is closed.
fn run_child(role: &[String]) {
    match role {
        [name, tag, ping_name, pong_name, cpu] if name == ROLE_ECHO => {
            pin_child(cpu);
            match tag.as_str() {
                "u64" => echo::<u64>(ping_name, pong_name),
                "u64x8" => echo::<Event64>(ping_name, pong_name),
                other => panic!("unknown event tag {other:?}"),
            }
        }
        _ => panic!("unknown child role {role:?}"),
    }
}

fn echo<E: BenchEvent>(ping_name: &str, pong_name: &str) {
    let mut ping = attach_shared_consumer::<E>(ping_name)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_consumer()
        .expect("child: attach to the ping ring");
    let mut pong = build_shared_single_producer::<E>(pong_name, RING_CAPACITY)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .expect("child: create the pong ring");
    pong.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child: parent attached to the pong ring");
    let mut spin = Spin::in_child("the next ping");
    loop {
        match ping.try_consume_next_leased() {
            Ok(Some(event)) => {
                pong.publish(*event).expect("child: publish echo");
                spin.progress();
            }
            Ok(None) => spin.idle(),
            Err(ConsumeError::Closed) => break,
            Err(e) => panic!("child: ping ring: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Upstream disruptor, two threads
// ---------------------------------------------------------------------------------------------------

/// The main thread publishes into the ping disruptor; its handler thread (on the peer CPU) publishes a
/// copy into the pong disruptor, which the main thread polls.
fn upstream_round_trips<E: BenchEvent>(
    pinning: Option<Pinning>,
    warmup: u64,
    measured: u64,
) -> Histogram<u64> {
    let (mut pong_poller, pong_builder) =
        disruptor::build_single_producer(RING_CAPACITY, E::default, BusySpin).new_event_poller();
    let pong = pong_builder.build();
    // The echo thread pins itself (the upstream `pin_at_core` only accepts cores in the builder thread's
    // own affinity mask, and this thread is pinned to the main CPU) and owns the pong producer.
    let init = move || {
        pin_peer(pinning);
        pong
    };
    let echo = |pong: &mut _, event: &E, _seq: i64, _end_of_batch: bool| {
        let copy = *event;
        disruptor::Producer::publish(pong, |slot: &mut E| *slot = copy);
    };
    let mut ping = disruptor::build_single_producer(RING_CAPACITY, E::default, BusySpin)
        .handle_events_and_state_with(echo, init)
        .build();

    let mut hist = latency_histogram();
    let mut spin = Spin::new("the upstream disruptor echo");
    let mut seq = 0u64;
    for phase_len in [warmup, measured] {
        hist.reset();
        for _ in 0..phase_len {
            let start = Instant::now();
            ping.publish(|slot| slot.fill(seq));
            loop {
                match pong_poller.poll() {
                    Ok(mut events) => {
                        let mut got = 0;
                        for echo in &mut events {
                            assert_eq!(echo.seq(), seq, "upstream echo out of order");
                            got += 1;
                        }
                        assert_eq!(got, 1, "upstream: one echo per ping");
                        break;
                    }
                    Err(Polling::NoEvents) => spin.idle(),
                    Err(Polling::Shutdown) => panic!("upstream pong disruptor shut down"),
                }
            }
            record_since(&mut hist, start);
            spin.progress();
            seq += 1;
        }
    }
    drop(ping); // joins the echo thread, which drops the pong producer
    hist
}

// ---------------------------------------------------------------------------------------------------
// Core-to-core floor: two atomics on their own cache lines, no library
// ---------------------------------------------------------------------------------------------------

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

#[derive(Default)]
struct Lines {
    ping: PaddedCounter,
    pong: PaddedCounter,
}

const STOP: u64 = u64::MAX;

fn floor(pinning: Option<Pinning>, warmup: u64, measured: u64) -> Histogram<u64> {
    let lines = Arc::new(Lines::default());
    let peer_lines = Arc::clone(&lines);
    let peer = std::thread::spawn(move || {
        pin_peer(pinning);
        let mut spin = Spin::new("the floor ping");
        let mut last = 0;
        loop {
            let value = peer_lines.ping.0.load(Ordering::Acquire);
            if value == last {
                spin.idle();
                continue;
            }
            if value == STOP {
                break;
            }
            peer_lines.pong.0.store(value, Ordering::Release);
            last = value;
            spin.progress();
        }
    });

    let mut hist = latency_histogram();
    let mut spin = Spin::new("the floor pong");
    let mut value = 0u64;
    for phase_len in [warmup, measured] {
        hist.reset();
        for _ in 0..phase_len {
            value += 1;
            let start = Instant::now();
            lines.ping.0.store(value, Ordering::Release);
            while lines.pong.0.load(Ordering::Acquire) != value {
                spin.idle();
            }
            record_since(&mut hist, start);
            spin.progress();
        }
    }
    lines.ping.0.store(STOP, Ordering::Release);
    peer.join().expect("floor peer thread panicked");
    hist
}

// ---------------------------------------------------------------------------------------------------
// Unix socket, two threads
// ---------------------------------------------------------------------------------------------------

fn unix_socket_round_trips(pinning: Option<Pinning>, warmup: u64, measured: u64) -> Histogram<u64> {
    let (mut near, mut far) = UnixStream::pair().expect("socketpair");
    for s in [&near, &far] {
        s.set_read_timeout(Some(IDLE_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(IDLE_TIMEOUT)).expect("timeout");
    }
    let peer = std::thread::spawn(move || {
        pin_peer(pinning);
        let mut buf = [0u8; 8];
        loop {
            far.read_exact(&mut buf).expect("socket echo: read");
            if u64::from_le_bytes(buf) == STOP {
                break;
            }
            far.write_all(&buf).expect("socket echo: write");
        }
    });

    let mut hist = latency_histogram();
    let mut buf = [0u8; 8];
    let mut seq = 0u64;
    for phase_len in [warmup, measured] {
        hist.reset();
        for _ in 0..phase_len {
            let start = Instant::now();
            near.write_all(&seq.to_le_bytes()).expect("socket: write");
            near.read_exact(&mut buf).expect("socket: read echo");
            record_since(&mut hist, start);
            assert_eq!(u64::from_le_bytes(buf), seq, "socket echo out of order");
            seq += 1;
        }
    }
    near.write_all(&STOP.to_le_bytes()).expect("socket: stop");
    peer.join().expect("socket peer thread panicked");
    hist
}
