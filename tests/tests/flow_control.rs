//! Flow control: the in-flight window, the per-append byte cap, the uncommitted byte cap,
//! and batching of proposals.

mod common;

use raft_core::{DropReason, ENTRY_OVERHEAD_BYTES, Index, LogId, NodeId, Proposal, ProposeError};
use raft_tests::Cluster;

use common::{carries_entries, entries_of, follower_status, is_from_to, n};

/// The appends carrying entries in flight from n1 to `to`.
fn appends_to(cluster: &Cluster, to: NodeId) -> usize {
    cluster
        .in_flight()
        .iter()
        .filter(|message| is_from_to(message, n(1), to) && carries_entries(message))
        .count()
}

// However many proposals pile up, at most `append_in_flight_max` appends carrying entries
// are unacknowledged per follower, and each acknowledgement frees one slot.
#[test]
fn in_flight_window_caps_unacknowledged_appends() {
    let mut cluster = Cluster::with_config(3, |builder| builder.append_in_flight_max(2));
    cluster.elect(n(1));
    for command in 0..5u8 {
        cluster
            .propose(n(1), &[command])
            .expect("the leader accepts");
    }
    for follower in [n(2), n(3)] {
        assert_eq!(appends_to(&cluster, follower), 2, "{follower}");
        assert_eq!(follower_status(&cluster, n(1), follower).in_flight, 2);
    }
    // n2 answers its first append: one more append goes out, carrying everything left.
    let first = cluster
        .in_flight()
        .iter()
        .position(|message| is_from_to(message, n(1), n(2)))
        .expect("an append to n2");
    let first = cluster.in_flight()[first].clone();
    cluster.deliver_matching(|message| *message == first);
    cluster.deliver_matching(|message| is_from_to(message, n(2), n(1)));
    assert_eq!(appends_to(&cluster, n(2)), 2);
    assert_eq!(follower_status(&cluster, n(1), n(2)).in_flight, 2);
    let last = cluster
        .in_flight()
        .iter()
        .rev()
        .find(|message| is_from_to(message, n(1), n(2)) && carries_entries(message))
        .expect("the new append");
    let ids: Vec<LogId> = entries_of(last).iter().map(|entry| entry.id).collect();
    assert_eq!(ids, [LogId::new(1, 4), LogId::new(1, 5), LogId::new(1, 6)]);
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).commit_index(), Index(6));
    assert_eq!(cluster.applied_commands(n(2)).len(), 5);
}

// An append carries at most `append_bytes_max` payload bytes, but always at least one
// entry, however large.
#[test]
fn append_bytes_max_caps_entries_per_append() {
    // Room for 8 payload bytes in two entries, each also counting the fixed overhead.
    let mut cluster = Cluster::with_config(3, |builder| {
        builder
            .append_bytes_max(8 + 2 * ENTRY_OVERHEAD_BYTES)
            .append_in_flight_max(1)
    });
    cluster.elect(n(1));
    let outcomes = cluster.propose_many(
        n(1),
        &[b"aaaa", b"bbbb", b"cccc", b"dddddddddddd", b"ee", b"ff"],
    );
    assert!(outcomes.iter().all(Result::is_ok));
    let mut sizes = Vec::new();
    while let Some(message) = cluster
        .in_flight()
        .iter()
        .find(|message| is_from_to(message, n(1), n(2)))
        .cloned()
    {
        let entries = entries_of(&message);
        if !entries.is_empty() {
            sizes.push(
                entries
                    .iter()
                    .map(|entry| entry.payload.size())
                    .collect::<Vec<_>>(),
            );
        }
        cluster.deliver_matching(|candidate| *candidate == message);
        cluster.deliver_matching(|candidate| is_from_to(candidate, n(2), n(1)));
    }
    assert_eq!(sizes, [vec![4, 4], vec![4], vec![12], vec![2, 2]]);
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).commit_index(), Index(7));
}

// Proposals are dropped once the uncommitted bytes would exceed
// `uncommitted_bytes_max`, accepted again once entries commit, and a lone oversized
// proposal is taken when nothing else is uncommitted.
#[test]
fn uncommitted_bytes_max_drops_proposals() {
    // Room for 10 payload bytes in three entries, each also counting the fixed overhead.
    let mut cluster = Cluster::with_config(3, |builder| {
        builder.uncommitted_bytes_max(10 + 3 * ENTRY_OVERHEAD_BYTES)
    });
    cluster.elect(n(1));
    let dropped = Err(ProposeError::ProposalDropped {
        reason: DropReason::UncommittedLimit,
    });
    assert!(cluster.propose(n(1), b"aaaa").is_ok());
    assert!(cluster.propose(n(1), b"bbbb").is_ok());
    assert_eq!(cluster.propose(n(1), b"cccc"), dropped);
    assert!(cluster.propose(n(1), b"cc").is_ok(), "exactly at the limit");
    assert_eq!(cluster.propose(n(1), b"d"), dropped);
    assert_eq!(cluster.node(n(1)).last_log_id().index, Index(4));

    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).commit_index(), Index(4));
    let large = [b'x'; 50];
    assert!(
        cluster.propose(n(1), &large).is_ok(),
        "alone, it may exceed"
    );
    assert_eq!(cluster.propose(n(1), b"y"), dropped);
    cluster.deliver_all();
    assert!(cluster.propose(n(1), b"y").is_ok());
}

// Proposals made before the leader's actions are drained go out as one write and one
// append per follower.
#[test]
fn proposals_before_draining_are_batched() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.clear_trace();
    let outcomes = cluster.propose_many(n(1), &[b"a", b"b", b"c", b"d", b"e"]);
    let expected: Vec<_> = (2..=6)
        .map(|index| Ok(Proposal::Appended(LogId::new(1, index))))
        .collect();
    assert_eq!(outcomes, expected);
    let persists = cluster
        .trace()
        .iter()
        .filter(|line| line.starts_with("n1: persist"))
        .count();
    assert_eq!(persists, 1, "one write: {:?}", cluster.trace());
    for follower in [n(2), n(3)] {
        let appends: Vec<_> = cluster
            .in_flight()
            .iter()
            .filter(|message| is_from_to(message, n(1), follower))
            .collect();
        assert_eq!(appends.len(), 1, "{follower}");
        assert_eq!(entries_of(appends[0]).len(), 5);
    }
    cluster.deliver_all();
    assert_eq!(cluster.node(n(1)).commit_index(), Index(6));
}
