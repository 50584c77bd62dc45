//! The built-in application: a replicated key-value store, its command encoding and its
//! workload; and the traits a user implements to simulate their own application.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

use crate::history::{Call, Return};

/// A replicated state machine under simulation. It receives each committed operation once
/// per incarnation of its node, in log order, and returns what the client sees.
///
/// The operation language is the key-value one of [`Call`] (get, put, compare-and-set,
/// delete, append), which covers registers, maps and append-only logs; implement it over
/// your own data structures to check them under faults.
pub trait StateMachine {
    /// Applies one committed operation and returns its result.
    fn apply(&mut self, call: &Call) -> Return;

    /// Answers a read ([`Call::Get`]) from the current state, without the log: the
    /// simulator calls it for linearizable reads once the replica has applied the read's
    /// index. It must not change the state; by default it is `apply`, which for a read
    /// changes nothing.
    fn read(&mut self, call: &Call) -> Return {
        self.apply(call)
    }

    /// The whole state as bytes: the data of a snapshot, which the simulator stores,
    /// sends to lagging followers and restores after crashes.
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with the one `snapshot` (made by [`StateMachine::snapshot`]
    /// on any replica) describes.
    fn restore(&mut self, snapshot: &[u8]);
}

/// Chooses what clients do.
pub trait Workload {
    /// The next operation for `client`. All randomness must come from `random`.
    fn next_call(&mut self, client: u64, random: &mut ChaCha8Rng) -> Call;
}

/// The built-in state machine: an ordered map from keys to values.
#[derive(Clone, Debug, Default)]
pub struct KeyValueStore {
    values: BTreeMap<String, String>,
}

impl StateMachine for KeyValueStore {
    fn apply(&mut self, call: &Call) -> Return {
        match call {
            Call::Get { key } => Return::Value(self.values.get(key).cloned()),
            Call::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                Return::Done
            }
            Call::CompareAndSet { key, expected, new } => {
                if self.values.get(key) == expected.as_ref() {
                    self.values.insert(key.clone(), new.clone());
                    Return::Swapped(true)
                } else {
                    Return::Swapped(false)
                }
            }
            Call::Delete { key } => {
                self.values.remove(key);
                Return::Done
            }
            Call::Append { key, value } => {
                self.values.entry(key.clone()).or_default().push_str(value);
                Return::Done
            }
        }
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&self.values).expect("a map of strings serializes"))
    }

    fn restore(&mut self, snapshot: &[u8]) {
        // Snapshots come only from `snapshot` on another replica, so they always parse;
        // an empty state would make the checkers report the corruption.
        self.values = serde_json::from_slice(snapshot).unwrap_or_default();
    }
}

/// The built-in workload: reads, writes, compare-and-sets and deletes over a few keys,
/// with every written value unique so that a checker can tell writes apart.
#[derive(Clone, Debug)]
pub struct KeyValueWorkload {
    keys: u64,
    written: u64,
    /// The last value each client wrote, per key: the expectation of its next
    /// compare-and-set, so that some of them succeed.
    last_written: BTreeMap<(u64, u64), String>,
}

impl KeyValueWorkload {
    /// A workload over `keys` keys (at least one).
    pub fn new(keys: u64) -> KeyValueWorkload {
        KeyValueWorkload {
            keys: keys.max(1),
            written: 0,
            last_written: BTreeMap::new(),
        }
    }
}

impl Workload for KeyValueWorkload {
    fn next_call(&mut self, client: u64, random: &mut ChaCha8Rng) -> Call {
        let key_number = random.next_u64() % self.keys;
        let key = format!("k{key_number}");
        let roll = random.next_u64() % 100;
        if roll < 40 {
            return Call::Get { key };
        }
        if roll >= 90 {
            return Call::Delete { key };
        }
        self.written += 1;
        let value = format!("{client}.{}", self.written);
        if roll < 70 {
            self.last_written
                .insert((client, key_number), value.clone());
            Call::Put { key, value }
        } else {
            let expected = self.last_written.get(&(client, key_number)).cloned();
            self.last_written
                .insert((client, key_number), value.clone());
            Call::CompareAndSet {
                key,
                expected,
                new: value,
            }
        }
    }
}

/// A command as it travels through the log: which client operation it is, and the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Command {
    pub(crate) client: u64,
    pub(crate) operation: u64,
    pub(crate) call: Call,
}

const TAG_GET: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_COMPARE_AND_SET: u8 = 3;
const TAG_DELETE: u8 = 4;
const TAG_APPEND: u8 = 5;

impl Command {
    /// A compact binary form: client, operation, a tag, then length-prefixed strings.
    pub(crate) fn encode(&self) -> Bytes {
        let mut buffer = BytesMut::with_capacity(32);
        buffer.put_u64_le(self.client);
        buffer.put_u64_le(self.operation);
        let put_string = |buffer: &mut BytesMut, text: &str| {
            buffer.put_u32_le(u32::try_from(text.len()).unwrap_or(u32::MAX));
            buffer.put_slice(text.as_bytes());
        };
        match &self.call {
            Call::Get { key } => {
                buffer.put_u8(TAG_GET);
                put_string(&mut buffer, key);
            }
            Call::Put { key, value } => {
                buffer.put_u8(TAG_PUT);
                put_string(&mut buffer, key);
                put_string(&mut buffer, value);
            }
            Call::CompareAndSet { key, expected, new } => {
                buffer.put_u8(TAG_COMPARE_AND_SET);
                put_string(&mut buffer, key);
                buffer.put_u8(u8::from(expected.is_some()));
                put_string(&mut buffer, expected.as_deref().unwrap_or(""));
                put_string(&mut buffer, new);
            }
            Call::Delete { key } => {
                buffer.put_u8(TAG_DELETE);
                put_string(&mut buffer, key);
            }
            Call::Append { key, value } => {
                buffer.put_u8(TAG_APPEND);
                put_string(&mut buffer, key);
                put_string(&mut buffer, value);
            }
        }
        buffer.freeze()
    }

    /// The inverse of [`Command::encode`]; `None` for bytes it did not produce.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Command> {
        let mut reader = Reader { bytes };
        let client = reader.u64()?;
        let operation = reader.u64()?;
        let call = match reader.u8()? {
            TAG_GET => Call::Get {
                key: reader.string()?,
            },
            TAG_PUT => Call::Put {
                key: reader.string()?,
                value: reader.string()?,
            },
            TAG_COMPARE_AND_SET => {
                let key = reader.string()?;
                let present = reader.u8()? == 1;
                let expected = reader.string()?;
                Call::CompareAndSet {
                    key,
                    expected: present.then_some(expected),
                    new: reader.string()?,
                }
            }
            TAG_DELETE => Call::Delete {
                key: reader.string()?,
            },
            TAG_APPEND => Call::Append {
                key: reader.string()?,
                value: reader.string()?,
            },
            _ => return None,
        };
        reader.bytes.is_empty().then_some(Command {
            client,
            operation,
            call,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, count: usize) -> Option<&[u8]> {
        if self.bytes.len() < count {
            return None;
        }
        let (taken, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        Some(taken)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|bytes| bytes[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Option<String> {
        let length = self
            .take(4)
            .and_then(|bytes| bytes.try_into().ok())
            .map(u32::from_le_bytes)?;
        let bytes = self.take(usize::try_from(length).ok()?)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;

    use super::*;

    // Every call survives encoding, and truncated or padded bytes are refused.
    #[test]
    fn commands_round_trip() {
        let calls = [
            Call::Get { key: "a".into() },
            Call::Put {
                key: "a".into(),
                value: "1".into(),
            },
            Call::CompareAndSet {
                key: "a".into(),
                expected: None,
                new: "2".into(),
            },
            Call::CompareAndSet {
                key: "a".into(),
                expected: Some(String::new()),
                new: "2".into(),
            },
            Call::Delete { key: "a".into() },
            Call::Append {
                key: "a".into(),
                value: "x".into(),
            },
        ];
        for call in calls {
            let command = Command {
                client: 7,
                operation: 9,
                call,
            };
            let bytes = command.encode();
            assert_eq!(Command::decode(&bytes), Some(command));
            assert_eq!(Command::decode(&bytes[..bytes.len() - 1]), None);
            let mut padded = bytes.to_vec();
            padded.push(0);
            assert_eq!(Command::decode(&padded), None);
        }
    }

    // The store implements each operation's meaning, compare-and-set included.
    #[test]
    fn store_semantics() {
        let mut store = KeyValueStore::default();
        let key = || "k".to_string();
        assert_eq!(store.apply(&Call::Get { key: key() }), Return::Value(None));
        let cas = |expected: Option<&str>, new: &str| Call::CompareAndSet {
            key: key(),
            expected: expected.map(str::to_string),
            new: new.to_string(),
        };
        assert_eq!(store.apply(&cas(None, "a")), Return::Swapped(true));
        assert_eq!(store.apply(&cas(None, "b")), Return::Swapped(false));
        assert_eq!(store.apply(&cas(Some("a"), "b")), Return::Swapped(true));
        store.apply(&Call::Append {
            key: key(),
            value: "c".into(),
        });
        assert_eq!(
            store.apply(&Call::Get { key: key() }),
            Return::Value(Some("bc".into()))
        );
        store.apply(&Call::Delete { key: key() });
        assert_eq!(store.apply(&Call::Get { key: key() }), Return::Value(None));
    }

    // The workload is a function of its seed and writes unique values.
    #[test]
    fn workload_is_seeded_and_values_unique() {
        let run = |seed| {
            let mut random = ChaCha8Rng::seed_from_u64(seed);
            let mut workload = KeyValueWorkload::new(3);
            (0..200)
                .map(|step| workload.next_call(step % 4, &mut random))
                .collect::<Vec<_>>()
        };
        let calls = run(1);
        assert_eq!(calls, run(1));
        assert_ne!(calls, run(2));
        let mut written: Vec<&String> = calls
            .iter()
            .filter_map(|call| match call {
                Call::Put { value, .. } => Some(value),
                Call::CompareAndSet { new, .. } => Some(new),
                _ => None,
            })
            .collect();
        let count = written.len();
        written.sort();
        written.dedup();
        assert_eq!(written.len(), count);
    }
}
