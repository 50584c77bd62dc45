//! `raft-sim shrink`: the smallest run that still fails like a given seed.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Args;
use raft_sim::{Simulation, TraceMode};

use super::CliError;
use super::args::{SimulationArgs, replay_arguments};

#[derive(Args, Debug)]
pub(crate) struct ShrinkArgs {
    /// The failing seed (required).
    #[arg(long, value_name = "S")]
    seed: u64,

    #[command(flatten)]
    simulation: SimulationArgs,

    /// The most runs to spend shrinking.
    #[arg(long, value_name = "N", default_value_t = 300)]
    runs_max: u64,
}

pub(crate) fn run(arguments: &ShrinkArgs) -> Result<ExitCode, CliError> {
    let options = arguments
        .simulation
        .options(arguments.seed)
        .map_err(CliError::Usage)?;
    let mut out = io::stdout().lock();
    let shrunk = raft_sim::shrink(
        &options,
        arguments.runs_max,
        |options| Simulation::new(options.clone(), TraceMode::Off).map(Simulation::run),
        |line| {
            let _ = writeln!(io::stderr(), "  {line}");
        },
    )
    .map_err(CliError::Usage)?;
    let Some(shrunk) = shrunk else {
        writeln!(out, "seed {} passes: nothing to shrink", arguments.seed)?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(
        out,
        "seed {} shrunk in {} runs; still fails: {}",
        arguments.seed, shrunk.runs, shrunk.failure
    )?;
    if shrunk.kept.is_empty() {
        writeln!(out, "nothing could be removed")?;
    } else {
        writeln!(out, "removed: {}", shrunk.kept.join(", "))?;
    }
    writeln!(
        out,
        "smallest reproduction:\n  raft-sim {}",
        replay_arguments(&shrunk.options)
    )?;
    Ok(ExitCode::SUCCESS)
}
