//! raft-core against raft-rs (the `raft` crate, tikv's port of etcd's raft) on the same
//! replication workload, in one binary, the two sides run alternately.
//!
//! The workload (`workload.rs`) is the one of `raft-core/benches/throughput.rs`: three
//! nodes in one thread, messages handed over directly between delivery rounds, in-memory
//! storage acknowledged at once, the whole log kept in memory, fresh 128-byte payloads, a
//! leader elected before measuring, no tick at all. An entry counts once every node has
//! applied it. Two modes: 1 outstanding proposal, and 256 outstanding.
//!
//! raft-rs runs twice: with `batch_append` on, so that both sides put the same number of
//! entries in each message (the comparison proper), and as configured by default.
//!
//! Usage: `compare-core [--quick] [--rounds N]`. Prints a markdown report to stdout.
// Only the counting allocator needs unsafe code, and it opts in locally.
#![deny(unsafe_code)]

mod allocations;
#[path = "../../common/figures.rs"]
mod figures;
mod raft_core_cluster;
mod raft_rs_cluster;
// The machine readings of raft-kv's load bench, shared as source by every comparison.
#[path = "../../../raft-kv/benches/load/system.rs"]
#[allow(dead_code)]
mod system;
mod workload;

use std::process::ExitCode;

use figures::{median, thousands};
use raft_core_cluster::RaftCoreCluster;
use raft_rs_cluster::RaftRsCluster;
use system::{cpu_model, load_average};
use workload::{MODES, Mode, Sample, measure};

/// How much each run measures.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    /// Entries before the measurement on each fresh cluster, then entries measured, for
    /// 1 and for 256 outstanding.
    warm_up: [u64; 2],
    entries: [u64; 2],
}

const FULL: Plan = Plan {
    rounds: 7,
    warm_up: [2_000, 32_768],
    entries: [200_000, 524_288],
};

const QUICK: Plan = Plan {
    rounds: 3,
    warm_up: [500, 4_096],
    entries: [10_000, 65_536],
};

/// The implementations measured, in table order.
// The variants are named after the crates, which happen to share their first word.
#[allow(clippy::enum_variant_names)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    RaftCore,
    /// raft-rs with `batch_append` on.
    RaftRs,
    /// raft-rs with `batch_append` off, its default.
    RaftRsUnbatched,
}

const SIDES: [Side; 3] = [Side::RaftCore, Side::RaftRs, Side::RaftRsUnbatched];

impl Side {
    fn measure(self, mode: Mode, warm_up: u64, entries: u64) -> Sample {
        match self {
            Side::RaftCore => measure::<RaftCoreCluster>(mode, warm_up, entries),
            Side::RaftRs => measure::<RaftRsCluster<true>>(mode, warm_up, entries),
            Side::RaftRsUnbatched => measure::<RaftRsCluster<false>>(mode, warm_up, entries),
        }
    }

    /// The side's name on the command line.
    fn key(self) -> &'static str {
        match self {
            Side::RaftCore => "raft-core",
            Side::RaftRs => "raft-rs",
            Side::RaftRsUnbatched => "raft-rs-unbatched",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::RaftCore => "raft-core",
            Side::RaftRs => "raft-rs",
            Side::RaftRsUnbatched => "raft-rs (batch_append off)",
        }
    }
}

fn main() -> ExitCode {
    let mut quick = false;
    let mut rounds = None;
    let mut profile = None;
    let mut json = None;
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--quick" => quick = true,
            "--rounds" => match arguments.next().and_then(|value| value.parse().ok()) {
                Some(count) if count > 0 => rounds = Some(count),
                _ => return usage("--rounds needs a positive number"),
            },
            "--profile" => match arguments.next().as_deref().and_then(Profile::parse) {
                Some(parsed) => profile = Some(parsed),
                None => return usage("--profile needs SIDE:OUTSTANDING, e.g. raft-core:256"),
            },
            "--json" => match arguments.next() {
                Some(path) => json = Some(std::path::PathBuf::from(path)),
                None => return usage("--json needs a file path"),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument {other:?}")),
        }
    }
    let mut plan = if quick { QUICK } else { FULL };
    if let Some(count) = rounds {
        plan.rounds = count;
    }

    if let Some(profile) = profile {
        profile.run(plan);
        return ExitCode::SUCCESS;
    }

    let load_at_start = load_average();
    // One discarded run of every side and mode first: the first runs of a fresh process
    // pay for page faults while the heap grows, and would penalize whichever side starts.
    for mode in MODES {
        for side in SIDES {
            side.measure(mode, QUICK.warm_up[0], QUICK.entries[0]);
        }
    }
    // samples[mode][side][round]
    let mut samples: Vec<[Vec<Sample>; 3]> =
        MODES.iter().map(|_| [vec![], vec![], vec![]]).collect();
    for round in 0..plan.rounds {
        for (mode_position, mode) in MODES.iter().enumerate() {
            // The sides take turns, and which goes first rotates every round, so that none
            // always runs on a machine warmed (or disturbed) by another.
            let mut order = SIDES;
            order.rotate_left(round % SIDES.len());
            for side in order {
                let sample = side.measure(
                    *mode,
                    plan.warm_up[mode_position],
                    plan.entries[mode_position],
                );
                eprintln!(
                    "round {}/{} {:<15} {:<26} {:>9.1} ns/entry {:>6.2} allocations/entry \
                     {:>5.2} messages/entry",
                    round + 1,
                    plan.rounds,
                    mode.name,
                    side.name(),
                    sample.nanoseconds_per_entry,
                    sample.allocations_per_entry,
                    sample.messages_per_entry
                );
                samples[mode_position][side as usize].push(sample);
            }
        }
    }
    print_report(&plan, quick, &load_at_start, &samples);
    if let Some(path) = json
        && let Err(error) = std::fs::write(&path, chart_json(&samples))
    {
        eprintln!("compare-core: cannot write {}: {error}", path.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

const USAGE: &str = "usage: compare-core [--quick] [--rounds N] [--profile SIDE:OUTSTANDING]
                    [--json PATH]

Runs raft-core and raft-rs alternately on the same three-node replication workload and
prints a markdown report. --quick: 3 rounds of fewer entries; default: 7 full rounds;
--rounds N overrides the number of rounds of either. --profile runs only one side
(raft-core, raft-rs or raft-rs-unbatched) in one mode (1 or 256 outstanding), round after
round, printing each round's time: a process to hand to perf or callgrind. --json writes
the median throughputs to PATH for compare/chart.py.";

/// One side in one mode, measured alone (for profilers).
struct Profile {
    side: Side,
    mode: usize,
}

impl Profile {
    fn parse(text: &str) -> Option<Profile> {
        let (side, outstanding) = text.split_once(':')?;
        let side = SIDES
            .into_iter()
            .find(|candidate| candidate.key() == side)?;
        let outstanding: u64 = outstanding.parse().ok()?;
        let mode = MODES
            .iter()
            .position(|mode| mode.outstanding == outstanding)?;
        Some(Profile { side, mode })
    }

    fn run(self, plan: Plan) {
        let mode = MODES[self.mode];
        for round in 0..plan.rounds {
            let sample = self
                .side
                .measure(mode, plan.warm_up[self.mode], plan.entries[self.mode]);
            eprintln!(
                "round {}/{} {} {}: {:.1} ns/entry",
                round + 1,
                plan.rounds,
                self.side.name(),
                mode.name,
                sample.nanoseconds_per_entry
            );
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\n{USAGE}");
    ExitCode::from(2)
}

/// One row of the table: what is taken from each sample, and how its median is shown.
struct Metric {
    name: &'static str,
    value: fn(&Sample) -> f64,
    format: fn(f64) -> String,
}

impl Metric {
    fn new(name: &'static str, value: fn(&Sample) -> f64, format: fn(f64) -> String) -> Metric {
        Metric {
            name,
            value,
            format,
        }
    }
}

fn two_decimals(value: f64) -> String {
    format!("{value:.2}")
}

/// The median throughput of every side and mode, in the schema `compare/chart.py` reads.
fn chart_json(samples: &[[Vec<Sample>; 3]]) -> String {
    let mut points = Vec::new();
    for (position, mode) in MODES.iter().enumerate() {
        for side in SIDES {
            let rates = samples[position][side as usize]
                .iter()
                .map(|sample| 1e9 / sample.nanoseconds_per_entry)
                .collect();
            points.push(format!(
                "{{\"side\": \"{}\", \"x\": {}, \"value\": {:.1}}}",
                side.name(),
                mode.outstanding,
                median(rates)
            ));
        }
    }
    let sides: Vec<String> = SIDES
        .iter()
        .map(|side| format!("\"{}\"", side.name()))
        .collect();
    format!(
        "{{\"name\": \"core\", \"title\": \"raft-core against raft-rs: three nodes in one \
         thread\", \"x_label\": \"outstanding proposals\", \"unit\": \"entries/s\", \
         \"sides\": [{}], \"throughput\": [{}], \"latency\": []}}\n",
        sides.join(", "),
        points.join(", ")
    )
}

fn print_report(plan: &Plan, quick: bool, load_at_start: &str, samples: &[[Vec<Sample>; 3]]) {
    let side_samples = |mode: usize, side: Side, metric: fn(&Sample) -> f64| -> Vec<f64> {
        samples[mode][side as usize].iter().map(metric).collect()
    };
    let rate = |sample: &Sample| 1e9 / sample.nanoseconds_per_entry;
    let time = |sample: &Sample| sample.nanoseconds_per_entry;
    let allocations = |sample: &Sample| sample.allocations_per_entry;
    let messages = |sample: &Sample| sample.messages_per_entry;

    println!(
        "{} mode, {} rounds: in each round each mode runs once on every side, the sides \
         taking turns (which goes first rotates every round); every run builds and elects \
         a fresh cluster and warms it up outside the measurement, after one discarded run \
         of each. Medians over the rounds.",
        if quick { "Quick" } else { "Full" },
        plan.rounds
    );
    println!();
    println!(
        "- machine: {} CPUs (`nproc`), `{}` (`/proc/cpuinfo`), load average at start `{}`",
        std::thread::available_parallelism().map_or(0, |count| count.get()),
        cpu_model(),
        load_at_start
    );
    println!(
        "- `{}`, release profile; raft-rs: `raft` {} (`protobuf-codec`, no default features, \
         logger `slog::Discard`, `MemStorage`)",
        env!("RUSTC_VERSION"),
        env!("RAFT_RS_VERSION")
    );
    println!("- raft-core config: `Config::builder(id).build()`, the defaults");
    println!("- raft-rs config: {}", raft_rs_cluster::CONFIG_NOTE);
    for (position, mode) in MODES.iter().enumerate() {
        println!(
            "- {}: {} entries measured per run, after {} entries of warm-up",
            mode.name,
            thousands(plan.entries[position] as f64),
            thousands(plan.warm_up[position] as f64)
        );
    }
    println!();
    println!(
        "| mode | metric | raft-core | raft-rs | ratio raft-core/raft-rs \
         | raft-rs, `batch_append` off | ratio raft-core/that |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (position, mode) in MODES.iter().enumerate() {
        let metrics = [
            Metric::new("entries/s", rate, thousands),
            Metric::new("ns/entry", time, thousands),
            Metric::new("allocations/entry", allocations, two_decimals),
            Metric::new("messages/entry", messages, two_decimals),
        ];
        for metric in metrics {
            let [core, rs, rs_unbatched] =
                SIDES.map(|side| median(side_samples(position, side, metric.value)));
            println!(
                "| {} | {} | {} | {} | {:.2} | {} | {:.2} |",
                mode.name,
                metric.name,
                (metric.format)(core),
                (metric.format)(rs),
                core / rs,
                (metric.format)(rs_unbatched),
                core / rs_unbatched
            );
        }
    }
    println!();
    println!(
        "A ratio above 1 in entries/s, or below 1 in the other rows, is in raft-core's favour."
    );
    println!();
    println!("Spread over the rounds, ns/entry (min–max):");
    println!();
    for (position, mode) in MODES.iter().enumerate() {
        let ranges = SIDES.map(|side| {
            let values = side_samples(position, side, time);
            let minimum = values.iter().copied().fold(f64::INFINITY, f64::min);
            let maximum = values.iter().copied().fold(0.0, f64::max);
            format!(
                "{} {}–{}",
                side.name(),
                thousands(minimum),
                thousands(maximum)
            )
        });
        println!("- {}: {}", mode.name, ranges.join(", "));
    }
}
