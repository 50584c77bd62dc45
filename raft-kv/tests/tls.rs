//! Mutual TLS between peers (feature `tls`): a three-node cluster with the test
//! certificates of raft-tokio (`raft-tokio/tests/data/tls`, valid for 127.0.0.1, one per
//! node, each naming its node of cluster 7) serves writes and reads; a plain TCP peer, or
//! a node whose certificate another CA signed, is refused; bad certificate files, or a
//! certificate naming another node, stop a node at start in one line.
#![cfg(feature = "tls")]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    BINARY, Cluster, HANDSHAKE_TIMEOUT, REJECTED, closed_after, eventually, free_ports, get, hello,
    metric,
};

/// A file of raft-tokio's test certificates, as a string for a flag.
fn certificate_file(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../raft-tokio/tests/data/tls")
        .join(name)
        .to_str()
        .expect("a UTF-8 path")
        .to_string()
}

/// TLS flags: a CA, and a certificate it signed with its key.
fn tls_flags(ca: &str, certificate: &str, key: &str) -> Vec<String> {
    vec![
        "--tls-ca".to_string(),
        certificate_file(ca),
        "--tls-cert".to_string(),
        certificate_file(certificate),
        "--tls-key".to_string(),
        certificate_file(key),
    ]
}

/// TLS flags of node `id` of cluster 7: the cluster's CA, and the node's certificate.
fn node_tls_flags(id: u64) -> Vec<String> {
    tls_flags(
        "ca.pem",
        &format!("node-{id}.pem"),
        &format!("node-{id}.key"),
    )
}

#[test]
fn a_cluster_with_mutual_tls_serves_and_refuses_untrusted_peers() {
    let mut cluster = Cluster::new(3, &[]);
    for node in &mut cluster.nodes {
        node.extra = node_tls_flags(node.id);
    }
    cluster.start_all();
    let mut leader = cluster.leader();
    // The certificate of another CA below names node 2, so node 2 must be a follower.
    if cluster.nodes[leader].id == 2 {
        let reply = cluster.write(leader, "POST", "/leader", b"1");
        assert_eq!(reply.status, 204, "{}", reply.text());
        leader = cluster.leader();
    }
    cluster.write(leader, "PUT", "/secret", b"kept");
    // Linearizable reads on followers go through the leader, over TLS.
    for position in 0..3 {
        cluster.expect_value(position, "/secret", "kept");
    }

    // A plain TCP peer, even with a well-formed handshake of the right cluster, is
    // disconnected and counted.
    let (http_port, raft_port, id) = {
        let node = &cluster.nodes[leader];
        (node.http_port, node.raft_port, node.id)
    };
    let rejected_before = metric(http_port, REJECTED).expect("the metric");
    // Node 2, at position 1.
    let follower = 1;
    let elapsed = closed_after(raft_port, &hello(7, cluster.nodes[follower].id, id));
    assert!(
        elapsed < HANDSHAKE_TIMEOUT - Duration::from_secs(1),
        "a plain peer was closed only after {elapsed:?}"
    );
    eventually("the plain peer counted", || {
        let rejected = metric(http_port, REJECTED)?;
        if rejected > rejected_before {
            Ok(())
        } else {
            Err(format!("{rejected} rejected"))
        }
    });

    // A follower restarted with a certificate of another CA (naming it, so that it
    // starts) cannot take part: it learns nothing new, while the two others go on.
    cluster.nodes[follower].kill();
    let good_flags = cluster.nodes[follower].extra.clone();
    cluster.nodes[follower].extra = tls_flags("other-ca.pem", "other-node.pem", "other-node.key");
    cluster.nodes[follower].start();
    cluster.write(leader, "PUT", "/later", b"written");
    cluster.expect_value(leader, "/later", "written");
    let foreign_port = cluster.nodes[follower].http_port;
    eventually("the foreign node refused", || {
        let rejected = metric(http_port, REJECTED)?;
        if rejected > rejected_before + 1 {
            Ok(())
        } else {
            Err(format!("{rejected} rejected"))
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let reply = get(foreign_port, "/later?consistency=local").expect("a local read");
    assert_eq!(reply.status, 404, "{}", reply.text());

    // With the cluster's certificate again, it catches up.
    cluster.nodes[follower].kill();
    cluster.nodes[follower].extra = good_flags;
    cluster.nodes[follower].start();
    cluster.expect_value(follower, "/later?consistency=local", "written");
}

// A certificate file that does not exist stops the node at start: exit code 1, one line
// naming the file.
#[test]
fn a_missing_certificate_file_is_one_line_naming_it() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let missing = directory.path().join("missing.pem");
    let missing = missing.to_str().expect("a UTF-8 path");
    let ports = free_ports(2);
    let output = Command::new(BINARY)
        .args(["--cluster", &format!("127.0.0.1:{}", ports[0])])
        .args(["--port", &ports[1].to_string()])
        .args([
            "--data-dir",
            directory.path().join("data").to_str().expect("UTF-8"),
        ])
        .args(["--tls-ca", &certificate_file("ca.pem")])
        .args(["--tls-cert", missing])
        .args(["--tls-key", &certificate_file("node-1.key")])
        .stdin(Stdio::null())
        .output()
        .expect("raft-kv runs");
    let line = only_error_line(&output);
    assert!(line.contains(missing), "{line}");
}

/// The one line a node that refused to start printed (it must have exited with code 1).
fn only_error_line(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr:?}");
    lines[0].to_string()
}

// A node started with the certificate of another node stops at start: exit code 1, one
// line naming the file and the node the certificate names, rather than being taken as the
// node it says it is.
#[test]
fn a_node_with_the_certificate_of_another_node_does_not_start() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let ports = free_ports(4);
    let cluster = format!(
        "127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    );
    let output = Command::new(BINARY)
        .args(["--id", "1", "--cluster-id", "7", "--cluster", &cluster])
        .args(["--port", &ports[3].to_string()])
        .args([
            "--data-dir",
            directory.path().join("data").to_str().expect("UTF-8"),
        ])
        .args(node_tls_flags(2))
        .stdin(Stdio::null())
        .output()
        .expect("raft-kv runs");
    let line = only_error_line(&output);
    assert!(line.contains(&certificate_file("node-2.pem")), "{line}");
    assert!(
        line.contains("this is node 1 of cluster 7, but the certificate names node 2"),
        "{line}"
    );
}
