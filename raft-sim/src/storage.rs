//! An in-memory stand-in for durable storage, for tests that need to control exactly
//! when writes become durable and which ones a crash loses.

use std::collections::VecDeque;

use raft_core::{Entry, HardState, Index, Membership, Recovered, SnapshotMetadata, Write, WriteId};

/// Storage kept in memory: what is "durable" survives a simulated crash, what is pending
/// does not. Not a real disk: use it only in tests.
///
/// `Data` is the snapshot data the driver hands over with each write that stores a
/// snapshot (the state machine's serialized state, say).
#[derive(Clone, Debug)]
pub struct InMemoryStorage<Data = bytes::Bytes> {
    hard_state: HardState,
    snapshot: Option<(SnapshotMetadata, Data)>,
    entries: Vec<Entry>,
    pending: VecDeque<(Write, Option<Data>)>,
}

impl<Data> Default for InMemoryStorage<Data> {
    fn default() -> Self {
        InMemoryStorage {
            hard_state: HardState::default(),
            snapshot: None,
            entries: Vec::new(),
            pending: VecDeque::new(),
        }
    }
}

impl<Data: Clone> InMemoryStorage<Data> {
    /// Queues a write; it is not durable until [`InMemoryStorage::sync`]. A write that
    /// stores a snapshot must come with its data.
    pub fn submit(&mut self, write: Write, snapshot_data: Option<Data>) {
        debug_assert_eq!(
            write.snapshot.is_some(),
            snapshot_data.is_some(),
            "a write storing a snapshot carries its data"
        );
        self.pending.push_back((write, snapshot_data));
    }

    /// Whether writes are waiting to become durable.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Makes every queued write durable, in order; returns the last one's id.
    pub fn sync(&mut self) -> Option<WriteId> {
        let mut last = None;
        while let Some(id) = self.sync_one() {
            last = Some(id);
        }
        last
    }

    /// Makes only the oldest queued write durable; returns its id.
    pub fn sync_one(&mut self) -> Option<WriteId> {
        let (write, data) = self.pending.pop_front()?;
        let id = write.id;
        self.apply(write, data);
        Some(id)
    }

    /// Carries out one write, all of it at once, as a real store would in one
    /// transaction.
    fn apply(&mut self, write: Write, data: Option<Data>) {
        if let Some(hard_state) = write.hard_state {
            self.hard_state = hard_state;
        }
        if let (Some(snapshot), Some(data)) = (write.snapshot, data) {
            // The entries the snapshot covers are no longer needed.
            let through = snapshot.last_included.index;
            self.entries.retain(|entry| entry.index() > through);
            self.snapshot = Some((*snapshot, data));
        }
        if let Some(log) = write.log {
            self.entries.retain(|entry| entry.index() < log.first_index);
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

    /// The durable entries (those after the snapshot).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The durable snapshot and its data.
    pub fn snapshot(&self) -> Option<&(SnapshotMetadata, Data)> {
        self.snapshot.as_ref()
    }

    /// What a restarted node recovers from this storage, with its state machine at
    /// `applied` (0 for a volatile one, which the node then restores from the snapshot).
    pub fn recovered(&self, membership: Membership, applied: Index) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            membership,
            snapshot: self.snapshot.as_ref().map(|(snapshot, _)| snapshot.clone()),
            entries: self.entries.clone(),
            applied,
            joining: false,
            fresh_storage: false,
        }
    }
}
