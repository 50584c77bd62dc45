//! End-to-end tests of the `raft-sim` binary.

use std::path::PathBuf;
use std::process::{Command, Output};

fn raft_sim(arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raft-sim"))
        .args(arguments)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh scratch directory for this test.
fn scratch(name: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("raft-sim-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("scratch directory");
    directory
}

/// The error output is one line (clap's own multi-line errors aside).
fn assert_one_line_error(output: &Output) {
    let stderr = text(&output.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "expected a one-line error, got:\n{stderr}"
    );
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// A small sweep passes and prints the summary table.
#[test]
fn small_sweep_passes_and_summarizes() {
    let output = raft_sim(&["run", "--seeds", "0..3", "--duration", "2s"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for row in [
        "seeds run",
        "failures",
        "elections",
        "committed entries",
        "client operations",
        "events",
        "events per wall second",
        "simulated s per wall s",
    ] {
        assert!(stdout.contains(row), "no '{row}' in:\n{stdout}");
    }
    let seeds_run = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("seeds run"))
        .expect("seeds row");
    assert!(seeds_run.trim_end().ends_with(" 3"), "{seeds_run}");
    assert!(stdout.contains("all 3 seeds passed"), "{stdout}");
}

// With --check-determinism every seed runs twice and the runs agree; --verbose prints
// each seed's fault plan.
#[test]
fn determinism_check_and_verbose_plans() {
    let output = raft_sim(&[
        "run",
        "--seeds",
        "4..6",
        "--duration",
        "1s",
        "--check-determinism",
        "--verbose",
        "--jobs",
        "2",
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("seed 4: ok  faults=all"), "{stdout}");
    assert!(stdout.contains("seed 5: ok  faults=all"), "{stdout}");
}

// A failing seed exits non-zero and prints its kind, its plan and a replay command that
// the CLI accepts and that reproduces the failure. A liveness bound far too short to
// serve every client makes the seed fail.
#[test]
fn failing_seed_prints_a_working_replay_command() {
    let output = raft_sim(&[
        "run",
        "--seeds",
        "2",
        "--duration",
        "1s",
        "--liveness-bound",
        "1ms",
        "--client-timeout",
        "2s",
    ]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("seed 2: FAILED (liveness)"), "{stdout}");
    assert!(stdout.contains("  plan:   faults=all"), "{stdout}");
    let replay = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("replay: raft-sim "))
        .expect("a replay line");
    assert!(replay.contains("--client-timeout 2s"), "{replay}");
    assert!(
        stdout.contains(&format!("cargo run --release -p raft-sim -- {replay}")),
        "{stdout}"
    );
    let arguments: Vec<&str> = replay.split_whitespace().collect();
    let replayed = raft_sim(&arguments);
    let replayed_stdout = text(&replayed.stdout);
    assert_eq!(replayed.status.code(), Some(1), "{replayed_stdout}");
    assert!(
        replayed_stdout.contains("seed 2: FAILED (liveness)"),
        "{replayed_stdout}"
    );
}

// Replay writes the trace and a Jepsen-style JSON Lines history.
#[test]
fn replay_writes_trace_and_history() {
    let directory = scratch("replay");
    let trace = directory.join("trace.txt");
    let history = directory.join("history.jsonl");
    let output = raft_sim(&[
        "replay",
        "--seed",
        "1",
        "--duration",
        "2s",
        "--trace",
        trace.to_str().expect("utf-8 path"),
        "--history",
        history.to_str().expect("utf-8 path"),
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|line| line.starts_with("faults=all")),
        "the plan comes first:\n{stdout}"
    );

    let trace = std::fs::read_to_string(&trace).expect("trace written");
    assert!(
        trace.lines().count() > 100,
        "{} trace lines",
        trace.lines().count()
    );
    assert!(
        trace
            .lines()
            .next()
            .is_some_and(|line| line.contains("seed=1"))
    );

    let history = std::fs::read_to_string(&history).expect("history written");
    let mut previous_time = 0;
    let (mut invokes, mut completions) = (0, 0);
    for line in history.lines() {
        let value: serde_json::Value = serde_json::from_str(line).expect("valid JSON");
        let object = value.as_object().expect("an object");
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        for key in ["process", "type", "f", "key", "value", "time"] {
            assert!(keys.contains(&key), "no {key} in {line}");
        }
        assert!(object["process"].is_u64(), "{line}");
        let time = object["time"].as_u64().expect("a time");
        assert!(time >= previous_time, "sorted by time: {line}");
        previous_time = time;
        let kind = object["type"].as_str().expect("a type");
        match kind {
            "invoke" => invokes += 1,
            "ok" | "fail" | "info" => completions += 1,
            other => panic!("unexpected type {other} in {line}"),
        }
        let f = object["f"].as_str().expect("an f");
        assert!(
            ["get", "put", "cas", "delete", "append"].contains(&f),
            "{line}"
        );
        let value = &object["value"];
        match f {
            "cas" => assert_eq!(value.as_array().map(Vec::len), Some(2), "{line}"),
            "put" | "append" => assert!(value.is_string(), "{line}"),
            "delete" => assert!(value.is_null(), "{line}"),
            "get" if kind == "invoke" => assert!(value.is_null(), "{line}"),
            _ => assert!(value.is_null() || value.is_string(), "{line}"),
        }
    }
    assert!(invokes > 10, "{invokes} invocations");
    assert_eq!(invokes, completions);
    let _ = std::fs::remove_dir_all(&directory);
}

// `--trace -` writes the trace to standard output after the plan line.
#[test]
fn replay_trace_to_stdout() {
    let output = raft_sim(&["replay", "--seed", "3", "--duration", "1s", "--trace", "-"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut lines = stdout.lines();
    assert!(lines.next().is_some_and(|line| line.starts_with("faults=")));
    assert!(lines.next().is_some_and(|line| line.contains("seed=3")));
}

// A reversed seed range is refused with a one-line error and exit code 2.
#[test]
fn reversed_seed_range_is_refused() {
    let output = raft_sim(&["run", "--seeds", "5..3"]);
    assert_eq!(output.status.code(), Some(2));
    assert_one_line_error(&output);
    assert!(text(&output.stderr).contains("reversed"));
    let empty = raft_sim(&["run", "--seeds", "3..3"]);
    assert_eq!(empty.status.code(), Some(2));
    assert_one_line_error(&empty);
}

// An unknown fault profile is refused with a message naming the valid ones.
#[test]
fn unknown_fault_profile_is_refused() {
    let output = raft_sim(&["run", "--faults", "bogus"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("none, net, crash, disk, clock, pause, all"),
        "{stderr}"
    );
    let replay = raft_sim(&["replay", "--seed", "1", "--faults", "bogus"]);
    assert!(!replay.status.success());
}

// Zero nodes, bad durations and zero jobs are refused with a one-line error and code 2.
#[test]
fn invalid_options_are_refused() {
    for arguments in [
        &["run", "--nodes", "0"][..],
        &["replay", "--seed", "1", "--nodes", "0"],
        &["run", "--duration", "20x"],
        &["run", "--duration", "0s"],
        &["run", "--jobs", "0"],
        &["elections", "--timeout", "300..150ms"],
        &[
            "elections",
            "--timeout",
            "150..300ms",
            "--heartbeat",
            "200ms",
        ],
    ] {
        let output = raft_sim(arguments);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}");
        assert_one_line_error(&output);
    }
}

// Every subcommand's help documents every option with its default.
#[test]
fn help_documents_defaults() {
    for (command, options) in [
        (
            "run",
            &[
                "--seeds",
                "--nodes",
                "--faults",
                "--duration",
                "--liveness-bound",
                "--clients",
                "--keys",
                "--jobs",
                "--check-determinism",
                "--verbose",
            ][..],
        ),
        ("replay", &["--seed", "--nodes", "--trace", "--history"][..]),
        (
            "elections",
            &[
                "--timeout",
                "--nodes",
                "--trials",
                "--svg",
                "--seed",
                "--latency",
                "--heartbeat",
            ][..],
        ),
    ] {
        // The short help: one line per option.
        let output = raft_sim(&[command, "-h"]);
        assert!(output.status.success());
        let help = text(&output.stdout);
        for option in options {
            let line = help
                .lines()
                .find(|line| {
                    line.split_whitespace()
                        .take(2)
                        .any(|word| word.trim_end_matches(',') == *option)
                })
                .unwrap_or_else(|| panic!("{command} -h lacks {option}:\n{help}"));
            assert!(
                line.contains("[default: ") || line.contains("(required)"),
                "{command} {option} has no default: {line}"
            );
        }
    }
}

// The election experiment prints a CDF table and draws an SVG.
#[test]
fn elections_table_and_svg() {
    let directory = scratch("elections");
    let svg = directory.join("fig16.svg");
    let output = raft_sim(&[
        "elections",
        "--trials",
        "20",
        "--timeout",
        "150..300ms",
        "--svg",
        svg.to_str().expect("utf-8 path"),
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    for column in ["p10", "p50", "p99", "max", "<=200ms"] {
        assert!(stdout.contains(column), "no {column} in:\n{stdout}");
    }
    let row = stdout
        .lines()
        .find(|line| line.starts_with("150-300"))
        .expect("a row for 150-300");
    let median: f64 = row
        .split_whitespace()
        .nth(4)
        .and_then(|cell| cell.parse().ok())
        .expect("a median");
    assert!((100.0..=600.0).contains(&median), "{row}");
    let drawing = std::fs::read_to_string(&svg).expect("svg written");
    assert!(
        drawing.starts_with("<svg"),
        "{}",
        &drawing[..80.min(drawing.len())]
    );
    assert!(drawing.contains("<polyline"));
    assert!(drawing.contains("150-300 ms"));
    // Deterministic for a seed.
    let again = raft_sim(&["elections", "--trials", "20", "--timeout", "150..300ms"]);
    assert!(text(&again.stdout).contains(row));
    let _ = std::fs::remove_dir_all(&directory);
}

// A clock drift outside [0%, 50%) is refused with one line and exit code 2; a valid one is
// used and shows in the plan.
#[test]
fn clock_drift_option() {
    let output = raft_sim(&["run", "--seeds", "0..2", "--clock-drift", "80"]);
    assert_eq!(output.status.code(), Some(2));
    assert_one_line_error(&output);
    let output = raft_sim(&[
        "run",
        "--seeds",
        "0..2",
        "--duration",
        "1s",
        "--clock-drift",
        "12.5",
        "--verbose",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("drift=±12.5%"),
        "{}",
        text(&output.stdout)
    );
}

// `--plan` replaces the seed's fault plan with one given as JSON: the replay prints that
// plan; a plan that is not JSON, or out of range, is a one-line usage error.
#[test]
fn explicit_plans_replay_and_bad_plans_are_refused() {
    let plan = r#"{"profile":"None","latency_base_nanos":500000,"latency_tail_nanos":0,"latency_tail_probability":0.0,"loss_probability":0.25,"duplicate_probability":0.0,"network_fault_interval_nanos":0,"crash_interval_nanos":0,"restart_delay_max_nanos":0,"pause_interval_nanos":0,"pause_max_nanos":0,"fsync_min_nanos":100000,"fsync_max_nanos":100000,"clock_drift":0.01,"read_lease":false,"transfer_interval_nanos":0,"membership_interval_nanos":0,"snapshot_log_bytes":1024,"compaction_trailing_entries":3}"#;
    let output = raft_sim(&[
        "replay",
        "--seed",
        "5",
        "--nodes",
        "3",
        "--duration",
        "1s",
        "--plan",
        plan,
    ]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("loss=25.0%"), "{stdout}");
    assert!(
        stdout.contains("snapshot-every=1024B trailing=3"),
        "{stdout}"
    );

    let output = raft_sim(&["replay", "--seed", "5", "--plan", "{not json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("not a fault plan"),
        "{}",
        text(&output.stderr)
    );
    let out_of_range = plan.replace("\"loss_probability\":0.25", "\"loss_probability\":1.5");
    let output = raft_sim(&["replay", "--seed", "5", "--plan", &out_of_range]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("loss_probability"),
        "{}",
        text(&output.stderr)
    );
}

// Shrinking a seed that passes says so and succeeds.
#[test]
fn shrinking_a_passing_seed_says_so() {
    let output = raft_sim(&["shrink", "--seed", "1", "--nodes", "3", "--duration", "1s"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("seed 1 passes"),
        "{}",
        text(&output.stdout)
    );
}
