//! Regressions of configuration-change bugs, each kept as the scenario that exposed it.

mod common;

use std::collections::BTreeSet;

use common::n;
use raft_core::{Membership, MembershipError, Message, MessageBody, NodeId, Role};
use raft_tests::Cluster;

fn membership(voter_ids: &[u64], learner_ids: &[u64]) -> Membership {
    Membership {
        voters: voter_ids.iter().copied().map(NodeId).collect(),
        outgoing_voters: BTreeSet::new(),
        learners: learner_ids.iter().copied().map(NodeId).collect(),
    }
}

/// Delivers matching messages (and those they cause) until none matches; drops the rest.
fn exchange(cluster: &mut Cluster, mut keep: impl FnMut(&Message) -> bool) {
    for _ in 0..1000 {
        cluster.drop_matching(|message| !keep(message));
        if cluster.in_flight().is_empty() {
            return;
        }
        cluster.deliver_matching(|_| true);
    }
    panic!("no quiescence");
}

fn between(a: &[u64], m: &Message) -> bool {
    a.contains(&m.from.0) && a.contains(&m.to.0)
}

// Ongaro's single-server-change bug (raft-dev, 2015): a new leader may append a
// configuration entry before committing anything in its own term. Here n2 (term 2) removes
// n1 while n1's uncommitted add of n5 (term 1) survives on n1 and n5; the two
// configurations have disjoint quorums ({2,3} of {2,3,4} and {1,4,5} of {1..5}), and an
// entry committed by n2 is overwritten by n1 in term 3.
#[test]
fn new_leader_must_commit_in_its_term_before_a_change() {
    let mut cluster =
        Cluster::with_membership(5, membership(&[1, 2, 3, 4], &[]), |builder| builder);
    cluster.elect(n(1));
    exchange(&mut cluster, |_| true);
    // n1 adds n5; only n5 receives the entry.
    cluster
        .change_membership(n(1), &[1, 2, 3, 4, 5], &[])
        .expect("a one-voter change");
    exchange(&mut cluster, |m| between(&[1, 5], m));
    // The new member is first contacted by a heartbeat.
    for _ in 0..10 {
        cluster.tick(n(1));
        exchange(&mut cluster, |m| between(&[1, 5], m));
    }
    assert_eq!(cluster.node(n(5)).last_log_id().index.0, 2);
    // n2 is elected in term 2 by n2, n3, n4, without n1.
    cluster.crash(n(1));
    cluster.campaign(n(2));
    exchange(&mut cluster, |m| {
        between(&[2, 3], m)
            || (between(&[2, 4], m)
                && matches!(
                    m.body,
                    MessageBody::RequestVote { .. } | MessageBody::RequestVoteResponse { .. }
                ))
    });
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
    // Before its blank entry commits, n2 may not change the configuration: the uncommitted
    // add of n5 on n1 and n5 could otherwise form a quorum disjoint from n2's.
    assert_eq!(
        cluster.change_membership(n(2), &[2, 3, 4], &[]),
        Err(MembershipError::ChangeInProgress)
    );
    // Once an entry of its term commits (n2, n3, n4 are a quorum of {1,2,3,4}), the change
    // is allowed.
    for _ in 0..5 {
        cluster.tick(n(2));
        exchange(&mut cluster, |m| between(&[2, 3, 4], m));
    }
    assert!(cluster.node(n(2)).commit_index().0 >= 2);
    cluster
        .change_membership(n(2), &[2, 3, 4], &[])
        .expect("settled leader may change the configuration");
}

// A follower that truncates a configuration entry keeps that configuration in effect.
#[test]
fn truncated_configuration_entry_is_undone() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    exchange(&mut cluster, |_| true);
    cluster.auto_sync = false;
    // n1 removes n3; only n2 receives the entry, and n1 crashes before it is durable.
    cluster
        .change_membership(n(1), &[1, 2], &[])
        .expect("a one-voter change");
    cluster.deliver_matching(|m| m.to == n(2));
    cluster.sync(n(2));
    cluster.crash(n(1));
    cluster.drop_matching(|_| true);
    cluster.auto_sync = true;
    cluster.restart(n(1));
    assert_eq!(*cluster.node(n(2)).membership(), membership(&[1, 2], &[]));
    // n3 is elected by n1 and overwrites n2's index 2.
    cluster.campaign(n(3));
    exchange(&mut cluster, |_| true);
    assert_eq!(cluster.node(n(3)).role(), Role::Leader);
    assert!(
        cluster
            .node(n(2))
            .log_entries()
            .all(|entry| !matches!(entry.payload, raft_core::Payload::Membership(_))),
        "n2's log holds no configuration entry any more"
    );
    assert_eq!(
        *cluster.node(n(2)).membership(),
        membership(&[1, 2, 3], &[]),
        "n2 still follows the truncated configuration"
    );
}

// The same stale configuration, carried to a safety violation: n2 leads under its phantom
// {1,2}, "adds" n4 in one step (two voters changed relative to the real {1,2,3}), commits
// with {2,4}, and n1 + n3 elect n1, which overwrites that committed entry.
#[test]
fn truncated_configuration_entry_breaks_safety() {
    let mut cluster = Cluster::with_membership(4, membership(&[1, 2, 3], &[]), |builder| builder);
    cluster.elect(n(1));
    exchange(&mut cluster, |_| true);
    cluster.auto_sync = false;
    cluster
        .change_membership(n(1), &[1, 2], &[])
        .expect("a one-voter change");
    cluster.deliver_matching(|m| m.to == n(2));
    cluster.sync(n(2));
    cluster.crash(n(1));
    cluster.drop_matching(|_| true);
    cluster.auto_sync = true;
    cluster.restart(n(1));
    cluster.campaign(n(3));
    exchange(&mut cluster, |m| m.to != n(4) && m.from != n(4));
    assert_eq!(cluster.node(n(3)).role(), Role::Leader);
    // n2 (phantom {1,2}) is elected by n1 in term 3 and commits its blank with {1,2}.
    cluster.campaign(n(2));
    exchange(&mut cluster, |m| between(&[1, 2], m));
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
    // Against the phantom this is one change; against the log's {1,2,3}, two.
    let Ok(entry) = cluster.change_membership(n(2), &[1, 2, 4], &[]) else {
        return;
    };
    if cluster.node(n(2)).membership().is_joint() {
        return; // fixed: n2 follows {1,2,3}, so {1,2,4} goes through a joint configuration
    }
    for _ in 0..10 {
        cluster.tick(n(2));
        exchange(&mut cluster, |m| between(&[2, 4], m));
    }
    assert!(
        cluster.node(n(2)).commit_index() >= entry.index,
        "committed by {{2,4}}"
    );
    // n1 and n3, who never saw that entry, elect n1 (the checker fires in here).
    cluster.partition(&[n(2), n(4)]);
    cluster.campaign(n(1));
    exchange(&mut cluster, |m| between(&[1, 3], m));
    for _ in 0..10 {
        cluster.tick(n(1));
        exchange(&mut cluster, |m| between(&[1, 3], m));
    }
    panic!("no violation: n1 {:?}", cluster.node(n(1)).role());
}
