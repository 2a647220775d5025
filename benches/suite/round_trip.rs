//! Round trip: the measuring side sends an event carrying a sequence number, the peer echoes it, the
//! measuring side checks both ends of the echo. Every sample is one round trip timed with `Instant` and
//! recorded in an HDR histogram; warm-up round trips are excluded.

use crate::config::{Pinning, IDLE_TIMEOUT, RUN_LIMIT, SETUP_TIMEOUT};
use crate::contender::{finish, spawn, Contender};
use crate::iox;
use crate::ipc::{inherited_pipe, unique_path, Pipe, RemoveOnDrop, SharedRegion};
use crate::payload::{as_bytes, as_bytes_mut, Payload};
use crate::wait::{Spin, Watchdog};
use disruptor::{BusySpin, Polling};
use disruptor_mp::{Backend, ConsumeError, Consumer, MappedFile, SharedMemory, WaitStrategy};
use disruptor_mp_suite::{SignalFile, TestBackend};
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

/// Ring capacity (a round trip holds at most one event, so it hardly matters).
const RING_CAPACITY: usize = 1024;
/// Word 0 of the event that tells an echo to stop.
const STOP: u64 = u64::MAX;
/// The floor's region: the ping line at 0, the pong line at 128.
const FLOOR_LEN: usize = 256;

/// A histogram for nanosecond latencies from 1 ns to 60 s at three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Times `warmup + measured` round trips; `round_trip(seq)` performs one and checks its echo. With a
/// `gap`, the measuring side sleeps that long before each round trip (outside the timed part), so that
/// a peer that sleeps when idle is asleep when the event comes.
fn time_round_trips(
    warmup: u64,
    measured: u64,
    gap: Option<Duration>,
    mut round_trip: impl FnMut(u64),
) -> Histogram<u64> {
    let mut hist = latency_histogram();
    for seq in 0..warmup + measured {
        if let Some(gap) = gap {
            std::thread::sleep(gap);
        }
        let start = Instant::now();
        round_trip(seq);
        let ns = start.elapsed().as_nanos() as u64;
        if seq >= warmup {
            hist.saturating_record(ns.max(1));
        }
    }
    hist
}

/// The round trips of `contender` with events of `P`.
pub fn measure<P: Payload>(
    contender: Contender,
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
) -> Histogram<u64> {
    match contender {
        Contender::Ours | Contender::OursBlocking => {
            let strategy = strategy_of(contender);
            ours::<P, SharedMemory>(strategy, pinning, warmup, measured, None)
        }
        Contender::OursFile => {
            ours::<P, MappedFile>(WaitStrategy::BusySpin, pinning, warmup, measured, None)
        }
        Contender::Floor => floor(pinning, warmup, measured),
        Contender::Upstream => upstream::<P>(pinning, warmup, measured),
        Contender::Crossbeam => crossbeam::<P>(pinning, warmup, measured),
        Contender::UnixSocket => unix_socket::<P>(pinning, warmup, measured, None),
        Contender::Pipe => pipe::<P>(pinning, warmup, measured),
        Contender::Iceoryx2 => iceoryx2::<P>(pinning, warmup, measured),
        Contender::Spsc => panic!("the SPSC ring is a throughput peer only"),
    }
}

/// Wake-up round trips of 8-byte events over shared memory with both endpoints on `strategy`, the
/// pinger sleeping `gap` before each.
pub fn ours_after_gap(
    strategy: WaitStrategy,
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
    gap: Duration,
) -> Histogram<u64> {
    ours::<[u64; 1], SharedMemory>(strategy, pinning, warmup, measured, Some(gap))
}

/// Wake-up round trips of 8-byte events through a Unix socket (blocking reads), the pinger sleeping
/// `gap` before each.
pub fn socket_after_gap(
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
    gap: Duration,
) -> Histogram<u64> {
    unix_socket::<[u64; 1]>(pinning, warmup, measured, Some(gap))
}

/// A wait strategy as a word of a child's role: `busy` or `block:SPINS:YIELDS`.
fn strategy_word(strategy: WaitStrategy) -> String {
    match strategy {
        WaitStrategy::Blocking { spins, yields } => format!("block:{spins}:{yields}"),
        _ => "busy".to_owned(),
    }
}

/// Parses [`strategy_word`].
fn parse_strategy(word: &str) -> Result<WaitStrategy, String> {
    let counts = |text: &str| -> Option<WaitStrategy> {
        let (spins, yields) = text.split_once(':')?;
        Some(WaitStrategy::Blocking {
            spins: spins.parse().ok()?,
            yields: yields.parse().ok()?,
        })
    };
    match word.strip_prefix("block:") {
        None if word == "busy" => Ok(WaitStrategy::BusySpin),
        Some(text) => counts(text).ok_or_else(|| format!("bad strategy {word:?}")),
        None => Err(format!("bad strategy {word:?}")),
    }
}

/// The wait strategy of a disruptor-mp contender.
pub fn strategy_of(contender: Contender) -> WaitStrategy {
    match contender {
        Contender::OursBlocking => WaitStrategy::DEFAULT_BLOCKING,
        _ => WaitStrategy::BusySpin,
    }
}

/// Child side: `echo CONTENDER BYTES CPU ARGS...`; returns the (empty) report.
pub fn echo_child(words: &[&str]) -> Result<String, String> {
    let [contender, bytes, cpu, args @ ..] = words else {
        return Err(format!("bad echo role {words:?}"));
    };
    crate::config::pin_to(cpu);
    let contender = Contender::from_tag(contender);
    let bytes: usize = bytes.parse().map_err(|_| format!("bad size {bytes}"))?;
    crate::payload::with_payload!(bytes, P => match (contender, args) {
        (Contender::Ours | Contender::OursBlocking, [strategy, ping, pong]) => {
            echo_ours::<P, SharedMemory>(parse_strategy(strategy)?, ping, pong)
        }
        (Contender::OursFile, [strategy, ping, pong]) => echo_ours::<P, MappedFile>(parse_strategy(strategy)?, ping, pong),
        (Contender::Floor, [path]) => echo_floor(path),
        (Contender::UnixSocket, [path]) => echo_stream::<P>(UnixStream::connect(path).map_err(|e| e.to_string())?),
        (Contender::Pipe, [ping, pong]) => echo_pipe::<P>(ping, pong),
        (Contender::Iceoryx2, [ping, pong, ready]) => echo_iceoryx2::<P>(ping, pong, ready),
        _ => return Err(format!("bad echo role {words:?}")),
    });
    Ok(String::new())
}

// ---------------------------------------------------------------------------------------------------
// disruptor-mp, two processes
// ---------------------------------------------------------------------------------------------------

/// Ring A carries pings to the child, ring B carries the echoes back, both on backend `B`.
fn ours<P: Payload, B: TestBackend>(
    strategy: WaitStrategy,
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
    gap: Option<Duration>,
) -> Histogram<u64> {
    // Declared before the child, so that they drop after it: they remove the rings a killed child leaves.
    let ping_ring = B::new_ring("rt-ping");
    let pong_ring = B::new_ring("rt-pong");
    let mut ping = B::producer::<P>(ping_ring.id(), RING_CAPACITY)
        .with_wait_strategy(strategy)
        .build_producer()
        .expect("create the ping ring");
    // The role names the backend; the strategy travels as its own word.
    let tag = if B::KIND == <MappedFile as TestBackend>::KIND {
        Contender::OursFile.tag()
    } else {
        Contender::Ours.tag()
    };
    let child = spawn(&format!(
        "echo {tag} {} {} {} {} {}",
        P::BYTES,
        pinning.peer_arg(0),
        strategy_word(strategy),
        ping_ring.id(),
        pong_ring.id()
    ));
    let mut pong = B::consumer::<P>(pong_ring.id())
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(strategy)
        .build_consumer()
        .expect("attach to the child's pong ring");
    ping.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("the child attached to the ping ring");
    let mut spin = Spin::new("the disruptor-mp echo");
    let hist = time_round_trips(warmup, measured, gap, |seq| {
        ping.publish_with(|slot| slot.fill(seq))
            .expect("publish ping");
        next_event(&mut pong, strategy, &mut spin, |echo| {
            assert!(echo.ends_match(seq), "disruptor-mp: wrong echo for {seq}");
        })
        .unwrap_or_else(|e| panic!("disruptor-mp pong ring: {e}"));
    });
    drop(ping); // closes ring A: the child sees Closed and exits
    finish(child);
    hist
}

/// Waits for the next event of `consumer` and hands it to `handle`. A `BusySpin` endpoint polls
/// `try_consume_next_leased` in this bounded loop; any other strategy waits in
/// `consume_next_leased_timeout`, where the library applies it (spin, then sleep until woken).
#[inline(always)]
fn next_event<P: Payload, B: Backend, R>(
    consumer: &mut Consumer<P, B>,
    strategy: WaitStrategy,
    spin: &mut Spin,
    handle: impl FnOnce(&P) -> R,
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

/// Echoes every event of ring A onto ring B until A is closed.
fn echo_ours<P: Payload, B: TestBackend>(strategy: WaitStrategy, ping_id: &str, pong_id: &str) {
    let mut ping = B::consumer::<P>(ping_id)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(strategy)
        .build_consumer()
        .expect("child: attach to the ping ring");
    let mut pong = B::producer::<P>(pong_id, RING_CAPACITY)
        .with_wait_strategy(strategy)
        .build_producer()
        .expect("child: create the pong ring");
    pong.wait_for_consumers(1, SETUP_TIMEOUT)
        .expect("child: the parent attached to the pong ring");
    let mut spin = Spin::in_child("the next ping");
    loop {
        let echoed = next_event(&mut ping, strategy, &mut spin, |event| {
            pong.publish(*event).expect("child: publish the echo");
        });
        match echoed {
            Ok(()) => {}
            Err(ConsumeError::Closed) => break,
            Err(e) => panic!("child: ping ring: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The cache-line floor: two processes, one 128-byte-aligned line each
// ---------------------------------------------------------------------------------------------------

fn floor(pinning: &Pinning, warmup: u64, measured: u64) -> Histogram<u64> {
    let path = RemoveOnDrop(unique_path("floor"));
    let region = SharedRegion::create(&path.0, FLOOR_LEN);
    let child = spawn(&format!(
        "echo {} 8 {} {}",
        Contender::Floor.tag(),
        pinning.peer_arg(0),
        path.0.display()
    ));
    let (ping, pong) = (region.atomic_at(0), region.atomic_at(128));
    let mut spin = Spin::new("the floor echo");
    let hist = time_round_trips(warmup, measured, None, |seq| {
        ping.store(seq + 1, std::sync::atomic::Ordering::Release);
        while pong.load(std::sync::atomic::Ordering::Acquire) != seq + 1 {
            spin.idle();
        }
        spin.progress();
    });
    ping.store(STOP, std::sync::atomic::Ordering::Release);
    finish(child);
    hist
}

fn echo_floor(path: &str) {
    let region = SharedRegion::open(std::path::Path::new(path), FLOOR_LEN);
    let (ping, pong) = (region.atomic_at(0), region.atomic_at(128));
    let mut spin = Spin::in_child("the floor ping");
    let mut last = 0;
    loop {
        let value = ping.load(std::sync::atomic::Ordering::Acquire);
        if value == last {
            spin.idle();
            continue;
        }
        if value == STOP {
            break;
        }
        pong.store(value, std::sync::atomic::Ordering::Release);
        last = value;
        spin.progress();
    }
}

// ---------------------------------------------------------------------------------------------------
// Upstream disruptor and crossbeam-channel, two threads
// ---------------------------------------------------------------------------------------------------

/// The main thread publishes into the ping disruptor; its handler thread (on the peer CPU) publishes a
/// copy into the pong disruptor, which the main thread polls.
fn upstream<P: Payload>(pinning: &Pinning, warmup: u64, measured: u64) -> Histogram<u64> {
    let (mut pong_poller, pong_builder) =
        disruptor::build_single_producer(RING_CAPACITY, P::zeroed, BusySpin).new_event_poller();
    let pong = pong_builder.build();
    let peer = pinning.clone();
    // The echo thread pins itself (upstream's `pin_at_core` only accepts cores in the building thread's
    // affinity mask, and this thread is pinned to the main CPU) and owns the pong producer.
    let init = move || {
        peer.pin_peer(0);
        pong
    };
    let echo = |pong: &mut _, event: &P, _seq: i64, _end_of_batch: bool| {
        disruptor::Producer::publish(pong, |slot: &mut P| *slot = *event);
    };
    let mut ping = disruptor::build_single_producer(RING_CAPACITY, P::zeroed, BusySpin)
        .handle_events_and_state_with(echo, init)
        .build();
    let mut spin = Spin::new("the upstream disruptor echo");
    let hist = time_round_trips(warmup, measured, None, |seq| {
        disruptor::Producer::publish(&mut ping, |slot: &mut P| slot.fill(seq));
        loop {
            match pong_poller.poll() {
                Ok(mut events) => {
                    let mut got = 0;
                    for echo in &mut events {
                        assert!(echo.ends_match(seq), "upstream: wrong echo for {seq}");
                        got += 1;
                    }
                    assert_eq!(got, 1, "upstream: one echo per ping");
                    break;
                }
                Err(Polling::NoEvents) => spin.idle(),
                Err(Polling::Shutdown) => panic!("upstream pong disruptor shut down"),
            }
        }
        spin.progress();
    });
    drop(ping); // joins the echo thread, which drops the pong producer
    hist
}

/// Two bounded channels; both sides poll with `try_recv`, as the busy-spinning rings do.
fn crossbeam<P: Payload>(pinning: &Pinning, warmup: u64, measured: u64) -> Histogram<u64> {
    let (ping_tx, ping_rx) = crossbeam_channel::bounded::<P>(RING_CAPACITY);
    let (pong_tx, pong_rx) = crossbeam_channel::bounded::<P>(RING_CAPACITY);
    let peer = pinning.clone();
    let echo = std::thread::spawn(move || {
        peer.pin_peer(0);
        let mut spin = Spin::new("the next crossbeam ping");
        loop {
            match ping_rx.try_recv() {
                Ok(event) => {
                    spin.progress();
                    pong_tx.send(event).expect("crossbeam: send the echo");
                }
                Err(crossbeam_channel::TryRecvError::Empty) => spin.idle(),
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            }
        }
    });
    let mut spin = Spin::new("the crossbeam echo");
    let hist = time_round_trips(warmup, measured, None, |seq| {
        ping_tx.send(P::for_seq(seq)).expect("crossbeam: send ping");
        loop {
            match pong_rx.try_recv() {
                Ok(echo) => {
                    assert!(echo.ends_match(seq), "crossbeam: wrong echo for {seq}");
                    break;
                }
                Err(crossbeam_channel::TryRecvError::Empty) => spin.idle(),
                Err(e) => panic!("crossbeam: {e}"),
            }
        }
        spin.progress();
    });
    drop(ping_tx);
    echo.join().expect("the crossbeam echo thread panicked");
    hist
}

// ---------------------------------------------------------------------------------------------------
// Unix socket and pipes, two processes
// ---------------------------------------------------------------------------------------------------

/// Accepts the one connection a child makes to `listener`, within [`SETUP_TIMEOUT`].
pub fn accept_child(listener: &UnixListener) -> UnixStream {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let deadline = Instant::now() + SETUP_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).expect("blocking stream");
                stream
                    .set_read_timeout(Some(IDLE_TIMEOUT))
                    .expect("timeout");
                stream
                    .set_write_timeout(Some(IDLE_TIMEOUT))
                    .expect("timeout");
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("the child did not connect to the Unix socket: {e}"),
        }
    }
}

/// A fresh Unix socket path and its listener (the path is removed on drop).
pub fn listen(label: &str) -> (RemoveOnDrop, UnixListener) {
    let name = unique_path(label);
    let path = RemoveOnDrop(std::env::temp_dir().join(name.file_name().expect("a file name")));
    let listener = UnixListener::bind(&path.0).expect("bind the Unix socket");
    (path, listener)
}

/// Writes the event for `seq` and reads the echo into `echo`, over any byte stream pair.
fn stream_round_trip<P: Payload>(
    writer: &mut impl Write,
    reader: &mut impl Read,
    echo: &mut P,
    seq: u64,
) {
    writer
        .write_all(as_bytes(&P::for_seq(seq)))
        .expect("write ping");
    reader.read_exact(as_bytes_mut(echo)).expect("read echo");
    assert!(echo.ends_match(seq), "stream: wrong echo for {seq}");
}

fn unix_socket<P: Payload>(
    pinning: &Pinning,
    warmup: u64,
    measured: u64,
    gap: Option<Duration>,
) -> Histogram<u64> {
    let (path, listener) = listen("rt-sock");
    let child = spawn(&format!(
        "echo {} {} {} {}",
        Contender::UnixSocket.tag(),
        P::BYTES,
        pinning.peer_arg(0),
        path.0.display()
    ));
    let mut stream = accept_child(&listener);
    let mut reader = stream.try_clone().expect("clone the socket");
    let mut echo = P::zeroed();
    let hist = time_round_trips(warmup, measured, gap, |seq| {
        stream_round_trip(&mut stream, &mut reader, &mut echo, seq);
    });
    drop((stream, reader)); // the child reads end of file and exits
    finish(child);
    hist
}

/// Echoes whole events until end of file.
fn echo_stream<P: Payload>(mut stream: UnixStream) {
    stream
        .set_read_timeout(Some(IDLE_TIMEOUT))
        .expect("timeout");
    let mut writer = stream.try_clone().expect("clone the socket");
    echo_bytes::<P>(&mut stream, &mut writer);
}

fn echo_bytes<P: Payload>(reader: &mut impl Read, writer: &mut impl Write) {
    let mut event = P::zeroed();
    loop {
        match reader.read_exact(as_bytes_mut(&mut event)) {
            Ok(()) => writer
                .write_all(as_bytes(&event))
                .expect("child: write echo"),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("child: read ping: {e}"),
        }
    }
}

fn pipe<P: Payload>(pinning: &Pinning, warmup: u64, measured: u64) -> Histogram<u64> {
    let mut ping = Pipe::new(true);
    let mut pong = Pipe::new(false);
    let child = spawn(&format!(
        "echo {} {} {} {} {}",
        Contender::Pipe.tag(),
        P::BYTES,
        pinning.peer_arg(0),
        ping.child_fd(),
        pong.child_fd()
    ));
    ping.close_child_end();
    pong.close_child_end();
    // A pipe read has no timeout: a watchdog bounds the run.
    let watchdog = Watchdog::arm("pipe round trips", RUN_LIMIT, Vec::new());
    let mut echo = P::zeroed();
    let hist = time_round_trips(warmup, measured, None, |seq| {
        stream_round_trip(&mut ping.parent_end, &mut pong.parent_end, &mut echo, seq);
    });
    drop((ping, pong)); // the child reads end of file and exits
    finish(child);
    drop(watchdog);
    hist
}

fn echo_pipe<P: Payload>(ping: &str, pong: &str) {
    let (mut reader, mut writer) = (inherited_pipe(ping), inherited_pipe(pong));
    echo_bytes::<P>(&mut reader, &mut writer);
}

// ---------------------------------------------------------------------------------------------------
// iceoryx2, two processes
// ---------------------------------------------------------------------------------------------------

fn iceoryx2<P: Payload>(pinning: &Pinning, warmup: u64, measured: u64) -> Histogram<u64> {
    let node = iox::node();
    let (ping_name, pong_name) = (iox::unique_service("ping"), iox::unique_service("pong"));
    let ping_service = iox::service::<P>(&node, &ping_name, RING_CAPACITY);
    let pong_service = iox::service::<P>(&node, &pong_name, RING_CAPACITY);
    let publisher = iox::publisher(&ping_service);
    let subscriber = iox::subscriber(&pong_service, RING_CAPACITY);
    let ready = SignalFile::new("iox-ready");
    let mut child = spawn(&format!(
        "echo {} {} {} {ping_name} {pong_name} {}",
        Contender::Iceoryx2.tag(),
        P::BYTES,
        pinning.peer_arg(0),
        ready.path()
    ));
    ready
        .wait_for(&mut child, SETUP_TIMEOUT)
        .unwrap_or_else(|e| panic!("iceoryx2 echo: {e}"));
    let mut spin = Spin::new("the iceoryx2 echo");
    let hist = time_round_trips(warmup, measured, None, |seq| {
        iox::send(&publisher, seq);
        loop {
            match subscriber.receive() {
                Ok(Some(echo)) => {
                    assert!(
                        echo.payload().ends_match(seq),
                        "iceoryx2: wrong echo for {seq}"
                    );
                    break;
                }
                Ok(None) => spin.idle(),
                Err(e) => panic!("iceoryx2 receive: {e:?}"),
            }
        }
        spin.progress();
    });
    iox::send(&publisher, STOP);
    finish(child);
    hist
}

fn echo_iceoryx2<P: Payload>(ping: &str, pong: &str, ready: &str) {
    let node = iox::node();
    let ping_service = iox::service::<P>(&node, ping, RING_CAPACITY);
    let pong_service = iox::service::<P>(&node, pong, RING_CAPACITY);
    let subscriber = iox::subscriber(&ping_service, RING_CAPACITY);
    let publisher = iox::publisher(&pong_service);
    SignalFile::raise(ready, "ready").expect("child: raise the ready signal");
    let mut spin = Spin::in_child("the next iceoryx2 ping");
    loop {
        match subscriber.receive() {
            Ok(Some(ping)) => {
                spin.progress();
                let event = *ping.payload();
                drop(ping);
                if event.seq() == STOP {
                    break;
                }
                let sample = publisher
                    .loan_uninit()
                    .unwrap_or_else(|e| panic!("child: iceoryx2 loan: {e:?}"));
                sample
                    .write_payload(event)
                    .send()
                    .unwrap_or_else(|e| panic!("child: iceoryx2 send: {e:?}"));
            }
            Ok(None) => spin.idle(),
            Err(e) => panic!("child: iceoryx2 receive: {e:?}"),
        }
    }
}
