//! Helpers shared by the scenario test files: building logs, recognizing messages and
//! delivering while recording.
#![allow(dead_code)]

use bytes::Bytes;
use raft_core::{
    AppendResponse, Entry, FollowerStatus, HardState, Index, LogId, Membership, Message,
    MessageBody, NodeId, Payload, Recovered, Term,
};
use raft_tests::Cluster;

/// Node `id`.
pub(crate) fn n(id: u64) -> NodeId {
    NodeId(id)
}

/// A log holding one entry per term in `terms`, from index 1. Each entry's payload names
/// its id, so that two logs built here hold equal entries wherever their ids agree.
pub(crate) fn log_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(position, term)| {
            let index = position as u64 + 1;
            Entry {
                id: LogId::new(*term, index),
                payload: Payload::Command(Bytes::from(format!("{term}.{index}"))),
            }
        })
        .collect()
}

/// A recovered state of a member of `voters` with the log `terms`, in term `term` with no
/// vote, nothing applied.
pub(crate) fn recovered(voters: u64, term: u64, terms: &[u64]) -> Recovered {
    Recovered {
        snapshot: None,
        hard_state: HardState {
            term: Term(term),
            vote: None,
        },
        membership: Membership::with_voters((1..=voters).map(NodeId)),
        entries: log_of(terms),
        applied: Index(0),
        joining: false,
        fresh_storage: false,
    }
}

/// The ids of node `id`'s log entries.
pub(crate) fn log_ids(cluster: &Cluster, id: NodeId) -> Vec<LogId> {
    cluster
        .node(id)
        .log_entries()
        .map(|entry| entry.id)
        .collect()
}

/// Whether `message` goes from `from` to `to`.
pub(crate) fn is_from_to(message: &Message, from: NodeId, to: NodeId) -> bool {
    message.from == from && message.to == to
}

/// Whether `message` travels between `a` and `b`, either way.
pub(crate) fn is_between(message: &Message, a: NodeId, b: NodeId) -> bool {
    is_from_to(message, a, b) || is_from_to(message, b, a)
}

/// Whether `message` is an `AppendEntries`.
pub(crate) fn is_append(message: &Message) -> bool {
    matches!(message.body, MessageBody::AppendEntries { .. })
}

/// Whether `message` is a vote request or answer.
pub(crate) fn is_vote_traffic(message: &Message) -> bool {
    matches!(
        message.body,
        MessageBody::RequestVote { .. } | MessageBody::RequestVoteResponse { .. }
    )
}

/// Whether `message` is an `AppendEntries` carrying at least one entry.
pub(crate) fn carries_entries(message: &Message) -> bool {
    matches!(&message.body, MessageBody::AppendEntries { entries, .. } if !entries.is_empty())
}

/// The entries an `AppendEntries` carries (none for other messages).
pub(crate) fn entries_of(message: &Message) -> &[Entry] {
    match &message.body {
        MessageBody::AppendEntries { entries, .. } => entries,
        _ => &[],
    }
}

/// Whether `message` is a rejected `AppendEntriesResponse`.
pub(crate) fn is_rejection(message: &Message) -> bool {
    matches!(
        message.body,
        MessageBody::AppendEntriesResponse(AppendResponse::Rejected { .. })
    )
}

/// Whether `message` is an accepting `AppendEntriesResponse`.
pub(crate) fn is_acceptance(message: &Message) -> bool {
    matches!(
        message.body,
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { .. })
    )
}

/// Delivers matching messages (and those the deliveries cause that match too) until no
/// matching message is in flight, leaving the others in flight.
pub(crate) fn deliver_while(cluster: &mut Cluster, predicate: impl Fn(&Message) -> bool) {
    for _ in 0..10_000 {
        if !cluster.in_flight().iter().any(&predicate) {
            return;
        }
        cluster.deliver_matching(&predicate);
    }
    panic!("matching messages still in flight after 10000 rounds");
}

/// Delivers every message, oldest first, until none is in flight; returns them all in
/// delivery order.
pub(crate) fn deliver_all_recording(cluster: &mut Cluster) -> Vec<Message> {
    let mut delivered = Vec::new();
    while let Some(message) = cluster.in_flight().front().cloned() {
        delivered.push(message);
        cluster.deliver_next();
        assert!(delivered.len() < 100_000, "livelock");
    }
    delivered
}

/// The leader `leader`'s view of follower `follower`.
pub(crate) fn follower_status(
    cluster: &Cluster,
    leader: NodeId,
    follower: NodeId,
) -> FollowerStatus {
    cluster
        .node(leader)
        .status()
        .followers
        .into_iter()
        .find(|status| status.id == follower)
        .expect("the follower is a member")
}

/// Owned bytes of a static command, for comparing with applied commands.
pub(crate) fn bytes(command: &'static [u8]) -> Bytes {
    Bytes::from_static(command)
}

/// Ticks `leader` alone until it sends heartbeats, then delivers everything: one
/// heartbeat round, with no other node's timer moving.
pub(crate) fn heartbeat_round(cluster: &mut Cluster, leader: NodeId) {
    let heartbeat_sent = |cluster: &Cluster| {
        cluster
            .in_flight()
            .iter()
            .any(|message| matches!(message.body, MessageBody::Heartbeat { .. }))
    };
    for _ in 0..1_000 {
        cluster.tick(leader);
        if heartbeat_sent(cluster) {
            cluster.deliver_all();
            return;
        }
    }
    panic!("{leader} sent no heartbeat");
}

/// How many trace lines a failing property prints.
pub(crate) const TRACE_TAIL: usize = 40;

/// The last [`TRACE_TAIL`] lines of the cluster's trace, for failure messages.
pub(crate) fn trace_tail(cluster: &Cluster) -> String {
    cluster.trace_tail(TRACE_TAIL)
}

/// Takes the in-flight message at `position` (modulo the count) out of flight, keeping
/// the others in order.
pub(crate) fn take_at(cluster: &mut Cluster, position: usize) -> Option<Message> {
    cluster.take_at(position)
}

/// The running leader, if no running node has seen a higher term (an old leader that has
/// not yet heard of a newer term does not count).
pub(crate) fn current_leader(cluster: &Cluster) -> Option<NodeId> {
    cluster.current_leader()
}
