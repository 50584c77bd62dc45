//! The follower side of replication: the consistency check, appending, and learning the
//! commit index.

use crate::log::FollowerAppend;
use crate::message::{AppendResponse, MessageBody};
use crate::shared::Shared;
use crate::snapshot::SnapshotMetadata;
use crate::types::{Entry, Index, LogId, NodeId, Term};

impl Shared {
    /// Handles the current leader's `AppendEntries`.
    pub(crate) fn handle_append(
        &mut self,
        leader: NodeId,
        leader_term: Term,
        previous: LogId,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        match self
            .log
            .append_from_leader(previous, entries, leader_term, self.commit)
        {
            FollowerAppend::Matched { last } => {
                self.refresh_membership();
                // Only what this message proved to match may be declared committed here.
                self.commit_candidate = self.commit_candidate.max(leader_commit.min(last));
                self.advance_follower_commit();
                self.send_when_durable(
                    leader,
                    MessageBody::AppendEntriesResponse(AppendResponse::Accepted { matched: last }),
                );
            }
            FollowerAppend::Mismatch => {
                let hint = self.log.rejection_hint(previous);
                self.send_when_durable(
                    leader,
                    MessageBody::AppendEntriesResponse(AppendResponse::Rejected {
                        rejected: previous.index,
                        hint,
                    }),
                );
            }
            FollowerAppend::ConflictsWithCommitted { index } => {
                tracing::warn!(
                    node = self.id().0,
                    term = self.term().0,
                    from = leader.0,
                    index = index.0,
                    commit = self.commit.0,
                    "dropping an append that would overwrite a committed entry"
                );
            }
            FollowerAppend::Malformed => {
                tracing::warn!(
                    node = self.id().0,
                    term = self.term().0,
                    from = leader.0,
                    "dropping a malformed append"
                );
            }
        }
    }

    /// Handles the current leader's `InstallSnapshot`, whose data the driver holds.
    ///
    /// A snapshot at or below the commit index is old news (a duplicate, or one overtaken
    /// by appends): the answer says how far this node already matches. A snapshot whose
    /// last entry the log holds is just an append with nothing new: the entries after it
    /// stay, since the leader may already count them. Only otherwise does the snapshot
    /// replace the log.
    pub(crate) fn handle_install_snapshot(
        &mut self,
        leader: NodeId,
        leader_term: Term,
        snapshot: SnapshotMetadata,
    ) {
        let last = snapshot.last_included;
        // No log reaches the last index (indexes saturate there): only a forged snapshot
        // names it.
        if last.term > leader_term
            || last.index == Index(u64::MAX)
            || !snapshot.membership.is_well_formed()
        {
            tracing::warn!(
                node = self.id().0,
                term = self.term().0,
                from = leader.0,
                %snapshot,
                "dropping a malformed snapshot"
            );
            return;
        }
        if last.index <= self.commit {
            tracing::debug!(
                node = self.id().0,
                %snapshot,
                commit = self.commit.0,
                "snapshot already covered by the commit index"
            );
            self.send_when_durable(
                leader,
                MessageBody::AppendEntriesResponse(AppendResponse::Accepted {
                    matched: self.commit,
                }),
            );
        } else if self.log.matches(last) {
            self.handle_append(leader, leader_term, last, Vec::new(), last.index);
        } else {
            self.install_snapshot(snapshot);
            self.send_when_durable(
                leader,
                MessageBody::AppendEntriesResponse(AppendResponse::Accepted {
                    matched: last.index,
                }),
            );
        }
    }

    /// Handles the current leader's `Heartbeat`. The leader capped `leader_commit` at what
    /// this node acknowledged in this term, so it may be adopted as far as the log is
    /// durable.
    pub(crate) fn handle_heartbeat(&mut self, leader: NodeId, leader_commit: Index, round: u64) {
        self.commit_candidate = self.commit_candidate.max(leader_commit);
        self.advance_follower_commit();
        self.send_when_durable(leader, MessageBody::HeartbeatResponse { round });
    }
}
