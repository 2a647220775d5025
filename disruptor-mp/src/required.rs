//! Required-consumer liveness: consumers the producer must not run without, and what it does when one
//! never appears, stalls or dies. See [`RequiredConsumerLivenessConfig`].
//!
//! # What is checked, and when
//!
//! Only a *managed* publish ([`publish_managed`](crate::SharedProducer::publish_managed),
//! [`publish_batch_managed`](crate::SharedProducer::publish_batch_managed)) checks, and only while it
//! waits: the fast path of a publish that finds room is the same as a plain publish.
//!
//! 1. **Startup.** The first managed publish waits until every required id has been seen attached (a
//!    consumer slot with that id whose consumer fixed its start), at most `startup_wait_timeout`; otherwise
//!    [`RequiredConsumerError::StartupTimeout`] names the missing ids.
//! 2. **Progress.** While a managed publish is blocked on a full ring, every `progress_check_interval` it
//!    looks at each required consumer that holds the producer back (its cursor is a whole ring behind)
//!    and at whether that cursor moved since the last look. One that has not moved for `progress_timeout`
//!    is *stalled*: the alert hook is called with a [`RequiredConsumerAlert`], and a grace period of
//!    `shutdown_grace_period` starts. A consumer that moves again within it has recovered and publishing
//!    goes on as if nothing happened. A dead process counts as a consumer that does not move (an anonymous
//!    consumer that dies is evicted by every blocked publish anyway; a durable named one keeps gating, so
//!    this is how a required named consumer that never comes back is noticed).
//! 3. **Failure.** When the grace period ends, the [`RequiredConsumerFailureAction`] applies:
//!    `GracefulShutdown` returns [`RequiredConsumerError::GracefulShutdownTriggered`] (nothing more is
//!    published by that call); `Evict` stops gating on the consumer and goes on; `AlertOnly` calls the
//!    hook again and keeps waiting.
//!
//! # Why eviction never overwrites what a consumer is reading
//!
//! A consumer reads events in place, between two loads of the published count, without touching shared
//! state per event. So the producer cannot simply stop gating on a live consumer: it might overwrite the
//! event that consumer is reading. Eviction is therefore two-phase:
//!
//! - the producer marks the slot EVICTING and *keeps gating on it*, then bumps an eviction notice that
//!   shares the line of the published count (Release);
//! - each time a consumer loads the published count afresh, before handing out any event from the new
//!   load, it also reads the notice, from the same line, so its read path touches nothing more; when the
//!   notice moved, it looks at its own slot, and on EVICTING marks the slot EVICTED, drops its liveness
//!   lock and reports [`ConsumeError::Evicted`](crate::ConsumeError::Evicted) from then on;
//! - the producer stops gating when it sees EVICTED, or when the consumer's process is dead (a dead
//!   process reads nothing).
//!
//! Every event the consumer may still be reading was handed out before it saw EVICTING, while the
//! producer still gated on its cursor, so no event in use is overwritten, and none is read after the
//! producer stopped gating. A consumer that neither reads again nor dies within the grace period (it may
//! be stopped, or stuck in its own code holding a lease) is not overwritten: the managed publish reports
//! [`RequiredConsumerError::EvictionPending`] instead, and the eviction completes as soon as the consumer
//! reads again or dies.

use crate::error::PublishError;
use crate::registry::{self, Eviction};
use crate::segment::{Endpoint, Segment};
use crate::wait::{WaitStrategy, Waiter};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a managed publish does when a required consumer stays stalled past the grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RequiredConsumerFailureAction {
    /// Return [`RequiredConsumerError::GracefulShutdownTriggered`]: the caller should stop publishing and
    /// shut down in order. The default.
    #[default]
    GracefulShutdown,
    /// Stop gating on the consumer and go on publishing: it is evicted (it gets
    /// [`ConsumeError::Evicted`](crate::ConsumeError::Evicted) if it is alive and reads again) and a
    /// durable named consumer loses its reservation.
    Evict,
    /// Call the alert hook (again every `progress_timeout`) and keep waiting for the consumer.
    AlertOnly,
}

/// What the alert hook is told about a stalled required consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequiredConsumerAlert {
    /// The consumer's id.
    pub consumer_id: String,
    /// Process id of its consumer, as recorded (in its PID namespace); 0 if none ever attached.
    pub pid: u32,
    /// Whether that process is alive.
    pub alive: bool,
    /// Events it has consumed (its cursor): the next sequence it will read.
    pub last_sequence: u64,
    /// How long its cursor has not moved while the producer waited on it.
    pub stalled_for: Duration,
    /// The action that applies if it stays stalled past the grace period.
    pub action: RequiredConsumerFailureAction,
}

/// The alert hook: called from the publishing thread, inside a managed publish; keep it short.
pub type RequiredConsumerAlertHook = Arc<dyn Fn(&RequiredConsumerAlert) + Send + Sync>;

/// Which consumers a producer requires, and how it reacts when one is missing or stalls; enabled with
/// [`SharedProducerBuilder::with_required_consumers`](crate::SharedProducerBuilder::with_required_consumers)
/// or [`SharedProducer::set_required_consumers`](crate::SharedProducer::set_required_consumers), and
/// enforced by the managed publishes. See the [module docs](self) for the exact rules.
///
/// ```
/// use disruptor_mp::{
///     attach_shared_consumer, build_shared_single_producer, RequiredConsumerError,
///     RequiredConsumerFailureAction, RequiredConsumerLivenessConfig,
/// };
/// use std::time::Duration;
///
/// # let name = format!("doc-required-{}", std::process::id());
/// let required = RequiredConsumerLivenessConfig::new(["risk"])
///     .with_startup_wait_timeout(Duration::from_millis(50))
///     .with_failure_action(RequiredConsumerFailureAction::GracefulShutdown);
/// let mut producer = build_shared_single_producer::<u64>(&name, 64)
///     .with_required_consumers(required)
///     .build_producer()?;
///
/// // Nobody called "risk" is attached: the first managed publish says so.
/// match producer.publish_managed(1) {
///     Err(RequiredConsumerError::StartupTimeout { missing }) => assert_eq!(missing, ["risk"]),
///     other => panic!("{other:?}"),
/// }
/// let _risk = attach_shared_consumer::<u64>(&name).with_consumer_id("risk").build_consumer()?;
/// assert_eq!(producer.publish_managed(1)?, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RequiredConsumerLivenessConfig {
    pub(crate) ids: Vec<String>,
    pub(crate) startup_wait_timeout: Duration,
    pub(crate) progress_timeout: Duration,
    pub(crate) progress_check_interval: Duration,
    pub(crate) shutdown_grace_period: Duration,
    pub(crate) failure_action: RequiredConsumerFailureAction,
    pub(crate) alert: Option<RequiredConsumerAlertHook>,
}

impl fmt::Debug for RequiredConsumerLivenessConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequiredConsumerLivenessConfig")
            .field("ids", &self.ids)
            .field("startup_wait_timeout", &self.startup_wait_timeout)
            .field("progress_timeout", &self.progress_timeout)
            .field("progress_check_interval", &self.progress_check_interval)
            .field("shutdown_grace_period", &self.shutdown_grace_period)
            .field("failure_action", &self.failure_action)
            .field(
                "alert",
                &self.alert.as_ref().map(|_| "Fn(&RequiredConsumerAlert)"),
            )
            .finish()
    }
}

impl RequiredConsumerLivenessConfig {
    /// Requires the consumers with these ids (as given to
    /// [`with_consumer_id`](crate::SharedConsumerBuilder::with_consumer_id)). Defaults: startup wait 10 s,
    /// progress timeout 5 s, checked every 100 ms, grace period 5 s, action
    /// [`GracefulShutdown`](RequiredConsumerFailureAction::GracefulShutdown), no alert hook.
    pub fn new<I, S>(ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequiredConsumerLivenessConfig {
            ids: ids.into_iter().map(Into::into).collect(),
            startup_wait_timeout: Duration::from_secs(10),
            progress_timeout: Duration::from_secs(5),
            progress_check_interval: Duration::from_millis(100),
            shutdown_grace_period: Duration::from_secs(5),
            failure_action: RequiredConsumerFailureAction::GracefulShutdown,
            alert: None,
        }
    }

    /// How long the first managed publish waits for every required consumer to attach.
    pub fn with_startup_wait_timeout(mut self, timeout: Duration) -> Self {
        self.startup_wait_timeout = timeout;
        self
    }

    /// How long a required consumer may hold a blocked producer back without consuming anything before
    /// it counts as stalled.
    pub fn with_progress_timeout(mut self, timeout: Duration) -> Self {
        self.progress_timeout = timeout;
        self
    }

    /// How often a blocked managed publish looks at the required consumers' progress (and liveness).
    pub fn with_progress_check_interval(mut self, interval: Duration) -> Self {
        self.progress_check_interval = interval;
        self
    }

    /// How long a stalled consumer has to recover before the failure action applies (and, for `Evict`, to
    /// acknowledge its eviction).
    pub fn with_shutdown_grace_period(mut self, grace: Duration) -> Self {
        self.shutdown_grace_period = grace;
        self
    }

    /// What happens when a stalled consumer does not recover within the grace period.
    pub fn with_failure_action(mut self, action: RequiredConsumerFailureAction) -> Self {
        self.failure_action = action;
        self
    }

    /// Calls `hook` when a required consumer is found stalled (and, with
    /// [`AlertOnly`](RequiredConsumerFailureAction::AlertOnly), again every progress timeout while it
    /// stays stalled).
    pub fn with_alert(
        mut self,
        hook: impl Fn(&RequiredConsumerAlert) + Send + Sync + 'static,
    ) -> Self {
        self.alert = Some(Arc::new(hook));
        self
    }

    /// The required ids.
    pub fn consumer_ids(&self) -> &[String] {
        &self.ids
    }
}

/// Why a managed publish did not publish (everything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequiredConsumerError {
    /// Some required consumers did not attach within the startup wait. Nothing was published. Start them,
    /// or raise `startup_wait_timeout`.
    #[error("required consumers did not attach in time: {missing:?}")]
    StartupTimeout {
        /// The ids never seen attached.
        missing: Vec<String>,
    },
    /// A required consumer stalled (or died) and did not recover within the grace period, and the action
    /// is `GracefulShutdown`. Nothing more was published by this call (a batch may have published a
    /// prefix; see [`next_sequence`](crate::SharedProducer::next_sequence)). Shut down in order.
    #[error(
        "required consumer {consumer_id:?} consumed nothing for {stalled_for:?} (stuck at sequence \
         {last_sequence}): graceful shutdown"
    )]
    GracefulShutdownTriggered {
        /// The stalled consumer's id.
        consumer_id: String,
        /// Its cursor: the next sequence it would read.
        last_sequence: u64,
        /// How long it had not moved.
        stalled_for: Duration,
    },
    /// The action is `Evict`, and the stalled consumer's process is alive but has not read since it was
    /// told to leave, within the grace period: it may be stopped, or inside its own code reading an event
    /// in place, which must not be overwritten. It keeps gating until it reads again (then it leaves) or
    /// dies; call the managed publish again to keep waiting, or stop that process.
    #[error(
        "required consumer {consumer_id:?} (pid {pid}) was told to leave but has not read since \
         {waited:?}; not overwriting what it may be reading"
    )]
    EvictionPending {
        /// The consumer's id.
        consumer_id: String,
        /// Its process id, as recorded.
        pid: u32,
        /// How long the eviction has waited for it.
        waited: Duration,
    },
    /// The batch could not be published for another reason (its sequence numbers would overflow).
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// A producer's enforcement of a [`RequiredConsumerLivenessConfig`] during managed publishes.
#[derive(Debug)]
pub(crate) struct RequiredMonitor {
    config: RequiredConsumerLivenessConfig,
    /// Whether every required consumer has been seen attached (the startup check passed).
    started: bool,
    /// One per required id, in the config's order; reset at the start of every blocked wait.
    watches: Vec<Watch>,
}

/// What a blocked managed publish knows about one required consumer.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// Its cursor when last seen moving.
    cursor: u64,
    /// When its cursor last moved (or the wait began).
    moved_at: Instant,
    /// When the hook was last called for the current stall.
    alerted_at: Option<Instant>,
    /// When this wait told it to leave (action `Evict`).
    eviction_started: Option<Instant>,
}

impl Watch {
    fn fresh(cursor: u64, now: Instant) -> Watch {
        Watch {
            cursor,
            moved_at: now,
            alerted_at: None,
            eviction_started: None,
        }
    }
}

impl RequiredMonitor {
    pub(crate) fn new(config: RequiredConsumerLivenessConfig) -> RequiredMonitor {
        RequiredMonitor {
            config,
            started: false,
            watches: Vec::new(),
        }
    }

    /// How often a blocked managed publish calls [`check`](Self::check).
    pub(crate) fn check_interval(&self) -> Duration {
        self.config.progress_check_interval
    }

    /// Waits until every required consumer has been seen attached, once per monitor.
    pub(crate) fn await_startup(&mut self, segment: &Segment) -> Result<(), RequiredConsumerError> {
        if self.started {
            return Ok(());
        }
        let missing = |config: &RequiredConsumerLivenessConfig| -> Vec<String> {
            config
                .ids
                .iter()
                .filter(|id| {
                    !registry::find_consumer(segment, id)
                        .is_some_and(|index| registry::is_attached(segment, index))
                })
                .cloned()
                .collect()
        };
        let mut waiter = Waiter::new(
            WaitStrategy::SpinThenSleep {
                spins: 0,
                sleep: self.config.progress_check_interval.min(STARTUP_POLL),
            },
            Some(self.config.startup_wait_timeout),
        );
        loop {
            let missing = missing(&self.config);
            if missing.is_empty() {
                self.started = true;
                return Ok(());
            }
            if !waiter.pause() {
                return Err(RequiredConsumerError::StartupTimeout { missing });
            }
        }
    }

    /// Starts watching for a new blocked wait: every required consumer's progress is measured from now.
    pub(crate) fn begin_wait(&mut self, segment: &Segment) {
        let now = Instant::now();
        self.watches = self
            .config
            .ids
            .iter()
            .map(|id| {
                let cursor = registry::find_consumer(segment, id)
                    .map_or(0, |index| registry::cursor(segment, index));
                Watch::fresh(cursor, now)
            })
            .collect();
    }

    /// One look at the required consumers during a blocked wait, in which the producer needs every
    /// gating cursor to reach `needed_cursor`. Applies the failure action to a consumer stalled past the
    /// grace period; returns an error when the managed publish must give up.
    pub(crate) fn check(
        &mut self,
        segment: &Segment,
        needed_cursor: u64,
    ) -> Result<(), RequiredConsumerError> {
        let now = Instant::now();
        let config = &self.config;
        for (id, watch) in config.ids.iter().zip(&mut self.watches) {
            let Some(index) = registry::find_consumer(segment, id) else {
                *watch = Watch::fresh(0, now); // gone: it holds nothing back
                continue;
            };
            let cursor = registry::cursor(segment, index);
            if cursor >= needed_cursor || cursor != watch.cursor {
                *watch = Watch::fresh(cursor, now); // not in the way, or moving
                continue;
            }
            let stalled_for = now.saturating_duration_since(watch.moved_at);
            if stalled_for < config.progress_timeout {
                continue;
            }
            let realert = config.failure_action == RequiredConsumerFailureAction::AlertOnly
                && watch
                    .alerted_at
                    .is_some_and(|at| now.saturating_duration_since(at) >= config.progress_timeout);
            if watch.alerted_at.is_none() || realert {
                watch.alerted_at = Some(now);
                if let Some(hook) = &config.alert {
                    let endpoint = Endpoint::Consumer(index);
                    hook(&RequiredConsumerAlert {
                        consumer_id: id.clone(),
                        pid: segment.stamp(endpoint).pid,
                        alive: segment.is_alive(endpoint),
                        last_sequence: cursor,
                        stalled_for,
                        action: config.failure_action,
                    });
                }
            }
            if stalled_for < config.progress_timeout + config.shutdown_grace_period {
                continue;
            }
            match config.failure_action {
                RequiredConsumerFailureAction::AlertOnly => {}
                RequiredConsumerFailureAction::GracefulShutdown => {
                    return Err(RequiredConsumerError::GracefulShutdownTriggered {
                        consumer_id: id.clone(),
                        last_sequence: cursor,
                        stalled_for,
                    })
                }
                RequiredConsumerFailureAction::Evict => match registry::evict(segment, index) {
                    Eviction::Done => *watch = Watch::fresh(0, now),
                    Eviction::Pending => {
                        let started = *watch.eviction_started.get_or_insert(now);
                        let waited = now.saturating_duration_since(started);
                        if waited >= config.shutdown_grace_period {
                            return Err(RequiredConsumerError::EvictionPending {
                                consumer_id: id.clone(),
                                pid: segment.stamp(Endpoint::Consumer(index)).pid,
                                waited,
                            });
                        }
                    }
                },
            }
        }
        Ok(())
    }
}

/// Longest sleep between two looks at the consumer table while waiting for required consumers to start.
const STARTUP_POLL: Duration = Duration::from_millis(5);
