//! An in-memory stand-in for durable storage, for tests that need to control exactly
//! when writes become durable and which ones a crash loses.

use std::collections::VecDeque;

use raft_core::{Entry, HardState, Index, Membership, Recovered, Write, WriteId};

/// Storage kept in memory: what is "durable" survives a simulated crash, what is pending
/// does not. Not a real disk: use it only in tests.
#[derive(Clone, Debug, Default)]
pub struct InMemoryStorage {
    hard_state: HardState,
    entries: Vec<Entry>,
    pending: VecDeque<Write>,
}

impl InMemoryStorage {
    /// Queues a write; it is not durable until [`InMemoryStorage::sync`].
    pub fn submit(&mut self, write: Write) {
        self.pending.push_back(write);
    }

    /// Whether writes are waiting to become durable.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes every queued write durable, in order; returns the last one's id.
    pub fn sync(&mut self) -> Option<WriteId> {
        let mut last = None;
        while let Some(write) = self.pending.pop_front() {
            last = Some(write.id);
            self.apply(write);
        }
        last
    }

    /// Makes only the oldest queued write durable; returns its id.
    pub fn sync_one(&mut self) -> Option<WriteId> {
        let write = self.pending.pop_front()?;
        let id = write.id;
        self.apply(write);
        Some(id)
    }

    fn apply(&mut self, write: Write) {
        if let Some(hard_state) = write.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(log) = write.log {
            let keep = usize::try_from(log.first_index.0.saturating_sub(1)).unwrap_or(usize::MAX);
            self.entries.truncate(keep);
            self.entries.extend(log.entries);
        }
    }

    /// A crash: every write not yet durable is lost.
    pub fn crash(&mut self) {
        self.pending.clear();
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The durable entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// What a restarted node recovers from this storage.
    pub fn recovered(&self, membership: Membership, applied: Index) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            membership,
            entries: self.entries.clone(),
            applied,
        }
    }
}
