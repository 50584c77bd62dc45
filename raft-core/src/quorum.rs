//! Quorum arithmetic as pure functions over a membership value.
//!
//! Nothing here knows about roles, messages or time: commit indexes and election
//! outcomes are computed from "who has what", which keeps the rules table-testable
//! and lets joint consensus reuse the single-majority rules unchanged.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{Index, NodeId, node_list};

/// The outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoteResult {
    /// A quorum granted the vote.
    Won,
    /// Enough voters refused that no quorum can grant it any more.
    Lost,
    /// Neither yet: more answers are needed.
    Pending,
}

/// The largest index that a majority of `voters` has reached, given each voter's index.
///
/// An empty voter set places no constraint and yields `Index(u64::MAX)`, so that a joint
/// configuration whose outgoing half is empty reduces to its incoming half.
pub fn majority_committed_index(
    voters: &BTreeSet<NodeId>,
    matched: impl Fn(NodeId) -> Index,
) -> Index {
    let count = voters.len();
    if count == 0 {
        return Index(u64::MAX);
    }
    // Clusters are small; sort on the stack and only fall back to the heap for large ones.
    const STACK_VOTERS: usize = 9;
    let quorum_position = count / 2;
    if count <= STACK_VOTERS {
        let mut indexes = [Index(0); STACK_VOTERS];
        for (slot, voter) in indexes.iter_mut().zip(voters.iter()) {
            *slot = matched(*voter);
        }
        let filled = &mut indexes[..count];
        filled.sort_unstable_by(|left, right| right.cmp(left));
        filled[quorum_position]
    } else {
        let mut indexes: Vec<Index> = voters.iter().map(|voter| matched(*voter)).collect();
        indexes.sort_unstable_by(|left, right| right.cmp(left));
        indexes[quorum_position]
    }
}

/// The outcome of an election among `voters`, given each voter's answer so far
/// (`Some(true)` granted, `Some(false)` refused, `None` not yet answered).
///
/// An empty voter set always wins, for the same reason as in [`majority_committed_index`].
pub fn majority_vote_result(
    voters: &BTreeSet<NodeId>,
    votes: impl Fn(NodeId) -> Option<bool>,
) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let quorum = voters.len() / 2 + 1;
    let mut granted = 0;
    let mut missing = 0;
    for voter in voters {
        match votes(*voter) {
            Some(true) => granted += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    if granted >= quorum {
        VoteResult::Won
    } else if granted + missing >= quorum {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// Who takes part in the cluster: voters, the outgoing voters of a joint configuration,
/// and learners (which receive the log but never vote or count toward a quorum).
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The voters of the current configuration (the incoming one while joint).
    pub voters: BTreeSet<NodeId>,
    /// The voters of the configuration being left; empty unless joint.
    pub outgoing_voters: BTreeSet<NodeId>,
    /// Nodes that replicate the log without voting.
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A simple (non-joint) membership of the given voters and no learners.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership {
            voters: voters.into_iter().collect(),
            outgoing_voters: BTreeSet::new(),
            learners: BTreeSet::new(),
        }
    }

    /// The most members a configuration may list; larger ones from a peer are malformed.
    pub const MEMBERS_MAX: usize = 1024;

    /// Whether the configuration can work: at least one voter, no node 0, no node both
    /// voter and learner of the incoming configuration, at most
    /// [`Membership::MEMBERS_MAX`] members. (An outgoing voter may be an incoming learner:
    /// that is how a joint change demotes a voter.) Configurations from peers that fail
    /// this are dropped as malformed.
    pub fn is_well_formed(&self) -> bool {
        let reserved = NodeId(0);
        !self.voters.is_empty()
            && !self.contains(reserved)
            && self.voters.is_disjoint(&self.learners)
            && self.voters.len() + self.outgoing_voters.len() + self.learners.len()
                <= Membership::MEMBERS_MAX
    }

    /// Whether this is a joint configuration.
    pub fn is_joint(&self) -> bool {
        !self.outgoing_voters.is_empty()
    }

    /// Whether `node` votes in either half of the configuration.
    pub fn is_voter(&self, node: NodeId) -> bool {
        self.voters.contains(&node) || self.outgoing_voters.contains(&node)
    }

    /// Whether `node` takes part at all, as voter or learner.
    pub fn contains(&self, node: NodeId) -> bool {
        self.is_voter(node) || self.learners.contains(&node)
    }

    /// Every member once, in ascending id order: voters of both halves, then learners.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut members: BTreeSet<NodeId> = self.voters.clone();
        members.extend(self.outgoing_voters.iter().copied());
        members.extend(self.learners.iter().copied());
        members
    }

    /// The largest index a quorum has reached: in a joint configuration, a majority of
    /// each half must have reached it.
    pub fn committed_index(&self, matched: impl Fn(NodeId) -> Index) -> Index {
        let incoming = majority_committed_index(&self.voters, &matched);
        let outgoing = majority_committed_index(&self.outgoing_voters, &matched);
        incoming.min(outgoing)
    }

    /// The outcome of an election: in a joint configuration, both halves must grant it.
    pub fn vote_result(&self, votes: impl Fn(NodeId) -> Option<bool>) -> VoteResult {
        let incoming = majority_vote_result(&self.voters, &votes);
        let outgoing = majority_vote_result(&self.outgoing_voters, &votes);
        match (incoming, outgoing) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
}

impl fmt::Display for Membership {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "voters=[{}]", node_list(&self.voters))?;
        if self.is_joint() {
            write!(
                formatter,
                " outgoing=[{}]",
                node_list(&self.outgoing_voters)
            )?;
        }
        if !self.learners.is_empty() {
            write!(formatter, " learners=[{}]", node_list(&self.learners))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;
