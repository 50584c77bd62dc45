//! Per-role state and step functions. Each role's data lives in its variant, so that, for
//! instance, replication progress cannot exist on a follower.

pub(crate) mod candidate;
pub(crate) mod follower;
pub(crate) mod leader;

use crate::status::Role;

use self::candidate::CandidateState;
use self::leader::LeaderState;

/// The role a node plays, with that role's own state.
#[derive(Debug)]
pub(crate) enum RoleState {
    Follower,
    PreCandidate(CandidateState),
    Candidate(CandidateState),
    Leader(LeaderState),
}

impl RoleState {
    pub(crate) fn role(&self) -> Role {
        match self {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate(_) => Role::PreCandidate,
            RoleState::Candidate(_) => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
}
