//! Bad requests and bad start-up flags against the real `raft-kv` binary.

mod common;

use std::process::{Command, Output, Stdio};

use common::{BINARY, Cluster, free_ports, get, raw, request};

/// Asserts a JSON error reply with `status`.
fn assert_error(reply: &common::Reply, status: u16) {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/json"),
        "{reply:?}"
    );
    assert!(!reply.error_message().is_empty());
}

// Bad requests get the right 4xx with a JSON body, and the server keeps working.
#[test]
fn bad_requests_get_4xx_with_json_and_the_server_keeps_working() {
    let mut cluster = Cluster::new(1, &["--max-value-bytes", "1024"]);
    cluster.start_all();
    cluster.leader();
    let port = cluster.nodes[0].http_port;
    let send = |method: &str, target: &str, body: &[u8]| {
        request(port, method, target, body).expect("the server answers")
    };

    assert_error(&send("PUT", "/", b"value"), 400);
    assert_error(&send("GET", "/", b""), 400);
    assert_error(&send("DELETE", "/", b""), 400);
    assert_error(&send("PUT", "/big", &[b'v'; 2048]), 413);
    assert_error(&send("PATCH", "/key", b""), 405);
    assert_error(&send("POST", "/not-a-node", b"127.0.0.1:1"), 404);
    assert_error(&send("POST", "/0", b"127.0.0.1:1"), 400);
    assert_error(&send("POST", "/", b"127.0.0.1:1"), 400);
    assert_error(&send("POST", "/5", b"not an address"), 400);
    assert_error(&send("POST", "/5", b"https://127.0.0.1:1"), 400);
    assert_error(&send("POST", "/5", b"127.0.0.1:99999"), 400);
    assert_error(&send("POST", "/5", &[0xff, 0xfe]), 400);
    assert_error(&send("DELETE", "/99999999999999999999999", b""), 400);
    assert_error(&send("GET", "/missing", b""), 404);
    assert_error(&send("GET", "/key?consistency=sometimes", b""), 400);
    assert_error(&send("GET", "/key?kind=thing", b""), 400);
    assert_error(&send("GET", "/key?unknown=1", b""), 400);
    // Garbage that is not HTTP: hyper answers or closes; either way nothing breaks.
    let _ = raw(port, b"\x00\x01\x02 not http at all\r\n\r\n");
    let _ = raw(
        port,
        b"GET /key HTTP/1.1\r\nContent-Length: nonsense\r\n\r\n",
    );

    // Keys made of digits: PUT and GET treat them as keys, DELETE needs ?kind=key.
    assert_eq!(send("PUT", "/123", b"digits").status, 204);
    let reply = send("GET", "/123", b"");
    assert_eq!((reply.status, reply.text().as_str()), (200, "digits"));
    assert_eq!(send("DELETE", "/123?kind=key", b"").status, 204);
    assert_error(&send("GET", "/123", b""), 404);

    // A value at the limit is accepted.
    assert_eq!(send("PUT", "/big", &[b'v'; 1024]).status, 204);
    let reply = send("GET", "/big?consistency=local", b"");
    assert_eq!((reply.status, reply.body.len()), (200, 1024));

    let status = get(port, "/status").expect("status");
    assert_eq!(status.status, 200);
    let document = status.json();
    assert_eq!(document["id"], 1);
    assert_eq!(document["role"], "leader");
    assert_eq!(document["leader"], 1);
    assert_eq!(document["voters"], serde_json::json!([1]));
    assert_eq!(document["learners"], serde_json::json!([]));
    assert!(document["term"].as_u64().is_some_and(|term| term >= 1));
    assert!(
        document["commit"]
            .as_u64()
            .is_some_and(|commit| commit >= 1)
    );
    assert!(document["applied"].is_u64());
    let metrics = get(port, "/metrics").expect("metrics");
    assert_eq!(metrics.status, 200);
    assert!(!metrics.body.is_empty());

    assert_eq!(send("PUT", "/still", b"working").status, 204);
    let reply = send("GET", "/still", b"");
    assert_eq!((reply.status, reply.text().as_str()), (200, "working"));
    assert!(cluster.nodes[0].running());
}

fn run(arguments: &[&str]) -> Output {
    Command::new(BINARY)
        .args(arguments)
        .stdin(Stdio::null())
        .output()
        .expect("raft-kv runs")
}

fn one_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "expected one line, got {stderr:?}");
    lines[0].to_string()
}

// A data directory that is a regular file: exit code 1, one line naming the path.
#[test]
fn an_unusable_data_directory_is_one_line_naming_it() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("not-a-directory");
    std::fs::write(&file, b"in the way").expect("the file is written");
    let ports = free_ports(2);
    let cluster = format!("http://127.0.0.1:{}", ports[0]);
    let port = ports[1].to_string();
    let path = file.to_str().expect("a UTF-8 path");
    let output = run(&[
        "--id",
        "1",
        "--cluster",
        &cluster,
        "--port",
        &port,
        "--data-dir",
        path,
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let line = one_line(&output);
    assert!(line.contains(path), "{line:?} does not name {path}");
}

// Bad flags: one line, a non-zero exit code, nothing started.
#[test]
fn bad_flags_are_one_line_errors() {
    for arguments in [
        &["--id", "0", "--cluster", "127.0.0.1:1"][..],
        &["--id", "2", "--cluster", "127.0.0.1:1"],
        &["--id", "1", "--cluster", "127.0.0.1"],
        &["--id", "1", "--cluster", "127.0.0.1:1", "--port", "http"],
        &[
            "--id",
            "1",
            "--cluster",
            "127.0.0.1:1,127.0.0.1:2",
            "--join",
        ],
        &["--id", "1", "--bogus"],
        &["--tick-ms", "0"],
        &[
            "--cluster",
            "127.0.0.1:1",
            "--tls-ca",
            "ca.pem",
            "--tls-key",
            "node.key",
        ],
    ] {
        let output = run(arguments);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {output:?}");
        let line = one_line(&output);
        assert!(line.starts_with("error: "), "{arguments:?}: {line:?}");
    }
}

// Without the `tls` feature, the TLS flags are refused rather than ignored: a cluster
// meant to be secured must not run in the clear.
#[cfg(not(feature = "tls"))]
#[test]
fn tls_flags_need_the_tls_feature() {
    let output = run(&[
        "--cluster",
        "127.0.0.1:1",
        "--tls-ca",
        "ca.pem",
        "--tls-cert",
        "node.pem",
        "--tls-key",
        "node.key",
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let line = one_line(&output);
    assert!(line.contains("`tls` feature"), "{line:?}");
}
