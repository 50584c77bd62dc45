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

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::history::{Call, Operation, Outcome, Return};

use self::search::{Failure, KeySearch, Search};

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

mod search;
#[cfg(test)]
mod tests;
