//! Read-only views of a node: its role and a status snapshot.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::progress::ReplicationState;
use crate::quorum::Membership;
use crate::types::{Index, NodeId, Term};

/// The part a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asks, without raising its term, whether it could win an election (pre-vote).
    PreCandidate,
    /// Asks for votes to become leader.
    Candidate,
    /// Leads the term: the only role that appends entries.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        })
    }
}

/// A snapshot of a node's state, for operators and tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Whom it voted for in `term`.
    pub vote: Option<NodeId>,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// On a leader, how many ticks ago a quorum of voters (this leader counted) last
    /// answered it; `None` unless leader. A leader cut off from its cluster (paused,
    /// partitioned) shows a growing age until check-quorum makes it step down, so an
    /// operator can tell a stale leader from a live one.
    pub quorum_contact_age_ticks: Option<u64>,
    /// The highest index known committed.
    pub commit: Index,
    /// The highest index the state machine reported applied.
    pub applied: Index,
    /// The last index of its log.
    pub last_index: Index,
    /// The highest index durable in storage.
    pub durable_index: Index,
    /// The last index of the newest durable snapshot (0 when there is none).
    pub snapshot_index: Index,
    /// The membership it follows.
    pub membership: Membership,
    /// A leader told this node that a committed configuration removed it (see
    /// [`Event::Removed`](crate::Event::Removed)): it no longer campaigns.
    pub removed: bool,
    /// Per-follower replication progress; empty unless leader.
    pub followers: Vec<FollowerStatus>,
    /// The leadership transfer in progress; `None` unless leader.
    pub transfer: Option<TransferStatus>,
}

/// A leader's view of the leadership transfer it has in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStatus {
    /// The node leadership is handed to.
    pub target: NodeId,
    /// Ticks left before the leader abandons the transfer and accepts proposals again.
    pub remaining_ticks: u32,
    /// The target was found up to date and told to campaign (`TimeoutNow` went out).
    pub timeout_now_sent: bool,
}

/// A leader's view of one follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerStatus {
    /// The follower.
    pub id: NodeId,
    /// Whether it votes (in either half of a joint configuration); learners do not.
    pub voter: bool,
    /// The highest index known durable there and matching the leader.
    pub matched: Index,
    /// The next index the leader will send.
    pub next: Index,
    /// Probing for the match point, or streaming.
    pub state: ReplicationState,
    /// Appends sent and not yet answered.
    pub in_flight: usize,
    /// The last index of the snapshot being sent, in the `Snapshot` state.
    pub pending_snapshot: Option<Index>,
}
