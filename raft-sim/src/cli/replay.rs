//! `raft-sim replay`: one seed, with the full trace and the client history.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use raft_sim::faults::MILLISECOND;
use raft_sim::{Simulation, TraceMode};

use super::args::SimulationArgs;
use super::history::{history_lines, to_json};
use super::{CliError, EXIT_FAILED, grouped};

#[derive(Args, Debug)]
pub(crate) struct ReplayArgs {
    /// The seed to run (required).
    #[arg(long, value_name = "S")]
    seed: u64,

    #[command(flatten)]
    simulation: SimulationArgs,

    /// Write the trace, one line per event, to FILE ('-': standard output) [default: not
    /// written].
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Write the client history as Jepsen-style JSON Lines to FILE ('-': standard
    /// output) [default: not written].
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

/// Writes lines to FILE, or to standard output for `-`.
fn write_lines<I>(path: &PathBuf, lines: I) -> Result<(), CliError>
where
    I: IntoIterator<Item = Result<String, String>>,
{
    let write_all = |out: &mut dyn Write| -> Result<(), CliError> {
        for line in lines {
            let line = line.map_err(CliError::Io)?;
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    };
    if path.as_os_str() == "-" {
        write_all(&mut io::stdout().lock())
    } else {
        let file = File::create(path)
            .map_err(|error| CliError::Io(format!("cannot create {}: {error}", path.display())))?;
        write_all(&mut BufWriter::new(file)).map_err(|error| match error {
            CliError::Io(message) => CliError::Io(format!("{}: {message}", path.display())),
            other => other,
        })
    }
}

pub(crate) fn run(arguments: &ReplayArgs) -> Result<ExitCode, CliError> {
    let options = arguments
        .simulation
        .options(arguments.seed)
        .map_err(CliError::Usage)?;
    let client_timeout = options.client_timeout_nanos;
    let simulation = Simulation::new(options, TraceMode::Full).map_err(CliError::Usage)?;
    {
        let mut out = io::stdout().lock();
        writeln!(out, "{}", simulation.plan())?;
        out.flush()?;
    }
    let report = simulation.run();
    if let Some(path) = &arguments.trace {
        write_lines(path, report.trace.lines().iter().cloned().map(Ok))?;
    }
    if let Some(path) = &arguments.history {
        let lines = history_lines(&report.history, client_timeout);
        write_lines(path, lines.iter().map(to_json))?;
    }
    let statistics = &report.statistics;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "seed {}: {} events, {:.1} s simulated, {} elections, {} committed, operations {} ok / {} failed / {} unknown, trace hash {:016x}",
        arguments.seed,
        grouped(statistics.events),
        statistics.simulated_nanos as f64 / (1000.0 * MILLISECOND as f64),
        grouped(statistics.elections),
        grouped(statistics.committed),
        grouped(statistics.operations_ok),
        grouped(statistics.operations_failed),
        grouped(statistics.operations_unknown),
        report.trace.hash()
    )?;
    match &report.failure {
        None => {
            writeln!(out, "seed {}: ok", arguments.seed)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(failure) => {
            writeln!(
                out,
                "seed {}: FAILED ({}) {failure}",
                arguments.seed,
                failure.kind()
            )?;
            out.flush()?;
            eprintln!(
                "error: seed {} failed ({}): {failure}",
                arguments.seed,
                failure.kind()
            );
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}
