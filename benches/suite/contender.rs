//! The contenders, their labels, and how a child process is started and finished for one of them.

use crate::config::EXIT_TIMEOUT;
use disruptor_mp_suite::ChildProcess;

/// Everything measured in the suite.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Contender {
    /// disruptor-mp over shared memory, busy spin, two processes.
    Ours,
    /// disruptor-mp over a memory-mapped file (`MappedFile`), busy spin, two processes.
    OursFile,
    /// disruptor-mp over shared memory with the default `WaitStrategy::Blocking`, two processes.
    OursBlocking,
    /// Two processes ping-ponging one 128-byte-aligned line each: no library can beat it.
    Floor,
    /// The upstream `disruptor` crate, two threads of one process.
    Upstream,
    /// `crossbeam-channel`, two threads of one process, busy polling.
    Crossbeam,
    /// A Unix domain stream socket between two processes.
    UnixSocket,
    /// Anonymous pipes between two processes.
    Pipe,
    /// iceoryx2 publish/subscribe between two processes: zero-copy loans, busy polling.
    Iceoryx2,
    /// A minimal hand-written single-producer single-consumer ring in one shared mapping, two processes.
    Spsc,
}

impl Contender {
    /// The name in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            Contender::Ours => "disruptor-mp shm (2 processes)",
            Contender::OursFile => "disruptor-mp file (2 processes)",
            Contender::OursBlocking => "disruptor-mp shm, Blocking (2 processes)",
            Contender::Floor => "cache-line floor (2 processes)",
            Contender::Upstream => "disruptor 4.4 (2 threads)",
            Contender::Crossbeam => "crossbeam-channel (2 threads)",
            Contender::UnixSocket => "Unix socket (2 processes)",
            Contender::Pipe => "pipe (2 processes)",
            Contender::Iceoryx2 => "iceoryx2 0.10 (2 processes)",
            Contender::Spsc => "hand-written SPSC ring (2 processes)",
        }
    }

    /// The word that names the contender in a child's role.
    pub fn tag(self) -> &'static str {
        match self {
            Contender::Ours => "ours",
            Contender::OursFile => "ours-file",
            Contender::OursBlocking => "ours-blocking",
            Contender::Floor => "floor",
            Contender::Upstream => "upstream",
            Contender::Crossbeam => "crossbeam",
            Contender::UnixSocket => "socket",
            Contender::Pipe => "pipe",
            Contender::Iceoryx2 => "iceoryx2",
            Contender::Spsc => "spsc",
        }
    }

    /// The contender a role word names.
    pub fn from_tag(tag: &str) -> Contender {
        ALL.into_iter()
            .find(|contender| contender.tag() == tag)
            .unwrap_or_else(|| panic!("unknown contender {tag:?}"))
    }
}

/// Every contender, in table order.
pub const ALL: [Contender; 10] = [
    Contender::Ours,
    Contender::OursFile,
    Contender::OursBlocking,
    Contender::Floor,
    Contender::Upstream,
    Contender::Crossbeam,
    Contender::UnixSocket,
    Contender::Pipe,
    Contender::Iceoryx2,
    Contender::Spsc,
];

/// Starts this bench binary as a child running `role` (words separated by spaces); it is killed if it
/// is still running when the handle drops.
pub fn spawn(role: &str) -> ChildProcess {
    ChildProcess::spawn_binary_role(role, &[])
        .unwrap_or_else(|e| panic!("cannot spawn child {role:?}: {e}"))
}

/// Waits (bounded) for a child to finish successfully and returns its report; panics otherwise (the
/// child has been killed by then).
pub fn finish(child: ChildProcess) -> String {
    child
        .expect_success(EXIT_TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"))
}

/// The words of a child's report, parsed as numbers.
pub fn report_numbers(report: &str) -> Vec<u64> {
    report
        .split_whitespace()
        .map(|word| {
            word.parse()
                .unwrap_or_else(|_| panic!("bad report {report:?}"))
        })
        .collect()
}

/// Fails the run unless a consumer's report says it saw all `total` events in order (`bad` is the first
/// wrong sequence plus one, 0 when none was wrong).
pub fn check_delivery(contender: Contender, seen: u64, bad: u64, total: u64) {
    assert!(
        bad == 0,
        "{}: ORDER CHECK FAILED at sequence {}",
        contender.label(),
        bad - 1
    );
    assert_eq!(
        seen,
        total,
        "{}: consumer saw {seen} of {total} events",
        contender.label()
    );
}
