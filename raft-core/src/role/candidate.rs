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
}

impl CandidateState {
    pub(crate) fn new(self_vote_write: WriteId) -> CandidateState {
        CandidateState {
            votes: BTreeMap::new(),
            self_vote_write,
        }
    }

    /// Records `voter`'s answer; a repeated answer (a duplicated message) keeps the first.
    pub(crate) fn record(&mut self, voter: NodeId, granted: bool) {
        self.votes.entry(voter).or_insert(granted);
    }

    /// The election's outcome so far.
    pub(crate) fn tally(&self, shared: &Shared) -> VoteResult {
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
