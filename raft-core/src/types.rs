//! Identifier newtypes and the log entry.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::quorum::Membership;

/// The identity of a node in the cluster. `0` is reserved and never names a node.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

/// A Raft term: the logical clock of leadership. Terms only grow.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Term(pub u64);

/// A position in the replicated log. The first entry has index 1; index 0 means "before the log".
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Index(pub u64);

impl Term {
    /// The term that follows this one, or `None` at the end of the term space.
    pub fn checked_next(self) -> Option<Term> {
        self.0.checked_add(1).map(Term)
    }
}

impl Index {
    /// The index that follows this one. Saturates at `u64::MAX`, an index no log reaches,
    /// so that forged indexes in peer messages cannot overflow.
    pub fn next(self) -> Index {
        Index(self.0.saturating_add(1))
    }

    /// The index before this one, saturating at zero.
    pub fn previous(self) -> Index {
        Index(self.0.saturating_sub(1))
    }

    /// This index moved forward by `count` positions (saturating, like [`Index::next`]).
    pub fn plus(self, count: u64) -> Index {
        Index(self.0.saturating_add(count))
    }
}

/// Node ids as a comma-separated list of numbers (`1,2,3`), for one-line traces.
pub fn node_list<'a>(nodes: impl IntoIterator<Item = &'a NodeId>) -> String {
    nodes
        .into_iter()
        .map(|node| node.0.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "n{}", self.0)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "t{}", self.0)
    }
}

impl fmt::Display for Index {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "i{}", self.0)
    }
}

/// The identity of one log entry: its index and the term it was created in.
///
/// By the Log Matching property, two logs holding the same `LogId` hold the same entry
/// and agree on everything before it.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogId {
    /// The term the entry was created in.
    pub term: Term,
    /// The position of the entry in the log.
    pub index: Index,
}

impl LogId {
    /// A log id from raw numbers, for tests and traces.
    pub fn new(term: u64, index: u64) -> LogId {
        LogId {
            term: Term(term),
            index: Index(index),
        }
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.term.0, self.index.0)
    }
}

/// What an entry carries.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// An entry with no content: a new leader appends one to commit entries of earlier terms.
    Blank,
    /// An application command, opaque to Raft. `Bytes` lets the log, messages and the
    /// apply queue share one buffer instead of copying it.
    Command(
        #[cfg_attr(feature = "arbitrary", arbitrary(with = crate::arbitrary_support::bytes))] Bytes,
    ),
    /// A new cluster configuration. It takes effect on each node as soon as the node
    /// appends it (the Raft paper's rule), and is part of the log like any entry. Boxed:
    /// configurations are rare, and inline they would make every entry, command entries
    /// included, 40 bytes larger (`Entry` 88 bytes instead of 56), which costs the log,
    /// messages and applies memory bandwidth on every entry.
    Membership(Box<Membership>),
}

/// The bytes every entry counts toward byte limits on top of its payload: its id and
/// framing. Without it, empty commands would escape the uncommitted and per-message limits.
pub const ENTRY_OVERHEAD_BYTES: usize = 32;

impl Payload {
    /// The number of payload bytes.
    pub fn size(&self) -> usize {
        match self {
            Payload::Blank => 0,
            Payload::Command(bytes) => bytes.len(),
            Payload::Membership(membership) => 8 * membership.members().len(),
        }
    }

    /// What an entry with this payload counts toward byte limits: the payload plus
    /// [`ENTRY_OVERHEAD_BYTES`].
    pub fn accounted_size(&self) -> usize {
        self.size().saturating_add(ENTRY_OVERHEAD_BYTES)
    }
}

/// One entry of the replicated log.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where the entry sits and which term created it.
    pub id: LogId,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// The entry's index.
    pub fn index(&self) -> Index {
        self.id.index
    }

    /// The entry's term.
    pub fn term(&self) -> Term {
        self.id.term
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.payload {
            Payload::Blank => write!(formatter, "{}:blank", self.id),
            Payload::Command(bytes) => write!(formatter, "{}:{}B", self.id, bytes.len()),
            Payload::Membership(membership) => write!(formatter, "{}:[{membership}]", self.id),
        }
    }
}

/// The state every node must have durable before it acts on it: its term and its vote.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
}

impl fmt::Display for HardState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.vote {
            Some(vote) => write!(formatter, "term={} vote={}", self.term.0, vote),
            None => write!(formatter, "term={} vote=none", self.term.0),
        }
    }
}
