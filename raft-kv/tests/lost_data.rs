//! A node that lost its data never comes back as a blank voter: a truncated store file is
//! refused at start, a store of another node is refused, a node started again on an empty
//! directory cannot help elect a leader that lacks a write it had acknowledged, and the
//! documented recovery (remove the node, add it back, start it with `--join` on a fresh
//! directory) brings it back as a voter with every write.

mod common;

use std::fs;
use std::io::Read;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::{Cluster, Node, eventually, get, request};

/// Starts `node`, expecting it to refuse: returns its exit status and the last line it
/// logged.
fn start_refused(node: &mut Node) -> (ExitStatus, String) {
    let status = node.start_refused();
    let mut log = String::new();
    fs::File::open(&node.log)
        .expect("the node's log")
        .read_to_string(&mut log)
        .expect("readable log");
    let last = log.lines().last().unwrap_or_default().to_string();
    (status, last)
}

/// The other two positions of a three-node cluster.
fn others(position: usize) -> (usize, usize) {
    let mut rest = (0..3).filter(|other| *other != position);
    (
        rest.next().expect("three nodes"),
        rest.next().expect("three nodes"),
    )
}

fn leader_named(port: u16) -> Option<u64> {
    get(port, "/status").ok()?.json()["leader"].as_u64()
}

// The reproduction of a silent data loss: follower B is down while a write commits on the
// leader L and follower A; then L and A go down and A's store is lost. A truncated store is
// refused in one line; a wiped directory restarts A, but A and B (a majority) must not
// elect B, whose log lacks the write. Once L is back the write is there, on every node.
#[test]
fn a_node_that_lost_its_data_cannot_elect_a_stale_leader() {
    let mut cluster = Cluster::new(3, &["--request-timeout-ms", "1000"]);
    cluster.start_all();
    let leader = cluster.leader();
    let (a, b) = others(leader);
    cluster.nodes[b].kill();
    cluster.write(leader, "PUT", "/acked", b"yes");
    cluster.expect_value(a, "/acked?consistency=local", "yes");
    cluster.nodes[leader].kill();
    cluster.nodes[a].kill();

    // A truncated store file is refused, named, in one line, and left as it was.
    let store = cluster.nodes[a].data_dir.join("raft.redb");
    fs::OpenOptions::new()
        .write(true)
        .open(&store)
        .expect("the store file")
        .set_len(0)
        .expect("truncated");
    let (status, line) = start_refused(&mut cluster.nodes[a]);
    assert_eq!(status.code(), Some(1), "{line}");
    assert!(
        line.contains(&store.display().to_string()) && line.contains("empty"),
        "the refusal does not name the empty store: {line}"
    );
    assert_eq!(fs::metadata(&store).expect("still there").len(), 0);

    // The operator wipes the directory and starts A with its original flags: it runs, but
    // neither it nor B may lead while the only holder of the write is down.
    fs::remove_dir_all(&cluster.nodes[a].data_dir).expect("wiped");
    cluster.nodes[a].start();
    cluster.nodes[b].start();
    let (port_a, port_b) = (cluster.nodes[a].http_port, cluster.nodes[b].http_port);
    let watch_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_until {
        for port in [port_a, port_b] {
            assert_eq!(
                leader_named(port),
                None,
                "a leader was elected without the only node holding an acknowledged write"
            );
            let reply = request(port, "GET", "/acked", b"").expect("an answer");
            assert_ne!(reply.status, 404, "an acknowledged write was lost");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut log = String::new();
    fs::File::open(&cluster.nodes[a].log)
        .expect("the node's log")
        .read_to_string(&mut log)
        .expect("readable log");
    assert!(
        log.contains("vote refused") && log.contains("the store holds no entry"),
        "the blank node did not say why it holds back"
    );

    // L comes back: a leader is elected and the write is everywhere, A's copy included.
    cluster.nodes[leader].start();
    cluster.leader();
    for position in 0..3 {
        cluster.expect_value(position, "/acked", "yes");
    }
    cluster.expect_value(a, "/acked?consistency=local", "yes");
}

// A store records the cluster and node it belongs to: the data directory of node 2 handed to
// node 1 (or to another cluster) is refused in one line, rather than used.
#[test]
fn a_store_of_another_node_is_refused() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    cluster.leader();
    cluster.write(0, "PUT", "/k", b"v");
    cluster.nodes[0].kill();
    cluster.nodes[1].kill();
    let node_1 = cluster.nodes[0].data_dir.clone();
    fs::remove_dir_all(&node_1).expect("removed");
    fs::rename(&cluster.nodes[1].data_dir, &node_1).expect("moved");
    let (status, line) = start_refused(&mut cluster.nodes[0]);
    assert_eq!(status.code(), Some(1), "{line}");
    assert!(
        line.contains("node 2 of cluster 7, not of node 1 of cluster 7"),
        "{line}"
    );
}

// The documented recovery of a node whose disk was lost: remove it, add it back, and start
// it with `--join` on a fresh directory. It catches up, becomes a voter again, and the
// cluster then survives the loss of another node.
#[test]
fn a_node_that_lost_its_disk_is_removed_and_added_back() {
    let mut cluster = Cluster::new(3, &["--request-timeout-ms", "2000"]);
    cluster.start_all();
    let leader = cluster.leader();
    cluster.write(leader, "PUT", "/before", b"1");
    // Node 3 loses its disk (the leader is moved off it first, to keep the test simple).
    let lost = 2;
    if leader == lost {
        cluster.write(0, "POST", "/leader", b"1");
    }
    cluster.nodes[lost].kill();
    fs::remove_dir_all(&cluster.nodes[lost].data_dir).expect("wiped");

    let leader = cluster.leader();
    cluster.write(leader, "DELETE", "/3", b"");
    let address = format!("http://127.0.0.1:{}", cluster.nodes[lost].raft_port);
    cluster.write(leader, "POST", "/3", address.as_bytes());
    cluster.nodes[lost].join = true;
    cluster.nodes[lost].start();
    let leader_port = cluster.nodes[leader].http_port;
    eventually("node 3 votes again", || {
        let voters = get(leader_port, "/status")?.json()["voters"].clone();
        if voters == serde_json::json!([1, 2, 3]) {
            Ok(())
        } else {
            Err(voters.to_string())
        }
    });
    cluster.expect_value(lost, "/before?consistency=local", "1");

    // With node 3 a voter again, the cluster survives losing the leader.
    cluster.nodes[leader].kill();
    let survivor = (0..3)
        .find(|position| *position != leader && *position != lost)
        .expect("a survivor");
    cluster.write(survivor, "PUT", "/after", b"2");
    cluster.expect_value(lost, "/after", "2");
}
