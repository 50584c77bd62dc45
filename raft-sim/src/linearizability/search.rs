//! The per-key search: the model, the event list, the memo of visited configurations, and
//! the Wing–Gong–Lowe backtracking search with its reductions.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::hash::{BuildHasherDefault, Hasher};

use crate::history::{Call, Operation, Outcome, Return};

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
pub(super) struct Failure {
    /// How many operations were placed there.
    pub(super) depth: usize,
    /// How many operations the key has.
    pub(super) operation_count: usize,
    /// The operation whose completion could not be passed.
    pub(super) blocking: usize,
    /// The other completed operations that could have gone next.
    pub(super) concurrent: Vec<usize>,
    /// The last operation placed, if any.
    pub(super) last_placed: Option<usize>,
    /// The model value there.
    pub(super) value: Option<String>,
    /// Whether the blocking operation's result is one it cannot return at all.
    pub(super) impossible: bool,
}

pub(super) enum Search {
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
pub(super) struct KeySearch {
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
    pub(super) fn new(operations: &[Operation], indexes: &[usize]) -> KeySearch {
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

    pub(super) fn run(mut self, steps_max: u64) -> Search {
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
