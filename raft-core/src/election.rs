//! Elections: pre-vote, votes, leader stickiness, and the transitions to candidate and
//! leader.

use crate::action::{Event, WriteId};
use crate::message::MessageBody;
use crate::node::Node;
use crate::quorum::VoteResult;
use crate::role::RoleState;
use crate::role::candidate::CandidateState;
use crate::role::leader::LeaderState;
use crate::status::Role;
use crate::types::{Index, LogId, NodeId, Term};

/// Where a node on fresh storage stands on voting (see
/// [`Recovered::fresh_storage`](crate::Recovered)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlankGuard {
    /// Recovered storage, or a cluster found empty: votes as usual.
    Off,
    /// Fresh storage, and no peer message about the log yet.
    Undecided,
    /// Fresh storage, and the cluster had written entries: no vote for a candidate holding
    /// entries while this node holds none.
    Armed,
}

impl Node {
    /// Whether a candidate whose last entry is `candidate_last` has a log at least as up to
    /// date as this node's: a later last term, or the same last term and no shorter.
    fn is_up_to_date(&self, candidate_last: LogId) -> bool {
        let own_last = self.shared.log.last_id();
        (candidate_last.term, candidate_last.index) >= (own_last.term, own_last.index)
    }

    /// Whether this node's vote may help elect a candidate whose last entry is
    /// `candidate_last`, whatever the term and the logs' order say:
    ///
    /// - a joining node votes only once the cluster has admitted it (a configuration that
    ///   lists it reached its log), so that it never counts toward a quorum it is not in;
    /// - a node on fresh storage that found the cluster had written entries before it
    ///   first heard from it (see [`Recovered::fresh_storage`](crate::Recovered)) votes
    ///   only once it holds an entry itself, or for a candidate as blank as itself.
    fn vote_is_safe(&self, candidate_last: LogId) -> bool {
        if !self.shared.admitted() {
            return false;
        }
        let holds_entries = self.shared.log.last_id().index.0 > 0;
        holds_entries || self.shared.blank_guard != BlankGuard::Armed || candidate_last.index.0 == 0
    }

    /// Settles, on the first peer message that speaks of the log, whether a node on fresh
    /// storage joined a cluster that had written entries before it (see
    /// [`Recovered::fresh_storage`](crate::Recovered)).
    pub(crate) fn observe_cluster_log(&mut self, body: &MessageBody) {
        if self.shared.blank_guard != BlankGuard::Undecided {
            return;
        }
        let cluster_has_entries = match body {
            MessageBody::RequestVote { last_log, .. } | MessageBody::PreVote { last_log, .. } => {
                last_log.index.0 > 0
            }
            MessageBody::AppendEntries {
                previous,
                entries,
                commit,
            } => previous.index.0 > 0 || !entries.is_empty() || commit.0 > 0,
            MessageBody::Heartbeat { commit, .. } => commit.0 > 0,
            MessageBody::InstallSnapshot { .. } => true,
            // The rest says nothing of the log.
            _ => return,
        };
        self.shared.blank_guard = if cluster_has_entries {
            tracing::warn!(
                node = self.id().0,
                term = self.term().0,
                "this node's storage is new but its cluster has written entries: it may \
                 have lost its data, so it votes only once a leader has sent it the log"
            );
            BlankGuard::Armed
        } else {
            BlankGuard::Off
        };
    }

    /// Whether this node still trusts a leader (itself included) enough to ignore vote
    /// requests: with check-quorum on, a follower that heard from its leader within the
    /// minimum election timeout, or a leader (which steps down by itself when it loses its
    /// quorum). This is what keeps a node that rejoins from a partition from deposing a
    /// healthy leader.
    pub(crate) fn in_lease(&self) -> bool {
        if !self.shared.config.check_quorum() || self.shared.leader.is_none() {
            return false;
        }
        match self.role {
            RoleState::Leader(_) => true,
            RoleState::Follower => {
                self.shared.timers.election_elapsed < self.shared.config.election_ticks_min()
            }
            RoleState::PreCandidate(_) | RoleState::Candidate(_) => false,
        }
    }

    /// Grants the vote if this node has not voted for another candidate (nor follows a
    /// leader) in this term and the candidate's log is at least as up to date as its own.
    pub(crate) fn handle_request_vote(&mut self, candidate: NodeId, candidate_last: LogId) {
        let shared = &self.shared;
        let free_to_vote = match shared.hard_state.vote {
            Some(vote) => vote == candidate,
            None => shared.leader.is_none(),
        };
        let safe = self.vote_is_safe(candidate_last);
        let granted = free_to_vote && safe && self.is_up_to_date(candidate_last);
        if granted {
            self.shared.vote_for(candidate);
            self.shared.reset_election_timer();
        }
        tracing::debug!(
            node = self.id().0,
            term = self.term().0,
            candidate = candidate.0,
            granted,
            safe,
            "vote requested"
        );
        if !safe {
            self.warn_unsafe_vote(candidate);
        }
        self.shared
            .send_when_durable(candidate, MessageBody::RequestVoteResponse { granted });
    }

    /// Says once per term why a vote was refused for safety's sake, so that an operator
    /// sees a node that lost its storage instead of a silent stall.
    fn warn_unsafe_vote(&mut self, candidate: NodeId) {
        let term = self.term();
        if self.shared.unsafe_vote_warned == Some(term) {
            return;
        }
        self.shared.unsafe_vote_warned = Some(term);
        let reason = if self.shared.admitted() {
            "this node's storage is new and holds no entry while the candidate does: it may \
             have lost its data, and waits for the log from a leader"
        } else {
            "this node is joining and the cluster has not added it yet"
        };
        tracing::warn!(
            node = self.id().0,
            term = term.0,
            candidate = candidate.0,
            reason,
            "vote refused"
        );
    }

    /// Whether this node is a follower that heard from its leader within the minimum
    /// election timeout. Such a node refuses pre-votes whether or not check-quorum is on:
    /// that refusal is what makes pre-vote protect a healthy leader (Raft thesis §9.6).
    fn hears_leader(&self) -> bool {
        matches!(self.role, RoleState::Follower)
            && self.shared.leader.is_some()
            && self.shared.timers.election_elapsed < self.shared.config.election_ticks_min()
    }

    /// Answers a pre-vote for `term`: yes if that term is ahead of this node's, the
    /// pre-candidate's log is up to date, and this node does not still trust a leader.
    /// A leader refuses, but for a `transfer` pre-vote from the target of its transfer in
    /// progress, asked for the very next term (see [`Node::confirm_transfer`]).
    /// Nothing changes here either way: a pre-vote raises no term and records no vote.
    pub(crate) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log: LogId,
        transfer: bool,
    ) {
        let own_term = self.term();
        let safe = self.vote_is_safe(last_log);
        if !safe {
            self.warn_unsafe_vote(from);
        }
        let granted = safe
            && match &self.role {
                RoleState::Leader(leader) => {
                    transfer
                        && Some(term) == own_term.checked_next()
                        && leader.transferring_to(from)
                        && self.is_up_to_date(last_log)
                }
                RoleState::Follower | RoleState::PreCandidate(_) | RoleState::Candidate(_) => {
                    term > own_term
                        && self.is_up_to_date(last_log)
                        && !self.in_lease()
                        && !self.hears_leader()
                }
            };
        // A grant speaks of the term asked about; a refusal tells the asker our term.
        let answer_term = if granted { term } else { own_term };
        tracing::debug!(
            node = self.id().0,
            term = own_term.0,
            from = from.0,
            asked = term.0,
            granted,
            "pre-vote requested"
        );
        self.shared
            .send_in_term(from, answer_term, MessageBody::PreVoteResponse { granted });
    }

    /// `from` says, in this node's current term (an earlier term's message was dropped),
    /// that its committed configuration at `index` leaves this node out. Believed unless
    /// it cannot come from this term's leader (this node leads, or follows another) or
    /// this node follows a configuration newer than `index`, which a leader replicated to
    /// it as a member. Once believed, this node stops campaigning and says so; a forged or
    /// mistaken one costs only that, until a leader replicates a later configuration.
    pub(crate) fn handle_removed(&mut self, from: NodeId, index: Index) {
        let me = self.id();
        let from_leader = self.shared.leader.is_none_or(|leader| leader == from);
        let (own_index, _) = self.shared.configuration_in_effect();
        if matches!(self.role, RoleState::Leader(_)) || !from_leader || own_index > index {
            tracing::debug!(
                node = me.0,
                term = self.term().0,
                from = from.0,
                index = index.0,
                configuration = own_index.0,
                "ignoring a removal notice"
            );
            return;
        }
        let newly = !self.shared.is_removed();
        self.shared.removed_by = Some(self.shared.removed_by.map_or(index, |by| by.max(index)));
        if newly {
            tracing::info!(
                node = me.0,
                term = self.term().0,
                from = from.0,
                index = index.0,
                "removed from the configuration; no longer campaigning"
            );
            self.shared.event(Event::Removed { index });
        }
        if matches!(
            self.role,
            RoleState::PreCandidate(_) | RoleState::Candidate(_)
        ) {
            self.become_follower(self.term(), None);
        }
    }

    /// Counts a pre-vote answer. A refusal from a later term means this node is behind and
    /// follows that term.
    pub(crate) fn handle_pre_vote_response(&mut self, from: NodeId, term: Term, granted: bool) {
        let own_term = self.term();
        if !granted && term > own_term {
            self.become_follower(term, None);
            return;
        }
        let asked = own_term.checked_next();
        let counts = (granted && Some(term) == asked) || (!granted && term == own_term);
        if counts
            && let RoleState::PreCandidate(tally) = &mut self.role
            && (self.shared.membership.is_voter(from) || tally.confirming_leader() == Some(from))
        {
            tally.record(from, granted);
            self.check_election();
        }
    }

    /// The election timer of a follower or (pre-)candidate fired. A node still waiting
    /// for its leader to confirm a transfer gives up and follows on (the transfer is the
    /// leader's to finish or abandon); any other campaigns if it may.
    pub(crate) fn election_timed_out(&mut self) {
        if let RoleState::PreCandidate(tally) = &self.role
            && tally.confirming_leader().is_some()
        {
            tracing::debug!(
                node = self.id().0,
                term = self.term().0,
                "no confirmation of the transfer within an election timeout"
            );
            self.become_follower(self.term(), self.shared.leader);
        } else if self.shared.may_campaign() {
            self.start_election();
        } else {
            self.shared.reset_election_timer();
        }
    }

    /// The election timeout fired: ask first (pre-vote) when enabled, else campaign.
    pub(crate) fn start_election(&mut self) {
        if self.shared.config.pre_vote() {
            self.become_pre_candidate(None);
        } else {
            self.become_candidate(false);
        }
    }

    /// `leader` sent this node `TimeoutNow`: ask it to confirm that the transfer is still
    /// on, and campaign only once it does.
    ///
    /// `TimeoutNow` makes its target campaign past leader stickiness: its vote requests
    /// carry the transfer flag, which voters that still hear from a leader obey, and its
    /// higher term reaches the leader whether it wins or not. A `TimeoutNow` delayed past
    /// the deadline at which the leader gave the transfer up (and went back to taking
    /// proposals) would thus depose a healthy leader. Nothing the target holds can tell a
    /// stale `TimeoutNow` from a current one on a network that reorders: the leader's later
    /// messages, which could say the transfer ended, may be late as well. Only the leader
    /// knows, so the target asks it: it becomes a pre-candidate, keeps following `leader`,
    /// and sends it alone a `PreVote` flagged `transfer`. The leader grants it only while
    /// its transfer to this node is in progress and this node's log is as up to date as
    /// its own; on the grant this node campaigns with the transfer flag, on a refusal, or
    /// no answer within an election timeout, it goes back to following, having raised no
    /// term. Meanwhile it follows the leader's appends and heartbeats.
    ///
    /// A transfer costs one round trip more than in etcd or raft-rs, a rare operation's
    /// price for never deposing a leader that gave its transfer up. The one window left is
    /// inherent to any deadline: a confirmation granted just before it may let the target
    /// campaign just after.
    pub(crate) fn confirm_transfer(&mut self, leader: NodeId) {
        self.become_pre_candidate(Some(leader));
    }

    /// Starts a pre-vote round: among the voters, or, `confirming` a transfer, with its
    /// leader alone (see [`Node::confirm_transfer`]).
    fn become_pre_candidate(&mut self, confirming: Option<NodeId>) {
        let me = self.id();
        let Some(next_term) = self.term().checked_next() else {
            tracing::error!(node = me.0, "the term space is exhausted; not campaigning");
            self.shared.reset_election_timer();
            return;
        };
        if !matches!(self.role, RoleState::PreCandidate(_)) {
            self.shared.event(Event::RoleChanged {
                role: Role::PreCandidate,
            });
        }
        // A pre-vote changes nothing durable, so this node's own answer counts at once.
        self.role = RoleState::PreCandidate(match confirming {
            Some(leader) => CandidateState::confirming(leader),
            None => CandidateState::new(WriteId(0)),
        });
        if confirming.is_none() {
            self.shared.set_leader(None);
        }
        self.shared.reset_election_timer();
        tracing::debug!(
            node = me.0,
            term = self.term().0,
            role = "pre-candidate",
            transfer = confirming.is_some(),
            "asking for pre-votes"
        );
        let last_log = self.shared.log.last_id();
        let transfer = confirming.is_some();
        let asked = match confirming {
            Some(leader) => vec![leader],
            None => self.other_voters(),
        };
        for voter in asked {
            self.shared.send_in_term(
                voter,
                next_term,
                MessageBody::PreVote { last_log, transfer },
            );
        }
        self.check_election();
    }

    /// Campaigns in the next term. With `transfer`, voters that still hear from a leader
    /// vote anyway (a leadership transfer, or an operator's explicit campaign).
    pub(crate) fn become_candidate(&mut self, transfer: bool) {
        let me = self.id();
        let Some(term) = self.term().checked_next() else {
            // Only a faulty peer can push terms this far; refuse to wrap around.
            tracing::error!(node = me.0, "the term space is exhausted; not campaigning");
            self.shared.reset_election_timer();
            return;
        };
        self.shared.enter_term(term);
        self.shared.vote_for(me);
        let self_vote_write = self.shared.pending_write_id();
        if !matches!(self.role, RoleState::Candidate(_)) {
            self.shared.event(Event::RoleChanged {
                role: Role::Candidate,
            });
        }
        self.role = RoleState::Candidate(CandidateState::new(self_vote_write));
        self.shared.set_leader(None);
        self.shared.reset_election_timer();
        tracing::debug!(
            node = me.0,
            term = self.term().0,
            role = "candidate",
            "campaigning"
        );
        let last_log = self.shared.log.last_id();
        for voter in self.other_voters() {
            self.shared
                .send_when_durable(voter, MessageBody::RequestVote { last_log, transfer });
        }
        self.check_election();
    }

    fn other_voters(&self) -> Vec<NodeId> {
        let me = self.id();
        let membership = &self.shared.membership;
        membership
            .members()
            .into_iter()
            .filter(|member| *member != me && membership.is_voter(*member))
            .collect()
    }

    /// Acts on the tally of a pre-vote or an election.
    pub(crate) fn check_election(&mut self) {
        let (result, pre_vote, confirming) = match &self.role {
            RoleState::PreCandidate(tally) => {
                (tally.tally(&self.shared), true, tally.confirming_leader())
            }
            RoleState::Candidate(tally) => (tally.tally(&self.shared), false, None),
            RoleState::Follower | RoleState::Leader(_) => return,
        };
        match (result, pre_vote) {
            (VoteResult::Won, true) => self.become_candidate(confirming.is_some()),
            (VoteResult::Won, false) => self.become_leader(),
            (VoteResult::Lost, _) => {
                tracing::debug!(
                    node = self.id().0,
                    term = self.term().0,
                    pre_vote,
                    transfer = confirming.is_some(),
                    "election lost"
                );
                // A leader that refused to confirm its transfer still leads this term.
                let leader = confirming.and(self.shared.leader);
                self.become_follower(self.term(), leader);
            }
            (VoteResult::Pending, _) => {}
        }
    }

    fn become_leader(&mut self) {
        let me = self.id();
        let mut leader = LeaderState::new(&self.shared);
        leader.append_blank(&mut self.shared);
        self.role = RoleState::Leader(leader);
        self.shared.timers.heartbeat_elapsed = 0;
        self.shared.timers.quorum_check_elapsed = 0;
        self.shared.event(Event::RoleChanged { role: Role::Leader });
        self.shared.set_leader(Some(me));
        tracing::info!(
            node = me.0,
            term = self.term().0,
            role = "leader",
            "elected"
        );
        // A leader alone in its configuration commits as soon as its own write is durable.
        if let RoleState::Leader(leader) = &mut self.role {
            leader.maybe_commit(&mut self.shared);
        }
    }
}
