//! A node that lost its storage, at the protocol level: the write at index 3 was
//! acknowledged by n1 (the leader) and n2, and n3 never got it; n1 goes down and n2 comes
//! back blank. n2 and n3 are a majority, and n3's log lacks the write.

mod common;

use common::{n, recovered};
use raft_core::{Index, Recovered, Role};
use raft_tests::Cluster;

/// n1 holds entries 1-3 (3 committed with n2's acknowledgement), n2 comes back blank
/// (`fresh_storage` as its driver says), n3 holds entry 1 only; n1 is down.
fn cluster_after_the_loss(fresh_storage: bool) -> Cluster {
    let blank = Recovered {
        fresh_storage,
        ..recovered(3, 0, &[])
    };
    let mut cluster = Cluster::from_recovered(
        vec![
            (n(1), recovered(3, 1, &[1, 1, 1])),
            (n(2), blank),
            (n(3), recovered(3, 1, &[1])),
        ],
        |builder| builder,
    );
    cluster.crash(n(1));
    cluster
}

// With its storage marked fresh, the blank node refuses to help the stale n3 lead, however
// long n1 stays down; once n1 is back, n1 leads and every log ends with the write.
#[test]
fn a_blank_node_does_not_elect_a_leader_missing_a_write_it_acknowledged() {
    let mut cluster = cluster_after_the_loss(true);
    for _ in 0..300 {
        cluster.tick_all();
        cluster.deliver_all();
        assert_ne!(
            cluster.node(n(3)).role(),
            Role::Leader,
            "n3 was elected without the write at index 3\n{}",
            cluster.trace_tail(20)
        );
    }
    cluster.restart(n(1));
    cluster.run_until(300, |cluster| {
        cluster.leader().is_some()
            && [1, 2, 3]
                .into_iter()
                .all(|id| cluster.node(n(id)).commit_index() >= Index(3))
    });
    assert_eq!(cluster.leader(), Some(n(1)));
}

// The same start without the guard shows what it prevents: n2 votes for n3, which leads
// with a log that lacks the acknowledged write.
#[test]
fn without_the_guard_the_blank_node_elects_the_stale_leader() {
    let mut cluster = cluster_after_the_loss(false);
    cluster.run_until(300, |cluster| cluster.leader() == Some(n(3)));
    assert!(cluster.node(n(3)).log_entries().count() < 3);
}
