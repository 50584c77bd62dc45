//! The command line: argument definitions, dispatch, errors and exit codes.

mod args;
mod elections;
mod history;
mod replay;
mod shrink;
mod svg;
mod sweep;

use std::io;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

/// A seeded, deterministic simulator for clusters of raft-core nodes.
///
/// Every run is a function of its seed and options: a failing seed replays exactly.
#[derive(Parser, Debug)]
#[command(name = "raft-sim", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a range of seeds on several threads and summarize; list failing seeds with the
    /// command that replays each.
    Run(sweep::RunArgs),
    /// Run one seed with the full trace; write the trace and the client history.
    Replay(replay::ReplayArgs),
    /// Shrink a failing seed: remove fault classes, nodes, clients and run time while the
    /// same property still fails, and print the smallest reproduction's replay command.
    Shrink(shrink::ShrinkArgs),
    /// Measure the time to elect a new leader after the leader crashes, for ranges of
    /// randomized election timeouts (the Raft paper's Figure 16).
    Elections(elections::ElectionsArgs),
}

/// Why a command stopped early.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Invalid input: one line, exit code 2.
    Usage(String),
    /// A failure to read or write a file: exit code 1.
    Io(String),
    /// Standard output was closed (e.g. piped into `head`): exit quietly.
    Closed,
}

impl From<io::Error> for CliError {
    fn from(error: io::Error) -> CliError {
        if error.kind() == io::ErrorKind::BrokenPipe {
            CliError::Closed
        } else {
            CliError::Io(format!("cannot write output: {error}"))
        }
    }
}

/// Exit code when a run failed (a seed's check, or the experiment).
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code for invalid input.
pub(crate) const EXIT_USAGE: u8 = 2;

pub(crate) fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return clap_error(&error),
    };
    let outcome = match cli.command {
        Command::Run(arguments) => sweep::run(&arguments),
        Command::Replay(arguments) => replay::run(&arguments),
        Command::Shrink(arguments) => shrink::run(&arguments),
        Command::Elections(arguments) => elections::run(&arguments),
    };
    match outcome {
        Ok(code) => code,
        Err(CliError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Io(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_FAILED)
        }
        Err(CliError::Closed) => ExitCode::from(EXIT_FAILED),
    }
}

/// Help and version go to stdout with code 0. A bad value is reported in one line (its
/// message says what is wrong and what is expected); other usage errors as clap writes
/// them, with the usage. Both exit with code 2.
fn clap_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let rendered = error.to_string();
            let line = rendered
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("error: invalid value");
            eprintln!("{line}");
            ExitCode::from(EXIT_USAGE)
        }
        _ => {
            // Printing can only fail if the stream is closed; the code still tells.
            let _ = error.print();
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE))
        }
    }
}

/// The number of threads when `--jobs` is not given.
pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Thousands separated by commas, for the summary tables.
pub(crate) fn grouped(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    // The clap definitions are consistent (no duplicate flags, valid defaults).
    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn grouping() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
