//! Writes from many HTTP requests handed to raft together, so that the leader replicates
//! them in one append per follower instead of one each.
//!
//! Were each request's handler task to propose on its own, its proposal would wake the
//! raft driver, which Tokio runs next on the same worker, before any other request is
//! read: every write would cost the leader an append message to each follower and each
//! follower an answer, a system call at each end. Measured with 64 clients, the leader's
//! `raft_messages_sent_total` grows by 1.9 per write that way, and by 0.26 in batches.
//!
//! Here handlers queue their commands instead. One task takes the first command, yields
//! once so that every request already readable reaches the queue too, then hands all
//! that are queued to raft from a single task: they reach the driver before it runs, and
//! raft-core turns them into one write and one append per follower. With one client the
//! batch is that client's write alone, at the cost of a channel hop.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use raft_tokio::{ClientError, RaftHandle, StopReason, Uncertainty};
use tokio::sync::{mpsc, oneshot};

/// The most commands proposed together: a bound on each batch's memory and on how long
/// its task takes to hand them over. Well above the batches 64 clients form.
const BATCH_COMMANDS_MAX: usize = 256;

/// Commands waiting for the batching task; more wait in their handlers.
const QUEUE_COMMANDS_MAX: usize = 4096;

/// A command waiting to be proposed, and where its outcome goes.
struct Queued {
    command: Bytes,
    reply: oneshot::Sender<Result<Bytes, ClientError>>,
}

/// Proposes commands in batches; cloned into every request handler.
#[derive(Clone, Debug)]
pub(crate) struct Proposer {
    queue: mpsc::Sender<Queued>,
}

impl Proposer {
    /// Starts the batching task, which runs until every `Proposer` is dropped.
    pub(crate) fn start(raft: RaftHandle) -> Proposer {
        let (queue, queued) = mpsc::channel(QUEUE_COMMANDS_MAX);
        tokio::spawn(batch(raft, queued));
        Proposer { queue }
    }

    /// Proposes `command`, as [`RaftHandle::propose`] does, in a batch with the commands
    /// of other requests.
    pub(crate) async fn propose(&self, command: Bytes) -> Result<Bytes, ClientError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Queued { command, reply })
            .await
            .map_err(|_| ClientError::Stopped(StopReason::ShutDown))?;
        // The batch task answers every command it took, unless the runtime is stopping,
        // in which case the command may have been proposed.
        outcome
            .await
            .unwrap_or(Err(ClientError::OutcomeUnknown(Uncertainty::Stopped(
                StopReason::ShutDown,
            ))))
    }
}

/// Takes queued commands in batches and proposes each batch from a task of its own, so
/// that a batch waiting for its commit does not hold back the next.
async fn batch(raft: RaftHandle, mut queued: mpsc::Receiver<Queued>) {
    while let Some(first) = queued.recv().await {
        // Tokio runs a woken task next on the same worker: without this, every batch
        // would hold just the request that woke this task.
        tokio::task::yield_now().await;
        let mut commands = vec![first];
        while commands.len() < BATCH_COMMANDS_MAX {
            match queued.try_recv() {
                Ok(next) => commands.push(next),
                Err(_) => break,
            }
        }
        tokio::spawn(propose_together(raft.clone(), commands));
    }
}

/// Proposes every command from this one task: its first poll puts them all on the
/// driver's queue before the driver can run.
async fn propose_together(raft: RaftHandle, commands: Vec<Queued>) {
    let proposals = commands
        .into_iter()
        .map(|Queued { command, reply }| {
            let raft = raft.clone();
            Box::pin(async move {
                // A handler that gave up (its request timed out) no longer listens.
                let _ = reply.send(raft.propose(command).await);
            }) as Pin<Box<dyn Future<Output = ()> + Send>>
        })
        .collect();
    AllDone { proposals }.await;
}

/// Polls every proposal until all are done.
struct AllDone {
    proposals: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Future for AllDone {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        self.proposals
            .retain_mut(|proposal| proposal.as_mut().poll(context).is_pending());
        if self.proposals.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use raft_core::{Config, NodeId, Role};
    use raft_tokio::NodeOptions;
    use raft_tokio::storage::MemoryLogStore;
    use raft_tokio::transport::InProcessNetwork;

    use super::*;
    use crate::machine::{Command, KeyValueStore};

    /// A one-node cluster in memory, leading, with 10 ms ticks.
    async fn leader() -> RaftHandle {
        let config = Config::builder(NodeId(1))
            .election_ticks(10, 20)
            .build()
            .expect("a valid configuration");
        let mut options = NodeOptions::in_process(config, 1, InProcessNetwork::new(), [NodeId(1)]);
        options.tick = Duration::from_millis(10);
        let raft = raft_tokio::start(options, MemoryLogStore::new(), KeyValueStore::default())
            .await
            .expect("the node starts");
        let mut roles = raft.watch();
        tokio::time::timeout(Duration::from_secs(10), async {
            while roles.borrow_and_update().role != Role::Leader {
                roles.changed().await.expect("the node runs");
            }
        })
        .await
        .expect("a lone node elects itself");
        raft
    }

    // Writes that arrive together reach raft together: 64 concurrent writes take far
    // fewer storage writes than 64, and each still gets its own answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_storage_writes() {
        let raft = leader().await;
        let proposer = Proposer::start(raft.clone());
        let writes_before = raft.metrics().writes.load(Ordering::Relaxed);
        let clients: Vec<_> = (0..64)
            .map(|client| {
                let proposer = proposer.clone();
                tokio::spawn(async move {
                    let command = Command::Put {
                        key: format!("key-{client}"),
                        value: Bytes::from_static(b"value"),
                    };
                    proposer.propose(command.encode()).await
                })
            })
            .collect();
        for client in clients {
            let outcome = client.await.expect("the client task runs");
            assert!(outcome.is_ok(), "a write failed: {outcome:?}");
        }
        let writes = raft.metrics().writes.load(Ordering::Relaxed) - writes_before;
        assert!(
            writes <= 16,
            "64 concurrent writes took {writes} storage writes"
        );
    }
}
