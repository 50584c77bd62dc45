//! Durable storage of a node's hard state, log and snapshot.
//!
//! A [`LogStore`] is synchronous on purpose: the driver runs it on a thread of its own,
//! hands it every write queued since the last batch, and acknowledges them all to the
//! core after one [`LogStore::write_batch`] (one transaction, one fsync). That is group
//! commit, and it keeps implementations simple: no async, no locking. A store whose writes
//! never block ([`LogStore::writes_without_blocking`], the in-memory one) runs on the
//! driver's task instead, batching the writes of each round of actions.

mod memory;
mod redb_store;

use std::path::PathBuf;

use bytes::Bytes;
use raft_core::{Entry, HardState, NodeId, SnapshotMetadata, Write};
use serde::{Deserialize, Serialize};

pub use self::memory::MemoryLogStore;
pub use self::redb_store::RedbLogStore;

/// Whose data a store holds: recorded when a node first starts on it, and checked at
/// every later start, so that a store is never used by another node or cluster and a
/// node that joined a cluster stays a joining node until the cluster has added it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreIdentity {
    /// The cluster the node belongs to.
    pub cluster_id: u64,
    /// The node.
    pub node_id: NodeId,
    /// The node first started by joining a running cluster rather than founding a new one.
    pub joined: bool,
}

/// Everything a store holds durably, as read back at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Whose data this is; `None` for a store no node has started on yet.
    pub identity: Option<StoreIdentity>,
    /// The last durable term and vote.
    pub hard_state: HardState,
    /// The newest durable snapshot and its data.
    pub snapshot: Option<(SnapshotMetadata, Bytes)>,
    /// The durable entries, contiguous: from index 1 without a snapshot, else starting
    /// anywhere up to one past the snapshot's last index (entries it covers may remain).
    pub entries: Vec<Entry>,
}

/// One write from the core, with the snapshot data it stores when it names a snapshot.
#[derive(Clone, Debug)]
pub struct StoreWrite {
    /// The write, as the core issued it.
    pub write: Write,
    /// The data of `write.snapshot`, present exactly when that is.
    pub snapshot_data: Option<Bytes>,
}

/// A node's durable storage.
pub trait LogStore: Send + 'static {
    /// Reads everything durable. Called once, before any write.
    fn recover(&mut self) -> Result<StoredState, StorageError>;

    /// Records whose data the store holds, durably, before returning. Called once when a
    /// node starts on a store without an identity, before any write.
    fn record_identity(&mut self, identity: StoreIdentity) -> Result<(), StorageError>;

    /// Carries out `writes` in order and makes all of them durable before returning (one
    /// fsync for the batch). Each write is all-or-nothing across a crash, and so is every
    /// prefix of the batch: after a crash the store holds the writes of some prefix.
    ///
    /// For each write: store the hard state if present; then the snapshot if present,
    /// replacing the stored one, and drop stored entries at or below its last index;
    /// then, for a log write, drop stored entries at or after its first index and store
    /// its entries.
    ///
    /// On an error, some prefix of the batch (possibly none of it) may have been stored;
    /// the node stops at once, and on restart recovers whatever is durable.
    fn write_batch(&mut self, writes: &[StoreWrite]) -> Result<(), StorageError>;

    /// Whether [`write_batch`](LogStore::write_batch) never blocks (a store in memory), so
    /// that the driver may call it on its own task instead of a storage thread: each write
    /// is then acknowledged without the two thread hops that cost most of its latency.
    /// `false` by default. A store that does file or network I/O must leave it so: on the
    /// driver's task, a slow write would hold up the node's timers and messages.
    fn writes_without_blocking(&self) -> bool {
        false
    }
}

/// Storage failed. The node cannot go on safely and stops; the message names the path.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The data directory or file cannot be used (missing permissions, held by another
    /// process, not a database, damaged in a way the database finds when opening).
    #[error("cannot use the data at {path}: {reason}")]
    Unusable {
        /// The file or directory.
        path: PathBuf,
        /// Why, in one line.
        reason: String,
    },
    /// A read or write failed while running.
    #[error("storage at {path} failed: {reason}")]
    Failed {
        /// The file or directory.
        path: PathBuf,
        /// Why, in one line.
        reason: String,
    },
    /// The stored data contradicts itself (a gap in the log, a record that does not
    /// decode), as found while recovering or writing.
    #[error("the data at {path} is corrupt: {reason}")]
    Corrupt {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong, in one line.
        reason: String,
    },
}
