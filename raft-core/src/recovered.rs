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
    /// This node joins a running cluster rather than founding one or being one of its
    /// known members: until a configuration that lists it (as a voter or a learner)
    /// reaches its log or snapshot from a leader, it grants no vote or pre-vote and never
    /// campaigns. A restart of a joining node must pass `true` again (the driver records
    /// how the node started); once the log names it, the flag changes nothing.
    ///
    /// Why: a node whose storage was lost and which comes back under its old id must not
    /// help elect a leader that lacks entries it once acknowledged. Start such a node as a
    /// joining one, after removing it from the cluster and adding it back.
    #[serde(default)]
    pub joining: bool,
    /// The node starts on storage that holds no entry and no snapshot, which may replace
    /// storage that was lost (the driver sets this for every such start of a founding
    /// node: a new store and a lost one look the same). Such a node cannot tell a
    /// brand-new cluster from one it belonged to before. If the first peer message it hears
    /// that speaks of the log shows a cluster that has written entries, it votes only once
    /// a leader has sent it some (it logs why), so that it never helps elect a leader
    /// lacking entries it once acknowledged: with a stale candidate, a blank voter makes a
    /// majority of three. When that first message shows an empty log, the cluster is being
    /// founded and the node votes as usual.
    ///
    /// The price, in one corner: a founding node that first reaches its peers after they
    /// have written entries (started late for the first time, or cut off since its start)
    /// cannot complete a quorum for them until some leader has reached it.
    #[serde(default)]
    pub fresh_storage: bool,
}

impl Recovered {
    /// The starting state of a member of a brand-new cluster: term 0, empty log.
    pub fn new_cluster(membership: Membership) -> Recovered {
        Recovered {
            membership,
            ..Recovered::default()
        }
    }

    /// The starting state of a node joining a running cluster whose configuration (as far
    /// as this node knows) is `cluster`, which need not list the node: empty storage, and
    /// no vote until the cluster adds it (see [`joining`](Recovered::joining)).
    pub fn joining(cluster: Membership) -> Recovered {
        Recovered {
            membership: cluster,
            joining: true,
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
