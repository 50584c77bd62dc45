//! openraft's side, set up as its repository's `benchmarks/minimal`: three `Raft`s in one
//! process, an in-memory log store and state machine, and a network of direct function
//! calls into the target node's `Raft`; clients call `client_write` on the leader, which
//! resolves once the entry is applied.
//!
//! The stores are written here, minimal like the benchmark's own: the log is a `BTreeMap`
//! behind a mutex, acknowledged as soon as it is appended; the state machine counts the
//! commands applied and their bytes, as the raft-tokio side's does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::io;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use openraft::alias::{EntryOf, LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::{
    EntryResponder, IOFlushed, LogState, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder,
    RaftStateMachine,
};
use openraft::{Config, EntryPayload, OptionalSend, Raft, StoredMembership};

use crate::workload::{Cluster, Writer};

/// How openraft is configured, for the report: `benchmarks/minimal`'s settings.
pub(crate) const CONFIG_NOTE: &str = "`Config { election_timeout_min: 200, \
     election_timeout_max: 2000, purge_batch_size: 1024, max_payload_entries: 1024, \
     ..Default::default() }` as in `benchmarks/minimal` (heartbeat every 50 ms, snapshot \
     every 5,000 entries: the defaults); `OneshotResponder`; log in a `BTreeMap` behind a \
     mutex, acknowledged on append; network of direct calls into the target `Raft`";

/// A command: the client's bytes.
#[derive(Clone, Debug)]
pub(crate) struct Command(Bytes);

impl fmt::Display for Command {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "command of {} bytes", self.0.len())
    }
}

/// The types of this benchmark's openraft nodes: openraft's defaults but for the command,
/// the empty response and node, and the one-shot responder `benchmarks/minimal` uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Types;

impl openraft::RaftTypeConfig for Types {
    type D = Command;
    type R = ();
    type NodeId = u64;
    type Node = ();
    type Term = u64;
    type LeaderId = openraft::impls::leader_id_adv::LeaderId<u64, u64>;
    type Vote = openraft::impls::Vote<Self::LeaderId>;
    type Payload = EntryPayload<Command, u64, ()>;
    type Entry =
        openraft::Entry<<Self::LeaderId as openraft::vote::RaftLeaderId>::Committed, Self::Payload>;
    type Responder<T>
        = openraft::impls::OneshotResponder<Self, T>
    where
        T: OptionalSend + 'static;
    type Batch<T>
        = openraft::impls::InlineBatch<T>
    where
        T: OptionalSend + 'static;
    type AsyncRuntime = openraft::impls::TokioRuntime;
    type ErrorSource = openraft::impls::BoxedErrorSource;
}

/// A node's handle, with the state machine it runs.
type Node = Raft<Types, Arc<MachineStore>>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks already fails the run; the data stays
    // whole either way.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The log and the vote, in memory.
#[derive(Default)]
pub(crate) struct LogStore {
    inner: Mutex<LogData>,
}

#[derive(Default)]
struct LogData {
    vote: Option<VoteOf<Types>>,
    entries: BTreeMap<u64, EntryOf<Types>>,
    purged: Option<LogIdOf<Types>>,
}

impl RaftLogReader<Types> for Arc<LogStore> {
    async fn try_get_log_entries<Range>(
        &mut self,
        range: Range,
    ) -> Result<Vec<EntryOf<Types>>, io::Error>
    where
        Range: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend,
    {
        let data = lock(&self.inner);
        Ok(data
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<Types>>, io::Error> {
        Ok(lock(&self.inner).vote)
    }
}

impl RaftLogStorage<Types> for Arc<LogStore> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<Types>, io::Error> {
        let data = lock(&self.inner);
        let last = data
            .entries
            .values()
            .next_back()
            .map(|entry| entry.log_id())
            .or(data.purged);
        Ok(LogState {
            last_purged_log_id: data.purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self {
        Arc::clone(self)
    }

    async fn save_vote(&mut self, vote: &VoteOf<Types>) -> Result<(), io::Error> {
        lock(&self.inner).vote = Some(*vote);
        Ok(())
    }

    async fn append<Entries>(
        &mut self,
        entries: Entries,
        callback: IOFlushed<Types>,
    ) -> Result<(), io::Error>
    where
        Entries: IntoIterator<Item = EntryOf<Types>> + OptionalSend,
        Entries::IntoIter: OptionalSend,
    {
        {
            let mut data = lock(&self.inner);
            for entry in entries {
                data.entries.insert(entry.index(), entry);
            }
        }
        // In memory, so durable as soon as stored.
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last: Option<LogIdOf<Types>>) -> Result<(), io::Error> {
        let first_removed = last.map_or(0, |log_id| log_id.index() + 1);
        lock(&self.inner).entries.split_off(&first_removed);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<Types>) -> Result<(), io::Error> {
        let mut data = lock(&self.inner);
        data.purged = Some(log_id);
        data.entries = data.entries.split_off(&(log_id.index() + 1));
        Ok(())
    }
}

/// The state machine: what was applied, the membership, and the counts.
#[derive(Default)]
pub(crate) struct MachineStore {
    inner: Mutex<Machine>,
    snapshot: Mutex<Option<(SnapshotMetaOf<Types>, Vec<u8>)>>,
}

#[derive(Default)]
struct Machine {
    applied: Option<LogIdOf<Types>>,
    membership: StoredMembershipOf<Types>,
    commands: u64,
    bytes: u64,
}

impl Machine {
    fn encode(&self) -> Vec<u8> {
        let mut data = Vec::with_capacity(16);
        data.extend_from_slice(&self.commands.to_be_bytes());
        data.extend_from_slice(&self.bytes.to_be_bytes());
        data
    }
}

impl RaftSnapshotBuilder<Types> for Arc<MachineStore> {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<Types, Cursor<Vec<u8>>>, io::Error> {
        let (meta, data) = {
            let machine = lock(&self.inner);
            let meta = SnapshotMetaOf::<Types> {
                last_log_id: machine.applied,
                last_membership: machine.membership.clone(),
            };
            (meta, machine.encode())
        };
        *lock(&self.snapshot) = Some((meta.clone(), data.clone()));
        Ok(SnapshotOf::<Types, _> {
            meta,
            snapshot: Cursor::new(data),
        })
    }
}

impl RaftStateMachine<Types> for Arc<MachineStore> {
    type SnapshotData = Cursor<Vec<u8>>;
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<Types>>, StoredMembershipOf<Types>), io::Error> {
        let machine = lock(&self.inner);
        Ok((machine.applied, machine.membership.clone()))
    }

    async fn apply<Entries>(&mut self, mut entries: Entries) -> Result<(), io::Error>
    where
        Entries: Stream<Item = Result<EntryResponder<Types>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            {
                let mut machine = lock(&self.inner);
                machine.applied = Some(entry.log_id);
                match &entry.payload {
                    EntryPayload::Blank => {}
                    EntryPayload::Normal(command) => {
                        machine.commands += 1;
                        machine.bytes += command.0.len() as u64;
                    }
                    EntryPayload::Membership(membership) => {
                        machine.membership =
                            StoredMembership::new(Some(entry.log_id), membership.clone());
                    }
                }
            }
            if let Some(responder) = responder {
                responder.send(());
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        Arc::clone(self)
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<Types>,
        snapshot: Cursor<Vec<u8>>,
    ) -> Result<(), io::Error> {
        let data = snapshot.into_inner();
        {
            let mut machine = lock(&self.inner);
            let field = |range: std::ops::Range<usize>| {
                data.get(range)
                    .and_then(|bytes| bytes.try_into().ok())
                    .map_or(0, u64::from_be_bytes)
            };
            machine.applied = meta.last_log_id;
            machine.membership = meta.last_membership.clone();
            machine.commands = field(0..8);
            machine.bytes = field(8..16);
        }
        *lock(&self.snapshot) = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<Types, Cursor<Vec<u8>>>>, io::Error> {
        Ok(lock(&self.snapshot)
            .as_ref()
            .map(|(meta, data)| SnapshotOf::<Types, _> {
                meta: meta.clone(),
                snapshot: Cursor::new(data.clone()),
            }))
    }
}

/// The nodes by id: how a call reaches its target.
#[derive(Clone, Default)]
pub(crate) struct Router {
    nodes: Arc<Mutex<BTreeMap<u64, Node>>>,
}

impl RaftNetworkFactory<Types> for Router {
    type Network = Link;

    async fn new_client(&mut self, target: u64, _node: &()) -> Link {
        let target = lock(&self.nodes)
            .get(&target)
            .cloned()
            .expect("every member is registered before the cluster is initialized");
        Link { target }
    }
}

/// One node's connection to another: direct calls into its `Raft`.
pub(crate) struct Link {
    target: Node,
}

fn unreachable<Error: std::error::Error + 'static>(error: Error) -> RPCError<Types> {
    RPCError::Unreachable(Unreachable::new(&error))
}

impl RaftNetworkV2<Types> for Link {
    type SnapshotData = Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        request: AppendEntriesRequest<Types>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Types>, RPCError<Types>> {
        self.target
            .append_entries(request)
            .await
            .map_err(unreachable)
    }

    async fn vote(
        &mut self,
        request: VoteRequest<Types>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Types>, RPCError<Types>> {
        self.target.vote(request).await.map_err(unreachable)
    }

    async fn pre_vote(
        &mut self,
        request: VoteRequest<Types>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Types>, RPCError<Types>> {
        self.target.pre_vote(request).await.map_err(unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<Types>,
        snapshot: SnapshotOf<Types, Cursor<Vec<u8>>>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Types>, StreamingError<Types>> {
        self.target
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|fatal| StreamingError::Unreachable(Unreachable::new(&fatal)))
    }
}

/// Three running openraft nodes; node 0 leads, as in `benchmarks/minimal`.
pub(crate) struct OpenraftCluster {
    nodes: Vec<Node>,
    leader: Node,
}

/// Calls `client_write` on the leader.
#[derive(Clone)]
pub(crate) struct OpenraftWriter {
    leader: Node,
}

impl Writer for OpenraftWriter {
    async fn write(&self, payload: Bytes) {
        self.leader
            .client_write(Command(payload))
            .await
            .expect("the leader applies every write");
    }
}

impl Cluster for OpenraftCluster {
    type Writer = OpenraftWriter;

    async fn start() -> OpenraftCluster {
        let config = Config {
            election_timeout_min: 200,
            election_timeout_max: 2000,
            purge_batch_size: 1024,
            max_payload_entries: 1024,
            ..Default::default()
        };
        let config = Arc::new(config.validate().expect("a valid configuration"));
        let router = Router::default();
        let members: BTreeSet<u64> = (0..3).collect();
        let mut nodes = Vec::new();
        for id in &members {
            let node = Raft::new(
                *id,
                Arc::clone(&config),
                router.clone(),
                Arc::new(LogStore::default()),
                Arc::new(MachineStore::default()),
            )
            .await
            .expect("the node starts");
            nodes.push(node);
        }
        lock(&router.nodes).extend(members.iter().copied().zip(nodes.iter().cloned()));
        let leader = nodes[0].clone();
        leader
            .initialize(members)
            .await
            .expect("the cluster initializes");
        // Log index 1 is the initial membership: once every node applied it, node 0 leads
        // a cluster that has heard from it.
        for node in &nodes {
            node.wait(Some(Duration::from_secs(10)))
                .applied_index(Some(1), "the initial membership")
                .await
                .expect("every node applies the initial membership");
        }
        OpenraftCluster { nodes, leader }
    }

    fn writer(&self) -> OpenraftWriter {
        OpenraftWriter {
            leader: self.leader.clone(),
        }
    }

    async fn stop(self) {
        for node in self.nodes {
            let _ = node.shutdown().await;
        }
    }
}
