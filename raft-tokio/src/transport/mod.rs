//! The peer transport: TCP connections carrying length-prefixed postcard frames, or an
//! [`InProcessNetwork`] for nodes that share one process (tests, simulations, benchmarks).
//! [`NodeOptions::network`](crate::NodeOptions::network) chooses ([`Network`]).
//!
//! Each node keeps one outbound connection per peer (reconnected with jittered backoff)
//! and accepts the peers' connections. A connection opens with a handshake naming the
//! cluster and both nodes; a peer with another cluster id, or a node id this node does
//! not know, is disconnected. Outbound queues are bounded: when one is full the message
//! is dropped (Raft tolerates loss) and counted. Queued messages are coalesced into one
//! socket write. Garbage, truncated, oversized or undecodable frames close the connection
//! with a logged reason; the node keeps running.
//!
//! Snapshots travel on the same connection as chunks, interleaved with messages, and the
//! sender learns whether the whole snapshot was written ([`Inbound::SnapshotReport`]).
//!
//! # Who may connect
//!
//! Without TLS the peer port is unauthenticated: the handshake's node ids are taken at
//! their word, so anyone who can reach the port can act as any node of the cluster (vote,
//! replicate entries, install snapshots). Plain TCP is only for a network that the
//! cluster's nodes alone can reach.
//!
//! With the crate's `tls` feature, connections can be secured with mutual TLS
//! ([`TransportConfig::tls`]): both ends present a certificate signed by a CA the other
//! trusts, and the handshake and frames above travel inside TLS. Each certificate also
//! names the node it belongs to, with a URI subject alternative name
//! `raft://cluster/<cluster id>/node/<node id>` (ids in decimal), and each end holds the
//! other to it: an accepted peer must claim in its handshake the node its certificate
//! names, of this cluster, and a dialled peer must present the certificate of the node
//! dialled. A certificate naming another node, another cluster, or none, is refused with
//! a warning naming the node claimed and what the certificate says, and counted in
//! [`TransportCounters::rejected_connections`]. So a certificate of the cluster's CA
//! speaks for one node only, and a stolen key compromises that node alone. See
//! [`TlsFiles`] for making the certificates.

pub mod codec;
mod connection;
mod in_process;
mod security;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use raft_core::{Message, NodeId, SnapshotTransfer};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

pub use self::connection::Transport;
pub use self::in_process::{InProcessEndpoint, InProcessNetwork, JoinError};

/// Which network a node's peers are reached through.
#[derive(Clone, Debug, Default)]
pub enum Network {
    /// TCP (optionally inside mutual TLS), as [`TransportConfig`] describes: peers are
    /// reached at their addresses in the replicated address book.
    #[default]
    Tcp,
    /// An in-process network shared with the other nodes: peers are reached by id, and
    /// the address book's addresses are only names. The node listens on no socket, and
    /// of [`TransportConfig`] nothing applies.
    InProcess(InProcessNetwork),
}

/// The default of [`TransportConfig::handshakes_pending_max`]: room for every peer of a
/// large cluster reconnecting at once, a few MiB of read buffers at most.
pub const HANDSHAKES_PENDING_DEFAULT: usize = 64;

/// Where each node listens, as the replicated address book says.
pub type AddressBook = BTreeMap<NodeId, String>;

/// The transport a running node sends through, whichever [`Network`] it is on.
pub(crate) enum PeerLink {
    Tcp(Transport),
    InProcess(InProcessEndpoint),
}

impl PeerLink {
    /// Sends `message` without waiting (dropped and counted when it cannot be queued).
    pub(crate) fn send(&self, message: Message) {
        match self {
            PeerLink::Tcp(transport) => transport.send(message),
            PeerLink::InProcess(endpoint) => endpoint.send(message),
        }
    }

    /// Sends a snapshot; its outcome comes back as an [`Inbound::SnapshotReport`].
    pub(crate) fn send_snapshot(&self, message: Message, data: Bytes) {
        match self {
            PeerLink::Tcp(transport) => transport.send_snapshot(message, data),
            PeerLink::InProcess(endpoint) => endpoint.send_snapshot(message, data),
        }
    }
}

/// What the transport hands to the node's driver.
#[derive(Debug)]
pub enum Inbound {
    /// A message from a peer.
    Message(Message),
    /// A whole snapshot from a peer: its `InstallSnapshot` message and its data.
    Snapshot(Message, Bytes),
    /// The fate of a snapshot this node sent.
    SnapshotReport {
        /// The receiver.
        to: NodeId,
        /// Written completely, or failed.
        outcome: SnapshotTransfer,
    },
}

/// Transport settings.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Nodes of other clusters are refused.
    pub cluster_id: u64,
    /// This node.
    pub id: NodeId,
    /// Where to accept peer connections.
    pub listen: SocketAddr,
    /// The largest frame accepted or sent (snapshots are chunked below it).
    pub frame_bytes_max: usize,
    /// Messages queued per peer before new ones are dropped.
    pub queue_capacity: usize,
    /// The first reconnection delay; it doubles up to `reconnect_delay_max`, with jitter.
    pub reconnect_delay_min: Duration,
    /// The longest reconnection delay.
    pub reconnect_delay_max: Duration,
    /// The largest snapshot accepted from a peer; a transfer announcing more is refused.
    pub snapshot_bytes_max: u64,
    /// The most accepted connections still in their handshake (TLS and ours) at once.
    /// A new connection over the limit closes the oldest of them, so that connections
    /// which never complete a handshake hold neither memory nor file descriptors beyond
    /// this, and cannot keep a real peer (which completes its handshake at once) out.
    pub handshakes_pending_max: usize,
    /// Mutual TLS between peers, or `None` for plain TCP. Needs the crate's `tls` feature:
    /// without it, [`Transport::start`] refuses a configuration with TLS files rather than
    /// run unsecured.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of mutual TLS between peers. Every node of a cluster needs TLS (a plain
/// peer is refused), and every node's certificate must come from a CA in the others'
/// `ca_certificates` and name that node, as a URI subject alternative name
/// `raft://cluster/<cluster id>/node/<node id>` (see [the transport](crate::transport)
/// for how it is checked).
///
/// With the `openssl` command line, a node's certificate can be made as the crate's test
/// certificates are, by `raft-tokio/tests/data/tls/generate.sh`: for node 2 of cluster 1
/// at 10.0.0.2, signed by `ca.pem` (key `ca.key`),
///
/// ```text
/// openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out node-2.key
/// openssl req -new -key node-2.key -subj "/CN=raft node 2" -out node-2.csr
/// printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
///     "extendedKeyUsage=serverAuth,clientAuth" \
///     "subjectAltName=IP:10.0.0.2,URI:raft://cluster/1/node/2" > node-2.ext
/// openssl x509 -req -in node-2.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
///     -sha256 -extfile node-2.ext -out node-2.pem
/// ```
///
/// The files are read when the transport starts; a missing or bad file, or a certificate
/// that does not name this node of this cluster, stops the start with an error naming
/// it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CAs a peer's certificate must come from: one or more certificates.
    pub ca_certificates: PathBuf,
    /// This node's certificate, then any intermediate CAs. It serves both ways, so its
    /// extended key usage, if it has one, must allow server and client authentication; it
    /// must name the host of this node's address in the address book (an IP address as
    /// an IP subject alternative name, a DNS name as a DNS one); and it must name this
    /// node with one URI subject alternative name `raft://cluster/<cluster id>/node/<node
    /// id>`.
    pub certificate: PathBuf,
    /// The private key of `certificate` (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

impl TransportConfig {
    /// Defaults: 16 MiB frames, 4096 queued messages per peer, reconnection after 50 ms
    /// doubling up to 2 s, snapshots up to 1 GiB, 64 handshakes pending, plain TCP.
    pub fn new(cluster_id: u64, id: NodeId, listen: SocketAddr) -> TransportConfig {
        TransportConfig {
            cluster_id,
            id,
            listen,
            frame_bytes_max: 16 * 1024 * 1024,
            queue_capacity: 4096,
            reconnect_delay_min: Duration::from_millis(50),
            reconnect_delay_max: Duration::from_secs(2),
            snapshot_bytes_max: 1024 * 1024 * 1024,
            handshakes_pending_max: HANDSHAKES_PENDING_DEFAULT,
            tls: None,
        }
    }
}

/// Counters the transport keeps, shared with the node's metrics.
#[derive(Debug, Default)]
pub struct TransportCounters {
    /// Messages dropped because a peer's queue was full (or, on an in-process network,
    /// because the peer was not running or either end was disconnected).
    pub dropped: AtomicU64,
    /// Messages written to sockets (or handed to an in-process peer's queue).
    pub sent: AtomicU64,
    /// Messages received and handed to the driver.
    pub received: AtomicU64,
    /// Connections closed because of a bad frame or handshake (a failed TLS handshake
    /// included, and, both ways, a peer whose certificate names another node than the one
    /// it claims or was dialled as).
    pub rejected_connections: AtomicU64,
}

impl TransportCounters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The transport's counters, shared with the node's metrics.
pub type SharedCounters = Arc<TransportCounters>;

/// The address book as the transport follows it.
pub type AddressWatch = watch::Receiver<AddressBook>;

/// The channel the transport delivers into.
pub type InboundSender = mpsc::Sender<Inbound>;

/// Reports the outcome of a snapshot sent to `to` without waiting: from `Drop`, or other
/// places that cannot wait. If the channel is full the report is sent from a task of its
/// own, because the driver counts on one report per snapshot.
pub(crate) fn report_snapshot_now(inbound: InboundSender, to: NodeId, outcome: SnapshotTransfer) {
    let report = Inbound::SnapshotReport { to, outcome };
    match inbound.try_send(report) {
        Ok(()) | Err(TrySendError::Closed(_)) => {}
        Err(TrySendError::Full(report)) => match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    // The driver may be gone by then; nothing is left to tell.
                    let _ = inbound.send(report).await;
                });
            }
            Err(_) => {
                tracing::warn!(peer = %to, "snapshot report lost: no runtime");
            }
        },
    }
}
