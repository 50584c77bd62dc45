//! raft-tokio's side: three nodes started with `raft_tokio::start` on one
//! `InProcessNetwork`, each with a `MemoryLogStore` and a counting state machine; clients
//! propose to the leader through its `RaftHandle`.

use std::time::Duration;

use bytes::Bytes;
use raft_core::{Config, Index, NodeId, Role};
use raft_tokio::storage::MemoryLogStore;
use raft_tokio::transport::InProcessNetwork;
use raft_tokio::{NodeOptions, RaftHandle, StateMachine, start};

use crate::workload::{Cluster, Writer};

/// How the nodes are configured, for the report.
pub(crate) const CONFIG_NOTE: &str = "ticks of 10 ms, heartbeat every 5 ticks (50 ms), \
     election timeout 20–200 ticks (200–2,000 ms), otherwise `Config::builder(id)` defaults; \
     `MemoryLogStore` (written on the driver's task); the state machine on the driver's task \
     (`StateMachine::runs_without_blocking`); `InProcessNetwork`";

/// The state machine: counts the commands applied and their bytes, as the openraft side's
/// does, so that applying costs the same little on both sides.
#[derive(Default)]
struct Counter {
    commands: u64,
    bytes: u64,
}

impl StateMachine for Counter {
    fn apply(&mut self, _index: Index, command: &[u8]) -> Bytes {
        self.commands += 1;
        self.bytes += command.len() as u64;
        Bytes::new()
    }

    fn query(&self, _query: &[u8]) -> Bytes {
        Bytes::copy_from_slice(&self.commands.to_be_bytes())
    }

    fn snapshot(&self) -> Bytes {
        let mut data = Vec::with_capacity(16);
        data.extend_from_slice(&self.commands.to_be_bytes());
        data.extend_from_slice(&self.bytes.to_be_bytes());
        Bytes::from(data)
    }

    fn restore(&mut self, snapshot: &[u8]) {
        let field = |range: std::ops::Range<usize>| {
            snapshot
                .get(range)
                .and_then(|bytes| bytes.try_into().ok())
                .map_or(0, u64::from_be_bytes)
        };
        self.commands = field(0..8);
        self.bytes = field(8..16);
    }

    /// Counting never blocks: it runs on the driver's task, not a thread of its own.
    fn runs_without_blocking(&self) -> bool {
        true
    }
}

/// Three running raft-tokio nodes and the one that leads.
pub(crate) struct RaftTokioCluster {
    handles: Vec<RaftHandle>,
    leader: RaftHandle,
}

/// Proposes to the leader.
#[derive(Clone)]
pub(crate) struct RaftTokioWriter {
    leader: RaftHandle,
}

impl Writer for RaftTokioWriter {
    async fn write(&self, payload: Bytes) {
        self.leader
            .propose(payload)
            .await
            .expect("the leader applies every write");
    }
}

impl Cluster for RaftTokioCluster {
    type Writer = RaftTokioWriter;

    async fn start() -> RaftTokioCluster {
        let network = InProcessNetwork::new();
        let members: Vec<NodeId> = (1..=3).map(NodeId).collect();
        let mut handles = Vec::new();
        for id in &members {
            let config = Config::builder(*id)
                .heartbeat_ticks(5)
                .election_ticks(20, 200)
                .random_seed(id.0)
                .build()
                .expect("a valid configuration");
            let mut options =
                NodeOptions::in_process(config, 1, network.clone(), members.iter().copied());
            options.tick = Duration::from_millis(10);
            let handle = start(options, MemoryLogStore::new(), Counter::default())
                .await
                .expect("the node starts");
            handles.push(handle);
        }
        let leader = agreed_leader(&handles).await;
        RaftTokioCluster { handles, leader }
    }

    fn writer(&self) -> RaftTokioWriter {
        RaftTokioWriter {
            leader: self.leader.clone(),
        }
    }

    async fn stop(self) {
        let shutdowns: Vec<_> = self
            .handles
            .into_iter()
            .map(|handle| tokio::spawn(async move { handle.shutdown().await }))
            .collect();
        for shutdown in shutdowns {
            let _ = shutdown.await;
        }
    }
}

/// Waits until one node leads and the others follow it.
async fn agreed_leader(handles: &[RaftHandle]) -> RaftHandle {
    loop {
        let roles: Vec<_> = handles
            .iter()
            .map(|handle| *handle.watch().borrow())
            .collect();
        if let Some(position) = roles.iter().position(|info| info.role == Role::Leader) {
            let leader = handles[position].id();
            if roles.iter().all(|info| info.leader == Some(leader)) {
                return handles[position].clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
