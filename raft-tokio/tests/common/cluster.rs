//! What the cluster test files share: a register state machine, its commands, and
//! waiting for a leader every node agrees on.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use raft_core::{Index, Role};
use raft_tokio::{RaftHandle, StateMachine};

use super::within;

/// The register's command setting `key` to `value`.
pub(crate) fn put(key: &str, value: &str) -> Bytes {
    Bytes::from(format!("{key}={value}"))
}

/// Waits until one of `handles` leads and every other agrees; returns its position.
pub(crate) async fn leader_of(handles: &[&RaftHandle]) -> usize {
    within("an agreed leader", async {
        loop {
            let roles: Vec<_> = handles
                .iter()
                .map(|handle| *handle.watch().borrow())
                .collect();
            if let Some(position) = roles.iter().position(|info| info.role == Role::Leader) {
                let leader = handles[position].id();
                if roles.iter().all(|info| info.leader == Some(leader)) {
                    return position;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}

/// Waits until one of `handles` leads and every other agrees; returns it.
pub(crate) async fn agreed_leader(handles: &[&RaftHandle]) -> RaftHandle {
    handles[leader_of(handles).await].clone()
}

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
