//! Actions: what the node asks its driver to do, in the order it must be done.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::snapshot::SnapshotMetadata;
use crate::status::Role;
use crate::types::{Entry, HardState, Index, NodeId, Term};

/// One thing the driver must do. Drain them with [`Node::poll_action`](crate::Node::poll_action)
/// after every input and carry them out in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Make a write durable, then acknowledge it with
    /// [`Node::persisted`](crate::Node::persisted)`(write.id())`. Writes must become
    /// durable in the order they were issued; acknowledging a write acknowledges every
    /// earlier one, so a driver may fsync a batch once and acknowledge only the last.
    Persist(Write),
    /// Hand a message to the transport. It may be lost, duplicated or reordered: Raft
    /// tolerates all three.
    Send(Message),
    /// Apply these committed entries to the state machine, in order, then report the last
    /// one with [`Node::applied`](crate::Node::applied).
    Apply(Vec<Entry>),
    /// Send a snapshot: the message (an
    /// [`InstallSnapshot`](crate::MessageBody::InstallSnapshot)) names the snapshot the
    /// driver stored at that index; the driver moves its data to the receiver however it
    /// likes (chunked, on its own connection), and the receiving driver hands the message
    /// to [`Node::step`](crate::Node::step) once the whole snapshot has arrived. Report
    /// the outcome on this side with [`Node::snapshot_sent`](crate::Node::snapshot_sent),
    /// exactly once: until then the leader sends this follower no entries. A driver that
    /// no longer holds that snapshot (a newer one replaced it) reports a failure, and the
    /// leader names the newer one next time.
    SendSnapshot(Message),
    /// Replace the state machine's state with the snapshot named here (stored durably by
    /// an earlier write), then report its last index with
    /// [`Node::applied`](crate::Node::applied). Entries after it follow in `Apply` actions.
    Restore(Box<SnapshotMetadata>),
    /// Something observers may react to; nothing needs to be done.
    Event(Event),
}

/// The identity of a [`Write`]; acknowledgements name it.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WriteId(pub u64);

/// A storage write: a new hard state, a snapshot, log entries, or any of them, to be made
/// durable together (atomically: after a crash, all of it or none).
///
/// Carry it out in field order: the hard state, then the snapshot, then the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Write {
    /// This write's identity.
    pub id: WriteId,
    /// The hard state to store, if it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot to store with this metadata, replacing the stored one: its data is the
    /// snapshot the driver built and reported with
    /// [`Node::snapshot_built`](crate::Node::snapshot_built), or the one a leader sent
    /// with the [`InstallSnapshot`](crate::MessageBody::InstallSnapshot) message just
    /// stepped. Stored entries at or below its last index may be discarded with it.
    pub snapshot: Option<Box<SnapshotMetadata>>,
    /// Log entries to store, if the log changed.
    pub log: Option<LogWrite>,
}

impl Write {
    /// The acknowledgement to pass to [`Node::persisted`](crate::Node::persisted) once this
    /// write (and every earlier one) is durable.
    pub fn id(&self) -> WriteId {
        self.id
    }
}

/// Entries to store: every stored entry at or after `first_index` is replaced by
/// `entries`, which start at `first_index`. In the common case `first_index` is one past
/// the last stored entry and nothing is replaced; it is lower only when a new leader
/// overwrote a conflicting suffix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogWrite {
    /// The first index written; stored entries from here on are discarded first.
    pub first_index: Index,
    /// The entries to store, contiguous from `first_index`.
    pub entries: Vec<Entry>,
}

/// Identifies one linearizable read: the node that accepted it and its number there. The
/// node makes ids up itself (never from caller data), so two reads can never be confused.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReadId {
    /// The node that accepted the read.
    pub node: NodeId,
    /// Its number on that node.
    pub sequence: u64,
}

impl fmt::Display for ReadId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "r{}.{}", self.node.0, self.sequence)
    }
}

/// A change observers may react to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Event {
    /// The node's role changed.
    RoleChanged {
        /// The new role.
        role: Role,
    },
    /// The leader this node knows of changed (possibly to none).
    LeaderChanged {
        /// The new leader, if known.
        leader: Option<NodeId>,
    },
    /// The node entered a new term.
    TermChanged {
        /// The new term.
        term: Term,
    },
    /// More entries are known committed.
    CommitAdvanced {
        /// The new commit index.
        commit: Index,
    },
    /// A read may be served: once the state machine has applied `index`, its state is at
    /// least as new as any write completed before the read was requested.
    ReadReady {
        /// The read.
        id: ReadId,
        /// The index to wait for.
        index: Index,
    },
    /// A read could not be confirmed (leadership changed); ask again.
    ReadAborted {
        /// The read.
        id: ReadId,
    },
    /// The configuration in effect changed: read it with
    /// [`Node::membership`](crate::Node::membership). It comes from the configuration
    /// entry at `index`, or, when the log holds no configuration entry (they were
    /// truncated or compacted), from the log's starting point: a snapshot whose last index
    /// is `index`, or the initial configuration at 0.
    MembershipChanged {
        /// The index of the configuration entry now in effect.
        index: Index,
    },
    /// A leader said that its committed configuration at `index` no longer lists this
    /// node, which therefore stops campaigning ([`Status::removed`](crate::Status::removed)
    /// says so from now on). It still answers its peers, and takes part again once a
    /// leader replicates a later configuration to it. Announced once per removal.
    Removed {
        /// The index of the configuration that left this node out.
        index: Index,
    },
    /// A leadership transfer was abandoned after an election timeout.
    TransferAborted {
        /// The target that did not take over.
        target: NodeId,
    },
    /// The log applied since the last snapshot passed
    /// [`snapshot_log_bytes`](crate::Config::snapshot_log_bytes): build a snapshot of the
    /// state machine at its applied index and report it with
    /// [`Node::snapshot_built`](crate::Node::snapshot_built), so that the log can be
    /// compacted. Asked once per snapshot; ignoring it only costs memory.
    SnapshotWanted {
        /// The applied index when the threshold was passed.
        applied: Index,
    },
}

impl fmt::Display for Write {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "w{}", self.id.0)?;
        if let Some(hard_state) = &self.hard_state {
            write!(formatter, " hard[{hard_state}]")?;
        }
        if let Some(snapshot) = &self.snapshot {
            write!(formatter, " {snapshot}")?;
        }
        if let Some(log) = &self.log {
            write!(formatter, " log@{}[", log.first_index.0)?;
            for (position, entry) in log.entries.iter().enumerate() {
                if position > 0 {
                    formatter.write_str(" ")?;
                }
                write!(formatter, "{entry}")?;
            }
            formatter.write_str("]")?;
        }
        Ok(())
    }
}

impl fmt::Display for Event {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::RoleChanged { role } => write!(formatter, "role={role}"),
            Event::LeaderChanged {
                leader: Some(leader),
            } => write!(formatter, "leader={leader}"),
            Event::LeaderChanged { leader: None } => formatter.write_str("leader=none"),
            Event::TermChanged { term } => write!(formatter, "term={}", term.0),
            Event::CommitAdvanced { commit } => write!(formatter, "commit={}", commit.0),
            Event::ReadReady { id, index } => {
                write!(formatter, "read-ready {id} index={}", index.0)
            }
            Event::ReadAborted { id } => write!(formatter, "read-aborted {id}"),
            Event::MembershipChanged { index } => {
                write!(formatter, "membership-changed index={}", index.0)
            }
            Event::Removed { index } => write!(formatter, "removed index={}", index.0),
            Event::TransferAborted { target } => write!(formatter, "transfer-aborted {target}"),
            Event::SnapshotWanted { applied } => {
                write!(formatter, "snapshot-wanted applied={}", applied.0)
            }
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Persist(write) => write!(formatter, "persist {write}"),
            Action::Send(message) => write!(formatter, "send {message}"),
            Action::SendSnapshot(message) => write!(formatter, "send-snapshot {message}"),
            Action::Restore(snapshot) => write!(formatter, "restore {snapshot}"),
            Action::Apply(entries) => {
                formatter.write_str("apply [")?;
                for (position, entry) in entries.iter().enumerate() {
                    if position > 0 {
                        formatter.write_str(" ")?;
                    }
                    write!(formatter, "{entry}")?;
                }
                formatter.write_str("]")
            }
            Action::Event(event) => write!(formatter, "event {event}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every action and message moves through the outbox and the driver's queues by value,
    // and every entry is cloned into messages and applies: rare, large payloads (snapshot
    // metadata, configurations) are boxed so that the common ones stay small. A variant
    // that grows these sizes slows every hot path measurably.
    #[test]
    fn actions_and_messages_stay_small() {
        assert!(size_of::<Message>() <= 72, "{}", size_of::<Message>());
        assert!(size_of::<Action>() <= 80, "{}", size_of::<Action>());
        assert!(size_of::<Write>() <= 72, "{}", size_of::<Write>());
        assert!(size_of::<Entry>() <= 56, "{}", size_of::<Entry>());
    }
}
