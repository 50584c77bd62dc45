//! A seeded, deterministic simulator for clusters of `raft-core` nodes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checker;
pub mod history;
pub mod script;
pub mod storage;

pub use checker::{NodeView, SafetyChecker, Violation};
pub use script::Cluster;
pub use storage::InMemoryStorage;
