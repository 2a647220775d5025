//! SPSC throughput in events per second, busy spin: disruptor-mp across two processes, over shared memory
//! and over a file (single `publish` and `publish_batch_with` of 64, in place), against the upstream in-process `disruptor` crate (single
//! `publish` and `batch_publish(64, ..)`), and a Unix socket stream for scale.
//!
//! Every contender runs the same protocol: the producer publishes a warm-up phase and waits for the
//! consumer's acknowledgement, then times the measured phase from its first publish to the consumer's
//! acknowledgement of its last event. The consumer checks that every event carries the next sequence
//! number and sums all of its words; the producer compares the sum with the expected one. Any mismatch
//! fails the benchmark. Each run also reports the consumer's mean events per wake-up: how far behind
//! the producer it ran, which decides single-event throughput (see `benches/README.md`).
//!
//! Run with `cargo bench --bench throughput` (add `DMP_BENCH_QUICK=1` for a smoke run).

mod common;

use common::{
    iterations, machine_line, new_ring, on_backend, pin_child, pin_main_thread, pin_peer, ratio,
    ring_files_line, BenchEvent, ChildGuard, Event64, Pinning, Spin, Watchdog, EXIT_TIMEOUT,
    IDLE_TIMEOUT, RUN_LIMIT, SETUP_TIMEOUT,
};
use disruptor::{BusySpin, Producer};
use disruptor_mp::{MappedFile, SharedMemory, WaitStrategy};
use disruptor_mp_suite::TestBackend;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Ring capacity (events) for both libraries.
const RING_CAPACITY: usize = 16 * 1024;
/// Events per batch for the batched contenders.
const BATCH: usize = 64;
/// Measured 8-byte events per library contender (full mode).
const EVENTS_8: u64 = 50_000_000;
/// Measured 64-byte events per library contender (full mode).
const EVENTS_64: u64 = 20_000_000;
/// Warm-up events before each library measurement (full mode).
const WARMUP: u64 = 1_000_000;
/// Measured 8-byte events through the Unix socket (full mode): 4096 writes of 4 KiB.
const SOCKET_EVENTS: u64 = 2 * 1024 * 1024;
/// Bytes per socket write.
const SOCKET_BUFFER: usize = 4096;
const EVENTS_PER_BUFFER: u64 = (SOCKET_BUFFER / 8) as u64;

/// Runs of every contender; the tables report the median and the spread.
const RUNS: usize = 9;

const ROLE_CONSUMER: &str = "tp-consumer";

/// What a consumer reports at the end of a phase: the events it has seen in all, the wrapping sum of
/// this phase's words, `first bad sequence + 1` (0 when every event was in order), and how many times
/// it found events waiting during the phase (its wake-ups: batches handled, or socket reads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ack {
    seen: u64,
    checksum: u64,
    bad: u64,
    wakeups: u64,
}

impl Ack {
    fn to_words(self) -> [u64; 4] {
        [self.seen, self.checksum, self.bad, self.wakeups]
    }
    fn from_words(words: [u64; 4]) -> Ack {
        Ack {
            seen: words[0],
            checksum: words[1],
            bad: words[2],
            wakeups: words[3],
        }
    }
}

/// The consumer-side order check and checksum, shared by every contender.
struct Verifier {
    expected: u64,
    checksum: u64,
    bad: u64,
    wakeups: u64,
}

impl Verifier {
    fn new() -> Verifier {
        Verifier {
            expected: 0,
            checksum: 0,
            bad: 0,
            wakeups: 0,
        }
    }

    /// Counts one wake-up: the consumer found events waiting and handled them as one batch.
    #[inline(always)]
    fn woke_up(&mut self) {
        self.wakeups += 1;
    }

    /// Checks one event; `sequence` is the library's own sequence number for it (`None` for the socket,
    /// which has none).
    #[inline(always)]
    fn check<E: BenchEvent>(&mut self, event: &E, sequence: Option<u64>) {
        let in_order = event.seq() == self.expected && sequence.is_none_or(|s| s == self.expected);
        if !in_order && self.bad == 0 {
            self.bad = self.expected + 1;
        }
        self.checksum = self.checksum.wrapping_add(event.checksum());
        self.expected += 1;
    }

    /// The acknowledgement of the phase that just ended; the next phase's checksum and wake-up count
    /// start from zero.
    fn end_phase(&mut self) -> Ack {
        let ack = Ack {
            seen: self.expected,
            checksum: self.checksum,
            bad: self.bad,
            wakeups: self.wakeups,
        };
        self.checksum = 0;
        self.wakeups = 0;
        ack
    }
}

/// Checks a consumer's acknowledgement of the phase `first..first + count`; panics loudly on mismatch.
fn verify_ack<E: BenchEvent>(contender: &str, ack: Ack, first: u64, count: u64) {
    if ack.bad != 0 {
        panic!(
            "{contender}: ORDER CHECK FAILED: the event for sequence {} was wrong or out of order",
            ack.bad - 1
        );
    }
    assert_eq!(
        ack.seen,
        first + count,
        "{contender}: consumer saw {} events, expected {}",
        ack.seen,
        first + count
    );
    let expected = E::expected_checksum(first, count);
    assert_eq!(
        ack.checksum, expected,
        "{contender}: CHECKSUM MISMATCH (got {:#x}, expected {expected:#x})",
        ack.checksum
    );
}

/// One measured run.
struct Outcome {
    label: String,
    events: u64,
    elapsed: Duration,
    /// The consumer's wake-ups in the measured phase (see [`Ack::wakeups`]).
    wakeups: u64,
}

impl Outcome {
    /// Mean events the consumer handled per wake-up: how far behind the producer it ran, in events.
    fn events_per_wakeup(&self) -> f64 {
        self.events as f64 / self.wakeups.max(1) as f64
    }
}

/// Every run of one contender.
struct Runs {
    label: String,
    events: u64,
    /// Events per second, one entry per run.
    rates: Vec<f64>,
    /// Events per consumer wake-up, one entry per run.
    per_wakeup: Vec<f64>,
}

/// The median of `values` (NaN when empty).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

impl Runs {
    fn new() -> Runs {
        Runs {
            label: String::new(),
            events: 0,
            rates: Vec::new(),
            per_wakeup: Vec::new(),
        }
    }

    fn add(&mut self, outcome: Outcome) {
        self.rates
            .push(outcome.events as f64 / outcome.elapsed.as_secs_f64());
        self.per_wakeup.push(outcome.events_per_wakeup());
        self.label = outcome.label;
        self.events = outcome.events;
    }

    /// Median events per second over the runs.
    fn median(&self) -> f64 {
        median(&self.rates)
    }

    fn print(&self) {
        let rate = self.median();
        let fold = |pick: fn(f64, f64) -> f64| self.rates.iter().copied().reduce(pick);
        println!(
            "  {:<56} {:>11} {:>4} {:>10.1} {:>10.2} {:>10.1} {:>10.1} {:>10.0}",
            self.label,
            self.events,
            self.rates.len(),
            rate / 1e6,
            1e9 / rate,
            fold(f64::min).unwrap_or(f64::NAN) / 1e6,
            fold(f64::max).unwrap_or(f64::NAN) / 1e6,
            median(&self.per_wakeup),
        );
    }
}

fn print_header() {
    println!(
        "  {:<56} {:>11} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "contender", "events/run", "runs", "median", "ns/event", "min", "max", "events per"
    );
    println!(
        "  {:<56} {:>11} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "", "", "", "M ev/s", "(median)", "M ev/s", "M ev/s", "wake-up"
    );
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Single,
    Batch,
}

fn main() {
    if let Some(role) = common::child_role() {
        run_child(&role);
        return;
    }

    let pinning = pin_main_thread();
    println!("throughput: SPSC events per second, busy spin, order and checksum verified");
    println!("{}", machine_line(pinning));
    println!("{}", ring_files_line());
    let warmup = iterations(WARMUP, BATCH as u64);
    println!(
        "ring capacity {RING_CAPACITY} events, batches of {BATCH}, {warmup} warm-up events before each library run, {RUNS} runs per contender (interleaved)"
    );
    println!();

    let results8 = run_size::<u64>(pinning, warmup, iterations(EVENTS_8, BATCH as u64));
    let mut socket = Runs::new();
    for _ in 0..RUNS {
        let count = iterations(SOCKET_EVENTS, EVENTS_PER_BUFFER);
        let warmup = iterations(SOCKET_EVENTS / 8, EVENTS_PER_BUFFER);
        socket.add(progress(unix_socket(pinning, warmup, count)));
    }
    let results64 = run_size::<Event64>(pinning, warmup, iterations(EVENTS_64, BATCH as u64));

    println!();
    print_table::<u64>(&results8, Some(&socket));
    println!();
    print_table::<Event64>(&results64, None);
}

fn progress(outcome: Outcome) -> Outcome {
    println!(
        "  measured {:<56} {:>8.1} M events/s, {:>7.1} events per consumer wake-up",
        outcome.label,
        outcome.events as f64 / outcome.elapsed.as_secs_f64() / 1e6,
        outcome.events_per_wakeup(),
    );
    outcome
}

/// disruptor-mp (shared memory and file) and upstream, single and batch.
struct SizeResults {
    mp_single: Runs,
    file_single: Runs,
    up_single: Runs,
    mp_batch: Runs,
    file_batch: Runs,
    up_batch: Runs,
}

/// Runs every library contender [`RUNS`] times, interleaved so that drift in the machine's speed hits
/// them alike.
fn run_size<E: BenchEvent>(pinning: Option<Pinning>, warmup: u64, count: u64) -> SizeResults {
    let mut results = SizeResults {
        mp_single: Runs::new(),
        file_single: Runs::new(),
        up_single: Runs::new(),
        mp_batch: Runs::new(),
        file_batch: Runs::new(),
        up_batch: Runs::new(),
    };
    for _ in 0..RUNS {
        let runs = [
            (
                Mode::Single,
                &mut results.mp_single,
                &mut results.file_single,
                &mut results.up_single,
            ),
            (
                Mode::Batch,
                &mut results.mp_batch,
                &mut results.file_batch,
                &mut results.up_batch,
            ),
        ];
        for (mode, mp, file, up) in runs {
            mp.add(progress(disruptor_mp::<E, SharedMemory>(
                pinning, mode, warmup, count,
            )));
            file.add(progress(disruptor_mp::<E, MappedFile>(
                pinning, mode, warmup, count,
            )));
            up.add(progress(upstream::<E>(pinning, mode, warmup, count)));
        }
    }
    results
}

fn print_table<E: BenchEvent>(results: &SizeResults, socket: Option<&Runs>) {
    println!(
        "== throughput, {} events ({} B), SPSC, busy spin ==",
        E::LABEL,
        std::mem::size_of::<E>()
    );
    print_header();
    results.mp_single.print();
    results.file_single.print();
    results.up_single.print();
    results.mp_batch.print();
    results.file_batch.print();
    results.up_batch.print();
    if let Some(socket) = socket {
        socket.print();
    }
    println!(
        "  ratio of medians disruptor-mp / upstream: publish {:.2}x, batch of {BATCH} {:.2}x (target >= 0.80x)",
        ratio(results.mp_single.median(), results.up_single.median()),
        ratio(results.mp_batch.median(), results.up_batch.median()),
    );
    println!(
        "  ratio of medians disruptor-mp file / shared memory: publish {:.2}x, batch of {BATCH} {:.2}x",
        ratio(results.file_single.median(), results.mp_single.median()),
        ratio(results.file_batch.median(), results.mp_batch.median()),
    );
}

// ---------------------------------------------------------------------------------------------------
// disruptor-mp, two processes
// ---------------------------------------------------------------------------------------------------

/// Parent side: publishes on the data ring, reads the child's acknowledgements on the ack ring, both on
/// backend `B`.
fn disruptor_mp<E: BenchEvent, B: TestBackend>(
    pinning: Option<Pinning>,
    mode: Mode,
    warmup: u64,
    count: u64,
) -> Outcome {
    // Declared before the child, so that they drop after it: they remove the rings a killed child leaves.
    let data_ring = new_ring::<B>(&format!("tp-data-{}", E::TAG));
    let ack_ring = new_ring::<B>(&format!("tp-ack-{}", E::TAG));
    let mut producer = B::producer::<E>(data_ring.id(), RING_CAPACITY)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .expect("create data ring");
    let child = ChildGuard::spawn(&format!(
        "{ROLE_CONSUMER} {} {} {} {} {warmup} {count} {}",
        B::KIND,
        E::TAG,
        data_ring.id(),
        ack_ring.id(),
        common::peer_cpu_arg(pinning)
    ));
    let mut acks = B::consumer::<[u64; 4]>(ack_ring.id())
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_consumer()
        .expect("attach to the child's ack ring");
    producer
        .wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child attached to the data ring");

    // `publish` and `publish_batch_with` wait without a deadline for a consumer that may have died.
    let _watchdog = Watchdog::arm("disruptor-mp run", RUN_LIMIT, &[&data_ring, &ack_ring]);
    let label = match mode {
        Mode::Single => format!("disruptor-mp publish ({}, 2 processes)", B::KIND),
        Mode::Batch => format!(
            "disruptor-mp publish_batch_with({BATCH}) ({}, 2 processes)",
            B::KIND
        ),
    };
    let mut publish_phase = |first: u64, n: u64| match mode {
        Mode::Single => {
            for seq in first..first + n {
                producer.publish(E::for_seq(seq)).expect("publish");
            }
        }
        Mode::Batch => {
            // In place, as upstream's batch_publish writes its slots.
            for _ in (first..first + n).step_by(BATCH) {
                producer
                    .publish_batch_with(BATCH, |seq, slot| slot.fill(seq))
                    .expect("publish_batch_with");
            }
        }
    };
    let mut wait_ack = || {
        let (words, _) = acks
            .consume_next_timeout(IDLE_TIMEOUT)
            .expect("acknowledgement from the disruptor-mp consumer");
        Ack::from_words(words)
    };

    publish_phase(0, warmup);
    verify_ack::<E>(&label, wait_ack(), 0, warmup);
    let start = Instant::now();
    publish_phase(warmup, count);
    let ack = wait_ack();
    let elapsed = start.elapsed();
    verify_ack::<E>(&label, ack, warmup, count);

    drop(producer);
    child.wait_success(EXIT_TIMEOUT);
    Outcome {
        label,
        events: count,
        elapsed,
        wakeups: ack.wakeups,
    }
}

/// Child side: `tp-consumer BACKEND TAG DATA ACK WARMUP COUNT CPU`.
fn run_child(role: &[String]) {
    match role {
        [name, backend, tag, data, ack, warmup, count, cpu] if name == ROLE_CONSUMER => {
            pin_child(cpu);
            let warmup: u64 = warmup.parse().expect("warm-up count");
            let count: u64 = count.parse().expect("event count");
            on_backend(
                backend,
                || consume_on::<SharedMemory>(tag, data, ack, warmup, count),
                || consume_on::<MappedFile>(tag, data, ack, warmup, count),
            );
        }
        _ => panic!("unknown child role {role:?}"),
    }
}

fn consume_on<B: TestBackend>(tag: &str, data: &str, ack: &str, warmup: u64, count: u64) {
    match tag {
        "u64" => consume::<u64, B>(data, ack, warmup, count),
        "u64x8" => consume::<Event64, B>(data, ack, warmup, count),
        other => panic!("unknown event tag {other:?}"),
    }
}

/// Child side: consumes both phases with `try_consume_batch`, verifying every event, and acknowledges
/// each phase on the ack ring.
fn consume<E: BenchEvent, B: TestBackend>(data_id: &str, ack_id: &str, warmup: u64, count: u64) {
    let mut consumer = B::consumer::<E>(data_id)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_consumer()
        .expect("child: attach to the data ring");
    let mut acks = B::producer::<[u64; 4]>(ack_id, 8)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .expect("child: create the ack ring");
    acks.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child: parent attached to the ack ring");

    let mut verifier = Verifier::new();
    let mut spin = Spin::in_child("data events");
    for end in [warmup, warmup + count] {
        while verifier.expected < end {
            let max = (end - verifier.expected) as usize;
            let handled = consumer
                .try_consume_batch(max, |event, sequence, _end_of_batch| {
                    verifier.check(event, Some(sequence))
                })
                .expect("child: consume");
            if handled == 0 {
                spin.idle();
            } else {
                verifier.woke_up();
                spin.progress();
            }
        }
        acks.publish(verifier.end_phase().to_words())
            .expect("child: publish ack");
    }
}

// ---------------------------------------------------------------------------------------------------
// Upstream disruptor, two threads
// ---------------------------------------------------------------------------------------------------

/// Where the upstream handler thread publishes its acknowledgements: the ack's words, then `phase`
/// (release) to hand them over.
#[derive(Default)]
struct AckCell {
    phase: AtomicU64,
    words: [AtomicU64; 4],
}

impl AckCell {
    fn publish(&self, phase: u64, ack: Ack) {
        for (cell, word) in self.words.iter().zip(ack.to_words()) {
            cell.store(word, Ordering::Relaxed);
        }
        self.phase.store(phase, Ordering::Release);
    }

    fn wait(&self, phase: u64) -> Ack {
        let mut spin = Spin::new("the upstream consumer's acknowledgement");
        while self.phase.load(Ordering::Acquire) < phase {
            spin.idle();
        }
        Ack::from_words(
            self.words
                .each_ref()
                .map(|cell| cell.load(Ordering::Relaxed)),
        )
    }
}

struct UpstreamConsumer {
    verifier: Verifier,
    phase_ends: [u64; 2],
    phase: usize,
    cell: Arc<AckCell>,
}

fn upstream<E: BenchEvent>(
    pinning: Option<Pinning>,
    mode: Mode,
    warmup: u64,
    count: u64,
) -> Outcome {
    let cell = Arc::new(AckCell::default());
    let handler_cell = Arc::clone(&cell);
    // The handler thread pins itself: upstream's `pin_at_core` only accepts cores in the building
    // thread's affinity mask, and this thread is pinned to the main CPU.
    let init = move || {
        pin_peer(pinning);
        UpstreamConsumer {
            verifier: Verifier::new(),
            phase_ends: [warmup, warmup + count],
            phase: 0,
            cell: handler_cell,
        }
    };
    // The phase check runs at the end of a batch only, as the disruptor-mp consumer checks its phase once
    // per `try_consume_batch`: the producer publishes nothing past a phase's last event until the ack,
    // so that event always ends a batch. Both consumers then do the same work per event.
    let handler = |state: &mut UpstreamConsumer, event: &E, sequence: i64, end_of_batch: bool| {
        state.verifier.check(event, Some(sequence as u64));
        if end_of_batch {
            state.verifier.woke_up();
        }
        if end_of_batch && state.verifier.expected == state.phase_ends[state.phase.min(1)] {
            state.phase += 1;
            let ack = state.verifier.end_phase();
            state.cell.publish(state.phase as u64, ack);
        }
    };
    // Upstream `publish` and `batch_publish` spin without a deadline.
    let _watchdog = Watchdog::arm("upstream disruptor run", RUN_LIMIT, &[]);
    let mut producer = disruptor::build_single_producer(RING_CAPACITY, E::default, BusySpin)
        .handle_events_and_state_with(handler, init)
        .build();

    let label = match mode {
        Mode::Single => "disruptor 4.4 upstream publish (2 threads)".to_owned(),
        Mode::Batch => format!("disruptor 4.4 upstream batch_publish({BATCH}) (2 threads)"),
    };
    let mut publish_phase = |first: u64, n: u64| match mode {
        Mode::Single => {
            for seq in first..first + n {
                producer.publish(|slot| slot.fill(seq));
            }
        }
        Mode::Batch => {
            for start in (first..first + n).step_by(BATCH) {
                producer.batch_publish(BATCH, |slots| {
                    for (i, slot) in slots.enumerate() {
                        slot.fill(start + i as u64);
                    }
                });
            }
        }
    };

    publish_phase(0, warmup);
    verify_ack::<E>(&label, cell.wait(1), 0, warmup);
    let start = Instant::now();
    publish_phase(warmup, count);
    let ack = cell.wait(2);
    let elapsed = start.elapsed();
    verify_ack::<E>(&label, ack, warmup, count);

    drop(producer); // joins the handler thread
    Outcome {
        label,
        events: count,
        elapsed,
        wakeups: ack.wakeups,
    }
}

// ---------------------------------------------------------------------------------------------------
// Unix socket stream, two threads
// ---------------------------------------------------------------------------------------------------

/// 8-byte events (little-endian sequence numbers) written in 4 KiB buffers; the reader verifies them and
/// answers each phase with a 24-byte acknowledgement.
fn unix_socket(pinning: Option<Pinning>, warmup: u64, count: u64) -> Outcome {
    let (mut writer, mut reader) = UnixStream::pair().expect("socketpair");
    for s in [&writer, &reader] {
        s.set_read_timeout(Some(IDLE_TIMEOUT)).expect("timeout");
        s.set_write_timeout(Some(IDLE_TIMEOUT)).expect("timeout");
    }
    let peer = std::thread::spawn(move || {
        pin_peer(pinning);
        let mut verifier = Verifier::new();
        let mut buf = [0u8; SOCKET_BUFFER];
        for end in [warmup, warmup + count] {
            while verifier.expected < end {
                reader.read_exact(&mut buf).expect("socket reader: read");
                verifier.woke_up();
                for word in buf.chunks_exact(8) {
                    let event = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                    verifier.check(&event, None);
                }
            }
            let mut out = [0u8; 32];
            for (chunk, value) in out.chunks_exact_mut(8).zip(verifier.end_phase().to_words()) {
                chunk.copy_from_slice(&value.to_le_bytes());
            }
            reader.write_all(&out).expect("socket reader: ack");
        }
    });

    let label = format!("unix socket, {SOCKET_BUFFER} B writes (2 threads)");
    let mut buf = [0u8; SOCKET_BUFFER];
    let mut publish_phase = |writer: &mut UnixStream, first: u64, n: u64| {
        for start in (first..first + n).step_by(EVENTS_PER_BUFFER as usize) {
            for (i, word) in buf.chunks_exact_mut(8).enumerate() {
                word.copy_from_slice(&(start + i as u64).to_le_bytes());
            }
            writer.write_all(&buf).expect("socket writer: write");
        }
    };
    let wait_ack = |writer: &mut UnixStream| {
        let mut ack = [0u8; 32];
        writer
            .read_exact(&mut ack)
            .expect("socket writer: read ack");
        let word =
            |i: usize| u64::from_le_bytes(ack[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        Ack::from_words([word(0), word(1), word(2), word(3)])
    };

    publish_phase(&mut writer, 0, warmup);
    verify_ack::<u64>(&label, wait_ack(&mut writer), 0, warmup);
    let start = Instant::now();
    publish_phase(&mut writer, warmup, count);
    let ack = wait_ack(&mut writer);
    let elapsed = start.elapsed();
    verify_ack::<u64>(&label, ack, warmup, count);
    peer.join().expect("socket reader thread panicked");
    Outcome {
        label,
        events: count,
        elapsed,
        wakeups: ack.wakeups,
    }
}
