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

use crate::sessions::{Admission, Sessions};

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
    /// Appends `value` to the value of `key` (to nothing if it is missing). Unlike a put,
    /// applying it twice shows: the operation that exactly-once writes are about.
    Append {
        /// The key.
        key: String,
        /// What to append.
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
    /// Opens a client session, whose id is the index of this entry (see
    /// [`sessions`](crate::sessions)).
    OpenSession {
        /// The proposing leader's wall-clock time, in milliseconds since the Unix epoch:
        /// the log's clock, which expires idle sessions.
        time_ms: u64,
    },
    /// A write in a client session: applied once, whatever the retries.
    InSession {
        /// The session, from [`Command::OpenSession`].
        client: u64,
        /// The write's number in the session, from 1, one more for each new write.
        sequence: u64,
        /// As in [`Command::OpenSession`].
        time_ms: u64,
        /// The write: a put, an append or a delete.
        command: Box<Command>,
    },
}

/// What applying a command in a session answers (encoded as the entry's response).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum SessionReply {
    /// The session opened: its client id.
    Opened {
        /// The new session's id.
        client: u64,
    },
    /// The write applied now, or was applied by an earlier attempt (its retry applies
    /// nothing).
    Done,
    /// The write is older than the session's last one, whose answer was given already.
    Stale {
        /// The last sequence number applied in the session.
        last_sequence: u64,
    },
    /// No such session (never opened, expired or evicted): not applied.
    UnknownSession,
    /// The command cannot go in a session (only puts, appends and deletes can).
    NotASessionWrite,
}

/// Decodes the response of a session command.
pub(crate) fn decode_session_reply(answer: &[u8]) -> Result<SessionReply, postcard::Error> {
    postcard::from_bytes(answer)
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

/// The keys and advertised URLs: the first part of a snapshot, in the layout snapshots
/// had before sessions, so that those still restore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Values {
    values: BTreeMap<String, Bytes>,
    advertised_urls: BTreeMap<u64, String>,
}

/// The whole state. A snapshot is [`Values`] followed by the session table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyValueStore {
    data: Values,
    sessions: Sessions,
}

impl KeyValueStore {
    /// Applies a put, delete or advertisement.
    fn apply_plain(&mut self, command: Command) {
        match command {
            Command::Put { key, value } => {
                self.data.values.insert(key, value);
            }
            Command::Append { key, value } => {
                let current = self.data.values.remove(&key).unwrap_or_default();
                let mut joined = Vec::with_capacity(current.len() + value.len());
                joined.extend_from_slice(&current);
                joined.extend_from_slice(&value);
                self.data.values.insert(key, Bytes::from(joined));
            }
            Command::Delete { key } => {
                self.data.values.remove(&key);
            }
            Command::Advertise { node, url } => {
                self.data.advertised_urls.insert(node, url);
            }
            Command::OpenSession { .. } | Command::InSession { .. } => {
                tracing::error!("a session command where a plain one belongs; skipped");
            }
        }
    }

    /// Applies a write numbered `sequence` in session `client`, at most once.
    fn apply_in_session(&mut self, client: u64, sequence: u64, command: Command) -> SessionReply {
        if !matches!(
            command,
            Command::Put { .. } | Command::Append { .. } | Command::Delete { .. }
        ) {
            return SessionReply::NotASessionWrite;
        }
        match self.sessions.admit(client, sequence) {
            Admission::Apply => {
                self.apply_plain(command);
                self.sessions.record(client, sequence, Bytes::new());
                SessionReply::Done
            }
            // Puts and deletes answer nothing, so the recorded response is empty.
            Admission::Duplicate(_) => SessionReply::Done,
            Admission::Stale { last_sequence } => SessionReply::Stale { last_sequence },
            Admission::Unknown => SessionReply::UnknownSession,
        }
    }
}

impl StateMachine for KeyValueStore {
    fn apply(&mut self, index: Index, command: &[u8]) -> Bytes {
        match postcard::from_bytes::<Command>(command) {
            Ok(Command::OpenSession { time_ms }) => {
                self.sessions.advance_clock(time_ms);
                self.sessions.open(index.0);
                encode(&SessionReply::Opened { client: index.0 })
            }
            Ok(Command::InSession {
                client,
                sequence,
                time_ms,
                command,
            }) => {
                self.sessions.advance_clock(time_ms);
                encode(&self.apply_in_session(client, sequence, *command))
            }
            Ok(command) => {
                self.apply_plain(command);
                Bytes::new()
            }
            Err(error) => {
                tracing::error!(%index, %error, "a command does not decode; skipped");
                Bytes::new()
            }
        }
    }

    fn query(&self, query: &[u8]) -> Bytes {
        match postcard::from_bytes::<Query>(query) {
            Ok(Query::Get { key }) => encode(&self.data.values.get(&key)),
            Ok(Query::AdvertisedUrl { node }) => encode(&self.data.advertised_urls.get(&node)),
            Err(error) => {
                tracing::error!(%error, "a query does not decode");
                Bytes::new()
            }
        }
    }

    fn snapshot(&self) -> Bytes {
        let mut bytes = postcard::to_stdvec(&self.data).expect("postcard encodes maps");
        bytes.extend(postcard::to_stdvec(&self.sessions).expect("postcard encodes maps"));
        Bytes::from(bytes)
    }

    fn restore(&mut self, snapshot: &[u8]) {
        let decoded = postcard::take_from_bytes::<Values>(snapshot).and_then(|(data, rest)| {
            // A snapshot from before sessions ends after the values.
            let sessions = if rest.is_empty() {
                Sessions::default()
            } else {
                postcard::from_bytes::<Sessions>(rest)?
            };
            Ok((data, sessions))
        });
        *self = match decoded {
            Ok((data, mut sessions)) => {
                sessions.rebuild_order();
                KeyValueStore { data, sessions }
            }
            Err(error) => {
                // Snapshots are built by this type on some replica: one that does not
                // decode is a bug, and an empty state is the visible way to fail without
                // a panic.
                tracing::error!(%error, "a snapshot does not decode; starting from an empty state");
                KeyValueStore::default()
            }
        };
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
        for _ in 0..2 {
            apply(
                &mut store,
                Command::Append {
                    key: "a".into(),
                    value: Bytes::from_static(b"x,"),
                },
            );
        }
        assert_eq!(get(&store, "a"), Some(Bytes::from_static(b"x,x,")));
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

    fn session_write(client: u64, sequence: u64, time_ms: u64, key: &str, value: &str) -> Command {
        Command::InSession {
            client,
            sequence,
            time_ms,
            command: Box::new(Command::Put {
                key: key.into(),
                value: Bytes::from(value.to_string()),
            }),
        }
    }

    fn apply_at(store: &mut KeyValueStore, index: u64, command: &Command) -> SessionReply {
        decode_session_reply(&store.apply(Index(index), &command.encode())).expect("decodes")
    }

    // A write in a session applies once: its retry (after a delete in between) changes
    // nothing, an older one is stale, a session never opened is refused; the table travels
    // in snapshots.
    #[test]
    fn session_writes_apply_once() {
        let mut store = KeyValueStore::default();
        let opened = apply_at(&mut store, 5, &Command::OpenSession { time_ms: 1 });
        assert_eq!(opened, SessionReply::Opened { client: 5 });
        let first = session_write(5, 1, 2, "k", "a");
        assert_eq!(apply_at(&mut store, 6, &first), SessionReply::Done);
        apply(&mut store, Command::Delete { key: "k".into() });
        assert_eq!(apply_at(&mut store, 8, &first), SessionReply::Done);
        assert_eq!(get(&store, "k"), None, "a retried write applied twice");
        let second = session_write(5, 2, 3, "k", "b");
        assert_eq!(apply_at(&mut store, 9, &second), SessionReply::Done);
        assert_eq!(get(&store, "k"), Some(Bytes::from_static(b"b")));
        assert_eq!(
            apply_at(&mut store, 10, &first),
            SessionReply::Stale { last_sequence: 2 }
        );
        assert_eq!(
            apply_at(&mut store, 11, &session_write(99, 1, 3, "k", "c")),
            SessionReply::UnknownSession
        );
        let mut restored = KeyValueStore::default();
        restored.restore(&store.snapshot());
        assert_eq!(restored, store);
        assert_eq!(apply_at(&mut restored, 12, &second), SessionReply::Done);
        assert_eq!(get(&restored, "k"), Some(Bytes::from_static(b"b")));
    }

    // A snapshot from before sessions (the values alone) still restores.
    #[test]
    fn snapshots_without_sessions_restore() {
        let old = Values {
            values: BTreeMap::from([("k".to_string(), Bytes::from_static(b"v"))]),
            advertised_urls: BTreeMap::new(),
        };
        let mut store = KeyValueStore::default();
        store.restore(&postcard::to_stdvec(&old).expect("encodes"));
        assert_eq!(get(&store, "k"), Some(Bytes::from_static(b"v")));
    }
}
