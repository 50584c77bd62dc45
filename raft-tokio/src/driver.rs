//! The driver: one task that owns the [`Node`] and runs the core's loop — inputs in
//! (ticks, peer messages, client commands, storage and apply completions), actions out
//! (writes to the storage thread, messages to the transport, entries to the apply thread).
//! Nothing else touches the node, so it needs no lock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use raft_core::{
    Action, Event, HardState, Index, LogId, Membership, MembershipError, Message, MessageBody,
    Node, NodeId, Proposal, ProposeError, ReadError, ReadId, Recovered, Role, SnapshotMetadata,
    SnapshotTransfer, Status, TransferError, WriteId,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use crate::handle::{ClientError, Refusal, RoleInfo, StartError, StopReason, Uncertainty};
use crate::machine::{
    Applier, ApplyDone, ApplyJob, LogCommand, ProposalReply, SnapshotEnvelope, StateMachine,
    spawn_apply_thread,
};
use crate::metrics::Metrics;
use crate::options::NodeOptions;
use crate::storage::{LogStore, StorageError, StoreIdentity, StoreWrite, StoredState};
use crate::transport::{AddressBook, Inbound, Network, PeerLink, Transport, TransportCounters};

/// The reason a node reports when it stopped because it was asked to.
pub(crate) const SHUTDOWN_REASON: &str = "shut down";

/// A request from a [`RaftHandle`](crate::RaftHandle).
pub(crate) enum Command {
    Propose {
        command: Bytes,
        reply: ProposalReply,
    },
    Read {
        query: Bytes,
        reply: ProposalReply,
    },
    ReadLocal {
        query: Bytes,
        reply: ProposalReply,
    },
    SetAddress {
        node: NodeId,
        address: String,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    ChangeMembership {
        expected: Option<Membership>,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    TransferLeader {
        target: NodeId,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Status {
        reply: oneshot::Sender<Result<Status, ClientError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What the storage thread reports.
enum StorageDone {
    /// Every write through this one is durable.
    Durable(WriteId),
    /// Storage failed; the node must stop.
    Failed(StorageError),
}

/// What [`start`] hands to the handle.
pub(crate) struct StartedParts {
    pub(crate) id: NodeId,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) roles: watch::Receiver<RoleInfo>,
    pub(crate) addresses: watch::Receiver<AddressBook>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) transport_counters: Arc<TransportCounters>,
    pub(crate) stopped: watch::Receiver<Option<String>>,
}

/// Recovers the store, starts the threads and the transport, and spawns the driver.
pub(crate) async fn start<M: StateMachine, S: LogStore>(
    options: NodeOptions,
    mut store: S,
    machine: M,
) -> Result<StartedParts, StartError> {
    let id = options.id();
    let claimed = StoreIdentity {
        cluster_id: options.cluster_id,
        node_id: id,
        joined: options.join,
    };
    let (store, stored) = tokio::task::spawn_blocking(move || {
        let stored = recover_identified(&mut store, claimed);
        (store, stored)
    })
    .await
    .map_err(|error| StartError::Thread(std::io::Error::other(error.to_string())))?;
    let IdentifiedStore {
        stored,
        identity,
        fresh,
    } = stored?;

    let others: BTreeSet<NodeId> = options
        .peers
        .keys()
        .copied()
        .filter(|peer| *peer != id)
        .collect();
    // How the node first started decides, not this start's options: a joining node that
    // restarts before the cluster added it must not become a founding voter.
    let recovered = if identity.joined {
        Recovered::joining(Membership::with_voters(others))
    } else {
        Recovered::new_cluster(Membership::with_voters(options.peers.keys().copied()))
    };
    let snapshot = stored.snapshot.clone();
    let recovered = Recovered {
        hard_state: stored.hard_state,
        snapshot: snapshot.as_ref().map(|(metadata, _)| metadata.clone()),
        entries: stored.entries,
        // The state machine is volatile: it is restored from the snapshot, then the log.
        applied: Index(0),
        fresh_storage: fresh,
        ..recovered
    };
    let node = Node::new(options.config.clone(), recovered)?;

    let mut addresses = options.peers.clone();
    if let Some((_, data)) = &snapshot
        && let Some(envelope) = SnapshotEnvelope::decode(data)
    {
        addresses.extend(envelope.addresses);
    }
    let (address_sender, address_receiver) = watch::channel(addresses.clone());

    let metrics = Arc::new(Metrics::default());
    let transport_counters = Arc::new(TransportCounters::default());
    let (inbound_sender, inbound) = mpsc::channel(1024);
    let transport = match &options.network {
        Network::Tcp => {
            let mut transport_config = options.transport.clone();
            transport_config.id = id;
            transport_config.cluster_id = options.cluster_id;
            transport_config.listen = options.listen;
            let transport = Transport::start(
                transport_config,
                address_receiver.clone(),
                inbound_sender,
                Arc::clone(&transport_counters),
            )
            .await
            .map_err(|source| StartError::Listen {
                address: options.listen,
                source,
            })?;
            PeerLink::Tcp(transport)
        }
        Network::InProcess(network) => PeerLink::InProcess(network.join(
            id,
            inbound_sender,
            Arc::clone(&transport_counters),
        )?),
    };

    let (storage_done_sender, storage_done) = mpsc::unbounded_channel();
    let storage = if store.writes_without_blocking() {
        Storage::Inline {
            store: Box::new(store),
            pending: Vec::new(),
        }
    } else {
        let (jobs, thread) = spawn_storage_thread(
            format!("raft-storage-{}", id.0),
            store,
            storage_done_sender,
            Arc::clone(&metrics),
        )
        .map_err(StartError::Thread)?;
        Storage::Thread { jobs, thread }
    };
    let (apply_done_sender, apply_done) = mpsc::unbounded_channel();
    let inline = machine.runs_without_blocking();
    let mut applier = Applier::new(machine, addresses, address_sender, apply_done_sender);
    let applying = if inline {
        Applying::Inline(Box::new(move |job| applier.run(job)))
    } else {
        let (jobs, thread) = spawn_apply_thread(format!("raft-apply-{}", id.0), applier)
            .map_err(StartError::Thread)?;
        Applying::Thread { jobs, thread }
    };

    let (commands_sender, commands) = mpsc::channel(4096);
    let (roles_sender, roles) = watch::channel(RoleInfo {
        role: node.role(),
        term: node.term(),
        leader: node.leader(),
    });
    let (stopped_sender, stopped) = watch::channel(None);
    let driver = Driver {
        node,
        options,
        transport: Some(transport),
        inbound,
        commands,
        storage: Some(storage),
        storage_done,
        applying: Some(applying),
        apply_done,
        addresses: address_receiver.clone(),
        roles: roles_sender,
        stopped: stopped_sender,
        metrics: Arc::clone(&metrics),
        proposals: BTreeMap::new(),
        reads: BTreeMap::new(),
        staged_snapshots: BTreeMap::new(),
        snapshot_writes: VecDeque::new(),
        current_snapshot: snapshot,
        snapshot_building: false,
        shutdown: None,
    };
    let span = tracing::info_span!("raft", node = id.0);
    if fresh {
        // Said once the start has succeeded, so that a failed start is one line.
        span.in_scope(|| {
            tracing::info!(
                "the store holds no entry: this node founds a new cluster, or, if its \
                 cluster has written entries already, holds back its vote until a leader has \
                 sent it the log (it may have lost its data: then remove it from the cluster \
                 and start it again as a joining node on a fresh store)"
            );
        });
    }
    tokio::spawn(driver.run().instrument(span));
    Ok(StartedParts {
        id,
        commands: commands_sender,
        roles,
        addresses: address_receiver,
        metrics,
        transport_counters,
        stopped,
    })
}

/// What a store recovered, checked against the node starting on it.
struct IdentifiedStore {
    stored: StoredState,
    /// The identity in force: `joined` is the one recorded at the first start.
    identity: StoreIdentity,
    /// The store holds no entry and no snapshot: it may replace a store that was lost.
    fresh: bool,
}

/// Recovers `store` and checks whose data it holds against `claimed`: a store of another
/// node or cluster is refused, unless it holds nothing at all; a store without an identity
/// gets `claimed` recorded (a new store, or one written before identities were recorded).
fn recover_identified<S: LogStore>(
    store: &mut S,
    claimed: StoreIdentity,
) -> Result<IdentifiedStore, StartError> {
    let stored = store.recover()?;
    let blank = stored.snapshot.is_none() && stored.entries.is_empty();
    match stored.identity {
        Some(identity)
            if identity.cluster_id == claimed.cluster_id && identity.node_id == claimed.node_id =>
        {
            if identity.joined != claimed.joined {
                tracing::info!(
                    joined = identity.joined,
                    "the store records how this node first started; the join option is \
                     taken from there"
                );
            }
            Ok(IdentifiedStore {
                stored,
                identity,
                fresh: blank && !identity.joined,
            })
        }
        // A store of another node that holds nothing at all (no vote, no entry) vouched
        // for nothing: a start with a mistaken id is put right by the next one.
        Some(identity) if !(blank && stored.hard_state == HardState::default()) => {
            Err(StartError::ForeignStore {
                stored: identity,
                expected: claimed,
            })
        }
        Some(_) | None => {
            store.record_identity(claimed)?;
            Ok(IdentifiedStore {
                stored,
                identity: claimed,
                fresh: blank && !claimed.joined,
            })
        }
    }
}

/// Runs `store` on a thread of its own: each batch is every write queued since the last
/// one, committed with one fsync, then acknowledged as a whole (group commit).
fn spawn_storage_thread<S: LogStore>(
    name: String,
    mut store: S,
    done: mpsc::UnboundedSender<StorageDone>,
    metrics: Arc<Metrics>,
) -> std::io::Result<(std_mpsc::Sender<StoreWrite>, JoinHandle<()>)> {
    /// The most writes committed in one batch, so that one acknowledgement is never
    /// held back behind an unbounded backlog.
    const BATCH_MAX: usize = 4096;
    let (jobs, receiver) = std_mpsc::channel::<StoreWrite>();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        while let Ok(first) = receiver.recv() {
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX
                && let Ok(more) = receiver.try_recv()
            {
                batch.push(more);
            }
            let last = batch.last().map(|write| write.write.id());
            let started = Instant::now();
            match store.write_batch(&batch) {
                Ok(()) => {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    metrics.record_fsync(batch.len() as u64, micros);
                    if let Some(last) = last {
                        let _ = done.send(StorageDone::Durable(last));
                    }
                }
                Err(error) => {
                    let _ = done.send(StorageDone::Failed(error));
                    return;
                }
            }
        }
    })?;
    Ok((jobs, thread))
}

/// Where the core's writes are carried out.
enum Storage {
    /// On a thread of its own, fed by a queue; batches are acknowledged through the
    /// driver's `storage_done` channel.
    Thread {
        jobs: std_mpsc::Sender<StoreWrite>,
        thread: JoinHandle<()>,
    },
    /// On the driver's own task, for a store whose writes never block (in memory): the
    /// writes issued while draining the node's actions are written as one batch, and
    /// acknowledged, before the driver waits for anything. That saves the two thread hops
    /// per write that a storage thread costs, which are most of a write's latency when
    /// the store itself takes no time.
    Inline {
        store: Box<dyn LogStore>,
        /// Writes issued and not yet written, oldest first.
        pending: Vec<StoreWrite>,
    },
}

/// Where the state machine runs.
enum Applying {
    /// On a thread of its own, fed by a queue; completions come back through the driver's
    /// `apply_done` channel.
    Thread {
        jobs: std_mpsc::Sender<ApplyJob>,
        thread: JoinHandle<()>,
    },
    /// On the driver's task, for a state machine that never blocks: each job is carried
    /// out as it is issued, and its completion (in `apply_done` all the same) is taken
    /// before the driver waits again.
    Inline(Box<dyn FnMut(ApplyJob) + Send>),
}

/// A requested shutdown in progress: leadership is being handed over first.
struct Stopping {
    reply: oneshot::Sender<()>,
    /// Ticks left before stopping anyway.
    ticks_left: u32,
}

struct Driver {
    node: Node,
    options: NodeOptions,
    transport: Option<PeerLink>,
    inbound: mpsc::Receiver<Inbound>,
    commands: mpsc::Receiver<Command>,
    /// `None` once stopping.
    storage: Option<Storage>,
    /// Acknowledgements of a storage thread (never any for inline storage).
    storage_done: mpsc::UnboundedReceiver<StorageDone>,
    /// `None` once stopping.
    applying: Option<Applying>,
    apply_done: mpsc::UnboundedReceiver<ApplyDone>,
    addresses: watch::Receiver<AddressBook>,
    roles: watch::Sender<RoleInfo>,
    stopped: watch::Sender<Option<String>>,
    metrics: Arc<Metrics>,
    /// Proposals (and membership and address changes) appended here, by index, with the
    /// id their entry got: answered when that index is applied.
    proposals: BTreeMap<Index, (LogId, ProposalReply)>,
    /// Linearizable reads waiting for the core to confirm them.
    reads: BTreeMap<ReadId, (Bytes, ProposalReply)>,
    /// Snapshot data built or received, until the write that stores it is issued.
    staged_snapshots: BTreeMap<Index, Bytes>,
    /// Snapshots in writes not yet durable, oldest first.
    snapshot_writes: VecDeque<(WriteId, SnapshotMetadata, Bytes)>,
    /// The newest durable snapshot and its data: what followers are sent, and what the
    /// state machine is restored from.
    current_snapshot: Option<(SnapshotMetadata, Bytes)>,
    /// The apply thread is building a snapshot.
    snapshot_building: bool,
    shutdown: Option<Stopping>,
}

impl Driver {
    async fn run(mut self) {
        let mut ticker = tokio::time::interval(self.options.tick);
        // A stalled process catches up on the ticks it missed, so that time as the core
        // counts it never lags real time (the lease depends on it).
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let inputs_max = self.options.inputs_per_wake_max.max(1);
        let outcome = loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.node.tick();
                    if let Some(stopping) = &mut self.shutdown {
                        stopping.ticks_left = stopping.ticks_left.saturating_sub(1);
                    }
                }
                done = self.storage_done.recv(), if self.storage_threaded() => {
                    let Some(done) = done else {
                        break Err("storage stopped".to_string());
                    };
                    if let Err(reason) = self.on_storage(done) {
                        break Err(reason);
                    }
                }
                done = self.apply_done.recv() => {
                    let Some(done) = done else {
                        break Err("the state machine stopped".to_string());
                    };
                    self.on_apply(done);
                    while let Ok(done) = self.apply_done.try_recv() {
                        self.on_apply(done);
                    }
                }
                Some(inbound) = self.inbound.recv() => {
                    self.on_inbound(inbound);
                    for _ in 1..inputs_max {
                        match self.inbound.try_recv() {
                            Ok(inbound) => self.on_inbound(inbound),
                            Err(_) => break,
                        }
                    }
                }
                command = self.commands.recv(), if self.shutdown.is_none() => {
                    // Every handle is gone: nobody can use this node any more.
                    let Some(command) = command else {
                        break Ok(());
                    };
                    self.on_command(command);
                    for _ in 1..inputs_max {
                        if self.shutdown.is_some() {
                            break;
                        }
                        match self.commands.try_recv() {
                            Ok(command) => self.on_command(command),
                            Err(_) => break,
                        }
                    }
                }
            }
            if let Err(reason) = self.drain_actions() {
                break Err(reason);
            }
            self.publish_role();
            if self.shutdown.as_ref().is_some_and(|stopping| {
                stopping.ticks_left == 0 || self.node.role() != Role::Leader
            }) {
                break Ok(());
            }
        };
        self.stop(outcome).await;
    }

    /// Stops the transport and the threads; writes already queued are made durable first.
    async fn stop(mut self, outcome: Result<(), String>) {
        let reason = match &outcome {
            Ok(()) => SHUTDOWN_REASON.to_string(),
            Err(reason) => {
                tracing::error!(%reason, "node stopped");
                reason.clone()
            }
        };
        self.transport = None;
        // Dropping the queue lets the storage thread finish what was queued and end.
        let storage_thread = match self.storage.take() {
            Some(Storage::Thread { jobs, thread }) => {
                drop(jobs);
                Some(thread)
            }
            Some(Storage::Inline { .. }) | None => None,
        };
        // Dropping the queue lets the apply thread finish what was queued and end.
        let apply_thread = match self.applying.take() {
            Some(Applying::Thread { jobs, thread }) => {
                drop(jobs);
                Some(thread)
            }
            Some(Applying::Inline(_)) | None => None,
        };
        let threads = [storage_thread, apply_thread];
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads.into_iter().flatten() {
                let _ = thread.join();
            }
        })
        .await;
        let stop = if outcome.is_ok() {
            StopReason::ShutDown
        } else {
            StopReason::StorageFailed(reason.clone())
        };
        // The waiting proposals are in the log: another leader may still commit them.
        let unknown = ClientError::OutcomeUnknown(Uncertainty::Stopped(stop.clone()));
        for (_, (_, reply)) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(unknown.clone()));
        }
        // A read changes nothing: it simply did not happen.
        for (_, (_, reply)) in std::mem::take(&mut self.reads) {
            let _ = reply.send(Err(ClientError::Stopped(stop.clone())));
        }
        self.stopped.send_replace(Some(reason));
        if let Some(stopping) = self.shutdown.take() {
            let _ = stopping.reply.send(());
        }
        tracing::info!("node stopped");
    }

    fn on_storage(&mut self, done: StorageDone) -> Result<(), String> {
        let mut durable = match done {
            StorageDone::Durable(id) => id,
            StorageDone::Failed(error) => return Err(format!("storage failed: {error}")),
        };
        // Acknowledgements are cumulative: only the newest matters.
        while let Ok(more) = self.storage_done.try_recv() {
            match more {
                StorageDone::Durable(id) => durable = durable.max(id),
                StorageDone::Failed(error) => return Err(format!("storage failed: {error}")),
            }
        }
        while self
            .snapshot_writes
            .front()
            .is_some_and(|(id, _, _)| *id <= durable)
        {
            if let Some((_, metadata, data)) = self.snapshot_writes.pop_front() {
                let newer = self.current_snapshot.as_ref().is_none_or(|(current, _)| {
                    current.last_included.index < metadata.last_included.index
                });
                if newer {
                    self.current_snapshot = Some((metadata, data));
                }
            }
        }
        self.node
            .persisted(durable)
            .map_err(|error| format!("storage acknowledged a write never issued: {error}"))
    }

    fn on_apply(&mut self, done: ApplyDone) {
        match done {
            ApplyDone::Applied(index) => {
                if let Err(error) = self.node.applied(index) {
                    tracing::error!(%error, "the state machine reported an index never handed out");
                }
                Metrics::set(&self.metrics.applied_index, index.0);
            }
            ApplyDone::Built { index, data } => {
                self.snapshot_building = false;
                match self.node.snapshot_built(index) {
                    Ok(_) => {
                        Metrics::bump(&self.metrics.snapshots_built);
                        self.staged_snapshots.insert(index, data);
                    }
                    Err(error) => tracing::debug!(%error, "snapshot discarded"),
                }
            }
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Message(message) => self.node.step(message),
            Inbound::Snapshot(message, data) => {
                if let MessageBody::InstallSnapshot { snapshot } = &message.body {
                    self.staged_snapshots
                        .insert(snapshot.last_included.index, data);
                }
                self.node.step(message);
            }
            Inbound::SnapshotReport { to, outcome } => self.node.snapshot_sent(to, outcome),
        }
    }

    fn not_leader(&self) -> ClientError {
        let leader = self.node.leader();
        let address = leader.and_then(|leader| self.addresses.borrow().get(&leader).cloned());
        ClientError::NotLeader { leader, address }
    }

    fn send_apply(&mut self, job: ApplyJob) {
        match &mut self.applying {
            Some(Applying::Thread { jobs, .. }) => {
                let queued = jobs.send(job);
                if queued.is_err() {
                    tracing::error!("the apply thread is gone");
                }
            }
            Some(Applying::Inline(run)) => run(job),
            None => {}
        }
    }

    /// The proposals waiting for the entries `first..=last`, in index order, taken out of
    /// `proposals` by splitting the map rather than one removal per entry.
    fn take_proposals(&mut self, first: Index, last: Index) -> Vec<(LogId, ProposalReply)> {
        let later = self.proposals.split_off(&last.next());
        let mut through_last = std::mem::replace(&mut self.proposals, later);
        let applied = through_last.split_off(&first);
        // Proposals below `first` are answered by a later restore, not by these entries.
        self.proposals.append(&mut through_last);
        applied.into_values().collect()
    }

    /// Appends `command` as leader and remembers who waits for it.
    fn propose_wrapped(&mut self, command: LogCommand, reply: ProposalReply) {
        if self.node.role() != Role::Leader {
            Metrics::bump(&self.metrics.proposals_refused);
            let _ = reply.send(Err(self.not_leader()));
            return;
        }
        let encoded = command.encode();
        // An entry must fit in one peer frame, or it could never be replicated.
        let limit = self.options.transport.frame_bytes_max / 2;
        if encoded.len() > limit {
            Metrics::bump(&self.metrics.proposals_refused);
            let _ = reply.send(Err(ClientError::Refused(Refusal::TooLarge {
                bytes: encoded.len(),
                limit,
            })));
            return;
        }
        match self.node.propose(encoded) {
            Ok(Proposal::Appended(id)) => {
                Metrics::bump(&self.metrics.proposals);
                self.proposals.insert(id.index, (id, reply));
            }
            Ok(Proposal::Forwarded { .. }) | Err(ProposeError::NotLeader { .. }) => {
                Metrics::bump(&self.metrics.proposals_refused);
                let _ = reply.send(Err(self.not_leader()));
            }
            Err(error) => {
                Metrics::bump(&self.metrics.proposals_refused);
                let _ = reply.send(Err(ClientError::Refused(Refusal::Proposal(error))));
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Propose { command, reply } => {
                self.propose_wrapped(LogCommand::Application(command), reply);
            }
            Command::Read { query, reply } => match self.node.read_index() {
                Ok(id) => {
                    self.reads.insert(id, (query, reply));
                }
                Err(ReadError::NoLeader) => {
                    let _ = reply.send(Err(self.not_leader()));
                }
                Err(error) => {
                    let _ = reply.send(Err(ClientError::Refused(Refusal::Read(error))));
                }
            },
            Command::ReadLocal { query, reply } => self.send_apply(ApplyJob::Query {
                after: Index(0),
                query,
                reply,
            }),
            Command::SetAddress {
                node,
                address,
                reply,
            } => {
                let (inner, answer) = oneshot::channel();
                self.propose_wrapped(LogCommand::Address { node, address }, inner);
                forward_unit(answer, reply);
            }
            Command::ChangeMembership {
                expected: Some(expected),
                reply,
                ..
            } if self.node.role() == Role::Leader && *self.node.membership() != expected => {
                let _ = reply.send(Err(ClientError::Refused(Refusal::ConfigurationChanged)));
            }
            Command::ChangeMembership {
                voters,
                learners,
                reply,
                ..
            } => match self.node.change_membership(voters, learners) {
                Ok(id) => {
                    let (inner, answer) = oneshot::channel();
                    self.proposals.insert(id.index, (id, inner));
                    forward_unit(answer, reply);
                }
                Err(MembershipError::NotLeader { .. }) => {
                    let _ = reply.send(Err(self.not_leader()));
                }
                Err(error) => {
                    let _ = reply.send(Err(ClientError::Refused(Refusal::Membership(error))));
                }
            },
            Command::TransferLeader { target, reply } => {
                let outcome = match self.node.transfer_leader(target) {
                    Ok(()) => Ok(()),
                    Err(TransferError::NotLeader { .. }) => Err(self.not_leader()),
                    Err(error) => Err(ClientError::Refused(Refusal::Transfer(error))),
                };
                let _ = reply.send(outcome);
            }
            Command::Status { reply } => {
                let _ = reply.send(Ok(self.node.status()));
            }
            Command::Shutdown { reply } => self.begin_shutdown(reply),
        }
    }

    /// A leader hands over to the most up-to-date voter first, so that the cluster need
    /// not wait for an election timeout; anyone else stops at once.
    fn begin_shutdown(&mut self, reply: oneshot::Sender<()>) {
        let election_ticks = self.options.config.election_ticks_min();
        let mut ticks_left = 0;
        if self.node.role() == Role::Leader {
            let status = self.node.status();
            let target = status
                .followers
                .iter()
                .filter(|follower| follower.voter)
                .max_by_key(|follower| follower.matched)
                .map(|follower| follower.id);
            if let Some(target) = target
                && self.node.transfer_leader(target).is_ok()
            {
                tracing::info!(target = target.0, "shutting down: handing leadership over");
                ticks_left = election_ticks;
            }
        }
        self.shutdown = Some(Stopping { reply, ticks_left });
    }

    /// Whether writes go to a storage thread (and come back through `storage_done`).
    fn storage_threaded(&self) -> bool {
        matches!(self.storage, Some(Storage::Thread { .. }))
    }

    /// Writes the writes pending for inline storage as one batch and acknowledges them to
    /// the node; whether there were any (their acknowledgement may have produced actions).
    fn write_inline(&mut self) -> Result<bool, String> {
        let Some(Storage::Inline { store, pending }) = &mut self.storage else {
            return Ok(false);
        };
        let Some(last) = pending.last().map(|write| write.write.id()) else {
            return Ok(false);
        };
        let started = Instant::now();
        let outcome = store.write_batch(pending);
        let count = pending.len() as u64;
        pending.clear();
        if let Err(error) = outcome {
            return Err(format!("storage failed: {error}"));
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.metrics.record_fsync(count, micros);
        self.on_storage(StorageDone::Durable(last))?;
        Ok(true)
    }

    /// Carries out every action the node has, in order, and with inline storage, the
    /// writes among them, until the node has nothing more to do.
    fn drain_actions(&mut self) -> Result<(), String> {
        loop {
            self.drain_polled_actions()?;
            let wrote = self.write_inline()?;
            // Completions of applies carried out inline just now, or of the apply thread:
            // taken now rather than on the next wake, as they may let the node act.
            let mut applied = false;
            while let Ok(done) = self.apply_done.try_recv() {
                self.on_apply(done);
                applied = true;
            }
            if !wrote && !applied {
                break;
            }
        }
        // Snapshot data not claimed by a write by now never will be (a stale delivery, a
        // snapshot refused as stale).
        self.staged_snapshots.clear();
        Ok(())
    }

    /// Carries out every action the node has now, in order.
    fn drain_polled_actions(&mut self) -> Result<(), String> {
        while let Some(action) = self.node.poll_action() {
            match action {
                Action::Persist(write) => {
                    let data = match &write.snapshot {
                        Some(snapshot) => {
                            let index = snapshot.last_included.index;
                            let Some(data) = self.staged_snapshots.remove(&index) else {
                                return Err(format!(
                                    "a write stores snapshot {} whose data is not held",
                                    snapshot.last_included
                                ));
                            };
                            self.snapshot_writes.push_back((
                                write.id(),
                                (**snapshot).clone(),
                                data.clone(),
                            ));
                            Some(data)
                        }
                        None => None,
                    };
                    let store_write = StoreWrite {
                        write,
                        snapshot_data: data,
                    };
                    match &mut self.storage {
                        Some(Storage::Thread { jobs, .. }) => {
                            if jobs.send(store_write).is_err() {
                                return Err("storage stopped".to_string());
                            }
                        }
                        Some(Storage::Inline { pending, .. }) => pending.push(store_write),
                        None => return Err("storage stopped".to_string()),
                    }
                }
                Action::Send(message) => {
                    if let Some(transport) = &self.transport {
                        transport.send(message);
                    }
                }
                Action::SendSnapshot(message) => self.send_snapshot(message),
                Action::Apply(entries) => {
                    let waiters = match (entries.first(), entries.last()) {
                        (Some(first), Some(last)) => {
                            self.take_proposals(first.index(), last.index())
                        }
                        _ => Vec::new(),
                    };
                    self.send_apply(ApplyJob::Apply { entries, waiters });
                }
                Action::Restore(snapshot) => {
                    let data = match &self.current_snapshot {
                        Some((current, data)) if *current == *snapshot => data.clone(),
                        _ => {
                            return Err(format!(
                                "asked to restore snapshot {} which is not stored",
                                snapshot.last_included
                            ));
                        }
                    };
                    Metrics::bump(&self.metrics.snapshots_installed);
                    // Entries the snapshot covers are never applied here: whether a proposal
                    // among them took effect is unknown to this node.
                    let covered = snapshot.last_included.index;
                    let later = self.proposals.split_off(&covered.next());
                    for (_, (_, reply)) in std::mem::replace(&mut self.proposals, later) {
                        let _ = reply.send(Err(ClientError::OutcomeUnknown(
                            Uncertainty::CoveredBySnapshot,
                        )));
                    }
                    self.send_apply(ApplyJob::Restore {
                        snapshot: *snapshot,
                        data,
                    });
                }
                Action::Event(event) => self.on_event(event),
            }
        }
        Ok(())
    }

    fn send_snapshot(&mut self, message: Message) {
        let MessageBody::InstallSnapshot { snapshot } = &message.body else {
            return;
        };
        let data = match &self.current_snapshot {
            Some((current, data)) if *current == **snapshot => Some(data.clone()),
            _ => None,
        };
        match (data, &self.transport) {
            (Some(data), Some(transport)) => {
                Metrics::bump(&self.metrics.snapshots_sent);
                transport.send_snapshot(message, data);
            }
            _ => self
                .node
                .snapshot_sent(message.to, SnapshotTransfer::Failed),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::ReadReady { id, index } => {
                if let Some((query, reply)) = self.reads.remove(&id) {
                    Metrics::bump(&self.metrics.reads);
                    self.send_apply(ApplyJob::Query {
                        after: index,
                        query,
                        reply,
                    });
                }
            }
            Event::ReadAborted { id } => {
                if let Some((_, reply)) = self.reads.remove(&id) {
                    let _ = reply.send(Err(ClientError::Superseded));
                }
            }
            Event::SnapshotWanted { .. } if !self.snapshot_building => {
                self.snapshot_building = true;
                self.send_apply(ApplyJob::Snapshot);
            }
            Event::CommitAdvanced { commit } => {
                Metrics::set(&self.metrics.commit_index, commit.0);
            }
            Event::TermChanged { term } => Metrics::set(&self.metrics.term, term.0),
            Event::RoleChanged { role } => {
                tracing::info!(%role, term = self.node.term().0, "role changed");
                Metrics::set(&self.metrics.is_leader, u64::from(role == Role::Leader));
            }
            Event::TransferAborted { target } => {
                tracing::info!(target = target.0, "leadership transfer abandoned");
            }
            Event::Removed { index } => {
                tracing::warn!(
                    configuration = index.0,
                    "removed from the cluster's configuration; no longer campaigning"
                );
            }
            _ => {}
        }
    }

    fn publish_role(&mut self) {
        let info = RoleInfo {
            role: self.node.role(),
            term: self.node.term(),
            leader: self.node.leader(),
        };
        self.roles.send_if_modified(|current| {
            let changed = *current != info;
            *current = info;
            changed
        });
    }
}

/// Answers `reply` with the outcome of a proposal, without its response bytes.
fn forward_unit(
    answer: oneshot::Receiver<Result<Bytes, ClientError>>,
    reply: oneshot::Sender<Result<(), ClientError>>,
) {
    tokio::spawn(async move {
        let outcome = match answer.await {
            Ok(outcome) => outcome.map(|_| ()),
            // The driver answers every proposal before it stops; one it dropped unanswered
            // was in the log.
            Err(_) => Err(ClientError::OutcomeUnknown(Uncertainty::Stopped(
                StopReason::ShutDown,
            ))),
        };
        let _ = reply.send(outcome);
    });
}
