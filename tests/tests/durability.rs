//! Durability: what a node promises survives its crash, what it never made durable it
//! never promised, and answers wait for storage.

mod common;

use raft_core::{Index, LogId, MessageBody, NodeId, Role, Term};
use raft_tests::Cluster;

use common::{bytes, follower_status, is_append, is_from_to, log_ids, n};

/// The vote answers in flight from `from` to `to`.
fn vote_answers(cluster: &Cluster, from: NodeId, to: NodeId) -> Vec<(Term, bool)> {
    cluster
        .in_flight()
        .iter()
        .filter(|message| is_from_to(message, from, to))
        .filter_map(|message| match message.body {
            MessageBody::RequestVoteResponse { granted } => Some((message.term, granted)),
            _ => None,
        })
        .collect()
}

// A node that voted in term T and restarted from its storage refuses another candidate
// of the same term T: its vote survived the crash.
#[test]
fn restarted_node_does_not_vote_twice_in_a_term() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(n(1));
    cluster.deliver_matching(|message| is_from_to(message, n(1), n(2)));
    assert_eq!(vote_answers(&cluster, n(2), n(1)), [(Term(1), true)]);
    cluster.take_in_flight();

    cluster.crash(n(2));
    cluster.restart(n(2));
    let status = cluster.node(n(2)).status();
    assert_eq!((status.term, status.vote), (Term(1), Some(n(1))));

    // n3 never heard of term 1 and campaigns in it too.
    cluster.campaign(n(3));
    assert_eq!(cluster.node(n(3)).term(), Term(1));
    cluster.deliver_matching(|message| is_from_to(message, n(3), n(2)));
    assert_eq!(vote_answers(&cluster, n(2), n(3)), [(Term(1), false)]);
    assert_eq!(cluster.node(n(2)).status().vote, Some(n(1)));
    cluster.deliver_all();
    assert_ne!(cluster.node(n(3)).role(), Role::Leader);
}

// A vote that never became durable is lost with a crash, but it was never sent either,
// so the node may then vote for another candidate of that term without voting twice.
#[test]
fn unsynced_vote_is_lost_and_was_never_claimed() {
    let mut cluster = Cluster::new(3);
    cluster.auto_sync = false;
    cluster.campaign(n(1));
    // The vote requests wait for n1's own term and vote to be durable.
    cluster.sync(n(1));
    cluster.deliver_matching(|message| is_from_to(message, n(1), n(2)));
    assert_eq!(
        cluster.node(n(2)).status().vote,
        Some(n(1)),
        "voted in memory"
    );
    assert!(
        vote_answers(&cluster, n(2), n(1)).is_empty(),
        "but did not say so"
    );
    cluster.take_in_flight();

    cluster.crash(n(2));
    cluster.restart(n(2));
    let status = cluster.node(n(2)).status();
    assert_eq!(
        (status.term, status.vote),
        (Term(0), None),
        "the vote is gone"
    );

    cluster.campaign(n(3));
    cluster.sync(n(3));
    cluster.deliver_matching(|message| is_from_to(message, n(3), n(2)));
    cluster.sync(n(2));
    assert_eq!(vote_answers(&cluster, n(2), n(3)), [(Term(1), true)]);
    let granted_to_n1 = cluster
        .trace()
        .iter()
        .any(|line| line.contains("n2->n1 t1 RequestVoteResponse granted=true"));
    assert!(!granted_to_n1, "n2 never told n1 it had its vote");
}

// Entries made durable survive a crash; entries appended but never synced are lost, and
// since the follower never acknowledged them the leader never counted them.
#[test]
fn durable_entries_survive_and_unsynced_entries_are_never_claimed() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    for command in [b"a", b"b"] {
        cluster.propose(n(1), command).expect("the leader accepts");
    }
    cluster.deliver_all();
    let durable = log_ids(&cluster, n(2));
    assert_eq!(durable.len(), 3);

    cluster.auto_sync = false;
    let unsynced = cluster
        .propose(n(1), b"c")
        .expect("the leader accepts")
        .log_id()
        .expect("appended");
    cluster.deliver_matching(|message| is_from_to(message, n(1), n(2)));
    assert_eq!(
        cluster.node(n(2)).last_log_id(),
        unsynced,
        "appended in memory"
    );
    assert_eq!(cluster.node(n(2)).status().durable_index, Index(3));
    assert!(
        !cluster
            .in_flight()
            .iter()
            .any(|message| message.from == n(2)),
        "no acknowledgement before the write is durable"
    );

    cluster.crash(n(2));
    cluster.restart(n(2));
    assert_eq!(
        log_ids(&cluster, n(2)),
        durable,
        "durable entries survived, c is lost"
    );
    assert_eq!(cluster.applied_commands(n(2)), [bytes(b"a"), bytes(b"b")]);
    assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(3));
    assert_eq!(cluster.node(n(1)).commit_index(), Index(3));
    let claimed = cluster
        .trace()
        .iter()
        .any(|line| line.starts_with("n2: send") && line.contains("matched=4"));
    assert!(!claimed, "n2 never acknowledged index 4");

    // Once storage keeps up again, c commits with n3 and n2 catches up.
    cluster.auto_sync = true;
    cluster.sync(n(1));
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).commit_index(), unsynced.index);
    common::heartbeat_round(&mut cluster, n(1));
    for id in cluster.ids() {
        assert_eq!(
            cluster.applied_commands(id),
            [bytes(b"a"), bytes(b"b"), bytes(b"c")],
            "{id}"
        );
    }
}

// Messages that vouch for state wait for that state to be durable: vote requests leave
// with the candidate's sync, a granted vote and an append acknowledgement with their
// node's sync, and a leader counts its own entry only once durable.
#[test]
fn answers_and_self_counts_wait_for_sync() {
    let mut cluster = Cluster::new(3);
    cluster.auto_sync = false;

    // The vote requests vouch for the candidate's term and last entry, so they wait for
    // its sync; the grant waits for n2's sync.
    cluster.campaign(n(1));
    assert!(
        cluster.in_flight().is_empty(),
        "vote requests wait for durability"
    );
    assert_eq!(cluster.node(n(1)).role(), Role::Candidate);
    cluster.sync(n(1));
    assert_eq!(cluster.in_flight().len(), 2);
    cluster.drop_matching(|message| message.to == n(3));
    cluster.deliver_next();
    assert!(vote_answers(&cluster, n(2), n(1)).is_empty());
    cluster.sync(n(2));
    assert_eq!(vote_answers(&cluster, n(2), n(1)), [(Term(1), true)]);
    cluster.deliver_next();
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);

    // n3 is cut off. n2 appends the blank entry but acknowledges it only once durable.
    cluster.drop_matching(|message| message.to == n(3));
    cluster.deliver_matching(|message| is_from_to(message, n(1), n(2)) && is_append(message));
    assert_eq!(cluster.node(n(2)).last_log_id(), LogId::new(1, 1));
    assert!(cluster.in_flight().is_empty(), "no acknowledgement yet");
    cluster.sync(n(2));
    assert_eq!(cluster.in_flight().len(), 1);
    cluster.deliver_next();
    assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(1));

    // n2 holds the entry durably, but the leader's own copy is not durable: with n3 cut
    // off, nothing commits until the leader's sync.
    assert_eq!(cluster.node(n(1)).status().durable_index, Index(0));
    assert_eq!(cluster.node(n(1)).commit_index(), Index(0));
    cluster.sync(n(1));
    assert_eq!(cluster.node(n(1)).commit_index(), Index(1));
}
