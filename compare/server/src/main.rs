//! The raft-kv server against etcd (Debian's `etcd-server`, built on etcd's raft
//! library), three nodes each on 127.0.0.1 with fsync on, driven by the same load
//! generator, the two sides alternately, in one binary.
//!
//! The workload: each client is a thread with one keep-alive HTTP/1.1 connection to the
//! leader, looping on one write at a time of a 128-byte value to key
//! `load-<client>-<n>` (n cycling through 1024 keys): raft-kv's `PUT /<key>`, and etcd's
//! `POST /v3/kv/put` with `{"key": base64, "value": base64}` on its v3 JSON gateway. The
//! clients, the raft-kv cluster and the /proc readings are raft-kv's load bench's own
//! source (`raft-kv/benches/load/`), included below.
//!
//! Both clusters run for the whole invocation. For each client count, rounds alternate
//! the sides (which goes first rotates every round); each run looks up the side's
//! leader, warms up, then measures a fixed window. Throughput is the median over the
//! rounds; latency percentiles come from the rounds' histograms merged.
//!
//! Usage: see [`USAGE`]. Prints a markdown report to stdout; `--json PATH` also writes
//! the figures for the chart renderer.
//!
//! The servers are killed when the program ends, by an error or a panic too. raft-kv
//! nodes also stop by themselves when their standard input, a pipe from this program,
//! closes, so even a killed `compare-server` leaves none behind; etcd has no such switch,
//! and its members outlive a `kill` of this program (not a Ctrl-C in a terminal, which
//! signals the whole process group).
#![forbid(unsafe_code)]

mod etcd_cluster;
#[path = "../../common/figures.rs"]
mod figures;
#[path = "../../../raft-kv/benches/load/generator.rs"]
mod generator;
#[path = "../../../raft-kv/benches/load/raft_kv_cluster.rs"]
mod raft_kv_cluster;
mod report;
#[path = "../../../raft-kv/benches/load/system.rs"]
mod system;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;

use etcd_cluster::EtcdCluster;
use generator::{Load, RequestBuilder};
use raft_kv_cluster::RaftKvCluster;
use system::ServerProcess;

const USAGE: &str = "usage: compare-server [--quick] [--rounds N] [--clients 1,16,64] [--warm-up S]
                      [--seconds S] [--json PATH] [--raft-kv PATH] [--etcd PATH]
                      [--profile SIDE:CLIENTS]

Starts a three-node raft-kv cluster and a three-member etcd cluster on 127.0.0.1, drives
each leader with the same HTTP load generator, the sides alternately, and prints a
markdown report. Default: 5 rounds per client count, 2 s of warm-up and 10 s measured
per run; --quick: 3 rounds, 1 s and 3 s. --json PATH also writes the figures as JSON.
--raft-kv: the server binary [default: the main workspace's target/release/raft-kv,
built with `cargo build --release -p raft-kv`]; --etcd: the etcd binary [default: etcd
on PATH]. --profile SIDE:CLIENTS (SIDE raft-kv or etcd) starts only that side and runs
it round after round, printing the leader's pid: a process to hand to perf.";

/// Bytes of every value written.
const VALUE_BYTES: usize = 128;

/// Exit code for bad arguments or a missing server binary.
const EXIT_USAGE: u8 = 2;

/// How much each run measures.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Rounds per client count; each round runs every side once.
    pub(crate) rounds: usize,
    /// The client counts, in order.
    pub(crate) client_counts: Vec<usize>,
    /// Load before each measured window, not counted.
    pub(crate) warm_up: Duration,
    /// The measured window of each run.
    pub(crate) measured: Duration,
}

/// The servers compared, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    RaftKv,
    Etcd,
}

pub(crate) const SIDES: [Side; 2] = [Side::RaftKv, Side::Etcd];

impl Side {
    /// The side's name in reports and on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::RaftKv => "raft-kv",
            Side::Etcd => "etcd",
        }
    }

    /// The Prometheus counter and sum of the leader's log fsyncs.
    fn fsync_metrics(self) -> (&'static str, &'static str) {
        match self {
            Side::RaftKv => ("raft_fsync_seconds_count", "raft_fsync_seconds_sum"),
            Side::Etcd => (
                "etcd_disk_wal_fsync_duration_seconds_count",
                "etcd_disk_wal_fsync_duration_seconds_sum",
            ),
        }
    }
}

/// One side's running cluster.
enum Cluster {
    RaftKv(RaftKvCluster),
    Etcd(EtcdCluster),
}

impl Cluster {
    fn start(side: Side, options: &Options) -> Cluster {
        match side {
            Side::RaftKv => Cluster::RaftKv(RaftKvCluster::start(&options.raft_kv)),
            Side::Etcd => Cluster::Etcd(EtcdCluster::start(&options.etcd)),
        }
    }

    fn side(&self) -> Side {
        match self {
            Cluster::RaftKv(_) => Side::RaftKv,
            Cluster::Etcd(_) => Side::Etcd,
        }
    }

    /// Waits for an agreed leader that takes writes; returns its position.
    fn leader(&mut self) -> usize {
        match self {
            Cluster::RaftKv(cluster) => cluster.leader(),
            Cluster::Etcd(cluster) => cluster.leader(),
        }
    }

    /// The ports clients write to, by position.
    fn ports(&self) -> &[u16] {
        match self {
            Cluster::RaftKv(cluster) => &cluster.http_ports,
            Cluster::Etcd(cluster) => &cluster.client_ports,
        }
    }

    fn servers(&self) -> &[ServerProcess] {
        match self {
            Cluster::RaftKv(cluster) => &cluster.servers,
            Cluster::Etcd(cluster) => &cluster.servers,
        }
    }

    fn metrics(&self, position: usize) -> String {
        match self {
            Cluster::RaftKv(cluster) => cluster.metrics(position),
            Cluster::Etcd(cluster) => cluster.metrics(position),
        }
    }

    fn directory(&self) -> &Path {
        match self {
            Cluster::RaftKv(cluster) => cluster.directory(),
            Cluster::Etcd(cluster) => cluster.directory(),
        }
    }

    /// The clients' writes: the same key and the same 128 bytes on both sides, in each
    /// server's own API.
    fn request_builder(&self) -> Box<RequestBuilder> {
        let value = vec![b'v'; VALUE_BYTES];
        match self {
            Cluster::RaftKv(_) => Box::new(move |client, sequence, request| {
                raft_kv_cluster::put_request(&value, client, sequence, request);
            }),
            Cluster::Etcd(_) => {
                let value_base64 = BASE64.encode(&value);
                Box::new(move |client, sequence, request| {
                    etcd_cluster::put_request(&value_base64, client, sequence, request);
                })
            }
        }
    }
}

/// The command line.
struct Options {
    plan: Plan,
    quick: bool,
    json: Option<PathBuf>,
    raft_kv: PathBuf,
    etcd: PathBuf,
    profile: Option<(Side, usize)>,
}

impl Options {
    fn parse(arguments: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut quick = false;
        let mut rounds = None;
        let mut client_counts = vec![1, 16, 64];
        let mut warm_up = None;
        let mut measured = None;
        let mut json = None;
        // Where `cargo build --release -p raft-kv` in the main workspace puts it.
        let mut raft_kv =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/raft-kv");
        let mut etcd = PathBuf::from("etcd");
        let mut profile = None;
        let mut arguments = arguments.peekable();
        while let Some(argument) = arguments.next() {
            let mut value = |name: &str| {
                arguments
                    .next()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match argument.as_str() {
                "--quick" => quick = true,
                "--rounds" => match value("--rounds")?.parse::<usize>() {
                    Ok(count) if count > 0 => rounds = Some(count),
                    _ => return Err("--rounds needs a positive number".to_owned()),
                },
                "--clients" => client_counts = parse_client_counts(&value("--clients")?)?,
                "--warm-up" => warm_up = Some(parse_seconds("--warm-up", &value("--warm-up")?)?),
                "--seconds" => {
                    let seconds = parse_seconds("--seconds", &value("--seconds")?)?;
                    if seconds.is_zero() {
                        return Err("--seconds must be positive".to_owned());
                    }
                    measured = Some(seconds);
                }
                "--json" => json = Some(PathBuf::from(value("--json")?)),
                "--raft-kv" => raft_kv = PathBuf::from(value("--raft-kv")?),
                "--etcd" => etcd = PathBuf::from(value("--etcd")?),
                "--profile" => {
                    let text = value("--profile")?;
                    let parsed = text.split_once(':').and_then(|(side, clients)| {
                        let side = SIDES.into_iter().find(|known| known.name() == side)?;
                        let clients = clients.parse::<usize>().ok().filter(|count| *count > 0)?;
                        Some((side, clients))
                    });
                    profile = Some(parsed.ok_or_else(|| {
                        format!("--profile needs SIDE:CLIENTS, e.g. raft-kv:64, not {text:?}")
                    })?);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let (default_rounds, default_warm_up, default_measured) = if quick {
            (3, Duration::from_secs(1), Duration::from_secs(3))
        } else {
            (5, Duration::from_secs(2), Duration::from_secs(10))
        };
        Ok(Options {
            plan: Plan {
                rounds: rounds.unwrap_or(default_rounds),
                client_counts,
                warm_up: warm_up.unwrap_or(default_warm_up),
                measured: measured.unwrap_or(default_measured),
            },
            quick,
            json,
            raft_kv,
            etcd,
            profile,
        })
    }
}

fn parse_client_counts(text: &str) -> Result<Vec<usize>, String> {
    text.split(',')
        .map(|count| match count.trim().parse::<usize>() {
            Ok(count) if count > 0 => Ok(count),
            _ => Err(format!("{count:?} is not a positive client count")),
        })
        .collect()
}

fn parse_seconds(name: &str, text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => {
            Ok(Duration::from_secs_f64(seconds))
        }
        _ => Err(format!("{name}: {text:?} is not a number of seconds")),
    }
}

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    if arguments
        .iter()
        .any(|argument| argument == "--help" || argument == "-h")
    {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(arguments.into_iter()) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !options.raft_kv.is_file() {
        eprintln!(
            "error: no raft-kv binary at {}: build it with `cargo build --release -p raft-kv` \
             in the main workspace, or name it with --raft-kv",
            options.raft_kv.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let Some(etcd_version) =
        system::command_output(&options.etcd.display().to_string(), &["--version"])
    else {
        eprintln!(
            "error: `{} --version` failed: install etcd (Debian: `apt-get install etcd-server`) \
             or name it with --etcd",
            options.etcd.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };

    if let Some((side, clients)) = options.profile {
        profile(side, clients, &options);
        return ExitCode::SUCCESS;
    }

    let context = report::Context::new(
        options.quick,
        options.plan.clone(),
        &etcd_version,
        &options.raft_kv,
    );
    let mut clusters = SIDES.map(|side| Cluster::start(side, &options));
    let plan = &options.plan;
    // results[client count][side][round]
    let mut results: Vec<[Vec<Sample>; 2]> = Vec::new();
    for &clients in &plan.client_counts {
        let mut samples = [Vec::new(), Vec::new()];
        for round in 0..plan.rounds {
            // Which side goes first rotates every round, so that neither always runs on
            // a machine warmed (or disturbed) by the other.
            let mut order = [0, 1];
            order.rotate_left(round % SIDES.len());
            for position in order {
                let cluster = &mut clusters[position];
                let sample = measure(cluster, clients, plan);
                eprintln!(
                    "{clients:>3} clients, round {}/{}, {:<7} {}",
                    round + 1,
                    plan.rounds,
                    cluster.side().name(),
                    sample.summary()
                );
                samples[position].push(sample);
            }
        }
        results.push(samples);
    }
    let filesystem = data_filesystem(clusters[0].directory());
    // Measured with the servers idle, on the filesystem their data is on: what one
    // writer's fsyncs cost on this disk, for reading the fsyncs/s the servers reached.
    let disk = fsync_probe(
        clusters[0].directory(),
        plan.measured.min(Duration::from_secs(3)),
    );
    drop(clusters);

    print!(
        "{}",
        report::markdown(&context, &filesystem, &disk, &results)
    );
    if let Some(path) = &options.json {
        let document = report::json(&context, &results);
        let text = serde_json::to_string_pretty(&document).expect("JSON values serialize");
        if let Err(error) = std::fs::write(path, text + "\n") {
            eprintln!("error: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `--profile`: one side alone, one client count, round after round.
fn profile(side: Side, clients: usize, options: &Options) {
    let mut cluster = Cluster::start(side, options);
    for round in 0..options.plan.rounds {
        let leader = cluster.leader();
        eprintln!(
            "round {}/{}: {} leader pid {}",
            round + 1,
            options.plan.rounds,
            side.name(),
            cluster.servers()[leader].pid()
        );
        let sample = measure(&mut cluster, clients, &options.plan);
        eprintln!("  {}", sample.summary());
    }
}

/// The filesystem of a data directory, from the last line of `df -T`: tmpfs would make
/// every fsync free.
fn data_filesystem(directory: &Path) -> String {
    system::command_output("df", &["-T", &directory.display().to_string()])
        .and_then(|text| {
            let fields: Vec<String> = text
                .lines()
                .last()?
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            // Filesystem Type 1K-blocks Used Available Use% Mounted-on
            Some(format!(
                "{} on {} (mounted on {})",
                fields.get(1)?,
                fields.first()?,
                fields.last()?
            ))
        })
        .unwrap_or_else(|| "unknown (df -T failed)".to_owned())
}

/// What one thread's loop of 4 KiB overwrites, each followed by `fdatasync`, achieved in
/// a file of `directory` for `duration`.
pub(crate) struct DiskProbe {
    /// Write-and-fdatasync rounds per second.
    pub(crate) per_second: f64,
    /// The median time of one fdatasync, in microseconds.
    pub(crate) median_micros: f64,
    /// The 99th percentile, in microseconds.
    pub(crate) p99_micros: f64,
}

fn fsync_probe(directory: &Path, duration: Duration) -> DiskProbe {
    use std::io::{Seek, SeekFrom, Write};
    let path = directory.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("the probe file is created");
    let block = [0x5au8; 4096];
    let mut latencies = generator::latency_histogram();
    let started = Instant::now();
    let mut rounds: u64 = 0;
    while started.elapsed() < duration {
        // Overwrites within 1 MiB, as a log's tail page is rewritten: no file growth.
        file.seek(SeekFrom::Start((rounds % 256) * 4096))
            .and_then(|_| file.write_all(&block))
            .expect("the probe file is writable");
        let before = Instant::now();
        file.sync_data().expect("the probe file syncs");
        latencies.saturating_record((before.elapsed().as_micros() as u64).max(1));
        rounds += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    DiskProbe {
        per_second: rounds as f64 / seconds,
        median_micros: latencies.value_at_quantile(0.5) as f64,
        p99_micros: latencies.value_at_quantile(0.99) as f64,
    }
}

/// What one side did in one measured window.
pub(crate) struct Sample {
    /// Successful writes per second of the window.
    pub(crate) writes_per_second: f64,
    /// Latencies of the successful writes, in microseconds.
    pub(crate) latencies: Histogram<u64>,
    /// Failed writes (a status other than 2xx, or an I/O error).
    pub(crate) errors: u64,
    /// The last failure's description.
    pub(crate) last_error: Option<String>,
    /// CPU of the leader over the window, in cores (1.0: one core busy throughout).
    pub(crate) leader_cores: f64,
    /// CPU of the two followers together, in cores.
    pub(crate) followers_cores: f64,
    /// CPU of the load generator, in cores.
    pub(crate) generator_cores: f64,
    /// Share of all processors' time that was busy, by anything on the machine.
    pub(crate) machine_busy: f64,
    /// The leader's log fsyncs per second.
    pub(crate) leader_fsyncs_per_second: f64,
    /// Share of the window the leader spent in log fsyncs (summed over its threads).
    pub(crate) leader_fsync_busy: f64,
    /// Leadership moved during the run (counted successes after a redirect, or another
    /// leader afterwards).
    pub(crate) leader_moved: bool,
}

impl Sample {
    fn summary(&self) -> String {
        format!(
            "{:>8.0} writes/s, p50 {:>6.2} ms, p99 {:>6.2} ms, {} errors, servers {:.2} \
             cores, generator {:.2}, machine {:.0}% busy",
            self.writes_per_second,
            self.latencies.value_at_quantile(0.5) as f64 / 1000.0,
            self.latencies.value_at_quantile(0.99) as f64 / 1000.0,
            self.errors,
            self.leader_cores + self.followers_cores,
            self.generator_cores,
            100.0 * self.machine_busy
        )
    }
}

/// Counters read at one edge of the measured window.
struct Reading {
    at: Instant,
    fsyncs: f64,
    fsync_seconds: f64,
    /// CPU seconds of each server, by position.
    server_cpu: Vec<f64>,
    /// CPU seconds of this process (the clients).
    generator_cpu: f64,
    machine_ticks: (u64, u64),
}

impl Reading {
    fn take(cluster: &Cluster, leader: usize) -> Reading {
        let at = Instant::now();
        let metrics = cluster.metrics(leader);
        let (count, sum) = cluster.side().fsync_metrics();
        let metric = |name: &str| {
            system::prometheus_value(&metrics, name).unwrap_or_else(|| {
                panic!(
                    "no {name} in the {} leader's /metrics",
                    cluster.side().name()
                )
            })
        };
        Reading {
            at,
            fsyncs: metric(count),
            fsync_seconds: metric(sum),
            server_cpu: cluster
                .servers()
                .iter()
                .map(ServerProcess::cpu_seconds)
                .collect(),
            generator_cpu: system::cpu_seconds("self"),
            machine_ticks: system::machine_ticks(),
        }
    }
}

/// One run: `clients` clients on `cluster`'s leader through a warm-up and the measured
/// window.
fn measure(cluster: &mut Cluster, clients: usize, plan: &Plan) -> Sample {
    let leader = cluster.leader();
    let ports = cluster.ports().to_vec();
    let measure_start = Instant::now() + plan.warm_up;
    let load = Arc::new(Load {
        first_port: ports[leader],
        ports,
        measure_start,
        measure_end: measure_start + plan.measured,
        request: cluster.request_builder(),
    });
    let running = generator::start(clients, Arc::clone(&load));
    system::sleep_until(load.measure_start);
    let before = Reading::take(cluster, leader);
    system::sleep_until(load.measure_end);
    let after = Reading::take(cluster, leader);
    let outcome = running.finish();
    let leader_after = cluster.leader();

    let seconds = (after.at - before.at).as_secs_f64();
    let cores =
        |position: usize| (after.server_cpu[position] - before.server_cpu[position]) / seconds;
    let followers_cores = (0..after.server_cpu.len())
        .filter(|position| *position != leader)
        .map(cores)
        .sum();
    Sample {
        writes_per_second: outcome.completed as f64 / plan.measured.as_secs_f64(),
        latencies: outcome.latencies,
        errors: outcome.errors,
        last_error: outcome.last_error,
        leader_cores: cores(leader),
        followers_cores,
        generator_cores: (after.generator_cpu - before.generator_cpu) / seconds,
        machine_busy: system::machine_busy(before.machine_ticks, after.machine_ticks),
        leader_fsyncs_per_second: (after.fsyncs - before.fsyncs) / seconds,
        leader_fsync_busy: (after.fsync_seconds - before.fsync_seconds) / seconds,
        leader_moved: outcome.redirects > 0 || leader_after != leader,
    }
}
