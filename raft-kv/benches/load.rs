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
//!   directory in a fresh temporary directory (`TMPDIR` chooses where);
//! - one cluster for the whole run; before each client count, the leader is looked up
//!   with `GET /status`;
//! - each client is a thread with one keep-alive HTTP/1.1 connection, written by hand over
//!   `TcpStream` so that the generator costs little CPU next to the servers: it loops
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
//! The servers are killed when the bench ends, panics included (a guard's `Drop`). On
//! Ctrl-C the terminal signals the whole process group, so the servers stop too.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tempfile::TempDir;

/// Bytes of every value written.
const VALUE_BYTES: usize = 128;
/// Keys each client cycles through: enough that writes are not all to one key, few
/// enough that the state machine (and its snapshots) stay small however long the run.
const KEYS_PER_CLIENT: u64 = 1024;
/// Nodes in the cluster.
const NODES: usize = 3;
/// How long the cluster may take to start or to elect a leader.
const PATIENCE: Duration = Duration::from_secs(30);
/// Longer than the servers' request timeout (5 s, answered with 504), so that a client
/// only times out on a server that stopped answering altogether.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histograms hold, in microseconds; longer ones are clamped.
const LATENCY_MAX_MICROS: u64 = 60_000_000;
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
    let mut cluster = Cluster::start(binary);
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

/// One `raft-kv` process.
struct Server {
    id: u64,
    http_port: u16,
    child: Child,
    log: PathBuf,
}

/// The three servers and their temporary directory. Dropping it kills the servers
/// (before the directory is removed: fields drop after `drop` runs).
struct Cluster {
    servers: Vec<Server>,
    directory: TempDir,
}

impl Cluster {
    /// Starts the servers and waits until each answers `GET /status`.
    fn start(binary: &Path) -> Cluster {
        let directory = tempfile::Builder::new()
            .prefix("raft-kv-load-")
            .tempdir()
            .expect("a temporary directory");
        let reserved = reserve_ports(2 * NODES);
        let ports: Vec<u16> = reserved.iter().map(port_of).collect();
        let cluster_flag = ports[..NODES]
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        // Released just before the servers bind them, leaving other processes the
        // shortest time to take them.
        drop(reserved);
        let mut cluster = Cluster {
            servers: Vec::new(),
            directory,
        };
        for position in 0..NODES {
            let id = position as u64 + 1;
            let http_port = ports[NODES + position];
            let log = cluster.directory.path().join(format!("node-{id}.log"));
            let child = Command::new(binary)
                .arg("--id")
                .arg(id.to_string())
                .arg("--cluster")
                .arg(&cluster_flag)
                .arg("--port")
                .arg(http_port.to_string())
                .arg("--data-dir")
                .arg(cluster.directory.path().join(format!("node-{id}")))
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&log).expect("the log file opens"))
                .spawn()
                .expect("raft-kv starts");
            cluster.servers.push(Server {
                id,
                http_port,
                child,
                log,
            });
        }
        for position in 0..NODES {
            cluster.wait_until(&format!("node {} serves HTTP", position + 1), |cluster| {
                get(cluster.servers[position].http_port, "/status").map(|_| ())
            });
        }
        cluster
    }

    /// Retries `attempt` every 50 ms for at most [`PATIENCE`]; panics (which kills the
    /// servers and prints their logs) if a server exits or time runs out.
    fn wait_until<T>(
        &mut self,
        what: &str,
        mut attempt: impl FnMut(&mut Cluster) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            for server in &mut self.servers {
                if let Ok(Some(status)) = server.child.try_wait() {
                    panic!("{what}: node {} exited with {status}", server.id);
                }
            }
            match attempt(self) {
                Ok(value) => return value,
                Err(last) if Instant::now() > deadline => {
                    panic!("{what}: not within {PATIENCE:?}; last: {last}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Waits until one server leads and the others name it; returns its position.
    fn leader(&mut self) -> usize {
        self.wait_until("an agreed leader", |cluster| {
            let mut leading = None;
            let mut named = Vec::new();
            for (position, server) in cluster.servers.iter().enumerate() {
                let reply = get(server.http_port, "/status")?;
                let document: serde_json::Value = serde_json::from_slice(&reply.body)
                    .map_err(|error| format!("node {}: /status: {error}", server.id))?;
                if document["role"] == "leader" {
                    leading = Some(position);
                }
                named.push(document["leader"].as_u64());
            }
            let position = leading.ok_or_else(|| format!("no leader; named: {named:?}"))?;
            let id = cluster.servers[position].id;
            if named.iter().all(|leader| *leader == Some(id)) {
                Ok(position)
            } else {
                Err(format!("node {id} leads; the others name {named:?}"))
            }
        })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        if std::thread::panicking() {
            for server in &self.servers {
                let mut log = String::new();
                if let Ok(mut file) = File::open(&server.log) {
                    let _ = file.read_to_string(&mut log);
                }
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                eprintln!("--- node {} (last {} lines) ---", server.id, tail.len());
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Free ports on 127.0.0.1, held by the listeners returned until they are dropped.
///
/// Drawn below the kernel's ephemeral range when it can be read: the kernel hands ports
/// of that range to every outgoing connection (the servers' peer connections included),
/// so a port taken from it could be reused by one before its server binds it.
fn reserve_ports(count: usize) -> Vec<TcpListener> {
    const LOWEST: u32 = 10_000;
    let mut listeners = Vec::new();
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|low| *low > LOWEST + 1000);
    if let Some(ephemeral_low) = ephemeral_low {
        let mut attempts = 0;
        while listeners.len() < count && attempts < 1000 {
            attempts += 1;
            let port = LOWEST + (random() % u64::from(ephemeral_low - LOWEST)) as u32;
            let Ok(port) = u16::try_from(port) else {
                break;
            };
            let taken = listeners.iter().any(|listener| port_of(listener) == port);
            if !taken && let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(listener);
            }
        }
    }
    while listeners.len() < count {
        listeners.push(TcpListener::bind("127.0.0.1:0").expect("a free port"));
    }
    listeners
}

fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().expect("bound").port()
}

/// A random number from the standard library's per-process hash keys and the clock.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}

/// The part of an HTTP response the bench looks at.
struct Reply {
    status: u16,
    location: Option<String>,
    /// The server will close the connection after this response.
    closes: bool,
    body: Vec<u8>,
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    port: u16,
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    received: Vec<u8>,
    /// The request being sent, reused so that a request costs no allocation.
    request: Vec<u8>,
}

impl Connection {
    fn open(port: u16) -> std::io::Result<Connection> {
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        // Without it, Nagle's algorithm can hold a request's body back behind its head
        // until the previous segment is acknowledged: tens of milliseconds of latency.
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Connection {
            port,
            stream,
            received: Vec::with_capacity(4096),
            request: Vec::with_capacity(512),
        })
    }

    /// Sends one request and reads its response.
    fn exchange(&mut self, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
        self.request.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.request,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        self.request.extend_from_slice(body);
        self.stream
            .write_all(&self.request)
            .map_err(|error| format!("send to :{}: {error}", self.port))?;
        self.read_reply()
            .map_err(|error| format!("{method} {target} on :{}: {error}", self.port))
    }

    fn read_reply(&mut self) -> Result<Reply, String> {
        let head_end = loop {
            if let Some(position) = find(&self.received, b"\r\n\r\n") {
                break position + 4;
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.received[..head_end])
            .map_err(|_| "a response head that is not UTF-8".to_string())?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let mut length = 0;
        let mut location = None;
        let mut closes = status_line.starts_with("HTTP/1.0");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?;
            } else if name.eq_ignore_ascii_case("location") {
                location = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("connection") {
                closes = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                // The server sends whole bodies with a length; this client reads no other.
                return Err(format!("unsupported Transfer-Encoding {value:?}"));
            }
        }
        while self.received.len() < head_end + length {
            self.fill()?;
        }
        let body = self.received[head_end..head_end + length].to_vec();
        self.received.drain(..head_end + length);
        Ok(Reply {
            status,
            location,
            closes,
            body,
        })
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err("the server closed the connection".to_string()),
            Ok(read) => {
                self.received.extend_from_slice(&chunk[..read]);
                Ok(())
            }
            Err(error) => Err(error.to_string()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// `GET target` on a fresh connection.
fn get(port: u16, target: &str) -> Result<Reply, String> {
    let mut connection =
        Connection::open(port).map_err(|error| format!("connect to :{port}: {error}"))?;
    let reply = connection.exchange("GET", target, b"")?;
    if reply.status == 200 {
        Ok(reply)
    } else {
        Err(format!(
            "GET {target} on :{port}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ))
    }
}

/// The port of a `Location` such as `http://127.0.0.1:PORT/key`.
fn location_port(location: &str) -> Option<u16> {
    let authority = location.split("://").nth(1)?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// What every client of one measurement shares.
struct Workload {
    /// Every server's HTTP port, for finding the leader again after an error.
    ports: Vec<u16>,
    leader_port: u16,
    value: Arc<Vec<u8>>,
    measure_start: Instant,
    measure_end: Instant,
}

/// What one client saw inside the measured window.
struct ClientOutcome {
    latencies: Histogram<u64>,
    completed: u64,
    errors: u64,
    redirects: u64,
    last_error: Option<String>,
}

fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3).expect("valid histogram bounds")
}

/// One client: PUT, wait for the answer, repeat, until the window ends.
fn run_client(client: usize, workload: &Workload) -> ClientOutcome {
    let mut outcome = ClientOutcome {
        latencies: latency_histogram(),
        completed: 0,
        errors: 0,
        redirects: 0,
        last_error: None,
    };
    let mut connection: Option<Connection> = None;
    let mut port = workload.leader_port;
    let mut sequence: u64 = 0;
    let mut target = String::with_capacity(32);
    while Instant::now() < workload.measure_end {
        target.clear();
        let _ = write!(target, "/load-{client}-{}", sequence % KEYS_PER_CLIENT);
        sequence += 1;
        let started = Instant::now();
        let result = put(&mut connection, &mut port, &target, &workload.value);
        let finished = Instant::now();
        let inside = finished >= workload.measure_start && finished < workload.measure_end;
        match result {
            Ok(redirected) => {
                if inside {
                    let micros =
                        u64::try_from((finished - started).as_micros()).unwrap_or(u64::MAX);
                    outcome.latencies.saturating_record(micros.max(1));
                    outcome.completed += 1;
                    outcome.redirects += u64::from(redirected);
                }
            }
            Err(error) => {
                if inside {
                    outcome.errors += 1;
                    outcome.last_error = Some(error);
                }
                // No leader, or this one stopped answering: try the next server after a
                // pause (a follower redirects to the leader once it knows it).
                connection = None;
                let next = workload
                    .ports
                    .iter()
                    .position(|candidate| *candidate == port)
                    .map_or(0, |position| (position + 1) % workload.ports.len());
                port = workload.ports[next];
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    outcome
}

/// PUTs `value` at `target` on `port`, following one redirect. Ok(true) when it was
/// redirected; `port` is then the new leader's.
fn put(
    connection: &mut Option<Connection>,
    port: &mut u16,
    target: &str,
    value: &[u8],
) -> Result<bool, String> {
    for attempt in 0..2 {
        if connection.as_ref().is_none_or(|open| open.port != *port) {
            *connection = Some(
                Connection::open(*port).map_err(|error| format!("connect to :{port}: {error}"))?,
            );
        }
        let open = connection.as_mut().expect("opened above");
        let reply = open.exchange("PUT", target, value);
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                *connection = None;
                return Err(error);
            }
        };
        if reply.closes {
            *connection = None;
        }
        match reply.status {
            204 => return Ok(attempt > 0),
            307 if attempt == 0 => {
                let location = reply.location.unwrap_or_default();
                *port = location_port(&location)
                    .ok_or_else(|| format!("a 307 with Location {location:?}"))?;
            }
            status => {
                return Err(format!(
                    "PUT {target} on :{port}: {status} {}",
                    String::from_utf8_lossy(&reply.body)
                ));
            }
        }
    }
    Err(format!("PUT {target}: redirected twice"))
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

fn snapshot(cluster: &Cluster, leader: usize) -> Snapshot {
    let at = Instant::now();
    let metrics = get(cluster.servers[leader].http_port, "/metrics")
        .map(|reply| String::from_utf8_lossy(&reply.body).into_owned())
        .unwrap_or_else(|error| panic!("the leader's metrics: {error}"));
    let metric = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|line| {
                let (line_name, value) = line.split_once(' ')?;
                (line_name == name).then(|| value.trim().parse().ok())?
            })
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
            .map(|server| cpu_seconds(&server.child.id().to_string()))
            .collect(),
        generator_cpu: cpu_seconds("self"),
        machine_ticks: machine_ticks(),
    }
}

/// Busy and total clock ticks of all processors since boot, from the first line of
/// `/proc/stat` (user nice system idle iowait irq softirq steal ...): idle and iowait
/// count as not busy. It shows whether the processors were saturated, other jobs on the
/// machine included; (0, 0) where unreadable.
fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|field| field.parse().ok())
        .collect();
    if ticks.len() < 5 {
        return (0, 0);
    }
    let total: u64 = ticks.iter().sum();
    (total - ticks[3] - ticks[4], total)
}

/// User plus system CPU time of a process, from `/proc/<pid>/stat`; 0 where that is
/// not readable (not Linux).
fn cpu_seconds(process: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{process}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; the fields after its closing
    // parenthesis start at field 3 (state), so utime (14) and stime (15) are the 12th
    // and 13th of them.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (ticks(11) + ticks(12)) as f64 / clock_ticks_per_second()
}

/// `getconf CLK_TCK` (the unit of `/proc/<pid>/stat` times), read once; 100 by default,
/// which is what Linux reports on every common architecture.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        command_output("getconf", &["CLK_TCK"])
            .and_then(|text| text.trim().parse().ok())
            .filter(|ticks: &f64| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

fn command_output(program: &str, arguments: &[&str]) -> Option<String> {
    let output = Command::new(program).args(arguments).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
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
fn measure(cluster: &mut Cluster, clients: usize, options: &Options, value: &Arc<Vec<u8>>) -> Row {
    let leader = cluster.leader();
    let leader_port = cluster.servers[leader].http_port;
    // One write before the clock starts: the leader may still be committing its first
    // entries (the entry of its term, its advertised URL).
    cluster.wait_until("a first write", |_| {
        let mut connection = None;
        let mut port = leader_port;
        put(&mut connection, &mut port, "/load-ready", value).map(|_| ())
    });
    let measure_start = Instant::now() + options.warm_up;
    let workload = Arc::new(Workload {
        ports: cluster
            .servers
            .iter()
            .map(|server| server.http_port)
            .collect(),
        leader_port,
        value: Arc::clone(value),
        measure_start,
        measure_end: measure_start + options.measured,
    });
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let workload = Arc::clone(&workload);
            std::thread::Builder::new()
                .name(format!("client-{client}"))
                // Clients keep little on their stacks; 64 of the default 2 MiB would be
                // reserved for nothing.
                .stack_size(256 * 1024)
                .spawn(move || run_client(client, &workload))
                .expect("a client thread starts")
        })
        .collect();
    sleep_until(workload.measure_start);
    let before = snapshot(cluster, leader);
    sleep_until(workload.measure_end);
    let after = snapshot(cluster, leader);
    let mut latencies = latency_histogram();
    let (mut completed, mut errors, mut redirects) = (0, 0, 0);
    let mut last_error = None;
    for thread in threads {
        let outcome = thread.join().expect("a client thread panicked");
        latencies
            .add(&outcome.latencies)
            .expect("histograms of equal bounds add up");
        completed += outcome.completed;
        errors += outcome.errors;
        redirects += outcome.redirects;
        last_error = outcome.last_error.or(last_error);
    }
    let mut notes = Vec::new();
    if let Some(error) = last_error {
        notes.push(format!("{errors} failed PUTs; the last: {error}"));
    }
    if redirects > 0 {
        notes.push(format!(
            "{redirects} PUTs were redirected (leadership moved)"
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
        completed,
        errors,
        window: options.measured,
        latencies,
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
        machine_busy: ratio_of(
            after.machine_ticks.0 - before.machine_ticks.0,
            after.machine_ticks.1 - before.machine_ticks.1,
        ),
        leader,
        notes,
    }
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

fn print_machine(cluster: &Cluster, binary: &Path, options: &Options) {
    let processors = std::thread::available_parallelism().map_or(0, |count| count.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let data_directory = cluster.directory.path();
    // The last line of `df -T`: device, type, sizes and mount point of the filesystem
    // the data directories are on (tmpfs would make every fsync free).
    let filesystem = command_output("df", &["-T", &data_directory.display().to_string()])
        .and_then(|text| text.lines().last().map(str::to_string))
        .unwrap_or_else(|| "unknown (df -T failed)".to_string());
    let time = command_output("date", &["+%Y-%m-%d %H:%M:%S %Z"])
        .map_or_else(|| "unknown".to_string(), |text| text.trim().to_string());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".to_string(), |text| text.trim().to_string());
    println!("# raft-kv load");
    println!();
    println!("- started: {time}; /proc/loadavg: {load}");
    println!("- machine: nproc {processors}, CPU {model}");
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
        std::thread::available_parallelism().map_or(0, |count| count.get())
    );
}

fn ratio_of(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator > 0.0 {
        format!("{:.2}", numerator / denominator)
    } else {
        "-".to_string()
    }
}
