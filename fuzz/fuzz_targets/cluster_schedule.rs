//! The fuzzer's bytes choose a schedule for a 3-5 node cluster on the scripting harness:
//! which message to deliver, drop or duplicate next, which node to tick, crash, restart or
//! sync, which client operation to issue, and the node settings. Every safety checker runs
//! after every step, the schedule's proposals and reads (as one register) are checked for
//! linearizability at the end, then the cluster heals and must make progress again. This is the
//! coverage-guided complement to the random seed sweep and the property tests, which use
//! the same step language (`raft_sim::strategy`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_sim::strategy::{Change, Scenario, Step, Tuning, run_scenario};

/// Reads the bytes two at a time: a step kind and its argument.
fn steps(bytes: &[u8]) -> Vec<Step> {
    bytes
        .chunks(2)
        .map(|pair| {
            let kind = pair[0];
            let argument = usize::from(*pair.get(1).unwrap_or(&0));
            match kind % 24 {
                0 | 1 => Step::Tick(argument),
                2 => Step::TickAll,
                3 => Step::Settle,
                4 | 5 => Step::DeliverOldest(1 + argument % 16),
                6 => Step::DeliverAt(argument),
                7 => Step::DeliverLater(argument),
                8 => Step::Drop(argument),
                9 => Step::Duplicate(argument),
                10 => Step::Isolate(argument),
                11 | 12 => Step::Propose(argument),
                13 => Step::Campaign(argument),
                14 => Step::Crash {
                    node: argument,
                    force: argument & 0x80 != 0,
                },
                15 => Step::Restart(argument),
                16 => Step::Sync(argument),
                17 => Step::SyncOne(argument),
                18 => Step::ChangeMembership(match argument % 4 {
                    0 => Change::Demote(argument / 4),
                    1 => Change::Promote(argument / 4),
                    2 => Change::Swap {
                        voter: argument / 4,
                        learner: argument / 16,
                    },
                    _ => Change::AllVoters,
                }),
                19 => Step::TransferLeader(argument),
                20 => Step::ReadIndex(argument),
                21 => Step::Snapshot(argument),
                22 => Step::Partition(u8::try_from(argument % 31 + 1).unwrap_or(1)),
                _ => Step::Heal,
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&settings, rest)) = data.split_first() else {
        return;
    };
    // Long schedules make each run slow without finding more: cap them.
    let rest = &rest[..rest.len().min(600)];
    let scenario = Scenario {
        size: 3 + u64::from(settings % 3),
        auto_sync: settings & 0x04 != 0,
        tuning: Tuning {
            election_ticks: (3, 7),
            heartbeat_ticks: 1,
            append_in_flight_max: if settings & 0x08 != 0 { 1 } else { 4 },
            append_bytes_max: if settings & 0x10 != 0 { 1 } else { 1024 * 1024 },
            forward_proposals: settings & 0x20 != 0,
            snapshot_log_bytes: if settings & 0x40 != 0 { 200 } else { 8 * 1024 * 1024 },
            compaction_trailing_entries: u64::from(settings >> 7) * 2,
        },
        steps: steps(rest),
    };
    if let Err(failure) = run_scenario(&scenario) {
        panic!("{failure}\n{scenario:?}");
    }
});
