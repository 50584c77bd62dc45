//! The markdown report and the JSON figures.

use std::fmt::Write as _;
use std::path::Path;

use hdrhistogram::Histogram;
use serde_json::json;

use crate::figures::{median, thousands};
use crate::generator::latency_histogram;
use crate::{DiskProbe, Plan, SIDES, Sample, Side, VALUE_BYTES, system};

/// The percentiles the JSON gives for every side and client count.
const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// What the report says about the run besides the figures, read when it starts.
pub(crate) struct Context {
    quick: bool,
    plan: Plan,
    load_at_start: String,
    started: String,
    /// etcd's version, as `etcd --version` gives it (`3.4.23`).
    etcd_version: String,
    /// The Go release etcd was built with.
    etcd_go: String,
    raft_kv: String,
}

impl Context {
    /// Reads the clock and the load average now; `etcd_version_text` is the output of
    /// `etcd --version`.
    pub(crate) fn new(quick: bool, plan: Plan, etcd_version_text: &str, raft_kv: &Path) -> Self {
        let field = |prefix: &str| {
            etcd_version_text
                .lines()
                .find_map(|line| line.strip_prefix(prefix))
                .map_or_else(|| "unknown".to_owned(), |value| value.trim().to_owned())
        };
        let raft_kv = std::fs::canonicalize(raft_kv).unwrap_or_else(|_| raft_kv.to_path_buf());
        Context {
            quick,
            plan,
            load_at_start: system::load_average(),
            started: system::command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
                .map_or_else(|| "unknown".to_owned(), |text| text.trim().to_owned()),
            etcd_version: field("etcd Version:"),
            etcd_go: field("Go Version:"),
            raft_kv: raft_kv.display().to_string(),
        }
    }
}

/// What the rounds of one side at one client count add up to.
struct Summary {
    /// Median over the rounds.
    writes_per_second: f64,
    minimum: f64,
    maximum: f64,
    /// Every round's histogram merged.
    latencies: Histogram<u64>,
    errors: u64,
    last_error: Option<String>,
    leader_moved: usize,
    leader_cores: f64,
    followers_cores: f64,
    generator_cores: f64,
    machine_busy: f64,
    leader_fsyncs_per_second: f64,
    writes_per_fsync: f64,
    leader_fsync_busy: f64,
    /// CPU time of the three servers per successful write, in microseconds.
    servers_micros_per_write: f64,
    /// CPU time of the load generator per successful write, in microseconds.
    generator_micros_per_write: f64,
}

impl Summary {
    fn of(samples: &[Sample]) -> Summary {
        let values =
            |value: fn(&Sample) -> f64| -> Vec<f64> { samples.iter().map(value).collect() };
        let rates = values(|sample| sample.writes_per_second);
        let mut latencies = latency_histogram();
        for sample in samples {
            latencies
                .add(&sample.latencies)
                .expect("histograms of equal bounds add up");
        }
        Summary {
            writes_per_second: median(rates.clone()),
            minimum: rates.iter().copied().fold(f64::INFINITY, f64::min),
            maximum: rates.iter().copied().fold(0.0, f64::max),
            latencies,
            errors: samples.iter().map(|sample| sample.errors).sum(),
            last_error: samples
                .iter()
                .rev()
                .find_map(|sample| sample.last_error.clone()),
            leader_moved: samples.iter().filter(|sample| sample.leader_moved).count(),
            leader_cores: median(values(|sample| sample.leader_cores)),
            followers_cores: median(values(|sample| sample.followers_cores)),
            generator_cores: median(values(|sample| sample.generator_cores)),
            machine_busy: median(values(|sample| sample.machine_busy)),
            leader_fsyncs_per_second: median(values(|sample| sample.leader_fsyncs_per_second)),
            writes_per_fsync: median(values(|sample| {
                if sample.leader_fsyncs_per_second > 0.0 {
                    sample.writes_per_second / sample.leader_fsyncs_per_second
                } else {
                    0.0
                }
            })),
            leader_fsync_busy: median(values(|sample| sample.leader_fsync_busy)),
            servers_micros_per_write: median(values(|sample| {
                per_write(sample.leader_cores + sample.followers_cores, sample)
            })),
            generator_micros_per_write: median(values(|sample| {
                per_write(sample.generator_cores, sample)
            })),
        }
    }

    /// A percentile of the merged latencies, in milliseconds.
    fn millis(&self, percentile: f64) -> f64 {
        self.latencies.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }
}

/// Microseconds of CPU per successful write, for `cores` busy over the sample's window.
fn per_write(cores: f64, sample: &Sample) -> f64 {
    if sample.writes_per_second > 0.0 {
        1e6 * cores / sample.writes_per_second
    } else {
        0.0
    }
}

fn summaries(results: &[[Vec<Sample>; 2]]) -> Vec<[Summary; 2]> {
    results
        .iter()
        .map(|samples| [Summary::of(&samples[0]), Summary::of(&samples[1])])
        .collect()
}

/// The markdown report; `filesystem` names where the data directories were, `disk` what
/// its fsyncs cost.
pub(crate) fn markdown(
    context: &Context,
    filesystem: &str,
    disk: &DiskProbe,
    results: &[[Vec<Sample>; 2]],
) -> String {
    let plan = &context.plan;
    let summaries = summaries(results);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(
        out,
        "{} mode, {} rounds per client count: in each round both sides run once, taking \
         turns (which goes first rotates every round); each run looks up the leader, loads \
         it for {:.0} s of warm-up, then measures {:.0} s. Writes/s: the median over the \
         rounds; latencies: percentiles of all rounds' histograms merged.",
        if context.quick { "Quick" } else { "Full" },
        plan.rounds,
        plan.warm_up.as_secs_f64(),
        plan.measured.as_secs_f64()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- machine: {} CPUs (`nproc`), `{}` (`/proc/cpuinfo`), load average at start `{}` \
         ({}); data directories on {filesystem}",
        system::processors(),
        system::cpu_model(),
        context.load_at_start,
        context.started
    );
    let _ = writeln!(
        out,
        "- disk, after the runs: one thread overwriting 4 KiB and calling `fdatasync` in a \
         loop in the data directories' filesystem did {} rounds/s (fdatasync median {:.0} µs, \
         p99 {:.0} µs)",
        thousands(disk.per_second),
        disk.median_micros,
        disk.p99_micros
    );
    let _ = writeln!(
        out,
        "- etcd {} (`etcd --version`; built with {}): three members, default settings \
         (the WAL fsynced before a member acknowledges an entry, 100 ms heartbeats, 1 s \
         election timeout); writes through the v3 JSON gateway on the client port",
        context.etcd_version, context.etcd_go
    );
    let _ = writeln!(
        out,
        "- raft-kv: `{}` (`cargo build --release -p raft-kv`), three nodes, default flags \
         (100 ms ticks; redb storage committing each batch of writes with \
         `Durability::Immediate`, an fsync, before the node acknowledges it)",
        context.raft_kv
    );
    let _ = writeln!(
        out,
        "- load generator: `{}`, release profile; each client one thread and one \
         keep-alive HTTP/1.1 connection to the leader, one write at a time of a \
         {VALUE_BYTES}-byte value to key `load-<client>-<n>` (n cycling through 1,024): \
         raft-kv `PUT /<key>`, etcd `POST /v3/kv/put` with `{{\"key\", \"value\"}}` in \
         base64; both clusters stay up for the whole run",
        env!("RUSTC_VERSION")
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| clients | metric | raft-kv | etcd | ratio raft-kv/etcd |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|");
    for (clients, [ours, theirs]) in plan.client_counts.iter().zip(&summaries) {
        let _ = writeln!(
            out,
            "| {clients} | writes/s | {} | {} | {:.2} |",
            thousands(ours.writes_per_second),
            thousands(theirs.writes_per_second),
            ours.writes_per_second / theirs.writes_per_second
        );
        for (name, percentile) in [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)] {
            let _ = writeln!(
                out,
                "| {clients} | {name} ms | {:.2} | {:.2} | {:.2} |",
                ours.millis(percentile),
                theirs.millis(percentile),
                ours.millis(percentile) / theirs.millis(percentile)
            );
        }
        let _ = writeln!(
            out,
            "| {clients} | failed writes | {} | {} | |",
            ours.errors, theirs.errors
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "A ratio above 1 in writes/s, or below 1 in latency, is in raft-kv's favour."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Where the time went (medians over the rounds). CPU in cores (1.00: one core busy \
         for the whole window) from `/proc/<pid>/stat`; machine busy: all cores, other jobs \
         included, from `/proc/stat`; fsyncs: the leader's log fsyncs from its `/metrics` \
         (raft-kv `raft_fsync_seconds`, etcd `etcd_disk_wal_fsync_duration_seconds`), and \
         the share of the window spent in them. CPU µs/write: CPU time per successful \
         write, which other load on the machine disturbs less than writes/s."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| clients | side | leader CPU | followers CPU | generator CPU | machine busy | \
         servers CPU µs/write | generator CPU µs/write | leader fsyncs/s | writes per \
         fsync | leader time in fsync |"
    );
    let _ = writeln!(
        out,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (clients, pair) in plan.client_counts.iter().zip(&summaries) {
        for (side, summary) in SIDES.iter().zip(pair) {
            let _ = writeln!(
                out,
                "| {clients} | {} | {:.2} | {:.2} | {:.2} | {:.0}% | {:.0} | {:.0} | {} | {:.1} \
                 | {:.0}% |",
                side.name(),
                summary.leader_cores,
                summary.followers_cores,
                summary.generator_cores,
                100.0 * summary.machine_busy,
                summary.servers_micros_per_write,
                summary.generator_micros_per_write,
                thousands(summary.leader_fsyncs_per_second),
                summary.writes_per_fsync,
                100.0 * summary.leader_fsync_busy
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "Spread of writes/s over the rounds (min–max):");
    let _ = writeln!(out);
    for (clients, pair) in plan.client_counts.iter().zip(&summaries) {
        let ranges: Vec<String> = SIDES
            .iter()
            .zip(pair)
            .map(|(side, summary)| {
                format!(
                    "{} {}–{}",
                    side.name(),
                    thousands(summary.minimum),
                    thousands(summary.maximum)
                )
            })
            .collect();
        let _ = writeln!(out, "- {clients} clients: {}", ranges.join(", "));
    }
    let _ = writeln!(out);
    let mut failures = Vec::new();
    let mut moves = Vec::new();
    for (clients, pair) in plan.client_counts.iter().zip(&summaries) {
        for (side, summary) in SIDES.iter().zip(pair) {
            if summary.errors > 0 {
                failures.push(format!(
                    "{} at {clients} clients: {} (the last: {})",
                    side.name(),
                    summary.errors,
                    summary.last_error.as_deref().unwrap_or("unknown")
                ));
            }
            if summary.leader_moved > 0 {
                moves.push(format!(
                    "{} at {clients} clients in {} of {} rounds",
                    side.name(),
                    summary.leader_moved,
                    plan.rounds
                ));
            }
        }
    }
    if failures.is_empty() {
        let _ = writeln!(out, "Every write of every measured window succeeded (2xx).");
    } else {
        let _ = writeln!(
            out,
            "**Failed writes** (a status other than 2xx, or a broken connection; not counted \
             in writes/s): {}.",
            failures.join("; ")
        );
    }
    if !moves.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "**Leadership moved** during a run: {}.",
            moves.join("; ")
        );
    }
    out
}

/// The figures for the chart renderer: medians of writes/s, and latency percentiles in
/// microseconds from the rounds' histograms merged.
pub(crate) fn json(context: &Context, results: &[[Vec<Sample>; 2]]) -> serde_json::Value {
    let summaries = summaries(results);
    let mut throughput = Vec::new();
    let mut latency = Vec::new();
    for (clients, pair) in context.plan.client_counts.iter().zip(&summaries) {
        for (side, summary) in SIDES.iter().zip(pair) {
            throughput.push(json!({
                "side": side.name(),
                "x": clients,
                "value": summary.writes_per_second,
            }));
            let percentiles: Vec<[f64; 2]> = PERCENTILES
                .iter()
                .map(|percentile| {
                    let micros = if *percentile >= 100.0 {
                        summary.latencies.max()
                    } else {
                        summary.latencies.value_at_quantile(percentile / 100.0)
                    };
                    [*percentile, micros as f64]
                })
                .collect();
            latency.push(json!({
                "side": side.name(),
                "x": clients,
                "percentiles": percentiles,
            }));
        }
    }
    json!({
        "name": "server",
        "title": format!(
            "raft-kv against etcd {}: three nodes on 127.0.0.1, fsync on, {VALUE_BYTES}-byte writes",
            context.etcd_version
        ),
        "x_label": "clients",
        "unit": "writes/s",
        "sides": SIDES.map(Side::name),
        "throughput": throughput,
        "latency": latency,
    })
}
