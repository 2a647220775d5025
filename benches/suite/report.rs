//! The results of one run and their markdown rendering: the table printed to stdout and written to
//! `benches/results/README.md` in full mode.

use crate::contender::Contender;
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// The quantiles a latency curve is drawn through (the max is added as its last point).
pub const CURVE_QUANTILES: [f64; 7] = [0.0, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999];

/// A latency distribution, in nanoseconds.
#[derive(Clone, Debug)]
pub struct Percentiles {
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    /// `(quantile, ns)` at [`CURVE_QUANTILES`], then `(1.0, max)`.
    pub curve: Vec<(f64, u64)>,
}

impl Percentiles {
    /// The percentiles of `hist`.
    pub fn of(hist: &Histogram<u64>) -> Percentiles {
        let mut curve: Vec<(f64, u64)> = CURVE_QUANTILES
            .iter()
            .map(|&q| (q, hist.value_at_quantile(q)))
            .collect();
        curve.push((1.0, hist.max()));
        Percentiles {
            p50: hist.value_at_quantile(0.5),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
            curve,
        }
    }
}

/// How a throughput contender publishes and consumes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Shape {
    /// One event per publish call.
    Single,
    /// 64 events per publish call, written in place.
    Batch,
    /// One event per publish call, and one multiply-rotate round of consumer work per event.
    SingleWork,
}

impl Shape {
    pub fn label(self) -> &'static str {
        match self {
            Shape::Single => "single publish",
            Shape::Batch => "batches of 64",
            Shape::SingleWork => "single publish + 1 work round",
        }
    }
}

pub struct RoundTripRow {
    pub contender: Contender,
    pub bytes: usize,
    pub latency: Percentiles,
}

pub struct ThroughputRow {
    pub contender: Contender,
    pub shape: Shape,
    pub bytes: usize,
    /// Events per second, one per run.
    pub rates: Vec<f64>,
}

impl ThroughputRow {
    /// The median events per second over the runs.
    pub fn median(&self) -> f64 {
        median(&self.rates)
    }
}

pub struct LoadRow {
    pub contender: Contender,
    /// Offered events per second.
    pub offered: f64,
    /// Events per second delivered, from the first intended send time to the last receipt.
    pub achieved: f64,
    pub sustained: bool,
    /// One-way latency from each event's intended send time.
    pub latency: Percentiles,
}

/// Round trips that start with the peer asleep (see the wake-up section).
pub struct WakeRow {
    pub label: String,
    pub latency: Percentiles,
}

pub struct BroadcastRow {
    pub consumers: usize,
    /// Nanoseconds per publish, over the whole run.
    pub publish_ns: f64,
    /// Events per second each consumer received.
    pub consumer_rates: Vec<f64>,
}

/// Everything one run measured.
#[derive(Default)]
pub struct Results {
    pub machine: String,
    pub round_trips: Vec<RoundTripRow>,
    pub throughput: Vec<ThroughputRow>,
    pub load: Vec<LoadRow>,
    pub broadcast: Vec<BroadcastRow>,
    pub consumers: Option<crate::consumers::ConsumerResults>,
    /// The wake-up rows, the last one the Unix socket, and the gap the pinger slept before each ping.
    pub wake_up: Vec<WakeRow>,
    pub wake_gap: std::time::Duration,
    /// Plain statements about this run (oversubscription, floor movement, ...).
    pub notes: Vec<String>,
}

/// The median of `values` (NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[mid],
        _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
    }
}

/// `a / b` as text, `-` when either is missing.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".to_owned(),
    }
}

impl Results {
    fn round_trip(&self, contender: Contender, bytes: usize) -> Option<&Percentiles> {
        self.round_trips
            .iter()
            .find(|row| row.contender == contender && row.bytes == bytes)
            .map(|row| &row.latency)
    }

    fn rate(&self, contender: Contender, shape: Shape, bytes: usize) -> Option<f64> {
        self.throughput
            .iter()
            .find(|row| row.contender == contender && row.shape == shape && row.bytes == bytes)
            .map(ThroughputRow::median)
    }

    /// The whole run as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}\n", self.machine);
        for note in &self.notes {
            let _ = writeln!(out, "> {note}\n");
        }
        self.round_trip_tables(&mut out);
        self.throughput_table(&mut out);
        self.load_table(&mut out);
        self.broadcast_table(&mut out);
        self.wake_up_table(&mut out);
        self.consumers_table(&mut out);
        out
    }

    fn round_trip_tables(&self, out: &mut String) {
        if self.round_trips.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "### Round trip (ns; busy spin unless said; ratio = p50 / disruptor-mp shm p50)\n"
        );
        let mut sizes: Vec<usize> = self.round_trips.iter().map(|row| row.bytes).collect();
        sizes.sort_unstable();
        sizes.dedup();
        for bytes in sizes {
            let _ = writeln!(out, "**{bytes}-byte events, round trip**\n");
            let _ = writeln!(out, "| contender | p50 | p99 | p99.9 | max | p50 / ours |");
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            let ours = self
                .round_trip(Contender::Ours, bytes)
                .map(|l| l.p50 as f64);
            for row in self.round_trips.iter().filter(|row| row.bytes == bytes) {
                let l = &row.latency;
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} |",
                    row.contender.label(),
                    l.p50,
                    l.p99,
                    l.p999,
                    l.max,
                    ratio(Some(l.p50 as f64), ours)
                );
            }
            let p50 = |c| self.round_trip(c, bytes).map(|l| l.p50 as f64);
            let _ = writeln!(
                out,
                "\nAt p50: us / floor {} (target ≤ 1.2×) · us / upstream in-process {} · iceoryx2 / us {} \
                 (target ≥ 3×) · Unix socket / us {} (target ≥ 20×)\n",
                ratio(ours, p50(Contender::Floor)),
                ratio(ours, p50(Contender::Upstream)),
                ratio(p50(Contender::Iceoryx2), ours),
                ratio(p50(Contender::UnixSocket), ours)
            );
        }
    }

    fn throughput_table(&self, out: &mut String) {
        if self.throughput.is_empty() {
            return;
        }
        let mut sizes: Vec<usize> = self.throughput.iter().map(|row| row.bytes).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let _ = writeln!(
            out,
            "### Throughput (M events/s and GB/s, median of the runs; ratio = peer / disruptor-mp shm, same shape)\n"
        );
        let _ = write!(out, "| contender | shape |");
        for bytes in &sizes {
            let _ = write!(out, " {bytes} B | ratio |");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "|---|---|{}", "---:|---:|".repeat(sizes.len()));
        let mut keys: Vec<(Contender, Shape)> = Vec::new();
        for row in &self.throughput {
            if !keys.contains(&(row.contender, row.shape)) {
                keys.push((row.contender, row.shape));
            }
        }
        keys.sort_by_key(|(_, shape)| *shape as u8);
        for (contender, shape) in keys {
            let _ = write!(out, "| {} | {} |", contender.label(), shape.label());
            for &bytes in &sizes {
                match self.rate(contender, shape, bytes) {
                    Some(rate) => {
                        let _ = write!(
                            out,
                            " {:.1} ({:.2} GB/s) | {} |",
                            rate / 1e6,
                            rate * bytes as f64 / 1e9,
                            ratio(Some(rate), self.rate(Contender::Ours, shape, bytes))
                        );
                    }
                    None => out.push_str(" - | - |"),
                }
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(out);
        for bytes in sizes {
            let us = |shape| self.rate(Contender::Ours, shape, bytes);
            let _ = writeln!(
                out,
                "- {bytes} B: us / upstream: batches {} (target ≥ 1.0×), single {}, single + work {} (target ≥ 0.9×); us / SPSC ring: batches {} (target ≥ 1.0×)",
                ratio(us(Shape::Batch), self.rate(Contender::Upstream, Shape::Batch, bytes)),
                ratio(us(Shape::Single), self.rate(Contender::Upstream, Shape::Single, bytes)),
                ratio(us(Shape::SingleWork), self.rate(Contender::Upstream, Shape::SingleWork, bytes)),
                ratio(us(Shape::Batch), self.rate(Contender::Spsc, Shape::Batch, bytes)),
            );
        }
        let _ = writeln!(out);
    }

    fn load_table(&self, out: &mut String) {
        if self.load.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "### Latency under load (one-way ns from each event's intended send time, 64-byte events)\n"
        );
        let _ = writeln!(
            out,
            "| contender | offered M/s | achieved M/s | sustained | p50 | p99 | p99.9 | max |"
        );
        let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|");
        for row in &self.load {
            let l = &row.latency;
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.1} | {} | {} | {} | {} | {} |",
                row.contender.label(),
                row.offered / 1e6,
                row.achieved / 1e6,
                if row.sustained { "yes" } else { "no" },
                l.p50,
                l.p99,
                l.p999,
                l.max
            );
        }
        let mut lines = Vec::new();
        for ours in self
            .load
            .iter()
            .filter(|row| row.contender == Contender::Ours)
        {
            let upstream = self
                .load
                .iter()
                .find(|row| row.contender == Contender::Upstream && row.offered == ours.offered);
            if let Some(up) = upstream.filter(|up| up.sustained && ours.sustained) {
                lines.push(format!(
                    "{:.0} M/s: {}",
                    ours.offered / 1e6,
                    ratio(Some(ours.latency.p99 as f64), Some(up.latency.p99 as f64))
                ));
            }
        }
        for contender in [Contender::Ours, Contender::Upstream] {
            let highest = self
                .load
                .iter()
                .filter(|row| row.contender == contender && row.sustained)
                .map(|row| row.offered)
                .fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "\nHighest offered rate {} sustained: {:.0} M events/s",
                contender.label(),
                highest / 1e6
            );
        }
        let _ = writeln!(
            out,
            "\nus / upstream p99 at the rates both sustain (target ≤ 1.0×): {}\n",
            if lines.is_empty() {
                "-".to_owned()
            } else {
                lines.join(", ")
            }
        );
    }

    fn broadcast_table(&self, out: &mut String) {
        if self.broadcast.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "### Broadcast (disruptor-mp shm, 64-byte events, every consumer a process)\n"
        );
        let _ = writeln!(
            out,
            "| consumers | publish ns/event | slowest consumer M events/s | median consumer M events/s |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|");
        for row in &self.broadcast {
            let slowest = row
                .consumer_rates
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                out,
                "| {} | {:.1} | {:.1} | {:.1} |",
                row.consumers,
                row.publish_ns,
                slowest / 1e6,
                median(&row.consumer_rates) / 1e6
            );
        }
        let _ = writeln!(out);
    }

    fn wake_up_table(&self, out: &mut String) {
        let Some(socket) = self.wake_up.last() else {
            return;
        };
        let _ = writeln!(
            out,
            "### Wake-up round trip (8-byte events, shared memory; the pinger sleeps {} µs before each ping)\n",
            self.wake_gap.as_micros()
        );
        let _ = writeln!(
            out,
            "| contender | p50 | p99 | p99.9 | max | p50 / Unix socket |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for row in &self.wake_up {
            let l = &row.latency;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.label,
                l.p50,
                l.p99,
                l.p999,
                l.max,
                ratio(Some(l.p50 as f64), Some(socket.latency.p50 as f64))
            );
        }
        let _ = writeln!(
            out,
            "\nTarget: a `Blocking` row's p50 ≤ 0.5× the Unix socket's.\n"
        );
    }

    fn consumers_table(&self, out: &mut String) {
        let Some(c) = &self.consumers else { return };
        let _ = writeln!(
            out,
            "### Consumers (disruptor-mp shm, 8-byte events, busy spin; round trip ns)\n"
        );
        let _ = writeln!(out, "| variant | p50 | p99 | p99.9 | max |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for (label, l) in [
            ("echo behind the producer (one stage)", &c.one_stage),
            ("echo behind another stage (two stages)", &c.two_stages),
            ("tethered echo, alone", &c.alone),
            (
                "tethered echo, beside a slow untethered reader (100 µs per event)",
                &c.beside_slow,
            ),
        ] {
            let _ = writeln!(
                out,
                "| {label} | {} | {} | {} | {} |",
                l.p50, l.p99, l.p999, l.max
            );
        }
        let _ = writeln!(
            out,
            "\nProducer into a tethered drain: {:.1} M events/s alone, {:.1} M events/s beside the slow untethered reader ({}).\n",
            c.rate_alone / 1e6,
            c.rate_beside_slow / 1e6,
            ratio(Some(c.rate_beside_slow), Some(c.rate_alone))
        );
    }
}
