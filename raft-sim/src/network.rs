//! The simulated network between nodes: latency with a long tail, loss, duplication,
//! reordering (from random latency), partitions of several shapes, and clogged links.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;

use crate::faults::{FaultPlan, unit};
use raft_core::NodeId;
use raft_core::types::node_list;

/// A partition shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Two groups that cannot hear each other.
    Split {
        /// One side (the other side is everyone else).
        side: BTreeSet<NodeId>,
    },
    /// One node hears nobody and nobody hears it.
    Isolate {
        /// The isolated node.
        node: NodeId,
    },
    /// `deaf` does not hear `speaker`, while `speaker` still hears `deaf`.
    OneWay {
        /// The node whose messages are lost.
        speaker: NodeId,
        /// The node that does not receive them.
        deaf: NodeId,
    },
    /// Two halves that cannot hear each other, both connected to `bridge`.
    Bridge {
        /// One half (without the bridge).
        side: BTreeSet<NodeId>,
        /// The node both halves reach.
        bridge: NodeId,
    },
}

impl fmt::Display for Partition {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Partition::Split { side } => write!(formatter, "split [{}]", node_list(side)),
            Partition::Isolate { node } => write!(formatter, "isolate {node}"),
            Partition::OneWay { speaker, deaf } => write!(formatter, "one-way {speaker}-x->{deaf}"),
            Partition::Bridge { side, bridge } => {
                write!(formatter, "bridge [{}] via {bridge}", node_list(side))
            }
        }
    }
}

/// The network's state: which directed links are cut or clogged.
#[derive(Debug)]
pub(crate) struct Network {
    plan: FaultPlan,
    nodes: Vec<NodeId>,
    /// Directed links (from, to) that drop everything.
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Directed links that hold messages until the given time.
    clogged: BTreeMap<(NodeId, NodeId), u64>,
    /// Whether loss and duplication apply (they stop when faults heal).
    lossy: bool,
}

impl Network {
    pub(crate) fn new(plan: FaultPlan, nodes: Vec<NodeId>) -> Network {
        Network {
            plan,
            nodes,
            blocked: BTreeSet::new(),
            clogged: BTreeMap::new(),
            lossy: true,
        }
    }

    /// A one-way latency: the base, a jitter of up to the base, and sometimes a long tail.
    pub(crate) fn latency(&self, random: &mut ChaCha8Rng) -> u64 {
        let base = self.plan.latency_base_nanos;
        let mut latency = base + random.next_u64() % (base + 1);
        if self.lossy
            && self.plan.latency_tail_nanos > 0
            && unit(random) < self.plan.latency_tail_probability
        {
            // Exponential tail: -mean * ln(u).
            let draw = unit(random).max(f64::MIN_POSITIVE);
            latency += (-(self.plan.latency_tail_nanos as f64) * draw.ln()) as u64;
        }
        latency
    }

    /// When copies of a message sent now from `from` to `to` arrive: none (lost or cut),
    /// one, or two (duplicated).
    pub(crate) fn route(
        &self,
        from: NodeId,
        to: NodeId,
        now: u64,
        random: &mut ChaCha8Rng,
    ) -> [Option<u64>; 2] {
        let mut arrivals = [None, None];
        let cut = self.blocked.contains(&(from, to));
        let lost = self.lossy && unit(random) < self.plan.loss_probability;
        if !cut && !lost {
            let copies = if self.lossy && unit(random) < self.plan.duplicate_probability {
                2
            } else {
                1
            };
            let clogged_until = self.clogged.get(&(from, to)).copied().unwrap_or(0);
            for slot in arrivals.iter_mut().take(copies) {
                *slot = Some((now + self.latency(random)).max(clogged_until));
            }
        }
        arrivals
    }

    /// Cuts the links a partition describes.
    pub(crate) fn partition(&mut self, partition: &Partition) {
        let nodes = self.nodes.clone();
        let mut cut_between = |left: &BTreeSet<NodeId>, right: &BTreeSet<NodeId>| {
            for a in left {
                for b in right {
                    self.blocked.insert((*a, *b));
                    self.blocked.insert((*b, *a));
                }
            }
        };
        match partition {
            Partition::Split { side } => {
                let other: BTreeSet<NodeId> = nodes
                    .iter()
                    .filter(|n| !side.contains(n))
                    .copied()
                    .collect();
                cut_between(side, &other);
            }
            Partition::Isolate { node } => {
                let other: BTreeSet<NodeId> =
                    nodes.iter().filter(|n| *n != node).copied().collect();
                cut_between(&BTreeSet::from([*node]), &other);
            }
            Partition::OneWay { speaker, deaf } => {
                self.blocked.insert((*speaker, *deaf));
            }
            Partition::Bridge { side, bridge } => {
                let other: BTreeSet<NodeId> = nodes
                    .iter()
                    .filter(|n| !side.contains(n) && *n != bridge)
                    .copied()
                    .collect();
                cut_between(side, &other);
            }
        }
    }

    /// Holds every message on the link from `from` to `to` until `until`.
    pub(crate) fn clog(&mut self, from: NodeId, to: NodeId, until: u64) {
        self.clogged.insert((from, to), until);
    }

    /// Restores every link and stops loss and duplication.
    pub(crate) fn heal(&mut self) {
        self.blocked.clear();
        self.clogged.clear();
        self.lossy = false;
    }

    /// Restores every link, keeping loss and duplication.
    pub(crate) fn reconnect(&mut self) {
        self.blocked.clear();
    }

    /// Draws a random partition among the nodes.
    pub(crate) fn draw_partition(&self, random: &mut ChaCha8Rng) -> Option<Partition> {
        let count = self.nodes.len();
        if count < 2 {
            return None;
        }
        let pick =
            |random: &mut ChaCha8Rng| self.nodes[(random.next_u64() % count as u64) as usize];
        let partition = match random.next_u64() % 4 {
            0 => {
                // A minority/majority split of random membership.
                let minority = 1 + (random.next_u64() % (count as u64 / 2).max(1)) as usize;
                let mut side = BTreeSet::new();
                while side.len() < minority.min(count - 1) {
                    side.insert(pick(random));
                }
                Partition::Split { side }
            }
            1 => Partition::Isolate { node: pick(random) },
            2 => {
                let speaker = pick(random);
                let mut deaf = pick(random);
                while deaf == speaker {
                    deaf = pick(random);
                }
                Partition::OneWay { speaker, deaf }
            }
            _ => {
                if count < 3 {
                    return None;
                }
                let bridge = pick(random);
                let others: Vec<NodeId> = self
                    .nodes
                    .iter()
                    .filter(|n| **n != bridge)
                    .copied()
                    .collect();
                let half = others.len() / 2;
                Partition::Bridge {
                    side: others.into_iter().take(half).collect(),
                    bridge,
                }
            }
        };
        Some(partition)
    }
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;

    use super::*;
    use crate::faults::FaultProfile;

    fn network(nodes: u64) -> Network {
        let mut random = ChaCha8Rng::seed_from_u64(1);
        let plan = FaultPlan::draw(FaultProfile::None, &mut random);
        Network::new(plan, (1..=nodes).map(NodeId).collect())
    }

    fn reaches(network: &Network, from: u64, to: u64) -> bool {
        let mut random = ChaCha8Rng::seed_from_u64(2);
        network.route(NodeId(from), NodeId(to), 0, &mut random)[0].is_some()
    }

    // Each partition shape cuts exactly the links it describes, and healing restores them.
    #[test]
    fn partitions_cut_the_right_links() {
        let mut net = network(5);
        net.partition(&Partition::OneWay {
            speaker: NodeId(1),
            deaf: NodeId(2),
        });
        assert!(!reaches(&net, 1, 2));
        assert!(reaches(&net, 2, 1));
        net.reconnect();
        net.partition(&Partition::Bridge {
            side: BTreeSet::from([NodeId(1), NodeId(2)]),
            bridge: NodeId(3),
        });
        assert!(!reaches(&net, 1, 4) && !reaches(&net, 5, 2));
        assert!(reaches(&net, 1, 3) && reaches(&net, 3, 5) && reaches(&net, 1, 2));
        net.reconnect();
        net.partition(&Partition::Isolate { node: NodeId(4) });
        assert!(!reaches(&net, 4, 1) && !reaches(&net, 2, 4));
        assert!(reaches(&net, 1, 2));
        net.heal();
        assert!(reaches(&net, 4, 1));
    }

    // A clogged link holds messages until the clog ends.
    #[test]
    fn clogged_link_holds_messages() {
        let mut net = network(2);
        net.clog(NodeId(1), NodeId(2), 5_000_000_000);
        let mut random = ChaCha8Rng::seed_from_u64(3);
        let arrival = net.route(NodeId(1), NodeId(2), 0, &mut random)[0];
        assert_eq!(arrival, Some(5_000_000_000));
        let other = net.route(NodeId(2), NodeId(1), 0, &mut random)[0];
        assert!(other.is_some_and(|time| time < 5_000_000_000));
    }
}
