//! Quick end-to-end runs of the simulator.

use raft_sim::{FaultProfile, Simulation, SimulationOptions, TraceMode};

// A handful of seeds per fault profile run clean: safe, live and linearizable.
#[test]
fn seeds_pass_under_every_profile() {
    for profile in FaultProfile::ALL {
        for seed in 0..4 {
            let options = SimulationOptions {
                seed,
                faults: profile,
                ..SimulationOptions::default()
            };
            let report = Simulation::new(options, TraceMode::Off)
                .expect("valid options")
                .run();
            println!(
                "{profile} seed {seed}: {:?} {:?}",
                report.failure, report.statistics
            );
            assert!(
                report.failure.is_none(),
                "{profile} seed {seed}: {}",
                report
                    .failure
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default()
            );
        }
    }
}
