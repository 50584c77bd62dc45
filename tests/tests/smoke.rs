//! The shortest path through the harness: elect, replicate, apply everywhere.

use raft_core::{NodeId, Role};
use raft_tests::Cluster;

// Three nodes elect one leader by timeouts alone, and a proposal reaches every state machine.
#[test]
fn three_nodes_elect_and_apply() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(100, |cluster| cluster.leader().is_some());
    let leader = cluster.leader().expect("a leader");
    let followers = cluster
        .ids()
        .into_iter()
        .filter(|id| cluster.node(*id).role() == Role::Follower)
        .count();
    assert_eq!(followers, 2);
    cluster.propose(leader, b"hello").expect("leader accepts");
    cluster.deliver_all();
    cluster.tick_all();
    cluster.deliver_all();
    for id in cluster.ids() {
        assert_eq!(
            cluster.applied_commands(id),
            vec![bytes::Bytes::from_static(b"hello")],
            "{id}"
        );
    }
}

// A single-node cluster elects itself and commits alone.
#[test]
fn single_node_commits_alone() {
    let mut cluster = Cluster::new(1);
    cluster.run_until(30, |cluster| cluster.leader() == Some(NodeId(1)));
    cluster.propose(NodeId(1), b"solo").expect("leader accepts");
    assert_eq!(cluster.applied_commands(NodeId(1)).len(), 1);
}
