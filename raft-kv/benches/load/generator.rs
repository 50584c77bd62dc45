//! The load generator: HTTP/1.1 clients, each a thread with one keep-alive connection,
//! looping on one write at a time until a measured window ends.
//!
//! It is shared, as source, by raft-kv's load bench (`benches/load.rs`) and by
//! `compare/server` (which includes this file with `#[path]`), so that raft-kv and the
//! servers it is compared with are driven by the very same client code. It needs only
//! the standard library and `hdrhistogram`.
//!
//! The client is written by hand over `TcpStream` rather than with an HTTP library so
//! that it costs little CPU next to the servers it measures, which share the machine with
//! it: a request is formatted into a reused buffer and costs no allocation.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Longer than any server's own request timeout (raft-kv answers 504 after 5 s), so that
/// a client only times out on a server that stopped answering altogether.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Highest latency the histograms hold, in microseconds; longer ones are clamped.
const LATENCY_MAX_MICROS: u64 = 60_000_000;

/// How long a client waits before it tries the next server after a failed request.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A histogram of latencies in microseconds, 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_MICROS, 3).expect("valid histogram bounds")
}

/// One request as a client sends it. The load's request builder fills it in place, so
/// that its buffers are reused from one request to the next.
pub(crate) struct Request {
    /// `PUT`, `POST`...
    pub(crate) method: &'static str,
    /// The path and query.
    pub(crate) target: String,
    /// The `Content-Type` header, when one is needed.
    pub(crate) content_type: Option<&'static str>,
    /// The body.
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// A request with `method`, an empty target and no body.
    pub(crate) fn new(method: &'static str) -> Request {
        Request {
            method,
            target: String::with_capacity(64),
            content_type: None,
            body: Vec::with_capacity(512),
        }
    }
}

/// The part of an HTTP response the clients look at.
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// The `Location` header, when there is one.
    pub(crate) location: Option<String>,
    /// The server will close the connection after this response.
    pub(crate) closes: bool,
    /// The whole body.
    pub(crate) body: Vec<u8>,
}

/// One keep-alive HTTP/1.1 connection to a server on 127.0.0.1.
pub(crate) struct Connection {
    port: u16,
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    received: Vec<u8>,
    /// The request being sent, reused so that a request costs no allocation.
    sending: Vec<u8>,
}

impl Connection {
    /// Connects to `port` on 127.0.0.1.
    pub(crate) fn open(port: u16) -> std::io::Result<Connection> {
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
            sending: Vec::with_capacity(1024),
        })
    }

    /// Sends one request and reads its response.
    pub(crate) fn exchange(
        &mut self,
        method: &str,
        target: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Reply, String> {
        self.sending.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            self.sending,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        if let Some(content_type) = content_type {
            let _ = write!(self.sending, "Content-Type: {content_type}\r\n");
        }
        let _ = write!(self.sending, "Content-Length: {}\r\n\r\n", body.len());
        self.sending.extend_from_slice(body);
        self.stream
            .write_all(&self.sending)
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
        let mut chunked = false;
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
                // Servers stream long bodies (etcd's /metrics) in chunks; no other
                // coding is asked for, so no other may come.
                if !value.eq_ignore_ascii_case("chunked") {
                    return Err(format!("unsupported Transfer-Encoding {value:?}"));
                }
                chunked = true;
            }
        }
        let (body, end) = if chunked {
            self.read_chunks(head_end)?
        } else {
            while self.received.len() < head_end + length {
                self.fill()?;
            }
            (
                self.received[head_end..head_end + length].to_vec(),
                head_end + length,
            )
        };
        self.received.drain(..end);
        Ok(Reply {
            status,
            location,
            closes,
            body,
        })
    }

    /// Reads a chunked body starting at `position` of the received bytes; returns it and
    /// the position after its end.
    fn read_chunks(&mut self, mut position: usize) -> Result<(Vec<u8>, usize), String> {
        let mut body = Vec::new();
        loop {
            let line_end = self.line_end(position)?;
            let line = std::str::from_utf8(&self.received[position..line_end]).unwrap_or("");
            // A size may be followed by extensions after a semicolon.
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size {line:?}"))?;
            position = line_end + 2;
            if size == 0 {
                // Trailer fields, if any, end with an empty line.
                loop {
                    let line_end = self.line_end(position)?;
                    let empty = line_end == position;
                    position = line_end + 2;
                    if empty {
                        return Ok((body, position));
                    }
                }
            }
            while self.received.len() < position + size + 2 {
                self.fill()?;
            }
            body.extend_from_slice(&self.received[position..position + size]);
            position += size + 2;
        }
    }

    /// The position of the next CRLF at or after `position`, reading until one comes.
    fn line_end(&mut self, position: usize) -> Result<usize, String> {
        loop {
            if let Some(offset) = find(&self.received[position..], b"\r\n") {
                return Ok(position + offset);
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err("the server closed the connection".to_string()),
            Ok(read) => {
                self.received.extend_from_slice(&chunk[..read]);
                Ok(())
            }
            // A signal arrived before any byte did: nothing was lost, read again.
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// One request on a fresh connection; a reply other than 2xx is an error.
pub(crate) fn request_once(
    port: u16,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Reply, String> {
    let mut connection =
        Connection::open(port).map_err(|error| format!("connect to :{port}: {error}"))?;
    let reply = connection.exchange(method, target, content_type, body)?;
    if (200..300).contains(&reply.status) {
        Ok(reply)
    } else {
        Err(format!(
            "{method} {target} on :{port}: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ))
    }
}

/// `GET target` on a fresh connection; a reply other than 2xx is an error.
pub(crate) fn get(port: u16, target: &str) -> Result<Reply, String> {
    request_once(port, "GET", target, None, b"")
}

/// The port of a `Location` such as `http://127.0.0.1:PORT/key`.
fn location_port(location: &str) -> Option<u16> {
    let authority = location.split("://").nth(1)?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

/// Sends `request` on `connection` (opened to `port` when it is not), following one 307
/// or 308 redirect. Ok(true) when it was redirected; `port` is then the server's that
/// answered. A reply other than 2xx is an error.
pub(crate) fn send(
    connection: &mut Option<Connection>,
    port: &mut u16,
    request: &Request,
) -> Result<bool, String> {
    for attempt in 0..2 {
        if connection.as_ref().is_none_or(|open| open.port != *port) {
            *connection = Some(
                Connection::open(*port).map_err(|error| format!("connect to :{port}: {error}"))?,
            );
        }
        let open = connection.as_mut().expect("opened above");
        let reply = match open.exchange(
            request.method,
            &request.target,
            request.content_type,
            &request.body,
        ) {
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
            200..=299 => return Ok(attempt > 0),
            307 | 308 if attempt == 0 => {
                let location = reply.location.unwrap_or_default();
                *port = location_port(&location)
                    .ok_or_else(|| format!("a redirect with Location {location:?}"))?;
            }
            status => {
                return Err(format!(
                    "{} {} on :{port}: {status} {}",
                    request.method,
                    request.target,
                    String::from_utf8_lossy(&reply.body)
                ));
            }
        }
    }
    Err(format!(
        "{} {}: redirected twice",
        request.method, request.target
    ))
}

/// Fills in request number `sequence` of client `client` (both from 0). The request's
/// target and body come cleared; its method and content type are as the last call left
/// them.
pub(crate) type RequestBuilder = dyn Fn(usize, u64, &mut Request) + Send + Sync;

/// What every client of one measurement shares.
pub(crate) struct Load {
    /// The server every client starts with (the leader).
    pub(crate) first_port: u16,
    /// Every server, tried in turn after a failed request (a follower may redirect to
    /// the leader, or accept the write itself).
    pub(crate) ports: Vec<u16>,
    /// Requests finished before this instant are warm-up, not measured.
    pub(crate) measure_start: Instant,
    /// The clients stop at this instant; requests finished after it are not counted.
    pub(crate) measure_end: Instant,
    /// Builds each client's requests.
    pub(crate) request: Box<RequestBuilder>,
}

/// What clients saw inside the measured window.
pub(crate) struct Outcome {
    /// Latencies of the requests that succeeded, in microseconds.
    pub(crate) latencies: Histogram<u64>,
    /// Requests that succeeded (2xx).
    pub(crate) completed: u64,
    /// Requests that failed: a status other than 2xx (after one redirect), or an I/O
    /// error.
    pub(crate) errors: u64,
    /// Successful requests that were redirected first (leadership moved).
    pub(crate) redirects: u64,
    /// The last failure's description.
    pub(crate) last_error: Option<String>,
}

impl Outcome {
    fn new() -> Outcome {
        Outcome {
            latencies: latency_histogram(),
            completed: 0,
            errors: 0,
            redirects: 0,
            last_error: None,
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies
            .add(&other.latencies)
            .expect("histograms of equal bounds add up");
        self.completed += other.completed;
        self.errors += other.errors;
        self.redirects += other.redirects;
        self.last_error = other.last_error.or(self.last_error.take());
    }
}

/// Clients running a [`Load`]; [`Running::finish`] waits for them.
pub(crate) struct Running {
    clients: Vec<JoinHandle<Outcome>>,
}

/// Starts `clients` client threads on `load`. They run until `load.measure_end`.
pub(crate) fn start(clients: usize, load: Arc<Load>) -> Running {
    let clients = (0..clients)
        .map(|client| {
            let load = Arc::clone(&load);
            std::thread::Builder::new()
                .name(format!("client-{client}"))
                // Clients keep little on their stacks; 64 of the default 2 MiB would be
                // reserved for nothing.
                .stack_size(256 * 1024)
                .spawn(move || run_client(client, &load))
                .expect("a client thread starts")
        })
        .collect();
    Running { clients }
}

impl Running {
    /// Waits for every client and adds up what they saw.
    pub(crate) fn finish(self) -> Outcome {
        let mut total = Outcome::new();
        for client in self.clients {
            total.merge(client.join().expect("a client thread panicked"));
        }
        total
    }
}

/// One client: send, wait for the answer, repeat, until the window ends.
fn run_client(client: usize, load: &Load) -> Outcome {
    let mut outcome = Outcome::new();
    let mut connection: Option<Connection> = None;
    let mut port = load.first_port;
    let mut sequence: u64 = 0;
    let mut request = Request::new("GET");
    while Instant::now() < load.measure_end {
        request.target.clear();
        request.body.clear();
        (load.request)(client, sequence, &mut request);
        sequence += 1;
        let started = Instant::now();
        let result = send(&mut connection, &mut port, &request);
        let finished = Instant::now();
        let inside = finished >= load.measure_start && finished < load.measure_end;
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
                // pause.
                connection = None;
                let next = load
                    .ports
                    .iter()
                    .position(|candidate| *candidate == port)
                    .map_or(0, |position| (position + 1) % load.ports.len());
                port = load.ports[next];
                std::thread::sleep(RETRY_PAUSE);
            }
        }
    }
    outcome
}
