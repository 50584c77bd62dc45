//! The replicated state: keys and values, and the HTTP URL each leader advertised.
//!
//! Commands, queries, their answers and snapshots are postcard-encoded. Decoding never
//! panics: a command that does not decode is skipped (the same way on every replica, so
//! the replicas stay equal), and a query that does not decode gets an empty answer.

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_core::Index;
use raft_tokio::StateMachine;
use serde::{Deserialize, Serialize};

/// A change to the replicated state, as stored in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Command {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Bytes,
    },
    /// Removes `key` (nothing happens if it is missing).
    Delete {
        /// The key.
        key: String,
    },
    /// Node `node` serves clients at `url`. A node proposes this when it becomes leader,
    /// so that followers can redirect writes to the leader's HTTP URL (the raft address
    /// book only knows where nodes listen for peers).
    Advertise {
        /// The node.
        node: u64,
        /// Its HTTP URL, `http://host:port`.
        url: String,
    },
}

/// A read-only question for the state machine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Query {
    /// The value of `key`; answered with an encoded `Option<Bytes>`.
    Get {
        /// The key.
        key: String,
    },
    /// The HTTP URL `node` advertised; answered with an encoded `Option<String>`.
    AdvertisedUrl {
        /// The node.
        node: u64,
    },
}

impl Command {
    /// The command as log bytes.
    pub(crate) fn encode(&self) -> Bytes {
        encode(self)
    }
}

impl Query {
    /// The query as bytes for [`StateMachine::query`].
    pub(crate) fn encode(&self) -> Bytes {
        encode(self)
    }
}

/// Decodes the answer to [`Query::Get`]: `None` when the key is missing, `Err` when the
/// answer does not decode (a bug, reported as a server error rather than a panic).
pub(crate) fn decode_value(answer: &[u8]) -> Result<Option<Bytes>, postcard::Error> {
    postcard::from_bytes(answer)
}

/// Decodes the answer to [`Query::AdvertisedUrl`].
pub(crate) fn decode_url(answer: &[u8]) -> Result<Option<String>, postcard::Error> {
    postcard::from_bytes(answer)
}

fn encode<T: Serialize>(value: &T) -> Bytes {
    // Encoding into a growable vector fails only for types serde cannot describe, which
    // none of these are.
    Bytes::from(postcard::to_stdvec(value).expect("postcard encodes plain enums and maps"))
}

/// The whole state; also the snapshot's layout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyValueStore {
    values: BTreeMap<String, Bytes>,
    advertised_urls: BTreeMap<u64, String>,
}

impl StateMachine for KeyValueStore {
    fn apply(&mut self, index: Index, command: &[u8]) -> Bytes {
        match postcard::from_bytes::<Command>(command) {
            Ok(Command::Put { key, value }) => {
                self.values.insert(key, value);
            }
            Ok(Command::Delete { key }) => {
                self.values.remove(&key);
            }
            Ok(Command::Advertise { node, url }) => {
                self.advertised_urls.insert(node, url);
            }
            Err(error) => {
                tracing::error!(%index, %error, "a command does not decode; skipped");
            }
        }
        Bytes::new()
    }

    fn query(&self, query: &[u8]) -> Bytes {
        match postcard::from_bytes::<Query>(query) {
            Ok(Query::Get { key }) => encode(&self.values.get(&key)),
            Ok(Query::AdvertisedUrl { node }) => encode(&self.advertised_urls.get(&node)),
            Err(error) => {
                tracing::error!(%error, "a query does not decode");
                Bytes::new()
            }
        }
    }

    fn snapshot(&self) -> Bytes {
        encode(self)
    }

    fn restore(&mut self, snapshot: &[u8]) {
        *self = postcard::from_bytes(snapshot).unwrap_or_else(|error| {
            // Snapshots are built by this type on some replica: one that does not decode
            // is a bug, and an empty state is the visible way to fail without a panic.
            tracing::error!(%error, "a snapshot does not decode; starting from an empty state");
            KeyValueStore::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(store: &mut KeyValueStore, command: Command) {
        store.apply(Index(1), &command.encode());
    }

    fn get(store: &KeyValueStore, key: &str) -> Option<Bytes> {
        let answer = store.query(&Query::Get { key: key.into() }.encode());
        decode_value(&answer).expect("answers decode")
    }

    // Puts, deletes and advertisements change what queries answer.
    #[test]
    fn commands_change_the_answers() {
        let mut store = KeyValueStore::default();
        apply(
            &mut store,
            Command::Put {
                key: "a".into(),
                value: Bytes::from_static(b"1"),
            },
        );
        assert_eq!(get(&store, "a"), Some(Bytes::from_static(b"1")));
        assert_eq!(get(&store, "b"), None);
        apply(&mut store, Command::Delete { key: "a".into() });
        assert_eq!(get(&store, "a"), None);
        apply(
            &mut store,
            Command::Advertise {
                node: 2,
                url: "http://127.0.0.1:9".into(),
            },
        );
        let answer = store.query(&Query::AdvertisedUrl { node: 2 }.encode());
        assert_eq!(
            decode_url(&answer).expect("answers decode"),
            Some("http://127.0.0.1:9".to_string())
        );
    }

    // A snapshot restores the same state; garbage commands, queries and snapshots are
    // survived without a panic.
    #[test]
    fn snapshots_round_trip_and_garbage_is_survived() {
        let mut store = KeyValueStore::default();
        apply(
            &mut store,
            Command::Put {
                key: "k".into(),
                value: Bytes::from_static(b"v"),
            },
        );
        let mut restored = KeyValueStore::default();
        restored.restore(&store.snapshot());
        assert_eq!(restored, store);

        store.apply(Index(2), b"\xff\xff\xff");
        assert_eq!(get(&store, "k"), Some(Bytes::from_static(b"v")));
        assert!(store.query(b"\xff\xff").is_empty());
        restored.restore(b"\xff");
        assert_eq!(restored, KeyValueStore::default());
    }
}
