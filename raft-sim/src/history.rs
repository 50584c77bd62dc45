//! Client histories: what each client invoked, when, and what it saw.
//!
//! Times are virtual nanoseconds. An operation whose outcome the client never learned (it
//! timed out) is [`Outcome::Unknown`]: it may have taken effect at any moment after its
//! invocation, or never, and a checker must allow both.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One operation on a key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Call {
    /// Read the key's value.
    Get {
        /// The key.
        key: String,
    },
    /// Replace the key's value.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Replace the key's value with `new` if it currently equals `expected`
    /// (`None`: the key is absent).
    CompareAndSet {
        /// The key.
        key: String,
        /// The value the key must hold for the swap to happen.
        expected: Option<String>,
        /// The value to store.
        new: String,
    },
    /// Remove the key.
    Delete {
        /// The key.
        key: String,
    },
    /// Append to the key's value (absent counts as empty).
    Append {
        /// The key.
        key: String,
        /// The suffix to append.
        value: String,
    },
}

impl Call {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Call::Get { key }
            | Call::Put { key, .. }
            | Call::CompareAndSet { key, .. }
            | Call::Delete { key }
            | Call::Append { key, .. } => key,
        }
    }

    /// Whether the operation can change state (a read cannot).
    pub fn is_write(&self) -> bool {
        !matches!(self, Call::Get { .. })
    }

    /// The short name of the operation, as Jepsen histories spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Get { .. } => "get",
            Call::Put { .. } => "put",
            Call::CompareAndSet { .. } => "cas",
            Call::Delete { .. } => "delete",
            Call::Append { .. } => "append",
        }
    }
}

/// What a completed operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Return {
    /// A read's result (`None`: absent).
    Value(Option<String>),
    /// A write took effect.
    Done,
    /// A compare-and-set's result: whether it swapped.
    Swapped(bool),
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// It took effect and returned this.
    Ok(Return),
    /// It certainly did not take effect.
    Fail,
    /// The client does not know: it may have taken effect, once, at any time after its
    /// invocation.
    Unknown,
}

/// One client operation from invocation to outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation {
    /// The client (Jepsen's "process") that issued it.
    pub process: u64,
    /// What was invoked.
    pub call: Call,
    /// How it ended.
    pub outcome: Outcome,
    /// When it was invoked (virtual nanoseconds).
    pub invoke_time: u64,
    /// When the client learned the outcome; `None` for unknown outcomes.
    pub complete_time: Option<u64>,
}

impl fmt::Display for Call {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Call::Get { key } => write!(formatter, "get {key}"),
            Call::Put { key, value } => write!(formatter, "put {key}={value}"),
            Call::CompareAndSet { key, expected, new } => {
                write!(
                    formatter,
                    "cas {key} {}->{new}",
                    expected.as_deref().unwrap_or("nil")
                )
            }
            Call::Delete { key } => write!(formatter, "delete {key}"),
            Call::Append { key, value } => write!(formatter, "append {key}+={value}"),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "p{} {} ", self.process, self.call)?;
        match &self.outcome {
            Outcome::Ok(Return::Value(Some(value))) => write!(formatter, "ok {value}")?,
            Outcome::Ok(Return::Value(None)) => write!(formatter, "ok nil")?,
            Outcome::Ok(Return::Done) => write!(formatter, "ok")?,
            Outcome::Ok(Return::Swapped(swapped)) => write!(formatter, "ok swapped={swapped}")?,
            Outcome::Fail => write!(formatter, "fail")?,
            Outcome::Unknown => write!(formatter, "unknown")?,
        }
        match self.complete_time {
            Some(complete) => write!(formatter, " [{}..{}]", self.invoke_time, complete),
            None => write!(formatter, " [{}..]", self.invoke_time),
        }
    }
}
