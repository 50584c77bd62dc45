//! A key-value client over raft-kv's HTTP API that records every request it makes as an
//! operation of a client history, for `raft_sim::linearizability::check`.
//!
//! Each HTTP request is one operation (a retry is a new one), timed with a monotonic
//! clock shared by all clients:
//!
//! - a PUT answered 204 is `Ok(Done)`; one redirected (307) or whose connection was
//!   refused certainly did not happen (`Fail`); any other answer, an error or a timeout
//!   leaves it `Unknown` (it may still take effect, at any later time);
//! - a GET answered 200 is `Ok(Value(Some(body)))`, 404 `Ok(Value(None))`; anything else
//!   is `Unknown` (which constrains nothing).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_sim::history::{Call, Operation, Outcome, Return};

use super::{Failure, send, split_location};

/// How long one request may wait for its answer; the nodes under test answer within
/// their request timeout.
const PATIENCE: Duration = Duration::from_secs(5);

/// The HTTP ports clients may use, changing as nodes come and go.
pub type Ports = Arc<Mutex<Vec<u16>>>;

/// A client issuing one request at a time (a "process" of the history).
pub struct Client {
    process: u64,
    epoch: Instant,
    ports: Ports,
    /// The port the last write succeeded at: likely the leader's.
    preferred: Option<u16>,
    rng: u64,
    /// Every request so far.
    pub history: Vec<Operation>,
}

impl Client {
    /// Client `process`, timing from `epoch` (the same for every client of a history).
    pub fn new(process: u64, epoch: Instant, ports: Ports) -> Client {
        Client {
            process,
            epoch,
            ports,
            preferred: None,
            rng: super::random() | 1,
            history: Vec::new(),
        }
    }

    /// A pseudo-random number (xorshift).
    pub fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// A port of the list, at random.
    pub fn any_port(&mut self) -> u16 {
        let ports = self.ports.lock().expect("ports").clone();
        assert!(!ports.is_empty(), "no ports");
        ports[(self.random() % ports.len() as u64) as usize]
    }

    fn record(&mut self, call: Call, outcome: Outcome, invoke_time: u64) {
        let complete_time = match outcome {
            Outcome::Unknown => None,
            _ => Some(self.now()),
        };
        self.history.push(Operation {
            process: self.process,
            call,
            outcome,
            invoke_time,
            complete_time,
        });
    }

    /// PUTs `key` = `value`, following redirects and retrying elsewhere on failures,
    /// until it is acknowledged (true) or `give_up` passes (false). Panics on an answer no
    /// write should get.
    pub fn put(&mut self, key: &str, value: &str, give_up: Duration) -> bool {
        let deadline = Instant::now() + give_up;
        let mut port = match self.preferred {
            Some(port) => port,
            None => self.any_port(),
        };
        let call = Call::Put {
            key: key.to_string(),
            value: value.to_string(),
        };
        let target = format!("/{key}");
        while Instant::now() < deadline {
            let invoke = self.now();
            match send(port, "PUT", &target, value.as_bytes(), PATIENCE) {
                Ok(reply) if reply.status == 204 => {
                    self.record(call, Outcome::Ok(Return::Done), invoke);
                    self.preferred = Some(port);
                    return true;
                }
                Ok(reply) if reply.status == 307 => {
                    self.record(call.clone(), Outcome::Fail, invoke);
                    let location = reply.header("location").expect("a 307 has a Location");
                    port = split_location(location).0;
                    continue;
                }
                // 503 promises the write did not take effect: recorded so, the checker
                // holds the server to it.
                Ok(reply) if reply.status == 503 => {
                    self.record(call.clone(), Outcome::Fail, invoke);
                }
                Ok(reply) if reply.status == 504 => {
                    self.record(call.clone(), Outcome::Unknown, invoke);
                }
                Ok(reply) => panic!(
                    "PUT {target} on :{port}: unexpected {}: {}",
                    reply.status,
                    reply.text()
                ),
                Err(Failure::NotSent(_)) => self.record(call.clone(), Outcome::Fail, invoke),
                Err(Failure::Lost(_)) => self.record(call.clone(), Outcome::Unknown, invoke),
            }
            self.preferred = None;
            port = self.any_port();
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// One linearizable GET of `key` at `port`: `Some(value)` when answered (200 or 404),
    /// `None` when not.
    pub fn get(&mut self, port: u16, key: &str) -> Option<Option<String>> {
        let call = Call::Get {
            key: key.to_string(),
        };
        let invoke = self.now();
        let value = match send(port, "GET", &format!("/{key}"), b"", PATIENCE) {
            Ok(reply) if reply.status == 200 => Some(Some(reply.text())),
            Ok(reply) if reply.status == 404 => Some(None),
            _ => None,
        };
        let outcome = match &value {
            Some(value) => Outcome::Ok(Return::Value(value.clone())),
            None => Outcome::Unknown,
        };
        self.record(call, outcome, invoke);
        value
    }

    /// GETs `key` from any port until one answers.
    pub fn get_somewhere(&mut self, key: &str, give_up: Duration) -> Option<Option<String>> {
        let deadline = Instant::now() + give_up;
        while Instant::now() < deadline {
            let port = self.any_port();
            if let Some(value) = self.get(port, key) {
                return Some(value);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

/// Checks `history` for linearizability, panicking with the verdict and the operations
/// involved when it is not.
pub fn assert_linearizable(history: &[Operation]) {
    let verdict = raft_sim::linearizability::check(history);
    if let raft_sim::linearizability::Verdict::NotLinearizable { operations, .. } = &verdict {
        for index in operations {
            eprintln!("  {}", history[*index]);
        }
    }
    assert!(verdict.is_linearizable(), "{verdict}");
}
