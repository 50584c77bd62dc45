//! Minimising a failing run: fewer faults, fewer nodes and clients, a shorter run, while
//! the same property still fails.
//!
//! The seed stays the same; what shrinks is the fault plan (made explicit in
//! [`SimulationOptions::plan`], so that a fault class can be switched off without
//! changing the rest of the seed's draws) and the workload. Each step tries one reduction
//! and keeps it if the run still fails the same way, until no reduction applies. The
//! result is usually a run with one or two fault classes left, which makes the trace
//! short enough to read.

use crate::faults::{FaultPlan, MILLISECOND};
use crate::simulation::{Failure, Report, SimulationOptions};

/// The result of [`shrink`].
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest options found that still fail the same way; `plan` is set.
    pub options: SimulationOptions,
    /// The failure those options produce.
    pub failure: Failure,
    /// The reductions kept, in order, one line each.
    pub kept: Vec<String>,
    /// How many runs shrinking took (the first one included).
    pub runs: u64,
}

/// One way to make a run smaller: a name for the log, and the change (`None` when it
/// does not apply, because that part is already as small as it gets).
struct Reduction {
    name: &'static str,
    apply: fn(&SimulationOptions) -> Option<SimulationOptions>,
}

/// Returns the options with the plan changed by `change`, if that changes anything.
fn with_plan(
    options: &SimulationOptions,
    change: impl FnOnce(&mut FaultPlan),
) -> Option<SimulationOptions> {
    let plan = options.plan.clone()?;
    let mut changed = plan.clone();
    change(&mut changed);
    (changed != plan).then(|| SimulationOptions {
        plan: Some(changed),
        ..options.clone()
    })
}

/// Reductions in the order they are tried: whole fault classes first (the biggest cuts),
/// then the cluster and the workload, then finer settings.
const REDUCTIONS: &[Reduction] = &[
    Reduction {
        name: "no membership changes",
        apply: |options| with_plan(options, |plan| plan.membership_interval_nanos = 0),
    },
    Reduction {
        name: "no leadership transfers",
        apply: |options| with_plan(options, |plan| plan.transfer_interval_nanos = 0),
    },
    Reduction {
        name: "no crashes",
        apply: |options| {
            with_plan(options, |plan| {
                plan.crash_interval_nanos = 0;
                plan.restart_delay_max_nanos = 0;
            })
        },
    },
    Reduction {
        name: "no pauses",
        apply: |options| {
            with_plan(options, |plan| {
                plan.pause_interval_nanos = 0;
                plan.pause_max_nanos = 0;
            })
        },
    },
    Reduction {
        name: "no partitions or clogged links",
        apply: |options| with_plan(options, |plan| plan.network_fault_interval_nanos = 0),
    },
    Reduction {
        name: "no message loss",
        apply: |options| with_plan(options, |plan| plan.loss_probability = 0.0),
    },
    Reduction {
        name: "no duplicated messages",
        apply: |options| with_plan(options, |plan| plan.duplicate_probability = 0.0),
    },
    Reduction {
        name: "no slow messages",
        apply: |options| {
            with_plan(options, |plan| {
                plan.latency_tail_probability = 0.0;
                plan.latency_tail_nanos = 0;
            })
        },
    },
    Reduction {
        name: "no snapshots",
        apply: |options| {
            with_plan(options, |plan| {
                plan.snapshot_log_bytes = usize::MAX;
                plan.compaction_trailing_entries = 0;
            })
        },
    },
    Reduction {
        name: "reads by heartbeat round, no lease",
        apply: |options| with_plan(options, |plan| plan.read_lease = false),
    },
    Reduction {
        name: "steady disks",
        apply: |options| with_plan(options, |plan| plan.fsync_max_nanos = plan.fsync_min_nanos),
    },
    Reduction {
        name: "two fewer nodes",
        apply: |options| {
            (options.nodes >= 3).then(|| SimulationOptions {
                nodes: options.nodes - 2,
                ..options.clone()
            })
        },
    },
    Reduction {
        name: "half the clients",
        apply: |options| {
            (options.clients > 1).then(|| SimulationOptions {
                clients: options.clients / 2,
                ..options.clone()
            })
        },
    },
    Reduction {
        name: "one client fewer",
        apply: |options| {
            (options.clients > 1).then(|| SimulationOptions {
                clients: options.clients - 1,
                ..options.clone()
            })
        },
    },
    Reduction {
        name: "half the keys",
        apply: |options| {
            (options.keys > 1).then(|| SimulationOptions {
                keys: options.keys / 2,
                ..options.clone()
            })
        },
    },
    Reduction {
        name: "half the fault phase",
        apply: |options| {
            (options.duration_nanos >= 200 * MILLISECOND).then(|| SimulationOptions {
                duration_nanos: options.duration_nanos / 2,
                ..options.clone()
            })
        },
    },
    Reduction {
        name: "three quarters of the fault phase",
        apply: |options| {
            (options.duration_nanos >= 200 * MILLISECOND).then(|| SimulationOptions {
                duration_nanos: options.duration_nanos / 4 * 3,
                ..options.clone()
            })
        },
    },
];

/// Whether `report` fails the way `target` did: the same kind of failure, and for a
/// safety failure the same property.
fn same_failure(report: &Report, target: &Failure) -> bool {
    report
        .failure
        .as_ref()
        .is_some_and(|failure| failure.kind() == target.kind())
}

/// Shrinks the failing run of `options` with `run` (which builds and runs the
/// simulation: the built-in application, or yours), trying at most `runs_max` runs.
/// Returns `None` when the run does not fail.
pub fn shrink(
    options: &SimulationOptions,
    runs_max: u64,
    mut run: impl FnMut(&SimulationOptions) -> Result<Report, String>,
    mut progress: impl FnMut(&str),
) -> Result<Option<Shrunk>, String> {
    let first = run(options)?;
    let Some(failure) = first.failure.clone() else {
        return Ok(None);
    };
    let mut current = SimulationOptions {
        plan: Some(first.plan.clone()),
        ..options.clone()
    };
    let mut kept = Vec::new();
    let mut runs = 1;
    let mut last_failure = failure.clone();
    'outer: loop {
        for reduction in REDUCTIONS {
            if runs >= runs_max {
                progress("run budget exhausted");
                break 'outer;
            }
            let Some(candidate) = (reduction.apply)(&current) else {
                continue;
            };
            runs += 1;
            let report = run(&candidate)?;
            if same_failure(&report, &failure) {
                progress(&format!("kept: {}", reduction.name));
                kept.push(reduction.name.to_string());
                last_failure = report.failure.clone().unwrap_or(last_failure);
                current = candidate;
                // Start over: an earlier reduction may apply now.
                continue 'outer;
            }
            progress(&format!("needed: {}", reduction.name));
        }
        break;
    }
    Ok(Some(Shrunk {
        options: current,
        failure: last_failure,
        kept,
        runs,
    }))
}
