//! Looking at rings from outside, without joining them: who is attached, who lags, who is dead, what
//! event type a ring carries.
//!
//! [`RingSnapshot::open`] maps a segment **read-only**, validates it exactly as an attach does (a
//! corrupted, truncated or foreign object is an [`AttachError`], never a panic), does not take a consumer
//! slot, and copies what it sees into plain data that serializes with `serde`. Nothing it does can change
//! the ring: the mapping has no write permission, and liveness is asked of the kernel's locks without
//! taking any. [`list_shared_memory`] and [`list_files`] find the rings on the machine (shared memory) and
//! in a directory (files).
//!
//! # Counters
//!
//! The segment keeps counters for observers ([`ProducerView`] and [`ConsumerView`]): the producer's waits
//! for room, time spent waiting, sleeps and wake-ups sent; each consumer's empty polls, sleeps and time
//! spent waiting. Each counter is written only by the process that owns its line, with relaxed stores,
//! on its cold paths (a wait, a sleep, a liveness check), and never on a line the other side polls: the
//! hot paths (a publish, an empty poll of a spinning consumer) are unchanged. Events published and
//! consumed are the cursors themselves; a consumer's lag is computed here, from the two.
//!
//! A snapshot is a set of independent loads, not a consistent cut: a ring that moves while it is taken
//! shows each word as it was when read (a consumer's cursor may be read a little after the published
//! count, so lag is clamped at zero).
//!
//! ```
//! use disruptor_mp::build_shared_single_producer;
//! use disruptor_mp::observability::RingSnapshot;
//!
//! # let name = format!("doc-snapshot-{}", std::process::id());
//! let mut producer = build_shared_single_producer::<u64>(&name, 1024).build_producer()?;
//! producer.publish(7)?;
//! let snapshot = RingSnapshot::open_shared_memory(&name)?;
//! assert_eq!(snapshot.event.name, "u64");
//! assert_eq!(snapshot.producer.published, 1);
//! assert!(snapshot.producer.alive);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::backend::shm;
use crate::error::AttachError;
use crate::protocol_steps::slot_state;
use crate::registry;
use crate::segment::{slot_flags, Endpoint, InspectedSegment, Location, Segment, MAGIC};
use serde::Serialize;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;

/// What a ring looked like when the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RingSnapshot {
    /// The segment name (with its leading slash) or the ring file's path.
    pub location: String,
    /// `"shared memory"` or `"file"`.
    pub backend: &'static str,
    /// The segment format version.
    pub format_version: u32,
    /// The random value chosen when the ring was created (a recreated ring has another).
    pub epoch: u64,
    /// When the ring was created, nanoseconds since the Unix epoch.
    pub created_unix_ns: u64,
    /// Process id of the process that created the ring.
    pub creator_pid: u32,
    /// Capacity in events.
    pub capacity: u64,
    /// Size of the consumer table.
    pub consumer_slots: u32,
    /// Bytes the segment occupies.
    pub total_len: u64,
    /// The producer closed the ring cleanly: nothing more will be published.
    pub closed: bool,
    /// The event type the ring carries.
    pub event: EventType,
    /// The producer.
    pub producer: ProducerView,
    /// Every consumer slot in use (free slots are left out), in table order.
    pub consumers: Vec<ConsumerView>,
}

/// An event type as recorded in a ring's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct EventType {
    /// The type's stable name (its ident, or `#[ring_event(name = "...")]`).
    pub name: String,
    /// Size in bytes.
    pub size: u32,
    /// Alignment in bytes.
    pub align: u32,
    /// The layout fingerprint.
    pub fingerprint: u64,
    /// The flattened fields (nested structs expanded; an array is one field), as stored: at most
    /// [`DESCRIPTOR_ENTRIES`](crate::segment::DESCRIPTOR_ENTRIES).
    pub fields: Vec<FieldView>,
    /// How many flattened fields the type has; more than `fields.len()` when the descriptor was cut.
    pub total_fields: u32,
}

/// One flattened field of an event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldView {
    /// Its path from the event, e.g. `qty`, or `quote.bid` for a field of a nested struct.
    pub path: String,
    /// Byte offset in the event.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
    /// The field's type name, e.g. `u64`.
    pub type_name: String,
}

/// The producer of a ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProducerView {
    /// Process id, as the producer's own PID namespace sees it.
    pub pid: u32,
    /// Whether the producer's process is alive (its kernel lock is held). A ring whose producer exited
    /// cleanly is `closed` and not alive; one whose producer died is neither.
    pub alive: bool,
    /// Events published: the producer's cursor.
    pub published: u64,
    /// Consumers the producer has told to leave by policy (eviction notices).
    pub evictions: u64,
    /// Consumers whose process died and that stopped gating, over the ring's life.
    pub dead_consumers_evicted: u64,
    /// Publishes that found the ring full: each one that had to wait for room, and each failed `try_`
    /// publish.
    pub ring_full: u64,
    /// Nanoseconds publishes spent waiting for room.
    pub wait_ns: u64,
    /// Times the producer slept in the kernel waiting for room.
    pub sleeps: u64,
    /// Wake-up system calls the producer made for sleeping consumers.
    pub wakeups_sent: u64,
}

/// A consumer slot in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConsumerView {
    /// Index in the consumer table.
    pub slot: usize,
    /// The consumer id (empty for an anonymous consumer).
    pub id: String,
    /// What the slot holds.
    pub state: ConsumerState,
    /// Process id of the owner (or the last owner of a reserved slot).
    pub pid: u32,
    /// Whether the owner's process is alive. A reserved slot has no owner: `false`.
    pub alive: bool,
    /// The consumer's cursor: the next sequence it will read (= events it has consumed).
    pub cursor: u64,
    /// How far it is behind the producer: `published - cursor` (zero if the cursor was read ahead).
    pub lag: u64,
    /// Whether it holds the producer back (a ring is only as fast as its slowest gating consumer).
    pub gating: bool,
    /// A durable slot reserved by name: it keeps its cursor, and keeps gating, while its consumer is away.
    pub durable: bool,
    /// When its owner joined, nanoseconds since the Unix epoch.
    pub joined_unix_ns: u64,
    /// Reads by the current owner that found nothing to read (recorded about once per liveness interval
    /// while it polls, and when a blocking read that yielded or slept ends).
    pub empty_polls: u64,
    /// Times the current owner slept in the kernel waiting for events.
    pub sleeps: u64,
    /// Nanoseconds the current owner's blocking reads spent yielding or asleep waiting for events. The
    /// spinning part of a wait is not timed: reading the clock there would slow down the very reads it
    /// waits for.
    pub wait_ns: u64,
}

/// The state of a consumer slot (see [`protocol`](crate::protocol#slot-states)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConsumerState {
    /// Claimed by a consumer that is still writing its identity.
    Claimed,
    /// Joining: gating from a provisional cursor while it fixes its start.
    Joining,
    /// Attached and reading.
    Active,
    /// Told to leave by the producer; gating until it acknowledges.
    Evicting,
    /// Acknowledged its eviction; reads nothing more.
    Evicted,
    /// A durable named slot waiting for its consumer to come back.
    Reserved,
    /// An untethered consumer (see [`untethered`](crate::untethered)): reading without gating the
    /// producer; its cursor is where it last read.
    Untethered,
    /// A state this build does not know (a newer writer, or corruption), with its raw value.
    Unknown(u32),
}

impl ConsumerState {
    fn from_raw(state: u32) -> Option<ConsumerState> {
        Some(match state {
            slot_state::FREE => return None,
            slot_state::CLAIMED => ConsumerState::Claimed,
            slot_state::JOINING => ConsumerState::Joining,
            slot_state::ACTIVE => ConsumerState::Active,
            slot_state::EVICTING => ConsumerState::Evicting,
            slot_state::EVICTED => ConsumerState::Evicted,
            slot_state::RESERVED => ConsumerState::Reserved,
            slot_state::UNTETHERED => ConsumerState::Untethered,
            other => ConsumerState::Unknown(other),
        })
    }
}

impl RingSnapshot {
    /// A snapshot of the ring named `name_or_path`: a path when it contains a `/` after its first
    /// character or starts with `.` (`/var/rings/ticks.ring`, `./ticks.ring`), else a shared-memory
    /// segment name (`ticks`, `/ticks`).
    pub fn open(name_or_path: &str) -> Result<RingSnapshot, AttachError> {
        let looks_like_path = name_or_path.starts_with('.')
            || name_or_path.get(1..).is_some_and(|rest| rest.contains('/'));
        if looks_like_path {
            RingSnapshot::open_file(name_or_path)
        } else {
            RingSnapshot::open_shared_memory(name_or_path)
        }
    }

    /// A snapshot of the shared-memory ring `name` (with or without its leading slash).
    pub fn open_shared_memory(name: &str) -> Result<RingSnapshot, AttachError> {
        RingSnapshot::take(Location::shared_memory(name)?, "shared memory")
    }

    /// A snapshot of the ring file at `path` (never followed through a symbolic link).
    pub fn open_file(path: impl AsRef<Path>) -> Result<RingSnapshot, AttachError> {
        RingSnapshot::take(Location::file(path.as_ref())?, "file")
    }

    fn take(location: Location, backend: &'static str) -> Result<RingSnapshot, AttachError> {
        let inspected = Segment::inspect(location)?;
        Ok(RingSnapshot::read(&inspected, backend))
    }

    fn read(inspected: &InspectedSegment, backend: &'static str) -> RingSnapshot {
        let segment = inspected.segment();
        let header = inspected.header();
        let region = segment.producer_region();
        let published = region.published.0.count.load(Ordering::Acquire);
        let name_len = (header.event_name_len as usize).min(header.event_name.len());
        let consumers = (0..header.consumer_slots as usize)
            .filter_map(|slot| consumer_view(segment, slot, published))
            .collect();
        RingSnapshot {
            location: segment.name().to_string(),
            backend,
            format_version: header.format_version,
            epoch: header.epoch,
            created_unix_ns: header.created_unix_ns,
            creator_pid: header.creator_pid,
            capacity: header.capacity,
            consumer_slots: header.consumer_slots,
            total_len: header.total_len,
            closed: segment.is_closed(),
            event: EventType {
                name: String::from_utf8_lossy(&header.event_name[..name_len]).into_owned(),
                size: header.event_size,
                align: header.event_align,
                fingerprint: header.event_fingerprint,
                fields: inspected
                    .fields()
                    .iter()
                    .map(|field| FieldView {
                        path: field.path.clone(),
                        offset: field.offset,
                        size: field.size,
                        type_name: field.type_name.clone(),
                    })
                    .collect(),
                total_fields: header.descriptor_total,
            },
            producer: ProducerView {
                pid: segment.stamp(Endpoint::Producer).pid,
                alive: segment.is_alive(Endpoint::Producer),
                published,
                evictions: region.published.0.evictions.load(Ordering::Relaxed),
                dead_consumers_evicted: region
                    .lifecycle
                    .0
                    .dead_consumers_evicted
                    .load(Ordering::Relaxed),
                ring_full: region.counters.0.ring_full.load(Ordering::Relaxed),
                wait_ns: region.counters.0.wait_ns.load(Ordering::Relaxed),
                sleeps: region.counters.0.sleeps.load(Ordering::Relaxed),
                wakeups_sent: region.counters.0.wakeups_sent.load(Ordering::Relaxed),
            },
            consumers,
        }
    }

    /// Consumers that hold the producer back.
    pub fn gating_consumers(&self) -> impl Iterator<Item = &ConsumerView> {
        self.consumers.iter().filter(|consumer| consumer.gating)
    }
}

fn consumer_view(segment: &Segment, slot: usize, published: u64) -> Option<ConsumerView> {
    let ownership = registry::slot_ownership(segment, slot);
    let state = ConsumerState::from_raw(ownership.state)?;
    let entry = segment.consumer_slot(slot);
    let cursor = entry.cursor.0.load(Ordering::Acquire);
    let alive =
        slot_state::has_owner(ownership.state) && segment.is_alive(Endpoint::Consumer(slot));
    Some(ConsumerView {
        slot,
        id: registry::slot_id(segment, slot),
        state,
        pid: segment.stamp(Endpoint::Consumer(slot)).pid,
        alive,
        cursor,
        lag: published.saturating_sub(cursor),
        gating: slot_state::gates(ownership.state),
        durable: entry.flags.load(Ordering::Relaxed) & slot_flags::DURABLE != 0,
        joined_unix_ns: entry.joined_unix_ns.load(Ordering::Relaxed),
        empty_polls: entry.empty_polls.load(Ordering::Relaxed),
        sleeps: entry.sleeps.load(Ordering::Relaxed),
        wait_ns: entry.wait_ns.load(Ordering::Relaxed),
    })
}

/// A ring found by [`list_shared_memory`] or [`list_files`]: its location, and its snapshot or why none
/// could be taken (a ring of ours that is corrupted, of another format version, or not readable).
#[derive(Debug)]
#[non_exhaustive]
pub struct ListedRing {
    /// The segment name or file path.
    pub location: String,
    /// The snapshot, or the error an attach would have reported.
    pub snapshot: Result<RingSnapshot, AttachError>,
}

/// Every disruptor-mp ring in shared memory on this machine (Linux: the objects in `/dev/shm` that start
/// with this library's magic bytes; others are left out). macOS offers no way to enumerate shared-memory
/// objects: there this fails with [`io::ErrorKind::Unsupported`].
pub fn list_shared_memory() -> io::Result<Vec<ListedRing>> {
    let Some(dir) =
        shm::location("x").and_then(|path| Path::new(&path).parent().map(Path::to_path_buf))
    else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this platform cannot list shared-memory objects",
        ));
    };
    list_in(&dir, |file_name| {
        let name = format!("/{file_name}");
        let snapshot = RingSnapshot::open_shared_memory(&name);
        ListedRing {
            location: name,
            snapshot,
        }
    })
}

/// Every disruptor-mp ring file directly in `dir` (regular files that start with this library's magic
/// bytes; others, and symbolic links, are left out).
pub fn list_files(dir: impl AsRef<Path>) -> io::Result<Vec<ListedRing>> {
    let dir = dir.as_ref();
    list_in(dir, |file_name| {
        let path = dir.join(file_name);
        ListedRing {
            location: path.display().to_string(),
            snapshot: RingSnapshot::open_file(&path),
        }
    })
}

fn list_in(dir: &Path, snapshot: impl Fn(&str) -> ListedRing) -> io::Result<Vec<ListedRing>> {
    let mut rings = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if file_type.is_file() && starts_with_magic(&entry.path()) {
            rings.push(snapshot(file_name));
        }
    }
    rings.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(rings)
}

/// Whether the file starts with this library's magic bytes (unreadable files are left out).
fn starts_with_magic(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut magic))
        .is_ok_and(|()| magic == MAGIC)
}
