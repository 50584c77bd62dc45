//! The running transport: a listener accepting peers ([`listener`]), one sender task per
//! peer of the address book ([`sender`]), and a task following the address book to start
//! and stop those senders.

mod listener;
mod sender;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use raft_core::{Message, NodeId, SnapshotTransfer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;

use self::listener::Listener;
use self::sender::{Outgoing, PeerSender, SnapshotJob};
use super::security::Security;
use super::{
    AddressBook, AddressWatch, InboundSender, SharedCounters, TransportConfig, TransportCounters,
    report_snapshot_now,
};

/// The running transport of one node. Dropping it stops every task it started.
pub struct Transport {
    id: NodeId,
    local_addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    counters: SharedCounters,
    inbound: InboundSender,
    listener: JoinHandle<()>,
    follower: JoinHandle<()>,
}

/// The peers' senders, shared by [`Transport::send`] and the task following the address
/// book.
struct Registry {
    /// Set when the transport is dropped, so that a concurrent update of the address book
    /// cannot start senders after the drop stopped them.
    closed: bool,
    peers: BTreeMap<NodeId, Peer>,
}

/// One peer's sender task and the queue feeding it.
struct Peer {
    address: String,
    queue: mpsc::Sender<Outgoing>,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Its queue goes with it: queued snapshots report a failure as they are dropped.
        self.task.abort();
    }
}

impl Transport {
    /// Binds `config.listen`, starts accepting peers, and starts one sender per peer of the
    /// address book (following its changes). Messages received go to `inbound`.
    ///
    /// With [`TransportConfig::tls`], the files are read first: a missing or bad one is an
    /// error naming it, and nothing is bound.
    pub async fn start(
        config: TransportConfig,
        mut addresses: AddressWatch,
        inbound: InboundSender,
        counters: SharedCounters,
    ) -> std::io::Result<Transport> {
        let security = Security::from_config(&config)?;
        let tcp_listener = TcpListener::bind(config.listen).await?;
        let local_addr = tcp_listener.local_addr()?;
        let config = Arc::new(config);
        let registry = Arc::new(Mutex::new(Registry {
            closed: false,
            peers: BTreeMap::new(),
        }));
        // The peers known now get their senders before `start` returns, so that the first
        // `send` already reaches them.
        let book = addresses.borrow_and_update().clone();
        reconcile(&registry, &book, &config, &security, &counters);

        let follower = tokio::spawn(follow_addresses(
            addresses.clone(),
            Arc::clone(&registry),
            Arc::clone(&config),
            security.clone(),
            Arc::clone(&counters),
        ));
        let listener = Listener {
            config: Arc::clone(&config),
            security,
            addresses,
            inbound: inbound.clone(),
            counters: Arc::clone(&counters),
        };
        let listener = tokio::spawn(listener.run(tcp_listener));
        tracing::info!(node = %config.id, address = %local_addr, "transport listening");
        Ok(Transport {
            id: config.id,
            local_addr,
            registry,
            counters,
            inbound,
            listener,
            follower,
        })
    }

    /// The address the listener is bound to (the real port when `listen` asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `message` for `message.to`, without waiting: dropped and counted when that
    /// peer's queue is full or the peer is unknown.
    pub fn send(&self, message: Message) {
        let to = message.to;
        let registry = self.registry();
        let Some(peer) = registry.peers.get(&to) else {
            drop(registry);
            tracing::debug!(node = %self.id, peer = %to, "message to an unknown peer dropped");
            TransportCounters::bump(&self.counters.dropped);
            return;
        };
        if peer.queue.try_send(Outgoing::Message(message)).is_err() {
            drop(registry);
            tracing::debug!(node = %self.id, peer = %to, "peer queue full, message dropped");
            TransportCounters::bump(&self.counters.dropped);
        }
    }

    /// Queues the snapshot `data` named by the `InstallSnapshot` `message`; the outcome
    /// comes back as an [`Inbound::SnapshotReport`](super::Inbound::SnapshotReport).
    pub fn send_snapshot(&self, message: Message, data: Bytes) {
        let to = message.to;
        // The job reports a failure if it is dropped unsent, whatever the path: refused
        // here, discarded by its sender task, or lost with a connection.
        let job = SnapshotJob::new(message, data, self.inbound.clone());
        let registry = self.registry();
        let Some(peer) = registry.peers.get(&to) else {
            drop(registry);
            tracing::warn!(node = %self.id, peer = %to, "snapshot to an unknown peer dropped");
            TransportCounters::bump(&self.counters.dropped);
            return;
        };
        if let Err(error) = peer.queue.try_send(Outgoing::Snapshot(job)) {
            drop(registry);
            let reason = match &error {
                TrySendError::Full(_) => "its queue is full",
                TrySendError::Closed(_) => "its sender stopped",
            };
            tracing::warn!(node = %self.id, peer = %to, "snapshot dropped: {reason}");
            TransportCounters::bump(&self.counters.dropped);
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.registry)
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        // Aborting the listener drops its socket and, with its task set, every accepted
        // connection.
        self.listener.abort();
        self.follower.abort();
        let peers = {
            let mut registry = self.registry();
            registry.closed = true;
            std::mem::take(&mut registry.peers)
        };
        // Outside the lock: dropping the peers aborts their tasks.
        drop(peers);
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Transport")
            .field("id", &self.id)
            .field("local_addr", &self.local_addr)
            .field("peers", &self.registry().peers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // The registry stays consistent even if a holder panicked: every update is one map
    // operation.
    registry.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts and stops senders as the address book changes, until the transport is dropped
/// or the book's sender goes away (the last book then stays in force).
async fn follow_addresses(
    mut addresses: AddressWatch,
    registry: Arc<Mutex<Registry>>,
    config: Arc<TransportConfig>,
    security: Security,
    counters: SharedCounters,
) {
    while addresses.changed().await.is_ok() {
        let book = addresses.borrow_and_update().clone();
        reconcile(&registry, &book, &config, &security, &counters);
    }
}

/// Makes the senders match `book`: one per peer other than this node, at its current
/// address. A peer whose address changed gets a new sender (its queue is lost, which
/// Raft tolerates; queued snapshots report failures).
fn reconcile(
    registry: &Mutex<Registry>,
    book: &AddressBook,
    config: &Arc<TransportConfig>,
    security: &Security,
    counters: &SharedCounters,
) {
    let mut registry = lock(registry);
    if registry.closed {
        return;
    }
    let stale: Vec<NodeId> = registry
        .peers
        .iter()
        .filter(|(id, peer)| book.get(id) != Some(&peer.address))
        .map(|(id, _)| *id)
        .collect();
    let mut removed = Vec::with_capacity(stale.len());
    for id in stale {
        tracing::info!(node = %config.id, peer = %id, "peer left the address book or moved");
        removed.extend(registry.peers.remove(&id));
    }
    for (id, address) in book {
        if *id == config.id || registry.peers.contains_key(id) {
            continue;
        }
        let (queue, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let sender = PeerSender {
            config: Arc::clone(config),
            security: security.clone(),
            peer: *id,
            address: address.clone(),
            counters: Arc::clone(counters),
        };
        let task = tokio::spawn(sender.run(receiver));
        registry.peers.insert(
            *id,
            Peer {
                address: address.clone(),
                queue,
                task,
            },
        );
    }
    drop(registry);
    // Outside the lock: dropping a peer aborts its task.
    drop(removed);
}

/// Reports a failed snapshot to `to` without waiting.
fn report_failure_now(inbound: InboundSender, to: NodeId) {
    report_snapshot_now(inbound, to, SnapshotTransfer::Failed);
}
