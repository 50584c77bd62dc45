//! Property tests of the in-memory log ([`RaftLog`]): committed entries survive any
//! sequence of leader appends, a successful append leaves exactly the leader's entries,
//! the durable index never runs ahead of what storage acknowledged, and the rejection
//! hints find the true match point in a few round trips.

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::action::{LogWrite, WriteId};
use crate::log::{FollowerAppend, RaftLog};
use crate::types::{Entry, Index, LogId, Payload, Term};

/// An entry whose payload names its id, so that two entries with the same id are equal
/// (Raft's log matching, as every honest history has it).
fn entry(term: u64, index: u64) -> Entry {
    Entry {
        id: LogId::new(term, index),
        payload: Payload::Command(Bytes::from(format!("{term}.{index}"))),
    }
}

fn entries_of(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(position, term)| entry(*term, position as u64 + 1))
        .collect()
}

/// The log's entries `1..=through`, as a vector (entries it lacks are left out).
fn prefix(log: &RaftLog, through: u64) -> Vec<Entry> {
    (1..=through)
        .filter_map(|index| log.entry(Index(index)).cloned())
        .collect()
}

fn all_entries(log: &RaftLog) -> Vec<Entry> {
    prefix(log, log.last_id().index.0)
}

/// The term at `index` of a plain vector log (index 0 has term 0).
fn term_in(entries: &[Entry], index: u64) -> u64 {
    match index {
        0 => 0,
        _ => entries[index as usize - 1].id.term.0,
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2048,
        // Failures are turned into plain regression tests, not a seed file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// (a) and (b): a follower fed appends from an honest history of leaders.
// ---------------------------------------------------------------------------------------

/// One event of a history of leaders, as seen by one follower.
#[derive(Clone, Debug)]
enum HistoryStep {
    /// The current leader appends this many entries of its term.
    Append(usize),
    /// The current leader advances its commit index (a raw choice, reduced to its log).
    Commit(usize),
    /// A new leader takes over in the next term. Its log is the current leader's, cut
    /// after a raw choice reduced to at least the committed prefix (leader completeness).
    Elect(usize),
    /// A past or current leader (raw choice) sends an append after a raw position with up to
    /// this many entries; it waits in flight.
    Send {
        leader: usize,
        after: usize,
        count: usize,
    },
    /// The in-flight append at a raw position reaches the follower.
    Deliver(usize),
}

fn history_step() -> impl Strategy<Value = HistoryStep> {
    prop_oneof![
        4 => (1..4usize).prop_map(HistoryStep::Append),
        2 => any::<usize>().prop_map(HistoryStep::Commit),
        1 => any::<usize>().prop_map(HistoryStep::Elect),
        4 => (any::<usize>(), any::<usize>(), 0..5usize)
            .prop_map(|(leader, after, count)| HistoryStep::Send { leader, after, count }),
        4 => any::<usize>().prop_map(HistoryStep::Deliver),
    ]
}

/// One leader of the model history. Within its term a leader's log only grows.
#[derive(Clone, Debug)]
struct ModelLeader {
    term: u64,
    log: Vec<Entry>,
    commit: u64,
}

#[derive(Clone, Debug)]
struct InFlight {
    leader: usize,
    term: u64,
    previous: LogId,
    entries: Vec<Entry>,
    commit: u64,
}

/// Runs a history and checks, after every delivery, that the follower behaves as Raft
/// requires. Returns the number of deliveries that reached the log.
fn run_history(steps: &[HistoryStep]) -> Result<usize, TestCaseError> {
    let mut leaders = vec![ModelLeader {
        term: 1,
        log: Vec::new(),
        commit: 0,
    }];
    let mut committed: u64 = 0;
    let mut in_flight: Vec<InFlight> = Vec::new();
    let mut follower = RaftLog::recovered(LogId::default(), Vec::new());
    let mut follower_term: u64 = 0;
    let mut follower_commit: u64 = 0;
    let mut deliveries = 0;

    for step in steps {
        match *step {
            HistoryStep::Append(count) => {
                let leader = leaders.last_mut().expect("a leader");
                for _ in 0..count {
                    let index = leader.log.len() as u64 + 1;
                    leader.log.push(entry(leader.term, index));
                }
            }
            HistoryStep::Commit(raw) => {
                let leader = leaders.last_mut().expect("a leader");
                let room = leader.log.len() as u64 - leader.commit;
                leader.commit += raw as u64 % (room + 1);
                committed = committed.max(leader.commit);
            }
            HistoryStep::Elect(raw) => {
                let current = leaders.last().expect("a leader");
                let room = current.log.len() as u64 - committed;
                let keep = committed + raw as u64 % (room + 1);
                let next = ModelLeader {
                    term: current.term + 1,
                    log: current.log[..keep as usize].to_vec(),
                    commit: committed,
                };
                leaders.push(next);
            }
            HistoryStep::Send {
                leader,
                after,
                count,
            } => {
                let position = leader % leaders.len();
                let sender = &leaders[position];
                let previous = after as u64 % (sender.log.len() as u64 + 1);
                let end = (previous as usize + count).min(sender.log.len());
                in_flight.push(InFlight {
                    leader: position,
                    term: sender.term,
                    previous: LogId::new(term_in(&sender.log, previous), previous),
                    entries: sender.log[previous as usize..end].to_vec(),
                    commit: sender.commit,
                });
            }
            HistoryStep::Deliver(raw) => {
                if in_flight.is_empty() {
                    continue;
                }
                let message = in_flight.remove(raw % in_flight.len());
                // A node refuses appends from an earlier term before they reach the log.
                if message.term < follower_term {
                    continue;
                }
                follower_term = message.term;
                deliveries += 1;
                let before = all_entries(&follower);
                let committed_before = prefix(&follower, follower_commit);
                let outcome = follower.append_from_leader(
                    message.previous,
                    message.entries.clone(),
                    Term(u64::MAX),
                    Index(follower_commit),
                );
                // (a) Nothing at or below the commit index is lost or changed.
                prop_assert_eq!(
                    &prefix(&follower, follower_commit),
                    &committed_before,
                    "committed entries changed by {:?}",
                    message
                );
                let sender = &leaders[message.leader];
                match outcome {
                    FollowerAppend::Matched { last } => {
                        prop_assert_eq!(
                            last.0,
                            message.previous.index.0 + message.entries.len() as u64
                        );
                        // (b) The log holds exactly the leader's entries through `last`.
                        prop_assert_eq!(
                            &prefix(&follower, last.0),
                            &sender.log[..last.0 as usize].to_vec(),
                            "after {:?}",
                            message
                        );
                        follower_commit = follower_commit.max(message.commit.min(last.0));
                    }
                    FollowerAppend::Mismatch => {
                        prop_assert_ne!(
                            follower.term_at(message.previous.index),
                            Some(message.previous.term)
                        );
                        prop_assert_eq!(&all_entries(&follower), &before);
                    }
                    other => {
                        return Err(TestCaseError::fail(format!(
                            "an honest append was refused: {other:?} for {message:?}"
                        )));
                    }
                }
                // The follower's committed prefix is the history's committed prefix.
                prop_assert!(follower_commit <= committed);
                let current = &leaders.last().expect("a leader").log;
                prop_assert_eq!(
                    &prefix(&follower, follower_commit),
                    &current[..follower_commit as usize].to_vec()
                );
            }
        }
    }
    Ok(deliveries)
}

proptest! {
    #![proptest_config(config())]

    // (a)+(b) Appends from an honest history of leaders, delivered late, reordered or from
    // deposed leaders, never lose or change a committed entry, and every successful append
    // leaves exactly the sender's entries up to the matched index.
    #[test]
    fn committed_entries_survive_any_honest_history(
        steps in prop::collection::vec(history_step(), 0..120)
    ) {
        run_history(&steps)?;
    }

    // (a) Even appends from a faulty leader (arbitrary previous points, terms and entries)
    // never change an entry at or below the commit index passed in.
    #[test]
    fn forged_appends_never_touch_committed_entries(
        initial in prop::collection::vec(1..4u64, 0..10).prop_map(sorted),
        commit_raw in any::<usize>(),
        appends in prop::collection::vec(
            (any::<usize>(), 0..6u64, prop::collection::vec(0..6u64, 0..5), any::<bool>()),
            1..20,
        ),
    ) {
        let initial = entries_of(&initial);
        let commit = commit_raw as u64 % (initial.len() as u64 + 1);
        let mut log = RaftLog::recovered(LogId::default(), initial.clone());
        for (previous_raw, previous_term, terms, sorted_terms) in appends {
            let last = log.last_id().index.0;
            let previous = previous_raw as u64 % (last + 2);
            let terms = if sorted_terms { sorted(terms) } else { terms };
            let entries: Vec<Entry> = terms
                .iter()
                .enumerate()
                .map(|(offset, term)| entry(*term, previous + 1 + offset as u64))
                .collect();
            let before = all_entries(&log);
            let outcome =
                log.append_from_leader(LogId::new(previous_term, previous), entries, Term(u64::MAX), Index(commit));
            prop_assert_eq!(&prefix(&log, commit), &initial[..commit as usize].to_vec());
            if !matches!(outcome, FollowerAppend::Matched { .. }) {
                prop_assert_eq!(&all_entries(&log), &before, "refused: {:?}", outcome);
            }
        }
    }
}

fn sorted(mut terms: Vec<u64>) -> Vec<u64> {
    terms.sort_unstable();
    terms
}

// ---------------------------------------------------------------------------------------
// Logs that share a prefix and then diverge, as a leader's and a follower's can.
// ---------------------------------------------------------------------------------------

/// A follower's and a leader's log: a common prefix (terms 1..=3), then suffixes whose
/// terms are disjoint (even from 4 for the follower, odd from 5 for the leader), so that
/// Log Matching holds and the longest common prefix is exactly the shared part.
#[derive(Clone, Debug)]
struct DivergedLogs {
    shared: Vec<u64>,
    follower_suffix: Vec<u64>,
    leader_suffix: Vec<u64>,
}

impl DivergedLogs {
    fn follower_terms(&self) -> Vec<u64> {
        [self.shared.clone(), self.follower_suffix.clone()].concat()
    }

    fn leader_terms(&self) -> Vec<u64> {
        [self.shared.clone(), self.leader_suffix.clone()].concat()
    }
}

fn diverged_logs() -> impl Strategy<Value = DivergedLogs> {
    (
        prop::collection::vec(1..=3u64, 0..12),
        prop::collection::vec(0..4u64, 0..12),
        prop::collection::vec(0..4u64, 0..12),
    )
        .prop_map(|(shared, follower, leader)| DivergedLogs {
            shared: sorted(shared),
            follower_suffix: sorted(follower)
                .into_iter()
                .map(|step| 4 + 2 * step)
                .collect(),
            leader_suffix: sorted(leader)
                .into_iter()
                .map(|step| 5 + 2 * step)
                .collect(),
        })
}

fn distinct(terms: &[u64]) -> usize {
    let mut terms = terms.to_vec();
    terms.dedup();
    terms.len()
}

/// Plays the leader's probing against the follower with the hints alone, as the leader's
/// progress does (`next = min(candidate, rejected) + 1`), checking every round. Returns
/// the match point found and the number of rounds.
fn probe(follower: &RaftLog, leader: &RaftLog, lcp: u64) -> Result<(u64, usize), TestCaseError> {
    let mut previous_index = leader.last_id().index;
    let mut rounds = 0;
    loop {
        rounds += 1;
        prop_assert!(rounds <= 64, "probing does not terminate");
        let previous = LogId {
            term: leader.term_at(previous_index).expect("the leader holds it"),
            index: previous_index,
        };
        // Log Matching: the follower holds `previous` exactly when it is in the common prefix.
        let holds = follower.term_at(previous.index) == Some(previous.term);
        prop_assert_eq!(holds, previous.index.0 <= lcp);
        if holds {
            return Ok((previous.index.0, rounds));
        }
        let hint = follower.rejection_hint(previous);
        prop_assert!(hint.index <= previous.index && hint.term <= previous.term);
        prop_assert_eq!(follower.term_at(hint.index), Some(hint.term));
        let candidate = leader.match_candidate(hint);
        let next_previous = candidate.min(previous.index);
        // Every round moves down, and never below the true match point.
        prop_assert!(
            next_previous < previous.index,
            "no progress at {:?}",
            previous
        );
        prop_assert!(
            next_previous.0 >= lcp,
            "skipped below the match point {} to {}",
            lcp,
            next_previous.0
        );
        previous_index = next_previous;
    }
}

proptest! {
    #![proptest_config(config())]

    // (b) Whatever the previous point and batch a leader sends, an accepted append leaves the
    // follower holding exactly the leader's entries up to the matched index, a refused one
    // changes nothing, and sending the whole log makes the follower match it entirely.
    #[test]
    fn matched_append_leaves_exactly_the_leaders_entries(
        logs in diverged_logs(),
        sends in prop::collection::vec((any::<usize>(), 0..6usize), 0..12),
    ) {
        let leader = entries_of(&logs.leader_terms());
        let mut follower = RaftLog::recovered(LogId::default(), entries_of(&logs.follower_terms()));
        let follower_suffix_start = logs.shared.len();
        for (after, count) in sends.into_iter().chain([(0, usize::MAX)]) {
            let previous = after as u64 % (leader.len() as u64 + 1);
            let end = (previous as usize).saturating_add(count).min(leader.len());
            let batch = leader[previous as usize..end].to_vec();
            let before = all_entries(&follower);
            let outcome = follower.append_from_leader(
                LogId::new(term_in(&leader, previous), previous),
                batch, Term(u64::MAX),
                Index(0));
            match outcome {
                FollowerAppend::Matched { last } => {
                    prop_assert_eq!(last.0, end as u64);
                    prop_assert_eq!(&prefix(&follower, last.0), &leader[..end].to_vec());
                    // Entries after `last` survive only if nothing conflicted: the
                    // follower already held the leader's entries up to `last`.
                    let after_last = all_entries(&follower)[end..].to_vec();
                    if !after_last.is_empty() {
                        prop_assert!(before.len() > end);
                        prop_assert_eq!(&before[..end], &leader[..end]);
                        prop_assert_eq!(&after_last, &before[end..].to_vec());
                    }
                }
                FollowerAppend::Mismatch => {
                    prop_assert!(previous as usize > follower_suffix_start);
                    prop_assert_eq!(&all_entries(&follower), &before);
                }
                other => {
                    return Err(TestCaseError::fail(format!("unexpected {other:?}")));
                }
            }
        }
        // After the full log from the start, the follower holds the leader's log, plus
        // only entries it held beyond it without conflict.
        prop_assert_eq!(&prefix(&follower, leader.len() as u64), &leader);
        prop_assert!(follower.last_id().index.0 as usize >= leader.len());
    }

    // (d) The rejection hint and the leader's match candidate never skip below the longest
    // common prefix, always make progress, and find it in few rounds.
    #[test]
    fn hints_find_the_longest_common_prefix_quickly(logs in diverged_logs()) {
        let follower = RaftLog::recovered(LogId::default(), entries_of(&logs.follower_terms()));
        let leader = RaftLog::recovered(LogId::default(), entries_of(&logs.leader_terms()));
        let lcp = logs.shared.len() as u64;
        let (found, rounds) = probe(&follower, &leader, lcp)?;
        prop_assert_eq!(found, lcp);
        // Each rejection skips at least one whole term of the leader's divergent suffix, and
        // after the first one the hints alternate between the two suffixes' terms.
        let leader_terms = distinct(&logs.leader_suffix);
        let follower_terms = distinct(&logs.follower_suffix);
        prop_assert!(
            rounds <= 1 + leader_terms && rounds <= 2 + leader_terms.min(follower_terms),
            "{} rounds for {} leader and {} follower terms",
            rounds,
            leader_terms,
            follower_terms
        );
    }

    // (d) A follower that is merely behind (a prefix of the leader's log) is found in at
    // most two rounds: the hint jumps straight to its last entry.
    #[test]
    fn hints_find_a_lagging_follower_in_two_rounds(
        terms in prop::collection::vec(1..6u64, 0..20).prop_map(sorted),
        lag_raw in any::<usize>(),
    ) {
        let kept = terms.len() - lag_raw % (terms.len() + 1);
        let follower = RaftLog::recovered(LogId::default(), entries_of(&terms[..kept]));
        let leader = RaftLog::recovered(LogId::default(), entries_of(&terms));
        let (found, rounds) = probe(&follower, &leader, kept as u64)?;
        prop_assert_eq!(found, kept as u64);
        prop_assert!(rounds <= 2, "{} rounds", rounds);
    }
}

// ---------------------------------------------------------------------------------------
// (c) The durable index against a model of storage.
// ---------------------------------------------------------------------------------------

/// One operation on a log whose writes go to a model storage.
#[derive(Clone, Debug)]
enum DurabilityStep {
    /// Leader side: append one entry of the highest term seen.
    Push,
    /// Follower side: merge entries after a raw previous point, of the highest term seen or,
    /// with `new_term`, of a new higher term (which truncates any conflicting suffix).
    Append {
        after: usize,
        count: usize,
        new_term: bool,
    },
    /// Issue a write carrying the unflushed changes (possibly none: a hard-state-only write).
    Flush,
    /// Storage acknowledges every write up to a raw choice among those issued.
    Acknowledge(usize),
}

fn durability_step() -> impl Strategy<Value = DurabilityStep> {
    prop_oneof![
        3 => Just(DurabilityStep::Push),
        3 => (any::<usize>(), 1..4usize, any::<bool>())
            .prop_map(|(after, count, new_term)| DurabilityStep::Append { after, count, new_term }),
        3 => Just(DurabilityStep::Flush),
        3 => any::<usize>().prop_map(DurabilityStep::Acknowledge),
    ]
}

/// Storage as the driver keeps it: acknowledged writes applied in order.
#[derive(Debug, Default)]
struct ModelStorage {
    entries: Vec<Entry>,
    issued: Vec<(WriteId, Option<LogWrite>)>,
    applied_through: usize,
}

impl ModelStorage {
    fn acknowledge(&mut self, id: WriteId) {
        while let Some((write_id, write)) = self.issued.get(self.applied_through) {
            if *write_id > id {
                break;
            }
            if let Some(write) = write {
                self.entries.truncate(write.first_index.0 as usize - 1);
                self.entries.extend(write.entries.iter().cloned());
            }
            self.applied_through += 1;
        }
    }
}

fn check_durable(log: &RaftLog, storage: &ModelStorage) -> Result<(), TestCaseError> {
    let durable = log.durable_index().0;
    prop_assert!(durable <= log.last_id().index.0);
    prop_assert!(
        durable as usize <= storage.entries.len(),
        "durable {durable} beyond storage"
    );
    prop_assert_eq!(
        &prefix(log, durable),
        &storage.entries[..durable as usize].to_vec(),
        "durable index {} claims entries storage does not hold",
        durable
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    // (c) The durable index never exceeds the log, storage holds exactly the log's entries up
    // to it, and once every change is written and acknowledged it reaches the last entry.
    #[test]
    fn durable_index_never_claims_unacknowledged_entries(
        initial in prop::collection::vec(1..3u64, 0..6).prop_map(sorted),
        steps in prop::collection::vec(durability_step(), 0..80),
    ) {
        let initial = entries_of(&initial);
        let mut log = RaftLog::recovered(LogId::default(), initial.clone());
        let mut storage = ModelStorage { entries: initial, ..ModelStorage::default() };
        let mut top_term = log.last_id().term.0.max(1);
        let mut last_write = 0u64;
        check_durable(&log, &storage)?;
        for step in steps {
            match step {
                DurabilityStep::Push => {
                    let index = log.last_id().index.0 + 1;
                    log.push(entry(top_term, index));
                }
                DurabilityStep::Append { after, count, new_term } => {
                    let last = log.last_id().index.0;
                    let previous = after as u64 % (last + 1);
                    if new_term {
                        top_term += 1;
                    }
                    let entries = (1..=count as u64)
                        .map(|offset| entry(top_term, previous + offset))
                        .collect();
                    let previous_term = log.term_at(Index(previous)).expect("held").0;
                    let outcome = log.append_from_leader(
                        LogId::new(previous_term, previous),
                        entries, Term(u64::MAX),
                        Index(0));
                    prop_assert!(matches!(outcome, FollowerAppend::Matched { .. }), "{:?}", outcome);
                }
                DurabilityStep::Flush => {
                    last_write += 1;
                    let write = log.take_unflushed(WriteId(last_write));
                    prop_assert!(!log.has_unflushed());
                    storage.issued.push((WriteId(last_write), write));
                }
                DurabilityStep::Acknowledge(raw) => {
                    let id = WriteId(raw as u64 % (last_write + 1));
                    log.acknowledge(id);
                    storage.acknowledge(id);
                }
            }
            check_durable(&log, &storage)?;
        }
        // Writing and acknowledging everything makes the whole log durable.
        last_write += 1;
        let write = log.take_unflushed(WriteId(last_write));
        storage.issued.push((WriteId(last_write), write));
        log.acknowledge(WriteId(last_write));
        storage.acknowledge(WriteId(last_write));
        check_durable(&log, &storage)?;
        prop_assert_eq!(log.durable_index(), log.last_id().index);
        prop_assert_eq!(&storage.entries, &all_entries(&log));
    }
}

// A follower holding extra entries of a term the leader never had is matched in two round
// trips: one rejection skips the whole foreign term on both sides.
#[test]
fn hint_skips_whole_foreign_terms() {
    let follower = RaftLog::recovered(LogId::default(), entries_of(&[1, 1, 1, 4, 4, 4, 4]));
    let leader = RaftLog::recovered(LogId::default(), entries_of(&[1, 1, 1, 5, 5, 7, 7, 7]));
    let lcp = 3;
    let (found, rounds) = probe(&follower, &leader, lcp).expect("probing succeeds");
    assert_eq!(found, lcp);
    assert_eq!(rounds, 2);
}
