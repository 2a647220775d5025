//! SVG plots of a run, drawn with `plotters` (SVG backend only; text is laid out without system fonts).

use crate::contender::Contender;
use crate::payload::SIZES;
use crate::report::{Results, Shape};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

type Failure = Box<dyn std::error::Error>;

/// Width and height of every plot, in pixels.
const SIZE: (u32, u32) = (960, 600);

/// Draws every plot of `results` into `dir`; returns the files written, in the order to show them.
pub fn draw_all(results: &Results, dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for bytes in SIZES {
        if results.round_trips.iter().any(|row| row.bytes == bytes) {
            let path = dir.join(format!("round_trip_{bytes}.svg"));
            round_trip(results, bytes, &path)?;
            files.push(path);
        }
    }
    for (shape, name) in [
        (Shape::Single, "throughput_single.svg"),
        (Shape::Batch, "throughput_batch.svg"),
        (Shape::SingleWork, "throughput_work.svg"),
    ] {
        if results.throughput.iter().any(|row| row.shape == shape) {
            let path = dir.join(name);
            throughput(results, shape, &path)?;
            files.push(path);
        }
    }
    if !results.load.is_empty() {
        let path = dir.join("latency_under_load.svg");
        load(results, &path)?;
        files.push(path);
    }
    if !results.broadcast.is_empty() {
        let path = dir.join("broadcast.svg");
        broadcast(results, &path)?;
        files.push(path);
    }
    Ok(files)
}

/// Draws the series labels at `position`, framed, and writes the plot's file.
fn finish<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    position: SeriesLabelPosition,
) -> Result<(), Failure> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Where a quantile sits on the "nines" axis: p50 at 0.3, p90 at 1, p99 at 2, ..., the max at 5.
fn nines(quantile: f64) -> f64 {
    if quantile >= 1.0 {
        5.0
    } else {
        -(1.0 - quantile).log10()
    }
}

fn nines_label(x: &f64) -> String {
    match x.round() as i32 {
        0 => "p0".to_owned(),
        1 => "p90".to_owned(),
        2 => "p99".to_owned(),
        3 => "p99.9".to_owned(),
        4 => "p99.99".to_owned(),
        _ => "max".to_owned(),
    }
}

/// The range of a log axis that holds `values` (positive), with some room.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(low, high), v| {
            (low.min(v), high.max(v))
        });
    if high == 0.0 {
        return 1.0..10.0;
    }
    low / 2.0..high * 2.0
}

fn legend_mark(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
}

/// The colour of a contender, the same in every plot.
fn color_of(contender: Contender) -> RGBColor {
    let index = crate::contender::ALL
        .iter()
        .position(|c| *c == contender)
        .unwrap_or(0);
    let (r, g, b) = Palette99::pick(index).rgb();
    RGBColor(r, g, b)
}

fn round_trip(results: &Results, bytes: usize, path: &Path) -> Result<(), Failure> {
    let rows: Vec<_> = results
        .round_trips
        .iter()
        .filter(|row| row.bytes == bytes)
        .collect();
    let y = log_range(
        rows.iter()
            .flat_map(|row| row.latency.curve.iter().map(|p| p.1 as f64)),
    );
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Round trip, {bytes}-byte events"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..5f64, y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("round trip, ns (log)")
        .x_labels(6)
        .x_label_formatter(&nines_label)
        .draw()?;
    for row in rows {
        let color = color_of(row.contender);
        let points = row
            .latency
            .curve
            .iter()
            .map(|&(q, ns)| (nines(q), ns.max(1) as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(row.contender.label())
            .legend(legend_mark(color));
    }
    finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

fn throughput(results: &Results, shape: Shape, path: &Path) -> Result<(), Failure> {
    let rows: Vec<_> = results
        .throughput
        .iter()
        .filter(|row| row.shape == shape)
        .collect();
    let y = log_range(rows.iter().map(|row| row.median() / 1e6));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Throughput, {}", shape.label()), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((4f64..8192f64).log_scale(), y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("event size, bytes (log)")
        .y_desc("M events/s (log)")
        .draw()?;
    let mut contenders: Vec<Contender> = Vec::new();
    for row in &rows {
        if !contenders.contains(&row.contender) {
            contenders.push(row.contender);
        }
    }
    for contender in contenders {
        let color = color_of(contender);
        let points = rows
            .iter()
            .filter(|row| row.contender == contender)
            .map(|row| (row.bytes as f64, row.median() / 1e6));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(contender.label())
            .legend(legend_mark(color));
    }
    finish(&mut chart, &root, SeriesLabelPosition::LowerLeft)
}

fn load(results: &Results, path: &Path) -> Result<(), Failure> {
    let x = log_range(results.load.iter().map(|row| row.offered / 1e6));
    let y = log_range(
        results
            .load
            .iter()
            .flat_map(|row| [row.latency.p50 as f64, row.latency.p99 as f64]),
    );
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "One-way latency vs offered rate (from intended send times)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x.log_scale(), y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered M events/s (log)")
        .y_desc("one-way latency, ns (log)")
        .draw()?;
    for contender in [Contender::Ours, Contender::Upstream] {
        let color = color_of(contender);
        let rows: Vec<_> = results
            .load
            .iter()
            .filter(|row| row.contender == contender)
            .collect();
        let p99 = rows
            .iter()
            .map(|row| (row.offered / 1e6, row.latency.p99.max(1) as f64));
        chart
            .draw_series(LineSeries::new(p99, color.stroke_width(2)))?
            .label(format!("{} p99", contender.label()))
            .legend(legend_mark(color));
        let p50 = rows
            .iter()
            .map(|row| (row.offered / 1e6, row.latency.p50.max(1) as f64));
        chart
            .draw_series(LineSeries::new(p50, color.mix(0.5).stroke_width(1)))?
            .label(format!("{} p50", contender.label()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.mix(0.5)));
    }
    finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}

fn broadcast(results: &Results, path: &Path) -> Result<(), Failure> {
    let publish: Vec<(f64, f64)> = results
        .broadcast
        .iter()
        .map(|row| (row.consumers as f64, row.publish_ns))
        .collect();
    let slowest: Vec<(f64, f64)> = results
        .broadcast
        .iter()
        .map(|row| {
            let rate = row
                .consumer_rates
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            (row.consumers as f64, 1e9 / rate)
        })
        .collect();
    let y = log_range(publish.iter().chain(&slowest).map(|p| p.1));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Broadcast cost vs consumers (disruptor-mp shm, 64-byte events)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((0.8f64..9f64).log_scale(), y.log_scale())?;
    chart
        .configure_mesh()
        .x_desc("consumer processes (log)")
        .y_desc("ns per event (log)")
        .draw()?;
    for (points, label, color) in [
        (publish, "producer: ns per publish", BLUE),
        (slowest, "slowest consumer: ns per event received", RED),
    ] {
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(legend_mark(color));
    }
    finish(&mut chart, &root, SeriesLabelPosition::UpperLeft)
}
