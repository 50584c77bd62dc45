//! A seeded, deterministic simulator for clusters of `raft-core` nodes.
//!
//! Start with the [`guide`]: simulating your own state machine, property tests with the
//! exported [`strategy`], scripted scenarios, fuzzing, and replaying and shrinking failures.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checker;
pub mod elections;
pub mod faults;
pub mod guide;
pub mod history;
pub mod kv;
pub mod linearizability;
mod network;
mod queue;
pub mod script;
pub mod script_history;
pub mod shrink;
pub mod simulation;
pub mod storage;
pub mod strategy;
pub mod trace;

pub use checker::{NodeView, SafetyChecker, Violation};
pub use faults::{FaultPlan, FaultProfile};
pub use kv::{KeyValueStore, KeyValueWorkload, StateMachine, Workload};
pub use network::Partition;
pub use script::Cluster;
pub use shrink::{Shrunk, shrink};
pub use simulation::{Failure, Report, Simulation, SimulationOptions, Statistics};
pub use storage::InMemoryStorage;
pub use trace::{Trace, TraceMode};
