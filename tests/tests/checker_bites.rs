//! The safety checker bites: hand-built or manipulated cluster states that break a Raft
//! property are reported under that property's name, and a legitimate history is not.

use bytes::Bytes;
use raft_core::{
    Action, Config, Entry, HardState, Index, LogId, Membership, Node, NodeId, Payload, Recovered,
    Role, SnapshotMetadata, Term,
};
use raft_tests::{Cluster, NodeView, SafetyChecker, Violation};

fn command(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        id: LogId::new(term, index),
        payload: Payload::Command(Bytes::from_static(data)),
    }
}

fn membership(voters: &[u64]) -> Membership {
    Membership::with_voters(voters.iter().copied().map(NodeId))
}

/// A node started directly from a recovered state.
fn recovered_node(id: u64, voters: &[u64], term: u64, entries: Vec<Entry>, applied: u64) -> Node {
    let config = Config::builder(NodeId(id))
        .build()
        .expect("default configuration is valid");
    let recovered = Recovered {
        snapshot: None,
        hard_state: HardState {
            term: Term(term),
            vote: None,
        },
        membership: membership(voters),
        entries,
        applied: Index(applied),
        joining: false,
        fresh_storage: false,
    };
    Node::new(config, recovered).expect("recovered state is consistent")
}

/// Carries out every action at once (every write durable immediately); returns the
/// entries handed out for applying.
fn drain(node: &mut Node) -> Vec<Entry> {
    let mut applied = Vec::new();
    while let Some(action) = node.poll_action() {
        match action {
            Action::Persist(write) => node.persisted(write.id()).expect("write was issued"),
            Action::Apply(entries) => {
                if let Some(last) = entries.last() {
                    node.applied(last.index()).expect("entries were handed out");
                }
                applied.extend(entries);
            }
            Action::Send(_) | Action::Event(_) => {}
            Action::SendSnapshot(_) | Action::Restore(_) => {
                unreachable!("no snapshot is built in these tests")
            }
        }
    }
    applied
}

/// Makes a node that is the only voter of its membership campaign and win: only the write
/// carrying its self-vote is made durable, so the leader's blank entry stays unflushed
/// and uncommitted until the caller drains it.
fn campaign_alone(node: &mut Node) {
    node.campaign().expect("a voter may campaign");
    let mut writes = Vec::new();
    while let Some(action) = node.poll_action() {
        if let Action::Persist(write) = action {
            writes.push(write.id());
        }
    }
    for write in writes {
        node.persisted(write).expect("write was issued");
    }
    assert_eq!(node.role(), Role::Leader, "a lone voter wins at once");
}

fn view<'a>(id: u64, node: &'a Node, applied: &'a [Entry]) -> NodeView<'a> {
    NodeView {
        id: NodeId(id),
        node: Some(node),
        restored: LogId::default(),
        applied,
    }
}

fn expect_violation(result: Result<(), Violation>, property: &str) -> Violation {
    let violation = result.expect_err("the checker must report a violation");
    assert_eq!(violation.property, property, "{violation}");
    violation
}

// Two nodes leading the same term, seen by one checker, break election safety.
#[test]
fn two_leaders_in_one_term_break_election_safety() {
    // Nodes 1 and 2 each believe they are the only voter, so each wins term 1 alone.
    let mut first = recovered_node(1, &[1], 0, Vec::new(), 0);
    let mut second = recovered_node(2, &[2], 0, Vec::new(), 0);
    campaign_alone(&mut first);
    campaign_alone(&mut second);
    let first_applied = drain(&mut first);
    let second_applied = drain(&mut second);
    assert_eq!((first.term(), second.term()), (Term(1), Term(1)));

    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &first, &first_applied)])
        .expect("one leader alone is fine");
    let violation = expect_violation(
        checker.check(&[
            view(1, &first, &first_applied),
            view(2, &second, &second_applied),
        ]),
        "election safety",
    );
    assert!(violation.detail.contains("term 1"), "{violation}");
}

// A second leader of a term is caught even when the first one has crashed since.
#[test]
fn leaders_of_one_term_are_remembered_across_checks() {
    let mut first = recovered_node(1, &[1], 0, Vec::new(), 0);
    let mut second = recovered_node(2, &[2], 0, Vec::new(), 0);
    campaign_alone(&mut first);
    campaign_alone(&mut second);
    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &first, &[])])
        .expect("one leader alone is fine");
    expect_violation(
        checker.check(&[
            NodeView {
                id: NodeId(1),
                node: None,
                restored: LogId::default(),
                applied: &[],
            },
            view(2, &second, &[]),
        ]),
        "election safety",
    );
}

// Two logs holding the same LogId but different entries before it break log matching.
#[test]
fn same_log_id_with_different_history_breaks_log_matching() {
    let voters = [1, 2, 3];
    let first = recovered_node(
        1,
        &voters,
        1,
        vec![command(1, 1, b"a"), command(1, 2, b"b")],
        0,
    );
    let second = recovered_node(
        2,
        &voters,
        1,
        vec![command(1, 1, b"x"), command(1, 2, b"b")],
        0,
    );
    let violation = expect_violation(
        SafetyChecker::new().check(&[view(1, &first, &[]), view(2, &second, &[])]),
        "log matching",
    );
    assert!(violation.detail.contains("index 1"), "{violation}");

    // The same logs with an agreeing first entry are fine.
    let agreeing = recovered_node(
        2,
        &voters,
        1,
        vec![command(1, 1, b"a"), command(1, 2, b"b")],
        0,
    );
    SafetyChecker::new()
        .check(&[view(1, &first, &[]), view(2, &agreeing, &[])])
        .expect("identical logs match");
}

// Two state machines that applied different entries at one index break state machine safety.
#[test]
fn different_applied_entries_break_state_machine_safety() {
    let voters = [1, 2, 3];
    let log = || vec![command(1, 1, b"a"), command(1, 2, b"b")];
    // Both nodes hold the same log with index 1 committed (recovered as applied).
    let first = recovered_node(1, &voters, 1, log(), 1);
    let second = recovered_node(2, &voters, 1, log(), 1);
    let applied_a = [command(1, 1, b"a")];
    let applied_forged = [command(1, 1, b"forged")];

    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &first, &applied_a), view(2, &second, &applied_a)])
        .expect("identical applied entries are fine");
    let mut checker = SafetyChecker::new();
    let violation = expect_violation(
        checker.check(&[
            view(1, &first, &applied_a),
            view(2, &second, &applied_forged),
        ]),
        "state machine safety",
    );
    assert!(violation.detail.contains("index 1"), "{violation}");
}

// Two nodes committing different entries at one index break state machine safety.
#[test]
fn different_committed_entries_break_state_machine_safety() {
    let voters = [1, 2, 3];
    let first = recovered_node(1, &voters, 1, vec![command(1, 1, b"a")], 1);
    let second = recovered_node(2, &voters, 2, vec![command(2, 1, b"b")], 1);
    expect_violation(
        SafetyChecker::new().check(&[view(1, &first, &[]), view(2, &second, &[])]),
        "state machine safety",
    );
}

// A leader of a later term that lacks an entry committed earlier breaks leader completeness.
#[test]
fn leader_lacking_a_committed_entry_breaks_leader_completeness() {
    // Node 1 has committed 1.1 and 1.2 in term 1.
    let committed = recovered_node(
        1,
        &[1, 2, 3],
        1,
        vec![command(1, 1, b"a"), command(1, 2, b"b")],
        2,
    );
    assert_eq!(committed.commit_index(), Index(2));
    // Node 2 holds only 1.1 and, believing itself the only voter, wins term 2.
    let mut leader = recovered_node(2, &[2], 1, vec![command(1, 1, b"a")], 0);
    campaign_alone(&mut leader);
    assert_eq!(leader.term(), Term(2));
    assert_ne!(
        leader.entry(Index(2)).map(|entry| entry.id),
        Some(LogId::new(1, 2))
    );

    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &committed, &[])])
        .expect("the committing node alone is fine");
    let violation = expect_violation(
        checker.check(&[view(1, &committed, &[]), view(2, &leader, &[])]),
        "leader completeness",
    );
    assert!(violation.detail.contains("1.2"), "{violation}");
}

// A node whose term goes down without a restart breaks monotonic terms; after a reported
// restart (the higher term was never durable) the same change is legitimate.
#[test]
fn term_going_down_without_restart_breaks_monotonic_term() {
    let voters = [1, 2, 3];
    let at_term_two = recovered_node(1, &voters, 2, Vec::new(), 0);
    let at_term_one = recovered_node(1, &voters, 1, Vec::new(), 0);

    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &at_term_two, &[])])
        .expect("term 2 is fine");
    let violation = expect_violation(
        checker.check(&[view(1, &at_term_one, &[])]),
        "monotonic term",
    );
    assert!(violation.detail.contains("from term 2 to 1"), "{violation}");

    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &at_term_two, &[])])
        .expect("term 2 is fine");
    checker.restarted(NodeId(1));
    checker
        .check(&[view(1, &at_term_one, &[])])
        .expect("a restarted node may come back in a lower term");
}

// A commit index going down without a restart breaks monotonic commit.
#[test]
fn commit_going_down_without_restart_breaks_monotonic_commit() {
    let voters = [1, 2, 3];
    let log = || vec![command(1, 1, b"a"), command(1, 2, b"b")];
    let ahead = recovered_node(1, &voters, 1, log(), 2);
    let behind = recovered_node(1, &voters, 1, log(), 1);
    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &ahead, &[])])
        .expect("commit 2 is fine");
    expect_violation(checker.check(&[view(1, &behind, &[])]), "monotonic commit");
}

// A leader whose log loses an entry within its term breaks leader append-only.
#[test]
fn leader_dropping_an_entry_breaks_leader_append_only() {
    let mut longer = recovered_node(1, &[1], 0, Vec::new(), 0);
    campaign_alone(&mut longer);
    longer
        .propose(Bytes::from_static(b"a"))
        .expect("the leader accepts");
    assert_eq!(longer.last_log_id(), LogId::new(1, 2));
    let mut shorter = recovered_node(1, &[1], 0, Vec::new(), 0);
    campaign_alone(&mut shorter);
    assert_eq!(shorter.last_log_id(), LogId::new(1, 1));

    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &longer, &[])])
        .expect("the leader's log is fine");
    expect_violation(
        checker.check(&[view(1, &shorter, &[])]),
        "leader append-only",
    );
}

// A legitimate history (elections, replication, a leader crash, a new leader overwriting
// nothing committed, a restart catching up) passes every check.
#[test]
fn legitimate_history_passes() {
    let mut cluster = Cluster::new(3);
    cluster.panic_on_violation = false;
    cluster.elect(NodeId(1));
    for command in [b"a", b"b", b"c"] {
        cluster.propose(NodeId(1), command).expect("leader accepts");
    }
    cluster.deliver_all();
    cluster.tick_all();
    cluster.deliver_all();
    assert_eq!(cluster.check_safety(), Ok(()));

    // An uncommitted entry on the old leader will be overwritten by the next one.
    cluster.propose(NodeId(1), b"lost").expect("leader accepts");
    cluster.drop_matching(|_| true);
    cluster.crash(NodeId(1));
    cluster.elect(NodeId(2));
    cluster.propose(NodeId(2), b"d").expect("leader accepts");
    cluster.deliver_all();
    assert_eq!(cluster.check_safety(), Ok(()));

    cluster.restart(NodeId(1));
    cluster.run_until(100, |cluster| {
        cluster.applied_commands(NodeId(1)).len() == 4
    });
    assert_eq!(cluster.check_safety(), Ok(()));
    assert_eq!(cluster.first_violation(), None);
    for id in cluster.ids() {
        assert_eq!(
            cluster.applied_commands(id),
            [b"a", b"b", b"c", b"d"].map(|command| Bytes::from_static(command)),
            "{id}"
        );
    }
}

/// A node started from a snapshot ending at `last` (term `last.0`, index `last.1`), with
/// its state machine at the snapshot.
fn node_from_snapshot(id: u64, voters: &[u64], last: (u64, u64)) -> Node {
    let config = Config::builder(NodeId(id))
        .build()
        .expect("default configuration is valid");
    let recovered = Recovered {
        hard_state: HardState {
            term: Term(last.0),
            vote: None,
        },
        membership: membership(voters),
        snapshot: Some(SnapshotMetadata {
            last_included: LogId::new(last.0, last.1),
            membership: membership(voters),
        }),
        entries: Vec::new(),
        applied: Index(last.1),
        joining: false,
        fresh_storage: false,
    };
    Node::new(config, recovered).expect("recovered state is consistent")
}

// A log compacted through an entry other than the one committed at that index breaks
// state machine safety, although the compacted entries themselves are gone.
#[test]
fn compaction_through_an_uncommitted_entry_is_caught() {
    let entries = vec![
        command(1, 1, b"a"),
        command(1, 2, b"b"),
        command(1, 3, b"c"),
    ];
    let committed = recovered_node(1, &[1, 2], 1, entries, 3);
    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &committed, &[])])
        .expect("one node's committed log is fine");
    let agreeing = node_from_snapshot(2, &[1, 2], (1, 3));
    checker
        .check(&[view(2, &agreeing, &[])])
        .expect("a snapshot of the committed entry is fine");
    let diverging = node_from_snapshot(3, &[1, 2], (2, 3));
    let violation = expect_violation(
        checker.check(&[view(3, &diverging, &[])]),
        "state machine safety",
    );
    assert!(violation.detail.contains("compacted"), "{violation}");
}

// A state machine restored from a snapshot of something never committed there breaks
// state machine safety.
#[test]
fn restoring_an_uncommitted_snapshot_is_caught() {
    let entries = vec![command(1, 1, b"a"), command(1, 2, b"b")];
    let committed = recovered_node(1, &[1, 2], 1, entries, 2);
    let mut checker = SafetyChecker::new();
    checker
        .check(&[view(1, &committed, &[])])
        .expect("one node's committed log is fine");
    let violation = expect_violation(
        checker.check(&[NodeView {
            id: NodeId(2),
            node: None,
            restored: LogId::new(3, 2),
            applied: &[],
        }]),
        "state machine safety",
    );
    assert!(violation.detail.contains("restored"), "{violation}");
}
