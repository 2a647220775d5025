//! Round-trip latency. Busy spin: disruptor-mp across two processes, over shared memory and over a
//! file, against the upstream in-process `disruptor` crate, the core-to-core floor (two atomics, no
//! library) and a Unix socket. Wake-up: round trips where both sides sleep between events, disruptor-mp's
//! `Blocking` strategy against `BusySpin` and a blocking Unix socket.
//!
//! Every sample is one round trip timed with `Instant` on the measuring side: write an event carrying a
//! sequence number, wait for the echo, check it is the same sequence. Warm-up round trips are excluded.
//! Run with `cargo bench --bench ping_pong` (add `DMP_BENCH_QUICK=1` for a smoke run).

mod common;

use common::{
    current_task, iterations, latency_header, latency_histogram, latency_row, machine_line,
    main_task_of, new_ring, on_backend, p50, parse_strategy, pin_child, pin_main_thread, pin_peer,
    ratio, record_since, ring_files_line, strategy_arg, strategy_label, voluntary_switches,
    BenchEvent, ChildGuard, Event64, Pinning, Spin, EXIT_TIMEOUT, IDLE_TIMEOUT, SETUP_TIMEOUT,
};
use disruptor::{BusySpin, Polling, Producer};
use disruptor_mp::{Backend, ConsumeError, Consumer, MappedFile, SharedMemory, WaitStrategy};
use disruptor_mp_suite::TestBackend;
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

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

/// Measured wake-up round trips per contender (full mode), over all rounds. Each takes the gap plus the
/// round trip, well under a millisecond on most machines.
const WAKE_ROUND_TRIPS: u64 = 10_000;
/// Warm-up wake-up round trips per contender (full mode), over all rounds.
const WAKE_WARMUP: u64 = 1_000;
/// Shortest sleep of the pinger before each wake-up ping. The gap is longer where the default
/// `Blocking`'s spins take longer than half of it (see [`wake_gap`]).
const WAKE_GAP: Duration = Duration::from_micros(200);
/// Environment variable overriding [`WAKE_GAP`], in microseconds.
const WAKE_GAP_ENV: &str = "DMP_BENCH_WAKE_GAP_US";
/// The `Blocking` strategy of the wake-up section, with few spins so that both sides sleep soon.
const FEW_SPINS: WaitStrategy = WaitStrategy::Blocking {
    spins: 100,
    yields: 0,
};

const ROLE_ECHO: &str = "pp-echo";

fn main() {
    if let Some(role) = common::child_role() {
        run_child(&role);
        return;
    }

    let pinning = pin_main_thread();
    println!("ping_pong: round-trip latency, busy spin and wake-up from sleep");
    println!("{}", machine_line(pinning));
    println!("{}", ring_files_line());
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
    let busy = |pinning, warmup, measured| Pacing {
        pinning,
        strategy: WaitStrategy::BusySpin,
        gap: None,
        warmup,
        measured,
    };
    let pacing = busy(pinning, warmup, per_round);
    let mut mp8 = latency_histogram();
    let mut file8 = latency_histogram();
    let mut up8 = latency_histogram();
    let mut mp64 = latency_histogram();
    let mut file64 = latency_histogram();
    let mut up64 = latency_histogram();
    let mut floor_during = latency_histogram();
    for round in 1..=ROUNDS {
        let add = |total: &mut Histogram<u64>, what: &str, hist: Histogram<u64>| {
            progress(&format!("{what} (round {round})"), &hist);
            total.add(hist).expect("same histogram bounds");
        };
        add(
            &mut mp8,
            "disruptor-mp shm 8-byte",
            disruptor_mp_round_trips::<u64, SharedMemory>(pacing).hist,
        );
        add(
            &mut file8,
            "disruptor-mp file 8-byte",
            disruptor_mp_round_trips::<u64, MappedFile>(pacing).hist,
        );
        add(
            &mut up8,
            "disruptor 8-byte",
            upstream_round_trips::<u64>(pinning, warmup, per_round),
        );
        add(
            &mut mp64,
            "disruptor-mp shm 64-byte",
            disruptor_mp_round_trips::<Event64, SharedMemory>(pacing).hist,
        );
        add(
            &mut file64,
            "disruptor-mp file 64-byte",
            disruptor_mp_round_trips::<Event64, MappedFile>(pacing).hist,
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
    let socket =
        unix_socket_round_trips(busy(pinning, socket_round_trips / 10, socket_round_trips));
    progress("unix socket 8-byte", &socket.hist);

    let floor_after = floor(pinning, probe / 10, probe);
    progress("core-to-core floor (after)", &floor_after);

    let wake = wake_up_section(pinning);

    let floors = Floors {
        before: &floor_before,
        during: &floor_during,
        after: &floor_after,
    };
    println!();
    print_table::<u64>(&mp8, &file8, &up8, &floors, Some(&socket.hist), &clock);
    println!();
    print_table::<Event64>(&mp64, &file64, &up64, &floors, None, &clock);
    let (before, after) = (p50(&floor_before) as f64, p50(&floor_after) as f64);
    if ratio(before.max(after), before.min(after)) > 1.5 {
        println!();
        println!(
            "NOTE: the core-to-core floor moved during the run (p50 {before} ns before, {after} ns after): \
             the machine changed latency tier, so compare contenders through the interleaved rows and \
             ratios, and rerun before comparing with other runs."
        );
    }
    println!();
    wake.print(&clock);
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
    file: &Histogram<u64>,
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
    println!("{}", latency_row("disruptor-mp (2 processes, file)", file));
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
    println!(
        "  ratio disruptor-mp file / shared memory = {:.2}x p50, {:.2}x p99, {:.2}x p99.9",
        ratio(p50(file) as f64, mp50),
        ratio(
            file.value_at_quantile(0.99) as f64,
            mp.value_at_quantile(0.99) as f64
        ),
        ratio(
            file.value_at_quantile(0.999) as f64,
            mp.value_at_quantile(0.999) as f64
        )
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
// Wake-up: both sides sleep between events
// ---------------------------------------------------------------------------------------------------

/// The gap the pinger sleeps before each wake-up ping, and how it was chosen: [`WAKE_GAP_ENV`]
/// microseconds if set; else long enough for the default `Blocking` echo to have spun all its spins and
/// gone to sleep: twice its calibrated spin phase plus 100 µs, at least [`WAKE_GAP`], in whole 50 µs.
fn wake_gap() -> (Duration, String) {
    if let Ok(us) = std::env::var(WAKE_GAP_ENV) {
        let us: u64 = us
            .parse()
            .unwrap_or_else(|_| panic!("{WAKE_GAP_ENV}={us:?} is not a number"));
        return (Duration::from_micros(us), format!("set by {WAKE_GAP_ENV}"));
    }
    let spins = match WaitStrategy::DEFAULT_BLOCKING {
        WaitStrategy::Blocking { spins, .. } => spins,
        other => panic!("the default strategy {other:?} is not Blocking"),
    };
    let spin_phase = spin_phase(spins);
    let wanted = (2 * spin_phase + Duration::from_micros(100)).max(WAKE_GAP);
    let gap = Duration::from_micros(wanted.as_micros().div_ceil(50) as u64 * 50);
    let why = format!(
        "the default Blocking's {spins} spins take about {:.0} µs here, calibrated",
        spin_phase.as_secs_f64() * 1e6
    );
    (gap, why)
}

/// About how long a spinning wait of `spins` empty polls takes on this machine: each of its polls is one
/// load and one spin-loop hint, as in the library's spin phase (which does a little more). The median of
/// five tries, so that a try the scheduler interrupts does not count.
fn spin_phase(spins: u32) -> Duration {
    let word = AtomicU64::new(0);
    let mut tries: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..spins {
                if std::hint::black_box(&word).load(Ordering::Acquire) != 0 {
                    break;
                }
                std::hint::spin_loop();
            }
            start.elapsed()
        })
        .collect();
    tries.sort();
    tries[tries.len() / 2]
}

/// The wake-up section's contenders, 8-byte events, each summed over the rounds.
struct WakeUp {
    gap: Duration,
    few_spins: RoundTrips,
    default: RoundTrips,
    busy: RoundTrips,
    socket: RoundTrips,
}

/// Round trips that start after the pinger has slept a gap, so that a blocking echo (and a blocking pinger,
/// once it waits for the echo) is asleep in the kernel when the ping comes: disruptor-mp with
/// `Blocking { spins: 100, yields: 0 }`, with the default `Blocking`, with `BusySpin` (whose echo never sleeps), and a
/// Unix socket read with a blocking `read`. They take turns in [`ROUNDS`] rounds.
fn wake_up_section(pinning: Option<Pinning>) -> WakeUp {
    let (gap, why) = wake_gap();
    let per_round = iterations(WAKE_ROUND_TRIPS / ROUNDS, 1);
    let warmup = iterations(WAKE_WARMUP / ROUNDS, 1);
    println!();
    println!(
        "wake-up: {} round trips per contender, in {ROUNDS} interleaved rounds of {per_round}, each after \
         {warmup} warm-up round trips; the pinger sleeps {gap:?} before each ping ({why})",
        per_round * ROUNDS
    );
    let pacing = |strategy| Pacing {
        pinning,
        strategy,
        gap: Some(gap),
        warmup,
        measured: per_round,
    };
    let mut wake = WakeUp {
        gap,
        few_spins: RoundTrips::new(),
        default: RoundTrips::new(),
        busy: RoundTrips::new(),
        socket: RoundTrips::new(),
    };
    for round in 1..=ROUNDS {
        let add = |total: &mut RoundTrips, what: &str, measured: RoundTrips| {
            progress(&format!("wake-up {what} (round {round})"), &measured.hist);
            total.add(measured);
        };
        add(
            &mut wake.few_spins,
            "Blocking{100}",
            disruptor_mp_round_trips::<u64, SharedMemory>(pacing(FEW_SPINS)),
        );
        add(
            &mut wake.default,
            "Blocking default",
            disruptor_mp_round_trips::<u64, SharedMemory>(pacing(WaitStrategy::DEFAULT_BLOCKING)),
        );
        add(
            &mut wake.busy,
            "BusySpin",
            disruptor_mp_round_trips::<u64, SharedMemory>(pacing(WaitStrategy::BusySpin)),
        );
        add(
            &mut wake.socket,
            "unix socket",
            unix_socket_round_trips(pacing(WaitStrategy::BusySpin)),
        );
    }
    wake
}

impl WakeUp {
    fn print(&self, clock: &Histogram<u64>) {
        println!(
            "== wake-up round trip, 8-byte events, after a {:?} sleep of the pinger ==",
            self.gap
        );
        println!(
            "  disruptor-mp: 2 processes, shared memory; unix socket: 2 threads. Sleeps: voluntary context \
             switches per round trip, the pinger's including its sleep in the gap"
        );
        println!("{} {:>9} {:>9}", latency_header(), "pinger", "echo");
        println!(
            "{} {:>9} {:>9}",
            " ".repeat(latency_header().len()),
            "sleeps",
            "sleeps"
        );
        let few = format!("disruptor-mp {}", strategy_label(FEW_SPINS));
        let default = format!(
            "disruptor-mp {} (default)",
            strategy_label(WaitStrategy::DEFAULT_BLOCKING)
        );
        let rows = [
            (few.as_str(), &self.few_spins),
            (default.as_str(), &self.default),
            ("disruptor-mp BusySpin (echo never sleeps)", &self.busy),
            ("unix socket, blocking read", &self.socket),
        ];
        for (label, measured) in rows {
            println!(
                "{} {:>9} {:>9}",
                latency_row(label, &measured.hist),
                per_round_trip(measured.sleeps.pinger, measured.sleeps.round_trips),
                per_round_trip(measured.sleeps.echo, measured.sleeps.round_trips),
            );
        }
        println!(
            "{}",
            latency_row("clock overhead (Instant::now + elapsed)", clock)
        );
        let ratios = |label: &str, a: &RoundTrips, b: &RoundTrips, target: &str| {
            let at = |q: f64| {
                ratio(
                    a.hist.value_at_quantile(q) as f64,
                    b.hist.value_at_quantile(q) as f64,
                )
            };
            println!(
                "  ratio {label:<42} = {:.2}x p50{target}, {:.2}x p99, {:.2}x p99.9",
                at(0.5),
                at(0.99),
                at(0.999)
            );
        };
        let target = " (target <= 0.50x)";
        ratios(
            "Blocking{100} / unix socket",
            &self.few_spins,
            &self.socket,
            target,
        );
        ratios(
            "Blocking default / unix socket",
            &self.default,
            &self.socket,
            target,
        );
        ratios("Blocking{100} / BusySpin", &self.few_spins, &self.busy, "");
        ratios("Blocking default / BusySpin", &self.default, &self.busy, "");
        for (label, measured) in [
            ("Blocking{100}", &self.few_spins),
            ("Blocking default", &self.default),
        ] {
            let sleeps = measured.sleeps;
            if let Some(echo) = sleeps.echo {
                if (echo as f64) < 0.9 * sleeps.round_trips as f64 {
                    println!(
                        "NOTE: the {label} echo slept before only {echo} of {} pings: it was still spinning when \
                         most pings came, so that row is not a wake-up from sleep. Raise {WAKE_GAP_ENV}.",
                        sleeps.round_trips
                    );
                }
            }
        }
    }
}

/// A count of sleeps as a mean per round trip, `-` where unknown.
fn per_round_trip(count: Option<u64>, round_trips: u64) -> String {
    match count {
        Some(count) if round_trips > 0 => format!("{:.2}", count as f64 / round_trips as f64),
        _ => "-".to_owned(),
    }
}

/// The round trips of one contender, and how often each side slept during them.
struct RoundTrips {
    hist: Histogram<u64>,
    sleeps: Sleeps,
}

impl RoundTrips {
    fn new() -> RoundTrips {
        RoundTrips {
            hist: latency_histogram(),
            sleeps: Sleeps {
                pinger: Some(0),
                echo: Some(0),
                round_trips: 0,
            },
        }
    }

    /// Adds another run's round trips and sleeps to these.
    fn add(&mut self, other: RoundTrips) {
        let sum = |a: Option<u64>, b: Option<u64>| Some(a? + b?);
        self.hist.add(other.hist).expect("same histogram bounds");
        self.sleeps = Sleeps {
            pinger: sum(self.sleeps.pinger, other.sleeps.pinger),
            echo: sum(self.sleeps.echo, other.sleeps.echo),
            round_trips: self.sleeps.round_trips + other.sleeps.round_trips,
        };
    }
}

/// Voluntary context switches of each side over the measured round trips (`None` where `/proc` is not
/// available): how often it gave up its CPU to sleep, in a futex, a blocking read or the gap's sleep.
#[derive(Clone, Copy, Debug)]
struct Sleeps {
    pinger: Option<u64>,
    echo: Option<u64>,
    round_trips: u64,
}

/// Counts the sleeps of both sides of a pair over one phase.
struct SleepCounter {
    pinger: Option<String>,
    echo: Option<String>,
    at_start: [Option<u64>; 2],
}

impl SleepCounter {
    /// A counter for the calling thread (the pinger) and the echo's task (see [`current_task`]).
    fn new(echo: Option<String>) -> SleepCounter {
        SleepCounter {
            pinger: current_task(),
            echo,
            at_start: [None, None],
        }
    }

    /// Starts counting (again).
    fn start(&mut self) {
        self.at_start = [
            voluntary_switches(self.pinger.as_deref()),
            voluntary_switches(self.echo.as_deref()),
        ];
    }

    /// The sleeps since [`start`](Self::start), over `round_trips` round trips; both tasks must still exist.
    fn finish(&self, round_trips: u64) -> Sleeps {
        let since = |task: &Option<String>, start: Option<u64>| {
            Some(voluntary_switches(task.as_deref())?.saturating_sub(start?))
        };
        Sleeps {
            pinger: since(&self.pinger, self.at_start[0]),
            echo: since(&self.echo, self.at_start[1]),
            round_trips,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// disruptor-mp, two processes
// ---------------------------------------------------------------------------------------------------

/// How a pair runs: where, how both sides wait, whether the pinger sleeps before each ping, how many
/// round trips.
#[derive(Clone, Copy, Debug)]
struct Pacing {
    pinning: Option<Pinning>,
    /// The wait strategy of every disruptor-mp endpoint (ignored by the socket, whose reads block).
    strategy: WaitStrategy,
    /// How long the pinger sleeps (`thread::sleep`) before each ping, outside the timed round trip.
    gap: Option<Duration>,
    warmup: u64,
    measured: u64,
}

/// Parent side: ring A carries pings to the child, ring B carries the echoes back, both on backend `B`.
fn disruptor_mp_round_trips<E: BenchEvent, B: TestBackend>(pacing: Pacing) -> RoundTrips {
    // Declared before the child, so that they drop after it: they remove the rings a killed child leaves.
    let ping_ring = new_ring::<B>(&format!("pp-a-{}", E::TAG));
    let pong_ring = new_ring::<B>(&format!("pp-b-{}", E::TAG));
    let strategy = pacing.strategy;
    let mut ping = B::producer::<E>(ping_ring.id(), RING_CAPACITY)
        .with_wait_strategy(strategy)
        .build_producer()
        .expect("create ping ring");
    let child = ChildGuard::spawn(&format!(
        "{ROLE_ECHO} {} {} {} {} {} {}",
        B::KIND,
        E::TAG,
        strategy_arg(strategy),
        ping_ring.id(),
        pong_ring.id(),
        common::peer_cpu_arg(pacing.pinning)
    ));
    let mut pong = B::consumer::<E>(pong_ring.id())
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(strategy)
        .build_consumer()
        .expect("attach to the child's pong ring");
    ping.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child attached to the ping ring");

    let mut hist = latency_histogram();
    let mut sleeps = SleepCounter::new(main_task_of(child.id()));
    let mut spin = Spin::new("the disruptor-mp echo");
    let mut seq = 0u64;
    for phase_len in [pacing.warmup, pacing.measured] {
        hist.reset();
        sleeps.start();
        for _ in 0..phase_len {
            if let Some(gap) = pacing.gap {
                std::thread::sleep(gap);
            }
            let start = Instant::now();
            ping.publish(E::for_seq(seq)).expect("publish ping");
            next_event(&mut pong, strategy, &mut spin, |echo| {
                assert_eq!(echo.seq(), seq, "disruptor-mp echo out of order");
            })
            .unwrap_or_else(|e| panic!("disruptor-mp pong ring: {e}"));
            record_since(&mut hist, start);
            seq += 1;
        }
    }
    let sleeps = sleeps.finish(pacing.measured);
    drop(ping); // closes ring A: the child sees Closed and exits
    child.wait_success(EXIT_TIMEOUT);
    RoundTrips { hist, sleeps }
}

/// Waits for the next event of `consumer` and hands it to `handle` (the lease commits after it). A
/// `BusySpin` endpoint polls `try_consume_next_leased` in its own bounded loop, as the busy-spin
/// contenders always have; any other strategy waits in `consume_next_leased_timeout`, where the library
/// applies it (spin, then sleep in the kernel until woken).
#[inline(always)]
fn next_event<E: BenchEvent, B: Backend, R>(
    consumer: &mut Consumer<E, B>,
    strategy: WaitStrategy,
    spin: &mut Spin,
    handle: impl FnOnce(&E) -> R,
) -> Result<R, ConsumeError> {
    if strategy != WaitStrategy::BusySpin {
        let lease = consumer.consume_next_leased_timeout(IDLE_TIMEOUT)?;
        return Ok(handle(&lease));
    }
    loop {
        match consumer.try_consume_next_leased()? {
            Some(lease) => {
                spin.progress();
                return Ok(handle(&lease));
            }
            None => spin.idle(),
        }
    }
}

/// Child side: `pp-echo BACKEND TAG STRATEGY PING PONG CPU`.
fn run_child(role: &[String]) {
    match role {
        [name, backend, tag, strategy, ping, pong, cpu] if name == ROLE_ECHO => {
            pin_child(cpu);
            let strategy = parse_strategy(strategy);
            on_backend(
                backend,
                || echo_on::<SharedMemory>(tag, strategy, ping, pong),
                || echo_on::<MappedFile>(tag, strategy, ping, pong),
            );
        }
        _ => panic!("unknown child role {role:?}"),
    }
}

fn echo_on<B: TestBackend>(tag: &str, strategy: WaitStrategy, ping: &str, pong: &str) {
    match tag {
        "u64" => echo::<u64, B>(strategy, ping, pong),
        "u64x8" => echo::<Event64, B>(strategy, ping, pong),
        other => panic!("unknown event tag {other:?}"),
    }
}

/// Echoes every event of ring A onto ring B until A is closed.
fn echo<E: BenchEvent, B: TestBackend>(strategy: WaitStrategy, ping_id: &str, pong_id: &str) {
    let mut ping = B::consumer::<E>(ping_id)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(strategy)
        .build_consumer()
        .expect("child: attach to the ping ring");
    let mut pong = B::producer::<E>(pong_id, RING_CAPACITY)
        .with_wait_strategy(strategy)
        .build_producer()
        .expect("child: create the pong ring");
    pong.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child: parent attached to the pong ring");
    let mut spin = Spin::in_child("the next ping");
    loop {
        let echoed = next_event(&mut ping, strategy, &mut spin, |event| {
            pong.publish(*event).expect("child: publish echo");
        });
        match echoed {
            Ok(()) => {}
            Err(ConsumeError::Closed) => break,
            // A blocking wait has a timeout of its own: no ping within it is as broken as a stalled spin.
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

/// `pacing.strategy` is ignored: both sides always block in `read`, which is what a Unix socket offers.
fn unix_socket_round_trips(pacing: Pacing) -> RoundTrips {
    let (mut near, mut far) = UnixStream::pair().expect("socketpair");
    for s in [&near, &far] {
        s.set_read_timeout(Some(IDLE_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(IDLE_TIMEOUT)).expect("timeout");
    }
    let (task_tx, task_rx) = mpsc::channel();
    let pinning = pacing.pinning;
    let peer = std::thread::spawn(move || {
        pin_peer(pinning);
        let _ = task_tx.send(current_task());
        let mut buf = [0u8; 8];
        loop {
            far.read_exact(&mut buf).expect("socket echo: read");
            if u64::from_le_bytes(buf) == STOP {
                break;
            }
            far.write_all(&buf).expect("socket echo: write");
        }
    });
    let echo_task = task_rx
        .recv_timeout(SETUP_TIMEOUT)
        .expect("the socket echo thread started");

    let mut hist = latency_histogram();
    let mut sleeps = SleepCounter::new(echo_task);
    let mut buf = [0u8; 8];
    let mut seq = 0u64;
    for phase_len in [pacing.warmup, pacing.measured] {
        hist.reset();
        sleeps.start();
        for _ in 0..phase_len {
            if let Some(gap) = pacing.gap {
                std::thread::sleep(gap);
            }
            let start = Instant::now();
            near.write_all(&seq.to_le_bytes()).expect("socket: write");
            near.read_exact(&mut buf).expect("socket: read echo");
            record_since(&mut hist, start);
            assert_eq!(u64::from_le_bytes(buf), seq, "socket echo out of order");
            seq += 1;
        }
    }
    let sleeps = sleeps.finish(pacing.measured);
    near.write_all(&STOP.to_le_bytes()).expect("socket: stop");
    peer.join().expect("socket peer thread panicked");
    RoundTrips { hist, sleeps }
}
