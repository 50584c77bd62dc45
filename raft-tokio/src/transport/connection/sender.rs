//! The sending side: one task per peer, connecting, writing coalesced batches of queued
//! messages and snapshot chunks, and reconnecting with jittered exponential backoff.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use raft_core::{Message, NodeId, SnapshotTransfer};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

use super::report_failure_now;
use crate::transport::codec::{Frame, Hello, PROTOCOL_VERSION, SnapshotChunk, encode_frame_within};
use crate::transport::security::{SecuredStream, Security};
use crate::transport::{
    Inbound, InboundSender, SharedCounters, TransportConfig, TransportCounters,
};

/// How long a connection attempt (including the TLS handshake, if any, and the write of
/// ours) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one batch may take to write before the connection is deemed dead: a peer
/// that vanished without a reset would otherwise hold the sender until TCP gives up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Queued messages are coalesced into one write up to about this many bytes.
const BATCH_BYTES_MAX: usize = 256 * 1024;

/// The data carried by one snapshot chunk, unless half the frame limit is smaller.
const SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Something to send to the peer.
pub(super) enum Outgoing {
    Message(Message),
    Snapshot(SnapshotJob),
}

/// A snapshot to send. It reports its outcome exactly once: `Delivered` explicitly once
/// its last chunk is written, `Failed` when dropped before that (refused, discarded, or
/// lost with its connection or its task).
pub(super) struct SnapshotJob {
    message: Message,
    data: Bytes,
    /// Taken when the outcome is reported.
    inbound: Option<InboundSender>,
}

impl SnapshotJob {
    pub(super) fn new(message: Message, data: Bytes, inbound: InboundSender) -> SnapshotJob {
        SnapshotJob {
            message,
            data,
            inbound: Some(inbound),
        }
    }

    async fn delivered(mut self) {
        if let Some(inbound) = self.inbound.take() {
            let report = Inbound::SnapshotReport {
                to: self.message.to,
                outcome: SnapshotTransfer::Delivered,
            };
            // The driver may be gone; nothing is left to tell.
            let _ = inbound.send(report).await;
        }
    }
}

impl Drop for SnapshotJob {
    fn drop(&mut self) {
        if let Some(inbound) = self.inbound.take() {
            report_failure_now(inbound, self.message.to);
        }
    }
}

/// A snapshot partly written on the current connection.
struct ActiveSnapshot {
    transfer: u64,
    job: SnapshotJob,
    /// The message goes with the first chunk.
    first: bool,
    offset: usize,
}

impl ActiveSnapshot {
    fn next_chunk(&mut self, chunk_bytes: usize) -> Frame {
        let data = &self.job.data;
        let end = data.len().min(self.offset.saturating_add(chunk_bytes));
        let chunk = SnapshotChunk {
            transfer: self.transfer,
            message: self.first.then(|| self.job.message.clone()),
            offset: self.offset as u64,
            total: data.len() as u64,
            data: data.slice(self.offset..end),
        };
        self.first = false;
        self.offset = end;
        Frame::SnapshotChunk(chunk)
    }

    /// Whether every chunk was produced (at least one, even for an empty snapshot).
    fn finished(&self) -> bool {
        !self.first && self.offset == self.job.data.len()
    }
}

/// What to do with snapshots taken from the queue while not connected.
#[derive(Clone, Copy)]
enum Disconnected {
    /// Keep them: a connection attempt is under way.
    Connecting,
    /// Fail them: the last attempt failed, the peer is unreachable for now.
    WaitingToRetry,
}

/// What was taken from the queue but not yet written. Messages wait here while the peer is
/// unreachable (so that snapshots behind them can be failed promptly), bounded by the
/// queue capacity: the oldest message goes first, as newer ones matter more to Raft.
struct Backlog {
    items: VecDeque<Outgoing>,
    messages: usize,
    capacity: usize,
}

impl Backlog {
    fn hold(&mut self, item: Outgoing, state: Disconnected, counters: &TransportCounters) {
        match item {
            Outgoing::Message(message) => {
                if self.messages >= self.capacity {
                    let oldest = self
                        .items
                        .iter()
                        .position(|item| matches!(item, Outgoing::Message(_)));
                    if let Some(position) = oldest {
                        self.items.remove(position);
                        self.messages -= 1;
                        TransportCounters::bump(&counters.dropped);
                    }
                }
                self.items.push_back(Outgoing::Message(message));
                self.messages += 1;
            }
            Outgoing::Snapshot(job) => match state {
                Disconnected::Connecting => self.items.push_back(Outgoing::Snapshot(job)),
                // Dropping the job reports the failure.
                Disconnected::WaitingToRetry => drop(job),
            },
        }
    }

    fn fail_snapshots(&mut self) {
        // Dropping the jobs reports their failures.
        self.items
            .retain(|item| matches!(item, Outgoing::Message(_)));
    }

    fn push_back(&mut self, item: Outgoing) {
        if let Outgoing::Message(_) = item {
            self.messages += 1;
        }
        self.items.push_back(item);
    }

    fn pop_front(&mut self) -> Option<Outgoing> {
        let item = self.items.pop_front();
        if let Some(Outgoing::Message(_)) = item {
            self.messages -= 1;
        }
        item
    }
}

/// Why a connection attempt failed.
enum AttemptFailure {
    /// The peer could not be reached, or the connection broke: retried quietly, as peers
    /// come and go.
    Unreachable(String),
    /// The peer's certificate names another node than the one dialled: a configuration
    /// error (or an impostor) worth a warning, though still retried, as certificates can
    /// be replaced.
    WrongIdentity(String),
}

/// Why a connection ended.
enum Ending {
    /// The transport was dropped.
    Stopped,
    /// The connection broke.
    Lost(String),
}

/// One peer's sender.
pub(super) struct PeerSender {
    pub(super) config: Arc<TransportConfig>,
    pub(super) security: Security,
    pub(super) peer: NodeId,
    pub(super) address: String,
    pub(super) counters: SharedCounters,
}

impl PeerSender {
    /// Connects, writes and reconnects until the transport drops the queue (or aborts the
    /// task).
    pub(super) async fn run(self, mut queue: mpsc::Receiver<Outgoing>) {
        let mut random = ChaCha8Rng::seed_from_u64(self.seed());
        let mut backlog = Backlog {
            items: VecDeque::new(),
            messages: 0,
            capacity: self.config.queue_capacity.max(1),
        };
        let mut failures: u32 = 0;
        loop {
            let connecting = self.connect();
            let Some(connected) = self
                .hold_while(
                    connecting,
                    &mut queue,
                    &mut backlog,
                    Disconnected::Connecting,
                )
                .await
            else {
                return;
            };
            match connected {
                Ok(stream) => {
                    tracing::debug!(node = %self.config.id, peer = %self.peer, "connected");
                    let started = Instant::now();
                    match self.write_loop(stream, &mut queue, &mut backlog).await {
                        Ending::Stopped => return,
                        Ending::Lost(reason) => tracing::info!(
                            node = %self.config.id,
                            peer = %self.peer,
                            address = %self.address,
                            "connection lost: {reason}"
                        ),
                    }
                    // Snapshots taken from the queue but not started fail with the
                    // connection, like the one being written.
                    backlog.fail_snapshots();
                    // A connection that lasted resets the backoff; one that fails at once
                    // (a peer refusing the handshake, say) keeps backing off.
                    if started.elapsed() >= self.config.reconnect_delay_max {
                        failures = 0;
                    }
                }
                Err(AttemptFailure::Unreachable(reason)) => {
                    tracing::debug!(
                        node = %self.config.id,
                        peer = %self.peer,
                        address = %self.address,
                        "connection attempt failed: {reason}"
                    );
                    backlog.fail_snapshots();
                }
                Err(AttemptFailure::WrongIdentity(reason)) => {
                    TransportCounters::bump(&self.counters.rejected_connections);
                    tracing::warn!(
                        node = %self.config.id,
                        peer = %self.peer,
                        address = %self.address,
                        "connection refused: {reason}"
                    );
                    backlog.fail_snapshots();
                }
            }
            let delay = self.backoff(failures, &mut random);
            failures = failures.saturating_add(1);
            let waiting = tokio::time::sleep(delay);
            let waited = self
                .hold_while(
                    waiting,
                    &mut queue,
                    &mut backlog,
                    Disconnected::WaitingToRetry,
                )
                .await;
            if waited.is_none() {
                return;
            }
        }
    }

    /// Different for every node pair and every start, so that peers do not retry in step.
    fn seed(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0);
        self.config.id.0.rotate_left(32) ^ self.peer.0 ^ now
    }

    /// The delay before the next attempt: `reconnect_delay_min` doubled per failure up to
    /// `reconnect_delay_max`, then drawn between half of it and all of it.
    fn backoff(&self, failures: u32, random: &mut ChaCha8Rng) -> Duration {
        let minimum = self.config.reconnect_delay_min;
        let maximum = self.config.reconnect_delay_max.max(minimum);
        let ceiling = minimum.saturating_mul(1 << failures.min(20)).min(maximum);
        let floor = (ceiling / 2).max(minimum);
        let span = ceiling.saturating_sub(floor).as_nanos() as u64;
        if span == 0 {
            return ceiling;
        }
        floor + Duration::from_nanos(random.next_u64() % (span + 1))
    }

    /// Runs `future` while holding what arrives in the queue; `None` when the queue closed.
    async fn hold_while<F: Future>(
        &self,
        future: F,
        queue: &mut mpsc::Receiver<Outgoing>,
        backlog: &mut Backlog,
        state: Disconnected,
    ) -> Option<F::Output> {
        tokio::pin!(future);
        loop {
            tokio::select! {
                biased;
                output = &mut future => return Some(output),
                item = queue.recv() => backlog.hold(item?, state, &self.counters),
            }
        }
    }

    /// Connects to the peer, secures the connection, and writes the handshake.
    async fn connect(&self) -> Result<SecuredStream, AttemptFailure> {
        let unreachable = |error: std::io::Error| AttemptFailure::Unreachable(error.to_string());
        let attempt = async {
            let stream = TcpStream::connect(self.address.as_str())
                .await
                .map_err(unreachable)?;
            // Raft messages are small and latency-bound; batching is done here instead.
            stream.set_nodelay(true).map_err(unreachable)?;
            let mut stream = self
                .security
                .connect(stream, &self.address, self.peer)
                .await
                .map_err(|error| match error.kind() {
                    // Only the security says so, for a certificate naming another node.
                    std::io::ErrorKind::PermissionDenied => {
                        AttemptFailure::WrongIdentity(error.to_string())
                    }
                    _ => unreachable(error),
                })?;
            let hello = Frame::Hello(Hello {
                version: PROTOCOL_VERSION,
                cluster_id: self.config.cluster_id,
                from: self.config.id,
                to: self.peer,
            });
            let mut buffer = Vec::new();
            encode_frame_within(&hello, self.config.frame_bytes_max, &mut buffer)
                .map_err(|error| AttemptFailure::Unreachable(error.to_string()))?;
            stream.write_all(&buffer).await.map_err(unreachable)?;
            // TLS may hold written bytes back until flushed (plain TCP never does).
            stream.flush().await.map_err(unreachable)?;
            Ok(stream)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AttemptFailure::Unreachable(format!(
                "no connection within {CONNECT_TIMEOUT:?}"
            ))),
        }
    }

    /// Writes what the backlog and the queue hold, batch after batch, until the
    /// connection breaks or the queue closes.
    async fn write_loop(
        &self,
        mut stream: SecuredStream,
        queue: &mut mpsc::Receiver<Outgoing>,
        backlog: &mut Backlog,
    ) -> Ending {
        let chunk_bytes = SNAPSHOT_CHUNK_BYTES
            .min(self.config.frame_bytes_max / 2)
            .max(1);
        // Dropped with the connection if unfinished, which reports its failure.
        let mut snapshot: Option<ActiveSnapshot> = None;
        let mut transfers: u64 = 0;
        let mut buffer = Vec::new();
        loop {
            if backlog.items.is_empty() && snapshot.is_none() {
                match wait_for_item(queue, &mut stream).await {
                    Ok(item) => backlog.push_back(item),
                    Err(ending) => return ending,
                }
            }
            buffer.clear();
            let mut messages = 0;
            while buffer.len() < BATCH_BYTES_MAX {
                let item = match backlog.pop_front() {
                    Some(item) => item,
                    None => match queue.try_recv() {
                        Ok(item) => item,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return Ending::Stopped,
                    },
                };
                match item {
                    Outgoing::Message(message) => {
                        let frame = Frame::Message(message);
                        match encode_frame_within(&frame, self.config.frame_bytes_max, &mut buffer)
                        {
                            Ok(()) => messages += 1,
                            Err(error) => self.drop_unsendable(&frame, &error.to_string()),
                        }
                    }
                    Outgoing::Snapshot(job) if snapshot.is_none() => {
                        transfers += 1;
                        snapshot = Some(ActiveSnapshot {
                            transfer: transfers,
                            job,
                            first: true,
                            offset: 0,
                        });
                    }
                    Outgoing::Snapshot(job) => {
                        // The leader sends one snapshot per follower at a time; a second
                        // one fails rather than queue behind a large transfer.
                        tracing::warn!(
                            node = %self.config.id,
                            peer = %self.peer,
                            "snapshot refused: another one is being sent"
                        );
                        drop(job);
                    }
                }
            }
            // One chunk per batch, so that messages keep flowing during a long transfer.
            if let Some(active) = &mut snapshot {
                let chunk = active.next_chunk(chunk_bytes);
                if let Err(error) =
                    encode_frame_within(&chunk, self.config.frame_bytes_max, &mut buffer)
                {
                    tracing::warn!(
                        node = %self.config.id,
                        peer = %self.peer,
                        "snapshot dropped: {error}"
                    );
                    // Dropping the job reports the failure.
                    snapshot = None;
                }
            }
            if buffer.is_empty() {
                continue;
            }
            let write = async {
                stream.write_all(&buffer).await?;
                // TLS may hold written bytes back until flushed (plain TCP never does): a
                // batch, and above all a snapshot's last chunk, must be on its way before
                // it counts as sent.
                stream.flush().await
            };
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Ending::Lost(format!("write failed: {error}")),
                Err(_) => {
                    return Ending::Lost(format!("write stalled for {WRITE_TIMEOUT:?}"));
                }
            }
            self.counters
                .sent
                .fetch_add(messages, std::sync::atomic::Ordering::Relaxed);
            if snapshot.as_ref().is_some_and(ActiveSnapshot::finished) {
                let finished = snapshot.take().expect("just checked");
                TransportCounters::bump(&self.counters.sent);
                finished.job.delivered().await;
            }
        }
    }

    fn drop_unsendable(&self, frame: &Frame, reason: &str) {
        if let Frame::Message(message) = frame {
            tracing::warn!(
                node = %self.config.id,
                peer = %self.peer,
                "{} message dropped: {reason}",
                message.kind()
            );
        }
        TransportCounters::bump(&self.counters.dropped);
    }
}

/// Waits for the next item to send while watching the connection: the peer never writes,
/// so a read completing means it closed the connection (or broke the protocol), and the
/// sender reconnects at once instead of losing the next batch to a dead socket.
///
/// With TLS, reading also takes in what the TLS layer itself sends (session tickets, say)
/// and the alert of a peer refusing this node's certificate, which TLS 1.3 can only send
/// after this side's handshake has completed.
async fn wait_for_item(
    queue: &mut mpsc::Receiver<Outgoing>,
    reader: &mut SecuredStream,
) -> Result<Outgoing, Ending> {
    let mut scratch = [0u8; 64];
    loop {
        tokio::select! {
            item = queue.recv() => return item.ok_or(Ending::Stopped),
            read = reader.read(&mut scratch) => match read {
                Ok(0) => return Err(Ending::Lost("closed by the peer".to_string())),
                // Bytes from the peer mean nothing in this protocol; ignore them.
                Ok(_) => {}
                Err(error) => return Err(Ending::Lost(format!("read failed: {error}"))),
            },
        }
    }
}
