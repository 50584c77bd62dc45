//! Starting a node, and the handle through which the application talks to it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raft_core::{
    Membership, MembershipError, NodeId, ProposeError, ReadError, RecoveryError, Role, Status,
    Term, TransferError,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::driver::{self, Command};
use crate::machine::StateMachine;
use crate::metrics::Metrics;
use crate::options::NodeOptions;
use crate::storage::{LogStore, StorageError, StoreIdentity};
use crate::transport::{AddressBook, JoinError, TransportCounters};

/// Why a request through the handle failed, sorted by what the caller may conclude: the
/// request certainly did not take effect (retrying it is safe), or it may have.
///
/// Certainly not applied: [`NotLeader`](ClientError::NotLeader),
/// [`Refused`](ClientError::Refused), [`Superseded`](ClientError::Superseded) and
/// [`Stopped`](ClientError::Stopped). Perhaps applied:
/// [`OutcomeUnknown`](ClientError::OutcomeUnknown); a retried write may then apply twice
/// unless the application makes it idempotent (raft-kv's client sessions do).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// This node does not lead; ask the leader (its address when known). Nothing was
    /// proposed.
    #[error("not the leader (leader: {})", describe_leader(*.leader, .address.as_deref()))]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
        /// Where it listens for peers, from the replicated address book.
        address: Option<String>,
    },
    /// The node refused the request before it entered the log, for the reason given.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// The proposal's entry was overwritten by another leader's, or leadership changed
    /// before a read was confirmed: it certainly did not take effect; try again.
    #[error("superseded by a change of leader; it did not take effect")]
    Superseded,
    /// The node stopped, or had stopped, before the request entered the log.
    #[error("{0}; the request did not take effect")]
    Stopped(StopReason),
    /// The request may or may not have taken effect.
    #[error("the outcome is unknown: {0}")]
    OutcomeUnknown(Uncertainty),
}

impl ClientError {
    /// Whether the request may have taken effect although it failed: retrying a write is
    /// then not safe unless the write is idempotent.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ClientError::OutcomeUnknown(_))
    }

    /// The request timed out: the outcome is unknown.
    pub(crate) const TIMEOUT: ClientError = ClientError::OutcomeUnknown(Uncertainty::Timeout);
}

/// Why the node refused a request before it entered the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The core refused the proposal (a leadership transfer is in progress, too many
    /// uncommitted bytes).
    #[error(transparent)]
    Proposal(ProposeError),
    /// A read could not be taken (too many pending).
    #[error(transparent)]
    Read(ReadError),
    /// A membership change could not be made.
    #[error(transparent)]
    Membership(MembershipError),
    /// A leadership transfer could not be started.
    #[error(transparent)]
    Transfer(TransferError),
    /// The command is larger than one peer frame could carry.
    #[error("a command of {bytes} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The encoded command's size.
        bytes: usize,
        /// The largest accepted.
        limit: usize,
    },
    /// The node named is not a member of the cluster.
    #[error("{0} is not a member")]
    NotMember(NodeId),
    /// The node named is a member already.
    #[error("{0} is a member already")]
    AlreadyMember(NodeId),
    /// The node named is not a learner (so it cannot be promoted).
    #[error("{0} is not a learner")]
    NotLearner(NodeId),
    /// The configuration changed since the one a change was computed from: read it again.
    #[error("the configuration changed since it was read")]
    ConfigurationChanged,
}

impl Refusal {
    /// Whether the refusal is momentary (a transfer in progress, a backlog), so that the
    /// same request is likely to succeed if retried shortly, rather than a request that is
    /// wrong for the cluster as it is.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Refusal::Proposal(ProposeError::ProposalDropped { .. })
                | Refusal::Read(ReadError::TooManyPending)
                | Refusal::Membership(MembershipError::TransferInProgress)
        )
    }
}

/// Why a node stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopReason {
    /// It was shut down.
    #[error("the node is shutting down")]
    ShutDown,
    /// Its storage failed; the reason says how.
    #[error("{0}")]
    StorageFailed(String),
}

/// Why the outcome of a request is unknown.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Uncertainty {
    /// No answer within the time the caller allowed: the entry may commit later.
    #[error("timed out")]
    Timeout,
    /// The node stopped after the request entered its log: another leader may commit it.
    #[error("{0} after the request entered the log")]
    Stopped(StopReason),
    /// The node learned the log from a snapshot instead of applying the entry itself.
    #[error("the entry was covered by a snapshot")]
    CoveredBySnapshot,
}

fn describe_leader(leader: Option<NodeId>, address: Option<&str>) -> String {
    match (leader, address) {
        (Some(leader), Some(address)) => format!("{leader} at {address}"),
        (Some(leader), None) => leader.to_string(),
        (None, _) => "unknown".to_string(),
    }
}

/// Why [`start`] failed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be read.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// What the store holds cannot start a node.
    #[error("the stored state cannot start a node: {0}")]
    Recovery(#[from] RecoveryError),
    /// The store belongs to another node or cluster.
    #[error(
        "the store holds the data of node {} of cluster {}, not of node {} of cluster {}",
        stored.node_id.0, stored.cluster_id, expected.node_id.0, expected.cluster_id
    )]
    ForeignStore {
        /// Whose data the store holds.
        stored: StoreIdentity,
        /// The node that tried to start on it.
        expected: StoreIdentity,
    },
    /// The peer listener could not be bound.
    #[error("cannot listen for peers at {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The in-process network refused the node (another running node has its id).
    #[error(transparent)]
    Network(#[from] JoinError),
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// The role and leader of a node, as [`RaftHandle::watch`] reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleInfo {
    /// The node's role.
    pub role: Role,
    /// The node's term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
}

/// Talks to a running node. Cheap to clone; every clone talks to the same node.
#[derive(Clone, Debug)]
pub struct RaftHandle {
    id: NodeId,
    commands: mpsc::Sender<Command>,
    roles: watch::Receiver<RoleInfo>,
    addresses: watch::Receiver<AddressBook>,
    metrics: Arc<Metrics>,
    transport_counters: Arc<TransportCounters>,
    stopped: watch::Receiver<Option<String>>,
    /// How long a request may wait for its answer; `None`: as long as it takes.
    timeout: Option<Duration>,
}

/// Starts a node: recovers `store`, restores `machine` from the stored snapshot and log,
/// binds the peer listener (or joins the in-process network), and runs the driver on the
/// current Tokio runtime.
pub async fn start<M: StateMachine, S: LogStore>(
    options: NodeOptions,
    store: S,
    machine: M,
) -> Result<RaftHandle, StartError> {
    let parts = driver::start(options, store, machine).await?;
    Ok(RaftHandle {
        id: parts.id,
        commands: parts.commands,
        roles: parts.roles,
        addresses: parts.addresses,
        metrics: parts.metrics,
        transport_counters: parts.transport_counters,
        stopped: parts.stopped,
        timeout: None,
    })
}

impl RaftHandle {
    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// A handle whose requests give up with [`ClientError::Timeout`] after `timeout`. A
    /// proposal that times out may still commit later: its outcome is unknown.
    pub fn with_timeout(mut self, timeout: Duration) -> RaftHandle {
        self.timeout = Some(timeout);
        self
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ClientError>>) -> Command,
    ) -> Result<T, ClientError> {
        let (reply, answer) = oneshot::channel();
        let request = async {
            self.commands
                .send(make(reply))
                .await
                .map_err(|_| ClientError::Stopped(self.stop_reason()))?;
            // The driver answers every request it took before it stops; an answer that
            // never comes may follow a proposal.
            answer.await.map_err(|_| {
                ClientError::OutcomeUnknown(Uncertainty::Stopped(self.stop_reason()))
            })?
        };
        match self.timeout {
            Some(timeout) => tokio::time::timeout(timeout, request)
                .await
                .map_err(|_| ClientError::TIMEOUT)?,
            None => request.await,
        }
    }

    fn stop_reason(&self) -> StopReason {
        match self.stopped.borrow().as_ref() {
            Some(reason) if reason.starts_with("storage") => {
                StopReason::StorageFailed(reason.clone())
            }
            _ => StopReason::ShutDown,
        }
    }

    /// Proposes `command`; resolves once it is committed and applied here, with the state
    /// machine's response. Only the leader takes proposals. A leader cut off from its
    /// followers cannot commit, so give the handle a timeout
    /// ([`with_timeout`](RaftHandle::with_timeout)) unless waiting is what you want.
    pub async fn propose(&self, command: Bytes) -> Result<Bytes, ClientError> {
        self.ask(|reply| Command::Propose { command, reply }).await
    }

    /// A linearizable read: `query` is answered by the state machine once it reflects
    /// every write completed before this call (ReadIndex, confirmed by a heartbeat round
    /// or the lease). Works on followers too, through the leader.
    pub async fn read(&self, query: Bytes) -> Result<Bytes, ClientError> {
        self.ask(|reply| Command::Read { query, reply }).await
    }

    /// Answers `query` from this node's state as it is now: fast, possibly stale.
    pub async fn read_local(&self, query: Bytes) -> Result<Bytes, ClientError> {
        self.ask(|reply| Command::ReadLocal { query, reply }).await
    }

    /// Records in the replicated address book that `node` listens at `address`; resolves
    /// once committed and applied here. Do this before adding the node to the cluster.
    pub async fn set_address(&self, node: NodeId, address: String) -> Result<(), ClientError> {
        self.ask(|reply| Command::SetAddress {
            node,
            address,
            reply,
        })
        .await
    }

    /// Changes the configuration to `voters` and `learners`; resolves once the change is
    /// committed (a change of several voters goes through a joint configuration that the
    /// leader leaves by itself).
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<(), ClientError> {
        self.ask(|reply| Command::ChangeMembership {
            expected: None,
            voters,
            learners,
            reply,
        })
        .await
    }

    /// [`change_membership`](RaftHandle::change_membership), but only if the configuration
    /// is still `expected` when the leader proposes the change (refused with
    /// [`Refusal::ConfigurationChanged`] otherwise): a change computed from a configuration
    /// read earlier never undoes one made in between, such as a removal.
    pub async fn change_membership_from(
        &self,
        expected: Membership,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    ) -> Result<(), ClientError> {
        self.ask(|reply| Command::ChangeMembership {
            expected: Some(expected),
            voters,
            learners,
            reply,
        })
        .await
    }

    /// Adds `node`, listening at `address`, to the cluster: records its address, adds it
    /// as a learner, waits until it has caught up with the log (at most `catch_up`), then
    /// makes it a voter. A voter that is far behind, or not running at all, would slow
    /// every commit or even cost the quorum; so when `node` has not caught up in time it
    /// stays a learner and the result is an unknown outcome of kind
    /// [`Uncertainty::Timeout`]: call [`promote`](RaftHandle::promote) to promote it later.
    ///
    /// A node that is already a member is refused ([`Refusal::AlreadyMember`]): adding it
    /// again would replace its address and could cut a running voter off.
    pub async fn add_voter(
        &self,
        node: NodeId,
        address: String,
        catch_up: Duration,
    ) -> Result<(), ClientError> {
        let status = self.status().await?;
        if status.membership.contains(node) {
            return Err(ClientError::Refused(Refusal::AlreadyMember(node)));
        }
        self.set_address(node, address).await?;
        let membership = status.membership;
        let mut learners = membership.learners.clone();
        learners.insert(node);
        self.change_membership_from(membership.clone(), membership.voters.clone(), learners)
            .await?;
        self.promote(node, catch_up).await
    }

    /// Makes learner `node` a voter once it has caught up with the log, waiting at most
    /// `catch_up` (then an unknown outcome of kind [`Uncertainty::Timeout`]: the node stays
    /// a learner). Refused with [`Refusal::NotLearner`] when `node` is not a learner, for
    /// instance because it was removed meanwhile: a removal always wins over a pending
    /// promotion.
    pub async fn promote(&self, node: NodeId, catch_up: Duration) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + catch_up;
        loop {
            let status = self.status().await?;
            if !status.membership.learners.contains(&node) {
                return Err(ClientError::Refused(Refusal::NotLearner(node)));
            }
            let caught_up = status
                .followers
                .iter()
                .any(|follower| follower.id == node && follower.matched >= status.commit);
            if caught_up {
                let membership = status.membership;
                let mut voters = membership.voters.clone();
                let mut learners = membership.learners.clone();
                learners.remove(&node);
                voters.insert(node);
                match self
                    .change_membership_from(membership, voters, learners)
                    .await
                {
                    // Changed in between (a removal, say): look again.
                    Err(ClientError::Refused(Refusal::ConfigurationChanged)) => {}
                    outcome => return outcome,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::TIMEOUT);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes `node` from the cluster (voter or learner); refused when it is not a
    /// member.
    pub async fn remove(&self, node: NodeId) -> Result<(), ClientError> {
        let status = self.status().await?;
        let membership = status.membership;
        let mut voters = membership.voters.clone();
        let mut learners = membership.learners.clone();
        if !voters.remove(&node) && !learners.remove(&node) {
            return Err(ClientError::Refused(Refusal::NotMember(node)));
        }
        self.change_membership_from(membership, voters, learners)
            .await
    }

    /// Hands leadership to `target`; resolves once the transfer started (watch the role to
    /// see it finish).
    pub async fn transfer_leader(&self, target: NodeId) -> Result<(), ClientError> {
        self.ask(|reply| Command::TransferLeader { target, reply })
            .await
    }

    /// The node's status, with per-follower progress on a leader.
    pub async fn status(&self) -> Result<Status, ClientError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// The replicated address book as this node knows it.
    pub fn addresses(&self) -> AddressBook {
        self.addresses.borrow().clone()
    }

    /// Role, term and leader changes, as they happen.
    pub fn watch(&self) -> watch::Receiver<RoleInfo> {
        self.roles.clone()
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The metrics of this node and its transport in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.metrics.render_prometheus(&self.transport_counters)
    }

    /// Stops the node. A leader first hands leadership to an up-to-date voter when it can
    /// (waiting at most an election timeout), so that the cluster does not wait for an
    /// election. Writes already issued are made durable before the storage stops.
    pub async fn shutdown(&self) {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = answer.await;
        }
    }

    /// Resolves when the node has stopped, with the reason (`None`: a requested shutdown).
    pub async fn stopped(&self) -> Option<String> {
        let mut stopped = self.stopped.clone();
        loop {
            if let Some(reason) = stopped.borrow().clone() {
                return (reason != driver::SHUTDOWN_REASON).then_some(reason);
            }
            if stopped.changed().await.is_err() {
                return None;
            }
        }
    }
}
