//! Clusters on an in-process network: elections, replication and reads without sockets; a
//! cut-off leader replaced and caught up; a cut-off follower brought back by a snapshot;
//! restarts under the same id; and the endpoint's delivery, drop and report rules.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use raft_core::{Config, Index, Message, MessageBody, NodeId, SnapshotTransfer, Term};
use raft_tokio::storage::MemoryLogStore;
use raft_tokio::transport::{InProcessNetwork, Inbound, JoinError, TransportCounters};
use raft_tokio::{
    ClientError, NodeOptions, RaftHandle, StartError, StopReason, Uncertainty, start,
};
use tokio::sync::mpsc;

mod common;

use common::cluster::{Register, agreed_leader, put};
use common::within;

const CLUSTER: u64 = 5;

/// Fast timers for tests: 10 ms ticks, elections after 10..20 ticks.
fn options(
    network: &InProcessNetwork,
    id: u64,
    members: u64,
    snapshot_bytes: usize,
) -> NodeOptions {
    let config = Config::builder(NodeId(id))
        .election_ticks(10, 20)
        .heartbeat_ticks(2)
        .snapshot_log_bytes(snapshot_bytes)
        .compaction_trailing_entries(4)
        .random_seed(id * 104_729)
        .build()
        .expect("valid configuration");
    let mut options =
        NodeOptions::in_process(config, CLUSTER, network.clone(), (1..=members).map(NodeId));
    options.tick = Duration::from_millis(10);
    options
}

/// `inline`: whether the state machine runs on the driver's task.
async fn start_node(
    network: &InProcessNetwork,
    id: u64,
    snapshot_bytes: usize,
    inline: bool,
) -> RaftHandle {
    start(
        options(network, id, 3, snapshot_bytes),
        MemoryLogStore::new(),
        Register {
            inline,
            ..Register::default()
        },
    )
    .await
    .expect("the node starts")
}

async fn start_cluster(
    network: &InProcessNetwork,
    snapshot_bytes: usize,
    inline: bool,
) -> Vec<RaftHandle> {
    let mut handles = Vec::new();
    for id in 1..=3 {
        handles.push(start_node(network, id, snapshot_bytes, inline).await);
    }
    handles
}

async fn shutdown_all(handles: &[RaftHandle]) {
    for handle in handles {
        handle.shutdown().await;
    }
}

// Three nodes with no socket between them elect one leader, replicate proposals with the
// state machine's responses, and answer linearizable reads on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_read_everywhere() {
    replicate_and_read_everywhere(false).await;
}

// The same with state machines that run on the drivers' tasks instead of threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_state_machines_replicate_and_read_everywhere() {
    replicate_and_read_everywhere(true).await;
}

async fn replicate_and_read_everywhere(inline: bool) {
    let network = InProcessNetwork::new();
    let handles = start_cluster(&network, 8 * 1024 * 1024, inline).await;
    assert_eq!(network.nodes().len(), 3);
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = agreed_leader(&all).await;
    for round in 0..100 {
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
            .expect("a linearizable read");
        assert_eq!(value, Bytes::from_static(b"99"), "read on {}", handle.id());
    }
    let follower = handles
        .iter()
        .find(|handle| handle.id() != leader.id())
        .expect("a follower");
    assert_eq!(
        follower.propose(put("x", "no")).await,
        Err(ClientError::NotLeader {
            leader: Some(leader.id()),
            address: Some(format!("in-process:{}", leader.id().0)),
        })
    );
    shutdown_all(&handles).await;
    assert!(
        network.nodes().is_empty(),
        "stopped nodes leave the network"
    );
}

// A leader cut off from the others cannot commit and is replaced; once reconnected it
// follows the new leader and catches up with what was written without it. A proposal
// made to it while it was cut off never takes effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_is_replaced_and_catches_up() {
    let network = InProcessNetwork::new();
    let handles = start_cluster(&network, 8 * 1024 * 1024, false).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let old_leader = agreed_leader(&all).await;
    old_leader
        .propose(put("k", "before"))
        .await
        .expect("committed");

    network.disconnect(old_leader.id());
    assert!(!network.is_connected(old_leader.id()));
    let stranded = old_leader
        .clone()
        .with_timeout(Duration::from_millis(300))
        .propose(put("k", "stranded"))
        .await;
    assert!(
        matches!(
            stranded,
            Err(ClientError::OutcomeUnknown(Uncertainty::Timeout) | ClientError::NotLeader { .. })
        ),
        "{stranded:?}"
    );
    let others: Vec<&RaftHandle> = handles
        .iter()
        .filter(|handle| handle.id() != old_leader.id())
        .collect();
    let new_leader = agreed_leader(&others).await;
    assert_ne!(new_leader.id(), old_leader.id());
    within(
        "a proposal to the new leader",
        new_leader.propose(put("k", "after")),
    )
    .await
    .expect("the two connected nodes commit");

    network.reconnect(old_leader.id());
    let everyone: Vec<&RaftHandle> = handles.iter().collect();
    let leader = agreed_leader(&everyone).await;
    assert_ne!(
        leader.id(),
        old_leader.id(),
        "the old leader's log is behind"
    );
    let value = within(
        "a read on the old leader",
        old_leader.read(Bytes::from_static(b"k")),
    )
    .await
    .expect("a linearizable read");
    assert_eq!(value, Bytes::from_static(b"after"));
    shutdown_all(&handles).await;
}

// A follower cut off while the others write and compact their logs comes back through a
// snapshot, sent over the in-process network as one piece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_follower_catches_up_from_a_snapshot() {
    catch_up_from_a_snapshot(false).await;
}

// The same with state machines that run on the drivers' tasks: snapshots are built and
// restored there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_state_machine_catches_up_from_a_snapshot() {
    catch_up_from_a_snapshot(true).await;
}

async fn catch_up_from_a_snapshot(inline: bool) {
    let network = InProcessNetwork::new();
    let handles = start_cluster(&network, 1_000, inline).await;
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = agreed_leader(&all).await;
    let follower = handles
        .iter()
        .find(|handle| handle.id() != leader.id())
        .expect("a follower")
        .clone();
    network.disconnect(follower.id());
    for round in 0..200 {
        within(
            "a proposal",
            leader.propose(put(&format!("key{}", round % 10), &round.to_string())),
        )
        .await
        .expect("two of three commit");
    }
    network.reconnect(follower.id());
    within("catching up", async {
        while follower
            .read_local(Bytes::from_static(b"key9"))
            .await
            .expect("a local read")
            != Bytes::from_static(b"199")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(leader.metrics().snapshots_sent.load(Ordering::Relaxed) > 0);
    assert!(
        follower
            .metrics()
            .snapshots_installed
            .load(Ordering::Relaxed)
            > 0
    );
    shutdown_all(&handles).await;
}

// An id runs at most once on a network; once its node stops, the id is free for a
// restart, which recovers from the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_runs_once_and_restarts_after_stopping() {
    let network = InProcessNetwork::new();
    let stores: Vec<MemoryLogStore> = (0..3).map(|_| MemoryLogStore::new()).collect();
    let mut handles = Vec::new();
    for id in 1..=3 {
        let store = stores[id as usize - 1].clone();
        handles.push(
            start(
                options(&network, id, 3, 8 * 1024 * 1024),
                store,
                Register::default(),
            )
            .await
            .expect("the node starts"),
        );
    }
    let twin = start(
        options(&network, 2, 3, 8 * 1024 * 1024),
        MemoryLogStore::new(),
        Register::default(),
    )
    .await;
    assert!(
        matches!(
            twin,
            Err(StartError::Network(JoinError::IdTaken(NodeId(2))))
        ),
        "{twin:?}"
    );
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = agreed_leader(&all).await;
    leader.propose(put("kept", "yes")).await.expect("committed");

    let restarted_position = handles
        .iter()
        .position(|handle| handle.id() != leader.id())
        .expect("a follower");
    let id = handles[restarted_position].id();
    handles[restarted_position].shutdown().await;
    handles[restarted_position] = start(
        options(&network, id.0, 3, 8 * 1024 * 1024),
        stores[id.0 as usize - 1].clone(),
        Register::default(),
    )
    .await
    .expect("the id is free again");
    let all: Vec<&RaftHandle> = handles.iter().collect();
    agreed_leader(&all).await;
    let value = within(
        "a read after restart",
        handles[restarted_position].read(Bytes::from_static(b"kept")),
    )
    .await
    .expect("a linearizable read");
    assert_eq!(value, Bytes::from_static(b"yes"));
    shutdown_all(&handles).await;
}

fn heartbeat(from: u64, to: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(1),
        body: MessageBody::Heartbeat {
            commit: Index(0),
            round: 1,
        },
    }
}

/// The inbound message of an install-snapshot from `from` to `to` (its snapshot is not
/// looked at by the transport).
fn install_snapshot(from: u64, to: u64) -> Message {
    let snapshot = MessageBody::InstallSnapshot {
        snapshot: Box::default(),
    };
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(1),
        body: snapshot,
    }
}

// The endpoint's rules, without nodes: a message goes straight to the receiver's queue;
// one to a full queue, an unknown node or across a cut is dropped and counted; a snapshot
// arrives whole and is reported delivered, or is reported failed.
#[tokio::test]
async fn endpoints_deliver_drop_and_report() {
    let network = InProcessNetwork::new();
    let one_counters = Arc::new(TransportCounters::default());
    let two_counters = Arc::new(TransportCounters::default());
    let (one_sender, mut one_inbound) = mpsc::channel(8);
    let (two_sender, mut two_inbound) = mpsc::channel(2);
    let one = network
        .join(NodeId(1), one_sender, Arc::clone(&one_counters))
        .expect("joins");
    let _two = network
        .join(NodeId(2), two_sender, Arc::clone(&two_counters))
        .expect("joins");

    one.send(heartbeat(1, 2));
    assert!(
        matches!(two_inbound.try_recv(), Ok(Inbound::Message(message)) if message == heartbeat(1, 2))
    );
    assert_eq!(one_counters.sent.load(Ordering::Relaxed), 1);
    assert_eq!(two_counters.received.load(Ordering::Relaxed), 1);

    for _ in 0..3 {
        one.send(heartbeat(1, 2));
    }
    one.send(heartbeat(1, 9));
    assert_eq!(
        one_counters.dropped.load(Ordering::Relaxed),
        2,
        "one over capacity, one unknown"
    );
    while two_inbound.try_recv().is_ok() {}

    network.disconnect(NodeId(2));
    one.send(heartbeat(1, 2));
    assert!(two_inbound.try_recv().is_err());
    assert_eq!(one_counters.dropped.load(Ordering::Relaxed), 3);
    one.send_snapshot(install_snapshot(1, 2), Bytes::from_static(b"state"));
    assert!(matches!(
        one_inbound.try_recv(),
        Ok(Inbound::SnapshotReport {
            to: NodeId(2),
            outcome: SnapshotTransfer::Failed
        })
    ));

    network.reconnect(NodeId(2));
    one.send_snapshot(install_snapshot(1, 2), Bytes::from_static(b"state"));
    match two_inbound.try_recv() {
        Ok(Inbound::Snapshot(message, data)) => {
            assert_eq!(message, install_snapshot(1, 2));
            assert_eq!(data, Bytes::from_static(b"state"));
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    assert!(matches!(
        one_inbound.try_recv(),
        Ok(Inbound::SnapshotReport {
            to: NodeId(2),
            outcome: SnapshotTransfer::Delivered
        })
    ));

    drop(one);
    assert_eq!(
        network.nodes().into_iter().collect::<Vec<_>>(),
        vec![NodeId(2)]
    );
}

// A leader whose storage fails after it has sent an entry to its followers cannot say
// whether the entry will commit: the next leader may commit it. Its waiting proposal is
// answered "outcome unknown", never "not applied", and here the next leader does commit it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_by_its_storage_answers_its_proposals_outcome_unknown() {
    let network = InProcessNetwork::new();
    let stores: Vec<MemoryLogStore> = (0..3).map(|_| MemoryLogStore::new()).collect();
    let mut handles = Vec::new();
    for (id, store) in (1..=3).zip(&stores) {
        let handle = start(
            options(&network, id, 3, 8 * 1024 * 1024),
            store.clone(),
            Register::default(),
        )
        .await
        .expect("the node starts");
        handles.push(handle);
    }
    let all: Vec<&RaftHandle> = handles.iter().collect();
    let leader = agreed_leader(&all).await.clone();
    within("a proposal", leader.propose(put("k", "before")))
        .await
        .expect("committed");
    let position = handles
        .iter()
        .position(|handle| handle.id() == leader.id())
        .expect("the leader is a member");
    stores[position].set_failing(true);
    let outcome = within("the failed proposal", leader.propose(put("k", "during"))).await;
    match &outcome {
        Err(
            error @ ClientError::OutcomeUnknown(Uncertainty::Stopped(StopReason::StorageFailed(_))),
        ) => assert!(error.outcome_unknown()),
        other => panic!("expected an unknown outcome after a storage failure, got {other:?}"),
    }
    // The followers had the entry: one of them leads next and commits it.
    let others: Vec<&RaftHandle> = handles
        .iter()
        .filter(|handle| handle.id() != leader.id())
        .collect();
    let next = agreed_leader(&others).await;
    let value = within("a read", next.read(Bytes::from_static(b"k")))
        .await
        .expect("a linearizable read");
    assert_eq!(value, Bytes::from_static(b"during"));
    shutdown_all(&handles).await;
}

// A store records whose data it holds: another node's store is refused at start (with
// both identities named), unless it holds nothing at all, which a start with a mistaken id
// may leave behind and which the right id then takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_another_node_is_refused_unless_it_holds_nothing() {
    use raft_core::{Entry, HardState, LogId, Payload};
    use raft_tokio::storage::{StoreIdentity, StoredState};

    let network = InProcessNetwork::new();
    let other = StoreIdentity {
        cluster_id: CLUSTER,
        node_id: NodeId(2),
        joined: false,
    };
    let used = MemoryLogStore::from_state(StoredState {
        identity: Some(other),
        hard_state: HardState {
            term: Term(1),
            vote: Some(NodeId(2)),
        },
        entries: vec![Entry {
            id: LogId::new(1, 1),
            payload: Payload::Blank,
        }],
        ..StoredState::default()
    });
    let refused = start(options(&network, 1, 3, 1 << 20), used, Register::default()).await;
    match refused {
        Err(error @ StartError::ForeignStore { .. }) => assert!(
            error
                .to_string()
                .contains("node 2 of cluster 5, not of node 1"),
            "{error}"
        ),
        Err(other) => panic!("expected a refusal of the foreign store, got {other}"),
        Ok(_) => panic!("a node started on another node's data"),
    }

    let untouched = MemoryLogStore::from_state(StoredState {
        identity: Some(other),
        ..StoredState::default()
    });
    let handle = start(
        options(&network, 1, 3, 1 << 20),
        untouched.clone(),
        Register::default(),
    )
    .await
    .expect("an untouched store is taken over");
    assert_eq!(
        untouched.state().identity.map(|identity| identity.node_id),
        Some(NodeId(1))
    );
    handle.shutdown().await;
}
