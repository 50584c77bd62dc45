//! Exactly-once writes with client sessions, on real processes: a client that retries every
//! append until it is answered, through SIGKILLs of the leader while appends are in flight,
//! sees each append applied exactly once (the same client without a session applies some
//! twice: in three runs of this scenario without sessions, every run had duplicates); a
//! session's retries, stale writes and unknown sessions get the answers the README
//! promises.

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, Failure, PATIENCE, send_with_headers, split_location};

/// The answer to one append, following redirects: the final status.
fn append_once(
    port: u16,
    key: &str,
    body: &str,
    session: Option<(u64, u64)>,
) -> Result<(u16, String), Failure> {
    let headers: Vec<(&str, String)> = match session {
        Some((client, sequence)) => vec![
            ("Client-Id", client.to_string()),
            ("Client-Sequence", sequence.to_string()),
        ],
        None => Vec::new(),
    };
    let mut port = port;
    let mut target = format!("/{key}?op=append");
    for _ in 0..5 {
        let reply = send_with_headers(
            port,
            "POST",
            &target,
            &headers,
            body.as_bytes(),
            Duration::from_secs(5),
        )?;
        if reply.status != 307 {
            return Ok((reply.status, reply.text()));
        }
        let location = reply.header("location").expect("a 307 has a Location");
        (port, target) = split_location(location);
    }
    Ok((508, "too many redirects".to_string()))
}

/// Appends `1,` to `count,` to `key` one at a time, retrying each until it is answered 204
/// (on any node: the client knows nothing of leaders). Every `kill_every`-th append is sent
/// to the leader, which is SIGKILLed a few milliseconds later, while the append may be on
/// its way to the followers: the client cannot tell whether it took effect and retries it.
/// Returns the key's final value.
fn append_through_leader_kills(
    cluster: &mut Cluster,
    key: &str,
    count: u64,
    kill_every: u64,
    session: Option<u64>,
) -> String {
    let mut next_port = 0;
    for sequence in 1..=count {
        let body = format!("{sequence},");
        let numbered = session.map(|client| (client, sequence));
        if sequence % kill_every == 0 {
            let leader = cluster.leader();
            let port = cluster.nodes[leader].http_port;
            let (key, body) = (key.to_string(), body.clone());
            let sent = std::thread::spawn(move || append_once(port, &key, &body, numbered));
            // Spread over the few milliseconds in which the entry replicates.
            std::thread::sleep(Duration::from_micros(500 * (sequence / kill_every % 12)));
            cluster.nodes[leader].kill();
            let answered = matches!(sent.join().expect("the sender"), Ok((204, _)));
            cluster.nodes[leader].start();
            if answered {
                continue;
            }
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            assert!(
                Instant::now() < deadline,
                "append {sequence} not acknowledged"
            );
            let port = cluster.nodes[next_port % cluster.nodes.len()].http_port;
            match append_once(port, key, &body, numbered) {
                Ok((204, _)) => break,
                // Not applied, unknown, or the node was down: retry the same write, on the
                // next node.
                Ok((503 | 504, _)) | Err(_) => {
                    next_port += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok((status, text)) => panic!("append {sequence}: unexpected {status}: {text}"),
            }
        }
    }
    let leader = cluster.leader();
    let port = cluster.nodes[leader].http_port;
    let reply = common::get(port, &format!("/{key}")).expect("a read");
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

fn expected(count: u64) -> String {
    (1..=count).map(|sequence| format!("{sequence},")).collect()
}

fn open_session(cluster: &mut Cluster) -> u64 {
    let leader = cluster.leader();
    let reply = cluster.write(leader, "POST", "/session", b"");
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["client_id"]
        .as_u64()
        .expect("a numeric client id")
}

// Every append of a session client that retries through leader kills (a short request
// timeout makes unknown outcomes common) is applied exactly once.
#[test]
fn appends_in_a_session_apply_exactly_once_through_leader_kills() {
    let mut cluster = Cluster::new(3, &["--request-timeout-ms", "300"]);
    cluster.start_all();
    let client = open_session(&mut cluster);
    let value = append_through_leader_kills(&mut cluster, "log", 48, 4, Some(client));
    assert_eq!(value, expected(48), "an append was lost or applied twice");
}

// What a session promises, request by request: a retry of the last write is answered 204
// and applies nothing; an older write is refused (409, not applied); a session never
// opened is refused; headers that do not go together are a 400.
#[test]
fn a_session_answers_retries_stale_writes_and_unknown_sessions() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.start_all();
    let client = open_session(&mut cluster);
    let leader = cluster.leader();
    let port = cluster.nodes[leader].http_port;
    let append = |session, body: &str| append_once(port, "k", body, session).expect("answered");
    assert_eq!(append(Some((client, 1)), "a").0, 204);
    assert_eq!(append(Some((client, 1)), "a").0, 204);
    assert_eq!(append(Some((client, 2)), "b").0, 204);
    let (status, text) = append(Some((client, 1)), "a");
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("\"not applied\""), "{text}");
    let (status, text) = append(Some((client + 1_000_000, 1)), "c");
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("unknown or expired"), "{text}");
    let leader = cluster.leader();
    cluster.expect_value(leader, "/k", "ab");

    let lone = send_with_headers(
        port,
        "PUT",
        "/k",
        &[("Client-Id", client.to_string())],
        b"x",
        Duration::from_secs(5),
    )
    .expect("answered");
    assert_eq!(lone.status, 400, "{}", lone.text());
}

// A leader whose disk fills up stops, and answers the writes it had proposed 504 with an
// unknown outcome (they may commit under the next leader: a 503 would have been a lie);
// the session client retries them elsewhere and each append is applied exactly once. The
// full disk is a file size limit just above the store's size, under which the node's
// writes fail (EFBIG) instead of the signal killing the process.
#[test]
fn appends_in_a_session_apply_exactly_once_when_the_leaders_disk_fills_up() {
    let mut cluster = Cluster::new(3, &["--request-timeout-ms", "1000"]);
    cluster.start_all();
    let client = open_session(&mut cluster);
    // The leader restarts with little room left, and leadership is handed back to it.
    let full = cluster.leader();
    cluster.nodes[full].kill();
    let store = cluster.nodes[full].data_dir.join("raft.redb");
    let size = std::fs::metadata(&store).expect("the store").len();
    cluster.nodes[full].file_size_limit_blocks = Some(size / 512 + 24);
    cluster.nodes[full].start();
    let id = cluster.nodes[full].id.to_string();
    let leader = cluster.leader();
    if leader != full {
        cluster.write(leader, "POST", "/leader", id.as_bytes());
    }
    assert_eq!(cluster.leader(), full);

    let port = cluster.nodes[full].http_port;
    let mut unknown = 0;
    let mut sequence = 0;
    let mut value = String::new();
    // Appends through the leader until its disk fills and it stops.
    while cluster.nodes[full].running() {
        sequence += 1;
        let body = format!("{sequence},");
        value.push_str(&body);
        let mut next_port = 0;
        let mut target = port;
        loop {
            match append_once(target, "disk", &body, Some((client, sequence))) {
                Ok((204, _)) => break,
                Ok((504, text)) => {
                    assert!(text.contains("\"unknown\""), "{text}");
                    unknown += 1;
                }
                Ok((503, _)) | Err(_) => {}
                Ok((status, text)) => panic!("append {sequence}: unexpected {status}: {text}"),
            }
            next_port += 1;
            target = cluster.nodes[next_port % 3].http_port;
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(sequence < 2_000, "the disk never filled up");
    }
    assert!(unknown > 0, "no write was answered with an unknown outcome");
    let survivor = (0..3)
        .find(|position| *position != full)
        .expect("a survivor");
    cluster.expect_value(survivor, "/disk", &value);
}
