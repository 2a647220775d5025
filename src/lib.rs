//! Support shared by the examples and cross-process tests of disruptor-mp (not published).
//!
//! Cross-process tests re-execute their own test binary with a *role* in the environment: the child runs
//! the test named [`CHILD_ENTRY`] (which dispatches on the role and exits) instead of the suite. Every wait
//! on a child is bounded, and a child still running when its handle drops is killed, so a bug fails a test
//! instead of hanging CI.

use std::io::{self, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable carrying a child's role.
pub const ROLE_ENV: &str = "DMP_CHILD_ROLE";

/// Name of the `#[test]` function each cross-process test file defines to dispatch child roles.
pub const CHILD_ENTRY: &str = "child_process_entry";

/// A segment name unique to this process and call, so parallel tests never collide. It is a
/// [`portable_shm_segment_name`](disruptor_mp::portable_shm_segment_name), so it fits macOS's 31-byte limit.
pub fn unique_segment_name(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    disruptor_mp::portable_shm_segment_name(&format!(
        "dmp-test-{label}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Environment variable carrying the backend a child process runs on ([`TestBackend::KIND`]).
pub const BACKEND_ENV: &str = "DMP_BACKEND";

/// A backend the cross-process suites run on: each suite is one generic function, instantiated once per
/// backend, so both backends are held to the same tests.
pub trait TestBackend: disruptor_mp::Backend + Sized {
    /// Names the backend in [`BACKEND_ENV`] and in messages.
    const KIND: &'static str;

    /// A fresh ring identifier for this backend: a unique shared-memory name, or a path in a private
    /// directory. The [`TestRing`] removes what is left of it when dropped.
    fn new_ring(label: &str) -> TestRing;

    /// [`build_shared_single_producer`](disruptor_mp::build_shared_single_producer) or
    /// [`build_mmap_single_producer`](disruptor_mp::build_mmap_single_producer) on `ring`.
    fn producer<E: disruptor_mp::RingEvent>(
        ring: &str,
        capacity: usize,
    ) -> disruptor_mp::ProducerBuilder<E, Self>;

    /// [`attach_shared_consumer`](disruptor_mp::attach_shared_consumer) or
    /// [`attach_mmap_consumer`](disruptor_mp::attach_mmap_consumer) on `ring`.
    fn consumer<E: disruptor_mp::RingEvent>(ring: &str) -> disruptor_mp::ConsumerBuilder<E, Self>;

    /// The environment a child needs to run on this backend: [`BACKEND_ENV`].
    fn env() -> (&'static str, String) {
        (BACKEND_ENV, Self::KIND.to_string())
    }
}

impl TestBackend for disruptor_mp::SharedMemory {
    const KIND: &'static str = "shm";

    fn new_ring(label: &str) -> TestRing {
        TestRing {
            id: unique_segment_name(label),
            dir: None,
        }
    }

    fn producer<E: disruptor_mp::RingEvent>(
        ring: &str,
        capacity: usize,
    ) -> disruptor_mp::ProducerBuilder<E, Self> {
        disruptor_mp::build_shared_single_producer(ring, capacity)
    }

    fn consumer<E: disruptor_mp::RingEvent>(ring: &str) -> disruptor_mp::ConsumerBuilder<E, Self> {
        disruptor_mp::attach_shared_consumer(ring)
    }
}

impl TestBackend for disruptor_mp::MappedFile {
    const KIND: &'static str = "file";

    fn new_ring(label: &str) -> TestRing {
        let name = unique_segment_name(label);
        let dir = std::env::temp_dir().join(name.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).expect("creating a directory for a test ring");
        // A ring file is refused in a directory other users could replace it in: whatever the umask made
        // of the directory, keep it private.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .expect("making a test ring's directory private");
        }
        TestRing {
            id: dir.join("ring").display().to_string(),
            dir: Some(dir),
        }
    }

    fn producer<E: disruptor_mp::RingEvent>(
        ring: &str,
        capacity: usize,
    ) -> disruptor_mp::ProducerBuilder<E, Self> {
        disruptor_mp::build_mmap_single_producer(ring, capacity)
    }

    fn consumer<E: disruptor_mp::RingEvent>(ring: &str) -> disruptor_mp::ConsumerBuilder<E, Self> {
        disruptor_mp::attach_mmap_consumer(ring)
    }
}

/// Runs `shm` or `file` as the backend a child was started on ([`BACKEND_ENV`]) says: how a child role
/// picks the instantiation of a generic suite, e.g.
/// `on_child_backend(|| role::<SharedMemory>(), || role::<MappedFile>())`.
pub fn on_child_backend<R>(shm: impl FnOnce() -> R, file: impl FnOnce() -> R) -> R {
    let kind: String = child_arg(BACKEND_ENV);
    match kind.as_str() {
        k if k == <disruptor_mp::SharedMemory as TestBackend>::KIND => shm(),
        k if k == <disruptor_mp::MappedFile as TestBackend>::KIND => file(),
        other => panic!("unknown backend {other:?} in {BACKEND_ENV}"),
    }
}

/// Instantiates generic suites once per backend: for each `generic => shm_test, file_test;` it defines the
/// `#[test]`s `shm_test`, calling `generic::<SharedMemory>()`, and `file_test`, calling
/// `generic::<MappedFile>()`. The test file must depend on `disruptor_mp` (every one here does).
///
/// ```ignore
/// fn late_join<B: TestBackend>() { /* ... */ }
/// on_both_backends! {
///     late_join => late_join_shm, late_join_file;
/// }
/// ```
#[macro_export]
macro_rules! on_both_backends {
    ($($generic:ident => $shm:ident, $file:ident;)+) => {
        $(
            #[test]
            fn $shm() {
                $generic::<::disruptor_mp::SharedMemory>();
            }

            #[test]
            fn $file() {
                $generic::<::disruptor_mp::MappedFile>();
            }
        )+
    };
}

/// A ring identifier for one test ([`TestBackend::new_ring`]): a shared-memory name, or a file path in a
/// private directory. Dropping it removes the ring's name (or the directory), so that a test that fails
/// half-way leaves nothing behind.
#[derive(Debug)]
pub struct TestRing {
    id: String,
    dir: Option<std::path::PathBuf>,
}

impl TestRing {
    /// The name or path to pass to the backend's builders (and to children).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The ring's file in the file system: the file itself, or `/dev/shm/NAME` (Linux).
    pub fn path(&self) -> std::path::PathBuf {
        match &self.dir {
            Some(_) => std::path::PathBuf::from(&self.id),
            None => {
                std::path::PathBuf::from(format!("/dev/shm/{}", self.id.trim_start_matches('/')))
            }
        }
    }
}

impl Drop for TestRing {
    fn drop(&mut self) {
        match &self.dir {
            Some(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            None => {
                let _ = std::fs::remove_file(self.path());
            }
        }
    }
}

/// The role this process was started with, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(ROLE_ENV).ok()
}

/// A variable the parent passed to this child; panics with a clear message if it is missing or malformed.
pub fn child_arg<T: std::str::FromStr>(key: &str) -> T {
    let value = std::env::var(key).unwrap_or_else(|_| panic!("child argument {key} is missing"));
    value
        .parse()
        .unwrap_or_else(|_| panic!("child argument {key}={value:?} is malformed"))
}

/// Marks the line of a child's stdout that carries its report (the test harness prints lines of its own).
const REPORT_MARKER: &str = "dmp-child-report: ";

/// Runs `role` if this process is a child, printing its one-line report on stdout and exiting with 0 on
/// `Ok`, or printing the error on stderr and exiting with 1 on `Err`. Returns normally only in the parent.
pub fn dispatch_child_role(role: impl FnOnce(&str) -> Result<String, String>) {
    let Some(name) = child_role() else { return };
    match role(&name) {
        Ok(report) => {
            println!("{REPORT_MARKER}{report}");
            std::process::exit(0);
        }
        Err(error) => {
            eprintln!("child role {name} failed: {error}");
            std::process::exit(1);
        }
    }
}

/// A child process running one role of the current test binary (or example). Killed on drop if still
/// running.
pub struct ChildProcess {
    child: std::process::Child,
    role: String,
    stdout: Option<JoinHandle<io::Result<String>>>,
}

/// What a finished child left: its exit status and everything it printed on stdout.
#[derive(Debug)]
pub struct ChildOutput {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything printed on stdout.
    pub stdout: String,
}

impl ChildProcess {
    /// Starts the current test binary as a child running `role`, with extra environment variables.
    pub fn spawn_test_role(role: &str, env: &[(&str, String)]) -> io::Result<ChildProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--exact", CHILD_ENTRY, "--nocapture", "--test-threads=1"]);
        Self::spawn(command, role, env)
    }

    /// Like [`spawn_test_role`](Self::spawn_test_role), but starts the test binary through `wrapper`, a
    /// command line that sets something up (a namespace, a mount) and then runs the command given after
    /// it, e.g. `["unshare", "-m", "sh", "-c", "mount ... && exec \"$@\"", "sh"]`.
    pub fn spawn_test_role_wrapped(
        wrapper: &[&str],
        role: &str,
        env: &[(&str, String)],
    ) -> io::Result<ChildProcess> {
        let (program, wrapper_args) = wrapper
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty wrapper"))?;
        let mut command = Command::new(program);
        command
            .args(wrapper_args)
            .arg(std::env::current_exe()?)
            .args(["--exact", CHILD_ENTRY, "--nocapture", "--test-threads=1"]);
        Self::spawn(command, role, env)
    }

    /// Starts the current executable (an example or benchmark with its own `main`) as a child running
    /// `role`.
    pub fn spawn_binary_role(role: &str, env: &[(&str, String)]) -> io::Result<ChildProcess> {
        Self::spawn(Command::new(std::env::current_exe()?), role, env)
    }

    fn spawn(mut command: Command, role: &str, env: &[(&str, String)]) -> io::Result<ChildProcess> {
        command
            .env(ROLE_ENV, role)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let mut pipe = child.stdout.take().expect("stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).map(|_| text)
        });
        Ok(ChildProcess {
            child,
            role: role.to_string(),
            stdout: Some(stdout),
        })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits at most `timeout` for the child to exit; kills it and returns an error if it does not.
    pub fn wait_timeout(mut self, timeout: Duration) -> Result<ChildOutput, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let stdout = self
                        .stdout
                        .take()
                        .expect("stdout reader present")
                        .join()
                        .map_err(|_| format!("{}: stdout reader panicked", self.role))?
                        .map_err(|e| format!("{}: reading stdout: {e}", self.role))?;
                    return Ok(ChildOutput { status, stdout });
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) => {
                    self.kill();
                    return Err(format!(
                        "child {} (pid {}) did not finish within {timeout:?}; killed",
                        self.role,
                        self.child.id()
                    ));
                }
                Err(e) => return Err(format!("{}: waiting: {e}", self.role)),
            }
        }
    }

    /// Waits at most `timeout` and requires a successful exit; returns the report the child's role
    /// returned (see [`dispatch_child_role`]).
    pub fn expect_success(self, timeout: Duration) -> Result<String, String> {
        let role = self.role.clone();
        let output = self.wait_timeout(timeout)?;
        let report = output
            .stdout
            .lines()
            .find_map(|line| line.split_once(REPORT_MARKER).map(|(_, report)| report));
        if let (true, Some(report)) = (output.status.success(), report) {
            Ok(report.to_string())
        } else {
            Err(format!(
                "child {role} failed with {}; stdout: {}",
                output.status, output.stdout
            ))
        }
    }

    /// Kills the child (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill();
        }
    }
}

/// Checksum of a 64-bit payload stream, order-sensitive (so a reordering or a gap changes it).
pub fn fold_checksum(state: u64, value: u64) -> u64 {
    (state ^ value)
        .wrapping_mul(0x0100_0000_01b3)
        .rotate_left(17)
}

/// A 64-byte event that carries its own sequence and a checksum of its payload, so a consumer can tell a
/// torn, stale or lapped slot from the event it expected.
#[derive(disruptor_mp::RingEvent, Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct CheckedEvent {
    /// The sequence the producer published this event at.
    pub sequence: u64,
    /// Payload derived from the sequence.
    pub payload: [u64; 6],
    /// Checksum over `sequence` and `payload`.
    pub checksum: u64,
}

impl CheckedEvent {
    /// The event for `sequence`.
    pub fn new(sequence: u64) -> CheckedEvent {
        let mut payload = [0u64; 6];
        for (i, word) in payload.iter_mut().enumerate() {
            *word = sequence
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(7 * i as u32 + 1);
        }
        let checksum = payload
            .iter()
            .fold(sequence, |state, &word| fold_checksum(state, word));
        CheckedEvent {
            sequence,
            payload,
            checksum,
        }
    }

    /// Whether this is exactly the event `new(self.sequence)` builds.
    pub fn is_intact(&self) -> bool {
        *self == CheckedEvent::new(self.sequence)
    }
}

/// The checksum [`StreamCheck`] computes over `count` events from sequence `first`, whose payloads were
/// built with `CheckedEvent::new(offset + sequence)`.
pub fn expected_checksum(first: u64, count: u64, offset: u64) -> u64 {
    (offset + first..offset + first + count).fold(0, fold_checksum)
}

/// Verifies the events one consumer reads: each arrives at the next sequence, starting at `first`, and is
/// exactly `CheckedEvent::new(offset + sequence)` (intact, neither stale nor from another ring). Keeps the
/// first failure and an order-sensitive checksum.
#[derive(Debug, Clone)]
pub struct StreamCheck {
    offset: u64,
    first: u64,
    next: u64,
    checksum: u64,
    failure: Option<String>,
}

impl StreamCheck {
    /// A check for a stream that starts at sequence `first`, of events built from their own sequence.
    pub fn new(first: u64) -> StreamCheck {
        StreamCheck::with_offset(first, 0)
    }

    /// A check for a stream that starts at `first`, of events built from `offset + sequence` (so that the
    /// events of two rings under one name cannot be mistaken for each other).
    pub fn with_offset(first: u64, offset: u64) -> StreamCheck {
        StreamCheck {
            offset,
            first,
            next: first,
            checksum: 0,
            failure: None,
        }
    }

    /// Records `event`, read at ring sequence `sequence`.
    pub fn observe(&mut self, event: &CheckedEvent, sequence: u64) {
        if self.failure.is_none()
            && (sequence != self.next
                || event.sequence != self.offset + sequence
                || !event.is_intact())
        {
            self.failure = Some(format!(
                "expected sequence {} (payload {}), read sequence {sequence} holding {event:?} (intact: {})",
                self.next,
                self.offset + self.next,
                event.is_intact()
            ));
        }
        self.checksum = fold_checksum(self.checksum, event.sequence);
        self.next = sequence + 1;
    }

    /// The sequence the stream started at.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The sequence expected next (one past the last event observed).
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Events observed.
    pub fn count(&self) -> u64 {
        self.next - self.first
    }

    /// The first failure, if any.
    pub fn result(&self) -> Result<(), String> {
        match &self.failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    /// `first count checksum`, the report a consumer child sends its parent; compare with
    /// [`StreamCheck::expected_report`].
    pub fn report(&self) -> String {
        format!("{} {} {}", self.first, self.count(), self.checksum)
    }

    /// The report of a stream that received exactly `count` events from `first`, built with `offset`.
    pub fn expected_report(first: u64, count: u64, offset: u64) -> String {
        format!(
            "{first} {count} {}",
            expected_checksum(first, count, offset)
        )
    }
}

/// Reads `consumer` in batches, verifying every event with `check`, until a read fails; returns that
/// terminal error ([`Closed`](disruptor_mp::ConsumeError::Closed),
/// [`ProducerGone`](disruptor_mp::ConsumeError::ProducerGone), or `Timeout` after `stall` without an
/// event). Returns `Err` as soon as an event fails the check.
pub fn read_until_error<B: disruptor_mp::Backend>(
    consumer: &mut disruptor_mp::Consumer<CheckedEvent, B>,
    check: &mut StreamCheck,
    max_batch: usize,
    stall: Duration,
) -> Result<disruptor_mp::ConsumeError, String> {
    loop {
        match consumer.consume_batch_timeout(max_batch, stall, |event, sequence, _| {
            check.observe(event, sequence)
        }) {
            Ok(_) => check.result()?,
            Err(error) => return Ok(error),
        }
    }
}

/// Seeded pseudo-random numbers (SplitMix64) for tests that vary where and when things happen. The seed
/// comes from [`TestRng::SEED_ENV`] when set, else from the clock, and is printed, so a failing run can be
/// repeated exactly.
#[derive(Debug, Clone)]
pub struct TestRng {
    state: u64,
}

impl TestRng {
    /// Environment variable that fixes the seed.
    pub const SEED_ENV: &'static str = "DMP_TEST_SEED";

    /// A generator with this seed.
    pub fn seeded(seed: u64) -> TestRng {
        TestRng { state: seed }
    }

    /// A generator seeded from [`TestRng::SEED_ENV`], or from the clock; prints the seed with `label`.
    pub fn from_env_or_clock(label: &str) -> TestRng {
        let seed = match std::env::var(Self::SEED_ENV) {
            Ok(value) => value
                .parse()
                .unwrap_or_else(|_| panic!("{}={value:?} is not a u64", Self::SEED_ENV)),
            Err(_) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                nanos ^ u64::from(std::process::id()).rotate_left(32)
            }
        };
        println!(
            "{label}: seed {seed} (set {}={seed} to repeat)",
            Self::SEED_ENV
        );
        TestRng::seeded(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (`high > low`).
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        assert!(high > low, "empty range {low}..{high}");
        low + ((u128::from(self.next_u64()) * u128::from(high - low)) >> 64) as u64
    }

    /// A number in `1..=max` whose order of magnitude is uniform, so that small and large values are
    /// both common.
    pub fn log_uniform(&mut self, max: u64) -> u64 {
        let bits = 64 - max.leading_zeros() as u64;
        let limit = (1u64 << self.between(0, bits)).saturating_mul(2).min(max);
        self.between(1, limit + 1)
    }
}

/// A one-shot message from a child process to its parent through a file: the child
/// [`raise`](SignalFile::raise)s it (atomically: the file appears with its whole content), the parent
/// [`wait`](SignalFile::wait_for)s for it. A child's stdout only reaches the parent when the child exits,
/// which a child that is about to be killed never does. The file is removed on drop.
#[derive(Debug)]
pub struct SignalFile {
    path: std::path::PathBuf,
}

impl SignalFile {
    /// A new, not yet raised signal with a unique path in the temporary directory.
    pub fn new(label: &str) -> SignalFile {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "dmp-signal-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        SignalFile { path }
    }

    /// The path to hand to the child.
    pub fn path(&self) -> String {
        self.path.to_string_lossy().into_owned()
    }

    /// Raises the signal at `path` with `message` (in the child).
    pub fn raise(path: &str, message: &str) -> io::Result<()> {
        let partial = format!("{path}.partial");
        std::fs::write(&partial, message)?;
        std::fs::rename(&partial, path)
    }

    /// Waits at most `timeout` for `child` to raise the signal; returns its message and lowers the signal
    /// again (so it can be reused). Fails at once if the child exits without raising it.
    pub fn wait_for(&self, child: &mut ChildProcess, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(message) = std::fs::read_to_string(&self.path) {
                let _ = std::fs::remove_file(&self.path);
                return Ok(message);
            }
            if !child.is_running() {
                return Err(format!(
                    "child {} (pid {}) exited without raising {}",
                    child.role,
                    child.id(),
                    self.path.display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "child {} (pid {}) did not raise {} within {timeout:?}",
                    child.role,
                    child.id(),
                    self.path.display()
                ));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
}

impl Drop for SignalFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(format!("{}.partial", self.path.display()));
    }
}

/// White-box access to a segment through its file — the one Linux keeps for a shared-memory segment
/// (`/dev/shm/NAME`), or a file-backed ring's own — and a guard that removes that file on drop, so that a test leaves nothing behind even when a producer it killed could
/// not remove its segment, or when the test fails.
///
/// The offsets are those of the segment format (see `disruptor_mp::segment`): the producer's `published`
/// count, and the consumer table, whose slot `i` starts with its committed cursor. Reads go through the
/// file, not a mapping; reading the object never takes or drops a liveness lock (those are OFD locks, held
/// per open file description, which closing another descriptor leaves alone).
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct SegmentFile {
    path: std::path::PathBuf,
}

#[cfg(target_os = "linux")]
impl SegmentFile {
    /// Offset of the producer's `published` count (a native-endian `u64`).
    pub const PUBLISHED_OFFSET: u64 = 12288;
    /// Offset of the consumer table.
    pub const CONSUMER_TABLE_OFFSET: u64 = 13056;
    /// Size of one consumer slot; its committed cursor is the slot's first `u64`.
    pub const CONSUMER_SLOT_LEN: u64 = 256;

    /// The file of segment `name` (with or without its leading slash); removed when this drops.
    pub fn new(name: &str) -> SegmentFile {
        SegmentFile {
            path: std::path::PathBuf::from(format!("/dev/shm/{}", name.trim_start_matches('/'))),
        }
    }

    /// The ring file at `path` (e.g. [`TestRing::path`], for either backend); removed when this drops.
    pub fn at(path: impl Into<std::path::PathBuf>) -> SegmentFile {
        SegmentFile { path: path.into() }
    }

    /// Whether the segment's name exists.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// The producer's `published` count: events published so far.
    pub fn published(&self) -> io::Result<u64> {
        self.read_u64(Self::PUBLISHED_OFFSET)
    }

    /// The committed cursor of consumer table slot `slot`: events that consumer has consumed.
    pub fn consumer_cursor(&self, slot: usize) -> io::Result<u64> {
        self.read_u64(Self::CONSUMER_TABLE_OFFSET + Self::CONSUMER_SLOT_LEN * slot as u64)
    }

    fn read_u64(&self, offset: u64) -> io::Result<u64> {
        use std::os::unix::fs::FileExt;
        let mut bytes = [0u8; 8];
        std::fs::File::open(&self.path)?.read_exact_at(&mut bytes, offset)?;
        Ok(u64::from_ne_bytes(bytes))
    }

    /// Polls until `condition` holds on this segment, at most `timeout`; the error says what was last
    /// seen.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        mut condition: impl FnMut(&SegmentFile) -> io::Result<bool>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = condition(self);
            if let Ok(true) = last {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} never satisfied {what:?} within {timeout:?} (last: {last:?})",
                    self.path.display()
                ));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for SegmentFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A producer publishing `CheckedEvent::new(s)` for `s` in `0..events` with plain, unbounded `publish`
/// on its own thread, so that a test can watch its progress, kill consumers under it, and fail (the
/// watchdog in [`finish`](Self::finish)) instead of hanging if it never finishes. Works on either backend
/// (`B`, shared memory unless said otherwise).
#[derive(Debug)]
pub struct BackgroundPublisher<B: disruptor_mp::Backend = disruptor_mp::SharedMemory> {
    progress: Arc<AtomicU64>,
    limit: Arc<AtomicU64>,
    resumed: Arc<AtomicBool>,
    done: mpsc::Receiver<Result<Published<B>, String>>,
}

/// What a [`BackgroundPublisher`] hands back when it is done.
#[derive(Debug)]
pub struct Published<B: disruptor_mp::Backend = disruptor_mp::SharedMemory> {
    /// The producer, still open (its ring closes when it drops).
    pub producer: disruptor_mp::Producer<CheckedEvent, B>,
    /// Events published.
    pub events: u64,
    /// The longest single `publish` call: how long the producer stalled at worst.
    pub max_stall: Duration,
}

impl<B: disruptor_mp::Backend> BackgroundPublisher<B> {
    /// Starts publishing `events` events through `producer` (`u64::MAX`: until [`stop`](Self::stop)).
    pub fn spawn(
        producer: disruptor_mp::Producer<CheckedEvent, B>,
        events: u64,
    ) -> BackgroundPublisher<B> {
        Self::spawn_with_pause(producer, events, u64::MAX)
    }

    /// Like [`spawn`](Self::spawn), but stops once `pause_at` events are published, until
    /// [`resume`](Self::resume): so that a test can, say, kill a consumer and be sure the producer still
    /// has to get past it.
    pub fn spawn_with_pause(
        mut producer: disruptor_mp::Producer<CheckedEvent, B>,
        events: u64,
        pause_at: u64,
    ) -> BackgroundPublisher<B> {
        let progress = Arc::new(AtomicU64::new(0));
        let limit = Arc::new(AtomicU64::new(events));
        let resumed = Arc::new(AtomicBool::new(false));
        let (sender, done) = mpsc::channel();
        let (shared_progress, shared_limit, shared_resumed) = (
            Arc::clone(&progress),
            Arc::clone(&limit),
            Arc::clone(&resumed),
        );
        std::thread::spawn(move || {
            let mut max_stall = Duration::ZERO;
            let mut sequence = 0;
            while sequence < shared_limit.load(Ordering::Relaxed) {
                if sequence == pause_at {
                    while !shared_resumed.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
                let start = Instant::now();
                if let Err(error) = producer.publish(CheckedEvent::new(sequence)) {
                    let _ = sender.send(Err(format!("publish {sequence}: {error}")));
                    return;
                }
                max_stall = max_stall.max(start.elapsed());
                sequence += 1;
                shared_progress.store(sequence, Ordering::Release);
            }
            let _ = sender.send(Ok(Published {
                producer,
                events: sequence,
                max_stall,
            }));
        });
        BackgroundPublisher {
            progress,
            limit,
            resumed,
            done,
        }
    }

    /// Lets a publisher started with [`spawn_with_pause`](Self::spawn_with_pause) go on.
    pub fn resume(&self) {
        self.resumed.store(true, Ordering::Release);
    }

    /// Events published so far.
    pub fn progress(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }

    /// Asks the publisher to stop after the publish in progress (and resumes it if paused).
    pub fn stop(&self) {
        self.limit.store(0, Ordering::Relaxed);
        self.resume();
    }

    /// Waits at most `timeout` until at least `at_least` events are published.
    pub fn wait_progress(&self, at_least: u64, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        while self.progress() < at_least {
            if Instant::now() > deadline {
                return Err(format!(
                    "the producer published only {} of {at_least} events within {timeout:?}",
                    self.progress()
                ));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        Ok(())
    }

    /// Waits for the publisher to finish; panics if a publish failed, or (the watchdog) if it has not
    /// finished within `watchdog`. A publisher that never finishes stays blocked on its thread.
    pub fn finish(self, watchdog: Duration) -> Published<B> {
        match self.done.recv_timeout(watchdog) {
            Ok(Ok(published)) => published,
            Ok(Err(error)) => panic!("{error}"),
            Err(_) => panic!(
                "watchdog: publishing did not finish within {watchdog:?} (stuck after {} events): the \
                 producer waits for a consumer that will never read",
                self.progress()
            ),
        }
    }
}

/// Where benchmarks and tests run: the CPUs this process may use, binding a thread to one, and the facts
/// that describe the machine in a benchmark's output (CPU model, logical CPUs, kernel release).
pub mod machine {
    pub use affinity::{allowed_cpus, pin_current_thread};

    /// Thread-to-CPU binding through the Linux affinity calls.
    #[cfg(target_os = "linux")]
    mod affinity {
        /// The CPUs this process may run on (its affinity mask), in increasing order.
        pub fn allowed_cpus() -> Vec<usize> {
            // SAFETY: `cpu_set_t` is a plain bit array; all-zero is a valid (empty) set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed; pid 0 means this thread.
            let rc = unsafe {
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
            };
            if rc != 0 {
                return Vec::new();
            }
            (0..libc::CPU_SETSIZE as usize)
                // SAFETY: `cpu` is below CPU_SETSIZE, the number of bits in `set`.
                .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
                .collect()
        }

        /// Pins the calling thread to `cpu`; returns whether the kernel accepted it.
        pub fn pin_current_thread(cpu: usize) -> bool {
            if cpu >= libc::CPU_SETSIZE as usize {
                return false;
            }
            // SAFETY: `cpu_set_t` is a plain bit array; all-zero is a valid (empty) set.
            let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
            // SAFETY: `cpu` was checked to be below CPU_SETSIZE, the number of bits in `set`.
            unsafe { libc::CPU_SET(cpu, &mut set) };
            // SAFETY: `set` is a valid `cpu_set_t` of the size passed; pid 0 means the calling thread.
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
        }
    }

    /// macOS cannot bind a thread to a CPU: its only affinity call (`thread_policy_set` with affinity
    /// tags) groups threads as a hint, and Apple silicon ignores it. Callers run unpinned there.
    #[cfg(not(target_os = "linux"))]
    mod affinity {
        /// No CPU list is available: the caller treats the process as unpinnable.
        pub fn allowed_cpus() -> Vec<usize> {
            Vec::new()
        }

        /// Binding is unavailable; always `false`.
        pub fn pin_current_thread(_cpu: usize) -> bool {
            false
        }
    }

    /// The number of CPUs online (0 if unknown).
    pub fn logical_cpus() -> usize {
        // SAFETY: sysconf only reads a system value; any name is accepted and -1 reports an error.
        let count = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        usize::try_from(count).unwrap_or(0)
    }

    /// The CPU model as `/proc/cpuinfo` names it (`unknown CPU` where there is none).
    pub fn cpu_model() -> String {
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned())
    }

    /// The kernel release, as `uname -r` prints it.
    pub fn kernel_release() -> String {
        // SAFETY: `utsname` is plain data (arrays of C chars); all-zero is a valid value.
        let mut names: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `names` is a valid, writable `utsname`.
        if unsafe { libc::uname(&mut names) } != 0 {
            return "unknown".to_owned();
        }
        // SAFETY: on success `release` holds a NUL-terminated string within the array.
        let release = unsafe { std::ffi::CStr::from_ptr(names.release.as_ptr()) };
        release.to_string_lossy().into_owned()
    }
}
