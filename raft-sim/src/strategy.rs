//! Property-test strategies over cluster schedules, for testing Raft (and your use of it)
//! with [proptest](https://docs.rs/proptest).
//!
//! A [`Scenario`] is a cluster size, node settings and a schedule of [`Step`]s: ticks,
//! message deliveries out of order, losses, duplicates, partitions, crashes that lose
//! unsynced writes, restarts, partial fsyncs, proposals, elections, leadership transfers,
//! reads, configuration changes and snapshots. [`run_scenario`] runs one on the scripting
//! harness with every safety checker after every step, then heals the cluster and checks
//! that it makes progress again. Failing cases shrink to short schedules, printed with
//! the tail of the trace.
//!
//! ```
//! use proptest::prelude::*;
//! use raft_sim::strategy::{run_scenario, scenario_strategy};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
//!     // In a test file, put `#[test]` here.
//!     fn raft_stays_safe(scenario in scenario_strategy()) {
//!         run_scenario(&scenario)?;
//!     }
//! }
//! raft_stays_safe();
//! ```
//!
//! For simulations of your own state machine, [`simulation_options`] draws whole
//! simulation settings with an explicit fault plan, and [`check_simulation`] runs one and
//! fails with the command that replays it.

use std::collections::BTreeSet;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use raft_core::{
    Index, LogId, Membership, MessageBody, Node, NodeId, Payload, Proposal, Role, SnapshotTransfer,
};

use crate::checker::Violation;
use crate::faults::{FaultPlan, FaultProfile, MILLISECOND, SECOND};
use crate::kv::Workload;
use crate::linearizability::Verdict;
use crate::script::Cluster;
use crate::script_history::ScriptHistory;
use crate::simulation::{MachineFactory, Simulation, SimulationOptions};
use crate::trace::TraceMode;

/// Trace lines shown with a failure.
const TRACE_TAIL: usize = 40;

/// The largest cluster the strategy builds; node choices are taken modulo the size.
pub const SIZE_MAX: usize = 5;
/// The longest random schedule.
pub const STEPS_MAX: usize = 300;
/// Tick-and-deliver rounds the healed cluster gets to elect a leader.
const ELECTION_ROUNDS_MAX: usize = 200;
/// Tick-and-deliver rounds the healed cluster's leaders get to make every server a voter.
const RESTORE_ROUNDS_MAX: usize = 300;
/// Tick-and-deliver rounds the healed cluster gets to apply the final proposal everywhere.
const APPLY_ROUNDS_MAX: usize = 200;

/// One input to the cluster. Node choices are raw numbers, reduced modulo the cluster
/// size (so shrinking keeps cases valid); message choices are reduced modulo the number
/// of messages in flight.
#[derive(Clone, Debug)]
pub enum Step {
    /// One tick on a node.
    Tick(usize),
    /// One tick on every running node.
    TickAll,
    /// A calm moment: every queued write made durable, one tick everywhere, and every
    /// message in flight delivered (with those the deliveries cause), so that leaders
    /// exist often enough for configuration changes, transfers and reads to matter.
    Settle,
    /// Lose every message in flight to or from a node.
    Isolate(usize),
    /// Deliver up to this many of the oldest messages, in order.
    DeliverOldest(usize),
    /// Deliver the message at this position.
    DeliverAt(usize),
    /// Deliver a message that is not the oldest one, ahead of the older ones.
    DeliverLater(usize),
    /// Lose the message at this position.
    Drop(usize),
    /// Put a copy of the message at this position in flight.
    Duplicate(usize),
    /// Propose a command on a node (refused unless it leads or forwards).
    Propose(usize),
    /// Make a node campaign now (skipped when it leads or is down).
    Campaign(usize),
    /// Crash a node, losing its unsynced writes. Unless `force`, skipped when it would
    /// leave less than a majority running.
    Crash {
        /// The node (modulo the cluster size).
        node: usize,
        /// Crash it even when that leaves less than a majority running.
        force: bool,
    },
    /// Restart a crashed node from its durable storage (skipped when it runs).
    Restart(usize),
    /// Make every queued write of a node durable.
    Sync(usize),
    /// Make only the oldest queued write of a node durable.
    SyncOne(usize),
    /// Make every queued write of every node durable.
    SyncAll,
    /// Ask whichever node leads for a configuration change (skipped without a leader;
    /// refusals are legitimate outcomes).
    ChangeMembership(Change),
    /// Ask whichever node leads to hand leadership to a node (refusals are ignored).
    TransferLeader(usize),
    /// Ask a node for a linearizable read (refusals and outcomes are ignored).
    ReadIndex(usize),
    /// Build a snapshot of a node's state machine now (refusals are legitimate).
    Snapshot(usize),
    /// Cut the nodes whose bit is set off from the others, both ways, until `Heal`.
    Partition(u8),
    /// Restore every link cut by `Partition`.
    Heal,
}

/// A configuration change, relative to the leader's configuration. Choices are raw
/// numbers reduced modulo the number of voters or learners.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    /// Turn a voter into a learner, keeping at least 3 voters in clusters of 4 or more and
    /// at least 1 otherwise (skipped when that would leave too few).
    Demote(usize),
    /// Turn a learner into a voter (skipped without learners).
    Promote(usize),
    /// Turn a voter into a learner and a learner into a voter in one change, which goes
    /// through a joint configuration (skipped without learners).
    Swap {
        /// The voter to demote (modulo the voters).
        voter: usize,
        /// The learner to promote (modulo the learners).
        learner: usize,
    },
    /// Make every server a voter again.
    AllVoters,
}

/// Node settings a case runs with.
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Election timeouts are drawn from `[election_ticks.0, election_ticks.1)`.
    pub election_ticks: (u32, u32),
    /// Ticks between heartbeats.
    pub heartbeat_ticks: u32,
    /// Appends in flight per follower.
    pub append_in_flight_max: usize,
    /// Bytes per append message.
    pub append_bytes_max: usize,
    /// Whether followers forward proposals to the leader.
    pub forward_proposals: bool,
    /// Applied log bytes between snapshots.
    pub snapshot_log_bytes: usize,
    /// Entries kept below each snapshot.
    pub compaction_trailing_entries: u64,
}

/// One generated case.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Servers, ids 1 to `size`.
    pub size: u64,
    /// Whether writes are durable at once; otherwise only `Sync` steps (and the heal)
    /// make them durable, and crashes lose the rest.
    pub auto_sync: bool,
    /// Node settings.
    pub tuning: Tuning,
    /// The schedule.
    pub steps: Vec<Step>,
}

/// One step, weighted toward ticks, deliveries and proposals.
pub fn step_strategy() -> impl Strategy<Value = Step> {
    let node = || 0..SIZE_MAX;
    let position = || 0..64usize;
    prop_oneof![
        15 => node().prop_map(Step::Tick),
        5 => Just(Step::TickAll),
        3 => Just(Step::Settle),
        15 => (1..16usize).prop_map(Step::DeliverOldest),
        8 => position().prop_map(Step::DeliverAt),
        4 => position().prop_map(Step::DeliverLater),
        4 => position().prop_map(Step::Drop),
        3 => position().prop_map(Step::Duplicate),
        3 => node().prop_map(Step::Isolate),
        14 => node().prop_map(Step::Propose),
        6 => node().prop_map(Step::Campaign),
        6 => (node(), prop::bool::weighted(0.2))
            .prop_map(|(node, force)| Step::Crash { node, force }),
        6 => node().prop_map(Step::Restart),
        5 => node().prop_map(Step::Sync),
        1 => Just(Step::SyncAll),
        3 => node().prop_map(Step::SyncOne),
        6 => change_strategy().prop_map(Step::ChangeMembership),
        3 => node().prop_map(Step::TransferLeader),
        4 => node().prop_map(Step::ReadIndex),
        3 => node().prop_map(Step::Snapshot),
        2 => (1..(1u8 << SIZE_MAX) - 1).prop_map(Step::Partition),
        2 => Just(Step::Heal),
    ]
}

/// A configuration change.
pub fn change_strategy() -> impl Strategy<Value = Change> {
    let choice = || 0..SIZE_MAX;
    prop_oneof![
        3 => choice().prop_map(Change::Demote),
        2 => choice().prop_map(Change::Promote),
        2 => (choice(), choice()).prop_map(|(voter, learner)| Change::Swap { voter, learner }),
        1 => Just(Change::AllVoters),
    ]
}

/// Node settings, from aggressive (tiny windows and messages, frequent snapshots) to the
/// defaults.
pub fn tuning_strategy() -> impl Strategy<Value = Tuning> {
    (
        prop_oneof![2 => Just(((3, 7), 1)), 1 => Just(((5, 10), 2)), 1 => Just(((10, 20), 2))],
        prop_oneof![Just(1usize), Just(2), Just(4), Just(256)],
        prop_oneof![Just(1usize), Just(8), Just(1024 * 1024)],
        any::<bool>(),
        // Snapshots asked for every few entries, or (with the default) only when a step
        // builds one.
        prop_oneof![Just(100usize), Just(400), Just(8 * 1024 * 1024)],
        prop_oneof![Just(0u64), Just(2), Just(8)],
    )
        .prop_map(
            |(
                (election_ticks, heartbeat_ticks),
                append_in_flight_max,
                append_bytes_max,
                forward,
                snapshot_log_bytes,
                compaction_trailing_entries,
            )| {
                Tuning {
                    election_ticks,
                    heartbeat_ticks,
                    append_in_flight_max,
                    append_bytes_max,
                    forward_proposals: forward,
                    snapshot_log_bytes,
                    compaction_trailing_entries,
                }
            },
        )
}

/// A whole case: 3 to [`SIZE_MAX`] servers, settings, and up to [`STEPS_MAX`] steps.
pub fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (
        3..=SIZE_MAX as u64,
        // Mostly delayed durability: that is where crashes can lose writes.
        prop::bool::weighted(0.25),
        tuning_strategy(),
        prop::collection::vec(step_strategy(), 0..=STEPS_MAX),
    )
        .prop_map(|(size, auto_sync, tuning, steps)| Scenario {
            size,
            auto_sync,
            tuning,
            steps,
        })
}

/// The cluster a scenario starts from, with violations recorded instead of panicking.
pub fn build_cluster(scenario: &Scenario) -> Cluster {
    let tuning = scenario.tuning.clone();
    let mut cluster = Cluster::with_config(scenario.size, move |builder| {
        builder
            .election_ticks(tuning.election_ticks.0, tuning.election_ticks.1)
            .heartbeat_ticks(tuning.heartbeat_ticks)
            .append_in_flight_max(tuning.append_in_flight_max)
            .append_bytes_max(tuning.append_bytes_max)
            .forward_proposals(tuning.forward_proposals)
            .snapshot_log_bytes(tuning.snapshot_log_bytes)
            .compaction_trailing_entries(tuning.compaction_trailing_entries)
    });
    cluster.auto_sync = scenario.auto_sync;
    cluster.panic_on_violation = false;
    cluster
}

fn up_count(cluster: &Cluster) -> usize {
    cluster
        .ids()
        .into_iter()
        .filter(|id| cluster.is_up(*id))
        .count()
}

fn ids_of(nodes: &BTreeSet<NodeId>) -> Vec<u64> {
    nodes.iter().map(|id| id.0).collect()
}

/// The voters and learners `change` asks for, from the configuration `current` (its
/// incoming half, if joint: the request is then refused anyway), in a cluster of `size`
/// servers; `None` when the change does not apply.
fn changed_membership(
    current: &Membership,
    change: Change,
    size: u64,
) -> Option<(Vec<u64>, Vec<u64>)> {
    let mut voters = ids_of(&current.voters);
    let mut learners = ids_of(&current.learners);
    match change {
        Change::Demote(raw) => {
            let voters_min = if size >= 4 { 3 } else { 1 };
            if voters.len() <= voters_min {
                return None;
            }
            let voter = voters.remove(raw % voters.len());
            learners.push(voter);
        }
        Change::Promote(raw) => {
            if learners.is_empty() {
                return None;
            }
            let learner = learners.remove(raw % learners.len());
            voters.push(learner);
        }
        Change::Swap { voter, learner } => {
            if learners.is_empty() || voters.is_empty() {
                return None;
            }
            let voter = voters.remove(voter % voters.len());
            let learner = learners.remove(learner % learners.len());
            voters.push(learner);
            learners.push(voter);
        }
        Change::AllVoters => {
            voters = (1..=size).collect();
            learners.clear();
        }
    }
    Some((voters, learners))
}

/// Runs one step; `commands` numbers the proposals so that every command is unique, and
/// `history` records proposals and reads as register operations.
pub fn run_step(
    cluster: &mut Cluster,
    size: u64,
    step: &Step,
    commands: &mut u64,
    history: &mut ScriptHistory,
) {
    let node = |raw: usize| NodeId(raw as u64 % size + 1);
    match *step {
        Step::Tick(raw) => cluster.tick(node(raw)),
        Step::TickAll => cluster.tick_all(),
        Step::Settle => {
            for id in cluster.ids() {
                cluster.sync(id);
            }
            cluster.tick_all();
            cluster.deliver_all();
        }
        Step::Isolate(raw) => {
            let id = node(raw);
            cluster.drop_matching(|message| message.to == id || message.from == id);
        }
        Step::DeliverOldest(count) => {
            for _ in 0..count {
                if !cluster.deliver_next() {
                    break;
                }
            }
        }
        Step::DeliverAt(position) => {
            if let Some(message) = cluster.take_at(position) {
                cluster.deliver(message);
            }
        }
        Step::DeliverLater(position) => {
            let count = cluster.in_flight().len();
            if count >= 2 {
                let message = cluster
                    .take_at(1 + position % (count - 1))
                    .expect("messages in flight");
                cluster.deliver(message);
            }
        }
        Step::Drop(position) => {
            // The transport notices a lost snapshot transfer and says so.
            if let Some(message) = cluster.take_at(position)
                && matches!(message.body, MessageBody::InstallSnapshot { .. })
            {
                cluster.report_snapshot(message.from, message.to, SnapshotTransfer::Failed);
            }
        }
        Step::Duplicate(position) => {
            let count = cluster.in_flight().len();
            if count > 0 {
                let copy = cluster.in_flight()[position % count].clone();
                cluster.inject(copy);
            }
        }
        Step::Propose(raw) => {
            *commands += 1;
            let command = format!("c{commands}");
            let id = node(raw);
            let invoked = history.invoke();
            // Refusals (not leader, over a limit) are legitimate outcomes.
            let result = cluster.propose(id, command.as_bytes());
            history.proposed(id, &command, invoked, &result);
        }
        Step::Campaign(raw) => {
            let id = node(raw);
            // Only voters may campaign (by their own view of the configuration).
            if cluster.is_up(id)
                && cluster.node(id).role() != Role::Leader
                && cluster.node(id).membership().is_voter(id)
            {
                cluster.campaign(id);
            }
        }
        Step::Crash { node: raw, force } => {
            let id = node(raw);
            let majority = size as usize / 2 + 1;
            if cluster.is_up(id) && (force || up_count(cluster) > majority) {
                cluster.crash(id);
            }
        }
        Step::Restart(raw) => {
            let id = node(raw);
            if !cluster.is_up(id) {
                cluster.restart(id);
            }
        }
        Step::Sync(raw) => cluster.sync(node(raw)),
        Step::SyncOne(raw) => cluster.sync_one(node(raw)),
        Step::SyncAll => {
            for id in cluster.ids() {
                cluster.sync(id);
            }
        }
        Step::ChangeMembership(change) => {
            if let Some(leader) = cluster.leader()
                && let Some((voters, learners)) =
                    changed_membership(cluster.node(leader).membership(), change, size)
            {
                // Refusals (a change in progress, a transfer) are legitimate outcomes.
                let _ = cluster.change_membership(leader, &voters, &learners);
            }
        }
        Step::TransferLeader(raw) => {
            if let Some(leader) = cluster.leader() {
                let _ = cluster.transfer_leader(leader, node(raw));
            }
        }
        Step::ReadIndex(raw) => {
            let id = node(raw);
            let invoked = history.invoke();
            // Refusals (no leader known, too many pending) tell nothing.
            if let Ok(read) = cluster.read_index(id) {
                history.read_started(id, read, invoked);
            }
        }
        Step::Snapshot(raw) => {
            let id = node(raw);
            if cluster.is_up(id) {
                let _ = cluster.snapshot(id);
            }
        }
        Step::Partition(mask) => {
            let side: Vec<NodeId> = (0..size)
                .filter(|bit| mask & (1 << bit) != 0)
                .map(|bit| NodeId(bit + 1))
                .collect();
            cluster.partition(&side);
        }
        Step::Heal => cluster.heal(),
    }
}

fn safety_failure(cluster: &Cluster, when: &str, violation: &Violation) -> TestCaseError {
    TestCaseError::fail(format!(
        "{violation} ({when})\nlast actions:\n{}",
        cluster.trace_tail(TRACE_TAIL)
    ))
}

/// Fails if the automatic per-input checks or a check of the state right now found a
/// violation.
pub fn check(cluster: &mut Cluster, when: &str) -> Result<(), TestCaseError> {
    if let Some(violation) = cluster.first_violation() {
        return Err(safety_failure(cluster, when, violation));
    }
    if let Err(violation) = cluster.check_safety() {
        return Err(safety_failure(cluster, when, &violation));
    }
    Ok(())
}

/// One liveness round: a tick everywhere, then every message delivered.
fn round(cluster: &mut Cluster, when: &str) -> Result<(), TestCaseError> {
    cluster.tick_all();
    check(cluster, when)?;
    cluster.deliver_all();
    check(cluster, when)
}

fn describe(cluster: &Cluster) -> String {
    cluster
        .ids()
        .into_iter()
        .map(|id| format!("{:?}", cluster.node(id).status()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The last configuration entry in a node's log, if any.
fn latest_configuration(node: &Node) -> Option<(Index, &Membership)> {
    node.log_entries()
        .filter_map(|entry| match &entry.payload {
            Payload::Membership(membership) => Some((entry.index(), &**membership)),
            Payload::Blank | Payload::Command(_) => None,
        })
        .last()
}

/// Whether `leader` knows committed a configuration in which every server votes.
fn all_voters_committed(cluster: &Cluster, leader: NodeId) -> bool {
    let node = cluster.node(leader);
    let everyone = Membership::with_voters(cluster.ids());
    *node.membership() == everyone
        && latest_configuration(node).is_none_or(|(index, _)| index <= node.commit_index())
}

/// Makes every server a voter again: the leader of the moment is asked for the change
/// until one has it committed (a joint configuration on the way must be left first).
/// Returns the final configuration.
fn restore_all_voters(cluster: &mut Cluster) -> Result<Membership, TestCaseError> {
    for _ in 0..RESTORE_ROUNDS_MAX {
        if let Some(leader) = cluster.current_leader() {
            if all_voters_committed(cluster, leader) {
                return Ok(cluster.node(leader).membership().clone());
            }
            let everyone: Vec<u64> = cluster.ids().into_iter().map(|id| id.0).collect();
            // Refused while a change is uncommitted, joint or a transfer runs: asked again
            // next round.
            let _ = cluster.change_membership(leader, &everyone, &[]);
        }
        round(cluster, "making every server a voter")?;
    }
    Err(TestCaseError::fail(format!(
        "no leader committed an all-voter configuration after {RESTORE_ROUNDS_MAX} healed rounds\n{}\nlast actions:\n{}",
        describe(cluster),
        cluster.trace_tail(TRACE_TAIL)
    )))
}

/// Whether every member of `membership` applied the entry `id`.
fn applied_everywhere(cluster: &Cluster, membership: &Membership, id: LogId) -> bool {
    membership.members().into_iter().all(|node| {
        cluster
            .applied(node)
            .get(id.index.0 as usize - 1)
            .is_some_and(|entry| entry.id == id)
    })
}

/// Whether the proposal `id` can no longer commit: the current leader does not hold it
/// (a leader holds every committed entry, so a lost proposal must be made again).
fn lost(cluster: &Cluster, id: LogId) -> bool {
    cluster.current_leader().is_some_and(|leader| {
        cluster
            .node(leader)
            .entry(id.index)
            .is_none_or(|entry| entry.id != id)
    })
}

/// Restarts crashed nodes, restores every link, makes everything durable, and checks that
/// the cluster elects a leader, makes every server a voter again (leaving any joint
/// configuration), and applies one more proposal on every member of that configuration.
pub fn heal_and_check_liveness(cluster: &mut Cluster) -> Result<(), TestCaseError> {
    for id in cluster.ids() {
        if !cluster.is_up(id) {
            cluster.restart(id);
        }
    }
    cluster.heal();
    cluster.auto_sync = true;
    for id in cluster.ids() {
        cluster.sync(id);
    }
    check(cluster, "while healing")?;

    let mut rounds = 0;
    while cluster.current_leader().is_none() {
        if rounds == ELECTION_ROUNDS_MAX {
            return Err(TestCaseError::fail(format!(
                "no leader after {ELECTION_ROUNDS_MAX} healed rounds\n{}\nlast actions:\n{}",
                describe(cluster),
                cluster.trace_tail(TRACE_TAIL)
            )));
        }
        round(cluster, "electing after healing")?;
        rounds += 1;
    }

    let membership = restore_all_voters(cluster)?;
    prop_assert!(!membership.is_joint(), "{}", membership);

    let final_command = b"final";
    let mut proposed: Option<LogId> = None;
    for rounds in 0..=APPLY_ROUNDS_MAX {
        if let Some(id) = proposed
            && applied_everywhere(cluster, &membership, id)
        {
            let first = *membership.members().first().expect("a voter");
            let entry = &cluster.applied(first)[id.index.0 as usize - 1];
            prop_assert_eq!(
                &entry.payload,
                &Payload::Command(Bytes::from_static(final_command))
            );
            return Ok(());
        }
        if rounds == APPLY_ROUNDS_MAX {
            break;
        }
        if proposed.is_some_and(|id| lost(cluster, id)) {
            proposed = None;
        }
        if proposed.is_none()
            && let Some(leader) = cluster.current_leader()
            && let Ok(Proposal::Appended(id)) = cluster.propose(leader, final_command)
        {
            proposed = Some(id);
        }
        round(cluster, "applying the final proposal")?;
    }
    Err(TestCaseError::fail(format!(
        "final proposal {proposed:?} not applied everywhere after {APPLY_ROUNDS_MAX} rounds\n{}\nlast actions:\n{}",
        describe(cluster),
        cluster.trace_tail(TRACE_TAIL)
    )))
}

/// Runs a scenario: every step under the safety checker, the schedule's proposals and
/// reads checked for linearizability as one register, then healing and liveness.
pub fn run_scenario(scenario: &Scenario) -> Result<(), TestCaseError> {
    let mut cluster = build_cluster(scenario);
    let mut commands = 0;
    let mut history = ScriptHistory::new();
    for (number, step) in scenario.steps.iter().enumerate() {
        run_step(
            &mut cluster,
            scenario.size,
            step,
            &mut commands,
            &mut history,
        );
        check(&mut cluster, &format!("after step {number}: {step:?}"))?;
        history.observe(&mut cluster);
    }
    // The proposals and reads of the schedule, as one register, must be linearizable.
    // (Checked before healing: what the heal proposes is not part of the history.)
    let verdict = history.check();
    if !verdict.is_linearizable() && !matches!(verdict, Verdict::Inconclusive { .. }) {
        return Err(TestCaseError::fail(format!(
            "the schedule's client history is {verdict}\nlast actions:\n{}",
            cluster.trace_tail(TRACE_TAIL)
        )));
    }
    heal_and_check_liveness(&mut cluster)?;
    // Every node applied the same entries, each index once, in order.
    let ids = cluster.ids();
    let reference = cluster.applied(ids[0]).to_vec();
    for id in &ids {
        let applied = cluster.applied(*id);
        let shared = applied.len().min(reference.len());
        prop_assert_eq!(&applied[..shared], &reference[..shared], "{}", id);
        for (position, entry) in applied.iter().enumerate() {
            prop_assert_eq!(entry.index(), Index(position as u64 + 1));
        }
    }
    Ok(())
}

/// A fault interval: off (what shrinking moves toward) or a mean between `minimum` and
/// `maximum` nanoseconds.
fn interval(minimum: u64, maximum: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), minimum..=maximum]
}

/// A probability: none (what shrinking moves toward) or up to `maximum`.
fn probability(maximum: f64) -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..=maximum]
}

/// A fault plan with every fault class possibly on, in the ranges the `all` profile
/// draws from. Shrinking switches fault classes off one by one.
pub fn fault_plan() -> impl Strategy<Value = FaultPlan> {
    let network = (
        200_000u64..=2 * MILLISECOND,
        interval(5 * MILLISECOND, 50 * MILLISECOND),
        probability(0.1),
        probability(0.3),
        probability(0.05),
        interval(500 * MILLISECOND, 3 * SECOND),
    );
    let processes = (
        interval(SECOND, 5 * SECOND),
        100 * MILLISECOND..=2 * SECOND,
        interval(SECOND, 5 * SECOND),
        100 * MILLISECOND..=3 * SECOND,
        100_000u64..=5 * MILLISECOND,
        prop_oneof![Just(0u64), 0..=50 * MILLISECOND],
    );
    let operations = (
        0.0..0.045f64,
        any::<bool>(),
        interval(SECOND, 5 * SECOND),
        interval(SECOND, 5 * SECOND),
        prop_oneof![Just(usize::MAX), 512..=16 * 1024usize],
        0..=50u64,
    );
    (network, processes, operations).prop_map(
        |(
            (latency, tail, tail_probability, loss, duplicate, network_faults),
            (crash, restart, pause, pause_max, fsync, fsync_extra),
            (drift, lease, transfers, membership, snapshot_bytes, trailing),
        )| FaultPlan {
            profile: FaultProfile::All,
            latency_base_nanos: latency,
            latency_tail_nanos: tail,
            latency_tail_probability: tail_probability,
            loss_probability: loss,
            duplicate_probability: duplicate,
            network_fault_interval_nanos: network_faults,
            crash_interval_nanos: crash,
            restart_delay_max_nanos: restart,
            pause_interval_nanos: pause,
            pause_max_nanos: pause_max,
            fsync_min_nanos: fsync,
            fsync_max_nanos: fsync + fsync_extra,
            clock_drift: drift,
            read_lease: lease,
            transfer_interval_nanos: transfers,
            membership_interval_nanos: membership,
            snapshot_log_bytes: snapshot_bytes,
            compaction_trailing_entries: trailing,
        },
    )
}

/// Whole simulation settings: a seed, 3 to 5 nodes, 1 to 5 clients and keys, a fault phase
/// of 1 to 5 seconds, and an explicit [`fault_plan`]. Shrinking moves toward fewer faults,
/// nodes, clients and a shorter run.
pub fn simulation_options() -> impl Strategy<Value = SimulationOptions> {
    (
        any::<u64>(),
        3..=5u64,
        1..=5u64,
        1..=5u64,
        1..=5u64,
        fault_plan(),
    )
        .prop_map(
            |(seed, nodes, clients, keys, seconds, plan)| SimulationOptions {
                seed,
                nodes,
                faults: FaultProfile::All,
                duration_nanos: seconds * SECOND,
                clients,
                keys,
                plan: Some(plan),
                ..SimulationOptions::default()
            },
        )
}

/// Runs a simulation of your state machine and workload with `options`; a failure comes
/// back as a test failure naming the broken property, the options as JSON (to rebuild the
/// run), and the `raft-sim replay` command that reproduces it with the built-in store.
pub fn check_simulation(
    options: &SimulationOptions,
    machine_factory: MachineFactory,
    workload: Box<dyn Workload>,
) -> Result<(), TestCaseError> {
    let report =
        Simulation::with_application(options.clone(), TraceMode::Off, machine_factory, workload)
            .map_err(|error| TestCaseError::fail(format!("invalid options: {error}")))?
            .run();
    match report.failure {
        None => Ok(()),
        Some(failure) => Err(TestCaseError::fail(format!(
            "{failure}\noptions: {}\nreplay: raft-sim {}",
            serde_json::to_string(options).unwrap_or_default(),
            options.replay_arguments()
        ))),
    }
}
