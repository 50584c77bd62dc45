//! Client histories as Jepsen-style JSON Lines: one line per invocation and one per
//! completion, ordered by time.

use raft_sim::history::{Call, Operation, Outcome, Return};
use serde::Serialize;
use serde_json::{Value, json};

/// One line of the history. The fields follow Jepsen's operation maps; `time` is virtual
/// nanoseconds since the start of the run.
#[derive(Serialize, Debug)]
pub(crate) struct HistoryLine {
    process: u64,
    #[serde(rename = "type")]
    kind: &'static str,
    f: &'static str,
    key: String,
    value: Value,
    time: u64,
}

/// The value an invocation carries: the written value, `[expected, new]` for a
/// compare-and-set, `null` for reads and deletes.
fn invoked_value(call: &Call) -> Value {
    match call {
        Call::Get { .. } | Call::Delete { .. } => Value::Null,
        Call::Put { value, .. } | Call::Append { value, .. } => json!(value),
        Call::CompareAndSet { expected, new, .. } => json!([expected, new]),
    }
}

/// The two lines of one operation. `unknown_after` is the client timeout: an operation
/// whose outcome is unknown has no completion time in the history, and is written as
/// `info` at the moment its client gave up (`invoke_time + unknown_after`).
fn lines_of(operation: &Operation, unknown_after: u64) -> [HistoryLine; 2] {
    let call = &operation.call;
    let line = |kind, value, time| HistoryLine {
        process: operation.process,
        kind,
        f: call.name(),
        key: call.key().to_string(),
        value,
        time,
    };
    let invoke = line("invoke", invoked_value(call), operation.invoke_time);
    let time = operation
        .complete_time
        .unwrap_or_else(|| operation.invoke_time.saturating_add(unknown_after));
    let completion = match &operation.outcome {
        // A read completes with the value it read (null: the key was absent).
        Outcome::Ok(Return::Value(read)) => line("ok", json!(read), time),
        Outcome::Ok(Return::Done) => line("ok", invoked_value(call), time),
        Outcome::Ok(Return::Swapped(true)) => line("ok", invoked_value(call), time),
        // A compare-and-set that did not swap completed, but had no effect: Jepsen's
        // checkers (and knossos' cas-register model) expect such an operation as `fail`,
        // which says it certainly did not take effect, not as an `ok` with a flag.
        Outcome::Ok(Return::Swapped(false)) => line("fail", invoked_value(call), time),
        Outcome::Fail => line("fail", invoked_value(call), time),
        // Jepsen's `info`: the client does not know whether it took effect.
        Outcome::Unknown => line("info", invoked_value(call), time),
    };
    [invoke, completion]
}

/// Every invocation and completion of `history`, ordered by time. The sort is stable and
/// the history lists operations in completion order, so a process's completion precedes
/// its next invocation even when both happen at the same instant.
pub(crate) fn history_lines(history: &[Operation], unknown_after: u64) -> Vec<HistoryLine> {
    let mut lines: Vec<HistoryLine> = history
        .iter()
        .flat_map(|operation| lines_of(operation, unknown_after))
        .collect();
    lines.sort_by_key(|line| line.time);
    lines
}

/// The JSON text of one line.
pub(crate) fn to_json(line: &HistoryLine) -> Result<String, String> {
    serde_json::to_string(line).map_err(|error| format!("cannot encode history: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(call: Call, outcome: Outcome, times: (u64, Option<u64>)) -> Operation {
        Operation {
            process: 2,
            call,
            outcome,
            invoke_time: times.0,
            complete_time: times.1,
        }
    }

    // Each kind of operation and outcome becomes the Jepsen fields the brief names.
    #[test]
    fn jepsen_fields() {
        let history = vec![
            operation(
                Call::Put {
                    key: "k1".into(),
                    value: "0.1".into(),
                },
                Outcome::Ok(Return::Done),
                (123, Some(200)),
            ),
            operation(
                Call::Get { key: "k1".into() },
                Outcome::Ok(Return::Value(None)),
                (10, Some(50)),
            ),
            operation(
                Call::CompareAndSet {
                    key: "k2".into(),
                    expected: None,
                    new: "x".into(),
                },
                Outcome::Ok(Return::Swapped(false)),
                (300, Some(400)),
            ),
            operation(
                Call::Delete { key: "k3".into() },
                Outcome::Unknown,
                (500, None),
            ),
        ];
        let lines: Vec<String> = history_lines(&history, 1000)
            .iter()
            .map(|line| to_json(line).expect("encodes"))
            .collect();
        assert_eq!(
            lines,
            [
                r#"{"process":2,"type":"invoke","f":"get","key":"k1","value":null,"time":10}"#,
                r#"{"process":2,"type":"ok","f":"get","key":"k1","value":null,"time":50}"#,
                r#"{"process":2,"type":"invoke","f":"put","key":"k1","value":"0.1","time":123}"#,
                r#"{"process":2,"type":"ok","f":"put","key":"k1","value":"0.1","time":200}"#,
                r#"{"process":2,"type":"invoke","f":"cas","key":"k2","value":[null,"x"],"time":300}"#,
                r#"{"process":2,"type":"fail","f":"cas","key":"k2","value":[null,"x"],"time":400}"#,
                r#"{"process":2,"type":"invoke","f":"delete","key":"k3","value":null,"time":500}"#,
                r#"{"process":2,"type":"info","f":"delete","key":"k3","value":null,"time":1500}"#,
            ]
        );
    }
}
