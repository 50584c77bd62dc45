//! Configuration changes: learners, single-step and joint changes, automatic exit from the
//! joint configuration, removed leaders, and the one-change-at-a-time rule.

mod common;

use std::collections::BTreeSet;

use common::n;
use raft_core::{Event, Membership, MembershipError, MessageBody, NodeId, Role};
use raft_tests::Cluster;

fn voters(ids: &[u64]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

fn rounds(cluster: &mut Cluster, count: usize) {
    for _ in 0..count {
        cluster.tick_all();
        cluster.deliver_all();
    }
}

fn membership(voter_ids: &[u64], learner_ids: &[u64]) -> Membership {
    Membership {
        voters: voters(voter_ids),
        outgoing_voters: BTreeSet::new(),
        learners: voters(learner_ids),
    }
}

// A learner receives the log but never campaigns, even cut off from everyone; listed among
// the voters it is promoted, and can then lead.
#[test]
fn learner_never_campaigns_and_can_be_promoted() {
    let mut cluster = Cluster::with_membership(4, membership(&[1, 2, 3], &[4]), |builder| builder);
    cluster.elect(n(1));
    cluster.propose(n(1), b"x").expect("leader accepts");
    rounds(&mut cluster, 3);
    assert_eq!(
        cluster.applied_commands(n(4)).len(),
        1,
        "the learner has the log"
    );
    cluster.isolate(n(4));
    rounds(&mut cluster, 100);
    assert_eq!(cluster.node(n(4)).role(), Role::Follower);
    assert!(
        !cluster
            .trace()
            .iter()
            .any(|line| line.starts_with("n4: event role=")),
        "the learner never changed role"
    );
    cluster.heal();
    cluster
        .change_membership(n(1), &[1, 2, 3, 4], &[])
        .expect("a one-voter change");
    rounds(&mut cluster, 3);
    for id in cluster.ids() {
        assert!(
            cluster.node(id).membership().is_voter(n(4)),
            "{id} sees n4 as a voter"
        );
    }
    cluster.campaign(n(4));
    cluster.deliver_all();
    assert_eq!(cluster.node(n(4)).role(), Role::Leader);
}

// In a two-node cluster whose second node is gone, nothing commits; removing that node takes
// effect when appended, so the pending entry commits with the leader alone.
#[test]
fn removing_a_dead_node_from_two_lets_the_pending_entry_commit() {
    let mut cluster = Cluster::new(2);
    cluster.elect(n(1));
    cluster.crash(n(2));
    cluster.propose(n(1), b"pending").expect("leader accepts");
    cluster.deliver_all();
    assert!(cluster.applied_commands(n(1)).is_empty(), "no quorum");
    cluster
        .change_membership(n(1), &[1], &[])
        .expect("a one-voter change");
    cluster.deliver_all();
    assert_eq!(
        cluster.applied_commands(n(1)),
        vec![bytes::Bytes::from_static(b"pending")]
    );
}

// A change of several voters passes through a joint configuration, which the leader leaves
// by itself once it commits.
#[test]
fn joint_consensus_is_entered_and_left() {
    let mut cluster = Cluster::with_membership(5, membership(&[1, 2, 3], &[]), |builder| builder);
    cluster.elect(n(1));
    cluster
        .change_membership(n(1), &[1, 4, 5], &[])
        .expect("a change");
    let joint = cluster.node(n(1)).membership().clone();
    assert!(joint.is_joint());
    assert_eq!(joint.outgoing_voters, voters(&[1, 2, 3]));
    assert_eq!(joint.voters, voters(&[1, 4, 5]));
    rounds(&mut cluster, 3);
    // The removed nodes may never hear of the final configuration: nobody replicates to
    // them any more. The members do.
    for id in [1, 4, 5] {
        assert_eq!(
            *cluster.node(n(id)).membership(),
            membership(&[1, 4, 5], &[]),
            "n{id} left the joint configuration"
        );
    }
    cluster.propose(n(1), b"after").expect("leader accepts");
    rounds(&mut cluster, 3);
    for id in [1, 4, 5] {
        assert_eq!(cluster.applied_commands(n(id)).len(), 1, "n{id}");
    }
}

// If the leader changes after the joint configuration commits but before the exit entry
// spreads, the new leader leaves the joint configuration itself.
#[test]
fn joint_configuration_is_left_even_when_the_leader_changes() {
    let mut cluster = Cluster::with_membership(4, membership(&[1, 2, 3], &[]), |builder| builder);
    cluster.elect(n(1));
    rounds(&mut cluster, 2);
    let joint_entry = cluster
        .change_membership(n(1), &[1, 2, 4], &[])
        .expect("a change of two voters");
    assert!(cluster.node(n(1)).membership().is_joint());
    while cluster.node(n(1)).commit_index() < joint_entry.index {
        assert!(cluster.deliver_next(), "the joint entry commits");
    }
    // n1 appended the exit entry at once, but crashes before anyone receives it.
    cluster.crash(n(1));
    cluster.drop_matching(|message| message.from == n(1));
    cluster.run_until(300, |cluster| {
        let Some(leader) = cluster.leader() else {
            return false;
        };
        // n3 is not in the final configuration, so it may never hear of it.
        leader != n(1)
            && [2, 4].into_iter().all(|id| {
                !cluster.node(NodeId(id)).membership().is_joint()
                    && cluster.node(NodeId(id)).membership().voters == voters(&[1, 2, 4])
            })
    });
}

// A leader that a committed configuration removes steps down, and the remaining voters elect
// a leader among themselves.
#[test]
fn removed_leader_steps_down() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster
        .change_membership(n(1), &[2, 3], &[])
        .expect("removing the leader is allowed");
    cluster.deliver_all();
    assert_ne!(cluster.node(n(1)).role(), Role::Leader, "n1 stepped down");
    cluster.run_until(200, |cluster| {
        cluster
            .leader()
            .is_some_and(|leader| leader == n(2) || leader == n(3))
    });
    let leader = cluster.leader().expect("a leader");
    cluster
        .propose(leader, b"without n1")
        .expect("leader accepts");
    rounds(&mut cluster, 3);
    assert_eq!(cluster.applied_commands(n(2)).len(), 1);
    assert_eq!(cluster.applied_commands(n(3)).len(), 1);
}

// A node removed while cut off never receives the entry that removed it and campaigns on
// its own; once healed, its pre-vote reaches the leader, which tells it so: the node stops
// campaigning for good, says so in an event and its status, and the leader never noticed.
#[test]
fn removed_node_learns_of_its_removal_and_stops_campaigning() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    rounds(&mut cluster, 2);
    let term = cluster.node(n(1)).term();
    cluster.isolate(n(3));
    let removal = cluster
        .change_membership(n(1), &[1, 2], &[])
        .expect("a one-voter change");
    rounds(&mut cluster, 3);
    assert!(cluster.node(n(1)).commit_index() >= removal.index);
    assert!(
        cluster.node(n(3)).membership().is_voter(n(3)),
        "n3 missed its removal"
    );
    rounds(&mut cluster, 40);
    assert!(
        cluster
            .trace()
            .iter()
            .any(|line| line.starts_with("n3: send") && line.contains("PreVote")),
        "cut off, n3 campaigns"
    );
    assert!(!cluster.node(n(3)).status().removed);

    cluster.take_events();
    cluster.heal();
    cluster.run_until(40, |cluster| cluster.node(n(3)).status().removed);
    let removed: Vec<_> = cluster
        .take_events()
        .into_iter()
        .filter(|(_, event)| matches!(event, Event::Removed { .. }))
        .collect();
    assert_eq!(
        removed,
        [(
            n(3),
            Event::Removed {
                index: removal.index
            }
        )]
    );
    cluster.clear_trace();
    rounds(&mut cluster, 100);
    let campaigned = cluster.trace().iter().any(|line| {
        line.starts_with("n3: send") && (line.contains("PreVote") || line.contains("RequestVote"))
    });
    assert!(!campaigned, "n3 no longer campaigns");
    assert_eq!(cluster.node(n(3)).role(), Role::Follower);
    assert!(cluster.node(n(3)).status().removed);
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    assert_eq!(
        cluster.node(n(1)).term(),
        term,
        "the leader was never disturbed"
    );
    assert!(
        !cluster
            .in_flight()
            .iter()
            .any(|message| matches!(message.body, MessageBody::Removed { .. })),
        "and has nothing more to tell"
    );
}

// One change at a time; invalid configurations and changes asked of followers are refused
// with typed errors, and a restarted node recovers its configuration from its log.
#[test]
fn changes_are_validated_and_recovered() {
    let mut cluster = Cluster::with_membership(4, membership(&[1, 2, 3], &[]), |builder| builder);
    cluster.elect(n(1));
    assert_eq!(
        cluster.change_membership(n(1), &[], &[4]),
        Err(MembershipError::NoVoters)
    );
    assert_eq!(
        cluster.change_membership(n(1), &[1, 2, 3], &[3]),
        Err(MembershipError::VoterAndLearner { node: n(3) })
    );
    assert_eq!(
        cluster.change_membership(n(2), &[1, 2, 3, 4], &[]),
        Err(MembershipError::NotLeader {
            leader_hint: Some(n(1))
        })
    );
    cluster
        .change_membership(n(1), &[1, 2, 3], &[4])
        .expect("adding a learner");
    assert_eq!(
        cluster.change_membership(n(1), &[1, 2, 3, 4], &[]),
        Err(MembershipError::ChangeInProgress)
    );
    rounds(&mut cluster, 3);
    cluster
        .change_membership(n(1), &[1, 2, 3, 4], &[])
        .expect("the previous change committed");
    rounds(&mut cluster, 3);
    cluster.crash(n(4));
    cluster.restart(n(4));
    assert_eq!(
        *cluster.node(n(4)).membership(),
        membership(&[1, 2, 3, 4], &[]),
        "the configuration is recovered from the log"
    );
}
