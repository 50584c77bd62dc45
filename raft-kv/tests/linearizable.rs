//! A client history over real processes, checked for linearizability: concurrent clients
//! write 1,000 keys (and overwrite and read some) while the leader is SIGKILLed and later
//! restarted; every acknowledged write must then be on every node.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kv_client::{Client, assert_linearizable};
use common::{Cluster, eventually, get};
use raft_sim::history::{Call, Outcome, Return};

/// Distinct keys written.
const KEYS: usize = 1000;

/// Concurrent clients.
const CLIENTS: usize = 4;

/// How long one write may keep retrying.
const WRITE_PATIENCE: Duration = Duration::from_secs(20);

fn key(index: usize) -> String {
    format!("key-{index:04}")
}

#[test]
fn a_history_with_a_killed_leader_is_linearizable_and_no_acknowledged_write_is_lost() {
    let started = Instant::now();
    // A short request timeout: a read through a dead leader gives up quickly.
    let mut cluster = Cluster::new(3, &["--request-timeout-ms", "1000"]);
    cluster.start_all();
    cluster.leader();
    let ports: Vec<u16> = cluster.nodes.iter().map(|node| node.http_port).collect();
    let shared_ports = Arc::new(Mutex::new(ports.clone()));
    let epoch = Instant::now();
    let first_writes_acknowledged = AtomicUsize::new(0);

    let mut history = Vec::new();
    let mut killed = None;
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|process| {
                let ports = Arc::clone(&shared_ports);
                let acknowledged = &first_writes_acknowledged;
                scope.spawn(move || {
                    let mut client = Client::new(process as u64, epoch, ports);
                    let mut round = 0;
                    for index in (process..KEYS).step_by(CLIENTS) {
                        round += 1;
                        let value = format!("{index}.{process}.{round}");
                        assert!(
                            client.put(&key(index), &value, WRITE_PATIENCE),
                            "PUT {} not acknowledged within {WRITE_PATIENCE:?}",
                            key(index)
                        );
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                        // Overwrite a recent key, possibly another client's.
                        if client.random().is_multiple_of(5) {
                            let other = index.saturating_sub((client.random() % 8) as usize);
                            let value = format!("{other}.{process}.{round}.again");
                            assert!(client.put(&key(other), &value, WRITE_PATIENCE));
                        }
                        // Read a recent key, possibly being written, from any node.
                        if client.random().is_multiple_of(2) {
                            let other = index.saturating_sub((client.random() % 8) as usize);
                            let port = client.any_port();
                            client.get(port, &key(other));
                        }
                    }
                    client.history
                })
            })
            .collect();

        // SIGKILL the leader mid-way; restart it while the clients still write.
        while first_writes_acknowledged.load(Ordering::Relaxed) < KEYS * 2 / 5 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let leader = cluster.leader();
        cluster.nodes[leader].kill();
        eprintln!(
            "killed node {} after {} writes, {:?} in",
            leader + 1,
            first_writes_acknowledged.load(Ordering::Relaxed),
            started.elapsed()
        );
        killed = Some(leader);
        while first_writes_acknowledged.load(Ordering::Relaxed) < KEYS * 3 / 4 {
            std::thread::sleep(Duration::from_millis(5));
        }
        cluster.nodes[leader].start();
        eprintln!(
            "restarted node {} after {} writes, {:?} in",
            leader + 1,
            first_writes_acknowledged.load(Ordering::Relaxed),
            started.elapsed()
        );
        for client in clients {
            history.extend(client.join().expect("a client panicked"));
        }
    });
    let killed = killed.expect("a node was killed");
    let count = |outcome: fn(&Outcome) -> bool| {
        history
            .iter()
            .filter(|operation| outcome(&operation.outcome))
            .count()
    };
    eprintln!(
        "{} requests by the clients ({} ok, {} failed, {} unknown), {:?} in",
        history.len(),
        count(|outcome| matches!(outcome, Outcome::Ok(_))),
        count(|outcome| matches!(outcome, Outcome::Fail)),
        count(|outcome| matches!(outcome, Outcome::Unknown)),
        started.elapsed()
    );

    // The final value of every key, read linearizably (and recorded, so that the checker
    // also holds these reads to what was acknowledged).
    let mut reader = Client::new(CLIENTS as u64, epoch, Arc::clone(&shared_ports));
    let mut final_values = BTreeMap::new();
    for index in 0..KEYS {
        let value = reader
            .get_somewhere(&key(index), Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no node answers GET {}", key(index)));
        final_values.insert(key(index), value);
    }
    history.extend(reader.history);

    // Every acknowledged write is present: each key has a value, one of those written.
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for operation in &history {
        if let Call::Put { key, value } = &operation.call
            && !matches!(operation.outcome, Outcome::Fail)
        {
            written
                .entry(key.clone())
                .or_default()
                .insert(value.clone());
        }
    }
    let acknowledged: BTreeSet<&str> = history
        .iter()
        .filter(|operation| operation.outcome == Outcome::Ok(Return::Done))
        .map(|operation| operation.call.key())
        .collect();
    assert_eq!(acknowledged.len(), KEYS);
    for (key, value) in &final_values {
        let value = value
            .as_ref()
            .unwrap_or_else(|| panic!("{key} was acknowledged but is missing"));
        assert!(
            written[key].contains(value),
            "{key} = {value:?}, never written"
        );
    }

    // Every node, the restarted one included, holds the same after catching up.
    let leader = cluster.leader();
    let commit = get(ports[leader], "/status").expect("status").json()["commit"]
        .as_u64()
        .expect("a commit index");
    for (position, port) in ports.iter().enumerate() {
        eventually(&format!("node {} catches up", position + 1), || {
            let status = get(*port, "/status")?.json();
            let applied = status["applied"].as_u64().unwrap_or(0);
            if applied >= commit {
                Ok(())
            } else {
                Err(format!("applied {applied} of {commit}"))
            }
        });
        for (key, value) in &final_values {
            let reply = get(*port, &format!("/{key}?consistency=local")).expect("a local read");
            assert_eq!(
                (reply.status, Some(reply.text())),
                (200, value.clone()),
                "{key} on node {} (restarted: {})",
                position + 1,
                position == killed
            );
        }
    }
    eprintln!("every node checked, {:?} in", started.elapsed());

    let checking = Instant::now();
    assert_linearizable(&history);

    // The check is not vacuous: a final read turned into a stale one (a value that an
    // acknowledged write replaced before the read began) makes the history fail.
    let stale = history.iter().enumerate().find_map(|(read, operation)| {
        let Call::Get { key } = &operation.call else {
            return None;
        };
        let last = history.iter().rfind(|earlier| {
            earlier.call.key() == key
                && earlier.outcome == Outcome::Ok(Return::Done)
                && earlier.complete_time < Some(operation.invoke_time)
        })?;
        // An acknowledged write of another value, over before `last` began, and never
        // attempted with an unknown outcome (which could take effect at any later time).
        let replaced = history.iter().find(|earlier| {
            earlier.call.key() == key
                && earlier.outcome == Outcome::Ok(Return::Done)
                && earlier.complete_time < Some(last.invoke_time)
                && earlier.call != last.call
                && !history.iter().any(|attempt| {
                    attempt.call == earlier.call && attempt.outcome == Outcome::Unknown
                })
        })?;
        let Call::Put { value, .. } = &replaced.call else {
            return None;
        };
        (operation.process == CLIENTS as u64).then(|| (read, value.clone()))
    });
    let (read, value) = stale.expect("a final read of an overwritten key");
    let mut tampered = history.clone();
    tampered[read].outcome = Outcome::Ok(Return::Value(Some(value)));
    assert!(
        !raft_sim::linearizability::check(&tampered).is_linearizable(),
        "a stale read passed: {}",
        tampered[read]
    );
    eprintln!(
        "{} operations linearizable (checked in {:?}); {:?} in all",
        history.len(),
        checking.elapsed(),
        started.elapsed()
    );
}
