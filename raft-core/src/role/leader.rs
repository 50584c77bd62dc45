//! The leader: appends proposals, drives each follower's replication, and decides commits.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::action::Event;
use crate::error::{DropReason, MembershipError, ProposeError, ReadError, TransferError};
use crate::message::{AppendResponse, MessageBody};
use crate::progress::{Progress, ReplicationState};
use crate::quorum::{Membership, VoteResult};
use crate::read::{self, ReadQueue, Requester};
use crate::shared::Shared;
use crate::snapshot::SnapshotTransfer;
use crate::status::{FollowerStatus, TransferStatus};
use crate::types::{ENTRY_OVERHEAD_BYTES, Entry, Index, LogId, NodeId, Payload};

/// A leadership transfer in progress.
#[derive(Clone, Copy, Debug)]
struct Transfer {
    target: NodeId,
    /// Ticks since the transfer began; it is abandoned after an election timeout.
    elapsed: u32,
    /// `TimeoutNow` went out: the target has everything and was told to campaign.
    timeout_sent: bool,
}

/// What a leader's tick asks of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaderTick {
    /// Go on leading.
    Continue,
    /// No quorum answered within an election timeout: step down (check-quorum).
    StepDown,
}

/// A leader's own state.
#[derive(Debug)]
pub(crate) struct LeaderState {
    /// Every other member's replication progress, voters and learners alike.
    progress: BTreeMap<NodeId, Progress>,
    /// Accounted bytes of entries after the commit index.
    uncommitted_bytes: usize,
    /// Entries were appended since followers were last sent what they lack.
    entries_pending: bool,
    /// The commit index advanced since followers were last told.
    commit_pending: bool,
    transfer: Option<Transfer>,
    reads: ReadQueue,
    /// Ticks since this node became leader: the clock of its lease.
    ticks: u64,
    /// A committed configuration no longer lists this node as a voter: it steps down.
    removed: bool,
}

impl LeaderState {
    /// A new leader's state: nothing is known of the followers' logs yet.
    pub(crate) fn new(shared: &Shared) -> LeaderState {
        let me = shared.id();
        let next = shared.log.last_index().next();
        let progress = shared
            .membership
            .members()
            .into_iter()
            .filter(|member| *member != me)
            .map(|member| (member, Progress::new(next)))
            .collect();
        LeaderState {
            progress,
            uncommitted_bytes: shared.log.payload_bytes_after(shared.commit),
            entries_pending: false,
            commit_pending: false,
            transfer: None,
            reads: ReadQueue::new(),
            ticks: 0,
            removed: false,
        }
    }

    /// Appends an entry of the current term to the leader's log.
    fn append(&mut self, shared: &mut Shared, payload: Payload) -> LogId {
        let id = LogId {
            term: shared.term(),
            index: shared.log.last_index().next(),
        };
        self.uncommitted_bytes += payload.accounted_size();
        shared.log.push(Entry { id, payload });
        self.entries_pending = true;
        id
    }

    /// Appends a configuration entry; it takes effect at once, here as on every node that
    /// appends it.
    fn append_configuration(&mut self, shared: &mut Shared, membership: Membership) -> LogId {
        let id = self.append(shared, Payload::Membership(Box::new(membership)));
        shared.refresh_membership();
        self.update_members(shared);
        id
    }

    /// Tracks exactly the members of the configuration in effect (this node aside).
    fn update_members(&mut self, shared: &Shared) {
        let me = shared.id();
        let members = shared.membership.members();
        self.progress.retain(|node, _| members.contains(node));
        // Called right after a configuration entry is appended: new members start probing
        // at that entry, so that their first append carries it.
        let next = shared.log.last_index();
        for member in members {
            if member != me {
                // A member added now has not been silent for longer than it has existed.
                self.progress.entry(member).or_insert_with(|| {
                    let mut progress = Progress::new(next);
                    progress.heard_tick = self.ticks;
                    progress
                });
            }
        }
    }

    /// Starts moving to the configuration of `voters` and `learners`. A change of at most
    /// one voter takes effect in one step; a larger one goes through a joint configuration
    /// (both the old and the new voters must agree), which the leader leaves by itself
    /// once it commits.
    pub(crate) fn change_membership(
        &mut self,
        shared: &mut Shared,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<LogId, MembershipError> {
        if self.transfer.is_some() {
            return Err(MembershipError::TransferInProgress);
        }
        if voters.is_empty() {
            return Err(MembershipError::NoVoters);
        }
        if voters.contains(&NodeId(0)) || learners.contains(&NodeId(0)) {
            return Err(MembershipError::ReservedNodeId);
        }
        if let Some(node) = voters.intersection(&learners).next() {
            return Err(MembershipError::VoterAndLearner { node: *node });
        }
        let pending = shared
            .log
            .latest_configuration()
            .is_some_and(|(index, _)| *index > shared.commit);
        // A new leader may hold an uncommitted configuration of an earlier term that other
        // nodes lack (Ongaro, raft-dev 2015): change nothing before an entry of this term
        // commits.
        let settled = shared.log.term_at(shared.commit) == Some(shared.term());
        if pending || !settled || shared.membership.is_joint() {
            return Err(MembershipError::ChangeInProgress);
        }
        let current = &shared.membership.voters;
        let changed = current.symmetric_difference(&voters).count();
        let outgoing_voters = if changed <= 1 {
            BTreeSet::new()
        } else {
            current.clone()
        };
        Ok(self.append_configuration(
            shared,
            Membership {
                voters,
                outgoing_voters,
                learners,
            },
        ))
    }

    /// After a commit: leaves a committed joint configuration, and notices when a
    /// committed configuration removed this node.
    fn after_commit(&mut self, shared: &mut Shared) {
        // The configuration may come from a snapshot (the log holds no configuration
        // entry then): a joint one must still be left, a removal still obeyed.
        let (index, latest) = shared.configuration_in_effect();
        if index > shared.commit {
            return;
        }
        if latest.is_joint() {
            // Whoever leads when the joint configuration commits leaves it, so that a
            // change of leader in between cannot strand the cluster in it.
            let leave = Membership {
                voters: latest.voters.clone(),
                outgoing_voters: BTreeSet::new(),
                learners: latest.learners.clone(),
            };
            self.append_configuration(shared, leave);
        } else if !latest.is_voter(shared.id()) {
            self.removed = true;
        }
    }

    /// Whether a committed configuration removed this leader, which must step down.
    pub(crate) fn removed(&self) -> bool {
        self.removed
    }

    /// The blank entry a new leader appends so that entries of earlier terms can commit.
    pub(crate) fn append_blank(&mut self, shared: &mut Shared) {
        self.append(shared, Payload::Blank);
    }

    /// Appends a command unless the uncommitted byte limit is reached. A lone command larger
    /// than the limit is still taken when nothing else is uncommitted, so it cannot be
    /// refused forever.
    pub(crate) fn propose(
        &mut self,
        shared: &mut Shared,
        command: Bytes,
    ) -> Result<LogId, ProposeError> {
        if self.transfer.is_some() {
            return Err(ProposeError::ProposalDropped {
                reason: DropReason::LeadershipTransfer,
            });
        }
        let limit = shared.config.uncommitted_bytes_max();
        let size = command.len().saturating_add(ENTRY_OVERHEAD_BYTES);
        if self.uncommitted_bytes > 0 && self.uncommitted_bytes.saturating_add(size) > limit {
            return Err(ProposeError::ProposalDropped {
                reason: DropReason::UncommittedLimit,
            });
        }
        Ok(self.append(shared, Payload::Command(command)))
    }

    /// Sends followers what they lack, and the new commit index, if anything changed.
    pub(crate) fn flush(&mut self, shared: &mut Shared) {
        // Reads wait for a round: start it now rather than at the next tick, so that all
        // reads registered since the last flush share one round.
        if self.reads.round_needed() {
            self.heartbeat(shared);
        }
        if !self.entries_pending && !self.commit_pending {
            return;
        }
        self.entries_pending = false;
        self.commit_pending = false;
        for (peer, progress) in &mut self.progress {
            let announce_commit = progress.lacks_commit(shared.commit);
            send_appends(progress, shared, *peer, announce_commit);
        }
    }

    /// Handles a follower's answer to an append.
    pub(crate) fn handle_append_response(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        response: AppendResponse,
    ) {
        let Some(progress) = self.progress.get_mut(&from) else {
            tracing::debug!(
                node = shared.id().0,
                from = from.0,
                "append answer from a non-member"
            );
            return;
        };
        progress.recently_active = true;
        progress.heard_tick = self.ticks;
        match response {
            AppendResponse::Accepted { matched } => {
                if matched > shared.log.last_index() {
                    tracing::warn!(
                        node = shared.id().0,
                        from = from.0,
                        matched = matched.0,
                        "dropping an acceptance beyond the leader's log"
                    );
                    return;
                }
                let advanced = progress.accepted(matched);
                // A follower whose append was outstanding when the commit index moved was
                // skipped by that announcement; tell it now if it can use it.
                let announce_commit = progress.lacks_commit(shared.commit);
                send_appends(progress, shared, from, announce_commit);
                if let Some(transfer) = &mut self.transfer
                    && transfer.target == from
                    && !transfer.timeout_sent
                    && progress.matched == shared.log.last_index()
                {
                    transfer.timeout_sent = true;
                    shared.send(from, MessageBody::TimeoutNow);
                }
                // Only a follower passing the commit index can move it.
                if advanced && matched > shared.commit {
                    self.maybe_commit(shared);
                }
            }
            AppendResponse::Rejected { rejected, hint } => {
                let candidate = shared.log.match_candidate(hint);
                if progress.rejected(rejected, candidate) {
                    send_appends(progress, shared, from, true);
                }
            }
            AppendResponse::StaleTerm => {}
        }
    }

    /// The transport's report on the snapshot sent to `follower`.
    pub(crate) fn snapshot_sent(
        &mut self,
        shared: &mut Shared,
        follower: NodeId,
        outcome: SnapshotTransfer,
    ) {
        let Some(progress) = self.progress.get_mut(&follower) else {
            return;
        };
        let delivered = outcome == SnapshotTransfer::Delivered;
        if progress.snapshot_reported(delivered) {
            tracing::debug!(
                node = shared.id().0,
                follower = follower.0,
                ?outcome,
                next = progress.next.0,
                "snapshot transfer reported"
            );
        }
    }

    /// Handles a follower's answer to a heartbeat: a follower that lags gets a fresh
    /// append, which also finds out whether appends to it were lost.
    pub(crate) fn handle_heartbeat_response(
        &mut self,
        shared: &mut Shared,
        from: NodeId,
        round: u64,
    ) {
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        progress.recently_active = true;
        progress.heard_tick = self.ticks;
        progress.heartbeat_answered();
        progress.round_acknowledged = progress.round_acknowledged.max(round);
        catch_up(progress, shared, from);
        self.confirm_reads(shared);
    }

    /// One tick: heartbeats when due, the quorum check when due, and the transfer's
    /// deadline.
    pub(crate) fn tick(&mut self, shared: &mut Shared) -> LeaderTick {
        self.ticks += 1;
        let election_ticks = shared.config.election_ticks_min();
        let timers = &mut shared.timers;
        timers.heartbeat_elapsed += 1;
        let heartbeat_due = timers.heartbeat_elapsed >= shared.config.heartbeat_ticks();
        if heartbeat_due {
            timers.heartbeat_elapsed = 0;
        }
        let timers = &mut shared.timers;
        timers.quorum_check_elapsed += 1;
        let quorum_check_due = timers.quorum_check_elapsed >= election_ticks;
        if quorum_check_due {
            timers.quorum_check_elapsed = 0;
        }
        if let Some(transfer) = &mut self.transfer {
            transfer.elapsed += 1;
            if transfer.elapsed >= election_ticks {
                tracing::info!(
                    node = shared.id().0,
                    term = shared.term().0,
                    target = transfer.target.0,
                    "leadership transfer abandoned after an election timeout"
                );
                shared.event(Event::TransferAborted {
                    target: transfer.target,
                });
                self.transfer = None;
            }
        }
        if quorum_check_due && shared.config.check_quorum() && !self.quorum_active(shared) {
            tracing::info!(
                node = shared.id().0,
                term = shared.term().0,
                "no quorum heard within an election timeout; stepping down"
            );
            return LeaderTick::StepDown;
        }
        if heartbeat_due {
            self.heartbeat(shared);
        }
        LeaderTick::Continue
    }

    /// Whether a quorum (this leader included) answered since the last check; clears the
    /// marks for the next period.
    fn quorum_active(&mut self, shared: &Shared) -> bool {
        let me = shared.id();
        let result = shared.membership.vote_result(|node| {
            if node == me {
                Some(true)
            } else {
                Some(
                    self.progress
                        .get(&node)
                        .is_some_and(|progress| progress.recently_active),
                )
            }
        });
        for progress in self.progress.values_mut() {
            progress.recently_active = false;
        }
        result == VoteResult::Won
    }

    /// How many ticks ago a quorum of voters last answered: the age of the answer that
    /// completes a quorum, counting this leader as always heard. The election that made
    /// this node leader counts as an answer from a quorum at tick 0.
    pub(crate) fn quorum_contact_age_ticks(&self, shared: &Shared) -> u64 {
        let me = shared.id();
        // Ticks compared like log indexes: the latest tick by which a quorum was heard.
        let heard = shared.membership.committed_index(|node| {
            if node == me {
                Index(u64::MAX)
            } else {
                self.progress
                    .get(&node)
                    .map_or(Index(0), |progress| Index(progress.heard_tick))
            }
        });
        self.ticks.saturating_sub(heard.0)
    }

    /// Starts handing leadership to `target`: bring it up to date, then tell it to
    /// campaign. Proposals are refused meanwhile; the transfer is abandoned after an
    /// election timeout.
    ///
    /// While a transfer is in progress, asking again for the same target changes nothing:
    /// the deadline stays that of the first request, so a caller retrying every few ticks
    /// cannot keep proposals refused for longer than one election timeout. A transfer to
    /// another target is refused ([`TransferError::TransferInProgress`]) rather than
    /// replacing the first, as etcd does: the first target may already hold a
    /// `TimeoutNow` and be campaigning, so a second would put two nodes told to take over
    /// in the same term, and a restarted deadline would again let alternating requests
    /// refuse proposals indefinitely. The caller asks again once the first transfer ends.
    pub(crate) fn transfer_leader(
        &mut self,
        shared: &mut Shared,
        target: NodeId,
    ) -> Result<(), TransferError> {
        if target == shared.id() {
            return Err(TransferError::TargetIsLeader);
        }
        if !shared.membership.is_voter(target) {
            return Err(TransferError::TargetNotVoter { target });
        }
        match self.transfer {
            Some(transfer) if transfer.target == target => return Ok(()),
            Some(transfer) => {
                return Err(TransferError::TransferInProgress {
                    target: transfer.target,
                });
            }
            None => {}
        }
        let Some(progress) = self.progress.get_mut(&target) else {
            return Err(TransferError::TargetNotVoter { target });
        };
        let up_to_date = progress.matched == shared.log.last_index();
        self.reads.revoke_lease();
        self.transfer = Some(Transfer {
            target,
            elapsed: 0,
            timeout_sent: up_to_date,
        });
        tracing::info!(
            node = shared.id().0,
            term = shared.term().0,
            target = target.0,
            up_to_date,
            "leadership transfer started"
        );
        if up_to_date {
            shared.send(target, MessageBody::TimeoutNow);
        } else {
            catch_up(progress, shared, target);
        }
        Ok(())
    }

    /// The target of the transfer in progress, if any.
    pub(crate) fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.target)
    }

    /// Whether a transfer to `target` is in progress: the leader confirms it to the
    /// target's pre-vote then, and only then.
    pub(crate) fn transferring_to(&self, target: NodeId) -> bool {
        self.transfer_target() == Some(target)
    }

    /// The transfer in progress, for [`crate::Status`].
    pub(crate) fn transfer_status(&self, shared: &Shared) -> Option<TransferStatus> {
        let election_ticks = shared.config.election_ticks_min();
        self.transfer.map(|transfer| TransferStatus {
            target: transfer.target,
            remaining_ticks: election_ticks.saturating_sub(transfer.elapsed),
            timeout_now_sent: transfer.timeout_sent,
        })
    }

    /// Sends every follower a heartbeat carrying the commit index, capped at what that
    /// follower is known to hold.
    fn heartbeat(&mut self, shared: &mut Shared) {
        let round = self.reads.start_round(self.ticks);
        for (peer, progress) in &mut self.progress {
            let commit = shared.commit.min(progress.matched);
            progress.commit_sent = progress.commit_sent.max(commit);
            shared.send(*peer, MessageBody::Heartbeat { commit, round });
        }
    }

    /// Accepts a read: registered now if an entry of this term is committed, else once
    /// one is.
    pub(crate) fn read(
        &mut self,
        shared: &mut Shared,
        requester: Requester,
    ) -> Result<(), ReadError> {
        if self.reads.len() >= shared.config.pending_reads_max() {
            return Err(ReadError::TooManyPending);
        }
        if shared.log.term_at(shared.commit) == Some(shared.term()) {
            self.register_read(shared, requester);
        } else {
            self.reads.wait_for_own_commit(requester);
        }
        Ok(())
    }

    /// Serves a read at once when no round is needed (a leader alone in its
    /// configuration, or a valid lease), else registers it for the next round.
    fn register_read(&mut self, shared: &mut Shared, requester: Requester) {
        let me = shared.id();
        let membership = &shared.membership;
        let alone = membership.voters.iter().all(|voter| *voter == me)
            && membership.outgoing_voters.iter().all(|voter| *voter == me);
        let leased = shared.config.read_lease()
            && self.transfer.is_none()
            && self.reads.lease_valid(self.ticks);
        if alone || leased {
            read::answer(shared, requester, Some(shared.commit));
        } else {
            self.reads.register(requester, shared.commit);
        }
    }

    /// Releases the reads of every round a quorum has answered, and extends the lease.
    fn confirm_reads(&mut self, shared: &mut Shared) {
        let me = shared.id();
        // Rounds are compared like log indexes: the highest round a quorum reached.
        let round = shared.membership.committed_index(|node| {
            if node == me {
                Index(u64::MAX)
            } else {
                self.progress
                    .get(&node)
                    .map_or(Index(0), |progress| Index(progress.round_acknowledged))
            }
        });
        let election_ticks = u64::from(shared.config.election_ticks_min());
        let lease_ticks = election_ticks.saturating_sub(2) * 9 / 10;
        for (requester, index) in self.reads.confirm(round.0, lease_ticks) {
            read::answer(shared, requester, Some(index));
        }
    }

    /// Fails every read still waiting: this node is no longer leader.
    pub(crate) fn abort_reads(&mut self, shared: &mut Shared) {
        for requester in self.reads.drain_all() {
            read::answer(shared, requester, None);
        }
    }

    /// Advances the commit index to the highest entry of the current term that a quorum
    /// holds durably (the leader's own entries count only once durable here). Entries of
    /// earlier terms commit only with one of the current term (Raft's Figure 8 rule).
    pub(crate) fn maybe_commit(&mut self, shared: &mut Shared) {
        let me = shared.id();
        let durable = shared.log.durable_index();
        let quorum_index = shared.membership.committed_index(|node| {
            if node == me {
                durable
            } else {
                self.progress
                    .get(&node)
                    .map_or(Index(0), |progress| progress.matched)
            }
        });
        if quorum_index <= shared.commit || shared.log.term_at(quorum_index) != Some(shared.term())
        {
            return;
        }
        let newly_committed = shared
            .log
            .payload_bytes_between(shared.commit, quorum_index);
        self.uncommitted_bytes = self.uncommitted_bytes.saturating_sub(newly_committed);
        shared.set_commit(quorum_index);
        self.commit_pending = true;
        // The first commit of this term: reads that waited for it are registered now.
        for requester in self.reads.take_waiting() {
            self.register_read(shared, requester);
        }
        self.after_commit(shared);
    }

    /// The per-follower view for [`crate::Status`].
    pub(crate) fn follower_statuses(&self, shared: &Shared) -> Vec<FollowerStatus> {
        self.progress
            .iter()
            .map(|(id, progress)| FollowerStatus {
                id: *id,
                voter: shared.membership.is_voter(*id),
                matched: progress.matched,
                next: progress.next,
                state: progress.state,
                in_flight: progress.in_flight(),
                pending_snapshot: (progress.state == ReplicationState::Snapshot)
                    .then_some(progress.pending_snapshot),
            })
            .collect()
    }
}

/// Sends `peer` appends while its window allows and entries remain. With
/// `even_if_empty`, an entry-less append goes out when nothing else would, to carry the
/// commit index or to check an optimistic match point.
fn send_appends(progress: &mut Progress, shared: &mut Shared, peer: NodeId, even_if_empty: bool) {
    if progress.state == ReplicationState::Snapshot {
        return;
    }
    let window = shared.config.append_in_flight_max();
    let bytes_max = shared.config.append_bytes_max();
    let last_index = shared.log.last_index();
    let mut sent_any = false;
    loop {
        let has_entries = progress.next <= last_index;
        if !has_entries && (sent_any || !even_if_empty) {
            break;
        }
        // An empty append adds nothing to a replicate window, so it may always go.
        if (has_entries || progress.state == ReplicationState::Probe) && !progress.can_send(window)
        {
            break;
        }
        let entries = if has_entries {
            shared.log.entries_from(progress.next, bytes_max)
        } else {
            Vec::new()
        };
        if !send_append(progress, shared, peer, progress.next.previous(), entries) {
            break;
        }
        sent_any = true;
        if progress.state == ReplicationState::Probe {
            break;
        }
    }
}

/// Sends `peer` one append of `entries` following `previous_index`, and records it in the
/// follower's progress. Returns false, sending no append, if the leader's log no longer
/// holds the entry at `previous_index`: the follower needs a snapshot instead.
fn send_append(
    progress: &mut Progress,
    shared: &mut Shared,
    peer: NodeId,
    previous_index: Index,
    entries: Vec<Entry>,
) -> bool {
    let Some(previous_term) = shared.log.term_at(previous_index) else {
        send_snapshot(progress, shared, peer);
        return false;
    };
    progress.sent(entries.last().map(Entry::index));
    progress.commit_sent = progress.commit_sent.max(shared.commit);
    shared.send(
        peer,
        MessageBody::AppendEntries {
            previous: LogId {
                term: previous_term,
                index: previous_index,
            },
            entries,
            commit: shared.commit,
        },
    );
    true
}

/// Sends `peer` the newest durable snapshot, which covers everything the leader compacted.
fn send_snapshot(progress: &mut Progress, shared: &mut Shared, peer: NodeId) {
    let base = shared.log.base().index;
    let Some(snapshot) = shared
        .snapshot
        .as_ref()
        .filter(|snapshot| snapshot.last_included.index >= base)
    else {
        // The snapshot that covers the compacted prefix is not durable yet (this node
        // installed it just before it was elected): try again on the next answer.
        tracing::debug!(
            node = shared.id().0,
            peer = peer.0,
            "a follower needs a snapshot that is not durable yet"
        );
        return;
    };
    let snapshot = snapshot.clone();
    tracing::debug!(
        node = shared.id().0,
        peer = peer.0,
        %snapshot,
        matched = progress.matched.0,
        "sending a snapshot"
    );
    progress.snapshot_started(snapshot.last_included.index);
    shared.send_snapshot(peer, snapshot);
}

/// Moves a lagging follower forward when the leader may have lost track of it (its answers
/// to heartbeats arrive, or a transfer needs it current).
fn catch_up(progress: &mut Progress, shared: &mut Shared, peer: NodeId) {
    let last_sent = progress.next.previous();
    if progress.state == ReplicationState::Replicate && progress.matched < last_sent {
        // Appends are unanswered: some may be lost, and a full window would never drain.
        // An empty append at the last sent index settles it: accepted, it frees the window;
        // rejected, it falls back to probing from the follower's hint.
        send_append(progress, shared, peer, last_sent, Vec::new());
    } else if progress.matched < shared.log.last_index() {
        send_appends(progress, shared, peer, true);
    }
}
