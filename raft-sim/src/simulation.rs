//! The simulated world: nodes, disks, network, clients and faults, driven by one event
//! queue in virtual time and one seeded random generator.
//!
//! A run has two phases. In the *safety* phase the fault plan is active; the safety
//! checker runs after every event. Then every fault heals and the *liveness* phase begins:
//! within a bound of virtual time, every client must complete an operation invoked after
//! the heal. At the end the client history is checked for linearizability.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use bytes::Bytes;
use raft_core::{
    Action, Config, Entry, Event as NodeEvent, Index, LogId, Membership, Message, MessageBody,
    Node, NodeId, Payload, Proposal, ProposeError, ReadError, ReadId, Role, SnapshotTransfer,
    WriteId,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use raft_core::types::node_list;

use crate::checker::{NodeView, SafetyChecker, Violation};
use crate::faults::{FaultPlan, FaultProfile, MILLISECOND, SECOND, format_duration, unit};
use crate::history::{Call, Operation, Outcome, Return};
use crate::kv::{Command, KeyValueStore, KeyValueWorkload, StateMachine, Workload};
use crate::linearizability::{self, Verdict};
use crate::network::Network;
use crate::queue::EventQueue;
use crate::storage::InMemoryStorage;
use crate::trace::{Trace, TraceMode};

/// The settings of one run. Everything random is drawn from `seed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimulationOptions {
    /// The seed of every random draw.
    pub seed: u64,
    /// Cluster size.
    pub nodes: u64,
    /// Which faults to inject.
    pub faults: FaultProfile,
    /// Length of the safety phase (virtual nanoseconds).
    pub duration_nanos: u64,
    /// How long, after the heal, the cluster has to serve every client again.
    pub liveness_bound_nanos: u64,
    /// Concurrent clients, each with one operation at a time.
    pub clients: u64,
    /// Keys the workload touches.
    pub keys: u64,
    /// Nominal length of a tick; each node's clock drifts from it.
    pub tick_nanos: u64,
    /// Election timeout range, in ticks.
    pub election_ticks: (u32, u32),
    /// Heartbeat interval, in ticks.
    pub heartbeat_ticks: u32,
    /// How long a client waits for an answer before recording "unknown".
    pub client_timeout_nanos: u64,
    /// Each node's clock rate deviates from the nominal tick by up to this fraction
    /// (0.1 = ±10%), overriding the profile's draw. Above the lease's bound (±4.5% per node)
    /// reads use heartbeat rounds only.
    pub clock_drift: Option<f64>,
    /// A fault plan to use instead of the one the seed draws (the seed still drives every
    /// other random choice), as [`shrink`](crate::shrink()) produces.
    pub plan: Option<FaultPlan>,
}

impl Default for SimulationOptions {
    fn default() -> SimulationOptions {
        SimulationOptions {
            seed: 0,
            nodes: 5,
            faults: FaultProfile::All,
            duration_nanos: 20 * SECOND,
            liveness_bound_nanos: 20 * SECOND,
            clients: 5,
            keys: 5,
            tick_nanos: 10 * MILLISECOND,
            election_ticks: (15, 30),
            heartbeat_ticks: 1,
            client_timeout_nanos: SECOND,
            clock_drift: None,
            plan: None,
        }
    }
}

impl SimulationOptions {
    /// The arguments of `raft-sim replay` that reproduce a run of these options exactly
    /// (with the built-in application): the common settings always, the advanced ones when
    /// they differ from the default, and the fault plan when it is explicit.
    pub fn replay_arguments(&self) -> String {
        let mut line = format!(
            "replay --seed {} --nodes {} --faults {} --duration {} --liveness-bound {} --clients {} --keys {}",
            self.seed,
            self.nodes,
            self.faults,
            format_duration(self.duration_nanos),
            format_duration(self.liveness_bound_nanos),
            self.clients,
            self.keys
        );
        let defaults = SimulationOptions::default();
        if self.tick_nanos != defaults.tick_nanos {
            line.push_str(&format!(" --tick {}", format_duration(self.tick_nanos)));
        }
        if self.election_ticks != defaults.election_ticks {
            let (minimum, maximum) = self.election_ticks;
            line.push_str(&format!(" --election-ticks {minimum}..{maximum}"));
        }
        if self.heartbeat_ticks != defaults.heartbeat_ticks {
            line.push_str(&format!(" --heartbeat-ticks {}", self.heartbeat_ticks));
        }
        if self.client_timeout_nanos != defaults.client_timeout_nanos {
            line.push_str(&format!(
                " --client-timeout {}",
                format_duration(self.client_timeout_nanos)
            ));
        }
        if let Some(drift) = self.clock_drift {
            // Rounded, so that the percent the user typed prints back as typed (and parses
            // back to the same fraction).
            let percent = format!("{:.9}", drift * 100.0);
            let percent = percent.trim_end_matches('0').trim_end_matches('.');
            line.push_str(&format!(" --clock-drift {percent}"));
        }
        if let Some(plan) = &self.plan {
            let json = serde_json::to_string(plan).unwrap_or_default();
            line.push_str(&format!(" --plan '{json}'"));
        }
        line
    }

    /// Checks the options; the error is one line naming the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 15 {
            return Err(format!(
                "--nodes must be between 1 and 15, got {}",
                self.nodes
            ));
        }
        if self.clients == 0 {
            return Err("--clients must be at least 1".to_string());
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".to_string());
        }
        if self.tick_nanos == 0 {
            return Err("--tick must be greater than zero".to_string());
        }
        if let Some(drift) = self.clock_drift
            && !(0.0..0.5).contains(&drift)
        {
            return Err(format!(
                "--clock-drift must be at least 0% and below 50%, got {:.1}%",
                drift * 100.0
            ));
        }
        if self.duration_nanos == 0 || self.liveness_bound_nanos == 0 {
            return Err("--duration and --liveness-bound must be greater than zero".to_string());
        }
        let (minimum, maximum) = self.election_ticks;
        if minimum <= self.heartbeat_ticks || maximum <= minimum {
            return Err(format!(
                "election ticks {minimum}..{maximum} must be a non-empty range above the heartbeat ({} ticks)",
                self.heartbeat_ticks
            ));
        }
        Ok(())
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// A Raft safety property broke.
    Safety {
        /// The property.
        property: String,
        /// What was seen.
        detail: String,
    },
    /// The healed cluster did not serve every client within the bound.
    Liveness {
        /// What was missing.
        detail: String,
    },
    /// The client history has no linearization.
    Linearizability {
        /// The key and the explanation.
        detail: String,
    },
}

impl Failure {
    /// A short name of the failure's kind.
    pub fn kind(&self) -> &str {
        match self {
            Failure::Safety { property, .. } => property,
            Failure::Liveness { .. } => "liveness",
            Failure::Linearizability { .. } => "linearizability",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Safety { property, detail } => {
                write!(formatter, "{property} violated: {detail}")
            }
            Failure::Liveness { detail } => write!(formatter, "liveness failure: {detail}"),
            Failure::Linearizability { detail } => {
                write!(formatter, "history not linearizable: {detail}")
            }
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statistics {
    /// Events processed.
    pub events: u64,
    /// Terms that had a leader.
    pub elections: u64,
    /// Entries known committed.
    pub committed: u64,
    /// Client operations that completed with a result.
    pub operations_ok: u64,
    /// Client operations that certainly did not happen.
    pub operations_failed: u64,
    /// Client operations whose outcome is unknown.
    pub operations_unknown: u64,
    /// Virtual time simulated.
    pub simulated_nanos: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Pauses injected.
    pub pauses: u64,
    /// Partitions and clogs injected.
    pub network_faults: u64,
    /// Snapshots the state machines built for compaction.
    pub snapshots_built: u64,
    /// Snapshots leaders sent to followers behind their compaction point.
    pub snapshots_sent: u64,
    /// State machines restored from a snapshot (after an install, or a restart).
    pub snapshots_restored: u64,
    /// 1 when the linearizability search ran out of budget on some key (the history is
    /// then neither confirmed nor refuted), else 0.
    pub linearizability_inconclusive: u64,
}

/// The result of one run.
#[derive(Debug)]
pub struct Report {
    /// The options it ran with.
    pub options: SimulationOptions,
    /// The fault plan drawn from the seed.
    pub plan: FaultPlan,
    /// `None` when every check passed.
    pub failure: Option<Failure>,
    /// Counters.
    pub statistics: Statistics,
    /// The client history.
    pub history: Vec<Operation>,
    /// The trace (its lines when kept, and its hash).
    pub trace: Trace,
}

/// A reply from a node to a client.
#[derive(Clone, Debug)]
enum Reply {
    Done(Return),
    Redirect(Option<NodeId>),
    Failed,
}

#[derive(Debug)]
enum Event {
    Tick {
        node: NodeId,
        incarnation: u64,
    },
    Deliver(Message),
    /// An `InstallSnapshot` arriving with the snapshot's data.
    DeliverSnapshot(Message, Bytes),
    /// The transport tells a leader how its snapshot transfer went.
    SnapshotReport {
        node: NodeId,
        incarnation: u64,
        follower: NodeId,
        outcome: SnapshotTransfer,
    },
    DiskDone {
        node: NodeId,
        incarnation: u64,
        write: WriteId,
    },
    ClientArrive {
        node: NodeId,
        client: u64,
        operation: u64,
        call: Call,
    },
    ClientReply {
        client: u64,
        operation: u64,
        reply: Reply,
    },
    ClientTimeout {
        client: u64,
        operation: u64,
    },
    ClientNext {
        client: u64,
    },
    CrashTick,
    Restart {
        node: NodeId,
        incarnation: u64,
    },
    PauseTick,
    Resume {
        node: NodeId,
        incarnation: u64,
    },
    NetworkTick,
    TransferTick,
    MembershipTick,
    Reconnect,
    Heal,
}

/// One simulated server: the node, its disk, its state machine.
struct Server {
    id: NodeId,
    node: Option<Node>,
    storage: InMemoryStorage,
    disk_busy_until: u64,
    incarnation: u64,
    machine: Box<dyn StateMachine>,
    /// The snapshot the state machine was last restored from (`0.0`: none).
    restored: LogId,
    /// The entries applied since `restored`.
    applied: Vec<Entry>,
    /// Snapshots built here or received, by last index, until a write stores them.
    staged_snapshots: BTreeMap<Index, Bytes>,
    /// Proposals this node appended for clients, by index.
    pending: BTreeMap<Index, (LogId, u64, u64)>,
    /// Reads waiting for the node to confirm them: client, operation, call.
    reads: BTreeMap<ReadId, (u64, u64, Call)>,
    /// Confirmed reads waiting for the replica to apply their index.
    ready_reads: Vec<(Index, u64, u64, Call)>,
    tick_nanos: u64,
    paused: bool,
    /// Ticks the node's timer should have fired while the process was paused.
    missed_ticks: u64,
    backlog: VecDeque<Event>,
}

/// A client's operation in progress.
struct CurrentOperation {
    operation: u64,
    call: Call,
    invoke_time: u64,
}

struct Client {
    id: u64,
    next_operation: u64,
    current: Option<CurrentOperation>,
    target: NodeId,
    attempts: u32,
    served_after_heal: bool,
}

/// Builds the state machine each node (and each restart) starts with.
pub type MachineFactory = Box<dyn Fn() -> Box<dyn StateMachine>>;

/// A simulated cluster under faults. Build it with [`Simulation::new`] (the built-in
/// key-value application) or [`Simulation::with_application`], then [`Simulation::run`].
pub struct Simulation {
    options: SimulationOptions,
    plan: FaultPlan,
    random: ChaCha8Rng,
    now: u64,
    queue: EventQueue<Event>,
    servers: Vec<Server>,
    membership: Membership,
    network: Network,
    clients: Vec<Client>,
    machine_factory: MachineFactory,
    workload: Box<dyn Workload>,
    checker: SafetyChecker,
    /// The result of each applied index, as the first replica computed it: every replica
    /// must compute the same (state machines must be deterministic).
    results: BTreeMap<Index, Return>,
    history: Vec<Operation>,
    trace: Trace,
    statistics: Statistics,
    heal_time: Option<u64>,
    failure: Option<Failure>,
    finished: bool,
}

/// Records a trace line only when the trace is on, so that sweeps skip the formatting.
macro_rules! trace {
    ($simulation:expr, $($argument:tt)*) => {
        if $simulation.trace.enabled() {
            let now = $simulation.now;
            $simulation.trace.record(now, format_args!($($argument)*));
        }
    };
}

impl Simulation {
    /// A simulation of the built-in key-value store and workload.
    pub fn new(options: SimulationOptions, trace: TraceMode) -> Result<Simulation, String> {
        let keys = options.keys;
        Simulation::with_application(
            options,
            trace,
            Box::new(|| Box::new(KeyValueStore::default())),
            Box::new(KeyValueWorkload::new(keys)),
        )
    }

    /// A simulation of your own state machine and workload.
    pub fn with_application(
        options: SimulationOptions,
        trace: TraceMode,
        machine_factory: MachineFactory,
        workload: Box<dyn Workload>,
    ) -> Result<Simulation, String> {
        options.validate()?;
        let mut random = ChaCha8Rng::seed_from_u64(options.seed);
        let mut plan = FaultPlan::draw(options.faults, &mut random);
        if let Some(chosen) = &options.plan {
            chosen.validate()?;
            plan = chosen.clone();
        }
        if let Some(drift) = options.clock_drift {
            plan.clock_drift = drift;
            // The lease's documented assumption would not hold.
            plan.read_lease = plan.read_lease && drift <= 0.045;
        }
        let ids: Vec<NodeId> = (1..=options.nodes).map(NodeId).collect();
        let membership = Membership::with_voters(ids.iter().copied());
        let network = Network::new(plan.clone(), ids.clone());
        let mut simulation = Simulation {
            options: options.clone(),
            plan: plan.clone(),
            random,
            now: 0,
            queue: EventQueue::new(),
            servers: Vec::new(),
            membership,
            network,
            clients: Vec::new(),
            machine_factory,
            workload,
            checker: SafetyChecker::new(),
            results: BTreeMap::new(),
            history: Vec::new(),
            trace: Trace::new(trace),
            statistics: Statistics::default(),
            heal_time: None,
            failure: None,
            finished: false,
        };
        trace!(
            simulation,
            "seed={} nodes={} {}", options.seed, options.nodes, plan
        );
        for id in ids {
            let drift = (unit(&mut simulation.random) * 2.0 - 1.0) * plan.clock_drift;
            let tick_nanos = ((options.tick_nanos as f64) * (1.0 + drift)).max(1.0) as u64;
            let machine = (simulation.machine_factory)();
            simulation.servers.push(Server {
                id,
                node: None,
                storage: InMemoryStorage::default(),
                disk_busy_until: 0,
                incarnation: 0,
                machine,
                restored: LogId::default(),
                applied: Vec::new(),
                staged_snapshots: BTreeMap::new(),
                pending: BTreeMap::new(),
                reads: BTreeMap::new(),
                ready_reads: Vec::new(),
                tick_nanos,
                paused: false,
                missed_ticks: 0,
                backlog: VecDeque::new(),
            });
            simulation.start_node(id);
        }
        for client in 0..options.clients {
            let target = simulation.random_node();
            simulation.clients.push(Client {
                id: client,
                next_operation: 0,
                current: None,
                target,
                attempts: 0,
                served_after_heal: false,
            });
            let start = simulation.random.next_u64() % (10 * MILLISECOND);
            simulation.queue.push(start, Event::ClientNext { client });
        }
        simulation.schedule_fault(plan.crash_interval_nanos, Event::CrashTick);
        simulation.schedule_fault(plan.pause_interval_nanos, Event::PauseTick);
        simulation.schedule_fault(plan.network_fault_interval_nanos, Event::NetworkTick);
        simulation.schedule_fault(plan.transfer_interval_nanos, Event::TransferTick);
        simulation.schedule_fault(plan.membership_interval_nanos, Event::MembershipTick);
        simulation.queue.push(options.duration_nanos, Event::Heal);
        Ok(simulation)
    }

    /// The fault plan drawn from the seed.
    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Report {
        while !self.finished {
            let Some((time, event)) = self.queue.pop() else {
                break;
            };
            self.now = time;
            self.statistics.events += 1;
            self.handle(event);
            if let Some(heal) = self.heal_time
                && self.now > heal + self.options.liveness_bound_nanos
                && self.failure.is_none()
            {
                self.fail_liveness();
            }
        }
        if self.failure.is_none() && !self.finished {
            self.fail_liveness();
        }
        // Operations still in flight when the run stops may yet take effect (another
        // client may already have read their value): they are unknown, not absent.
        for position in 0..self.clients.len() {
            if let Some(current) = self.clients[position].current.take() {
                self.statistics.operations_unknown += 1;
                self.history.push(Operation {
                    process: self.clients[position].id,
                    call: current.call,
                    outcome: Outcome::Unknown,
                    invoke_time: current.invoke_time,
                    complete_time: None,
                });
            }
        }
        if self.failure.is_none() {
            self.check_linearizability();
        }
        self.statistics.simulated_nanos = self.now;
        self.statistics.elections = self.checker.leader_terms() as u64;
        self.statistics.committed = self.checker.committed_count() as u64;
        if let Some(failure) = &self.failure {
            trace!(self, "FAILED {failure}");
        }
        Report {
            options: self.options,
            plan: self.plan,
            failure: self.failure,
            statistics: self.statistics,
            history: self.history,
            trace: self.trace,
        }
    }

    fn schedule_fault(&mut self, interval: u64, event: Event) {
        if interval > 0 {
            let delay = self.exponential(interval);
            self.queue.push(self.now + delay, event);
        }
    }

    fn exponential(&mut self, mean: u64) -> u64 {
        let draw = unit(&mut self.random).max(f64::MIN_POSITIVE);
        (-(mean as f64) * draw.ln()) as u64
    }

    fn random_node(&mut self) -> NodeId {
        NodeId(1 + self.random.next_u64() % self.options.nodes)
    }

    fn server(&mut self, id: NodeId) -> &mut Server {
        &mut self.servers[server_position(id)]
    }

    fn in_safety_phase(&self) -> bool {
        self.heal_time.is_none()
    }

    // ----- nodes -----

    fn start_node(&mut self, id: NodeId) {
        let (minimum, maximum) = self.options.election_ticks;
        let seed = self.random.next_u64();
        let config = Config::builder(id)
            .election_ticks(minimum, maximum)
            .heartbeat_ticks(self.options.heartbeat_ticks)
            .read_lease(self.plan.read_lease)
            .snapshot_log_bytes(self.plan.snapshot_log_bytes)
            .compaction_trailing_entries(self.plan.compaction_trailing_entries)
            .random_seed(seed)
            .build();
        let membership = self.membership.clone();
        let server = self.server(id);
        let recovered = server.storage.recovered(membership, Index(0));
        let node = config
            .map_err(|error| error.to_string())
            .and_then(|config| Node::new(config, recovered).map_err(|error| error.to_string()));
        match node {
            Ok(node) => server.node = Some(node),
            Err(error) => {
                self.failure = Some(Failure::Safety {
                    property: "recovery".to_string(),
                    detail: format!("{id} could not restart from its durable state: {error}"),
                });
                self.finished = true;
                return;
            }
        }
        let incarnation = server.incarnation;
        let first_tick = self.now + self.random.next_u64() % self.server(id).tick_nanos.max(1);
        self.queue.push(
            first_tick,
            Event::Tick {
                node: id,
                incarnation,
            },
        );
    }

    fn is_down(&mut self, id: NodeId) -> bool {
        self.server(id).node.is_none()
    }

    fn unavailable_count(&self) -> u64 {
        self.servers
            .iter()
            .filter(|server| server.node.is_none() || server.paused)
            .count() as u64
    }

    /// Feeds one input to a running node, then carries out its actions and checks safety.
    fn with_node(&mut self, id: NodeId, input: impl FnOnce(&mut Node)) {
        let Some(node) = self.server(id).node.as_mut() else {
            return;
        };
        input(node);
        self.drain(id);
    }

    fn drain(&mut self, id: NodeId) {
        loop {
            let Some(action) = self.server(id).node.as_mut().and_then(Node::poll_action) else {
                break;
            };
            trace!(self, "{id}: {action}");
            match action {
                Action::Persist(write) => {
                    let delay = self.plan.fsync_min_nanos
                        + self.random.next_u64()
                            % (self.plan.fsync_max_nanos - self.plan.fsync_min_nanos + 1);
                    let now = self.now;
                    let server = self.server(id);
                    let done = server.disk_busy_until.max(now + delay);
                    server.disk_busy_until = done;
                    let incarnation = server.incarnation;
                    let write_id = write.id();
                    let data = write.snapshot.as_ref().and_then(|snapshot| {
                        server
                            .staged_snapshots
                            .remove(&snapshot.last_included.index)
                    });
                    if write.snapshot.is_some() && data.is_none() {
                        self.fail_driver(id, "a write stores a snapshot never built nor received");
                        return;
                    }
                    server.storage.submit(write, data);
                    self.queue.push(
                        done,
                        Event::DiskDone {
                            node: id,
                            incarnation,
                            write: write_id,
                        },
                    );
                }
                Action::Send(message) => {
                    let (from, to) = (message.from, message.to);
                    let now = self.now;
                    match self.network.route(from, to, now, &mut self.random) {
                        [Some(first), Some(second)] => {
                            self.queue.push(first, Event::Deliver(message.clone()));
                            self.queue.push(second, Event::Deliver(message));
                        }
                        [Some(arrival), None] | [None, Some(arrival)] => {
                            self.queue.push(arrival, Event::Deliver(message));
                        }
                        [None, None] => {}
                    }
                }
                Action::SendSnapshot(message) => self.send_snapshot(id, message),
                Action::Restore(snapshot) => {
                    let server = self.server(id);
                    let data = match server.storage.snapshot() {
                        Some((stored, data)) if *stored == *snapshot => data.clone(),
                        _ => {
                            self.fail_driver(id, "restoring a snapshot that is not stored");
                            return;
                        }
                    };
                    let last = snapshot.last_included;
                    self.statistics.snapshots_restored += 1;
                    let server = self.server(id);
                    server.machine.restore(&data);
                    server.restored = last;
                    server.applied.clear();
                    // Proposals the snapshot covers have an unknown fate here: their clients
                    // time out rather than hear a guess.
                    server.pending.retain(|index, _| *index > last.index);
                    if let Some(node) = server.node.as_mut()
                        && let Err(error) = node.applied(last.index)
                    {
                        self.fail_driver(id, &error.to_string());
                        return;
                    }
                    self.serve_reads(id);
                }
                Action::Apply(entries) => {
                    self.apply(id, entries);
                    self.serve_reads(id);
                }
                Action::Event(NodeEvent::SnapshotWanted { .. }) => {
                    let server = self.server(id);
                    let applied = server
                        .applied
                        .last()
                        .map_or(server.restored.index, Entry::index);
                    let data = server.machine.snapshot();
                    if let Some(node) = server.node.as_mut()
                        && node.snapshot_built(applied).is_ok()
                    {
                        server.staged_snapshots.insert(applied, data);
                        self.statistics.snapshots_built += 1;
                    }
                }
                Action::Event(NodeEvent::ReadReady { id: read, index }) => {
                    if let Some((client, operation, call)) = self.server(id).reads.remove(&read) {
                        self.server(id)
                            .ready_reads
                            .push((index, client, operation, call));
                        self.serve_reads(id);
                    }
                }
                Action::Event(NodeEvent::ReadAborted { id: read }) => {
                    if let Some((client, operation, _)) = self.server(id).reads.remove(&read) {
                        self.reply(client, operation, Reply::Failed);
                    }
                }
                Action::Event(_) => {}
            }
        }
        self.check(id);
    }

    /// The driver broke the node's contract (a bug in this simulator, or in the core's
    /// actions): the run fails as a safety failure.
    fn fail_driver(&mut self, id: NodeId, detail: &str) {
        self.failure.get_or_insert(Failure::Safety {
            property: "driver contract".to_string(),
            detail: format!("{id}: {detail}"),
        });
        self.finished = true;
    }

    /// Sends the stored snapshot a `SendSnapshot` names, over the simulated network; the
    /// transport reports the outcome back when it knows it.
    fn send_snapshot(&mut self, id: NodeId, message: Message) {
        let MessageBody::InstallSnapshot { snapshot } = &message.body else {
            self.fail_driver(id, "SendSnapshot without an InstallSnapshot");
            return;
        };
        let (from, to) = (message.from, message.to);
        let incarnation = self.server(id).incarnation;
        let data = match self.server(id).storage.snapshot() {
            Some((stored, data)) if stored == &**snapshot => Some(data.clone()),
            _ => None,
        };
        let now = self.now;
        let arrival = match data {
            // A transfer is one stream: it arrives once or not at all.
            Some(_) => self
                .network
                .route(from, to, now, &mut self.random)
                .into_iter()
                .flatten()
                .next(),
            None => None,
        };
        if data.is_some() {
            self.statistics.snapshots_sent += 1;
        }
        match (arrival, data) {
            (Some(arrival), Some(data)) => {
                self.queue
                    .push(arrival, Event::DeliverSnapshot(message, data));
            }
            _ => {
                let timeout = now + 2 * self.network.latency(&mut self.random);
                self.queue.push(
                    timeout,
                    Event::SnapshotReport {
                        node: from,
                        incarnation,
                        follower: to,
                        outcome: SnapshotTransfer::Failed,
                    },
                );
            }
        }
    }

    fn apply(&mut self, id: NodeId, entries: Vec<Entry>) {
        let Some(last) = entries.last().map(Entry::index) else {
            return;
        };
        let mut replies = Vec::new();
        let mut divergence = None;
        let position = server_position(id);
        let server = &mut self.servers[position];
        for entry in &entries {
            let result = match &entry.payload {
                Payload::Command(bytes) => {
                    Command::decode(bytes).map(|command| server.machine.apply(&command.call))
                }
                Payload::Blank | Payload::Membership(_) => None,
            };
            if let Some(result) = &result {
                match self.results.get(&entry.index()) {
                    Some(first) if first != result && divergence.is_none() => {
                        divergence = Some(format!(
                            "{id} computed {result:?} for entry {} where another replica computed {first:?}",
                            entry.id
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.results.insert(entry.index(), result.clone());
                    }
                }
            }
            if let Some((proposed, client, operation)) = server.pending.remove(&entry.index()) {
                let reply = match result {
                    Some(result) if proposed == entry.id => Reply::Done(result),
                    // Another entry took this index: the proposal can never commit.
                    _ => Reply::Failed,
                };
                replies.push((client, operation, reply));
            }
        }
        server.applied.extend(entries);
        if let Some(node) = server.node.as_mut()
            && let Err(error) = node.applied(last)
        {
            divergence.get_or_insert(error.to_string());
        }
        if let Some(detail) = divergence {
            self.failure.get_or_insert(Failure::Safety {
                property: "state machine determinism".to_string(),
                detail,
            });
            self.finished = true;
        }
        for (client, operation, reply) in replies {
            self.reply(client, operation, reply);
        }
    }

    /// Answers the confirmed reads whose index this replica has applied, from its state.
    fn serve_reads(&mut self, id: NodeId) {
        let position = server_position(id);
        let server = &mut self.servers[position];
        let applied = server
            .applied
            .last()
            .map_or(server.restored.index, Entry::index);
        let mut replies = Vec::new();
        let machine = &mut server.machine;
        server
            .ready_reads
            .retain(|(index, client, operation, call)| {
                if *index <= applied {
                    replies.push((*client, *operation, Reply::Done(machine.read(call))));
                    false
                } else {
                    true
                }
            });
        for (client, operation, reply) in replies {
            self.reply(client, operation, reply);
        }
    }

    fn check(&mut self, id: NodeId) {
        let position = server_position(id);
        let server = &self.servers[position];
        let view = NodeView {
            id,
            node: server.node.as_ref(),
            restored: server.restored,
            applied: &server.applied,
        };
        if let Err(violation) = self.checker.check_node(&view) {
            self.fail_safety(violation);
        }
    }

    fn fail_safety(&mut self, violation: Violation) {
        if self.failure.is_none() {
            self.failure = Some(Failure::Safety {
                property: violation.property.to_string(),
                detail: violation.detail,
            });
        }
        self.finished = true;
    }

    fn fail_liveness(&mut self) {
        let waiting: Vec<String> = self
            .clients
            .iter()
            .filter(|client| !client.served_after_heal)
            .map(|client| format!("c{}", client.id))
            .collect();
        let leaders: Vec<String> = self
            .servers
            .iter()
            .filter_map(|server| {
                let node = server.node.as_ref()?;
                (node.role() == Role::Leader)
                    .then(|| format!("{} (term {})", server.id, node.term().0))
            })
            .collect();
        self.failure = Some(Failure::Liveness {
            detail: format!(
                "{} ms after every fault healed, clients [{}] still had no completed operation; leaders: [{}]",
                self.options.liveness_bound_nanos / MILLISECOND,
                waiting.join(", "),
                leaders.join(", ")
            ),
        });
        self.finished = true;
    }

    fn check_linearizability(&mut self) {
        match linearizability::check(&self.history) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable {
                key, explanation, ..
            } => {
                self.failure = Some(Failure::Linearizability {
                    detail: format!("key {key}: {explanation}"),
                });
            }
            Verdict::Inconclusive { key, reason } => {
                self.statistics.linearizability_inconclusive = 1;
                trace!(self, "linearizability inconclusive on key {key}: {reason}");
            }
        }
    }

    // ----- events -----

    fn handle(&mut self, event: Event) {
        // A paused node's process does not run: what arrives for it waits in its backlog
        // (its timer ticks are counted instead, in `on_tick`).
        let process = match &event {
            Event::Deliver(message) | Event::DeliverSnapshot(message, _) => Some(message.to),
            Event::DiskDone { node, .. }
            | Event::ClientArrive { node, .. }
            | Event::SnapshotReport { node, .. } => Some(*node),
            _ => None,
        };
        if let Some(id) = process
            && self.server(id).paused
        {
            self.server(id).backlog.push_back(event);
            return;
        }
        match event {
            Event::Tick { node, incarnation } => self.on_tick(node, incarnation),
            Event::Deliver(message) => {
                let to = message.to;
                trace!(self, "deliver {message}");
                self.with_node(to, |node| node.step(message));
            }
            Event::DeliverSnapshot(message, data) => self.deliver_snapshot(message, data),
            Event::SnapshotReport {
                node,
                incarnation,
                follower,
                outcome,
            } => {
                if self.server(node).incarnation == incarnation {
                    trace!(self, "{node}: snapshot to {follower} {outcome:?}");
                    self.with_node(node, |raft| raft.snapshot_sent(follower, outcome));
                }
            }
            Event::DiskDone {
                node,
                incarnation,
                write,
            } => {
                if self.server(node).incarnation != incarnation {
                    return;
                }
                let synced = self.server(node).storage.sync_one();
                debug_assert_eq!(synced, Some(write), "disk writes complete in order");
                trace!(self, "{node}: durable w{}", write.0);
                let mut refused = None;
                self.with_node(node, |raft| {
                    if let Err(error) = raft.persisted(write) {
                        refused = Some(error.to_string());
                    }
                });
                if let Some(error) = refused {
                    self.failure = Some(Failure::Safety {
                        property: "persist contract".to_string(),
                        detail: error,
                    });
                    self.finished = true;
                }
            }
            Event::ClientArrive {
                node,
                client,
                operation,
                call,
            } => self.on_client_arrive(node, client, operation, call),
            Event::ClientReply {
                client,
                operation,
                reply,
            } => self.on_client_reply(client, operation, reply),
            Event::ClientTimeout { client, operation } => self.on_client_timeout(client, operation),
            Event::ClientNext { client } => self.on_client_next(client),
            Event::CrashTick => self.on_crash_tick(),
            Event::Restart { node, incarnation } => {
                if self.server(node).incarnation == incarnation && self.is_down(node) {
                    trace!(self, "{node}: restart");
                    self.start_node(node);
                    self.drain(node);
                }
            }
            Event::PauseTick => self.on_pause_tick(),
            Event::Resume { node, incarnation } => self.resume(node, incarnation),
            Event::NetworkTick => self.on_network_tick(),
            Event::TransferTick => self.on_transfer_tick(),
            Event::MembershipTick => self.on_membership_tick(),
            Event::Reconnect => {
                trace!(self, "network: reconnect");
                self.network.reconnect();
            }
            Event::Heal => self.heal(),
        }
    }

    /// A whole snapshot arrived: the receiver's driver keeps the data for the write that
    /// will store it, steps the message, and the sender's transport learns the outcome.
    fn deliver_snapshot(&mut self, message: Message, data: Bytes) {
        let (from, to) = (message.from, message.to);
        trace!(self, "deliver {message}");
        let delivered = !self.is_down(to);
        if let MessageBody::InstallSnapshot { snapshot } = &message.body
            && delivered
        {
            let index = snapshot.last_included.index;
            self.server(to).staged_snapshots.insert(index, data);
            self.with_node(to, |node| node.step(message));
        }
        let incarnation = self.server(from).incarnation;
        let outcome = if delivered {
            SnapshotTransfer::Delivered
        } else {
            SnapshotTransfer::Failed
        };
        let report = self.now + self.network.latency(&mut self.random);
        self.queue.push(
            report,
            Event::SnapshotReport {
                node: from,
                incarnation,
                follower: to,
                outcome,
            },
        );
    }

    fn on_tick(&mut self, id: NodeId, incarnation: u64) {
        let now = self.now;
        let server = self.server(id);
        if server.incarnation != incarnation || server.node.is_none() {
            return;
        }
        let next = now + server.tick_nanos;
        let paused = server.paused;
        self.queue.push(
            next,
            Event::Tick {
                node: id,
                incarnation,
            },
        );
        // A paused process misses its timer; it sees time jump when it resumes.
        if paused {
            self.server(id).missed_ticks += 1;
        } else {
            trace!(self, "{id}: tick");
            self.with_node(id, Node::tick);
        }
    }

    fn on_crash_tick(&mut self) {
        if !self.in_safety_phase() {
            return;
        }
        let id = self.random_node();
        let tolerated = (self.options.nodes - 1) / 2;
        if !self.is_down(id) && !self.server(id).paused && self.unavailable_count() < tolerated {
            self.crash(id);
            let delay = self.random.next_u64() % (self.plan.restart_delay_max_nanos + 1);
            let incarnation = self.server(id).incarnation;
            self.queue.push(
                self.now + delay,
                Event::Restart {
                    node: id,
                    incarnation,
                },
            );
        }
        self.schedule_fault(self.plan.crash_interval_nanos, Event::CrashTick);
    }

    fn crash(&mut self, id: NodeId) {
        trace!(self, "{id}: crash");
        self.statistics.crashes += 1;
        let fresh_machine = (self.machine_factory)();
        let server = self.server(id);
        server.node = None;
        server.storage.crash();
        server.incarnation += 1;
        server.pending.clear();
        server.reads.clear();
        server.ready_reads.clear();
        server.paused = false;
        server.missed_ticks = 0;
        server.backlog.clear();
        server.machine = fresh_machine;
        server.restored = LogId::default();
        server.applied.clear();
        server.staged_snapshots.clear();
        self.checker.restarted(id);
        self.checker.state_machine_restarted(id);
    }

    fn on_pause_tick(&mut self) {
        if !self.in_safety_phase() {
            return;
        }
        let id = self.random_node();
        let tolerated = (self.options.nodes - 1) / 2;
        if !self.is_down(id) && !self.server(id).paused && self.unavailable_count() < tolerated {
            trace!(self, "{id}: pause");
            self.statistics.pauses += 1;
            self.server(id).paused = true;
            let duration = self.random.next_u64() % (self.plan.pause_max_nanos + 1);
            let incarnation = self.server(id).incarnation;
            self.queue.push(
                self.now + duration,
                Event::Resume {
                    node: id,
                    incarnation,
                },
            );
        }
        self.schedule_fault(self.plan.pause_interval_nanos, Event::PauseTick);
    }

    fn resume(&mut self, id: NodeId, incarnation: u64) {
        let server = self.server(id);
        if server.incarnation != incarnation || !server.paused {
            return;
        }
        server.paused = false;
        let missed_ticks = std::mem::take(&mut server.missed_ticks);
        let backlog: Vec<Event> = server.backlog.drain(..).collect();
        trace!(
            self,
            "{id}: resume after {missed_ticks} missed ticks with {} queued events",
            backlog.len()
        );
        // The driver first catches its clock up with the time that passed (as a driver
        // must before serving lease reads: the lease is counted in ticks), then handles the
        // backlog in arrival order, as a stalled process would.
        for _ in 0..missed_ticks {
            self.with_node(id, Node::tick);
        }
        for event in backlog {
            if self.finished {
                return;
            }
            self.handle(event);
        }
    }

    /// The running, unpaused leader of the highest term.
    fn current_leader(&self) -> Option<NodeId> {
        self.servers
            .iter()
            .filter(|server| !server.paused)
            .filter_map(|server| {
                let node = server.node.as_ref()?;
                (node.role() == Role::Leader).then_some((node.term(), server.id))
            })
            .max()
            .map(|(_, id)| id)
    }

    /// Asks the leader to change the configuration: demote a random voter to learner
    /// (keeping at least three voters), promote a random learner, or both at once (a
    /// joint change). A refusal (a change already in progress) is traced and ignored.
    fn on_membership_tick(&mut self) {
        if !self.in_safety_phase() {
            return;
        }
        if let Some(leader) = self.current_leader() {
            let Some(current) = self
                .server(leader)
                .node
                .as_ref()
                .map(|node| node.membership().clone())
            else {
                return;
            };
            let mut voters: Vec<NodeId> = current.voters.iter().copied().collect();
            let mut learners: Vec<NodeId> = current.learners.iter().copied().collect();
            let demote = voters.len() > 3
                && (learners.is_empty() || self.random.next_u64().is_multiple_of(2));
            let promote =
                !learners.is_empty() && (!demote || self.random.next_u64().is_multiple_of(2));
            if demote {
                let position = (self.random.next_u64() % voters.len() as u64) as usize;
                learners.push(voters.remove(position));
            }
            if promote {
                let position = (self.random.next_u64() % learners.len() as u64) as usize;
                voters.push(learners.remove(position));
            }
            if demote || promote {
                let mut outcome = None;
                let (new_voters, new_learners) = (voters.clone(), learners.clone());
                self.with_node(leader, |node| {
                    outcome = Some(node.change_membership(new_voters, new_learners));
                });
                match outcome {
                    Some(Ok(entry)) => trace!(
                        self,
                        "{leader}: change membership to voters [{}] learners [{}] at {entry}",
                        node_list(&voters),
                        node_list(&learners)
                    ),
                    Some(Err(error)) => {
                        trace!(self, "{leader}: membership change refused: {error}")
                    }
                    None => {}
                }
            }
        }
        self.schedule_fault(self.plan.membership_interval_nanos, Event::MembershipTick);
    }

    /// Asks the running leader of the highest term to hand leadership to a random node.
    fn on_transfer_tick(&mut self) {
        if !self.in_safety_phase() {
            return;
        }
        if let Some(leader) = self.current_leader() {
            let target = self.random_node();
            let mut outcome = None;
            self.with_node(leader, |node| outcome = Some(node.transfer_leader(target)));
            match outcome {
                Some(Ok(())) => trace!(self, "{leader}: transfer leadership to {target}"),
                Some(Err(error)) => trace!(self, "{leader}: transfer to {target} refused: {error}"),
                None => {}
            }
        }
        self.schedule_fault(self.plan.transfer_interval_nanos, Event::TransferTick);
    }

    fn on_network_tick(&mut self) {
        if !self.in_safety_phase() {
            return;
        }
        self.statistics.network_faults += 1;
        if self.random.next_u64() % 10 < 7 {
            if let Some(partition) = self.network.draw_partition(&mut self.random) {
                trace!(self, "network: {partition}");
                self.network.reconnect();
                self.network.partition(&partition);
                let duration = 200 * MILLISECOND + self.random.next_u64() % (3 * SECOND);
                self.queue.push(self.now + duration, Event::Reconnect);
            }
        } else {
            let from = self.random_node();
            let to = self.random_node();
            if from != to {
                let until = self.now + 100 * MILLISECOND + self.random.next_u64() % (2 * SECOND);
                trace!(
                    self,
                    "network: clog {from}->{to} for {}ms",
                    (until - self.now) / MILLISECOND
                );
                self.network.clog(from, to, until);
            }
        }
        self.schedule_fault(self.plan.network_fault_interval_nanos, Event::NetworkTick);
    }

    fn heal(&mut self) {
        trace!(self, "heal: every fault ends; liveness phase begins");
        self.heal_time = Some(self.now);
        self.network.heal();
        for position in 0..self.servers.len() {
            let id = self.servers[position].id;
            if self.servers[position].paused {
                let incarnation = self.servers[position].incarnation;
                self.resume(id, incarnation);
            }
            if self.is_down(id) && !self.finished {
                trace!(self, "{id}: restart");
                self.start_node(id);
                self.drain(id);
            }
        }
    }
}

/// Where node `id` sits in the list of servers (ids count from 1).
fn server_position(id: NodeId) -> usize {
    usize::try_from(id.0.saturating_sub(1)).unwrap_or(usize::MAX)
}

/// Where client `client` sits in the list of clients.
fn client_position(client: u64) -> usize {
    usize::try_from(client).unwrap_or(usize::MAX)
}

// After the `trace!` macro, which it uses.
mod clients;
