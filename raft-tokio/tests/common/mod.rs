//! Helpers shared by the test files: a node's transport with its inbound channel, counters
//! and address book, waiting with a deadline, and a register state machine.
#![allow(dead_code)]

pub(crate) mod cluster;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft_core::{Index, Message, MessageBody, NodeId, Term};
use raft_tokio::transport::{AddressBook, Inbound, Transport, TransportCounters};
use tokio::sync::{mpsc, watch};

/// The cluster id every test node uses.
pub(crate) const CLUSTER: u64 = 7;

/// How long a test waits for anything before failing.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// One test node: its transport, what it received, its counters and its address book.
pub(crate) struct Node {
    pub(crate) id: u64,
    pub(crate) transport: Transport,
    pub(crate) inbound: mpsc::Receiver<Inbound>,
    pub(crate) counters: Arc<TransportCounters>,
    pub(crate) book: watch::Sender<AddressBook>,
}

pub(crate) async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub(crate) async fn next_inbound(node: &mut Node) -> Inbound {
    within("an inbound item", node.inbound.recv())
        .await
        .expect("the transport holds the inbound sender")
}

pub(crate) async fn next_message(node: &mut Node) -> Message {
    match next_inbound(node).await {
        Inbound::Message(message) => message,
        other => panic!("expected a message, got {other:?}"),
    }
}

pub(crate) async fn wait_for_count(counter: &AtomicU64, at_least: u64, what: &str) {
    within(what, async {
        while counter.load(Ordering::Relaxed) < at_least {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

pub(crate) fn heartbeat(from: u64, to: u64, round: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(3),
        body: MessageBody::Heartbeat {
            commit: Index(10),
            round,
        },
    }
}
