//! Latency under load: the producer offers events at a fixed rate, scheduling event `i` at
//! `t0 + i / rate` and stamping that *intended* time into it; the consumer records `now − intended` on
//! `CLOCK_MONOTONIC`, which every process shares. A producer that falls behind its schedule (a full
//! ring, a preemption) therefore shows in the latency of every event it delayed: coordinated omission
//! is counted. Ours runs across two processes, upstream `disruptor` in one.

use crate::config::{Pinning, IDLE_TIMEOUT, RUN_LIMIT, SETUP_TIMEOUT};
use crate::contender::{check_delivery, finish, report_numbers, spawn, Contender};
use crate::payload::Payload;
use crate::report::Percentiles;
use crate::round_trip::latency_histogram;
use crate::wait::{monotonic_ns, Spin, Watchdog};
use disruptor::BusySpin;
use disruptor_mp::{SharedMemory, WaitStrategy};
use disruptor_mp_suite::TestBackend;
use hdrhistogram::Histogram;
use std::sync::mpsc;
use std::time::Duration;

/// The event: word 0 the sequence, word 1 the intended send time, the rest as every payload has them.
type Stamped = [u64; 8];
/// Ring capacity for both libraries.
const CAPACITY: usize = 16 * 1024;
/// Unpaced events before the paced ones (not recorded): they fault the ring's pages in.
const WARMUP: u64 = 2 * CAPACITY as u64;
/// How long the consumer gets to drain the warm-up before the schedule starts.
const SETTLE: Duration = Duration::from_millis(2);
/// A rate counts as sustained when events were delivered at this share of it or more.
pub const SUSTAINED_SHARE: f64 = 0.95;

/// What one paced run measured.
pub struct LoadRun {
    /// Events per second delivered: paced events over the time from `t0` to the last receipt.
    pub achieved: f64,
    pub latency: Percentiles,
}

impl LoadRun {
    /// Whether the pair kept up with `offered` events per second.
    pub fn sustained(&self, offered: f64) -> bool {
        self.achieved >= SUSTAINED_SHARE * offered
    }
}

/// The consumer's side of every run: checks the order, records each paced event's latency.
struct Recorder {
    seen: u64,
    bad: u64,
    hist: Histogram<u64>,
    last_receipt: u64,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            seen: 0,
            bad: 0,
            hist: latency_histogram(),
            last_receipt: 0,
        }
    }

    #[inline(always)]
    fn observe(&mut self, event: &Stamped) {
        let now = monotonic_ns();
        if (event[0] != self.seen || event[7] != self.seen.wrapping_add(7)) && self.bad == 0 {
            self.bad = self.seen + 1;
        }
        if self.seen >= WARMUP {
            self.hist
                .saturating_record(now.saturating_sub(event[1]).max(1));
        }
        self.last_receipt = now;
        self.seen += 1;
    }

    /// `seen bad last_receipt p50 p99 p99.9 max`, then the curve's values.
    fn report(&self) -> String {
        let latency = Percentiles::of(&self.hist);
        let mut words = vec![
            self.seen,
            self.bad,
            self.last_receipt,
            latency.p50,
            latency.p99,
            latency.p999,
            latency.max,
        ];
        words.extend(latency.curve.iter().map(|&(_, ns)| ns));
        words
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Parses a [`Recorder::report`] of `total` events into the run's result.
fn parse(contender: Contender, report: &str, total: u64, t0: u64, paced: u64) -> LoadRun {
    let numbers = report_numbers(report);
    let [seen, bad, last, p50, p99, p999, max, ref curve @ ..] = numbers[..] else {
        panic!("{}: bad report {report:?}", contender.label());
    };
    check_delivery(contender, seen, bad, total);
    let quantiles = crate::report::CURVE_QUANTILES.iter().copied().chain([1.0]);
    LoadRun {
        achieved: paced as f64 / (last.saturating_sub(t0).max(1) as f64 / 1e9),
        latency: Percentiles {
            p50,
            p99,
            p999,
            max,
            curve: quantiles.zip(curve.iter().copied()).collect(),
        },
    }
}

/// Publishes the warm-up unpaced, then `paced` events on the schedule from `t0`; `publish(seq, intended)`.
fn offer(rate: f64, paced: u64, mut publish: impl FnMut(u64, u64)) -> u64 {
    for seq in 0..WARMUP {
        publish(seq, 0);
    }
    let t0 = monotonic_ns() + SETTLE.as_nanos() as u64;
    let period = 1e9 / rate;
    let mut now = monotonic_ns();
    for index in 0..paced {
        let intended = t0 + (index as f64 * period) as u64;
        // The clock is read only while ahead of schedule: a late producer publishes at once.
        while now < intended {
            std::hint::spin_loop();
            now = monotonic_ns();
        }
        publish(WARMUP + index, intended);
    }
    t0
}

#[inline(always)]
fn stamp(slot: &mut Stamped, seq: u64, intended: u64) {
    slot.fill(seq);
    slot[1] = intended;
}

/// One paced run of `contender` at `rate` events per second for `duration`.
pub fn measure(contender: Contender, pinning: &Pinning, rate: f64, duration: Duration) -> LoadRun {
    let paced = ((rate * duration.as_secs_f64()) as u64).max(1);
    let total = WARMUP + paced;
    // A blocking publish waits without a deadline for a consumer that may have died: each branch arms a
    // watchdog (which removes the ring, if any, when it fires).
    let run = match contender {
        Contender::Ours => {
            // Declared before the child, so that it drops after it and removes what a killed child leaves.
            let ring = SharedMemory::new_ring("load");
            let mut producer = SharedMemory::producer::<Stamped>(ring.id(), CAPACITY)
                .with_wait_strategy(WaitStrategy::BusySpin)
                .build_producer()
                .expect("create the ring");
            let _watchdog = Watchdog::arm("latency under load", RUN_LIMIT, vec![ring.path()]);
            let child = spawn(&format!(
                "record {} {total} {}",
                pinning.peer_arg(0),
                ring.id()
            ));
            producer
                .wait_for_consumers(1, SETUP_TIMEOUT)
                .expect("the child attached");
            let t0 = offer(rate, paced, |seq, intended| {
                producer
                    .publish_with(|slot| stamp(slot, seq, intended))
                    .expect("publish");
            });
            drop(producer);
            parse(contender, &finish(child), total, t0, paced)
        }
        Contender::Upstream => {
            let _watchdog = Watchdog::arm("latency under load", RUN_LIMIT, Vec::new());
            let (done_tx, done_rx) = mpsc::channel::<String>();
            let peer = pinning.clone();
            let init = move || {
                peer.pin_peer(0);
                (Recorder::new(), done_tx)
            };
            let handler = move |state: &mut (Recorder, mpsc::Sender<String>),
                                event: &Stamped,
                                _: i64,
                                end: bool| {
                state.0.observe(event);
                if end && state.0.seen == total {
                    let _ = state.1.send(state.0.report());
                }
            };
            let mut producer =
                disruptor::build_single_producer(CAPACITY, Stamped::zeroed, BusySpin)
                    .handle_events_and_state_with(handler, init)
                    .build();
            let t0 = offer(rate, paced, |seq, intended| {
                disruptor::Producer::publish(&mut producer, |slot: &mut Stamped| {
                    stamp(slot, seq, intended)
                });
            });
            let report = done_rx
                .recv_timeout(IDLE_TIMEOUT)
                .expect("the upstream consumer finished");
            drop(producer);
            parse(contender, &report, total, t0, paced)
        }
        other => panic!("{} has no latency-under-load run", other.label()),
    };
    run
}

/// Child side: `record CPU TOTAL RING`; consumes and records, returns the [`Recorder::report`].
pub fn record_child(words: &[&str]) -> Result<String, String> {
    let [cpu, total, ring] = words else {
        return Err(format!("bad record role {words:?}"));
    };
    crate::config::pin_to(cpu);
    let total: u64 = total.parse().map_err(|_| format!("bad count {total}"))?;
    let mut consumer = SharedMemory::consumer::<Stamped>(ring)
        .with_attach_timeout(SETUP_TIMEOUT)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_consumer()
        .map_err(|e| e.to_string())?;
    let mut recorder = Recorder::new();
    let mut spin = Spin::in_child("paced events");
    while recorder.seen < total {
        let max = (total - recorder.seen) as usize;
        let handled = consumer
            .try_consume_batch(max, |event, _, _| recorder.observe(event))
            .map_err(|e| e.to_string())?;
        if handled == 0 {
            spin.idle();
        } else {
            spin.progress();
        }
    }
    Ok(recorder.report())
}
