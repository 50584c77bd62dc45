//! The storage contract, run against both stores, and the failure modes of the redb store.

use std::fs;
use std::path::Path;

use bytes::Bytes;
use raft_core::{
    Entry, HardState, Index, LogId, LogWrite, Membership, NodeId, Payload, SnapshotMetadata, Term,
    Write, WriteId,
};
use raft_tokio::storage::{
    LogStore, MemoryLogStore, RedbLogStore, StorageError, StoreIdentity, StoreWrite, StoredState,
};

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        id: LogId::new(term, index),
        payload: Payload::Command(Bytes::from(format!("command {term}.{index}"))),
    }
}

fn entries(term: u64, indexes: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    indexes.map(|index| entry(term, index)).collect()
}

fn hard_state(term: u64, vote: Option<u64>) -> HardState {
    HardState {
        term: Term(term),
        vote: vote.map(NodeId),
    }
}

fn snapshot_metadata(term: u64, index: u64) -> SnapshotMetadata {
    SnapshotMetadata {
        last_included: LogId::new(term, index),
        membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
    }
}

/// A write of any of the three parts; the snapshot data is derived from its metadata.
fn write(
    id: u64,
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotMetadata>,
    log: Option<(u64, Vec<Entry>)>,
) -> StoreWrite {
    let snapshot_data = snapshot
        .as_ref()
        .map(|metadata| Bytes::from(format!("state through {}", metadata.last_included)));
    StoreWrite {
        write: Write {
            id: WriteId(id),
            hard_state,
            snapshot: snapshot.map(Box::new),
            log: log.map(|(first_index, entries)| LogWrite {
                first_index: Index(first_index),
                entries,
            }),
        },
        snapshot_data,
    }
}

fn log_write(id: u64, first_index: u64, entries: Vec<Entry>) -> StoreWrite {
    write(id, None, None, Some((first_index, entries)))
}

fn snapshot_state(term: u64, index: u64) -> Option<(SnapshotMetadata, Bytes)> {
    let metadata = snapshot_metadata(term, index);
    let data = Bytes::from(format!("state through {}", metadata.last_included));
    Some((metadata, data))
}

/// The contract every store must keep. `reopen` stands for a restart: it returns the store
/// to recover from next (the same one, or a new one on the same data).
fn check_contract<S: LogStore>(mut store: S, mut reopen: impl FnMut(S) -> S) {
    assert_eq!(store.recover().unwrap(), StoredState::default());

    // A term and vote with entries, an append, then a new leader's conflicting overwrite
    // from index 4, with a new term, all in one batch.
    store
        .write_batch(&[
            write(
                1,
                Some(hard_state(1, Some(1))),
                None,
                Some((1, entries(1, 1..=5))),
            ),
            log_write(2, 6, entries(1, 6..=8)),
            write(
                3,
                Some(hard_state(2, Some(2))),
                None,
                Some((4, entries(2, 4..=6))),
            ),
        ])
        .unwrap();
    let mut expected = StoredState {
        identity: None,
        hard_state: hard_state(2, Some(2)),
        snapshot: None,
        entries: [entries(1, 1..=3), entries(2, 4..=6)].concat(),
    };
    assert_eq!(store.recover().unwrap(), expected);
    store = reopen(store);
    assert_eq!(store.recover().unwrap(), expected);

    // A snapshot drops the entries it covers and keeps the later ones; entries then
    // follow on. A hard state with no vote replaces one with a vote.
    store
        .write_batch(&[
            write(4, None, Some(snapshot_metadata(2, 5)), None),
            log_write(5, 7, entries(2, 7..=9)),
            write(6, Some(hard_state(3, None)), None, None),
        ])
        .unwrap();
    expected = StoredState {
        identity: None,
        hard_state: hard_state(3, None),
        snapshot: snapshot_state(2, 5),
        entries: entries(2, 6..=9),
    };
    assert_eq!(store.recover().unwrap(), expected);
    store = reopen(store);
    assert_eq!(store.recover().unwrap(), expected);

    // A snapshot past every entry (as a follower installs one from its leader) replaces
    // the stored one and leaves no entries; the log restarts right after it, in the same
    // write. A truncation with no entries shortens the log.
    store
        .write_batch(&[
            write(
                7,
                Some(hard_state(4, Some(3))),
                Some(snapshot_metadata(4, 20)),
                Some((21, entries(4, 21..=23))),
            ),
            log_write(8, 23, Vec::new()),
        ])
        .unwrap();
    expected = StoredState {
        identity: None,
        hard_state: hard_state(4, Some(3)),
        snapshot: snapshot_state(4, 20),
        entries: entries(4, 21..=22),
    };
    assert_eq!(store.recover().unwrap(), expected);
    store = reopen(store);
    assert_eq!(store.recover().unwrap(), expected);

    // An empty batch changes nothing.
    store.write_batch(&[]).unwrap();
    assert_eq!(store.recover().unwrap(), expected);

    // The identity is recorded beside the data and survives a restart, and writes after it
    // leave it alone.
    let identity = StoreIdentity {
        cluster_id: 7,
        node_id: NodeId(3),
        joined: true,
    };
    store.record_identity(identity).unwrap();
    store
        .write_batch(&[log_write(9, 23, entries(4, 23..=23))])
        .unwrap();
    expected.identity = Some(identity);
    expected.entries.push(entry(4, 23));
    assert_eq!(store.recover().unwrap(), expected);
    store = reopen(store);
    assert_eq!(store.recover().unwrap(), expected);
}

/// Writes that would store a broken log are refused, and a refused batch does not leave
/// a half-applied write behind.
fn check_refusals<S: LogStore>(mut store: S) {
    store
        .write_batch(&[write(
            1,
            Some(hard_state(1, None)),
            None,
            Some((1, entries(1, 1..=3))),
        )])
        .unwrap();
    let before = store.recover().unwrap();
    let refused = [
        // A gap after the last entry.
        log_write(2, 5, entries(1, 5..=5)),
        // Entries that do not start at the first index.
        log_write(2, 4, entries(1, 5..=5)),
        // Entries that are not contiguous.
        log_write(2, 4, vec![entry(1, 4), entry(1, 6)]),
        // Index 0 is before the log.
        log_write(2, 0, Vec::new()),
        // A snapshot without its data.
        StoreWrite {
            snapshot_data: None,
            ..write(2, None, Some(snapshot_metadata(1, 2)), None)
        },
        // The write is checked whole: its hard state is not stored either.
        write(
            2,
            Some(hard_state(9, None)),
            None,
            Some((7, entries(1, 7..=7))),
        ),
    ];
    for refused_write in refused {
        let error = store
            .write_batch(std::slice::from_ref(&refused_write))
            .unwrap_err();
        assert!(
            matches!(error, StorageError::Failed { .. }),
            "{refused_write:?} gave {error}"
        );
        assert_eq!(store.recover().unwrap(), before, "after {refused_write:?}");
    }
}

#[test]
fn the_memory_store_keeps_the_contract() {
    check_contract(MemoryLogStore::new(), |store| store);
}

#[test]
fn the_memory_store_survives_a_restart_through_a_clone() {
    check_contract(MemoryLogStore::new(), |store| {
        let clone = store.clone();
        drop(store);
        clone
    });
}

#[test]
fn the_memory_store_refuses_broken_writes() {
    check_refusals(MemoryLogStore::new());
}

#[test]
fn a_failing_memory_store_fails_writes_and_changes_nothing() {
    let mut store = MemoryLogStore::new();
    let observer = store.clone();
    observer.set_failing(true);
    let error = store
        .write_batch(&[log_write(1, 1, entries(1, 1..=1))])
        .unwrap_err();
    assert!(matches!(error, StorageError::Failed { .. }), "{error}");
    assert_eq!(observer.state(), StoredState::default());
    observer.set_failing(false);
    store
        .write_batch(&[log_write(1, 1, entries(1, 1..=1))])
        .unwrap();
    assert_eq!(observer.state().entries, entries(1, 1..=1));
}

#[test]
fn the_redb_store_keeps_the_contract() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("node");
    check_contract(RedbLogStore::open(&path).unwrap(), |store| store);
}

#[test]
fn the_redb_store_survives_a_reopen() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("node");
    check_contract(RedbLogStore::open(&path).unwrap(), |store| {
        drop(store);
        RedbLogStore::open(&path).unwrap()
    });
}

#[test]
fn the_redb_store_refuses_broken_writes() {
    let directory = tempfile::tempdir().unwrap();
    check_refusals(RedbLogStore::open(directory.path()).unwrap());
}

#[test]
fn the_redb_store_rolls_back_a_batch_with_a_refused_write() {
    let directory = tempfile::tempdir().unwrap();
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    store
        .write_batch(&[
            log_write(1, 1, entries(1, 1..=2)),
            log_write(2, 5, entries(1, 5..=5)),
        ])
        .unwrap_err();
    assert_eq!(store.recover().unwrap(), StoredState::default());
}

#[test]
fn a_large_snapshot_is_stored() {
    let directory = tempfile::tempdir().unwrap();
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    let data: Bytes = (0..8 * 1024 * 1024_u32)
        .map(|index| (index % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut snapshot = write(1, None, Some(snapshot_metadata(1, 100)), None);
    snapshot.snapshot_data = Some(data.clone());
    store.write_batch(&[snapshot]).unwrap();
    drop(store);
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    let (metadata, stored) = store.recover().unwrap().snapshot.unwrap();
    assert_eq!(metadata, snapshot_metadata(1, 100));
    assert_eq!(stored, data);
}

#[test]
fn a_thousand_single_entry_writes_commit_as_one_batch() {
    let directory = tempfile::tempdir().unwrap();
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    let writes: Vec<StoreWrite> = (1..=1000)
        .map(|index| log_write(index, index, vec![entry(1, index)]))
        .collect();
    // One transaction, one fsync: this takes milliseconds, where a thousand commits
    // would take seconds on a real disk. Not timed here, to keep the test stable.
    store.write_batch(&writes).unwrap();
    drop(store);
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    assert_eq!(store.recover().unwrap().entries, entries(1, 1..=1000));
}

fn assert_unusable(result: Result<RedbLogStore, StorageError>, path: &Path) {
    match result {
        Err(error @ StorageError::Unusable { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains(&path.display().to_string()),
                "{message} does not name {}",
                path.display()
            );
            assert!(!message.contains('\n'), "{message} is not one line");
        }
        other => panic!("expected Unusable, got {other:?}"),
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let first = RedbLogStore::open(directory.path()).unwrap();
    assert_unusable(RedbLogStore::open(directory.path()), directory.path());
    drop(first);
    RedbLogStore::open(directory.path()).unwrap();
}

#[test]
fn a_directory_without_permissions_is_unusable() {
    use std::os::unix::fs::PermissionsExt;

    let directory = tempfile::tempdir().unwrap();
    let locked = directory.path().join("locked");
    fs::create_dir(&locked).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    // Root ignores permissions: if a file can be created anyway, there is nothing to test.
    let probe = locked.join("probe");
    if fs::write(&probe, b"").is_ok() {
        fs::remove_file(&probe).unwrap();
    } else {
        assert_unusable(RedbLogStore::open(&locked), &locked);
    }
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_file_in_place_of_the_directory_is_unusable() {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("file");
    fs::write(&file, b"not a directory").unwrap();
    assert_unusable(RedbLogStore::open(&file), &file);
}

#[test]
fn a_directory_in_place_of_the_database_is_unusable() {
    let directory = tempfile::tempdir().unwrap();
    fs::create_dir(directory.path().join("raft.redb")).unwrap();
    assert_unusable(RedbLogStore::open(directory.path()), directory.path());
}

// An existing database file that is empty (truncated, or a copy that went wrong) is
// refused in one line naming it, rather than taken for a new store: a node that starts
// blank under an old identity can lose writes it acknowledged. Nothing is written to it.
#[test]
fn an_empty_database_file_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("raft.redb");
    fs::write(&path, b"").unwrap();
    assert_unusable(RedbLogStore::open(directory.path()), &path);
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);

    // The same for a store that was used, then truncated.
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("raft.redb");
    {
        let mut store = RedbLogStore::open(directory.path()).unwrap();
        store
            .write_batch(&[log_write(1, 1, entries(1, 1..=3))])
            .unwrap();
    }
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let error = RedbLogStore::open(directory.path()).unwrap_err();
    assert!(error.to_string().contains("empty"), "{error}");
}

// A redb database that lacks this store's header (its format record) is refused: it is not
// one of ours, or lost its contents, and a store is only ever made complete before it
// takes its name.
#[test]
fn a_database_without_the_store_header_is_refused() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("raft.redb");
    drop(redb::Database::create(&path).unwrap());
    assert_unusable(RedbLogStore::open(directory.path()), &path);
    let error = RedbLogStore::open(directory.path()).unwrap_err();
    assert!(error.to_string().contains("header"), "{error}");
}

// A new store is made under a temporary name: a leftover of a creation that a crash
// interrupted is discarded and the store is made again.
#[test]
fn an_interrupted_creation_is_made_again() {
    let directory = tempfile::tempdir().unwrap();
    fs::write(directory.path().join("raft.redb.new"), noise(4096, 9)).unwrap();
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    assert_eq!(store.recover().unwrap(), StoredState::default());
    assert!(!directory.path().join("raft.redb.new").exists());
}

/// Deterministic noise (xorshift), so a failure reproduces.
fn noise(length: usize, mut seed: u64) -> Vec<u8> {
    (0..length)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn a_garbage_database_file_is_refused_without_panicking() {
    for (length, seed) in [
        (1, 1),
        (100, 2),
        (4096, 3),
        (64 * 1024, 4),
        (1024 * 1024, 5),
    ] {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("raft.redb");
        fs::write(&path, noise(length, seed)).unwrap();
        match RedbLogStore::open(directory.path()) {
            Err(
                StorageError::Unusable { path: named, .. }
                | StorageError::Corrupt { path: named, .. },
            ) => {
                assert_eq!(named, path);
            }
            other => panic!("{length} bytes of garbage gave {other:?}"),
        }
    }
}

#[test]
fn a_damaged_database_file_does_not_panic() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("raft.redb");
    {
        let mut store = RedbLogStore::open(directory.path()).unwrap();
        let writes: Vec<StoreWrite> = (1..=200)
            .map(|index| log_write(index, index, vec![entry(1, index)]))
            .collect();
        store.write_batch(&writes).unwrap();
    }
    let original = fs::read(&path).unwrap();
    // Damage one stretch of the file at a time, at offsets spread over it: any outcome
    // but a panic is acceptable (a stretch of free pages may go unnoticed).
    for step in 0..32_u64 {
        let mut damaged = original.clone();
        let start = (original.len() as u64 * step / 32) as usize;
        let end = (start + 512).min(damaged.len());
        damaged[start..end].copy_from_slice(&noise(end - start, step + 1));
        fs::write(&path, &damaged).unwrap();
        if let Ok(mut store) = RedbLogStore::open(directory.path()) {
            let _ = store.recover();
        }
    }
}

/// Changes the entries table behind the store's back, to build what no write produces.
fn tamper_with_entries(directory: &Path, change: impl FnOnce(&mut redb::Table<'_, u64, &[u8]>)) {
    // The layout of `RedbLogStore`: if the table is renamed, this opens an empty one and
    // the tests below fail, rather than pass without testing anything.
    const ENTRIES: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("entries");
    let database = redb::Database::create(directory.join("raft.redb")).unwrap();
    let transaction = database.begin_write().unwrap();
    {
        let mut table = transaction.open_table(ENTRIES).unwrap();
        assert!(redb::ReadableTableMetadata::len(&table).unwrap() > 0);
        change(&mut table);
    }
    transaction.commit().unwrap();
}

fn store_with_entries(directory: &Path, snapshot: Option<SnapshotMetadata>) {
    let mut store = RedbLogStore::open(directory).unwrap();
    let first = snapshot
        .as_ref()
        .map_or(1, |metadata| metadata.last_included.index.0 + 1);
    store
        .write_batch(&[write(
            1,
            None,
            snapshot,
            Some((first, entries(1, first..=first + 4))),
        )])
        .unwrap();
}

fn assert_corrupt(directory: &Path) {
    let mut store = RedbLogStore::open(directory).unwrap();
    match store.recover() {
        Err(error @ StorageError::Corrupt { .. }) => {
            assert!(error.to_string().contains("raft.redb"), "{error}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_gap_in_the_stored_log_is_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    store_with_entries(directory.path(), None);
    tamper_with_entries(directory.path(), |table| {
        table.remove(3).unwrap();
    });
    assert_corrupt(directory.path());
}

#[test]
fn a_log_not_starting_at_one_without_a_snapshot_is_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    store_with_entries(directory.path(), None);
    tamper_with_entries(directory.path(), |table| {
        table.remove(1).unwrap();
    });
    assert_corrupt(directory.path());
}

#[test]
fn a_log_starting_after_a_gap_behind_the_snapshot_is_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    store_with_entries(directory.path(), Some(snapshot_metadata(1, 10)));
    tamper_with_entries(directory.path(), |table| {
        table.remove(11).unwrap();
    });
    assert_corrupt(directory.path());
}

#[test]
fn entries_the_snapshot_covers_may_remain() {
    let directory = tempfile::tempdir().unwrap();
    store_with_entries(directory.path(), Some(snapshot_metadata(1, 10)));
    tamper_with_entries(directory.path(), |table| {
        for index in 8..=10 {
            let encoded = postcard::to_stdvec(&entry(1, index)).unwrap();
            table.insert(index, encoded.as_slice()).unwrap();
        }
    });
    let mut store = RedbLogStore::open(directory.path()).unwrap();
    assert_eq!(store.recover().unwrap().entries, entries(1, 8..=15));
}

#[test]
fn an_entry_that_does_not_decode_is_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    store_with_entries(directory.path(), None);
    tamper_with_entries(directory.path(), |table| {
        table.insert(2, [0xff_u8; 3].as_slice()).unwrap();
    });
    assert_corrupt(directory.path());
}

#[test]
fn an_entry_stored_under_another_index_is_corrupt() {
    let directory = tempfile::tempdir().unwrap();
    store_with_entries(directory.path(), None);
    tamper_with_entries(directory.path(), |table| {
        let encoded = postcard::to_stdvec(&entry(1, 7)).unwrap();
        table.insert(2, encoded.as_slice()).unwrap();
    });
    assert_corrupt(directory.path());
}
