//! The figures of a whole invocation, as a markdown report and as the JSON the chart
//! renderer reads.

use hdrhistogram::Histogram;
use serde_json::json;

use crate::figures::{median, thousands};
use crate::system::cpu_model;
use crate::workload::{PAYLOAD_BYTES, Sample, Settings, latency_histogram};
use crate::{CLIENT_COUNTS, SIDES, Side, openraft_cluster, raft_tokio_cluster};

/// The latency percentiles charted.
const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// One side at one client count, over every round.
pub(crate) struct Point {
    /// Writes per second: the median of the rounds, and the slowest and fastest round.
    pub(crate) median: f64,
    pub(crate) minimum: f64,
    pub(crate) maximum: f64,
    /// Every round's latencies merged: each write of every window counts once.
    pub(crate) latencies: Histogram<u64>,
}

/// `points[client count][side]`.
pub(crate) struct Results {
    points: Vec<[Point; 2]>,
}

impl Results {
    pub(crate) fn new(samples: &[[Vec<Sample>; 2]]) -> Results {
        let points = samples
            .iter()
            .map(|per_side| {
                [0, 1].map(|side| {
                    let rounds = &per_side[side];
                    let rates: Vec<f64> = rounds
                        .iter()
                        .map(|sample| sample.writes_per_second)
                        .collect();
                    let mut latencies = latency_histogram();
                    for sample in rounds {
                        latencies
                            .add(&sample.latencies)
                            .expect("histograms of the same bounds add");
                    }
                    Point {
                        median: median(rates.clone()),
                        minimum: rates.iter().copied().fold(f64::INFINITY, f64::min),
                        maximum: rates.iter().copied().fold(0.0, f64::max),
                        latencies,
                    }
                })
            })
            .collect();
        Results { points }
    }

    fn point(&self, clients: usize, side: Side) -> &Point {
        &self.points[clients][side as usize]
    }
}

/// The latency at `percentile`, in microseconds.
fn micros(latencies: &Histogram<u64>, percentile: f64) -> f64 {
    latencies.value_at_percentile(percentile) as f64 / 1e3
}

pub(crate) fn print_markdown(
    results: &Results,
    settings: &Settings,
    rounds: usize,
    quick: bool,
    load_at_start: &str,
) {
    println!(
        "{} mode, {rounds} rounds: in each round each client count runs once on each side, \
         the sides taking turns (which goes first alternates every round); every run starts \
         a fresh cluster, writes for {} ms of warm-up, then counts the writes completed in a \
         window of {} ms. Writes/s are medians over the rounds; latencies are percentiles of \
         every round's writes together.",
        if quick { "Quick" } else { "Full" },
        settings.warm_up.as_millis(),
        settings.window.as_millis(),
    );
    println!();
    println!(
        "- machine: {} CPUs (`nproc`), `{}` (`/proc/cpuinfo`), load average at start `{}`",
        std::thread::available_parallelism().map_or(0, |count| count.get()),
        cpu_model(),
        load_at_start
    );
    println!(
        "- `{}`, release profile; `openraft` {}, `tokio` {}",
        env!("RUSTC_VERSION"),
        env!("OPENRAFT_VERSION"),
        env!("TOKIO_VERSION")
    );
    println!(
        "- runtimes: the nodes on a Tokio runtime of {} worker threads, the clients on \
         another of {} (openraft's benchmark defaults are 16 and 2); raft-tokio's store and \
         state machine run on the nodes' driver tasks here, so it starts no threads of its own",
        settings.server_workers, settings.client_workers
    );
    println!(
        "- each write: a fresh {PAYLOAD_BYTES}-byte command, resolved once the leader applied it; \
         state machines that count commands and bytes"
    );
    println!("- raft-tokio: {}", raft_tokio_cluster::CONFIG_NOTE);
    println!("- openraft: {}", openraft_cluster::CONFIG_NOTE);
    println!();
    println!(
        "| clients | raft-tokio writes/s | openraft writes/s | ratio raft-tokio/openraft \
         | raft-tokio p50 / p99 / p99.9 µs | openraft p50 / p99 / p99.9 µs |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    for (position, clients) in CLIENT_COUNTS.iter().enumerate() {
        let [tokio, openraft] = SIDES.map(|side| results.point(position, side));
        let latencies = |point: &Point| {
            format!(
                "{} / {} / {}",
                one_decimal(micros(&point.latencies, 50.0)),
                one_decimal(micros(&point.latencies, 99.0)),
                one_decimal(micros(&point.latencies, 99.9))
            )
        };
        println!(
            "| {clients} | {} | {} | {:.2} | {} | {} |",
            thousands(tokio.median),
            thousands(openraft.median),
            tokio.median / openraft.median,
            latencies(tokio),
            latencies(openraft),
        );
    }
    println!();
    println!("A ratio above 1 is in raft-tokio's favour.");
    println!();
    println!("Spread over the rounds, writes/s (min–max):");
    println!();
    for (position, clients) in CLIENT_COUNTS.iter().enumerate() {
        let ranges = SIDES.map(|side| {
            let point = results.point(position, side);
            format!(
                "{} {}–{}",
                side.name(),
                thousands(point.minimum),
                thousands(point.maximum)
            )
        });
        println!("- {clients} clients: {}", ranges.join(", "));
    }
}

/// The figures in the chart renderer's schema: throughput medians, and latency
/// percentiles in microseconds from the merged histograms.
pub(crate) fn chart_json(results: &Results) -> String {
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for side in SIDES {
        for (position, clients) in CLIENT_COUNTS.iter().enumerate() {
            let point = results.point(position, side);
            throughput.push(json!({"side": side.name(), "x": clients, "value": point.median}));
            let percentiles: Vec<[f64; 2]> = PERCENTILES
                .iter()
                .map(|percentile| [*percentile, micros(&point.latencies, *percentile)])
                .collect();
            latency.push(json!({"side": side.name(), "x": clients, "percentiles": percentiles}));
        }
    }
    let chart = json!({
        "name": "runtime",
        "title": "raft-tokio against openraft: three nodes in one process, writes until applied",
        "x_label": "clients",
        "unit": "writes/s",
        "sides": SIDES.map(Side::name),
        "throughput": throughput,
        "latency": latency,
    });
    let mut text = serde_json::to_string_pretty(&chart).expect("JSON values always serialize");
    text.push('\n');
    text
}

fn one_decimal(value: f64) -> String {
    format!("{value:.1}")
}
