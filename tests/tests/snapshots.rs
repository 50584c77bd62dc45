//! Snapshots and log compaction: followers behind the compaction point are restored by
//! snapshot, the leader's per-follower progress follows the transfer's reports, installs
//! survive crashes and stale deliveries, nodes restart from snapshots, learners join
//! through them, and inconsistent inputs are refused with typed errors.

mod common;

use bytes::Bytes;
use common::{deliver_while, follower_status, is_append, is_from_to, log_ids, log_of, n};
use raft_core::{
    Action, AppendResponse, Config, Entry, HardState, Index, LogId, Membership, Message,
    MessageBody, Node, NodeId, Recovered, RecoveryError, ReplicationState, Role, SnapshotError,
    SnapshotMetadata, SnapshotTransfer, Term,
};
use raft_tests::Cluster;

/// Accounted size of each command [`commit_commands`] proposes: 7 payload bytes plus the
/// per-entry overhead.
const COMMAND_BYTES: usize = 7 + raft_core::ENTRY_OVERHEAD_BYTES;

/// A cluster of `size` nodes asking for a snapshot every `bytes` of applied log and
/// keeping `trailing` entries below each.
fn snapshotting(size: u64, bytes: usize, trailing: u64) -> Cluster {
    Cluster::with_config(size, move |builder| {
        builder
            .snapshot_log_bytes(bytes)
            .compaction_trailing_entries(trailing)
    })
}

/// The 7-byte command number `number`.
fn command(number: usize) -> Vec<u8> {
    format!("cmd-{number:03}").into_bytes()
}

/// Proposes each command of `numbers` on `leader` and delivers everything after each.
fn commit_commands(cluster: &mut Cluster, leader: NodeId, numbers: std::ops::Range<usize>) {
    for number in numbers {
        cluster
            .propose(leader, &command(number))
            .expect("the leader accepts");
        cluster.deliver_all();
    }
}

/// Whether `message` is an `InstallSnapshot`.
fn is_install_snapshot(message: &Message) -> bool {
    matches!(message.body, MessageBody::InstallSnapshot { .. })
}

/// The snapshot an `InstallSnapshot` carries.
fn snapshot_of(message: &Message) -> Option<&SnapshotMetadata> {
    match &message.body {
        MessageBody::InstallSnapshot { snapshot } => Some(&**snapshot),
        _ => None,
    }
}

/// The snapshots in flight from `from` to `to`.
fn snapshots_in_flight(cluster: &Cluster, from: NodeId, to: NodeId) -> Vec<SnapshotMetadata> {
    cluster
        .in_flight()
        .iter()
        .filter(|message| is_from_to(message, from, to))
        .filter_map(snapshot_of)
        .cloned()
        .collect()
}

/// How many snapshots `from` asked to send to `to`, by the trace.
fn snapshots_sent(cluster: &Cluster, from: NodeId, to: NodeId) -> usize {
    let prefix = format!("{from}: send-snapshot {from}->{to} ");
    cluster
        .trace()
        .iter()
        .filter(|line| line.starts_with(&prefix))
        .count()
}

/// How many `AppendEntries` `from` sent `to`, by the trace.
fn appends_sent(cluster: &Cluster, from: NodeId, to: NodeId) -> usize {
    let prefix = format!("{from}: send {from}->{to} ");
    cluster
        .trace()
        .iter()
        .filter(|line| line.starts_with(&prefix) && line.contains(" AppendEntries "))
        .count()
}

/// How many trace lines of node `id` start with `what` (after the `id: ` prefix).
fn actions_of(cluster: &Cluster, id: NodeId, what: &str) -> usize {
    let prefix = format!("{id}: {what}");
    cluster
        .trace()
        .iter()
        .filter(|line| line.starts_with(&prefix))
        .count()
}

/// Ticks `leader` alone until it sends heartbeats, then delivers everything but
/// `InstallSnapshot` messages, which stay in flight.
fn heartbeat_round_holding_snapshots(cluster: &mut Cluster, leader: NodeId) {
    for _ in 0..1_000 {
        cluster.tick(leader);
        if cluster
            .in_flight()
            .iter()
            .any(|message| matches!(message.body, MessageBody::Heartbeat { .. }))
        {
            deliver_while(cluster, |message| !is_install_snapshot(message));
            return;
        }
    }
    panic!("{leader} sent no heartbeat");
}

/// Leader n1 of three nodes commits 30 commands while n3 is cut off, so that n1 compacts
/// its log past everything n3 holds; then the partition heals. Returns the cluster.
fn lagging_follower(bytes: usize, trailing: u64, auto_report: bool) -> Cluster {
    let mut cluster = snapshotting(3, bytes, trailing);
    cluster.auto_report_snapshots = auto_report;
    cluster.elect(n(1));
    cluster.isolate(n(3));
    commit_commands(&mut cluster, n(1), 0..30);
    cluster.heal();
    cluster
}

// A follower cut off while the leader compacts its log past everything the follower holds
// is restored by an InstallSnapshot once it returns, and then follows by plain appends.
#[test]
fn slow_follower_is_restored_by_snapshot_after_compaction() {
    let mut cluster = lagging_follower(200, 0, true);
    let behind = cluster.node(n(3)).last_log_id();
    let compacted = cluster.node(n(1)).compacted_through();
    assert!(
        compacted.index > behind.index,
        "n1 compacted through {compacted}, past n3's last entry {behind}"
    );
    assert_eq!(
        cluster.node(n(1)).entry(behind.index.next()),
        None,
        "n1 no longer holds the entry n3 needs next"
    );
    let leader_snapshot = cluster
        .node(n(1))
        .snapshot()
        .cloned()
        .expect("n1 stored a snapshot");
    assert_eq!(
        leader_snapshot.last_included, compacted,
        "with no trailing entries the log starts right after the snapshot"
    );

    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
    assert_eq!(
        snapshots_sent(&cluster, n(1), n(3)),
        1,
        "one snapshot restored n3"
    );
    assert_eq!(
        actions_of(&cluster, n(3), "restore "),
        1,
        "n3 restored once"
    );
    let installed = cluster
        .node(n(3))
        .snapshot()
        .cloned()
        .expect("n3 stored the snapshot");
    assert_eq!(
        installed, leader_snapshot,
        "n3 stored the leader's snapshot"
    );
    assert_eq!(
        cluster.node(n(3)).compacted_through(),
        installed.last_included
    );
    assert_eq!(
        cluster.applied(n(3)).len(),
        cluster.applied(n(1)).len(),
        "n3's state machine holds the whole history"
    );
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Replicate);
    assert_eq!(status.matched, cluster.node(n(1)).last_log_id().index);
    assert_eq!(status.pending_snapshot, None);

    // New entries reach n3 by appends, with no further snapshot.
    cluster.clear_trace();
    commit_commands(&mut cluster, n(1), 30..33);
    assert_eq!(snapshots_sent(&cluster, n(1), n(3)), 0);
    assert!(appends_sent(&cluster, n(1), n(3)) >= 3);
    assert_eq!(cluster.applied(n(3)), cluster.applied(n(1)));
    assert_eq!(
        cluster.applied_commands(n(3)).last(),
        Some(&Bytes::from(command(32)))
    );
    assert_eq!(
        follower_status(&cluster, n(1), n(3)).state,
        ReplicationState::Replicate
    );
}

// With compaction keeping trailing entries, a follower only slightly behind catches up from
// the log, with no snapshot at all.
#[test]
fn trailing_entries_spare_a_slightly_lagging_follower_a_snapshot() {
    let mut cluster = lagging_follower(200, 100, true);
    let leader_snapshot = cluster
        .node(n(1))
        .snapshot()
        .cloned()
        .expect("n1 stored a snapshot");
    assert!(leader_snapshot.last_included.index > cluster.node(n(3)).last_log_id().index);
    assert_eq!(
        cluster.node(n(1)).compacted_through(),
        LogId::default(),
        "fewer than 100 entries lie below the snapshot: nothing was dropped"
    );
    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
    assert_eq!(snapshots_sent(&cluster, n(1), n(3)), 0);
    assert_eq!(
        actions_of(&cluster, n(3), "restore "),
        0,
        "n3 installed nothing"
    );
    assert!(appends_sent(&cluster, n(1), n(3)) > 0);
}

// Without automatic reports, the follower's progress follows the reports: Snapshot while
// the transfer is pending (no appends at all), Failed back to a paused probe from the
// match point that sends a new snapshot on the next heartbeat answer, Delivered to a
// paused probe right after the snapshot, and the follower's acceptance to Replicate.
#[test]
fn snapshot_reports_move_the_follower_progress() {
    let mut cluster = lagging_follower(200, 0, false);
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let snapshot = cluster
        .node(n(1))
        .snapshot()
        .cloned()
        .expect("n1 stored a snapshot");
    let first = snapshot.last_included.index;
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Snapshot);
    assert_eq!(status.pending_snapshot, Some(first));
    assert_eq!(status.in_flight, 0);
    let matched = status.matched;
    assert!(matched < first);
    assert_eq!(
        snapshots_in_flight(&cluster, n(1), n(3)),
        vec![snapshot.clone()]
    );

    // While the snapshot is pending, neither new entries nor heartbeat answers send n3 an
    // append.
    cluster.clear_trace();
    for number in 30..32 {
        cluster
            .propose(n(1), &command(number))
            .expect("the leader accepts");
        deliver_while(&mut cluster, |message| !is_install_snapshot(message));
    }
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    assert_eq!(
        actions_of(&cluster, n(1), "send n1->n3"),
        1,
        "only a heartbeat went to n3: {:#?}",
        cluster.trace()
    );
    assert_eq!(appends_sent(&cluster, n(1), n(3)), 0);
    assert_eq!(
        follower_status(&cluster, n(1), n(3)).pending_snapshot,
        Some(first)
    );

    // The transfer fails: the leader probes again from the match point, paused.
    assert_eq!(cluster.drop_matching(is_install_snapshot), 1);
    assert_eq!(
        follower_status(&cluster, n(1), n(3)).state,
        ReplicationState::Snapshot,
        "nothing changes before the report"
    );
    cluster.report_snapshot(n(1), n(3), SnapshotTransfer::Failed);
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Probe);
    assert_eq!(status.next, matched.next());
    assert_eq!(status.pending_snapshot, None);
    assert!(
        cluster.in_flight().is_empty(),
        "the probe waits for a heartbeat answer"
    );

    // The next heartbeat answer sends a snapshot again (the newest one).
    cluster.clear_trace();
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let snapshot = cluster
        .node(n(1))
        .snapshot()
        .cloned()
        .expect("n1 stored a snapshot");
    let second = snapshot.last_included.index;
    assert!(second >= first);
    assert_eq!(snapshots_sent(&cluster, n(1), n(3)), 1);
    assert_eq!(snapshots_in_flight(&cluster, n(1), n(3)), vec![snapshot]);
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Snapshot);
    assert_eq!(status.pending_snapshot, Some(second));

    // Delivered, then reported: a paused probe right after the snapshot.
    cluster.deliver_matching(is_install_snapshot);
    cluster.report_snapshot(n(1), n(3), SnapshotTransfer::Delivered);
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Probe);
    assert_eq!(status.next, second.next());
    assert_eq!(status.pending_snapshot, None);
    assert_eq!(status.matched, matched, "nothing acknowledged yet");

    // The follower's acceptance of the snapshot: Replicate from right after it.
    let acceptance = cluster
        .in_flight()
        .iter()
        .find(|message| is_from_to(message, n(3), n(1)))
        .cloned()
        .expect("n3 answered the snapshot");
    assert_eq!(
        acceptance.body,
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { matched: second })
    );
    cluster.clear_trace();
    cluster.deliver_matching(|message| is_from_to(message, n(3), n(1)));
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Replicate);
    assert_eq!(status.matched, second);
    let append = cluster
        .in_flight()
        .iter()
        .find(|message| is_from_to(message, n(1), n(3)) && is_append(message))
        .cloned()
        .expect("n1 streams the rest to n3");
    let MessageBody::AppendEntries { previous, .. } = append.body else {
        unreachable!("an append");
    };
    assert_eq!(
        previous.index, second,
        "streaming resumes right after the snapshot"
    );
    cluster.deliver_all();
    assert_eq!(cluster.applied(n(3)), cluster.applied(n(1)));
}

// An acceptance at the snapshot's index moves the follower from Snapshot straight to
// Replicate, with no report at all; a report arriving afterwards changes nothing.
#[test]
fn acceptance_of_the_snapshot_replicates_without_any_report() {
    let mut cluster = lagging_follower(200, 0, false);
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let snapshot = snapshots_in_flight(&cluster, n(1), n(3));
    let [snapshot] = snapshot.as_slice() else {
        panic!("one snapshot in flight to n3: {snapshot:?}");
    };
    let index = snapshot.last_included.index;
    cluster.deliver_matching(is_install_snapshot);
    assert_eq!(
        follower_status(&cluster, n(1), n(3)).state,
        ReplicationState::Snapshot
    );
    cluster.deliver_matching(|message| is_from_to(message, n(3), n(1)));
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Replicate);
    assert_eq!(status.matched, index);
    assert_eq!(status.pending_snapshot, None);

    for outcome in [SnapshotTransfer::Delivered, SnapshotTransfer::Failed] {
        cluster.report_snapshot(n(1), n(3), outcome);
        let late = follower_status(&cluster, n(1), n(3));
        assert_eq!(
            late.state,
            ReplicationState::Replicate,
            "a late {outcome:?} is ignored"
        );
        assert_eq!(late.matched, index);
    }
    cluster.deliver_all();
    assert_eq!(cluster.applied(n(3)), cluster.applied(n(1)));
    assert_eq!(snapshots_sent(&cluster, n(1), n(3)), 1);
}

// A follower that crashes before the installed snapshot is durable restarts with its old
// log and loses nothing it had; the leader sends the snapshot again and it catches up.
#[test]
fn crash_during_install_keeps_the_old_log_and_the_snapshot_is_sent_again() {
    let mut cluster = lagging_follower(200, 0, true);
    let old_log = log_ids(&cluster, n(3));
    let old_applied = cluster.applied(n(3)).to_vec();
    let old_commit = cluster.node(n(3)).commit_index();
    let leader_applied = cluster.applied(n(1)).to_vec();

    cluster.auto_sync = false;
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let [snapshot] = snapshots_in_flight(&cluster, n(1), n(3))
        .try_into()
        .expect("one snapshot in flight to n3");
    cluster.deliver_matching(is_install_snapshot);
    assert!(
        cluster.server(n(3)).storage.has_pending(),
        "the write storing the snapshot is not durable"
    );
    assert_eq!(
        cluster.node(n(3)).compacted_through(),
        snapshot.last_included,
        "in memory n3 already replaced its log"
    );
    assert_eq!(cluster.node(n(3)).snapshot(), None, "nothing durable yet");
    assert_eq!(actions_of(&cluster, n(3), "restore "), 0);
    assert!(
        !cluster
            .in_flight()
            .iter()
            .any(|message| message.from == n(3)),
        "n3 answers only once the snapshot is durable"
    );

    cluster.crash(n(3));
    cluster.restart(n(3));
    assert_eq!(log_ids(&cluster, n(3)), old_log, "n3 recovered its old log");
    assert_eq!(cluster.node(n(3)).compacted_through(), LogId::default());
    assert_eq!(cluster.node(n(3)).snapshot(), None);
    assert_eq!(cluster.applied(n(3)), old_applied.as_slice());
    assert!(cluster.node(n(3)).commit_index() <= old_commit);
    assert_eq!(cluster.applied(n(1)), leader_applied.as_slice());

    for id in cluster.ids() {
        cluster.sync(id);
    }
    cluster.auto_sync = true;
    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
    assert_eq!(
        snapshots_sent(&cluster, n(1), n(3)),
        2,
        "the snapshot was sent again"
    );
    assert_eq!(actions_of(&cluster, n(3), "restore "), 1);
    assert_eq!(
        cluster
            .node(n(3))
            .snapshot()
            .map(|snapshot| snapshot.last_included.index),
        Some(snapshot.last_included.index)
    );
    assert_eq!(
        follower_status(&cluster, n(1), n(3)).state,
        ReplicationState::Replicate
    );
}

// A duplicated InstallSnapshot delivered after the follower moved past it changes nothing
// and is answered with the follower's commit index.
#[test]
fn stale_install_snapshot_is_acknowledged_with_the_commit_index() {
    let mut cluster = lagging_follower(200, 0, true);
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let stale = cluster
        .in_flight()
        .iter()
        .find(|message| is_install_snapshot(message))
        .cloned()
        .expect("a snapshot in flight to n3");
    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
    commit_commands(&mut cluster, n(1), 30..40);
    let snapshot_index = snapshot_of(&stale)
        .expect("an InstallSnapshot")
        .last_included
        .index;
    let commit = cluster.node(n(3)).commit_index();
    assert!(commit > snapshot_index, "n3 moved past the snapshot");
    let log = log_ids(&cluster, n(3));
    let applied = cluster.applied(n(3)).to_vec();
    let stored = cluster.node(n(3)).snapshot().cloned();
    let compacted = cluster.node(n(3)).compacted_through();
    let progress = follower_status(&cluster, n(1), n(3));
    assert!(cluster.in_flight().is_empty());

    cluster.clear_trace();
    cluster.inject(stale);
    cluster.deliver_next();
    assert_eq!(log_ids(&cluster, n(3)), log);
    assert_eq!(cluster.applied(n(3)), applied.as_slice());
    assert_eq!(cluster.node(n(3)).snapshot().cloned(), stored);
    assert_eq!(cluster.node(n(3)).compacted_through(), compacted);
    assert_eq!(cluster.node(n(3)).commit_index(), commit);
    assert_eq!(
        actions_of(&cluster, n(3), "persist "),
        0,
        "nothing to store"
    );
    assert_eq!(actions_of(&cluster, n(3), "restore "), 0);
    let answers: Vec<&Message> = cluster.in_flight().iter().collect();
    let [answer] = answers.as_slice() else {
        panic!("one answer: {answers:?}");
    };
    assert!(is_from_to(answer, n(3), n(1)));
    assert_eq!(
        answer.body,
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted { matched: commit })
    );
    cluster.deliver_all();
    assert_eq!(follower_status(&cluster, n(1), n(3)), progress);
}

// A snapshot whose last entry the follower already holds, followed by more entries, is
// taken as an empty append: the entries after it stay, nothing is installed, and the
// commit index moves to the snapshot's end.
#[test]
fn snapshot_older_than_the_follower_log_keeps_the_entries_after_it() {
    let mut cluster = snapshotting(3, 300, 0);
    cluster.auto_report_snapshots = false;
    cluster.elect(n(1));
    let start = cluster.node(n(1)).last_log_id().index;
    let first: Vec<Vec<u8>> = (0..10).map(command).collect();
    let second: Vec<Vec<u8>> = (10..14).map(command).collect();
    let first: Vec<&[u8]> = first.iter().map(Vec::as_slice).collect();
    let second: Vec<&[u8]> = second.iter().map(Vec::as_slice).collect();
    cluster.propose_many(n(1), &first);
    cluster.propose_many(n(1), &second);
    // Both appends to n3 are slowed down, sent while only `start` was committed.
    assert_eq!(
        cluster.hold_matching(|message| is_from_to(message, n(1), n(3))),
        2
    );
    deliver_while(&mut cluster, |message| message.to != n(3));
    cluster.drop_matching(|message| message.to == n(3));
    let snapshot_index = Index(start.0 + 10);
    let last = Index(start.0 + 14);
    assert_eq!(cluster.node(n(1)).commit_index(), last);
    assert_eq!(
        cluster
            .node(n(1))
            .snapshot()
            .map(|snapshot| snapshot.last_included.index),
        Some(snapshot_index),
        "n1 snapshotted when the first batch applied"
    );
    assert_eq!(cluster.node(n(1)).compacted_through().index, snapshot_index);
    // n3 is not to compact its own log below: only the leader's snapshot matters here.
    cluster.auto_snapshot = false;

    // n3 answers a heartbeat: n1 finds it lacks the compacted entries.
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Snapshot);
    assert_eq!(status.pending_snapshot, Some(snapshot_index));

    // The slow appends arrive first, then the snapshot.
    cluster.hold_matching(is_install_snapshot);
    cluster.release_held();
    assert!(cluster.deliver_next() && cluster.deliver_next());
    assert_eq!(cluster.node(n(3)).last_log_id().index, last);
    assert_eq!(cluster.node(n(3)).commit_index(), start);
    let log = log_ids(&cluster, n(3));
    cluster.clear_trace();
    assert!(cluster.in_flight().front().is_some_and(is_install_snapshot));
    cluster.deliver_next();
    assert_eq!(
        log_ids(&cluster, n(3)),
        log,
        "the entries after the snapshot stay"
    );
    assert_eq!(cluster.node(n(3)).commit_index(), snapshot_index);
    assert_eq!(cluster.node(n(3)).snapshot(), None, "nothing installed");
    assert_eq!(cluster.node(n(3)).compacted_through(), LogId::default());
    assert_eq!(actions_of(&cluster, n(3), "restore "), 0);
    assert_eq!(
        cluster.applied(n(3)),
        &cluster.applied(n(1))[..usize::try_from(snapshot_index.0).expect("small")]
    );
    let answer = cluster.in_flight().back().cloned().expect("n3 answered");
    assert_eq!(
        answer.body,
        MessageBody::AppendEntriesResponse(AppendResponse::Accepted {
            matched: snapshot_index
        })
    );

    // The acceptances (past and at the snapshot's index) resume replication, unreported.
    cluster.deliver_all();
    let status = follower_status(&cluster, n(1), n(3));
    assert_eq!(status.state, ReplicationState::Replicate);
    assert_eq!(status.matched, last);
    assert_eq!(cluster.applied(n(3)), cluster.applied(n(1)));
}

// A node restarting with a durable snapshot starts its log right after it and keeps its
// state machine; a node whose state machine was lost restores the snapshot first. The
// restarted node goes on serving, and leading.
#[test]
fn restart_from_a_snapshot() {
    let mut cluster = snapshotting(3, 200, 4);
    cluster.elect(n(1));
    commit_commands(&mut cluster, n(1), 0..20);
    let snapshot = cluster
        .node(n(2))
        .snapshot()
        .cloned()
        .expect("n2 built snapshots as a follower");
    let snapshot_index = snapshot.last_included.index;
    assert_eq!(
        cluster.node(n(2)).compacted_through().index,
        Index(snapshot_index.0 - 4),
        "in memory n2 keeps 4 entries below its snapshot"
    );
    let last = cluster.node(n(2)).last_log_id();
    let applied = cluster.applied(n(2)).to_vec();

    // A volatile state machine (applied 0): the node's first action restores the snapshot,
    // and nothing past it is handed out before a leader says it is committed.
    let config = Config::builder(n(2))
        .snapshot_log_bytes(200)
        .build()
        .expect("valid");
    let recovered = cluster
        .server(n(2))
        .storage
        .recovered(Membership::with_voters([n(1), n(2), n(3)]), Index(0));
    let mut fresh = Node::new(config, recovered).expect("consistent");
    assert_eq!(
        fresh.poll_action(),
        Some(Action::Restore(Box::new(snapshot.clone())))
    );
    assert_eq!(fresh.poll_action(), None);
    assert!(fresh.applied(snapshot_index.next()).is_err());
    fresh.applied(snapshot_index).expect("the snapshot's index");
    assert_eq!(fresh.status().applied, snapshot_index);
    assert_eq!(fresh.commit_index(), snapshot_index);
    assert_eq!(fresh.compacted_through(), snapshot.last_included);
    assert_eq!(fresh.last_log_id(), last);

    // The harness's durable state machine: no restore, the log starts after the snapshot.
    cluster.clear_trace();
    cluster.crash(n(2));
    cluster.restart(n(2));
    assert_eq!(actions_of(&cluster, n(2), "restore "), 0);
    assert_eq!(cluster.node(n(2)).snapshot(), Some(&snapshot));
    assert_eq!(
        cluster.node(n(2)).compacted_through(),
        snapshot.last_included
    );
    assert_eq!(
        cluster.node(n(2)).log_entries().next().map(Entry::index),
        Some(snapshot_index.next())
    );
    assert_eq!(cluster.node(n(2)).last_log_id(), last);
    assert_eq!(cluster.node(n(2)).status().snapshot_index, snapshot_index);
    assert_eq!(cluster.applied(n(2)), applied.as_slice());

    commit_commands(&mut cluster, n(1), 20..23);
    assert_eq!(cluster.applied(n(2)), cluster.applied(n(1)));
    cluster
        .transfer_leader(n(1), n(2))
        .expect("n2 is an up-to-date voter");
    cluster.deliver_all();
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
    commit_commands(&mut cluster, n(2), 23..30);
    for id in cluster.ids() {
        assert_eq!(cluster.applied(id), cluster.applied(n(2)), "{id}");
    }
    assert!(
        cluster
            .node(n(2))
            .snapshot()
            .expect("n2's snapshot")
            .last_included
            .index
            > snapshot_index
    );
}

// A learner added after the log was compacted catches up through a snapshot, and can then
// be promoted to voter and lead.
#[test]
fn learner_added_after_compaction_catches_up_by_snapshot() {
    let mut cluster =
        Cluster::with_membership(4, Membership::with_voters([n(1), n(2), n(3)]), |builder| {
            builder
                .snapshot_log_bytes(200)
                .compaction_trailing_entries(0)
        });
    cluster.elect(n(1));
    commit_commands(&mut cluster, n(1), 0..30);
    let compacted = cluster.node(n(1)).compacted_through();
    assert!(compacted.index > Index(1), "n1 compacted its log");
    assert_eq!(cluster.node(n(1)).entry(Index(1)), None);

    cluster
        .change_membership(n(1), &[1, 2, 3], &[4])
        .expect("adding a learner");
    cluster.run_until(50, |cluster| {
        cluster.applied(n(4)) == cluster.applied(n(1))
            && cluster.node(n(4)).membership().learners.contains(&n(4))
    });
    assert_eq!(snapshots_sent(&cluster, n(1), n(4)), 1);
    assert_eq!(actions_of(&cluster, n(4), "restore "), 1);
    assert!(cluster.node(n(4)).snapshot().is_some());
    assert_eq!(
        follower_status(&cluster, n(1), n(4)).state,
        ReplicationState::Replicate
    );

    cluster
        .change_membership(n(1), &[1, 2, 3, 4], &[])
        .expect("promoting the learner");
    cluster.run_until(10, |cluster| {
        cluster
            .ids()
            .iter()
            .all(|id| cluster.node(*id).membership().is_voter(n(4)))
    });
    cluster
        .transfer_leader(n(1), n(4))
        .expect("n4 is a voter now");
    cluster.run_until(10, |cluster| cluster.leader() == Some(n(4)));
    commit_commands(&mut cluster, n(4), 30..32);
    for id in cluster.ids() {
        assert_eq!(cluster.applied(id), cluster.applied(n(4)), "{id}");
    }
}

/// Polls every action of `node`, acknowledging writes at once and, with `apply`,
/// reporting applied entries; returns the actions.
fn drive(node: &mut Node, apply: bool) -> Vec<Action> {
    let mut actions = Vec::new();
    while let Some(action) = node.poll_action() {
        match &action {
            Action::Persist(write) => node.persisted(write.id).expect("issued"),
            Action::Apply(entries) if apply => {
                if let Some(last) = entries.last() {
                    node.applied(last.index()).expect("handed out");
                }
            }
            _ => {}
        }
        actions.push(action);
    }
    actions
}

// `snapshot_built` refuses a snapshot past the applied index and one no newer than the
// newest, stored or on its way.
#[test]
fn snapshot_built_refuses_unapplied_and_stale_snapshots() {
    let config = Config::builder(n(1))
        .compaction_trailing_entries(0)
        .build()
        .expect("valid");
    let mut node = Node::new(
        config,
        Recovered::new_cluster(Membership::with_voters([n(1)])),
    )
    .expect("consistent");
    node.campaign().expect("a voter");
    drive(&mut node, false);
    assert_eq!(node.role(), Role::Leader);
    assert_eq!(node.commit_index(), Index(1), "the blank entry committed");
    assert_eq!(
        node.snapshot_built(Index(1)),
        Err(SnapshotError::NotApplied {
            index: Index(1),
            applied: Index(0)
        })
    );
    node.applied(Index(1)).expect("handed out");
    node.propose(Bytes::from_static(b"one")).expect("leader");
    node.propose(Bytes::from_static(b"two")).expect("leader");
    let actions = drive(&mut node, false);
    assert!(
        actions
            .iter()
            .any(|action| matches!(action, Action::Apply(_)))
    );
    assert_eq!(node.commit_index(), Index(3));
    assert_eq!(
        node.snapshot_built(Index(3)),
        Err(SnapshotError::NotApplied {
            index: Index(3),
            applied: Index(1)
        })
    );
    node.applied(Index(2)).expect("handed out");
    let snapshot = node.snapshot_built(Index(2)).expect("applied and newer");
    assert_eq!(snapshot.last_included, LogId::new(node.term().0, 2));
    assert_eq!(snapshot.membership, Membership::with_voters([n(1)]));
    // On its way to storage: the same index, or an older one, is stale.
    assert_eq!(
        node.snapshot_built(Index(2)),
        Err(SnapshotError::Stale {
            index: Index(2),
            newest: Index(2)
        })
    );
    assert_eq!(
        node.snapshot_built(Index(1)),
        Err(SnapshotError::Stale {
            index: Index(1),
            newest: Index(2)
        })
    );
    let actions = drive(&mut node, true);
    assert!(
        actions.iter().any(|action| matches!(
            action,
            Action::Persist(write) if write.snapshot.as_deref() == Some(&snapshot)
        )),
        "a write stores the snapshot: {actions:?}"
    );
    assert_eq!(node.snapshot(), Some(&snapshot));
    assert_eq!(node.compacted_through(), snapshot.last_included);
    // Durable: still stale.
    assert_eq!(
        node.snapshot_built(Index(2)),
        Err(SnapshotError::Stale {
            index: Index(2),
            newest: Index(2)
        })
    );
    node.applied(Index(3)).expect("handed out");
    assert!(node.snapshot_built(Index(3)).is_ok(), "a newer one is fine");
}

// SnapshotWanted is asked once per snapshot: applying far past the threshold without
// building one asks no more; once a snapshot is built, the next threshold asks again.
#[test]
fn snapshot_wanted_is_asked_once_per_snapshot() {
    let mut cluster = snapshotting(3, 200, 0);
    cluster.auto_snapshot = false;
    cluster.elect(n(1));
    let start = cluster.node(n(1)).applied_index();
    commit_commands(&mut cluster, n(1), 0..30);
    let wanted = |cluster: &Cluster, id: NodeId| actions_of(cluster, id, "event snapshot-wanted");
    for id in cluster.ids() {
        assert_eq!(wanted(&cluster, id), 1, "{id} asked once");
        assert_eq!(cluster.node(id).snapshot(), None, "{id} built nothing");
        assert_eq!(cluster.node(id).compacted_through(), LogId::default());
    }
    // The leader's blank entry counts too: the threshold is passed at the first command
    // that brings the applied bytes to 200.
    let blank = raft_core::ENTRY_OVERHEAD_BYTES;
    let commands = (200 - blank).div_ceil(COMMAND_BYTES) as u64;
    let expected = format!("n1: event snapshot-wanted applied={}", start.0 + commands);
    assert!(
        cluster.trace().contains(&expected),
        "{expected} in {:#?}",
        cluster.trace()
    );

    let snapshot = cluster.snapshot(n(1)).expect("applied and newer");
    let applied = cluster.node(n(1)).applied_index();
    assert_eq!(snapshot.last_included.index, applied);
    assert_eq!(
        cluster.node(n(1)).compacted_through(),
        snapshot.last_included
    );
    assert_eq!(
        cluster.snapshot(n(1)),
        Err(SnapshotError::Stale {
            index: applied,
            newest: applied
        })
    );
    let below = 200 / COMMAND_BYTES;
    commit_commands(&mut cluster, n(1), 30..30 + below);
    assert_eq!(
        wanted(&cluster, n(1)),
        1,
        "not yet 200 bytes since the snapshot"
    );
    commit_commands(&mut cluster, n(1), 30 + below..31 + below);
    assert_eq!(wanted(&cluster, n(1)), 2, "asked again after the snapshot");
    assert_eq!(
        wanted(&cluster, n(2)),
        1,
        "n2 still has its first question open"
    );
}

/// A recovered state holding a snapshot through `snapshot` (of three voters) and the
/// entries of `log` from index `first` on, in term 5.
fn recovered_with_snapshot(snapshot: LogId, log: &[u64], first: u64) -> Recovered {
    let entries: Vec<Entry> = log_of(log)
        .into_iter()
        .skip(usize::try_from(first - 1).expect("small"))
        .collect();
    Recovered {
        hard_state: HardState {
            term: Term(5),
            vote: None,
        },
        membership: Membership::with_voters([n(1), n(2), n(3)]),
        snapshot: Some(SnapshotMetadata {
            last_included: snapshot,
            membership: Membership::with_voters([n(1), n(2)]),
        }),
        entries,
        applied: snapshot.index,
        joining: false,
        fresh_storage: false,
    }
}

/// Starts node n1 from `recovered` with the default configuration.
fn start(recovered: Recovered) -> Result<Node, RecoveryError> {
    Node::new(Config::builder(n(1)).build().expect("valid"), recovered)
}

// Node::new refuses a gap between the snapshot and the entries, and an entry at the
// snapshot's index of another term; entries overlapping the snapshot consistently, or
// following it directly, are accepted and the log starts after the snapshot.
#[test]
fn recovery_checks_snapshot_and_entries_fit_together() {
    let snapshot = LogId::new(2, 5);
    let log = [1, 1, 2, 2, 2, 3, 3, 3];
    let gap = start(recovered_with_snapshot(snapshot, &log, 7));
    assert_eq!(
        gap.err(),
        Some(RecoveryError::EntriesNotContiguous {
            expected: Index(6),
            found: Index(7)
        })
    );
    let conflicting = start(recovered_with_snapshot(
        snapshot,
        &[1, 1, 1, 1, 1, 3, 3, 3],
        3,
    ));
    assert_eq!(
        conflicting.err(),
        Some(RecoveryError::SnapshotConflict {
            index: Index(5),
            snapshot_term: Term(2),
            entry_term: Term(1)
        })
    );

    for first in [1, 3, 5, 6] {
        let node = start(recovered_with_snapshot(snapshot, &log, first))
            .unwrap_or_else(|error| panic!("entries from {first}: {error}"));
        assert_eq!(node.compacted_through(), snapshot, "entries from {first}");
        assert_eq!(node.log_entries().next().map(Entry::index), Some(Index(6)));
        assert_eq!(node.last_log_id(), LogId::new(3, 8));
        assert_eq!(node.commit_index(), Index(5));
        assert_eq!(
            *node.membership(),
            Membership::with_voters([n(1), n(2)]),
            "the snapshot's configuration wins over the recovered one"
        );
    }
    let alone = start(recovered_with_snapshot(snapshot, &log, 9)).expect("no entries at all");
    assert_eq!(alone.last_log_id(), snapshot);
}

// An entry right after the snapshot with a lower term than the snapshot's last entry is
// out of order, as it would be after an entry of that term.
#[test]
fn recovery_refuses_an_entry_older_than_the_snapshot_after_it() {
    let recovered = recovered_with_snapshot(LogId::new(3, 5), &[1, 1, 2, 2, 3, 2, 2], 6);
    assert_eq!(
        start(recovered).err(),
        Some(RecoveryError::EntryTermOutOfOrder {
            index: Index(6),
            term: Term(2)
        })
    );
}

/// Delivers every message and makes every write durable, except on node `slow`, whose
/// writes stay pending, until nothing moves.
fn settle_except(cluster: &mut Cluster, slow: NodeId) {
    for _ in 0..10_000 {
        for id in cluster.ids() {
            if id != slow && cluster.is_up(id) {
                cluster.sync(id);
            }
        }
        if !cluster.deliver_next() {
            return;
        }
    }
    panic!("still moving after 10000 deliveries");
}

/// n3, lagging behind n1's compaction point, steps n1's snapshot S1 and then, before the
/// write storing S1 is durable, a newer snapshot S2: n1 compacted past S1 meanwhile, and a
/// heartbeat answer n3 gave just before stepping S1 reached n1 late, unpausing its probe.
/// Both of n3's writes are pending; every other write is durable. Returns the cluster, S1
/// and S2.
fn two_installs_pending() -> (Cluster, SnapshotMetadata, SnapshotMetadata) {
    let mut cluster = lagging_follower(200, 0, false);
    cluster.auto_sync = false;
    heartbeat_round_holding_snapshots(&mut cluster, n(1));
    let [first] = snapshots_in_flight(&cluster, n(1), n(3))
        .try_into()
        .expect("one snapshot in flight to n3");
    // The next heartbeat reaches n3 before the snapshot; its answer is slow.
    for _ in 0..1_000 {
        cluster.tick(n(1));
        if cluster
            .in_flight()
            .iter()
            .any(|message| is_from_to(message, n(1), n(3)) && !is_install_snapshot(message))
        {
            break;
        }
    }
    cluster.deliver_matching(|message| {
        is_from_to(message, n(1), n(3)) && !is_install_snapshot(message)
    });
    assert_eq!(
        cluster.hold_matching(|message| is_from_to(message, n(3), n(1))),
        1
    );
    cluster.deliver_matching(is_install_snapshot);
    assert!(cluster.server(n(3)).storage.has_pending());
    cluster.report_snapshot(n(1), n(3), SnapshotTransfer::Delivered);
    // n1 and n2 commit on and compact past the first snapshot.
    settle_except(&mut cluster, n(3));
    for number in 30..40 {
        cluster
            .propose(n(1), &command(number))
            .expect("the leader accepts");
        settle_except(&mut cluster, n(3));
    }
    let second = cluster
        .node(n(1))
        .snapshot()
        .cloned()
        .expect("n1 stored a snapshot");
    assert!(second.last_included.index > first.last_included.index);
    // The slow heartbeat answer unpauses the probe: n1 sends its newest snapshot.
    cluster.release_held();
    cluster.deliver_next();
    assert_eq!(
        snapshots_in_flight(&cluster, n(1), n(3)),
        vec![second.clone()]
    );
    cluster.deliver_matching(is_install_snapshot);
    assert_eq!(cluster.node(n(3)).snapshot(), None, "nothing durable yet");
    assert_eq!(actions_of(&cluster, n(3), "restore "), 0);
    (cluster, first, second)
}

/// The snapshots node `id` restored, by the trace.
fn restores(cluster: &Cluster, id: NodeId) -> Vec<String> {
    let prefix = format!("{id}: restore ");
    cluster
        .trace()
        .iter()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::to_string)
        .collect()
}

// Two installs pending on a slow disk, made durable one write at a time: the first is
// already replaced by the second on its way to storage, so only the second is restored;
// the follower then catches up.
#[test]
fn installs_made_durable_one_at_a_time_restore_only_the_newest() {
    let (mut cluster, first, second) = two_installs_pending();
    cluster.clear_trace();
    cluster.sync_one(n(3));
    assert_eq!(restores(&cluster, n(3)), Vec::<String>::new());
    assert_eq!(cluster.node(n(3)).snapshot(), Some(&first));
    cluster.sync_one(n(3));
    assert_eq!(restores(&cluster, n(3)), vec![second.to_string()]);
    assert_eq!(cluster.node(n(3)).snapshot(), Some(&second));
    assert_eq!(
        cluster.applied(n(3)),
        &cluster.applied(n(1))[..usize::try_from(second.last_included.index.0).expect("small")]
    );
    cluster.auto_sync = true;
    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
}

// A crash between the two writes leaves the first snapshot stored and not yet restored:
// the restarted node restores it before anything else, then catches up.
#[test]
fn crash_between_two_installs_restores_the_stored_one_on_restart() {
    let (mut cluster, first, _second) = two_installs_pending();
    cluster.sync_one(n(3));
    cluster.crash(n(3));
    cluster.clear_trace();
    cluster.restart(n(3));
    assert_eq!(restores(&cluster, n(3)), vec![first.to_string()]);
    assert_eq!(
        cluster.applied(n(3)),
        &cluster.applied(n(1))[..usize::try_from(first.last_included.index.0).expect("small")]
    );
    // The transport reports the second transfer delivered: the leader probes after it,
    // learns that n3 lacks it, and sends a snapshot again.
    cluster.report_snapshot(n(1), n(3), SnapshotTransfer::Delivered);
    cluster.auto_sync = true;
    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
}

// Two installs pending on a slow disk, acknowledged together by one `persisted` call (the
// later write replaced the first snapshot in storage), restore only the newest: the first
// is no longer stored anywhere.
#[test]
fn installs_made_durable_together_restore_only_the_newest() {
    let (mut cluster, _first, second) = two_installs_pending();
    cluster.clear_trace();
    cluster.sync(n(3));
    assert_eq!(restores(&cluster, n(3)), vec![second.to_string()]);
    assert_eq!(cluster.node(n(3)).snapshot(), Some(&second));
    cluster.auto_sync = true;
    cluster.run_until(50, |cluster| cluster.applied(n(3)) == cluster.applied(n(1)));
}

/// Four servers, voters {1, 2, 3}: leader n1 starts the joint change to voters {1, 2, 4};
/// the joint entry commits, and n2 learns so from a heartbeat, but the entry leaving the
/// joint configuration never leaves n1, which crashes. With `compact`, n2 first builds a
/// snapshot covering the joint entry (so its log no longer holds it). Then n2 is elected.
/// Returns the cluster and the joint entry's id.
fn joint_entry_committed_then_leader_lost(compact: bool) -> (Cluster, LogId) {
    let mut cluster =
        Cluster::with_membership(4, Membership::with_voters([n(1), n(2), n(3)]), |builder| {
            builder
                .snapshot_log_bytes(1 << 20)
                .compaction_trailing_entries(0)
        });
    cluster.elect(n(1));
    let joint = cluster
        .change_membership(n(1), &[1, 2, 4], &[])
        .expect("a change of two voters");
    let carries_leave = move |message: &Message| {
        message.from == n(1)
            && common::entries_of(message)
                .iter()
                .any(|entry| entry.index() > joint.index)
    };
    let deliver_but_the_exit = |cluster: &mut Cluster| {
        for _ in 0..10_000 {
            cluster.drop_matching(carries_leave);
            if !cluster.deliver_next() {
                return;
            }
        }
        panic!("still delivering after 10000 messages");
    };
    deliver_but_the_exit(&mut cluster);
    // A heartbeat round tells n2 the joint entry is committed.
    for _ in 0..2 {
        cluster.tick(n(1));
    }
    deliver_but_the_exit(&mut cluster);
    assert_eq!(cluster.node(n(1)).last_log_id().index, joint.index.next());
    assert_eq!(
        cluster.node(n(2)).last_log_id(),
        joint,
        "n2 lacks the exit entry"
    );
    assert_eq!(cluster.node(n(2)).commit_index(), joint.index);
    assert!(cluster.node(n(2)).membership().is_joint());
    if compact {
        let snapshot = cluster.snapshot(n(2)).expect("applied and newer");
        assert_eq!(snapshot.last_included, joint);
        assert!(snapshot.membership.is_joint());
        assert_eq!(cluster.node(n(2)).compacted_through(), joint);
    }
    cluster.crash(n(1));
    cluster.drop_matching(|message| message.from == n(1));
    cluster.elect(n(2));
    for _ in 0..20 {
        cluster.tick_all();
        cluster.deliver_all();
    }
    (cluster, joint)
}

// A new leader whose log holds a committed joint configuration leaves it (the control for
// the compacted case below).
#[test]
fn new_leader_leaves_a_joint_configuration_from_its_log() {
    let (cluster, _) = joint_entry_committed_then_leader_lost(false);
    let membership = cluster.node(n(2)).membership();
    assert!(!membership.is_joint(), "{membership:?}");
    assert_eq!(*membership, Membership::with_voters([n(1), n(2), n(4)]));
}

// A new leader whose committed joint configuration is known only from its snapshot (the
// joint entry was compacted) leaves it too, rather than staying joint forever and refusing
// every later change.
#[test]
fn new_leader_leaves_a_joint_configuration_from_its_snapshot() {
    let (mut cluster, _) = joint_entry_committed_then_leader_lost(true);
    assert_eq!(cluster.leader(), Some(n(2)));
    let membership = cluster.node(n(2)).membership().clone();
    assert!(!membership.is_joint(), "{membership:?}");
    assert_eq!(membership, Membership::with_voters([n(1), n(2), n(4)]));
    cluster
        .change_membership(n(2), &[2, 3, 4], &[])
        .expect("the joint configuration was left");
}
