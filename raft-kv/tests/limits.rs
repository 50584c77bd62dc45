//! Hostile clients on real processes: idle HTTP connections, half-open peer connections
//! and a paused leader cost a node bounded resources and leave the cluster working, and
//! the node's status tells an operator what is going on.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Cluster, eventually, get, request, split_location};

/// How long a write may take while a client holds idle connections or half-open peer
/// connections: well under the 12 to 15 s such a flood used to stop writes for.
const PROMPT: Duration = Duration::from_secs(3);

/// Opens `count` TCP connections to `port` that never send anything; some may be closed
/// by the node at once, which is fine.
fn idle_connections(port: u16, count: usize) -> Vec<TcpStream> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    (0..count)
        .filter_map(|_| TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok())
        .collect()
}

/// One write through the node at `port`, following redirects; how long it took, or why
/// it failed.
fn write_once(port: u16, target: &str, body: &[u8]) -> Result<Duration, String> {
    let started = Instant::now();
    let (mut port, mut target) = (port, target.to_string());
    for _ in 0..5 {
        let reply = request(port, "PUT", &target, body)?;
        match reply.status {
            204 => return Ok(started.elapsed()),
            307 => {
                let location = reply.header("location").ok_or("a 307 without Location")?;
                (port, target) = split_location(location);
            }
            status => return Err(format!("{status}: {}", reply.text())),
        }
    }
    Err("too many redirects".to_string())
}

// Under a 256-descriptor limit, a client holding 600 idle connections to the leader
// neither starves the raft peers nor keeps other clients out: writes through every node
// succeed promptly, and no descriptor runs out.
#[test]
fn idle_http_connections_leave_writes_and_peers_working() {
    // A long idle timeout: the connection limit alone must do it.
    let mut cluster = Cluster::new(3, &["--http-idle-timeout-ms", "60000"]);
    for node in &mut cluster.nodes {
        node.descriptor_limit = Some(256);
    }
    cluster.start_all();
    let leader = cluster.leader();
    cluster.write(leader, "PUT", "/warm-up", b"0");
    let idle = idle_connections(cluster.nodes[leader].http_port, 600);
    assert!(idle.len() > 300, "only {} connections opened", idle.len());

    for (position, node) in cluster.nodes.iter().enumerate() {
        let key = format!("/through-{position}");
        let elapsed = write_once(node.http_port, &key, b"1")
            .unwrap_or_else(|error| panic!("write through node {}: {error}", node.id));
        assert!(
            elapsed < PROMPT,
            "write through node {} took {elapsed:?}",
            node.id
        );
    }
    // Peer traffic flows: every node has every write.
    for position in 0..3 {
        for through in 0..3 {
            cluster.expect_value(position, &format!("/through-{through}"), "1");
        }
    }
    for node in &cluster.nodes {
        assert_eq!(
            node.log_lines_with("Too many open files"),
            0,
            "node {} ran out of descriptors",
            node.id
        );
    }
    drop(idle);
}

// 2,000 connections to the leader's peer port that never send a handshake cost a bounded
// number of log lines, and neither stop a restarted follower from reconnecting nor stop
// writes.
#[test]
fn half_open_peer_connections_are_bounded() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    cluster.write(leader, "PUT", "/before", b"1");
    cluster.expect_value(follower, "/before", "1");
    let warnings_before = cluster.nodes[leader].log_lines_with(" WARN ");

    let half_open = idle_connections(cluster.nodes[leader].raft_port, 2000);
    assert!(
        half_open.len() > 1000,
        "only {} connections",
        half_open.len()
    );
    // The follower comes back while the half-open connections are held: its connection
    // to the leader must get through.
    cluster.nodes[follower].kill();
    cluster.nodes[follower].start();
    let elapsed = write_once(cluster.nodes[leader].http_port, "/during", b"2")
        .unwrap_or_else(|error| panic!("write during the flood: {error}"));
    assert!(elapsed < PROMPT, "the write took {elapsed:?}");
    cluster.expect_value(follower, "/during", "2");
    // Past the handshake timeout, when every connection left pending would be refused.
    std::thread::sleep(common::HANDSHAKE_TIMEOUT + Duration::from_secs(1));
    drop(half_open);
    let warnings = cluster.nodes[leader].log_lines_with(" WARN ") - warnings_before;
    assert!(
        warnings <= 10,
        "{warnings} warnings for 2,000 half-open connections"
    );
    assert_eq!(cluster.leader(), leader, "the leader kept leading");
}

// A leader paused for 2 s (SIGSTOP) and resumed shows, until it learns of the new term,
// that no quorum has answered it for a long time, where a live leader shows a recent
// contact and followers show none.
#[test]
fn a_paused_leader_shows_its_stale_quorum_contact() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let age = |port: u16| -> Result<(String, Option<u64>), String> {
        let document = get(port, "/status")?.json();
        let role = document["role"].as_str().unwrap_or_default().to_string();
        match &document["quorum_contact_age_ms"] {
            serde_json::Value::Null => Ok((role, None)),
            serde_json::Value::Number(age) => Ok((role, age.as_u64())),
            other => Err(format!("quorum_contact_age_ms is {other}")),
        }
    };
    // Ticks are 20 ms, elections after 200 to 400 ms: a live leader heard a quorum within
    // a few heartbeats.
    eventually("a recent quorum contact on the leader", || {
        match age(cluster.nodes[leader].http_port)? {
            (role, Some(age)) if role == "leader" && age < 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    for (position, node) in cluster.nodes.iter().enumerate() {
        if position != leader {
            assert_eq!(age(node.http_port), Ok(("follower".to_string(), None)));
        }
    }

    cluster.nodes[leader].signal("STOP");
    std::thread::sleep(Duration::from_secs(2));
    cluster.nodes[leader].signal("CONT");
    let (role, age_ms) = age(cluster.nodes[leader].http_port).expect("the resumed node answers");
    assert!(
        role != "leader" || age_ms.is_some_and(|age| age >= 1000),
        "the resumed node says {role} with a quorum contact {age_ms:?} ms ago"
    );
    // It learns of the new term and follows.
    let new_leader = cluster.leader();
    assert_ne!(new_leader, leader, "the paused node was replaced");
}
