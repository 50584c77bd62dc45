//! An arbitrary sequence of inputs fed to one `Node`: ticks, messages from any peer with
//! any terms and indexes, proposals, commands, and storage, apply and snapshot
//! acknowledgements in any order the contract allows. The node never panics, and its own
//! invariants hold after every input: the term never decreases, it grants at most one
//! vote per term, a follower's commit index never passes its durable log (but for a
//! snapshot it installed), applies are handed out in order and only when committed.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raft_core::{
    Action, Config, Index, Membership, Message, MessageBody, Node, NodeId, Recovered, Role,
    SnapshotTransfer, Term, WriteId,
};

/// The node under test, and its configured peers.
const ME: NodeId = NodeId(1);
const PEERS: u64 = 4;

#[derive(Arbitrary, Debug)]
enum Input {
    Tick,
    /// A message to this node from the peer chosen by `from` (any term, any body).
    Step { from: u8, message: Message },
    Propose(Vec<u8>),
    /// Acknowledge one of the writes issued so far (counted back from the newest).
    Persisted { back: u8 },
    /// Acknowledge everything handed out for applying.
    Applied,
    Campaign,
    ReadIndex,
    /// Report a snapshot of the state machine at the applied index.
    SnapshotBuilt,
    SnapshotSent { follower: u8, delivered: bool },
    TransferLeader(u8),
    ChangeMembership { voters: u8, learners: u8 },
}

/// The nodes whose bit is set in `mask`, among 1..=PEERS.
fn nodes(mask: u8) -> Vec<NodeId> {
    (0..PEERS)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| NodeId(bit + 1))
        .collect()
}

fn peer(raw: u8) -> NodeId {
    NodeId(u64::from(raw) % PEERS + 1)
}

#[derive(Default)]
struct Observed {
    issued: Vec<WriteId>,
    handed_out: Index,
    last_term: Term,
    /// The candidate each term's granted vote went to.
    votes: BTreeMap<Term, NodeId>,
}

fuzz_target!(|inputs: Vec<Input>| {
    let config = Config::builder(ME)
        .election_ticks(3, 6)
        .heartbeat_ticks(1)
        .snapshot_log_bytes(256)
        .compaction_trailing_entries(2)
        .random_seed(7)
        .build()
        .expect("a valid configuration");
    let membership = Membership::with_voters((1..=PEERS - 1).map(NodeId));
    let mut node = Node::new(config, Recovered::new_cluster(membership)).expect("a new node");
    let mut observed = Observed::default();
    for input in inputs {
        match input {
            Input::Tick => node.tick(),
            Input::Step { from, mut message } => {
                message.from = peer(from);
                message.to = ME;
                node.step(message);
            }
            Input::Propose(command) => {
                let _ = node.propose(Bytes::from(command));
            }
            Input::Persisted { back } => {
                if !observed.issued.is_empty() {
                    let position = observed.issued.len() - 1 - usize::from(back) % observed.issued.len();
                    node.persisted(observed.issued[position])
                        .expect("an issued write may always be acknowledged");
                }
            }
            Input::Applied => {
                node.applied(observed.handed_out)
                    .expect("what was handed out may be acknowledged");
            }
            Input::Campaign => {
                let _ = node.campaign();
            }
            Input::ReadIndex => {
                let _ = node.read_index();
            }
            Input::SnapshotBuilt => {
                let _ = node.snapshot_built(node.applied_index());
            }
            Input::SnapshotSent {
                follower,
                delivered,
            } => {
                let outcome = if delivered {
                    SnapshotTransfer::Delivered
                } else {
                    SnapshotTransfer::Failed
                };
                node.snapshot_sent(peer(follower), outcome);
            }
            Input::TransferLeader(target) => {
                let _ = node.transfer_leader(peer(target));
            }
            Input::ChangeMembership { voters, learners } => {
                let _ = node.change_membership(nodes(voters), nodes(learners));
            }
        }
        drain(&mut node, &mut observed);
        check(&node, &mut observed);
    }
});

/// Carries out the node's actions the way a driver would, recording what matters.
fn drain(node: &mut Node, observed: &mut Observed) {
    while let Some(action) = node.poll_action() {
        match action {
            Action::Persist(write) => observed.issued.push(write.id()),
            Action::Send(message) => {
                if let MessageBody::RequestVoteResponse { granted: true } = message.body {
                    let previous = observed.votes.insert(message.term, message.to);
                    assert!(
                        previous.is_none_or(|candidate| candidate == message.to),
                        "two votes granted in term {}",
                        message.term.0
                    );
                }
            }
            Action::Apply(entries) => {
                let first = entries.first().expect("an apply hands out entries").index();
                assert_eq!(first, observed.handed_out.next(), "applies are contiguous");
                let last = entries.last().expect("non-empty").index();
                assert!(last <= node.commit_index(), "only committed entries are applied");
                observed.handed_out = last;
            }
            Action::Restore(snapshot) => {
                observed.handed_out = observed.handed_out.max(snapshot.last_included.index);
            }
            Action::SendSnapshot(_) | Action::Event(_) => {}
        }
    }
}

fn check(node: &Node, observed: &mut Observed) {
    let status = node.status();
    assert!(status.term >= observed.last_term, "the term went down");
    observed.last_term = status.term;
    if status.role != Role::Leader {
        // An installed snapshot is committed cluster-wide before it is durable here.
        let snapshot_point = node.compacted_through().index;
        assert!(
            status.commit <= status.durable_index || status.commit == snapshot_point,
            "a follower's commit {} passed its durable index {}",
            status.commit.0,
            status.durable_index.0
        );
    }
    assert!(status.commit <= status.last_index, "commit beyond the log");
}
