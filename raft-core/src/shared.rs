//! The state every role shares, and the outbox through which the node speaks.
//!
//! Role-specific state lives in the role's variant ([`crate::role`]); everything here is
//! meaningful whatever the role: the term and vote, the log, the commit and apply
//! positions, the timers and the ordered queue of actions.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use crate::action::{Action, Event, ReadId, Write, WriteId};
use crate::config::Config;
use crate::election::BlankGuard;
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::quorum::Membership;
use crate::read::LocalReads;
use crate::snapshot::SnapshotMetadata;
use crate::timers::Timers;
use crate::types::{HardState, Index, LogId, NodeId, Term};

/// The most messages held back waiting for storage; more are dropped, as a lossy network
/// would drop them.
pub(crate) const DEFERRED_MESSAGES_MAX: usize = 4096;

/// A message held back until storage has made durable every write issued before it.
#[derive(Debug)]
struct DeferredMessage {
    after: WriteId,
    message: Message,
}

/// Where a snapshot to be stored comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SnapshotOrigin {
    /// The driver built it from this node's state machine: once durable, the log prefix
    /// it covers may go.
    Built,
    /// A leader sent it: once durable, the state machine is restored from it.
    Installed,
}

/// A snapshot that a write stores, not yet acknowledged.
#[derive(Debug)]
struct SnapshotWrite {
    /// The write carrying it.
    id: WriteId,
    snapshot: SnapshotMetadata,
    origin: SnapshotOrigin,
}

/// The most entries one flush drops from memory once a snapshot covers them.
pub(crate) const COMPACTION_BATCH_ENTRIES: u64 = 1024;

/// State and outputs shared by all roles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// The configuration in effect: the newest configuration entry in the log, or the
    /// recovered one when the log holds none.
    pub(crate) membership: Membership,
    /// The configuration in effect at the log's base: a new cluster's, or the one of the
    /// snapshot or compaction point the log now starts after.
    base_membership: Membership,
    /// This node started as a joining one ([`Recovered::joining`](crate::Recovered)): it
    /// votes only once a configuration listing it is in its log or snapshot.
    pub(crate) joining: bool,
    /// Whether fresh storage holds back this node's votes.
    pub(crate) blank_guard: BlankGuard,
    /// The last term in which a vote refused for safety's sake was logged.
    pub(crate) unsafe_vote_warned: Option<Term>,
    /// The newest durable snapshot, which is the one a leader sends.
    pub(crate) snapshot: Option<SnapshotMetadata>,
    /// A snapshot the next write must store.
    snapshot_unflushed: Option<(SnapshotMetadata, SnapshotOrigin)>,
    /// Snapshots in writes not yet acknowledged, oldest first.
    snapshot_writes: VecDeque<SnapshotWrite>,
    /// The log is compacted through here, [`COMPACTION_BATCH_ENTRIES`] entries per flush
    /// (see [`Shared::compact_some`]); at or below the log's base when nothing is pending.
    compaction_target: Index,
    /// Accounted bytes of entries applied since the newest snapshot.
    bytes_since_snapshot: usize,
    /// `SnapshotWanted` went out since the newest snapshot.
    snapshot_asked: bool,
    /// The term and vote as the node acts on them (possibly not yet durable).
    pub(crate) hard_state: HardState,
    /// `hard_state` changed since the last write was issued.
    hard_state_dirty: bool,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) commit: Index,
    /// Follower side: the highest index a leader declared committed that this node is known
    /// to hold. The commit index follows it as far as the durable log allows.
    pub(crate) commit_candidate: Index,
    /// The highest index the state machine reported applied.
    pub(crate) applied: Index,
    /// The highest index handed out in an `Apply` action.
    pub(crate) apply_handed_out: Index,
    pub(crate) timers: Timers,
    random: ChaCha8Rng,
    outbox: VecDeque<Action>,
    /// The last write issued.
    pub(crate) last_write: WriteId,
    /// The last write storage acknowledged.
    pub(crate) acknowledged: WriteId,
    deferred: VecDeque<DeferredMessage>,
    /// Read ids this node hands out, and the reads it forwarded to the leader.
    pub(crate) local_reads: LocalReads,
    /// A leader said its committed configuration at this index removed this node (see
    /// [`Shared::is_removed`]).
    pub(crate) removed_by: Option<Index>,
}

impl Shared {
    /// The shared state of a node starting from a recovered `snapshot` (whose metadata
    /// replaces `membership`), `log` and state machine at `applied`. A state machine
    /// behind the snapshot is restored from it first.
    pub(crate) fn new(
        config: Config,
        membership: Membership,
        snapshot: Option<SnapshotMetadata>,
        hard_state: HardState,
        log: RaftLog,
        applied: Index,
        mut random: ChaCha8Rng,
    ) -> Shared {
        let membership = snapshot
            .as_ref()
            .map_or(membership, |snapshot| snapshot.membership.clone());
        let snapshot_index = snapshot
            .as_ref()
            .map_or(Index(0), |snapshot| snapshot.last_included.index);
        let mut outbox = VecDeque::new();
        if let Some(snapshot) = &snapshot
            && applied < snapshot_index
        {
            outbox.push_back(Action::Restore(Box::new(snapshot.clone())));
        }
        let handed_out = applied.max(snapshot_index);
        let timers = Timers::new(
            &mut random,
            config.election_ticks_min(),
            config.election_ticks_max(),
        );
        let effective = log
            .latest_configuration()
            .map_or_else(|| membership.clone(), |(_, latest)| latest.clone());
        Shared {
            config,
            membership: effective,
            base_membership: membership,
            joining: false,
            blank_guard: BlankGuard::Off,
            unsafe_vote_warned: None,
            snapshot,
            snapshot_unflushed: None,
            snapshot_writes: VecDeque::new(),
            compaction_target: Index(0),
            bytes_since_snapshot: 0,
            snapshot_asked: false,
            hard_state,
            hard_state_dirty: false,
            leader: None,
            log,
            commit: handed_out,
            commit_candidate: handed_out,
            applied,
            apply_handed_out: handed_out,
            timers,
            random,
            outbox,
            last_write: WriteId(0),
            acknowledged: WriteId(0),
            deferred: VecDeque::new(),
            local_reads: LocalReads::default(),
            removed_by: None,
        }
    }

    pub(crate) fn id(&self) -> NodeId {
        self.config.id()
    }

    pub(crate) fn term(&self) -> Term {
        self.hard_state.term
    }

    pub(crate) fn next_action(&mut self) -> Option<Action> {
        self.outbox.pop_front()
    }

    pub(crate) fn outbox_is_empty(&self) -> bool {
        self.outbox.is_empty()
    }

    pub(crate) fn event(&mut self, event: Event) {
        self.outbox.push_back(Action::Event(event));
    }

    /// Sends a message that promises nothing about durability (a leader's appends and
    /// heartbeats): it may leave before pending writes are durable.
    pub(crate) fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_in_term(to, self.term(), body);
    }

    /// Sends a message in another term than the current one (a pre-vote, which speaks of
    /// the next term without entering it). It promises nothing durable.
    pub(crate) fn send_in_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        let message = self.message(to, term, body);
        self.outbox.push_back(Action::Send(message));
    }

    /// Asks the driver to send `to` the data of `snapshot` with an `InstallSnapshot`.
    pub(crate) fn send_snapshot(&mut self, to: NodeId, snapshot: SnapshotMetadata) {
        let body = MessageBody::InstallSnapshot {
            snapshot: Box::new(snapshot),
        };
        let message = self.message(to, self.term(), body);
        self.outbox.push_back(Action::SendSnapshot(message));
    }

    fn message(&self, to: NodeId, term: Term, body: MessageBody) -> Message {
        Message {
            from: self.id(),
            to,
            term,
            body,
        }
    }

    /// Sends a message that vouches for this node's state — a vote, an acknowledgement,
    /// or a vote request, which vouches for the candidate's term, vote and last entry: it
    /// leaves only once every write issued so far, including the one the current changes
    /// will produce, is durable. Otherwise a crash could take back what it claimed, and a
    /// peer's answer to it could be counted by a later incarnation that never claimed it.
    pub(crate) fn send_when_durable(&mut self, to: NodeId, body: MessageBody) {
        let message = self.message(to, self.term(), body);
        let after = self.pending_write_id();
        if after <= self.acknowledged {
            self.outbox.push_back(Action::Send(message));
        } else if self.deferred.len() < DEFERRED_MESSAGES_MAX {
            self.deferred.push_back(DeferredMessage { after, message });
        } else {
            // Raft tolerates a lost message; an unbounded queue behind a stuck disk it does not.
            tracing::debug!(node = self.id().0, %message, "deferred queue full; dropping");
        }
    }

    /// The id of the write that will carry every change made so far.
    pub(crate) fn pending_write_id(&self) -> WriteId {
        if self.has_unflushed() {
            WriteId(self.last_write.0 + 1)
        } else {
            self.last_write
        }
    }

    /// Storage acknowledged every write through `id`: release the answers that waited for
    /// it, except those from an earlier term, which no longer speak for this node.
    pub(crate) fn acknowledge(&mut self, id: WriteId) {
        self.acknowledged = id;
        self.log.acknowledge(id);
        while self
            .snapshot_writes
            .front()
            .is_some_and(|write| write.id <= id)
        {
            if let Some(write) = self.snapshot_writes.pop_front() {
                self.snapshot_durable(write.snapshot, write.origin);
            }
        }
        while self
            .deferred
            .front()
            .is_some_and(|deferred| deferred.after <= id)
        {
            let Some(deferred) = self.deferred.pop_front() else {
                break;
            };
            if deferred.message.term == self.term() {
                self.outbox.push_back(Action::Send(deferred.message));
            } else {
                tracing::trace!(
                    node = self.id().0,
                    message = %deferred.message,
                    "dropping an answer from an earlier term"
                );
            }
        }
    }

    /// Enters `term` with no vote.
    pub(crate) fn enter_term(&mut self, term: Term) {
        debug_assert!(term > self.hard_state.term, "terms only grow");
        self.hard_state = HardState { term, vote: None };
        self.hard_state_dirty = true;
        self.event(Event::TermChanged { term });
    }

    /// Records a vote in the current term.
    pub(crate) fn vote_for(&mut self, candidate: NodeId) {
        debug_assert!(
            self.hard_state.vote.is_none_or(|vote| vote == candidate),
            "at most one vote per term"
        );
        self.hard_state.vote = Some(candidate);
        self.hard_state_dirty = true;
    }

    /// The configuration in effect and the index of the entry it comes from: the newest
    /// configuration entry in the log, or, when the log holds none, the configuration at
    /// the log's base (a snapshot's, or a new cluster's at index 0).
    pub(crate) fn configuration_in_effect(&self) -> (Index, &Membership) {
        match self.log.latest_configuration() {
            Some((index, membership)) => (*index, membership),
            None => (self.log.base().index, &self.base_membership),
        }
    }

    /// Whether this node may campaign: it votes in the configuration in effect, or in the
    /// last one known committed. The second case matters when an uncommitted entry demotes
    /// or removes this node while its log is the longest: the others cannot win without
    /// its vote, so unless it campaigns (its votes counted under the new configuration,
    /// its own excluded) the cluster would wait forever.
    ///
    /// A node a leader told it was removed never campaigns (see [`Shared::is_removed`]).
    pub(crate) fn may_campaign(&self) -> bool {
        let me = self.id();
        if !self.admitted() || self.is_removed() {
            return false;
        }
        if self.membership.is_voter(me) {
            return true;
        }
        self.committed_configuration().1.is_voter(me)
    }

    /// The newest configuration known committed here, and the index it comes from: the
    /// newest configuration entry at or below the commit index, or the log's base.
    pub(crate) fn committed_configuration(&self) -> (Index, &Membership) {
        match self.log.configuration_through(self.commit) {
            Some((index, membership)) => (*index, membership),
            None => (self.log.base().index, &self.base_membership),
        }
    }

    /// Whether a leader told this node that its committed configuration removed it, and
    /// no later configuration has reached this node since (a leader that replicates one to
    /// it counts it as a member again).
    pub(crate) fn is_removed(&self) -> bool {
        self.removed_by
            .is_some_and(|index| self.configuration_in_effect().0 <= index)
    }

    /// The index of this node's committed configuration if it leaves `node` out, and so
    /// does the configuration in effect (a node being added is not removed): a leader
    /// tells such a node it was removed.
    pub(crate) fn removal_of(&self, node: NodeId) -> Option<Index> {
        let (index, committed) = self.committed_configuration();
        (!committed.contains(node) && !self.membership.contains(node)).then_some(index)
    }

    /// Whether the cluster has admitted this node: always, unless it started as a joining
    /// node and no configuration listing it has reached its log or snapshot yet.
    pub(crate) fn admitted(&self) -> bool {
        !self.joining || self.membership.contains(self.id())
    }

    /// Brings `membership` in line with the log after entries were appended or truncated,
    /// announcing a change.
    pub(crate) fn refresh_membership(&mut self) {
        let (index, latest) = self.configuration_in_effect();
        if *latest != self.membership {
            self.membership = latest.clone();
            tracing::info!(
                node = self.id().0,
                term = self.term().0,
                index = index.0,
                membership = %self.membership,
                "configuration changed"
            );
            self.event(Event::MembershipChanged { index });
        }
    }

    pub(crate) fn set_leader(&mut self, leader: Option<NodeId>) {
        if self.leader != leader {
            self.leader = leader;
            self.event(Event::LeaderChanged { leader });
            // The old leader will never answer the reads forwarded to it.
            let node = self.id();
            for sequence in self.local_reads.abandon() {
                self.event(Event::ReadAborted {
                    id: ReadId { node, sequence },
                });
            }
        }
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.timers.reset_election(
            &mut self.random,
            self.config.election_ticks_min(),
            self.config.election_ticks_max(),
        );
    }

    pub(crate) fn set_commit(&mut self, commit: Index) {
        debug_assert!(commit > self.commit, "the commit index only grows");
        debug_assert!(commit <= self.log.last_index(), "only held entries commit");
        self.commit = commit;
        self.event(Event::CommitAdvanced { commit });
    }

    /// Follower side: moves the commit index as far as the leader allowed and the durable
    /// log reaches.
    pub(crate) fn advance_follower_commit(&mut self) {
        let reachable = self.commit_candidate.min(self.log.durable_index());
        if reachable > self.commit {
            self.set_commit(reachable);
        }
    }

    fn has_unflushed(&self) -> bool {
        self.hard_state_dirty || self.log.has_unflushed() || self.snapshot_unflushed.is_some()
    }

    /// Issues one write carrying every change not yet written.
    pub(crate) fn flush_writes(&mut self) {
        if !self.has_unflushed() {
            return;
        }
        let id = WriteId(self.last_write.0 + 1);
        self.last_write = id;
        let hard_state = self.hard_state_dirty.then_some(self.hard_state);
        self.hard_state_dirty = false;
        let snapshot = self.snapshot_unflushed.take().map(|(snapshot, origin)| {
            self.snapshot_writes.push_back(SnapshotWrite {
                id,
                snapshot: snapshot.clone(),
                origin,
            });
            Box::new(snapshot)
        });
        let log = self.log.take_unflushed(id);
        self.outbox.push_back(Action::Persist(Write {
            id,
            hard_state,
            snapshot,
            log,
        }));
    }

    /// The last index of the newest snapshot, durable or on its way to storage, or of the
    /// compaction point if that is newer.
    pub(crate) fn newest_snapshot_index(&self) -> Index {
        let stored = self
            .snapshot
            .iter()
            .chain(self.snapshot_unflushed.iter().map(|(snapshot, _)| snapshot))
            .chain(self.snapshot_writes.iter().map(|write| &write.snapshot))
            .map(|snapshot| snapshot.last_included.index)
            .max()
            .unwrap_or(Index(0));
        stored.max(self.log.base().index)
    }

    /// The metadata of a snapshot through `index`, which the log holds (or is its base).
    pub(crate) fn snapshot_metadata(&self, index: Index) -> Option<SnapshotMetadata> {
        let term = self.log.term_at(index)?;
        let membership = self
            .log
            .configuration_through(index)
            .map_or(&self.base_membership, |(_, membership)| membership)
            .clone();
        Some(SnapshotMetadata {
            last_included: LogId { term, index },
            membership,
        })
    }

    /// The driver built a snapshot from the state machine: the next write stores it.
    pub(crate) fn snapshot_built(&mut self, snapshot: SnapshotMetadata) {
        let index = snapshot.last_included.index;
        self.bytes_since_snapshot = self.log.payload_bytes_between(index, self.applied);
        self.snapshot_asked = false;
        self.snapshot_unflushed = Some((snapshot, SnapshotOrigin::Built));
    }

    /// Replaces the log with a snapshot from `leader` that ends past this node's commit
    /// index and that its log does not hold: everything through it is committed, and
    /// the state machine is restored from it once it is durable.
    pub(crate) fn install_snapshot(&mut self, snapshot: SnapshotMetadata) {
        let last = snapshot.last_included;
        debug_assert!(
            last.index > self.commit,
            "only snapshots past the commit index"
        );
        tracing::info!(
            node = self.id().0,
            term = self.term().0,
            snapshot = %last,
            "installing a snapshot from the leader"
        );
        self.log.install_snapshot(last);
        self.base_membership = snapshot.membership.clone();
        self.refresh_membership();
        self.commit_candidate = last.index;
        self.set_commit(last.index);
        self.apply_handed_out = last.index;
        self.bytes_since_snapshot = 0;
        self.snapshot_asked = false;
        self.snapshot_unflushed = Some((snapshot, SnapshotOrigin::Installed));
    }

    /// A write storing `snapshot` is durable: a built one lets the log prefix go (but
    /// the trailing entries), an installed one is restored into the state machine.
    fn snapshot_durable(&mut self, snapshot: SnapshotMetadata, origin: SnapshotOrigin) {
        let last = snapshot.last_included;
        let newer = self
            .snapshot
            .as_ref()
            .is_none_or(|current| current.last_included.index < last.index);
        if newer {
            self.snapshot = Some(snapshot.clone());
        }
        match origin {
            SnapshotOrigin::Installed => {
                // A later install on its way replaces this snapshot in storage, so the
                // state machine waits for that one (a crash first restores this one from
                // storage on restart).
                let superseded = self
                    .snapshot_writes
                    .iter()
                    .map(|write| write.origin)
                    .chain(self.snapshot_unflushed.iter().map(|(_, origin)| *origin))
                    .any(|origin| origin == SnapshotOrigin::Installed);
                if !superseded {
                    self.outbox.push_back(Action::Restore(Box::new(snapshot)));
                }
            }
            SnapshotOrigin::Built => {
                let through = Index(
                    last.index
                        .0
                        .saturating_sub(self.config.compaction_trailing_entries()),
                );
                if through > self.log.base().index && self.log.matches(last) {
                    self.compaction_target = self.compaction_target.max(through);
                    self.compact_some();
                }
            }
        }
    }

    /// Drops up to [`COMPACTION_BATCH_ENTRIES`] more entries toward the compaction target.
    ///
    /// Compacting a large prefix at once (tens of thousands of entries with the default
    /// threshold) would stall the node for milliseconds while the entries are freed, a
    /// pause every client waiting on it would see; in batches, one per flush, the cost is
    /// spread over the inputs that follow. Until the target is reached the log just keeps
    /// more committed entries than it must, which is always allowed.
    pub(crate) fn compact_some(&mut self) {
        let base = self.log.base().index;
        // Also covers a snapshot installed since the target was set: the log then starts
        // after it (an installed snapshot lies past the commit index, the target below).
        if self.compaction_target <= base {
            return;
        }
        let through = Index(
            self.compaction_target
                .0
                .min(base.0.saturating_add(COMPACTION_BATCH_ENTRIES)),
        );
        if let Some((_, membership)) = self.log.configuration_through(through) {
            self.base_membership = membership.clone();
        }
        self.log.compact_through(through);
    }

    /// The state machine moved from `previous` to `applied`: asks for a snapshot once
    /// enough log accumulated since the last one.
    pub(crate) fn count_applied(&mut self, previous: Index, applied: Index) {
        let bytes = self.log.payload_bytes_between(previous, applied);
        self.bytes_since_snapshot = self.bytes_since_snapshot.saturating_add(bytes);
        if !self.snapshot_asked && self.bytes_since_snapshot >= self.config.snapshot_log_bytes() {
            self.snapshot_asked = true;
            self.event(Event::SnapshotWanted { applied });
        }
    }

    /// Hands out the committed entries that are durable here and not yet handed out.
    pub(crate) fn emit_applies(&mut self) {
        let through = self.commit.min(self.log.durable_index());
        if through > self.apply_handed_out {
            let entries = self
                .log
                .entries_between(self.apply_handed_out.next(), through);
            self.apply_handed_out = through;
            self.outbox.push_back(Action::Apply(entries));
        }
    }
}
