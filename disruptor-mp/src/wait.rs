//! How a blocked producer or consumer waits: [`WaitStrategy`].
//!
//! Waiting never makes a system call on the fast path: a waiter polls a shared word, with a CPU spin hint,
//! and (depending on the strategy) yields its core or sleeps after a number of empty polls. Deadlines are
//! checked with the monotonic clock, which Linux serves from the vDSO without a system call.

use std::time::{Duration, Instant};

/// How a blocked endpoint waits for the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Poll continuously with a spin-loop hint: the lowest latency, and one busy core per waiting endpoint.
    /// Use it only with a core per endpoint.
    BusySpin,
    /// Poll `spins` times, then yield the core to the scheduler between polls. The default: near-spin
    /// latency when the other side is quick, and fair when endpoints outnumber cores.
    SpinThenYield {
        /// Empty polls before the first yield.
        spins: u32,
    },
    /// Poll `spins` times, then sleep `sleep` between polls: the least CPU, at the cost of up to `sleep`
    /// (plus timer slack) of added latency.
    SpinThenSleep {
        /// Empty polls before the first sleep.
        spins: u32,
        /// Sleep between later polls.
        sleep: Duration,
    },
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenYield { spins: 256 }
    }
}

/// One wait in progress: counts idle polls and enforces an optional deadline.
#[derive(Debug)]
pub(crate) struct Waiter {
    strategy: WaitStrategy,
    /// Empty polls so far. 64 bits, so that it never saturates: a saturated count would stop the periodic
    /// deadline check below (2^32 polls of a busy spin are only a couple of minutes).
    idle_polls: u64,
    deadline: Option<Instant>,
    periodic: Option<Periodic>,
}

/// A check the waiter's owner runs every `every` while waiting (a liveness check, say), timed with the
/// clock reads the waiter makes anyway.
#[derive(Debug)]
struct Periodic {
    every: Duration,
    next: Option<Instant>,
    due: bool,
}

/// The instant `timeout` from now (`None` stays `None`; a timeout too large to represent never expires).
pub(crate) fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Idle polls between two deadline checks while still spinning.
const DEADLINE_CHECK_EVERY: u64 = 64;

impl Waiter {
    /// A waiter that gives up after `timeout` (`None`: never).
    pub(crate) fn new(strategy: WaitStrategy, timeout: Option<Duration>) -> Waiter {
        Waiter::until(strategy, deadline_after(timeout))
    }

    /// A waiter that gives up at `deadline` (`None`: never).
    pub(crate) fn until(strategy: WaitStrategy, deadline: Option<Instant>) -> Waiter {
        Waiter {
            strategy,
            idle_polls: 0,
            deadline,
            periodic: None,
        }
    }

    /// Makes [`check_due`](Self::check_due) answer `true` about every `every` of waiting (first after
    /// `every`, not at once: a wait that ends quickly costs nothing more).
    pub(crate) fn with_periodic_check(mut self, every: Duration) -> Waiter {
        self.periodic = Some(Periodic {
            every,
            next: None,
            due: false,
        });
        self
    }

    /// Whether the periodic check is due (see [`with_periodic_check`](Self::with_periodic_check)); reading
    /// it resets it.
    pub(crate) fn check_due(&mut self) -> bool {
        self.periodic
            .as_mut()
            .is_some_and(|periodic| std::mem::take(&mut periodic.due))
    }

    /// Called after an empty poll: pauses according to the strategy. Returns `false` once the deadline
    /// has passed (the caller should poll one last time, then give up). A sleep never runs past the
    /// deadline.
    pub(crate) fn pause(&mut self) -> bool {
        self.idle_polls += 1;
        let spins = match self.strategy {
            WaitStrategy::BusySpin => u64::MAX,
            WaitStrategy::SpinThenYield { spins } | WaitStrategy::SpinThenSleep { spins, .. } => {
                spins.into()
            }
        };
        if self.idle_polls <= spins {
            std::hint::spin_loop();
            if self.idle_polls % DEADLINE_CHECK_EVERY != 0 {
                return true;
            }
        } else {
            match self.strategy {
                WaitStrategy::SpinThenSleep { sleep, .. } => {
                    let sleep = match self.deadline {
                        Some(deadline) => sleep.min(deadline.saturating_duration_since(Instant::now())),
                        None => sleep,
                    };
                    std::thread::sleep(sleep);
                }
                _ => std::thread::yield_now(),
            }
        }
        if self.deadline.is_none() && self.periodic.is_none() {
            return true;
        }
        let now = Instant::now();
        if let Some(periodic) = &mut self.periodic {
            match periodic.next {
                Some(next) if now < next => {}
                Some(_) => {
                    periodic.due = true;
                    periodic.next = Some(now + periodic.every);
                }
                None => periodic.next = Some(now + periodic.every),
            }
        }
        self.deadline.is_none_or(|deadline| now < deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiter_gives_up_after_its_deadline() {
        for strategy in [
            WaitStrategy::BusySpin,
            WaitStrategy::default(),
            WaitStrategy::SpinThenSleep {
                spins: 1,
                sleep: Duration::from_micros(50),
            },
        ] {
            let start = Instant::now();
            let mut waiter = Waiter::new(strategy, Some(Duration::from_millis(20)));
            while waiter.pause() {}
            assert!(start.elapsed() >= Duration::from_millis(20));
        }
    }

    #[test]
    fn a_busy_spin_past_four_billion_polls_still_checks_its_deadline() {
        let mut waiter = Waiter::new(WaitStrategy::BusySpin, Some(Duration::ZERO));
        // As if it had spun for minutes: a 32-bit count would be saturated here.
        waiter.idle_polls = u64::from(u32::MAX) - 1;
        let polls_until_expired = (1..=DEADLINE_CHECK_EVERY * 2).find(|_| !waiter.pause());
        assert!(polls_until_expired.is_some());
    }

    #[test]
    fn a_long_sleep_is_cut_short_at_the_deadline() {
        let strategy = WaitStrategy::SpinThenSleep {
            spins: 0,
            sleep: Duration::from_secs(30),
        };
        let start = Instant::now();
        let mut waiter = Waiter::new(strategy, Some(Duration::from_millis(20)));
        while waiter.pause() {}
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }

    #[test]
    fn a_periodic_check_comes_due_after_its_interval_and_not_before() {
        let mut waiter = Waiter::new(WaitStrategy::default(), None)
            .with_periodic_check(Duration::from_millis(20));
        let start = Instant::now();
        let mut first_due = None;
        while start.elapsed() < Duration::from_secs(5) {
            assert!(waiter.pause());
            if waiter.check_due() {
                first_due = Some(start.elapsed());
                break;
            }
        }
        let first_due = first_due.expect("the check never came due");
        assert!(first_due >= Duration::from_millis(20), "{first_due:?}");
        assert!(!waiter.check_due(), "reading it resets it");
    }

    #[test]
    fn waiter_without_deadline_keeps_going() {
        let mut waiter = Waiter::new(WaitStrategy::default(), None);
        assert!((0..10_000).all(|_| waiter.pause()));
    }
}
