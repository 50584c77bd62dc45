//! The leader-election experiment of the Raft paper's Figure 16: how long a cluster is
//! without a leader after its leader crashes, for a range of randomized election timeouts.
//!
//! Each trial builds a fresh cluster of `raft-core` [`Node`]s in a small event loop of its
//! own (separate from [`Simulation`](crate::Simulation), which is built for faults and
//! clients):
//!
//! - **Clock.** Every node ticks once per millisecond, each with its own random phase, so
//!   election timeouts in ticks are timeouts in milliseconds.
//! - **Network.** Every message takes a one-way latency drawn uniformly from
//!   [`ElectionExperiment::latency_nanos`] (5 to 10 ms by default): a round trip of 10 to
//!   20 ms, so a leader's broadcast to four followers takes about 15 ms, the broadcast
//!   time of the paper's cluster. Nothing is lost.
//! - **Disks** are instant: a write is acknowledged as soon as it is issued.
//! - **Heartbeats** every half of the minimum election timeout, as in the paper (settable).
//!
//! A trial lets node 1 campaign at once, waits until the cluster has a leader and has
//! settled (the longest election timeout plus a heartbeat interval), then crashes the
//! leader at a moment drawn uniformly within one heartbeat interval (as the paper did),
//! and measures the virtual time until another node becomes leader in a later term.
//!
//! Timeout ranges are inclusive, like the paper's "150–200 ms": `raft-core` draws timeouts
//! from `[min, max)` ticks, so a range of `min..=max` ms is configured as
//! `election_ticks(min, max + 1)`. The degenerate range 150–150 thus becomes
//! `(150, 151)`: every timeout is exactly 150 ms, as `raft-core` requires `max > min`.
//!
//! Everything random comes from the experiment's seed: the same seed gives the same times.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use raft_core::{Action, Config, Membership, Message, Node, NodeId, Recovered, Role, Term};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::faults::{MILLISECOND, SECOND};
use crate::queue::EventQueue;

/// The settings of one election experiment: one timeout range, many trials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionExperiment {
    /// Cluster size.
    pub nodes: u64,
    /// Election timeout range in milliseconds, both ends included.
    pub timeout_ms: (u32, u32),
    /// Heartbeat interval in milliseconds (the paper: half the minimum timeout).
    pub heartbeat_ms: u32,
    /// One-way message latency range in nanoseconds, both ends included.
    pub latency_nanos: (u64, u64),
    /// Number of trials.
    pub trials: u32,
    /// The seed of every random draw.
    pub seed: u64,
    /// A trial still without a new leader this long after the crash is given up.
    pub give_up_nanos: u64,
}

impl ElectionExperiment {
    /// The paper's setup for one timeout range (in ms, both ends included): five nodes,
    /// one-way latency 5 to 10 ms, heartbeats every half of the minimum timeout,
    /// 1000 trials, seed 0, and trials given up after 100 s without a leader.
    pub fn new(timeout_ms: (u32, u32)) -> ElectionExperiment {
        ElectionExperiment {
            nodes: 5,
            timeout_ms,
            heartbeat_ms: (timeout_ms.0 / 2).max(1),
            latency_nanos: (5 * MILLISECOND, 10 * MILLISECOND),
            trials: 1000,
            seed: 0,
            give_up_nanos: 100 * SECOND,
        }
    }

    /// Checks the settings; the error is one line naming the bad setting.
    pub fn validate(&self) -> Result<(), String> {
        let (minimum, maximum) = self.timeout_ms;
        if self.nodes < 3 || self.nodes > 15 {
            return Err(format!(
                "--nodes must be between 3 and 15 for an election after a crash, got {}",
                self.nodes
            ));
        }
        if maximum < minimum {
            return Err(format!("timeout range {minimum}..{maximum}ms is reversed"));
        }
        if maximum == u32::MAX {
            return Err(format!("timeout {maximum}ms is too large"));
        }
        if self.heartbeat_ms == 0 {
            return Err("--heartbeat must be at least 1ms".to_string());
        }
        if minimum <= self.heartbeat_ms {
            return Err(format!(
                "the minimum election timeout ({minimum}ms) must exceed the heartbeat interval ({}ms)",
                self.heartbeat_ms
            ));
        }
        if self.latency_nanos.1 < self.latency_nanos.0 {
            return Err("the latency range is reversed".to_string());
        }
        if self.trials == 0 {
            return Err("--trials must be at least 1".to_string());
        }
        if self.give_up_nanos == 0 {
            return Err("the give-up time must be greater than zero".to_string());
        }
        Ok(())
    }

    /// The `raft-core` election tick range for [`ElectionExperiment::timeout_ms`]:
    /// `(min, max + 1)`, since `raft-core` draws from `[min, max)` and one tick is 1 ms.
    pub fn election_ticks(&self) -> (u32, u32) {
        (self.timeout_ms.0, self.timeout_ms.1.saturating_add(1))
    }

    /// The range as the paper labels it, e.g. `150-300`.
    pub fn label(&self) -> String {
        format!("{}-{}", self.timeout_ms.0, self.timeout_ms.1)
    }

    /// Runs one trial (numbered from 0); its randomness depends only on the seed and the
    /// trial's number.
    pub fn trial(&self, number: u32) -> Result<Trial, String> {
        self.validate()?;
        TrialRun::new(self, number)?.run()
    }

    /// Runs every trial, one after the other.
    pub fn run(&self) -> Result<ElectionResults, String> {
        self.run_parallel(1)
    }

    /// Runs every trial on `jobs` threads. The result does not depend on `jobs`.
    pub fn run_parallel(&self, jobs: usize) -> Result<ElectionResults, String> {
        self.validate()?;
        let next = AtomicU32::new(0);
        let slots: Mutex<Vec<Option<Result<Trial, String>>>> =
            Mutex::new((0..self.trials).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..jobs.max(1) {
                scope.spawn(|| {
                    loop {
                        let number = next.fetch_add(1, Ordering::Relaxed);
                        if number >= self.trials {
                            break;
                        }
                        let outcome = self.trial(number);
                        let failed = outcome.is_err();
                        if let Ok(mut slots) = slots.lock()
                            && let Some(slot) = slots.get_mut(number as usize)
                        {
                            *slot = Some(outcome);
                        }
                        if failed {
                            // Stop the others early: the whole experiment fails anyway.
                            next.store(self.trials, Ordering::Relaxed);
                            break;
                        }
                    }
                });
            }
        });
        let slots = slots
            .into_inner()
            .map_err(|_| "a trial thread panicked".to_string())?;
        let mut trials = Vec::with_capacity(slots.len());
        for slot in slots {
            match slot {
                Some(Ok(trial)) => trials.push(trial),
                Some(Err(error)) => return Err(error),
                // Only trials after a failed one are skipped, and that failure returned.
                None => return Err("a trial did not run".to_string()),
            }
        }
        Ok(ElectionResults::new(self.clone(), trials))
    }
}

/// What one trial measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trial {
    /// The leader that was crashed.
    pub crashed: NodeId,
    /// Its term.
    pub crashed_term: Term,
    /// The node that became leader next, unless the trial was given up.
    pub new_leader: Option<NodeId>,
    /// The new leader's term.
    pub new_term: Option<Term>,
    /// Virtual nanoseconds from the crash to the new leader; `None` when given up.
    pub downtime_nanos: Option<u64>,
}

/// The trials of one experiment, with percentiles and shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionResults {
    /// The experiment.
    pub experiment: ElectionExperiment,
    /// Every trial, in order.
    pub trials: Vec<Trial>,
    /// The downtimes of the trials that elected a leader, ascending.
    pub sorted_nanos: Vec<u64>,
}

impl ElectionResults {
    fn new(experiment: ElectionExperiment, trials: Vec<Trial>) -> ElectionResults {
        let mut sorted_nanos: Vec<u64> = trials
            .iter()
            .filter_map(|trial| trial.downtime_nanos)
            .collect();
        sorted_nanos.sort_unstable();
        ElectionResults {
            experiment,
            trials,
            sorted_nanos,
        }
    }

    /// Trials given up without a new leader.
    pub fn given_up(&self) -> usize {
        self.trials.len() - self.sorted_nanos.len()
    }

    /// The nearest-rank percentile (0 < `percent` ≤ 100) of the downtime over all trials;
    /// `None` when it falls among the given-up trials (or there are none).
    pub fn percentile(&self, percent: f64) -> Option<u64> {
        let count = self.trials.len();
        if count == 0 {
            return None;
        }
        let rank = ((percent / 100.0) * count as f64).ceil().max(1.0) as usize;
        self.sorted_nanos.get(rank.min(count) - 1).copied()
    }

    /// The median downtime.
    pub fn median(&self) -> Option<u64> {
        self.percentile(50.0)
    }

    /// The longest downtime of the trials that elected a leader.
    pub fn max(&self) -> Option<u64> {
        self.sorted_nanos.last().copied()
    }

    /// The share (0 to 1) of all trials that had a new leader within `nanos`.
    pub fn share_within(&self, nanos: u64) -> f64 {
        if self.trials.is_empty() {
            return 0.0;
        }
        let done = self.sorted_nanos.partition_point(|time| *time <= nanos);
        done as f64 / self.trials.len() as f64
    }
}

#[derive(Debug)]
enum Event {
    Tick(usize),
    Deliver(Message),
    Crash,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first leader.
    Electing,
    /// A leader exists; the crash is scheduled.
    Settling,
    /// The leader is down; waiting for the next.
    Measuring {
        crashed: NodeId,
        term: Term,
        at: u64,
    },
}

/// One trial's cluster and event loop.
struct TrialRun<'a> {
    experiment: &'a ElectionExperiment,
    random: ChaCha8Rng,
    now: u64,
    queue: EventQueue<Event>,
    nodes: Vec<Option<Node>>,
    phase: Phase,
    crash_attempts: u32,
}

/// SplitMix64's finalizer: spreads (seed, trial) into independent generator seeds.
fn mix(mut value: u64) -> u64 {
    value = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

impl<'a> TrialRun<'a> {
    fn new(experiment: &'a ElectionExperiment, number: u32) -> Result<TrialRun<'a>, String> {
        let mut random =
            ChaCha8Rng::seed_from_u64(mix(experiment.seed ^ mix(u64::from(number) + 1)));
        let (minimum, maximum) = experiment.election_ticks();
        let ids: Vec<NodeId> = (1..=experiment.nodes).map(NodeId).collect();
        let membership = Membership::with_voters(ids.iter().copied());
        let mut queue = EventQueue::new();
        let mut nodes = Vec::with_capacity(ids.len());
        for (position, id) in ids.iter().enumerate() {
            let config = Config::builder(*id)
                .election_ticks(minimum, maximum)
                .heartbeat_ticks(experiment.heartbeat_ms)
                .random_seed(random.next_u64())
                .build()
                .map_err(|error| format!("invalid node configuration: {error}"))?;
            let node = Node::new(config, Recovered::new_cluster(membership.clone()))
                .map_err(|error| format!("node {id} could not start: {error}"))?;
            nodes.push(Some(node));
            // Each node's clock ticks every millisecond from its own phase.
            queue.push(random.next_u64() % MILLISECOND, Event::Tick(position));
        }
        let mut run = TrialRun {
            experiment,
            random,
            now: 0,
            queue,
            nodes,
            phase: Phase::Electing,
            crash_attempts: 0,
        };
        // A quick first leader: the experiment is about the election after a crash.
        if let Some(node) = run.nodes[0].as_mut() {
            node.campaign()
                .map_err(|error| format!("node 1 could not campaign: {error}"))?;
        }
        run.drain(0)?;
        Ok(run)
    }

    fn run(mut self) -> Result<Trial, String> {
        let heartbeat = u64::from(self.experiment.heartbeat_ms) * MILLISECOND;
        let settle = u64::from(self.experiment.timeout_ms.1) * MILLISECOND + heartbeat;
        loop {
            let Some((time, event)) = self.queue.pop() else {
                return Err("the event queue ran dry".to_string());
            };
            self.now = time;
            match event {
                Event::Tick(position) => {
                    if let Some(node) = self.nodes[position].as_mut() {
                        node.tick();
                        self.queue
                            .push(self.now + MILLISECOND, Event::Tick(position));
                        self.drain(position)?;
                    }
                }
                Event::Deliver(message) => {
                    let position = usize::try_from(message.to.0 - 1).unwrap_or(usize::MAX);
                    if let Some(Some(node)) = self.nodes.get_mut(position) {
                        node.step(message);
                        self.drain(position)?;
                    }
                }
                Event::Crash => self.crash(heartbeat, settle)?,
            }
            match self.phase {
                Phase::Electing => {
                    if self.leader().is_some() {
                        self.phase = Phase::Settling;
                        let at = self.now + settle + self.random.next_u64() % heartbeat;
                        self.queue.push(at, Event::Crash);
                    } else if self.now > self.experiment.give_up_nanos {
                        return Err(format!(
                            "no first leader within {} ms",
                            self.experiment.give_up_nanos / MILLISECOND
                        ));
                    }
                }
                Phase::Settling => {}
                Phase::Measuring { crashed, term, at } => {
                    let new_leader = self.leader().filter(|(_, new_term)| *new_term > term);
                    if let Some((id, new_term)) = new_leader {
                        return Ok(Trial {
                            crashed,
                            crashed_term: term,
                            new_leader: Some(id),
                            new_term: Some(new_term),
                            downtime_nanos: Some(self.now - at),
                        });
                    }
                    if self.now - at > self.experiment.give_up_nanos {
                        return Ok(Trial {
                            crashed,
                            crashed_term: term,
                            new_leader: None,
                            new_term: None,
                            downtime_nanos: None,
                        });
                    }
                }
            }
        }
    }

    /// The running leader of the highest term, if any.
    fn leader(&self) -> Option<(NodeId, Term)> {
        self.nodes
            .iter()
            .flatten()
            .filter(|node| node.role() == Role::Leader)
            .map(|node| (node.id(), node.term()))
            .max_by_key(|(_, term)| *term)
    }

    fn crash(&mut self, heartbeat: u64, settle: u64) -> Result<(), String> {
        let Some((id, term)) = self.leader() else {
            // Leadership is changing hands (it should not in a healthy cluster): wait.
            self.crash_attempts += 1;
            if self.crash_attempts > 100 {
                return Err("the cluster never settled on a leader to crash".to_string());
            }
            let at = self.now + settle + self.random.next_u64() % heartbeat;
            self.queue.push(at, Event::Crash);
            return Ok(());
        };
        let position = usize::try_from(id.0 - 1).unwrap_or(usize::MAX);
        if let Some(slot) = self.nodes.get_mut(position) {
            *slot = None;
        }
        self.phase = Phase::Measuring {
            crashed: id,
            term,
            at: self.now,
        };
        Ok(())
    }

    /// Carries out a node's actions: instant disks, latency on every message.
    fn drain(&mut self, position: usize) -> Result<(), String> {
        let (low, high) = self.experiment.latency_nanos;
        loop {
            let Some(node) = self.nodes[position].as_mut() else {
                return Ok(());
            };
            let Some(action) = node.poll_action() else {
                return Ok(());
            };
            match action {
                Action::Persist(write) => node
                    .persisted(write.id())
                    .map_err(|error| format!("persist acknowledgement refused: {error}"))?,
                Action::Send(message) => {
                    let latency = low + self.random.next_u64() % (high - low + 1);
                    self.queue.push(self.now + latency, Event::Deliver(message));
                }
                Action::Apply(entries) => {
                    if let Some(last) = entries.last().map(|entry| entry.index()) {
                        node.applied(last)
                            .map_err(|error| format!("apply acknowledgement refused: {error}"))?;
                    }
                }
                Action::Event(_) => {}
                // These runs build no snapshot, so nothing is compacted or restored.
                Action::SendSnapshot(_) | Action::Restore(_) => {
                    return Err("a snapshot action in a run that builds none".to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn experiment(trials: u32, seed: u64) -> ElectionExperiment {
        ElectionExperiment {
            trials,
            seed,
            ..ElectionExperiment::new((150, 300))
        }
    }

    // With timeouts of 150-300 ms the median time to a new leader is plausible: at least
    // the minimum timeout less a heartbeat interval, well under twice the maximum timeout.
    #[test]
    fn median_election_time_is_plausible() {
        let results = experiment(200, 7).run_parallel(2).expect("runs");
        assert_eq!(results.given_up(), 0);
        let median = results.median().expect("every trial elected") / MILLISECOND;
        assert!((100..=600).contains(&median), "median {median} ms");
        let minimum = results.sorted_nanos[0] / MILLISECOND;
        // Timeout 150 ms, crash at most 75 ms after the last heartbeat, plus a latency
        // to receive it and a vote round trip.
        assert!(minimum >= 75, "minimum {minimum} ms");
        for trial in &results.trials {
            assert_ne!(trial.new_leader, Some(trial.crashed));
            assert!(trial.new_term > Some(trial.crashed_term));
        }
    }

    // The same seed gives the same times, whatever the number of threads; another seed
    // gives others.
    #[test]
    fn experiment_is_deterministic() {
        let first = experiment(40, 3).run().expect("runs");
        let second = experiment(40, 3).run_parallel(3).expect("runs");
        assert_eq!(first, second);
        let other = experiment(40, 4).run().expect("runs");
        assert_ne!(first.sorted_nanos, other.sorted_nanos);
    }

    // Narrow ranges split votes more often than wide ones, as in the paper.
    #[test]
    fn wider_ranges_elect_faster_in_the_tail() {
        let narrow = ElectionExperiment {
            trials: 100,
            ..ElectionExperiment::new((150, 150))
        }
        .run_parallel(2)
        .expect("runs");
        let wide = experiment(100, 0).run_parallel(2).expect("runs");
        let tail = |results: &ElectionResults| results.percentile(90.0).unwrap_or(u64::MAX);
        assert!(tail(&narrow) > tail(&wide));
    }

    // Bad settings are refused with one line, never a panic.
    #[test]
    fn invalid_settings_are_refused() {
        let reversed = ElectionExperiment::new((300, 150));
        assert!(reversed.validate().unwrap_err().contains("reversed"));
        let slow_heartbeat = ElectionExperiment {
            heartbeat_ms: 200,
            ..ElectionExperiment::new((150, 300))
        };
        assert!(slow_heartbeat.trial(0).is_err());
        let degenerate = ElectionExperiment::new((150, 150));
        assert_eq!(degenerate.election_ticks(), (150, 151));
    }
}
