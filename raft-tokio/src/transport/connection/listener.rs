//! The accepting side: peers' connections, their handshakes, and the frames they carry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use raft_core::{Message, MessageBody, NodeId};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Level;

use crate::log_limit::RateLimitedLog;

use crate::transport::codec::{
    CodecError, Frame, FrameReader, Hello, PROTOCOL_VERSION, SnapshotChunk,
};
use crate::transport::security::Security;
use crate::transport::{
    AddressWatch, Inbound, InboundSender, SharedCounters, TransportConfig, TransportCounters,
};

/// How long a new connection may take to complete its handshake (TLS, if any, included).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The pause after a failed `accept` (say, out of file descriptors), so that the loop does
/// not spin while the condition lasts.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// How often a log line that any connection can trigger is written in full; the rest are
/// counted and summed up once per interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The read buffer of each accepted connection.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// The most memory reserved up front for an incoming snapshot; larger ones grow as their
/// chunks arrive, so that an announced size alone does not claim memory.
const SNAPSHOT_RESERVE_MAX: u64 = 64 * 1024 * 1024;

/// What the accepting side needs.
pub(super) struct Listener {
    pub(super) config: Arc<TransportConfig>,
    pub(super) security: Security,
    /// Consulted at each handshake: only known nodes may connect.
    pub(super) addresses: AddressWatch,
    pub(super) inbound: InboundSender,
    pub(super) counters: SharedCounters,
}

/// The accepting side while it runs: the listener, the connections still in their
/// handshake, and the log lines any connection can trigger.
struct Accepting {
    listener: Listener,
    pending: Mutex<PendingHandshakes>,
    /// Connections refused for what they sent (or did not send in time).
    refusals: RateLimitedLog,
    /// Connections that failed (reset, say): a peer can trigger these at will too.
    failures: RateLimitedLog,
    /// `accept` itself failing (out of file descriptors, say).
    accept_failures: RateLimitedLog,
}

/// Connections accepted and not yet through their handshake, oldest first, each with the
/// means to close it.
#[derive(Default)]
struct PendingHandshakes {
    next_ticket: u64,
    evictions: BTreeMap<u64, oneshot::Sender<()>>,
}

/// A connection's place among the pending handshakes; dropping it (handshake done, or the
/// connection gone) gives the place up.
struct PendingTicket {
    accepting: Arc<Accepting>,
    ticket: u64,
}

impl Drop for PendingTicket {
    fn drop(&mut self) {
        self.accepting.pending().evictions.remove(&self.ticket);
    }
}

/// Why a connection ended.
enum Ending {
    /// The peer closed it between frames.
    Closed,
    /// Closed while in its handshake to make room for a newer connection: too many were
    /// pending.
    Evicted,
    /// It broke a rule: a bad handshake or frame. The connection is dropped and counted.
    Refused(String),
    /// Reading failed (reset, for instance).
    Failed(std::io::Error),
    /// The driver stopped receiving.
    DriverGone,
}

impl Ending {
    /// A connection that could not be secured.
    fn from_securing(error: std::io::Error) -> Ending {
        match error.kind() {
            // A probe (or a health check) leaving before the end of a TLS handshake, as
            // a plain one may leave before the first frame: not a violation.
            std::io::ErrorKind::UnexpectedEof => Ending::Closed,
            // The TLS handshake failed on the peer's part: no certificate, one this node
            // does not trust, or no TLS at all.
            std::io::ErrorKind::InvalidData => Ending::Refused(error.to_string()),
            _ => Ending::Failed(error),
        }
    }
}

impl From<CodecError> for Ending {
    fn from(error: CodecError) -> Ending {
        match error {
            CodecError::Io(error) => Ending::Failed(error),
            other => Ending::Refused(other.to_string()),
        }
    }
}

/// A snapshot being received.
struct Reassembly {
    transfer: u64,
    message: Message,
    total: u64,
    data: Vec<u8>,
}

impl Listener {
    /// Accepts connections until the task is aborted; aborting it drops the task set, which
    /// aborts every connection's task.
    pub(super) async fn run(self, tcp_listener: TcpListener) {
        let node = self.config.id;
        let accepting = Arc::new(Accepting {
            listener: self,
            pending: Mutex::new(PendingHandshakes::default()),
            refusals: RateLimitedLog::new(
                Level::WARN,
                format!("node {node}: peer connection refused"),
                LOG_INTERVAL,
            ),
            failures: RateLimitedLog::new(
                Level::INFO,
                format!("node {node}: peer connection failed"),
                LOG_INTERVAL,
            ),
            accept_failures: RateLimitedLog::new(
                Level::WARN,
                format!("node {node}: accepting a peer connection failed"),
                LOG_INTERVAL,
            ),
        });
        let mut connections = JoinSet::new();
        let mut flush = tokio::time::interval(LOG_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                accepted = tcp_listener.accept() => match accepted {
                    Ok((stream, address)) => {
                        let (ticket, evicted) = accepting.admit();
                        let ticket = PendingTicket {
                            accepting: Arc::clone(&accepting),
                            ticket,
                        };
                        connections.spawn(
                            Arc::clone(&accepting).serve(stream, address, ticket, evicted),
                        );
                    }
                    Err(error) => {
                        accepting.accept_failures.log(error);
                        tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                    }
                },
                // Reaps finished connections so that the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                // The counts of a flood's last interval are written even if it stops.
                _ = flush.tick() => {
                    accepting.refusals.flush();
                    accepting.failures.flush();
                    accepting.accept_failures.flush();
                }
            }
        }
    }
}

impl Accepting {
    /// Registers a new connection among the pending handshakes: its ticket, and what tells
    /// it that it was evicted. Over the limit, the oldest pending connection is evicted.
    fn admit(&self) -> (u64, oneshot::Receiver<()>) {
        let (evict, evicted) = oneshot::channel();
        let mut pending = self.pending();
        let ticket = pending.next_ticket;
        pending.next_ticket += 1;
        pending.evictions.insert(ticket, evict);
        let limit = self.listener.config.handshakes_pending_max.max(1);
        while pending.evictions.len() > limit {
            // Dropping the sender is the signal: the connection's task closes it.
            pending.evictions.pop_first();
        }
        (ticket, evicted)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, PendingHandshakes> {
        // One map operation per update: consistent even if a holder panicked.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        address: SocketAddr,
        ticket: PendingTicket,
        evicted: oneshot::Receiver<()>,
    ) {
        let node = self.listener.config.id;
        match self.receive(stream, ticket, evicted).await {
            Ending::Closed => {
                tracing::debug!(node = %node, peer = %address, "peer closed its connection");
            }
            Ending::Evicted => {
                TransportCounters::bump(&self.listener.counters.rejected_connections);
                self.refusals.log(format_args!(
                    "{address}: still in its handshake when {} newer connections were \
                     waiting for theirs",
                    self.listener.config.handshakes_pending_max
                ));
            }
            Ending::Refused(reason) => {
                TransportCounters::bump(&self.listener.counters.rejected_connections);
                self.refusals.log(format_args!("{address}: {reason}"));
            }
            Ending::Failed(error) => {
                self.failures.log(format_args!("{address}: {error}"));
            }
            Ending::DriverGone => {}
        }
    }

    /// Completes the handshake (unless the connection is evicted first), then relays
    /// frames until the connection ends.
    async fn receive(
        &self,
        stream: TcpStream,
        ticket: PendingTicket,
        evicted: oneshot::Receiver<()>,
    ) -> Ending {
        let handshake = tokio::select! {
            handshake = self.listener.handshake(stream) => handshake,
            _ = evicted => return Ending::Evicted,
        };
        // Through the handshake: no longer pending, and no longer evictable.
        drop(ticket);
        match handshake {
            Ok((reader, hello)) => self.listener.relay(reader, &hello).await,
            Err(ending) => ending,
        }
    }
}

/// A connection's frames, once secured.
type Frames = FrameReader<BufReader<crate::transport::security::SecuredStream>>;

impl Listener {
    /// Secures the connection and reads and checks the handshake, within the handshake
    /// timeout.
    async fn handshake(&self, stream: TcpStream) -> Result<(Frames, Hello), Ending> {
        // One deadline for the TLS handshake and ours together, so that a peer cannot
        // hold a connection open longer by spreading its handshakes.
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        let (stream, proof) =
            match tokio::time::timeout_at(deadline, self.security.accept(stream)).await {
                Err(_) => {
                    return Err(Ending::Refused(format!(
                        "no handshake within {HANDSHAKE_TIMEOUT:?}"
                    )));
                }
                Ok(Err(error)) => return Err(Ending::from_securing(error)),
                Ok(Ok(secured)) => secured,
            };
        // Buffered: small frames then cost no system call each.
        let stream = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
        let mut reader = FrameReader::new(stream, self.config.frame_bytes_max);
        let hello = match tokio::time::timeout_at(deadline, reader.next_frame()).await {
            Err(_) => {
                return Err(Ending::Refused(format!(
                    "no handshake within {HANDSHAKE_TIMEOUT:?}"
                )));
            }
            Ok(Err(error)) => return Err(Ending::from(error)),
            // A probe (or a health check) connecting and leaving: not a violation.
            Ok(Ok(None)) => return Err(Ending::Closed),
            Ok(Ok(Some(Frame::Hello(hello)))) => hello,
            Ok(Ok(Some(_))) => {
                return Err(Ending::Refused(
                    "the first frame is not a handshake".to_string(),
                ));
            }
        };
        self.check_hello(&hello).map_err(Ending::Refused)?;
        // With TLS, the node id the handshake claims must be the one its certificate
        // names: any certificate of the cluster's CA would otherwise speak for any node.
        proof
            .allows(self.config.cluster_id, hello.from)
            .map_err(Ending::Refused)?;
        tracing::debug!(node = %self.config.id, peer = %hello.from, "peer connected");
        Ok((reader, hello))
    }

    /// Hands the frames of a connection through its handshake to the driver until it
    /// ends.
    async fn relay(&self, mut reader: Frames, hello: &Hello) -> Ending {
        let mut snapshot = None;
        loop {
            let frame = match reader.next_frame().await {
                Ok(Some(frame)) => frame,
                Ok(None) => {
                    if let Some(snapshot) = snapshot {
                        let Reassembly { data, total, .. } = snapshot;
                        tracing::info!(
                            node = %self.config.id,
                            peer = %hello.from,
                            "connection closed {} of {total} bytes into a snapshot",
                            data.len()
                        );
                    }
                    return Ending::Closed;
                }
                Err(error) => return Ending::from(error),
            };
            let delivery = match frame {
                Frame::Hello(_) => return Ending::Refused("a second handshake".to_string()),
                Frame::Message(message) => {
                    if let Err(reason) = self.check_addressing(&message, hello.from) {
                        return Ending::Refused(reason);
                    }
                    Inbound::Message(message)
                }
                Frame::SnapshotChunk(chunk) => {
                    match self.reassemble(&mut snapshot, chunk, hello.from) {
                        Ok(Some((message, data))) => Inbound::Snapshot(message, data),
                        Ok(None) => continue,
                        Err(reason) => return Ending::Refused(reason),
                    }
                }
            };
            // Waiting here pushes back on the peer through the socket when the driver lags.
            if self.inbound.send(delivery).await.is_err() {
                return Ending::DriverGone;
            }
            TransportCounters::bump(&self.counters.received);
        }
    }

    fn check_hello(&self, hello: &Hello) -> Result<(), String> {
        let config = &self.config;
        if hello.version != PROTOCOL_VERSION {
            return Err(format!(
                "protocol version {} (this node speaks {PROTOCOL_VERSION})",
                hello.version
            ));
        }
        if hello.cluster_id != config.cluster_id {
            return Err(format!(
                "node {} belongs to cluster {} (this is cluster {})",
                hello.from, hello.cluster_id, config.cluster_id
            ));
        }
        if hello.to != config.id {
            return Err(format!(
                "node {} meant to reach node {}, not this node {}",
                hello.from, hello.to, config.id
            ));
        }
        if hello.from == config.id {
            return Err(format!("the peer claims this node's own id {}", config.id));
        }
        if !self.addresses.borrow().contains_key(&hello.from) {
            return Err(format!("node {} is not in the address book", hello.from));
        }
        Ok(())
    }

    /// Messages on a connection must come from the node that opened it, to this node.
    fn check_addressing(&self, message: &Message, from: NodeId) -> Result<(), String> {
        if message.from != from || message.to != self.config.id {
            return Err(format!(
                "message {}->{} on the connection from {from} to {}",
                message.from, message.to, self.config.id
            ));
        }
        Ok(())
    }

    /// Adds `chunk` to the snapshot being received; returns the snapshot once complete.
    fn reassemble(
        &self,
        snapshot: &mut Option<Reassembly>,
        chunk: SnapshotChunk,
        from: NodeId,
    ) -> Result<Option<(Message, Bytes)>, String> {
        let SnapshotChunk {
            transfer,
            message,
            offset,
            total,
            data,
        } = chunk;
        let current = match (snapshot.as_mut(), message) {
            (None, Some(message)) => {
                if offset != 0 {
                    return Err(format!("snapshot {transfer} starts at offset {offset}"));
                }
                if !matches!(message.body, MessageBody::InstallSnapshot { .. }) {
                    return Err(format!(
                        "snapshot {transfer} comes with a {}",
                        message.kind()
                    ));
                }
                self.check_addressing(&message, from)?;
                if total > self.config.snapshot_bytes_max {
                    return Err(format!(
                        "snapshot of {total} bytes exceeds the limit of {} bytes",
                        self.config.snapshot_bytes_max
                    ));
                }
                let reserved = usize::try_from(total.min(SNAPSHOT_RESERVE_MAX))
                    .map_err(|_| format!("snapshot of {total} bytes is too large here"))?;
                snapshot.insert(Reassembly {
                    transfer,
                    message,
                    total,
                    data: Vec::with_capacity(reserved),
                })
            }
            (None, None) => {
                return Err(format!("snapshot {transfer} starts without its message"));
            }
            (Some(current), None) => {
                if transfer != current.transfer || total != current.total {
                    return Err(format!(
                        "chunk of snapshot {transfer} inside snapshot {}",
                        current.transfer
                    ));
                }
                if offset != current.data.len() as u64 {
                    return Err(format!(
                        "chunk of snapshot {transfer} at offset {offset}, expected {}",
                        current.data.len()
                    ));
                }
                current
            }
            (Some(current), Some(_)) => {
                return Err(format!(
                    "snapshot {transfer} starts inside snapshot {}",
                    current.transfer
                ));
            }
        };
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|end| end > current.total) {
            return Err(format!(
                "chunk of {} bytes at offset {offset} overruns snapshot {transfer} of {} bytes",
                data.len(),
                current.total
            ));
        }
        current.data.extend_from_slice(&data);
        if current.data.len() as u64 == current.total {
            let Reassembly { message, data, .. } = snapshot.take().expect("just matched");
            return Ok(Some((message, Bytes::from(data))));
        }
        Ok(None)
    }
}
