//! Start-order permutations: the producer first, the consumers first, or interleaved; with 1, 2 and 3
//! consumer processes; under both coordination modes — `Immediate` with named consumers reserved by
//! `discover_consumer_with_prefix` (so a consumer that starts late still gets everything from 0), and
//! `WaitForConsumers` with anonymous consumers. Every consumer must receive every event from sequence 0,
//! gap-free and intact, and nothing may hang.
//!
//! The order is enforced by watching the segment's file in `/dev/shm` (and, for a producer started
//! first under `Immediate`, its `published` count), so this file is Linux-only.
#![cfg(target_os = "linux")]

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, CoordinationMode,
};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, read_until_error, unique_segment_name, CheckedEvent,
    ChildProcess, SegmentFile, SignalFile, StreamCheck,
};
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";
const MODE: &str = "DMP_MODE";
const CONSUMERS: &str = "DMP_CONSUMERS";
const CONSUMER_ID: &str = "DMP_CONSUMER_ID";
const SIGNAL: &str = "DMP_SIGNAL";

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(10);
/// Events per run: a few rings' worth, so that late consumers really hold the producer back.
const EVENTS: u64 = 1_000;
const CAPACITY: u64 = 32;
/// Prefix of the named consumers under `Immediate`.
const PREFIX: &str = "c";

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "producer" => producer(),
        "consumer" => consumer(),
        other => Err(format!("unknown role {other}")),
    });
}

/// Creates the ring in `MODE` for `CONSUMERS` consumers, publishes `EVENTS` events, closes it.
fn producer() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    let consumers: usize = child_arg(CONSUMERS);
    let builder = build_shared_single_producer::<CheckedEvent>(&name, CAPACITY as usize);
    let builder = match child_arg::<String>(MODE).as_str() {
        "immediate" => builder
            .with_coordination(CoordinationMode::Immediate)
            .discover_consumer_with_prefix(consumers, PREFIX),
        "wait" => builder.with_coordination(CoordinationMode::WaitForConsumers {
            min_consumers: consumers,
            timeout: STALL,
        }),
        other => return Err(format!("unknown mode {other}")),
    };
    let mut producer = builder.build_producer().map_err(|e| e.to_string())?;
    for sequence in 0..EVENTS {
        producer
            .publish_timeout(CheckedEvent::new(sequence), STALL)
            .map_err(|e| format!("publish {sequence}: {e}"))?;
    }
    Ok(producer.next_sequence().to_string())
}

/// Raises `SIGNAL` (it is about to attach), attaches (as `CONSUMER_ID`, if not empty), waiting for the
/// ring to appear, and reads until it closes.
fn consumer() -> Result<String, String> {
    SignalFile::raise(&child_arg::<String>(SIGNAL), "attaching").map_err(|e| e.to_string())?;
    let mut consumer = attach_shared_consumer::<CheckedEvent>(&child_arg::<String>(SEGMENT))
        .with_consumer_id(&child_arg::<String>(CONSUMER_ID))
        .with_attach_timeout(STALL)
        .build_consumer()
        .map_err(|e| format!("attach: {e}"))?;
    let mut check = StreamCheck::new(consumer.next_sequence());
    match read_until_error(&mut consumer, &mut check, 64, STALL)? {
        ConsumeError::Closed => Ok(check.report()),
        other => Err(format!("after {} events: {other}", check.count())),
    }
}

#[derive(Debug, Clone, Copy)]
enum Order {
    /// The producer's ring exists (and, under `Immediate`, is full: gated by the reserved slots) before
    /// any consumer starts.
    ProducerFirst,
    /// Every consumer is waiting to attach before the producer starts.
    ConsumersFirst,
    /// One consumer, then the producer, then the others.
    Interleaved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    ImmediateNamed,
    WaitAnonymous,
}

fn run_permutation(order: Order, consumers: usize, mode: Mode) {
    let context = format!("{order:?}, {consumers} consumers, {mode:?}");
    let name = unique_segment_name("order");
    let segment = SegmentFile::new(&name);
    let spawn_producer = || {
        let mode = match mode {
            Mode::ImmediateNamed => "immediate",
            Mode::WaitAnonymous => "wait",
        };
        ChildProcess::spawn_test_role(
            "producer",
            &[
                (SEGMENT, name.clone()),
                (MODE, mode.to_string()),
                (CONSUMERS, consumers.to_string()),
            ],
        )
        .unwrap()
    };
    let signals: Vec<SignalFile> = (0..consumers).map(|_| SignalFile::new("order")).collect();
    let spawn_consumer = |k: usize| {
        let id = match mode {
            Mode::ImmediateNamed => format!("{PREFIX}_{k}"),
            Mode::WaitAnonymous => String::new(),
        };
        ChildProcess::spawn_test_role(
            "consumer",
            &[
                (SEGMENT, name.clone()),
                (CONSUMER_ID, id),
                (SIGNAL, signals[k].path()),
            ],
        )
        .unwrap()
    };
    // Waits until consumer `k` is about to attach (then it polls for the ring every 10 ms at most).
    let attaching = |children: &mut Vec<ChildProcess>, k: usize| {
        signals[k]
            .wait_for(&mut children[k], STALL)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        std::thread::sleep(Duration::from_millis(15));
    };
    let wait_for_ring = |what| {
        segment
            .wait_until(STALL, what, |s| match mode {
                // Gated by the reserved slots only: it fills the ring, then waits for them.
                Mode::ImmediateNamed => Ok(s.published()? == CAPACITY),
                Mode::WaitAnonymous => Ok(s.exists()),
            })
            .unwrap_or_else(|e| panic!("{context}: {e}"))
    };

    let mut children = Vec::new();
    let producer;
    match order {
        Order::ProducerFirst => {
            producer = spawn_producer();
            wait_for_ring("the producer is up");
            children.extend((0..consumers).map(spawn_consumer));
        }
        Order::ConsumersFirst => {
            children.extend((0..consumers).map(spawn_consumer));
            for k in 0..consumers {
                attaching(&mut children, k);
            }
            producer = spawn_producer();
        }
        Order::Interleaved => {
            children.push(spawn_consumer(0));
            attaching(&mut children, 0);
            producer = spawn_producer();
            if consumers > 1 {
                wait_for_ring("the producer is up");
                children.extend((1..consumers).map(spawn_consumer));
            }
        }
    }
    let published = producer
        .expect_success(STALL * 2)
        .unwrap_or_else(|e| panic!("{context}: producer: {e}"));
    assert_eq!(published.trim(), EVENTS.to_string(), "{context}");
    let expected = StreamCheck::expected_report(0, EVENTS, 0);
    for (k, child) in children.into_iter().enumerate() {
        let report = child
            .expect_success(STALL)
            .unwrap_or_else(|e| panic!("{context}: consumer {k}: {e}"));
        assert_eq!(report.trim(), expected, "{context}: consumer {k}");
    }
    assert!(
        !segment.exists(),
        "{context}: the producer's clean drop left the name"
    );
}

macro_rules! permutations {
    ($($test:ident: $order:ident, $consumers:literal, $mode:ident;)*) => {
        $(
            #[test]
            fn $test() {
                run_permutation(Order::$order, $consumers, Mode::$mode);
            }
        )*
    };
}

permutations! {
    producer_first_1_immediate_named: ProducerFirst, 1, ImmediateNamed;
    producer_first_2_immediate_named: ProducerFirst, 2, ImmediateNamed;
    producer_first_3_immediate_named: ProducerFirst, 3, ImmediateNamed;
    consumers_first_1_immediate_named: ConsumersFirst, 1, ImmediateNamed;
    consumers_first_2_immediate_named: ConsumersFirst, 2, ImmediateNamed;
    consumers_first_3_immediate_named: ConsumersFirst, 3, ImmediateNamed;
    interleaved_1_immediate_named: Interleaved, 1, ImmediateNamed;
    interleaved_2_immediate_named: Interleaved, 2, ImmediateNamed;
    interleaved_3_immediate_named: Interleaved, 3, ImmediateNamed;
    producer_first_1_wait_for_consumers: ProducerFirst, 1, WaitAnonymous;
    producer_first_2_wait_for_consumers: ProducerFirst, 2, WaitAnonymous;
    producer_first_3_wait_for_consumers: ProducerFirst, 3, WaitAnonymous;
    consumers_first_1_wait_for_consumers: ConsumersFirst, 1, WaitAnonymous;
    consumers_first_2_wait_for_consumers: ConsumersFirst, 2, WaitAnonymous;
    consumers_first_3_wait_for_consumers: ConsumersFirst, 3, WaitAnonymous;
    interleaved_1_wait_for_consumers: Interleaved, 1, WaitAnonymous;
    interleaved_2_wait_for_consumers: Interleaved, 2, WaitAnonymous;
    interleaved_3_wait_for_consumers: Interleaved, 3, WaitAnonymous;
}
