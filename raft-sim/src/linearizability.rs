//! A linearizability checker for key-value histories.
//!
//! A history is linearizable when every operation can be given a single instant between its
//! invocation and its completion such that, executed one at a time in the order of those
//! instants, a sequential key-value store returns exactly what the clients saw.
//!
//! Linearizability is local (P-compositional): a history is linearizable if and only if its
//! restriction to each key is. [`check`] therefore splits the history per key and searches
//! each key on its own, which keeps the search space small.
//!
//! # Model
//!
//! Each key holds `Option<String>` (`None`: absent), starting absent:
//!
//! - `Get` returns the current value;
//! - `Put` replaces it; `Delete` makes it absent;
//! - `Append` concatenates, an absent value counting as empty (so appending to an absent key
//!   makes it present);
//! - `CompareAndSet { expected, new }` stores `new` if and only if the value equals
//!   `expected`, and returns `Swapped(true)` or `Swapped(false)` accordingly. A completed
//!   `Swapped(false)` is an operation like any other: it must take effect at an instant where
//!   the value differs from `expected`.
//!
//! Outcomes:
//!
//! - [`Outcome::Fail`]: the operation certainly did not happen; it is ignored.
//! - [`Outcome::Unknown`]: the operation may have taken effect at any instant after its
//!   invocation, or never. It has no completion deadline and its result is not checked. An
//!   unknown `Get` constrains nothing and is ignored.
//! - A result the operation cannot return (a `Get` completing with `Done`, a `Put` with
//!   `Swapped`) makes the history not linearizable: no sequential execution produces it.
//!
//! Operation `a` precedes `b` in real time when `a` completed strictly before `b` was
//! invoked; equal times count as concurrent. An operation that claims to complete before it
//! was invoked is treated as instantaneous at its invocation. A completed operation without
//! a completion time has no deadline.
//!
//! # Algorithm
//!
//! A read of a value that no put, compare-and-set or sequence of appends on its key
//! produces is reported at once, before any search.
//!
//! The search is the Wing–Gong algorithm with Lowe's memoisation ("Testing for
//! linearizability", 2017), as in the Porcupine checker. Invocations and completions of one
//! key form a doubly linked list in time order. The search repeatedly picks an operation
//! whose invocation comes before the first remaining completion, applies it to the model,
//! and removes it from the list; when no candidate works it backtracks. Every reached
//! configuration (set of operations already placed, model value) is remembered, so that
//! none is explored twice. When a pending read (or compare-and-set that did not swap) can
//! go next, it is the only candidate tried there: an operation that changes nothing can be
//! moved to the front of any valid order.
//!
//! Configurations are kept small and cheap to compare:
//!
//! - values are interned to small integers, and every value that no read returns and no
//!   compare-and-set expects (nor has as a prefix) becomes one and the same integer, since no
//!   operation can tell such values apart;
//! - the set of placed operations is a bitset over the operations in invocation order. All
//!   completed operations before the oldest pending one are placed, and none invoked after
//!   the first remaining completion is, so only the window between the two is stored,
//!   together with the bits of the operations with an unknown outcome. The set's hash is
//!   kept incrementally (Zobrist hashing).
//!
//! Operations with an unknown outcome are optional: the search succeeds as soon as every
//! completed operation is placed. Since each may happen anywhere after its invocation, they
//! could multiply the search. They are tried only after the completed candidates, newest
//! first (in practice most either never took effect or took effect just before the
//! operation that observed them), and three exact reductions keep them in check:
//!
//! - of several unknown operations with the same effect, all invoked before the first
//!   remaining completion, only the newest is ever placed: they are interchangeable;
//! - one is never placed where it cannot matter: where it changes nothing, right before a
//!   put or delete that hides it (leaving it out does at least as well), or right before a
//!   completed operation that could have gone first with the same result and the same value
//!   after both (placing it later does as well). A shortest valid order, if any, can be
//!   rewritten to follow these rules, so the search stays complete;
//! - a configuration is skipped when one with the same completed operations and value, but
//!   only a subset of its optional operations placed, was fully explored and failed: the
//!   latter could do anything the former can.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::history::{Call, Operation, Outcome, Return};

/// The search budget [`check`] uses: the number of search steps allowed per key before the
/// verdict becomes [`Verdict::Inconclusive`].
///
/// A step looks at one candidate operation at one point of the search, or undoes a
/// placement, and takes from a few to a few tens of nanoseconds, so the default allows
/// roughly a tenth of a second to a second per key. Linearizable histories of realistic
/// concurrency need a few steps per operation; the budget matters for histories that are not
/// linearizable, where the search must rule out every order up to the violation, and for
/// very concurrent histories over few distinct values or with many operations of unknown
/// outcome on one key. Memory grows with the configurations remembered, at most one per
/// step and a few tens of bytes each.
pub const DEFAULT_STEPS_MAX: u64 = 10_000_000;

/// The result of a linearizability check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Some order of the operations, one per key, respects real time and explains every
    /// result.
    Linearizable,
    /// No order of the operations on `key` respects real time and explains every result.
    NotLinearizable {
        /// The key whose operations cannot be ordered.
        key: String,
        /// Indexes into the checked slice: first the operation that could not take effect
        /// in time, then the operations that were concurrent with it at that point.
        operations: Vec<usize>,
        /// A short human-readable account of the deepest point the search reached.
        explanation: String,
    },
    /// The search for `key` ran out of budget before reaching a verdict; every other key
    /// was found linearizable or ran out of budget too.
    Inconclusive {
        /// The first key whose search ran out of budget.
        key: String,
        /// Why the search stopped.
        reason: String,
    },
}

impl Verdict {
    /// Whether the history was found linearizable.
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(formatter, "linearizable"),
            Verdict::NotLinearizable {
                key, explanation, ..
            } => write!(formatter, "not linearizable on key {key:?}: {explanation}"),
            Verdict::Inconclusive { key, reason } => {
                write!(formatter, "inconclusive on key {key:?}: {reason}")
            }
        }
    }
}

/// Checks whether `operations` is linearizable, with [`DEFAULT_STEPS_MAX`] steps per key.
///
/// The order of `operations` does not matter: only their times do.
pub fn check(operations: &[Operation]) -> Verdict {
    check_with_budget(operations, DEFAULT_STEPS_MAX)
}

/// Checks whether `operations` is linearizable, allowing at most `steps_max` search steps
/// per key.
///
/// Keys are checked in lexicographic order. The first key found not linearizable decides
/// the verdict; a key whose search runs out of budget makes the verdict
/// [`Verdict::Inconclusive`] only if no other key is found not linearizable.
pub fn check_with_budget(operations: &[Operation], steps_max: u64) -> Verdict {
    let mut per_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, operation) in operations.iter().enumerate() {
        // A failed operation never happened, and a read whose answer was lost constrains
        // nothing.
        let ignored = matches!(
            (&operation.outcome, &operation.call),
            (Outcome::Fail, _) | (Outcome::Unknown, Call::Get { .. })
        );
        if !ignored {
            per_key.entry(operation.call.key()).or_default().push(index);
        }
    }
    let mut inconclusive = None;
    for (key, indexes) in per_key {
        if let Some(verdict) = unproducible_read(operations, key, &indexes) {
            return verdict;
        }
        match KeySearch::new(operations, &indexes).run(steps_max) {
            Search::Linearizable => {}
            Search::NotLinearizable(failure) => {
                return describe_failure(operations, key, &failure);
            }
            Search::OutOfBudget => {
                if inconclusive.is_none() {
                    inconclusive = Some(Verdict::Inconclusive {
                        key: key.to_string(),
                        reason: format!(
                            "the search took {steps_max} steps over the key's {} operations \
                             without a verdict; check_with_budget allows more",
                            indexes.len()
                        ),
                    });
                }
            }
        }
    }
    inconclusive.unwrap_or(Verdict::Linearizable)
}

/// A completed read of a value that no sequence of this key's operations can produce, if
/// any: caught before the search, which would have to rule out every order before it to
/// reach the same verdict.
fn unproducible_read(operations: &[Operation], key: &str, indexes: &[usize]) -> Option<Verdict> {
    let mut written = HashSet::new();
    let mut suffixes = HashSet::new();
    for index in indexes {
        match &operations[*index].call {
            Call::Put { value, .. } | Call::CompareAndSet { new: value, .. } => {
                written.insert(value.as_str());
            }
            Call::Append { value, .. } if !value.is_empty() => {
                suffixes.insert(value.as_str());
            }
            _ => {}
        }
    }
    let mut suffix_lengths: Vec<usize> = suffixes.iter().map(|suffix| suffix.len()).collect();
    suffix_lengths.sort_unstable();
    suffix_lengths.dedup();
    // Whether `value` is a written value followed by appended suffixes (each suffix may be
    // counted more than once: this only has to rule out what is certainly impossible).
    let producible = |value: &str| {
        if written.contains(value) {
            return true;
        }
        // formed[end]: whether value[..end] can be formed.
        let mut formed = vec![false; value.len() + 1];
        formed[0] = true;
        for base in &written {
            if value.starts_with(base) {
                formed[base.len()] = true;
            }
        }
        for start in 0..value.len() {
            if !formed[start] {
                continue;
            }
            for length in &suffix_lengths {
                if let Some(piece) = value.get(start..start + length)
                    && suffixes.contains(piece)
                {
                    formed[start + length] = true;
                }
            }
        }
        formed[value.len()]
    };
    let index = indexes.iter().copied().find(|index| {
        let operation = &operations[*index];
        matches!(&operation.outcome, Outcome::Ok(Return::Value(Some(value))) if !producible(value))
    })?;
    Some(Verdict::NotLinearizable {
        key: key.to_string(),
        operations: vec![index],
        explanation: format!(
            "{} returned a value that no put, compare-and-set or sequence of appends on the \
             key produces",
            operations[index]
        ),
    })
}

/// The interned value meaning "absent".
const ABSENT: u32 = 0;

/// The interned value standing for every value that no operation can tell apart from any
/// other: one that is not a prefix of any value a read returned or a compare-and-set
/// expects. No read can return such a value, no compare-and-set can match it, and appending
/// to it gives another such value (the observed prefixes are closed under taking prefixes);
/// only a put or delete leaves it. All of them behave alike for every operation of the key,
/// so merging them is exact, and it keeps appends and writes nobody observed from
/// multiplying the model's states.
const UNOBSERVABLE: u32 = 1;

/// The values one key's search has met, numbered so that the model state is one integer.
#[derive(Debug)]
struct Values {
    numbers: HashMap<String, u32>,
    strings: Vec<Option<String>>,
    /// Every value a completed read returned or a compare-and-set expects, sorted.
    observed: Vec<String>,
}

impl Values {
    fn new(mut observed: Vec<String>) -> Values {
        observed.sort_unstable();
        observed.dedup();
        Values {
            numbers: HashMap::new(),
            strings: vec![None, None],
            observed,
        }
    }

    /// Whether `value` is a prefix of an observed value.
    fn observable(&self, value: &str) -> bool {
        // The strings starting with `value` sort right after it, so the first observed value
        // not below it starts with it if any does.
        let index = self
            .observed
            .partition_point(|observed| observed.as_str() < value);
        self.observed
            .get(index)
            .is_some_and(|observed| observed.starts_with(value))
    }

    fn intern(&mut self, value: Option<&str>) -> u32 {
        let Some(value) = value else { return ABSENT };
        if let Some(number) = self.numbers.get(value) {
            return *number;
        }
        if !self.observable(value) {
            return UNOBSERVABLE;
        }
        let number = u32::try_from(self.strings.len()).expect("fewer than 2^32 distinct values");
        self.numbers.insert(value.to_string(), number);
        self.strings.push(Some(value.to_string()));
        number
    }

    /// The value's text; not meaningful for [`UNOBSERVABLE`].
    fn string(&self, number: u32) -> Option<&str> {
        self.strings[number as usize].as_deref()
    }
}

/// What one operation does to the model, with its result already folded in.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Effect {
    /// A completed read that returned this value.
    Read { returned: u32 },
    /// A put (or, with [`ABSENT`], a delete): always possible.
    Write { value: u32 },
    /// An append: the resulting value is computed, and interned, on demand.
    Append { suffix: String },
    /// A compare-and-set; `swapped` is `None` when its outcome is unknown.
    CompareAndSet {
        expected: u32,
        new: u32,
        swapped: Option<bool>,
    },
    /// The recorded result is not one this operation can return.
    Impossible,
}

/// Translates an operation and its result into its effect on the model.
fn effect(values: &mut Values, operation: &Operation) -> Effect {
    let result = match &operation.outcome {
        Outcome::Ok(result) => Some(result),
        Outcome::Unknown => None,
        Outcome::Fail => unreachable!("failed operations are left out"),
    };
    let done = matches!(result, None | Some(Return::Done));
    match &operation.call {
        Call::Get { .. } => match result {
            Some(Return::Value(returned)) => Effect::Read {
                returned: values.intern(returned.as_deref()),
            },
            _ => Effect::Impossible,
        },
        Call::Put { value, .. } if done => Effect::Write {
            value: values.intern(Some(value)),
        },
        Call::Delete { .. } if done => Effect::Write { value: ABSENT },
        Call::Append { value, .. } if done => Effect::Append {
            suffix: value.clone(),
        },
        Call::CompareAndSet { expected, new, .. } => {
            let swapped = match result {
                None => None,
                Some(Return::Swapped(swapped)) => Some(*swapped),
                Some(_) => return Effect::Impossible,
            };
            Effect::CompareAndSet {
                expected: values.intern(expected.as_deref()),
                new: values.intern(Some(new)),
                swapped,
            }
        }
        Call::Put { .. } | Call::Delete { .. } | Call::Append { .. } => Effect::Impossible,
    }
}

/// One operation of the key under search.
#[derive(Debug)]
struct KeyOperation {
    effect: Effect,
    /// What it writes (put, compare-and-set) or appends, for explanations.
    text: Option<String>,
    /// Whether the outcome is unknown, making the operation optional.
    unknown: bool,
    /// Its index in the checked slice.
    input: usize,
}

/// A node of the event lists: index 0 and 1 are the sentinels of the list of completed
/// operations, 2 and 3 those of the list of unknown ones.
#[derive(Clone, Copy, Debug)]
struct Node {
    previous: usize,
    next: usize,
    kind: NodeKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeKind {
    Sentinel,
    /// The invocation of an operation (index into the key's operations).
    Call(usize),
    /// The completion of an operation.
    Return(usize),
}

const COMPLETED_HEAD: usize = 0;
const COMPLETED_TAIL: usize = 1;
const UNKNOWN_HEAD: usize = 2;
const UNKNOWN_TAIL: usize = 3;

/// A set of operations, one bit each.
#[derive(Debug)]
struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    fn set(&mut self, bit: usize) {
        self.words[bit / 64] |= 1 << (bit % 64);
    }

    fn clear(&mut self, bit: usize) {
        self.words[bit / 64] &= !(1 << (bit % 64));
    }

    fn contains(&self, bit: usize) -> bool {
        self.words[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Copies bits `start..end` into `out`, shifted down to bit 0.
    fn copy_range(&self, start: usize, end: usize, out: &mut Vec<u64>) {
        out.clear();
        let length = end - start;
        for word in 0..length.div_ceil(64) {
            let offset = start + word * 64;
            let (index, shift) = (offset / 64, offset % 64);
            let mut bits = self.words[index] >> shift;
            if shift != 0 && index + 1 < self.words.len() {
                bits |= self.words[index + 1] << (64 - shift);
            }
            let left = length - word * 64;
            if left < 64 {
                bits &= (1 << left) - 1;
            }
            out.push(bits);
        }
    }
}

/// A hasher for keys that are already uniformly random 64-bit hashes.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this fallback keeps the hasher correct for anything else.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A well-mixed 64-bit function of `value` (SplitMix64's finaliser).
fn mix(value: u64) -> u64 {
    let mut mixed = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    mixed ^ (mixed >> 31)
}

/// The hash of operation `operation` being in a set: a set's hash is the XOR of its
/// members' (Zobrist hashing), so adding or removing one costs one XOR.
fn member_hash(operation: usize) -> u64 {
    mix(operation as u64)
}

/// The hash contribution of a model value, kept distinct from every member hash.
fn value_hash(value: u32) -> u64 {
    mix(u64::from(value) ^ 0xA076_1D64_78BD_642F_u64.rotate_left(17))
}

/// Marks the end of a chain in [`Visited`].
const CHAIN_END: u32 = u32::MAX;

/// Every configuration reached so far.
///
/// Configurations are grouped by what must match exactly (completed operations placed and
/// value); within a group, entries differ by the optional operations placed and by whether
/// the last one placed was optional (which restricts what may follow). Besides exact
/// repeats, a configuration is skipped when a fully explored entry of its group placed a
/// subset of its optional operations under no more restriction: that entry could do
/// whatever this one can, and it failed. Without this, each unknown operation that never
/// took effect would double the search after it: placed here, or there, or not at all.
///
/// Groups and entries live in flat arenas, because the table grows by one entry on most
/// steps.
#[derive(Debug)]
struct Visited {
    groups_by_hash: HashMap<u64, u32, BuildHasherDefault<PassThroughHasher>>,
    groups: Vec<Group>,
    /// The groups' windows of completed operations, back to back.
    windows: Vec<u64>,
    entries: Vec<VisitedEntry>,
    /// The entries' sets of optional operations placed, `optional_words` each.
    optional_sets: Vec<u64>,
    optional_words: usize,
}

/// Configurations sharing the completed operations placed and the value.
#[derive(Debug)]
struct Group {
    value: u32,
    /// Completed operations below `window_start` are all placed, those from `window_end` on
    /// are not; the window's bits are stored at `window_offset`.
    window_start: usize,
    window_end: usize,
    window_offset: usize,
    /// The next group whose hash is the same.
    next_group: u32,
    /// The newest entry; the others are chained from it.
    last_entry: u32,
}

#[derive(Debug)]
struct VisitedEntry {
    /// What the last operation placed forbids next, if it was optional.
    restriction: Option<Restriction>,
    /// Whether the search returned from it: only then is it known to fail.
    finished: bool,
    previous_in_group: u32,
}

/// A configuration, as [`Visited`] stores it.
struct Configuration<'a> {
    hash: u64,
    value: u32,
    window_start: usize,
    window_end: usize,
    window: &'a [u64],
    optional: &'a [u64],
    restriction: Option<Restriction>,
}

/// Right after an optional operation is placed, what may come next is restricted (see
/// `KeySearch::run`); the restriction depends on that operation and the value before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Restriction {
    operation: usize,
    value_before: u32,
}

impl Visited {
    fn new(optional_words: usize) -> Visited {
        Visited {
            groups_by_hash: HashMap::default(),
            groups: Vec::new(),
            windows: Vec::new(),
            entries: Vec::new(),
            optional_sets: Vec::new(),
            optional_words,
        }
    }

    /// Records the configuration and returns its entry, or `None` if it repeats or is
    /// dominated by one explored before.
    fn insert(&mut self, configuration: &Configuration<'_>) -> Option<u32> {
        let new_entry = u32::try_from(self.entries.len()).expect("fewer than 2^32 configurations");
        let group_index = match self.find_group(configuration) {
            Some(group_index) => {
                if self.settled(group_index, configuration) {
                    return None;
                }
                group_index
            }
            None => {
                let group_index =
                    u32::try_from(self.groups.len()).expect("fewer than 2^32 configurations");
                let next_group = match self.groups_by_hash.entry(configuration.hash) {
                    MapEntry::Occupied(mut chain) => {
                        std::mem::replace(chain.get_mut(), group_index)
                    }
                    MapEntry::Vacant(chain) => {
                        chain.insert(group_index);
                        CHAIN_END
                    }
                };
                self.groups.push(Group {
                    value: configuration.value,
                    window_start: configuration.window_start,
                    window_end: configuration.window_end,
                    window_offset: self.windows.len(),
                    next_group,
                    last_entry: CHAIN_END,
                });
                self.windows.extend_from_slice(configuration.window);
                group_index
            }
        };
        let group = &mut self.groups[group_index as usize];
        self.entries.push(VisitedEntry {
            restriction: configuration.restriction,
            finished: false,
            previous_in_group: group.last_entry,
        });
        group.last_entry = new_entry;
        self.optional_sets.extend_from_slice(configuration.optional);
        Some(new_entry)
    }

    fn find_group(&self, configuration: &Configuration<'_>) -> Option<u32> {
        let mut cursor = *self.groups_by_hash.get(&configuration.hash)?;
        while cursor != CHAIN_END {
            let group = &self.groups[cursor as usize];
            if group.value == configuration.value
                && group.window_start == configuration.window_start
                && group.window_end == configuration.window_end
                && self.windows[group.window_offset..][..configuration.window.len()]
                    == *configuration.window
            {
                return Some(cursor);
            }
            cursor = group.next_group;
        }
        None
    }

    /// Whether the group holds the configuration, or a fully explored one dominating it.
    fn settled(&self, group_index: u32, configuration: &Configuration<'_>) -> bool {
        let mut cursor = self.groups[group_index as usize].last_entry;
        while cursor != CHAIN_END {
            let entry = &self.entries[cursor as usize];
            let stored =
                &self.optional_sets[cursor as usize * self.optional_words..][..self.optional_words];
            if entry.restriction == configuration.restriction && stored == configuration.optional {
                return true;
            }
            // An entry reached right after an optional operation may not continue with
            // everything, so it only dominates others under the same restriction.
            let subset = stored
                .iter()
                .zip(configuration.optional)
                .all(|(stored, current)| stored & !current == 0);
            if entry.finished
                && subset
                && (entry.restriction.is_none() || entry.restriction == configuration.restriction)
            {
                return true;
            }
            cursor = entry.previous_in_group;
        }
        false
    }

    /// Marks an entry fully explored: the search backtracked from it.
    fn finish(&mut self, entry: u32) {
        self.entries[entry as usize].finished = true;
    }
}

/// One placed operation, remembered so that the search can undo it.
#[derive(Debug)]
struct Placed {
    operation: usize,
    value_before: u32,
    /// Its configuration's entry in [`Visited`].
    entry: u32,
    /// Where the search looks for the next candidate once this placement is undone.
    resume: Cursor,
}

/// The deepest point a failed search reached, for the explanation. Operations are indexes
/// into the checked slice.
#[derive(Debug)]
struct Failure {
    /// How many operations were placed there.
    depth: usize,
    /// How many operations the key has.
    operation_count: usize,
    /// The operation whose completion could not be passed.
    blocking: usize,
    /// The other completed operations that could have gone next.
    concurrent: Vec<usize>,
    /// The last operation placed, if any.
    last_placed: Option<usize>,
    /// The model value there.
    value: Option<String>,
    /// Whether the blocking operation's result is one it cannot return at all.
    impossible: bool,
}

enum Search {
    Linearizable,
    NotLinearizable(Failure),
    OutOfBudget,
}

/// Where the search is looking for its next candidate.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    /// At a configuration just reached, before any candidate was tried.
    Fresh,
    /// Every candidate of the current configuration was tried.
    Exhausted,
    /// In the list of completed operations.
    Completed(usize),
    /// In the list of unknown operations, walking backwards (newest first) from the
    /// newest one invoked before `deadline`, the first remaining completion.
    Unknown { node: usize, deadline: usize },
}

/// The search over one key's operations.
///
/// Operations are numbered completed ones first, then unknown ones, each in invocation
/// order, so that the completed operations placed form a prefix plus a short window.
#[derive(Debug)]
struct KeySearch {
    operations: Vec<KeyOperation>,
    /// How many operations completed (they come first).
    completed: usize,
    nodes: Vec<Node>,
    /// Each operation's invocation node, and its completion node if it completed.
    call_nodes: Vec<usize>,
    return_nodes: Vec<Option<usize>>,
    /// Each node's position in time order (sentinels: 0, or `usize::MAX` for the tails).
    positions: Vec<usize>,
    /// For each completion node (and the completed list's tail), how many completed
    /// operations were invoked before it.
    invoked_before: Vec<usize>,
    /// The unknown operations' invocation nodes, by position in time order.
    unknown_calls: Vec<(usize, usize)>,
    /// For each unknown operation, the next unknown one invoked after it with the same
    /// effect.
    newer_twins: Vec<Option<usize>>,
    /// The unknown compare-and-sets, by the value they expect.
    unknown_swaps_by_expected: HashMap<u32, Vec<usize>>,
    values: Values,
    /// Appends' results, so that each is concatenated and interned once per value.
    append_results: HashMap<(u32, usize), u32>,
}

impl KeySearch {
    /// Prepares the search over `operations[index]` for each index in `indexes`.
    fn new(operations: &[Operation], indexes: &[usize]) -> KeySearch {
        let observed = indexes
            .iter()
            .filter_map(|index| {
                let operation = &operations[*index];
                match (&operation.call, &operation.outcome) {
                    (Call::CompareAndSet { expected, .. }, _) => expected.clone(),
                    (Call::Get { .. }, Outcome::Ok(Return::Value(returned))) => returned.clone(),
                    _ => None,
                }
            })
            .collect();
        let mut values = Values::new(observed);
        let mut order = indexes.to_vec();
        order.sort_by_key(|index| {
            let operation = &operations[*index];
            (
                operation.outcome == Outcome::Unknown,
                operation.invoke_time,
                *index,
            )
        });
        let key_operations: Vec<KeyOperation> = order
            .iter()
            .map(|index| {
                let operation = &operations[*index];
                let text = match &operation.call {
                    Call::Put { value, .. } | Call::Append { value, .. } => Some(value.clone()),
                    Call::CompareAndSet { new, .. } => Some(new.clone()),
                    Call::Get { .. } | Call::Delete { .. } => None,
                };
                KeyOperation {
                    effect: effect(&mut values, operation),
                    text,
                    unknown: operation.outcome == Outcome::Unknown,
                    input: *index,
                }
            })
            .collect();

        // (time, invocations before completions at equal times, operation). Invocations at
        // equal times keep the operations' order, so positions follow the numbering.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(order.len() * 2);
        for (local, key_operation) in key_operations.iter().enumerate() {
            let operation = &operations[key_operation.input];
            events.push((operation.invoke_time, false, local));
            if !key_operation.unknown {
                let complete = operation
                    .complete_time
                    .map_or(u64::MAX, |complete| complete.max(operation.invoke_time));
                events.push((complete, true, local));
            }
        }
        events.sort_unstable();

        let sentinel = |previous, next| Node {
            previous,
            next,
            kind: NodeKind::Sentinel,
        };
        let mut nodes = vec![
            sentinel(COMPLETED_HEAD, COMPLETED_TAIL),
            sentinel(COMPLETED_HEAD, COMPLETED_TAIL),
            sentinel(UNKNOWN_HEAD, UNKNOWN_TAIL),
            sentinel(UNKNOWN_HEAD, UNKNOWN_TAIL),
        ];
        let mut positions = vec![0, usize::MAX, 0, usize::MAX];
        let mut invoked_before = vec![0; 4];
        let mut call_nodes = vec![0; key_operations.len()];
        let mut return_nodes = vec![None; key_operations.len()];
        let mut unknown_calls = Vec::new();
        let mut completed_invoked = 0;
        for (position, (_, is_return, local)) in events.into_iter().enumerate() {
            let node = nodes.len();
            let unknown = key_operations[local].unknown;
            positions.push(position);
            invoked_before.push(completed_invoked);
            let kind = if is_return {
                return_nodes[local] = Some(node);
                NodeKind::Return(local)
            } else {
                call_nodes[local] = node;
                if unknown {
                    unknown_calls.push((position, node));
                } else {
                    completed_invoked += 1;
                }
                NodeKind::Call(local)
            };
            let tail = if unknown {
                UNKNOWN_TAIL
            } else {
                COMPLETED_TAIL
            };
            let previous = nodes[tail].previous;
            nodes.push(Node {
                previous,
                next: tail,
                kind,
            });
            nodes[previous].next = node;
            nodes[tail].previous = node;
        }
        invoked_before[COMPLETED_TAIL] = completed_invoked;

        let mut newer_twins = vec![None; key_operations.len()];
        let mut newest_with_effect: HashMap<&Effect, usize> = HashMap::new();
        for (_, node) in unknown_calls.iter().rev() {
            if let NodeKind::Call(operation) = nodes[*node].kind {
                let effect = &key_operations[operation].effect;
                newer_twins[operation] = newest_with_effect.insert(effect, operation);
            }
        }
        let mut unknown_swaps_by_expected: HashMap<u32, Vec<usize>> = HashMap::new();
        for (operation, key_operation) in key_operations.iter().enumerate() {
            if let Effect::CompareAndSet {
                expected,
                swapped: None,
                ..
            } = key_operation.effect
            {
                unknown_swaps_by_expected
                    .entry(expected)
                    .or_default()
                    .push(operation);
            }
        }
        KeySearch {
            unknown_swaps_by_expected,
            completed: completed_invoked,
            operations: key_operations,
            nodes,
            call_nodes,
            return_nodes,
            positions,
            invoked_before,
            unknown_calls,
            newer_twins,
            values,
            append_results: HashMap::new(),
        }
    }

    /// The model's transition: the value after `operation` runs on `value`, or `None` if it
    /// could not have returned what it returned.
    fn step(&mut self, operation: usize, value: u32) -> Option<u32> {
        match &self.operations[operation].effect {
            Effect::Read { returned } => (value == *returned).then_some(value),
            Effect::Write { value: written } => Some(*written),
            Effect::CompareAndSet {
                expected,
                new,
                swapped,
            } => {
                let matches = value == *expected;
                match swapped {
                    Some(true) => matches.then_some(*new),
                    Some(false) => (!matches).then_some(value),
                    None => Some(if matches { *new } else { value }),
                }
            }
            Effect::Append { .. } if value == UNOBSERVABLE => Some(UNOBSERVABLE),
            Effect::Append { suffix } => {
                if let Some(result) = self.append_results.get(&(value, operation)) {
                    return Some(*result);
                }
                let mut appended = self.values.string(value).unwrap_or("").to_string();
                appended.push_str(suffix);
                let result = self.values.intern(Some(&appended));
                self.append_results.insert((value, operation), result);
                Some(result)
            }
            Effect::Impossible => None,
        }
    }

    /// Unlinks a node; `relink` must undo these in reverse order.
    fn unlink(&mut self, node: usize) {
        let Node { previous, next, .. } = self.nodes[node];
        self.nodes[previous].next = next;
        self.nodes[next].previous = previous;
    }

    /// Puts back a node unlinked last (the node still knows its neighbours).
    fn relink(&mut self, node: usize) {
        let Node { previous, next, .. } = self.nodes[node];
        self.nodes[previous].next = node;
        self.nodes[next].previous = node;
    }

    fn lift(&mut self, operation: usize) {
        self.unlink(self.call_nodes[operation]);
        if let Some(node) = self.return_nodes[operation] {
            self.unlink(node);
        }
    }

    fn unlift(&mut self, operation: usize) {
        if let Some(node) = self.return_nodes[operation] {
            self.relink(node);
        }
        self.relink(self.call_nodes[operation]);
    }

    /// The first remaining completion (or the list's tail if none remains): every placed
    /// operation was invoked before it.
    fn first_return(&self) -> usize {
        let mut node = self.nodes[COMPLETED_HEAD].next;
        while let NodeKind::Call(_) = self.nodes[node].kind {
            node = self.nodes[node].next;
        }
        node
    }

    /// The window of completed operations whose placement varies: those before it are all
    /// placed (it starts at the oldest pending one), those from its end on are not (they
    /// were invoked after the first remaining completion).
    fn window(&self) -> (usize, usize) {
        let start = match self.nodes[self.nodes[COMPLETED_HEAD].next].kind {
            NodeKind::Call(operation) => operation,
            _ => self.completed,
        };
        let end = self.invoked_before[self.first_return()];
        (start, end.max(start))
    }

    /// The newest unknown operation not yet placed that was invoked before the completion
    /// `deadline`, or the list's head if there is none.
    fn newest_unknown_before(&self, deadline: usize, placed: &Bitset) -> usize {
        let before = self
            .unknown_calls
            .partition_point(|(position, _)| *position < self.positions[deadline]);
        let Some((_, mut node)) = before.checked_sub(1).map(|last| self.unknown_calls[last]) else {
            return UNKNOWN_HEAD;
        };
        // An unlinked node's `previous` is the neighbour it had when it was unlinked. Since
        // nodes are put back in the reverse order of their removal, every node between
        // that neighbour and this one is still unlinked; following the chain therefore
        // ends at the nearest linked node before this one.
        while let NodeKind::Call(operation) = self.nodes[node].kind {
            if !placed.contains(operation) {
                break;
            }
            node = self.nodes[node].previous;
        }
        node
    }

    /// Whether an unknown operation with the same effect as `operation`, invoked after it
    /// but before `deadline`, is still unplaced. Two such operations are interchangeable
    /// from here on (neither has a deadline and both may take effect now), so the search
    /// only ever places the newest of them: in any valid order that places the older one
    /// here, swapping the two gives another valid order.
    fn newer_twin_available(&self, operation: usize, deadline: usize, placed: &Bitset) -> bool {
        let mut twin = self.newer_twins[operation];
        while let Some(candidate) = twin {
            if self.positions[self.call_nodes[candidate]] > self.positions[deadline] {
                return false;
            }
            if !placed.contains(candidate) {
                return true;
            }
            twin = self.newer_twins[candidate];
        }
        false
    }

    /// A pending completed operation that never changes the value (a read, or a
    /// compare-and-set that did not swap) and is valid now, if any.
    ///
    /// Such an operation can go next in any valid order from here: moving it to the front
    /// changes no value, and everything that had to precede it is placed already (it is
    /// invoked before the first remaining completion). So when there is one, it is the only
    /// candidate worth trying.
    fn harmless_candidate(&mut self, value: u32) -> Option<usize> {
        let mut node = self.nodes[COMPLETED_HEAD].next;
        while let NodeKind::Call(operation) = self.nodes[node].kind {
            let harmless = match &self.operations[operation].effect {
                Effect::Read { returned } => *returned == value,
                Effect::CompareAndSet {
                    expected,
                    swapped: Some(false),
                    ..
                } => *expected != value,
                _ => false,
            };
            if harmless {
                return Some(operation);
            }
            node = self.nodes[node].next;
        }
        None
    }

    /// Whether placing the unknown operation `optional` next, taking the value from
    /// `value_before` to `value_after`, can lead anywhere under the rules of [`Self::run`]:
    /// some completed operation pending must be able to observe it right after, or another
    /// unknown operation must be able to change the value further (checked loosely: this
    /// only has to rule out placements that certainly lead nowhere, so as not to record
    /// them).
    fn worth_placing(
        &mut self,
        optional: usize,
        value_before: u32,
        value_after: u32,
        placed: &Bitset,
        unplaced_unknown_appends: usize,
    ) -> bool {
        let appends_after = usize::from(matches!(
            self.operations[optional].effect,
            Effect::Append { .. }
        ));
        if value_after != UNOBSERVABLE && unplaced_unknown_appends > appends_after {
            return true;
        }
        if let Some(swaps) = self.unknown_swaps_by_expected.get(&value_after)
            && swaps
                .iter()
                .any(|swap| *swap != optional && !placed.contains(*swap))
        {
            return true;
        }
        let mut node = self.nodes[COMPLETED_HEAD].next;
        while let NodeKind::Call(operation) = self.nodes[node].kind {
            node = self.nodes[node].next;
            if matches!(self.operations[operation].effect, Effect::Write { .. }) {
                continue;
            }
            let Some(after) = self.step(operation, value_after) else {
                continue;
            };
            let swapped_order = self
                .step(operation, value_before)
                .and_then(|alone| self.step(optional, alone));
            if swapped_order != Some(after) {
                return true;
            }
        }
        false
    }

    fn run(mut self, steps_max: u64) -> Search {
        let mut remaining = self.completed;
        if remaining == 0 {
            return Search::Linearizable;
        }
        let mut placed_set = Bitset::new(self.operations.len());
        // The hash of the completed operations placed: optional ones are left out so that
        // configurations differing only in those meet in one group of `visited`.
        let mut completed_hash = 0_u64;
        let mut placed: Vec<Placed> = Vec::new();
        let mut value = ABSENT;
        let mut visited = Visited::new((self.operations.len() - self.completed).div_ceil(64));
        let (mut window, mut optional) = (Vec::new(), Vec::new());
        let mut deepest: Option<Failure> = None;
        let is_unknown_append = |operation: &KeyOperation| {
            operation.unknown && matches!(operation.effect, Effect::Append { .. })
        };
        let mut unplaced_unknown_appends = self
            .operations
            .iter()
            .filter(|operation| is_unknown_append(operation))
            .count();
        let mut cursor = Cursor::Fresh;
        let mut steps = 0_u64;
        loop {
            steps += 1;
            if steps > steps_max {
                return Search::OutOfBudget;
            }
            let restriction = placed
                .last()
                .filter(|last| self.operations[last.operation].unknown)
                .map(|last| Restriction {
                    operation: last.operation,
                    value_before: last.value_before,
                });
            // The candidate to try, and where to look next if it fails.
            let (candidate, otherwise) = match cursor {
                Cursor::Fresh => {
                    cursor = Cursor::Completed(self.nodes[COMPLETED_HEAD].next);
                    // Right after an optional operation, what may follow is restricted, so
                    // the shortcut's argument does not apply there.
                    match restriction.map_or_else(|| self.harmless_candidate(value), |_| None) {
                        // If it fails, so does this configuration.
                        Some(operation) => (operation, Cursor::Exhausted),
                        None => continue,
                    }
                }
                Cursor::Completed(node) => match self.nodes[node].kind {
                    NodeKind::Call(operation) => {
                        (operation, Cursor::Completed(self.nodes[node].next))
                    }
                    // A completion (or, defensively, the end): every completed candidate was
                    // tried, so the unknown ones invoked before it come next.
                    NodeKind::Return(_) | NodeKind::Sentinel => {
                        cursor = Cursor::Unknown {
                            node: self.newest_unknown_before(node, &placed_set),
                            deadline: node,
                        };
                        continue;
                    }
                },
                Cursor::Unknown { node, deadline } => match self.nodes[node].kind {
                    NodeKind::Call(operation) => {
                        let next = Cursor::Unknown {
                            node: self.nodes[node].previous,
                            deadline,
                        };
                        if self.newer_twin_available(operation, deadline, &placed_set) {
                            // Interchangeable with a newer twin, which was or will be tried.
                            cursor = next;
                            continue;
                        }
                        (operation, next)
                    }
                    _ => {
                        cursor = Cursor::Exhausted;
                        continue;
                    }
                },
                Cursor::Exhausted => {
                    // Nothing can go next: note how far this attempt got, then undo the last
                    // placement and try its alternatives.
                    if deepest
                        .as_ref()
                        .is_none_or(|best| placed.len() > best.depth)
                    {
                        deepest = Some(self.failure(&placed, value));
                    }
                    let Some(last) = placed.pop() else {
                        return Search::NotLinearizable(deepest.expect("recorded just above"));
                    };
                    visited.finish(last.entry);
                    self.unlift(last.operation);
                    placed_set.clear(last.operation);
                    value = last.value_before;
                    if !self.operations[last.operation].unknown {
                        completed_hash ^= member_hash(last.operation);
                        remaining += 1;
                    }
                    if is_unknown_append(&self.operations[last.operation]) {
                        unplaced_unknown_appends += 1;
                    }
                    cursor = last.resume;
                    continue;
                }
            };

            cursor = otherwise;
            let candidate_unknown = self.operations[candidate].unknown;
            // An optional operation is only worth placing right before an operation that
            // observes it. Valid orders that break these rules are never needed, because a
            // shortest valid order can be rewritten to follow them: moving each optional
            // operation later or dropping it keeps the order valid.
            if restriction.is_some()
                && matches!(self.operations[candidate].effect, Effect::Write { .. })
            {
                // A put or delete right after an optional operation hides it: leaving the
                // optional operation out gives the same value with more choices left, and
                // that order is explored from the parent configuration.
                continue;
            }
            let Some(next_value) = self.step(candidate, value) else {
                continue;
            };
            if candidate_unknown
                && (next_value == value
                    || !self.worth_placing(
                        candidate,
                        value,
                        next_value,
                        &placed_set,
                        unplaced_unknown_appends,
                    ))
            {
                // An optional operation that changes nothing is better left out, and so is
                // one that nothing could observe next.
                continue;
            }
            if !candidate_unknown && remaining == 1 {
                // The last completed operation: everything is ordered.
                return Search::Linearizable;
            }
            if let Some(Restriction {
                operation: optional,
                value_before,
            }) = restriction
                && !candidate_unknown
                && let Some(alone) = self.step(candidate, value_before)
                && self.step(optional, alone) == Some(next_value)
            {
                // The completed operation could have gone first with the same result and
                // the same value after both: that order is explored from the parent
                // configuration, and the optional operation comes later or not at all.
                continue;
            }

            placed_set.set(candidate);
            self.lift(candidate);
            let next_hash = if candidate_unknown {
                completed_hash
            } else {
                completed_hash ^ member_hash(candidate)
            };
            let (window_start, window_end) = self.window();
            placed_set.copy_range(window_start, window_end, &mut window);
            placed_set.copy_range(self.completed, self.operations.len(), &mut optional);
            let configuration = Configuration {
                hash: next_hash ^ value_hash(next_value),
                value: next_value,
                window_start,
                window_end,
                window: &window,
                optional: &optional,
                restriction: candidate_unknown.then_some(Restriction {
                    operation: candidate,
                    value_before: value,
                }),
            };
            let Some(entry) = visited.insert(&configuration) else {
                // This configuration, or one that could do all it can, was explored before
                // and led nowhere.
                self.unlift(candidate);
                placed_set.clear(candidate);
                continue;
            };
            // Where to resume once this placement is undone: the list is then exactly as it
            // is now, so the cursor computed before placing stays valid.
            placed.push(Placed {
                operation: candidate,
                value_before: value,
                entry,
                resume: otherwise,
            });
            completed_hash = next_hash;
            value = next_value;
            if !candidate_unknown {
                remaining -= 1;
            }
            if is_unknown_append(&self.operations[candidate]) {
                unplaced_unknown_appends -= 1;
            }
            cursor = Cursor::Fresh;
        }
    }

    /// The text of the model's value after the placed operations.
    fn actual_value(&self, placed: &[Placed], value: u32) -> Option<String> {
        if value != UNOBSERVABLE {
            return self.values.string(value).map(str::to_string);
        }
        // Replay from the last operation that set the value outright.
        let start = placed
            .iter()
            .rposition(|frame| match &self.operations[frame.operation].effect {
                Effect::Write { .. } => true,
                Effect::CompareAndSet { expected, .. } => frame.value_before == *expected,
                _ => false,
            })
            .unwrap_or(0);
        let mut current: Option<String> = None;
        for frame in &placed[start..] {
            let operation = &self.operations[frame.operation];
            match &operation.effect {
                Effect::Write { .. } => current.clone_from(&operation.text),
                Effect::CompareAndSet { expected, .. } if frame.value_before == *expected => {
                    current.clone_from(&operation.text);
                }
                Effect::Append { suffix } => current.get_or_insert_default().push_str(suffix),
                _ => {}
            }
        }
        current
    }

    /// Describes the point where nothing could go before the first remaining completion.
    fn failure(&self, placed: &[Placed], value: u32) -> Failure {
        let blocking = match self.nodes[self.first_return()].kind {
            NodeKind::Return(operation) => operation,
            _ => unreachable!("a search with completed operations left has a completion left"),
        };
        let mut concurrent = Vec::new();
        let mut node = self.nodes[COMPLETED_HEAD].next;
        while let NodeKind::Call(operation) = self.nodes[node].kind {
            if operation != blocking {
                concurrent.push(self.operations[operation].input);
            }
            node = self.nodes[node].next;
        }
        Failure {
            depth: placed.len(),
            operation_count: self.operations.len(),
            blocking: self.operations[blocking].input,
            concurrent,
            last_placed: placed
                .last()
                .map(|last| self.operations[last.operation].input),
            value: self.actual_value(placed, value),
            impossible: matches!(self.operations[blocking].effect, Effect::Impossible),
        }
    }
}

/// How many operations an explanation lists before summarising the rest.
const LISTED_MAX: usize = 4;

/// How many characters of a value an explanation shows.
const VALUE_SHOWN_MAX: usize = 60;

fn show_value(value: Option<&str>) -> String {
    match value {
        None => "absent".to_string(),
        Some(value) if value.chars().count() > VALUE_SHOWN_MAX => {
            let shown: String = value.chars().take(VALUE_SHOWN_MAX).collect();
            format!("{shown:?}…")
        }
        Some(value) => format!("{value:?}"),
    }
}

fn describe_failure(operations: &[Operation], key: &str, failure: &Failure) -> Verdict {
    let blocking = &operations[failure.blocking];
    let mut explanation = format!("{blocking} cannot take effect before it completed");
    if failure.impossible {
        explanation.push_str(" (no such operation returns that result)");
    }
    match failure.last_placed {
        None => explanation.push_str(&format!(
            ": no operation can come first, the value being {}",
            show_value(failure.value.as_deref())
        )),
        Some(last) => explanation.push_str(&format!(
            ": the longest valid order found has {} of the key's {} operations, ending with {}, \
             and leaves the value {}",
            failure.depth,
            failure.operation_count,
            operations[last],
            show_value(failure.value.as_deref())
        )),
    }
    if failure.concurrent.is_empty() {
        explanation.push_str("; no other completed operation was pending");
    } else {
        let listed: Vec<String> = failure
            .concurrent
            .iter()
            .take(LISTED_MAX)
            .map(|operation| operations[*operation].to_string())
            .collect();
        explanation.push_str(&format!(
            "; none of the pending operations concurrent with it ({}{}) can go first \
             without a contradiction later",
            listed.join("; "),
            match failure.concurrent.len().saturating_sub(LISTED_MAX) {
                0 => String::new(),
                more => format!("; and {more} more"),
            }
        ));
    }
    let mut involved = vec![failure.blocking];
    involved.extend(&failure.concurrent);
    Verdict::NotLinearizable {
        key: key.to_string(),
        operations: involved,
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(
        process: u64,
        call: Call,
        outcome: Outcome,
        invoke_time: u64,
        complete_time: Option<u64>,
    ) -> Operation {
        Operation {
            process,
            call,
            outcome,
            invoke_time,
            complete_time,
        }
    }

    fn get(process: u64, returned: Option<&str>, invoke: u64, complete: u64) -> Operation {
        operation(
            process,
            Call::Get {
                key: "x".to_string(),
            },
            Outcome::Ok(Return::Value(returned.map(str::to_string))),
            invoke,
            Some(complete),
        )
    }

    fn put_call(value: &str) -> Call {
        Call::Put {
            key: "x".to_string(),
            value: value.to_string(),
        }
    }

    fn put(process: u64, value: &str, invoke: u64, complete: u64) -> Operation {
        operation(
            process,
            put_call(value),
            Outcome::Ok(Return::Done),
            invoke,
            Some(complete),
        )
    }

    fn unknown_put(process: u64, value: &str, invoke: u64) -> Operation {
        operation(process, put_call(value), Outcome::Unknown, invoke, None)
    }

    fn failed_put(process: u64, value: &str, invoke: u64, complete: u64) -> Operation {
        operation(
            process,
            put_call(value),
            Outcome::Fail,
            invoke,
            Some(complete),
        )
    }

    fn append_call(value: &str) -> Call {
        Call::Append {
            key: "x".to_string(),
            value: value.to_string(),
        }
    }

    fn append(process: u64, value: &str, invoke: u64, complete: u64) -> Operation {
        operation(
            process,
            append_call(value),
            Outcome::Ok(Return::Done),
            invoke,
            Some(complete),
        )
    }

    fn delete(process: u64, invoke: u64, complete: u64) -> Operation {
        operation(
            process,
            Call::Delete {
                key: "x".to_string(),
            },
            Outcome::Ok(Return::Done),
            invoke,
            Some(complete),
        )
    }

    fn cas_call(expected: Option<&str>, new: &str) -> Call {
        Call::CompareAndSet {
            key: "x".to_string(),
            expected: expected.map(str::to_string),
            new: new.to_string(),
        }
    }

    fn cas(
        process: u64,
        expected: Option<&str>,
        new: &str,
        swapped: bool,
        invoke: u64,
        complete: u64,
    ) -> Operation {
        operation(
            process,
            cas_call(expected, new),
            Outcome::Ok(Return::Swapped(swapped)),
            invoke,
            Some(complete),
        )
    }

    fn on_key(mut operation: Operation, key: &str) -> Operation {
        match &mut operation.call {
            Call::Get { key: name }
            | Call::Put { key: name, .. }
            | Call::CompareAndSet { key: name, .. }
            | Call::Delete { key: name }
            | Call::Append { key: name, .. } => *name = key.to_string(),
        }
        operation
    }

    #[track_caller]
    fn assert_linearizable(history: &[Operation]) {
        let verdict = check(history);
        assert_eq!(verdict, Verdict::Linearizable, "{verdict}");
    }

    /// Asserts the verdict is "not linearizable" and returns the offending operations.
    #[track_caller]
    fn assert_not_linearizable(history: &[Operation]) -> Vec<usize> {
        match check(history) {
            Verdict::NotLinearizable {
                operations,
                explanation,
                ..
            } => {
                assert!(!explanation.is_empty());
                operations
            }
            other => panic!("expected not linearizable, got {other}"),
        }
    }

    // --- Histories that must be rejected ---

    #[test]
    fn stale_read_is_rejected() {
        // A read that starts after a newer write completed cannot return the older value.
        let history = [
            put(1, "1", 0, 10),
            put(1, "2", 20, 30),
            get(2, Some("1"), 40, 50),
        ];
        assert_eq!(assert_not_linearizable(&history)[0], 2);
    }

    #[test]
    fn lost_write_is_rejected() {
        // An acknowledged write must be seen by every read that starts after it completed.
        assert_not_linearizable(&[put(1, "1", 0, 10), get(2, None, 20, 30)]);
    }

    #[test]
    fn lost_append_is_rejected() {
        // Two acknowledged appends must both show in a later read.
        let history = [
            append(1, "a", 0, 10),
            append(2, "b", 20, 30),
            get(3, Some("a"), 40, 50),
        ];
        assert_not_linearizable(&history);
    }

    #[test]
    fn read_of_a_value_never_written_is_rejected() {
        // A read can only return the initial (absent) value or a written one.
        let history = [put(1, "1", 0, 10), get(2, Some("ghost"), 5, 15)];
        let explanation = match check(&history) {
            Verdict::NotLinearizable { explanation, .. } => explanation,
            other => panic!("expected not linearizable, got {other}"),
        };
        assert!(explanation.contains("ghost"), "{explanation}");
    }

    #[test]
    fn read_of_a_value_appends_cannot_form_is_rejected() {
        // A read must return what some put or compare-and-set wrote, extended by appends.
        let history = [
            put(1, "a", 0, 10),
            append(1, "b", 20, 30),
            get(2, Some("ac"), 40, 50),
        ];
        assert_eq!(assert_not_linearizable(&history), vec![2]);
        // "ab" and "b" (appended to absent) can be formed, so the search decides.
        assert_linearizable(&[
            put(1, "a", 0, 10),
            append(1, "b", 20, 30),
            get(2, Some("ab"), 40, 50),
        ]);
        assert_linearizable(&[append(1, "b", 20, 30), get(2, Some("b"), 40, 50)]);
    }

    #[test]
    fn writes_observed_against_real_time_order_are_rejected() {
        // Writes ordered in real time cannot be observed in the opposite order.
        let history = [
            put(1, "1", 0, 10),
            put(1, "2", 20, 40),
            get(2, Some("2"), 22, 24),
            get(3, Some("1"), 26, 28),
        ];
        assert_eq!(assert_not_linearizable(&history)[0], 3);
    }

    #[test]
    fn swap_that_could_not_succeed_is_rejected() {
        // A compare-and-set cannot succeed when the value certainly differs from `expected`.
        let history = [put(1, "1", 0, 10), cas(2, Some("2"), "3", true, 20, 30)];
        assert_not_linearizable(&history);
    }

    #[test]
    fn swap_that_had_to_succeed_but_reported_failure_is_rejected() {
        // A compare-and-set that reports no swap needs an instant where the value differs.
        let history = [put(1, "1", 0, 10), cas(2, Some("1"), "3", false, 20, 30)];
        assert_not_linearizable(&history);
    }

    #[test]
    fn second_swap_from_the_same_value_is_rejected() {
        // Two compare-and-sets from the same value cannot both succeed when nothing restores it.
        let history = [
            put(1, "0", 0, 10),
            cas(2, Some("0"), "a", true, 20, 30),
            cas(3, Some("0"), "b", true, 20, 30),
        ];
        assert_not_linearizable(&history);
    }

    #[test]
    fn value_of_a_failed_write_cannot_be_read() {
        // A failed operation certainly did not happen, so nobody may observe its value.
        let history = [failed_put(1, "1", 0, 10), get(2, Some("1"), 5, 15)];
        assert_not_linearizable(&history);
    }

    #[test]
    fn unknown_write_cannot_take_effect_before_its_invocation() {
        // An operation with an unknown outcome may happen late, but never before it started.
        let history = [get(1, Some("1"), 0, 10), unknown_put(2, "1", 20)];
        assert_not_linearizable(&history);
    }

    #[test]
    fn read_of_a_deleted_key_is_rejected() {
        // After a delete completes, reads see the key absent until something writes it.
        let history = [
            put(1, "1", 0, 10),
            delete(1, 20, 30),
            get(2, Some("1"), 40, 50),
        ];
        assert_not_linearizable(&history);
    }

    #[test]
    fn result_the_operation_cannot_return_is_rejected() {
        // A read reporting `Done` is not something any sequential store produces.
        let history = [operation(
            1,
            Call::Get {
                key: "x".to_string(),
            },
            Outcome::Ok(Return::Done),
            0,
            Some(10),
        )];
        assert_not_linearizable(&history);
    }

    #[test]
    fn violation_on_one_key_is_reported_with_that_key() {
        // Keys are checked independently and the verdict names the offending key.
        let history = [
            on_key(put(1, "1", 0, 10), "a"),
            on_key(put(1, "1", 0, 10), "b"),
            on_key(get(2, Some("1"), 20, 30), "a"),
            on_key(get(2, None, 20, 30), "b"),
        ];
        match check(&history) {
            Verdict::NotLinearizable {
                key, operations, ..
            } => {
                assert_eq!(key, "b");
                assert_eq!(operations, vec![3]);
            }
            other => panic!("expected not linearizable, got {other}"),
        }
    }

    // --- Histories that must be accepted ---

    #[test]
    fn empty_history_is_linearizable() {
        // With nothing to order, there is nothing to contradict.
        assert_linearizable(&[]);
    }

    #[test]
    fn concurrent_writes_may_take_effect_in_either_order() {
        // Overlapping writes may be ordered either way, so a later read may see either one.
        for seen in ["1", "2"] {
            let history = [
                put(1, "1", 0, 50),
                put(2, "2", 10, 40),
                get(3, Some(seen), 60, 70),
            ];
            assert_linearizable(&history);
        }
    }

    #[test]
    fn read_concurrent_with_a_write_may_see_either_value() {
        // A read overlapping a write may take effect before or after it.
        for seen in [None, Some("1")] {
            assert_linearizable(&[put(1, "1", 0, 50), get(2, seen, 10, 20)]);
        }
    }

    #[test]
    fn operations_touching_at_one_instant_are_concurrent() {
        // Completing at the instant another operation is invoked does not order the two.
        let history = [put(1, "1", 0, 10), get(2, None, 10, 20)];
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_write_that_took_effect_is_accepted() {
        // A write with an unknown outcome may have happened, so its value may be read.
        let history = [unknown_put(1, "1", 0), get(2, Some("1"), 10, 20)];
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_write_that_did_not_take_effect_is_accepted() {
        // A write with an unknown outcome may never have happened.
        let history = [
            put(1, "0", 0, 5),
            unknown_put(1, "1", 10),
            get(2, Some("0"), 20, 30),
            get(2, Some("0"), 40, 50),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_write_may_take_effect_long_after_it_was_invoked() {
        // Without a completion, an operation may take effect after later operations.
        let history = [
            unknown_put(1, "1", 0),
            put(1, "2", 10, 20),
            get(2, Some("2"), 30, 40),
            get(2, Some("1"), 50, 60),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn unknown_write_takes_effect_at_most_once() {
        // An operation with an unknown outcome happens once or never, not twice.
        let history = [
            unknown_put(1, "1", 0),
            get(2, Some("1"), 10, 20),
            put(3, "2", 30, 40),
            get(2, Some("1"), 50, 60),
        ];
        assert_not_linearizable(&history);
    }

    #[test]
    fn unknown_append_is_optional() {
        // An append with an unknown outcome may be left out of the order entirely.
        let history = [
            append(1, "a", 0, 10),
            operation(2, append_call("b"), Outcome::Unknown, 5, None),
            append(1, "c", 20, 30),
            get(3, Some("ac"), 40, 50),
            get(3, Some("acb"), 60, 70),
        ];
        assert_linearizable(&history);
        assert_linearizable(&history[..4]);
    }

    #[test]
    fn unknown_swap_may_or_may_not_happen() {
        // A compare-and-set with an unknown outcome may swap or not.
        for seen in ["1", "2"] {
            let history = [
                put(1, "1", 0, 10),
                operation(2, cas_call(Some("1"), "2"), Outcome::Unknown, 20, None),
                get(3, Some(seen), 30, 40),
            ];
            assert_linearizable(&history);
        }
    }

    #[test]
    fn failed_and_unknown_reads_are_ignored() {
        // Failed operations did not happen and unknown reads observed nothing.
        let history = [
            put(1, "1", 0, 10),
            failed_put(2, "2", 20, 30),
            operation(
                3,
                Call::Get {
                    key: "x".to_string(),
                },
                Outcome::Unknown,
                20,
                None,
            ),
            get(4, Some("1"), 40, 50),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn swap_that_reported_failure_is_accepted_when_the_value_differed() {
        // A compare-and-set may fail, leaving the value, when the value differs from `expected`.
        let history = [
            put(1, "1", 0, 10),
            cas(2, Some("2"), "3", false, 20, 30),
            get(3, Some("1"), 40, 50),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn swaps_from_the_absent_value_work() {
        // `expected: None` matches an absent key, including after a delete.
        let history = [
            cas(1, None, "1", true, 0, 10),
            delete(1, 20, 30),
            cas(2, None, "2", true, 40, 50),
            get(3, Some("2"), 60, 70),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn appends_concatenate_in_order_from_absent() {
        // Appending to an absent key starts from the empty string.
        let history = [
            get(1, None, 0, 5),
            append(1, "a", 10, 20),
            append(2, "b", 15, 25),
            get(3, Some("ba"), 30, 40),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn keys_are_independent() {
        // Operations on different keys never constrain each other.
        let history = [
            on_key(put(1, "1", 0, 10), "a"),
            on_key(get(2, None, 20, 30), "b"),
            on_key(get(2, Some("1"), 20, 30), "a"),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn input_order_does_not_matter() {
        // Only times order operations, not their position in the slice.
        let history = [
            get(3, Some("2"), 60, 70),
            put(2, "2", 30, 40),
            put(1, "1", 0, 10),
        ];
        assert_linearizable(&history);
    }

    #[test]
    fn exhausted_budget_is_inconclusive() {
        // A search cut short gives no verdict rather than a wrong one.
        let history: Vec<Operation> = (0..12)
            .map(|client| put(client, &client.to_string(), 0, 100))
            .chain([put(20, "last", 200, 300), get(21, Some("0"), 400, 500)])
            .collect();
        assert!(matches!(
            check_with_budget(&history, 10),
            Verdict::Inconclusive { .. }
        ));
        assert_not_linearizable(&history);
    }
}
