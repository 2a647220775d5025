//! Support shared by the examples and cross-process tests of disruptor-mp (not published).
//!
//! Cross-process tests re-execute their own test binary with a *role* in the environment: the child runs
//! the test named [`CHILD_ENTRY`] (which dispatches on the role and exits) instead of the suite. Every wait
//! on a child is bounded, and a child still running when its handle drops is killed, so a bug fails a test
//! instead of hanging CI.

use std::io::{self, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
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
