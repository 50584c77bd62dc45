//! raft-core's side: the driver loop of `raft-core/benches/throughput.rs`, with the
//! default configuration.

use std::hint::black_box;

use bytes::Bytes;
use raft_core::{Action, Config, Membership, Message, Node, NodeId, Payload, Proposal, Recovered};

use crate::workload::{Cluster, LEADER, NODES, StateMachine};

pub(crate) struct RaftCoreCluster {
    nodes: Vec<Node>,
    /// Messages sent since the last delivery round.
    queued: Vec<Message>,
    /// The messages of the round being delivered (kept to reuse its buffer).
    delivering: Vec<Message>,
    messages_delivered: u64,
    state_machines: [StateMachine; NODES],
}

impl RaftCoreCluster {
    /// Carries out every pending action of node `position`.
    fn drain(&mut self, position: usize) {
        let node = &mut self.nodes[position];
        let state_machine = &mut self.state_machines[position];
        while let Some(action) = node.poll_action() {
            match action {
                // Storage is in memory: the write is durable as soon as it is issued.
                Action::Persist(write) => node.persisted(write.id()).expect("write was issued"),
                Action::Send(message) => self.queued.push(message),
                Action::Apply(entries) => {
                    let mut last = None;
                    for entry in &entries {
                        if let Payload::Command(command) = &entry.payload {
                            state_machine.apply(entry.index().0, entry.term().0, command);
                        }
                        last = Some(entry.index());
                    }
                    node.applied(last.expect("an apply carries entries"))
                        .expect("entries were handed out");
                }
                // The whole log stays in memory on both sides: `snapshot_built` is never
                // called, so the log is never compacted and no snapshot moves.
                Action::SendSnapshot(_) | Action::Restore(_) => {
                    unreachable!("no snapshot is built")
                }
                // Role, leader, commit events and the default config's request for a
                // snapshot (every 8 MiB of applied log), which the workload ignores.
                Action::Event(event) => {
                    black_box(event);
                }
            }
        }
    }
}

impl Cluster for RaftCoreCluster {
    fn elected() -> RaftCoreCluster {
        let ids = (1..=NODES as u64).map(NodeId);
        let membership = Membership::with_voters(ids.clone());
        let nodes = ids
            .map(|id| {
                let config = Config::builder(id).build().expect("the defaults are valid");
                Node::new(config, Recovered::new_cluster(membership.clone()))
                    .expect("valid recovered state")
            })
            .collect();
        let mut cluster = RaftCoreCluster {
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
        assert_eq!(cluster.nodes[LEADER].leader(), Some(NodeId(1)));
        let leader_last = cluster.nodes[LEADER].last_log_id();
        for node in &cluster.nodes {
            assert_eq!(
                node.applied_index(),
                leader_last.index,
                "blank entry applied"
            );
        }
        cluster
    }

    fn propose(&mut self, command: Vec<u8>) {
        match self.nodes[LEADER].propose(Bytes::from(command)) {
            Ok(Proposal::Appended(_)) => {}
            other => panic!("the leader refused a proposal: {other:?}"),
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
            let position = usize::try_from(message.to.0 - 1).expect("small node id");
            self.nodes[position].step(message);
        }
    }

    fn messages_delivered(&self) -> u64 {
        self.messages_delivered
    }

    fn state_machines(&self) -> &[StateMachine; NODES] {
        &self.state_machines
    }
}
