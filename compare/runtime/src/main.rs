//! raft-tokio against openraft (the `openraft` crate) on the workload of openraft's own
//! benchmark (`benchmarks/minimal` in its repository): three nodes in one process with an
//! in-memory log and state machine and an in-process network, N client tasks each writing
//! in a loop, every write resolving once applied on the leader. 1, 64 and 256 clients.
//! In one invocation the sides run alternately, round after round; the report gives
//! medians over the rounds.
//!
//! Usage: `compare-runtime [--quick] [--rounds N] [--json PATH] [--server-workers N]
//! [--client-workers N] [--profile SIDE:CLIENTS]`. Prints a markdown report to stdout.
#![forbid(unsafe_code)]

#[path = "../../common/figures.rs"]
mod figures;
mod openraft_cluster;
mod raft_tokio_cluster;
mod report;
// The machine readings of raft-kv's load bench, shared as source by every comparison.
#[path = "../../../raft-kv/benches/load/system.rs"]
#[allow(dead_code)]
mod system;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use openraft_cluster::OpenraftCluster;
use raft_tokio_cluster::RaftTokioCluster;
use workload::{Sample, Settings, measure};

/// The client counts measured, as in the issue and openraft's README table.
const CLIENT_COUNTS: [usize; 3] = [1, 64, 256];

/// How much each run measures.
#[derive(Clone, Copy)]
struct Plan {
    rounds: usize,
    warm_up: Duration,
    window: Duration,
}

const FULL: Plan = Plan {
    rounds: 5,
    warm_up: Duration::from_secs(1),
    window: Duration::from_secs(4),
};

const QUICK: Plan = Plan {
    rounds: 3,
    warm_up: Duration::from_millis(250),
    window: Duration::from_secs(1),
};

/// The implementations measured, in table order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    RaftTokio,
    Openraft,
}

const SIDES: [Side; 2] = [Side::RaftTokio, Side::Openraft];

impl Side {
    fn measure(self, settings: Settings, clients: usize) -> Sample {
        match self {
            Side::RaftTokio => measure::<RaftTokioCluster>(settings, clients),
            Side::Openraft => measure::<OpenraftCluster>(settings, clients),
        }
    }

    /// The side's name, on the command line and in the report.
    fn name(self) -> &'static str {
        match self {
            Side::RaftTokio => "raft-tokio",
            Side::Openraft => "openraft",
        }
    }
}

const USAGE: &str = "usage: compare-runtime [--quick] [--rounds N] [--json PATH]
                       [--server-workers N] [--client-workers N] [--profile SIDE:CLIENTS]

Runs raft-tokio and openraft alternately on the same in-process write workload at 1, 64
and 256 clients and prints a markdown report. --quick: 3 rounds of 1 s windows; default: 5
rounds of 4 s; --rounds N overrides the number of rounds of either. --json PATH also writes
the figures for the chart renderer. --server-workers (default 16, openraft's benchmark
default) and --client-workers (default 2) size the Tokio runtimes of the nodes and of the
clients. --profile runs only one side (raft-tokio or openraft) at one client count, round
after round: a process to hand to perf.";

/// The command line.
struct Arguments {
    plan: Plan,
    quick: bool,
    json: Option<PathBuf>,
    server_workers: usize,
    client_workers: usize,
    profile: Option<(Side, usize)>,
}

fn parse_arguments() -> Result<Option<Arguments>, String> {
    let mut quick = false;
    let mut rounds = None;
    let mut json = None;
    let mut server_workers = 16;
    let mut client_workers = 2;
    let mut profile = None;
    let mut arguments = std::env::args().skip(1);
    let positive = |value: Option<String>, name: &str| -> Result<usize, String> {
        match value.and_then(|value| value.parse().ok()) {
            Some(count) if count > 0 => Ok(count),
            _ => Err(format!("{name} needs a positive number")),
        }
    };
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--quick" => quick = true,
            "--rounds" => rounds = Some(positive(arguments.next(), "--rounds")?),
            "--server-workers" => {
                server_workers = positive(arguments.next(), "--server-workers")?;
            }
            "--client-workers" => {
                client_workers = positive(arguments.next(), "--client-workers")?;
            }
            "--json" => match arguments.next() {
                Some(path) => json = Some(PathBuf::from(path)),
                None => return Err("--json needs a path".to_owned()),
            },
            "--profile" => {
                let parsed = arguments.next().and_then(|text| {
                    let (side, clients) = text.split_once(':')?;
                    let side = SIDES
                        .into_iter()
                        .find(|candidate| candidate.name() == side)?;
                    Some((side, clients.parse().ok().filter(|count| *count > 0)?))
                });
                match parsed {
                    Some(parsed) => profile = Some(parsed),
                    None => return Err("--profile needs SIDE:CLIENTS, e.g. raft-tokio:64".into()),
                }
            }
            "--help" | "-h" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let mut plan = if quick { QUICK } else { FULL };
    if let Some(count) = rounds {
        plan.rounds = count;
    }
    Ok(Some(Arguments {
        plan,
        quick,
        json,
        server_workers,
        client_workers,
        profile,
    }))
}

fn main() -> ExitCode {
    let arguments = match parse_arguments() {
        Ok(Some(arguments)) => arguments,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let plan = arguments.plan;
    let settings = Settings {
        server_workers: arguments.server_workers,
        client_workers: arguments.client_workers,
        warm_up: plan.warm_up,
        window: plan.window,
    };

    if let Some((side, clients)) = arguments.profile {
        for round in 0..plan.rounds {
            let sample = side.measure(settings, clients);
            eprintln!(
                "round {}/{} {} {clients} clients: {:.0} writes/s",
                round + 1,
                plan.rounds,
                side.name(),
                sample.writes_per_second
            );
        }
        return ExitCode::SUCCESS;
    }

    let load_at_start = system::load_average();
    // One short discarded run of each side first: a fresh process pays for page faults
    // while its heap grows, and would penalize whichever side starts.
    let short = Settings {
        warm_up: Duration::from_millis(100),
        window: Duration::from_millis(200),
        ..settings
    };
    for side in SIDES {
        side.measure(short, 64);
    }
    // samples[client count][side][round]
    let mut samples: Vec<[Vec<Sample>; 2]> =
        CLIENT_COUNTS.iter().map(|_| [vec![], vec![]]).collect();
    for round in 0..plan.rounds {
        for (position, clients) in CLIENT_COUNTS.iter().enumerate() {
            // The sides take turns, and which goes first alternates every round, so that
            // neither always runs on a machine warmed (or disturbed) by the other.
            let mut order = SIDES;
            order.rotate_left(round % SIDES.len());
            for side in order {
                let sample = side.measure(settings, *clients);
                eprintln!(
                    "round {}/{} {:>3} clients {:<10} {:>9.0} writes/s p50 {:>8.1} µs p99 {:>8.1} µs",
                    round + 1,
                    plan.rounds,
                    clients,
                    side.name(),
                    sample.writes_per_second,
                    sample.latencies.value_at_quantile(0.5) as f64 / 1e3,
                    sample.latencies.value_at_quantile(0.99) as f64 / 1e3,
                );
                samples[position][side as usize].push(sample);
            }
        }
    }
    let results = report::Results::new(&samples);
    report::print_markdown(
        &results,
        &settings,
        plan.rounds,
        arguments.quick,
        &load_at_start,
    );
    if let Some(path) = arguments.json {
        let json = report::chart_json(&results);
        if let Err(error) = std::fs::write(&path, json) {
            eprintln!("cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
