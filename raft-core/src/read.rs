//! Linearizable reads: the leader's queue of reads waiting for a heartbeat round, its
//! lease, and a follower's reads forwarded to the leader.
//!
//! A read registered at commit index `c` in round `r` is safe once a quorum has answered a
//! heartbeat of round `r` or later: those answers prove that no other leader had been
//! elected when the read was registered, so `c` covers every write completed before it. A
//! new leader registers reads only once an entry of its own term is committed, because
//! until then its commit index may lag behind its predecessor's.

use std::collections::{BTreeSet, VecDeque};

use crate::action::{Event, ReadId};
use crate::message::MessageBody;
use crate::shared::Shared;
use crate::types::{Index, NodeId};

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Requester {
    /// A caller of this node.
    Local(ReadId),
    /// A follower, for one of its callers.
    Remote {
        /// The follower.
        node: NodeId,
        /// Its request number.
        request: u64,
    },
}

#[derive(Clone, Copy, Debug)]
struct PendingRead {
    requester: Requester,
    index: Index,
    round: u64,
}

/// A leader's reads and lease.
#[derive(Debug)]
pub(crate) struct ReadQueue {
    /// Reads that arrived before an entry of this term committed.
    waiting: VecDeque<Requester>,
    /// Reads registered at an index, waiting for a quorum to answer their round.
    pending: VecDeque<PendingRead>,
    /// The round the next heartbeat broadcast carries; new reads join it.
    next_round: u64,
    /// A read waits for a round not yet sent: broadcast without waiting for the tick.
    round_needed: bool,
    /// Rounds sent and not yet confirmed, with the leader tick they were sent at.
    sent_rounds: VecDeque<(u64, u64)>,
    /// The leader tick before which the lease holds.
    lease_until: u64,
    /// A leadership transfer began this term: the lease is never trusted again, since the
    /// target may win an election while this node still believes its lease.
    lease_revoked: bool,
}

impl ReadQueue {
    pub(crate) fn new() -> ReadQueue {
        ReadQueue {
            waiting: VecDeque::new(),
            pending: VecDeque::new(),
            next_round: 1,
            round_needed: false,
            sent_rounds: VecDeque::new(),
            lease_until: 0,
            lease_revoked: false,
        }
    }

    /// How many reads wait, in either stage.
    pub(crate) fn len(&self) -> usize {
        self.waiting.len() + self.pending.len()
    }

    pub(crate) fn wait_for_own_commit(&mut self, requester: Requester) {
        self.waiting.push_back(requester);
    }

    /// The reads that waited for an entry of this term to commit.
    pub(crate) fn take_waiting(&mut self) -> Vec<Requester> {
        self.waiting.drain(..).collect()
    }

    /// Registers a read at `index`, to be confirmed by the next round.
    pub(crate) fn register(&mut self, requester: Requester, index: Index) {
        self.pending.push_back(PendingRead {
            requester,
            index,
            round: self.next_round,
        });
        self.round_needed = true;
    }

    /// Whether a read waits for a round that has not been sent.
    pub(crate) fn round_needed(&self) -> bool {
        self.round_needed
    }

    /// Starts a heartbeat round at leader tick `tick`; returns its number.
    pub(crate) fn start_round(&mut self, tick: u64) -> u64 {
        let round = self.next_round;
        self.next_round += 1;
        self.round_needed = false;
        // Only the newest unconfirmed rounds matter for the lease; bound the list.
        if self.sent_rounds.len() >= 64 {
            self.sent_rounds.pop_front();
        }
        self.sent_rounds.push_back((round, tick));
        round
    }

    /// A quorum answered rounds up to `round`: releases the reads of those rounds and
    /// extends the lease from when that round was sent.
    pub(crate) fn confirm(&mut self, round: u64, lease_ticks: u64) -> Vec<(Requester, Index)> {
        while let Some((sent_round, tick)) = self.sent_rounds.front().copied() {
            if sent_round > round {
                break;
            }
            if sent_round == round {
                self.lease_until = self.lease_until.max(tick + lease_ticks);
            }
            self.sent_rounds.pop_front();
        }
        let mut ready = Vec::new();
        while self.pending.front().is_some_and(|read| read.round <= round) {
            if let Some(read) = self.pending.pop_front() {
                ready.push((read.requester, read.index));
            }
        }
        ready
    }

    /// Whether the lease covers leader tick `tick`.
    pub(crate) fn lease_valid(&self, tick: u64) -> bool {
        !self.lease_revoked && tick < self.lease_until
    }

    pub(crate) fn revoke_lease(&mut self) {
        self.lease_revoked = true;
    }

    /// Every read still waiting, for the leader to abort when it steps down.
    pub(crate) fn drain_all(&mut self) -> Vec<Requester> {
        let mut all: Vec<Requester> = self.waiting.drain(..).collect();
        all.extend(self.pending.drain(..).map(|read| read.requester));
        all
    }
}

/// Tells a requester its read may be served at `index`, or (`None`) that it failed.
pub(crate) fn answer(shared: &mut Shared, requester: Requester, index: Option<Index>) {
    match (requester, index) {
        (Requester::Local(id), Some(index)) => shared.event(Event::ReadReady { id, index }),
        (Requester::Local(id), None) => shared.event(Event::ReadAborted { id }),
        (Requester::Remote { node, request }, index) => {
            shared.send(node, MessageBody::ReadIndexResponse { request, index });
        }
    }
}

/// The ids of this node's reads (whatever its role), and those it forwarded to the leader
/// and awaits answers for.
#[derive(Debug, Default)]
pub(crate) struct LocalReads {
    next_sequence: u64,
    /// Sequence numbers of reads sent to `leader` and not answered.
    outstanding: BTreeSet<u64>,
    leader: Option<NodeId>,
}

impl LocalReads {
    /// A fresh id for a read on node `node`.
    pub(crate) fn next_id(&mut self, node: NodeId) -> ReadId {
        self.next_sequence += 1;
        ReadId {
            node,
            sequence: self.next_sequence,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.outstanding.len()
    }

    pub(crate) fn forward(&mut self, leader: NodeId, id: ReadId) {
        self.leader = Some(leader);
        self.outstanding.insert(id.sequence);
    }

    /// The leader answered request `sequence`; whether it was outstanding.
    pub(crate) fn answered(&mut self, from: NodeId, sequence: u64) -> bool {
        self.leader == Some(from) && self.outstanding.remove(&sequence)
    }

    /// The leader changed: every outstanding read is lost.
    pub(crate) fn abandon(&mut self) -> Vec<u64> {
        self.leader = None;
        std::mem::take(&mut self.outstanding).into_iter().collect()
    }
}
