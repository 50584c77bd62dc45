//! The client history of a scripted cluster, for the linearizability checker.
//!
//! The scripting harness ([`Cluster`]) has no clients of its own: proposals and reads are
//! steps. [`ScriptHistory`] treats the whole cluster as one register: every proposed
//! command is a write of its text, every `read_index` a read answered from the reading
//! node's state once it has applied the read's index. Time is the step number. At the end
//! [`ScriptHistory::check`] runs the same linearizability checker as the simulator.

use std::collections::BTreeMap;

use raft_core::{Event, Index, LogId, NodeId, Payload, Proposal, ProposeError, ReadId};

use crate::history::{Call, Operation, Outcome, Return};
use crate::linearizability::{self, Verdict};
use crate::script::Cluster;

/// The register every command writes.
const KEY: &str = "register";

/// A write whose outcome is not known yet.
#[derive(Debug)]
struct PendingWrite {
    node: NodeId,
    id: LogId,
    value: String,
    invoked: u64,
}

/// A read waiting for its confirmation, then for its node to apply its index.
#[derive(Debug)]
struct PendingRead {
    invoked: u64,
    index: Option<Index>,
}

/// Proposals and linearizable reads on a [`Cluster`] as a register history.
#[derive(Debug, Default)]
pub struct ScriptHistory {
    operations: Vec<Operation>,
    writes: Vec<PendingWrite>,
    reads: BTreeMap<(NodeId, ReadId), PendingRead>,
    /// The logical time: one tick per recorded moment.
    now: u64,
}

impl ScriptHistory {
    /// An empty history.
    pub fn new() -> ScriptHistory {
        ScriptHistory::default()
    }

    fn tick(&mut self) -> u64 {
        self.now += 1;
        self.now
    }

    fn push(&mut self, call: Call, outcome: Outcome, invoked: u64, completed: Option<u64>) {
        let process = self.operations.len() as u64;
        self.operations.push(Operation {
            process,
            call,
            outcome,
            invoke_time: invoked,
            complete_time: completed,
        });
    }

    /// `node` was asked to propose `command` (before the call), with this result.
    pub fn proposed(
        &mut self,
        node: NodeId,
        command: &str,
        invoked: u64,
        result: &Result<Proposal, ProposeError>,
    ) {
        match result {
            Ok(Proposal::Appended(id)) => self.writes.push(PendingWrite {
                node,
                id: *id,
                value: command.to_string(),
                invoked,
            }),
            // A forwarded proposal may or may not be appended by the leader.
            Ok(Proposal::Forwarded { .. }) => self.push(
                Call::Put {
                    key: KEY.to_string(),
                    value: command.to_string(),
                },
                Outcome::Unknown,
                invoked,
                None,
            ),
            // Refused: it certainly did not happen, and tells nothing.
            Err(_) => {}
        }
    }

    /// The moment an operation is invoked (take it before calling the cluster).
    pub fn invoke(&mut self) -> u64 {
        self.tick()
    }

    /// `node` accepted a read as `id`.
    pub fn read_started(&mut self, node: NodeId, id: ReadId, invoked: u64) {
        self.reads.insert(
            (node, id),
            PendingRead {
                invoked,
                index: None,
            },
        );
    }

    /// Takes in what happened since the last call: read confirmations and aborts from the
    /// cluster's events, writes applied or overwritten, reads that can now be answered.
    pub fn observe(&mut self, cluster: &mut Cluster) {
        let now = self.tick();
        for (node, event) in cluster.take_events() {
            match event {
                Event::ReadReady { id, index } => {
                    if let Some(read) = self.reads.get_mut(&(node, id)) {
                        read.index = Some(index);
                    }
                }
                Event::ReadAborted { id } => {
                    self.reads.remove(&(node, id));
                }
                _ => {}
            }
        }
        let mut answered = Vec::new();
        for ((node, id), read) in &self.reads {
            if let Some(index) = read.index
                && cluster.is_up(*node)
                && cluster.applied(*node).len() as u64 >= index.0
            {
                answered.push(((*node, *id), register_value(cluster.applied(*node))));
            }
        }
        for (key, value) in answered {
            if let Some(read) = self.reads.remove(&key) {
                self.push(
                    Call::Get {
                        key: KEY.to_string(),
                    },
                    Outcome::Ok(Return::Value(value)),
                    read.invoked,
                    Some(now),
                );
            }
        }
        let mut still_pending = Vec::new();
        for write in std::mem::take(&mut self.writes) {
            match write_fate(cluster, &write) {
                Some(true) => self.push(
                    Call::Put {
                        key: KEY.to_string(),
                        value: write.value.clone(),
                    },
                    Outcome::Ok(Return::Done),
                    write.invoked,
                    Some(now),
                ),
                Some(false) => {}
                None => still_pending.push(write),
            }
        }
        self.writes = still_pending;
    }

    /// Closes the history: writes still pending have an unknown outcome, reads still
    /// pending are dropped (they never answered). Then checks it.
    pub fn check(mut self) -> Verdict {
        for write in std::mem::take(&mut self.writes) {
            self.push(
                Call::Put {
                    key: KEY.to_string(),
                    value: write.value,
                },
                Outcome::Unknown,
                write.invoked,
                None,
            );
        }
        linearizability::check(&self.operations)
    }

    /// The operations recorded so far.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }
}

/// The register's value in an applied log: the last command, if any.
fn register_value(applied: &[raft_core::Entry]) -> Option<String> {
    applied.iter().rev().find_map(|entry| match &entry.payload {
        Payload::Command(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Payload::Blank | Payload::Membership(_) => None,
    })
}

/// Whether a write took effect (`Some(true)`: its entry was applied on its node), certainly
/// did not (`Some(false)`: some node applied another entry at its index), or is unknown.
fn write_fate(cluster: &Cluster, write: &PendingWrite) -> Option<bool> {
    let position = usize::try_from(write.id.index.0).ok()?.checked_sub(1)?;
    for node in cluster.ids() {
        if let Some(entry) = cluster.applied(node).get(position) {
            if entry.id != write.id {
                return Some(false);
            }
            if node == write.node {
                return Some(true);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // Writes applied on their node complete; a read returns the register as of its index;
    // refused proposals leave no trace; the whole history is linearizable. A read that
    // returns a value nobody wrote is caught.
    #[test]
    fn proposals_and_reads_become_register_operations() {
        let mut cluster = Cluster::new(3);
        let mut history = ScriptHistory::new();
        cluster.elect(NodeId(1));
        for command in ["c1", "c2"] {
            let invoked = history.invoke();
            let result = cluster.propose(NodeId(1), command.as_bytes());
            history.proposed(NodeId(1), command, invoked, &result);
            cluster.deliver_all();
            cluster.tick_all();
            cluster.deliver_all();
            history.observe(&mut cluster);
        }
        let invoked = history.invoke();
        let refused = cluster.propose(NodeId(2), b"c3");
        history.proposed(NodeId(2), "c3", invoked, &refused);
        let invoked = history.invoke();
        let read = cluster.read_index(NodeId(3)).expect("a leader is known");
        history.read_started(NodeId(3), read, invoked);
        cluster.deliver_all();
        history.observe(&mut cluster);
        let operations = history.operations().to_vec();
        assert_eq!(operations.len(), 3, "{operations:?}");
        assert!(matches!(&operations[0].call, Call::Put { value, .. } if value == "c1"));
        assert_eq!(operations[0].outcome, Outcome::Ok(Return::Done));
        assert_eq!(
            operations[2].outcome,
            Outcome::Ok(Return::Value(Some("c2".to_string())))
        );
        assert!(history.check().is_linearizable());

        let mut forged = ScriptHistory::new();
        forged.push(
            Call::Get {
                key: KEY.to_string(),
            },
            Outcome::Ok(Return::Value(Some("never written".to_string()))),
            1,
            Some(2),
        );
        assert!(!forged.check().is_linearizable());
    }
}
