//! Raft's safety properties, checked over the whole cluster after every step.
//!
//! The checker remembers what it has seen (leaders per term, every log entry ever held by
//! any node, committed and applied entries, each node's last term and commit) so that a
//! property violated across time, not only within one moment, is caught too.
//!
//! Every check is incremental: a node whose state did not change costs a few comparisons,
//! so the simulator can afford to check after every event. Log matching, for instance, is
//! checked through an equivalent per-entry rule: two entries with the same index and term
//! must carry the same payload and follow entries of the same term. By induction on the
//! index, that makes any two logs holding the same entry identical up to it.

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
    /// The last entry of the snapshot the state machine was restored from (`0.0` if it
    /// never was): `applied` follows it.
    pub restored: LogId,
    /// Every entry the node's state machine applied since `restored`, in order.
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

/// What the checker last saw of one node.
#[derive(Clone, Debug, Default)]
struct NodeMirror {
    /// The index the node's in-memory log started after, as last checked.
    log_base: Index,
    /// The ids of the node's log entries after `log_base`, as last checked.
    log: Vec<LogId>,
    /// Role and term when last checked; `None` before the first check or after a restart.
    role_term: Option<(Role, Term)>,
    /// Commit index when last checked, reset by a restart.
    commit: Option<Index>,
    /// The snapshot the state machine was restored from, as last checked.
    restored: LogId,
    /// How many applied entries after `restored` were checked.
    applied: usize,
    /// While leader: the committed indexes checked present in its log.
    completeness_checked: Index,
}

/// An entry seen in some log, with the term of the entry before it.
#[derive(Clone, Debug)]
struct SeenEntry {
    entry: Entry,
    previous_term: Term,
}

/// Checks election safety, leader append-only, log matching, leader completeness,
/// state-machine safety, durability of committed entries, and per-node monotonicity.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    leaders: BTreeMap<Term, NodeId>,
    seen_entries: BTreeMap<LogId, SeenEntry>,
    committed: BTreeMap<Index, CommittedEntry>,
    mirrors: BTreeMap<NodeId, NodeMirror>,
}

impl SafetyChecker {
    /// A checker that has seen nothing yet.
    pub fn new() -> SafetyChecker {
        SafetyChecker::default()
    }

    /// Node `id` crashed and restarted: its volatile commit index and any term that never
    /// became durable may legitimately be lower now.
    pub fn restarted(&mut self, id: NodeId) {
        let mirror = self.mirrors.entry(id).or_default();
        mirror.role_term = None;
        mirror.commit = None;
        mirror.completeness_checked = Index(0);
    }

    /// Node `id`'s state machine starts over from an empty state (a volatile state machine
    /// after a restart): its applied entries are checked again from index 1.
    pub fn state_machine_restarted(&mut self, id: NodeId) {
        self.mirrors.entry(id).or_default().applied = 0;
    }

    /// The number of distinct entries known committed.
    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    /// The number of terms that had a leader.
    pub fn leader_terms(&self) -> usize {
        self.leaders.len()
    }

    /// Checks every property over the given nodes as they are now. Nodes left out are
    /// assumed unchanged since their last check.
    pub fn check(&mut self, views: &[NodeView<'_>]) -> Result<(), Violation> {
        for view in views {
            self.check_node(view)?;
        }
        Ok(())
    }

    /// Checks every property for one node as it is now.
    pub fn check_node(&mut self, view: &NodeView<'_>) -> Result<(), Violation> {
        if let Some(node) = view.node {
            self.check_monotonic(view.id, node)?;
            self.check_election_safety(view.id, node)?;
            self.check_log(view.id, node)?;
            self.record_committed(view.id, node)?;
            self.check_leader_completeness(view.id, node)?;
            let mirror = self.mirrors.entry(view.id).or_default();
            mirror.role_term = Some((node.role(), node.term()));
            mirror.commit = Some(node.commit_index());
        }
        self.check_applied(view)
    }

    fn check_monotonic(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let mirror = self.mirrors.entry(id).or_default();
        let term = node.term();
        if let Some((_, seen)) = mirror.role_term
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
        if let Some(seen) = mirror.commit
            && commit < seen
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

    /// Leader append-only and log matching, over the part of the log that changed.
    /// Entries compacted into a snapshot are committed, so they are no longer compared;
    /// the compaction point itself must be the committed entry at its index.
    fn check_log(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let base = node.compacted_through();
        self.check_committed_id(id, base, "compacted")?;
        let mirror = self.mirrors.entry(id).or_default();
        if base.index != mirror.log_base {
            let dropped = usize::try_from(base.index.0.saturating_sub(mirror.log_base.0))
                .unwrap_or(usize::MAX);
            if base.index > mirror.log_base
                && dropped <= mirror.log.len()
                && mirror.log.get(dropped.wrapping_sub(1)) == Some(&base)
            {
                // Compaction: the log lost a prefix and kept the rest.
                mirror.log.drain(..dropped);
            } else {
                // A snapshot replaced the log, or a restart went back to an older one.
                mirror.log.clear();
            }
            mirror.log_base = base.index;
        }
        let held = usize::try_from(node.last_log_id().index.0.saturating_sub(base.index.0))
            .unwrap_or(usize::MAX);
        let at = |position: usize| Index(base.index.0 + position as u64);
        // Walk back from the end to the last entry the mirror still agrees with; when
        // nothing changed this stops at once.
        let mut agreed = mirror.log.len().min(held);
        while agreed > 0 {
            let same = node
                .entry(at(agreed))
                .is_some_and(|entry| entry.id == mirror.log[agreed - 1]);
            if same {
                break;
            }
            agreed -= 1;
        }
        let was_leader_of_term = mirror.role_term == Some((Role::Leader, node.term()));
        if node.role() == Role::Leader && was_leader_of_term && agreed < mirror.log.len() {
            return violation(
                "leader append-only",
                format!(
                    "leader {id} of term {} changed its log: had {} entries ending {:?}, now {} ending {:?}",
                    node.term().0,
                    mirror.log.len(),
                    mirror.log.last(),
                    held,
                    node.last_log_id()
                ),
            );
        }
        mirror.log.truncate(agreed);
        for position in agreed + 1..=held {
            let index = at(position);
            let Some(entry) = node.entry(index) else {
                return violation(
                    "log matching",
                    format!("{id} lacks entry {} below its last index", index.0),
                );
            };
            let previous_term = mirror
                .log
                .last()
                .map_or(base.term, |previous| previous.term);
            match self.seen_entries.get(&entry.id) {
                Some(seen) if seen.entry != *entry || seen.previous_term != previous_term => {
                    return violation(
                        "log matching",
                        format!(
                            "{id} holds {} at index {} after a term-{} entry; another log \
                             held a different entry with that id ({:?}, after a term-{} entry)",
                            entry,
                            index.0,
                            previous_term.0,
                            seen.entry.payload,
                            seen.previous_term.0
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    self.seen_entries.insert(
                        entry.id,
                        SeenEntry {
                            entry: entry.clone(),
                            previous_term,
                        },
                    );
                }
            }
            mirror.log.push(entry.id);
        }
        Ok(())
    }

    /// A snapshot point (a compacted prefix, a restored state machine) must be the
    /// committed entry at its index, when the checker knows that entry.
    fn check_committed_id(&self, id: NodeId, point: LogId, what: &str) -> Result<(), Violation> {
        if point.index == Index(0) {
            return Ok(());
        }
        match self.committed.get(&point.index) {
            Some(known) if known.entry.id != point => violation(
                "state machine safety",
                format!(
                    "{id} {what} through {point}, but {} was committed at that index",
                    known.entry
                ),
            ),
            _ => Ok(()),
        }
    }

    fn record_committed(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let commit = node.commit_index();
        let mirror = self.mirrors.entry(id).or_default();
        let from = mirror.commit.unwrap_or_default();
        // Entries in a snapshot are no longer visible (the compaction point is checked in
        // `check_log`).
        let mut index = from.max(node.compacted_through().index).next();
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
        Ok(())
    }

    fn check_applied(&mut self, view: &NodeView<'_>) -> Result<(), Violation> {
        let known_restored = self.mirrors.get(&view.id).map(|mirror| mirror.restored);
        if known_restored != Some(view.restored) {
            self.check_committed_id(view.id, view.restored, "restored a snapshot")?;
            let mirror = self.mirrors.entry(view.id).or_default();
            mirror.restored = view.restored;
            mirror.applied = 0;
        }
        let mirror = self.mirrors.entry(view.id).or_default();
        for (position, entry) in view.applied.iter().enumerate().skip(mirror.applied) {
            let index = Index(view.restored.index.0 + position as u64 + 1);
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
                // The node committed the entry and compacted it away before the checker
                // looked at its log: the applied copy is the one it committed.
                None if view.node.is_some_and(|node| node.commit_index() >= index) => {
                    let binding_from = view.node.map_or(Term(0), Node::term);
                    self.committed.insert(
                        index,
                        CommittedEntry {
                            entry: entry.clone(),
                            binding_from,
                        },
                    );
                }
                None => {
                    return violation(
                        "state machine safety",
                        format!("{} applied {} before anyone committed it", view.id, entry),
                    );
                }
            }
        }
        mirror.applied = view.applied.len();
        Ok(())
    }

    /// A leader must hold every entry committed in its term or earlier: checked in full
    /// when it becomes leader, then only for entries committed since.
    fn check_leader_completeness(&mut self, id: NodeId, node: &Node) -> Result<(), Violation> {
        let mirror = self.mirrors.entry(id).or_default();
        if node.role() != Role::Leader {
            mirror.completeness_checked = Index(0);
            return Ok(());
        }
        if mirror.role_term != Some((Role::Leader, node.term())) {
            mirror.completeness_checked = Index(0);
        }
        // The compacted prefix is covered by `check_log`'s check of the compaction point.
        let from = mirror
            .completeness_checked
            .max(node.compacted_through().index)
            .next();
        for (index, committed) in self.committed.range(from..) {
            if node.term() >= committed.binding_from && node.entry(*index) != Some(&committed.entry)
            {
                return violation(
                    "leader completeness",
                    format!(
                        "leader {id} of term {} lacks committed entry {}",
                        node.term().0,
                        committed.entry
                    ),
                );
            }
            mirror.completeness_checked = *index;
        }
        Ok(())
    }
}
