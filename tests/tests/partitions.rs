//! Scenarios with partitions, written on the scripting harness's partition controls.

use raft_core::{NodeId, Role};
use raft_tests::Cluster;

// A leader cut off in a minority cannot commit, the majority elects a new leader and
// commits without it, and after healing the old leader steps down and adopts the new log.
#[test]
fn minority_leader_is_replaced_and_catches_up() {
    let mut cluster = Cluster::new(5);
    cluster.elect(NodeId(1));
    cluster.partition(&[NodeId(1), NodeId(2)]);
    cluster
        .propose(NodeId(1), b"lost")
        .expect("the old leader still accepts");
    cluster.run_until(200, |cluster| {
        [3, 4, 5]
            .into_iter()
            .any(|id| cluster.node(NodeId(id)).role() == Role::Leader)
    });
    let new_leader = [3, 4, 5]
        .into_iter()
        .map(NodeId)
        .find(|id| cluster.node(*id).role() == Role::Leader)
        .expect("the majority elected a leader");
    cluster
        .propose(new_leader, b"kept")
        .expect("new leader accepts");
    cluster.run_until(50, |cluster| {
        cluster.applied_commands(new_leader).len() == 1
    });
    assert!(
        cluster.applied_commands(NodeId(1)).is_empty(),
        "the minority leader commits nothing"
    );
    cluster.heal();
    cluster.run_until(200, |cluster| {
        cluster.node(NodeId(1)).role() == Role::Follower
            && cluster.applied_commands(NodeId(1)).len() == 1
    });
    for id in cluster.ids() {
        assert_eq!(
            cluster.applied_commands(id),
            vec![bytes::Bytes::from_static(b"kept")],
            "{id} applied only the majority's command"
        );
    }
}

// A node that cannot hear the leader (one-way cut) times out, but its pre-votes are
// refused by the leader and by the follower that still hears it: no term rises, the leader
// keeps leading, and after the link heals the node follows it again.
#[test]
fn one_way_cut_does_not_disrupt_under_pre_vote() {
    let mut cluster = Cluster::new(3);
    cluster.elect(NodeId(1));
    let first_term = cluster.node(NodeId(1)).term();
    cluster.cut_link(NodeId(1), NodeId(3));
    for _ in 0..100 {
        cluster.tick_all();
        cluster.deliver_all();
    }
    assert_eq!(cluster.node(NodeId(1)).role(), Role::Leader);
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).term(), first_term, "{id} kept the term");
    }
    cluster.heal();
    cluster
        .propose(NodeId(1), b"after")
        .expect("leader accepts");
    cluster.run_until(50, |cluster| {
        cluster
            .ids()
            .into_iter()
            .all(|id| cluster.applied_commands(id).len() == 1)
    });
    assert_eq!(cluster.node(NodeId(3)).leader(), Some(NodeId(1)));
}

// Without pre-vote and check-quorum the same cut lets the deaf node raise its term and
// depose the leader; safety holds and the cluster recovers with one leader once healed.
#[test]
fn one_way_cut_disrupts_without_pre_vote_but_stays_safe() {
    let mut cluster =
        Cluster::with_config(3, |builder| builder.pre_vote(false).check_quorum(false));
    cluster.elect(NodeId(1));
    let first_term = cluster.node(NodeId(1)).term();
    cluster.cut_link(NodeId(1), NodeId(3));
    cluster.run_until(200, |cluster| cluster.node(NodeId(3)).term() > first_term);
    cluster.heal();
    cluster.run_until(200, |cluster| {
        let leaders = cluster
            .ids()
            .into_iter()
            .filter(|id| cluster.node(*id).role() == Role::Leader)
            .count();
        leaders == 1
            && cluster
                .ids()
                .into_iter()
                .all(|id| cluster.node(id).leader().is_some())
    });
    assert!(
        cluster.node(NodeId(1)).term() > first_term,
        "the leader was deposed"
    );
    let leader = cluster.leader().expect("one leader");
    cluster.propose(leader, b"after").expect("leader accepts");
    cluster.run_until(50, |cluster| {
        cluster
            .ids()
            .into_iter()
            .all(|id| cluster.applied_commands(id).len() == 1)
    });
}

// Held messages arrive late, after newer ones, and the cluster still converges.
#[test]
fn held_appends_released_late_are_harmless() {
    let mut cluster = Cluster::new(3);
    cluster.elect(NodeId(1));
    cluster.propose(NodeId(1), b"one").expect("leader accepts");
    let held = cluster.hold_matching(|message| message.to == NodeId(3));
    assert!(held > 0);
    cluster.deliver_all();
    cluster.propose(NodeId(1), b"two").expect("leader accepts");
    cluster.deliver_all();
    cluster.release_held();
    cluster.deliver_all();
    cluster.run_until(20, |cluster| {
        cluster
            .ids()
            .into_iter()
            .all(|id| cluster.applied_commands(id).len() == 2)
    });
}
