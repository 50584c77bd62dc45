//! Helpers for tests that run real `raft-kv` processes: free ports, a tiny HTTP/1.1
//! client, and a cluster guard that kills its processes when dropped (and prints their
//! logs when a test fails). [`kv_client`] records client histories for the
//! linearizability checker.

#![allow(dead_code, unreachable_pub)]

pub mod kv_client;

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft_core::NodeId;
use raft_tokio::transport::codec::{Frame, Hello, PROTOCOL_VERSION, encode_frame};
use tempfile::TempDir;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_raft-kv");

/// How long a condition may take to come true.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Free ports on 127.0.0.1, reserved by the listeners returned: drop them just before
/// the ports are used, to leave other processes the shortest time to take them.
///
/// They are drawn below the kernel's ephemeral range when it can be read (Linux): the
/// kernel hands ports of that range to `bind(0)` and to every outgoing connection (the
/// nodes' peer connections included), so a port taken from it and released could be
/// reused by a connection of a concurrently running test before the node binds it. Each
/// process draws from its own slice of that space (by process id), so that test
/// processes running side by side (as under cargo-nextest) rarely meet.
pub fn reserve_ports(count: usize) -> Vec<TcpListener> {
    const LOWEST: u32 = 10_000;
    const SLICES: u32 = 64;
    let mut listeners: Vec<TcpListener> = Vec::new();
    if let Some(ephemeral_low) = ephemeral_range_low().filter(|low| *low > 20_000) {
        let width = (u32::from(ephemeral_low) - LOWEST) / SLICES;
        let slice_start = LOWEST + (std::process::id() % SLICES) * width;
        let mut attempts = 0;
        while listeners.len() < count && attempts < 1000 {
            attempts += 1;
            let offset = (random() % u64::from(width)) as u32;
            let Ok(port) = u16::try_from(slice_start + offset) else {
                break;
            };
            if claim(port)
                && let Ok(listener) = TcpListener::bind(("127.0.0.1", port))
            {
                listeners.push(listener);
            }
        }
    }
    while listeners.len() < count {
        listeners.push(TcpListener::bind("127.0.0.1:0").expect("a free port"));
    }
    listeners
}

/// A block of ports on 127.0.0.1, `base + offset` for each of `offsets`, all free and
/// reserved by the listeners returned (drop them just before use), drawn like
/// [`reserve_ports`] draws single ports.
pub fn reserve_port_block(offsets: &[u16]) -> (u16, Vec<TcpListener>) {
    const LOWEST: u32 = 10_000;
    const SLICES: u32 = 64;
    let span = u32::from(offsets.iter().copied().max().unwrap_or(0)) + 1;
    let (slice_start, width) = match ephemeral_range_low().filter(|low| *low > 20_000) {
        Some(ephemeral_low) => {
            let width = (u32::from(ephemeral_low) - LOWEST) / SLICES;
            (LOWEST + (std::process::id() % SLICES) * width, width)
        }
        None => (LOWEST, 20_000),
    };
    for _ in 0..1000 {
        let base = slice_start + (random() % u64::from(width.saturating_sub(span).max(1))) as u32;
        let Ok(base) = u16::try_from(base) else {
            continue;
        };
        let ports: Vec<u16> = offsets.iter().map(|offset| base + offset).collect();
        if ports.iter().any(|port| claimed(*port)) {
            continue;
        }
        let listeners: Vec<TcpListener> = ports
            .iter()
            .filter_map(|port| TcpListener::bind(("127.0.0.1", *port)).ok())
            .collect();
        if listeners.len() == ports.len() {
            for port in &ports {
                claim(*port);
            }
            return (base, listeners);
        }
    }
    panic!("no block of free ports found");
}

/// The port a listener of [`reserve_ports`] holds.
pub fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().expect("bound").port()
}

/// Free ports on 127.0.0.1, released at once.
pub fn free_ports(count: usize) -> Vec<u16> {
    reserve_ports(count).iter().map(port_of).collect()
}

/// Claims `port` for this process: false if it was claimed before. No two tests of one
/// process get the same port, even once a node released it (while it restarts, say).
fn claim(port: u16) -> bool {
    CLAIMED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(port)
}

/// The ports this process has handed out.
static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Whether `port` was claimed by this process.
fn claimed(port: u16) -> bool {
    CLAIMED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .contains(&port)
}

fn ephemeral_range_low() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

/// A random number from the standard library's per-process hash keys.
pub fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos()),
    );
    hasher.finish()
}

/// Retries `attempt` every 100 ms until it succeeds, for at most [`PATIENCE`].
pub fn eventually<T>(what: &str, mut attempt: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match attempt() {
            Ok(value) => return value,
            Err(last) => {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not within {PATIENCE:?}; last: {last}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.text()))
    }

    /// The `error` member of a JSON error body.
    pub fn error_message(&self) -> String {
        let document = self.json();
        document["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"error\" string in {document}"))
            .to_string()
    }
}

/// Sends raw bytes and returns everything the server answers before it closes.
pub fn raw(port: u16, request: &[u8]) -> std::io::Result<Vec<u8>> {
    raw_within(port, request, Duration::from_secs(30)).map_err(|failure| match failure {
        Failure::NotSent(error) | Failure::Lost(error) => error,
    })
}

/// Why an exchange failed: before anything was sent (the connection was refused), or
/// after (the request may have been acted on).
#[derive(Debug)]
pub enum Failure {
    /// Nothing was sent.
    NotSent(std::io::Error),
    /// The request may have arrived; no whole answer did.
    Lost(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotSent(error) => write!(formatter, "not sent: {error}"),
            Failure::Lost(error) => write!(formatter, "lost: {error}"),
        }
    }
}

/// [`raw`], waiting at most `patience` for each read and write.
pub fn raw_within(port: u16, request: &[u8], patience: Duration) -> Result<Vec<u8>, Failure> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).map_err(Failure::NotSent)?;
    stream
        .set_read_timeout(Some(patience))
        .map_err(Failure::NotSent)?;
    stream
        .set_write_timeout(Some(patience))
        .map_err(Failure::NotSent)?;
    // A server that answers before reading the whole body may close early; its answer is
    // still worth reading.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(Failure::Lost)?;
    Ok(answer)
}

/// One HTTP/1.1 request on a fresh connection, waiting at most `patience` for the answer.
pub fn send(
    port: u16,
    method: &str,
    target: &str,
    body: &[u8],
    patience: Duration,
) -> Result<Reply, Failure> {
    send_with_headers(port, method, target, &[], body, patience)
}

/// [`send`], with extra headers.
pub fn send_with_headers(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
    patience: Duration,
) -> Result<Reply, Failure> {
    let answer = raw_within(
        port,
        &request_bytes(port, method, target, headers, body),
        patience,
    )?;
    parse_reply(&answer).ok_or_else(|| {
        Failure::Lost(std::io::Error::other(format!(
            "unparsable answer {:?}",
            String::from_utf8_lossy(&answer)
        )))
    })
}

fn request_bytes(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let mut bytes = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The value of the Prometheus metric `name` (without labels) on the node at `port`.
pub fn metric(port: u16, name: &str) -> Result<u64, String> {
    let reply = get(port, "/metrics")?;
    reply
        .text()
        .lines()
        .find_map(|line| {
            let (metric, value) = line.split_once(' ')?;
            (metric == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .map(|value| value as u64)
        .ok_or_else(|| format!("no metric {name} on :{port}"))
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(port: u16, method: &str, target: &str, body: &[u8]) -> Result<Reply, String> {
    let bytes = request_bytes(port, method, target, &[], body);
    let answer =
        raw(port, &bytes).map_err(|error| format!("{method} {target} on :{port}: {error}"))?;
    parse_reply(&answer).ok_or_else(|| {
        format!(
            "{method} {target} on :{port}: unparsable answer {:?}",
            String::from_utf8_lossy(&answer)
        )
    })
}

fn parse_reply(answer: &[u8]) -> Option<Reply> {
    let split = answer.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = answer[split + 4..].to_vec();
    if let Some((_, length)) = headers.iter().find(|(name, _)| name == "content-length") {
        body.truncate(length.parse().ok()?);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// `GET target`.
pub fn get(port: u16, target: &str) -> Result<Reply, String> {
    request(port, "GET", target, b"")
}

/// The port in a `Location` of the form `http://127.0.0.1:PORT/...`, and the target.
pub fn split_location(location: &str) -> (u16, String) {
    let rest = location
        .strip_prefix("http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected Location {location:?}"));
    let slash = rest.find('/').unwrap_or(rest.len());
    let port = rest[..slash]
        .parse()
        .unwrap_or_else(|_| panic!("no port in Location {location:?}"));
    (port, rest[slash..].to_string())
}

/// The counter of peer connections a node closed for a bad handshake or frame.
pub const REJECTED: &str = "raft_connections_rejected_total";

/// The accepting side gives a peer this long to complete its handshake; a connection the
/// node closes sooner was closed for what it sent.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `bytes` to the peer port and waits for the node to close the connection;
/// returns how long that took. Panics if it stays open past the handshake timeout.
pub fn closed_after(port: u16, bytes: &[u8]) -> Duration {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).expect("the peer port");
    stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT + Duration::from_secs(2)))
        .expect("a read timeout");
    let sent = Instant::now();
    // The node may close before reading everything; what matters is that it closes.
    let _ = stream.write_all(bytes);
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("the connection was not closed: {error}"),
    }
    sent.elapsed()
}

/// A handshake frame.
pub fn hello(cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    let mut buffer = Vec::new();
    encode_frame(
        &Frame::Hello(Hello {
            version: PROTOCOL_VERSION,
            cluster_id,
            from: NodeId(from),
            to: NodeId(to),
        }),
        &mut buffer,
    )
    .expect("a handshake encodes");
    buffer
}

/// One `raft-kv` process and the flags that start it again.
pub struct Node {
    /// The node id.
    pub id: u64,
    /// Its HTTP port.
    pub http_port: u16,
    /// Its raft port.
    pub raft_port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where its stderr goes (appended across restarts).
    pub log: PathBuf,
    /// The `--cluster` value.
    pub cluster: String,
    /// Whether it starts with `--join`.
    pub join: bool,
    /// Flags for every start.
    pub extra: Vec<String>,
    /// The open file limit (soft and hard) it starts under, when set.
    pub descriptor_limit: Option<u64>,
    /// The file size limit it starts under, in the shell's `ulimit -f` blocks (512 bytes
    /// for a POSIX shell), if any: how a full disk is reproduced.
    pub file_size_limit_blocks: Option<u64>,
    /// The running process.
    pub child: Option<Child>,
    /// Listeners holding its ports until it first starts.
    pub reserved: Vec<TcpListener>,
}

impl Node {
    /// Starts the process (again) and waits until it serves HTTP (or exits).
    pub fn start(&mut self) {
        // One start at a time in this process, each until the node has bound its ports: a
        // child forked meanwhile by another test would hold copies of the sockets that
        // reserve this node's ports (until it execs), and the node could not bind them.
        static STARTING: Mutex<()> = Mutex::new(());
        let _starting = STARTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        assert!(self.child.is_none(), "node {} is running", self.id);
        self.reserved.clear();
        self.child = Some(self.command().spawn().expect("raft-kv starts"));
        // `/status` answers once the raft node has started, so both ports are bound.
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline && self.running() && get(self.http_port, "/status").is_err()
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The command that starts this node, its stderr appended to its log.
    pub fn command(&self) -> Command {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the log file opens");
        let mut limits = Vec::new();
        if let Some(limit) = self.descriptor_limit {
            limits.push(format!("ulimit -n {limit}"));
        }
        if let Some(blocks) = self.file_size_limit_blocks {
            limits.push(format!("ulimit -f {blocks}"));
        }
        let mut command = if limits.is_empty() {
            Command::new(BINARY)
        } else {
            // The shell sets the limits and replaces itself with the node, which keeps the
            // shell's process id.
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(format!("{} && exec \"$0\" \"$@\"", limits.join(" && ")))
                .arg(BINARY);
            shell
        };
        command
            .arg("--id")
            .arg(self.id.to_string())
            .arg("--cluster")
            .arg(&self.cluster)
            .arg("--port")
            .arg(self.http_port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--cluster-id")
            .arg("7")
            .arg("--tick-ms")
            .arg("20")
            .args(&self.extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if self.join {
            command.arg("--join");
        }
        command
    }

    /// Starts the process, expecting it to refuse to run: waits for it to exit (at most
    /// [`PATIENCE`]) and returns its status.
    pub fn start_refused(&mut self) -> ExitStatus {
        assert!(self.child.is_none(), "node {} is running", self.id);
        self.reserved.clear();
        let child = self.command().spawn().expect("raft-kv starts");
        exit_status(child)
            .unwrap_or_else(|| panic!("node {} kept running where it should refuse to", self.id))
    }

    /// SIGKILLs the process and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs the process and waits (at most [`PATIENCE`]) for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let child = self.child.take().expect("the node runs");
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -TERM failed");
        exit_status(child).unwrap_or_else(|| {
            panic!(
                "node {} did not exit within {PATIENCE:?} of SIGTERM",
                self.id
            )
        })
    }

    /// Sends the process `signal` (`STOP`, `CONT`...).
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the node runs");
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// How many lines of its log contain `text`.
    pub fn log_lines_with(&self, text: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(text))
            .count()
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => {
                let alive = child.try_wait().expect("waitable").is_none();
                if !alive {
                    self.child = None;
                }
                alive
            }
            None => false,
        }
    }
}

/// Waits at most [`PATIENCE`] for `child` to exit; `None` (after killing it) if it did not.
fn exit_status(mut child: Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Processes of one cluster in a temporary directory; dropping it kills them.
pub struct Cluster {
    /// Holds the data directories and logs.
    pub directory: TempDir,
    /// The nodes, node i at position i - 1.
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `size` nodes, not started. The cluster flag mixes `http://host:port` and
    /// `host:port`, both of which raft-kv accepts.
    pub fn new(size: usize, extra: &[&str]) -> Cluster {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let mut reserved = reserve_ports(2 * size);
        let ports: Vec<u16> = reserved.iter().map(port_of).collect();
        let cluster = cluster_flag(&ports[..size]);
        let http_listeners = reserved.split_off(size);
        let nodes = reserved
            .into_iter()
            .zip(http_listeners)
            .enumerate()
            .map(|(position, (raft_listener, http_listener))| {
                let id = position as u64 + 1;
                Node {
                    id,
                    http_port: ports[size + position],
                    raft_port: ports[position],
                    data_dir: directory.path().join(format!("node-{id}")),
                    log: directory.path().join(format!("node-{id}.log")),
                    cluster: cluster.clone(),
                    join: false,
                    extra: extra.iter().map(|flag| flag.to_string()).collect(),
                    descriptor_limit: None,
                    file_size_limit_blocks: None,
                    child: None,
                    reserved: vec![raft_listener, http_listener],
                }
            })
            .collect();
        Cluster { directory, nodes }
    }

    /// Starts every node.
    pub fn start_all(&mut self) {
        for node in &mut self.nodes {
            node.start();
        }
    }

    /// Adds (without starting) one more node, with `--join` and every raft address.
    pub fn add_joining_node(&mut self) -> usize {
        let reserved = reserve_ports(2);
        let ports: Vec<u16> = reserved.iter().map(port_of).collect();
        let id = self.nodes.len() as u64 + 1;
        let mut raft_ports: Vec<u16> = self.nodes.iter().map(|node| node.raft_port).collect();
        raft_ports.push(ports[0]);
        let extra = self.nodes[0].extra.clone();
        self.nodes.push(Node {
            id,
            http_port: ports[1],
            raft_port: ports[0],
            data_dir: self.directory.path().join(format!("node-{id}")),
            log: self.directory.path().join(format!("node-{id}.log")),
            cluster: cluster_flag(&raft_ports),
            join: true,
            extra,
            descriptor_limit: None,
            file_size_limit_blocks: None,
            child: None,
            reserved,
        });
        self.nodes.len() - 1
    }

    /// Waits until a running node leads and every running node names it; returns its
    /// position.
    pub fn leader(&mut self) -> usize {
        eventually("an agreed leader", || {
            let mut leaders = Vec::new();
            let mut leading = None;
            for (position, node) in self.nodes.iter_mut().enumerate() {
                if !node.running() {
                    continue;
                }
                let status = get(node.http_port, "/status")?;
                if status.status != 200 {
                    return Err(format!("node {}: status {}", node.id, status.status));
                }
                let document = status.json();
                if document["role"] == "leader" {
                    leading = Some(position);
                }
                leaders.push(document["leader"].as_u64());
            }
            let position =
                leading.ok_or_else(|| format!("no leader; leaders named: {leaders:?}"))?;
            let id = self.nodes[position].id;
            if leaders.iter().all(|leader| *leader == Some(id)) {
                Ok(position)
            } else {
                Err(format!("node {id} leads, but the others name {leaders:?}"))
            }
        })
    }

    /// Sends a write to the node at `position`, following redirects and retrying while
    /// the cluster has no usable leader, until it succeeds (2xx); returns that reply.
    pub fn write(&self, position: usize, method: &str, target: &str, body: &[u8]) -> Reply {
        let first_port = self.nodes[position].http_port;
        eventually(&format!("{method} {target}"), || {
            let mut port = first_port;
            let mut target = target.to_string();
            for _ in 0..5 {
                let reply = request(port, method, &target, body)?;
                match reply.status {
                    200..=299 => return Ok(reply),
                    307 => {
                        let location = reply
                            .header("location")
                            .ok_or("a 307 without Location")?
                            .to_string();
                        (port, target) = split_location(&location);
                    }
                    503 | 504 => return Err(format!("{}: {}", reply.status, reply.text())),
                    status => panic!("{method} {target}: unexpected {status}: {}", reply.text()),
                }
            }
            Err("too many redirects".to_string())
        })
    }

    /// Waits until node `position` answers `GET target` with 200 and `expected`.
    pub fn expect_value(&self, position: usize, target: &str, expected: &str) {
        let port = self.nodes[position].http_port;
        eventually(&format!("GET {target} on node {}", position + 1), || {
            let reply = get(port, target)?;
            if reply.status == 200 && reply.text() == expected {
                Ok(())
            } else {
                Err(format!("{}: {}", reply.status, reply.text()))
            }
        });
    }
}

fn cluster_flag(raft_ports: &[u16]) -> String {
    raft_ports
        .iter()
        .enumerate()
        .map(|(position, port)| {
            if position % 2 == 0 {
                format!("http://127.0.0.1:{port}")
            } else {
                format!("127.0.0.1:{port}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::thread::panicking() {
            for node in &self.nodes {
                let mut log = String::new();
                if let Ok(mut file) = File::open(&node.log) {
                    let _ = file.read_to_string(&mut log);
                }
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(60)..];
                eprintln!("--- node {} (last {} lines) ---", node.id, tail.len());
                for line in tail {
                    eprintln!("{line}");
                }
            }
        }
    }
}
