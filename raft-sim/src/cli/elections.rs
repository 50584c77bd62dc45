//! `raft-sim elections`: the Raft paper's Figure 16, time to elect a new leader after the
//! leader crashes, for several ranges of randomized election timeouts.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use raft_sim::elections::{ElectionExperiment, ElectionResults};
use raft_sim::faults::MILLISECOND;

use super::args::{Duration, TimeoutRange, parse_duration, parse_timeout_range};
use super::svg::{Chart, Scale, Series};
use super::{CliError, EXIT_FAILED, default_jobs};

/// The ranges of the paper's top graph, in ms.
const PAPER_RANGES: [(u32, u32); 6] = [
    (150, 150),
    (150, 151),
    (150, 155),
    (150, 175),
    (150, 200),
    (150, 300),
];

/// The thresholds of the "done within" columns, in ms.
const WITHIN_MS: [u64; 6] = [100, 200, 300, 400, 500, 1000];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum XScale {
    /// Logarithmic when the slowest trial took over five times the fastest decile.
    Auto,
    /// Linear milliseconds.
    Linear,
    /// Logarithmic milliseconds, as the paper's top graph.
    Log,
}

#[derive(Args, Debug)]
pub(crate) struct ElectionsArgs {
    /// An election timeout range, both ends included, in whole ms: 150..300ms, 150-300,
    /// 0.15..0.3s, or 150ms for 150..150ms. Repeat for several ranges [default: the
    /// paper's 150-150, 150-151, 150-155, 150-175, 150-200, 150-300 ms].
    #[arg(long = "timeout", value_name = "MIN..MAX", value_parser = parse_timeout_range)]
    timeouts: Vec<TimeoutRange>,

    /// Cluster size, 3 to 15 nodes.
    #[arg(long, value_name = "N", default_value_t = 5)]
    nodes: u64,

    /// Trials per timeout range.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    trials: u32,

    /// The seed of every random draw (the same seed gives the same table).
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,

    /// One-way message latency range, uniform, both ends included (5..10ms makes a
    /// broadcast to four followers take about 15 ms, as in the paper).
    #[arg(long, value_name = "MIN..MAX", value_parser = parse_latency_range, default_value = "5ms..10ms")]
    latency: LatencyRange,

    /// Heartbeat interval in whole ms [default: half the range's minimum timeout, as in
    /// the paper].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    heartbeat: Option<Duration>,

    /// Give a trial up when no new leader is elected this long after the crash.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "100s")]
    give_up: Duration,

    /// Draw the cumulative distributions into this SVG file [default: not drawn].
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,

    /// The x axis of the SVG.
    #[arg(long, value_enum, default_value_t = XScale::Auto)]
    x_scale: XScale,

    /// Worker threads [default: the available parallelism].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

/// A one-way latency range in nanoseconds, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LatencyRange(u64, u64);

impl std::fmt::Display for LatencyRange {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}..{}", Duration(self.0), Duration(self.1))
    }
}

/// Parses `5ms..10ms`, `5..10ms` (the unit of the upper end applies to both) or `7ms`.
fn parse_latency_range(text: &str) -> Result<LatencyRange, String> {
    let (low, high) = text.split_once("..").unwrap_or((text, text));
    let unit_of = |side: &str| {
        side.trim()
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .to_string()
    };
    let low = if unit_of(low).is_empty() {
        format!("{}{}", low.trim(), unit_of(high))
    } else {
        low.to_string()
    };
    let minimum = parse_duration(&low)?.0;
    let maximum = parse_duration(high)?.0;
    if maximum < minimum {
        return Err(format!("latency range '{text}' is reversed"));
    }
    Ok(LatencyRange(minimum, maximum))
}

fn milliseconds(nanos: u64) -> f64 {
    nanos as f64 / MILLISECOND as f64
}

fn percentile_cell(results: &ElectionResults, percent: f64) -> String {
    match results.percentile(percent) {
        Some(nanos) => format!("{:.0}", milliseconds(nanos)),
        None => "-".to_string(),
    }
}

pub(crate) fn run(arguments: &ElectionsArgs) -> Result<ExitCode, CliError> {
    let ranges: Vec<(u32, u32)> = if arguments.timeouts.is_empty() {
        PAPER_RANGES.to_vec()
    } else {
        arguments
            .timeouts
            .iter()
            .map(|range| (range.0, range.1))
            .collect()
    };
    let heartbeat_ms = match arguments.heartbeat {
        None => None,
        Some(Duration(nanos)) if nanos.is_multiple_of(MILLISECOND) && nanos > 0 => {
            Some(u32::try_from(nanos / MILLISECOND).map_err(|_| {
                CliError::Usage(format!("--heartbeat {} is too long", Duration(nanos)))
            })?)
        }
        Some(duration) => {
            return Err(CliError::Usage(format!(
                "--heartbeat {duration} must be a whole number of milliseconds (ticks are 1ms)"
            )));
        }
    };
    let experiments: Vec<ElectionExperiment> = ranges
        .iter()
        .map(|&range| {
            let defaults = ElectionExperiment::new(range);
            ElectionExperiment {
                nodes: arguments.nodes,
                heartbeat_ms: heartbeat_ms.unwrap_or(defaults.heartbeat_ms),
                latency_nanos: (arguments.latency.0, arguments.latency.1),
                trials: arguments.trials,
                seed: arguments.seed,
                give_up_nanos: arguments.give_up.0,
                ..defaults
            }
        })
        .collect();
    for experiment in &experiments {
        experiment.validate().map_err(|error| {
            CliError::Usage(format!("timeout range {}ms: {error}", experiment.label()))
        })?;
    }
    let jobs = match arguments.jobs {
        Some(0) => return Err(CliError::Usage("--jobs must be at least 1".to_string())),
        Some(jobs) => jobs,
        None => default_jobs(),
    };

    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Time without a leader after the leader crashes (Raft paper, Figure 16)"
    )?;
    writeln!(
        out,
        "{} nodes, {} trials per range, seed {}; one-way latency {} uniform, instant disks, 1ms ticks;",
        arguments.nodes, arguments.trials, arguments.seed, arguments.latency
    )?;
    writeln!(
        out,
        "heartbeat {}; leader crashed at a uniform moment within a heartbeat interval. Times in ms.",
        match heartbeat_ms {
            Some(ms) => format!("every {ms}ms"),
            None => "every half of the minimum timeout".to_string(),
        }
    )?;
    writeln!(out)?;
    let mut header = format!(
        "{:<12} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} |",
        "timeout", "hb", "p10", "p25", "p50", "p75", "p90", "p99", "max"
    );
    for within in WITHIN_MS {
        let label = if within.is_multiple_of(1000) {
            format!("<={}s", within / 1000)
        } else {
            format!("<={within}ms")
        };
        header.push_str(&format!(" {label:>7}"));
    }
    header.push_str(&format!(" {:>8}", "gave up"));
    writeln!(out, "{header}")?;
    writeln!(out, "{}", "-".repeat(header.len()))?;
    out.flush()?;

    let mut all_results = Vec::with_capacity(experiments.len());
    let mut failed = false;
    for experiment in &experiments {
        let results = match experiment.run_parallel(jobs) {
            Ok(results) => results,
            Err(error) => {
                writeln!(out, "{:<12} FAILED: {error}", experiment.label())?;
                failed = true;
                continue;
            }
        };
        let mut row = format!(
            "{:<12} {:>5} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} |",
            experiment.label(),
            experiment.heartbeat_ms,
            percentile_cell(&results, 10.0),
            percentile_cell(&results, 25.0),
            percentile_cell(&results, 50.0),
            percentile_cell(&results, 75.0),
            percentile_cell(&results, 90.0),
            percentile_cell(&results, 99.0),
            results.max().map_or("-".to_string(), |nanos| format!(
                "{:.0}",
                milliseconds(nanos)
            )),
        );
        for within in WITHIN_MS {
            let share = results.share_within(within * MILLISECOND) * 100.0;
            row.push_str(&format!(" {:>6.1}%", share));
        }
        row.push_str(&format!(" {:>8}", results.given_up()));
        writeln!(out, "{row}")?;
        out.flush()?;
        all_results.push(results);
    }

    if let Some(path) = &arguments.svg {
        let svg = chart(arguments, &all_results).render();
        std::fs::write(path, svg)
            .map_err(|error| CliError::Io(format!("cannot write {}: {error}", path.display())))?;
        writeln!(out)?;
        writeln!(out, "wrote {}", path.display())?;
    }
    if failed {
        Ok(ExitCode::from(EXIT_FAILED))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// The cumulative distributions: x is ms from the crash, y the share of trials with a
/// new leader by then. Given-up trials keep a curve below 100%.
fn chart(arguments: &ElectionsArgs, all_results: &[ElectionResults]) -> Chart {
    let fastest = all_results
        .iter()
        .filter_map(|results| results.percentile(10.0))
        .min()
        .map_or(1.0, milliseconds);
    let slowest = all_results
        .iter()
        .filter_map(ElectionResults::max)
        .max()
        .map_or(1000.0, milliseconds);
    let scale = match arguments.x_scale {
        XScale::Linear => Scale::Linear,
        XScale::Log => Scale::Log,
        XScale::Auto if slowest > 5.0 * fastest => Scale::Log,
        XScale::Auto => Scale::Linear,
    };
    let shortest = all_results
        .iter()
        .filter_map(|results| results.sorted_nanos.first().copied())
        .min()
        .map_or(1.0, milliseconds)
        .max(1.0);
    let x_range = match scale {
        Scale::Linear => {
            let ticks = super::svg::linear_ticks((0.0, slowest.max(1.0)), 10);
            let step = if ticks.len() > 1 {
                ticks[1] - ticks[0]
            } else {
                100.0
            };
            (0.0, (slowest / step).ceil().max(1.0) * step)
        }
        Scale::Log => {
            // The nearest 1, 2 or 5 times a power of ten outside the data, both ends.
            let nice = |value: f64| {
                let power = 10f64.powf(value.log10().floor());
                [1.0, 2.0, 5.0, 10.0].map(|factor| factor * power)
            };
            let low = nice(shortest)
                .into_iter()
                .rev()
                .find(|tick| *tick <= shortest)
                .unwrap_or(1.0);
            let high = nice(slowest)
                .into_iter()
                .find(|tick| *tick >= slowest)
                .unwrap_or(slowest)
                .max(low * 10.0);
            (low, high)
        }
    };
    let series = all_results
        .iter()
        .map(|results| {
            let total = results.trials.len().max(1) as f64;
            let mut points = vec![(x_range.0, 0.0)];
            for (done, &nanos) in results.sorted_nanos.iter().enumerate() {
                let x = milliseconds(nanos);
                points.push((x, done as f64 / total * 100.0));
                points.push((x, (done + 1) as f64 / total * 100.0));
            }
            let last = points.last().map_or(0.0, |point| point.1);
            points.push((x_range.1, last));
            Series {
                label: format!("{} ms", results.experiment.label()),
                points,
            }
        })
        .collect();
    Chart {
        title: "Time without a leader after the leader crashes".to_string(),
        subtitle: format!(
            "{} nodes, {} trials per range, one-way latency {}, seed {} (cf. Raft paper, Figure 16)",
            arguments.nodes, arguments.trials, arguments.latency, arguments.seed
        ),
        x_label: "time without leader (ms)".to_string(),
        y_label: "cumulative percent of trials".to_string(),
        x_range,
        x_scale: scale,
        y_range: (0.0, 100.0),
        y_ticks: vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0],
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_ranges() {
        let ms = MILLISECOND;
        assert_eq!(
            parse_latency_range("5ms..10ms"),
            Ok(LatencyRange(5 * ms, 10 * ms))
        );
        assert_eq!(
            parse_latency_range("5..10ms"),
            Ok(LatencyRange(5 * ms, 10 * ms))
        );
        assert_eq!(parse_latency_range("7ms"), Ok(LatencyRange(7 * ms, 7 * ms)));
        assert!(parse_latency_range("10..5ms").is_err());
    }
}
