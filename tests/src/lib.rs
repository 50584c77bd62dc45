//! Cross-crate test tools for the raft workspace: an in-memory storage stand-in, a
//! manually driven cluster harness, and Raft's safety checker.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checker;
pub mod harness;
pub mod storage;

pub use checker::{NodeView, SafetyChecker, Violation};
pub use harness::Cluster;
pub use storage::InMemoryStorage;
