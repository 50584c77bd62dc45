//! Fault profiles and the fault plan a seed draws from them.

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use serde::{Deserialize, Serialize};

/// Nanoseconds per millisecond.
pub const MILLISECOND: u64 = 1_000_000;
/// Nanoseconds per second.
pub const SECOND: u64 = 1_000_000_000;

/// `nanos` in the shortest exact spelling of the largest unit: `20s`, `1500ms`, `250us`,
/// `7ns` (how the command line prints and parses durations).
pub fn format_duration(nanos: u64) -> String {
    const MICROSECOND: u64 = 1_000;
    if nanos == 0 {
        "0s".to_string()
    } else if nanos.is_multiple_of(SECOND) {
        format!("{}s", nanos / SECOND)
    } else if nanos.is_multiple_of(MILLISECOND) {
        format!("{}ms", nanos / MILLISECOND)
    } else if nanos.is_multiple_of(MICROSECOND) {
        format!("{}us", nanos / MICROSECOND)
    } else {
        format!("{nanos}ns")
    }
}

/// A named set of fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultProfile {
    /// A healthy cluster: latency and a little clock drift only.
    None,
    /// Loss, duplication, long-tail latency, partitions of every shape, clogged links.
    Net,
    /// Crashes and restarts.
    Crash,
    /// Slow, variable fsyncs, and crashes that lose what was not yet durable.
    Disk,
    /// Large clock drift between nodes.
    Clock,
    /// Paused processes that resume with a backlog.
    Pause,
    /// Everything above.
    All,
}

impl FaultProfile {
    /// Every profile, in the order of [`FaultProfile::name`]s in help texts.
    pub const ALL: [FaultProfile; 7] = [
        FaultProfile::None,
        FaultProfile::Net,
        FaultProfile::Crash,
        FaultProfile::Disk,
        FaultProfile::Clock,
        FaultProfile::Pause,
        FaultProfile::All,
    ];

    /// The profile's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            FaultProfile::None => "none",
            FaultProfile::Net => "net",
            FaultProfile::Crash => "crash",
            FaultProfile::Disk => "disk",
            FaultProfile::Clock => "clock",
            FaultProfile::Pause => "pause",
            FaultProfile::All => "all",
        }
    }

    fn has(self, kind: FaultProfile) -> bool {
        self == kind || self == FaultProfile::All
    }
}

impl fmt::Display for FaultProfile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for FaultProfile {
    type Err = String;

    fn from_str(text: &str) -> Result<FaultProfile, String> {
        FaultProfile::ALL
            .into_iter()
            .find(|profile| profile.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultProfile::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown fault profile '{text}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// The concrete fault rates of one run, drawn from its seed within the profile's ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The profile the plan was drawn from.
    pub profile: FaultProfile,
    /// Minimum one-way message latency.
    pub latency_base_nanos: u64,
    /// Mean of the exponential long tail added to some messages.
    pub latency_tail_nanos: u64,
    /// Share of messages that get the long tail.
    pub latency_tail_probability: f64,
    /// Share of messages lost.
    pub loss_probability: f64,
    /// Share of messages delivered twice.
    pub duplicate_probability: f64,
    /// Mean time between network faults (partitions, clogs); 0 disables them.
    pub network_fault_interval_nanos: u64,
    /// Mean time between crashes; 0 disables them.
    pub crash_interval_nanos: u64,
    /// Longest time a crashed node stays down.
    pub restart_delay_max_nanos: u64,
    /// Mean time between pauses; 0 disables them.
    pub pause_interval_nanos: u64,
    /// Longest pause.
    pub pause_max_nanos: u64,
    /// Shortest fsync.
    pub fsync_min_nanos: u64,
    /// Longest fsync.
    pub fsync_max_nanos: u64,
    /// Largest clock-rate deviation of a node, as a fraction (0.1 = ±10%).
    pub clock_drift: f64,
    /// Whether leaders answer reads from their lease (else by a heartbeat round).
    pub read_lease: bool,
    /// Mean time between leadership transfers asked of the leader; 0 disables them.
    pub transfer_interval_nanos: u64,
    /// Mean time between configuration changes (demoting a voter to learner, promoting a
    /// learner, or both at once through a joint configuration); 0 disables them.
    pub membership_interval_nanos: u64,
    /// The nodes' [`snapshot_log_bytes`](raft_core::Config::snapshot_log_bytes): small, so
    /// that snapshots, compaction and snapshot transfers happen often.
    pub snapshot_log_bytes: usize,
    /// The nodes' [`compaction_trailing_entries`](raft_core::Config::compaction_trailing_entries).
    pub compaction_trailing_entries: u64,
}

fn between(random: &mut ChaCha8Rng, minimum: u64, maximum: u64) -> u64 {
    if maximum <= minimum {
        return minimum;
    }
    minimum + random.next_u64() % (maximum - minimum + 1)
}

/// A uniform draw in `[0, 1)`.
pub(crate) fn unit(random: &mut ChaCha8Rng) -> f64 {
    (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultPlan {
    /// Draws a plan for `profile`. The ranges follow what simulators of production
    /// systems use (packet loss up to 30%, delays of milliseconds with a long tail).
    pub fn draw(profile: FaultProfile, random: &mut ChaCha8Rng) -> FaultPlan {
        let mut plan = FaultPlan {
            profile,
            latency_base_nanos: between(random, 200_000, 2 * MILLISECOND),
            latency_tail_nanos: 0,
            latency_tail_probability: 0.0,
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            network_fault_interval_nanos: 0,
            crash_interval_nanos: 0,
            restart_delay_max_nanos: 0,
            pause_interval_nanos: 0,
            pause_max_nanos: 0,
            fsync_min_nanos: between(random, 50_000, 500_000),
            fsync_max_nanos: 0,
            clock_drift: 0.01,
            read_lease: random.next_u64().is_multiple_of(2),
            transfer_interval_nanos: 0,
            membership_interval_nanos: 0,
            snapshot_log_bytes: raft_core::Config::builder(raft_core::NodeId(1))
                .build()
                .map_or(usize::MAX, |config| config.snapshot_log_bytes()),
            compaction_trailing_entries: 0,
        };
        plan.fsync_max_nanos = plan.fsync_min_nanos * 2;
        if profile.has(FaultProfile::Net) {
            plan.latency_tail_nanos = between(random, 5 * MILLISECOND, 50 * MILLISECOND);
            plan.latency_tail_probability = unit(random) * 0.1;
            plan.loss_probability = unit(random) * 0.3;
            plan.duplicate_probability = unit(random) * 0.05;
            plan.network_fault_interval_nanos = between(random, 500 * MILLISECOND, 3 * SECOND);
        }
        if profile.has(FaultProfile::Crash) || profile.has(FaultProfile::Disk) {
            plan.crash_interval_nanos = between(random, SECOND, 5 * SECOND);
            plan.restart_delay_max_nanos = between(random, 100 * MILLISECOND, 2 * SECOND);
        }
        if profile.has(FaultProfile::Disk) {
            plan.fsync_min_nanos = between(random, 100_000, 5 * MILLISECOND);
            plan.fsync_max_nanos = plan.fsync_min_nanos + between(random, 0, 50 * MILLISECOND);
        }
        if profile.has(FaultProfile::Pause) {
            plan.pause_interval_nanos = between(random, SECOND, 5 * SECOND);
            plan.pause_max_nanos = between(random, 100 * MILLISECOND, 3 * SECOND);
        }
        if profile.has(FaultProfile::Clock) {
            plan.clock_drift = 0.02 + unit(random) * 0.08;
        }
        if profile == FaultProfile::All {
            plan.transfer_interval_nanos = between(random, SECOND, 5 * SECOND);
            plan.membership_interval_nanos = between(random, SECOND, 5 * SECOND);
        }
        if profile != FaultProfile::None {
            // Every few dozen entries to every few hundred: several snapshots per run, and
            // followers behind the compaction point after a crash or a partition.
            plan.snapshot_log_bytes =
                usize::try_from(between(random, 512, 16 * 1024)).unwrap_or(usize::MAX);
            plan.compaction_trailing_entries = between(random, 0, 50);
        }
        if plan.read_lease {
            // The lease assumes no clock runs more than 10% faster than the leader's: with
            // every node within ±4.5%, any two differ by less than that.
            plan.clock_drift = plan.clock_drift.min(0.045);
        }
        plan
    }
}

impl FaultPlan {
    /// Checks a plan given by hand (or shrunk); the error is one line naming the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, probability) in [
            ("latency_tail_probability", self.latency_tail_probability),
            ("loss_probability", self.loss_probability),
            ("duplicate_probability", self.duplicate_probability),
        ] {
            if !(0.0..=1.0).contains(&probability) {
                return Err(format!(
                    "plan: {name} must be between 0 and 1, got {probability}"
                ));
            }
        }
        if self.fsync_min_nanos > self.fsync_max_nanos {
            return Err("plan: fsync_min_nanos must not exceed fsync_max_nanos".to_string());
        }
        if !(0.0..0.5).contains(&self.clock_drift) {
            return Err(format!(
                "plan: clock_drift must be at least 0 and below 0.5, got {}",
                self.clock_drift
            ));
        }
        if self.snapshot_log_bytes == 0 {
            return Err("plan: snapshot_log_bytes must be greater than zero".to_string());
        }
        Ok(())
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let milliseconds = |nanos: u64| nanos as f64 / MILLISECOND as f64;
        write!(
            formatter,
            "faults={} latency={:.2}ms+tail({:.0}% of {:.1}ms) loss={:.1}% duplicate={:.1}% \
             net-faults-every={:.0}ms crash-every={:.0}ms down<={:.0}ms pause-every={:.0}ms \
             pause<={:.0}ms fsync={:.2}..{:.2}ms drift=±{:.1}% reads={} transfer-every={:.0}ms membership-every={:.0}ms snapshot-every={}B \
             trailing={}",
            self.profile,
            milliseconds(self.latency_base_nanos),
            self.latency_tail_probability * 100.0,
            milliseconds(self.latency_tail_nanos),
            self.loss_probability * 100.0,
            self.duplicate_probability * 100.0,
            milliseconds(self.network_fault_interval_nanos),
            milliseconds(self.crash_interval_nanos),
            milliseconds(self.restart_delay_max_nanos),
            milliseconds(self.pause_interval_nanos),
            milliseconds(self.pause_max_nanos),
            milliseconds(self.fsync_min_nanos),
            milliseconds(self.fsync_max_nanos),
            self.clock_drift * 100.0,
            if self.read_lease {
                "lease"
            } else {
                "read-index"
            },
            milliseconds(self.transfer_interval_nanos),
            milliseconds(self.membership_interval_nanos),
            self.snapshot_log_bytes,
            self.compaction_trailing_entries
        )
    }
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;

    use super::*;

    // Profiles parse from their names, and an unknown name is a one-line error naming the choices.
    #[test]
    fn profiles_parse() {
        for profile in FaultProfile::ALL {
            assert_eq!(profile.name().parse::<FaultProfile>(), Ok(profile));
        }
        let error = "nets".parse::<FaultProfile>().expect_err("unknown");
        assert!(
            error.contains("none, net, crash, disk, clock, pause, all"),
            "{error}"
        );
        assert!(!error.contains('\n'));
    }

    // A plan is a function of the seed, enables only its profile's faults, and stays in range.
    #[test]
    fn plans_are_seeded_and_bounded() {
        let draw = |profile, seed| FaultPlan::draw(profile, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(draw(FaultProfile::All, 3), draw(FaultProfile::All, 3));
        let none = draw(FaultProfile::None, 3);
        assert_eq!(none.loss_probability, 0.0);
        assert_eq!(none.crash_interval_nanos, 0);
        assert_eq!(none.pause_interval_nanos, 0);
        for seed in 0..200 {
            let plan = draw(FaultProfile::All, seed);
            assert!((0.0..=0.3).contains(&plan.loss_probability));
            assert!(plan.crash_interval_nanos > 0 && plan.pause_interval_nanos > 0);
            assert!(plan.fsync_min_nanos <= plan.fsync_max_nanos);
            assert!((0.02..=0.1).contains(&plan.clock_drift) || plan.read_lease);
            assert!(!plan.read_lease || plan.clock_drift <= 0.045);
        }
    }
}
