//! A network inside one process: nodes started on the same [`InProcessNetwork`] hand their
//! messages straight to each other's inbound channels, with no sockets and no encoding.
//!
//! It keeps the TCP transport's promises that the driver relies on: sending never waits
//! (a full or missing receiver drops the message and counts it), and every snapshot sent
//! is answered with exactly one [`Inbound::SnapshotReport`]. It adds what a test needs
//! and TCP cannot give on demand: cutting a node off and reconnecting it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use raft_core::{Message, NodeId, SnapshotTransfer};
use tokio::sync::mpsc::error::TrySendError;

use super::{Inbound, InboundSender, SharedCounters, TransportCounters, report_snapshot_now};

/// A network of nodes in one process, routed by node id. Cheap to clone: clones are the
/// same network.
///
/// Give a clone to each node through
/// [`NodeOptions::network`](crate::NodeOptions::network) (see
/// [`NodeOptions::in_process`](crate::NodeOptions::in_process)). A node joins the network
/// when it starts and leaves it when it stops, so a test can restart a node under the same
/// id. Messages go straight into the receiver's inbound queue: nothing is encoded, and
/// nothing is delivered out of order.
///
/// [`disconnect`](InProcessNetwork::disconnect) cuts a node off from every other node, in
/// both directions, until [`reconnect`](InProcessNetwork::reconnect): the node keeps
/// running, and what it sends or is sent meanwhile is dropped, as a network partition
/// would. That makes leader failover, stale leaders and catch-up testable without timing
/// tricks.
///
/// ```
/// use bytes::Bytes;
/// use raft_core::{Config, Index, NodeId, Role};
/// use raft_tokio::storage::MemoryLogStore;
/// use raft_tokio::transport::InProcessNetwork;
/// use raft_tokio::{NodeOptions, StateMachine, start};
///
/// /// Counts the commands applied.
/// #[derive(Default)]
/// struct Counter(u64);
///
/// impl StateMachine for Counter {
///     fn apply(&mut self, _index: Index, _command: &[u8]) -> Bytes {
///         self.0 += 1;
///         Bytes::copy_from_slice(&self.0.to_be_bytes())
///     }
///     fn query(&self, _query: &[u8]) -> Bytes {
///         Bytes::copy_from_slice(&self.0.to_be_bytes())
///     }
///     fn snapshot(&self) -> Bytes {
///         Bytes::copy_from_slice(&self.0.to_be_bytes())
///     }
///     fn restore(&mut self, snapshot: &[u8]) {
///         self.0 = snapshot.try_into().map_or(0, u64::from_be_bytes);
///     }
/// }
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() {
/// let network = InProcessNetwork::new();
/// let members = [NodeId(1), NodeId(2), NodeId(3)];
/// let mut nodes = Vec::new();
/// for id in members {
///     let config = Config::builder(id).random_seed(id.0).build().unwrap();
///     let mut options = NodeOptions::in_process(config, 1, network.clone(), members);
///     options.tick = std::time::Duration::from_millis(10);
///     nodes.push(start(options, MemoryLogStore::new(), Counter::default()).await.unwrap());
/// }
/// // Wait for a leader, then write through it.
/// let leader = loop {
///     if let Some(leader) = nodes.iter().find(|node| node.watch().borrow().role == Role::Leader) {
///         break leader.clone();
///     }
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// };
/// assert_eq!(leader.propose(Bytes::from_static(b"one")).await.unwrap()[7], 1);
/// // Cut the leader off: until `reconnect`, it can no longer commit, and the other two
/// // elect a new leader among themselves.
/// network.disconnect(leader.id());
/// # for node in &nodes { node.shutdown().await; }
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InProcessNetwork {
    shared: Arc<Shared>,
}

/// What the clones of one network share.
#[derive(Default)]
struct Shared {
    routes: Mutex<Routes>,
    /// Bumped after every change of `routes`: endpoints keep a copy of the routes and
    /// refresh it when this moves, so that sending takes no shared lock (with the nodes
    /// of a cluster sending all the time, that lock was contended).
    generation: AtomicU64,
}

/// Who is on the network.
#[derive(Clone, Default)]
struct Routes {
    /// The running nodes: where their messages go and whose counters count them.
    nodes: BTreeMap<NodeId, Receiver>,
    /// Nodes cut off from all others.
    disconnected: BTreeSet<NodeId>,
}

/// A running node as the network reaches it.
#[derive(Clone)]
struct Receiver {
    inbound: InboundSender,
    counters: SharedCounters,
}

/// Why a node could not join an [`InProcessNetwork`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// A running node already has this id on the network.
    #[error("{0} is already running on this in-process network")]
    IdTaken(NodeId),
}

impl InProcessNetwork {
    /// An empty network.
    pub fn new() -> InProcessNetwork {
        InProcessNetwork::default()
    }

    /// Joins node `id` to the network: what others send to `id` goes to `inbound`, and
    /// both ends' traffic is counted in `counters`. The node leaves when the returned
    /// endpoint is dropped. [`start`](crate::start) does this for a node whose
    /// [`NodeOptions::network`](crate::NodeOptions::network) is this network; call it
    /// directly to drive a transport by hand.
    pub fn join(
        &self,
        id: NodeId,
        inbound: InboundSender,
        counters: SharedCounters,
    ) -> Result<InProcessEndpoint, JoinError> {
        let mut routes = self.routes();
        // A stopped node whose endpoint was never dropped (its driver's task aborted with
        // the runtime, say) must not keep its id forever: a closed channel frees it.
        if routes
            .nodes
            .get(&id)
            .is_some_and(|receiver| !receiver.inbound.is_closed())
        {
            return Err(JoinError::IdTaken(id));
        }
        routes.nodes.insert(
            id,
            Receiver {
                inbound: inbound.clone(),
                counters: Arc::clone(&counters),
            },
        );
        drop(routes);
        self.changed();
        tracing::debug!(node = %id, "joined the in-process network");
        Ok(InProcessEndpoint {
            id,
            network: self.clone(),
            inbound,
            counters,
            cache: Mutex::new(RouteCache::default()),
        })
    }

    /// Cuts node `id` off from every other node, in both directions, until
    /// [`reconnect`](InProcessNetwork::reconnect). It may or may not be running; the cut
    /// outlasts restarts.
    pub fn disconnect(&self, id: NodeId) {
        self.routes().disconnected.insert(id);
        self.changed();
    }

    /// Reconnects node `id` after [`disconnect`](InProcessNetwork::disconnect).
    pub fn reconnect(&self, id: NodeId) {
        self.routes().disconnected.remove(&id);
        self.changed();
    }

    /// Whether node `id` is reachable from the others: not disconnected. (It may still
    /// not be running.)
    pub fn is_connected(&self, id: NodeId) -> bool {
        !self.routes().disconnected.contains(&id)
    }

    /// The nodes running on the network now.
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        self.routes()
            .nodes
            .iter()
            .filter(|(_, receiver)| !receiver.inbound.is_closed())
            .map(|(id, _)| *id)
            .collect()
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        lock(&self.shared.routes)
    }

    /// Tells the endpoints that the routes changed (after the change is made).
    fn changed(&self) {
        self.shared.generation.fetch_add(1, Ordering::Release);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is one map or set operation, or a whole copy: a
    // panic elsewhere cannot leave them half-changed.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An endpoint's copy of the routes, as of `generation`.
#[derive(Default)]
struct RouteCache {
    /// `None` before the first copy.
    generation: Option<u64>,
    routes: Routes,
}

impl RouteCache {
    /// Where a message from `from` to `to` goes: `None` when either end is cut off or
    /// `to` is not running.
    fn route(&self, from: NodeId, to: NodeId) -> Option<&Receiver> {
        let routes = &self.routes;
        if routes.disconnected.contains(&from) || routes.disconnected.contains(&to) {
            return None;
        }
        routes.nodes.get(&to)
    }
}

impl fmt::Debug for InProcessNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let routes = self.routes();
        formatter
            .debug_struct("InProcessNetwork")
            .field("nodes", &routes.nodes.keys().collect::<Vec<_>>())
            .field("disconnected", &routes.disconnected)
            .finish()
    }
}

/// One node's place on an [`InProcessNetwork`]: what it sends through. Dropping it takes
/// the node off the network.
pub struct InProcessEndpoint {
    id: NodeId,
    network: InProcessNetwork,
    /// This node's own inbound channel, for the reports of its snapshots.
    inbound: InboundSender,
    counters: SharedCounters,
    /// Only this endpoint takes this lock, so it is never contended.
    cache: Mutex<RouteCache>,
}

impl InProcessEndpoint {
    /// Hands `message` to the inbound queue of `message.to`, without waiting: dropped and
    /// counted when that queue is full, the receiver is not running, or either end is
    /// disconnected.
    pub fn send(&self, message: Message) {
        let to = message.to;
        let cache = self.cache();
        let Some(receiver) = cache.route(self.id, to) else {
            tracing::trace!(node = %self.id, peer = %to, "no route, message dropped");
            TransportCounters::bump(&self.counters.dropped);
            return;
        };
        match receiver.inbound.try_send(Inbound::Message(message)) {
            Ok(()) => {
                TransportCounters::bump(&self.counters.sent);
                TransportCounters::bump(&receiver.counters.received);
            }
            Err(_) => {
                tracing::trace!(node = %self.id, peer = %to, "peer queue full, message dropped");
                TransportCounters::bump(&self.counters.dropped);
            }
        }
    }

    /// Hands the snapshot `data` named by the `InstallSnapshot` `message` to its receiver
    /// as one [`Inbound::Snapshot`], and reports to this node's own inbound channel
    /// whether it was delivered, as the TCP transport does once the last chunk is written.
    pub fn send_snapshot(&self, message: Message, data: Bytes) {
        let to = message.to;
        let cache = self.cache();
        let outcome = match cache.route(self.id, to) {
            None => {
                tracing::warn!(node = %self.id, peer = %to, "snapshot dropped: no route");
                SnapshotTransfer::Failed
            }
            Some(receiver) => match receiver.inbound.try_send(Inbound::Snapshot(message, data)) {
                Ok(()) => {
                    TransportCounters::bump(&self.counters.sent);
                    TransportCounters::bump(&receiver.counters.received);
                    SnapshotTransfer::Delivered
                }
                Err(error) => {
                    let reason = match error {
                        TrySendError::Full(_) => "its queue is full",
                        TrySendError::Closed(_) => "it stopped",
                    };
                    tracing::warn!(node = %self.id, peer = %to, "snapshot dropped: {reason}");
                    SnapshotTransfer::Failed
                }
            },
        };
        drop(cache);
        if outcome == SnapshotTransfer::Failed {
            TransportCounters::bump(&self.counters.dropped);
        }
        report_snapshot_now(self.inbound.clone(), to, outcome);
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The routes, copied afresh if the network changed since the last copy.
    fn cache(&self) -> MutexGuard<'_, RouteCache> {
        let mut cache = lock(&self.cache);
        let generation = self.network.shared.generation.load(Ordering::Acquire);
        if cache.generation != Some(generation) {
            cache.routes = self.network.routes().clone();
            cache.generation = Some(generation);
        }
        cache
    }
}

impl Drop for InProcessEndpoint {
    fn drop(&mut self) {
        let mut routes = self.network.routes();
        // Only this endpoint's own entry: a node restarted under the same id after this
        // one's channel closed has replaced it.
        if routes
            .nodes
            .get(&self.id)
            .is_some_and(|receiver| receiver.inbound.same_channel(&self.inbound))
        {
            routes.nodes.remove(&self.id);
            drop(routes);
            self.network.changed();
        }
    }
}

impl fmt::Debug for InProcessEndpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("InProcessEndpoint")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
