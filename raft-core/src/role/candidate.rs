//! The candidate: counts votes for itself.

use std::collections::BTreeMap;

use crate::action::WriteId;
use crate::quorum::VoteResult;
use crate::shared::Shared;
use crate::types::NodeId;

/// A candidate's tally.
#[derive(Debug)]
pub(crate) struct CandidateState {
    /// Answers received from other nodes.
    votes: BTreeMap<NodeId, bool>,
    /// The write carrying this node's vote for itself: the vote counts once it is durable,
    /// so that a crash cannot make this node vote twice in the term it may win.
    self_vote_write: WriteId,
    /// A pre-vote that asks this leader alone to confirm its leadership transfer to this
    /// node: its answer decides the round.
    confirming: Option<NodeId>,
}

impl CandidateState {
    pub(crate) fn new(self_vote_write: WriteId) -> CandidateState {
        CandidateState {
            votes: BTreeMap::new(),
            self_vote_write,
            confirming: None,
        }
    }

    /// A pre-vote round decided by `leader`'s answer alone: whether its transfer to this
    /// node is still in progress.
    pub(crate) fn confirming(leader: NodeId) -> CandidateState {
        CandidateState {
            confirming: Some(leader),
            ..CandidateState::new(WriteId(0))
        }
    }

    /// The leader whose confirmation this round waits for, if it is a transfer's.
    pub(crate) fn confirming_leader(&self) -> Option<NodeId> {
        self.confirming
    }

    /// Records `voter`'s answer; a repeated answer (a duplicated message) keeps the first.
    pub(crate) fn record(&mut self, voter: NodeId, granted: bool) {
        self.votes.entry(voter).or_insert(granted);
    }

    /// The election's outcome so far.
    pub(crate) fn tally(&self, shared: &Shared) -> VoteResult {
        if let Some(leader) = self.confirming {
            return match self.votes.get(&leader) {
                Some(true) => VoteResult::Won,
                Some(false) => VoteResult::Lost,
                None => VoteResult::Pending,
            };
        }
        let me = shared.id();
        let self_vote_durable = shared.acknowledged >= self.self_vote_write;
        shared.membership.vote_result(|voter| {
            if voter == me {
                self_vote_durable.then_some(true)
            } else {
                self.votes.get(&voter).copied()
            }
        })
    }
}
