//! The application's state machine, and the apply thread that drives it.
//!
//! Commands in the replicated log are wrapped in a [`LogCommand`]: the application's own
//! bytes, or an entry of the replicated address book (so that every node learns where a
//! new member listens from the log itself, and a restarted node from its snapshot).

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;

use bytes::Bytes;
use raft_core::{Entry, Index, LogId, NodeId, Payload, SnapshotMetadata};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use crate::handle::ClientError;
use crate::transport::AddressBook;

/// The replicated application. Every node applies the same commands in the same order,
/// so `apply` must be deterministic: the same state and command give the same state and
/// response everywhere.
///
/// It runs on a thread of its own: a slow `apply` delays this node's applies and reads,
/// never its heartbeats or votes. A state machine that is never slow can run on the
/// node's driver task instead, saving a thread hop per apply and read
/// ([`runs_without_blocking`](StateMachine::runs_without_blocking)).
pub trait StateMachine: Send + 'static {
    /// Applies the committed command at `index` and returns the response for the client
    /// that proposed it (if it proposed it on this node).
    fn apply(&mut self, index: Index, command: &[u8]) -> Bytes;

    /// Answers a read-only query from the current state (for linearizable reads, once the
    /// state includes every write completed before the read began).
    fn query(&self, query: &[u8]) -> Bytes;

    /// The whole state as bytes: a snapshot, after which the log can be compacted.
    fn snapshot(&self) -> Bytes;

    /// Replaces the whole state with the one a snapshot (from any replica) describes.
    fn restore(&mut self, snapshot: &[u8]);

    /// Whether every method here is quick and never blocks (no I/O, no heavy work), so
    /// that the node may run them on its driver's task instead of a thread of their own:
    /// each applied proposal and each read is then answered without a thread hop.
    /// `false` by default. A state machine that may be slow must leave it so: on the
    /// driver's task, it would delay heartbeats and votes.
    fn runs_without_blocking(&self) -> bool {
        false
    }
}

/// A command as it is stored in the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum LogCommand {
    /// The application's command.
    Application(Bytes),
    /// Node `node` listens at `address`.
    Address {
        /// The node.
        node: NodeId,
        /// Its address, `host:port`.
        address: String,
    },
}

impl LogCommand {
    /// The most bytes postcard adds around a command's own: a variant tag, a length and
    /// a node id, each a varint of at most 10 bytes.
    const FRAMING_BYTES_MAX: usize = 30;

    pub(crate) fn encode(&self) -> Bytes {
        let own = match self {
            LogCommand::Application(command) => command.len(),
            LogCommand::Address { address, .. } => address.len(),
        };
        // Sized once up front: growing the vector as postcard writes would copy the
        // command again for every doubling.
        let buffer = Vec::with_capacity(own + Self::FRAMING_BYTES_MAX);
        Bytes::from(postcard::to_extend(self, buffer).expect("log commands always encode"))
    }
}

/// A [`LogCommand`] decoded in place, the application's bytes borrowed from the entry, so
/// that applying copies nothing. The same variants in the same order: the same encoding.
#[derive(Debug, Deserialize)]
enum LogCommandView<'entry> {
    Application(&'entry [u8]),
    Address { node: NodeId, address: String },
}

/// A snapshot's data: the address book and the application's snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SnapshotEnvelope {
    pub(crate) addresses: AddressBook,
    pub(crate) application: Bytes,
}

impl SnapshotEnvelope {
    pub(crate) fn decode(data: &[u8]) -> Option<SnapshotEnvelope> {
        postcard::from_bytes(data).ok()
    }
}

/// The answer owed to the proposer of an entry.
pub(crate) type ProposalReply = oneshot::Sender<Result<Bytes, ClientError>>;

/// Work for the apply thread.
pub(crate) enum ApplyJob {
    /// Apply these committed entries; answer the proposers listed (in index order, with
    /// the id their entry was appended as).
    Apply {
        entries: Vec<Entry>,
        waiters: Vec<(LogId, ProposalReply)>,
    },
    /// Replace the state with this snapshot.
    Restore {
        snapshot: SnapshotMetadata,
        data: Bytes,
    },
    /// Build a snapshot of the current state.
    Snapshot,
    /// Answer `query` once every entry through `after` is applied.
    Query {
        after: Index,
        query: Bytes,
        reply: ProposalReply,
    },
}

/// What the apply thread reports to the driver.
#[derive(Debug)]
pub(crate) enum ApplyDone {
    /// Every entry through this index is applied.
    Applied(Index),
    /// A snapshot of the state at `index`.
    Built { index: Index, data: Bytes },
}

/// Runs the state machine on its own thread until the job channel closes.
pub(crate) fn spawn_apply_thread<M: StateMachine>(
    name: String,
    mut applier: Applier<M>,
) -> std::io::Result<(std_mpsc::Sender<ApplyJob>, std::thread::JoinHandle<()>)> {
    let (jobs, receiver) = std_mpsc::channel();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        while let Ok(job) = receiver.recv() {
            applier.run(job);
        }
    })?;
    Ok((jobs, thread))
}

/// Carries out apply jobs on the state machine, wherever it runs: its own thread, or the
/// driver's task. Completions go to `done` either way.
pub(crate) struct Applier<M> {
    machine: M,
    applied: Index,
    addresses: AddressBook,
    address_watch: watch::Sender<AddressBook>,
    done: mpsc::UnboundedSender<ApplyDone>,
    /// Queries waiting for their index, by index.
    queries: BTreeMap<Index, Vec<(Bytes, ProposalReply)>>,
}

impl<M: StateMachine> Applier<M> {
    /// An applier for `machine`, which starts empty: the log and any snapshot are applied
    /// to it from index 0.
    pub(crate) fn new(
        machine: M,
        initial_addresses: AddressBook,
        address_watch: watch::Sender<AddressBook>,
        done: mpsc::UnboundedSender<ApplyDone>,
    ) -> Applier<M> {
        Applier {
            machine,
            applied: Index(0),
            addresses: initial_addresses,
            address_watch,
            done,
            queries: BTreeMap::new(),
        }
    }

    /// Carries out `job`.
    pub(crate) fn run(&mut self, job: ApplyJob) {
        match job {
            ApplyJob::Apply { entries, waiters } => self.apply(entries, waiters),
            ApplyJob::Restore { snapshot, data } => {
                let envelope = SnapshotEnvelope::decode(&data).unwrap_or_else(|| {
                    // Snapshots come from this crate on some replica; a broken one is a
                    // bug, and an empty state is the visible way to fail.
                    tracing::error!(snapshot = %snapshot, "snapshot data does not decode");
                    SnapshotEnvelope::default()
                });
                self.machine.restore(&envelope.application);
                for (node, address) in envelope.addresses {
                    self.addresses.insert(node, address);
                }
                self.address_watch.send_replace(self.addresses.clone());
                self.applied = snapshot.last_included.index;
                let _ = self.done.send(ApplyDone::Applied(self.applied));
                self.serve_queries();
            }
            ApplyJob::Snapshot => {
                let envelope = SnapshotEnvelope {
                    addresses: self.addresses.clone(),
                    application: self.machine.snapshot(),
                };
                let data = Bytes::from(
                    postcard::to_stdvec(&envelope).expect("snapshot envelopes always encode"),
                );
                let _ = self.done.send(ApplyDone::Built {
                    index: self.applied,
                    data,
                });
            }
            ApplyJob::Query {
                after,
                query,
                reply,
            } => {
                if after <= self.applied {
                    let _ = reply.send(Ok(self.machine.query(&query)));
                } else {
                    self.queries.entry(after).or_default().push((query, reply));
                }
            }
        }
    }

    fn apply(&mut self, entries: Vec<Entry>, waiters: Vec<(LogId, ProposalReply)>) {
        // Both are in index order: the waiters are matched to entries in one pass.
        let mut waiters = waiters.into_iter().peekable();
        let mut addresses_changed = false;
        for entry in &entries {
            let response = match &entry.payload {
                Payload::Command(bytes) => {
                    match postcard::from_bytes::<LogCommandView<'_>>(bytes) {
                        Ok(LogCommandView::Application(command)) => {
                            Some(self.machine.apply(entry.index(), command))
                        }
                        Ok(LogCommandView::Address { node, address }) => {
                            self.addresses.insert(node, address);
                            addresses_changed = true;
                            Some(Bytes::new())
                        }
                        Err(error) => {
                            tracing::error!(entry = %entry.id, %error, "a log command does not decode; skipped");
                            None
                        }
                    }
                }
                Payload::Membership(_) => Some(Bytes::new()),
                Payload::Blank => None,
            };
            self.applied = entry.index();
            if let Some((id, reply)) = waiters.next_if(|(id, _)| id.index == entry.index()) {
                let outcome = match response {
                    Some(response) if id == entry.id => Ok(response),
                    _ => Err(ClientError::Superseded),
                };
                let _ = reply.send(outcome);
            }
        }
        if addresses_changed {
            self.address_watch.send_replace(self.addresses.clone());
        }
        let _ = self.done.send(ApplyDone::Applied(self.applied));
        self.serve_queries();
    }

    fn serve_queries(&mut self) {
        while let Some(entry) = self.queries.first_entry() {
            if *entry.key() > self.applied {
                break;
            }
            for (query, reply) in entry.remove() {
                let _ = reply.send(Ok(self.machine.query(&query)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // What the driver encodes, the applier decodes in place, for both kinds of command.
    #[test]
    fn log_commands_decode_in_place() {
        let command = LogCommand::Application(Bytes::from_static(b"set x=1"));
        let encoded = command.encode();
        match postcard::from_bytes::<LogCommandView<'_>>(&encoded) {
            Ok(LogCommandView::Application(bytes)) => assert_eq!(bytes, b"set x=1"),
            other => panic!("{other:?}"),
        }
        let address = LogCommand::Address {
            node: NodeId(u64::MAX),
            address: "127.0.0.1:7000".to_owned(),
        };
        let encoded = address.encode();
        match postcard::from_bytes::<LogCommandView<'_>>(&encoded) {
            Ok(LogCommandView::Address { node, address }) => {
                assert_eq!(
                    (node, address.as_str()),
                    (NodeId(u64::MAX), "127.0.0.1:7000")
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
