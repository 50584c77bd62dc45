//! The Raft consensus protocol as a deterministic, sans-IO state machine.
//!
//! This crate does no networking, reads no clock, spawns no thread and draws randomness
//! only from a generator seeded by the caller: the same seed and the same inputs produce
//! byte-identical outputs. That is what lets one cluster run inside a simulator, a
//! property test or a fuzzer as easily as over TCP.
//!
//! The central type is [`Node`]: inputs go in through its methods ([`Node::tick`],
//! [`Node::step`], [`Node::persisted`], [`Node::applied`], and the commands
//! [`Node::propose`] and [`Node::campaign`]); [`Action`]s come out of
//! [`Node::poll_action`], in the order the driver must carry them out.
//!
//! # The run loop
//!
//! 1. Feed one input: a tick, a received message, a command, or a storage or apply
//!    acknowledgement.
//! 2. Drain [`Node::poll_action`] until it returns `None`, and for each action:
//!    - [`Action::Persist`]: hand the write to storage; once durable, call
//!      [`Node::persisted`] with its id. Writes become durable in order, so one fsync may
//!      acknowledge a whole batch.
//!    - [`Action::Send`]: hand the message to the transport (it may be lost).
//!    - [`Action::Apply`]: apply the committed entries, then call [`Node::applied`].
//!    - [`Action::SendSnapshot`]: send the named snapshot's data to a follower, then report
//!      the outcome with [`Node::snapshot_sent`].
//!    - [`Action::Restore`]: load the named snapshot into the state machine, then call
//!      [`Node::applied`] with its last index.
//!    - [`Action::Event`]: role, leader, term and commit changes, for observers; and
//!      [`Event::SnapshotWanted`], asking for a snapshot to be built and reported with
//!      [`Node::snapshot_built`] so that the log can be compacted.
//! 3. Repeat.
//!
//! Durability is carried by the types, not by prose: every answer that vouches for
//! stored state (a vote, an append acknowledgement) and the leader's own vote toward a
//! commit wait until the writes they depend on are acknowledged, so a slow or batching
//! driver stays safe.
//!
//! # Example
//!
//! A single-node cluster, with storage that is durable at once:
//!
//! ```
//! use raft_core::{Action, Config, Membership, Node, NodeId, Recovered, Role};
//!
//! let config = Config::builder(NodeId(1)).build()?;
//! let membership = Membership::with_voters([NodeId(1)]);
//! let mut node = Node::new(config, Recovered::new_cluster(membership))?;
//!
//! let mut applied = Vec::new();
//! let mut drive = |node: &mut Node| {
//!     while let Some(action) = node.poll_action() {
//!         match action {
//!             Action::Persist(write) => node.persisted(write.id()).expect("issued"),
//!             Action::Send(_) => unreachable!("a single node has no peers"),
//!             Action::Apply(entries) => {
//!                 let last = entries.last().map(|entry| entry.index()).expect("non-empty");
//!                 applied.extend(entries);
//!                 node.applied(last).expect("handed out");
//!             }
//!             Action::Event(_) => {}
//!             // Without `snapshot_built` the log is never compacted: no snapshot moves.
//!             Action::SendSnapshot(_) | Action::Restore(_) => unreachable!(),
//!         }
//!     }
//! };
//!
//! while node.role() != Role::Leader {
//!     node.tick();
//!     drive(&mut node);
//! }
//! node.propose(bytes::Bytes::from_static(b"set x=1"))?;
//! drive(&mut node);
//! assert_eq!(applied.len(), 2); // the leader's blank entry, then the command
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
#[cfg(feature = "arbitrary")]
mod arbitrary_support;
pub mod config;
mod election;
pub mod error;
mod log;
#[cfg(test)]
mod log_properties;
pub mod message;
mod node;
#[cfg(test)]
mod node_tests;
mod progress;
pub mod quorum;
mod read;
mod recovered;
mod role;
mod shared;
pub mod snapshot;
pub mod status;
mod timers;
pub mod types;

pub use action::{Action, Event, LogWrite, ReadId, Write, WriteId};
pub use config::{Config, ConfigBuilder};
pub use error::{
    AcknowledgementError, CampaignError, ConfigError, DropReason, MembershipError, ProposeError,
    ReadError, RecoveryError, SnapshotError, TransferError,
};
pub use message::{AppendResponse, Message, MessageBody};
pub use node::{Node, Proposal};
pub use progress::ReplicationState;
pub use quorum::{Membership, VoteResult};
pub use recovered::Recovered;
pub use snapshot::{SnapshotMetadata, SnapshotTransfer};
pub use status::{FollowerStatus, Role, Status, TransferStatus};
pub use types::{ENTRY_OVERHEAD_BYTES, Entry, HardState, Index, LogId, NodeId, Payload, Term};
