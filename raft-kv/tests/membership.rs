//! Membership and leadership changes over HTTP while a client keeps writing: a fourth
//! node joins (`POST /4` and `--join`), one is removed (`DELETE /ID`), leadership moves to
//! the newcomer (`POST /leader`); no acknowledged write is lost, and the client's history
//! is linearizable.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kv_client::{Client, assert_linearizable};
use common::{Cluster, eventually, get, request, split_location};
use raft_sim::history::{Call, Outcome, Return};

/// Waits until the writer has had `count` more writes acknowledged.
fn wait_for_writes(written: &AtomicUsize, count: usize) {
    let goal = written.load(Ordering::Relaxed) + count;
    eventually(&format!("{count} more acknowledged writes"), || {
        let now = written.load(Ordering::Relaxed);
        if now >= goal {
            Ok(())
        } else {
            Err(format!("{now} of {goal}"))
        }
    });
}

fn voters(port: u16) -> Result<serde_json::Value, String> {
    Ok(get(port, "/status")?.json()["voters"].clone())
}

#[test]
fn a_node_joins_another_leaves_and_leadership_moves_while_a_client_writes() {
    let started = Instant::now();
    let mut cluster = Cluster::new(3, &["--request-timeout-ms", "2000"]);
    cluster.start_all();
    let leader = cluster.leader();
    let ports = Arc::new(Mutex::new(
        cluster
            .nodes
            .iter()
            .map(|node| node.http_port)
            .collect::<Vec<u16>>(),
    ));
    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    let written = AtomicUsize::new(0);

    let history = std::thread::scope(|scope| {
        let writer = {
            let ports = Arc::clone(&ports);
            let stop = &stop;
            let written = &written;
            scope.spawn(move || {
                let mut client = Client::new(0, epoch, ports);
                let mut count = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    count += 1;
                    let key = format!("w-{count}");
                    assert!(
                        client.put(&key, &count.to_string(), Duration::from_secs(20)),
                        "PUT {key} not acknowledged"
                    );
                    written.fetch_add(1, Ordering::Relaxed);
                    if count.is_multiple_of(3) {
                        let port = client.any_port();
                        client.get(port, &format!("w-{}", count - 1));
                    }
                }
                client.history
            })
        };

        wait_for_writes(&written, 30);
        // Node 4 joins: started with --join, then added through the leader.
        let newcomer = cluster.add_joining_node();
        cluster.nodes[newcomer].start();
        let address = format!("http://127.0.0.1:{}", cluster.nodes[newcomer].raft_port);
        cluster.write(leader, "POST", "/4", address.as_bytes());
        ports
            .lock()
            .expect("ports")
            .push(cluster.nodes[newcomer].http_port);
        let leader_port = cluster.nodes[leader].http_port;
        eventually("node 4 votes", || match voters(leader_port)? {
            voters if voters == serde_json::json!([1, 2, 3, 4]) => Ok(()),
            voters => Err(voters.to_string()),
        });
        cluster.expect_value(newcomer, "/w-1?consistency=local", "1");
        eprintln!("node 4 joined, {:?} in", started.elapsed());
        wait_for_writes(&written, 30);

        // A follower of the first three leaves (asked through node 4, redirected).
        let leaving = (0..3)
            .find(|position| *position != leader)
            .expect("a follower");
        let leaving_id = cluster.nodes[leaving].id;
        ports
            .lock()
            .expect("ports")
            .retain(|port| *port != cluster.nodes[leaving].http_port);
        cluster.write(newcomer, "DELETE", &format!("/{leaving_id}"), b"");
        let remaining: Vec<u64> = [1, 2, 3, 4]
            .into_iter()
            .filter(|id| *id != leaving_id)
            .collect();
        eventually(&format!("node {leaving_id} removed"), || {
            match voters(leader_port)? {
                voters if voters == serde_json::json!(remaining) => Ok(()),
                voters => Err(voters.to_string()),
            }
        });
        cluster.nodes[leaving].kill();
        eprintln!("node {leaving_id} left, {:?} in", started.elapsed());
        wait_for_writes(&written, 30);

        // Leadership moves to node 4, asked through a follower (redirected to the leader).
        let asked = (0..4)
            .find(|position| ![leader, leaving, newcomer].contains(position))
            .expect("another follower");
        let asked_port = cluster.nodes[asked].http_port;
        eventually("POST /leader 4", || {
            let reply = request(asked_port, "POST", "/leader", b"4")?;
            let location = match reply.status {
                307 => reply.header("location").ok_or("a 307 without Location")?,
                status => return Err(format!("{status} from the follower: {}", reply.text())),
            };
            let (port, target) = split_location(location);
            let reply = request(port, "POST", &target, b"4")?;
            match reply.status {
                204 => Ok(()),
                // Under load the target may miss the election timeout: ask again.
                409 | 503 | 504 => Err(format!("{}: {}", reply.status, reply.text())),
                status => panic!("POST /leader: unexpected {status}: {}", reply.text()),
            }
        });
        let status = get(cluster.nodes[newcomer].http_port, "/status").expect("status");
        assert_eq!(status.json()["role"], "leader", "{}", status.text());
        assert_eq!(cluster.leader(), newcomer);
        // Transferring to the leader itself is done at once.
        let reply = request(cluster.nodes[newcomer].http_port, "POST", "/leader", b"4\n")
            .expect("POST /leader");
        assert_eq!(reply.status, 204, "{}", reply.text());
        eprintln!("node 4 leads, {:?} in", started.elapsed());

        // The client writes on under the new leader.
        wait_for_writes(&written, 30);
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("the writer panicked")
    });

    let acknowledged: Vec<(String, String)> = history
        .iter()
        .filter(|operation| operation.outcome == Outcome::Ok(Return::Done))
        .filter_map(|operation| match &operation.call {
            Call::Put { key, value } => Some((key.clone(), value.clone())),
            _ => None,
        })
        .collect();
    assert!(
        acknowledged.len() > 20,
        "only {} writes",
        acknowledged.len()
    );
    for node in &mut cluster.nodes {
        if !node.running() {
            continue;
        }
        for (key, value) in &acknowledged {
            let reply = get(node.http_port, &format!("/{key}")).expect("GET");
            assert_eq!(
                (reply.status, reply.text()),
                (200, value.clone()),
                "{key} on node {}",
                node.id
            );
        }
    }
    assert_linearizable(&history);
    eprintln!(
        "{} writes acknowledged and found on every member, {} operations linearizable; {:?} in all",
        acknowledged.len(),
        history.len(),
        started.elapsed()
    );
}

// `POST /leader` refuses what it cannot do: a body that is no node id, a node that is no
// member (400), a member that cannot take over because it is down (409).
#[test]
fn leadership_transfers_that_cannot_happen_are_refused() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let port = cluster.nodes[leader].http_port;
    for body in [
        &b"x"[..],
        b"",
        b"0",
        b"-1",
        b"99999999999999999999999",
        b"\xff",
    ] {
        let reply = request(port, "POST", "/leader", body).expect("POST /leader");
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.text());
        assert!(!reply.error_message().is_empty());
    }
    let reply = request(port, "POST", "/leader", b"9").expect("POST /leader");
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.error_message().contains("not a member"),
        "{}",
        reply.text()
    );

    let down = (0..3)
        .find(|position| *position != leader)
        .expect("a follower");
    cluster.nodes[down].kill();
    let target = cluster.nodes[down].id.to_string();
    let (reply, write_statuses) = std::thread::scope(|scope| {
        let transfer = scope.spawn(|| request(port, "POST", "/leader", target.as_bytes()));
        // Writes while the transfer is pending are refused for the moment (503), not as
        // a conflict (409).
        let mut statuses = Vec::new();
        while !transfer.is_finished() {
            let reply = request(port, "PUT", "/during", b"transfer").expect("PUT");
            if reply.status == 503 {
                assert!(
                    reply.error_message().contains("leadership transfer"),
                    "{}",
                    reply.text()
                );
            }
            statuses.push(reply.status);
            std::thread::sleep(Duration::from_millis(5));
        }
        (transfer.join().expect("no panic"), statuses)
    });
    let reply = reply.expect("POST /leader");
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert!(
        reply.error_message().contains("did not take over"),
        "{}",
        reply.text()
    );
    assert!(
        write_statuses
            .iter()
            .all(|status| [204, 503].contains(status)),
        "{write_statuses:?}"
    );
    assert!(write_statuses.contains(&503), "{write_statuses:?}");
    // The leader goes on leading and writing.
    assert_eq!(cluster.leader(), leader);
    cluster.write(leader, "PUT", "/after", b"refusal");
    cluster.expect_value(leader, "/after", "refusal");
}

/// The voters and learners the node at `port` reports.
fn members(port: u16) -> Result<(serde_json::Value, serde_json::Value), String> {
    let status = get(port, "/status")?.json();
    Ok((status["voters"].clone(), status["learners"].clone()))
}

// A removal cancels a pending addition: node 4 added before it runs (202, a learner to be
// promoted once caught up) and then removed stays removed, long after the promotion would
// have been retried.
#[test]
fn a_removal_cancels_a_pending_addition() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let newcomer = cluster.add_joining_node();
    let address = format!("http://127.0.0.1:{}", cluster.nodes[newcomer].raft_port);
    let reply = cluster.write(leader, "POST", "/4", address.as_bytes());
    assert_eq!(reply.status, 202, "{}", reply.text());
    cluster.write(leader, "DELETE", "/4", b"");
    let port = cluster.nodes[leader].http_port;
    let removed = (serde_json::json!([1, 2, 3]), serde_json::json!([]));
    assert_eq!(members(port).expect("status"), removed);
    // The promotion was retried every 5 s: watch for longer than that.
    let until = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < until {
        assert_eq!(
            members(port).expect("status"),
            removed,
            "node 4 came back after its removal"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// Adding a node that is a member already is refused (409) and changes nothing: before, a
// new address replaced a running voter's and cut it off.
#[test]
fn adding_an_existing_member_is_refused() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let port = cluster.nodes[leader].http_port;
    let reply = request(port, "POST", "/3", b"http://127.0.0.1:9").expect("POST /3");
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert!(
        reply.error_message().contains("a member already"),
        "{}",
        reply.text()
    );
    // Node 3 still takes part: with node 3 the only other voter left, writes commit.
    let other = (0..3)
        .find(|position| *position != leader && cluster.nodes[*position].id != 3)
        .expect("a follower other than node 3");
    cluster.nodes[other].kill();
    cluster.write(leader, "PUT", "/still", b"three");
    cluster.expect_value(2, "/still?consistency=local", "three");
}
