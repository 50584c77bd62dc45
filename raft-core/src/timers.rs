//! The node's logical timers, in one table.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

/// Tick counters for the node's timers. Followers and candidates count toward an election;
/// leaders toward the next heartbeat and the next quorum check. (A leadership transfer's
/// deadline lives with the transfer, in the leader's state.)
#[derive(Clone, Debug)]
pub(crate) struct Timers {
    /// Ticks since the election timer was last reset.
    pub(crate) election_elapsed: u32,
    /// The current randomized election timeout, in `[min, max)`.
    pub(crate) election_timeout: u32,
    /// Ticks since the leader last sent heartbeats.
    pub(crate) heartbeat_elapsed: u32,
    /// Ticks since the leader last checked that a quorum is still active (check-quorum).
    pub(crate) quorum_check_elapsed: u32,
}

impl Timers {
    /// Timers with a freshly drawn election timeout.
    pub(crate) fn new(random: &mut ChaCha8Rng, minimum: u32, maximum: u32) -> Timers {
        let mut timers = Timers {
            election_elapsed: 0,
            election_timeout: minimum,
            heartbeat_elapsed: 0,
            quorum_check_elapsed: 0,
        };
        timers.reset_election(random, minimum, maximum);
        timers
    }

    /// Restarts the election timer with a new random timeout, so that nodes which reset
    /// together do not time out together.
    pub(crate) fn reset_election(&mut self, random: &mut ChaCha8Rng, minimum: u32, maximum: u32) {
        let span = u64::from(maximum - minimum);
        // The modulo bias is below 2^-32 for any span a u32 can hold: irrelevant here.
        let offset = random.next_u64() % span;
        self.election_elapsed = 0;
        self.election_timeout = minimum + u32::try_from(offset).unwrap_or(0);
    }
}
