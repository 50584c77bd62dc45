//! End-to-end scenarios on the manual cluster harness: elections by timeout, replication
//! and commit, leader failover, and proposals on followers.

mod common;

use bytes::Bytes;
use raft_core::{Index, MessageBody, Proposal, ProposeError, Role};
use raft_tests::Cluster;

use common::{bytes, log_ids, n};

/// Whether exactly one running node leads and every other running node follows it in
/// the same term.
fn settled(cluster: &Cluster) -> bool {
    let Some(leader) = cluster.leader() else {
        return false;
    };
    let term = cluster.node(leader).term();
    cluster
        .ids()
        .into_iter()
        .filter(|id| *id != leader && cluster.is_up(*id))
        .all(|id| {
            let node = cluster.node(id);
            node.role() == Role::Follower && node.leader() == Some(leader) && node.term() == term
        })
}

fn elects_one_leader_by_timeouts(size: u64) {
    let mut cluster = Cluster::new(size);
    assert_eq!(cluster.leader(), None, "nobody leads before any tick");
    cluster.run_until(200, settled);
    let leader = cluster.leader().expect("a leader");
    let term = cluster.node(leader).term();
    let leaders = cluster
        .ids()
        .into_iter()
        .filter(|id| cluster.node(*id).role() == Role::Leader)
        .count();
    assert_eq!(leaders, 1, "exactly one leader");
    // With heartbeats flowing, the leadership is stable: nobody times out.
    for _ in 0..100 {
        cluster.tick_all();
        cluster.deliver_all();
    }
    assert_eq!(cluster.leader(), Some(leader), "the leader kept its role");
    for id in cluster.ids() {
        assert_eq!(cluster.node(id).term(), term, "{id} stayed in the term");
    }
    assert!(settled(&cluster));
}

// Three nodes, driven by ticks alone, elect exactly one leader that the other two follow.
#[test]
fn three_nodes_elect_one_leader_by_timeouts() {
    elects_one_leader_by_timeouts(3);
}

// Five nodes, driven by ticks alone, elect exactly one leader that the other four follow.
#[test]
fn five_nodes_elect_one_leader_by_timeouts() {
    elects_one_leader_by_timeouts(5);
}

// Several proposals are appended in order, committed, applied in order on every node, and
// the followers learn the leader's commit index.
#[test]
fn proposals_replicate_commit_and_apply_in_order() {
    let mut cluster = Cluster::new(3);
    cluster.run_until(200, settled);
    let leader = cluster.leader().expect("a leader");
    let term = cluster.node(leader).term();
    let commands: [&'static [u8]; 4] = [b"one", b"two", b"three", b"four"];
    let start = cluster.node(leader).last_log_id().index;
    let mut ids = Vec::new();
    for command in commands {
        let proposal = cluster
            .propose(leader, command)
            .expect("the leader accepts");
        ids.push(proposal.log_id().expect("appended by the leader"));
    }
    for (offset, id) in ids.iter().enumerate() {
        assert_eq!(id.term, term, "appended in the leader's term");
        assert_eq!(
            id.index,
            start.plus(offset as u64 + 1),
            "consecutive indices"
        );
    }
    assert!(
        cluster.node(leader).commit_index() < ids[0].index,
        "nothing commits before the followers answer"
    );
    cluster.deliver_all();
    let last = ids[3].index;
    let expected: Vec<Bytes> = commands.iter().map(|command| bytes(command)).collect();
    for id in cluster.ids() {
        let node = cluster.node(id);
        assert_eq!(node.commit_index(), last, "{id} learned the commit index");
        assert_eq!(node.applied_index(), last, "{id} applied everything");
        assert_eq!(
            cluster.applied_commands(id),
            expected,
            "{id} applied in order"
        );
        let applied_ids: Vec<_> = cluster.applied(id).iter().map(|entry| entry.id).collect();
        assert!(
            applied_ids.ends_with(&ids),
            "{id} applied the proposed entries"
        );
        assert_eq!(log_ids(&cluster, id), log_ids(&cluster, leader), "{id} log");
    }
}

// When the leader crashes, the next leader holds every committed entry, and the old
// leader, restarted, catches up with everything committed since.
#[test]
fn new_leader_holds_committed_entries_and_old_leader_catches_up() {
    let mut cluster = Cluster::new(5);
    cluster.run_until(200, settled);
    let old = cluster.leader().expect("a leader");
    let old_term = cluster.node(old).term();
    for command in [b"a", b"b", b"c"] {
        cluster.propose(old, command).expect("the leader accepts");
    }
    cluster.deliver_all();
    let committed = cluster.applied(old).to_vec();
    assert_eq!(committed.len(), 4, "the blank entry and three commands");

    cluster.crash(old);
    cluster.run_until(300, |cluster| {
        cluster.leader().is_some_and(|leader| leader != old) && settled(cluster)
    });
    let new = cluster.leader().expect("a new leader");
    assert!(cluster.node(new).term() > old_term, "a later term");
    for entry in &committed {
        assert_eq!(
            cluster.node(new).entry(entry.index()),
            Some(entry),
            "the new leader holds committed {entry}"
        );
    }
    for command in [b"d", b"e"] {
        cluster
            .propose(new, command)
            .expect("the new leader accepts");
    }
    cluster.deliver_all();

    cluster.restart(old);
    assert_eq!(cluster.node(old).role(), Role::Follower);
    let all: Vec<Bytes> = [b"a", b"b", b"c", b"d", b"e"]
        .iter()
        .map(|command| Bytes::copy_from_slice(*command))
        .collect();
    cluster.run_until(300, |cluster| cluster.applied_commands(old) == all);
    assert_eq!(
        cluster.leader(),
        Some(new),
        "the restart did not disturb the leader"
    );
    assert_eq!(log_ids(&cluster, old), log_ids(&cluster, new));
    assert_eq!(
        cluster.node(old).commit_index(),
        cluster.node(new).commit_index()
    );
}

// A follower refuses a proposal with the leader's id as a hint (none before any leader is
// known), and sends nothing.
#[test]
fn follower_refuses_proposals_with_a_leader_hint() {
    let mut cluster = Cluster::new(3);
    assert_eq!(
        cluster.propose(n(2), b"early"),
        Err(ProposeError::NotLeader { leader_hint: None })
    );
    cluster.elect(n(1));
    assert!(cluster.in_flight().is_empty());
    assert_eq!(
        cluster.propose(n(2), b"x"),
        Err(ProposeError::NotLeader {
            leader_hint: Some(n(1))
        })
    );
    assert!(cluster.in_flight().is_empty(), "nothing was forwarded");
    cluster.deliver_all();
    assert_eq!(
        cluster.node(n(1)).last_log_id().index,
        Index(1),
        "only the blank"
    );
}

// With forwarding on, a follower forwards a proposal to the leader, which appends and
// commits it on every node.
#[test]
fn follower_forwards_proposals_to_the_leader() {
    let mut cluster = Cluster::with_config(3, |builder| builder.forward_proposals(true));
    assert_eq!(
        cluster.propose(n(3), b"nowhere"),
        Err(ProposeError::NotLeader { leader_hint: None }),
        "no leader to forward to"
    );
    cluster.elect(n(1));
    assert_eq!(
        cluster.propose(n(3), b"forwarded"),
        Ok(Proposal::Forwarded { leader: n(1) })
    );
    let forwarded: Vec<_> = cluster.in_flight().iter().cloned().collect();
    assert_eq!(forwarded.len(), 1);
    assert_eq!((forwarded[0].from, forwarded[0].to), (n(3), n(1)));
    assert!(matches!(
        &forwarded[0].body,
        MessageBody::ForwardProposals { commands } if commands == &vec![bytes(b"forwarded")]
    ));
    cluster.deliver_all();
    for id in cluster.ids() {
        assert_eq!(
            cluster.applied_commands(id),
            vec![bytes(b"forwarded")],
            "{id} applied the forwarded command"
        );
    }
}
