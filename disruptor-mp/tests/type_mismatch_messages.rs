//! What an attach with the wrong event type says when the field descriptors the segment records cannot
//! show the difference: a difference past the recorded leaves, and types whose every leaf agrees.

use disruptor_mp::segment::DESCRIPTOR_ENTRIES;
use disruptor_mp::{
    attach_shared_consumer, build_shared_single_producer, portable_shm_segment_name, AttachError,
    RingEvent, TypeMismatch,
};

/// A segment name unique to this test process, short enough for every platform.
fn unique(label: &str) -> String {
    portable_shm_segment_name(&format!("dmp-mismatch-{label}-{}", std::process::id()))
}

/// Creates a ring of `Segment`, attaches as `Here`, and returns the mismatch (the producer is dropped, and
/// its segment removed, before this returns).
fn mismatch<Segment: RingEvent, Here: RingEvent>(label: &str) -> (TypeMismatch, String) {
    let name = unique(label);
    let producer = build_shared_single_producer::<Segment>(&name, 8)
        .build_producer()
        .expect("create the ring");
    let result = attach_shared_consumer::<Here>(&name).build_consumer();
    drop(producer);
    let error = match result {
        Err(error) => error,
        Ok(_) => panic!("attaching with another event type must fail"),
    };
    let text = error.to_string();
    match error {
        AttachError::EventTypeMismatch(mismatch) => (*mismatch, text),
        other => panic!("expected EventTypeMismatch, got {other:?}"),
    }
}

/// Ten `u32` leaves.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Ten {
    f0: u32,
    f1: u32,
    f2: u32,
    f3: u32,
    f4: u32,
    f5: u32,
    f6: u32,
    f7: u32,
    f8: u32,
    f9: u32,
}

/// `Ten` with `f6` signed, under the same stable name.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(name = "Ten")]
struct TenSignedF6 {
    f0: u32,
    f1: u32,
    f2: u32,
    f3: u32,
    f4: u32,
    f5: u32,
    f6: i32,
    f7: u32,
    f8: u32,
    f9: u32,
}

/// 70 leaves: `b0.f0` .. `b6.f9`.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Wide {
    b0: Ten,
    b1: Ten,
    b2: Ten,
    b3: Ten,
    b4: Ten,
    b5: Ten,
    b6: Ten,
}

/// `Wide` under the same stable name, differing only in leaf 67 (`b6.f6`, index 66): `i32`, not `u32`.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(name = "Wide")]
struct WideSignedLeaf67 {
    b0: Ten,
    b1: Ten,
    b2: Ten,
    b3: Ten,
    b4: Ten,
    b5: Ten,
    b6: TenSignedF6,
}

#[test]
fn a_difference_past_the_recorded_leaves_is_said_to_lie_there() {
    let here = Wide::LAYOUT.flatten();
    let there = WideSignedLeaf67::LAYOUT.flatten();
    assert_eq!((here.len(), there.len()), (70, 70));
    assert_eq!(DESCRIPTOR_ENTRIES, 64);
    let differing: Vec<usize> = (0..70).filter(|&i| here[i] != there[i]).collect();
    assert_eq!(differing, [66], "only leaf 67 differs");

    let (mismatch, text) = mismatch::<Wide, WideSignedLeaf67>("past");
    assert_eq!(mismatch.first_difference, None);
    assert_eq!(mismatch.recorded_leaves, DESCRIPTOR_ENTRIES);
    assert_eq!((mismatch.here_leaves, mismatch.segment_leaves), (70, 70));
    assert_eq!(mismatch.here.name, mismatch.segment.name);
    assert!(!text.contains("the recorded fields agree"), "{text}");
    assert!(
        text.ends_with(
            "the segment records only the first 64 leaf fields of an event type, and those agree \
             (this process's type has 70, the segment's 70): the difference lies in the fields past them"
        ),
        "{text}"
    );
}

/// Like `Wide`, with one more leaf at the end.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
#[ring_event(name = "Wide")]
struct WideWithTail {
    b0: Ten,
    b1: Ten,
    b2: Ten,
    b3: Ten,
    b4: Ten,
    b5: Ten,
    b6: Ten,
    tail: u32,
}

#[test]
fn an_extra_leaf_past_the_recorded_ones_shows_in_the_counts() {
    let (mismatch, text) = mismatch::<WideWithTail, Wide>("tail");
    assert_eq!(mismatch.first_difference, None);
    assert_eq!((mismatch.here_leaves, mismatch.segment_leaves), (70, 71));
    assert!(
        text.contains("(this process's type has 70, the segment's 71)"),
        "{text}"
    );
    assert!(text.contains("the types differ in size"), "{text}");
}

#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Pair {
    a: u64,
    b: u64,
}

/// `Pair` under another name.
#[derive(RingEvent, Clone, Copy, Default)]
#[repr(C)]
struct Couple {
    a: u64,
    b: u64,
}

#[test]
fn when_every_leaf_is_recorded_and_agrees_the_message_names_what_differs() {
    let (mismatch, text) = mismatch::<Pair, Couple>("name");
    assert_eq!(mismatch.first_difference, None);
    assert_eq!((mismatch.here_leaves, mismatch.segment_leaves), (2, 2));
    assert!(
        text.ends_with("all 2 leaf fields agree; the types differ in name"),
        "{text}"
    );
}
