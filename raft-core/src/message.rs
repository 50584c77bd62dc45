//! Messages between nodes.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::snapshot::SnapshotMetadata;
use crate::types::{Entry, Index, LogId, NodeId, Term};

/// One message from one node to another. Every message carries its sender's term, which
/// is how nodes learn of newer terms.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// The sender's current term.
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// A candidate asks for a vote; `last_log` lets the voter check the candidate's log
    /// is at least as up to date as its own.
    RequestVote {
        /// The candidate's last log entry.
        last_log: LogId,
        /// The election follows a leadership transfer (or an explicit campaign): voters
        /// that still hear from a leader vote anyway.
        transfer: bool,
    },
    /// The answer to `RequestVote`, sent only once the vote is durable.
    RequestVoteResponse {
        /// Whether the vote was granted.
        granted: bool,
    },
    /// A pre-candidate asks whether it could win an election in the message's term,
    /// without raising its own term or anyone else's.
    PreVote {
        /// The pre-candidate's last log entry.
        last_log: LogId,
        /// The target of a leadership transfer asks the leader that sent it `TimeoutNow`
        /// whether the transfer is still in progress: the leader grants it only then
        /// (leaders refuse every other pre-vote), so that a `TimeoutNow` delayed past the
        /// transfer's deadline cannot depose it.
        transfer: bool,
    },
    /// The answer to `PreVote`. A grant carries the term asked about; a refusal carries the
    /// responder's own term.
    PreVoteResponse {
        /// Whether the responder would vote.
        granted: bool,
    },
    /// The leader tells the target of a leadership transfer to start an election now,
    /// once the leader confirms the transfer is still on (see `PreVote::transfer`).
    TimeoutNow,
    /// The leader replicates entries following `previous`, which the receiver must hold.
    AppendEntries {
        /// The entry just before `entries`; the consistency check compares it.
        previous: LogId,
        /// The entries to append, possibly none.
        entries: Vec<Entry>,
        /// The leader's commit index.
        commit: Index,
    },
    /// The answer to `AppendEntries`, and to `InstallSnapshot`.
    AppendEntriesResponse(AppendResponse),
    /// The leader replaces a follower's lagging log with a snapshot. The data travels
    /// beside the message (see [`Action::SendSnapshot`](crate::Action::SendSnapshot));
    /// the follower answers with an acceptance at the snapshot's last index once it is
    /// durable.
    InstallSnapshot {
        /// The snapshot sent (boxed: it is rare, and every other message stays small).
        snapshot: Box<SnapshotMetadata>,
    },
    /// The leader asserts its leadership and shares its commit index, capped at what the
    /// receiver is known to hold.
    Heartbeat {
        /// The commit index the receiver may adopt.
        commit: Index,
        /// The leader's latest read round: an answer confirms the leadership for every
        /// read registered in this round or before.
        round: u64,
    },
    /// The answer to `Heartbeat`, echoing its read round.
    HeartbeatResponse {
        /// The round of the heartbeat answered.
        round: u64,
    },
    /// A follower asks the leader for a read index on behalf of its own caller.
    ReadIndex {
        /// The follower's number for the request, echoed in the answer.
        request: u64,
    },
    /// The leader's answer to `ReadIndex`.
    ReadIndexResponse {
        /// The follower's request number.
        request: u64,
        /// The index to wait for before reading, or `None` if the leader could not serve it
        /// (it is stepping down, or is not the leader).
        index: Option<Index>,
    },
    /// A follower hands proposals to the leader (when forwarding is enabled).
    ForwardProposals {
        /// The proposed commands, in order.
        #[cfg_attr(
            feature = "arbitrary",
            arbitrary(with = crate::arbitrary_support::byte_list)
        )]
        commands: Vec<Bytes>,
    },
    /// The leader tells a node that its committed configuration no longer lists it: the
    /// answer to a vote request, pre-vote or response from such a node, which, having
    /// missed the entry that removed it, would otherwise campaign forever. The receiver
    /// believes it only in its current term (an earlier term's is dropped like any stale
    /// message) and only while the configuration it follows is no newer than `index`.
    Removed {
        /// The index of the leader's committed configuration (its entry, or the point its
        /// log starts from) that leaves the receiver out.
        index: Index,
    },
}

/// The outcome of an `AppendEntries`.
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResponse {
    /// The receiver holds, durably, the leader's log up to `matched`.
    Accepted {
        /// The last index known to match the leader's log and be durable.
        matched: Index,
    },
    /// The receiver lacks the entry at `rejected` (the request's previous index) or holds
    /// a different one. `hint` is the receiver's last entry at or below `rejected` whose
    /// term is no greater than the request's previous term, from which the leader finds
    /// the match point in one round trip.
    Rejected {
        /// The previous index of the rejected request.
        rejected: Index,
        /// Where the leader should look for the match point.
        hint: LogId,
    },
    /// The receiver's term is higher; the message's term tells the sender.
    StaleTerm,
}

impl Message {
    /// A short name of the message kind, for traces.
    pub fn kind(&self) -> &'static str {
        match self.body {
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteResponse { .. } => "RequestVoteResponse",
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesResponse(..) => "AppendEntriesResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::ReadIndex { .. } => "ReadIndex",
            MessageBody::ReadIndexResponse { .. } => "ReadIndexResponse",
            MessageBody::ForwardProposals { .. } => "ForwardProposals",
            MessageBody::Removed { .. } => "Removed",
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}->{} {} {}",
            self.from,
            self.to,
            self.term,
            self.kind()
        )?;
        match &self.body {
            MessageBody::RequestVote { last_log, transfer } => {
                write!(formatter, " last={last_log}")?;
                if *transfer {
                    formatter.write_str(" transfer")?;
                }
                Ok(())
            }
            MessageBody::PreVote { last_log, transfer } => {
                write!(formatter, " last={last_log}")?;
                if *transfer {
                    formatter.write_str(" transfer")?;
                }
                Ok(())
            }
            MessageBody::RequestVoteResponse { granted }
            | MessageBody::PreVoteResponse { granted } => {
                write!(formatter, " granted={granted}")
            }
            MessageBody::TimeoutNow => Ok(()),
            MessageBody::AppendEntries {
                previous,
                entries,
                commit,
            } => {
                write!(formatter, " prev={previous} commit={} entries=[", commit.0)?;
                for (position, entry) in entries.iter().enumerate() {
                    if position > 0 {
                        formatter.write_str(" ")?;
                    }
                    write!(formatter, "{entry}")?;
                }
                formatter.write_str("]")
            }
            MessageBody::AppendEntriesResponse(response) => match response {
                AppendResponse::Accepted { matched } => {
                    write!(formatter, " accepted matched={}", matched.0)
                }
                AppendResponse::Rejected { rejected, hint } => {
                    write!(formatter, " rejected={} hint={hint}", rejected.0)
                }
                AppendResponse::StaleTerm => formatter.write_str(" stale-term"),
            },
            MessageBody::InstallSnapshot { snapshot } => write!(formatter, " {snapshot}"),
            MessageBody::Heartbeat { commit, round } => {
                write!(formatter, " commit={} round={round}", commit.0)
            }
            MessageBody::HeartbeatResponse { round } => write!(formatter, " round={round}"),
            MessageBody::ReadIndex { request } => write!(formatter, " request={request}"),
            MessageBody::ReadIndexResponse { request, index } => match index {
                Some(index) => write!(formatter, " request={request} index={}", index.0),
                None => write!(formatter, " request={request} refused"),
            },
            MessageBody::ForwardProposals { commands } => {
                write!(formatter, " commands={}", commands.len())
            }
            MessageBody::Removed { index } => write!(formatter, " index={}", index.0),
        }
    }
}
