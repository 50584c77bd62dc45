//! Linearizable reads: ReadIndex rounds, batching, the new leader's wait, forwarding from
//! followers, aborts, and lease reads.

mod common;

use common::n;
use raft_core::{MessageBody, ReadId, Role};
use raft_tests::Cluster;

fn read_events(cluster: &Cluster, id: raft_core::NodeId) -> Vec<String> {
    cluster
        .trace()
        .iter()
        .filter(|line| line.starts_with(&format!("{id}: event read-")))
        .cloned()
        .collect()
}

fn heartbeats_sent(cluster: &Cluster) -> usize {
    cluster
        .trace()
        .iter()
        .filter(|line| line.contains(" Heartbeat commit="))
        .filter(|line| line.contains(": send "))
        .count()
}

fn read(cluster: &mut Cluster, id: raft_core::NodeId) -> ReadId {
    cluster.read_index(id).expect("the read is accepted")
}

// A read on the leader is confirmed by one heartbeat round and reports the commit index.
#[test]
fn leader_read_is_confirmed_by_a_heartbeat_round() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.propose(n(1), b"x").expect("leader accepts");
    cluster.deliver_all();
    cluster.clear_trace();
    let id = read(&mut cluster, n(1));
    assert!(
        read_events(&cluster, n(1)).is_empty(),
        "not before a quorum answers"
    );
    cluster.deliver_all();
    let commit = cluster.node(n(1)).commit_index();
    assert_eq!(
        read_events(&cluster, n(1)),
        [format!("n1: event read-ready {id} index={}", commit.0)]
    );
}

// Many reads made between two drains share a single heartbeat round.
#[test]
fn reads_are_batched_into_one_round() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.deliver_all();
    cluster.clear_trace();
    let ids = cluster.read_index_many(n(1), 50);
    cluster.deliver_all();
    assert_eq!(
        heartbeats_sent(&cluster),
        2,
        "one heartbeat per follower for 50 reads"
    );
    assert_eq!(read_events(&cluster, n(1)).len(), 50);
    assert_eq!(ids.len(), 50);
}

// A new leader holds reads until an entry of its own term commits.
#[test]
fn new_leader_holds_reads_until_its_first_commit() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.campaign(n(2));
    // Deliver only the votes: n2 leads, but its blank entry has not committed.
    cluster.deliver_matching(|message| {
        matches!(
            message.body,
            MessageBody::RequestVote { .. } | MessageBody::RequestVoteResponse { .. }
        )
    });
    cluster.deliver_matching(|message| {
        matches!(message.body, MessageBody::RequestVoteResponse { .. })
    });
    assert_eq!(cluster.node(n(2)).role(), Role::Leader);
    let term = cluster.node(n(2)).term();
    assert_ne!(
        cluster
            .node(n(2))
            .entry(cluster.node(n(2)).commit_index())
            .map(|entry| entry.term()),
        Some(term)
    );
    cluster.clear_trace();
    read(&mut cluster, n(2));
    assert_eq!(
        heartbeats_sent(&cluster),
        0,
        "no round before the first commit"
    );
    cluster.deliver_all();
    let events = read_events(&cluster, n(2));
    assert_eq!(events.len(), 1, "{events:?}");
    let commit = cluster.node(n(2)).commit_index();
    assert!(events[0].ends_with(&format!("index={}", commit.0)));
    assert_eq!(
        cluster.node(n(2)).entry(commit).map(|entry| entry.term()),
        Some(term)
    );
}

// A follower forwards its reads to the leader and reports the leader's index.
#[test]
fn follower_reads_are_forwarded() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.propose(n(1), b"x").expect("leader accepts");
    cluster.deliver_all();
    cluster.clear_trace();
    let id = read(&mut cluster, n(3));
    assert_eq!(id.node, n(3));
    cluster.deliver_all();
    let commit = cluster.node(n(1)).commit_index();
    assert_eq!(
        read_events(&cluster, n(3)),
        [format!("n3: event read-ready {id} index={}", commit.0)]
    );
}

// Reads pending on a leader that steps down are aborted, not left hanging, and so are reads
// a follower forwarded to a leader it stops following.
#[test]
fn reads_are_aborted_when_leadership_changes() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    cluster.deliver_all();
    let on_leader = read(&mut cluster, n(1));
    let on_follower = read(&mut cluster, n(2));
    cluster.drop_matching(|_| true);
    cluster.campaign(n(3));
    cluster.deliver_all();
    assert_eq!(cluster.node(n(3)).role(), Role::Leader);
    assert_eq!(
        read_events(&cluster, n(1)),
        [format!("n1: event read-aborted {on_leader}")]
    );
    assert_eq!(
        read_events(&cluster, n(2)),
        [format!("n2: event read-aborted {on_follower}")]
    );
}

// With the lease on, a leader whose quorum answered recently serves reads at once, without
// a heartbeat round; once the lease runs out, reads need a round again.
#[test]
fn lease_reads_skip_the_round() {
    let mut cluster = Cluster::with_config(3, |builder| builder.read_lease(true));
    cluster.elect(n(1));
    for _ in 0..2 {
        cluster.tick_all();
        cluster.deliver_all();
    }
    cluster.clear_trace();
    let id = read(&mut cluster, n(1));
    assert_eq!(heartbeats_sent(&cluster), 0);
    assert_eq!(
        read_events(&cluster, n(1)).len(),
        1,
        "served from the lease: {id}"
    );
    // Cut the followers off: the lease expires and reads wait for a round again.
    cluster.isolate(n(1));
    for _ in 0..9 {
        cluster.tick(n(1));
        cluster.drop_matching(|_| true);
    }
    cluster.clear_trace();
    read(&mut cluster, n(1));
    assert!(read_events(&cluster, n(1)).is_empty(), "the lease ran out");
}

// Without the lease every read waits for a round, however recent the last one.
#[test]
fn without_lease_every_read_takes_a_round() {
    let mut cluster = Cluster::new(3);
    cluster.elect(n(1));
    for _ in 0..2 {
        cluster.tick_all();
        cluster.deliver_all();
    }
    cluster.clear_trace();
    read(&mut cluster, n(1));
    assert!(read_events(&cluster, n(1)).is_empty());
    assert_eq!(heartbeats_sent(&cluster), 2);
}
