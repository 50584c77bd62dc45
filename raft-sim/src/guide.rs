//! # Testing your application with this library
//!
//! A guide to the testing tools, from the cheapest to the most thorough. Every example
//! here compiles and runs as a test of this crate.
//!
//! ## 1. Simulate your state machine
//!
//! Implement [`StateMachine`](crate::StateMachine) over your own data structures. The
//! operations are the key-value calls of [`Call`](crate::history::Call): get, put,
//! compare-and-set, delete and append, which cover registers, maps and logs. A simulation
//! runs a whole cluster of unmodified `raft-core` nodes in one thread, under the faults
//! of a profile, checks Raft's safety properties after every event, checks that every
//! replica computes the same results, and checks the client history for linearizability.
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use bytes::Bytes;
//! use raft_sim::history::{Call, Return};
//! use raft_sim::{
//!     FaultProfile, KeyValueWorkload, Simulation, SimulationOptions, StateMachine, TraceMode,
//! };
//!
//! /// The application under test: a map, with its own snapshot format.
//! #[derive(Default)]
//! struct MyStore {
//!     values: BTreeMap<String, String>,
//! }
//!
//! impl StateMachine for MyStore {
//!     fn apply(&mut self, call: &Call) -> Return {
//!         match call {
//!             Call::Get { key } => Return::Value(self.values.get(key).cloned()),
//!             Call::Put { key, value } => {
//!                 self.values.insert(key.clone(), value.clone());
//!                 Return::Done
//!             }
//!             Call::CompareAndSet { key, expected, new } => {
//!                 let swapped = self.values.get(key) == expected.as_ref();
//!                 if swapped {
//!                     self.values.insert(key.clone(), new.clone());
//!                 }
//!                 Return::Swapped(swapped)
//!             }
//!             Call::Delete { key } => {
//!                 self.values.remove(key);
//!                 Return::Done
//!             }
//!             Call::Append { key, value } => {
//!                 self.values.entry(key.clone()).or_default().push_str(value);
//!                 Return::Done
//!             }
//!         }
//!     }
//!
//!     fn snapshot(&self) -> Bytes {
//!         let lines: Vec<String> =
//!             self.values.iter().map(|(key, value)| format!("{key}\t{value}")).collect();
//!         Bytes::from(lines.join("\n"))
//!     }
//!
//!     fn restore(&mut self, snapshot: &[u8]) {
//!         let text = String::from_utf8_lossy(snapshot);
//!         self.values = text
//!             .lines()
//!             .filter_map(|line| line.split_once('\t'))
//!             .map(|(key, value)| (key.to_string(), value.to_string()))
//!             .collect();
//!     }
//! }
//!
//! let options = SimulationOptions {
//!     seed: 7,
//!     faults: FaultProfile::All,
//!     duration_nanos: 2_000_000_000,
//!     ..SimulationOptions::default()
//! };
//! let report = Simulation::with_application(
//!     options.clone(),
//!     TraceMode::Off,
//!     Box::new(|| Box::new(MyStore::default())),
//!     Box::new(KeyValueWorkload::new(options.keys)),
//! )?
//! .run();
//! assert!(report.failure.is_none(), "{:?}", report.failure);
//! # Ok::<(), String>(())
//! ```
//!
//! Every fault profile but `none` uses small snapshot thresholds, so `snapshot` and
//! `restore` run often: a restore that loses state shows up as a divergence between
//! replicas or as a history that is not linearizable.
//!
//! ## 2. Sweep many seeds
//!
//! One seed is one run; a sweep is many. The command line runs the built-in store:
//!
//! ```text
//! raft-sim run --seeds 0..10000 --faults all
//! ```
//!
//! For your own store, loop over seeds in a test, as above with `seed` varying.
//!
//! ## 3. Property-test with the strategies
//!
//! [`strategy`](crate::strategy) exports what the library's own property suites use.
//! [`simulation_options`](crate::strategy::simulation_options) draws whole simulation
//! settings with an explicit fault plan; when a case fails, proptest shrinks it toward
//! fewer faults, fewer nodes and clients and a shorter run, and
//! [`check_simulation`](crate::strategy::check_simulation) fails with the options as JSON
//! and the replay command:
//!
//! ```
//! use proptest::prelude::*;
//! use raft_sim::strategy::{check_simulation, simulation_options};
//! use raft_sim::{KeyValueStore, KeyValueWorkload};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
//!     // In a test file, put `#[test]` here.
//!     fn my_store_is_safe(options in simulation_options()) {
//!         let keys = options.keys;
//!         check_simulation(
//!             &options,
//!             Box::new(|| Box::new(KeyValueStore::default())),
//!             Box::new(KeyValueWorkload::new(keys)),
//!         )?;
//!     }
//! }
//! my_store_is_safe();
//! ```
//!
//! [`scenario_strategy`](crate::strategy::scenario_strategy) and
//! [`run_scenario`](crate::strategy::run_scenario) go one level down: a schedule of
//! individual deliveries, losses, crashes, partial fsyncs, elections, transfers,
//! configuration changes and snapshots on the scripting harness, with the safety checker
//! after every step; a failing case shrinks to a handful of steps.
//!
//! ## 4. Script a scenario
//!
//! When you know the interleaving you want, write it with [`Cluster`](crate::Cluster):
//!
//! ```
//! use raft_core::NodeId;
//! use raft_sim::Cluster;
//!
//! let mut cluster = Cluster::new(3);
//! cluster.elect(NodeId(1));
//! cluster.isolate(NodeId(3));
//! cluster.propose(NodeId(1), b"written while n3 is away").expect("the leader accepts");
//! cluster.deliver_all();
//! cluster.heal();
//! cluster.run_until(50, |cluster| cluster.applied_commands(NodeId(3)).len() == 1);
//! ```
//!
//! ## 5. Fuzz
//!
//! The `fuzz/` directory of the repository holds cargo-fuzz targets: message and frame
//! decoding, arbitrary inputs to one node, and (with the `arbitrary` feature of
//! `raft-core`, which derives `Arbitrary` for messages) your own targets:
//!
//! ```text
//! cargo install cargo-fuzz
//! cargo +nightly fuzz run node_inputs fuzz/corpus/node_inputs fuzz/seeds/node_inputs
//! ```
//!
//! A crash leaves its input in `fuzz/artifacts/`; `cargo +nightly fuzz fmt <target>
//! <file>` prints it as the input sequence, which becomes a scenario test.
//!
//! ## 6. Replay and minimise a failure
//!
//! A failing seed prints the one command that replays it, exactly:
//!
//! ```text
//! raft-sim replay --seed 42 --nodes 5 --faults all --duration 20s --trace trace.txt --history history.jsonl
//! ```
//!
//! `raft-sim shrink` with the same options removes fault classes, nodes, clients and run
//! time while the same property still fails, and prints the smallest reproduction, whose
//! fault plan it passes with `--plan`. The library function is
//! [`shrink`](crate::shrink()), for your own application:
//!
//! ```
//! use raft_sim::{FaultProfile, Simulation, SimulationOptions, TraceMode, shrink};
//!
//! let options = SimulationOptions {
//!     seed: 3,
//!     faults: FaultProfile::Net,
//!     duration_nanos: 1_000_000_000,
//!     ..SimulationOptions::default()
//! };
//! let run = |options: &SimulationOptions| {
//!     Simulation::new(options.clone(), TraceMode::Off).map(Simulation::run)
//! };
//! // This seed passes, so there is nothing to shrink.
//! assert!(shrink(&options, 50, run, |_| {})?.is_none());
//! # Ok::<(), String>(())
//! ```
