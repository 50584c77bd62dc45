//! How a node is started.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use raft_core::{Config, NodeId};

use crate::transport::{AddressBook, InProcessNetwork, Network, TransportConfig};

/// Everything [`start`](crate::start) needs besides the store and the state machine.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The core's settings (its id is this node's).
    pub config: Config,
    /// Nodes of other clusters are refused by the transport.
    pub cluster_id: u64,
    /// Where to accept peer connections (TCP only).
    pub listen: SocketAddr,
    /// The addresses of the initial members, this node included. Later members' addresses
    /// come from the replicated log.
    pub peers: AddressBook,
    /// Whether this node joins a running cluster instead of founding a new one. A new
    /// cluster's first configuration makes every peer a voter; a joining node starts from
    /// the other peers as the configuration and learns its own part from the leader.
    pub join: bool,
    /// The duration of one tick of the core's logical clock.
    pub tick: Duration,
    /// Which network peers are reached through: TCP by default, or an
    /// [`InProcessNetwork`] shared by nodes of one process.
    pub network: Network,
    /// Transport settings (`listen`, `id` and `cluster_id` are taken from here). For TCP;
    /// on an in-process network only `frame_bytes_max` applies, as the limit on the size
    /// of a command, so that a cluster tested in one process refuses what TCP would.
    pub transport: TransportConfig,
    /// The most inbound messages and client commands handled per wake before the driver
    /// carries out actions and checks its timers, so that a busy peer cannot starve ticks.
    pub inputs_per_wake_max: usize,
}

impl NodeOptions {
    /// Options for node `config.id()` of cluster `cluster_id`, listening at `listen`, with
    /// the initial members `peers`: ticks of 100 ms and the transport's defaults.
    pub fn new(
        config: Config,
        cluster_id: u64,
        listen: SocketAddr,
        peers: AddressBook,
    ) -> NodeOptions {
        let transport = TransportConfig::new(cluster_id, config.id(), listen);
        NodeOptions {
            config,
            cluster_id,
            listen,
            peers,
            join: false,
            tick: Duration::from_millis(100),
            network: Network::Tcp,
            transport,
            inputs_per_wake_max: 256,
        }
    }

    /// Options for node `config.id()` of cluster `cluster_id` on the in-process `network`,
    /// with the initial members `members` (this node included): ticks of 100 ms. The
    /// address book names each member `in-process:ID`; nothing listens on a socket.
    pub fn in_process(
        config: Config,
        cluster_id: u64,
        network: InProcessNetwork,
        members: impl IntoIterator<Item = NodeId>,
    ) -> NodeOptions {
        let peers = members
            .into_iter()
            .map(|member| (member, format!("in-process:{}", member.0)))
            .collect();
        let unbound = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut options = NodeOptions::new(config, cluster_id, unbound, peers);
        options.network = Network::InProcess(network);
        options
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id()
    }
}
