//! Simulator speed: events per second of one simulation, and the ratio of simulated to
//! wall time, for a 5-node cluster with 10 ms heartbeats and a client load.
//!
//! Run with `cargo bench -p raft-sim --bench simulator`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use raft_sim::faults::SECOND;
use raft_sim::{FaultProfile, Simulation, SimulationOptions, TraceMode};

fn options(faults: FaultProfile) -> SimulationOptions {
    SimulationOptions {
        seed: 7,
        nodes: 5,
        faults,
        duration_nanos: 10 * SECOND,
        ..SimulationOptions::default()
    }
}

fn simulate(faults: FaultProfile) -> (u64, u64) {
    let report = Simulation::new(options(faults), TraceMode::Off)
        .expect("valid options")
        .run();
    assert!(report.failure.is_none(), "{:?}", report.failure);
    (report.statistics.events, report.statistics.simulated_nanos)
}

fn events_per_second(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("simulation");
    for faults in [FaultProfile::None, FaultProfile::All] {
        let (events, simulated) = simulate(faults);
        let started = Instant::now();
        black_box(simulate(faults));
        let wall = started.elapsed();
        println!(
            "simulation/{faults}: {events} events, {:.1} s simulated in {:.3} s wall: \
             {:.0} events/s, {:.0}x real time",
            simulated as f64 / 1e9,
            wall.as_secs_f64(),
            events as f64 / wall.as_secs_f64(),
            simulated as f64 / 1e9 / wall.as_secs_f64()
        );
        group.throughput(Throughput::Elements(events));
        group.bench_function(faults.name(), |bencher| {
            bencher.iter_custom(|iterations| {
                let started = Instant::now();
                for _ in 0..iterations {
                    black_box(simulate(faults));
                }
                started.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    targets = events_per_second
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
