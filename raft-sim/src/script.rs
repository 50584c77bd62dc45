//! A deterministic in-process cluster with manual control, for scenario tests.
//!
//! Messages sit in one in-flight list until a test delivers, drops, duplicates or
//! reorders them; storage is an [`InMemoryStorage`] that makes writes durable either at
//! once (`auto_sync`) or when the test says so; nodes crash (losing unsynced writes) and
//! restart from what was durable. After every input the [`SafetyChecker`] runs, and a
//! violation panics the test with the trace so far.
//!
//! Each server's state machine is the list of entries it applied, so its snapshot is that
//! list: a snapshot is built when a node asks for one (or when a test calls
//! [`Cluster::snapshot`]), travels with the `InstallSnapshot` message, and is restored
//! by replacing the list.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use raft_core::{
    Action, Config, ConfigBuilder, Entry, Event, Index, LogId, LogWrite, Membership,
    MembershipError, Message, MessageBody, Node, NodeId, Proposal, ProposeError, ReadError, ReadId,
    Recovered, Role, SnapshotError, SnapshotMetadata, SnapshotTransfer, TransferError, Write,
    WriteId,
};

use crate::checker::{NodeView, SafetyChecker, Violation};
use crate::storage::InMemoryStorage;

/// The upper bound on deliveries in one `deliver_all`, so that a livelock fails the test
/// instead of hanging it.
pub const DELIVERIES_MAX: usize = 100_000;

/// A snapshot of the harness's state machine: every entry applied through its index.
pub type AppliedSnapshot = Vec<Entry>;

/// One server: its node (absent while crashed), storage and applied entries.
#[derive(Debug)]
pub struct Server {
    node: Option<Node>,
    /// Its storage.
    pub storage: InMemoryStorage<AppliedSnapshot>,
    /// Every entry its state machine applied, in order. The state machine is treated as
    /// durable: a restarted node resumes after the last applied entry.
    pub applied: Vec<Entry>,
    /// Snapshots built here or received, by last index, until a write stores them.
    staged_snapshots: BTreeMap<Index, AppliedSnapshot>,
    incarnation: u64,
}

impl Server {
    fn new(node: Node, storage: InMemoryStorage<AppliedSnapshot>, applied: Vec<Entry>) -> Server {
        Server {
            node: Some(node),
            storage,
            applied,
            staged_snapshots: BTreeMap::new(),
            incarnation: 0,
        }
    }
}

/// A cluster of nodes in one process, driven step by step.
pub struct Cluster {
    membership: Membership,
    servers: BTreeMap<NodeId, Server>,
    in_flight: VecDeque<Message>,
    configure: Box<dyn Fn(ConfigBuilder) -> ConfigBuilder>,
    /// Acknowledge every write as soon as it is issued.
    pub auto_sync: bool,
    /// Panic as soon as the checker finds a violation (the default). When false, the
    /// first violation is kept for [`Cluster::first_violation`] and the run goes on, so
    /// that a property test can report it as an ordinary failure.
    pub panic_on_violation: bool,
    first_violation: Option<Violation>,
    trace: Vec<String>,
    checker: SafetyChecker,
    /// Directed links (from, to) whose messages are dropped on delivery.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages taken out of flight until released.
    held: Vec<Message>,
    /// The data travelling with each `InstallSnapshot` in flight, by sender and index.
    snapshots_in_flight: BTreeMap<(NodeId, Index), AppliedSnapshot>,
    /// Build a snapshot whenever a node asks for one (the default).
    pub auto_snapshot: bool,
    /// Report each snapshot's delivery (or loss) to its sender as it happens (the
    /// default). When false, a test reports with [`Cluster::report_snapshot`].
    pub auto_report_snapshots: bool,
    /// Every event the nodes emitted since the last [`Cluster::take_events`].
    events: Vec<(NodeId, Event)>,
}

impl Cluster {
    /// A cluster of `size` nodes (ids 1..=size) with default settings and writes
    /// acknowledged at once.
    pub fn new(size: u64) -> Cluster {
        Cluster::with_config(size, |builder| builder)
    }

    /// A cluster whose node configurations pass through `configure`.
    pub fn with_config(
        size: u64,
        configure: impl Fn(ConfigBuilder) -> ConfigBuilder + 'static,
    ) -> Cluster {
        Cluster::with_membership(
            size,
            Membership::with_voters((1..=size).map(NodeId)),
            configure,
        )
    }

    /// A cluster of `size` servers (ids 1..=size) that all start from `membership`:
    /// servers it does not list start as outsiders, ready to be added by a
    /// configuration change.
    pub fn with_membership(
        size: u64,
        membership: Membership,
        configure: impl Fn(ConfigBuilder) -> ConfigBuilder + 'static,
    ) -> Cluster {
        let mut cluster = Cluster {
            membership: membership.clone(),
            servers: BTreeMap::new(),
            in_flight: VecDeque::new(),
            configure: Box::new(configure),
            auto_sync: true,
            panic_on_violation: true,
            first_violation: None,
            trace: Vec::new(),
            checker: SafetyChecker::new(),
            cut: BTreeSet::new(),
            held: Vec::new(),
            snapshots_in_flight: BTreeMap::new(),
            auto_snapshot: true,
            auto_report_snapshots: true,
            events: Vec::new(),
        };
        for id in 1..=size {
            let id = NodeId(id);
            let node = cluster.start_node(id, Recovered::new_cluster(membership.clone()), 0);
            cluster.servers.insert(
                id,
                Server::new(node, InMemoryStorage::default(), Vec::new()),
            );
        }
        cluster
    }

    /// A cluster whose nodes start from the given recovered states instead of a new
    /// cluster's empty one, e.g. to build divergent logs (Raft paper, Figure 7).
    ///
    /// Each node's storage is seeded with its recovered hard state and entries, all
    /// durable, so that a later crash and restart recovers them again. Entries up to a
    /// state's `applied` index count as already applied by its state machine. Every state
    /// must name the same membership, which also serves for restarts; node configurations
    /// pass through `configure` as in [`Cluster::with_config`]. Panics if a state is
    /// inconsistent or the states are unsafe together (the checker runs once at the end).
    pub fn from_recovered(
        states: Vec<(NodeId, Recovered)>,
        configure: impl Fn(ConfigBuilder) -> ConfigBuilder + 'static,
    ) -> Cluster {
        let membership = states
            .first()
            .map(|(_, recovered)| recovered.membership.clone())
            .expect("at least one node");
        let mut cluster = Cluster::with_config(0, configure);
        cluster.membership = membership.clone();
        for (id, recovered) in states {
            assert_eq!(
                recovered.membership, membership,
                "{id} recovered another membership"
            );
            let mut storage = InMemoryStorage::default();
            assert!(
                recovered.snapshot.is_none(),
                "{id}: start snapshots by building them"
            );
            storage.submit(
                Write {
                    id: WriteId(0),
                    hard_state: Some(recovered.hard_state),
                    snapshot: None,
                    log: Some(LogWrite {
                        first_index: Index(1),
                        entries: recovered.entries.clone(),
                    }),
                },
                None,
            );
            storage.sync();
            let applied_count = usize::try_from(recovered.applied.0).unwrap_or(usize::MAX);
            let applied = recovered
                .entries
                .iter()
                .take(applied_count)
                .cloned()
                .collect();
            let node = cluster.start_node(id, recovered, 0);
            let previous = cluster
                .servers
                .insert(id, Server::new(node, storage, applied));
            assert!(previous.is_none(), "{id} given twice");
        }
        cluster.assert_safe();
        cluster
    }

    fn start_node(&self, id: NodeId, recovered: Recovered, incarnation: u64) -> Node {
        let builder = (self.configure)(Config::builder(id).random_seed(id.0 * 1_000 + incarnation));
        let config = builder.build().expect("the test's configuration is valid");
        Node::new(config, recovered).expect("recovered state is consistent")
    }

    /// The ids of all servers.
    pub fn ids(&self) -> Vec<NodeId> {
        self.servers.keys().copied().collect()
    }

    /// Server `id`.
    pub fn server(&self, id: NodeId) -> &Server {
        &self.servers[&id]
    }

    /// Node `id`; panics if it is crashed.
    pub fn node(&self, id: NodeId) -> &Node {
        self.servers[&id].node.as_ref().expect("node is running")
    }

    /// Whether node `id` is running.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.servers[&id].node.is_some()
    }

    /// The entries node `id` applied.
    pub fn applied(&self, id: NodeId) -> &[Entry] {
        &self.servers[&id].applied
    }

    /// The commands node `id` applied, without blank and configuration entries.
    pub fn applied_commands(&self, id: NodeId) -> Vec<Bytes> {
        self.applied(id)
            .iter()
            .filter_map(|entry| match &entry.payload {
                raft_core::Payload::Command(bytes) => Some(bytes.clone()),
                raft_core::Payload::Blank | raft_core::Payload::Membership(_) => None,
            })
            .collect()
    }

    /// The running leader of the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.servers
            .iter()
            .filter_map(|(id, server)| server.node.as_ref().map(|node| (id, node)))
            .filter(|(_, node)| node.role() == Role::Leader)
            .max_by_key(|(_, node)| node.term())
            .map(|(id, _)| *id)
    }

    /// The one-line trace of every action and event so far.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// Forgets the trace so far.
    pub fn clear_trace(&mut self) {
        self.trace.clear();
    }

    /// Messages sent and not yet delivered or dropped, oldest first.
    pub fn in_flight(&self) -> &VecDeque<Message> {
        &self.in_flight
    }

    fn with_node(&mut self, id: NodeId, input: impl FnOnce(&mut Node)) {
        let Some(node) = self
            .servers
            .get_mut(&id)
            .and_then(|server| server.node.as_mut())
        else {
            return;
        };
        input(node);
        self.drain(id);
    }

    /// Drains node `id`'s actions: messages go in flight, writes to storage (acknowledged
    /// at once with `auto_sync`), committed entries to the state machine, snapshots are
    /// built, sent and restored. Then checks safety.
    fn drain(&mut self, id: NodeId) {
        let auto_sync = self.auto_sync;
        let auto_snapshot = self.auto_snapshot;
        let server = self.servers.get_mut(&id).expect("server exists");
        let Some(node) = server.node.as_mut() else {
            return;
        };
        while let Some(action) = node.poll_action() {
            self.trace.push(format!("{id}: {action}"));
            match action {
                Action::Persist(write) => {
                    let data = write.snapshot.as_ref().map(|snapshot| {
                        let index = snapshot.last_included.index;
                        server
                            .staged_snapshots
                            .remove(&index)
                            .expect("a stored snapshot was built or received first")
                    });
                    server.storage.submit(write, data);
                    if auto_sync && let Some(last) = server.storage.sync() {
                        node.persisted(last).expect("write was issued");
                    }
                }
                Action::Send(message) => self.in_flight.push_back(message),
                Action::SendSnapshot(message) => {
                    let MessageBody::InstallSnapshot { snapshot } = &message.body else {
                        unreachable!("SendSnapshot carries an InstallSnapshot");
                    };
                    let index = snapshot.last_included.index;
                    match server.storage.snapshot() {
                        Some((stored, data)) if stored == &**snapshot => {
                            self.snapshots_in_flight.insert((id, index), data.clone());
                            self.in_flight.push_back(message);
                        }
                        _ => {
                            self.trace
                                .push(format!("{id}: snapshot at {} no longer held", index.0));
                            node.snapshot_sent(message.to, SnapshotTransfer::Failed);
                        }
                    }
                }
                Action::Restore(snapshot) => {
                    let Some((stored, data)) = server.storage.snapshot() else {
                        panic!("{id} restores a snapshot it never stored");
                    };
                    assert_eq!(*stored, *snapshot, "{id} restores the stored snapshot");
                    server.applied = data.clone();
                    node.applied(snapshot.last_included.index)
                        .expect("the snapshot's index was handed out");
                }
                Action::Apply(entries) => {
                    let last = entries.last().map(Entry::index);
                    server.applied.extend(entries);
                    if let Some(last) = last {
                        node.applied(last).expect("entries were handed out");
                    }
                }
                Action::Event(event) => {
                    if matches!(event, Event::SnapshotWanted { .. }) && auto_snapshot {
                        let index = Index(server.applied.len() as u64);
                        if node.snapshot_built(index).is_ok() {
                            server
                                .staged_snapshots
                                .insert(index, server.applied.clone());
                        }
                    }
                    self.events.push((id, event));
                }
            }
        }
        self.assert_safe();
    }

    /// Removes and returns every event the nodes emitted since the last call, with the
    /// node that emitted it (read outcomes, role changes, snapshot requests...).
    pub fn take_events(&mut self) -> Vec<(NodeId, Event)> {
        std::mem::take(&mut self.events)
    }

    /// Builds a snapshot of node `id`'s state machine now, at its applied index.
    pub fn snapshot(&mut self, id: NodeId) -> Result<SnapshotMetadata, SnapshotError> {
        let server = self.servers.get_mut(&id).expect("server exists");
        let node = server.node.as_mut().expect("node is running");
        let index = Index(server.applied.len() as u64);
        let snapshot = node.snapshot_built(index)?;
        server
            .staged_snapshots
            .insert(index, server.applied.clone());
        self.drain(id);
        Ok(snapshot)
    }

    /// Tells `sender` how its snapshot transfer to `receiver` went (when
    /// `auto_report_snapshots` is off).
    pub fn report_snapshot(&mut self, sender: NodeId, receiver: NodeId, outcome: SnapshotTransfer) {
        self.trace
            .push(format!("{sender}: snapshot to {receiver} {outcome:?}"));
        self.with_node(sender, |node| node.snapshot_sent(receiver, outcome));
    }

    fn report_snapshot_automatically(
        &mut self,
        sender: NodeId,
        receiver: NodeId,
        outcome: SnapshotTransfer,
    ) {
        if self.auto_report_snapshots {
            self.report_snapshot(sender, receiver, outcome);
        }
    }

    /// Runs the safety checker now; returns the violation instead of panicking.
    pub fn check_safety(&mut self) -> Result<(), Violation> {
        let views: Vec<NodeView<'_>> = self
            .servers
            .iter()
            .map(|(id, server)| NodeView {
                id: *id,
                node: server.node.as_ref(),
                // The applied list is the whole history: a restore replaces it with the
                // snapshot's, which starts at index 1 too.
                restored: LogId::default(),
                applied: &server.applied,
            })
            .collect();
        self.checker.check(&views)
    }

    /// The first violation the automatic checks found while `panic_on_violation` was off.
    pub fn first_violation(&self) -> Option<&Violation> {
        self.first_violation.as_ref()
    }

    fn assert_safe(&mut self) {
        if let Err(violation) = self.check_safety() {
            if !self.panic_on_violation {
                self.first_violation.get_or_insert(violation);
                return;
            }
            let tail: Vec<&String> = self.trace.iter().rev().take(40).rev().collect();
            panic!("{violation}\nlast actions:\n{tail:#?}");
        }
    }

    /// One tick on node `id`.
    pub fn tick(&mut self, id: NodeId) {
        self.with_node(id, Node::tick);
    }

    /// One tick on every running node.
    pub fn tick_all(&mut self) {
        for id in self.ids() {
            self.tick(id);
        }
    }

    /// Makes node `id` start an election now.
    pub fn campaign(&mut self, id: NodeId) {
        self.with_node(id, |node| {
            node.campaign().expect("node may campaign");
        });
    }

    /// Proposes `command` on node `id`.
    pub fn propose(&mut self, id: NodeId, command: &[u8]) -> Result<Proposal, ProposeError> {
        let mut outcome = Err(ProposeError::NotLeader { leader_hint: None });
        let command = Bytes::copy_from_slice(command);
        self.with_node(id, |node| outcome = node.propose(command));
        outcome
    }

    /// Proposes every command on node `id` before draining its actions once, as a driver
    /// that batches client requests would; returns each proposal's outcome in order.
    pub fn propose_many(
        &mut self,
        id: NodeId,
        commands: &[&[u8]],
    ) -> Vec<Result<Proposal, ProposeError>> {
        let mut outcomes = Vec::new();
        self.with_node(id, |node| {
            for command in commands {
                outcomes.push(node.propose(Bytes::copy_from_slice(command)));
            }
        });
        outcomes
    }

    /// Asks node `id` for a linearizable read; the outcome comes as a `read-ready` or
    /// `read-aborted` event in the trace.
    pub fn read_index(&mut self, id: NodeId) -> Result<ReadId, ReadError> {
        let mut outcome = Err(ReadError::NoLeader);
        self.with_node(id, |node| outcome = node.read_index());
        outcome
    }

    /// Asks node `id` for `count` reads before draining its actions, so that they share
    /// one heartbeat round.
    pub fn read_index_many(&mut self, id: NodeId, count: usize) -> Vec<ReadId> {
        let mut ids = Vec::new();
        self.with_node(id, |node| {
            ids = (0..count).filter_map(|_| node.read_index().ok()).collect();
        });
        ids
    }

    /// Asks leader `id` to change the configuration to `voters` and `learners`.
    pub fn change_membership(
        &mut self,
        id: NodeId,
        voters: &[u64],
        learners: &[u64],
    ) -> Result<LogId, MembershipError> {
        let mut outcome = Err(MembershipError::NotLeader { leader_hint: None });
        self.with_node(id, |node| {
            outcome = node.change_membership(
                voters.iter().copied().map(NodeId),
                learners.iter().copied().map(NodeId),
            );
        });
        outcome
    }

    /// Asks leader `id` to hand leadership to `target`.
    pub fn transfer_leader(&mut self, id: NodeId, target: NodeId) -> Result<(), TransferError> {
        let mut outcome = Err(TransferError::NotLeader { leader_hint: None });
        self.with_node(id, |node| outcome = node.transfer_leader(target));
        outcome
    }

    /// Makes every queued write of node `id` durable and acknowledges it.
    pub fn sync(&mut self, id: NodeId) {
        let server = self.servers.get_mut(&id).expect("server exists");
        if let Some(last) = server.storage.sync()
            && let Some(node) = server.node.as_mut()
        {
            node.persisted(last).expect("write was issued");
        }
        self.drain(id);
    }

    /// Makes only the oldest queued write of node `id` durable and acknowledges it (a
    /// partial fsync: a crash now keeps that write and loses the later ones).
    pub fn sync_one(&mut self, id: NodeId) {
        let server = self.servers.get_mut(&id).expect("server exists");
        if let Some(write) = server.storage.sync_one()
            && let Some(node) = server.node.as_mut()
        {
            node.persisted(write).expect("write was issued");
        }
        self.drain(id);
    }

    /// Delivers one message to its receiver (a crashed receiver loses it, and so does a
    /// receiver cut off from the sender by a partition).
    pub fn deliver(&mut self, message: Message) {
        let (from, to) = (message.from, message.to);
        let snapshot = match &message.body {
            MessageBody::InstallSnapshot { snapshot } => Some(snapshot.last_included.index),
            _ => None,
        };
        if self.cut.contains(&(from, to)) {
            self.trace.push(format!("drop (partitioned) {message}"));
            if snapshot.is_some() {
                self.report_snapshot_automatically(from, to, SnapshotTransfer::Failed);
            }
            return;
        }
        self.trace.push(format!("deliver {message}"));
        let receiving = self
            .servers
            .get_mut(&to)
            .filter(|server| server.node.is_some());
        let Some(server) = receiving else {
            if snapshot.is_some() {
                self.report_snapshot_automatically(from, to, SnapshotTransfer::Failed);
            }
            return;
        };
        if let Some(index) = snapshot {
            // The data arrives with the message (a forged one without data is stepped
            // as is: a correct node only asks to store what it received).
            if let Some(data) = self.snapshots_in_flight.get(&(from, index)) {
                server.staged_snapshots.insert(index, data.clone());
            }
        }
        self.with_node(to, |node| node.step(message));
        if snapshot.is_some() {
            self.report_snapshot_automatically(from, to, SnapshotTransfer::Delivered);
        }
    }

    /// Hands `message` to node `id` whatever its `to` says, as a misrouting transport
    /// would (a crashed node loses it).
    pub fn deliver_to(&mut self, id: NodeId, message: Message) {
        self.trace.push(format!("deliver to {id}: {message}"));
        if self.servers.contains_key(&id) {
            self.with_node(id, |node| node.step(message));
        }
    }

    /// Delivers the oldest message in flight; false when none is.
    pub fn deliver_next(&mut self) -> bool {
        match self.in_flight.pop_front() {
            Some(message) => {
                self.deliver(message);
                true
            }
            None => false,
        }
    }

    /// Delivers messages (including those the deliveries cause) until none is in flight.
    /// Panics after [`DELIVERIES_MAX`] deliveries: the cluster would be livelocked.
    pub fn deliver_all(&mut self) {
        for _ in 0..DELIVERIES_MAX {
            if !self.deliver_next() {
                return;
            }
        }
        panic!("messages still in flight after {DELIVERIES_MAX} deliveries");
    }

    /// Delivers the in-flight messages that match, in order, leaving the others in flight.
    pub fn deliver_matching(&mut self, mut predicate: impl FnMut(&Message) -> bool) {
        let (chosen, kept): (VecDeque<Message>, VecDeque<Message>) = self
            .in_flight
            .drain(..)
            .partition(|message| predicate(message));
        self.in_flight = kept;
        for message in chosen {
            self.deliver(message);
        }
    }

    /// Drops the in-flight messages that match; returns how many. Dropped snapshots are
    /// reported failed to their senders.
    pub fn drop_matching(&mut self, mut predicate: impl FnMut(&Message) -> bool) -> usize {
        let (dropped, kept): (VecDeque<Message>, VecDeque<Message>) = self
            .in_flight
            .drain(..)
            .partition(|message| predicate(message));
        self.in_flight = kept;
        for message in &dropped {
            self.trace.push(format!("drop {message}"));
            if matches!(message.body, MessageBody::InstallSnapshot { .. }) {
                self.report_snapshot_automatically(
                    message.from,
                    message.to,
                    SnapshotTransfer::Failed,
                );
            }
        }
        dropped.len()
    }

    /// Cuts every link between the nodes in `side` and all the others, both ways.
    /// Messages crossing the cut are dropped when delivered, until [`Cluster::heal`].
    pub fn partition(&mut self, side: &[NodeId]) {
        let ids = self.ids();
        for inside in side {
            for outside in ids.iter().filter(|id| !side.contains(id)) {
                self.cut.insert((*inside, *outside));
                self.cut.insert((*outside, *inside));
            }
        }
        self.trace.push(format!("partition {side:?}"));
    }

    /// Cuts node `id` off from every other node.
    pub fn isolate(&mut self, id: NodeId) {
        self.partition(&[id]);
    }

    /// Cuts the one-way link from `from` to `to`: `to` stops hearing `from`, while `from`
    /// still hears `to`.
    pub fn cut_link(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
        self.trace.push(format!("cut {from}->{to}"));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.cut.clear();
        self.trace.push("heal".to_string());
    }

    /// Takes the in-flight messages that match out of flight, to be released later (a
    /// slow link); returns how many.
    pub fn hold_matching(&mut self, mut predicate: impl FnMut(&Message) -> bool) -> usize {
        let before = self.held.len();
        let mut kept = VecDeque::new();
        for message in self.in_flight.drain(..) {
            if predicate(&message) {
                self.held.push(message);
            } else {
                kept.push_back(message);
            }
        }
        self.in_flight = kept;
        self.held.len() - before
    }

    /// Puts every held message back in flight, after the ones already there.
    pub fn release_held(&mut self) {
        self.in_flight.extend(self.held.drain(..));
    }

    /// Removes and returns every message in flight.
    pub fn take_in_flight(&mut self) -> Vec<Message> {
        self.in_flight.drain(..).collect()
    }

    /// Puts a message in flight, as if sent (to reorder, duplicate or forge).
    pub fn inject(&mut self, message: Message) {
        self.in_flight.push_back(message);
    }

    /// Takes the in-flight message at `position` (modulo the count) out of flight,
    /// keeping the others in order; `None` when nothing is in flight.
    pub fn take_at(&mut self, position: usize) -> Option<Message> {
        if self.in_flight.is_empty() {
            return None;
        }
        let position = position % self.in_flight.len();
        self.in_flight.remove(position)
    }

    /// The running leader, if no running node has seen a higher term (an old leader that
    /// has not yet heard of a newer term does not count).
    pub fn current_leader(&self) -> Option<NodeId> {
        let leader = self.leader()?;
        let term = self.node(leader).term();
        let highest = self
            .servers
            .values()
            .filter_map(|server| server.node.as_ref().map(Node::term))
            .max()?;
        (term == highest).then_some(leader)
    }

    /// The last `lines` lines of the trace, one per line.
    pub fn trace_tail(&self, lines: usize) -> String {
        self.trace[self.trace.len().saturating_sub(lines)..].join("\n")
    }

    /// Crashes node `id`: it stops, and every write not yet durable is lost.
    pub fn crash(&mut self, id: NodeId) {
        let server = self.servers.get_mut(&id).expect("server exists");
        server.node = None;
        server.storage.crash();
        self.trace.push(format!("{id}: crash"));
    }

    /// Restarts node `id` from its durable storage.
    pub fn restart(&mut self, id: NodeId) {
        let server = &self.servers[&id];
        let incarnation = server.incarnation + 1;
        let applied = Index(server.applied.len() as u64);
        let recovered = server.storage.recovered(self.membership.clone(), applied);
        let node = self.start_node(id, recovered, incarnation);
        let server = self.servers.get_mut(&id).expect("server exists");
        server.node = Some(node);
        server.incarnation = incarnation;
        self.checker.restarted(id);
        self.trace.push(format!("{id}: restart"));
        self.drain(id);
    }

    /// Ticks every node and delivers everything, round after round, until `done` holds.
    /// Panics after `rounds_max` rounds.
    pub fn run_until(&mut self, rounds_max: usize, mut done: impl FnMut(&Cluster) -> bool) {
        for _ in 0..rounds_max {
            if done(self) {
                return;
            }
            self.tick_all();
            self.deliver_all();
        }
        assert!(
            done(self),
            "condition not reached within {rounds_max} rounds"
        );
    }

    /// Makes node `id` leader: it campaigns and every message is delivered.
    pub fn elect(&mut self, id: NodeId) {
        self.campaign(id);
        self.deliver_all();
        assert_eq!(self.node(id).role(), Role::Leader, "{id} won the election");
    }
}
