//! The workload both sides run, written once against the [`Cluster`] trait so that the
//! proposal pacing, the payloads, the delivery rounds and the checks cannot differ.

use std::time::Instant;

use crate::allocations::allocations;

/// Nodes in the cluster; node 1 (position 0) is elected and leads throughout.
pub(crate) const NODES: usize = 3;
pub(crate) const LEADER: usize = 0;
/// Payload bytes of every proposal.
pub(crate) const PAYLOAD_BYTES: usize = 128;

/// Three nodes of one Raft implementation in one thread, with in-memory storage that
/// acknowledges every write at once and in-process message queues.
pub(crate) trait Cluster {
    /// Builds the cluster and elects node 1, with every node having applied the new
    /// leader's entry and no message left in flight.
    fn elected() -> Self;
    /// Proposes `command` on the leader; panics when the leader refuses it, since no limit
    /// of the workload should ever be reached.
    fn propose(&mut self, command: Vec<u8>);
    /// Carries out every node's pending work (writes, sends, applies) until none is left;
    /// what the nodes send is queued for the next delivery round.
    fn drain_all(&mut self);
    /// Whether messages wait for the next delivery round.
    fn messages_queued(&self) -> bool;
    /// Hands every queued message to its receiver.
    fn deliver_round(&mut self);
    /// Messages delivered so far: shows whether both sides batch entries alike.
    fn messages_delivered(&self) -> u64;
    /// What each node's state machine applied.
    fn state_machines(&self) -> &[StateMachine; NODES];
}

/// A node's state machine: it checks that commands arrive exactly in proposal order and
/// keeps a digest of what it applied, so that the nodes can be compared at the end without
/// storing the entries (which would add allocations to the measurement).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateMachine {
    /// Commands applied.
    pub(crate) commands: u64,
    /// The log index of the last command applied.
    pub(crate) last_index: u64,
    /// A running digest of the (index, term, proposal number) of every command applied.
    pub(crate) digest: u64,
}

impl StateMachine {
    /// Applies one command entry.
    pub(crate) fn apply(&mut self, index: u64, term: u64, command: &[u8]) {
        assert_eq!(command.len(), PAYLOAD_BYTES, "a command of the workload");
        let number = u64::from_le_bytes(command[..8].try_into().expect("8 bytes"));
        // Proposals are numbered from 1 in the order they were made: every command must
        // come exactly once, in that order, on every node.
        assert_eq!(number, self.commands + 1, "commands applied out of order");
        assert!(index > self.last_index, "log indexes go backwards");
        self.commands = number;
        self.last_index = index;
        // FNV-1a style folding: cheap, and any difference in index, term or order changes it.
        for value in [index, term, number] {
            self.digest = (self.digest ^ value).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// How many proposals stay un-applied by the leader.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mode {
    pub(crate) name: &'static str,
    pub(crate) outstanding: u64,
}

pub(crate) const MODES: [Mode; 2] = [
    Mode {
        name: "1 outstanding",
        outstanding: 1,
    },
    Mode {
        name: "256 outstanding",
        outstanding: 256,
    },
];

/// A cluster and the proposals made on it.
struct Driver<C: Cluster> {
    cluster: C,
    proposed: u64,
}

impl<C: Cluster> Driver<C> {
    fn new() -> Driver<C> {
        Driver {
            cluster: C::elected(),
            proposed: 0,
        }
    }

    /// A fresh payload, allocated here (inside the measurement) as in the raft-core bench,
    /// with the proposal number in its first 8 bytes.
    fn command(&mut self) -> Vec<u8> {
        self.proposed += 1;
        let mut command = vec![0u8; PAYLOAD_BYTES];
        command[..8].copy_from_slice(&self.proposed.to_le_bytes());
        command
    }

    /// Proposes `count` entries, keeping at most `outstanding` of them un-applied by the
    /// leader (topped up before every delivery round), and runs until no message is left,
    /// so that every follower has applied every entry too. The final commit announcement to
    /// the followers is part of the run. [`Driver::verify`] checks the outcome.
    fn run(&mut self, outstanding: u64, count: u64) {
        let target = self.proposed + count;
        loop {
            while self.proposed < target
                && self.proposed - self.cluster.state_machines()[LEADER].commands < outstanding
            {
                let command = self.command();
                self.cluster.propose(command);
            }
            self.cluster.drain_all();
            if self.cluster.messages_queued() {
                self.cluster.deliver_round();
            } else {
                if self.proposed == target {
                    return;
                }
                assert_eq!(
                    self.cluster.state_machines()[LEADER].commands,
                    self.proposed,
                    "the cluster stalled with proposals outstanding"
                );
            }
        }
    }

    /// Every node applied every proposal, and the same entries in the same order.
    fn verify(&self) {
        let machines = self.cluster.state_machines();
        for (position, machine) in machines.iter().enumerate() {
            assert_eq!(
                machine.commands,
                self.proposed,
                "node {} applied {} of {} commands",
                position + 1,
                machine.commands,
                self.proposed
            );
            assert_eq!(
                *machine,
                machines[LEADER],
                "node {} applied other entries than the leader",
                position + 1
            );
        }
    }
}

/// One measurement of one side in one mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) nanoseconds_per_entry: f64,
    pub(crate) allocations_per_entry: f64,
    pub(crate) messages_per_entry: f64,
}

/// Builds and elects a fresh cluster, warms it with `warm_up` entries, then measures
/// `entries` entries; election, warm-up, checks and teardown are outside the measurement.
pub(crate) fn measure<C: Cluster>(mode: Mode, warm_up: u64, entries: u64) -> Sample {
    let mut driver = Driver::<C>::new();
    driver.run(mode.outstanding, warm_up);
    driver.verify();
    let messages_before = driver.cluster.messages_delivered();
    let allocations_before = allocations();
    let start = Instant::now();
    driver.run(mode.outstanding, entries);
    let elapsed = start.elapsed();
    let allocated = allocations() - allocations_before;
    let messages = driver.cluster.messages_delivered() - messages_before;
    driver.verify();
    assert_eq!(
        driver.proposed,
        warm_up + entries,
        "every entry was proposed"
    );
    let entries = entries as f64;
    Sample {
        nanoseconds_per_entry: elapsed.as_nanos() as f64 / entries,
        allocations_per_entry: allocated as f64 / entries,
        messages_per_entry: messages as f64 / entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft_core_cluster::RaftCoreCluster;
    use crate::raft_rs_cluster::RaftRsCluster;

    /// Both modes run to completion and pass the end-of-run checks.
    fn runs_both_modes<C: Cluster>() {
        let mut driver = Driver::<C>::new();
        driver.run(1, 50);
        driver.verify();
        driver.run(256, 3_000);
        driver.verify();
        assert_eq!(driver.proposed, 3_050);
        let sample = measure::<C>(MODES[1], 300, 1_000);
        assert!(sample.allocations_per_entry > 0.0);
    }

    #[test]
    fn raft_core_runs_both_modes() {
        runs_both_modes::<RaftCoreCluster>();
    }

    #[test]
    fn raft_rs_runs_both_modes() {
        runs_both_modes::<RaftRsCluster<true>>();
        runs_both_modes::<RaftRsCluster<false>>();
    }

    fn command(number: u64) -> Vec<u8> {
        let mut command = vec![0u8; PAYLOAD_BYTES];
        command[..8].copy_from_slice(&number.to_le_bytes());
        command
    }

    // The state machine refuses a command that skips one.
    #[test]
    #[should_panic(expected = "out of order")]
    fn a_skipped_command_is_caught() {
        let mut machine = StateMachine::default();
        machine.apply(1, 1, &command(1));
        machine.apply(2, 1, &command(3));
    }

    // The digest tells apart nodes that applied the same commands at other log positions.
    #[test]
    fn the_digest_covers_index_and_term() {
        let applied = |entries: &[(u64, u64)]| {
            let mut machine = StateMachine::default();
            for (number, (index, term)) in entries.iter().enumerate() {
                machine.apply(*index, *term, &command(number as u64 + 1));
            }
            machine
        };
        let reference = applied(&[(2, 1), (3, 1)]);
        assert_eq!(reference, applied(&[(2, 1), (3, 1)]));
        assert_ne!(reference, applied(&[(2, 1), (4, 1)]));
        assert_ne!(reference, applied(&[(2, 1), (3, 2)]));
    }
}
