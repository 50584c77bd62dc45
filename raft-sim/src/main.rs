//! `raft-sim`: sweep seeds of the deterministic Raft simulator, replay one seed with its
//! full trace and client history, and reproduce the Raft paper's leader-election figure.
//!
//! Exit codes: 0 success, 1 a run failed (or output could not be written), 2 invalid
//! input.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
