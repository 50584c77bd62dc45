//! A three-node cluster in one process, driven by the run loop a real driver implements.
//!
//! Each node gets its own in-memory "disk" and the network is a queue. The program elects a
//! leader by ticking the clocks, replicates a few commands, crashes the leader, elects a
//! new one and shows that every committed command survived. Run it with
//! `cargo run -p raft-core --example three_nodes`.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use raft_core::{
    Action, Config, Entry, Event, HardState, Index, Membership, Message, Node, NodeId, Payload,
    Recovered, Role,
};

/// One machine: a node, what its disk holds and what its state machine applied.
struct Machine {
    node: Option<Node>,
    disk_hard_state: HardState,
    disk_entries: Vec<Entry>,
    applied: Vec<String>,
    applied_index: Index,
}

struct World {
    machines: BTreeMap<NodeId, Machine>,
    network: VecDeque<Message>,
    membership: Membership,
}

impl World {
    fn new(size: u64) -> World {
        let membership = Membership::with_voters((1..=size).map(NodeId));
        let machines = (1..=size)
            .map(|id| {
                let id = NodeId(id);
                let config = Config::builder(id)
                    .build()
                    .expect("default config is valid");
                let node = Node::new(config, Recovered::new_cluster(membership.clone()))
                    .expect("a new cluster is consistent");
                let machine = Machine {
                    node: Some(node),
                    disk_hard_state: HardState::default(),
                    disk_entries: Vec::new(),
                    applied: Vec::new(),
                    applied_index: Index(0),
                };
                (id, machine)
            })
            .collect();
        World {
            machines,
            network: VecDeque::new(),
            membership,
        }
    }

    /// Step 2 of the run loop: carry out every action, in order.
    fn drain(&mut self, id: NodeId) {
        let machine = self.machines.get_mut(&id).expect("machine exists");
        let Some(node) = machine.node.as_mut() else {
            return;
        };
        while let Some(action) = node.poll_action() {
            match action {
                Action::Persist(write) => {
                    // A synchronous "disk": durable at once, acknowledged at once.
                    if let Some(hard_state) = write.hard_state {
                        machine.disk_hard_state = hard_state;
                    }
                    if let Some(log) = &write.log {
                        machine
                            .disk_entries
                            .truncate(log.first_index.0 as usize - 1);
                        machine.disk_entries.extend(log.entries.iter().cloned());
                    }
                    node.persisted(write.id())
                        .expect("the node issued this write");
                }
                Action::Send(message) => self.network.push_back(message),
                // This example never builds a snapshot, so the log is never compacted and
                // no follower needs one.
                Action::SendSnapshot(_) | Action::Restore(_) => {
                    unreachable!("no snapshot is ever built here")
                }
                Action::Apply(entries) => {
                    for entry in &entries {
                        if let Payload::Command(command) = &entry.payload {
                            machine
                                .applied
                                .push(String::from_utf8_lossy(command).into_owned());
                        }
                        machine.applied_index = entry.index();
                    }
                    node.applied(machine.applied_index).expect("handed out");
                }
                Action::Event(Event::RoleChanged { role: Role::Leader }) => {
                    println!("  {id} became leader in term {}", node.term().0);
                }
                Action::Event(_) => {}
            }
        }
    }

    /// Step 1 of the run loop, for every kind of input: ticks, then messages.
    fn round(&mut self) {
        let ids: Vec<NodeId> = self.machines.keys().copied().collect();
        for id in &ids {
            if let Some(node) = self.machines.get_mut(id).and_then(|m| m.node.as_mut()) {
                node.tick();
            }
            self.drain(*id);
        }
        while let Some(message) = self.network.pop_front() {
            let to = message.to;
            if let Some(node) = self.machines.get_mut(&to).and_then(|m| m.node.as_mut()) {
                node.step(message);
                self.drain(to);
            }
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.machines.iter().find_map(|(id, machine)| {
            let node = machine.node.as_ref()?;
            (node.role() == Role::Leader).then_some(*id)
        })
    }

    fn run_until_leader(&mut self) -> NodeId {
        for _ in 0..200 {
            if let Some(leader) = self.leader() {
                return leader;
            }
            self.round();
        }
        panic!("no leader elected within 200 rounds");
    }

    fn propose(&mut self, leader: NodeId, command: &str) {
        let node = self.machines.get_mut(&leader).and_then(|m| m.node.as_mut());
        let proposal = node
            .expect("leader is up")
            .propose(Bytes::copy_from_slice(command.as_bytes()))
            .expect("the leader accepts proposals");
        println!(
            "  proposed {command:?} as entry {}",
            proposal.log_id().expect("appended")
        );
        self.drain(leader);
    }

    fn crash(&mut self, id: NodeId) {
        self.machines.get_mut(&id).expect("machine exists").node = None;
        self.network.retain(|message| message.to != id);
    }

    fn restart(&mut self, id: NodeId) {
        let machine = self.machines.get_mut(&id).expect("machine exists");
        let config = Config::builder(id)
            .random_seed(id.0 + 100)
            .build()
            .expect("valid");
        let recovered = Recovered {
            hard_state: machine.disk_hard_state,
            membership: self.membership.clone(),
            snapshot: None,
            entries: machine.disk_entries.clone(),
            applied: machine.applied_index,
            joining: false,
            fresh_storage: false,
        };
        machine.node = Some(Node::new(config, recovered).expect("disk state is consistent"));
    }
}

fn main() {
    let mut world = World::new(3);
    println!("electing a leader by ticking every clock:");
    let first = world.run_until_leader();

    println!("replicating three commands:");
    for command in ["x=1", "y=2", "z=3"] {
        world.propose(first, command);
    }
    for _ in 0..3 {
        world.round();
    }

    println!("crashing {first}; the others elect a new leader:");
    world.crash(first);
    let second = world.run_until_leader();
    world.propose(second, "w=4");
    for _ in 0..3 {
        world.round();
    }

    println!("restarting {first} from its disk; it catches up:");
    world.restart(first);
    for _ in 0..5 {
        world.round();
    }

    for (id, machine) in &world.machines {
        println!("  {id} applied {:?}", machine.applied);
    }
    let expected = ["x=1", "y=2", "z=3", "w=4"];
    for (id, machine) in &world.machines {
        assert_eq!(
            machine.applied, expected,
            "{id} applied every committed command in order"
        );
    }
    println!("every node applied the same {} commands", expected.len());
}
