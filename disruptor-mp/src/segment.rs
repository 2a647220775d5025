//! The segment: one named shared-memory object (or one memory-mapped file) holding a whole ring, and its
//! format. Both [backends](Backend) hold the same bytes.
//!
//! This page documents the bytes; [`protocol`](crate::protocol) documents how the producer and the
//! consumers use them, and what a process that can write the segment can and cannot do to its peers.
//!
//! # Format (version 5)
//!
//! ```text
//! offset 0       header            HEADER_LEN bytes (the fields listed in HEADER_FIELDS, the rest zero)
//! offset 4096    field descriptor  DESCRIPTOR_ENTRIES × 128-byte leaves (flattened event layout)
//! offset 12288   producer region   each on its own 128-byte line: published count (with the eviction
//!                                  notice and the sleeping consumers' flag and futex word), closed flag,
//!                                  membership counter and producer horizon, the flag and futex words of
//!                                  the blocked producer and of dependent consumers, lifecycle (producer's process stamp, dead consumers
//!                                  evicted, reclaimer mark), the producer's counters
//! offset 13056   consumer table    consumer_slots × 256 bytes: a line holding the slot's cursor, then a
//!                                  line holding its ownership word (state + generation), owner pid,
//!                                  join time, consumer id, owner start time, flags and the consumer's
//!                                  counters
//! LOCK_BASE + k  (no bytes)        liveness lock bytes, past the end of any segment: k = 0 the producer,
//!                                  k = 1 + i consumer slot i
//! page-aligned   slots             capacity × event_size bytes; sequence s lives in slot s mod capacity
//! ```
//!
//! [`HEADER_FIELDS`] lists every header field with its offset and length. Every integer is fixed-width and
//! native-endian; the header's platform word refuses a process of another endianness, pointer width or
//! cache-line constant. Offsets are frozen by const assertions in this module.
//!
//! # Initialization and readiness
//!
//! The creator makes the object with `O_EXCL` (mode 0600 unless configured), sizes it and reserves its
//! memory (so a full `/dev/shm` fails the create instead of a later write), writes the header (everything
//! but the ready word), the descriptor and a checksum over both, then stores [`READY`] into the ready word
//! with `Release`. An attacher loads the ready word with `Acquire` and reads nothing else until it sees
//! `READY`; then it copies the header once (volatile, so a hostile writer cannot change what was
//! validated) and validates every field against the mapping's length before touching anything else. A
//! corrupted or hostile segment yields an [`AttachError`], never an out-of-bounds access.
//!
//! A ring file is created the same way, but under a temporary name in the ring's directory (`O_EXCL`, never
//! through a symbolic link), and moved to its name only once sized and written, without replacing an
//! existing file: a file someone has mapped is never truncated or rewritten. After its producer closes it,
//! a ring file stays, closed and readable, until a new producer reclaims the name.
//!
//! # What a process that can write the segment can do
//!
//! Everything past attach is shared read-write, so any process allowed to open the segment (its mode
//! decides: `0600` by default) can corrupt events, cursors, the published count or the consumer table,
//! and can shrink the object so that its peers die with `SIGBUS` when they touch the lost pages. The
//! promise at attach is the one above: a corrupted, truncated or foreign object is an error, never
//! undefined behaviour. See the [threat model](crate::protocol#threat-model).

use crate::backend::file::{self, FileError, RingPath, TempFile};
use crate::backend::liveness::{self, ProcessStamp};
use crate::backend::shm;
use crate::backend::{Mapping, SegmentObject};
use crate::error::{AttachError, CreateError, EventSummary, NameError, PathRefusal, TypeMismatch};
use crate::layout::{FieldDifference, Fnv64, LeafField, TypeLayout};
use crate::protocol_steps::{self, CommitWaitLine, MembershipLine, PublishedLine, SharedWords};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::AsFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The first eight bytes of every segment.
pub const MAGIC: [u8; 8] = *b"DMP-RING";
/// The segment format this build writes and reads.
pub const FORMAT_VERSION: u32 = 5;
/// Bytes reserved for the header at the start of the segment.
pub const HEADER_LEN: usize = 4096;
/// The cache-line size the format pads shared words to (128 covers adjacent-line prefetch on x86 and the
/// 128-byte lines of Apple silicon).
pub const CACHE_LINE: usize = 128;
/// Leaves of the field descriptor stored in the segment; longer layouts store their first leaves only (the
/// fingerprint still covers the whole type).
pub const DESCRIPTOR_ENTRIES: usize = 64;
/// Largest ring capacity (events).
pub const MAX_CAPACITY: u64 = 1 << 32;
/// Largest consumer table.
pub const MAX_CONSUMER_SLOTS: u32 = 1024;
/// Consumer table size when the producer does not choose one.
pub const DEFAULT_CONSUMER_SLOTS: u32 = 64;
/// Longest consumer id, in bytes.
pub const MAX_CONSUMER_ID_LEN: usize = 48;
/// Largest event alignment supported (a page: slots start page-aligned).
pub const MAX_EVENT_ALIGN: usize = 4096;
/// Largest segment this crate creates or attaches (1 TiB).
pub const MAX_SEGMENT_LEN: u64 = 1 << 40;
/// Offset of the first liveness lock byte. Each endpoint holds a lock on one byte of its own from here on
/// (the producer `LOCK_BASE`, consumer slot `i` `LOCK_BASE + 1 + i`); they lie past the largest segment,
/// so they never cover data and never change the object. See [`protocol`](crate::protocol).
pub const LOCK_BASE: u64 = MAX_SEGMENT_LEN * 2;
/// The ready word's value once the creator has finished writing the segment.
pub const READY: u32 = 0x5245_4459;
/// The platform word of this build: endianness tag, pointer width, cache-line constant, format of the word.
pub const PLATFORM_WORD: u64 = {
    let endian: u64 = if cfg!(target_endian = "little") {
        0x4c
    } else {
        0x42
    };
    endian | ((size_of::<usize>() as u64) << 8) | ((CACHE_LINE as u64) << 16) | (1 << 56)
};

const PAGE: u64 = 4096;
const DESCRIPTOR_ENTRY_LEN: usize = 128;
const DESCRIPTOR_OFFSET: u64 = HEADER_LEN as u64;
const PRODUCER_OFFSET: u64 = DESCRIPTOR_OFFSET + (DESCRIPTOR_ENTRIES * DESCRIPTOR_ENTRY_LEN) as u64;
const CONSUMERS_OFFSET: u64 = PRODUCER_OFFSET + size_of::<ProducerRegion>() as u64;
const EVENT_NAME_CAPACITY: usize = 64;

/// The header as stored at offset 0. Plain integers; the ready word is accessed atomically in place.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawHeader {
    pub(crate) magic: [u8; 8],
    pub(crate) format_version: u32,
    pub(crate) header_len: u32,
    pub(crate) platform: u64,
    pub(crate) ready: u32,
    pub(crate) creator_pid: u32,
    pub(crate) epoch: u64,
    pub(crate) created_unix_ns: u64,
    pub(crate) capacity: u64,
    pub(crate) event_size: u32,
    pub(crate) event_align: u32,
    pub(crate) event_fingerprint: u64,
    pub(crate) consumer_slots: u32,
    pub(crate) descriptor_len: u32,
    pub(crate) descriptor_total: u32,
    pub(crate) event_name_len: u32,
    pub(crate) total_len: u64,
    pub(crate) producer_offset: u64,
    pub(crate) consumers_offset: u64,
    pub(crate) descriptor_offset: u64,
    pub(crate) slots_offset: u64,
    pub(crate) event_name: [u8; EVENT_NAME_CAPACITY],
    pub(crate) checksum: u64,
}

/// Every header field with its byte offset and length, for inspectors and corruption tests.
pub const HEADER_FIELDS: &[(&str, usize, usize)] = &[
    ("magic", offset_of!(RawHeader, magic), 8),
    ("format_version", offset_of!(RawHeader, format_version), 4),
    ("header_len", offset_of!(RawHeader, header_len), 4),
    ("platform", offset_of!(RawHeader, platform), 8),
    ("ready", offset_of!(RawHeader, ready), 4),
    ("creator_pid", offset_of!(RawHeader, creator_pid), 4),
    ("epoch", offset_of!(RawHeader, epoch), 8),
    ("created_unix_ns", offset_of!(RawHeader, created_unix_ns), 8),
    ("capacity", offset_of!(RawHeader, capacity), 8),
    ("event_size", offset_of!(RawHeader, event_size), 4),
    ("event_align", offset_of!(RawHeader, event_align), 4),
    (
        "event_fingerprint",
        offset_of!(RawHeader, event_fingerprint),
        8,
    ),
    ("consumer_slots", offset_of!(RawHeader, consumer_slots), 4),
    ("descriptor_len", offset_of!(RawHeader, descriptor_len), 4),
    (
        "descriptor_total",
        offset_of!(RawHeader, descriptor_total),
        4,
    ),
    ("event_name_len", offset_of!(RawHeader, event_name_len), 4),
    ("total_len", offset_of!(RawHeader, total_len), 8),
    ("producer_offset", offset_of!(RawHeader, producer_offset), 8),
    (
        "consumers_offset",
        offset_of!(RawHeader, consumers_offset),
        8,
    ),
    (
        "descriptor_offset",
        offset_of!(RawHeader, descriptor_offset),
        8,
    ),
    ("slots_offset", offset_of!(RawHeader, slots_offset), 8),
    (
        "event_name",
        offset_of!(RawHeader, event_name),
        EVENT_NAME_CAPACITY,
    ),
    ("checksum", offset_of!(RawHeader, checksum), 8),
];

// The format is frozen: these offsets are what other builds read.
const _: () = {
    assert!(offset_of!(RawHeader, magic) == 0);
    assert!(offset_of!(RawHeader, format_version) == 8);
    assert!(offset_of!(RawHeader, platform) == 16);
    assert!(offset_of!(RawHeader, ready) == 24);
    assert!(offset_of!(RawHeader, epoch) == 32);
    assert!(offset_of!(RawHeader, capacity) == 48);
    assert!(offset_of!(RawHeader, event_size) == 56);
    assert!(offset_of!(RawHeader, event_fingerprint) == 64);
    assert!(offset_of!(RawHeader, consumer_slots) == 72);
    assert!(offset_of!(RawHeader, total_len) == 88);
    assert!(offset_of!(RawHeader, slots_offset) == 120);
    assert!(offset_of!(RawHeader, event_name) == 128);
    assert!(offset_of!(RawHeader, checksum) == 192);
    assert!(size_of::<RawHeader>() == 200);
    assert!(size_of::<RawHeader>() <= HEADER_LEN);
    assert!(size_of::<RawLeaf>() == DESCRIPTOR_ENTRY_LEN);
    assert!(size_of::<ProducerRegion>() == 6 * CACHE_LINE);
    assert!(offset_of!(ProducerRegion, counters) == 5 * CACHE_LINE);
    assert!(size_of::<ProducerCounters>() == 32);
    assert!(offset_of!(ProducerRegion, lifecycle) == 4 * CACHE_LINE);
    assert!(offset_of!(Lifecycle, dead_consumers_evicted) == 16);
    assert!(offset_of!(Lifecycle, reclaimer_pid) == 24);
    assert!(size_of::<StampWords>() == 16);
    assert!(offset_of!(ProducerRegion, published) == 0);
    assert!(offset_of!(PublishedLine, count) == 0);
    assert!(offset_of!(PublishedLine, evictions) == 8);
    assert!(offset_of!(ProducerRegion, closed) == CACHE_LINE);
    assert!(offset_of!(ProducerRegion, membership) == 2 * CACHE_LINE);
    assert!(offset_of!(PublishedLine, consumers_sleeping) == 16);
    assert!(offset_of!(PublishedLine, consumer_wake) == 20);
    assert!(offset_of!(MembershipLine, changes) == 0);
    assert!(offset_of!(MembershipLine, horizon) == 8);
    assert!(offset_of!(ProducerRegion, commit_wait) == 3 * CACHE_LINE);
    assert!(offset_of!(CommitWaitLine, sleeping) == 0);
    assert!(offset_of!(CommitWaitLine, wake) == 4);
    assert!(offset_of!(CommitWaitLine, dependent_wake) == 8);
    assert!(size_of::<ConsumerSlot>() == 2 * CACHE_LINE);
    assert!(offset_of!(ConsumerSlot, cursor) == 0);
    assert!(offset_of!(ConsumerSlot, ownership) == CACHE_LINE);
    assert!(offset_of!(ConsumerSlot, id) == CACHE_LINE + 24);
    assert!(offset_of!(ConsumerSlot, start_time) == CACHE_LINE + 72);
    assert!(offset_of!(ConsumerSlot, flags) == CACHE_LINE + 80);
    assert!(offset_of!(ConsumerSlot, empty_polls) == CACHE_LINE + 88);
    assert!(offset_of!(ConsumerSlot, wait_ns) == CACHE_LINE + 104);
    assert!(PRODUCER_OFFSET == 12288);
    assert!(CONSUMERS_OFFSET == 13056);
    assert!(LOCK_BASE > MAX_SEGMENT_LEN);
    assert!(LOCK_BASE + 1 + MAX_CONSUMER_SLOTS as u64 <= liveness::MAX_BYTE);
};

/// One leaf of the stored field descriptor.
#[repr(C)]
#[derive(Clone, Copy)]
struct RawLeaf {
    path: [u8; 72],
    type_name: [u8; 32],
    offset: u32,
    size: u32,
    fingerprint: u64,
    path_len: u16,
    type_name_len: u16,
    reserved: u32,
}

/// A value padded to its own cache line, so writers of neighbouring words do not contend.
#[repr(C, align(128))]
pub(crate) struct Line<T>(pub(crate) T);

/// A process stamp as stored in the segment: who holds an endpoint (see `backend::liveness`).
#[repr(C)]
pub(crate) struct StampWords {
    /// Process id of the holder, as its own PID namespace sees it (display only on Linux).
    pub(crate) pid: AtomicU32,
    /// Reserved, zero.
    reserved: AtomicU32,
    /// The holder's start time (macOS; zero on Linux, where the kernel lock decides liveness).
    pub(crate) start_time: AtomicU64,
}

/// The producer's shared words.
#[repr(C)]
pub(crate) struct ProducerRegion {
    /// The published count, and the eviction notice that rides on its line.
    pub(crate) published: Line<PublishedLine>,
    /// 1 once the producer has closed the ring cleanly (stored after its last publish, with `Release`).
    pub(crate) closed: Line<AtomicU32>,
    /// The membership counter and the producer's horizon.
    pub(crate) membership: Line<MembershipLine>,
    /// Where the producer waiting for room, and pipeline stages waiting for their upstream stages, sleep.
    pub(crate) commit_wait: Line<CommitWaitLine>,
    /// Who the producer is, and what happened to the consumers: rarely written.
    pub(crate) lifecycle: Line<Lifecycle>,
    /// What the producer has done, for observers: written only by the producer, on its cold paths.
    pub(crate) counters: Line<ProducerCounters>,
}

/// The producer's counters (see [`observability`](crate::observability)). Each is written only by the
/// producer, with relaxed stores, on a line no consumer reads while publishing or consuming.
#[repr(C)]
pub(crate) struct ProducerCounters {
    /// Publishes that found the ring full: each one that waited for room, and each failed `try_` publish.
    pub(crate) ring_full: AtomicU64,
    /// Nanoseconds spent waiting for room.
    pub(crate) wait_ns: AtomicU64,
    /// Times the producer slept in the kernel waiting for room.
    pub(crate) sleeps: AtomicU64,
    /// Wake-up system calls the producer made for sleeping consumers.
    pub(crate) wakeups_sent: AtomicU64,
}

/// The producer region's lifecycle line.
#[repr(C)]
pub(crate) struct Lifecycle {
    /// The producer's process stamp, written before READY.
    pub(crate) owner: StampWords,
    /// Consumers whose process died and that stopped gating (freed by whichever process found them dead:
    /// the producer while blocked, or a consumer looking for a free slot).
    pub(crate) dead_consumers_evicted: AtomicU64,
    /// Pid of a process that found the producer dead and is reclaiming the name (0: none). Written before
    /// it takes the stale producer lock, so that a process that then finds the lock held knows it is a
    /// reclaimer's, not a live producer's.
    pub(crate) reclaimer_pid: AtomicU32,
}

/// Bits of a consumer slot's `flags`.
pub(crate) mod slot_flags {
    /// The slot was reserved by name at creation (`discover_consumer_with_prefix`): it survives its
    /// owner's death with its cursor, and keeps gating.
    pub(crate) const DURABLE: u32 = 1;
}

/// One consumer's entry in the table: its cursor alone on the first line (written by the consumer, read by
/// the producer when it refreshes its gate), identity and state on the second.
#[repr(C)]
pub(crate) struct ConsumerSlot {
    /// Next sequence this consumer will read (= events consumed). Release-stored by the consumer.
    pub(crate) cursor: Line<AtomicU64>,
    /// The slot's [`Ownership`] word: state and generation, changed only by compare-and-swap or by the
    /// slot's owner.
    pub(crate) ownership: AtomicU64,
    /// Process id of the owner.
    pub(crate) pid: AtomicU32,
    /// Length of `id` in bytes.
    pub(crate) id_len: AtomicU32,
    /// When the owner joined, nanoseconds since the Unix epoch.
    pub(crate) joined_unix_ns: AtomicU64,
    /// The consumer id, `id_len` bytes of UTF-8.
    pub(crate) id: [AtomicU8; MAX_CONSUMER_ID_LEN],
    /// The owner's process start time (see [`StampWords::start_time`]).
    pub(crate) start_time: AtomicU64,
    /// [`slot_flags`] bits.
    pub(crate) flags: AtomicU32,
    /// The consumer's counters, written only by the slot's owner (relaxed stores, on its cold paths):
    /// reads that found nothing to read, sleeps in the kernel, and nanoseconds spent in blocking reads
    /// waiting for events. Reset when a new owner claims the slot.
    pub(crate) empty_polls: AtomicU64,
    pub(crate) sleeps: AtomicU64,
    pub(crate) wait_ns: AtomicU64,
}

/// Where everything lives in a segment of a given shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: u64,
    pub(crate) event_size: u64,
    pub(crate) consumer_slots: u32,
    pub(crate) slots_offset: u64,
    pub(crate) total_len: u64,
}

fn round_up(value: u64, to: u64) -> Option<u64> {
    value.checked_add(to - 1).map(|v| v / to * to)
}

impl Geometry {
    /// The layout of a segment with these parameters, or `None` if it would exceed [`MAX_SEGMENT_LEN`].
    pub(crate) fn compute(capacity: u64, event_size: u64, consumer_slots: u32) -> Option<Geometry> {
        let table_end = CONSUMERS_OFFSET.checked_add(
            u64::from(consumer_slots).checked_mul(size_of::<ConsumerSlot>() as u64)?,
        )?;
        let slots_offset = round_up(table_end, PAGE)?;
        let ring_len = capacity.checked_mul(event_size)?;
        let total_len = round_up(slots_offset.checked_add(ring_len)?, PAGE)?;
        (total_len <= MAX_SEGMENT_LEN).then_some(Geometry {
            capacity,
            event_size,
            consumer_slots,
            slots_offset,
            total_len,
        })
    }
}

/// Where the rings of an endpoint type live: [`SharedMemory`] or [`MappedFile`]. Producers and consumers
/// are generic over it ([`Producer<E, B>`](crate::Producer), [`Consumer<E, B>`](crate::Consumer)); the code
/// is the same for both, and only finding, naming and removing the segment differ. Sealed: this crate
/// defines the backends.
pub trait Backend: sealed::Sealed + std::fmt::Debug + Send + Sync + 'static {}

/// Rings in named POSIX shared-memory objects (`shm_open`; on Linux, files under `/dev/shm`): the ring
/// disappears when its producer closes it (or with the machine).
#[derive(Debug)]
pub enum SharedMemory {}

/// Rings in regular files, memory-mapped: the ring outlives its producer as a closed, readable file, until
/// a new producer reclaims the path. On a disk-backed file system the kernel also writes the ring back to
/// disk in the background, which the hot path does not wait for (and page write-backs can add latency
/// spikes; a file on tmpfs has none).
#[derive(Debug)]
pub enum MappedFile {}

impl Backend for SharedMemory {}
impl Backend for MappedFile {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::SharedMemory {}
    impl Sealed for super::MappedFile {}
}

/// What a builder was asked to create or attach to, resolved into a [`Location`] when it builds.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A shared-memory segment name, as the user gave it.
    SharedMemory(String),
    /// A ring file's path.
    File(std::path::PathBuf),
}

impl Target {
    /// Checks the name (or opens and checks the file's directory).
    pub(crate) fn locate(&self) -> Result<Location, LocateError> {
        match self {
            Target::SharedMemory(name) => Location::shared_memory(name),
            Target::File(path) => Location::file(path),
        }
    }
}

/// Where a segment lives: a named POSIX shared-memory object, or a regular file that is memory-mapped.
/// Everything but finding, naming and removing the object is the same for both.
#[derive(Debug)]
pub(crate) enum Location {
    /// A shared-memory object, by its normalized name (`/name`).
    SharedMemory(String),
    /// A ring file, its directory opened once.
    File(RingPath),
}

/// Why an object could not be opened.
pub(crate) enum OpenError {
    Os(io::Error),
    Refused(PathRefusal),
}

impl From<FileError> for OpenError {
    fn from(error: FileError) -> OpenError {
        match error {
            FileError::Os { source, .. } => OpenError::Os(source),
            FileError::Refused(refusal) => OpenError::Refused(refusal),
        }
    }
}

/// Why a location could not be resolved, converted into the create or attach error.
pub(crate) enum LocateError {
    Name(NameError),
    Refused {
        path: String,
        reason: PathRefusal,
    },
    Os {
        path: String,
        operation: &'static str,
        source: io::Error,
    },
}

impl From<LocateError> for CreateError {
    fn from(error: LocateError) -> CreateError {
        match error {
            LocateError::Name(error) => CreateError::InvalidName(error),
            LocateError::Refused { path, reason } => CreateError::PathRefused { path, reason },
            LocateError::Os {
                path,
                operation,
                source,
            } => CreateError::Os {
                name: path,
                operation,
                source,
            },
        }
    }
}

impl From<LocateError> for AttachError {
    fn from(error: LocateError) -> AttachError {
        match error {
            LocateError::Name(error) => AttachError::InvalidName(error),
            LocateError::Refused { path, reason } => AttachError::PathRefused { path, reason },
            LocateError::Os {
                path,
                operation,
                source,
            } => AttachError::Os {
                name: path,
                operation,
                source,
            },
        }
    }
}

impl Location {
    /// A shared-memory location from a user's segment name (normalized: see [`crate::name`]).
    pub(crate) fn shared_memory(name: &str) -> Result<Location, LocateError> {
        crate::name::normalize_segment_name(name)
            .map(Location::SharedMemory)
            .map_err(LocateError::Name)
    }

    /// A file location: opens and checks the file's directory (see `backend::file`).
    pub(crate) fn file(path: &std::path::Path) -> Result<Location, LocateError> {
        let shown = path.display().to_string();
        RingPath::new(path)
            .map(Location::File)
            .map_err(|error| match error {
                FileError::Refused(reason) => LocateError::Refused {
                    path: shown,
                    reason,
                },
                FileError::Os { operation, source } => LocateError::Os {
                    path: shown,
                    operation,
                    source,
                },
            })
    }

    /// The name shown in messages: the segment name, or the file's path.
    pub(crate) fn display_name(&self) -> String {
        match self {
            Location::SharedMemory(name) => name.clone(),
            Location::File(path) => path.path().display().to_string(),
        }
    }

    /// Where the object lives in the file system, for messages (`None`: macOS shared memory).
    fn fs_location(&self) -> Option<String> {
        match self {
            Location::SharedMemory(name) => shm::location(name),
            Location::File(path) => Some(path.path().display().to_string()),
        }
    }

    fn available_bytes(&self) -> Option<u64> {
        match self {
            Location::SharedMemory(_) => shm::available_bytes(),
            Location::File(path) => path.available_bytes(),
        }
    }

    fn mode_and_owner(&self) -> Option<(u32, u32)> {
        match self {
            Location::SharedMemory(name) => shm::mode_and_owner(name),
            Location::File(path) => path.mode_and_owner(),
        }
    }

    /// Opens the object under the name, read-write.
    fn open(&self) -> Result<SegmentObject, OpenError> {
        match self {
            Location::SharedMemory(name) => shm::open(name).map_err(OpenError::Os),
            Location::File(path) => Ok(SegmentObject::from_fd(path.open()?)),
        }
    }

    /// Opens the object under the name, read-only.
    fn open_read_only(&self) -> Result<SegmentObject, OpenError> {
        match self {
            Location::SharedMemory(name) => shm::open_read_only(name).map_err(OpenError::Os),
            Location::File(path) => Ok(SegmentObject::from_fd(path.open_read_only()?)),
        }
    }

    /// Whether the name leads to `object` now.
    fn names(&self, object: &SegmentObject) -> io::Result<bool> {
        match self {
            Location::SharedMemory(name) => match shm::open(name) {
                Ok(current) => current.same_object(object),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e),
            },
            Location::File(path) => path.names(object.as_fd()),
        }
    }

    /// Removes the name; processes that have the object mapped keep their mapping.
    fn unlink(&self) -> io::Result<()> {
        match self {
            Location::SharedMemory(name) => shm::unlink(name),
            Location::File(path) => path.unlink(),
        }
    }
}

/// A mapped, validated segment. Owns the mapping; hands out references tied to its own lifetime.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The whole segment, or, for a consumer, the part before the slots (header, producer region, table).
    mapping: Mapping,
    /// A consumer's read-only mapping of the event slots (see [`Segment::attach`]); `None` when the slots
    /// are part of `mapping`.
    slots_mapping: Option<Mapping>,
    /// This endpoint's own open of the object: its liveness lock is held through it, and other endpoints'
    /// locks are queried through it. Open as long as the endpoint lives.
    object: SegmentObject,
    location: Location,
    /// The location as shown in messages.
    name: String,
    geometry: Geometry,
    epoch: u64,
    creator_pid: u32,
}

/// Parameters for [`Segment::create`].
pub(crate) struct CreateParams<'a> {
    pub(crate) location: Location,
    pub(crate) capacity: u64,
    pub(crate) consumer_slots: u32,
    pub(crate) mode: u32,
    pub(crate) layout: &'a TypeLayout,
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it), as the segment records times.
pub(crate) fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// A random 64-bit value from the standard library's OS-seeded hasher keys.
fn random_epoch() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_unix_ns());
    hasher.write_u32(std::process::id());
    hasher.finish() | 1
}

fn copy_truncated(dst: &mut [u8], text: &str) -> usize {
    let mut len = text.len().min(dst.len());
    while !text.is_char_boundary(len) {
        len -= 1;
    }
    dst[..len].copy_from_slice(&text.as_bytes()[..len]);
    len
}

fn encode_leaf(leaf: &LeafField) -> RawLeaf {
    let mut raw = RawLeaf {
        path: [0; 72],
        type_name: [0; 32],
        offset: u32::try_from(leaf.offset).unwrap_or(u32::MAX),
        size: u32::try_from(leaf.size).unwrap_or(u32::MAX),
        fingerprint: leaf.fingerprint,
        path_len: 0,
        type_name_len: 0,
        reserved: 0,
    };
    raw.path_len = copy_truncated(&mut raw.path, &leaf.path) as u16;
    raw.type_name_len = copy_truncated(&mut raw.type_name, &leaf.type_name) as u16;
    raw
}

fn decode_leaf(raw: &RawLeaf) -> LeafField {
    let path_len = usize::from(raw.path_len).min(raw.path.len());
    let type_len = usize::from(raw.type_name_len).min(raw.type_name.len());
    LeafField {
        path: String::from_utf8_lossy(&raw.path[..path_len]).into_owned(),
        offset: raw.offset as usize,
        size: raw.size as usize,
        type_name: String::from_utf8_lossy(&raw.type_name[..type_len]).into_owned(),
        fingerprint: raw.fingerprint,
    }
}

/// The descriptor exactly as the segment would store it (truncated names included), so that a local
/// layout and a stored one compare equal when the types are equal.
fn stored_descriptor(layout: &TypeLayout) -> (Vec<RawLeaf>, u32) {
    let leaves = layout.flatten();
    let total = u32::try_from(leaves.len()).unwrap_or(u32::MAX);
    let raw = leaves
        .iter()
        .take(DESCRIPTOR_ENTRIES)
        .map(encode_leaf)
        .collect();
    (raw, total)
}

fn header_checksum(header: &RawHeader, leaves: &[RawLeaf]) -> u64 {
    let mut copy = *header;
    copy.ready = 0;
    copy.checksum = 0;
    let mut hash = Fnv64::tagged("header");
    // SAFETY: `RawHeader` and `RawLeaf` are `repr(C)` plain integers and byte arrays with no padding
    // (their sizes are asserted equal to the sum of their fields above), so every byte is initialized.
    let header_bytes = unsafe {
        std::slice::from_raw_parts(
            (&copy as *const RawHeader).cast::<u8>(),
            size_of::<RawHeader>(),
        )
    };
    hash = hash.bytes(header_bytes);
    for leaf in leaves {
        // SAFETY: as above, a `RawLeaf` is fully initialized plain data.
        let leaf_bytes = unsafe {
            std::slice::from_raw_parts((leaf as *const RawLeaf).cast::<u8>(), size_of::<RawLeaf>())
        };
        hash = hash.bytes(leaf_bytes);
    }
    hash.finish()
}

/// Which segments an attach accepts beyond the safe default: owned by this process's user and writable by
/// nobody else (see [`AttachError::WritableByOthers`] and [`AttachError::OwnedByOtherUser`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Trust {
    /// Accept a segment that users other than its owner may write.
    pub(crate) writable_by_others: bool,
    /// Accept a segment owned by another user.
    pub(crate) other_owner: bool,
}

/// Outcome of one attach attempt that may be worth retrying.
enum AttemptError {
    NotFound,
    NotReady,
    ProducerGone { pid: u32 },
    Fatal(AttachError),
}

impl Segment {
    /// Creates, sizes and initializes a new segment, holding its producer lock; consumers can attach once
    /// the creator calls [`mark_ready`](Self::mark_ready). A name left by a dead producer is reclaimed.
    pub(crate) fn create(params: CreateParams<'_>) -> Result<Segment, CreateError> {
        let CreateParams {
            location,
            capacity,
            consumer_slots,
            mode,
            layout,
        } = params;
        if capacity == 0 || !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
            return Err(CreateError::InvalidCapacity {
                capacity,
                reason: "must be a power of two between 1 and 2^32",
            });
        }
        if consumer_slots == 0 || consumer_slots > MAX_CONSUMER_SLOTS {
            return Err(CreateError::InvalidConsumerSlots {
                slots: consumer_slots,
                max: MAX_CONSUMER_SLOTS,
            });
        }
        if layout.size == 0 {
            return Err(CreateError::UnsupportedEvent {
                event: layout.name,
                reason: "zero-sized events carry nothing",
            });
        }
        if layout.align > MAX_EVENT_ALIGN {
            return Err(CreateError::UnsupportedEvent {
                event: layout.name,
                reason: "alignment above 4096 bytes is not supported",
            });
        }
        // The header stores the event size in 32 bits; a larger event would make a ring nobody could
        // attach to.
        let event_size = u32::try_from(layout.size).map_err(|_| CreateError::UnsupportedEvent {
            event: layout.name,
            reason: "events larger than 4 GiB (u32::MAX bytes) are not supported",
        })?;
        let geometry = Geometry::compute(capacity, event_size.into(), consumer_slots).ok_or(
            CreateError::InvalidCapacity {
                capacity,
                reason: "the ring would exceed the 1 TiB segment limit",
            },
        )?;
        let name = location.display_name();
        let os = |operation: &'static str| {
            let name = name.clone();
            move |source: io::Error| CreateError::Os {
                name,
                operation,
                source,
            }
        };
        // Shared memory: the object is created under its final name and owned from the start (its
        // producer lock). A file: the ring is built in a temporary file and installed under its name only
        // once complete, so that a file someone may have mapped is never truncated or rewritten.
        let (object, temp) = match &location {
            Location::SharedMemory(shm_name) => (
                take_name(&location, || claim_shm_object(&location, shm_name, mode))?,
                None,
            ),
            Location::File(path) => {
                // Refuse at once (before building anything) if a live producer owns the file, and reclaim
                // a dead one's.
                match reclaim_stale(&location).map_err(|e| reclaim_error(&location, e))? {
                    Reclaim::Live { pid } => return Err(name_taken(&location, Some(pid))),
                    Reclaim::Foreign => return Err(name_taken(&location, None)),
                    Reclaim::Removed | Reclaim::Busy | Reclaim::Starting => {}
                }
                let temp = path
                    .create_temp(mode)
                    .map_err(|e| file_error(&location, e))?;
                let object = temp
                    .fd()
                    .try_clone_to_owned()
                    .map(SegmentObject::from_fd)
                    .map_err(os("dup"))?;
                // A fresh file nobody else has opened: the lock is ours.
                liveness::hold(object.as_fd(), lock_byte(Endpoint::Producer))
                    .map_err(os("fcntl(F_OFD_SETLK)"))?;
                (object, Some(temp))
            }
        };
        // From here on the object is ours; any failure removes what we created.
        let give_up = |error: CreateError| {
            match (&location, &temp) {
                (Location::File(path), Some(temp)) => path.discard(temp),
                _ => {
                    let _ = location.unlink();
                }
            }
            error
        };
        let sized = match &location {
            Location::SharedMemory(_) => shm::set_len(&object, geometry.total_len),
            Location::File(_) => file::set_len(object.as_fd(), geometry.total_len),
        };
        sized.map_err(|e| {
            give_up(if e.raw_os_error() == Some(libc::ENOSPC) {
                CreateError::InsufficientSpace {
                    name: name.clone(),
                    needed: geometry.total_len,
                    available: location.available_bytes(),
                    location: location.fs_location(),
                }
            } else {
                os("ftruncate/posix_fallocate")(e)
            })
        })?;
        let mapping = object
            .map(geometry.total_len, true)
            .map_err(|e| give_up(os("mmap")(e)))?;

        let (leaves, descriptor_total) = stored_descriptor(layout);
        let mut header = RawHeader {
            magic: MAGIC,
            format_version: FORMAT_VERSION,
            header_len: HEADER_LEN as u32,
            platform: PLATFORM_WORD,
            ready: 0,
            creator_pid: std::process::id(),
            epoch: random_epoch(),
            created_unix_ns: now_unix_ns(),
            capacity,
            event_size,
            event_align: layout.align as u32, // at most MAX_EVENT_ALIGN, checked above
            event_fingerprint: layout.fingerprint,
            consumer_slots,
            descriptor_len: leaves.len() as u32,
            descriptor_total,
            event_name_len: 0,
            total_len: geometry.total_len,
            producer_offset: PRODUCER_OFFSET,
            consumers_offset: CONSUMERS_OFFSET,
            descriptor_offset: DESCRIPTOR_OFFSET,
            slots_offset: geometry.slots_offset,
            event_name: [0; EVENT_NAME_CAPACITY],
            checksum: 0,
        };
        header.event_name_len = copy_truncated(&mut header.event_name, layout.name) as u32;
        header.checksum = header_checksum(&header, &leaves);

        let base = mapping.base().as_ptr();
        let header_bytes = (&header as *const RawHeader).cast::<u8>();
        let ready_at = offset_of!(RawHeader, ready);
        let after_ready = ready_at + size_of::<u32>();
        // SAFETY: the mapping is `total_len` bytes, which covers the header and the descriptor region
        // (geometry puts the slots after both); the base is page-aligned, so each leaf is aligned; `header`
        // is fully initialized plain data (no padding, asserted above). The ready word itself is skipped: it
        // is only ever accessed atomically. No other process reads anything but the ready word before READY
        // is stored below.
        unsafe {
            std::ptr::copy_nonoverlapping(header_bytes, base, ready_at);
            std::ptr::copy_nonoverlapping(
                header_bytes.add(after_ready),
                base.add(after_ready),
                size_of::<RawHeader>() - after_ready,
            );
            let descriptor = base.add(DESCRIPTOR_OFFSET as usize).cast::<RawLeaf>();
            for (i, leaf) in leaves.iter().enumerate() {
                descriptor.add(i).write(*leaf);
            }
        }
        let segment = Segment {
            mapping,
            slots_mapping: None,
            object,
            location,
            name,
            geometry,
            epoch: header.epoch,
            creator_pid: header.creator_pid,
        };
        segment.record_stamp(Endpoint::Producer, ProcessStamp::current());
        if let (Location::File(path), Some(temp)) = (&segment.location, &temp) {
            take_name(&segment.location, || {
                install_file(&segment.location, path, temp)
            })
            .inspect_err(|_| path.discard(temp))?;
        }
        Ok(segment)
    }

    /// Lets consumers attach: stores READY. The creator calls it once, after writing everything a consumer
    /// may read at attach (the header, and any reserved consumer slots).
    pub(crate) fn mark_ready(&self) {
        // Release: everything written before happens-before any attacher's Acquire load of READY.
        self.ready_word().store(READY, Ordering::Release);
    }

    /// Attaches to an existing segment carrying `layout`, waiting up to `timeout` for it to exist and be
    /// ready.
    pub(crate) fn attach(
        location: Location,
        layout: &TypeLayout,
        trust: Trust,
        timeout: Duration,
    ) -> Result<Segment, AttachError> {
        let start = Instant::now();
        let mut backoff = Duration::from_micros(100);
        let mut location = location;
        loop {
            let outcome = Self::attach_once(location, layout, trust);
            let waited = start.elapsed();
            let (retry, error) = match outcome {
                Ok(segment) => return Ok(segment),
                Err((_, AttemptError::Fatal(error))) => return Err(error),
                Err(failed) => failed,
            };
            if waited < timeout {
                std::thread::sleep(backoff.min(timeout - waited));
                backoff = (backoff * 2).min(Duration::from_millis(10));
                location = retry;
                continue;
            }
            let name = retry.display_name();
            return Err(match error {
                AttemptError::NotFound => AttachError::NotFound { name, waited },
                AttemptError::NotReady => AttachError::NotReady { name, waited },
                AttemptError::ProducerGone { pid } => {
                    AttachError::ProducerGone { name, pid, waited }
                }
                AttemptError::Fatal(error) => error,
            });
        }
    }

    /// One attempt of [`attach`](Self::attach); a failure hands the location back for the next one.
    fn attach_once(
        location: Location,
        layout: &TypeLayout,
        trust: Trust,
    ) -> Result<Segment, (Location, AttemptError)> {
        let opened = match Self::open_validated(&location, layout, trust) {
            Ok(opened) => opened,
            Err(error) => return Err((location, error)),
        };
        let (object, (mapping, slots_mapping), geometry, header) = opened;
        let segment = Segment {
            mapping,
            slots_mapping,
            object,
            name: location.display_name(),
            location,
            geometry,
            epoch: header.epoch,
            creator_pid: header.creator_pid,
        };
        // A ring whose producer died without closing it: nothing will ever be published to a consumer
        // that joins now. Wait for a new producer to reclaim the name (or report it gone at the timeout).
        if !segment.is_closed() && !segment.is_alive(Endpoint::Producer) {
            let pid = segment.stamp(Endpoint::Producer).pid;
            return Err((segment.location, AttemptError::ProducerGone { pid }));
        }
        Ok(segment)
    }

    /// Opens the object, validates its header against its length, checks its event type against
    /// `layout`, and maps it whole.
    fn open_validated(
        location: &Location,
        layout: &TypeLayout,
        trust: Trust,
    ) -> Result<(SegmentObject, ConsumerMappings, Geometry, RawHeader), AttemptError> {
        let (object, geometry, header, leaves) = Self::open_checked(location, location.open())?;
        let name = location.display_name();
        check_trust(&name, &object, trust).map_err(AttemptError::Fatal)?;
        check_event_type(&name, &header, &leaves, layout).map_err(AttemptError::Fatal)?;
        let mappings =
            map_for_consumer(&object, &geometry).map_err(|e| os_attempt(&name, "mmap", e))?;
        Ok((object, mappings, geometry, header))
    }

    /// Checks the object `opened` under `location` as an attach does (size, ready word, every header field
    /// against the length, the checksum over header and descriptor); returns it with its geometry, header
    /// and descriptor. Nothing is mapped beyond a read-only probe of the fixed part.
    fn open_checked(
        location: &Location,
        opened: Result<SegmentObject, OpenError>,
    ) -> Result<(SegmentObject, Geometry, RawHeader, Vec<RawLeaf>), AttemptError> {
        let name = location.display_name();
        let name = name.as_str();
        let os = |operation: &'static str, source: io::Error| {
            AttemptError::Fatal(AttachError::Os {
                name: name.to_string(),
                operation,
                source,
            })
        };
        let object = match opened {
            Ok(object) => object,
            Err(OpenError::Os(e)) if e.kind() == io::ErrorKind::NotFound => {
                return Err(AttemptError::NotFound)
            }
            Err(OpenError::Os(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                let (mode, owner_uid) = location.mode_and_owner().unzip();
                return Err(AttemptError::Fatal(AttachError::PermissionDenied {
                    name: name.to_string(),
                    mode,
                    owner_uid,
                    // SAFETY: geteuid has no preconditions and cannot fail.
                    process_uid: unsafe { libc::geteuid() },
                }));
            }
            Err(OpenError::Os(e)) => return Err(os("open", e)),
            Err(OpenError::Refused(reason)) => {
                return Err(AttemptError::Fatal(AttachError::PathRefused {
                    path: name.to_string(),
                    reason,
                }))
            }
        };
        let len = object.len().map_err(|e| os("fstat", e))?;
        if len == 0 && matches!(location, Location::SharedMemory(_)) {
            // Created but not yet sized: the creator is between shm_open and ftruncate. (A ring file is
            // complete before it gets its name: an empty one is not a ring.)
            return Err(AttemptError::NotReady);
        }
        let fixed_len = CONSUMERS_OFFSET;
        if len < fixed_len {
            return Err(AttemptError::Fatal(AttachError::Truncated {
                name: name.to_string(),
                len,
                required: fixed_len,
            }));
        }
        // Map the fixed part only (read-only, not populated) until the header says how large the segment
        // really is.
        let probe = object.map_read_only(fixed_len).map_err(|e| os("mmap", e))?;
        let header = match read_ready_header(&probe) {
            HeaderRead::Ready(header) => header,
            HeaderRead::Initializing => return Err(AttemptError::NotReady),
            HeaderRead::BadMagic(found) => {
                return Err(AttemptError::Fatal(AttachError::BadMagic {
                    name: name.to_string(),
                    found,
                }))
            }
            HeaderRead::BadReadyWord(value) => {
                return Err(AttemptError::Fatal(corrupt(
                    name,
                    "ready",
                    u64::from(value),
                    "neither initializing nor ready",
                )))
            }
        };
        let geometry = validate_header(name, &header, len).map_err(AttemptError::Fatal)?;
        let leaves = read_leaves(&probe, header.descriptor_len as usize);
        if header_checksum(&header, &leaves) != header.checksum {
            return Err(AttemptError::Fatal(corrupt(
                name,
                "checksum",
                header.checksum,
                "does not match the header and descriptor",
            )));
        }
        drop(probe);
        Ok((object, geometry, header, leaves))
    }

    /// Opens the segment at `location` read-only and validates it as an attach does, without joining and
    /// without checking its event type: for looking at a ring from outside (see `observability`). The
    /// whole segment is mapped read-only, so nothing done through the result can change the ring.
    pub(crate) fn inspect(location: Location) -> Result<InspectedSegment, AttachError> {
        let name = location.display_name();
        let opened = Self::open_checked(&location, location.open_read_only());
        let (object, geometry, header, leaves) = opened.map_err(|error| match error {
            AttemptError::NotFound => AttachError::NotFound {
                name: name.clone(),
                waited: Duration::ZERO,
            },
            AttemptError::NotReady => AttachError::NotReady {
                name: name.clone(),
                waited: Duration::ZERO,
            },
            AttemptError::ProducerGone { pid } => AttachError::ProducerGone {
                name: name.clone(),
                pid,
                waited: Duration::ZERO,
            },
            AttemptError::Fatal(error) => error,
        })?;
        let mapping =
            object
                .map_read_only(geometry.total_len)
                .map_err(|source| AttachError::Os {
                    name: name.clone(),
                    operation: "mmap",
                    source,
                })?;
        Ok(InspectedSegment {
            segment: Segment {
                mapping,
                slots_mapping: None,
                object,
                location,
                name,
                geometry,
                epoch: header.epoch,
                creator_pid: header.creator_pid,
            },
            header,
            fields: leaves.iter().map(decode_leaf).collect(),
        })
    }

    /// The segment name (with its leading slash), or the ring file's path.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The segment's shape.
    #[inline]
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The random value chosen at creation; a recreated segment of the same name has another.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Process id of the creator.
    pub(crate) fn creator_pid(&self) -> u32 {
        self.creator_pid
    }

    /// Takes `endpoint`'s liveness lock through this process's own open of the segment: `Ok(false)` if a
    /// live holder has it.
    pub(crate) fn hold_lock(&self, endpoint: Endpoint) -> io::Result<bool> {
        liveness::hold(self.object.as_fd(), lock_byte(endpoint))
    }

    /// Drops `endpoint`'s liveness lock, if this process's open of the segment holds it.
    pub(crate) fn release_lock(&self, endpoint: Endpoint) {
        // Failing to unlock leaves the lock to the kernel, which drops it when the descriptor closes.
        let _ = liveness::release(self.object.as_fd(), lock_byte(endpoint));
    }

    /// Whether the process holding `endpoint` is alive (its lock is held). Asked through this process's
    /// own open of the segment, which must not be the one holding `endpoint`. A system error answers
    /// "alive": a live endpoint is never declared dead.
    pub(crate) fn is_alive(&self, endpoint: Endpoint) -> bool {
        liveness::is_held(
            self.object.as_fd(),
            lock_byte(endpoint),
            self.stamp(endpoint),
        )
        .unwrap_or(true)
    }

    fn stamp_words(&self, endpoint: Endpoint) -> (&AtomicU32, &AtomicU64) {
        match endpoint {
            Endpoint::Producer => {
                let owner = &self.producer_region().lifecycle.0.owner;
                (&owner.pid, &owner.start_time)
            }
            Endpoint::Consumer(index) => {
                let slot = self.consumer_slot(index);
                (&slot.pid, &slot.start_time)
            }
        }
    }

    /// Records who holds `endpoint` (display, and liveness on macOS).
    pub(crate) fn record_stamp(&self, endpoint: Endpoint, stamp: ProcessStamp) {
        let (pid, start_time) = self.stamp_words(endpoint);
        start_time.store(stamp.start_time, Ordering::Relaxed);
        pid.store(stamp.pid, Ordering::Release);
    }

    /// Who holds (or last held) `endpoint`, as recorded.
    pub(crate) fn stamp(&self, endpoint: Endpoint) -> ProcessStamp {
        let (pid, start_time) = self.stamp_words(endpoint);
        load_stamp(pid, start_time)
    }

    fn ready_word(&self) -> &AtomicU32 {
        // SAFETY: the mapping covers the header; the ready word is 4-byte aligned (asserted offset 24 from a
        // page-aligned base); other processes access it only atomically.
        unsafe { ready_word_at(self.mapping.base()) }
    }

    /// Whether the producer closed the ring cleanly (Acquire: its last publish is visible after `true`).
    pub(crate) fn is_closed(&self) -> bool {
        protocol_steps::is_closed(self)
    }

    /// The producer's shared words.
    #[inline]
    pub(crate) fn producer_region(&self) -> &ProducerRegion {
        // SAFETY: validated geometry places the producer region inside the mapping at a 128-aligned offset;
        // all-zero or any other bytes are valid atomics; it lives as long as `self.mapping`.
        unsafe {
            &*self
                .mapping
                .base()
                .as_ptr()
                .add(PRODUCER_OFFSET as usize)
                .cast::<ProducerRegion>()
        }
    }

    /// The consumer table entry `index` (panics if out of range: callers iterate `0..consumer_slots`).
    #[inline]
    pub(crate) fn consumer_slot(&self, index: usize) -> &ConsumerSlot {
        assert!(index < self.geometry.consumer_slots as usize);
        // SAFETY: index < consumer_slots, and validated geometry places the whole table inside the mapping
        // at a 128-aligned offset; any bytes are valid atomics; it lives as long as `self.mapping`.
        unsafe {
            &*self
                .mapping
                .base()
                .as_ptr()
                .add(CONSUMERS_OFFSET as usize + index * size_of::<ConsumerSlot>())
                .cast::<ConsumerSlot>()
        }
    }

    /// The first byte of the slot array (`capacity × event_size` bytes, page-aligned): in a consumer's
    /// read-only slot mapping, or inside the whole-segment mapping.
    pub(crate) fn slots_base(&self) -> NonNull<u8> {
        match &self.slots_mapping {
            Some(slots) => slots.base(),
            None => {
                debug_assert!(self.mapping.len() as u64 >= self.geometry.total_len);
                // SAFETY: slots_offset + capacity × event_size <= total_len <= the mapping's length
                // (validated).
                unsafe { self.mapping.base().add(self.geometry.slots_offset as usize) }
            }
        }
    }

    /// At the producer's clean close: removes a shared-memory segment's name so no new process can attach
    /// (mapped processes are unaffected), if the name still refers to this segment. A name that someone
    /// removed and a newer segment then took (another epoch) is left alone. A ring file is never removed:
    /// it stays, closed, for consumers to read from and for a later producer to reclaim. Returns whether
    /// the name was removed.
    ///
    /// The check and the removal are two system calls apart: a removal and re-creation of the name
    /// within that window would still lose the newer segment's name.
    pub(crate) fn unlink_if_current(&self) -> io::Result<bool> {
        if let Location::File(_) = self.location {
            return Ok(false);
        }
        let object = match self.location.open() {
            Ok(object) => object,
            Err(OpenError::Os(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(OpenError::Os(e)) => return Err(e),
            Err(OpenError::Refused(_)) => return Ok(false),
        };
        // Ours is larger than the fixed part; anything smaller is some other object.
        if object.len()? < CONSUMERS_OFFSET {
            return Ok(false);
        }
        let probe = object.map(CONSUMERS_OFFSET, false)?;
        match read_ready_header(&probe) {
            HeaderRead::Ready(header) if header.epoch == self.epoch => {
                self.location.unlink()?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

/// A consumer's mappings: the segment (or its part before the slots), and the slots read-only if apart.
type ConsumerMappings = (Mapping, Option<Mapping>);

/// A consumer's mappings of a validated segment: the part before the slots read-write (it writes its
/// cursor, its table entry and the wake-up words), and the event slots **read-only**, so that a consumer,
/// buggy or hostile, cannot change what the other consumers read. Where the slots do not start on a page
/// boundary of this system (a 16 KiB-page machine: the format aligns them to 4 KiB), the whole segment is
/// mapped read-write instead.
fn map_for_consumer(object: &SegmentObject, geometry: &Geometry) -> io::Result<ConsumerMappings> {
    let slots_offset = geometry.slots_offset;
    if slots_offset % Mapping::page_size() as u64 != 0 {
        return Ok((object.map(geometry.total_len, true)?, None));
    }
    let control = object.map(slots_offset, true)?;
    let slots = object.map_read_only_at(slots_offset, geometry.total_len - slots_offset, true)?;
    Ok((control, Some(slots)))
}

/// Refuses a segment that another user owns, or that users other than its owner may write, unless `trust`
/// accepts it: any such user could corrupt what the endpoint reads (see the threat model).
fn check_trust(name: &str, object: &SegmentObject, trust: Trust) -> Result<(), AttachError> {
    let (mode, owner_uid) = object.mode_and_owner().map_err(|source| AttachError::Os {
        name: name.to_string(),
        operation: "fstat",
        source,
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let process_uid = unsafe { libc::geteuid() };
    if owner_uid != process_uid && !trust.other_owner {
        return Err(AttachError::OwnedByOtherUser {
            name: name.to_string(),
            owner_uid,
            process_uid,
        });
    }
    if mode & 0o022 != 0 && !trust.writable_by_others {
        return Err(AttachError::WritableByOthers {
            name: name.to_string(),
            mode,
        });
    }
    Ok(())
}

fn os_attempt(name: &str, operation: &'static str, source: io::Error) -> AttemptError {
    AttemptError::Fatal(AttachError::Os {
        name: name.to_string(),
        operation,
        source,
    })
}

/// The protocol's words in the mapping, bounded by the geometry validated at attach.
impl SharedWords for Segment {
    #[inline(always)]
    fn capacity(&self) -> u64 {
        self.geometry.capacity
    }

    fn slot_count(&self) -> usize {
        self.geometry.consumer_slots as usize
    }

    #[inline(always)]
    fn published_line(&self) -> &PublishedLine {
        &self.producer_region().published.0
    }

    #[inline(always)]
    fn closed(&self) -> &AtomicU32 {
        &self.producer_region().closed.0
    }

    fn membership(&self) -> &MembershipLine {
        &self.producer_region().membership.0
    }

    #[inline(always)]
    fn commit_wait(&self) -> &CommitWaitLine {
        &self.producer_region().commit_wait.0
    }

    #[inline(always)]
    fn cursor(&self, index: usize) -> &AtomicU64 {
        &self.consumer_slot(index).cursor.0
    }

    #[inline(always)]
    fn ownership_word(&self, index: usize) -> &AtomicU64 {
        &self.consumer_slot(index).ownership
    }

    fn count_consumer_wakeup(&self) {
        // Only the producer wakes consumers, so only the producer writes this counter.
        add(&self.producer_region().counters.0.wakeups_sent, 1);
    }
}

/// A segment mapped read-only by [`Segment::inspect`], with its validated header and field descriptor. It
/// hands out only reads: the mapping has no write permission, so a store through it would fault.
pub(crate) struct InspectedSegment {
    segment: Segment,
    header: RawHeader,
    fields: Vec<LeafField>,
}

impl std::fmt::Debug for InspectedSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectedSegment")
            .field("segment", &self.segment)
            .field("fields", &self.fields.len())
            .finish_non_exhaustive()
    }
}

impl InspectedSegment {
    /// The validated header, as copied at open.
    pub(crate) fn header(&self) -> &RawHeader {
        &self.header
    }

    /// The event type's flattened fields, as stored (at most [`DESCRIPTOR_ENTRIES`]).
    pub(crate) fn fields(&self) -> &[LeafField] {
        &self.fields
    }

    /// The segment, for reads only (see the type's docs).
    pub(crate) fn segment(&self) -> &Segment {
        &self.segment
    }
}

/// How long [`take_name`] keeps trying to take a name that another process is creating or reclaiming at
/// the same moment, before it reports the name as taken.
const CLAIM_PATIENCE: Duration = Duration::from_millis(500);

/// Takes the name of `location` for a new segment with `attempt`, which returns `Ok(None)` while the name
/// is taken; a name left by a dead producer is reclaimed (see [`reclaim_stale`]) and the attempt repeated.
///
/// The producer lock of an object is what owns its name. A shared-memory creator takes it right after
/// `O_EXCL` and then checks that the name still leads to its object; a file creator holds it on its
/// temporary file before installing it under the name. A reclaimer takes the stale object's lock and checks
/// that the name still leads to that object before removing the name. Once a process holds an object's
/// lock and has seen the name lead to it, nobody else can remove the name (that needs the lock), so exactly
/// one process goes on with the name. If a reclaimer got to a fresh shared-memory object first (it looked
/// stale: unsized and unlocked), either the creator's `hold` fails or the name no longer leads to its
/// object, and it looks again and finds the reclaimer's new segment, alive. A process that loses such a
/// race is told the winner's pid, once the winner has recorded it.
fn take_name<T>(
    location: &Location,
    mut attempt: impl FnMut() -> Result<Option<T>, CreateError>,
) -> Result<T, CreateError> {
    let give_up_at = Instant::now() + CLAIM_PATIENCE;
    loop {
        if let Some(taken) = attempt()? {
            return Ok(taken);
        }
        match reclaim_stale(location).map_err(|e| reclaim_error(location, e))? {
            Reclaim::Removed | Reclaim::Busy => {}
            Reclaim::Live { pid } => return Err(name_taken(location, Some(pid))),
            Reclaim::Foreign => return Err(name_taken(location, None)),
            // Its creator is alive and has not recorded its pid yet: wait a moment for it.
            Reclaim::Starting if Instant::now() < give_up_at => {}
            Reclaim::Starting => return Err(name_taken(location, None)),
        }
        if Instant::now() >= give_up_at {
            return Err(name_taken(location, None));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One attempt of [`take_name`] for shared memory: creates the object exclusively and takes its producer
/// lock; `None` if the name is taken (or a reclaimer took our fresh object first).
fn claim_shm_object(
    location: &Location,
    name: &str,
    mode: u32,
) -> Result<Option<SegmentObject>, CreateError> {
    let os = |operation: &'static str| {
        move |source: io::Error| CreateError::Os {
            name: name.to_string(),
            operation,
            source,
        }
    };
    match shm::create(name, mode) {
        Ok(object) => {
            let ours = liveness::hold(object.as_fd(), lock_byte(Endpoint::Producer))
                .map_err(os("fcntl(F_OFD_SETLK)"))?
                && location.names(&object).map_err(os("shm_open"))?;
            Ok(ours.then_some(object))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(os("shm_open")(e)),
    }
}

/// One attempt of [`take_name`] for a file: installs the finished temporary file under the ring's name
/// without replacing anything; `None` if the name is taken.
fn install_file(
    location: &Location,
    path: &RingPath,
    temp: &TempFile,
) -> Result<Option<()>, CreateError> {
    match path.install(temp) {
        Ok(()) => Ok(Some(())),
        Err(FileError::Os { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
            Ok(None)
        }
        Err(e) => Err(file_error(location, e)),
    }
}

fn file_error(location: &Location, error: FileError) -> CreateError {
    match error {
        FileError::Os { operation, source } => CreateError::Os {
            name: location.display_name(),
            operation,
            source,
        },
        FileError::Refused(reason) => CreateError::PathRefused {
            path: location.display_name(),
            reason,
        },
    }
}

fn reclaim_error(location: &Location, error: OpenError) -> CreateError {
    match error {
        OpenError::Os(source) => CreateError::Os {
            name: location.display_name(),
            operation: "reclaiming a stale segment",
            source,
        },
        OpenError::Refused(reason) => CreateError::PathRefused {
            path: location.display_name(),
            reason,
        },
    }
}

fn name_taken(location: &Location, producer_pid: Option<u32>) -> CreateError {
    CreateError::AlreadyExists {
        name: location.display_name(),
        location: location.fs_location(),
        producer_pid,
    }
}

/// What [`reclaim_stale`] found under a name.
enum Reclaim {
    /// The object belonged to a dead producer (or was never finished); its name is removed (or was
    /// already gone).
    Removed,
    /// A live producer owns it, with this pid (in its PID namespace).
    Live { pid: u32 },
    /// A live process holds its producer lock but has not recorded its pid yet: a creator initializing it.
    Starting,
    /// Another process is reclaiming it right now, or the name moved to another object meanwhile.
    Busy,
    /// It is not a disruptor-mp segment: someone else's object, left alone.
    Foreign,
}

/// Looks at the object under the name and removes the name if its producer is dead: its producer lock is
/// free and it is a disruptor-mp segment (our magic), or an object a creator never finished (empty, or no
/// header yet). Someone else's object is left alone.
///
/// Consumers still mapped to a removed segment keep their mapping and learn, from the same free lock, that
/// its producer is gone.
fn reclaim_stale(location: &Location) -> Result<Reclaim, OpenError> {
    let object = match location.open() {
        Ok(object) => object,
        Err(OpenError::Os(e)) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Reclaim::Removed)
        }
        Err(e) => return Err(e),
    };
    // A creator that died before writing the header leaves a shared-memory object unsized or zeroed; a
    // ring file gets its name only once complete, so one without our magic is someone else's.
    let unfinished_is_ours = matches!(location, Location::SharedMemory(_));
    let len = object.len().map_err(OpenError::Os)?;
    let probe = if len >= CONSUMERS_OFFSET {
        Some(object.map(CONSUMERS_OFFSET, false).map_err(OpenError::Os)?)
    } else if len == 0 && unfinished_is_ours {
        None
    } else {
        return Ok(Reclaim::Foreign); // too small to be ours
    };
    let lifecycle = probe.as_ref().map(|probe| {
        // SAFETY: the probe maps CONSUMERS_OFFSET bytes, which hold the header and the producer region.
        unsafe { probe_lifecycle(probe) }
    });
    let stamp = lifecycle.map_or(ProcessStamp::default(), |lifecycle| {
        load_stamp(&lifecycle.owner.pid, &lifecycle.owner.start_time)
    });
    let magic = probe.as_ref().map_or([0; 8], |probe| {
        // SAFETY: the magic is the first 8 bytes of the probe, read by value, volatile because another
        // process may be writing them.
        unsafe { probe.base().as_ptr().cast::<[u8; 8]>().read_volatile() }
    });
    if magic != MAGIC && !(magic == [0; 8] && unfinished_is_ours) {
        return Ok(Reclaim::Foreign);
    }
    let byte = lock_byte(Endpoint::Producer);
    if liveness::is_held(object.as_fd(), byte, stamp).map_err(OpenError::Os)? {
        let being_reclaimed =
            lifecycle.is_some_and(|lifecycle| lifecycle.reclaimer_pid.load(Ordering::Acquire) != 0);
        return Ok(match stamp.pid {
            _ if being_reclaimed => Reclaim::Busy,
            0 => Reclaim::Starting,
            pid => Reclaim::Live { pid },
        });
    }
    // Mark the object as being reclaimed before taking its lock: whoever then finds the lock held knows
    // it is ours, not a live producer's. (A live producer's object is never marked: its creator takes the
    // lock before sizing it, and an object is marked only once sized and unlocked, so its creator died.)
    if let Some(lifecycle) = lifecycle {
        lifecycle
            .reclaimer_pid
            .store(std::process::id(), Ordering::Release);
    }
    // Take the stale object's lock, so that a second reclaimer cannot also go on with it; keep it until
    // the name is gone.
    if !liveness::hold(object.as_fd(), byte).map_err(OpenError::Os)? {
        return Ok(Reclaim::Busy);
    }
    // The name may have moved on since we opened it: another reclaimer that held this lock before us
    // removed it and created a new segment under it. Remove the name only if it still leads to the object
    // whose lock we hold; nobody else can remove it while we hold that lock.
    if !location.names(&object).map_err(OpenError::Os)? {
        return Ok(Reclaim::Busy);
    }
    match location.unlink() {
        Ok(()) => Ok(Reclaim::Removed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Reclaim::Removed),
        Err(e) => Err(OpenError::Os(e)),
    }
}

/// Adds `amount` to a counter that only this process writes (a relaxed load and store: no read-modify-write
/// is needed with a single writer, and observers only ever load it).
pub(crate) fn add(counter: &AtomicU64, amount: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(amount),
        Ordering::Relaxed,
    );
}

/// A process stamp from its two words (Acquire on the pid, which [`Segment::record_stamp`] stores last).
fn load_stamp(pid: &AtomicU32, start_time: &AtomicU64) -> ProcessStamp {
    ProcessStamp {
        pid: pid.load(Ordering::Acquire),
        start_time: start_time.load(Ordering::Relaxed),
    }
}

/// The producer region's lifecycle line of a segment-sized object.
///
/// # Safety
/// `probe` must map at least `CONSUMERS_OFFSET` bytes from a page-aligned base.
unsafe fn probe_lifecycle(probe: &Mapping) -> &Lifecycle {
    // SAFETY: per the contract, the producer region lies inside the mapping, 128-aligned; its words are
    // only ever accessed atomically, and any bits are valid atomics.
    unsafe {
        &(*probe
            .base()
            .as_ptr()
            .add(PRODUCER_OFFSET as usize)
            .cast::<ProducerRegion>())
        .lifecycle
        .0
    }
}

/// An endpoint of a ring, as far as liveness is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// The producer.
    Producer,
    /// The consumer in table slot `index`.
    Consumer(usize),
}

/// The lock byte of `endpoint` (see [`LOCK_BASE`]).
fn lock_byte(endpoint: Endpoint) -> u64 {
    match endpoint {
        Endpoint::Producer => LOCK_BASE,
        Endpoint::Consumer(index) => LOCK_BASE + 1 + index as u64,
    }
}

/// # Safety
/// `base` must point to a live mapping of at least `HEADER_LEN` bytes, page-aligned.
unsafe fn ready_word_at<'a>(base: NonNull<u8>) -> &'a AtomicU32 {
    // SAFETY: per the contract the word is inside the mapping and 4-byte aligned; it is only accessed
    // atomically by every process.
    unsafe { AtomicU32::from_ptr(base.as_ptr().add(offset_of!(RawHeader, ready)).cast()) }
}

enum HeaderRead {
    Ready(RawHeader),
    Initializing,
    BadMagic([u8; 8]),
    BadReadyWord(u32),
}

fn read_ready_header(probe: &Mapping) -> HeaderRead {
    let base = probe.base();
    // SAFETY: `probe` maps at least CONSUMERS_OFFSET > HEADER_LEN bytes from a page-aligned base.
    let ready = unsafe { ready_word_at(base) }.load(Ordering::Acquire);
    if ready == 0 {
        // Nothing but the ready word may be read while the creator is still writing.
        return HeaderRead::Initializing;
    }
    // SAFETY: as above. READY was acquired (or the ready word holds a value no creator writes, so no
    // creator is writing); the header is plain data, copied by value with a volatile read so the
    // validated snapshot cannot change under us even if another process writes the segment.
    let header = unsafe { base.as_ptr().cast::<RawHeader>().read_volatile() };
    if header.magic != MAGIC {
        HeaderRead::BadMagic(header.magic)
    } else if ready != READY {
        HeaderRead::BadReadyWord(ready)
    } else {
        HeaderRead::Ready(header)
    }
}

fn read_leaves(probe: &Mapping, count: usize) -> Vec<RawLeaf> {
    let count = count.min(DESCRIPTOR_ENTRIES);
    // SAFETY: the probe maps the whole descriptor region (DESCRIPTOR_OFFSET .. PRODUCER_OFFSET), 8-aligned,
    // and `count` is clamped to the region's entry count; leaves are plain data read by value.
    (0..count)
        .map(|i| unsafe {
            probe
                .base()
                .as_ptr()
                .add(DESCRIPTOR_OFFSET as usize)
                .cast::<RawLeaf>()
                .add(i)
                .read_volatile()
        })
        .collect()
}

fn corrupt(name: &str, field: &'static str, value: u64, reason: &'static str) -> AttachError {
    AttachError::CorruptHeader {
        name: name.to_string(),
        field,
        value,
        reason,
    }
}

/// Checks every structural header field against this build and the object's length; returns the geometry.
fn validate_header(name: &str, header: &RawHeader, len: u64) -> Result<Geometry, AttachError> {
    if header.format_version != FORMAT_VERSION {
        return Err(AttachError::UnsupportedVersion {
            name: name.to_string(),
            found: header.format_version,
            supported: FORMAT_VERSION,
        });
    }
    if header.header_len as usize != HEADER_LEN {
        return Err(corrupt(
            name,
            "header_len",
            header.header_len.into(),
            "not the header length of this format",
        ));
    }
    if header.platform != PLATFORM_WORD {
        return Err(AttachError::PlatformMismatch {
            name: name.to_string(),
            found: header.platform,
            expected: PLATFORM_WORD,
        });
    }
    let capacity = header.capacity;
    if capacity == 0 || !capacity.is_power_of_two() || capacity > MAX_CAPACITY {
        return Err(AttachError::InvalidCapacity {
            name: name.to_string(),
            capacity,
        });
    }
    let (size, align) = (header.event_size, header.event_align);
    if !align.is_power_of_two() || align as usize > MAX_EVENT_ALIGN {
        return Err(corrupt(
            name,
            "event_align",
            align.into(),
            "not a power of two up to 4096",
        ));
    }
    if size == 0 || size % align != 0 {
        return Err(corrupt(
            name,
            "event_size",
            size.into(),
            "zero or not a multiple of the alignment",
        ));
    }
    if header.consumer_slots == 0 || header.consumer_slots > MAX_CONSUMER_SLOTS {
        return Err(corrupt(
            name,
            "consumer_slots",
            header.consumer_slots.into(),
            "outside 1..=1024",
        ));
    }
    if header.descriptor_len as usize > DESCRIPTOR_ENTRIES
        || header.descriptor_len > header.descriptor_total
        || (header.descriptor_len as usize)
            < (header.descriptor_total as usize).min(DESCRIPTOR_ENTRIES)
    {
        return Err(corrupt(
            name,
            "descriptor_len",
            header.descriptor_len.into(),
            "inconsistent with descriptor_total or the descriptor region",
        ));
    }
    if header.event_name_len as usize > EVENT_NAME_CAPACITY {
        return Err(corrupt(
            name,
            "event_name_len",
            header.event_name_len.into(),
            "longer than the name field",
        ));
    }
    let geometry =
        Geometry::compute(capacity, size.into(), header.consumer_slots).ok_or_else(|| {
            corrupt(
                name,
                "capacity",
                capacity,
                "capacity × event size exceeds the segment size limit",
            )
        })?;
    let expected_offsets = [
        ("producer_offset", header.producer_offset, PRODUCER_OFFSET),
        (
            "consumers_offset",
            header.consumers_offset,
            CONSUMERS_OFFSET,
        ),
        (
            "descriptor_offset",
            header.descriptor_offset,
            DESCRIPTOR_OFFSET,
        ),
        ("slots_offset", header.slots_offset, geometry.slots_offset),
        ("total_len", header.total_len, geometry.total_len),
    ];
    for (field, found, expected) in expected_offsets {
        if found != expected {
            return Err(corrupt(
                name,
                field,
                found,
                "disagrees with the geometry the header's capacity, event size and slots imply",
            ));
        }
    }
    if len < geometry.total_len {
        return Err(AttachError::Truncated {
            name: name.to_string(),
            len,
            required: geometry.total_len,
        });
    }
    Ok(geometry)
}

fn check_event_type(
    name: &str,
    header: &RawHeader,
    leaves: &[RawLeaf],
    layout: &TypeLayout,
) -> Result<(), AttachError> {
    let same_type = header.event_fingerprint == layout.fingerprint
        && u64::from(header.event_size) == layout.size as u64
        && u64::from(header.event_align) == layout.align as u64;
    if same_type {
        return Ok(());
    }
    let (local_raw, local_total) = stored_descriptor(layout);
    let here: Vec<LeafField> = local_raw.iter().map(decode_leaf).collect();
    let segment: Vec<LeafField> = leaves.iter().map(decode_leaf).collect();
    let name_len = (header.event_name_len as usize).min(EVENT_NAME_CAPACITY);
    Err(AttachError::EventTypeMismatch(Box::new(TypeMismatch {
        segment_name: name.to_string(),
        here: EventSummary {
            name: layout.name.to_string(),
            size: layout.size as u64,
            align: layout.align as u64,
            fingerprint: layout.fingerprint,
        },
        segment: EventSummary {
            name: String::from_utf8_lossy(&header.event_name[..name_len]).into_owned(),
            size: header.event_size.into(),
            align: header.event_align.into(),
            fingerprint: header.event_fingerprint,
        },
        first_difference: FieldDifference::first(&here, &segment),
        recorded_leaves: DESCRIPTOR_ENTRIES,
        here_leaves: local_total as usize,
        segment_leaves: header.descriptor_total as usize,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The permissions `/proc/self/maps` gives the mapping that contains `address` (e.g. `rw-s`).
    #[cfg(target_os = "linux")]
    fn permissions_at(address: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .find_map(|line| {
                let mut fields = line.split_whitespace();
                let (start, end) = fields.next()?.split_once('-')?;
                let range =
                    usize::from_str_radix(start, 16).ok()?..usize::from_str_radix(end, 16).ok()?;
                range
                    .contains(&address)
                    .then(|| fields.next().unwrap().to_string())
            })
            .unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_consumer_maps_the_slots_read_only_and_the_rest_read_write() {
        let name = format!("/dmp-unit-read-only-slots-{}", std::process::id());
        let layout = <u64 as crate::event::RingEvent>::LAYOUT;
        let producer = Segment::create(CreateParams {
            location: Location::SharedMemory(name.clone()),
            capacity: 1024,
            consumer_slots: 4,
            mode: 0o600,
            layout: &layout,
        })
        .unwrap();
        producer.mark_ready();
        let consumer = Segment::attach(
            Location::SharedMemory(name.clone()),
            &layout,
            Trust::default(),
            Duration::ZERO,
        );
        shm::unlink(&name).unwrap();
        let consumer = consumer.unwrap();
        // The producer writes the slots; a consumer only reads them, and cannot write what others read.
        assert!(permissions_at(producer.slots_base().as_ptr() as usize).starts_with("rw"));
        assert!(permissions_at(consumer.slots_base().as_ptr() as usize).starts_with("r-"));
        // It still writes its own words: its cursor and the table.
        let table = consumer.consumer_slot(0) as *const ConsumerSlot as usize;
        assert!(permissions_at(table).starts_with("rw"));
    }

    #[test]
    fn geometry_places_slots_on_a_page_after_the_table() {
        let g = Geometry::compute(1024, 64, 64).unwrap();
        assert_eq!(g.slots_offset % PAGE, 0);
        assert!(g.slots_offset >= CONSUMERS_OFFSET + 64 * 256);
        assert_eq!(g.total_len, g.slots_offset + 1024 * 64);
        assert!(Geometry::compute(MAX_CAPACITY, 1 << 20, 64).is_none());
    }

    #[test]
    fn leaf_names_truncate_on_char_boundaries() {
        let leaf = LeafField {
            path: "é".repeat(50),
            offset: 8,
            size: 4,
            type_name: "u32".into(),
            fingerprint: 7,
        };
        let decoded = decode_leaf(&encode_leaf(&leaf));
        assert_eq!(decoded.path, "é".repeat(36));
        assert_eq!(decoded.offset, 8);
        assert_eq!(decoded.type_name, "u32");
    }
}
