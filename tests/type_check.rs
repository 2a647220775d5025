//! A consumer process compiled with another event type is refused, and the error names what differs.
//!
//! Each child role declares its own `Tick` in its own module, as a separate program would. The test runs on
//! both backends.

use disruptor_mp::{AttachError, MappedFile, SharedMemory};
use disruptor_mp_suite::{
    child_arg, dispatch_child_role, on_both_backends, on_child_backend, ChildProcess, TestBackend,
};
use std::time::Duration;

const SEGMENT: &str = "DMP_SEGMENT";

mod producer_side {
    /// The producer's event.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub instrument: u32,
        pub side: u32,
        pub price: f64,
        pub qty: u64,
    }
}

mod same {
    /// The same definition, compiled separately.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub instrument: u32,
        pub side: u32,
        pub price: f64,
        pub qty: u64,
    }
}

mod reordered {
    /// Same size and field types, two fields swapped.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub side: u32,
        pub instrument: u32,
        pub price: f64,
        pub qty: u64,
    }
}

mod retyped {
    /// Same size, `qty` changed from u64 to f64.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub instrument: u32,
        pub side: u32,
        pub price: f64,
        pub qty: f64,
    }
}

mod bigger {
    /// One more field.
    #[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug)]
    #[repr(C)]
    pub struct Tick {
        pub instrument: u32,
        pub side: u32,
        pub price: f64,
        pub qty: u64,
        pub venue: u64,
    }
}

fn attach_as<B: TestBackend, E: disruptor_mp::RingEvent>() -> Result<String, String> {
    let name: String = child_arg(SEGMENT);
    match B::consumer::<E>(&name)
        .with_attach_timeout(Duration::from_secs(10))
        .build_consumer()
    {
        Ok(_) => Ok("attached".to_string()),
        // Report the whole message on one line; the parent checks its parts.
        Err(AttachError::EventTypeMismatch(mismatch)) => {
            Ok(mismatch.to_string().replace('\n', " | "))
        }
        Err(other) => Err(format!("unexpected error: {other}")),
    }
}

#[test]
fn child_process_entry() {
    dispatch_child_role(|role| match role {
        "same" => on_child_backend(
            attach_as::<SharedMemory, same::Tick>,
            attach_as::<MappedFile, same::Tick>,
        ),
        "reordered" => on_child_backend(
            attach_as::<SharedMemory, reordered::Tick>,
            attach_as::<MappedFile, reordered::Tick>,
        ),
        "retyped" => on_child_backend(
            attach_as::<SharedMemory, retyped::Tick>,
            attach_as::<MappedFile, retyped::Tick>,
        ),
        "bigger" => on_child_backend(
            attach_as::<SharedMemory, bigger::Tick>,
            attach_as::<MappedFile, bigger::Tick>,
        ),
        other => Err(format!("unknown role {other}")),
    });
}

fn attach_report<B: TestBackend>(name: &str, role: &str) -> String {
    ChildProcess::spawn_test_role(role, &[(SEGMENT, name.to_string()), B::env()])
        .unwrap()
        .expect_success(Duration::from_secs(60))
        .unwrap()
}

on_both_backends! {
    consumer_processes_with_other_event_types_are_refused_naming_the_difference =>
        consumer_processes_with_other_event_types_are_refused_naming_the_difference_shm,
        consumer_processes_with_other_event_types_are_refused_naming_the_difference_file;
}

fn consumer_processes_with_other_event_types_are_refused_naming_the_difference<B: TestBackend>() {
    let ring = B::new_ring("types");
    let name = ring.id();
    let producer = B::producer::<producer_side::Tick>(name, 64)
        .build_producer()
        .unwrap();
    let segment = producer.segment_name().to_string();

    assert_eq!(attach_report::<B>(name, "same"), "attached");

    let reordered = attach_report::<B>(name, "reordered");
    assert!(
        reordered.starts_with(&format!("event type mismatch on segment {segment:?}")),
        "{reordered}"
    );
    assert!(
        reordered.contains("first difference at field #0: `side`: offset 0, u32 (here) vs `instrument`: offset 0, u32 (segment)"),
        "{reordered}"
    );

    let retyped = attach_report::<B>(name, "retyped");
    assert!(
        retyped.contains(
            "first difference at field `qty`: offset 16, f64 (here) vs offset 16, u64 (segment)"
        ),
        "{retyped}"
    );
    assert!(
        retyped.contains("this process : Tick  size 24 align 8"),
        "{retyped}"
    );
    assert!(
        retyped.contains("segment      : Tick  size 24 align 8"),
        "{retyped}"
    );

    let bigger = attach_report::<B>(name, "bigger");
    assert!(
        bigger.contains("this process : Tick  size 32 align 8"),
        "{bigger}"
    );
    assert!(
        bigger.contains("segment      : Tick  size 24 align 8"),
        "{bigger}"
    );
    assert!(
        bigger.contains("`venue`: offset 24, u64 (here), which the segment's type does not have"),
        "{bigger}"
    );
    drop(producer);
}
