//! What a node starts from: a new cluster's membership, or what storage recovered.

use serde::{Deserialize, Serialize};

use crate::error::RecoveryError;
use crate::quorum::Membership;
use crate::snapshot::SnapshotMetadata;
use crate::types::{Entry, HardState, Index, LogId};

/// The durable state a [`Node`](crate::Node) starts from.
///
/// A node of a new cluster starts from [`Recovered::new_cluster`]; a restarted node from
/// exactly what its storage holds durably. [`Node::new`](crate::Node::new) checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovered {
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The configuration the log starts from: a new cluster's initial configuration. When
    /// `snapshot` is present, the snapshot's configuration is used instead. Never the
    /// latest configuration: the node finds that among the entries, and falls back to this
    /// one if a configuration entry is truncated. A node joining an existing cluster starts
    /// from the cluster's configuration (which does not list it) and learns its role from
    /// the log, or from the snapshot the leader sends it.
    pub membership: Membership,
    /// The newest durable snapshot's metadata, if any.
    pub snapshot: Option<SnapshotMetadata>,
    /// The durable log entries, contiguous: from index 1 without a snapshot, else from any
    /// index up to one past the snapshot (entries the snapshot covers are skipped).
    pub entries: Vec<Entry>,
    /// The highest index the state machine holds durably applied; entries up to it are
    /// known committed and are not handed out again. A volatile state machine passes 0:
    /// if a snapshot exists, the node's first action is then to restore it.
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
        let membership = self
            .snapshot
            .as_ref()
            .map_or(&self.membership, |snapshot| &snapshot.membership);
        if membership.voters.is_empty() {
            return Err(RecoveryError::NoVoters);
        }
        let base = self
            .snapshot
            .as_ref()
            .map_or(LogId::default(), |snapshot| snapshot.last_included);
        if base.term > self.hard_state.term {
            return Err(RecoveryError::EntryTermOutOfOrder {
                index: base.index,
                term: base.term,
            });
        }
        let mut expected = match self.entries.first() {
            // Storage may keep entries the snapshot covers, but must not leave a gap.
            Some(first) if base.index.0 > 0 && first.index() <= base.index.next() => first.index(),
            _ => base.index.next(),
        };
        let mut previous_term = None;
        for entry in &self.entries {
            if entry.index() == base.index && entry.term() != base.term {
                return Err(RecoveryError::SnapshotConflict {
                    index: base.index,
                    snapshot_term: base.term,
                    entry_term: entry.term(),
                });
            }
            if entry.index() != expected {
                return Err(RecoveryError::EntriesNotContiguous {
                    expected,
                    found: entry.index(),
                });
            }
            if previous_term.is_some_and(|term| entry.term() < term)
                || (entry.index() > base.index && entry.term() < base.term)
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
        let last = expected.previous().max(base.index);
        if self.applied > last {
            return Err(RecoveryError::AppliedBeyondLog {
                applied: self.applied,
                last,
            });
        }
        Ok(())
    }
}
