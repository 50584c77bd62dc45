//! A golden trace of the messages and actions of a first election and commit.

use raft_core::{Index, NodeId, Role};
use raft_tests::Cluster;

// The exact sequence of messages, writes, events and applies of a three-node election
// started by node 1 and of its first committed command stays as recorded.
#[test]
fn election_and_first_commit_trace() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(NodeId(1));
    cluster.deliver_all();
    assert_eq!(cluster.node(NodeId(1)).role(), Role::Leader);
    let election = cluster.trace().join("\n");
    cluster.clear_trace();
    cluster
        .propose(NodeId(1), b"x")
        .expect("the leader accepts");
    cluster.deliver_all();
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).commit_index(), Index(2), "{id}");
    }
    let first_commit = cluster.trace().join("\n");
    let trace = format!(
        "# n1 campaigns, everything is delivered\n{election}\n\
         # n1 proposes \"x\", everything is delivered\n{first_commit}"
    );
    insta::assert_snapshot!(trace);
}
