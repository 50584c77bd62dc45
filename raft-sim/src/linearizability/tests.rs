//! Unit tests of the linearizability checker.

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
