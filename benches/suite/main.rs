//! The competitive benchmark suite: disruptor-mp across processes against its peers, in one run.
//!
//! Sections: round trip at 8, 64, 512 and 4096-byte events; throughput per event size (single publish,
//! batches of 64 in place, and single publish with one round of consumer work per event); latency under
//! load at fixed offered rates, measured from each event's intended send time; broadcast to 1, 2, 4 and
//! 8 consumer processes; wake-up round trips with both sides asleep; the cost of a pipeline stage and of
//! a slow untethered reader. Every contender validates the data it carries (order and checksums) and a
//! wrong event fails the run.
//!
//! `cargo bench --bench suite` runs the full mode (a few minutes) and writes the results table and SVG
//! plots to `benches/results/`. `DMP_BENCH_QUICK=1 cargo bench --bench suite` is the smoke run (seconds):
//! every contender, little data, nothing written to the repository. See `benches/README.md`.

mod broadcast;
mod config;
mod consumers;
mod contender;
mod iox;
mod ipc;
mod load;
mod payload;
mod plots;
mod report;
mod round_trip;
mod spsc;
mod throughput;
mod wait;

use config::{by_mode, quick, Pinning};
use contender::Contender;
use disruptor_mp_suite::{dispatch_child_role, machine};
use payload::{with_payload, SIZES};
use report::{median, LoadRow, Percentiles, Results, RoundTripRow, Shape, ThroughputRow, WakeRow};
use std::time::Duration;

fn main() {
    dispatch_child_role(run_child);

    let pinning = Pinning::pin_main_thread();
    // Dropped last, also when a section panics: removes what iceoryx2 leaves in /dev/shm and /tmp.
    let _iceoryx2_domain = iox::Domain;
    let mut results = Results {
        machine: machine_line(&pinning),
        ..Results::default()
    };
    println!("disruptor-mp benchmark suite");
    println!("{}", results.machine);
    println!();

    if config::section_wanted("round-trip") {
        round_trip_section(&pinning, &mut results);
    }
    if config::section_wanted("throughput") {
        throughput_section(&pinning, &mut results);
    }
    if config::section_wanted("load") {
        load_section(&pinning, &mut results);
    }
    if config::section_wanted("broadcast") {
        broadcast_section(&pinning, &mut results);
    }
    if config::section_wanted("wake-up") {
        wake_up_section(&pinning, &mut results);
    }
    if config::section_wanted("consumers") {
        println!("== consumers: a pipeline stage, and a slow untethered reader");
        results.consumers = Some(consumers::measure(&pinning));
    }

    println!();
    println!("{}", results.markdown());
    write_results(&results);
}

/// Full mode: the table and the plots go to `benches/results/`, where the README embeds them, or to
/// [`config::RESULTS_DIR_ENV`]. Quick mode writes nothing into the repository: unless that variable is
/// set, the plots are drawn into a temporary directory (so that drawing them is checked too) and removed.
fn write_results(results: &Results) {
    let chosen = std::env::var_os(config::RESULTS_DIR_ENV).map(std::path::PathBuf::from);
    let temporary = quick() && chosen.is_none();
    let dir = match chosen {
        Some(dir) => dir,
        None if temporary => {
            std::env::temp_dir().join(format!("dmp-bench-quick-{}", std::process::id()))
        }
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results"),
    };
    std::fs::create_dir_all(&dir).expect("create the results directory");
    let plots = plots::draw_all(results, &dir).unwrap_or_else(|e| panic!("drawing the plots: {e}"));
    let mut page = String::from(
        "# Benchmark results\n\nWritten by the last full run of `cargo bench --bench suite` (see \
         `benches/README.md` for what each section measures). Compare contenders within this run, \
         not with other machines or runs.\n\n",
    );
    page.push_str(&results.markdown());
    for plot in &plots {
        let name = plot.file_name().expect("a file name").to_string_lossy();
        page.push_str(&format!("![{name}]({name})\n\n"));
    }
    std::fs::write(dir.join("README.md"), page).expect("write the results table");
    if temporary {
        println!(
            "quick mode: drew {} plots and the results page in {}, then removed them",
            plots.len(),
            dir.display()
        );
        std::fs::remove_dir_all(&dir).expect("remove the quick mode's results");
    } else {
        println!(
            "results and {} plots written to {}",
            plots.len(),
            dir.display()
        );
    }
    // Only a complete full run replaces the figures the README shows.
    let complete = std::env::var_os(config::SECTIONS_ENV).is_none();
    if !quick() && complete && std::env::var_os(config::RESULTS_DIR_ENV).is_none() {
        embed_in_readme(results, &plots);
    }
}

/// Marks the start of the block of the top-level README that a full run replaces.
const README_START: &str = "<!-- benchmark results: written by `cargo bench --bench suite` -->";
/// Marks its end.
const README_END: &str = "<!-- end of benchmark results -->";

/// Replaces the results block of the top-level README with this run's table and plots.
fn embed_in_readme(results: &Results, plots: &[std::path::PathBuf]) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let (Some(start), Some(end)) = (readme.find(README_START), readme.find(README_END)) else {
        println!("README.md has no results block ({README_START} ... {README_END}); not updated");
        return;
    };
    let mut block = format!("{README_START}\n\n");
    block.push_str(&results.markdown());
    for plot in plots {
        let name = plot.file_name().expect("a file name").to_string_lossy();
        block.push_str(&format!("![{name}](benches/results/{name})\n\n"));
    }
    let updated = format!("{}{block}{}", &readme[..start], &readme[end..]);
    std::fs::write(&path, updated).expect("write README.md");
    println!("README.md: benchmark results block updated");
}

/// Runs one child role (see each section's `*_child`); its report goes back to the parent.
fn run_child(role: &str) -> Result<String, String> {
    let words: Vec<&str> = role.split_whitespace().collect();
    match words.split_first() {
        Some((&"echo", rest)) => round_trip::echo_child(rest),
        Some((&"consume", rest)) => throughput::consume_child(rest),
        Some((&"record", rest)) => load::record_child(rest),
        Some((&("stage-echo" | "drain" | "slow-reader"), _)) => consumers::consumers_child(&words),
        _ => Err(format!("unknown child role {role:?}")),
    }
}

/// CPU model, cores, pinning, kernel (`uname -r`) and mode, as one markdown line.
fn machine_line(pinning: &Pinning) -> String {
    format!(
        "**Machine:** {} · {} logical CPUs · pinned: {} · kernel {} · mode: {}",
        machine::cpu_model(),
        machine::logical_cpus(),
        pinning.describe(),
        machine::kernel_release(),
        if quick() {
            "quick (DMP_BENCH_QUICK=1: smoke run, figures meaningless)"
        } else {
            "full"
        }
    )
}

/// Prints a progress line for one measurement.
fn progress(what: &str) {
    println!("  measured {what}");
}

/// Round trip at every size, for every contender that has one; the contenders take turns within a size.
fn round_trip_section(pinning: &Pinning, results: &mut Results) {
    const CONTENDERS: [Contender; 9] = [
        Contender::Floor,
        Contender::Ours,
        Contender::OursFile,
        Contender::OursBlocking,
        Contender::Upstream,
        Contender::Crossbeam,
        Contender::Iceoryx2,
        Contender::UnixSocket,
        Contender::Pipe,
    ];
    println!("== round trip");
    for bytes in SIZES {
        for contender in CONTENDERS {
            let slow = matches!(contender, Contender::UnixSocket | Contender::Pipe);
            let measured = match (slow, quick()) {
                (false, false) => 200_000,
                (true, false) => 20_000,
                (_, true) => 1_000,
            };
            let warmup = measured / 10;
            let hist = with_payload!(bytes, P => round_trip::measure::<P>(contender, pinning, warmup, measured));
            let latency = Percentiles::of(&hist);
            progress(&format!(
                "{:<44} {bytes:>5} B: p50 {} ns",
                contender.label(),
                latency.p50
            ));
            results.round_trips.push(RoundTripRow {
                contender,
                bytes,
                latency,
            });
        }
    }
}

/// Throughput at every size and shape; the contenders take turns in every run.
fn throughput_section(pinning: &Pinning, results: &mut Results) {
    const CONTENDERS: [Contender; 9] = [
        Contender::Ours,
        Contender::OursFile,
        Contender::OursBlocking,
        Contender::Upstream,
        Contender::Spsc,
        Contender::Crossbeam,
        Contender::Iceoryx2,
        Contender::UnixSocket,
        Contender::Pipe,
    ];
    let runs = by_mode(3, 1);
    println!("== throughput ({runs} runs per contender, interleaved)");
    for bytes in SIZES {
        for shape in [Shape::Single, Shape::Batch, Shape::SingleWork] {
            let contenders: Vec<Contender> = CONTENDERS
                .into_iter()
                .filter(|&contender| throughput::supports(contender, shape))
                .collect();
            let mut rates = vec![Vec::new(); contenders.len()];
            for _ in 0..runs {
                for (index, &contender) in contenders.iter().enumerate() {
                    let (warmup, measured) = throughput_events(contender, bytes);
                    let rate = with_payload!(bytes, P => throughput::measure::<P>(contender, shape, pinning, warmup, measured));
                    rates[index].push(rate);
                }
            }
            for (contender, rates) in contenders.into_iter().zip(rates) {
                progress(&format!(
                    "{:<44} {bytes:>5} B {:<30} {:>9.1} M events/s",
                    contender.label(),
                    shape.label(),
                    median(&rates) / 1e6
                ));
                results.throughput.push(ThroughputRow {
                    contender,
                    shape,
                    bytes,
                    rates,
                });
            }
        }
    }
}

/// Warm-up and measured events of one throughput run: about 2 GiB of events (at most 20 M) in full mode,
/// a twentieth for the peers that make a system call or more per event, a sliver in quick mode; whole
/// batches either way.
fn throughput_events(contender: Contender, bytes: usize) -> (u64, u64) {
    let full = ((2u64 << 30) / bytes as u64).min(20_000_000);
    let slow = matches!(
        contender,
        Contender::UnixSocket | Contender::Pipe | Contender::Iceoryx2
    );
    let measured = match (slow, quick()) {
        (_, true) => 64 * 64,
        (true, false) => full / 20,
        (false, false) => full,
    };
    let measured = config::multiple_of(measured, throughput::BATCH);
    (
        config::multiple_of(measured / 10, throughput::BATCH),
        measured,
    )
}

/// Latency under load at the fixed offered rates, then at doubling rates from the last fixed one for as
/// long as each contender sustains them.
fn load_section(pinning: &Pinning, results: &mut Results) {
    const FIXED_RATES: [f64; 4] = [1e6, 5e6, 20e6, 50e6];
    const HIGHEST_TRIED: f64 = 800e6;
    let duration = by_mode(Duration::from_millis(200), Duration::from_millis(2));
    println!(
        "== latency under load ({} ms per rate; sustained: delivered at >= {:.0}% of the offered rate)",
        duration.as_millis(),
        load::SUSTAINED_SHARE * 100.0
    );
    for contender in [Contender::Ours, Contender::Upstream] {
        let mut rates = FIXED_RATES.to_vec();
        let mut index = 0;
        while index < rates.len() {
            let offered = rates[index];
            let run = load::measure(contender, pinning, offered, duration);
            let sustained = run.sustained(offered);
            progress(&format!(
                "{:<44} {:>5.0} M/s offered: {:>7.1} M/s delivered, p99 {} ns{}",
                contender.label(),
                offered / 1e6,
                run.achieved / 1e6,
                run.latency.p99,
                if sustained { "" } else { " (not sustained)" }
            ));
            results.load.push(LoadRow {
                contender,
                offered,
                achieved: run.achieved,
                sustained,
                latency: run.latency,
            });
            if index == rates.len() - 1 && sustained && offered * 2.0 <= HIGHEST_TRIED {
                rates.push(offered * 2.0);
            }
            index += 1;
        }
    }
}

/// Broadcast to 1, 2, 4 and 8 consumer processes.
fn broadcast_section(pinning: &Pinning, results: &mut Results) {
    let cores = pinning.cpu_count();
    let measured = by_mode(5_000_000, 64 * 64);
    println!("== broadcast ({measured} events per run)");
    for consumers in [1, 2, 4, 8] {
        let row = broadcast::measure(pinning, consumers, measured / 10, measured);
        progress(&format!(
            "broadcast to {consumers} consumers: {:.1} ns per publish, slowest consumer {:.1} M events/s",
            row.publish_ns,
            row.consumer_rates.iter().copied().fold(f64::INFINITY, f64::min) / 1e6
        ));
        results.broadcast.push(row);
    }
    if cores < 9 {
        results.notes.push(format!(
            "Broadcast: this machine has {cores} CPUs, so with more than {} busy-spinning consumers \
             they share cores with each other and the producer; those rows measure the scheduler, not \
             the ring, and the curve is not meaningful there (it is printed anyway).",
            cores.saturating_sub(1)
        ));
    }
}

/// Round trips that start with both sides asleep: the pinger sleeps a gap before each ping, long enough
/// for a `Blocking` endpoint to have spun out and gone to sleep in the kernel. disruptor-mp with a short
/// and with the default `Blocking`, `BusySpin` for reference (its echo never sleeps), and a Unix socket
/// with blocking reads, in interleaved rounds.
fn wake_up_section(pinning: &Pinning, results: &mut Results) {
    const FEW_SPINS: disruptor_mp::WaitStrategy = disruptor_mp::WaitStrategy::Blocking {
        spins: 100,
        yields: 0,
    };
    let gap = Duration::from_micros(500);
    let rounds = by_mode(4, 1);
    let per_round = by_mode(2_500, 100);
    let warmup = per_round / 10;
    println!(
        "== wake-up round trip ({} µs gap, {rounds} rounds of {per_round})",
        gap.as_micros()
    );
    let strategies = [
        FEW_SPINS,
        disruptor_mp::WaitStrategy::DEFAULT_BLOCKING,
        disruptor_mp::WaitStrategy::BusySpin,
    ];
    let mut hists = [(); 4].map(|_| round_trip::latency_histogram());
    for _ in 0..rounds {
        for (hist, strategy) in hists.iter_mut().zip(strategies) {
            let measured = round_trip::ours_after_gap(strategy, pinning, warmup, per_round, gap);
            hist.add(measured).expect("same histogram bounds");
        }
        let socket = round_trip::socket_after_gap(pinning, warmup, per_round, gap);
        hists[3].add(socket).expect("same histogram bounds");
    }
    let labels = strategies
        .iter()
        .map(|strategy| format!("disruptor-mp shm, {strategy:?} (2 processes)"))
        .chain(["Unix socket, blocking read (2 processes)".to_owned()]);
    for (label, hist) in labels.zip(&hists) {
        let latency = Percentiles::of(hist);
        progress(&format!("{label:<70} p50 {} ns", latency.p50));
        results.wake_up.push(WakeRow { label, latency });
    }
    results.wake_gap = gap;
}
