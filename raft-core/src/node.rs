//! The node: the facade through which a driver feeds inputs and drains actions.

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::action::{Action, Event, ReadId, WriteId};
use crate::config::Config;
use crate::election::BlankGuard;
use crate::error::{
    AcknowledgementError, CampaignError, MembershipError, ProposeError, ReadError, RecoveryError,
    SnapshotError, TransferError,
};
use crate::log::RaftLog;
use crate::message::{AppendResponse, Message, MessageBody};
use crate::quorum::Membership;
use crate::read::{self, Requester};
use crate::recovered::Recovered;
use crate::role::RoleState;
use crate::role::leader::LeaderTick;
use crate::shared::Shared;
use crate::snapshot::{SnapshotMetadata, SnapshotTransfer};
use crate::status::{Role, Status};
use crate::types::{Entry, Index, LogId, NodeId, Term};

/// What became of a proposal that [`Node::propose`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Proposal {
    /// The leader appended it as this entry. It is committed if and when an `Apply`
    /// action hands out an entry with this id; an entry with the same index and another
    /// term means it was lost to a change of leader.
    Appended(LogId),
    /// This follower forwarded it to `leader`, which may or may not append it.
    Forwarded {
        /// The leader it was sent to.
        leader: NodeId,
    },
}

impl Proposal {
    /// The entry's id, when this node appended it itself.
    pub fn log_id(&self) -> Option<LogId> {
        match self {
            Proposal::Appended(id) => Some(*id),
            Proposal::Forwarded { .. } => None,
        }
    }
}

/// One Raft node: a deterministic state machine with no I/O, no clock and no threads.
///
/// Its methods fall in four families:
///
/// - **inputs** report what happened: [`tick`](Node::tick) (one logical clock tick),
///   [`step`](Node::step) (a message arrived), [`persisted`](Node::persisted) (storage
///   made writes durable), [`applied`](Node::applied) (the state machine caught up);
/// - **commands** ask for something: [`propose`](Node::propose),
///   [`campaign`](Node::campaign); they return typed errors;
/// - **outputs**: [`poll_action`](Node::poll_action), to be drained after every input and
///   command; actions come out in the order they must be carried out;
/// - **getters**: [`role`](Node::role), [`term`](Node::term), [`leader`](Node::leader),
///   [`commit_index`](Node::commit_index), [`status`](Node::status).
///
/// The call order is free: any input or command at any time, then drain. Nothing the node
/// says vouches for state that storage has not made durable: answers to peers wait for
/// [`persisted`](Node::persisted), so a driver cannot break safety by being slow.
#[derive(Debug)]
pub struct Node {
    pub(crate) role: RoleState,
    pub(crate) shared: Shared,
}

impl Node {
    /// Starts a node from what storage recovered (or from [`Recovered::new_cluster`]).
    ///
    /// The node starts as a follower with no leader. The commit index starts at the
    /// recovered applied index; later entries are handed out again once the cluster
    /// confirms them committed.
    pub fn new(config: Config, recovered: Recovered) -> Result<Node, RecoveryError> {
        recovered.validate()?;
        let random = ChaCha8Rng::seed_from_u64(config.random_seed());
        let base = recovered
            .snapshot
            .as_ref()
            .map_or(LogId::default(), |snapshot| snapshot.last_included);
        // Entries the snapshot covers may still be in storage; the log starts after it.
        let entries = recovered
            .entries
            .into_iter()
            .filter(|entry| entry.index() > base.index)
            .collect();
        let mut shared = Shared::new(
            config,
            recovered.membership,
            recovered.snapshot,
            recovered.hard_state,
            RaftLog::recovered(base, entries),
            recovered.applied,
            random,
        );
        shared.joining = recovered.joining;
        if recovered.fresh_storage {
            shared.blank_guard = BlankGuard::Undecided;
        }
        tracing::debug!(
            node = shared.id().0,
            term = shared.term().0,
            last = shared.log.last_index().0,
            applied = shared.applied.0,
            "node started"
        );
        Ok(Node {
            role: RoleState::Follower,
            shared,
        })
    }

    // ----- getters -----

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.id()
    }

    /// The node's role.
    pub fn role(&self) -> Role {
        self.role.role()
    }

    /// The node's current term.
    pub fn term(&self) -> Term {
        self.shared.term()
    }

    /// The leader this node knows of in its current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.shared.leader
    }

    /// The highest index known committed.
    pub fn commit_index(&self) -> Index {
        self.shared.commit
    }

    /// The id of the last entry in the log.
    pub fn last_log_id(&self) -> LogId {
        self.shared.log.last_id()
    }

    /// The entry at `index`, if the in-memory log holds it.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.shared.log.entry(index)
    }

    /// The last entry dropped from the in-memory log (covered by a snapshot), or `0.0`.
    /// [`entry`](Node::entry) returns nothing at or below it.
    pub fn compacted_through(&self) -> LogId {
        self.shared.log.base()
    }

    /// The newest durable snapshot: the one a leader sends to followers that need it.
    pub fn snapshot(&self) -> Option<&SnapshotMetadata> {
        self.shared.snapshot.as_ref()
    }

    /// Every entry of the in-memory log, in index order (for checkers and tools).
    pub fn log_entries(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.shared.log.iter()
    }

    /// The highest index the state machine reported applied.
    pub fn applied_index(&self) -> Index {
        self.shared.applied
    }

    /// The membership this node follows.
    pub fn membership(&self) -> &Membership {
        &self.shared.membership
    }

    /// A snapshot of the node's state, with per-follower progress on a leader.
    pub fn status(&self) -> Status {
        let shared = &self.shared;
        Status {
            id: shared.id(),
            role: self.role(),
            term: shared.term(),
            vote: shared.hard_state.vote,
            leader: shared.leader,
            quorum_contact_age_ticks: match &self.role {
                RoleState::Leader(leader) => Some(leader.quorum_contact_age_ticks(shared)),
                _ => None,
            },
            commit: shared.commit,
            applied: shared.applied,
            last_index: shared.log.last_index(),
            durable_index: shared.log.durable_index(),
            snapshot_index: shared
                .snapshot
                .as_ref()
                .map_or(Index(0), |snapshot| snapshot.last_included.index),
            membership: shared.membership.clone(),
            removed: shared.is_removed(),
            followers: match &self.role {
                RoleState::Leader(leader) => leader.follower_statuses(shared),
                _ => Vec::new(),
            },
            transfer: match &self.role {
                RoleState::Leader(leader) => leader.transfer_status(shared),
                _ => None,
            },
        }
    }

    // ----- outputs -----

    /// The next action to carry out, or `None` when there is nothing more to do until the
    /// next input.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.shared.outbox_is_empty() {
            self.flush();
        }
        self.shared.next_action()
    }

    /// Turns the changes accumulated since the last flush into actions. Deferring this to
    /// the first poll batches everything one input (or many proposals) produced into one
    /// write and one append per follower.
    fn flush(&mut self) {
        if let RoleState::Leader(leader) = &self.role
            && leader.removed()
        {
            tracing::info!(
                node = self.id().0,
                term = self.term().0,
                "removed from the configuration; stepping down"
            );
            self.become_follower(self.term(), None);
        }
        if let RoleState::Leader(leader) = &mut self.role {
            leader.flush(&mut self.shared);
        }
        self.shared.flush_writes();
        self.shared.emit_applies();
        self.shared.compact_some();
    }

    // ----- inputs -----

    /// One tick of the logical clock: followers and candidates count toward an election,
    /// leaders toward the next heartbeat.
    pub fn tick(&mut self) {
        let _span = self.span("tick");
        match &mut self.role {
            RoleState::Leader(leader) => {
                if leader.tick(&mut self.shared) == LeaderTick::StepDown {
                    self.become_follower(self.term(), None);
                }
            }
            RoleState::Follower | RoleState::PreCandidate(_) | RoleState::Candidate(_) => {
                let timers = &mut self.shared.timers;
                timers.election_elapsed += 1;
                if timers.election_elapsed >= timers.election_timeout {
                    self.election_timed_out();
                }
            }
        }
    }

    /// Storage made every write up to and including `write` durable.
    ///
    /// Acknowledging a write that was already acknowledged is harmless; acknowledging one
    /// that was never issued is an error and changes nothing.
    pub fn persisted(&mut self, write: WriteId) -> Result<(), AcknowledgementError> {
        let _span = self.span("persisted");
        if write > self.shared.last_write {
            return Err(AcknowledgementError::UnknownWrite {
                write: write.0,
                last_issued: self.shared.last_write.0,
            });
        }
        if write <= self.shared.acknowledged {
            return Ok(());
        }
        self.shared.acknowledge(write);
        match &mut self.role {
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => self.check_election(),
            RoleState::Leader(leader) => leader.maybe_commit(&mut self.shared),
            RoleState::Follower => self.shared.advance_follower_commit(),
        }
        Ok(())
    }

    /// The state machine applied every entry up to and including `index`.
    pub fn applied(&mut self, index: Index) -> Result<(), AcknowledgementError> {
        if index > self.shared.apply_handed_out {
            return Err(AcknowledgementError::AppliedBeyondHandedOut {
                applied: index,
                last_handed_out: self.shared.apply_handed_out,
            });
        }
        let previous = self.shared.applied;
        if index > previous {
            self.shared.applied = index;
            self.shared.count_applied(previous, index);
        }
        Ok(())
    }

    /// The driver built a snapshot of the state machine as of `index`, which must have
    /// been reported [`applied`](Node::applied). Returns the metadata to store beside the
    /// data; a [`Write`](crate::Write) naming it follows, and once that write is durable the
    /// log prefix it covers is dropped from memory (but for
    /// [`compaction_trailing_entries`](crate::Config::compaction_trailing_entries)).
    ///
    /// A snapshot no newer than one already stored or on its way is refused with
    /// [`SnapshotError::Stale`]: it can happen when a leader's snapshot arrived while this
    /// one was being built, and the driver should discard it.
    pub fn snapshot_built(&mut self, index: Index) -> Result<SnapshotMetadata, SnapshotError> {
        let _span = self.span("snapshot_built");
        let applied = self.shared.applied;
        if index > applied {
            return Err(SnapshotError::NotApplied { index, applied });
        }
        let newest = self.shared.newest_snapshot_index();
        if index <= newest {
            return Err(SnapshotError::Stale { index, newest });
        }
        let Some(snapshot) = self.shared.snapshot_metadata(index) else {
            // Applied entries above every snapshot are held in memory; this is a bug.
            debug_assert!(false, "applied entry {index} missing from the log");
            return Err(SnapshotError::Stale { index, newest });
        };
        tracing::debug!(node = self.id().0, %snapshot, "snapshot built");
        self.shared.snapshot_built(snapshot.clone());
        Ok(snapshot)
    }

    /// The transport's report on a snapshot it was asked to send to `follower` with
    /// [`Action::SendSnapshot`]. Until it arrives the leader sends that follower no
    /// entries. Reports that no longer apply (this node stopped leading, or the follower
    /// already acknowledged the snapshot) are ignored.
    pub fn snapshot_sent(&mut self, follower: NodeId, outcome: SnapshotTransfer) {
        let _span = self.span("snapshot_sent");
        if let RoleState::Leader(leader) = &mut self.role {
            leader.snapshot_sent(&mut self.shared, follower, outcome);
        }
    }

    /// A message from a peer. Malformed, stale or misaddressed messages are dropped with a
    /// trace event; no message can make the node panic.
    pub fn step(&mut self, message: Message) {
        let _span = self.span("step");
        let me = self.id();
        if message.to != me || message.from == me || message.from.0 == 0 {
            tracing::debug!(node = me.0, %message, "dropping a misaddressed message");
            return;
        }
        self.observe_cluster_log(&message.body);
        if self.tell_removed(&message) {
            return;
        }
        let term = self.term();
        // Pre-votes speak of the next term without entering it, and a voter that still
        // hears from its leader ignores vote requests (leader stickiness), so these are
        // handled before the general rule that a higher term is adopted at once.
        match message.body {
            MessageBody::PreVote { last_log, transfer } => {
                self.handle_pre_vote(message.from, message.term, last_log, transfer);
                return;
            }
            MessageBody::PreVoteResponse { granted } => {
                self.handle_pre_vote_response(message.from, message.term, granted);
                return;
            }
            MessageBody::RequestVote {
                transfer: false, ..
            } if message.term > term && self.in_lease() => {
                tracing::debug!(node = me.0, %message, "ignoring a vote request: the leader is alive");
                return;
            }
            _ => {}
        }
        if message.term > term {
            let leader = match message.body {
                MessageBody::AppendEntries { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. } => Some(message.from),
                _ => None,
            };
            self.become_follower(message.term, leader);
        } else if message.term < term {
            self.answer_stale(message);
            return;
        }
        let from = message.from;
        match message.body {
            MessageBody::RequestVote { last_log, .. } => self.handle_request_vote(from, last_log),
            MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { .. } => {}
            MessageBody::TimeoutNow => {
                // Only this term's leader sends TimeoutNow in this term (one of an earlier
                // term was dropped above), even if this node has not heard from it since a
                // restart. It may still be stale: the leader confirms it first.
                let from_leader = self.shared.leader.is_none_or(|leader| leader == from);
                if matches!(self.role, RoleState::Follower)
                    && self.shared.membership.is_voter(me)
                    && !self.shared.is_removed()
                    && from_leader
                {
                    tracing::info!(
                        node = me.0,
                        term = self.term().0,
                        "leadership handed over; asking the leader to confirm"
                    );
                    self.confirm_transfer(from);
                }
            }
            MessageBody::RequestVoteResponse { granted } => {
                if let RoleState::Candidate(candidate) = &mut self.role
                    && self.shared.membership.is_voter(from)
                {
                    candidate.record(from, granted);
                    self.check_election();
                }
            }
            MessageBody::AppendEntries {
                previous,
                entries,
                commit,
            } => {
                if self.accept_leader(from) {
                    self.shared
                        .handle_append(from, message.term, previous, entries, commit);
                }
            }
            MessageBody::InstallSnapshot { snapshot } => {
                if self.accept_leader(from) {
                    self.shared
                        .handle_install_snapshot(from, message.term, *snapshot);
                }
            }
            MessageBody::Heartbeat { commit, round } => {
                if self.accept_leader(from) {
                    self.shared.handle_heartbeat(from, commit, round);
                }
            }
            MessageBody::AppendEntriesResponse(response) => {
                if let RoleState::Leader(leader) = &mut self.role {
                    leader.handle_append_response(&mut self.shared, from, response);
                }
            }
            MessageBody::HeartbeatResponse { round } => {
                if let RoleState::Leader(leader) = &mut self.role {
                    leader.handle_heartbeat_response(&mut self.shared, from, round);
                }
            }
            MessageBody::ReadIndex { request } => {
                let requester = Requester::Remote {
                    node: from,
                    request,
                };
                let accepted = match &mut self.role {
                    RoleState::Leader(leader) => leader.read(&mut self.shared, requester).is_ok(),
                    _ => false,
                };
                if !accepted {
                    read::answer(&mut self.shared, requester, None);
                }
            }
            MessageBody::ReadIndexResponse { request, index } => {
                if self.shared.local_reads.answered(from, request) {
                    let id = ReadId {
                        node: me,
                        sequence: request,
                    };
                    let event = match index {
                        Some(index) => Event::ReadReady { id, index },
                        None => Event::ReadAborted { id },
                    };
                    self.shared.event(event);
                }
            }
            MessageBody::Removed { index } => self.handle_removed(from, index),
            MessageBody::ForwardProposals { commands } => {
                if let RoleState::Leader(leader) = &mut self.role {
                    for command in commands {
                        if let Err(error) = leader.propose(&mut self.shared, command) {
                            tracing::debug!(node = me.0, %error, "dropping a forwarded proposal");
                        }
                    }
                } else {
                    tracing::debug!(node = me.0, "dropping proposals forwarded to a non-leader");
                }
            }
        }
    }

    // ----- commands -----

    /// Proposes a command for the replicated log.
    ///
    /// On the leader the command is appended and its entry id returned. Elsewhere the
    /// result is [`ProposeError::NotLeader`], or, when forwarding is enabled and a leader
    /// is known, the command is forwarded to it.
    pub fn propose(&mut self, command: Bytes) -> Result<Proposal, ProposeError> {
        match &mut self.role {
            RoleState::Leader(leader) => leader
                .propose(&mut self.shared, command)
                .map(Proposal::Appended),
            RoleState::Follower | RoleState::PreCandidate(_) | RoleState::Candidate(_) => {
                match self.shared.leader {
                    Some(leader) if self.shared.config.forward_proposals() => {
                        self.shared.send(
                            leader,
                            MessageBody::ForwardProposals {
                                commands: vec![command],
                            },
                        );
                        Ok(Proposal::Forwarded { leader })
                    }
                    leader_hint => Err(ProposeError::NotLeader { leader_hint }),
                }
            }
        }
    }

    /// Starts an election now instead of waiting for the election timeout.
    ///
    /// This is an operator's command, like the last step of a leadership transfer: it skips
    /// pre-vote, and voters that still hear from a leader vote anyway. Elections started by
    /// timeouts use pre-vote and respect leader stickiness.
    pub fn campaign(&mut self) -> Result<(), CampaignError> {
        let _span = self.span("campaign");
        if !self.shared.may_campaign() {
            return Err(CampaignError::NotVoter);
        }
        if matches!(self.role, RoleState::Leader(_)) {
            return Err(CampaignError::AlreadyLeader);
        }
        self.become_candidate(true);
        Ok(())
    }

    /// Asks for a linearizable read. The returned id comes back in
    /// [`Event::ReadReady`] with an index: once the state machine has applied it, a read
    /// of the local state reflects every write completed before this call. Or it comes
    /// back in [`Event::ReadAborted`] when leadership changed first; ask again then.
    ///
    /// On the leader the read joins the next heartbeat round (all reads between two
    /// flushes share one round), or is answered at once from the lease when
    /// [`read_lease`](crate::Config::read_lease) is on. A new leader holds reads until an
    /// entry of its own term commits. Elsewhere the read is forwarded to the leader.
    pub fn read_index(&mut self) -> Result<ReadId, ReadError> {
        let me = self.id();
        match &mut self.role {
            RoleState::Leader(leader) => {
                let id = self.shared.local_reads.next_id(me);
                leader.read(&mut self.shared, Requester::Local(id))?;
                Ok(id)
            }
            _ => {
                let Some(leader) = self.shared.leader else {
                    return Err(ReadError::NoLeader);
                };
                if self.shared.local_reads.len() >= self.shared.config.pending_reads_max() {
                    return Err(ReadError::TooManyPending);
                }
                let id = self.shared.local_reads.next_id(me);
                self.shared.local_reads.forward(leader, id);
                self.shared.send(
                    leader,
                    MessageBody::ReadIndex {
                        request: id.sequence,
                    },
                );
                Ok(id)
            }
        }
    }

    /// Changes the cluster's configuration to `voters` and `learners`, returning the id of
    /// the configuration entry.
    ///
    /// Configurations take effect when appended, on every node, because a node must count
    /// votes and commits with the configuration its log ends with for the joint-consensus
    /// argument to hold; applying them only once committed would need a second notion of
    /// "current" configuration per node. A change of at most one voter takes effect in one
    /// step; a larger one passes through a joint configuration, which the leader of the
    /// moment leaves automatically once it commits. One change at a time: a change is
    /// refused while another is uncommitted or the cluster is still joint. A leader the
    /// new configuration removes steps down once it commits. Learners receive the log, do
    /// not vote and do not campaign; listing one among the voters promotes it.
    pub fn change_membership(
        &mut self,
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Result<LogId, MembershipError> {
        let _span = self.span("change_membership");
        match &mut self.role {
            RoleState::Leader(leader) => leader.change_membership(
                &mut self.shared,
                voters.into_iter().collect(),
                learners.into_iter().collect(),
            ),
            _ => Err(MembershipError::NotLeader {
                leader_hint: self.shared.leader,
            }),
        }
    }

    /// Hands leadership to `target`: the leader brings it up to date, then tells it to
    /// campaign at once (`TimeoutNow`; the target first asks this node to confirm that the
    /// transfer is still on, so that a late `TimeoutNow` cannot depose a leader that gave
    /// the transfer up: see [`MessageBody::PreVote`]). Proposals are refused with
    /// [`DropReason::LeadershipTransfer`](crate::DropReason::LeadershipTransfer) meanwhile.
    /// If the target has not taken over within an election timeout, the transfer is
    /// abandoned and this node goes on leading; [`Status::transfer`] shows the ticks left.
    ///
    /// Asking again for the target of the transfer in progress changes nothing (its
    /// deadline stays that of the first request); asking for another target is refused
    /// with [`TransferError::TransferInProgress`] until the first transfer ends.
    pub fn transfer_leader(&mut self, target: NodeId) -> Result<(), TransferError> {
        let _span = self.span("transfer_leader");
        match &mut self.role {
            RoleState::Leader(leader) => leader.transfer_leader(&mut self.shared, target),
            _ => Err(TransferError::NotLeader {
                leader_hint: self.shared.leader,
            }),
        }
    }

    /// The target of the leadership transfer in progress, on a leader.
    pub fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.transfer_target(),
            _ => None,
        }
    }

    /// A span naming the node, its term and role around one input, so that every trace
    /// event inside says where it happened. Free when no subscriber listens.
    fn span(&self, input: &'static str) -> tracing::span::EnteredSpan {
        tracing::debug_span!(
            "raft",
            node = self.shared.id().0,
            term = self.shared.term().0,
            role = %self.role.role(),
            input
        )
        .entered()
    }

    // ----- message handlers shared by roles -----

    /// On a leader, answers a vote request, pre-vote or response from a node that both
    /// the committed configuration and the one in effect leave out with
    /// [`MessageBody::Removed`], and drops the message: such a node missed the entry that
    /// removed it (nobody replicates to it any more) and would otherwise campaign forever.
    /// Its term is not adopted either: whatever it asks can lead nowhere, since it lacks a
    /// committed entry that a quorum holds. Returns whether the message was answered so.
    fn tell_removed(&mut self, message: &Message) -> bool {
        let answered = matches!(
            message.body,
            MessageBody::PreVote { .. }
                | MessageBody::RequestVote { .. }
                | MessageBody::PreVoteResponse { .. }
                | MessageBody::RequestVoteResponse { .. }
                | MessageBody::AppendEntriesResponse(_)
                | MessageBody::HeartbeatResponse { .. }
        );
        if !answered || !matches!(self.role, RoleState::Leader(_)) {
            return false;
        }
        let Some(index) = self.shared.removal_of(message.from) else {
            return false;
        };
        tracing::debug!(
            node = self.id().0,
            term = self.term().0,
            %message,
            configuration = index.0,
            "telling a removed node so"
        );
        self.shared
            .send(message.from, MessageBody::Removed { index });
        true
    }

    /// Answers a message from an earlier term so that its sender learns the current term.
    fn answer_stale(&mut self, message: Message) {
        match message.body {
            MessageBody::AppendEntries { .. }
            | MessageBody::Heartbeat { .. }
            | MessageBody::InstallSnapshot { .. } => {
                self.shared.send_when_durable(
                    message.from,
                    MessageBody::AppendEntriesResponse(AppendResponse::StaleTerm),
                );
            }
            MessageBody::RequestVote { .. } => {
                self.shared.send_when_durable(
                    message.from,
                    MessageBody::RequestVoteResponse { granted: false },
                );
            }
            _ => {
                tracing::trace!(node = self.id().0, %message, "dropping a message from an earlier term");
            }
        }
    }

    /// Makes this node follow `leader`, which sent an append or heartbeat in the current
    /// term. Returns false when the message cannot be from a legitimate leader.
    fn accept_leader(&mut self, leader: NodeId) -> bool {
        match &self.role {
            RoleState::PreCandidate(tally) if tally.confirming_leader() == Some(leader) => {
                // Waiting for this leader to confirm its transfer: follow it meanwhile, but
                // leave the election timer running, which bounds the wait.
                self.shared.set_leader(Some(leader));
                return true;
            }
            RoleState::Leader(_) => {
                tracing::error!(
                    node = self.id().0,
                    term = self.term().0,
                    other = leader.0,
                    "another leader claims this term; dropping its message"
                );
                return false;
            }
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => {
                self.become_follower(self.term(), Some(leader))
            }
            RoleState::Follower => self.shared.set_leader(Some(leader)),
        }
        self.shared.reset_election_timer();
        true
    }

    // ----- role transitions -----

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if let RoleState::Leader(leader_state) = &mut self.role {
            leader_state.abort_reads(&mut self.shared);
        }
        if term > self.term() {
            self.shared.enter_term(term);
        }
        if !matches!(self.role, RoleState::Follower) {
            self.role = RoleState::Follower;
            self.shared.event(Event::RoleChanged {
                role: Role::Follower,
            });
        }
        self.shared.set_leader(leader);
        self.shared.reset_election_timer();
        tracing::debug!(
            node = self.id().0,
            term = self.term().0,
            role = "follower",
            leader = leader.map(|leader| leader.0),
            "following"
        );
    }
}
