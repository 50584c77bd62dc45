//! What a node starts from: a new cluster's membership, or what storage recovered.

use serde::{Deserialize, Serialize};

use crate::error::RecoveryError;
use crate::quorum::Membership;
use crate::types::{Entry, HardState, Index};

/// The durable state a [`Node`](crate::Node) starts from.
///
/// A node of a new cluster starts from [`Recovered::new_cluster`]; a restarted node from
/// exactly what its storage holds durably. [`Node::new`](crate::Node::new) checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The configuration the log starts from: a new cluster's initial configuration (or,
    /// once snapshots exist, the snapshot's). Never the latest configuration: the node
    /// finds that among the entries, and falls back to this one if a configuration entry
    /// is truncated. A node joining an existing cluster starts from the cluster's
    /// configuration (which does not list it) and learns its role from the log.
    pub membership: Membership,
    /// Every durable log entry, from index 1, contiguous.
    pub entries: Vec<Entry>,
    /// The highest index the state machine has durably applied; entries up to it are
    /// known committed and are not handed out again.
    pub applied: Index,
}

impl Recovered {
    /// The starting state of a member of a brand-new cluster: term 0, empty log.
    pub fn new_cluster(membership: Membership) -> Recovered {
        Recovered {
            membership,
            ..Recovered::default()
        }
    }

    /// Checks the invariants storage must have kept.
    pub(crate) fn validate(&self) -> Result<(), RecoveryError> {
        if self.membership.voters.is_empty() {
            return Err(RecoveryError::NoVoters);
        }
        let mut expected = Index(1);
        let mut previous_term = None;
        for entry in &self.entries {
            if entry.index() != expected {
                return Err(RecoveryError::EntriesNotContiguous {
                    expected,
                    found: entry.index(),
                });
            }
            if previous_term.is_some_and(|term| entry.term() < term)
                || entry.term() > self.hard_state.term
            {
                return Err(RecoveryError::EntryTermOutOfOrder {
                    index: entry.index(),
                    term: entry.term(),
                });
            }
            previous_term = Some(entry.term());
            expected = expected.next();
        }
        let last = expected.previous();
        if self.applied > last {
            return Err(RecoveryError::AppliedBeyondLog {
                applied: self.applied,
                last,
            });
        }
        Ok(())
    }
}
