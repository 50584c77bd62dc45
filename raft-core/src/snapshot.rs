//! Snapshots as the core sees them: metadata only. Snapshot *data* never passes through
//! the core; the driver builds, stores, sends and restores it, and the core names which
//! snapshot each step concerns.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::quorum::Membership;
use crate::types::LogId;

/// Identifies a snapshot and says what it covers: the state machine after applying every
/// entry through `last_included`, under the configuration in effect at that entry.
///
/// The driver stores it next to the snapshot data: a restarted node recovers it in
/// [`Recovered::snapshot`](crate::Recovered::snapshot).
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    /// The last entry the snapshot covers.
    pub last_included: LogId,
    /// The configuration in effect at `last_included` (committed, since every entry a
    /// snapshot covers is).
    pub membership: Membership,
}

/// What the transport reports about a snapshot it was asked to send with
/// [`Action::SendSnapshot`](crate::Action::SendSnapshot).
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotTransfer {
    /// The receiver got the whole snapshot. The leader waits for its acknowledgement
    /// before streaming entries again.
    Delivered,
    /// The transfer failed (connection lost, receiver down, snapshot no longer held). The
    /// leader probes the follower again and sends a snapshot again if it still needs one.
    Failed,
}

impl fmt::Display for SnapshotMetadata {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "snapshot@{} [{}]",
            self.last_included, self.membership
        )
    }
}
