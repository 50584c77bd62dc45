//! Stale, duplicated, reordered and misaddressed messages.

mod common;

use raft_core::{AppendResponse, Index, LogId, Message, MessageBody, NodeId, Role, Term};
use raft_tests::Cluster;

use common::{follower_status, is_acceptance, is_append, is_from_to, log_ids, n};

/// The messages in flight from `from` to `to`.
fn in_flight_between(cluster: &Cluster, from: NodeId, to: NodeId) -> Vec<Message> {
    cluster
        .in_flight()
        .iter()
        .filter(|message| is_from_to(message, from, to))
        .cloned()
        .collect()
}

// Requests from a deposed leader's term get answers that carry the new term and refuse:
// a StaleTerm answer to its append, a refused vote to its vote request; neither changes
// the receiver.
#[test]
fn messages_from_an_old_term_are_refused_with_the_current_term() {
    let mut cluster = Cluster::new(3);
    cluster.campaign(n(1));
    let old_vote_request = in_flight_between(&cluster, n(1), n(3)).remove(0);
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    cluster.propose(n(1), b"old").expect("the leader accepts");
    let old_appends = cluster.take_in_flight();
    assert_eq!(old_appends.len(), 2);

    // n2 takes over in term 2 and overwrites n1's uncommitted entry.
    cluster.elect(n(2));
    assert_eq!(cluster.node(n(1)).role(), Role::Follower);
    let log_before = log_ids(&cluster, n(3));
    assert_eq!(log_before, [LogId::new(1, 1), LogId::new(2, 2)]);

    let old_append_to_n3 = old_appends
        .iter()
        .find(|message| message.to == n(3))
        .expect("an append to n3")
        .clone();
    assert_eq!(old_append_to_n3.term, Term(1));
    cluster.deliver(old_append_to_n3);
    assert_eq!(
        in_flight_between(&cluster, n(3), n(1))
            .iter()
            .map(|message| (message.term, message.body.clone()))
            .collect::<Vec<_>>(),
        [(
            Term(2),
            MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm)
        )]
    );
    assert_eq!(
        log_ids(&cluster, n(3)),
        log_before,
        "the stale append changed nothing"
    );
    assert_eq!(cluster.node(n(3)).leader(), Some(n(2)));
    cluster.take_in_flight();

    cluster.deliver(old_vote_request);
    assert_eq!(
        in_flight_between(&cluster, n(3), n(1))
            .iter()
            .map(|message| (message.term, message.body.clone()))
            .collect::<Vec<_>>(),
        [(Term(2), MessageBody::RequestVoteResponse { granted: false })]
    );
    assert_eq!(cluster.node(n(3)).status().vote, Some(n(2)));
    assert_eq!(cluster.node(n(3)).term(), Term(2));
}

// Duplicated and reordered append acknowledgements never lower a follower's `matched` on
// the leader, nor its commit index.
#[test]
fn duplicated_or_reordered_acknowledgements_never_lower_matched() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.propose(n(1), b"a").expect("the leader accepts");
    cluster.deliver_matching(is_append);
    let early = in_flight_between(&cluster, n(2), n(1)).remove(0);
    assert_eq!(
        early.body,
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { matched: Index(2) })
    );
    cluster.deliver_all();
    for command in [b"b", b"c"] {
        cluster.propose(n(1), command).expect("the leader accepts");
    }
    cluster.deliver_all();
    assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(4));

    // Duplicates of an old acknowledgement.
    cluster.inject(early.clone());
    cluster.inject(early);
    cluster.deliver_all();
    let status = follower_status(&cluster, n(1), n(2));
    assert_eq!((status.matched, status.next), (Index(4), Index(5)));
    assert_eq!(cluster.node(n(1)).commit_index(), Index(4));

    // Two acknowledgements delivered newest first.
    cluster.propose(n(1), b"d").expect("the leader accepts");
    cluster.propose(n(1), b"e").expect("the leader accepts");
    cluster.deliver_matching(|message| is_from_to(message, n(1), n(2)));
    let mut answers = in_flight_between(&cluster, n(2), n(1));
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(is_acceptance));
    cluster.drop_matching(|message| is_from_to(message, n(2), n(1)));
    answers.reverse();
    for answer in answers {
        cluster.deliver(answer);
        assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(6));
    }
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).commit_index(), Index(6));
    assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(6));
}

// A message handed to a node it is not addressed to, or claiming to come from the node
// itself or from the reserved id 0, is dropped without effect or answer.
#[test]
fn misaddressed_messages_are_dropped() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.propose(n(1), b"a").expect("the leader accepts");
    let for_n2 = in_flight_between(&cluster, n(1), n(2)).remove(0);
    cluster.take_in_flight();
    let n3_before = cluster.node(n(3)).status();

    cluster.clear_trace();
    cluster.deliver_to(n(3), for_n2.clone());
    let from_itself = Message {
        from: n(3),
        ..for_n2.clone()
    };
    let to_itself = Message {
        to: n(3),
        ..from_itself.clone()
    };
    cluster.deliver(to_itself);
    let from_nobody = Message {
        from: NodeId(0),
        to: n(3),
        ..for_n2.clone()
    };
    cluster.deliver(from_nobody);
    let higher_term_to_other = Message {
        term: Term(9),
        ..for_n2.clone()
    };
    cluster.deliver_to(n(3), higher_term_to_other);

    assert!(cluster.in_flight().is_empty(), "no answer");
    assert!(
        cluster
            .trace()
            .iter()
            .all(|line| line.starts_with("deliver")),
        "no action at all: {:?}",
        cluster.trace()
    );
    assert_eq!(cluster.node(n(3)).status(), n3_before);

    // Delivered to its addressee, the same message is accepted.
    cluster.deliver(for_n2);
    assert_eq!(cluster.node(n(2)).last_log_id(), LogId::new(1, 2));
    assert_eq!(in_flight_between(&cluster, n(2), n(1)).len(), 1);
}
