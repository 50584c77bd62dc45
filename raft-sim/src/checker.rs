//! Raft's safety properties, checked over the whole cluster after every step.
//!
//! The checker remembers what it has seen (leaders per term, committed and applied
//! entries, each node's last term and commit) so that a property violated across time,
//! not only within one moment, is caught too.

use std::collections::BTreeMap;
use std::fmt;

use raft_core::{Entry, Index, LogId, Node, NodeId, Role, Term};

/// What the checker sees of one node.
#[derive(Clone, Copy, Debug)]
pub struct NodeView<'a> {
    /// The node's id.
    pub id: NodeId,
    /// The running node, or `None` while it is crashed.
    pub node: Option<&'a Node>,
    /// Every entry the node's state machine applied, in order, from index 1.
    pub applied: &'a [Entry],
}

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The property's name.
    pub property: &'static str,
    /// What exactly was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} violated: {}", self.property, self.detail)
    }
}

impl std::error::Error for Violation {}

fn violation(property: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { property, detail })
}

/// The committed entry at one index, and the lowest term from which every leader must hold it.
#[derive(Clone, Debug)]
struct CommittedEntry {
    entry: Entry,
    binding_from: Term,
}

/// Checks election safety, leader append-only, log matching, leader completeness,
/// state-machine safety, durability of committed entries, and per-node monotonicity.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    leaders: BTreeMap<Term, NodeId>,
    leader_logs: BTreeMap<NodeId, (Term, Vec<LogId>)>,
    committed: BTreeMap<Index, CommittedEntry>,
    commit_seen: BTreeMap<NodeId, Index>,
    term_seen: BTreeMap<NodeId, Term>,
    applied_checked: BTreeMap<NodeId, usize>,
}

impl SafetyChecker {
    /// A checker that has seen nothing yet.
    pub fn new() -> SafetyChecker {
        SafetyChecker::default()
    }

    /// Node `id` crashed and restarted: its volatile commit index and any term that never
    /// became durable may legitimately be lower now.
    pub fn restarted(&mut self, id: NodeId) {
        self.commit_seen.remove(&id);
        self.term_seen.remove(&id);
        self.leader_logs.remove(&id);
    }

    /// Checks every property over the cluster as it is now.
    pub fn check(&mut self, views: &[NodeView<'_>]) -> Result<(), Violation> {
        for view in views {
            if let Some(node) = view.node {
                self.check_monotonic(view.id, node)?;
                self.check_election_safety(view.id, node)?;
                self.check_leader_append_only(view.id, node)?;
                self.record_committed(view.id, node)?;
            }
            self.check_applied(view)?;
        }
        self.check_log_matching(views)?;
        self.check_leader_completeness(views)
    }

    fn check_monotonic(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let term = node.term();
        if let Some(seen) = self.term_seen.insert(id, term)
            && term < seen
        {
            return violation(
                "monotonic term",
                format!("{id} went from term {} to {}", seen.0, term.0),
            );
        }
        let commit = node.commit_index();
        if commit > node.last_log_id().index {
            return violation(
                "commit within log",
                format!(
                    "{id} commit {} beyond its last index {}",
                    commit.0,
                    node.last_log_id().index.0
                ),
            );
        }
        if let Some(seen) = self.commit_seen.get(&id)
            && commit < *seen
        {
            return violation(
                "monotonic commit",
                format!("{id} commit went from {} to {}", seen.0, commit.0),
            );
        }
        Ok(())
    }

    fn check_election_safety(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        if node.role() != Role::Leader {
            return Ok(());
        }
        let term = node.term();
        match self.leaders.get(&term) {
            Some(other) if *other != id => violation(
                "election safety",
                format!("both {other} and {id} were leaders of term {}", term.0),
            ),
            _ => {
                self.leaders.insert(term, id);
                Ok(())
            }
        }
    }

    fn check_leader_append_only(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        if node.role() != Role::Leader {
            self.leader_logs.remove(&id);
            return Ok(());
        }
        let term = node.term();
        let log: Vec<LogId> = node.log_entries().map(|entry| entry.id).collect();
        if let Some((seen_term, seen_log)) = self.leader_logs.get(&id)
            && *seen_term == term
            && !log.starts_with(seen_log)
        {
            return violation(
                "leader append-only",
                format!(
                    "leader {id} of term {} changed its log: had {} entries ending {:?}, now {} ending {:?}",
                    term.0,
                    seen_log.len(),
                    seen_log.last(),
                    log.len(),
                    log.last()
                ),
            );
        }
        self.leader_logs.insert(id, (term, log));
        Ok(())
    }

    fn record_committed(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let commit = node.commit_index();
        let from = self.commit_seen.get(&id).copied().unwrap_or_default();
        let mut index = from.next();
        while index <= commit {
            let Some(entry) = node.entry(index) else {
                return violation(
                    "commit within log",
                    format!("{id} committed index {} it does not hold", index.0),
                );
            };
            match self.committed.get(&index) {
                Some(known) if known.entry != *entry => {
                    return violation(
                        "state machine safety",
                        format!(
                            "index {} committed as {} on one node and {} on {id}",
                            index.0, known.entry, entry
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    self.committed.insert(
                        index,
                        CommittedEntry {
                            entry: entry.clone(),
                            binding_from: node.term(),
                        },
                    );
                }
            }
            index = index.next();
        }
        self.commit_seen.insert(id, commit);
        Ok(())
    }

    fn check_applied(&mut self, view: &NodeView<'_>) -> Result<(), Violation> {
        let checked = self.applied_checked.get(&view.id).copied().unwrap_or(0);
        for (position, entry) in view.applied.iter().enumerate().skip(checked) {
            let index = Index(position as u64 + 1);
            if entry.index() != index {
                return violation(
                    "state machine safety",
                    format!("{} applied {} at position {}", view.id, entry, index.0),
                );
            }
            match self.committed.get(&index) {
                Some(known) if known.entry != *entry => {
                    return violation(
                        "state machine safety",
                        format!(
                            "{} applied {} at index {} where {} was committed",
                            view.id, entry, index.0, known.entry
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    return violation(
                        "state machine safety",
                        format!("{} applied {} before anyone committed it", view.id, entry),
                    );
                }
            }
        }
        self.applied_checked.insert(view.id, view.applied.len());
        Ok(())
    }

    fn check_log_matching(&self, views: &[NodeView<'_>]) -> Result<(), Violation> {
        let logs: Vec<(NodeId, Vec<&Entry>)> = views
            .iter()
            .filter_map(|view| {
                view.node
                    .map(|node| (view.id, node.log_entries().collect()))
            })
            .collect();
        for (position, (left_id, left)) in logs.iter().enumerate() {
            for (right_id, right) in logs.iter().skip(position + 1) {
                // The highest index where both logs hold an entry of the same term...
                let shared_length = left.len().min(right.len());
                let Some(top) = (0..shared_length)
                    .rev()
                    .find(|slot| left[*slot].term() == right[*slot].term())
                else {
                    continue;
                };
                // ...must be preceded by identical logs.
                for slot in 0..=top {
                    if left[slot] != right[slot] {
                        return violation(
                            "log matching",
                            format!(
                                "{left_id} and {right_id} agree at {} but differ at index {}: {} vs {}",
                                left[top].id,
                                slot + 1,
                                left[slot],
                                right[slot]
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }

    fn check_leader_completeness(&self, views: &[NodeView<'_>]) -> Result<(), Violation> {
        for view in views {
            let Some(node) = view.node else { continue };
            if node.role() != Role::Leader {
                continue;
            }
            for (index, committed) in &self.committed {
                if node.term() >= committed.binding_from
                    && node.entry(*index) != Some(&committed.entry)
                {
                    return violation(
                        "leader completeness",
                        format!(
                            "leader {} of term {} lacks committed entry {}",
                            view.id,
                            node.term().0,
                            committed.entry
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}
