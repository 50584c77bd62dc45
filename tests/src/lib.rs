//! Cross-crate scenario and property suites for the raft workspace. The tools they use —
//! the scripting harness, the in-memory storage stand-in and the safety checker — live in
//! `raft-sim` and are re-exported here for the suites' convenience.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use raft_sim::checker;
pub use raft_sim::script as harness;
pub use raft_sim::storage;
pub use raft_sim::{Cluster, InMemoryStorage, NodeView, SafetyChecker, Violation};
