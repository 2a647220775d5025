//! Run settings: quick or full mode, timeouts, and where each side of a pair runs (CPU pinning through
//! the shared `disruptor_mp_suite::machine` helpers).

use disruptor_mp_suite::machine;
use std::time::Duration;

/// Environment variable selecting quick mode (`1`): a smoke run that checks every contender and its data.
pub const QUICK_ENV: &str = "DMP_BENCH_QUICK";
/// Environment variable that disables CPU pinning (`1`).
pub const NO_PIN_ENV: &str = "DMP_BENCH_NO_PIN";

/// Environment variable naming the sections to run, separated by commas (`round-trip`, `throughput`,
/// `load`, `broadcast`, `wake-up`, `consumers`); all when unset.
pub const SECTIONS_ENV: &str = "DMP_BENCH_SECTIONS";

/// Environment variable naming the directory the results page and plots go to (default
/// `benches/results/` in full mode, a removed temporary directory in quick mode).
pub const RESULTS_DIR_ENV: &str = "DMP_BENCH_RESULTS_DIR";

/// How long any side may go without progress before the benchmark is declared broken.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long setting up a pair (attach, wait for the peer) may take.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most one measured run may take before the watchdog aborts the benchmark.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);
/// How long a child may take to finish once the parent is done with it.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether quick mode (`DMP_BENCH_QUICK=1`) is on.
pub fn quick() -> bool {
    std::env::var(QUICK_ENV).is_ok_and(|value| value == "1")
}

/// Whether `section` is to run (see [`SECTIONS_ENV`]).
pub fn section_wanted(section: &str) -> bool {
    std::env::var(SECTIONS_ENV).map_or(true, |list| list.split(',').any(|s| s.trim() == section))
}

/// `full` in full mode, `quick` in quick mode.
pub fn by_mode<T>(full: T, quick_value: T) -> T {
    if quick() {
        quick_value
    } else {
        full
    }
}

/// Rounds `count` down to a multiple of `multiple` (at least one multiple).
pub fn multiple_of(count: u64, multiple: u64) -> u64 {
    (count / multiple).max(1) * multiple
}

/// The CPUs of this run: the measuring thread runs on the first, the other sides of a pair (threads or
/// child processes) on the others, in turn. Empty when pinning is off or impossible.
#[derive(Clone, Debug)]
pub struct Pinning {
    cpus: Vec<usize>,
}

impl Pinning {
    /// Chooses the CPUs this process may use and pins the calling thread to the first of them, unless
    /// [`NO_PIN_ENV`] is set or fewer than two CPUs are available.
    pub fn pin_main_thread() -> Pinning {
        let cpus = machine::allowed_cpus();
        let off = std::env::var(NO_PIN_ENV).is_ok_and(|value| value == "1");
        if off || cpus.len() < 2 || !machine::pin_current_thread(cpus[0]) {
            return Pinning { cpus: Vec::new() };
        }
        Pinning { cpus }
    }

    /// Whether threads are pinned.
    pub fn is_on(&self) -> bool {
        !self.cpus.is_empty()
    }

    /// CPUs available to the run (all online CPUs when unpinned).
    pub fn cpu_count(&self) -> usize {
        if self.is_on() {
            self.cpus.len()
        } else {
            machine::logical_cpus().max(1)
        }
    }

    /// The CPU of the `index`-th peer (thread or process), as a word for a child's role: `-` when unpinned.
    pub fn peer_arg(&self, index: usize) -> String {
        match self.cpus.len() {
            0 => "-".to_owned(),
            len => self.cpus[1 + index % (len - 1)].to_string(),
        }
    }

    /// Pins the calling thread as the `index`-th peer.
    pub fn pin_peer(&self, index: usize) {
        pin_to(&self.peer_arg(index));
    }

    /// One line for the output: which CPUs the sides use.
    pub fn describe(&self) -> String {
        match self.cpus.as_slice() {
            [] => "no".to_owned(),
            [main, peers @ ..] => format!("yes (measuring side CPU {main}, peers CPUs {peers:?})"),
        }
    }
}

/// Pins the calling thread to the CPU named by [`Pinning::peer_arg`]; panics if the kernel refuses.
pub fn pin_to(arg: &str) {
    if let Ok(cpu) = arg.parse::<usize>() {
        assert!(machine::pin_current_thread(cpu), "cannot pin to CPU {cpu}");
    }
}
