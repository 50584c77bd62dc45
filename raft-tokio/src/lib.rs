//! Runs [`raft_core`] nodes for real: a driver task per node wiring the sans-IO core to
//! its peers (over TCP, or in one process), timers, durable storage and the application's
//! state machine.
//!
//! - [`storage`]: the [`LogStore`](storage::LogStore) trait, with a durable store in one
//!   [redb](https://docs.rs/redb) file and an in-memory one for tests. Writes run on a
//!   thread of their own and are committed in batches, one fsync per batch (the
//!   in-memory store's, which never block, on the driver's task).
//! - [`transport`]: TCP connections carrying length-prefixed postcard frames, with a
//!   handshake, bounded queues, reconnection and snapshot chunking; with the `tls`
//!   feature, optionally inside mutual TLS (certificates given as file paths in
//!   [`TransportConfig::tls`](transport::TransportConfig::tls)). Or, for nodes in one
//!   process, an [`InProcessNetwork`](transport::InProcessNetwork) that hands messages
//!   straight to each other's queues and can cut a node off, for tests and benchmarks
//!   ([`NodeOptions::in_process`]).
//! - [`StateMachine`]: what the application implements; applies run on a thread of their
//!   own (or on the driver's task, for a state machine that never blocks).
//! - [`start`] and [`RaftHandle`]: start a node and talk to it (propose, linearizable
//!   reads, membership changes, leader transfer, status, role changes, shutdown).
//! - [`RateLimitedLog`]: a log line a peer or client can trigger per connection, written
//!   at most once per interval with a count of the rest.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod driver;
mod handle;
mod log_limit;
mod machine;
pub mod metrics;
mod options;
pub mod storage;
pub mod transport;

pub use handle::{
    ClientError, RaftHandle, Refusal, RoleInfo, StartError, StopReason, Uncertainty, start,
};
pub use log_limit::{Decision, RateLimitedLog, Summary};
pub use machine::StateMachine;
pub use options::NodeOptions;
