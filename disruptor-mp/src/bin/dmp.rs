//! `dmp`: looks at disruptor-mp rings from outside, without joining them.
//!
//! Built with the `cli` feature:
//!
//! ```text
//! cargo run --release -p disruptor-mp --features cli --bin dmp -- inspect NAME
//! cargo install --path disruptor-mp --features cli
//! ```
//!
//! - `dmp list [--dir DIR]... [--json]`: every ring in shared memory (Linux: `/dev/shm`) and the ring
//!   files directly in each `DIR`, one line each: event type, capacity, consumers, producer, published.
//! - `dmp inspect NAME|PATH [--json]`: one ring in full: header, event type with its field table,
//!   producer, and every consumer with its cursor and lag. A path contains a `/` after its first
//!   character or starts with `.`; anything else is a shared-memory name.
//! - `dmp clean [--dir DIR]... [--dry-run] [--no-shared-memory]`: removes the rings whose producer is no
//!   longer alive (killed, or exited and left a closed ring behind). A ring with a live producer is never
//!   removed. `--no-shared-memory` cleans only the ring files in the `--dir` directories.
//! - `dmp watch NAME|PATH [--interval MS] [--count N]`: one ring, redrawn every `MS` milliseconds (default
//!   1000) until Ctrl-C, or for `N` frames: producer and consumers with their publish and read rates
//!   (events/s over the last interval). On a terminal each frame replaces the last; otherwise frames are
//!   printed one after another, separated by a blank line. A ring that goes away ends it with status 1.
//!
//! Snapshots map rings read-only and take no consumer slot, so looking never changes a ring. Errors (not a
//! ring, another format version, truncated, no permission, missing) print one line on stderr and exit
//! with status 1; usage errors exit with status 2.

use clap::{Parser, Subcommand};
use disruptor_mp::observability::{
    list_files, list_shared_memory, ConsumerState, ConsumerView, ListedRing, RingSnapshot,
};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[path = "dmp/watch.rs"]
mod watch;

/// Inspect disruptor-mp rings: list them, look inside one, remove those whose producer is gone.
#[derive(Parser)]
#[command(name = "dmp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every ring in shared memory, and the ring files in each --dir.
    List {
        /// Also list the ring files directly in this directory (repeatable).
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one ring: header, event type and fields, producer, consumers.
    Inspect {
        /// A shared-memory name (`ticks`, `/ticks`) or a ring file's path (`./ticks.ring`, `/var/x.ring`).
        #[arg(value_name = "NAME|PATH")]
        ring: String,
        /// Print the snapshot as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the rings whose producer is dead (never one whose producer is alive).
    Clean {
        /// Also clean the ring files directly in this directory (repeatable).
        #[arg(long = "dir", value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Leave shared memory alone: clean only the ring files in the --dir directories.
        #[arg(long)]
        no_shared_memory: bool,
    },
    /// Redraw one ring every interval: producer and consumers with their publish and read rates.
    Watch {
        /// A shared-memory name (`ticks`, `/ticks`) or a ring file's path (`./ticks.ring`, `/var/x.ring`).
        #[arg(value_name = "NAME|PATH")]
        ring: String,
        /// Milliseconds between frames.
        #[arg(
            long,
            value_name = "MS",
            default_value_t = 1000,
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        interval: u64,
        /// Stop after this many frames (default: run until Ctrl-C).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
    },
}

/// Where a listed ring lives, which decides how it is removed.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    SharedMemory,
    File,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut out = String::new();
    let result = match cli.command {
        Command::List { dirs, json } => list(&dirs, json, &mut out),
        Command::Inspect { ring, json } => inspect(&ring, json, &mut out),
        Command::Clean {
            dirs,
            dry_run,
            no_shared_memory,
        } => clean(&dirs, !no_shared_memory, dry_run, &mut out),
        // Prints each frame itself, as it is drawn.
        Command::Watch {
            ring,
            interval,
            count,
        } => watch::watch(&ring, Duration::from_millis(interval), count),
    };
    // Whatever was gathered is printed even when a later step failed (clean reports each removal).
    let mut stdout = io::stdout().lock();
    if let Err(error) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if error.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("dmp: cannot write to stdout: {error}");
            return ExitCode::FAILURE;
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dmp: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The rings in shared memory (if `shared_memory`) and in `dirs`. Shared memory that cannot be listed
/// (macOS) is a note on stderr, not a failure; a directory that cannot be read is a failure.
fn find_rings(dirs: &[PathBuf], shared_memory: bool) -> Result<Vec<(Kind, ListedRing)>, String> {
    let mut rings = Vec::new();
    if shared_memory {
        match list_shared_memory() {
            Ok(listed) => rings.extend(listed.into_iter().map(|ring| (Kind::SharedMemory, ring))),
            Err(error) => eprintln!("dmp: shared memory not listed: {error}"),
        }
    }
    for dir in dirs {
        let listed = list_files(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        rings.extend(listed.into_iter().map(|ring| (Kind::File, ring)));
    }
    Ok(rings)
}

fn list(dirs: &[PathBuf], json: bool, out: &mut String) -> Result<(), String> {
    let rings = find_rings(dirs, true)?;
    if json {
        let entries: Vec<serde_json::Value> = rings
            .iter()
            .map(|(_, ring)| match &ring.snapshot {
                Ok(snapshot) => {
                    serde_json::json!({ "location": ring.location, "snapshot": snapshot })
                }
                Err(error) => {
                    serde_json::json!({ "location": ring.location, "error": error.to_string() })
                }
            })
            .collect();
        *out += &to_json(&entries)?;
        return Ok(());
    }
    if rings.is_empty() {
        out.push_str("no rings found\n");
        return Ok(());
    }
    let headers = [
        "LOCATION",
        "EVENT",
        "CAPACITY",
        "CONSUMERS",
        "PRODUCER",
        "PUBLISHED",
    ];
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (_, ring) in &rings {
        match &ring.snapshot {
            Ok(s) => rows.push(vec![
                ring.location.clone(),
                s.event.name.clone(),
                s.capacity.to_string(),
                format!(
                    "{} ({} gating)",
                    s.consumers.len(),
                    s.gating_consumers().count()
                ),
                format!("pid {} {}", s.producer.pid, producer_state(s)),
                s.producer.published.to_string(),
            ]),
            Err(error) => errors.push(format!("{}: error: {error}\n", ring.location)),
        }
    }
    if !rows.is_empty() {
        *out += &table(&headers, &rows, "");
    }
    for error in errors {
        out.push_str(&error);
    }
    Ok(())
}

fn inspect(ring: &str, json: bool, out: &mut String) -> Result<(), String> {
    let s = RingSnapshot::open(ring).map_err(|error| error.to_string())?;
    if json {
        *out += &to_json(&s)?;
        return Ok(());
    }
    field(out, "ring", format!("{} ({})", s.location, s.backend));
    field(
        out,
        "format",
        format!("version {}, epoch {:#018x}", s.format_version, s.epoch),
    );
    field(
        out,
        "created",
        format!("by pid {}, {}", s.creator_pid, age(s.created_unix_ns)),
    );
    field(
        out,
        "capacity",
        format!(
            "{} events of {} bytes, {} consumer slots, {} bytes in all",
            s.capacity, s.event.size, s.consumer_slots, s.total_len
        ),
    );
    field(
        out,
        "state",
        if s.closed { "closed" } else { "open" }.into(),
    );
    let event = &s.event;
    field(
        out,
        "event",
        format!(
            "{}  size {} align {} fingerprint {:#018x}",
            event.name, event.size, event.align, event.fingerprint
        ),
    );
    let fields: Vec<Vec<String>> = event
        .fields
        .iter()
        .map(|f| {
            vec![
                f.path.clone(),
                f.offset.to_string(),
                f.size.to_string(),
                f.type_name.clone(),
            ]
        })
        .collect();
    *out += &table(&["FIELD", "OFFSET", "SIZE", "TYPE"], &fields, "  ");
    if (event.fields.len() as u64) < u64::from(event.total_fields) {
        *out += &format!(
            "  ({} more fields not recorded in the segment)\n",
            u64::from(event.total_fields) - event.fields.len() as u64
        );
    }
    let p = &s.producer;
    field(
        out,
        "producer",
        format!(
            "pid {} {}, published {}, evictions {}, dead consumers evicted {}",
            p.pid,
            producer_state(&s),
            p.published,
            p.evictions,
            p.dead_consumers_evicted
        ),
    );
    field(
        out,
        "waiting",
        format!(
            "found the ring full {} times, waited {}, slept {} times, woke consumers {} times",
            p.ring_full,
            milliseconds(p.wait_ns),
            p.sleeps,
            p.wakeups_sent
        ),
    );
    field(out, "consumers", consumers_summary(&s));
    let consumers: Vec<Vec<String>> = s
        .consumers
        .iter()
        .map(|c| {
            let mut row = consumer_cells(c);
            row.extend([
                yes_no(c.gating),
                yes_no(c.durable),
                c.empty_polls.to_string(),
                c.sleeps.to_string(),
                milliseconds(c.wait_ns),
            ]);
            row
        })
        .collect();
    if !consumers.is_empty() {
        let headers = [
            "SLOT",
            "ID",
            "STATE",
            "PID",
            "ALIVE",
            "CURSOR",
            "LAG",
            "GATING",
            "DURABLE",
            "EMPTY POLLS",
            "SLEEPS",
            "WAITED",
        ];
        *out += &table(&headers, &consumers, "  ");
    }
    Ok(())
}

fn clean(
    dirs: &[PathBuf],
    shared_memory: bool,
    dry_run: bool,
    out: &mut String,
) -> Result<(), String> {
    let mut failures = 0;
    let mut removed = 0;
    for (kind, ring) in find_rings(dirs, shared_memory)? {
        let snapshot = match ring.snapshot {
            Ok(snapshot) => snapshot,
            Err(error) => {
                eprintln!("dmp: skipped {}: {error}", ring.location);
                continue;
            }
        };
        if snapshot.producer.alive {
            continue;
        }
        // The listing may be old by now: a new producer may have reclaimed the name. Remove only the ring
        // that was seen dead, and only if it still is.
        let still_dead = match kind {
            Kind::SharedMemory => RingSnapshot::open_shared_memory(&ring.location),
            Kind::File => RingSnapshot::open_file(&ring.location),
        }
        .is_ok_and(|fresh| fresh.epoch == snapshot.epoch && !fresh.producer.alive);
        if !still_dead {
            continue;
        }
        let what = format!(
            "{} ({}, producer pid {} {}, published {})",
            ring.location,
            snapshot.event.name,
            snapshot.producer.pid,
            producer_state(&snapshot),
            snapshot.producer.published
        );
        removed += 1;
        if dry_run {
            *out += &format!("would remove {what}\n");
            continue;
        }
        let path = match kind {
            Kind::SharedMemory => Path::new("/dev/shm").join(ring.location.trim_start_matches('/')),
            Kind::File => PathBuf::from(&ring.location),
        };
        match std::fs::remove_file(&path) {
            Ok(()) => *out += &format!("removed {what}\n"),
            Err(error) => {
                removed -= 1;
                failures += 1;
                eprintln!("dmp: cannot remove {}: {error}", ring.location);
            }
        }
    }
    if removed == 0 && failures == 0 {
        out.push_str("nothing to clean: no ring with a dead producer\n");
    }
    match failures {
        0 => Ok(()),
        n => Err(format!("{n} ring(s) could not be removed")),
    }
}

/// One `label  text` line of a ring's description.
fn field(out: &mut String, label: &str, text: String) {
    *out += &format!("{label:<11}{text}\n");
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// The consumer's id, or `-` for an anonymous consumer.
fn consumer_id(consumer: &ConsumerView) -> String {
    if consumer.id.is_empty() {
        "-".into()
    } else {
        consumer.id.clone()
    }
}

/// `alive`, `closed` (the producer exited cleanly) or `dead` (it died without closing the ring).
fn producer_state(snapshot: &RingSnapshot) -> &'static str {
    match (snapshot.producer.alive, snapshot.closed) {
        (true, _) => "alive",
        (false, true) => "closed",
        (false, false) => "dead",
    }
}

fn state_name(state: ConsumerState) -> String {
    match state {
        ConsumerState::Claimed => "claimed".into(),
        ConsumerState::Joining => "joining".into(),
        ConsumerState::Active => "active".into(),
        ConsumerState::Evicting => "evicting".into(),
        ConsumerState::Evicted => "evicted".into(),
        ConsumerState::Reserved => "reserved".into(),
        ConsumerState::Untethered => "untethered".into(),
        ConsumerState::Unknown(raw) => format!("unknown ({raw})"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// How long ago a Unix time in nanoseconds was, e.g. `3.2 s ago`.
fn age(unix_ns: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| now.as_nanos() as u64);
    let seconds = now.saturating_sub(unix_ns) as f64 / 1e9;
    match seconds {
        s if s < 120.0 => format!("{s:.1} s ago"),
        s if s < 7200.0 => format!("{:.1} min ago", s / 60.0),
        s if s < 172_800.0 => format!("{:.1} h ago", s / 3600.0),
        s => format!("{:.1} days ago", s / 86400.0),
    }
}

/// Left-aligned columns as wide as their widest cell, each line prefixed with `indent`.
/// The cells every consumer table starts with: slot, id, state, pid, alive, cursor, lag.
fn consumer_cells(c: &ConsumerView) -> Vec<String> {
    vec![
        c.slot.to_string(),
        consumer_id(c),
        state_name(c.state),
        c.pid.to_string(),
        yes_no(c.alive),
        c.cursor.to_string(),
        c.lag.to_string(),
    ]
}

/// `N in use, M gating`: the consumer table in a line.
fn consumers_summary(s: &RingSnapshot) -> String {
    format!(
        "{} in use, {} gating",
        s.consumers.len(),
        s.gating_consumers().count()
    )
}

/// Nanoseconds as milliseconds, for counters of time spent waiting.
fn milliseconds(nanos: u64) -> String {
    format!("{:.1} ms", nanos as f64 / 1e6)
}

fn table(headers: &[&str], rows: &[Vec<String>], indent: &str) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text += indent;
        text += cells.join("  ").trim_end();
        text.push('\n');
    }
    text
}

fn to_json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|json| json + "\n")
        .map_err(|error| format!("cannot serialize to JSON: {error}"))
}
