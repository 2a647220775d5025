//! Throughput: one producer, one consumer, busy spin (the Blocking contender sleeps when idle). The
//! producer publishes a warm-up phase and then the measured phase without a pause; the consumer checks
//! that every event carries the next sequence and sums all of its words (plus one multiply-rotate round
//! per event in the work shape), and reports the `CLOCK_MONOTONIC` time it saw the last event. The run
//! lasts from the producer's first measured publish to that time. The producer compares the count and
//! the checksum with the expected ones; any mismatch fails the run.

use crate::config::{Pinning, IDLE_TIMEOUT, RUN_LIMIT, SETUP_TIMEOUT};
use crate::contender::{check_delivery, finish, report_numbers, spawn, Contender};
use crate::iox;
use crate::ipc::{inherited_pipe, unique_path, Pipe, RemoveOnDrop};
use crate::payload::{slice_as_bytes_mut, work_round, Payload};
use crate::report::Shape;
use crate::round_trip::{accept_child, listen, strategy_of};
use crate::spsc::{SpscConsumer, SpscProducer};
use crate::wait::{monotonic_ns, Spin, Watchdog};
use disruptor::BusySpin;
use disruptor_mp::{MappedFile, SharedMemory, WaitStrategy};
use disruptor_mp_suite::{SignalFile, TestBackend};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

/// Events per batch in the batched shape.
pub const BATCH: u64 = 64;

/// Ring capacity in events for `bytes`-byte events: about 1 MiB of slots, 128 to 16 Ki events. Every
/// contender with a bound gets the same.
pub fn capacity_for(bytes: usize) -> usize {
    ((1 << 20) / bytes).clamp(128, 16 * 1024)
}

/// Whether `contender` has the `shape` (a channel or a socket has no in-place batch; the Blocking and
/// file contenders and the slow peers run the plain shapes only).
pub fn supports(contender: Contender, shape: Shape) -> bool {
    match contender {
        Contender::Ours | Contender::Upstream | Contender::Spsc => true,
        Contender::OursFile | Contender::UnixSocket | Contender::Pipe => shape != Shape::SingleWork,
        Contender::OursBlocking | Contender::Crossbeam | Contender::Iceoryx2 => {
            shape == Shape::Single
        }
        Contender::Floor => false,
    }
}

fn shape_word(shape: Shape) -> &'static str {
    match shape {
        Shape::Single => "single",
        Shape::Batch => "batch",
        Shape::SingleWork => "work",
    }
}

fn shape_of(word: &str) -> Shape {
    match word {
        "single" => Shape::Single,
        "batch" => Shape::Batch,
        "work" => Shape::SingleWork,
        other => panic!("unknown shape {other:?}"),
    }
}

/// The consumer's checks and totals.
struct Tally {
    seen: u64,
    checksum: u64,
    /// First sequence that was wrong, plus one (0: none).
    bad: u64,
    work: u64,
    with_work: bool,
}

impl Tally {
    fn new(shape: Shape) -> Tally {
        Tally {
            seen: 0,
            checksum: 0,
            bad: 0,
            work: 0,
            with_work: shape == Shape::SingleWork,
        }
    }

    #[inline(always)]
    fn observe<P: Payload>(&mut self, event: &P) {
        if event.seq() != self.seen && self.bad == 0 {
            self.bad = self.seen + 1;
        }
        self.checksum = self.checksum.wrapping_add(event.checksum());
        if self.with_work {
            self.work = work_round(self.work, event.seq());
        }
        self.seen += 1;
    }

    /// `end_ns seen checksum bad work`.
    fn report(&self, end_ns: u64) -> String {
        format!(
            "{end_ns} {} {} {} {}",
            self.seen, self.checksum, self.bad, self.work
        )
    }
}

/// Checks a consumer's report of `total` events and returns the time it saw the last one.
pub fn verify<P: Payload>(contender: Contender, report: &str, total: u64) -> u64 {
    let numbers = report_numbers(report);
    let [end_ns, seen, checksum, bad, _work] = numbers[..] else {
        panic!("{}: bad report {report:?}", contender.label());
    };
    check_delivery(contender, seen, bad, total);
    assert_eq!(
        checksum,
        P::expected_checksum(0, total),
        "{}: CHECKSUM MISMATCH",
        contender.label()
    );
    end_ns
}

/// Publishes `warmup` then `measured` events (multiples of [`BATCH`]) through `publish(first, count)`,
/// `count` being 1 or [`BATCH`]; returns the time the measured phase started.
pub fn drive(shape: Shape, warmup: u64, measured: u64, mut publish: impl FnMut(u64, u64)) -> u64 {
    let step = if shape == Shape::Batch { BATCH } else { 1 };
    let mut seq = 0;
    while seq < warmup {
        publish(seq, step);
        seq += step;
    }
    let start = monotonic_ns();
    while seq < warmup + measured {
        publish(seq, step);
        seq += step;
    }
    start
}

/// One run of `contender` in `shape`: measured events per second.
pub fn measure<P: Payload>(
    contender: Contender,
    shape: Shape,
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
) -> f64 {
    let capacity = capacity_for(P::BYTES);
    let total = warmup + measured;
    // Every publish below that can block waits without a deadline for a consumer that may have died. The
    // contenders with files of their own arm a watchdog that removes them.
    let has_files = matches!(
        contender,
        Contender::Ours | Contender::OursBlocking | Contender::OursFile | Contender::Spsc
    );
    let watchdog = (!has_files).then(|| Watchdog::arm(contender.label(), RUN_LIMIT, Vec::new()));
    let role = |args: &str| {
        format!(
            "consume {} {} {} {} {total} {capacity} {args}",
            contender.tag(),
            shape_word(shape),
            P::BYTES,
            pinning.peer_arg(0)
        )
    };
    let (start, end) = match contender {
        Contender::Ours | Contender::OursBlocking => {
            ours::<P, SharedMemory>(contender, shape, warmup, measured, &role)
        }
        Contender::OursFile => ours::<P, MappedFile>(contender, shape, warmup, measured, &role),
        Contender::Spsc => {
            let path = RemoveOnDrop(unique_path("spsc"));
            let mut producer = SpscProducer::<P>::create(&path.0, capacity);
            let _watchdog = Watchdog::arm(contender.label(), RUN_LIMIT, vec![path.0.clone()]);
            let child = spawn(&role(&path.0.display().to_string()));
            let start = drive(shape, warmup, measured, |_, count| {
                producer.publish_with(count, |seq, slot| slot.fill(seq));
            });
            (start, verify::<P>(contender, &finish(child), total))
        }
        Contender::UnixSocket => {
            let (path, listener) = listen("tp-sock");
            let child = spawn(&role(&path.0.display().to_string()));
            let mut stream = accept_child(&listener);
            let start = stream_drive::<P>(&mut stream, shape, warmup, measured);
            drop(stream);
            (start, verify::<P>(contender, &finish(child), total))
        }
        Contender::Pipe => {
            let mut pipe = Pipe::new(true);
            let child = spawn(&role(&pipe.child_fd().to_string()));
            pipe.close_child_end();
            let start = stream_drive::<P>(&mut pipe.parent_end, shape, warmup, measured);
            drop(pipe);
            (start, verify::<P>(contender, &finish(child), total))
        }
        Contender::Iceoryx2 => {
            let node = iox::node();
            let name = iox::unique_service("tp");
            let service = iox::service::<P>(&node, &name, capacity);
            let publisher = iox::publisher(&service);
            let ready = SignalFile::new("iox-ready");
            let mut child = spawn(&role(&format!("{name} {}", ready.path())));
            ready
                .wait_for(&mut child, SETUP_TIMEOUT)
                .unwrap_or_else(|e| panic!("iceoryx2 consumer: {e}"));
            let start = drive(shape, warmup, measured, |seq, _| iox::send(&publisher, seq));
            (start, verify::<P>(contender, &finish(child), total))
        }
        Contender::Upstream => upstream::<P>(shape, pinning, warmup, measured, capacity),
        Contender::Crossbeam => crossbeam::<P>(shape, pinning, warmup, measured, capacity),
        Contender::Floor => panic!("the floor carries no events"),
    };
    drop(watchdog);
    measured as f64 / ((end - start) as f64 / 1e9)
}

/// Child side: `consume CONTENDER SHAPE BYTES CPU TOTAL CAPACITY ARGS...`; returns the report.
pub fn consume_child(words: &[&str]) -> Result<String, String> {
    let [contender, shape, bytes, cpu, total, capacity, args @ ..] = words else {
        return Err(format!("bad consume role {words:?}"));
    };
    crate::config::pin_to(cpu);
    let contender = Contender::from_tag(contender);
    let shape = shape_of(shape);
    let bytes: usize = bytes.parse().map_err(|_| format!("bad size {bytes}"))?;
    let total: u64 = total.parse().map_err(|_| format!("bad count {total}"))?;
    let capacity: usize = capacity
        .parse()
        .map_err(|_| format!("bad capacity {capacity}"))?;
    let mut tally = Tally::new(shape);
    let end_ns = crate::payload::with_payload!(bytes, P => match (contender, args) {
        (Contender::Ours | Contender::OursBlocking, [ring]) => {
            consume_ours::<P, SharedMemory>(strategy_of(contender), ring, total, &mut tally)
        }
        (Contender::OursFile, [ring]) => consume_ours::<P, MappedFile>(WaitStrategy::BusySpin, ring, total, &mut tally),
        (Contender::Spsc, [path]) => {
            let mut consumer = SpscConsumer::<P>::open(std::path::Path::new(path), capacity);
            let mut spin = Spin::in_child("SPSC events");
            while tally.seen < total {
                if consumer.poll(total - tally.seen, |event| tally.observe(event)) == 0 {
                    spin.idle();
                } else {
                    spin.progress();
                }
            }
            monotonic_ns()
        }
        (Contender::UnixSocket, [path]) => {
            let mut stream = UnixStream::connect(path).map_err(|e| e.to_string())?;
            stream.set_read_timeout(Some(IDLE_TIMEOUT)).map_err(|e| e.to_string())?;
            consume_stream::<P>(&mut stream, total, &mut tally)
        }
        (Contender::Pipe, [fd]) => consume_stream::<P>(&mut inherited_pipe(fd), total, &mut tally),
        (Contender::Iceoryx2, [name, ready]) => {
            let node = iox::node();
            let service = iox::service::<P>(&node, name, capacity);
            let subscriber = iox::subscriber(&service, capacity);
            SignalFile::raise(ready, "ready").map_err(|e| e.to_string())?;
            let mut spin = Spin::in_child("iceoryx2 events");
            while tally.seen < total {
                match subscriber.receive() {
                    Ok(Some(sample)) => {
                        tally.observe(sample.payload());
                        spin.progress();
                    }
                    Ok(None) => spin.idle(),
                    Err(e) => return Err(format!("iceoryx2 receive: {e:?}")),
                }
            }
            monotonic_ns()
        }
        _ => return Err(format!("bad consume role {words:?}")),
    });
    Ok(tally.report(end_ns))
}

// ---------------------------------------------------------------------------------------------------
// disruptor-mp
// ---------------------------------------------------------------------------------------------------

fn ours<P: Payload, B: TestBackend>(
    contender: Contender,
    shape: Shape,
    warmup: u64,
    measured: u64,
    role: &dyn Fn(&str) -> String,
) -> (u64, u64) {
    let strategy = strategy_of(contender);
    // Declared before the child, so that it drops after it and removes the ring a killed child leaves.
    let ring = B::new_ring("tp");
    let mut producer = B::producer::<P>(ring.id(), capacity_for(P::BYTES))
        .with_wait_strategy(strategy)
        .build_producer()
        .expect("create the ring");
    let _watchdog = Watchdog::arm(contender.label(), RUN_LIMIT, vec![ring.path()]);
    let child = spawn(&role(ring.id()));
    producer
        .wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("the child attached");
    let start = drive(shape, warmup, measured, |first, count| {
        if count == 1 {
            producer
                .publish_with(|slot| slot.fill(first))
                .expect("publish");
        } else {
            producer
                .publish_batch_with(count as usize, |seq, slot| slot.fill(seq))
                .expect("publish_batch_with");
        }
    });
    drop(producer);
    (
        start,
        verify::<P>(contender, &finish(child), warmup + measured),
    )
}

fn consume_ours<P: Payload, B: TestBackend>(
    strategy: WaitStrategy,
    ring: &str,
    total: u64,
    tally: &mut Tally,
) -> u64 {
    let mut consumer = B::consumer::<P>(ring)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(strategy)
        .build_consumer()
        .expect("child: attach to the ring");
    let mut spin = Spin::in_child("disruptor-mp events");
    while tally.seen < total {
        let max = (total - tally.seen) as usize;
        let handled = if strategy == WaitStrategy::BusySpin {
            consumer.try_consume_batch(max, |event, _, _| tally.observe(event))
        } else {
            consumer.consume_batch_timeout(max, IDLE_TIMEOUT, |event, _, _| tally.observe(event))
        }
        .expect("child: consume");
        if handled == 0 {
            spin.idle();
        } else {
            spin.progress();
        }
    }
    monotonic_ns()
}

// ---------------------------------------------------------------------------------------------------
// Byte streams: Unix socket and pipe
// ---------------------------------------------------------------------------------------------------

/// Writes the events, one per write or [`BATCH`] per write; returns the measured phase's start.
fn stream_drive<P: Payload>(
    writer: &mut impl Write,
    shape: Shape,
    warmup: u64,
    measured: u64,
) -> u64 {
    let mut buffer = vec![P::zeroed(); BATCH as usize];
    drive(shape, warmup, measured, |first, count| {
        let events = &mut buffer[..count as usize];
        for (i, event) in events.iter_mut().enumerate() {
            event.fill(first + i as u64);
        }
        writer
            .write_all(slice_as_bytes_mut(events))
            .expect("write events");
    })
}

/// Reads whole events ([`BATCH`] at a time, fewer at the end) until `total`.
fn consume_stream<P: Payload>(reader: &mut impl Read, total: u64, tally: &mut Tally) -> u64 {
    let mut buffer = vec![P::zeroed(); BATCH as usize];
    while tally.seen < total {
        let count = (total - tally.seen).min(BATCH) as usize;
        reader
            .read_exact(slice_as_bytes_mut(&mut buffer[..count]))
            .expect("child: read events");
        for event in &buffer[..count] {
            tally.observe(event);
        }
    }
    monotonic_ns()
}

// ---------------------------------------------------------------------------------------------------
// In-process peers: upstream disruptor and crossbeam-channel
// ---------------------------------------------------------------------------------------------------

fn upstream<P: Payload>(
    shape: Shape,
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
    capacity: usize,
) -> (u64, u64) {
    let total = warmup + measured;
    let (done_tx, done_rx) = mpsc::channel::<String>();
    let peer = pinning.clone();
    // The handler thread pins itself: upstream's `pin_at_core` only accepts cores in the building
    // thread's affinity mask, and this thread is pinned to the main CPU.
    let init = move || {
        peer.pin_peer(0);
        (Tally::new(shape), done_tx)
    };
    // The end is checked at the end of a batch only, as the disruptor-mp consumer checks once per
    // `try_consume_batch`: both consumers do the same work per event.
    let handler = move |state: &mut (Tally, mpsc::Sender<String>), event: &P, _: i64, end: bool| {
        state.0.observe(event);
        if end && state.0.seen == total {
            let _ = state.1.send(state.0.report(monotonic_ns()));
        }
    };
    let mut producer = disruptor::build_single_producer(capacity, P::zeroed, BusySpin)
        .handle_events_and_state_with(handler, init)
        .build();
    let start = drive(shape, warmup, measured, |first, count| {
        if count == 1 {
            disruptor::Producer::publish(&mut producer, |slot: &mut P| slot.fill(first));
        } else {
            disruptor::Producer::batch_publish(&mut producer, count as usize, |slots| {
                for (i, slot) in slots.enumerate() {
                    slot.fill(first + i as u64);
                }
            });
        }
    });
    let report = done_rx
        .recv_timeout(IDLE_TIMEOUT)
        .expect("the upstream consumer finished");
    drop(producer); // joins the handler thread
    (start, verify::<P>(Contender::Upstream, &report, total))
}

fn crossbeam<P: Payload>(
    shape: Shape,
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
    capacity: usize,
) -> (u64, u64) {
    let total = warmup + measured;
    let (sender, receiver) = crossbeam_channel::bounded::<P>(capacity);
    let peer = pinning.clone();
    let consumer = std::thread::spawn(move || {
        peer.pin_peer(0);
        let mut tally = Tally::new(shape);
        let mut spin = Spin::new("crossbeam events");
        while tally.seen < total {
            match receiver.try_recv() {
                Ok(event) => {
                    tally.observe(&event);
                    spin.progress();
                }
                Err(crossbeam_channel::TryRecvError::Empty) => spin.idle(),
                Err(e) => panic!("crossbeam: {e}"),
            }
        }
        tally.report(monotonic_ns())
    });
    let start = drive(shape, warmup, measured, |seq, _| {
        sender.send(P::for_seq(seq)).expect("crossbeam send");
    });
    let report = consumer.join().expect("the crossbeam consumer panicked");
    (start, verify::<P>(Contender::Crossbeam, &report, total))
}
