//! Unit tests of the node facade: determinism, acknowledgements, errors, events and
//! robustness against arbitrary peer input.

use bytes::Bytes;
use proptest::prelude::*;

use crate::action::{Action, Event, WriteId};
use crate::config::Config;
use crate::error::{AcknowledgementError, CampaignError, ProposeError, RecoveryError};
use crate::message::{AppendResponse, Message, MessageBody};
use crate::node::{Node, Proposal};
use crate::quorum::Membership;
use crate::recovered::Recovered;
use crate::status::Role;
use crate::types::{Entry, HardState, Index, LogId, NodeId, Payload, Term};

fn node_with(id: u64, voters: &[u64], seed: u64) -> Node {
    let config = Config::builder(NodeId(id))
        .random_seed(seed)
        .build()
        .expect("valid config");
    let membership = Membership::with_voters(voters.iter().copied().map(NodeId));
    Node::new(config, Recovered::new_cluster(membership)).expect("consistent")
}

fn drain(node: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| node.poll_action()).collect()
}

/// Drains, acknowledging every write at once; returns the actions as trace lines.
fn drain_synced(node: &mut Node) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(action) = node.poll_action() {
        lines.push(action.to_string());
        match action {
            Action::Persist(write) => node.persisted(write.id()).expect("issued"),
            Action::Apply(entries) => {
                let last = entries.last().map(Entry::index).expect("non-empty apply");
                node.applied(last).expect("handed out");
            }
            Action::Send(_) | Action::Event(_) => {}
            Action::SendSnapshot(_) | Action::Restore(_) => {
                unreachable!("no snapshot is built, so none is sent or restored")
            }
        }
    }
    lines
}

/// Runs a 3-node cluster for `rounds` rounds of ticks and full delivery, with a proposal
/// every round on whoever leads, and returns the whole trace.
fn run_cluster(seed: u64, rounds: usize) -> Vec<String> {
    let mut nodes: Vec<Node> = (1..=3)
        .map(|id| node_with(id, &[1, 2, 3], seed * 10 + id))
        .collect();
    let mut trace = Vec::new();
    let mut network: Vec<Message> = Vec::new();
    for round in 0..rounds {
        for node in &mut nodes {
            node.tick();
            if node.role() == Role::Leader {
                let command = Bytes::from(format!("command {round}"));
                node.propose(command).expect("leader accepts");
            }
        }
        for _ in 0..50 {
            for node in &mut nodes {
                for line in drain_synced_collect(node, &mut network) {
                    trace.push(line);
                }
            }
            if network.is_empty() {
                break;
            }
            for message in std::mem::take(&mut network) {
                let to = usize::try_from(message.to.0 - 1).expect("small id");
                nodes[to].step(message);
            }
        }
    }
    trace
}

fn drain_synced_collect(node: &mut Node, network: &mut Vec<Message>) -> Vec<String> {
    let mut lines = Vec::new();
    while let Some(action) = node.poll_action() {
        lines.push(format!("{}: {action}", node.id()));
        match action {
            Action::Persist(write) => node.persisted(write.id()).expect("issued"),
            Action::Send(message) => network.push(message),
            Action::Apply(entries) => {
                let last = entries.last().map(Entry::index).expect("non-empty apply");
                node.applied(last).expect("handed out");
            }
            Action::Event(_) => {}
            Action::SendSnapshot(_) | Action::Restore(_) => {
                unreachable!("no snapshot is built, so none is sent or restored")
            }
        }
    }
    lines
}

// The same seeds and inputs give the same actions, byte for byte; another seed changes them.
#[test]
fn same_seed_same_actions() {
    let first = run_cluster(7, 60);
    let second = run_cluster(7, 60);
    assert!(
        first.iter().any(|line| line.contains("apply")),
        "the run commits something"
    );
    assert_eq!(first, second);
    assert_ne!(first, run_cluster(8, 60));
}

// A candidate does not count its own vote until the write carrying it is durable.
#[test]
fn self_vote_counts_only_once_durable() {
    let mut node = node_with(1, &[1], 1);
    node.campaign().expect("a voter may campaign");
    let actions = drain(&mut node);
    assert_eq!(node.role(), Role::Candidate);
    let write = actions
        .iter()
        .find_map(|action| match action {
            Action::Persist(write) => Some(write.clone()),
            _ => None,
        })
        .expect("the vote is persisted");
    assert_eq!(
        write.hard_state,
        Some(HardState {
            term: Term(1),
            vote: Some(NodeId(1))
        })
    );
    node.persisted(write.id()).expect("issued");
    assert_eq!(node.role(), Role::Leader);
}

// Becoming leader announces the term, both role changes and the leader, in that order,
// then the commit of the blank entry once it is durable.
#[test]
fn election_emits_events_in_order() {
    let mut node = node_with(1, &[1], 1);
    node.campaign().expect("a voter may campaign");
    let lines = drain_synced(&mut node);
    let events: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("event"))
        .collect();
    assert_eq!(
        events,
        [
            "event term=1",
            "event role=candidate",
            "event role=leader",
            "event leader=n1",
            "event commit=1"
        ]
    );
    assert!(lines.iter().any(|line| line == "apply [1.1:blank]"));
}

// Acknowledging an unissued write or applying beyond what was handed out is refused; a
// repeated acknowledgement is harmless.
#[test]
fn acknowledgement_misuse_is_refused() {
    let mut node = node_with(1, &[1], 1);
    assert_eq!(
        node.persisted(WriteId(1)),
        Err(AcknowledgementError::UnknownWrite {
            write: 1,
            last_issued: 0
        })
    );
    assert_eq!(
        node.applied(Index(1)),
        Err(AcknowledgementError::AppliedBeyondHandedOut {
            applied: Index(1),
            last_handed_out: Index(0)
        })
    );
    node.campaign().expect("a voter may campaign");
    drain_synced(&mut node);
    assert_eq!(node.persisted(WriteId(1)), Ok(()));
    assert_eq!(node.applied(Index(1)), Ok(()));
}

// Campaigning is refused to learners and to the leader.
#[test]
fn campaign_misuse_is_refused() {
    let config = Config::builder(NodeId(4)).build().expect("valid");
    let mut membership = Membership::with_voters([NodeId(1)]);
    membership.learners.insert(NodeId(4));
    let mut learner = Node::new(config, Recovered::new_cluster(membership)).expect("consistent");
    assert_eq!(learner.campaign(), Err(CampaignError::NotVoter));
    for _ in 0..100 {
        learner.tick();
    }
    assert_eq!(learner.role(), Role::Follower, "learners never campaign");
    assert!(drain(&mut learner).is_empty());

    let mut node = node_with(1, &[1], 1);
    node.campaign().expect("a voter may campaign");
    drain_synced(&mut node);
    assert_eq!(node.campaign(), Err(CampaignError::AlreadyLeader));
}

// A follower refuses proposals with the leader it knows, and forwards them when enabled.
#[test]
fn follower_refuses_or_forwards_proposals() {
    let mut follower = node_with(2, &[1, 2, 3], 2);
    assert_eq!(
        follower.propose(Bytes::from_static(b"x")),
        Err(ProposeError::NotLeader { leader_hint: None })
    );
    follower.step(Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::Heartbeat {
            commit: Index(0),
            round: 1,
        },
    });
    drain_synced(&mut follower);
    assert_eq!(
        follower.propose(Bytes::from_static(b"x")),
        Err(ProposeError::NotLeader {
            leader_hint: Some(NodeId(1))
        })
    );

    let config = Config::builder(NodeId(2))
        .forward_proposals(true)
        .build()
        .expect("valid");
    let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
    let mut forwarding = Node::new(config, Recovered::new_cluster(membership)).expect("ok");
    forwarding.step(Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(1),
        body: MessageBody::Heartbeat {
            commit: Index(0),
            round: 1,
        },
    });
    drain_synced(&mut forwarding);
    assert_eq!(
        forwarding.propose(Bytes::from_static(b"x")),
        Ok(Proposal::Forwarded { leader: NodeId(1) })
    );
    let lines = drain_synced(&mut forwarding);
    assert_eq!(lines, ["send n2->n1 t1 ForwardProposals commands=1"]);
}

// Inconsistent recovered state is refused with a typed error.
#[test]
fn inconsistent_recovery_is_refused() {
    let config = Config::builder(NodeId(1)).build().expect("valid");
    let entry = |term, index| Entry {
        id: LogId::new(term, index),
        payload: Payload::Blank,
    };
    let base = Recovered {
        snapshot: None,
        hard_state: HardState {
            term: Term(3),
            vote: None,
        },
        membership: Membership::with_voters([NodeId(1)]),
        entries: vec![entry(1, 1), entry(2, 2)],
        applied: Index(2),
        joining: false,
        fresh_storage: false,
    };
    assert!(Node::new(config.clone(), base.clone()).is_ok());
    let cases = [
        (
            Recovered {
                membership: Membership::default(),
                ..base.clone()
            },
            RecoveryError::NoVoters,
        ),
        (
            Recovered {
                entries: vec![entry(1, 1), entry(1, 3)],
                ..base.clone()
            },
            RecoveryError::EntriesNotContiguous {
                expected: Index(2),
                found: Index(3),
            },
        ),
        (
            Recovered {
                entries: vec![entry(2, 1), entry(1, 2)],
                ..base.clone()
            },
            RecoveryError::EntryTermOutOfOrder {
                index: Index(2),
                term: Term(1),
            },
        ),
        (
            Recovered {
                entries: vec![entry(4, 1)],
                applied: Index(0),
                ..base.clone()
            },
            RecoveryError::EntryTermOutOfOrder {
                index: Index(1),
                term: Term(4),
            },
        ),
        (
            Recovered {
                applied: Index(3),
                ..base.clone()
            },
            RecoveryError::AppliedBeyondLog {
                applied: Index(3),
                last: Index(2),
            },
        ),
    ];
    for (recovered, expected) in cases {
        assert_eq!(Node::new(config.clone(), recovered).err(), Some(expected));
    }
}

// A restarted node resumes its term and vote, and hands out only entries after `applied`.
#[test]
fn restart_resumes_without_reapplying() {
    let config = Config::builder(NodeId(1)).build().expect("valid");
    let entries = vec![
        Entry {
            id: LogId::new(1, 1),
            payload: Payload::Blank,
        },
        Entry {
            id: LogId::new(1, 2),
            payload: Payload::Command(Bytes::from_static(b"a")),
        },
        Entry {
            id: LogId::new(1, 3),
            payload: Payload::Command(Bytes::from_static(b"b")),
        },
    ];
    let recovered = Recovered {
        snapshot: None,
        hard_state: HardState {
            term: Term(1),
            vote: Some(NodeId(1)),
        },
        membership: Membership::with_voters([NodeId(1)]),
        entries,
        applied: Index(2),
        joining: false,
        fresh_storage: false,
    };
    let mut node = Node::new(config, recovered).expect("consistent");
    assert_eq!(node.term(), Term(1));
    assert_eq!(node.commit_index(), Index(2));
    node.campaign().expect("voter");
    let lines = drain_synced(&mut node);
    let applies: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("apply"))
        .collect();
    assert_eq!(applies, ["apply [1.3:1B 2.4:blank]"]);
}

// Misaddressed messages, messages from oneself and from node 0 are dropped without effect.
#[test]
fn misaddressed_messages_are_dropped() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    for (from, to) in [(2, 3), (1, 1), (0, 1)] {
        node.step(Message {
            from: NodeId(from),
            to: NodeId(to),
            term: Term(9),
            body: MessageBody::Heartbeat {
                commit: Index(5),
                round: 1,
            },
        });
    }
    assert_eq!(node.term(), Term(0));
    assert!(drain(&mut node).is_empty());
}

fn arbitrary_message() -> impl Strategy<Value = Message> {
    let entry = (0u64..6, 0u64..12, any::<bool>()).prop_map(|(term, index, blank)| Entry {
        id: LogId::new(term, index),
        payload: if blank {
            Payload::Blank
        } else {
            Payload::Command(Bytes::from_static(b"p"))
        },
    });
    let body = prop_oneof![
        (0u64..6, 0u64..12, any::<bool>()).prop_map(|(term, index, transfer)| {
            MessageBody::RequestVote {
                last_log: LogId::new(term, index),
                transfer,
            }
        }),
        any::<bool>().prop_map(|granted| MessageBody::RequestVoteResponse { granted }),
        (0u64..6, 0u64..12, any::<bool>()).prop_map(|(term, index, transfer)| {
            MessageBody::PreVote {
                last_log: LogId::new(term, index),
                transfer,
            }
        }),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        Just(MessageBody::TimeoutNow),
        (
            0u64..6,
            0u64..12,
            proptest::collection::vec(entry, 0..4),
            0u64..14
        )
            .prop_map(
                |(term, index, entries, commit)| MessageBody::AppendEntries {
                    previous: LogId::new(term, index),
                    entries,
                    commit: Index(commit),
                }
            ),
        (0u64..14).prop_map(|matched| MessageBody::AppendEntriesResponse(
            AppendResponse::Accepted {
                matched: Index(matched)
            }
        )),
        (0u64..14, 0u64..6, 0u64..14).prop_map(|(rejected, term, index)| {
            MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
                rejected: Index(rejected),
                hint: LogId::new(term, index),
            })
        }),
        Just(MessageBody::AppendEntriesResponse(
            AppendResponse::StaleTerm
        )),
        (0u64..14, 0u64..4).prop_map(|(commit, round)| MessageBody::Heartbeat {
            commit: Index(commit),
            round,
        }),
        (0u64..4).prop_map(|round| MessageBody::HeartbeatResponse { round }),
        (0u64..4).prop_map(|request| MessageBody::ReadIndex { request }),
        (0u64..4, proptest::option::of(0u64..14)).prop_map(|(request, index)| {
            MessageBody::ReadIndexResponse {
                request,
                index: index.map(Index),
            }
        }),
        Just(MessageBody::ForwardProposals {
            commands: vec![Bytes::from_static(b"f")]
        }),
        (0u64..14).prop_map(|index| MessageBody::Removed {
            index: Index(index)
        }),
    ];
    let term = prop_oneof![8 => 0u64..6, 1 => Just(u64::MAX), 1 => Just(u64::MAX - 1)];
    (0u64..5, term, body).prop_map(|(from, term, body)| Message {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body,
    })
}

#[derive(Clone, Debug)]
enum Input {
    Tick,
    Step(Message),
    Propose,
    Sync,
}

fn arbitrary_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        2 => Just(Input::Tick),
        6 => arbitrary_message().prop_map(Input::Step),
        1 => Just(Input::Propose),
        2 => Just(Input::Sync),
    ]
}

proptest! {
    // Arbitrary peer messages, ticks and acknowledgements never panic a node, never lower its
    // term, never put its commit index past its durable log, and never grant two votes in a term.
    #[test]
    fn arbitrary_peer_input_keeps_invariants(inputs in proptest::collection::vec(arbitrary_input(), 1..200)) {
        let mut node = node_with(1, &[1, 2, 3], 1);
        let mut issued = WriteId(0);
        let mut votes = std::collections::BTreeMap::new();
        let mut last_term = Term(0);
        for input in inputs {
            match input {
                Input::Tick => node.tick(),
                Input::Step(message) => node.step(message),
                Input::Propose => { let _ = node.propose(Bytes::from_static(b"c")); }
                Input::Sync => { node.persisted(issued).expect("issued"); }
            }
            while let Some(action) = node.poll_action() {
                match action {
                    Action::Persist(write) => issued = write.id(),
                    Action::Send(message) => {
                        if let MessageBody::RequestVoteResponse { granted: true } = message.body {
                            let previous = votes.insert(message.term, message.to);
                            prop_assert!(previous.is_none_or(|voted| voted == message.to),
                                "two votes in term {}", message.term.0);
                        }
                    }
                    Action::Apply(entries) => {
                        let last = entries.last().map(Entry::index).expect("non-empty");
                        node.applied(last).expect("handed out");
                    }
                    Action::Event(Event::TermChanged { term }) => prop_assert!(term > last_term),
                    Action::Event(_) | Action::SendSnapshot(_) | Action::Restore(_) => {}
                }
            }
            prop_assert!(node.term() >= last_term);
            last_term = node.term();
            let status = node.status();
            if status.role != Role::Leader {
                prop_assert!(status.commit <= status.durable_index.max(status.applied));
            }
            prop_assert!(status.durable_index <= status.last_index);
        }
    }
}

fn follower_message(term: u64, body: MessageBody) -> Message {
    Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(term),
        body,
    }
}

// A peer's term at the end of the term space neither panics the node nor makes its term
// wrap around: the node stops campaigning instead.
#[test]
fn maximal_term_neither_panics_nor_wraps() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    node.step(follower_message(
        u64::MAX,
        MessageBody::HeartbeatResponse { round: 0 },
    ));
    for _ in 0..100 {
        node.tick();
        drain_synced(&mut node);
    }
    assert_eq!(node.term(), Term(u64::MAX));
    assert_ne!(node.role(), Role::Candidate);
}

// Forged huge indexes in an append are refused without arithmetic overflow.
#[test]
fn maximal_indexes_are_refused() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    for previous in [LogId::new(1, u64::MAX), LogId::new(1, u64::MAX - 1)] {
        node.step(follower_message(
            1,
            MessageBody::AppendEntries {
                previous,
                entries: vec![Entry {
                    id: LogId::new(1, u64::MAX),
                    payload: Payload::Blank,
                }],
                commit: Index(u64::MAX),
            },
        ));
        let lines = drain_synced(&mut node);
        assert!(
            lines.iter().any(|line| line.contains("rejected")),
            "{lines:?}"
        );
    }
    assert_eq!(node.last_log_id(), LogId::default());
}

// An entry of a later term than the leader's own is malformed: accepting it would make the
// node's durable state unrecoverable and its log refuse every honest candidate.
#[test]
fn entries_from_a_future_term_are_refused() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    node.step(follower_message(
        1,
        MessageBody::AppendEntries {
            previous: LogId::default(),
            entries: vec![Entry {
                id: LogId::new(9, 1),
                payload: Payload::Command(Bytes::from_static(b"x")),
            }],
            commit: Index(0),
        },
    ));
    drain_synced(&mut node);
    assert_eq!(node.last_log_id(), LogId::default());
}

// Empty commands count toward the uncommitted limit, so they cannot grow the log without
// bound while no quorum answers.
#[test]
fn empty_commands_are_bounded() {
    let config = Config::builder(NodeId(1))
        .uncommitted_bytes_max(1024)
        .build()
        .expect("valid");
    let membership = Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]);
    let mut node = Node::new(config, Recovered::new_cluster(membership)).expect("ok");
    node.campaign().expect("voter");
    drain_synced(&mut node);
    node.step(follower_message(
        1,
        MessageBody::RequestVoteResponse { granted: true },
    ));
    drain_synced(&mut node);
    assert_eq!(node.role(), Role::Leader);
    let accepted = (0..10_000)
        .filter(|_| node.propose(Bytes::new()).is_ok())
        .count();
    assert!(accepted < 64, "{accepted} empty commands accepted");
}

// Vote answers from nodes outside the membership are not counted toward a quorum.
#[test]
fn votes_from_non_members_do_not_count() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    node.campaign().expect("voter");
    drain_synced(&mut node);
    for stranger in [7, 8, 9] {
        node.step(Message {
            from: NodeId(stranger),
            to: NodeId(1),
            term: Term(1),
            body: MessageBody::RequestVoteResponse { granted: true },
        });
        drain_synced(&mut node);
    }
    assert_eq!(node.role(), Role::Candidate);
}

// Once a snapshot is durable, the log prefix it covers is freed at most a batch of entries
// at a time (per flush, and per acknowledgement), so that a large prefix never stalls the
// node in one long pause; the following inputs carry the compaction through to its target.
#[test]
fn compaction_frees_a_large_prefix_in_batches() {
    let mut node = node_with(1, &[1], 3);
    node.campaign().expect("the only voter campaigns");
    drain_synced(&mut node);
    for number in 0..5_000u32 {
        node.propose(Bytes::from(number.to_le_bytes().to_vec()))
            .expect("the leader accepts");
    }
    drain_synced(&mut node);
    let applied = node.applied_index();
    assert!(applied.0 > 5_000, "every proposal applied: {applied}");
    node.snapshot_built(applied)
        .expect("built at the applied index");
    let target = applied.0
        - Config::builder(NodeId(1))
            .build()
            .expect("valid")
            .compaction_trailing_entries();

    let mut base = node.compacted_through().index.0;
    let mut steps = 0;
    // Checks the entries freed since the last look; counts the looks that freed some.
    let observe = |node: &Node, base: &mut u64, steps: &mut usize| {
        let now = node.compacted_through().index.0;
        assert!(now >= *base, "the base never moves back");
        assert!(
            now - *base <= crate::shared::COMPACTION_BATCH_ENTRIES,
            "{} entries freed at once",
            now - *base
        );
        if now > *base {
            *steps += 1;
        }
        *base = now;
    };
    for _ in 0..100 {
        while let Some(action) = node.poll_action() {
            observe(&node, &mut base, &mut steps);
            if let Action::Persist(write) = action {
                node.persisted(write.id()).expect("issued");
                observe(&node, &mut base, &mut steps);
            }
        }
        observe(&node, &mut base, &mut steps);
        if base >= target {
            break;
        }
        node.tick();
    }
    assert_eq!(
        base, target,
        "compacted through the snapshot, less the trailing entries"
    );
    assert!(
        steps >= 3,
        "a prefix of about 4,000 entries takes several batches: {steps}"
    );
    assert!(node.entry(Index(target)).is_none());
    assert!(node.entry(Index(target + 1)).is_some());
}

/// The answer `node` sends to a vote or pre-vote request, once its writes are durable.
fn vote_answer(node: &mut Node, request: Message) -> Option<bool> {
    node.step(request);
    let mut answer = None;
    while let Some(action) = node.poll_action() {
        match action {
            Action::Persist(write) => node.persisted(write.id()).expect("issued"),
            Action::Send(Message {
                body:
                    MessageBody::RequestVoteResponse { granted }
                    | MessageBody::PreVoteResponse { granted },
                ..
            }) => answer = Some(granted),
            _ => {}
        }
    }
    answer
}

fn vote_request(term: u64, last_log: LogId, pre_vote: bool) -> Message {
    let body = if pre_vote {
        MessageBody::PreVote {
            last_log,
            transfer: false,
        }
    } else {
        MessageBody::RequestVote {
            last_log,
            transfer: false,
        }
    };
    follower_message(term, body)
}

fn fresh_node(id: u64) -> Node {
    let config = Config::builder(NodeId(id)).build().expect("valid");
    let recovered = Recovered {
        fresh_storage: true,
        ..Recovered::new_cluster(Membership::with_voters([1, 2, 3].map(NodeId)))
    };
    Node::new(config, recovered).expect("consistent")
}

// A node on fresh storage cannot tell a new cluster from one whose data it lost. If the
// first word it hears of the log shows entries, it votes (and pre-votes) only for
// candidates as blank as itself until it holds an entry: never for one holding entries,
// which could be a stale candidate that its lost acknowledgement would otherwise elect.
#[test]
fn fresh_storage_in_a_cluster_with_entries_holds_back_votes() {
    for pre_vote in [false, true] {
        let mut node = fresh_node(1);
        assert_eq!(
            vote_answer(&mut node, vote_request(4, LogId::new(3, 7), pre_vote)),
            Some(false),
            "a blank node helped elect a candidate holding entries (pre-vote: {pre_vote})"
        );
        assert_eq!(
            vote_answer(&mut node, vote_request(5, LogId::default(), pre_vote)),
            Some(true),
            "a blank candidate was refused (pre-vote: {pre_vote})"
        );
    }
    // The guard ends once a leader's entry reaches the node.
    let mut node = fresh_node(1);
    assert_eq!(
        vote_answer(&mut node, vote_request(4, LogId::new(3, 7), false)),
        Some(false)
    );
    node.step(follower_message(
        5,
        MessageBody::AppendEntries {
            previous: LogId::default(),
            entries: vec![Entry {
                id: LogId::new(5, 1),
                payload: Payload::Blank,
            }],
            commit: Index(0),
        },
    ));
    drain_synced(&mut node);
    let request = follower_message(
        6,
        MessageBody::RequestVote {
            last_log: LogId::new(5, 1),
            transfer: true,
        },
    );
    assert_eq!(vote_answer(&mut node, request), Some(true));
}

// A cluster being founded is found empty: a fresh node then votes as usual, and storage
// recovered blank (not fresh) never holds back a vote.
#[test]
fn fresh_storage_in_a_new_cluster_votes_as_usual() {
    let mut node = fresh_node(1);
    assert_eq!(
        vote_answer(&mut node, vote_request(1, LogId::default(), true)),
        Some(true)
    );
    assert_eq!(
        vote_answer(&mut node, vote_request(4, LogId::new(3, 7), false)),
        Some(true)
    );
    let mut recovered_blank = node_with(1, &[1, 2, 3], 1);
    assert_eq!(
        vote_answer(
            &mut recovered_blank,
            vote_request(4, LogId::new(3, 7), false)
        ),
        Some(true)
    );
}

// A joining node neither votes nor campaigns until a configuration listing it reaches its
// log: then it is an ordinary member.
#[test]
fn a_joining_node_votes_only_once_admitted() {
    let config = Config::builder(NodeId(4)).build().expect("valid");
    let cluster = Membership::with_voters([1, 2, 3].map(NodeId));
    let mut node = Node::new(config, Recovered::joining(cluster.clone())).expect("consistent");
    let request = |term| Message {
        from: NodeId(2),
        to: NodeId(4),
        term: Term(term),
        body: MessageBody::RequestVote {
            last_log: LogId::default(),
            transfer: false,
        },
    };
    assert_eq!(vote_answer(&mut node, request(1)), Some(false));
    assert!(node.campaign().is_err(), "a joining node campaigned");
    for _ in 0..100 {
        node.tick();
        drain_synced(&mut node);
    }
    assert_eq!(node.role(), Role::Follower);

    // The leader's log adds it as a voter: from then on it votes.
    let mut added = cluster;
    added.voters.insert(NodeId(4));
    node.step(Message {
        from: NodeId(1),
        to: NodeId(4),
        term: Term(2),
        body: MessageBody::AppendEntries {
            previous: LogId::default(),
            entries: vec![Entry {
                id: LogId::new(2, 1),
                payload: Payload::Membership(Box::new(added)),
            }],
            commit: Index(0),
        },
    });
    drain_synced(&mut node);
    let request = Message {
        from: NodeId(2),
        to: NodeId(4),
        term: Term(3),
        // A transfer's vote: the node just heard from its leader, which would otherwise
        // make it ignore the request.
        body: MessageBody::RequestVote {
            last_log: LogId::new(2, 1),
            transfer: true,
        },
    };
    assert_eq!(vote_answer(&mut node, request), Some(true));
}

/// Node 1 of `voters`, elected leader in term 1 by node 2's vote, its blank entry durable.
fn leader_of(voters: &[u64]) -> Node {
    let mut node = node_with(1, voters, 1);
    node.campaign().expect("a voter may campaign");
    drain_synced(&mut node);
    node.step(follower_message(
        1,
        MessageBody::RequestVoteResponse { granted: true },
    ));
    drain_synced(&mut node);
    assert_eq!(node.role(), Role::Leader);
    node
}

/// The messages among `lines` (trace lines of `drain_synced`) sent to `to`.
fn sent_to(lines: &[String], to: u64) -> Vec<&String> {
    let prefix = format!("send n1->n{to} ");
    lines
        .iter()
        .filter(|line| line.starts_with(&prefix))
        .collect()
}

// A leader grants a pre-vote only to confirm its transfer in progress to the asker, for the
// next term and with a log as up to date as its own; every other pre-vote it refuses.
#[test]
fn leader_confirms_only_its_transfer_in_progress() {
    let mut node = leader_of(&[1, 2, 3]);
    let last_log = node.last_log_id();
    let ask = |node: &mut Node, from: u64, term: u64, last_log: LogId, transfer: bool| {
        node.step(Message {
            from: NodeId(from),
            to: NodeId(1),
            term: Term(term),
            body: MessageBody::PreVote { last_log, transfer },
        });
        let lines = drain_synced(node);
        let answers = sent_to(&lines, from);
        assert_eq!(answers.len(), 1, "{lines:?}");
        answers[0].ends_with("granted=true")
    };
    assert!(!ask(&mut node, 2, 2, last_log, true), "no transfer yet");
    node.transfer_leader(NodeId(2)).expect("a voter");
    drain_synced(&mut node);
    assert!(ask(&mut node, 2, 2, last_log, true), "the transfer is on");
    assert!(!ask(&mut node, 2, 2, last_log, false), "not a transfer's");
    assert!(!ask(&mut node, 3, 2, last_log, true), "not the target");
    assert!(!ask(&mut node, 2, 3, last_log, true), "not the next term");
    assert!(
        !ask(&mut node, 2, 2, LogId::new(1, 0), true),
        "a log behind the leader's"
    );
    assert_eq!(node.role(), Role::Leader);
    assert_eq!(node.term(), Term(1));
}

// A follower told to take over first asks its leader alone to confirm, raising no term;
// the leader's refusal sends it back to following that leader, its grant makes it
// campaign with the transfer flag.
#[test]
fn timeout_now_is_confirmed_before_campaigning() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    let heartbeat = MessageBody::Heartbeat {
        commit: Index(0),
        round: 1,
    };
    node.step(follower_message(1, heartbeat.clone()));
    drain_synced(&mut node);
    node.step(follower_message(1, MessageBody::TimeoutNow));
    let lines = drain_synced(&mut node);
    assert_eq!(node.role(), Role::PreCandidate);
    assert_eq!(node.term(), Term(1));
    assert_eq!(node.leader(), Some(NodeId(2)), "still following");
    let sent: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("send "))
        .collect();
    assert_eq!(sent, ["send n1->n2 t2 PreVote last=0.0 transfer"]);

    node.step(follower_message(
        1,
        MessageBody::PreVoteResponse { granted: false },
    ));
    drain_synced(&mut node);
    assert_eq!(node.role(), Role::Follower);
    assert_eq!((node.term(), node.leader()), (Term(1), Some(NodeId(2))));

    node.step(follower_message(1, MessageBody::TimeoutNow));
    drain_synced(&mut node);
    node.step(follower_message(
        2,
        MessageBody::PreVoteResponse { granted: true },
    ));
    let lines = drain_synced(&mut node);
    assert_eq!(node.role(), Role::Candidate);
    assert_eq!(node.term(), Term(2));
    assert!(
        lines
            .iter()
            .any(|line| line == "send n1->n3 t2 RequestVote last=0.0 transfer"),
        "{lines:?}"
    );
}

// While it waits for the leader to confirm a transfer, the target follows the leader's
// heartbeats (one sent before the confirmation must not spoil the transfer), and gives up
// after an election timeout without an answer, following on in the same term.
#[test]
fn transfer_confirmation_survives_heartbeats_and_times_out() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    let heartbeat = || {
        follower_message(
            1,
            MessageBody::Heartbeat {
                commit: Index(0),
                round: 1,
            },
        )
    };
    node.step(heartbeat());
    drain_synced(&mut node);
    node.step(follower_message(1, MessageBody::TimeoutNow));
    drain_synced(&mut node);
    node.step(heartbeat());
    let lines = drain_synced(&mut node);
    assert_eq!(node.role(), Role::PreCandidate, "still waiting");
    assert!(
        lines
            .iter()
            .any(|line| line == "send n1->n2 t1 HeartbeatResponse round=1"),
        "{lines:?}"
    );
    node.step(follower_message(
        2,
        MessageBody::PreVoteResponse { granted: true },
    ));
    drain_synced(&mut node);
    assert_eq!((node.role(), node.term()), (Role::Candidate, Term(2)));

    let mut node = node_with(1, &[1, 2, 3], 1);
    node.step(heartbeat());
    drain_synced(&mut node);
    node.step(follower_message(1, MessageBody::TimeoutNow));
    drain_synced(&mut node);
    let mut ticks = 0;
    while node.role() == Role::PreCandidate {
        assert!(ticks < 20, "gave up within the longest election timeout");
        node.tick();
        node.step(heartbeat());
        let lines = drain_synced(&mut node);
        assert!(
            !lines.iter().any(|line| line.contains("Vote")),
            "asked nobody else: {lines:?}"
        );
        ticks += 1;
    }
    assert_eq!(node.role(), Role::Follower);
    assert_eq!((node.term(), node.leader()), (Term(1), Some(NodeId(2))));
}

// A leader answers a pre-vote or vote request from a node that its committed
// configuration leaves out with `Removed`, and takes on none of its terms; members get
// the usual answers.
#[test]
fn leader_tells_a_removed_node_so() {
    let mut node = leader_of(&[1, 2]);
    for (term, body) in [
        (
            2,
            MessageBody::PreVote {
                last_log: LogId::new(1, 9),
                transfer: false,
            },
        ),
        (
            5,
            MessageBody::RequestVote {
                last_log: LogId::new(1, 9),
                transfer: true,
            },
        ),
        (7, MessageBody::HeartbeatResponse { round: 3 }),
    ] {
        node.step(Message {
            from: NodeId(3),
            to: NodeId(1),
            term: Term(term),
            body,
        });
        let lines = drain_synced(&mut node);
        assert_eq!(sent_to(&lines, 3), ["send n1->n3 t1 Removed index=0"]);
    }
    assert_eq!((node.role(), node.term()), (Role::Leader, Term(1)));
    node.step(follower_message(
        2,
        MessageBody::PreVote {
            last_log: LogId::new(1, 9),
            transfer: false,
        },
    ));
    let lines = drain_synced(&mut node);
    assert_eq!(
        sent_to(&lines, 2),
        ["send n1->n2 t1 PreVoteResponse granted=false"]
    );
}

// A removal notice is believed only from the leader this node follows (or any node of its
// term when it knows no leader), and only if it follows no newer configuration; believed,
// it stops all campaigning, once announced, and shows in the status.
#[test]
fn removal_notice_stops_campaigning() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    node.step(follower_message(
        1,
        MessageBody::Heartbeat {
            commit: Index(0),
            round: 1,
        },
    ));
    drain_synced(&mut node);
    let notice = |from: u64, term: u64| Message {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(term),
        body: MessageBody::Removed { index: Index(4) },
    };
    node.step(notice(3, 1));
    drain_synced(&mut node);
    assert!(!node.status().removed, "n3 does not lead term 1");
    node.step(notice(2, 0));
    drain_synced(&mut node);
    assert!(!node.status().removed, "an earlier term's notice");

    node.step(notice(2, 1));
    let lines = drain_synced(&mut node);
    assert!(node.status().removed);
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.starts_with("event removed"))
            .collect::<Vec<_>>(),
        ["event removed index=4"]
    );
    node.step(notice(2, 1));
    assert!(
        !drain_synced(&mut node)
            .iter()
            .any(|line| line.starts_with("event removed")),
        "announced once"
    );
    assert_eq!(node.campaign(), Err(CampaignError::NotVoter));
    for _ in 0..100 {
        node.tick();
        let lines = drain_synced(&mut node);
        assert!(
            !lines.iter().any(|line| line.starts_with("send")),
            "{lines:?}"
        );
    }
    assert_eq!(node.role(), Role::Follower);
}

// A leader reports how many ticks ago a quorum last answered it: counting from its
// election, reset by any voter's answer that completes a quorum; other roles report none.
#[test]
fn leader_reports_the_age_of_its_quorum_contact() {
    let mut node = node_with(1, &[1, 2, 3], 1);
    assert_eq!(node.status().quorum_contact_age_ticks, None);
    node.campaign().expect("voter");
    drain_synced(&mut node);
    assert_eq!(node.status().quorum_contact_age_ticks, None, "a candidate");
    node.step(follower_message(
        1,
        MessageBody::RequestVoteResponse { granted: true },
    ));
    drain_synced(&mut node);
    assert_eq!(node.role(), Role::Leader);
    assert_eq!(node.status().quorum_contact_age_ticks, Some(0));
    for _ in 0..4 {
        node.tick();
        drain_synced(&mut node);
    }
    assert_eq!(node.status().quorum_contact_age_ticks, Some(4));
    node.step(follower_message(
        1,
        MessageBody::HeartbeatResponse { round: 1 },
    ));
    drain_synced(&mut node);
    assert_eq!(node.status().quorum_contact_age_ticks, Some(0));
    for _ in 0..3 {
        node.tick();
        drain_synced(&mut node);
    }
    assert_eq!(node.status().quorum_contact_age_ticks, Some(3));
}
