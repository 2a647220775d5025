//! Event processors (`Consumer::handle_events_with`, `Consumer::processor`): batches and their
//! `end_of_batch` flags, prompt shutdown under full-speed publishing, why a processor ended (the ring
//! closed, the handler panicked), its thread's name and pinning.

use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, ConsumeError, ProcessorExit, SpawnError,
    WaitStrategy,
};
use disruptor_mp_suite::{unique_segment_name, BackgroundPublisher, CheckedEvent, StreamCheck};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest any single wait may take before the test calls it a failure.
const STALL: Duration = Duration::from_secs(30);

/// Waits until `counter` reaches `at_least`, or fails the test after [`STALL`].
fn wait_for(counter: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + STALL;
    while counter.load(Ordering::Relaxed) < at_least {
        assert!(Instant::now() < deadline, "only {counter:?} of {at_least}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn end_of_batch_marks_exactly_the_last_event_of_each_batch() {
    let name = unique_segment_name("processor-batches");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    // Ten events before the processor starts: it finds them together and, at most four per batch, hands
    // them over as 0..4, 4..8, 8..10.
    producer
        .publish_batch(&(0..10).collect::<Vec<_>>())
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handled = Arc::new(AtomicU64::new(0));
    let (record, count) = (Arc::clone(&seen), Arc::clone(&handled));
    let processor = consumer
        .processor()
        .with_max_batch(4)
        .spawn(move |event, sequence, end_of_batch| {
            assert_eq!(*event, sequence);
            record.lock().unwrap().push((sequence, end_of_batch));
            count.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    wait_for(&handled, 10);
    // One release store publishes these three together: one batch.
    producer.publish_batch(&[10, 11, 12]).unwrap();
    wait_for(&handled, 13);
    drop(producer);
    assert_eq!(
        processor.join_timeout(STALL).unwrap(),
        ProcessorExit::Ended(ConsumeError::Closed)
    );
    let ends: Vec<u64> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, end)| *end)
        .map(|(sequence, _)| *sequence)
        .collect();
    assert_eq!(ends, [3, 7, 9, 12]);
}

#[test]
fn a_processor_under_full_speed_publishing_shuts_down_promptly_having_seen_every_event_in_order() {
    let name = unique_segment_name("processor-shutdown");
    let producer = build_shared_single_producer::<CheckedEvent>(&name, 4096)
        .with_wait_strategy(WaitStrategy::BusySpin)
        .build_producer()
        .unwrap();
    let consumer = attach_shared_consumer::<CheckedEvent>(&name)
        .build_consumer()
        .unwrap();
    let check = Arc::new(Mutex::new((StreamCheck::new(0), 0u64, true)));
    let handled = Arc::new(AtomicU64::new(0));
    let (shared, count) = (Arc::clone(&check), Arc::clone(&handled));
    let processor = consumer
        .processor()
        .with_max_batch(256)
        .spawn(move |event, sequence, end_of_batch| {
            let mut state = shared.lock().unwrap();
            let (check, batch, last_was_end) = &mut *state;
            check.observe(event, sequence);
            *batch += 1;
            assert!(*batch <= 256, "a batch longer than the maximum");
            if end_of_batch {
                *batch = 0;
            }
            *last_was_end = end_of_batch;
            count.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let publisher = BackgroundPublisher::spawn(producer, u64::MAX);
    publisher.wait_progress(200_000, STALL).unwrap();
    wait_for(&handled, 100_000);
    let asked = Instant::now();
    let exit = processor.shutdown();
    let took = asked.elapsed();
    assert_eq!(exit, ProcessorExit::Shutdown);
    println!("shutdown under full-speed publishing took {took:?}");
    assert!(
        took < Duration::from_millis(100),
        "shutdown took {took:?} under sustained publishing"
    );
    publisher.stop();
    let published = publisher.finish(STALL);
    let state = check.lock().unwrap();
    let (check, _, last_was_end) = &*state;
    check.result().unwrap();
    assert!(check.count() >= 100_000);
    assert!(check.count() <= published.events);
    // The processor stopped between batches: the last event it handled ended its batch.
    assert!(*last_was_end);
}

#[test]
fn join_reports_a_panicking_handler_and_the_consumer_leaves() {
    let name = unique_segment_name("processor-panic");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let processor = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap()
        .handle_events_with(|event, _, _| {
            if *event == 5 {
                panic!("bad event {event}");
            }
        })
        .unwrap();
    assert_eq!(producer.attached_consumers(), 1);
    for i in 0..10 {
        producer.publish(i).unwrap();
    }
    match processor.join_timeout(STALL).unwrap() {
        ProcessorExit::Panicked { message } => assert_eq!(message, "bad event 5"),
        other => panic!("{other:?}"),
    }
    // The consumer left with the thread: the producer no longer waits for it.
    assert_eq!(producer.attached_consumers(), 0);
    for i in 0..200 {
        producer.try_publish(i).unwrap();
    }
}

#[test]
fn an_idle_processor_shuts_down_within_its_poll_interval() {
    let name = unique_segment_name("processor-idle");
    let _producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let processor = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap()
        .handle_events_with(|_, _, _| {})
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let asked = Instant::now();
    assert_eq!(processor.shutdown(), ProcessorExit::Shutdown);
    assert!(asked.elapsed() < Duration::from_millis(100));
}

#[test]
fn the_thread_is_named_and_pinned_as_asked() {
    let name = unique_segment_name("processor-thread");
    let mut producer = build_shared_single_producer::<u64>(&name, 64)
        .build_producer()
        .unwrap();
    let (report, names) = mpsc::channel();
    let processor = attach_shared_consumer::<u64>(&name)
        .with_consumer_id("risk")
        .build_consumer()
        .unwrap()
        .processor()
        .pinned_to_core(0)
        .spawn(move |_, _, _| {
            let _ = report.send(std::thread::current().name().map(str::to_string));
        })
        .unwrap();
    assert_eq!(processor.thread_name(), "dmp-risk");
    producer.publish(1).unwrap();
    assert_eq!(
        names.recv_timeout(STALL).unwrap().as_deref(),
        Some("dmp-risk")
    );
    assert_eq!(processor.shutdown(), ProcessorExit::Shutdown);

    let far_core = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap()
        .processor()
        .with_thread_name("far")
        .pinned_to_core(1 << 20)
        .spawn(|_, _, _| {});
    assert!(matches!(
        far_core,
        Err(SpawnError::Pin { core, .. }) if core == 1 << 20
    ));
    // The refused processor's consumer left: only... nobody is attached.
    assert_eq!(producer.attached_consumers(), 0);
}
