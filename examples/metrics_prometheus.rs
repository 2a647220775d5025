//! disruptor-mp's metrics reporter behind a Prometheus scrape endpoint.
//!
//! ```text
//! cargo run --example metrics_prometheus --features metrics -- [--seconds N] [--listen ADDR]
//! curl -s http://127.0.0.1:9898/metrics | grep dmp_
//! ```
//!
//! Installs `metrics-exporter-prometheus` as the `metrics` recorder, serving `/metrics` on
//! `127.0.0.1:9898` (or `--listen`), creates a ring with a producer publishing a few thousand events a
//! second and a consumer `ledger` that drains it in bursts (so its lag moves), and starts a
//! [`MetricsReporter`] over the ring. Runs for `--seconds` (default 30), then stops everything and exits.

use disruptor_mp::metrics_reporter::MetricsReporter;
use disruptor_mp::{attach_shared_consumer, build_shared_single_producer, ConsumeError, RingEvent};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(RingEvent, Clone, Copy, Default, Debug)]
#[repr(C)]
struct Fill {
    order: u64,
    price: f64,
    qty: u64,
}

struct Options {
    seconds: u64,
    listen: SocketAddr,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        seconds: 30,
        listen: SocketAddr::from(([127, 0, 0, 1], 9898)),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => {
                options.seconds = value
                    .parse()
                    .map_err(|_| format!("--seconds: {value:?} is not a number"))?;
            }
            "--listen" => {
                options.listen = value.parse().map_err(|_| {
                    format!("--listen: {value:?} is not an address like 127.0.0.1:9898")
                })?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\nusage: metrics_prometheus [--seconds N] [--listen ADDR]");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(&options) {
        eprintln!("metrics_prometheus: {error}");
        std::process::exit(1);
    }
}

fn run(options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    // The recorder must be installed before the reporter registers its gauges.
    PrometheusBuilder::new()
        .with_http_listener(options.listen)
        .install()?;

    let name = format!("fills-{}", std::process::id());
    let mut producer = build_shared_single_producer::<Fill>(&name, 65_536).build_producer()?;
    let mut consumer = attach_shared_consumer::<Fill>(&name)
        .with_consumer_id("ledger")
        .build_consumer()?;
    let ring = producer.segment_name().to_string();

    let stop = Arc::new(AtomicBool::new(false));
    // About 5,000 events a second: 50 every 10 ms.
    let producing = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || -> Result<(), String> {
            let mut order = 0u64;
            let mut batch = Vec::with_capacity(50);
            while !stop.load(Ordering::Relaxed) {
                batch.clear();
                batch.extend((order..order + 50).map(|order| Fill {
                    order,
                    price: 100.0 + (order % 100) as f64 / 100.0,
                    qty: 1 + order % 7,
                }));
                producer
                    .publish_batch_timeout(&batch, Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
                order += 50;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(()) // dropping the producer closes the ring
        }
    });
    // Drains whatever is there every 300 ms, so its lag climbs and falls back.
    let consuming = std::thread::spawn({
        let stop = Arc::clone(&stop);
        move || -> Result<u64, String> {
            let mut quantity = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(300));
                loop {
                    match consumer.try_consume_batch(usize::MAX, |fill, _, _| quantity += fill.qty)
                    {
                        Ok(0) | Err(ConsumeError::Closed) => break,
                        Ok(_) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
            }
            Ok(quantity)
        }
    });

    let reporter = MetricsReporter::builder()
        .ring(ring.as_str())
        .interval(Duration::from_secs(1))
        .prefix("dmp")
        .start()?;
    println!(
        "ring {ring}: producer ~5,000 events/s, consumer `ledger` draining every 300 ms; \
         reporting every second for {} s",
        options.seconds
    );
    println!(
        "scrape it with:  curl -s http://{}/metrics | grep dmp_",
        options.listen
    );

    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    while Instant::now() < deadline && !producing.is_finished() && !consuming.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    reporter.stop();
    let produced = producing
        .join()
        .map_err(|_| "the producer thread panicked")?;
    let consumed = consuming
        .join()
        .map_err(|_| "the consumer thread panicked")?;
    produced?;
    println!("done: `ledger` consumed {} units of quantity", consumed?);
    Ok(())
}
