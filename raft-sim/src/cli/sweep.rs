//! `raft-sim run`: a sweep of seeds on several threads.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use raft_sim::faults::SECOND;
use raft_sim::{Simulation, SimulationOptions, Statistics, TraceMode};

use super::args::{SeedRange, SimulationArgs, parse_seed_range};
use super::{CliError, EXIT_FAILED, default_jobs, grouped};

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Seeds to run: A..B (B excluded), A..=B, or one seed N.
    #[arg(long, value_name = "A..B", value_parser = parse_seed_range, default_value = "0..100")]
    seeds: SeedRange,

    #[command(flatten)]
    simulation: SimulationArgs,

    /// Worker threads [default: the available parallelism].
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,

    /// Run every seed twice with the trace hashed, and fail the seed (kind
    /// "determinism") when the two runs differ [default: off].
    #[arg(long, default_value_t = false)]
    check_determinism: bool,

    /// Print every seed's fault plan, not only the failing seeds' [default: off].
    #[arg(long, short, default_value_t = false)]
    verbose: bool,
}

/// What one seed did.
struct SeedOutcome {
    seed: u64,
    plan: String,
    /// The failure's kind and description.
    failure: Option<(String, String)>,
    statistics: Statistics,
}

fn run_seed(options: SimulationOptions, check_determinism: bool) -> SeedOutcome {
    let seed = options.seed;
    let mode = if check_determinism {
        TraceMode::Hash
    } else {
        TraceMode::Off
    };
    let report = match Simulation::new(options.clone(), mode) {
        Ok(simulation) => simulation.run(),
        Err(error) => {
            return SeedOutcome {
                seed,
                plan: String::new(),
                failure: Some(("options".to_string(), error)),
                statistics: Statistics::default(),
            };
        }
    };
    let mut failure = report
        .failure
        .as_ref()
        .map(|failure| (failure.kind().to_string(), failure.to_string()));
    if check_determinism {
        let again = Simulation::new(options, mode).map(Simulation::run);
        let difference = match &again {
            Ok(again) if again.trace.hash() != report.trace.hash() => Some(format!(
                "two runs of the seed differ: trace hash {:016x} then {:016x}",
                report.trace.hash(),
                again.trace.hash()
            )),
            Ok(again) if again.statistics != report.statistics => Some(format!(
                "two runs of the seed differ: statistics {:?} then {:?}",
                report.statistics, again.statistics
            )),
            Ok(_) => None,
            Err(error) => Some(format!("the second run could not start: {error}")),
        };
        if let Some(detail) = difference {
            failure = Some(("determinism".to_string(), detail));
        }
    }
    SeedOutcome {
        seed,
        plan: report.plan.to_string(),
        failure,
        statistics: report.statistics,
    }
}

fn progress_bar(length: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {pos}/{len} seeds  {per_sec}  eta {eta}  {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

pub(crate) fn run(arguments: &RunArgs) -> Result<ExitCode, CliError> {
    let seeds = arguments.seeds;
    // Checks every option once, up front.
    arguments
        .simulation
        .options(seeds.start)
        .map_err(CliError::Usage)?;
    let jobs = match arguments.jobs {
        Some(0) => return Err(CliError::Usage("--jobs must be at least 1".to_string())),
        Some(jobs) => jobs,
        None => default_jobs(),
    };
    let jobs = usize::try_from(seeds.len()).map_or(jobs, |count| jobs.min(count.max(1)));

    let bar = progress_bar(seeds.len());
    let next = AtomicU64::new(seeds.start);
    let failures = AtomicU64::new(0);
    let outcomes = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                while let Ok(seed) =
                    next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |seed| {
                        (seed < seeds.end).then_some(seed + 1)
                    })
                {
                    let outcome = match arguments.simulation.options(seed) {
                        Ok(options) => run_seed(options, arguments.check_determinism),
                        Err(error) => SeedOutcome {
                            seed,
                            plan: String::new(),
                            failure: Some(("options".to_string(), error)),
                            statistics: Statistics::default(),
                        },
                    };
                    if outcome.failure.is_some() {
                        let failed = failures.fetch_add(1, Ordering::Relaxed) + 1;
                        bar.set_message(format!("{failed} failed"));
                    }
                    bar.inc(1);
                    if let Ok(mut outcomes) = outcomes.lock() {
                        outcomes.push(outcome);
                    }
                }
            });
        }
    });
    let wall = started.elapsed();
    bar.finish_and_clear();
    let mut outcomes = outcomes
        .into_inner()
        .map_err(|_| CliError::Io("a worker thread panicked".to_string()))?;
    outcomes.sort_by_key(|outcome| outcome.seed);

    let mut out = io::stdout().lock();
    let failed: Vec<&SeedOutcome> = outcomes
        .iter()
        .filter(|outcome| outcome.failure.is_some())
        .collect();
    for outcome in &outcomes {
        match &outcome.failure {
            None if arguments.verbose => {
                writeln!(out, "seed {}: ok  {}", outcome.seed, outcome.plan)?;
            }
            None => {}
            Some((kind, detail)) => {
                writeln!(out, "seed {}: FAILED ({kind}) {detail}", outcome.seed)?;
                writeln!(out, "  plan:   {}", outcome.plan)?;
                writeln!(
                    out,
                    "  replay: raft-sim {}",
                    arguments.simulation.replay_arguments(outcome.seed)
                )?;
            }
        }
    }
    if let Some(first) = failed.first() {
        writeln!(
            out,
            "from the workspace: cargo run --release -p raft-sim -- {}",
            arguments.simulation.replay_arguments(first.seed)
        )?;
    }
    if !outcomes.is_empty() && (arguments.verbose || !failed.is_empty()) {
        writeln!(out)?;
    }
    write_summary(&mut out, arguments, jobs, &outcomes, failed.len(), wall)?;
    out.flush()?;
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(EXIT_FAILED))
    }
}

fn write_summary(
    out: &mut impl Write,
    arguments: &RunArgs,
    jobs: usize,
    outcomes: &[SeedOutcome],
    failures: usize,
    wall: std::time::Duration,
) -> io::Result<()> {
    let mut total = Statistics::default();
    for outcome in outcomes {
        let statistics = &outcome.statistics;
        total.events += statistics.events;
        total.elections += statistics.elections;
        total.committed += statistics.committed;
        total.operations_ok += statistics.operations_ok;
        total.operations_failed += statistics.operations_failed;
        total.operations_unknown += statistics.operations_unknown;
        total.simulated_nanos += statistics.simulated_nanos;
        total.crashes += statistics.crashes;
        total.pauses += statistics.pauses;
        total.network_faults += statistics.network_faults;
        total.snapshots_built += statistics.snapshots_built;
        total.snapshots_sent += statistics.snapshots_sent;
        total.snapshots_restored += statistics.snapshots_restored;
        total.linearizability_inconclusive += statistics.linearizability_inconclusive;
    }
    let seconds = wall.as_secs_f64().max(1e-9);
    let simulation = &arguments.simulation;
    writeln!(
        out,
        "raft-sim run --seeds {} --nodes {} --faults {} --duration {} --liveness-bound {} --clients {} --keys {} ({} jobs{})",
        arguments.seeds,
        simulation.nodes,
        simulation.faults,
        simulation.duration,
        simulation.liveness_bound,
        simulation.clients,
        simulation.keys,
        jobs,
        if arguments.check_determinism {
            ", each seed run twice to check determinism"
        } else {
            ""
        }
    )?;
    let rows: [(&str, String); 13] = [
        ("seeds run", grouped(outcomes.len() as u64)),
        ("failures", grouped(failures as u64)),
        ("elections", grouped(total.elections)),
        ("committed entries", grouped(total.committed)),
        (
            "client operations",
            format!(
                "{} ok / {} failed / {} unknown",
                grouped(total.operations_ok),
                grouped(total.operations_failed),
                grouped(total.operations_unknown)
            ),
        ),
        (
            "faults injected",
            format!(
                "{} crashes / {} pauses / {} network",
                grouped(total.crashes),
                grouped(total.pauses),
                grouped(total.network_faults)
            ),
        ),
        (
            "snapshots",
            format!(
                "{} built / {} sent / {} restored",
                grouped(total.snapshots_built),
                grouped(total.snapshots_sent),
                grouped(total.snapshots_restored)
            ),
        ),
        (
            "linearizability checks",
            format!(
                "{} seeds conclusive / {} inconclusive (search budget exhausted)",
                grouped(outcomes.len() as u64 - total.linearizability_inconclusive),
                grouped(total.linearizability_inconclusive)
            ),
        ),
        ("events", grouped(total.events)),
        (
            "events per wall second",
            grouped((total.events as f64 / seconds) as u64),
        ),
        (
            "simulated time",
            format!("{:.1} s", total.simulated_nanos as f64 / SECOND as f64),
        ),
        (
            "simulated s per wall s",
            format!(
                "{:.1}",
                total.simulated_nanos as f64 / SECOND as f64 / seconds
            ),
        ),
        ("wall time", format!("{seconds:.2} s")),
    ];
    for (name, value) in rows {
        writeln!(out, "  {name:<24} {value:>}")?;
    }
    if failures == 0 {
        writeln!(out, "all {} seeds passed", outcomes.len())?;
    } else {
        writeln!(out, "{failures} of {} seeds FAILED", outcomes.len())?;
    }
    Ok(())
}
