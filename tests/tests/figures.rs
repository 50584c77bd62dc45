//! The situations of the Raft paper's Figures 7 and 8, and the one-round-trip search for
//! a follower's match point.

mod common;

use std::collections::BTreeMap;

use raft_core::{Index, LogId, Message, NodeId, Role, Term};
use raft_tests::Cluster;

use common::{
    bytes, deliver_all_recording, deliver_while, entries_of, follower_status, heartbeat_round,
    is_acceptance, is_append, is_between, is_from_to, is_rejection, is_vote_traffic, log_ids, n,
    recovered,
};

/// The Figure 7 leader's log (it leads term 8).
const FIGURE_7_LEADER: &[u64] = &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6];

/// The Figure 7 followers (a) to (f), as nodes 2 to 7.
const FIGURE_7_FOLLOWERS: [(&str, &[u64]); 6] = [
    ("a", &[1, 1, 1, 4, 4, 5, 5, 6, 6]),
    ("b", &[1, 1, 1, 4]),
    ("c", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]),
    ("d", &[1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]),
    ("e", &[1, 1, 1, 4, 4, 4, 4]),
    ("f", &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]),
];

/// How many rejected appends each node sent among `messages`.
fn rejections_by_sender(messages: &[Message]) -> BTreeMap<NodeId, usize> {
    let mut counts = BTreeMap::new();
    for message in messages.iter().filter(|message| is_rejection(message)) {
        *counts.entry(message.from).or_insert(0) += 1;
    }
    counts
}

// Each of Figure 7's six divergent follower logs, missing entries, holding extra ones or
// both, converges to the term-8 leader's log, each found in at most one rejection.
#[test]
fn figure_7_divergent_followers_converge_to_the_leader() {
    // Everyone was last in term 7 (follower (d) holds entries of term 7) and voted for
    // nobody; the leader's campaign takes it to term 8.
    let mut states = vec![(n(1), recovered(7, 7, FIGURE_7_LEADER))];
    for (position, (_, terms)) in FIGURE_7_FOLLOWERS.iter().enumerate() {
        states.push((n(position as u64 + 2), recovered(7, 7, terms)));
    }
    let mut cluster = Cluster::from_recovered(states, |builder| builder);
    cluster.campaign(n(1));
    assert_eq!(cluster.node(n(1)).term(), Term(8));
    let messages = deliver_all_recording(&mut cluster);
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    assert_eq!(cluster.leader(), Some(n(1)));

    // (c) and (d) hold logs more up to date than the leader's and refuse their votes; the
    // other four elect it.
    let votes: BTreeMap<NodeId, bool> = messages
        .iter()
        .filter_map(|message| match message.body {
            raft_core::MessageBody::RequestVoteResponse { granted } => {
                Some((message.from, granted))
            }
            _ => None,
        })
        .collect();
    let expected_votes: BTreeMap<NodeId, bool> = [
        (n(2), true),
        (n(3), true),
        (n(4), false),
        (n(5), false),
        (n(6), true),
        (n(7), true),
    ]
    .into();
    assert_eq!(votes, expected_votes);

    // The leader appended its blank entry at index 11; every follower now holds exactly
    // the leader's log, extra entries of (c), (d) and (f) gone, and, once a heartbeat
    // carried the commit index to those still probing when it advanced, has applied it.
    heartbeat_round(&mut cluster, n(1));
    let mut expected: Vec<LogId> = FIGURE_7_LEADER
        .iter()
        .enumerate()
        .map(|(position, term)| LogId::new(*term, position as u64 + 1))
        .collect();
    expected.push(LogId::new(8, 11));
    assert_eq!(log_ids(&cluster, n(1)), expected);
    for (position, (name, _)) in FIGURE_7_FOLLOWERS.iter().enumerate() {
        let id = n(position as u64 + 2);
        assert_eq!(log_ids(&cluster, id), expected, "follower ({name})");
        let leader_entries: Vec<_> = cluster.node(n(1)).log_entries().collect();
        let entries: Vec<_> = cluster.node(id).log_entries().collect();
        assert_eq!(entries, leader_entries, "follower ({name}) payloads");
        assert_eq!(
            cluster.node(id).commit_index(),
            Index(11),
            "({name}) commit"
        );
        assert_eq!(cluster.applied(id).len(), 11, "({name}) applied");
        assert_eq!(
            cluster.server(id).storage.entries().len(),
            11,
            "({name}) stored"
        );
    }

    // (a), (b), (e) and (f) each needed one rejection, (c) and (d) none.
    let expected_rejections: BTreeMap<NodeId, usize> =
        [(n(2), 1), (n(3), 1), (n(6), 1), (n(7), 1)].into();
    assert_eq!(rejections_by_sender(&messages), expected_rejections);
}

/// Builds Figure 8 (c) on five nodes (terms shifted down by one: the paper's term 2 is
/// term 1 here) and returns the cluster with the old entry:
///
/// - n1 leads term 1 and replicates its entry 1.2 to n2 only, then crashes;
/// - n5 wins term 2 with the votes of n3 and n4 and appends 2.2 locally, then crashes;
/// - n1 restarts and wins term 3 with n2 and n3, and replicates 1.2 to n3: 1.2 is now on
///   n1, n2 and n3, a majority, and the leader knows it. Its term-3 blank 3.3 is on n1
///   and n2 only; the append carrying 3.3 to n3 is still in flight.
///
/// Appends carry at most one byte of payload, so 1.2 ("old") travels alone.
fn figure_8_c() -> (Cluster, LogId) {
    let mut cluster = Cluster::with_config(5, |builder| builder.append_bytes_max(1));

    // (a)
    cluster.elect(n(1));
    let old = cluster
        .propose(n(1), b"old")
        .expect("the leader accepts")
        .log_id()
        .expect("appended");
    assert_eq!(old, LogId::new(1, 2));
    deliver_while(&mut cluster, |message| is_between(message, n(1), n(2)));
    cluster.take_in_flight();
    assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(2));
    assert_eq!(
        cluster.node(n(1)).commit_index(),
        Index(1),
        "on 2 of 5 only"
    );

    // (b)
    cluster.crash(n(1));
    cluster.campaign(n(5));
    deliver_while(&mut cluster, is_vote_traffic);
    assert_eq!(
        cluster.node(n(5)).role(),
        Role::Leader,
        "n3 and n4 voted for n5"
    );
    assert_eq!(cluster.node(n(5)).term(), Term(2));
    assert_eq!(
        log_ids(&cluster, n(5)),
        [LogId::new(1, 1), LogId::new(2, 2)]
    );
    cluster.take_in_flight();
    cluster.crash(n(5));

    // (c): n3 and n4 voted for n5 in term 2, so n1 needs term 3.
    cluster.restart(n(1));
    cluster.campaign(n(1));
    cluster.take_in_flight();
    cluster.campaign(n(1));
    assert_eq!(cluster.node(n(1)).term(), Term(3));
    // n2 and n3 vote for it; n4's ballot is never delivered, so n4 stays in term 2.
    deliver_while(&mut cluster, |message| {
        is_vote_traffic(message)
            && (is_between(message, n(1), n(2)) || is_between(message, n(1), n(3)))
    });
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    assert_eq!(log_ids(&cluster, n(1)).last(), Some(&LogId::new(3, 3)));
    // n2 takes the blank at once.
    deliver_while(&mut cluster, |message| is_between(message, n(1), n(2)));
    assert_eq!(follower_status(&cluster, n(1), n(2)).matched, Index(3));
    // n3 lacks 1.2: it rejects the first append, accepts 1.2 alone, and the next append,
    // carrying 3.3, stays in flight.
    let to_n3 = |cluster: &Cluster| {
        cluster
            .in_flight()
            .iter()
            .position(|message| is_from_to(message, n(1), n(3)))
            .expect("an append to n3")
    };
    for expected_entries in [vec![LogId::new(3, 3)], vec![old]] {
        let message = cluster.in_flight()[to_n3(&cluster)].clone();
        let ids: Vec<LogId> = entries_of(&message).iter().map(|entry| entry.id).collect();
        assert_eq!(ids, expected_entries);
        cluster.deliver_matching(|candidate| *candidate == message);
        deliver_while(&mut cluster, |message| is_from_to(message, n(3), n(1)));
    }
    let held = cluster.in_flight()[to_n3(&cluster)].clone();
    assert_eq!(
        entries_of(&held)
            .iter()
            .map(|entry| entry.id)
            .collect::<Vec<_>>(),
        [LogId::new(3, 3)]
    );
    // Everything else (appends to n4 and the crashed n5) is lost.
    cluster.drop_matching(|message| *message != held);
    assert_eq!(follower_status(&cluster, n(1), n(3)).matched, Index(2));
    (cluster, old)
}

// Figure 8 (c)-(d): an entry of an earlier term on a majority is not committed by counting
// replicas, and rightly so: a later leader may overwrite it.
#[test]
fn figure_8_old_term_entry_on_a_majority_is_not_committed() {
    let (mut cluster, old) = figure_8_c();
    for id in [n(1), n(2), n(3)] {
        assert_eq!(
            cluster.node(id).entry(old.index).map(|entry| entry.id),
            Some(old)
        );
    }
    assert_eq!(
        cluster.node(n(1)).commit_index(),
        Index(1),
        "1.2 is on a majority but not committed"
    );
    assert!(cluster.applied_commands(n(1)).is_empty());

    // (d): n1 crashes before 3.3 reaches a majority; n5 wins term 4 with the votes of n3
    // and n4 (its last entry 2.2 beats their 1.2 and 1.1) and overwrites 1.2.
    cluster.take_in_flight();
    cluster.crash(n(1));
    cluster.restart(n(5));
    cluster.campaign(n(5));
    cluster.take_in_flight();
    cluster.campaign(n(5));
    assert_eq!(cluster.node(n(5)).term(), Term(4));
    cluster.deliver_all();
    assert_eq!(cluster.node(n(5)).role(), Role::Leader);
    heartbeat_round(&mut cluster, n(5));
    for id in [n(2), n(3), n(4), n(5)] {
        assert_eq!(
            cluster.node(id).entry(old.index).map(|entry| entry.id),
            Some(LogId::new(2, 2)),
            "{id} replaced 1.2"
        );
        assert_eq!(cluster.node(id).commit_index(), Index(3), "{id}");
    }
}

// Figure 8 (e): the earlier-term entry commits only together with an entry of the
// current term, and then a stale candidate can no longer win.
#[test]
fn figure_8_old_term_entry_commits_with_a_current_term_entry() {
    let (mut cluster, old) = figure_8_c();
    assert_eq!(cluster.node(n(1)).commit_index(), Index(1));
    // The one held message: 3.3 reaches n3, a majority holds it, and the commit index
    // jumps over 1.2 to 3.3.
    cluster.deliver_next();
    assert_eq!(
        cluster.node(n(1)).commit_index(),
        Index(1),
        "n3 has not answered"
    );
    deliver_while(&mut cluster, |message| is_from_to(message, n(3), n(1)));
    assert_eq!(cluster.node(n(1)).commit_index(), Index(3));
    assert_eq!(
        cluster
            .applied(n(1))
            .iter()
            .map(|entry| entry.id)
            .collect::<Vec<_>>(),
        [LogId::new(1, 1), old, LogId::new(3, 3)]
    );
    assert_eq!(cluster.applied_commands(n(1)), [bytes(b"old")]);
    cluster.deliver_all();
    for id in [n(2), n(3)] {
        assert_eq!(cluster.node(id).commit_index(), Index(3), "{id} learned it");
    }

    // Now n5 cannot win: n2 and n3 hold 3.3, more up to date than its 2.2.
    cluster.take_in_flight();
    cluster.crash(n(1));
    cluster.restart(n(5));
    for _ in 0..3 {
        cluster.campaign(n(5));
        cluster.deliver_all();
        assert_ne!(cluster.node(n(5)).role(), Role::Leader);
    }
    for id in [n(2), n(3)] {
        assert_eq!(
            cluster.node(id).entry(old.index).map(|entry| entry.id),
            Some(old)
        );
    }
}

/// Elects n1 of a three-node cluster whose logs were recovered as given, delivers
/// everything, and returns the cluster with every message delivered.
fn converge(leader: &[u64], n2: &[u64], n3: &[u64]) -> (Cluster, Vec<Message>) {
    let mut cluster = Cluster::from_recovered(
        vec![
            (n(1), recovered(3, 5, leader)),
            (n(2), recovered(3, 5, n2)),
            (n(3), recovered(3, 5, n3)),
        ],
        |builder| builder,
    );
    cluster.campaign(n(1));
    let messages = deliver_all_recording(&mut cluster);
    assert_eq!(cluster.node(n(1)).role(), Role::Leader);
    for id in [n(2), n(3)] {
        assert_eq!(
            log_ids(&cluster, id),
            log_ids(&cluster, n(1)),
            "{id} converged"
        );
    }
    (cluster, messages)
}

/// The appends n1 sent to `follower` up to and including the first that was accepted,
/// and the rejections `follower` sent before accepting.
fn appends_until_accepted(messages: &[Message], follower: NodeId) -> (usize, usize) {
    let accepted_at = messages
        .iter()
        .position(|message| message.from == follower && is_acceptance(message))
        .expect("the follower accepted an append");
    let before = &messages[..accepted_at];
    let appends = before
        .iter()
        .filter(|message| is_from_to(message, n(1), follower) && is_append(message))
        .count();
    let rejections = before
        .iter()
        .filter(|message| message.from == follower && is_rejection(message))
        .count();
    (appends, rejections)
}

// A follower with a long divergent suffix of other terms, longer than the leader's whole
// log, and a follower far behind each find the match point in one rejection.
#[test]
fn rejected_append_finds_the_match_point_in_one_round_trip() {
    let leader = [1, 1, 1, 4, 4, 4, 4, 4, 4, 4];
    let divergent = [1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3];
    let behind = [1];
    let (cluster, messages) = converge(&leader, &divergent, &behind);
    for follower in [n(2), n(3)] {
        let (appends, rejections) = appends_until_accepted(&messages, follower);
        assert_eq!(rejections, 1, "{follower} rejected once");
        assert_eq!(appends, 2, "{follower}: one probe, one successful append");
        let total = messages
            .iter()
            .filter(|message| message.from == follower && is_rejection(message))
            .count();
        assert_eq!(total, 1, "{follower} never rejected again");
    }
    // The divergent follower dropped its 17 conflicting entries in one go.
    assert_eq!(cluster.node(n(2)).last_log_id(), LogId::new(6, 11));
    assert_eq!(cluster.node(n(2)).commit_index(), Index(11));
}

// A follower whose probe was still unanswered when the leader's commit index advanced
// learns the new commit index from the leader's answer to its acceptance, without
// waiting for a heartbeat.
#[test]
fn follower_whose_probe_was_outstanding_learns_the_commit_without_a_heartbeat() {
    // n2 diverges and n3 is far behind: both probe; n2's acceptance commits index 11
    // while n3's re-sent append (carrying commit 0) is in flight.
    let leader = [1, 1, 1, 4, 4, 4, 4, 4, 4, 4];
    let (cluster, messages) = converge(&leader, &[1, 1, 1, 2, 2, 3, 3], &[1]);
    assert_eq!(cluster.node(n(1)).commit_index(), Index(11));
    let accepted_by_n3 = messages
        .iter()
        .position(|message| message.from == n(3) && is_acceptance(message))
        .expect("n3 accepted");
    let committed_before = messages[..accepted_by_n3]
        .iter()
        .any(|message| message.from == n(2) && is_acceptance(message));
    assert!(committed_before, "the commit advanced while n3 was probing");
    assert_eq!(
        cluster.node(n(3)).commit_index(),
        Index(11),
        "n3 holds every entry and the leader committed them all, yet nobody told n3"
    );
    assert_eq!(cluster.applied(n(3)).len(), 11);
}
