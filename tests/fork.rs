//! A process that forks while it holds endpoints: the child's copies are inert. Dropping them in the child
//! neither frees the parent's consumer slot nor closes or unlinks the parent's ring.

use disruptor_mp::{attach_shared_consumer, build_shared_single_producer};
use disruptor_mp_suite::unique_segment_name;
use std::time::{Duration, Instant};

#[test]
fn a_forked_child_dropping_its_copies_leaves_the_parents_endpoints_working() {
    let name = unique_segment_name("fork");
    let mut producer = build_shared_single_producer::<u64>(&name, 4)
        .build_producer()
        .unwrap();
    let mut consumer = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    producer.publish(7).unwrap();

    // SAFETY: the child only drops the two endpoints (munmap, a few atomics, no locks held by other
    // threads of this process) and leaves with `_exit`, running no other code of the test harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        drop(consumer);
        drop(producer);
        // SAFETY: ends the child at once, without running the parent's atexit handlers or destructors.
        unsafe { libc::_exit(0) };
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: `child` is our child's pid and `status` is a valid out-pointer.
        let reaped = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
        if reaped == child {
            break;
        }
        if Instant::now() > deadline {
            // SAFETY: kills and reaps our own child.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, &mut status, 0);
            }
            panic!("the forked child did not exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);

    // The parent's consumer still gates and reads; its slot was not freed by the child.
    assert_eq!(producer.attached_consumers(), 1);
    assert_eq!(consumer.try_consume_next().unwrap(), Some((7, 0)));
    for i in 0..4 {
        producer.publish(i).unwrap();
    }
    assert!(
        producer.try_publish(99).is_err(),
        "the consumer stopped gating"
    );
    // The ring was neither closed nor unlinked: a new consumer can attach.
    let _late = attach_shared_consumer::<u64>(&name)
        .build_consumer()
        .unwrap();
    assert_eq!(consumer.try_consume_next().unwrap(), Some((0, 1)));
}
