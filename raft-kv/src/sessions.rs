//! Client sessions, for writes that apply exactly once (the Raft dissertation, §6.3).
//!
//! A write whose outcome is unknown (a timeout, a leader that stopped after proposing it)
//! may have been committed; retried as a plain write it could apply twice. A client that
//! opens a session and numbers its writes is safe: the replicated table below remembers,
//! per session, the last sequence number applied and its response, so a retry of that
//! write is answered from the table instead of being applied again.
//!
//! The table is part of the replicated state (and of snapshots), so every replica makes
//! the same decision. It is bounded: at most [`SESSIONS_MAX`] sessions, the least recently
//! active evicted first, and a session idle for [`SESSION_IDLE_MS`] of log time expires.
//! Log time is the latest of the wall-clock times the leaders stamped on session entries:
//! every replica reads the same clock from the log, and no replica's own clock matters. A
//! write in a session that expired or was evicted is refused, not applied: whether an
//! earlier attempt of it took effect can no longer be told, and the client must say so.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The most sessions kept; opening one more evicts the least recently active.
pub(crate) const SESSIONS_MAX: usize = 10_000;

/// A session unused for this long, in log time, expires.
pub(crate) const SESSION_IDLE_MS: u64 = 60 * 60 * 1000;

/// One client's session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Session {
    /// The highest sequence number applied in this session (0: none yet).
    last_sequence: u64,
    /// The response to that write, for its retries.
    last_response: Bytes,
    /// When the session was last used, in log time.
    last_active_ms: u64,
}

/// The replicated session table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sessions {
    /// Each open session, by client id.
    sessions: BTreeMap<u64, Session>,
    /// The log's clock: the latest time an entry carried. It never goes back, whatever the
    /// leaders' clocks do.
    log_time_ms: u64,
    /// (last activity, client id) of every session, oldest first: expiry and eviction
    /// order. Derived from `sessions`, so not part of a snapshot.
    #[serde(skip)]
    by_activity: BTreeSet<(u64, u64)>,
}

/// What to do with a write in a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// A new write: apply it, then [`Sessions::record`] its response.
    Apply,
    /// A retry of the last write applied: answer with its response, apply nothing.
    Duplicate(Bytes),
    /// A write older than the last one applied: its answer was given already.
    Stale {
        /// The last sequence number applied.
        last_sequence: u64,
    },
    /// No such session: never opened, expired or evicted.
    Unknown,
}

impl Sessions {
    /// Moves the log's clock to `time_ms` if that is later, and expires the sessions idle
    /// for longer than [`SESSION_IDLE_MS`].
    pub(crate) fn advance_clock(&mut self, time_ms: u64) {
        self.log_time_ms = self.log_time_ms.max(time_ms);
        while let Some(&(last_active_ms, client)) = self.by_activity.first() {
            if last_active_ms.saturating_add(SESSION_IDLE_MS) >= self.log_time_ms {
                break;
            }
            self.by_activity.pop_first();
            self.sessions.remove(&client);
        }
    }

    /// Opens the session `client` (the index of the entry that opens it, so unique), at
    /// the current log time; evicts the least recently active session when full.
    pub(crate) fn open(&mut self, client: u64) {
        while self.sessions.len() >= SESSIONS_MAX {
            let Some((_, oldest)) = self.by_activity.pop_first() else {
                break;
            };
            self.sessions.remove(&oldest);
        }
        let session = Session {
            last_sequence: 0,
            last_response: Bytes::new(),
            last_active_ms: self.log_time_ms,
        };
        if let Some(previous) = self.sessions.insert(client, session) {
            self.by_activity.remove(&(previous.last_active_ms, client));
        }
        self.by_activity.insert((self.log_time_ms, client));
    }

    /// Decides on the write numbered `sequence` in session `client`, and marks the session
    /// active.
    pub(crate) fn admit(&mut self, client: u64, sequence: u64) -> Admission {
        let now = self.log_time_ms;
        let Some(session) = self.sessions.get_mut(&client) else {
            return Admission::Unknown;
        };
        self.by_activity.remove(&(session.last_active_ms, client));
        session.last_active_ms = now;
        self.by_activity.insert((now, client));
        match sequence.cmp(&session.last_sequence) {
            std::cmp::Ordering::Greater => Admission::Apply,
            std::cmp::Ordering::Equal => Admission::Duplicate(session.last_response.clone()),
            std::cmp::Ordering::Less => Admission::Stale {
                last_sequence: session.last_sequence,
            },
        }
    }

    /// Records that the write numbered `sequence` in session `client` was applied, with
    /// `response`.
    pub(crate) fn record(&mut self, client: u64, sequence: u64, response: Bytes) {
        if let Some(session) = self.sessions.get_mut(&client) {
            session.last_sequence = sequence;
            session.last_response = response;
        }
    }

    /// Rebuilds the derived order after the table was decoded from a snapshot.
    pub(crate) fn rebuild_order(&mut self) {
        self.by_activity = self
            .sessions
            .iter()
            .map(|(client, session)| (session.last_active_ms, *client))
            .collect();
    }

    /// How many sessions are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A new write applies once; its retry gets the recorded response; an older one is
    // stale; an unknown session is refused.
    #[test]
    fn writes_in_a_session_apply_once() {
        let mut sessions = Sessions::default();
        sessions.advance_clock(1_000);
        sessions.open(7);
        assert_eq!(sessions.admit(7, 1), Admission::Apply);
        sessions.record(7, 1, Bytes::from_static(b"one"));
        assert_eq!(
            sessions.admit(7, 1),
            Admission::Duplicate(Bytes::from_static(b"one"))
        );
        assert_eq!(sessions.admit(7, 2), Admission::Apply);
        sessions.record(7, 2, Bytes::new());
        assert_eq!(sessions.admit(7, 1), Admission::Stale { last_sequence: 2 });
        assert_eq!(sessions.admit(8, 1), Admission::Unknown);
    }

    // A session idle for longer than the limit in log time expires; activity keeps one
    // alive; a clock that goes back changes nothing.
    #[test]
    fn idle_sessions_expire_by_log_time() {
        let mut sessions = Sessions::default();
        sessions.advance_clock(0);
        sessions.open(1);
        sessions.open(2);
        sessions.advance_clock(SESSION_IDLE_MS / 2);
        assert_eq!(sessions.admit(2, 1), Admission::Apply);
        sessions.advance_clock(5);
        sessions.advance_clock(SESSION_IDLE_MS + 1);
        assert_eq!(sessions.admit(1, 1), Admission::Unknown);
        assert_eq!(sessions.admit(2, 2), Admission::Apply);
        assert_eq!(sessions.len(), 1);
    }

    // The table never holds more than its bound: the least recently active session goes.
    #[test]
    fn the_table_is_bounded() {
        let mut sessions = Sessions::default();
        for client in 0..SESSIONS_MAX as u64 {
            sessions.advance_clock(client);
            sessions.open(client);
        }
        sessions.advance_clock(SESSIONS_MAX as u64);
        assert_eq!(sessions.admit(0, 1), Admission::Apply);
        sessions.open(u64::MAX);
        assert_eq!(sessions.len(), SESSIONS_MAX);
        assert_eq!(sessions.admit(1, 1), Admission::Unknown);
        assert_eq!(sessions.admit(0, 2), Admission::Apply);
    }

    // The derived order is rebuilt after a snapshot round trip, so expiry still works.
    #[test]
    fn the_order_survives_a_snapshot() {
        let mut sessions = Sessions::default();
        sessions.open(3);
        let encoded = postcard::to_stdvec(&sessions).expect("encodes");
        let mut restored: Sessions = postcard::from_bytes(&encoded).expect("decodes");
        restored.rebuild_order();
        assert_eq!(restored, sessions);
        restored.advance_clock(SESSION_IDLE_MS + 1);
        assert_eq!(restored.len(), 0);
    }
}
