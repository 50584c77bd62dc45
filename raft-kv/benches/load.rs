//! Load generator: a local three-node `raft-kv` cluster driven over HTTP by concurrent
//! clients.
//!
//! ```text
//! cargo bench -p raft-kv --bench load -- [--quick] [--clients 1,16,64] [--seconds N] [--warm-up N]
//! ```
//!
//! The workload:
//!
//! - three `raft-kv` processes (the release binary that `cargo bench` builds next to this
//!   one) on 127.0.0.1, default flags (100 ms ticks, real fsync), each with a data
//!   directory in a fresh temporary directory (`TMPDIR` chooses where), started by
//!   `load/raft_kv_cluster.rs`;
//! - one cluster for the whole run; before each client count, the leader is looked up
//!   with `GET /status`;
//! - each client is a thread with one keep-alive HTTP/1.1 connection, written by hand over
//!   `TcpStream` so that the generator costs little CPU next to the servers
//!   (`load/generator.rs`, which `compare/server` shares to drive etcd): it loops
//!   `PUT /load-<client>-<n>` with a 128-byte value (n cycles through 1024 keys so that
//!   the state stays small) and waits for the 204. Requests go to the leader; a 307 is
//!   followed once, when leadership moved;
//! - a warm-up (2 s; 1 s with `--quick`), then a measured window (10 s; 3 s with
//!   `--quick`; `--seconds` overrides it). A PUT counts if its 204 arrives inside the
//!   window; its latency goes to an HDR histogram (microseconds, 3 significant digits).
//!
//! Around the window the bench reads the leader's `GET /metrics` (fsyncs and core writes
//! made durable, to show group commit) and the CPU time of the three servers and of
//! itself from `/proc/<pid>/stat`: whether throughput is limited by the disk's fsyncs or
//! by the two cores shows there. It prints a markdown table and the machine (nproc, CPU
//! model, the data directory's filesystem).
//!
//! The servers are killed when the bench ends, panics included (a guard's `Drop`), and
//! stop by themselves when their standard input, a pipe from the bench, closes.
#![forbid(unsafe_code)]

// The client loop, the cluster and the /proc helpers are shared, as source, with
// `compare/server`, which drives etcd with the same clients.
#[path = "load/generator.rs"]
mod generator;
#[path = "load/raft_kv_cluster.rs"]
mod raft_kv_cluster;
#[path = "load/system.rs"]
mod system;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use generator::Load;
use raft_kv_cluster::{RaftKvCluster, put_request};
use system::ServerProcess;

/// Bytes of every value written.
const VALUE_BYTES: usize = 128;
/// Exit code for bad arguments or a missing server binary.
const EXIT_USAGE: u8 = 2;

const USAGE: &str = "usage: cargo bench -p raft-kv --bench load -- [--quick] [--clients 1,16,64] [--seconds N] [--warm-up N]";

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Some(binary) = server_binary() else {
        eprintln!(
            "error: the release raft-kv binary is missing next to this bench executable.\n\
             Build it with `cargo build --release -p raft-kv` (or run the bench through \
             `cargo bench -p raft-kv --bench load`, which builds it)."
        );
        return ExitCode::from(EXIT_USAGE);
    };
    run(&options, &binary);
    ExitCode::SUCCESS
}

/// What to measure.
struct Options {
    client_counts: Vec<usize>,
    warm_up: Duration,
    measured: Duration,
}

impl Options {
    fn parse(arguments: impl Iterator<Item = String>) -> Result<Options, String> {
        let mut quick = false;
        let mut client_counts = vec![1, 16, 64];
        let mut seconds = None;
        let mut warm_up_seconds = None;
        let mut arguments = arguments.peekable();
        while let Some(argument) = arguments.next() {
            let mut value = |name: &str| {
                arguments
                    .next()
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match argument.as_str() {
                // `cargo bench` passes `--bench` to every bench binary without a harness.
                "--bench" => {}
                "--quick" => quick = true,
                "--clients" => {
                    client_counts = value("--clients")?
                        .split(',')
                        .map(|count| match count.trim().parse::<usize>() {
                            Ok(count) if count > 0 => Ok(count),
                            _ => Err(format!("{count:?} is not a positive client count")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--seconds" => seconds = Some(parse_seconds("--seconds", &value("--seconds")?)?),
                "--warm-up" => {
                    warm_up_seconds = Some(parse_seconds("--warm-up", &value("--warm-up")?)?);
                }
                "--help" | "-h" => return Err("help requested".to_string()),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let (default_warm_up, default_measured) = if quick { (1.0, 3.0) } else { (2.0, 10.0) };
        let measured = seconds.unwrap_or(default_measured);
        if measured <= 0.0 {
            return Err("--seconds must be positive".to_string());
        }
        Ok(Options {
            client_counts,
            warm_up: Duration::from_secs_f64(warm_up_seconds.unwrap_or(default_warm_up)),
            measured: Duration::from_secs_f64(measured),
        })
    }
}

fn parse_seconds(name: &str, text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        _ => Err(format!("{name}: {text:?} is not a number of seconds")),
    }
}

/// The release `raft-kv` binary: `cargo bench` builds the package's binaries with the
/// bench profile into the same directory as this executable's `deps/` parent
/// (`target/release/deps/load-HASH` → `target/release/raft-kv`). The path cargo passed at
/// compile time is the fallback, for an executable copied elsewhere.
fn server_binary() -> Option<PathBuf> {
    let name = format!("raft-kv{}", std::env::consts::EXE_SUFFIX);
    let beside = std::env::current_exe()
        .ok()
        .and_then(|executable| Some(executable.parent()?.parent()?.join(&name)));
    let from_cargo = option_env!("CARGO_BIN_EXE_raft-kv").map(PathBuf::from);
    [beside, from_cargo]
        .into_iter()
        .flatten()
        .find(|candidate| candidate.is_file())
}

fn run(options: &Options, binary: &Path) {
    let mut cluster = RaftKvCluster::start(binary);
    print_machine(&cluster, binary, options);
    let value = Arc::new(vec![b'v'; VALUE_BYTES]);
    let mut rows = Vec::new();
    for &clients in &options.client_counts {
        eprintln!(
            "{clients} client(s): {:?} warm-up, {:?} measured",
            options.warm_up, options.measured
        );
        let row = measure(&mut cluster, clients, options, &value);
        eprintln!("  {}", row.summary());
        rows.push(row);
    }
    println!();
    print_table(&rows);
    for row in &rows {
        for note in &row.notes {
            println!("- {} client(s): {note}", row.clients);
        }
    }
}

/// Counters read at one edge of the measured window.
struct Snapshot {
    at: Instant,
    fsyncs: u64,
    fsync_seconds: f64,
    core_writes: u64,
    /// CPU seconds of each server, by position.
    server_cpu: Vec<f64>,
    /// CPU seconds of this process (the clients).
    generator_cpu: f64,
    /// The whole machine's CPU time, from `/proc/stat`: (busy, total) clock ticks.
    machine_ticks: (u64, u64),
}

fn snapshot(cluster: &RaftKvCluster, leader: usize) -> Snapshot {
    let at = Instant::now();
    let metrics = cluster.metrics(leader);
    let metric = |name: &str| -> f64 {
        system::prometheus_value(&metrics, name)
            .unwrap_or_else(|| panic!("no {name} in the leader's /metrics"))
    };
    Snapshot {
        at,
        fsyncs: metric("raft_fsync_seconds_count") as u64,
        fsync_seconds: metric("raft_fsync_seconds_sum"),
        core_writes: metric("raft_writes_total") as u64,
        server_cpu: cluster
            .servers
            .iter()
            .map(ServerProcess::cpu_seconds)
            .collect(),
        generator_cpu: system::cpu_seconds("self"),
        machine_ticks: system::machine_ticks(),
    }
}

/// One line of the table.
struct Row {
    clients: usize,
    completed: u64,
    errors: u64,
    window: Duration,
    latencies: Histogram<u64>,
    fsyncs: u64,
    fsync_seconds: f64,
    core_writes: u64,
    /// Time between the two snapshots, the denominator of fsync and CPU rates.
    snapshot_seconds: f64,
    server_cpu: Vec<f64>,
    generator_cpu: f64,
    /// Share of all processors' time that was busy, by anything on the machine.
    machine_busy: f64,
    leader: usize,
    notes: Vec<String>,
}

impl Row {
    fn writes_per_second(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }

    fn fsyncs_per_second(&self) -> f64 {
        self.fsyncs as f64 / self.snapshot_seconds
    }

    fn percentile_millis(&self, quantile: f64) -> f64 {
        self.latencies.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn summary(&self) -> String {
        format!(
            "{:.0} writes/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            self.writes_per_second(),
            self.percentile_millis(0.5),
            self.percentile_millis(0.99),
            self.errors
        )
    }
}

/// Runs `clients` clients through a warm-up and the measured window.
fn measure(
    cluster: &mut RaftKvCluster,
    clients: usize,
    options: &Options,
    value: &Arc<Vec<u8>>,
) -> Row {
    let leader = cluster.leader();
    let leader_port = cluster.http_ports[leader];
    let measure_start = Instant::now() + options.warm_up;
    let request_value = Arc::clone(value);
    let load = Arc::new(Load {
        first_port: leader_port,
        ports: cluster.http_ports.clone(),
        measure_start,
        measure_end: measure_start + options.measured,
        request: Box::new(move |client, sequence, request| {
            put_request(&request_value, client, sequence, request);
        }),
    });
    let running = generator::start(clients, Arc::clone(&load));
    system::sleep_until(load.measure_start);
    let before = snapshot(cluster, leader);
    system::sleep_until(load.measure_end);
    let after = snapshot(cluster, leader);
    let outcome = running.finish();
    let mut notes = Vec::new();
    if let Some(error) = &outcome.last_error {
        notes.push(format!("{} failed PUTs; the last: {error}", outcome.errors));
    }
    if outcome.redirects > 0 {
        notes.push(format!(
            "{} PUTs were redirected (leadership moved)",
            outcome.redirects
        ));
    }
    let leader_after = cluster.leader();
    if leader_after != leader {
        notes.push(format!(
            "leadership moved from node {} to node {} during the run: the fsync numbers are node {}'s",
            leader + 1,
            leader_after + 1,
            leader + 1
        ));
    }
    Row {
        clients,
        completed: outcome.completed,
        errors: outcome.errors,
        window: options.measured,
        latencies: outcome.latencies,
        fsyncs: after.fsyncs - before.fsyncs,
        fsync_seconds: after.fsync_seconds - before.fsync_seconds,
        core_writes: after.core_writes - before.core_writes,
        snapshot_seconds: (after.at - before.at).as_secs_f64(),
        server_cpu: after
            .server_cpu
            .iter()
            .zip(&before.server_cpu)
            .map(|(after, before)| after - before)
            .collect(),
        generator_cpu: after.generator_cpu - before.generator_cpu,
        machine_busy: system::machine_busy(before.machine_ticks, after.machine_ticks),
        leader,
        notes,
    }
}

fn print_machine(cluster: &RaftKvCluster, binary: &Path, options: &Options) {
    let data_directory = cluster.directory();
    // The last line of `df -T`: device, type, sizes and mount point of the filesystem
    // the data directories are on (tmpfs would make every fsync free).
    let filesystem = system::command_output("df", &["-T", &data_directory.display().to_string()])
        .and_then(|text| text.lines().last().map(str::to_string))
        .unwrap_or_else(|| "unknown (df -T failed)".to_string());
    let time = system::command_output("date", &["+%Y-%m-%d %H:%M:%S %Z"])
        .map_or_else(|| "unknown".to_string(), |text| text.trim().to_string());
    println!("# raft-kv load");
    println!();
    println!(
        "- started: {time}; load average: {}",
        system::load_average()
    );
    println!(
        "- machine: nproc {}, CPU {}",
        system::processors(),
        system::cpu_model()
    );
    println!(
        "- data directory {}: `{filesystem}`",
        data_directory.display()
    );
    println!("- server: {}", binary.display());
    println!(
        "- workload: 3 nodes on 127.0.0.1, PUT of {VALUE_BYTES}-byte values to the leader, \
         one keep-alive connection per client; {:.0} s warm-up, {:.0} s measured per client count",
        options.warm_up.as_secs_f64(),
        options.measured.as_secs_f64()
    );
}

fn print_table(rows: &[Row]) {
    println!(
        "| clients | writes/s | p50 ms | p99 ms | p99.9 ms | errors | leader fsyncs/s | \
         writes/fsync | PUTs/fsync | fsync ms (mean) | leader storage busy | leader CPU | \
         followers CPU | generator CPU | machine CPU busy |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let writes_per_fsync = ratio(row.core_writes as f64, row.fsyncs as f64);
        let puts_per_fsync = ratio(row.writes_per_second(), row.fsyncs_per_second());
        let fsync_millis = ratio(row.fsync_seconds * 1000.0, row.fsyncs as f64);
        // Time the leader's storage thread spent committing: near 100%, fsyncs are the
        // bottleneck (the thread commits one batch at a time).
        let storage_busy = format!("{:.0}%", 100.0 * row.fsync_seconds / row.snapshot_seconds);
        let share = |seconds: f64| format!("{:.0}%", 100.0 * seconds / row.snapshot_seconds);
        let followers = row
            .server_cpu
            .iter()
            .enumerate()
            .filter(|(position, _)| *position != row.leader)
            .map(|(_, seconds)| share(*seconds))
            .collect::<Vec<_>>()
            .join(" + ");
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.0}% |",
            row.clients,
            row.writes_per_second(),
            row.percentile_millis(0.5),
            row.percentile_millis(0.99),
            row.percentile_millis(0.999),
            row.errors,
            row.fsyncs_per_second(),
            writes_per_fsync,
            puts_per_fsync,
            fsync_millis,
            storage_busy,
            share(row.server_cpu[row.leader]),
            followers,
            share(row.generator_cpu),
            100.0 * row.machine_busy,
        );
    }
    println!();
    println!(
        "Process CPU: share of one core over the window (100% = one of the {} cores busy); \
         machine CPU busy: share of all cores, other jobs included (/proc/stat). \
         writes/fsync: the leader's raft_writes_total per raft_fsync_seconds_count (core \
         writes, each possibly several entries); PUTs/fsync: client PUTs per leader fsync; \
         leader storage busy: raft_fsync_seconds_sum per second of wall time.",
        system::processors()
    );
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}", numerator / denominator)
    } else {
        "-".to_string()
    }
}
