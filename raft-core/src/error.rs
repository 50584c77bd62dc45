//! Typed errors. Each says whose mistake it was: the caller's (misuse, bad input) or the
//! cluster's state (not the leader, over a limit). Peer mistakes never surface here: a bad
//! message is dropped and traced.

use thiserror::Error;

use crate::types::{Index, NodeId, Term};

/// A [`Config`](crate::Config) setting that cannot work. The caller's mistake.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Node id 0 is reserved to mean "no node".
    #[error("node id 0 is reserved")]
    ReservedNodeId,
    /// A limit or interval was set to zero.
    #[error("{setting} must be greater than zero")]
    ZeroLimit {
        /// The setting's name.
        setting: &'static str,
    },
    /// Followers would time out between two heartbeats of a healthy leader.
    #[error(
        "election_ticks_min ({election_ticks_min}) must exceed heartbeat_ticks ({heartbeat_ticks})"
    )]
    ElectionNotAboveHeartbeat {
        /// The configured minimum election timeout.
        election_ticks_min: u32,
        /// The configured heartbeat interval.
        heartbeat_ticks: u32,
    },
    /// Lease reads rely on check-quorum's leader stickiness.
    #[error("read_lease requires check_quorum")]
    LeaseWithoutCheckQuorum,
    /// The election timeout range `[minimum, maximum)` holds no value, so timeouts could
    /// not be randomized and split votes would repeat forever.
    #[error("election timeout range [{minimum}, {maximum}) is empty")]
    EmptyElectionRange {
        /// The configured minimum.
        minimum: u32,
        /// The configured maximum (exclusive).
        maximum: u32,
    },
}

/// What storage handed to [`Node::new`](crate::Node::new) is inconsistent. The caller's
/// (or its storage's) mistake: starting anyway could break safety.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The membership has no voter, so nothing could ever commit.
    #[error("the recovered membership has no voters")]
    NoVoters,
    /// The entries do not start at index 1 or are not contiguous.
    #[error("recovered entry {found} is not at the expected index {expected}")]
    EntriesNotContiguous {
        /// The index the next entry should have had.
        expected: Index,
        /// The index it had.
        found: Index,
    },
    /// An entry's term is lower than its predecessor's or higher than the hard state's.
    #[error("recovered entry at {index} has term {term}, out of order")]
    EntryTermOutOfOrder {
        /// The entry's index.
        index: Index,
        /// Its term.
        term: Term,
    },
    /// A recovered entry at the snapshot's index has another term than the snapshot's last
    /// entry: the log and the snapshot do not belong together.
    #[error("recovered entry at {index} has term {entry_term}, the snapshot says {snapshot_term}")]
    SnapshotConflict {
        /// The snapshot's last index.
        index: Index,
        /// The snapshot's last term.
        snapshot_term: Term,
        /// The recovered entry's term.
        entry_term: Term,
    },
    /// The applied index lies beyond the recovered log.
    #[error("applied index {applied} is beyond the last recovered entry {last}")]
    AppliedBeyondLog {
        /// The recovered applied index.
        applied: Index,
        /// The last recovered entry.
        last: Index,
    },
}

/// Why [`Node::propose`](crate::Node::propose) did not take a proposal.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProposeError {
    /// Only the leader appends; try the hinted leader, if any.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node currently follows, if it knows one.
        leader_hint: Option<NodeId>,
    },
    /// The leader refused the proposal to protect itself; retry later.
    #[error("proposal dropped: {reason}")]
    ProposalDropped {
        /// Why it was dropped.
        reason: DropReason,
    },
}

/// Why a leader dropped a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The uncommitted entries already reach `uncommitted_bytes_max`.
    #[error("uncommitted entries exceed the configured byte limit")]
    UncommittedLimit,
    /// The leader is handing leadership over; propose to the new leader.
    #[error("a leadership transfer is in progress")]
    LeadershipTransfer,
}

/// Why [`Node::read_index`](crate::Node::read_index) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No leader is known to confirm the read; retry later or elsewhere.
    #[error("no leader known")]
    NoLeader,
    /// `pending_reads_max` reads already wait; retry later.
    #[error("too many reads pending")]
    TooManyPending,
}

/// Why [`Node::change_membership`](crate::Node::change_membership) refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MembershipError {
    /// Only the leader changes the configuration.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node follows, if known.
        leader_hint: Option<NodeId>,
    },
    /// A configuration change is not yet committed, the cluster is still leaving a joint
    /// configuration, or this leader has not yet committed an entry of its own term (an
    /// uncommitted configuration of an earlier term may survive elsewhere): one change at
    /// a time.
    #[error("a configuration change is still in progress")]
    ChangeInProgress,
    /// A configuration needs at least one voter.
    #[error("the new configuration has no voters")]
    NoVoters,
    /// A node cannot be both voter and learner.
    #[error("node {node} is both a voter and a learner")]
    VoterAndLearner {
        /// The node listed twice.
        node: NodeId,
    },
    /// A node id 0 was listed.
    #[error("node id 0 is reserved")]
    ReservedNodeId,
    /// A leadership transfer is in progress; change the configuration afterwards.
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
}

/// Why [`Node::transfer_leader`](crate::Node::transfer_leader) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransferError {
    /// Only the leader can hand leadership over.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node follows, if known.
        leader_hint: Option<NodeId>,
    },
    /// The target is this node, which already leads.
    #[error("the target already leads")]
    TargetIsLeader,
    /// Learners and non-members cannot lead.
    #[error("node {target} is not a voter")]
    TargetNotVoter {
        /// The refused target.
        target: NodeId,
    },
    /// A transfer to another node is in progress; ask again once it ends (the target
    /// leads, or [`Event::TransferAborted`](crate::Event::TransferAborted) reports it
    /// abandoned, within an election timeout of its start).
    #[error("a leadership transfer to {target} is in progress")]
    TransferInProgress {
        /// The target of the transfer in progress.
        target: NodeId,
    },
}

/// Why [`Node::campaign`](crate::Node::campaign) did not start an election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// Learners and removed nodes never campaign.
    #[error("this node is not a voter")]
    NotVoter,
    /// This node already leads the current term.
    #[error("this node is already the leader")]
    AlreadyLeader,
}

/// An acknowledgement the node never asked for. The caller's mistake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AcknowledgementError {
    /// `persisted` named a write the node has not issued.
    #[error("write {write} was never issued (last issued: {last_issued})")]
    UnknownWrite {
        /// The acknowledged write.
        write: u64,
        /// The last write the node issued.
        last_issued: u64,
    },
    /// `applied` named an index the node has not handed out for applying.
    #[error("applied index {applied} is beyond the last index handed out ({last_handed_out})")]
    AppliedBeyondHandedOut {
        /// The acknowledged index.
        applied: Index,
        /// The last index given in an `Apply` action.
        last_handed_out: Index,
    },
}

/// Why [`Node::snapshot_built`](crate::Node::snapshot_built) refused a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The snapshot claims entries the node has not seen applied: report them with
    /// [`Node::applied`](crate::Node::applied) first. The caller's mistake.
    #[error("snapshot at {index} covers entries beyond the applied index {applied}")]
    NotApplied {
        /// The snapshot's last index.
        index: Index,
        /// The applied index the node knows of.
        applied: Index,
    },
    /// A snapshot at least as new is already stored or being stored (one built earlier,
    /// or one the leader sent meanwhile): discard this one.
    #[error("snapshot at {index} is not newer than the snapshot at {newest}")]
    Stale {
        /// The snapshot's last index.
        index: Index,
        /// The newest snapshot's last index.
        newest: Index,
    },
}
