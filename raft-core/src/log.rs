//! The in-memory log and its durability bookkeeping.
//!
//! The core keeps every entry since the last snapshot in memory and never reads storage.
//! Storage sees the log only through [`LogWrite`]s; this module remembers which writes are
//! still in flight so that it can say, at any moment, up to which index the durable log
//! agrees with the memory log (the *durable index*). Acknowledgements and the leader's own
//! quorum vote use that index, never the memory log's end.

use std::collections::VecDeque;

use crate::action::{LogWrite, WriteId};
use crate::quorum::Membership;
use crate::types::{Entry, Index, LogId, Payload, Term};

/// A log write that was issued and not yet acknowledged.
#[derive(Clone, Copy, Debug)]
struct PendingLogWrite {
    id: WriteId,
    first_index: Index,
    last_index: Index,
}

/// What [`RaftLog::append_from_leader`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FollowerAppend {
    /// The log now matches the leader's through `last`.
    Matched { last: Index },
    /// The log lacks `previous` or holds a different entry there.
    Mismatch,
    /// The message would overwrite a committed entry: a faulty or forged leader.
    ConflictsWithCommitted { index: Index },
    /// The entries are not contiguous after `previous`, or their terms go backwards.
    Malformed,
}

/// The replicated log as this node holds it.
#[derive(Debug)]
pub(crate) struct RaftLog {
    /// Entries after `base`, contiguous.
    entries: VecDeque<Entry>,
    /// The entry just before `entries` (the snapshot point; `0.0` when there is none).
    base: LogId,
    /// The last index of the stored log as of the last acknowledged log write.
    stored_last: Index,
    /// Log writes issued and not yet acknowledged, oldest first.
    pending: VecDeque<PendingLogWrite>,
    /// The first index changed in memory and not yet part of any write.
    unflushed_from: Option<Index>,
    /// Highest write id acknowledged.
    acknowledged: WriteId,
    /// The configuration entries among `entries`, ascending by index.
    configurations: Vec<(Index, Membership)>,
}

impl RaftLog {
    /// A log holding the recovered entries, which follow `base` (the recovered snapshot's
    /// last entry, or `0.0`), all of them durable.
    pub(crate) fn recovered(base: LogId, entries: Vec<Entry>) -> RaftLog {
        debug_assert!(
            entries
                .first()
                .is_none_or(|first| first.index() == base.index.next())
        );
        let stored_last = entries.last().map_or(base.index, Entry::index);
        let configurations = entries.iter().filter_map(configuration_of).collect();
        RaftLog {
            entries: entries.into(),
            base,
            stored_last,
            pending: VecDeque::new(),
            unflushed_from: None,
            acknowledged: WriteId(0),
            configurations,
        }
    }

    /// The newest configuration entry at or below `index`, with its index.
    pub(crate) fn configuration_through(&self, index: Index) -> Option<&(Index, Membership)> {
        self.configurations
            .iter()
            .rev()
            .find(|(configured, _)| *configured <= index)
    }

    /// The newest configuration entry in the log, with its index.
    pub(crate) fn latest_configuration(&self) -> Option<&(Index, Membership)> {
        self.configurations.last()
    }

    /// The id of the last entry.
    pub(crate) fn last_id(&self) -> LogId {
        self.entries.back().map_or(self.base, |entry| entry.id)
    }

    /// The index of the last entry.
    pub(crate) fn last_index(&self) -> Index {
        self.last_id().index
    }

    /// The index of the first entry held in memory.
    pub(crate) fn first_index(&self) -> Index {
        self.base.index.next()
    }

    /// The entry just before the first one held in memory: the last compacted entry.
    pub(crate) fn base(&self) -> LogId {
        self.base
    }

    /// Replaces the whole log with a snapshot ending at `last_included` (a follower that
    /// lacks the snapshot's last entry). Nothing at or after `last_included` counts as
    /// durable until the write carrying the snapshot is acknowledged.
    pub(crate) fn install_snapshot(&mut self, last_included: LogId) {
        self.entries.clear();
        self.configurations.clear();
        self.base = last_included;
        self.mark_unflushed(last_included.index);
    }

    /// Drops the entries at or below `through` from memory; they are covered by a durable
    /// snapshot. `through` must be held (or be the base already).
    pub(crate) fn compact_through(&mut self, through: Index) {
        if through <= self.base.index {
            return;
        }
        let Some(term) = self.term_at(through) else {
            debug_assert!(false, "compacting beyond the log");
            return;
        };
        let count = through.0 - self.base.index.0;
        self.entries.drain(
            ..usize::try_from(count)
                .unwrap_or(usize::MAX)
                .min(self.entries.len()),
        );
        self.base = LogId {
            term,
            index: through,
        };
        self.configurations.retain(|(index, _)| *index > through);
    }

    /// The term of the entry at `index`, if the log holds it (the base counts).
    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.entry(index).map(Entry::term)
    }

    /// The entry at `index`, if held in memory.
    pub(crate) fn entry(&self, index: Index) -> Option<&Entry> {
        let position = index.0.checked_sub(self.first_index().0)?;
        self.entries.get(usize::try_from(position).ok()?)
    }

    /// Every entry held in memory, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> + '_ {
        self.entries.iter()
    }

    /// Whether the log holds exactly the entry `id`.
    pub(crate) fn matches(&self, id: LogId) -> bool {
        self.term_at(id.index) == Some(id.term)
    }

    /// The highest index up to which the stored log equals the memory log.
    pub(crate) fn durable_index(&self) -> Index {
        let mut durable = self.stored_last.min(self.last_index());
        for write in &self.pending {
            durable = durable.min(write.first_index.previous());
        }
        if let Some(first) = self.unflushed_from {
            durable = durable.min(first.previous());
        }
        durable
    }

    /// Whether memory holds changes that no write carries yet.
    pub(crate) fn has_unflushed(&self) -> bool {
        self.unflushed_from.is_some()
    }

    /// Appends one entry at the end (leader side).
    pub(crate) fn push(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index(), self.last_index().next());
        self.mark_unflushed(entry.index());
        self.configurations.extend(configuration_of(&entry));
        self.entries.push_back(entry);
    }

    fn mark_unflushed(&mut self, index: Index) {
        self.unflushed_from = Some(self.unflushed_from.map_or(index, |first| first.min(index)));
    }

    /// Follower side: checks that the log holds `previous`, then merges `entries` after it,
    /// truncating a conflicting suffix. Entries at or below `commit` are never truncated.
    pub(crate) fn append_from_leader(
        &mut self,
        previous: LogId,
        entries: Vec<Entry>,
        leader_term: Term,
        commit: Index,
    ) -> FollowerAppend {
        // Checked first, so that no arithmetic below sees a forged, huge index.
        if previous.index > self.last_index() {
            return FollowerAppend::Mismatch;
        }
        let mut expected = previous.index.next();
        let mut term_floor = previous.term;
        for entry in &entries {
            // No leader creates entries of a later term than its own, nor configurations
            // that cannot work.
            let broken_configuration = matches!(
                &entry.payload,
                Payload::Membership(membership) if !membership.is_well_formed()
            );
            if entry.index() != expected
                || entry.term() < term_floor
                || entry.term() > leader_term
                || broken_configuration
            {
                return FollowerAppend::Malformed;
            }
            expected = expected.next();
            term_floor = entry.term();
        }
        let last_new = previous.index.plus(entries.len() as u64);
        // Below the base everything is committed and compacted, so it matches by definition.
        if previous.index >= self.base.index && !self.matches(previous) {
            return FollowerAppend::Mismatch;
        }
        let skip = entries
            .iter()
            .take_while(|entry| {
                entry.index() <= self.base.index
                    || self.term_at(entry.index()) == Some(entry.term())
            })
            .count();
        if skip < entries.len() {
            let index = entries[skip].index();
            if index <= self.last_index() {
                if index <= commit {
                    return FollowerAppend::ConflictsWithCommitted { index };
                }
                self.truncate_from(index);
            }
            self.mark_unflushed(index);
            for entry in entries.into_iter().skip(skip) {
                self.configurations.extend(configuration_of(&entry));
                self.entries.push_back(entry);
            }
        }
        FollowerAppend::Matched { last: last_new }
    }

    /// Drops every entry at or after `index`.
    fn truncate_from(&mut self, index: Index) {
        let keep = index.0.saturating_sub(self.first_index().0);
        self.entries
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        self.configurations.retain(|(at, _)| *at < index);
        self.mark_unflushed(index);
    }

    /// The hint for a rejected append at `previous`: the last entry at or below
    /// `previous.index` whose term is at most `previous.term`. The leader then skips, in one
    /// step, every entry of the terms this log holds and the leader's does not.
    pub(crate) fn rejection_hint(&self, previous: LogId) -> LogId {
        let mut index = previous.index.min(self.last_index());
        while index > self.base.index {
            match self.term_at(index) {
                Some(term) if term <= previous.term => return LogId { term, index },
                _ => index = index.previous(),
            }
        }
        self.base
    }

    /// Leader side: the last index at or below `hint.index` whose term is at most
    /// `hint.term`; the follower's log cannot match the leader's beyond it.
    ///
    /// Below the base the leader no longer knows terms: a hint there, or one that
    /// contradicts the base, yields an index below the base, from which the follower
    /// needs a snapshot. Only a hint naming the base itself confirms a match at it.
    pub(crate) fn match_candidate(&self, hint: LogId) -> Index {
        if hint.index <= self.base.index {
            return if hint == self.base {
                hint.index
            } else {
                hint.index.min(self.base.index.previous())
            };
        }
        let mut index = hint.index.min(self.last_index());
        while index > self.base.index {
            match self.term_at(index) {
                Some(term) if term <= hint.term => return index,
                _ => index = index.previous(),
            }
        }
        self.base.index
    }

    /// Clones entries from `from` on, as many as fit in `bytes_max` accounted bytes (at
    /// least one when any exist).
    pub(crate) fn entries_from(&self, from: Index, bytes_max: usize) -> Vec<Entry> {
        let Some(start) = from.0.checked_sub(self.first_index().0) else {
            return Vec::new();
        };
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        if start >= self.entries.len() {
            return Vec::new();
        }
        let mut bytes = 0usize;
        let mut count = 0usize;
        for entry in self.entries.range(start..) {
            bytes = bytes.saturating_add(entry.payload.accounted_size());
            if count > 0 && bytes > bytes_max {
                break;
            }
            count += 1;
        }
        self.entries.range(start..start + count).cloned().collect()
    }

    /// Clones the entries in `[from, through]`.
    pub(crate) fn entries_between(&self, from: Index, through: Index) -> Vec<Entry> {
        if through < from {
            return Vec::new();
        }
        let first = self.first_index().0;
        // Saturating: forged indexes near the end of the index space must not overflow.
        let (Ok(start), Ok(end)) = (
            usize::try_from(from.0.saturating_sub(first)),
            usize::try_from(through.0.saturating_add(1).saturating_sub(first)),
        ) else {
            return Vec::new();
        };
        self.entries
            .range(start..end.min(self.entries.len()))
            .cloned()
            .collect()
    }

    /// Sum of accounted bytes of the entries after `after` up to `through` (inclusive).
    pub(crate) fn payload_bytes_between(&self, after: Index, through: Index) -> usize {
        let first = self.first_index().0;
        let start = after.0.saturating_add(1).saturating_sub(first);
        let end = through.0.saturating_add(1).saturating_sub(first);
        let (Ok(start), Ok(end)) = (usize::try_from(start), usize::try_from(end)) else {
            return 0;
        };
        let end = end.min(self.entries.len());
        if start >= end {
            return 0;
        }
        self.entries
            .range(start..end)
            .map(|entry| entry.payload.accounted_size())
            .sum()
    }

    /// Sum of accounted bytes of the entries after `index`.
    pub(crate) fn payload_bytes_after(&self, index: Index) -> usize {
        self.payload_bytes_between(index, self.last_index())
    }

    /// Turns the unflushed changes into a log write with id `id`.
    pub(crate) fn take_unflushed(&mut self, id: WriteId) -> Option<LogWrite> {
        let changed_from = self.unflushed_from.take()?;
        // After a snapshot install the change starts at the snapshot's index, which the
        // snapshot itself stores; the log write starts after it.
        let first_index = changed_from.max(self.first_index());
        let entries = self.entries_between(first_index, self.last_index());
        self.pending.push_back(PendingLogWrite {
            id,
            first_index: changed_from,
            last_index: self.last_index(),
        });
        Some(LogWrite {
            first_index,
            entries,
        })
    }

    /// Storage made every write up to `id` durable.
    pub(crate) fn acknowledge(&mut self, id: WriteId) {
        if id <= self.acknowledged {
            return;
        }
        self.acknowledged = id;
        while let Some(write) = self.pending.front() {
            if write.id > id {
                break;
            }
            self.stored_last = write.last_index;
            self.pending.pop_front();
        }
    }
}

/// The configuration an entry carries, if it is a configuration entry.
fn configuration_of(entry: &Entry) -> Option<(Index, Membership)> {
    match &entry.payload {
        Payload::Membership(membership) => Some((entry.index(), Membership::clone(membership))),
        Payload::Blank | Payload::Command(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn entry(term: u64, index: u64) -> Entry {
        Entry {
            id: LogId::new(term, index),
            payload: Payload::Command(Bytes::from_static(b"x")),
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        RaftLog::recovered(
            LogId::default(),
            terms
                .iter()
                .enumerate()
                .map(|(position, term)| entry(*term, position as u64 + 1))
                .collect(),
        )
    }

    // A recovered log is durable through its last entry.
    #[test]
    fn recovered_log_is_durable() {
        let log = log_of(&[1, 1, 2]);
        assert_eq!(log.last_id(), LogId::new(2, 3));
        assert_eq!(log.durable_index(), Index(3));
        assert!(!log.has_unflushed());
    }

    // Appended entries become durable only when their write is acknowledged.
    #[test]
    fn appended_entries_are_durable_only_after_acknowledgement() {
        let mut log = log_of(&[1]);
        log.push(entry(1, 2));
        assert_eq!(log.durable_index(), Index(1));
        let write = log.take_unflushed(WriteId(1)).expect("one write");
        assert_eq!(write.first_index, Index(2));
        assert_eq!(write.entries.len(), 1);
        assert_eq!(log.durable_index(), Index(1));
        log.acknowledge(WriteId(1));
        assert_eq!(log.durable_index(), Index(2));
    }

    // A truncation lowers the durable index at once, and an acknowledgement of a write
    // issued before the truncation does not raise it past the truncation point.
    #[test]
    fn stale_acknowledgement_after_truncation_is_capped() {
        let mut log = log_of(&[1]);
        log.push(entry(1, 2));
        log.push(entry(1, 3));
        log.take_unflushed(WriteId(1)).expect("write");
        // A new leader of term 2 overwrites index 2 and 3.
        let outcome =
            log.append_from_leader(LogId::new(1, 1), vec![entry(2, 2)], Term(5), Index(1));
        assert_eq!(outcome, FollowerAppend::Matched { last: Index(2) });
        assert_eq!(log.last_id(), LogId::new(2, 2));
        log.acknowledge(WriteId(1));
        assert_eq!(log.durable_index(), Index(1));
        let write = log.take_unflushed(WriteId(2)).expect("write");
        assert_eq!(write.first_index, Index(2));
        log.acknowledge(WriteId(2));
        assert_eq!(log.durable_index(), Index(2));
    }

    // The consistency check refuses a missing or different previous entry.
    #[test]
    fn append_checks_previous_entry() {
        let mut log = log_of(&[1, 1]);
        assert_eq!(
            log.append_from_leader(LogId::new(1, 3), vec![], Term(5), Index(0)),
            FollowerAppend::Mismatch
        );
        assert_eq!(
            log.append_from_leader(LogId::new(2, 2), vec![], Term(5), Index(0)),
            FollowerAppend::Mismatch
        );
        assert_eq!(
            log.append_from_leader(LogId::new(1, 2), vec![entry(1, 3)], Term(5), Index(0)),
            FollowerAppend::Matched { last: Index(3) }
        );
    }

    // Entries the log already holds are not rewritten, so a duplicate append issues no write.
    #[test]
    fn duplicate_append_changes_nothing() {
        let mut log = log_of(&[1, 1, 1]);
        assert_eq!(
            log.append_from_leader(LogId::new(1, 1), vec![entry(1, 2)], Term(5), Index(0)),
            FollowerAppend::Matched { last: Index(2) }
        );
        assert_eq!(log.last_index(), Index(3));
        assert!(!log.has_unflushed());
    }

    // A committed entry is never truncated, whatever a peer sends.
    #[test]
    fn committed_entries_are_never_truncated() {
        let mut log = log_of(&[1, 1, 1]);
        assert_eq!(
            log.append_from_leader(LogId::new(1, 1), vec![entry(2, 2)], Term(5), Index(2)),
            FollowerAppend::ConflictsWithCommitted { index: Index(2) }
        );
        assert_eq!(log.last_id(), LogId::new(1, 3));
    }

    // Non-contiguous entries or terms going backwards are refused as malformed.
    #[test]
    fn malformed_appends_are_refused() {
        let mut log = log_of(&[1]);
        assert_eq!(
            log.append_from_leader(LogId::new(1, 1), vec![entry(1, 3)], Term(5), Index(0)),
            FollowerAppend::Malformed
        );
        assert_eq!(
            log.append_from_leader(LogId::new(2, 1), vec![entry(1, 2)], Term(5), Index(0)),
            FollowerAppend::Malformed
        );
    }

    // The rejection hint and the leader's match candidate skip whole terms.
    #[test]
    fn hints_skip_whole_terms() {
        // Follower: terms 1 1 1 4 4 5 5 6 6 6 (Figure 7 (c)-like); leader: 1 1 1 4 4 5 5 6 6 6 7? no;
        // here leader prev is (8, 10) and follower diverges in its terms above 5.
        let follower = log_of(&[1, 1, 1, 2, 2, 2, 3, 3, 3]);
        let hint = follower.rejection_hint(LogId::new(4, 9));
        assert_eq!(hint, LogId::new(3, 9));
        let hint = follower.rejection_hint(LogId::new(2, 9));
        assert_eq!(hint, LogId::new(2, 6));
        let leader = log_of(&[1, 1, 1, 4, 4, 4, 4]);
        assert_eq!(leader.match_candidate(LogId::new(2, 6)), Index(3));
        assert_eq!(leader.match_candidate(LogId::new(4, 20)), Index(7));
    }

    // Entries are cut at the byte cap but always at least one is sent.
    #[test]
    fn entries_respect_byte_cap() {
        let log = log_of(&[1, 1, 1, 1]);
        // Each entry counts its 1-byte payload plus the fixed overhead.
        let entry_bytes = 1 + crate::types::ENTRY_OVERHEAD_BYTES;
        assert_eq!(log.entries_from(Index(1), 2 * entry_bytes).len(), 2);
        assert_eq!(log.entries_from(Index(1), 2 * entry_bytes - 1).len(), 1);
        assert_eq!(log.entries_from(Index(1), 0).len(), 1);
        assert_eq!(log.entries_from(Index(3), 100 * entry_bytes).len(), 2);
        assert!(log.entries_from(Index(5), 100).is_empty());
        assert_eq!(log.payload_bytes_after(Index(1)), 3 * entry_bytes);
        assert_eq!(log.payload_bytes_between(Index(1), Index(2)), entry_bytes);
        assert_eq!(log.payload_bytes_between(Index(3), Index(2)), 0);
    }

    // Compaction drops a prefix but keeps terms, configurations and the hint logic above
    // the new base.
    #[test]
    fn compaction_keeps_the_rest() {
        let mut log = log_of(&[1, 1, 2, 2, 3]);
        log.compact_through(Index(3));
        assert_eq!(log.base(), LogId::new(2, 3));
        assert_eq!(log.first_index(), Index(4));
        assert_eq!(log.term_at(Index(3)), Some(Term(2)));
        assert_eq!(log.term_at(Index(2)), None);
        assert!(log.entry(Index(3)).is_none());
        assert_eq!(log.last_id(), LogId::new(3, 5));
        assert_eq!(log.durable_index(), Index(5));
        // Compacting at or below the base changes nothing.
        log.compact_through(Index(2));
        assert_eq!(log.base(), LogId::new(2, 3));
        log.compact_through(Index(5));
        assert_eq!(log.last_id(), LogId::new(3, 5));
        assert_eq!(log.iter().count(), 0);
    }

    // Below its base a leader knows no terms: only a hint naming the base itself confirms
    // a match there; anything else points below the base, where a snapshot is needed.
    #[test]
    fn match_candidates_below_the_base_ask_for_a_snapshot() {
        let mut leader = log_of(&[1, 1, 2, 2, 3, 3]);
        leader.compact_through(Index(4));
        assert_eq!(leader.match_candidate(LogId::new(2, 4)), Index(4));
        assert_eq!(leader.match_candidate(LogId::new(1, 4)), Index(3));
        assert_eq!(leader.match_candidate(LogId::new(1, 2)), Index(2));
        assert_eq!(leader.match_candidate(LogId::new(0, 0)), Index(0));
        // Above the base the usual walk applies, bottoming out at the base.
        assert_eq!(leader.match_candidate(LogId::new(3, 6)), Index(6));
        assert_eq!(leader.match_candidate(LogId::new(2, 6)), Index(4));
    }

    // Installing a snapshot empties the log; the snapshot's index is not durable until
    // the write carrying it is acknowledged, and the log write starts after it.
    #[test]
    fn installed_snapshot_is_durable_only_with_its_write() {
        let mut log = log_of(&[1, 1, 1]);
        log.install_snapshot(LogId::new(2, 10));
        assert_eq!(log.last_id(), LogId::new(2, 10));
        assert_eq!(log.first_index(), Index(11));
        assert!(log.has_unflushed());
        assert!(log.durable_index() < Index(10));
        let write = log.take_unflushed(WriteId(1)).expect("a write");
        assert_eq!(write.first_index, Index(11));
        assert!(write.entries.is_empty());
        assert!(log.durable_index() < Index(10));
        log.acknowledge(WriteId(1));
        assert_eq!(log.durable_index(), Index(10));
        // Appends after the snapshot then proceed as usual.
        assert_eq!(
            log.append_from_leader(LogId::new(2, 10), vec![entry(2, 11)], Term(2), Index(10)),
            FollowerAppend::Matched { last: Index(11) }
        );
    }

    // An append whose previous entry lies below the base matches by definition (those
    // entries are committed), and only the entries after the base are taken.
    #[test]
    fn appends_reaching_below_the_base_match() {
        let mut log = log_of(&[1, 1, 1, 1]);
        log.compact_through(Index(3));
        let outcome = log.append_from_leader(
            LogId::new(1, 1),
            vec![entry(1, 2), entry(1, 3), entry(1, 4), entry(1, 5)],
            Term(1),
            Index(3),
        );
        assert_eq!(outcome, FollowerAppend::Matched { last: Index(5) });
        assert_eq!(log.last_id(), LogId::new(1, 5));
        assert_eq!(log.base(), LogId::new(1, 3));
    }
}
