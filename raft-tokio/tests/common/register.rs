//! The state machine the cluster test files share: a register of keys and values.

use std::collections::BTreeMap;

use bytes::Bytes;
use raft_core::Index;
use raft_tokio::StateMachine;

/// A map from keys to values. Commands are `key=value`, answered with the previous value;
/// queries are keys. `inline`: whether it asks to run on the driver's task.
#[derive(Default)]
pub(crate) struct Register {
    pub(crate) values: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(crate) inline: bool,
}

impl StateMachine for Register {
    fn apply(&mut self, _index: Index, command: &[u8]) -> Bytes {
        let Some(split) = command.iter().position(|byte| *byte == b'=') else {
            return Bytes::from_static(b"malformed");
        };
        let previous = self
            .values
            .insert(command[..split].to_vec(), command[split + 1..].to_vec());
        Bytes::from(previous.unwrap_or_default())
    }

    fn query(&self, query: &[u8]) -> Bytes {
        Bytes::from(self.values.get(query).cloned().unwrap_or_default())
    }

    fn snapshot(&self) -> Bytes {
        let mut out = Vec::new();
        for (key, value) in &self.values {
            for part in [key, value] {
                out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        Bytes::from(out)
    }

    fn restore(&mut self, snapshot: &[u8]) {
        self.values.clear();
        let mut rest = snapshot;
        let take = |rest: &mut &[u8]| -> Option<Vec<u8>> {
            let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let part = rest.get(4..4 + length)?.to_vec();
            *rest = &rest[4 + length..];
            Some(part)
        };
        while let (Some(key), Some(value)) = (take(&mut rest), take(&mut rest)) {
            self.values.insert(key, value);
        }
    }

    fn runs_without_blocking(&self) -> bool {
        self.inline
    }
}
