//! The state every role shares, and the outbox through which the node speaks.
//!
//! Role-specific state lives in the role's variant ([`crate::role`]); everything here is
//! meaningful whatever the role: the term and vote, the log, the commit and apply
//! positions, the timers and the ordered queue of actions.

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;

use crate::action::{Action, Event, ReadId, Write, WriteId};
use crate::config::Config;
use crate::log::RaftLog;
use crate::message::{Message, MessageBody};
use crate::quorum::Membership;
use crate::read::LocalReads;
use crate::timers::Timers;
use crate::types::{HardState, Index, NodeId, Term};

/// The most messages held back waiting for storage; more are dropped, as a lossy network
/// would drop them.
pub(crate) const DEFERRED_MESSAGES_MAX: usize = 4096;

/// A message held back until storage has made durable every write issued before it.
#[derive(Debug)]
struct DeferredMessage {
    after: WriteId,
    message: Message,
}

/// State and outputs shared by all roles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// The configuration in effect: the newest configuration entry in the log, or the
    /// recovered one when the log holds none.
    pub(crate) membership: Membership,
    /// The configuration this node started from (a new cluster's, or a snapshot's).
    base_membership: Membership,
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
}

impl Shared {
    pub(crate) fn new(
        config: Config,
        membership: Membership,
        hard_state: HardState,
        log: RaftLog,
        applied: Index,
        mut random: ChaCha8Rng,
    ) -> Shared {
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
            hard_state,
            hard_state_dirty: false,
            leader: None,
            log,
            commit: applied,
            commit_candidate: applied,
            applied,
            apply_handed_out: applied,
            timers,
            random,
            outbox: VecDeque::new(),
            last_write: WriteId(0),
            acknowledged: WriteId(0),
            deferred: VecDeque::new(),
            local_reads: LocalReads::default(),
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
        if self.hard_state_dirty || self.log.has_unflushed() {
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

    /// Whether this node may campaign: it votes in the configuration in effect, or in the
    /// last one known committed. The second case matters when an uncommitted entry demotes
    /// or removes this node while its log is the longest: the others cannot win without
    /// its vote, so unless it campaigns (its votes counted under the new configuration,
    /// its own excluded) the cluster would wait forever.
    pub(crate) fn may_campaign(&self) -> bool {
        let me = self.id();
        if self.membership.is_voter(me) {
            return true;
        }
        let committed = self
            .log
            .configuration_through(self.commit)
            .map_or(&self.base_membership, |(_, membership)| membership);
        committed.is_voter(me)
    }

    /// Brings `membership` in line with the log after entries were appended or truncated,
    /// announcing a change.
    pub(crate) fn refresh_membership(&mut self) {
        let (index, latest) = match self.log.latest_configuration() {
            Some((index, latest)) => (*index, latest),
            None => (Index(0), &self.base_membership),
        };
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

    /// Issues one write carrying every change not yet written.
    pub(crate) fn flush_writes(&mut self) {
        if !self.hard_state_dirty && !self.log.has_unflushed() {
            return;
        }
        let id = WriteId(self.last_write.0 + 1);
        self.last_write = id;
        let hard_state = self.hard_state_dirty.then_some(self.hard_state);
        self.hard_state_dirty = false;
        let log = self.log.take_unflushed(id);
        self.outbox.push_back(Action::Persist(Write {
            id,
            hard_state,
            log,
        }));
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
