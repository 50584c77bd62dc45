//! Raft consensus as a deterministic state machine.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
pub mod config;
pub mod error;
mod log;
pub mod message;
mod node;
mod progress;
pub mod quorum;
mod recovered;
mod role;
mod shared;
pub mod status;
mod timers;
pub mod types;

pub use action::{Action, Event, LogWrite, Write, WriteId};
pub use config::{Config, ConfigBuilder};
pub use error::{
    AcknowledgementError, CampaignError, ConfigError, DropReason, ProposeError, RecoveryError,
};
pub use message::{AppendResponse, Message, MessageBody};
pub use node::{Node, Proposal};
pub use progress::ReplicationState;
pub use quorum::{Membership, VoteResult};
pub use recovered::Recovered;
pub use status::{FollowerStatus, Role, Status};
pub use types::{Entry, HardState, Index, LogId, NodeId, Payload, Term};
