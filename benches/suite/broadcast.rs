//! Broadcast: one disruptor-mp producer, `k` consumer processes that each read every event (64-byte,
//! single publish, busy spin). It measures what a publish costs the producer and how fast each consumer
//! receives, for growing `k`. Each consumer runs the throughput section's consumer role, which checks
//! the order and the checksum of everything it reads.

use crate::config::{Pinning, RUN_LIMIT, SETUP_TIMEOUT};
use crate::contender::{finish, spawn, Contender};
use crate::report::{BroadcastRow, Shape};
use crate::throughput::{capacity_for, drive, verify};
use crate::wait::{monotonic_ns, Watchdog};
use disruptor_mp::{SharedMemory, WaitStrategy};
use disruptor_mp_suite::TestBackend;

type Event = [u64; 8];

/// One run with `consumers` consumer processes.
pub fn measure(pinning: &Pinning, consumers: usize, warmup: u64, measured: u64) -> BroadcastRow {
    let capacity = capacity_for(std::mem::size_of::<Event>());
    let total = warmup + measured;
    // Declared before the children, so that it drops after them and removes what a killed child leaves.
    let ring = SharedMemory::new_ring("bcast");
    let mut producer = SharedMemory::producer::<Event>(ring.id(), capacity)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .expect("create the ring");
    let children: Vec<_> = (0..consumers)
        .map(|index| {
            spawn(&format!(
                "consume {} single 64 {} {total} {capacity} {}",
                Contender::Ours.tag(),
                pinning.peer_arg(index),
                ring.id()
            ))
        })
        .collect();
    producer
        .wait_for_consumers(consumers, SETUP_TIMEOUT)
        .expect("every consumer attached");
    // `publish` waits without a deadline for a consumer that may have died.
    let watchdog = Watchdog::arm("broadcast", RUN_LIMIT, vec![ring.path()]);
    let start = drive(Shape::Single, warmup, measured, |seq, _| {
        producer
            .publish_with(|slot| crate::payload::Payload::fill(slot, seq))
            .expect("publish");
    });
    let published = monotonic_ns();
    drop(producer);
    let consumer_rates = children
        .into_iter()
        .map(|child| {
            let end = verify::<Event>(Contender::Ours, &finish(child), total);
            measured as f64 / (end.saturating_sub(start).max(1) as f64 / 1e9)
        })
        .collect();
    drop(watchdog);
    BroadcastRow {
        consumers,
        publish_ns: (published - start) as f64 / measured as f64,
        consumer_rates,
    }
}
