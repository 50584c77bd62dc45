//! Regressions of bugs found in review, each kept as the scenario that exposed it.

mod common;

use common::{is_from_to, n};
use raft_core::{MessageBody, Role, Term};
use raft_tests::Cluster;

fn is_request_vote(message: &raft_core::Message) -> bool {
    matches!(message.body, MessageBody::RequestVote { .. })
}

// A candidate's vote request vouches for its term and last entry, so it must not leave
// before they are durable: otherwise a crash lets the node campaign in the same term again
// with a shorter log, count a grant given to its previous incarnation, and overwrite a
// committed entry.
#[test]
fn vote_requests_wait_for_the_candidates_own_durability() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(2));
    cluster.run_until(10, |cluster| {
        cluster.node(n(1)).commit_index().0 == 1 && cluster.node(n(3)).commit_index().0 == 1
    });
    cluster.take_in_flight();
    cluster.auto_sync = false;
    // Entry e commits on {n2, n3}; n1 holds it only in memory.
    cluster.propose(n(2), b"e").expect("leader accepts");
    cluster.deliver_matching(|message| message.from == n(2));
    cluster.sync(n(3));
    cluster.deliver_matching(|message| is_from_to(message, n(3), n(2)));
    cluster.sync(n(2));
    assert_eq!(cluster.node(n(2)).commit_index().0, 2);
    cluster.take_in_flight();

    // n1 campaigns for term 2 with e as its last entry, none of it durable yet.
    cluster.campaign(n(1));
    assert!(
        !cluster.in_flight().iter().any(is_request_vote),
        "no vote request before the candidate's own write is durable"
    );
    // It crashes before its disk catches up: term 2 and e are gone, and nobody was asked.
    cluster.crash(n(1));
    cluster.restart(n(1));
    assert_eq!(cluster.node(n(1)).term(), Term(1));
    assert_eq!(cluster.node(n(1)).last_log_id().index.0, 1);

    cluster.auto_sync = true;
    cluster.sync(n(2));
    cluster.sync(n(3));
    cluster.run_until(200, |cluster| {
        cluster.leader().is_some()
            && cluster
                .ids()
                .into_iter()
                .all(|id| cluster.applied_commands(id).len() == 1)
    });
    let committed = cluster.applied(n(2))[1].clone();
    for id in cluster.ids() {
        assert_eq!(
            cluster.applied(id)[1],
            committed,
            "{id} applied the committed entry"
        );
    }
    assert!(
        cluster
            .ids()
            .into_iter()
            .any(|id| cluster.node(id).role() == Role::Leader)
    );
}

// Found by the `node_inputs` fuzz target: a forged `InstallSnapshot` naming the last index
// of the index space overflowed the log arithmetic and panicked the node. It is dropped
// as malformed, and the node keeps working.
#[test]
fn a_snapshot_at_the_end_of_the_index_space_is_dropped() {
    use raft_core::{LogId, Membership, Message, NodeId, SnapshotMetadata};
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.deliver_all();
    let forged = Message {
        from: n(1),
        to: n(2),
        term: cluster.node(n(1)).term(),
        body: MessageBody::InstallSnapshot {
            snapshot: Box::new(SnapshotMetadata {
                last_included: LogId::new(1, u64::MAX),
                membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
            }),
        },
    };
    cluster.deliver(forged);
    assert!(cluster.node(n(2)).last_log_id().index.0 < 10);
    cluster.propose(n(1), b"after").expect("the leader accepts");
    cluster.deliver_all();
    cluster.tick_all();
    cluster.deliver_all();
    assert_eq!(
        cluster.applied_commands(n(2)),
        [bytes::Bytes::from_static(b"after")]
    );
}
