//! How a blocked producer or consumer waits: [`WaitStrategy`].
//!
//! Every strategy first polls a shared word with a CPU spin hint; the strategies differ in what they do
//! once the other side has been quiet for a while. Deadlines are checked with the monotonic clock, which
//! Linux serves from the vDSO without a system call.
//!
//! # Blocking: sleeping in the kernel without losing a wake-up
//!
//! [`WaitStrategy::Blocking`], the default, spins for a while and then sleeps in the kernel on a 32-bit
//! word of the segment (Linux: a shared futex; macOS: `__ulock_wait`), using no CPU until woken. A
//! consumer sleeps until the producer publishes (or closes the ring, or evicts a consumer); a producer
//! blocked on a full ring sleeps until a consumer commits (or leaves). The side that makes progress wakes
//! the other with a system call **only when someone sleeps**: after each publish the producer loads one
//! flag from the line it has just written, after each commit a consumer loads the producer's flag; both
//! are plain loads that cost nothing while nobody sleeps, so a busy-spinning pair pays nothing for the
//! blocking machinery.
//!
//! The handshake, for a consumer (the producer's sleep for room mirrors it with the roles swapped):
//!
//! ```text
//! consumer (about to sleep)                     producer (publish)
//!   w := consumer_wake                            published := n          (release)
//!   consumers_sleeping := 1                       light fence
//!   heavy fence                                   if consumers_sleeping != 0:
//!   if published, closed, evictions unchanged:        consumers_sleeping := 0
//!       futex_wait(consumer_wake, w, bound)           consumer_wake += 1
//!                                                     futex_wake(consumer_wake, all)
//! ```
//!
//! No wake-up is lost. The two fences make a Dekker pairing: either the producer's load of
//! `consumers_sleeping` sees the consumer's flag, or the consumer's re-check sees the new `published`
//! (it cannot be that both loads miss the other side's store). In the first case the producer bumps
//! `consumer_wake` and wakes: if the bump lands before the consumer's `futex_wait`, the kernel sees the word
//! differ from `w` and does not put it to sleep; if after, the consumer is already queued and is woken. In
//! the second case the consumer does not sleep. Clearing the flag by swap means one wake-up per sleep, not
//! one per publish, and is safe: a consumer that sets it again after the swap re-checks after its own fence.
//!
//! The *light* fence costs the hot path nothing on Linux: every process using a ring registers for
//! `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, and the *heavy* fence of the side going to sleep (which
//! is about to make a system call anyway) is that `membarrier`, which makes every thread of every
//! registered process execute a full barrier; the light fence is then only a compiler fence. Where
//! `membarrier` is unavailable (kernels before 4.16, seccomp policies that forbid it) the light fence is a
//! full fence; where the sleeping side cannot issue it, it bounds its sleep to
//! [`UNORDERED_SLEEP_BOUND`] so that a missed wake-up costs at most that. macOS has no `membarrier`: both
//! fences are full fences, one `dmb`/`mfence` per publish and per commit.
//!
//! A pipeline stage (see [`after`](crate::ConsumerBuilder::after)) that waits for its upstream stages
//! rather than for the producer sleeps the producer's way: it raises its own bit in the producer's sleeper
//! word and sleeps on a futex word of its own, and the consumer whose commit it waits for wakes it (and the
//! producer, if its bit is raised too) with the same one load after each commit.
//!
//! Every sleep is also bounded by the endpoint's liveness interval, so that a sleeping consumer notices a
//! dead producer, and a sleeping producer a dead consumer, within that bound, and by the wait's deadline.

use crate::backend::wake::{self, FencePair};
use crate::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How a blocked endpoint waits for the other side.
///
/// The names follow the Disruptor's wait strategies (upstream's `BusySpin`, LMAX's `BlockingWaitStrategy`,
/// `YieldingWaitStrategy` and `SleepingWaitStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Poll continuously with a spin-loop hint: the lowest latency, and one busy core per waiting endpoint.
    /// Use it only with a core per endpoint, when latency is all that matters (the benchmarks use it).
    BusySpin,
    /// Poll `spins` times, then yield the core `yields` times (so that on a machine with more busy
    /// processes than cores the one that will make progress gets to run), then sleep in the kernel until
    /// the other side wakes this endpoint: no CPU while idle, and a wake-up costs the other side one system
    /// call only while this side sleeps (see the [module docs](self)). Events that follow each other
    /// closer than the spins and yields take never pay for a sleep or a wake-up. The default is
    /// [`WaitStrategy::DEFAULT_BLOCKING`].
    Blocking {
        /// Empty polls before the first yield.
        spins: u32,
        /// Yields of the core after the spins, before the first sleep.
        yields: u32,
    },
    /// Poll `spins` times, then yield the core to the scheduler between polls: near-spin latency when the
    /// other side is quick, but a whole core while idle.
    SpinThenYield {
        /// Empty polls before the first yield.
        spins: u32,
    },
    /// Poll `spins` times, then sleep `sleep` between polls: little CPU, at the cost of up to `sleep`
    /// (plus timer slack) of added latency.
    SpinThenSleep {
        /// Empty polls before the first sleep.
        spins: u32,
        /// Sleep between later polls.
        sleep: Duration,
    },
}

impl WaitStrategy {
    /// The default strategy: [`Blocking`](WaitStrategy::Blocking) with 256 spins, then 64 yields, then a
    /// sleep. How long the spins take depends on the CPU's spin-loop hint (`pause` costs from a few to over
    /// a hundred cycles): about 13 µs on the AMD EPYC the benchmarks ran on; the yields add about as much
    /// on an idle machine, and give the core away on a busy one. An idle endpoint is asleep after that.
    ///
    /// (With 10,000 spins and no yields, the demo's producer and three consumers on two cores published
    /// 4.4 M events/s instead of 34 M: each waiting process kept a core the others needed.)
    pub const DEFAULT_BLOCKING: WaitStrategy = WaitStrategy::Blocking {
        spins: 256,
        yields: 64,
    };
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::DEFAULT_BLOCKING
    }
}

/// Longest sleep of a blocked endpoint whose sleep/wake pairing is not guaranteed (its `membarrier` call
/// failed; see the module docs): a wake-up it misses costs at most this.
pub const UNORDERED_SLEEP_BOUND: Duration = Duration::from_millis(1);

/// The flag bit of a sleeper word that only one kind of sleeper uses.
pub(crate) const SLEEPING: u32 = 1;

/// The sleeper's half of the handshake in the [module docs](self), up to its re-check: reads the futex
/// `word`, raises `bit` in `flag` and issues the heavy fence. The caller then re-checks its condition and,
/// if nothing changed, calls [`SleepTicket::sleep`].
pub(crate) fn announce_sleep(
    flag: &AtomicU32,
    bit: u32,
    word: &AtomicU32,
    fences: FencePair,
) -> SleepTicket {
    let expected = word.load(Ordering::Acquire);
    flag.fetch_or(bit, Ordering::SeqCst);
    let ordered = fences.heavy();
    SleepTicket { expected, ordered }
}

/// A sleep announced by [`announce_sleep`].
#[must_use = "a ticket does nothing until sleep() is called"]
pub(crate) struct SleepTicket {
    expected: u32,
    ordered: bool,
}

impl SleepTicket {
    /// Sleeps on `word` until a waker bumps it, or `bound` passes; at most [`UNORDERED_SLEEP_BOUND`] when
    /// the fence could not guarantee the pairing.
    pub(crate) fn sleep(self, word: &AtomicU32, bound: Duration) {
        let bound = if self.ordered {
            bound
        } else {
            bound.min(UNORDERED_SLEEP_BOUND)
        };
        wake::wait(word, self.expected, Some(bound));
    }
}

/// The waker's half of the handshake (after its store and a fence, having seen `flag` raised): clears the
/// flag and, for each `(bit, word)` whose bit was raised, bumps the futex `word` and wakes its sleepers;
/// returns whether it woke anyone (whether the flag was still raised). Clearing by swap makes it one
/// wake-up per sleep, not one per publish or commit.
pub(crate) fn wake_sleepers(flag: &AtomicU32, words: &[(u32, &AtomicU32)]) -> bool {
    // Acquire: a sleeper that raised its bit read its word before; that read cannot see the bump below,
    // so its futex wait either sees the word differ or is queued before the wake.
    let raised = flag.swap(0, Ordering::AcqRel);
    for &(bit, word) in words {
        if raised & bit != 0 {
            word.fetch_add(1, Ordering::Release);
            wake::wake_all(word);
        }
    }
    raised != 0
}

/// One wait in progress: counts idle polls and enforces an optional deadline.
#[derive(Debug)]
pub(crate) struct Waiter {
    strategy: WaitStrategy,
    /// Empty polls so far. 64 bits, so that it never saturates: a saturated count would stop the periodic
    /// deadline check below (2^32 polls of a busy spin are only a couple of minutes).
    idle_polls: u64,
    deadline: Option<Instant>,
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
        }
    }

    /// Whether the waiter is still in its spinning phase (its next pause neither yields nor sleeps).
    pub(crate) fn is_spinning(&self) -> bool {
        self.idle_polls < self.spins()
    }

    fn spins(&self) -> u64 {
        match self.strategy {
            WaitStrategy::BusySpin => u64::MAX,
            WaitStrategy::Blocking { spins, .. }
            | WaitStrategy::SpinThenYield { spins }
            | WaitStrategy::SpinThenSleep { spins, .. } => spins.into(),
        }
    }

    /// Called after an empty poll of a wait that has no word to sleep on: pauses according to the strategy.
    /// [`Blocking`](WaitStrategy::Blocking) sleeps [`UNORDERED_SLEEP_BOUND`] at a time here. Returns `false`
    /// once the deadline has passed (the caller should poll one last time, then give up).
    pub(crate) fn pause(&mut self) -> bool {
        self.pause_or_sleep(UNORDERED_SLEEP_BOUND, std::thread::sleep)
    }

    /// Called after an empty poll: pauses according to the strategy. Once a
    /// [`Blocking`](WaitStrategy::Blocking) waiter has spun, it calls `sleep` with how long it may sleep at
    /// most: `max_sleep`, cut at the deadline; `sleep` does the handshake of the [module docs](self) and
    /// returns when woken or at that bound. Returns `false` once the deadline has passed (the caller
    /// should poll one last time, then give up). No pause runs past the deadline.
    pub(crate) fn pause_or_sleep(
        &mut self,
        max_sleep: Duration,
        sleep: impl FnOnce(Duration),
    ) -> bool {
        self.idle_polls += 1;
        if self.idle_polls <= self.spins() {
            std::hint::spin_loop();
            if self.idle_polls % DEADLINE_CHECK_EVERY != 0 {
                return true;
            }
        } else {
            let until_deadline = || {
                self.deadline
                    .map(|deadline| deadline.saturating_duration_since(Instant::now()))
            };
            match self.strategy {
                WaitStrategy::Blocking { yields, .. }
                    if self.idle_polls <= self.spins() + u64::from(yields) =>
                {
                    std::thread::yield_now()
                }
                WaitStrategy::Blocking { .. } => {
                    let bound = until_deadline().map_or(max_sleep, |left| left.min(max_sleep));
                    if !bound.is_zero() {
                        sleep(bound);
                    }
                }
                WaitStrategy::SpinThenSleep { sleep: pause, .. } => {
                    std::thread::sleep(until_deadline().map_or(pause, |left| left.min(pause)));
                }
                WaitStrategy::BusySpin | WaitStrategy::SpinThenYield { .. } => {
                    std::thread::yield_now()
                }
            }
        }
        self.deadline
            .is_none_or(|deadline| Instant::now() < deadline)
    }
}

/// Paces a periodic check (a liveness check, say) over a caller's own poll loop, without reading the
/// clock on every poll: an empty poll of a spinning consumer must stay a few loads.
///
/// It reads the clock once every `polls_per_clock` calls and adapts that count so that the clock is read
/// about [`CLOCK_READS_PER_INTERVAL`] times per interval: a loop that spins reads it rarely, a loop that
/// polls once a second reads it every time. So the check comes due at most about one interval (plus one
/// poll) late, whatever the poll rate.
#[derive(Debug)]
pub(crate) struct PollPacer {
    every: Duration,
    countdown: u32,
    polls_per_clock: u32,
    /// The countdown's value when it was last reloaded: `block - countdown` polls of it are done.
    block: u32,
    /// Polls of the blocks completed so far.
    counted: u64,
    last_clock: Option<Instant>,
    next_check: Option<Instant>,
}

/// How many times per interval a [`PollPacer`] aims to read the clock.
const CLOCK_READS_PER_INTERVAL: u32 = 16;
/// Most polls between two clock reads. Small enough that a loop that suddenly polls slowly (a burst of
/// spinning, then one poll a millisecond) reaches its next clock read soon; large enough that a spinning
/// loop reads the clock once every tens of microseconds, which costs nothing measurable.
const MAX_POLLS_PER_CLOCK: u32 = 1 << 10;

impl PollPacer {
    /// How often the check comes due.
    pub(crate) fn interval(&self) -> Duration {
        self.every
    }

    /// A pacer whose check comes due every `every`, first at the first poll.
    pub(crate) fn new(every: Duration) -> PollPacer {
        PollPacer {
            every,
            countdown: 1,
            polls_per_clock: 1,
            block: 1,
            counted: 0,
            last_clock: None,
            next_check: None,
        }
    }

    /// Called on each poll; `true` when the check is due.
    #[inline(always)]
    pub(crate) fn poll(&mut self) -> bool {
        self.countdown -= 1;
        self.countdown == 0 && self.read_clock()
    }

    /// Called on each poll of a blocked wait: counts down while `waiter` spins, and reads the clock on
    /// every poll once it yields or sleeps (such a poll costs a system call anyway), so the check stays on
    /// time however slowly those polls come.
    #[inline(always)]
    pub(crate) fn poll_waiting(&mut self, waiter: &Waiter) -> bool {
        if !waiter.is_spinning() {
            self.counted += u64::from(self.block - self.countdown);
            self.block = 1;
            self.countdown = 1;
        }
        self.poll()
    }

    /// How many times [`poll`](Self::poll) (or [`poll_waiting`](Self::poll_waiting)) was called: the count
    /// comes from the countdown, so the polls themselves stay one decrement.
    pub(crate) fn polls(&self) -> u64 {
        self.counted + u64::from(self.block - self.countdown)
    }

    #[cold]
    fn read_clock(&mut self) -> bool {
        let now = Instant::now();
        if let Some(last) = self.last_clock {
            let target = self.every / CLOCK_READS_PER_INTERVAL;
            let gap = now.saturating_duration_since(last);
            if gap < target / 2 {
                self.polls_per_clock = (self.polls_per_clock * 2).min(MAX_POLLS_PER_CLOCK);
            } else if gap > target * 2 {
                self.polls_per_clock = (self.polls_per_clock / 2).max(1);
            }
        }
        self.last_clock = Some(now);
        self.counted += u64::from(self.block);
        self.countdown = self.polls_per_clock;
        self.block = self.polls_per_clock;
        match self.next_check {
            Some(next) if now < next => false,
            _ => {
                self.next_check = Some(now + self.every);
                true
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
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
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_poll_pacer_checks_at_once_then_about_once_per_interval_at_any_poll_rate() {
        let every = Duration::from_millis(20);
        for pause in [Duration::ZERO, Duration::from_millis(3)] {
            let mut pacer = PollPacer::new(every);
            assert!(pacer.poll(), "the first poll checks");
            let start = Instant::now();
            let mut checks = 0;
            while start.elapsed() < every * 10 {
                checks += usize::from(pacer.poll());
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            // About one check per interval: never more, and not many fewer.
            assert!(
                (3..=11).contains(&checks),
                "{checks} checks with pause {pause:?}"
            );
        }
    }

    #[test]
    fn a_poll_pacer_stays_on_time_when_a_wait_turns_from_spinning_to_sleeping() {
        let every = Duration::from_millis(20);
        let mut pacer = PollPacer::new(every);
        // A long fast phase lets the pacer read the clock only every many polls...
        let start = Instant::now();
        while start.elapsed() < every * 2 {
            pacer.poll();
        }
        // ...then polls come a millisecond apart: still about one check per interval.
        let mut waiter = Waiter::new(
            WaitStrategy::SpinThenSleep {
                spins: 0,
                sleep: Duration::from_millis(1),
            },
            None,
        );
        let slow = Instant::now();
        let mut checks = 0;
        while slow.elapsed() < every * 4 {
            waiter.pause();
            checks += usize::from(pacer.poll_waiting(&waiter));
        }
        assert!(checks >= 2, "{checks} checks in {:?}", slow.elapsed());
    }

    #[test]
    fn a_poll_pacer_counts_every_poll_without_a_store_per_poll() {
        let mut pacer = PollPacer::new(Duration::from_millis(1));
        // Spins a few polls, then yields: `poll_waiting` sees both phases.
        let mut waiter = Waiter::new(WaitStrategy::SpinThenYield { spins: 16 }, None);
        for polls in 1..=100_000u64 {
            if polls % 3 == 0 {
                waiter.pause();
                pacer.poll_waiting(&waiter);
            } else {
                pacer.poll();
            }
            if polls % 9_973 == 0 {
                assert_eq!(pacer.polls(), polls);
            }
        }
        assert_eq!(pacer.polls(), 100_000);
    }

    #[test]
    fn waiter_without_deadline_keeps_going() {
        let mut waiter = Waiter::new(WaitStrategy::SpinThenYield { spins: 256 }, None);
        assert!((0..10_000).all(|_| waiter.pause()));
    }
}
