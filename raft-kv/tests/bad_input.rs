//! Bad input on a running node's ports: the peer port closes connections that send
//! garbage, an oversized frame or a handshake of another cluster, and the HTTP port
//! answers malformed requests with 400; either way the cluster keeps serving.

mod common;

use std::time::Duration;

use common::{
    Cluster, HANDSHAKE_TIMEOUT, REJECTED, closed_after, get, hello, metric, raw, request,
};

// Garbage, an oversized length prefix, a handshake of another cluster (or from a node
// the cluster does not know): each connection is closed at once and counted, and the
// cluster keeps serving writes.
#[test]
fn bad_peer_input_is_refused_and_the_cluster_keeps_serving() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let leader = cluster.leader();
    let node = &cluster.nodes[leader];
    let (http_port, raft_port, id) = (node.http_port, node.raft_port, node.id);
    cluster.write(leader, "PUT", "/before", b"1");
    let rejected_before = metric(http_port, REJECTED).expect("the metric");

    // Cluster::new starts every node with --cluster-id 7.
    let mut undecodable = vec![0, 0, 0, 16];
    undecodable.extend_from_slice(&[0xff; 16]);
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage", undecodable),
        (
            "an oversized length prefix",
            vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        ),
        ("HTTP on the peer port", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("a handshake of another cluster", hello(8, 2, id)),
        ("a handshake from an unknown node", hello(7, 42, id)),
    ];
    for (what, bytes) in &cases {
        let elapsed = closed_after(raft_port, bytes);
        assert!(
            elapsed < HANDSHAKE_TIMEOUT - Duration::from_secs(1),
            "{what}: closed only after {elapsed:?}"
        );
    }
    common::eventually("the refusals counted", || {
        let rejected = metric(http_port, REJECTED)?;
        if rejected >= rejected_before + cases.len() as u64 {
            Ok(())
        } else {
            Err(format!("{rejected} rejected, {rejected_before} before"))
        }
    });

    // The same node still leads, and the cluster writes and reads.
    assert_eq!(cluster.leader(), leader);
    cluster.write(leader, "PUT", "/after", b"2");
    for position in 0..3 {
        cluster.expect_value(position, "/before", "1");
        cluster.expect_value(position, "/after", "2");
    }
}

// Malformed HTTP gets 400, and the server keeps working.
#[test]
fn malformed_http_gets_400_and_the_server_keeps_working() {
    let mut cluster = Cluster::new(1, &[]);
    cluster.start_all();
    cluster.leader();
    let port = cluster.nodes[0].http_port;
    for request_bytes in [
        &b"\x00\x01\x02 not http at all\r\n\r\n"[..],
        b"\xff\xfe\xfd\xfc\r\n\r\n",
        b"GET HTTP/1.1\r\n\r\n",
        b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /key HTTP/1.1\r\nHost: x\r\nContent-Length: nonsense\r\n\r\n",
        b"GET key HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw(port, request_bytes).expect("an answer");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 400 "),
            "{:?}: {text:?}",
            String::from_utf8_lossy(request_bytes)
        );
    }
    let reply = request(port, "PUT", "/still", b"working").expect("PUT");
    assert_eq!(reply.status, 204, "{}", reply.text());
    let reply = get(port, "/still").expect("GET");
    assert_eq!((reply.status, reply.text().as_str()), (200, "working"));
    assert!(cluster.nodes[0].running());
}
