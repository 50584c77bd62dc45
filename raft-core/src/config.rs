//! Node configuration, validated once by a builder.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::types::NodeId;

/// The validated settings of one node. Build it with [`Config::builder`].
///
/// Times are counted in ticks: the core has no clock, so the driver decides how long a
/// tick lasts (100 ms is a common choice for a LAN cluster).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    id: NodeId,
    election_ticks_min: u32,
    election_ticks_max: u32,
    heartbeat_ticks: u32,
    append_in_flight_max: usize,
    append_bytes_max: usize,
    uncommitted_bytes_max: usize,
    forward_proposals: bool,
    pre_vote: bool,
    check_quorum: bool,
    read_lease: bool,
    pending_reads_max: usize,
    snapshot_log_bytes: usize,
    compaction_trailing_entries: u64,
    random_seed: u64,
}

impl Config {
    /// Starts a configuration for node `id` with the defaults: election timeout drawn in
    /// `[10, 20)` ticks, a heartbeat every 2 ticks, 256 appends in flight per follower,
    /// 1 MiB per append message, 64 MiB of uncommitted entries, no proposal forwarding,
    /// pre-vote and check-quorum on, reads confirmed by a heartbeat round (no lease) with
    /// at most 4096 pending, a snapshot asked for every 8 MiB of applied log with 1024
    /// entries kept behind it, and a random seed equal to the node id.
    pub fn builder(id: NodeId) -> ConfigBuilder {
        ConfigBuilder {
            config: Config {
                id,
                election_ticks_min: 10,
                election_ticks_max: 20,
                heartbeat_ticks: 2,
                append_in_flight_max: 256,
                append_bytes_max: 1024 * 1024,
                uncommitted_bytes_max: 64 * 1024 * 1024,
                forward_proposals: false,
                pre_vote: true,
                check_quorum: true,
                read_lease: false,
                pending_reads_max: 4096,
                snapshot_log_bytes: 8 * 1024 * 1024,
                compaction_trailing_entries: 1024,
                random_seed: id.0,
            },
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The shortest election timeout, in ticks (inclusive).
    pub fn election_ticks_min(&self) -> u32 {
        self.election_ticks_min
    }

    /// The bound on election timeouts, in ticks (exclusive).
    pub fn election_ticks_max(&self) -> u32 {
        self.election_ticks_max
    }

    /// How often a leader sends heartbeats, in ticks.
    pub fn heartbeat_ticks(&self) -> u32 {
        self.heartbeat_ticks
    }

    /// How many append messages may be unacknowledged per follower.
    pub fn append_in_flight_max(&self) -> usize {
        self.append_in_flight_max
    }

    /// The bytes one append message carries at most, counting each entry's payload plus
    /// [`ENTRY_OVERHEAD_BYTES`](crate::types::ENTRY_OVERHEAD_BYTES) (it always carries at
    /// least one entry, however large).
    pub fn append_bytes_max(&self) -> usize {
        self.append_bytes_max
    }

    /// The bytes (counted as for `append_bytes_max`) a leader holds uncommitted before it
    /// refuses new proposals.
    pub fn uncommitted_bytes_max(&self) -> usize {
        self.uncommitted_bytes_max
    }

    /// Whether a follower forwards proposals to a known leader instead of refusing them.
    pub fn forward_proposals(&self) -> bool {
        self.forward_proposals
    }

    /// Whether a node that times out first asks whether it could win (pre-vote, Raft
    /// thesis §9.6) before raising its term, so that a node rejoining from a partition does
    /// not depose a healthy leader.
    pub fn pre_vote(&self) -> bool {
        self.pre_vote
    }

    /// Whether a leader steps down when it has not heard from a quorum within an election
    /// timeout, and followers that heard from a leader within one ignore vote requests
    /// (except those of a leadership transfer).
    pub fn check_quorum(&self) -> bool {
        self.check_quorum
    }

    /// Whether a leader may answer reads from its lease, without a heartbeat round.
    ///
    /// The lease rests on check-quorum's leader stickiness: a voter that heard the leader
    /// refuses other candidates for `election_ticks_min` of its own ticks. The leader
    /// counts its lease from when it *sent* the heartbeat a quorum answered, for
    /// `(election_ticks_min - 2) * 9 / 10` of its own ticks: the two ticks cover the
    /// granularity of tick counting on both sides, and the tenth assumes that no node's
    /// clock runs more than 10% faster than the leader's. Faster clock drift, or an operator
    /// forcing an election with [`Node::campaign`](crate::Node::campaign), can make a lease
    /// read stale; the default heartbeat-round reads depend on no clock. A driver whose
    /// process stalled (a long pause) must feed the ticks for the time that passed before
    /// it asks for reads again, or the lease would outlive real time.
    pub fn read_lease(&self) -> bool {
        self.read_lease
    }

    /// The most reads a node holds unconfirmed; more are refused.
    pub fn pending_reads_max(&self) -> usize {
        self.pending_reads_max
    }

    /// How much applied log (in bytes counted as for `append_bytes_max`) since the last
    /// snapshot makes the node ask for a new one with
    /// [`Event::SnapshotWanted`](crate::Event::SnapshotWanted).
    pub fn snapshot_log_bytes(&self) -> usize {
        self.snapshot_log_bytes
    }

    /// How many entries below a new snapshot the node keeps in memory, so that a follower
    /// slightly behind catches up from the log rather than from a whole snapshot. The
    /// entries below that are freed once the snapshot is durable, 1,024 at a time over the
    /// following inputs, so that freeing a long prefix never stalls the node at once.
    pub fn compaction_trailing_entries(&self) -> u64 {
        self.compaction_trailing_entries
    }

    /// The seed of the node's random generator (election timeouts).
    pub fn random_seed(&self) -> u64 {
        self.random_seed
    }
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] checks every setting.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Election timeouts are drawn uniformly from `[minimum, maximum)` ticks. A range of one
    /// tick removes the randomization, and with it the protection against repeated split
    /// votes; it exists for experiments. A common choice is `maximum = 2 * minimum`.
    pub fn election_ticks(mut self, minimum: u32, maximum: u32) -> ConfigBuilder {
        self.config.election_ticks_min = minimum;
        self.config.election_ticks_max = maximum;
        self
    }

    /// A leader sends heartbeats every `ticks` ticks.
    pub fn heartbeat_ticks(mut self, ticks: u32) -> ConfigBuilder {
        self.config.heartbeat_ticks = ticks;
        self
    }

    /// At most `count` append messages in flight per follower.
    pub fn append_in_flight_max(mut self, count: usize) -> ConfigBuilder {
        self.config.append_in_flight_max = count;
        self
    }

    /// At most `bytes` payload bytes per append message.
    pub fn append_bytes_max(mut self, bytes: usize) -> ConfigBuilder {
        self.config.append_bytes_max = bytes;
        self
    }

    /// At most `bytes` uncommitted payload bytes before proposals are dropped.
    pub fn uncommitted_bytes_max(mut self, bytes: usize) -> ConfigBuilder {
        self.config.uncommitted_bytes_max = bytes;
        self
    }

    /// Whether followers forward proposals to the leader.
    pub fn forward_proposals(mut self, enabled: bool) -> ConfigBuilder {
        self.config.forward_proposals = enabled;
        self
    }

    /// Enables or disables pre-vote (on by default).
    pub fn pre_vote(mut self, enabled: bool) -> ConfigBuilder {
        self.config.pre_vote = enabled;
        self
    }

    /// Enables or disables check-quorum and leader stickiness (on by default).
    pub fn check_quorum(mut self, enabled: bool) -> ConfigBuilder {
        self.config.check_quorum = enabled;
        self
    }

    /// Lets a leader answer reads from its lease (off by default; needs check-quorum).
    pub fn read_lease(mut self, enabled: bool) -> ConfigBuilder {
        self.config.read_lease = enabled;
        self
    }

    /// At most `count` reads pending per node.
    pub fn pending_reads_max(mut self, count: usize) -> ConfigBuilder {
        self.config.pending_reads_max = count;
        self
    }

    /// Asks for a snapshot once `bytes` of applied log accumulate since the last one.
    pub fn snapshot_log_bytes(mut self, bytes: usize) -> ConfigBuilder {
        self.config.snapshot_log_bytes = bytes;
        self
    }

    /// Keeps `count` entries below each new snapshot in memory (0 drops the whole prefix).
    pub fn compaction_trailing_entries(mut self, count: u64) -> ConfigBuilder {
        self.config.compaction_trailing_entries = count;
        self
    }

    /// Seeds the node's random generator. Give every node and every restart its own seed
    /// so that election timeouts differ.
    pub fn random_seed(mut self, seed: u64) -> ConfigBuilder {
        self.config.random_seed = seed;
        self
    }

    /// Checks the settings and returns the configuration.
    pub fn build(self) -> Result<Config, ConfigError> {
        let config = self.config;
        if config.id.0 == 0 {
            return Err(ConfigError::ReservedNodeId);
        }
        if config.heartbeat_ticks == 0 {
            return Err(ConfigError::ZeroLimit {
                setting: "heartbeat_ticks",
            });
        }
        if config.election_ticks_min <= config.heartbeat_ticks {
            return Err(ConfigError::ElectionNotAboveHeartbeat {
                election_ticks_min: config.election_ticks_min,
                heartbeat_ticks: config.heartbeat_ticks,
            });
        }
        if config.election_ticks_max <= config.election_ticks_min {
            return Err(ConfigError::EmptyElectionRange {
                minimum: config.election_ticks_min,
                maximum: config.election_ticks_max,
            });
        }
        for (setting, value) in [
            ("append_in_flight_max", config.append_in_flight_max),
            ("append_bytes_max", config.append_bytes_max),
            ("uncommitted_bytes_max", config.uncommitted_bytes_max),
            ("pending_reads_max", config.pending_reads_max),
            ("snapshot_log_bytes", config.snapshot_log_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit { setting });
            }
        }
        if config.read_lease && !config.check_quorum {
            return Err(ConfigError::LeaseWithoutCheckQuorum);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The defaults are a valid configuration.
    #[test]
    fn defaults_build() {
        let config = Config::builder(NodeId(1))
            .build()
            .expect("defaults are valid");
        assert_eq!(config.election_ticks_min(), 10);
        assert_eq!(config.random_seed(), 1);
    }

    // Each invalid setting is refused with an error naming it.
    #[test]
    fn invalid_settings_are_refused() {
        let base = || Config::builder(NodeId(1));
        assert_eq!(
            Config::builder(NodeId(0)).build(),
            Err(ConfigError::ReservedNodeId)
        );
        assert_eq!(
            base().heartbeat_ticks(0).build(),
            Err(ConfigError::ZeroLimit {
                setting: "heartbeat_ticks"
            })
        );
        assert_eq!(
            base().heartbeat_ticks(10).build(),
            Err(ConfigError::ElectionNotAboveHeartbeat {
                election_ticks_min: 10,
                heartbeat_ticks: 10
            })
        );
        assert_eq!(
            base().election_ticks(10, 10).build(),
            Err(ConfigError::EmptyElectionRange {
                minimum: 10,
                maximum: 10
            })
        );
        assert_eq!(
            base().append_bytes_max(0).build(),
            Err(ConfigError::ZeroLimit {
                setting: "append_bytes_max"
            })
        );
        assert_eq!(
            base().append_in_flight_max(0).build(),
            Err(ConfigError::ZeroLimit {
                setting: "append_in_flight_max"
            })
        );
        assert_eq!(
            base().read_lease(true).check_quorum(false).build(),
            Err(ConfigError::LeaseWithoutCheckQuorum)
        );
        assert!(base().read_lease(true).build().is_ok());
        assert_eq!(
            base().uncommitted_bytes_max(0).build(),
            Err(ConfigError::ZeroLimit {
                setting: "uncommitted_bytes_max"
            })
        );
    }
}
