//! Error types, one per operation: creating a ring, attaching to one, publishing, consuming.
//!
//! Every enum is `#[non_exhaustive]` and carries structured data; each variant's documentation says what
//! to do about it.

use crate::layout::FieldDifference;
use std::fmt;
use std::io;
use std::time::Duration;

/// A segment name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (or only `/`). Pass a name such as `"ticks"`.
    #[error("segment name is empty")]
    Empty,
    /// The name has a `/` after the leading one; POSIX shared-memory names are a single component.
    #[error("segment name {name:?} contains '/' after the leading slash")]
    ContainsSlash {
        /// The name as given.
        name: String,
    },
    /// The name contains a NUL byte.
    #[error("segment name {name:?} contains a NUL byte")]
    ContainsNul {
        /// The name as given.
        name: String,
    },
    /// The name is `.` or `..`, which name directories, not objects, where segments live in the file
    /// system (`/dev/shm` on Linux). Choose another name.
    #[error("segment name {name:?} is reserved: `.` and `..` name directories, not segments")]
    Reserved {
        /// The name as given.
        name: String,
    },
    /// The name is longer than the platform allows (see
    /// [`MAX_SEGMENT_NAME_LEN`](crate::name::MAX_SEGMENT_NAME_LEN)); use
    /// [`portable_shm_segment_name`](crate::portable_shm_segment_name) to derive a short one.
    #[error(
        "segment name {name:?} is {len} bytes with its leading slash; {platform} allows at most {max} \
         (portable_shm_segment_name derives a name that fits every platform)"
    )]
    TooLong {
        /// The name as given.
        name: String,
        /// Its length with the leading slash.
        len: usize,
        /// The limit on this platform.
        max: usize,
        /// The platform whose limit applies (`"Linux"` or `"macOS"`).
        platform: &'static str,
    },
}

/// Why a path cannot hold a file-backed ring, found before (or instead of) any system error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathRefusal {
    /// The last component of the path is a symbolic link. Rings are never opened or created through a
    /// link (another user could point it anywhere): give the real path.
    #[error("it is a symbolic link, and rings are never opened through one")]
    Symlink,
    /// The path names something other than a regular file (`kind`: "directory", "FIFO", "socket",
    /// "character device", "block device", …).
    #[error("it is a {kind}, not a regular file")]
    NotRegularFile {
        /// What the path names.
        kind: &'static str,
    },
    /// The directory is unsafe to keep a ring in (for example writable by other users without the sticky
    /// bit, so that anyone could replace the ring). Use a directory only you can write to, or one with the
    /// sticky bit such as `/tmp`.
    #[error("its directory is unsafe: {reason}")]
    UnsafeDirectory {
        /// Why.
        reason: &'static str,
    },
}

/// Why a ring could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The segment name was refused.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// The capacity must be a power of two between 1 and [`MAX_CAPACITY`](crate::segment::MAX_CAPACITY),
    /// and the ring must fit in memory.
    #[error("capacity {capacity} is invalid: {reason}")]
    InvalidCapacity {
        /// The capacity asked for.
        capacity: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The consumer table must have between 1 and
    /// [`MAX_CONSUMER_SLOTS`](crate::segment::MAX_CONSUMER_SLOTS) slots.
    #[error("{slots} consumer slots requested; between 1 and {max} are supported")]
    InvalidConsumerSlots {
        /// The number asked for.
        slots: u32,
        /// The limit.
        max: u32,
    },
    /// The event type cannot be carried (zero-sized, or aligned to more than a page).
    #[error("event type `{event}` cannot be carried: {reason}")]
    UnsupportedEvent {
        /// The event's stable name.
        event: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A live producer owns a segment of this name (or an object that is not a disruptor-mp ring has the
    /// name). A segment left by a producer that died is not reported: `build_producer` removes it and
    /// creates a new one. Stop the other producer, or choose another name.
    #[error(
        "segment {name:?} already exists{}{}",
        at_location(location),
        producer_pid.map_or_else(
            || " (its producer is alive, or it is not a disruptor-mp ring)".to_string(),
            |pid| format!(" and its producer (pid {pid}) is alive"),
        )
    )]
    AlreadyExists {
        /// The segment name.
        name: String,
        /// Where the segment lives in the file system (`/dev/shm/NAME` on Linux); `None` on macOS, whose
        /// shared-memory objects have no path.
        location: Option<String>,
        /// Process id of the live producer, as recorded in the segment (in the producer's PID namespace);
        /// `None` when the object is not a readable disruptor-mp ring.
        producer_pid: Option<u32>,
    },
    /// The file system holding shared memory has too little free space for the ring (on Linux, the tmpfs
    /// on `/dev/shm`, which a default Docker container limits to 64 MiB). Nothing was created. Make the
    /// ring smaller (capacity × event size), free space, or enlarge `/dev/shm` (Docker: `--shm-size`).
    #[error(
        "segment {name:?}{} needs {needed} bytes of shared memory but only {} are free",
        at_location(location),
        available.map_or_else(|| "fewer".to_string(), |bytes| bytes.to_string())
    )]
    InsufficientSpace {
        /// The segment name.
        name: String,
        /// Bytes the segment needs.
        needed: u64,
        /// Bytes that were free, where the platform can tell.
        available: Option<u64>,
        /// Where the segment would have lived (see [`CreateError::AlreadyExists`]).
        location: Option<String>,
    },
    /// `discover_consumer_with_prefix` asked for named consumers that cannot be reserved: more than the
    /// consumer slots, or ids (`{prefix}_{k}`) that are not valid consumer ids.
    #[error("cannot reserve {count} named consumers with prefix {prefix:?}: {reason}")]
    InvalidNamedConsumers {
        /// The number of named consumers asked for.
        count: usize,
        /// The id prefix.
        prefix: String,
        /// What is wrong.
        reason: String,
    },
    /// `CoordinationMode::WaitForConsumers`: fewer consumers than required attached within the timeout.
    /// The ring was removed again (consumers that did attach see it closed). Start the consumers, raise
    /// the timeout, or lower `min_consumers`.
    #[error("segment {name:?}: {attached} of {wanted} consumers attached within {timeout:?}")]
    ConsumersMissing {
        /// The segment name.
        name: String,
        /// Consumers required.
        wanted: usize,
        /// Consumers attached when the timeout expired.
        attached: usize,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The path of a file-backed ring was refused: see [`PathRefusal`].
    #[error("ring file {path:?} refused: {reason}")]
    PathRefused {
        /// The path as given.
        path: String,
        /// Why.
        reason: PathRefusal,
    },
    /// The operating system refused an operation; `operation` names the call.
    #[error("segment {name:?}: {operation} failed: {source}")]
    Os {
        /// The segment name.
        name: String,
        /// The system call or step that failed.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// ` at PATH` when a segment's location is known, for messages.
fn at_location(location: &Option<String>) -> String {
    location
        .as_ref()
        .map_or_else(String::new, |path| format!(" at {path}"))
}

/// The event type summary printed on either side of a [`TypeMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// The event type's stable name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its alignment in bytes.
    pub align: u64,
    /// Its layout fingerprint.
    pub fingerprint: u64,
}

impl fmt::Display for EventSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  size {} align {} fp {:#018x}",
            self.name, self.size, self.align, self.fingerprint
        )
    }
}

/// The details of an event type mismatch between this process and a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMismatch {
    /// The segment name.
    pub segment_name: String,
    /// The event type this process was compiled with.
    pub here: EventSummary,
    /// The event type recorded in the segment by its creator.
    pub segment: EventSummary,
    /// The first differing leaf field, when the recorded field descriptors differ (see
    /// `recorded_leaves`).
    pub first_difference: Option<FieldDifference>,
    /// How many leading leaf fields of an event type a segment records
    /// ([`DESCRIPTOR_ENTRIES`](crate::segment::DESCRIPTOR_ENTRIES)). Only these are compared: when
    /// either type has more, a difference past them changes the fingerprint but cannot be named, and
    /// `first_difference` is `None`.
    pub recorded_leaves: usize,
    /// How many leaf fields this process's event type has (the length of its
    /// [flattened descriptor](crate::layout::TypeLayout::flatten)).
    pub here_leaves: usize,
    /// How many leaf fields the segment's event type has, as the segment's header records it.
    pub segment_leaves: usize,
}

impl TypeMismatch {
    /// What differs in the summaries (name, size, alignment), as `"name, size and alignment"`; `None`
    /// when they agree.
    fn summary_differences(&self) -> Option<String> {
        let parts: Vec<&str> = [
            (self.here.name != self.segment.name, "name"),
            (self.here.size != self.segment.size, "size"),
            (self.here.align != self.segment.align, "alignment"),
        ]
        .into_iter()
        .filter_map(|(differs, part)| differs.then_some(part))
        .collect();
        match parts.as_slice() {
            [] => None,
            [only] => Some(only.to_string()),
            [init @ .., last] => Some(format!("{} and {last}", init.join(", "))),
        }
    }

    /// Explains a mismatch whose recorded leaf fields all agree.
    fn fmt_without_field_difference(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recorded = self.recorded_leaves;
        let differences = self.summary_differences();
        if self.here_leaves > recorded || self.segment_leaves > recorded {
            write!(
                f,
                "the segment records only the first {recorded} leaf fields of an event type, and those agree \
                 (this process's type has {}, the segment's {})",
                self.here_leaves, self.segment_leaves
            )?;
            match differences {
                Some(what) => write!(
                    f,
                    "; the types differ in {what}, and perhaps also in the fields past them"
                ),
                None => write!(f, ": the difference lies in the fields past them"),
            }
        } else {
            match self.here_leaves {
                1 => write!(f, "the only leaf field agrees")?,
                n => write!(f, "all {n} leaf fields agree")?,
            }
            match differences {
                Some(what) => write!(f, "; the types differ in {what}"),
                None => write!(
                    f,
                    ", as do the names, sizes and alignments: a nested struct differs in its name, size or \
                     alignment, or a long field path differs past the part the segment records"
                ),
            }
        }
    }
}

impl fmt::Display for TypeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "event type mismatch on segment {:?}:", self.segment_name)?;
        writeln!(f, "  this process : {}", self.here)?;
        write!(f, "  segment      : {}", self.segment)?;
        write!(f, "\n  ")?;
        match &self.first_difference {
            Some(difference) => write!(f, "{difference}"),
            None => self.fmt_without_field_difference(f),
        }
    }
}

/// Why attaching to a ring failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The segment name was refused.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No segment with this name exists (after waiting `waited`). Start the producer first, or give the
    /// attach a timeout with `with_attach_timeout` so it waits for the producer.
    #[error("no segment named {name:?} (waited {waited:?})")]
    NotFound {
        /// The segment name.
        name: String,
        /// How long the attach waited for it to appear.
        waited: Duration,
    },
    /// The segment exists but its creator did not finish initializing it within the attach timeout. The
    /// creator may have crashed while creating it; raise the timeout or remove the stale segment.
    #[error("segment {name:?} exists but was not ready within {waited:?}")]
    NotReady {
        /// The segment name.
        name: String,
        /// How long the attach waited.
        waited: Duration,
    },
    /// The segment's producer died without closing it, and no new producer replaced it within the attach
    /// timeout: a consumer joining now would never receive anything. Restart the producer (its
    /// `build_producer` reclaims the name), or raise the attach timeout to wait for it.
    #[error("segment {name:?}: its producer (pid {pid}) is gone and no new one took over within {waited:?}")]
    ProducerGone {
        /// The segment name.
        name: String,
        /// Process id of the dead producer, as recorded (in its PID namespace).
        pid: u32,
        /// How long the attach waited for a new producer.
        waited: Duration,
    },
    /// The segment does not start with this crate's magic bytes: it is not a disruptor-mp ring.
    #[error("segment {name:?} is not a disruptor-mp ring (magic bytes {found:02x?})")]
    BadMagic {
        /// The segment name.
        name: String,
        /// The first eight bytes found.
        found: [u8; 8],
    },
    /// The segment was created by a version of this crate with another segment format. Use the same
    /// disruptor-mp version on both sides.
    #[error("segment {name:?} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The segment name.
        name: String,
        /// The version in the segment.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The segment was created on a platform with another endianness, pointer width or cache-line
    /// constant; it cannot be shared with this process.
    #[error("segment {name:?} was created for platform word {found:#018x}; this process is {expected:#018x}")]
    PlatformMismatch {
        /// The segment name.
        name: String,
        /// The platform word in the segment.
        found: u64,
        /// This process's platform word.
        expected: u64,
    },
    /// The segment is shorter than its header says it must be: truncated or corrupted.
    #[error("segment {name:?} is {len} bytes but its header requires {required}")]
    Truncated {
        /// The segment name.
        name: String,
        /// The segment's actual length.
        len: u64,
        /// The length the header requires.
        required: u64,
    },
    /// The header records an impossible capacity (not a power of two, zero, or too large): corrupted.
    #[error("segment {name:?} records an impossible capacity {capacity}")]
    InvalidCapacity {
        /// The segment name.
        name: String,
        /// The recorded capacity.
        capacity: u64,
    },
    /// A header field holds a value this crate never writes: the segment is corrupted.
    #[error("segment {name:?} is corrupted: header field `{field}` = {value:#x} ({reason})")]
    CorruptHeader {
        /// The segment name.
        name: String,
        /// The header field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The segment carries another event type than this process's. The message names both types and the
    /// first differing field (or, when the fields the segment records all agree, where the difference
    /// lies): rebuild both sides against the same event definition.
    #[error("{0}")]
    EventTypeMismatch(Box<TypeMismatch>),
    /// Every consumer slot of the segment is in use. Detach a consumer, or create the ring with more slots
    /// (`with_consumer_slots`).
    #[error("segment {name:?}: all {slots} consumer slots are in use")]
    ConsumerTableFull {
        /// The segment name.
        name: String,
        /// The number of slots in the table.
        slots: u32,
    },
    /// The requested start sequence ([`StartPosition::Sequence`](crate::StartPosition::Sequence)) is not
    /// held: the producer may already have overwritten it, or has not published it yet. Start at
    /// `oldest_held` (or use [`StartPosition::Earliest`](crate::StartPosition::Earliest)), or at most at
    /// `next`.
    #[error(
        "segment {name:?}: sequence {requested} is not held; the ring holds sequences {oldest_held} \
         to {next} (the next to be published)"
    )]
    SequenceNotHeld {
        /// The segment name.
        name: String,
        /// The sequence asked for.
        requested: u64,
        /// The oldest sequence a consumer could start at when the attach looked.
        oldest_held: u64,
        /// The sequence the producer will publish next.
        next: u64,
    },
    /// A consumer named in [`ConsumerBuilder::after`](crate::ConsumerBuilder::after) was not attached (or,
    /// for a durable one, reserved) within the attach timeout, or it names this consumer itself, or it is
    /// empty (an anonymous consumer cannot be followed). Start the upstream stages first, give the
    /// dependent an attach timeout, or check the ids.
    #[error(
        "segment {name:?}: upstream consumer {id:?} is not attached (a dependent consumer follows only \
         attached consumers, or durable ones reserved by name)"
    )]
    UpstreamNotFound {
        /// The segment name.
        name: String,
        /// The upstream consumer id that was not found.
        id: String,
    },
    /// An untethered consumer was asked to follow other consumers ([`ConsumerBuilder::after`] then
    /// [`ConsumerBuilder::untethered`]): it could not, since it does not hold back what they commit. Make
    /// the stage an ordinary consumer, or drop `after`.
    ///
    /// [`ConsumerBuilder::after`]: crate::ConsumerBuilder::after
    /// [`ConsumerBuilder::untethered`]: crate::ConsumerBuilder::untethered
    #[error("segment {name:?}: an untethered consumer cannot be a pipeline stage (it was given upstream consumers)")]
    UntetheredStage {
        /// The segment name.
        name: String,
    },
    /// Another live consumer uses this consumer id (ids are unique among live consumers; a durable,
    /// named slot takes one consumer at a time). Stop the other consumer, or pick another id.
    #[error("segment {name:?}: consumer id {id:?} is in use by a live consumer (pid {pid})")]
    ConsumerIdInUse {
        /// The segment name.
        name: String,
        /// The id.
        id: String,
        /// Process id of the consumer holding it, as recorded (in its PID namespace).
        pid: u32,
    },
    /// The consumer id is too long (more than
    /// [`MAX_CONSUMER_ID_LEN`](crate::segment::MAX_CONSUMER_ID_LEN) bytes) or contains a NUL byte.
    #[error("consumer id {id:?} is invalid: {reason}")]
    InvalidConsumerId {
        /// The id as given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The segment's permissions do not let this process open it read-write. The producer chooses them
    /// with [`SharedProducerBuilder::with_mode`](crate::SharedProducerBuilder::with_mode) (default
    /// `0o600`: its own user only); run the consumer as the same user, or have the producer widen the mode
    /// (e.g. `0o660` for a shared group).
    #[error(
        "permission denied opening segment {name:?} read-write{} as uid {process_uid}; the producer \
         sets the mode with SharedProducerBuilder::with_mode (default 0o600, its own user only)",
        describe_mode(*mode, *owner_uid)
    )]
    PermissionDenied {
        /// The segment name.
        name: String,
        /// The segment's permission bits, where the platform can tell without opening it (Linux).
        mode: Option<u32>,
        /// The segment owner's user id, where the platform can tell (Linux).
        owner_uid: Option<u32>,
        /// The effective user id of this process.
        process_uid: u32,
    },
    /// The path of a file-backed ring was refused: see [`PathRefusal`].
    #[error("ring file {path:?} refused: {reason}")]
    PathRefused {
        /// The path as given.
        path: String,
        /// Why.
        reason: PathRefusal,
    },
    /// Users other than the segment's owner may write it (its mode has group or other write bits), so any
    /// of them could corrupt what this consumer reads. Have the producer create it with a narrower mode
    /// (`with_mode`; the default 0600 is its own user only), or accept it with
    /// [`allow_writable_by_others`](crate::ConsumerBuilder::allow_writable_by_others).
    #[error(
        "segment {name:?} is writable by users other than its owner (mode {mode:04o}); refusing it \
         unless the consumer allows it (allow_writable_by_others)"
    )]
    WritableByOthers {
        /// The segment name.
        name: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The segment belongs to another user, who controls its contents. Attach as its owner, or accept it
    /// with [`allow_other_owner`](crate::ConsumerBuilder::allow_other_owner).
    #[error(
        "segment {name:?} is owned by uid {owner_uid}, not this process's uid {process_uid}; refusing \
         it unless the consumer allows it (allow_other_owner)"
    )]
    OwnedByOtherUser {
        /// The segment name.
        name: String,
        /// The owner's user id.
        owner_uid: u32,
        /// This process's effective user id.
        process_uid: u32,
    },
    /// The operating system refused an operation; `operation` names the call.
    #[error("segment {name:?}: {operation} failed: {source}")]
    Os {
        /// The segment name.
        name: String,
        /// The system call or step that failed.
        operation: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// ` (mode 0600, owned by uid 1000)` as far as known, for [`AttachError::PermissionDenied`].
fn describe_mode(mode: Option<u32>, owner_uid: Option<u32>) -> String {
    match (mode, owner_uid) {
        (Some(mode), Some(uid)) => format!(" (mode {mode:04o}, owned by uid {uid})"),
        (Some(mode), None) => format!(" (mode {mode:04o})"),
        (None, Some(uid)) => format!(" (owned by uid {uid})"),
        (None, None) => String::new(),
    }
}

/// Why a publish did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// `try_publish*`: the ring is full because the slowest consumer has not caught up. Retry later, or use
    /// a blocking publish.
    #[error("ring is full: the slowest consumer is {capacity} events behind")]
    Full {
        /// The ring's capacity.
        capacity: u64,
    },
    /// A publish with a timeout found no room within `timeout`; nothing was published (a batch may have
    /// published a prefix: see the batch method's docs).
    #[error("no room in the ring within {timeout:?}: a consumer is not keeping up")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A batch of `count` events would take sequence numbers past `u64::MAX` from `next_sequence`; nothing
    /// was published. Such a count is a bug in the caller (a length computed by wrapping arithmetic, say).
    #[error("a batch of {count} events cannot be published after sequence {next_sequence}: sequence numbers would overflow")]
    BatchTooLarge {
        /// The number of events asked for.
        count: u64,
        /// The sequence the first of them would have had.
        next_sequence: u64,
    },
}

/// Why a consume returned no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumeError {
    /// The producer closed the ring and every event it published has been consumed. Drop the consumer.
    #[error("the producer closed the ring and every event has been consumed")]
    Closed,
    /// The producer died (killed, or crashed) without closing the ring, and every event it published has
    /// been consumed. Nothing more will arrive: drop the consumer, and attach again (with an attach
    /// timeout) once a producer has restarted; the new producer reclaims the name.
    #[error("the producer (pid {pid}) died; every event it published has been consumed")]
    ProducerGone {
        /// Process id of the producer, as recorded in the segment (in its PID namespace).
        pid: u32,
    },
    /// The producer evicted this consumer (its required-consumer policy found it stalled): the producer no
    /// longer waits for it and may overwrite what it has not read, so it reads nothing more. Drop it and
    /// attach again, which starts at the next event published.
    #[error("this consumer was evicted by the producer and reads nothing more")]
    Evicted,
    /// An upstream stage this consumer follows (see
    /// [`ConsumerBuilder::after`](crate::ConsumerBuilder::after)) stopped, and this consumer has read
    /// everything it committed: nothing more will come. Restart the pipeline from that stage; a durable
    /// dependent resumes where it stopped.
    #[error(
        "upstream consumer {id:?} stopped ({reason}); every event it committed has been consumed"
    )]
    UpstreamGone {
        /// The upstream consumer's id.
        id: String,
        /// Why it stopped.
        reason: UpstreamEnd,
    },
    /// An untethered consumer (see [`UntetheredConsumer`](crate::UntetheredConsumer)) fell so far behind
    /// that the producer overwrote `missed` events it had not read yet. Reported once; the next read
    /// returns the event at `resumed_at`, the oldest one still valid.
    #[error("lapped by the producer: {missed} events were overwritten before they were read; resuming at sequence {resumed_at}")]
    Lapped {
        /// Events lost: `resumed_at` minus the sequence this consumer was about to read.
        missed: u64,
        /// The sequence the next read returns.
        resumed_at: u64,
    },
    /// A shared word of the segment holds a value the protocol cannot produce: a process with write access
    /// to the segment rewrote it (see the [threat model](crate::protocol#threat-model)). This consumer
    /// stops reading rather than hand out events that were never published, or were overwritten. Find
    /// out who else can write the segment (its mode and owner), then attach again.
    #[error("the segment is corrupted: {word} = {value} ({reason}); another process rewrote it")]
    CorruptSegment {
        /// Which shared word.
        word: &'static str,
        /// The value it held.
        value: u64,
        /// Why that value is impossible.
        reason: &'static str,
    },
    /// A blocking consume found no event within `timeout`.
    #[error("no event within {timeout:?}")]
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },
}

/// Why waiting for consumers ended without them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitForConsumersError {
    /// Fewer consumers than wanted attached within the timeout.
    #[error("{attached} of {wanted} consumers attached within {timeout:?}")]
    Timeout {
        /// How many were wanted.
        wanted: usize,
        /// How many were attached when the timeout expired.
        attached: usize,
        /// The timeout that expired.
        timeout: Duration,
    },
}

/// Why an upstream stage stopped (see [`ConsumeError::UpstreamGone`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamEnd {
    /// It left the ring (its consumer was dropped), or its process died and the slot was swept.
    Left,
    /// Its process died while attached.
    Died {
        /// Its process id (display only).
        pid: u32,
    },
    /// The producer evicted it, or released its durable reservation.
    Evicted,
}

impl std::fmt::Display for UpstreamEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamEnd::Left => f.write_str("it left the ring"),
            UpstreamEnd::Died { pid } => write!(f, "its process (pid {pid}) died"),
            UpstreamEnd::Evicted => f.write_str("the producer evicted it"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, size: u64, align: u64, fingerprint: u64) -> EventSummary {
        EventSummary {
            name: name.to_string(),
            size,
            align,
            fingerprint,
        }
    }

    fn mismatch(here: EventSummary, segment: EventSummary, leaves: (usize, usize)) -> TypeMismatch {
        TypeMismatch {
            segment_name: "/ticks".to_string(),
            here,
            segment,
            first_difference: None,
            recorded_leaves: 64,
            here_leaves: leaves.0,
            segment_leaves: leaves.1,
        }
    }

    fn last_line(mismatch: &TypeMismatch) -> String {
        let text = mismatch.to_string();
        text.lines().last().unwrap_or_default().trim().to_string()
    }

    #[test]
    fn agreeing_recorded_leaves_name_what_else_differs() {
        let m = mismatch(summary("A", 8, 8, 1), summary("B", 16, 16, 2), (3, 3));
        assert_eq!(
            last_line(&m),
            "all 3 leaf fields agree; the types differ in name, size and alignment"
        );
        let m = mismatch(summary("A", 8, 8, 1), summary("A", 16, 8, 2), (1, 1));
        assert_eq!(
            last_line(&m),
            "the only leaf field agrees; the types differ in size"
        );
    }

    #[test]
    fn agreeing_leaves_and_summaries_point_at_nested_definitions() {
        let m = mismatch(summary("A", 8, 8, 1), summary("A", 8, 8, 2), (2, 2));
        assert!(
            last_line(&m).starts_with(
                "all 2 leaf fields agree, as do the names, sizes and alignments: a nested struct differs"
            ),
            "{m}"
        );
    }

    #[test]
    fn unrecorded_leaves_are_counted_on_both_sides() {
        let m = mismatch(summary("A", 8, 8, 1), summary("B", 8, 8, 2), (64, 65));
        assert_eq!(
            last_line(&m),
            "the segment records only the first 64 leaf fields of an event type, and those agree (this \
             process's type has 64, the segment's 65); the types differ in name, and perhaps also in the \
             fields past them"
        );
    }
}
