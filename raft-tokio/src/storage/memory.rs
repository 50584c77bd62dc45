//! An in-memory [`LogStore`] for tests: nothing survives the process.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use raft_core::Index;

use super::{LogStore, StorageError, StoreIdentity, StoreWrite, StoredState};

/// The path the in-memory store names in its errors: it has no file, and every
/// [`StorageError`] carries a path.
const MEMORY_PATH: &str = "<memory>";

/// A [`LogStore`] that keeps everything in memory, **for tests only**: it is not durable,
/// and a node using it forgets everything when the process exits.
///
/// Clones share the same storage. That is how a test simulates a restart: hand one clone
/// to a node, stop the node, and start a new one with another clone; the new node
/// recovers everything the first one wrote. [`MemoryLogStore::state`] lets a test look at
/// the stored state while a node is running, and [`MemoryLogStore::set_failing`] makes
/// writes fail, to test how a node reacts to broken storage.
///
/// Writes are checked like [`RedbLogStore`](super::RedbLogStore) checks them, so a test
/// against this store catches the same malformed writes. A failing batch may leave its
/// earlier writes applied: the trait allows any prefix of a batch to survive.
#[derive(Clone, Debug, Default)]
pub struct MemoryLogStore {
    shared: Arc<Mutex<Shared>>,
}

/// What the clones of one [`MemoryLogStore`] share.
#[derive(Debug, Default)]
struct Shared {
    state: StoredState,
    failing: bool,
}

impl MemoryLogStore {
    /// An empty store, as for a brand-new node.
    pub fn new() -> MemoryLogStore {
        MemoryLogStore::default()
    }

    /// A store that already holds `state`, as if a node had written it before a restart.
    /// The state is taken as given, without checks, so a test can also start a node from
    /// a state no store would produce.
    pub fn from_state(state: StoredState) -> MemoryLogStore {
        MemoryLogStore {
            shared: Arc::new(Mutex::new(Shared {
                state,
                failing: false,
            })),
        }
    }

    /// What the store holds now (what [`LogStore::recover`] would return).
    pub fn state(&self) -> StoredState {
        self.lock().state.clone()
    }

    /// While `failing` is true, every [`LogStore::write_batch`] on any clone fails with
    /// [`StorageError::Failed`] and changes nothing, as a full or broken disk would.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The lock only guards plain updates of data that cannot panic half-way, so a lock
        // poisoned by a panic elsewhere still guards a whole state.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogStore for MemoryLogStore {
    fn recover(&mut self) -> Result<StoredState, StorageError> {
        Ok(self.state())
    }

    fn record_identity(&mut self, identity: StoreIdentity) -> Result<(), StorageError> {
        self.lock().state.identity = Some(identity);
        Ok(())
    }

    fn write_batch(&mut self, writes: &[StoreWrite]) -> Result<(), StorageError> {
        let path = Path::new(MEMORY_PATH);
        let mut shared = self.lock();
        if shared.failing {
            return Err(StorageError::Failed {
                path: path.to_path_buf(),
                reason: "writes are set to fail (MemoryLogStore::set_failing)".to_owned(),
            });
        }
        let state = &mut shared.state;
        for store_write in writes {
            let last_entry = state.entries.last().map(|entry| entry.index());
            let snapshot_index = state
                .snapshot
                .as_ref()
                .map(|(metadata, _)| metadata.last_included.index);
            // Checked before anything of the write is applied, so that a refused write
            // leaves no trace, like a rolled-back transaction.
            check_write(store_write, last_entry, snapshot_index, path)?;
            let write = &store_write.write;
            if let Some(hard_state) = write.hard_state {
                state.hard_state = hard_state;
            }
            if let (Some(metadata), Some(data)) = (&write.snapshot, &store_write.snapshot_data) {
                let last = metadata.last_included.index;
                let covered = state.entries.partition_point(|entry| entry.index() <= last);
                state.entries.drain(..covered);
                state.snapshot = Some((metadata.as_ref().clone(), data.clone()));
            }
            if let Some(log) = &write.log {
                let kept = state
                    .entries
                    .partition_point(|entry| entry.index() < log.first_index);
                state.entries.truncate(kept);
                state.entries.extend(log.entries.iter().cloned());
            }
        }
        Ok(())
    }

    /// In memory: a write takes a lock and a copy, never I/O.
    fn writes_without_blocking(&self) -> bool {
        true
    }
}

/// Refuses a write that breaks the contract of [`StoreWrite`] and
/// [`LogWrite`](raft_core::LogWrite): a snapshot without its data (or data without a
/// snapshot), a log write at index 0, entries not contiguous from the log write's first
/// index, or a log write that would leave a gap after the last stored entry or snapshot.
/// `last_entry` and `snapshot_index` are the store's last entry and its snapshot's last
/// index before the write.
///
/// Storing such a write would leave a log that fails [`LogStore::recover`] at the next
/// start, so both stores refuse it now, with [`StorageError::Failed`], while the mistake
/// is still next to its cause. Shared with the redb store so that both refuse the same
/// writes.
pub(super) fn check_write(
    store_write: &StoreWrite,
    last_entry: Option<Index>,
    snapshot_index: Option<Index>,
    path: &Path,
) -> Result<(), StorageError> {
    let write = &store_write.write;
    let refuse = |reason: String| StorageError::Failed {
        path: path.to_path_buf(),
        reason: format!("refused write {}: {reason}", write.id.0),
    };
    match (&write.snapshot, &store_write.snapshot_data) {
        (Some(metadata), None) => {
            return Err(refuse(format!("{metadata} comes without its data")));
        }
        (None, Some(_)) => {
            return Err(refuse("snapshot data comes without a snapshot".to_owned()));
        }
        _ => {}
    }
    let Some(log) = &write.log else {
        return Ok(());
    };
    if log.first_index == Index(0) {
        return Err(refuse("a log write starts at index 0".to_owned()));
    }
    let mut expected = log.first_index;
    for entry in &log.entries {
        if entry.index() != expected {
            return Err(refuse(format!(
                "the log write from {} holds {} where {expected} belongs",
                log.first_index,
                entry.index()
            )));
        }
        expected = expected.next();
    }
    // The write's own snapshot is stored before its log, replacing the stored one.
    let snapshot_index = match &write.snapshot {
        Some(metadata) => Some(metadata.last_included.index),
        None => snapshot_index,
    };
    let last_known = last_entry.max(snapshot_index).unwrap_or_default();
    if log.first_index > last_known.next() {
        return Err(refuse(format!(
            "a log write from {} would leave a gap after {last_known}",
            log.first_index
        )));
    }
    Ok(())
}
