//! Clusters of real `raft-kv` processes over real TCP: writes and reads with redirects,
//! a killed leader, a whole cluster killed and restarted, and a node joining.

mod common;

use common::{Cluster, get, request, split_location};

fn others(size: usize, leader: usize) -> Vec<usize> {
    (0..size).filter(|position| *position != leader).collect()
}

// Three processes serve writes on the leader and linearizable reads everywhere; a
// follower redirects writes (307 + Location, path and query kept), and a SIGTERM stops a
// node with exit code 0.
#[test]
fn three_processes_serve_writes_redirects_and_reads() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let leader_port = cluster.nodes[leader].http_port;
    let followers = others(3, leader);

    let reply = request(leader_port, "PUT", "/greeting", b"hello").expect("PUT");
    assert_eq!(reply.status, 204, "{}", reply.text());
    for &position in &followers {
        // Linearizable: visible on followers as soon as the write was acknowledged.
        let reply = get(cluster.nodes[position].http_port, "/greeting").expect("GET");
        assert_eq!((reply.status, reply.text().as_str()), (200, "hello"));
    }

    // The leader advertises its HTTP URL through the log; until a follower has applied
    // that, it answers 503.
    let follower_port = cluster.nodes[followers[0]].http_port;
    let redirect = common::eventually("a redirect from a follower", || {
        let reply = request(follower_port, "PUT", "/greeting?kind=key", b"hi")?;
        match reply.status {
            307 => Ok(reply),
            503 => Err(reply.text()),
            status => panic!("unexpected {status}: {}", reply.text()),
        }
    });
    let location = redirect.header("location").expect("a Location").to_string();
    assert_eq!(
        location,
        format!("http://127.0.0.1:{leader_port}/greeting?kind=key")
    );
    assert!(!redirect.error_message().is_empty());
    let (port, target) = split_location(&location);
    let reply = request(port, "PUT", &target, b"hi").expect("PUT at the Location");
    assert_eq!(reply.status, 204, "{}", reply.text());
    for node in &cluster.nodes {
        let reply = get(node.http_port, "/greeting").expect("GET");
        assert_eq!((reply.status, reply.text().as_str()), (200, "hi"));
    }

    let reply = request(follower_port, "DELETE", "/greeting", b"").expect("DELETE");
    assert_eq!(reply.status, 307, "{}", reply.text());
    let reply = request(leader_port, "DELETE", "/greeting", b"").expect("DELETE");
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = get(follower_port, "/greeting").expect("GET");
    assert_eq!(reply.status, 404);
    assert_eq!(reply.error_message(), "key not found");

    let status = cluster.nodes[followers[1]].terminate();
    assert!(status.success(), "SIGTERM: {status:?}");
}

// SIGKILL the leader: another takes over and writes go on; the killed node, restarted
// from its data directory, catches up.
#[test]
fn a_killed_leader_is_replaced_and_catches_up_after_restart() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let old_leader = cluster.leader();
    cluster.write(old_leader, "PUT", "/x", b"1");

    cluster.nodes[old_leader].kill();
    let new_leader = cluster.leader();
    assert_ne!(new_leader, old_leader);
    let survivor = others(3, old_leader)
        .into_iter()
        .find(|position| *position != new_leader)
        .expect("a follower survives");
    // Through the follower: redirected to the new leader once it has advertised itself.
    cluster.write(survivor, "PUT", "/x", b"2");
    cluster.write(new_leader, "PUT", "/y", b"3");
    cluster.expect_value(survivor, "/x", "2");

    cluster.nodes[old_leader].start();
    cluster.expect_value(old_leader, "/x?consistency=local", "2");
    cluster.expect_value(old_leader, "/y?consistency=local", "3");
    cluster.expect_value(old_leader, "/y", "3");
}

// SIGKILL every node and restart them all: every acknowledged write is still there.
#[test]
fn acknowledged_writes_survive_killing_every_node() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let mut acknowledged = Vec::new();
    for round in 0..30 {
        let key = format!("/key-{}", round % 10);
        let value = format!("value-{round}");
        cluster.write(leader, "PUT", &key, value.as_bytes());
        acknowledged.push((key, value));
    }
    cluster.write(leader, "DELETE", "/key-0", b"");
    for node in &mut cluster.nodes {
        node.kill();
    }

    cluster.start_all();
    cluster.leader();
    let mut latest = std::collections::BTreeMap::new();
    for (key, value) in acknowledged {
        latest.insert(key, value);
    }
    for position in 0..3 {
        for (key, value) in &latest {
            if key == "/key-0" {
                continue;
            }
            cluster.expect_value(position, key, value);
        }
        let reply = get(cluster.nodes[position].http_port, "/key-0").expect("GET");
        assert_eq!(reply.status, 404, "{}", reply.text());
    }
}

// After `POST /4` with its address, a fourth node started with --join catches up, serves
// reads, and counts as a voter; `DELETE /4` removes it again.
#[test]
fn a_fourth_node_joins_and_serves_reads() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    cluster.write(leader, "PUT", "/before", b"joined");

    let newcomer = cluster.add_joining_node();
    let address = format!("http://127.0.0.1:{}", cluster.nodes[newcomer].raft_port);
    cluster.write(leader, "POST", "/4", address.as_bytes());
    cluster.nodes[newcomer].start();

    cluster.expect_value(newcomer, "/before?consistency=local", "joined");
    cluster.expect_value(newcomer, "/before", "joined");
    // Added before it started (202), it is promoted once it has caught up.
    let leader = cluster.leader();
    common::eventually("node 4 promoted", || {
        let status = get(cluster.nodes[leader].http_port, "/status")?;
        match status.json()["voters"].clone() {
            voters if voters == serde_json::json!([1, 2, 3, 4]) => Ok(()),
            voters => Err(voters.to_string()),
        }
    });

    // Writes through the newcomer are redirected to the leader.
    cluster.write(newcomer, "PUT", "/after", b"yes");
    cluster.expect_value(newcomer, "/after", "yes");

    cluster.write(newcomer, "DELETE", "/4", b"");
    cluster.nodes[newcomer].kill();
    let leader = cluster.leader();
    common::eventually("node 4 removed", || {
        let status = get(cluster.nodes[leader].http_port, "/status")?;
        let voters = status.json()["voters"].clone();
        if voters == serde_json::json!([1, 2, 3]) {
            Ok(())
        } else {
            Err(status.text())
        }
    });
}
