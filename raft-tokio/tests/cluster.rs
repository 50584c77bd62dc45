//! Whole clusters over real TCP on 127.0.0.1: elections, replication, linearizable reads
//! on any node, redirects, restarts from durable storage, snapshots, membership changes
//! and graceful shutdown.

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use raft_core::{Config, NodeId};
use raft_tokio::storage::{LogStore, MemoryLogStore, RedbLogStore};
use raft_tokio::transport::AddressBook;
use raft_tokio::{ClientError, NodeOptions, RaftHandle, Refusal, StopReason, Uncertainty, start};

mod common;

use common::cluster::{Register, leader_of, put};
use common::within;

/// Free ports on 127.0.0.1, one per node (bound and released at once: another process
/// could take one in between, which these tests accept).
fn free_addresses(count: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("bound"))
        .collect()
}

fn address_book(addresses: &[SocketAddr]) -> AddressBook {
    addresses
        .iter()
        .enumerate()
        .map(|(position, address)| (NodeId(position as u64 + 1), address.to_string()))
        .collect()
}

/// Fast timers for tests: 10 ms ticks, elections after 10..20 ticks.
fn options(
    id: u64,
    addresses: &[SocketAddr],
    peers: &AddressBook,
    snapshot_bytes: usize,
) -> NodeOptions {
    let config = Config::builder(NodeId(id))
        .election_ticks(10, 20)
        .heartbeat_ticks(2)
        .snapshot_log_bytes(snapshot_bytes)
        .compaction_trailing_entries(4)
        .random_seed(id * 7919)
        .build()
        .expect("valid configuration");
    let mut options = NodeOptions::new(config, 42, addresses[(id - 1) as usize], peers.clone());
    options.tick = Duration::from_millis(10);
    options
}

async fn start_node<S: LogStore>(options: NodeOptions, store: S) -> RaftHandle {
    start(options, store, Register::default())
        .await
        .expect("the node starts")
}

async fn start_memory_cluster(size: usize, snapshot_bytes: usize) -> Vec<RaftHandle> {
    let addresses = free_addresses(size);
    let peers = address_book(&addresses);
    let mut handles = Vec::new();
    for id in 1..=size as u64 {
        handles.push(
            start_node(
                options(id, &addresses, &peers, snapshot_bytes),
                MemoryLogStore::default(),
            )
            .await,
        );
    }
    handles
}

// Three nodes elect one leader, replicate proposals with the state machine's responses,
// and answer linearizable reads on every node, followers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_read_everywhere() {
    let handles = start_memory_cluster(3, 8 * 1024 * 1024).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = &handles[leader_of(&all).await];
    for round in 0..50 {
        let previous = within("a proposal", leader.propose(put("x", &round.to_string())))
            .await
            .expect("the leader commits");
        let expected = if round == 0 {
            String::new()
        } else {
            (round - 1).to_string()
        };
        assert_eq!(previous, Bytes::from(expected));
    }
    for handle in &handles {
        let value = within("a read", handle.read(Bytes::from_static(b"x")))
            .await
            .expect("linearizable read");
        assert_eq!(value, Bytes::from_static(b"49"), "read on {}", handle.id());
    }
    for handle in &handles {
        handle.shutdown().await;
    }
}

// A proposal to a follower is refused with the leader's id and address, so that a client
// can redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_redirect_to_the_leader() {
    let handles = start_memory_cluster(3, 8 * 1024 * 1024).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader_position = leader_of(&all).await;
    let leader = &handles[leader_position];
    let follower = &handles[(leader_position + 1) % 3];
    let refused = follower.propose(put("k", "v")).await;
    let expected_address = leader.addresses().get(&leader.id()).cloned();
    assert_eq!(
        refused,
        Err(ClientError::NotLeader {
            leader: Some(leader.id()),
            address: expected_address,
        })
    );
    for handle in &handles {
        handle.shutdown().await;
    }
}

/// Starts node `id` of a cluster over redb stores under `directory`.
async fn start_redb_node(
    directory: &Path,
    id: u64,
    addresses: &[SocketAddr],
    peers: &AddressBook,
    snapshot_bytes: usize,
) -> RaftHandle {
    let store = RedbLogStore::open(&directory.join(format!("node-{id}"))).expect("store opens");
    start_node(options(id, addresses, peers, snapshot_bytes), store).await
}

// With durable storage and compaction, a follower that was down while the others
// compacted their logs catches up, and a whole cluster shut down and started again keeps
// every committed write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_committed_writes_after_compaction() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let addresses = free_addresses(3);
    let peers = address_book(&addresses);
    let snapshot_bytes = 2_000;
    let mut handles = Vec::new();
    for id in 1..=3 {
        handles
            .push(start_redb_node(directory.path(), id, &addresses, &peers, snapshot_bytes).await);
    }
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader_position = leader_of(&all).await;
    let down_position = (leader_position + 1) % 3;
    handles[down_position].shutdown().await;
    let up: Vec<usize> = (0..3)
        .filter(|position| *position != down_position)
        .collect();
    let leader = handles[leader_position].clone();
    for round in 0..200 {
        within(
            "a proposal",
            leader.propose(put(&format!("key{}", round % 10), &round.to_string())),
        )
        .await
        .expect("two of three commit");
    }
    assert!(
        leader
            .metrics()
            .snapshots_built
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the leader compacted its log"
    );
    // The node that was down comes back and catches up (from the appends still queued
    // for it, or from a snapshot: which depends on timing).
    let down_id = (down_position + 1) as u64;
    handles[down_position] = start_redb_node(
        directory.path(),
        down_id,
        &addresses,
        &peers,
        snapshot_bytes,
    )
    .await;
    let returning = handles[down_position].clone();
    within("catching up", async {
        loop {
            let value = returning
                .read_local(Bytes::from_static(b"key9"))
                .await
                .expect("local read");
            if value == Bytes::from_static(b"199") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Everyone stops; everyone starts again from disk; the data is there.
    for position in up.iter().copied().chain([down_position]) {
        handles[position].shutdown().await;
    }
    let mut restarted = Vec::new();
    for id in 1..=3 {
        restarted
            .push(start_redb_node(directory.path(), id, &addresses, &peers, snapshot_bytes).await);
    }
    let all: Vec<&RaftHandle> = restarted.iter().collect();
    leader_of(&all).await;
    for handle in &restarted {
        let value = within(
            "a read after restart",
            handle.read(Bytes::from_static(b"key5")),
        )
        .await
        .expect("linearizable read");
        assert_eq!(value, Bytes::from_static(b"195"), "on {}", handle.id());
    }
    for handle in &restarted {
        handle.shutdown().await;
    }
}

// A fourth node joins a running cluster whose logs are compacted: its address is
// replicated, it catches up as a learner through a snapshot, becomes a voter, and serves
// reads; then another node is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_and_another_leaves() {
    let addresses = free_addresses(4);
    let founders = address_book(&addresses[..3]);
    let mut handles = Vec::new();
    let snapshot_bytes = 1_000;
    for id in 1..=3 {
        handles.push(
            start_node(
                options(id, &addresses, &founders, snapshot_bytes),
                MemoryLogStore::default(),
            )
            .await,
        );
    }
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = handles[leader_of(&all).await].clone();
    for round in 0..60 {
        leader
            .propose(put("before", &round.to_string()))
            .await
            .expect("committed");
    }
    let everyone = address_book(&addresses);
    let mut joining = options(4, &addresses, &everyone, snapshot_bytes);
    joining.join = true;
    let newcomer = start_node(joining, MemoryLogStore::default()).await;
    within(
        "adding a voter",
        leader.add_voter(NodeId(4), addresses[3].to_string(), Duration::from_secs(5)),
    )
    .await
    .expect("the node is added");
    let status = leader.status().await.expect("status");
    assert!(
        status.membership.voters.contains(&NodeId(4)),
        "{:?}",
        status.membership
    );
    let value = within(
        "a read on the newcomer",
        newcomer.read(Bytes::from_static(b"before")),
    )
    .await
    .expect("read");
    assert_eq!(value, Bytes::from_static(b"59"));
    assert!(
        newcomer
            .metrics()
            .snapshots_installed
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the newcomer was restored from a snapshot"
    );

    let leaving = handles
        .iter()
        .find(|handle| handle.id() != leader.id())
        .expect("a follower")
        .clone();
    within("removing a node", leader.remove(leaving.id()))
        .await
        .expect("the node is removed");
    let status = leader.status().await.expect("status");
    let expected: BTreeSet<NodeId> = [1, 2, 3, 4]
        .into_iter()
        .map(NodeId)
        .filter(|id| *id != leaving.id())
        .collect();
    assert_eq!(status.membership.voters, expected);
    leader
        .propose(put("after", "yes"))
        .await
        .expect("committed");
    for handle in handles.iter().chain([&newcomer]) {
        handle.shutdown().await;
    }
}

// A leader asked to shut down hands leadership to a follower first: the cluster has a
// new leader well before an election timeout would have produced one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_hands_leadership_over() {
    let handles = start_memory_cluster(3, 8 * 1024 * 1024).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader_position = leader_of(&all).await;
    let leader = handles[leader_position].clone();
    leader.propose(put("a", "1")).await.expect("committed");
    let others: Vec<&RaftHandle> = handles
        .iter()
        .filter(|handle| handle.id() != leader.id())
        .collect();
    let mut watch = others[0].watch();
    let old_term = watch.borrow().term;
    leader.shutdown().await;
    assert_eq!(leader.stopped().await, None, "a requested shutdown");
    within("a new leader", async {
        loop {
            let info = *watch.borrow_and_update();
            if info.term > old_term && info.leader.is_some_and(|id| id != leader.id()) {
                break;
            }
            watch.changed().await.expect("the node runs");
        }
    })
    .await;
    let new_leader = leader_of(&others).await;
    others[new_leader]
        .propose(put("a", "2"))
        .await
        .expect("the remaining two commit");
    assert_eq!(
        leader.propose(put("a", "3")).await,
        Err(ClientError::Stopped(StopReason::ShutDown))
    );
    for handle in others {
        handle.shutdown().await;
    }
}

// A leader cut off from every follower cannot commit: with a timeout, the proposal gives
// up with `Timeout` instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_without_a_quorum_times_out() {
    let handles = start_memory_cluster(3, 8 * 1024 * 1024).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader_position = leader_of(&all).await;
    let leader = handles[leader_position]
        .clone()
        .with_timeout(Duration::from_millis(100));
    leader.propose(put("a", "1")).await.expect("committed");
    for (position, handle) in handles.iter().enumerate() {
        if position != leader_position {
            handle.shutdown().await;
        }
    }
    let outcome = leader.propose(put("a", "2")).await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::OutcomeUnknown(Uncertainty::Timeout) | ClientError::NotLeader { .. })
        ),
        "{outcome:?}"
    );
    leader.shutdown().await;
}

// Requests that cannot work are refused at once with a reason: a command too large to
// ever fit in a peer frame, and the removal of a node that is not a member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_requests_are_refused() {
    let handles = start_memory_cluster(3, 8 * 1024 * 1024).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = handles[leader_of(&all).await].clone();
    let huge_bytes = 9 * 1024 * 1024;
    let huge = Bytes::from(vec![b'x'; huge_bytes]);
    let refused = leader.propose(huge).await;
    assert!(
        matches!(&refused, Err(ClientError::Refused(Refusal::TooLarge { limit, .. })) if *limit < huge_bytes),
        "{refused:?}"
    );
    let refused = leader.remove(NodeId(77)).await;
    assert!(
        refused == Err(ClientError::Refused(Refusal::NotMember(NodeId(77)))),
        "{refused:?}"
    );
    leader
        .propose(put("still", "working"))
        .await
        .expect("committed");
    for handle in &handles {
        handle.shutdown().await;
    }
}

// A node that does not catch up in time (here: never started) is not made a voter, which
// could cost the quorum: it stays a learner and the call times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_never_catches_up_stays_a_learner() {
    let handles = start_memory_cluster(3, 8 * 1024 * 1024).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = handles[leader_of(&all).await].clone();
    let absent = free_addresses(1)[0].to_string();
    let outcome = leader
        .add_voter(NodeId(9), absent, Duration::from_millis(200))
        .await;
    assert_eq!(
        outcome,
        Err(ClientError::OutcomeUnknown(Uncertainty::Timeout))
    );
    let status = leader.status().await.expect("status");
    assert!(status.membership.learners.contains(&NodeId(9)));
    assert!(!status.membership.voters.contains(&NodeId(9)));
    leader
        .propose(put("still", "available"))
        .await
        .expect("committed");
    for handle in &handles {
        handle.shutdown().await;
    }
}
