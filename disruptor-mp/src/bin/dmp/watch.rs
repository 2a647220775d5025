//! `dmp watch`: one ring, redrawn every interval, with its publish and read rates.

use super::{consumer_cells, consumers_summary, field, producer_state, table, yes_no};
use disruptor_mp::observability::{ConsumerView, RingSnapshot};
use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// Clears the terminal and moves the cursor home, so that each frame replaces the last.
const CLEAR: &str = "\x1b[2J\x1b[H";

/// What the previous frame saw: rates are the differences from it.
struct Previous {
    at: Instant,
    epoch: u64,
    published: u64,
    /// Per slot: who owned it, and its cursor.
    consumers: HashMap<usize, (Owner, u64)>,
}

/// A slot's owner: another pid, or another join (the slot went through free), is another consumer.
#[derive(Clone, Copy, PartialEq)]
struct Owner {
    pid: u32,
    joined_unix_ns: u64,
}

impl Owner {
    fn of(consumer: &ConsumerView) -> Owner {
        Owner {
            pid: consumer.pid,
            joined_unix_ns: consumer.joined_unix_ns,
        }
    }
}

/// Snapshots `ring` every `interval` and prints a frame for each, `count` frames or until interrupted. A
/// ring that cannot be read at the first frame is the same error as `inspect`'s; one that goes away later
/// ends the watch with an error too.
pub(crate) fn watch(ring: &str, interval: Duration, count: Option<u64>) -> Result<(), String> {
    let terminal = io::stdout().is_terminal();
    let mut previous: Option<Previous> = None;
    let mut next = Instant::now();
    let mut frames = 0;
    loop {
        let snapshot = RingSnapshot::open(ring).map_err(|error| match frames {
            0 => error.to_string(),
            n => format!("ring gone after {n} frames: {error}"),
        })?;
        let at = Instant::now();
        let mut text = String::new();
        if terminal {
            text += CLEAR;
        } else if frames > 0 {
            text.push('\n');
        }
        frames += 1;
        text += &frame(&snapshot, previous.as_ref(), at, frames, interval);
        let mut stdout = io::stdout().lock();
        match stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
        {
            Ok(()) => {}
            // Whoever read the frames has stopped (`dmp watch ticks | head`): so does the watch.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            Err(error) => return Err(format!("cannot write to stdout: {error}")),
        }
        if count == Some(frames) {
            return Ok(());
        }
        previous = Some(Previous {
            at,
            epoch: snapshot.epoch,
            published: snapshot.producer.published,
            consumers: snapshot
                .consumers
                .iter()
                .map(|c| (c.slot, (Owner::of(c), c.cursor)))
                .collect(),
        });
        // Frames keep to the interval's schedule, however long drawing took; a late one starts afresh.
        next += interval;
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            None => next = now,
        }
    }
}

/// One frame: the ring, its producer with the publish rate, and the consumer table with read rates.
fn frame(
    s: &RingSnapshot,
    previous: Option<&Previous>,
    at: Instant,
    number: u64,
    interval: Duration,
) -> String {
    let mut out = format!(
        "dmp watch: frame {number}, every {} ms\n",
        interval.as_millis()
    );
    // A new producer that reclaimed the name made another ring: nothing of the old one carries over.
    let reclaimed = previous.filter(|p| p.epoch != s.epoch);
    let previous = previous.filter(|p| p.epoch == s.epoch);
    let elapsed = previous.map(|p| at.duration_since(p.at));
    let rate = |from: Option<u64>, to: u64| match (from, elapsed) {
        (Some(from), Some(elapsed)) if to >= from && !elapsed.is_zero() => {
            format!("{:.0}", (to - from) as f64 / elapsed.as_secs_f64())
        }
        _ => "-".to_string(),
    };
    let state = if s.closed { "closed" } else { "open" };
    field(
        &mut out,
        "ring",
        format!("{} ({}), {state}", s.location, s.backend),
    );
    if let Some(old) = reclaimed {
        field(
            &mut out,
            "epoch",
            format!(
                "changed from {:#018x} to {:#018x}: a new producer reclaimed the name; rates reset",
                old.epoch, s.epoch
            ),
        );
    }
    field(
        &mut out,
        "event",
        format!(
            "{}, {} events of {} bytes",
            s.event.name, s.capacity, s.event.size
        ),
    );
    let p = &s.producer;
    field(
        &mut out,
        "producer",
        format!(
            "pid {} {}, published {}, {} events/s",
            p.pid,
            producer_state(s),
            p.published,
            rate(previous.map(|p| p.published), p.published)
        ),
    );
    field(&mut out, "consumers", consumers_summary(s));
    let rows: Vec<Vec<String>> = s
        .consumers
        .iter()
        .map(|c| {
            let before = previous
                .and_then(|p| p.consumers.get(&c.slot))
                .filter(|(owner, _)| *owner == Owner::of(c))
                .map(|&(_, cursor)| cursor);
            let mut row = consumer_cells(c);
            row.extend([rate(before, c.cursor), yes_no(c.gating)]);
            row
        })
        .collect();
    if !rows.is_empty() {
        let headers = [
            "SLOT", "ID", "STATE", "PID", "ALIVE", "CURSOR", "LAG", "EVENTS/S", "GATING",
        ];
        out += &table(&headers, &rows, "  ");
    }
    out
}
