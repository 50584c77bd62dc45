//! A durable [`LogStore`] in one [redb](https://docs.rs/redb) file.
//!
//! The file `raft.redb` in the node's data directory holds two tables:
//!
//! - `entries`: the log, keyed by index, each entry encoded with postcard;
//! - `metadata`: a few named records: the format version (the store's header, written
//!   before the file takes its name), the identity of the node using it, the hard state,
//!   and the snapshot's metadata and data (the data as raw bytes; several megabytes are fine).
//!
//! A batch of writes is one redb write transaction, committed with immediate durability
//! (an fsync): redb's copy-on-write commit makes the whole batch atomic, which is more
//! than the trait asks (any prefix of the batch).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use raft_core::{Entry, HardState, Index, SnapshotMetadata};
use redb::{
    Builder, Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, Table,
    TableDefinition,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::memory::check_write;
use super::{LogStore, StorageError, StoreIdentity, StoreWrite, StoredState};

/// The name of the database file inside the data directory.
const FILE_NAME: &str = "raft.redb";
/// The name a new database file is made under before it is renamed to [`FILE_NAME`].
const NEW_FILE_NAME: &str = "raft.redb.new";

/// The log: entry index → postcard-encoded [`Entry`].
const ENTRIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("entries");

/// Named records: [`FORMAT_KEY`], [`IDENTITY_KEY`], [`HARD_STATE_KEY`],
/// [`SNAPSHOT_METADATA_KEY`] and [`SNAPSHOT_DATA_KEY`].
const METADATA: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("metadata");

/// The version of the layout, postcard-encoded as a `u32`: a later layout bumps it, so
/// that an older build refuses a file it would misread instead of corrupting it.
const FORMAT_KEY: &str = "format";
/// The layout described at the top of this module.
const FORMAT_VERSION: u32 = 1;
/// The postcard-encoded [`StoreIdentity`]; absent until a node first starts on the store.
const IDENTITY_KEY: &str = "identity";
/// The postcard-encoded [`HardState`]; absent until the first one is written.
const HARD_STATE_KEY: &str = "hard_state";
/// The postcard-encoded [`SnapshotMetadata`] of the stored snapshot, if any.
const SNAPSHOT_METADATA_KEY: &str = "snapshot_metadata";
/// The stored snapshot's data, as is; present exactly when the metadata is.
const SNAPSHOT_DATA_KEY: &str = "snapshot_data";

/// redb's page cache. Its default (1 GiB) is a ceiling meant for a database that is read
/// all the time; this one is read once at start and then mostly appended to, and a
/// process may run several nodes.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Durable storage in one redb file, `raft.redb` in the node's data directory.
///
/// Each [`LogStore::write_batch`] is one redb transaction committed with an fsync: the
/// group commit. The file is locked while the store is open, so a second store (in this
/// process or another) cannot open the same directory.
pub struct RedbLogStore {
    database: Database,
    /// The database file, named in every error.
    path: PathBuf,
}

impl fmt::Debug for RedbLogStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RedbLogStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RedbLogStore {
    /// Opens the store in `directory`, creating the directory and the database file
    /// `raft.redb` in it if they are missing.
    ///
    /// A new file is made under a temporary name and renamed into place once it carries
    /// this store's header (its format record), so that a `raft.redb` without that header
    /// is never one of ours half-made: it is refused, like an empty one, rather than taken
    /// for a new store. Taking it would start the node as if it had never run, and a node
    /// that forgets what it acknowledged can lose committed writes.
    ///
    /// Fails with [`StorageError::Unusable`] if the directory cannot be created or used,
    /// the file is empty, is not a redb database of this layout, fails redb's integrity
    /// check, or is held by another process or another open store.
    pub fn open(directory: &Path) -> Result<RedbLogStore, StorageError> {
        let directory_is_new = !directory.exists();
        fs::create_dir_all(directory).map_err(|error| {
            // The OS says "File exists" for a file in the way, which misleads.
            let reason = if directory.exists() && !directory.is_dir() {
                "not a directory".to_owned()
            } else {
                one_line(format_args!("cannot create the directory: {error}"))
            };
            StorageError::Unusable {
                path: directory.to_path_buf(),
                reason,
            }
        })?;
        let path = directory.join(FILE_NAME);
        match fs::metadata(&path) {
            Ok(metadata) if metadata.len() == 0 => {
                return Err(StorageError::Unusable {
                    path,
                    reason: "the file is empty: this node's data was lost or truncated; \
                             refusing to start it as a node that never ran (see the \
                             recovery of a node that lost its data)"
                        .to_owned(),
                });
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                create_file(directory, &path)?;
            }
            Err(error) => {
                return Err(StorageError::Unusable {
                    path,
                    reason: one_line(format_args!("cannot read the file's metadata: {error}")),
                });
            }
        }
        let database = open_database(&path, false)?;
        let store = RedbLogStore { database, path };
        store.check_format()?;
        // redb syncs the file, not the directory entries naming it: without this, a crash
        // soon after the first start could lose the whole file, votes included.
        sync_directory(directory)?;
        if directory_is_new && let Some(parent) = directory.parent() {
            sync_directory(parent)?;
        }
        Ok(store)
    }

    /// Checks the format record of the file: present, and the version this build reads.
    fn check_format(&self) -> Result<(), StorageError> {
        let unusable = |reason: String| StorageError::Unusable {
            path: self.path.clone(),
            reason,
        };
        let transaction = self
            .database
            .begin_read()
            .map_err(|error| unusable(one_line(error)))?;
        let missing_header = || {
            unusable(
                "the file lacks this store's header (its format record): it is not a raft \
                 store, or its data was lost; refusing to start it as a node that never ran"
                    .to_owned(),
            )
        };
        let metadata = match transaction.open_table(METADATA) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Err(missing_header()),
            Err(error) => return Err(unusable(one_line(error))),
        };
        let stored = metadata
            .get(FORMAT_KEY)
            .map_err(|error| unusable(one_line(error)))?
            .map(|version| postcard::from_bytes::<u32>(version.value()));
        match stored {
            None => Err(missing_header()),
            Some(Ok(FORMAT_VERSION)) => Ok(()),
            Some(Ok(version)) => Err(unusable(format!(
                "storage format {version}, where this build reads {FORMAT_VERSION}"
            ))),
            Some(Err(error)) => Err(unusable(one_line(format_args!(
                "the format version does not decode: {error}"
            )))),
        }
    }

    /// Carries out one write inside the batch's transaction. `snapshot_index` is the
    /// stored snapshot's last index, kept up to date through the batch.
    fn apply(
        &self,
        entries: &mut Table<'_, u64, &'static [u8]>,
        metadata: &mut Table<'_, &'static str, &'static [u8]>,
        snapshot_index: &mut Option<Index>,
        store_write: &StoreWrite,
    ) -> Result<(), StorageError> {
        let last_entry = entries
            .last()
            .map_err(|error| self.failure("read the last entry", error))?
            .map(|(index, _)| Index(index.value()));
        check_write(store_write, last_entry, *snapshot_index, &self.path)?;

        let write = &store_write.write;
        if let Some(hard_state) = &write.hard_state {
            let encoded = encode(&self.path, hard_state)?;
            metadata
                .insert(HARD_STATE_KEY, encoded.as_slice())
                .map_err(|error| self.failure("store the hard state", error))?;
        }
        if let (Some(snapshot), Some(data)) = (&write.snapshot, &store_write.snapshot_data) {
            let encoded = encode(&self.path, snapshot.as_ref())?;
            metadata
                .insert(SNAPSHOT_METADATA_KEY, encoded.as_slice())
                .map_err(|error| self.failure("store the snapshot metadata", error))?;
            metadata
                .insert(SNAPSHOT_DATA_KEY, data.as_ref())
                .map_err(|error| self.failure("store the snapshot data", error))?;
            let last = snapshot.last_included.index;
            entries
                .retain_in(..=last.0, |_, _| false)
                .map_err(|error| self.failure("drop the entries the snapshot covers", error))?;
            *snapshot_index = Some(last);
        }
        if let Some(log) = &write.log {
            entries
                .retain_in(log.first_index.0.., |_, _| false)
                .map_err(|error| self.failure("drop the overwritten entries", error))?;
            for entry in &log.entries {
                let encoded = encode(&self.path, entry)?;
                entries
                    .insert(entry.index().0, encoded.as_slice())
                    .map_err(|error| self.failure("store an entry", error))?;
            }
        }
        Ok(())
    }

    /// A write transaction whose commit returns only once it is on disk (redb's default,
    /// said out loud).
    fn begin_durable_write(&self) -> Result<redb::WriteTransaction, StorageError> {
        let mut transaction = self
            .database
            .begin_write()
            .map_err(|error| self.failure("start a write transaction", error))?;
        transaction
            .set_durability(Durability::Immediate)
            .map_err(|error| self.failure("ask for a durable commit", error))?;
        Ok(transaction)
    }

    /// A redb failure while running: [`StorageError::Corrupt`] if redb found the file
    /// damaged, else [`StorageError::Failed`]. `action` says what was being done.
    fn failure(&self, action: &str, error: impl Into<redb::Error>) -> StorageError {
        let error = error.into();
        let reason = one_line(format_args!("cannot {action}: {error}"));
        match error {
            redb::Error::Corrupted(_) => StorageError::Corrupt {
                path: self.path.clone(),
                reason,
            },
            _ => StorageError::Failed {
                path: self.path.clone(),
                reason,
            },
        }
    }
}

impl LogStore for RedbLogStore {
    fn recover(&mut self) -> Result<StoredState, StorageError> {
        let path = &self.path;
        let transaction = self
            .database
            .begin_read()
            .map_err(|error| self.failure("start reading", error))?;
        let metadata = transaction
            .open_table(METADATA)
            .map_err(|error| self.failure("open the metadata", error))?;
        let read = |key: &str| {
            metadata
                .get(key)
                .map_err(|error| self.failure(&format!("read {key}"), error))
        };

        let identity = match read(IDENTITY_KEY)? {
            Some(encoded) => Some(decode::<StoreIdentity>(
                path,
                "the identity",
                encoded.value(),
            )?),
            None => None,
        };
        let hard_state = match read(HARD_STATE_KEY)? {
            Some(encoded) => decode::<HardState>(path, "the hard state", encoded.value())?,
            None => HardState::default(),
        };
        let snapshot = match (read(SNAPSHOT_METADATA_KEY)?, read(SNAPSHOT_DATA_KEY)?) {
            (Some(encoded), Some(data)) => {
                let snapshot: SnapshotMetadata =
                    decode(path, "the snapshot metadata", encoded.value())?;
                Some((snapshot, Bytes::copy_from_slice(data.value())))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(corrupt(
                    path,
                    "the snapshot metadata is stored without its data",
                ));
            }
            (None, Some(_)) => {
                return Err(corrupt(
                    path,
                    "snapshot data is stored without its metadata",
                ));
            }
        };
        let snapshot_index = snapshot
            .as_ref()
            .map_or(Index(0), |(metadata, _)| metadata.last_included.index);

        let table = transaction
            .open_table(ENTRIES)
            .map_err(|error| self.failure("open the entries", error))?;
        let stored = table
            .iter()
            .map_err(|error| self.failure("read the entries", error))?;
        let mut entries: Vec<Entry> = Vec::new();
        for item in stored {
            let (key, value) = item.map_err(|error| self.failure("read the entries", error))?;
            let index = Index(key.value());
            let entry: Entry = decode(path, &format!("the entry at {index}"), value.value())?;
            if entry.index() != index {
                return Err(corrupt(
                    path,
                    &format!(
                        "the entry stored at {index} says it is at {}",
                        entry.index()
                    ),
                ));
            }
            match entries.last() {
                None if index == Index(0) => {
                    return Err(corrupt(
                        path,
                        "an entry is stored at index 0, before the log",
                    ));
                }
                // Entries the snapshot covers may remain; entries after it must follow on.
                None if index > snapshot_index.next() => {
                    return Err(corrupt(
                        path,
                        &format!(
                            "the log starts at {index}, leaving a gap: it must start by {} \
                             (1, or one past the snapshot)",
                            snapshot_index.next()
                        ),
                    ));
                }
                Some(previous) if index != previous.index().next() => {
                    return Err(corrupt(
                        path,
                        &format!("the log jumps from {} to {index}", previous.index()),
                    ));
                }
                _ => {}
            }
            entries.push(entry);
        }
        Ok(StoredState {
            identity,
            hard_state,
            snapshot,
            entries,
        })
    }

    fn record_identity(&mut self, identity: StoreIdentity) -> Result<(), StorageError> {
        let encoded = encode(&self.path, &identity)?;
        let transaction = self.begin_durable_write()?;
        transaction
            .open_table(METADATA)
            .map_err(|error| self.failure("open the metadata", error))?
            .insert(IDENTITY_KEY, encoded.as_slice())
            .map_err(|error| self.failure("store the identity", error))?;
        transaction
            .commit()
            .map_err(|error| self.failure("commit", error))
    }

    fn write_batch(&mut self, writes: &[StoreWrite]) -> Result<(), StorageError> {
        if writes.is_empty() {
            return Ok(());
        }
        let transaction = self.begin_durable_write()?;
        {
            let mut entries = transaction
                .open_table(ENTRIES)
                .map_err(|error| self.failure("open the entries", error))?;
            let mut metadata = transaction
                .open_table(METADATA)
                .map_err(|error| self.failure("open the metadata", error))?;
            let mut snapshot_index = match metadata
                .get(SNAPSHOT_METADATA_KEY)
                .map_err(|error| self.failure("read the snapshot metadata", error))?
            {
                Some(encoded) => {
                    let stored: SnapshotMetadata =
                        decode(&self.path, "the snapshot metadata", encoded.value())?;
                    Some(stored.last_included.index)
                }
                None => None,
            };
            for store_write in writes {
                // On an error the transaction is dropped, which rolls the whole batch back.
                self.apply(
                    &mut entries,
                    &mut metadata,
                    &mut snapshot_index,
                    store_write,
                )?;
            }
        }
        transaction
            .commit()
            .map_err(|error| self.failure("commit", error))
    }
}

/// Makes a new store file at `path`: created, given its tables and format record, and
/// synced under a temporary name, then renamed into place, so that a crash at any point
/// leaves either no `raft.redb` or a complete one.
fn create_file(directory: &Path, path: &Path) -> Result<(), StorageError> {
    let unusable = |path: &Path, reason: String| StorageError::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let scratch = directory.join(NEW_FILE_NAME);
    // A file left by a creation a crash interrupted holds nothing: start it again.
    match fs::remove_file(&scratch) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(unusable(
                &scratch,
                one_line(format_args!(
                    "cannot remove an unfinished store file: {error}"
                )),
            ));
        }
    }
    {
        let database = open_database(&scratch, true)?;
        let failed = |error: redb::Error| unusable(&scratch, one_line(error));
        let mut transaction = database
            .begin_write()
            .map_err(|error| failed(error.into()))?;
        transaction
            .set_durability(Durability::Immediate)
            .map_err(|error| failed(error.into()))?;
        {
            // Opening the tables in a write transaction creates them, so that reads never
            // meet a missing table.
            transaction
                .open_table(ENTRIES)
                .map_err(|error| failed(error.into()))?;
            let mut metadata = transaction
                .open_table(METADATA)
                .map_err(|error| failed(error.into()))?;
            let encoded = encode(&scratch, &FORMAT_VERSION)?;
            metadata
                .insert(FORMAT_KEY, encoded.as_slice())
                .map_err(|error| failed(error.into()))?;
        }
        transaction.commit().map_err(|error| failed(error.into()))?;
    }
    fs::rename(&scratch, path).map_err(|error| {
        unusable(
            path,
            one_line(format_args!(
                "cannot move the new store file into place: {error}"
            )),
        )
    })?;
    sync_directory(directory)
}

/// Opens (or, with `create`, creates) the redb database at `path`.
fn open_database(path: &Path, create: bool) -> Result<Database, StorageError> {
    let mut builder = Builder::new();
    // The integrity check verifies every page's checksum at open: without it, redb
    // trusts a cleanly closed file and may panic on one damaged since. Start reads the
    // whole log anyway, so checking it costs little more.
    builder
        .set_cache_size(CACHE_BYTES)
        .set_check_integrity_on_open(true);
    let opened = if create {
        builder.create(path)
    } else {
        builder.open(path)
    };
    opened.map_err(|error| StorageError::Unusable {
        path: path.to_path_buf(),
        reason: open_failure(error),
    })
}

/// Why redb could not open the file, in one line.
fn open_failure(error: DatabaseError) -> String {
    match error {
        DatabaseError::DatabaseAlreadyOpen => {
            "already open, by another process or another store in this one".to_owned()
        }
        DatabaseError::LockProtocolMismatch => {
            "already open, by a process using another version of redb".to_owned()
        }
        DatabaseError::UpgradeRequired(version) => {
            format!("written in redb file format {version}, which this redb cannot read")
        }
        DatabaseError::Storage(redb::StorageError::Corrupted(message)) => {
            one_line(format_args!("not a redb database, or damaged: {message}"))
        }
        other => one_line(other),
    }
}

/// Makes the entries of `directory` durable. Only Unix can open a directory to sync it;
/// elsewhere this does nothing.
fn sync_directory(directory: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        // An empty parent is the current directory (`directory` was relative).
        let directory = if directory.as_os_str().is_empty() {
            Path::new(".")
        } else {
            directory
        };
        fs::File::open(directory)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| StorageError::Unusable {
                path: directory.to_path_buf(),
                reason: one_line(format_args!("cannot sync the directory: {error}")),
            })?;
    }
    #[cfg(not(unix))]
    let _ = directory;
    Ok(())
}

/// Encodes a value as postcard. Cannot fail for the types stored here, but an error is
/// reported rather than assumed away.
fn encode(path: &Path, value: &impl Serialize) -> Result<Vec<u8>, StorageError> {
    postcard::to_stdvec(value).map_err(|error| StorageError::Failed {
        path: path.to_path_buf(),
        reason: one_line(format_args!("cannot encode a record: {error}")),
    })
}

/// Decodes a postcard record; `what` names it in the error.
fn decode<T: DeserializeOwned>(path: &Path, what: &str, bytes: &[u8]) -> Result<T, StorageError> {
    postcard::from_bytes(bytes).map_err(|error| {
        corrupt(
            path,
            &one_line(format_args!("{what} does not decode: {error}")),
        )
    })
}

fn corrupt(path: &Path, reason: &str) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    }
}

/// Errors carry one-line reasons (they end up in single log lines); the messages of
/// redb and the OS are one line in practice, but nothing promises it.
fn one_line(message: impl fmt::Display) -> String {
    message.to_string().replace(['\n', '\r'], " ")
}
