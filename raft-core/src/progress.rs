//! What a leader knows of one follower's log, and how fast it may send to it.
//!
//! Invariants, for every progress of a leader in term `T`:
//! - `matched < next`: the leader never sends what the follower is known to hold.
//! - `matched` only grows within a term: stale or reordered responses cannot lower it.
//! - in `Probe`, at most one append is unanswered (`paused` while it is);
//! - in `Replicate`, `in_flight` holds the last index of each unanswered append that
//!   carried entries, ascending, never more than the configured window;
//! - in `Snapshot`, no append is sent until the transport reports the snapshot's fate or
//!   the follower acknowledges an index at or past it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::types::Index;

/// How a leader sends to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationState {
    /// The match point is unknown: send one append at a time and wait for its answer.
    Probe,
    /// The follower keeps up: stream appends optimistically, up to the in-flight window.
    Replicate,
    /// The follower needs entries the leader compacted: a snapshot is on its way, and
    /// nothing else is sent until it is delivered or fails.
    Snapshot,
}

/// A leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// The highest index known to be durable on the follower and to match the leader.
    pub(crate) matched: Index,
    /// The next index to send.
    pub(crate) next: Index,
    pub(crate) state: ReplicationState,
    /// In `Probe`: an append is unanswered, wait before sending another.
    paused: bool,
    /// In `Replicate`: the last index of each unanswered append.
    in_flight: VecDeque<Index>,
    /// The highest commit index sent to the follower.
    pub(crate) commit_sent: Index,
    /// The follower answered since the leader's last quorum check.
    pub(crate) recently_active: bool,
    /// The leader's tick count when the follower last answered (or when the leader began
    /// tracking it): how long ago a quorum was heard from.
    pub(crate) heard_tick: u64,
    /// The latest heartbeat round the follower answered.
    pub(crate) round_acknowledged: u64,
    /// In `Snapshot`: the last index of the snapshot being sent.
    pub(crate) pending_snapshot: Index,
}

impl Progress {
    /// A progress for a new leader: everything after the leader's last entry is unknown.
    pub(crate) fn new(next: Index) -> Progress {
        Progress {
            matched: Index(0),
            next,
            state: ReplicationState::Probe,
            paused: false,
            in_flight: VecDeque::new(),
            commit_sent: Index(0),
            recently_active: false,
            heard_tick: 0,
            round_acknowledged: 0,
            pending_snapshot: Index(0),
        }
    }

    /// Whether the follower holds committed entries it has not been told are committed.
    pub(crate) fn lacks_commit(&self, commit: Index) -> bool {
        self.commit_sent < commit.min(self.matched)
    }

    /// The number of unanswered appends carrying entries.
    pub(crate) fn in_flight(&self) -> usize {
        match self.state {
            ReplicationState::Probe => usize::from(self.paused),
            ReplicationState::Replicate => self.in_flight.len(),
            ReplicationState::Snapshot => 0,
        }
    }

    /// Whether another append carrying entries may be sent now.
    pub(crate) fn can_send(&self, window: usize) -> bool {
        match self.state {
            ReplicationState::Probe => !self.paused,
            ReplicationState::Replicate => self.in_flight.len() < window,
            ReplicationState::Snapshot => false,
        }
    }

    /// Records an append just sent whose last entry is `last` (`None` when it carried none).
    pub(crate) fn sent(&mut self, last: Option<Index>) {
        match self.state {
            ReplicationState::Probe => self.paused = true,
            ReplicationState::Replicate => {
                if let Some(last) = last {
                    debug_assert!(last >= self.next, "appends move forward in replicate");
                    self.next = last.next();
                    self.in_flight.push_back(last);
                }
            }
            ReplicationState::Snapshot => {
                debug_assert!(false, "no appends while a snapshot is sent")
            }
        }
    }

    /// A snapshot ending at `index` is being sent: appends wait for its outcome.
    pub(crate) fn snapshot_started(&mut self, index: Index) {
        self.state = ReplicationState::Snapshot;
        self.pending_snapshot = index;
        self.paused = false;
        self.in_flight.clear();
    }

    /// The transport reports the snapshot's fate. Delivered: the follower will hold
    /// everything through the snapshot once it has stored it, so probe right after it
    /// (waiting for the follower's answer first). Failed: probe again from the match
    /// point, which sends a new snapshot if the follower still needs one. Returns whether
    /// the report was current.
    pub(crate) fn snapshot_reported(&mut self, delivered: bool) -> bool {
        if self.state != ReplicationState::Snapshot {
            return false;
        }
        self.state = ReplicationState::Probe;
        self.next = if delivered {
            self.pending_snapshot.next()
        } else {
            self.matched.next()
        };
        self.pending_snapshot = Index(0);
        // Wait for the follower's acknowledgement, or the next heartbeat answer.
        self.paused = true;
        true
    }

    /// The follower holds the leader's log through `matched`. Returns whether that is news.
    pub(crate) fn accepted(&mut self, matched: Index) -> bool {
        let advanced = matched > self.matched;
        if advanced {
            self.matched = matched;
        }
        match self.state {
            ReplicationState::Snapshot if matched < self.pending_snapshot => {
                // An answer to something sent before the snapshot: keep waiting for it.
            }
            ReplicationState::Probe | ReplicationState::Snapshot => {
                // The probe found the match point, or the follower stored the snapshot:
                // stream from here on.
                self.pending_snapshot = Index(0);
                self.state = ReplicationState::Replicate;
                self.paused = false;
                self.in_flight.clear();
                self.next = self.matched.next();
            }
            ReplicationState::Replicate => {
                while self.in_flight.front().is_some_and(|last| *last <= matched) {
                    self.in_flight.pop_front();
                }
                self.next = self.next.max(self.matched.next());
            }
        }
        advanced
    }

    /// The follower refused the append whose previous index was `rejected`; `candidate` is
    /// the leader's best guess of the match point from the follower's hint. Returns whether
    /// the rejection was current (a stale one changes nothing).
    pub(crate) fn rejected(&mut self, rejected: Index, candidate: Index) -> bool {
        match self.state {
            // Answers to appends sent before the snapshot say nothing new.
            ReplicationState::Snapshot => false,
            ReplicationState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.state = ReplicationState::Probe;
                self.in_flight.clear();
                self.next = candidate.min(rejected).max(self.matched).next();
                self.paused = false;
                true
            }
            ReplicationState::Probe => {
                if rejected != self.next.previous() {
                    return false;
                }
                self.next = candidate.min(rejected).max(self.matched).next();
                self.paused = false;
                true
            }
        }
    }

    /// The follower answered a heartbeat: a paused probe may try again.
    pub(crate) fn heartbeat_answered(&mut self) {
        if self.state == ReplicationState::Probe {
            self.paused = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A probe sends one append at a time and switches to replicate on acceptance.
    #[test]
    fn probe_sends_one_then_replicates() {
        let mut progress = Progress::new(Index(5));
        assert!(progress.can_send(4));
        progress.sent(Some(Index(5)));
        assert!(!progress.can_send(4));
        assert_eq!(progress.in_flight(), 1);
        assert!(progress.accepted(Index(5)));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert_eq!(progress.next, Index(6));
        assert!(progress.can_send(4));
    }

    // Replicate streams up to the window and frees slots as answers arrive.
    #[test]
    fn replicate_respects_window() {
        let mut progress = Progress::new(Index(1));
        progress.accepted(Index(0));
        for last in [2, 4, 6] {
            assert!(progress.can_send(3));
            progress.sent(Some(Index(last)));
        }
        assert!(!progress.can_send(3));
        assert_eq!(progress.next, Index(7));
        progress.accepted(Index(4));
        assert_eq!(progress.in_flight(), 1);
        assert!(progress.can_send(3));
    }

    // A stale acceptance never lowers the match index.
    #[test]
    fn stale_acceptance_does_not_regress() {
        let mut progress = Progress::new(Index(1));
        progress.accepted(Index(0));
        progress.sent(Some(Index(10)));
        assert!(progress.accepted(Index(10)));
        assert!(!progress.accepted(Index(3)));
        assert_eq!(progress.matched, Index(10));
        assert_eq!(progress.next, Index(11));
    }

    // A rejection in replicate falls back to probing from the hinted point, and a stale
    // rejection (at or below the match) is ignored.
    #[test]
    fn rejection_falls_back_to_probe() {
        let mut progress = Progress::new(Index(1));
        progress.accepted(Index(3));
        progress.sent(Some(Index(8)));
        assert!(!progress.rejected(Index(2), Index(0)));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert!(progress.rejected(Index(6), Index(5)));
        assert_eq!(progress.state, ReplicationState::Probe);
        assert_eq!(progress.next, Index(6));
        // In probe only the rejection of the outstanding probe counts.
        progress.sent(Some(Index(8)));
        assert!(!progress.rejected(Index(7), Index(4)));
        assert!(progress.rejected(Index(5), Index(4)));
        assert_eq!(progress.next, Index(5));
        // The hint never moves next at or below the match.
        progress.sent(Some(Index(8)));
        assert!(progress.rejected(Index(4), Index(0)));
        assert_eq!(progress.next, Index(4));
    }

    // While a snapshot is sent nothing else goes; a failure probes again from the match
    // point, a delivery probes right after the snapshot, and an acceptance at or past it
    // streams at once (the transitions etcd's progress tests describe).
    #[test]
    fn snapshot_reports_move_progress() {
        let mut progress = Progress::new(Index(20));
        progress.accepted(Index(3));
        progress.snapshot_started(Index(15));
        assert_eq!(progress.state, ReplicationState::Snapshot);
        assert!(!progress.can_send(8));
        // Answers to appends sent before the snapshot change nothing.
        assert!(!progress.rejected(Index(10), Index(2)));
        progress.accepted(Index(5));
        assert_eq!(progress.state, ReplicationState::Snapshot);
        assert_eq!(progress.matched, Index(5));

        assert!(progress.snapshot_reported(false));
        assert_eq!(progress.state, ReplicationState::Probe);
        assert_eq!(progress.next, Index(6));
        assert!(
            !progress.can_send(8),
            "paused until the next heartbeat answer"
        );
        progress.heartbeat_answered();
        assert!(progress.can_send(8));
        // A report outside the snapshot state is stale.
        assert!(!progress.snapshot_reported(true));

        progress.snapshot_started(Index(15));
        assert!(progress.snapshot_reported(true));
        assert_eq!(progress.state, ReplicationState::Probe);
        assert_eq!(progress.next, Index(16));
        assert!(!progress.can_send(8), "waits for the follower's answer");
        progress.accepted(Index(15));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert_eq!(progress.next, Index(16));

        // No report needed: an acceptance at or past the snapshot streams at once.
        progress.snapshot_started(Index(30));
        progress.accepted(Index(31));
        assert_eq!(progress.state, ReplicationState::Replicate);
        assert_eq!(progress.next, Index(32));
        assert_eq!(progress.pending_snapshot, Index(0));
    }
}
