//! raft-rs's side: `RawNode` over `MemStorage`, driven by the Ready loop of raft-rs 0.7's
//! `examples/five_mem_node` (persist entries and hard state, send, apply, `advance`, then
//! the `LightReady`'s commit index, messages and committed entries, then `advance_apply`).

use raft::eraftpb::{ConfState, EntryType, Message};
use raft::prelude::Entry;
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};

use crate::workload::{Cluster, LEADER, NODES, StateMachine};

/// The settings changed from raft-rs's `Config::default()`, printed with the results.
pub(crate) const CONFIG_NOTE: &str = "`election_tick` 10 and `heartbeat_tick` 2 (as \
     raft-core's defaults: timeouts drawn in [10, 20) ticks, a heartbeat every 2); \
     `max_size_per_msg` 1 MiB (the default 0 means one entry per append; raft-core's \
     default is 1 MiB); `max_inflight_msgs` 256 (the default, as raft-core's); \
     `batch_append` on, because raft-core always puts the entries appended between two \
     flushes into one append per follower, while raft-rs by default sends one append per \
     proposal and follower (the last two columns). The rest is default: `pre_vote` and \
     `check_quorum` off where raft-core's are on (neither acts without ticks), no limit on \
     uncommitted entries, and commits broadcast to the followers as raft-core does";

/// The settings of node `id`; see [`CONFIG_NOTE`].
fn config(id: u64, batch_append: bool) -> Config {
    Config {
        id,
        election_tick: 10,
        heartbeat_tick: 2,
        max_size_per_msg: 1024 * 1024,
        max_inflight_msgs: 256,
        batch_append,
        ..Config::default()
    }
}

/// raft-rs's cluster, with `batch_append` set to `BATCH_APPEND`.
pub(crate) struct RaftRsCluster<const BATCH_APPEND: bool> {
    nodes: Vec<RawNode<MemStorage>>,
    /// Messages sent since the last delivery round.
    queued: Vec<Message>,
    /// The messages of the round being delivered (kept to reuse its buffer).
    delivering: Vec<Message>,
    messages_delivered: u64,
    state_machines: [StateMachine; NODES],
}

/// Applies committed entries to `state_machine`: commands only, as raft-core's side does
/// (the new leader's empty entry carries no data).
fn apply(state_machine: &mut StateMachine, entries: Vec<Entry>) {
    for entry in entries {
        assert_eq!(
            entry.get_entry_type(),
            EntryType::EntryNormal,
            "the workload changes no configuration"
        );
        if !entry.data.is_empty() {
            state_machine.apply(entry.index, entry.term, &entry.data);
        }
    }
}

impl<const BATCH_APPEND: bool> RaftRsCluster<BATCH_APPEND> {
    /// Handles every pending `Ready` of node `position`.
    fn drain(&mut self, position: usize) {
        let node = &mut self.nodes[position];
        let state_machine = &mut self.state_machines[position];
        while node.has_ready() {
            let mut ready = node.ready();
            // A leader's messages may go before its own write (Raft thesis 10.2.1); a
            // follower's come back as persisted messages below.
            self.queued.append(&mut ready.take_messages());
            assert!(
                ready.snapshot().is_empty(),
                "the log is never compacted, so no snapshot moves"
            );
            apply(state_machine, ready.take_committed_entries());
            {
                // MemStorage is in memory: the write is durable once it is stored.
                let mut storage = node.store().wl();
                storage
                    .append(ready.entries())
                    .expect("entries follow the log");
                if let Some(hard_state) = ready.hs() {
                    storage.set_hardstate(hard_state.clone());
                }
            }
            self.queued.append(&mut ready.take_persisted_messages());
            let mut light_ready = node.advance(ready);
            if let Some(commit) = light_ready.commit_index() {
                node.store().wl().mut_hard_state().set_commit(commit);
            }
            self.queued.append(&mut light_ready.take_messages());
            apply(state_machine, light_ready.take_committed_entries());
            node.advance_apply();
        }
    }
}

impl<const BATCH_APPEND: bool> Cluster for RaftRsCluster<BATCH_APPEND> {
    fn elected() -> RaftRsCluster<BATCH_APPEND> {
        // raft-rs needs a logger; Discard drops every record. Its debug and trace records are
        // compiled out of release builds anyway (slog's default static maximum is info).
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let voters: Vec<u64> = (1..=NODES as u64).collect();
        let nodes = voters
            .iter()
            .map(|&id| {
                let storage =
                    MemStorage::new_with_conf_state(ConfState::from((voters.clone(), vec![])));
                RawNode::new(&config(id, BATCH_APPEND), storage, &logger)
                    .expect("valid configuration")
            })
            .collect();
        let mut cluster = RaftRsCluster {
            nodes,
            queued: Vec::new(),
            delivering: Vec::new(),
            messages_delivered: 0,
            state_machines: [StateMachine::default(); NODES],
        };
        cluster.nodes[LEADER]
            .campaign()
            .expect("node 1 can campaign");
        while {
            cluster.drain_all();
            cluster.messages_queued()
        } {
            cluster.deliver_round();
        }
        let leader = &cluster.nodes[LEADER].raft;
        assert_eq!(leader.state, StateRole::Leader);
        let leader_last = leader.raft_log.last_index();
        for node in &cluster.nodes {
            assert_eq!(node.raft.leader_id, 1);
            assert_eq!(
                node.raft.raft_log.applied, leader_last,
                "empty entry applied"
            );
        }
        cluster
    }

    fn propose(&mut self, command: Vec<u8>) {
        // No context: an empty `Vec` does not allocate.
        if let Err(error) = self.nodes[LEADER].propose(Vec::new(), command) {
            panic!("the leader refused a proposal: {error:?}");
        }
    }

    fn drain_all(&mut self) {
        for position in 0..NODES {
            self.drain(position);
        }
    }

    fn messages_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    fn deliver_round(&mut self) {
        std::mem::swap(&mut self.queued, &mut self.delivering);
        self.messages_delivered += self.delivering.len() as u64;
        for message in self.delivering.drain(..) {
            let position = usize::try_from(message.to - 1).expect("small node id");
            self.nodes[position]
                .step(message)
                .expect("every message is for a known peer");
        }
    }

    fn messages_delivered(&self) -> u64 {
        self.messages_delivered
    }

    fn state_machines(&self) -> &[StateMachine; NODES] {
        &self.state_machines
    }
}
