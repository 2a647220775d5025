//! Support shared by the `ping_pong` and `throughput` benchmarks: quick mode, child processes, CPU
//! pinning, the machine line, bounded spin waits, the benchmark event types and latency reports.
//!
//! Every wait here is bounded: a bug on either side makes the benchmark fail with a message instead of
//! spinning forever, and a child process never outlives the parent's interest in it.

// Each bench binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use disruptor_mp::{MappedFile, SharedMemory, WaitStrategy};
use disruptor_mp_suite::{TestBackend, TestRing};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Environment variable that turns a bench binary into a child with the given role.
pub const ROLE_ENV: &str = "DMP_BENCH_ROLE";
/// Environment variable selecting quick mode (`1`): about ten times fewer iterations.
pub const QUICK_ENV: &str = "DMP_BENCH_QUICK";
/// Environment variable that disables CPU pinning (`1`).
pub const NO_PIN_ENV: &str = "DMP_BENCH_NO_PIN";

/// How long any side may go without progress before the benchmark is declared broken.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long setting up a pair (attach, wait for the peer) may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most one measured run may take before the watchdog aborts the benchmark (a run normally takes a
/// few seconds).
pub const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long a child may take to exit once its work is done.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether quick mode (`DMP_BENCH_QUICK=1`) is on.
pub fn quick() -> bool {
    std::env::var(QUICK_ENV).is_ok_and(|v| v == "1")
}

/// `full` iterations, or a tenth of them in quick mode, rounded down to a multiple of `multiple` (at
/// least one multiple).
pub fn iterations(full: u64, multiple: u64) -> u64 {
    let n = if quick() { full / 10 } else { full };
    (n / multiple).max(1) * multiple
}

// ---------------------------------------------------------------------------------------------------
// Backends and wait strategies
// ---------------------------------------------------------------------------------------------------

/// A fresh ring for backend `B` (a shared-memory name, or a file in a private directory under
/// `std::env::temp_dir()`), removed when the returned [`TestRing`] drops. Its id travels in a child's role
/// string, so it must not contain whitespace.
pub fn new_ring<B: TestBackend>(label: &str) -> TestRing {
    let ring = B::new_ring(&format!("bench-{label}"));
    assert!(
        !ring.id().contains(char::is_whitespace),
        "ring id {:?} contains whitespace; set TMPDIR to a directory without spaces",
        ring.id()
    );
    ring
}

/// Runs `shm` or `file` according to a backend's [`TestBackend::KIND`], as passed in a child's role.
pub fn on_backend<R>(kind: &str, shm: impl FnOnce() -> R, file: impl FnOnce() -> R) -> R {
    match kind {
        k if k == <SharedMemory as TestBackend>::KIND => shm(),
        k if k == <MappedFile as TestBackend>::KIND => file(),
        other => panic!("unknown backend {other:?}"),
    }
}

/// A wait strategy as a word of a child's role string: `busy` or `block:SPINS:YIELDS`.
pub fn strategy_arg(strategy: WaitStrategy) -> String {
    match strategy {
        WaitStrategy::BusySpin => "busy".to_owned(),
        WaitStrategy::Blocking { spins, yields } => format!("block:{spins}:{yields}"),
        other => panic!("the benchmarks do not use {other:?}"),
    }
}

/// Parses [`strategy_arg`].
pub fn parse_strategy(arg: &str) -> WaitStrategy {
    match arg.split_once(':') {
        None if arg == "busy" => WaitStrategy::BusySpin,
        Some(("block", counts)) => {
            let (spins, yields) = counts.split_once(':').expect("block:SPINS:YIELDS");
            WaitStrategy::Blocking {
                spins: spins.parse().expect("spin count"),
                yields: yields.parse().expect("yield count"),
            }
        }
        _ => panic!("unknown wait strategy {arg:?}"),
    }
}

/// Short label of a strategy: `BusySpin`, `Blocking { spins: 100, yields: 0 }`.
pub fn strategy_label(strategy: WaitStrategy) -> String {
    format!("{strategy:?}")
}

/// What kind of file system `path` is on, for the output: the ring files of the file backend live in
/// `std::env::temp_dir()`, which may be a tmpfs (memory) or a disk file system (whose background
/// write-back can add latency spikes).
#[cfg(target_os = "linux")]
pub fn file_system_of(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return "unknown file system".to_owned();
    };
    // SAFETY: `statfs` is plain data; all-zero is a valid value to be overwritten.
    let mut info: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated path and `info` a valid, writable `statfs`.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut info) } != 0 {
        return "unknown file system".to_owned();
    }
    #[allow(clippy::unnecessary_cast)] // `f_type`'s integer type differs between C libraries.
    let magic = info.f_type as u64;
    let kind = match magic {
        0x0102_1994 => "tmpfs: memory, no disk write-back",
        0x8584_58f6 => "ramfs: memory, no disk write-back",
        0xef53 => "ext2/3/4: disk file system",
        0x5846_5342 => "xfs: disk file system",
        0x9123_683e => "btrfs: disk file system",
        0x2fc1_2fc1 => "zfs: disk file system",
        0x794c_7630 => "overlayfs: backed by its upper layer's file system",
        _ => "not tmpfs: probably a disk file system",
    };
    format!("{kind}, f_type {magic:#x}")
}

/// What kind of file system `path` is on (only checked on Linux).
#[cfg(not(target_os = "linux"))]
pub fn file_system_of(_path: &std::path::Path) -> String {
    "file system type not checked on this platform".to_owned()
}

/// Where the file backend's rings live, and on what kind of file system: one line for the output.
pub fn ring_files_line() -> String {
    let dir = std::env::temp_dir();
    format!(
        "file backend: rings in private directories under {} ({})",
        dir.display(),
        file_system_of(&dir)
    )
}

// ---------------------------------------------------------------------------------------------------
// Sleeps: voluntary context switches (Linux)
// ---------------------------------------------------------------------------------------------------

/// The calling thread, as a task path under `/proc` (`PID/task/TID`); `None` where there is no `/proc`.
pub fn current_task() -> Option<String> {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .map(|path| path.display().to_string())
}

/// The main thread of process `pid`, as a task path under `/proc`.
pub fn main_task_of(pid: u32) -> Option<String> {
    Some(format!("{pid}/task/{pid}"))
}

/// How many times `task` has given up its CPU voluntarily (slept: in a futex, a blocking read, a
/// `nanosleep`), from `/proc/TASK/status`; `None` where that is not available.
pub fn voluntary_switches(task: Option<&str>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", task?)).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
}

// ---------------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------------

/// The role this process was started with, when it is a benchmark child.
pub fn child_role() -> Option<Vec<String>> {
    std::env::var(ROLE_ENV)
        .ok()
        .map(|role| role.split_whitespace().map(str::to_owned).collect())
}

/// A child process running this same bench binary with a role; killed (and reaped) when dropped before
/// it has been waited for, so a failing or panicking parent never leaves it behind. The rings the child
/// creates are named by the parent's [`TestRing`]s, which remove them when they drop (after the guard,
/// when declared before it), in case a killed child could not.
pub struct ChildGuard {
    child: Option<Child>,
    role: String,
}

impl ChildGuard {
    /// Re-executes the current binary with `ROLE_ENV=role` (words separated by spaces).
    pub fn spawn(role: &str) -> ChildGuard {
        let exe = std::env::current_exe().expect("cannot locate the bench executable");
        let child = Command::new(exe)
            .env(ROLE_ENV, role)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn child {role:?}: {e}"));
        ChildGuard {
            child: Some(child),
            role: role.to_owned(),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits at most `timeout` for the child to exit; panics unless it exited successfully (a child
    /// still running at the deadline is killed first).
    pub fn wait_success(mut self, timeout: Duration) {
        let mut child = self.child.take().expect("child already reaped");
        let deadline = Instant::now() + timeout;
        let status: ExitStatus = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("child {:?} did not exit within {timeout:?}", self.role);
                }
                Err(e) => panic!("waiting for child {:?}: {e}", self.role),
            }
        };
        assert!(
            status.success(),
            "child {:?} failed: {status} (its stderr is above)",
            self.role
        );
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Bounds a step that may block without a timeout of its own (a blocking `publish` whose consumer died):
/// if the guard is not dropped within `limit`, a watcher thread removes `rings` (which the exit would
/// otherwise leave behind), reports and exits the process with status 3. Children notice the exit through [`Spin::in_child`] and exit too. The
/// watcher sleeps in a single timed wait, so it never disturbs a measurement.
pub struct Watchdog {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Arms a watchdog for `what`.
    pub fn arm(what: &str, limit: Duration, rings: &[&TestRing]) -> Watchdog {
        let (done, wait) = mpsc::channel::<()>();
        let what = what.to_owned();
        let paths: Vec<PathBuf> = rings.iter().map(|ring| ring.path()).collect();
        let thread = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                eprintln!(
                    "watchdog: {what} did not finish within {limit:?}; aborting the benchmark"
                );
                for path in &paths {
                    remove_ring_file(path);
                }
                std::process::exit(3);
            }
        });
        Watchdog {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Removes a ring's file (`/dev/shm/NAME` for shared memory on Linux) and, for the file backend, its
/// private directory once empty; a missing one is fine. For a process about to exit without running the
/// [`TestRing`]s' destructors.
fn remove_ring_file(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path
        .parent()
        .filter(|dir| *dir != std::path::Path::new("/dev/shm"))
    {
        let _ = std::fs::remove_dir(dir); // only succeeds when empty
    }
}

// ---------------------------------------------------------------------------------------------------
// Bounded spinning
// ---------------------------------------------------------------------------------------------------

/// Empty polls between two clock checks: keeps the clock off the hot path.
const CHECK_EVERY: u32 = 1 << 16;

/// Counts consecutive empty polls of a spin loop and panics once no progress has been made for
/// [`IDLE_TIMEOUT`] (or, in a child, once its parent has died). The clock is read only every
/// [`CHECK_EVERY`] empty polls, never while events flow.
pub struct Spin {
    what: &'static str,
    empty: u32,
    idle_since: Option<Instant>,
    parent: Option<u32>,
}

impl Spin {
    /// A spin budget for waiting on `what`.
    pub fn new(what: &'static str) -> Spin {
        Spin {
            what,
            empty: 0,
            idle_since: None,
            parent: None,
        }
    }

    /// A spin budget that also gives up when the process that started this child exits.
    pub fn in_child(what: &'static str) -> Spin {
        Spin {
            parent: Some(std::os::unix::process::parent_id()),
            ..Spin::new(what)
        }
    }

    /// Records an empty poll.
    #[inline(always)]
    pub fn idle(&mut self) {
        self.empty = self.empty.wrapping_add(1);
        if self.empty % CHECK_EVERY == 0 {
            self.check();
        }
        std::hint::spin_loop();
    }

    /// Records progress: the idle clock starts again.
    #[inline(always)]
    pub fn progress(&mut self) {
        self.empty = 0;
        self.idle_since = None;
    }

    #[cold]
    #[inline(never)]
    fn check(&mut self) {
        let now = Instant::now();
        let since = *self.idle_since.get_or_insert(now);
        if now.duration_since(since) > IDLE_TIMEOUT {
            panic!(
                "no progress for {IDLE_TIMEOUT:?} while waiting for {}",
                self.what
            );
        }
        if let Some(parent) = self.parent {
            if std::os::unix::process::parent_id() != parent {
                panic!("parent process exited while waiting for {}", self.what);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// CPU pinning and the machine line
// ---------------------------------------------------------------------------------------------------

pub use affinity::{allowed_cpus, pin_current_thread};

/// Thread-to-CPU binding through the Linux affinity calls.
#[cfg(target_os = "linux")]
mod affinity {
    /// The CPUs this process may run on (its affinity mask), in increasing order.
    pub fn allowed_cpus() -> Vec<usize> {
        // SAFETY: `cpu_set_t` is a plain bit array; all-zero is a valid (empty) set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable `cpu_set_t` of the size passed; pid 0 means this thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
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

/// macOS cannot bind a thread to a CPU: its only affinity call (`thread_policy_set` with affinity tags)
/// groups threads as a hint, and Apple silicon ignores it. Benchmarks run unpinned there and say so in
/// their machine line.
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

/// Where the two sides of every pair run: `main` for the measuring side (this thread), `peer` for the
/// other thread or process. `None` when pinning is off or fewer than two CPUs are available.
#[derive(Clone, Copy, Debug)]
pub struct Pinning {
    pub main: usize,
    pub peer: usize,
}

/// Chooses two CPUs (the first two this process may use, CPU 0 and CPU 1 on the reference machine) and
/// pins the calling thread to the first. `None`: not pinned.
pub fn pin_main_thread() -> Option<Pinning> {
    if std::env::var(NO_PIN_ENV).is_ok_and(|v| v == "1") {
        return None;
    }
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        return None;
    }
    let pinning = Pinning {
        main: cpus[0],
        peer: cpus[1],
    };
    pin_current_thread(pinning.main).then_some(pinning)
}

/// Pins the calling (peer) thread to the peer CPU of `pinning`, if any; panics if the kernel refuses.
pub fn pin_peer(pinning: Option<Pinning>) {
    if let Some(p) = pinning {
        assert!(pin_current_thread(p.peer), "cannot pin to CPU {}", p.peer);
    }
}

/// Peer CPU of a child, passed in its role string (`-` when not pinned).
pub fn peer_cpu_arg(pinning: Option<Pinning>) -> String {
    pinning.map_or_else(|| "-".to_owned(), |p| p.peer.to_string())
}

/// Pins a child to the CPU given by [`peer_cpu_arg`].
pub fn pin_child(arg: &str) {
    if let Ok(cpu) = arg.parse::<usize>() {
        assert!(pin_current_thread(cpu), "cannot pin child to CPU {cpu}");
    }
}

fn logical_cpus() -> i64 {
    // SAFETY: sysconf only reads a system value; any name is accepted and -1 reports an error.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().unwrap_or("").trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// One line describing the machine and the run: CPU model, logical CPUs, kernel, clock source, pinning
/// and mode.
pub fn machine_line(pinning: Option<Pinning>) -> String {
    let mut line = format!(
        "machine: {} | {} logical CPUs | kernel {} | clocksource {} | ",
        cpu_model(),
        logical_cpus(),
        first_line("/proc/sys/kernel/osrelease"),
        first_line("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
    );
    match pinning {
        Some(p) => {
            let _ = write!(line, "pinned: yes (CPU {} / CPU {})", p.main, p.peer);
        }
        None => line.push_str("pinned: no"),
    }
    line.push_str(if quick() {
        " | mode: quick (DMP_BENCH_QUICK=1)"
    } else {
        " | mode: full"
    });
    line
}

// ---------------------------------------------------------------------------------------------------
// Benchmark events
// ---------------------------------------------------------------------------------------------------

/// An event carried by every contender: it encodes its own sequence so that consumers can verify order,
/// and a checksum over all its words so that they must read all of it.
pub trait BenchEvent: disruptor_mp::RingEvent + Default + std::fmt::Debug {
    /// Short label, e.g. `8-byte`.
    const LABEL: &'static str;
    /// Type tag used in child role strings.
    const TAG: &'static str;

    /// Writes the event for sequence `seq` in place.
    fn fill(&mut self, seq: u64);
    /// The event for sequence `seq`.
    #[inline(always)]
    fn for_seq(seq: u64) -> Self {
        let mut e = Self::default();
        e.fill(seq);
        e
    }
    /// The sequence the event carries.
    fn seq(&self) -> u64;
    /// Wrapping sum of the event's words.
    fn checksum(&self) -> u64;
    /// Wrapping sum of `checksum()` over the events for sequences `first..first + count`.
    fn expected_checksum(first: u64, count: u64) -> u64;
}

/// Wrapping sum of `first..first + count`.
pub fn sum_of_range(first: u64, count: u64) -> u64 {
    let (first, count) = (u128::from(first), u128::from(count));
    let total = count * first + count * count.saturating_sub(1) / 2;
    total as u64
}

impl BenchEvent for u64 {
    const LABEL: &'static str = "8-byte";
    const TAG: &'static str = "u64";

    #[inline(always)]
    fn fill(&mut self, seq: u64) {
        *self = seq;
    }
    #[inline(always)]
    fn seq(&self) -> u64 {
        *self
    }
    #[inline(always)]
    fn checksum(&self) -> u64 {
        *self
    }
    fn expected_checksum(first: u64, count: u64) -> u64 {
        sum_of_range(first, count)
    }
}

/// The 64-byte event: word `i` holds `seq + i`.
pub type Event64 = [u64; 8];

impl BenchEvent for Event64 {
    const LABEL: &'static str = "64-byte";
    const TAG: &'static str = "u64x8";

    #[inline(always)]
    fn fill(&mut self, seq: u64) {
        for (i, word) in self.iter_mut().enumerate() {
            *word = seq.wrapping_add(i as u64);
        }
    }
    #[inline(always)]
    fn seq(&self) -> u64 {
        self[0]
    }
    #[inline(always)]
    fn checksum(&self) -> u64 {
        self.iter().fold(0u64, |acc, w| acc.wrapping_add(*w))
    }
    fn expected_checksum(first: u64, count: u64) -> u64 {
        // Σ_s Σ_i (s + i) = 8·Σ s + count·(0 + 1 + … + 7).
        sum_of_range(first, count)
            .wrapping_mul(8)
            .wrapping_add(count.wrapping_mul(28))
    }
}

// ---------------------------------------------------------------------------------------------------
// Latency reports
// ---------------------------------------------------------------------------------------------------

/// A histogram for nanosecond latencies from 1 ns to 60 s at three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Records the nanoseconds elapsed since `start`.
#[inline(always)]
pub fn record_since(hist: &mut Histogram<u64>, start: Instant) {
    let ns = start.elapsed().as_nanos() as u64;
    hist.saturating_record(ns.max(1));
}

/// The header of a latency table; [`latency_row`] lines follow it.
pub fn latency_header() -> String {
    format!(
        "  {:<46} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "contender", "samples", "p50 ns", "p99 ns", "p99.9 ns", "max ns"
    )
}

/// One line of a latency table: p50, p99, p99.9 and max in nanoseconds.
pub fn latency_row(label: &str, hist: &Histogram<u64>) -> String {
    format!(
        "  {:<46} {:>9} {:>9} {:>9} {:>9} {:>9}",
        label,
        hist.len(),
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max()
    )
}

/// The median of `hist` in nanoseconds.
pub fn p50(hist: &Histogram<u64>) -> u64 {
    hist.value_at_quantile(0.50)
}

/// `a / b` as a ratio for printing.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        f64::NAN
    } else {
        a / b
    }
}
