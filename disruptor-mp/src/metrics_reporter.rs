//! Publishes snapshots of rings to the [`metrics`](https://docs.rs/metrics) facade from a background
//! thread (feature `metrics`), so any `metrics` exporter (Prometheus, StatsD, OpenTelemetry, ...) can
//! scrape producer progress and consumer lag.
//!
//! ```no_run
//! use disruptor_mp::metrics_reporter::MetricsReporter;
//! use std::time::Duration;
//!
//! // Install a `metrics` recorder first (e.g. metrics-exporter-prometheus): handles registered before
//! // one is installed go nowhere.
//! let reporter = MetricsReporter::builder()
//!     .ring("ticks")
//!     .ring("/var/rings/fills.ring")
//!     .interval(Duration::from_secs(1))
//!     .prefix("dmp")
//!     .start()?;
//! // ... later; dropping the reporter stops it too.
//! reporter.stop();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Every interval the reporter's thread (named `dmp-metrics`) takes a
//! [`RingSnapshot::open`] of each ring and sets these gauges, all labelled `ring` = the name or path
//! exactly as given to [`ring`](MetricsReporterBuilder::ring):
//!
//! | gauge | value |
//! | --- | --- |
//! | `{prefix}_ring_up` | 1 if the last snapshot succeeded, 0 if it failed (the other series then keep their last values) |
//! | `{prefix}_published` | events published (the producer's cursor) |
//! | `{prefix}_producer_alive` | 1 while the producer's process is alive |
//! | `{prefix}_closed` | 1 once the producer closed the ring |
//! | `{prefix}_capacity` | capacity in events |
//! | `{prefix}_consumers` | consumer slots in use |
//! | `{prefix}_evictions` | consumers the producer told to leave, over the ring's life |
//! | `{prefix}_dead_consumers_evicted` | consumers that died and stopped gating, over the ring's life |
//! | `{prefix}_ring_full` | publishes that found the ring full (each wait for room, each failed `try_`) |
//! | `{prefix}_wait_seconds` | time publishes spent waiting for room |
//! | `{prefix}_sleeps` | times the producer slept in the kernel waiting for room |
//! | `{prefix}_wakeups_sent` | wake-up system calls the producer made for sleeping consumers |
//!
//! and, for each consumer slot in use, labelled `ring` and `consumer` = its id (`slot-N` for an
//! anonymous consumer in slot N):
//!
//! | gauge | value |
//! | --- | --- |
//! | `{prefix}_consumer_cursor` | the next sequence it will read (= events it consumed) |
//! | `{prefix}_consumer_lag` | how far it is behind the producer |
//! | `{prefix}_consumer_alive` | 1 while its process is alive; set to 0 when it leaves its slot |
//! | `{prefix}_consumer_gating` | 1 while it holds the producer back |
//! | `{prefix}_consumer_empty_polls` | its reads that found nothing to read |
//! | `{prefix}_consumer_sleeps` | times it slept in the kernel waiting for events |
//! | `{prefix}_consumer_wait_seconds` | time its blocking reads spent yielding or asleep |
//!
//! Everything is a gauge, `published` included: a ring recreated under the same name starts again from
//! zero, and a counter's `absolute` only ever rises in the usual recorders. A ring that cannot be
//! snapshotted (not created yet, removed, unreadable, corrupted) sets `ring_up` to 0 and is tried again
//! next tick; the reporter never panics on a ring's account. A consumer that leaves has its `alive` set
//! to 0; its series stay in the recorder (the facade cannot remove them) unless the exporter expires idle
//! series, as `metrics-exporter-prometheus`'s `idle_timeout` does.
//!
//! # Allocation
//!
//! The metric handles are registered once per ring and once per consumer (keyed by slot, id and process
//! id), and cached: while the set of consumers is unchanged, the reporter's own bookkeeping allocates
//! nothing in a tick, it only stores values through the cached handles. Taking the snapshot itself maps
//! the ring read-only and copies it into a [`RingSnapshot`], which costs a handful of small allocations
//! (the location, the event name and fields, the consumer list and ids) per ring per tick.
//!
//! # Sample output
//!
//! From the repository's example, `cargo run --example metrics_prometheus --features metrics`, and
//! `curl -s 127.0.0.1:9898/metrics | grep dmp_` (its consumer drains in bursts, so its lag moves; the
//! `# HELP`/`# TYPE` lines of the other gauges are left out here):
//!
//! ```text
//! # HELP dmp_published Events published: the producer's cursor
//! # TYPE dmp_published gauge
//! dmp_published{ring="/fills-25450"} 4950
//! # HELP dmp_consumer_lag Events the consumer is behind the producer
//! # TYPE dmp_consumer_lag gauge
//! dmp_consumer_lag{ring="/fills-25450",consumer="ledger"} 500
//! dmp_consumer_cursor{ring="/fills-25450",consumer="ledger"} 4450
//! dmp_consumer_alive{ring="/fills-25450",consumer="ledger"} 1
//! dmp_consumer_gating{ring="/fills-25450",consumer="ledger"} 1
//! dmp_ring_up{ring="/fills-25450"} 1
//! dmp_producer_alive{ring="/fills-25450"} 1
//! dmp_closed{ring="/fills-25450"} 0
//! dmp_capacity{ring="/fills-25450"} 65536
//! dmp_consumers{ring="/fills-25450"} 1
//! dmp_evictions{ring="/fills-25450"} 0
//! dmp_dead_consumers_evicted{ring="/fills-25450"} 0
//! ```

use crate::observability::RingSnapshot;
use metrics::{describe_gauge, gauge, Gauge, Label, Unit};
use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The reporter thread's name.
pub const THREAD_NAME: &str = "dmp-metrics";

/// A background thread publishing snapshots of rings as `metrics` gauges; see the [module](self).
///
/// Stops when [`stop`](Self::stop)ped or dropped: the thread wakes at once and is joined.
#[derive(Debug)]
pub struct MetricsReporter {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Configures a [`MetricsReporter`]: the rings, the interval and the metric name prefix.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct MetricsReporterBuilder {
    rings: Vec<String>,
    interval: Duration,
    prefix: String,
}

impl MetricsReporter {
    /// A builder with no rings, an interval of one second and the prefix `dmp`.
    pub fn builder() -> MetricsReporterBuilder {
        MetricsReporterBuilder {
            rings: Vec::new(),
            interval: Duration::from_secs(1),
            prefix: "dmp".to_string(),
        }
    }

    /// Stops the reporter thread and waits for it to finish (it wakes at once, mid-interval; at most the
    /// tick in progress, if any, is completed).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // Disconnecting the channel wakes the thread's `recv_timeout` at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsReporter {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl MetricsReporterBuilder {
    /// Adds a ring: a shared-memory segment name or a ring file's path, as [`RingSnapshot::open`] takes
    /// it. The string is also the value of the `ring` label.
    pub fn ring(mut self, name_or_path: impl Into<String>) -> Self {
        self.rings.push(name_or_path.into());
        self
    }

    /// Adds several rings, as [`ring`](Self::ring) does.
    pub fn rings<I>(mut self, names_or_paths: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.rings
            .extend(names_or_paths.into_iter().map(Into::into));
        self
    }

    /// How often the rings are snapshotted (default: one second). The first snapshot is taken at start.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The metric name prefix (default `dmp`): metrics are named `{prefix}_published` and so on. It must
    /// be a valid Prometheus name: ASCII letters, digits, `_` and `:`, not starting with a digit.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Starts the reporter thread, which describes the metrics to the installed recorder, then
    /// publishes a snapshot of every ring at once and after each interval.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] when no ring was given, the interval is zero or the
    /// prefix is not a valid metric name, and with the operating system's error when the thread cannot
    /// be spawned.
    pub fn start(self) -> io::Result<MetricsReporter> {
        let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        if self.rings.is_empty() {
            return invalid("a metrics reporter needs at least one ring".into());
        }
        if self.interval.is_zero() {
            return invalid("a metrics reporter's interval must not be zero".into());
        }
        if !valid_prefix(&self.prefix) {
            return invalid(format!(
                "metric prefix {:?} is not a valid metric name (ASCII letters, digits, '_' and ':', \
                 not starting with a digit)",
                self.prefix
            ));
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .spawn(move || run(self, stopped))?;
        Ok(MetricsReporter {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn valid_prefix(prefix: &str) -> bool {
    let mut chars = prefix.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The reporter thread: a tick now, then one per interval until the channel is disconnected (or sent to).
fn run(config: MetricsReporterBuilder, stopped: mpsc::Receiver<()>) {
    let names = Names::new(&config.prefix);
    names.describe();
    let mut rings: Vec<RingMetrics> = config
        .rings
        .iter()
        .map(|ring| RingMetrics::register(&names, ring))
        .collect();
    let mut next = Instant::now();
    loop {
        for ring in &mut rings {
            ring.tick(&names);
        }
        next += config.interval;
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow tick, or a suspended process): skip the missed ticks.
            next = now + config.interval;
        }
        match stopped.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The metric names, built once from the prefix.
struct Names {
    ring_up: String,
    published: String,
    producer_alive: String,
    closed: String,
    capacity: String,
    consumers: String,
    evictions: String,
    dead_consumers_evicted: String,
    ring_full: String,
    wait_seconds: String,
    sleeps: String,
    wakeups_sent: String,
    consumer_cursor: String,
    consumer_lag: String,
    consumer_alive: String,
    consumer_gating: String,
    consumer_empty_polls: String,
    consumer_sleeps: String,
    consumer_wait_seconds: String,
}

impl Names {
    fn new(prefix: &str) -> Names {
        let name = |suffix: &str| format!("{prefix}_{suffix}");
        Names {
            ring_up: name("ring_up"),
            published: name("published"),
            producer_alive: name("producer_alive"),
            closed: name("closed"),
            capacity: name("capacity"),
            consumers: name("consumers"),
            evictions: name("evictions"),
            dead_consumers_evicted: name("dead_consumers_evicted"),
            ring_full: name("ring_full"),
            wait_seconds: name("wait_seconds"),
            sleeps: name("sleeps"),
            wakeups_sent: name("wakeups_sent"),
            consumer_cursor: name("consumer_cursor"),
            consumer_lag: name("consumer_lag"),
            consumer_alive: name("consumer_alive"),
            consumer_gating: name("consumer_gating"),
            consumer_empty_polls: name("consumer_empty_polls"),
            consumer_sleeps: name("consumer_sleeps"),
            consumer_wait_seconds: name("consumer_wait_seconds"),
        }
    }

    fn describe(&self) {
        let descriptions: [(&String, Unit, &'static str); 19] = [
            (
                &self.ring_up,
                Unit::Count,
                "1 if the ring's last snapshot succeeded, 0 if it failed",
            ),
            (
                &self.published,
                Unit::Count,
                "Events published: the producer's cursor",
            ),
            (
                &self.producer_alive,
                Unit::Count,
                "1 while the ring's producer process is alive",
            ),
            (
                &self.closed,
                Unit::Count,
                "1 once the producer closed the ring",
            ),
            (&self.capacity, Unit::Count, "Ring capacity in events"),
            (&self.consumers, Unit::Count, "Consumer slots in use"),
            (
                &self.evictions,
                Unit::Count,
                "Consumers the producer told to leave by policy, over the ring's life",
            ),
            (
                &self.dead_consumers_evicted,
                Unit::Count,
                "Consumers whose process died and that stopped gating, over the ring's life",
            ),
            (
                &self.ring_full,
                Unit::Count,
                "Publishes that found the ring full (waited for room, or failed a try_ publish)",
            ),
            (
                &self.wait_seconds,
                Unit::Seconds,
                "Time publishes spent waiting for room",
            ),
            (
                &self.sleeps,
                Unit::Count,
                "Times the producer slept in the kernel waiting for room",
            ),
            (
                &self.wakeups_sent,
                Unit::Count,
                "Wake-up system calls the producer made for sleeping consumers",
            ),
            (
                &self.consumer_empty_polls,
                Unit::Count,
                "Reads by the consumer that found nothing to read",
            ),
            (
                &self.consumer_sleeps,
                Unit::Count,
                "Times the consumer slept in the kernel waiting for events",
            ),
            (
                &self.consumer_wait_seconds,
                Unit::Seconds,
                "Time the consumer's blocking reads spent yielding or asleep",
            ),
            (
                &self.consumer_cursor,
                Unit::Count,
                "The next sequence the consumer will read (events it consumed)",
            ),
            (
                &self.consumer_lag,
                Unit::Count,
                "Events the consumer is behind the producer",
            ),
            (
                &self.consumer_alive,
                Unit::Count,
                "1 while the consumer's process is alive, 0 once it left",
            ),
            (
                &self.consumer_gating,
                Unit::Count,
                "1 while the consumer holds the producer back",
            ),
        ];
        for (name, unit, description) in descriptions {
            describe_gauge!(name.clone(), unit, description);
        }
    }
}

/// A ring's cached handles, and those of the consumers seen in it.
struct RingMetrics {
    location: String,
    ring_up: Gauge,
    published: Gauge,
    producer_alive: Gauge,
    closed: Gauge,
    capacity: Gauge,
    consumers: Gauge,
    evictions: Gauge,
    dead_consumers_evicted: Gauge,
    ring_full: Gauge,
    wait_seconds: Gauge,
    sleeps: Gauge,
    wakeups_sent: Gauge,
    /// Indexed by consumer slot; grows to the ring's table size once.
    slots: Vec<Option<ConsumerMetrics>>,
}

/// A consumer's cached handles, valid while its slot holds the same id and process.
struct ConsumerMetrics {
    id: String,
    pid: u32,
    cursor: Gauge,
    lag: Gauge,
    alive: Gauge,
    gating: Gauge,
    empty_polls: Gauge,
    sleeps: Gauge,
    wait_seconds: Gauge,
}

impl RingMetrics {
    fn register(names: &Names, location: &str) -> RingMetrics {
        let labels = vec![Label::new("ring", location.to_string())];
        let register = |name: &String| gauge!(name.clone(), labels.clone());
        RingMetrics {
            location: location.to_string(),
            ring_up: register(&names.ring_up),
            published: register(&names.published),
            producer_alive: register(&names.producer_alive),
            closed: register(&names.closed),
            capacity: register(&names.capacity),
            consumers: register(&names.consumers),
            evictions: register(&names.evictions),
            dead_consumers_evicted: register(&names.dead_consumers_evicted),
            ring_full: register(&names.ring_full),
            wait_seconds: register(&names.wait_seconds),
            sleeps: register(&names.sleeps),
            wakeups_sent: register(&names.wakeups_sent),
            slots: Vec::new(),
        }
    }

    fn tick(&mut self, names: &Names) {
        let Ok(snapshot) = RingSnapshot::open(&self.location) else {
            self.ring_up.set(0.0);
            return;
        };
        let producer = &snapshot.producer;
        self.published.set(producer.published as f64);
        self.producer_alive.set(flag(producer.alive));
        self.closed.set(flag(snapshot.closed));
        self.capacity.set(snapshot.capacity as f64);
        self.consumers.set(snapshot.consumers.len() as f64);
        self.evictions.set(producer.evictions as f64);
        self.dead_consumers_evicted
            .set(producer.dead_consumers_evicted as f64);
        self.ring_full.set(producer.ring_full as f64);
        self.wait_seconds.set(seconds(producer.wait_ns));
        self.sleeps.set(producer.sleeps as f64);
        self.wakeups_sent.set(producer.wakeups_sent as f64);

        // Consumers that left their slot (or whose slot now holds another consumer) first, so that one
        // that came back under the same id in another slot ends up alive.
        for (slot, cached) in self.slots.iter_mut().enumerate() {
            let Some(metrics) = cached else { continue };
            let still_there = snapshot
                .consumers
                .binary_search_by_key(&slot, |consumer| consumer.slot)
                .is_ok_and(|index| {
                    let consumer = &snapshot.consumers[index];
                    consumer.id == metrics.id && consumer.pid == metrics.pid
                });
            if !still_there {
                metrics.alive.set(0.0);
                metrics.gating.set(0.0);
                *cached = None;
            }
        }
        for consumer in &snapshot.consumers {
            if consumer.slot >= self.slots.len() {
                self.slots.resize_with(consumer.slot + 1, || None);
            }
            let metrics = self.slots[consumer.slot].get_or_insert_with(|| {
                let label = if consumer.id.is_empty() {
                    format!("slot-{}", consumer.slot)
                } else {
                    consumer.id.clone()
                };
                let labels = vec![
                    Label::new("ring", self.location.clone()),
                    Label::new("consumer", label),
                ];
                let register = |name: &String| gauge!(name.clone(), labels.clone());
                ConsumerMetrics {
                    id: consumer.id.clone(),
                    pid: consumer.pid,
                    cursor: register(&names.consumer_cursor),
                    lag: register(&names.consumer_lag),
                    alive: register(&names.consumer_alive),
                    gating: register(&names.consumer_gating),
                    empty_polls: register(&names.consumer_empty_polls),
                    sleeps: register(&names.consumer_sleeps),
                    wait_seconds: register(&names.consumer_wait_seconds),
                }
            });
            metrics.cursor.set(consumer.cursor as f64);
            metrics.lag.set(consumer.lag as f64);
            metrics.alive.set(flag(consumer.alive));
            metrics.gating.set(flag(consumer.gating));
            metrics.empty_polls.set(consumer.empty_polls as f64);
            metrics.sleeps.set(consumer.sleeps as f64);
            metrics.wait_seconds.set(seconds(consumer.wait_ns));
        }
        self.ring_up.set(1.0);
    }
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

fn flag(value: bool) -> f64 {
    if value {
        1.0
    } else {
        0.0
    }
}
