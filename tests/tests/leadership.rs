//! Leadership under partitions: pre-vote, check-quorum, leader stickiness and leadership
//! transfer.

mod common;

use common::n;
use raft_core::{
    DropReason, Event, MessageBody, ProposeError, Role, Term, TransferError, TransferStatus,
};
use raft_tests::Cluster;

fn rounds(cluster: &mut Cluster, count: usize) {
    for _ in 0..count {
        cluster.tick_all();
        cluster.deliver_all();
    }
}

fn isolated_follower_rejoins(pre_vote: bool) -> (Cluster, bool) {
    let mut cluster = Cluster::with_config(3, move |builder| builder.pre_vote(pre_vote));
    cluster.elect(n(1));
    let term = cluster.node(n(1)).term();
    cluster.isolate(n(3));
    rounds(&mut cluster, 200);
    cluster.heal();
    rounds(&mut cluster, 50);
    let leader_survived =
        cluster.node(n(1)).role() == Role::Leader && cluster.node(n(1)).term() == term;
    (cluster, leader_survived)
}

// An isolated follower that rejoins does not depose a healthy leader with pre-vote; without
// it, the follower's inflated term forces a new election.
#[test]
fn isolated_follower_rejoining_with_and_without_pre_vote() {
    let (cluster, survived) = isolated_follower_rejoins(true);
    assert!(survived, "with pre-vote the leader survives");
    assert_eq!(cluster.node(n(3)).leader(), Some(n(1)));

    let (cluster, survived) = isolated_follower_rejoins(false);
    assert!(
        !survived,
        "without pre-vote the rejoining node deposes the leader"
    );
    assert!(cluster.leader().is_some(), "and the cluster elects again");
}

// A leader cut off from every follower steps down within an election timeout, and the
// majority elects a new one.
#[test]
fn isolated_leader_steps_down_under_check_quorum() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.isolate(n(1));
    let election_ticks = 10; // the default minimum election timeout
    rounds(&mut cluster, election_ticks * 2 + 1);
    assert_ne!(
        cluster.node(n(1)).role(),
        Role::Leader,
        "n1 stepped down by itself"
    );
    rounds(&mut cluster, 60);
    let new_leader = cluster.leader().expect("the majority elected a leader");
    assert_ne!(new_leader, n(1));
}

// Without check-quorum the isolated leader goes on believing it leads.
#[test]
fn isolated_leader_stays_without_check_quorum() {
    let mut cluster = Cluster::with_config(3, |builder| builder.check_quorum(false));
    cluster.elect(n(1));
    cluster.isolate(n(1));
    rounds(&mut cluster, 100);
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
}

// A node stuck at a higher term (it campaigned alone while cut off, with pre-vote off) is
// ignored by voters that hear the leader, yet freed: its answer to the leader's heartbeat
// reveals its term, the leader steps down, and a node with the longer log wins the new
// election, which the stuck node then follows.
#[test]
fn candidate_stuck_at_a_higher_term_is_freed() {
    let mut cluster = Cluster::with_config(3, |builder| builder.pre_vote(false));
    cluster.elect(n(1));
    cluster.isolate(n(3));
    cluster
        .propose(n(1), b"while n3 was away")
        .expect("leader accepts");
    rounds(&mut cluster, 100);
    let stuck_term = cluster.node(n(3)).term();
    assert!(
        stuck_term > cluster.node(n(1)).term(),
        "n3 campaigned alone"
    );
    cluster.heal();
    cluster.run_until(300, |cluster| {
        cluster.leader().is_some_and(|leader| leader != n(3))
            && cluster.node(n(3)).role() == Role::Follower
            && cluster.node(n(3)).leader().is_some()
    });
    let leader = cluster.leader().expect("a leader");
    assert!(cluster.node(leader).term() >= stuck_term);
    assert_eq!(cluster.applied_commands(n(3)).len(), 1, "n3 caught up");
}

// A transfer to an up-to-date follower makes it leader at once, in the next term.
#[test]
fn transfer_to_an_up_to_date_node() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    rounds(&mut cluster, 2);
    let term = cluster.node(n(1)).term();
    cluster.transfer_leader(n(1), n(2)).expect("n2 is a voter");
    cluster.deliver_all();
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
    assert_eq!(
        cluster.node(n(2)).term(),
        term.checked_next().expect("small term")
    );
    assert_eq!(cluster.node(n(1)).role(), Role::Follower);
    assert_eq!(cluster.node(n(1)).leader(), Some(n(2)));
}

// A transfer to a lagging follower first brings it up to date, and proposals are refused
// with a typed error while the transfer runs.
#[test]
fn transfer_to_a_lagging_node_catches_it_up_first() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.drop_matching(|_| true);
    cluster.isolate(n(3));
    for command in [b"a", b"b", b"c"] {
        cluster.propose(n(1), command).expect("leader accepts");
        cluster.deliver_all();
    }
    cluster.heal();
    cluster.transfer_leader(n(1), n(3)).expect("n3 is a voter");
    assert_eq!(
        cluster.propose(n(1), b"refused"),
        Err(ProposeError::ProposalDropped {
            reason: DropReason::LeadershipTransfer
        })
    );
    let sent_timeout_early = cluster
        .in_flight()
        .iter()
        .any(|message| matches!(message.body, MessageBody::TimeoutNow));
    assert!(
        !sent_timeout_early,
        "the target lacks entries: catch it up first"
    );
    cluster.deliver_all();
    assert_eq!(cluster.node(n(3)).role(), Role::Leader);
    rounds(&mut cluster, 3);
    for id in cluster.ids() {
        assert_eq!(cluster.applied_commands(id).len(), 3, "{id}");
    }
}

// A transfer to an unreachable node is abandoned after an election timeout; the old leader
// stays and accepts proposals again.
#[test]
fn transfer_to_an_unreachable_node_aborts() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.isolate(n(3));
    let term = cluster.node(n(1)).term();
    cluster.transfer_leader(n(1), n(3)).expect("n3 is a voter");
    assert_eq!(cluster.node(n(1)).transfer_target(), Some(n(3)));
    rounds(&mut cluster, 12);
    assert_eq!(cluster.node(n(1)).transfer_target(), None, "abandoned");
    assert_still_leading(&mut cluster, term);
}

// Retrying a transfer keeps its first deadline: a client that asks again every few ticks
// toward an unreachable target still sees the transfer abandoned after one election timeout,
// once, and proposals accepted again; the leader's status counts the ticks down meanwhile.
#[test]
fn retried_transfer_keeps_its_first_deadline() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.isolate(n(3));
    cluster.take_events();
    let term = cluster.node(n(1)).term();
    cluster.transfer_leader(n(1), n(3)).expect("n3 is a voter");
    let election_ticks = 10; // the default minimum election timeout
    for tick in 1..election_ticks {
        rounds(&mut cluster, 1);
        assert_eq!(
            cluster.node(n(1)).status().transfer,
            Some(TransferStatus {
                target: n(3),
                remaining_ticks: election_ticks - tick,
                // n3 held the whole log when it was cut off: TimeoutNow went out, and was lost.
                timeout_now_sent: true,
            }),
            "after {tick} ticks"
        );
        if tick % 3 == 0 {
            cluster
                .transfer_leader(n(1), n(3))
                .expect("a repeat is accepted");
        }
    }
    rounds(&mut cluster, 1);
    assert_eq!(cluster.node(n(1)).status().transfer, None, "abandoned");
    let aborted: Vec<_> = cluster
        .take_events()
        .into_iter()
        .filter(|(_, event)| matches!(event, Event::TransferAborted { .. }))
        .collect();
    assert_eq!(aborted, [(n(1), Event::TransferAborted { target: n(3) })]);
    assert_still_leading(&mut cluster, term);
}

// While a transfer runs, a transfer to another target is refused (the first target may
// already be campaigning) and the first one's deadline stands; once it ends, the other
// target can be asked for.
#[test]
fn transfer_to_another_target_waits_for_the_first() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.isolate(n(3));
    cluster.transfer_leader(n(1), n(3)).expect("n3 is a voter");
    rounds(&mut cluster, 4);
    assert_eq!(
        cluster.transfer_leader(n(1), n(2)),
        Err(TransferError::TransferInProgress { target: n(3) })
    );
    let transfer = cluster.node(n(1)).status().transfer.expect("in progress");
    assert_eq!((transfer.target, transfer.remaining_ticks), (n(3), 6));
    rounds(&mut cluster, 6);
    assert_eq!(cluster.node(n(1)).status().transfer, None, "abandoned");
    cluster.transfer_leader(n(1), n(2)).expect("n2 is a voter");
    cluster.deliver_all();
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
    assert_eq!(cluster.node(n(1)).status().transfer, None, "not a leader");
}

// A TimeoutNow delayed past the transfer's deadline cannot depose the leader: its target
// asks the leader to confirm first, and the leader, which gave the transfer up and took
// proposals again, refuses. No term moves, no vote is requested, and the target follows
// the leader on.
#[test]
fn stale_timeout_now_does_not_depose_the_leader() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    rounds(&mut cluster, 2);
    let term = cluster.node(n(1)).term();
    cluster.transfer_leader(n(1), n(2)).expect("n2 is a voter");
    let held = cluster.hold_matching(|message| matches!(message.body, MessageBody::TimeoutNow));
    assert_eq!(held, 1, "n2 is up to date: TimeoutNow went out at once");
    rounds(&mut cluster, 10);
    assert_eq!(cluster.node(n(1)).transfer_target(), None, "abandoned");
    cluster
        .propose(n(1), b"after the transfer")
        .expect("proposals are accepted again");
    rounds(&mut cluster, 2);

    cluster.clear_trace();
    cluster.release_held();
    cluster.deliver_all();
    rounds(&mut cluster, 30);
    let trace = cluster.trace();
    assert!(
        trace.iter().any(|line| line.starts_with("n1: send n1->n2")
            && line.contains("PreVoteResponse granted=false")),
        "the leader refused to confirm:\n{}",
        cluster.trace_tail(20)
    );
    assert!(
        !trace.iter().any(|line| line.contains("RequestVote ")),
        "nobody campaigned"
    );
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).term(), term, "{id}");
        assert_eq!(cluster.node(id).leader(), Some(n(1)), "{id}");
    }
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    cluster
        .propose(n(1), b"still leading")
        .expect("the leader accepts");
    rounds(&mut cluster, 2);
    assert_eq!(cluster.applied_commands(n(2)).len(), 2);
}

// Transfers to learners, to non-members and to the leader itself, and transfers asked of a
// follower, are refused with typed errors.
#[test]
fn invalid_transfers_are_refused() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    assert_eq!(
        cluster.transfer_leader(n(1), n(1)),
        Err(TransferError::TargetIsLeader)
    );
    assert_eq!(
        cluster.transfer_leader(n(1), n(9)),
        Err(TransferError::TargetNotVoter { target: n(9) })
    );
    assert_eq!(
        cluster.transfer_leader(n(2), n(3)),
        Err(TransferError::NotLeader {
            leader_hint: Some(n(1))
        })
    );
}

// With pre-vote but without check-quorum, a follower that still hears its leader refuses
// pre-votes, so a node rejoining from a partition still cannot depose a healthy leader.
#[test]
fn pre_vote_protects_the_leader_without_check_quorum() {
    let mut cluster = Cluster::with_config(3, |builder| builder.pre_vote(true).check_quorum(false));
    cluster.elect(n(1));
    let term = cluster.node(n(1)).term();
    cluster.isolate(n(3));
    rounds(&mut cluster, 200);
    cluster.drop_matching(|_| true);
    cluster.heal();
    while !cluster
        .in_flight()
        .iter()
        .any(|message| matches!(message.body, MessageBody::PreVote { .. }))
    {
        cluster.tick(n(3));
    }
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    assert_eq!(cluster.node(n(1)).term(), term);
}

// A transfer target that restarted (and so has not yet heard from the leader) still obeys
// the leader's TimeoutNow.
#[test]
fn restarted_target_obeys_timeout_now() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    rounds(&mut cluster, 2);
    cluster.crash(n(2));
    cluster.restart(n(2));
    cluster.transfer_leader(n(1), n(2)).expect("n2 is a voter");
    cluster.deliver_all();
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
}

/// n1 still leads in `term`, its transfer given up, and takes proposals again.
fn assert_still_leading(cluster: &mut Cluster, term: Term) {
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    assert_eq!(cluster.node(n(1)).term(), term);
    cluster
        .propose(n(1), b"again")
        .expect("proposals are accepted again");
}
