//! Mutual TLS between peers (feature `tls`), over real sockets on 127.0.0.1: delivery both
//! ways inside TLS, refusal of peers without a trusted certificate or whose certificate
//! names another node than the one they claim or are dialled as, and errors for bad
//! certificate files. The certificates are in `tests/data/tls` (see its README).
#![cfg(feature = "tls")]

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

mod common;

use bytes::Bytes;
use common::cluster::Register;
use common::{CLUSTER, Node, heartbeat, next_inbound, next_message, wait_for_count, within};
use raft_core::{
    Config, Index, LogId, Membership, Message, MessageBody, NodeId, SnapshotMetadata,
    SnapshotTransfer, Term,
};
use raft_tokio::storage::MemoryLogStore;
use raft_tokio::transport::codec::{self, Frame, Hello, PROTOCOL_VERSION};
use raft_tokio::transport::{
    AddressBook, Inbound, TlsFiles, Transport, TransportConfig, TransportCounters,
};
use raft_tokio::{NodeOptions, RaftHandle};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tls")
        .join(file)
}

/// Files of the cluster: its CA, and the certificate `name`.pem it signed (key
/// `name`.key).
fn files_of(name: &str) -> TlsFiles {
    TlsFiles {
        ca_certificates: data("ca.pem"),
        certificate: data(&format!("{name}.pem")),
        private_key: data(&format!("{name}.key")),
    }
}

/// Files of the cluster for node `id`.
fn node_files(id: u64) -> TlsFiles {
    files_of(&format!("node-{id}"))
}

/// Another CA's files, for node 2.
fn foreign_files() -> TlsFiles {
    TlsFiles {
        ca_certificates: data("other-ca.pem"),
        certificate: data("other-node.pem"),
        private_key: data("other-node.key"),
    }
}

/// A TLS client trusting the cluster's CA and presenting the certificate `name`.pem.
fn client_as(name: &str) -> TlsConnector {
    tls_client(
        &data("ca.pem"),
        Some((&data(&format!("{name}.pem")), &data(&format!("{name}.key")))),
    )
}

fn config(id: u64, tls: Option<TlsFiles>) -> TransportConfig {
    let mut config = TransportConfig::new(CLUSTER, NodeId(id), "127.0.0.1:0".parse().unwrap());
    config.reconnect_delay_min = Duration::from_millis(10);
    config.reconnect_delay_max = Duration::from_millis(200);
    config.tls = tls;
    config
}

async fn try_start(config: TransportConfig) -> io::Result<Transport> {
    let (_book, addresses) = watch::channel(AddressBook::new());
    let (sender, _inbound) = mpsc::channel(64);
    Transport::start(config, addresses, sender, Arc::default()).await
}

async fn start(config: TransportConfig) -> Node {
    let id = config.id.0;
    let (book, addresses) = watch::channel(AddressBook::new());
    let (sender, inbound) = mpsc::channel(64);
    let counters = Arc::new(TransportCounters::default());
    let transport = Transport::start(config, addresses, sender, Arc::clone(&counters))
        .await
        .expect("the transport starts");
    Node {
        id,
        transport,
        inbound,
        counters,
        book,
    }
}

/// Gives both nodes the same book, each knowing the other at `address_of(node)`.
fn introduce(one: &Node, two: &Node, address_of: impl Fn(&Node) -> String) {
    let book: AddressBook = [
        (NodeId(one.id), address_of(one)),
        (NodeId(two.id), address_of(two)),
    ]
    .into_iter()
    .collect();
    one.book.send_replace(book.clone());
    two.book.send_replace(book);
}

/// Lets `node` (node 1) accept node 2, which listens nowhere: the node's sender to it just
/// keeps retrying, and the test plays node 2 with clients of its own.
fn know_node_two_elsewhere(node: &Node) {
    let nowhere = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    node.book.send_replace(
        [
            (NodeId(1), ip_address(node)),
            (NodeId(2), nowhere.to_string()),
        ]
        .into_iter()
        .collect(),
    );
}

fn ip_address(node: &Node) -> String {
    node.transport.local_addr().to_string()
}

/// Sends probes from `from` until one reaches `to` (the book is applied by a task and the
/// connection made by another), then drains the probes still coming.
async fn await_delivery(from: &Node, to: &mut Node) {
    let (from_id, to_id) = (from.id, to.id);
    within("a first delivery", async {
        loop {
            from.transport.send(heartbeat(from_id, to_id, 0));
            match tokio::time::timeout(Duration::from_millis(50), to.inbound.recv()).await {
                Ok(Some(Inbound::Message(message))) => {
                    assert_eq!(message, heartbeat(from_id, to_id, 0));
                    break;
                }
                Ok(other) => panic!("expected a probe, got {other:?}"),
                Err(_) => {}
            }
        }
        from.transport.send(heartbeat(from_id, to_id, u64::MAX));
        loop {
            let message = next_message(to).await;
            if message == heartbeat(from_id, to_id, u64::MAX) {
                break;
            }
            assert_eq!(message, heartbeat(from_id, to_id, 0));
        }
    })
    .await;
}

/// Sends from `from` to `to` for a while, and checks that nothing arrives.
async fn assert_no_delivery(from: &Node, to: &mut Node) {
    for round in 0..20 {
        from.transport.send(heartbeat(from.id, to.id, round));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    assert!(
        to.inbound.try_recv().is_err(),
        "node {} received from node {}",
        to.id,
        from.id
    );
}

fn install_snapshot(from: u64, to: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(4),
        body: MessageBody::InstallSnapshot {
            snapshot: Box::new(SnapshotMetadata {
                last_included: LogId::new(4, 1000),
                membership: Membership::with_voters([NodeId(1), NodeId(2)]),
            }),
        },
    }
}

/// Deterministic bytes that differ along the whole snapshot, so that a misplaced chunk shows.
fn snapshot_data(length: usize) -> Bytes {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..length)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn frame_bytes(frame: &Frame) -> Vec<u8> {
    let mut buffer = Vec::new();
    codec::encode_frame(frame, &mut buffer).unwrap();
    buffer
}

fn hello(cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    frame_bytes(&Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        cluster_id,
        from: NodeId(from),
        to: NodeId(to),
    }))
}

/// A TLS client trusting `trusted_ca`, presenting `identity` (certificate, key) if any.
fn tls_client(trusted_ca: &Path, identity: Option<(&Path, &Path)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(trusted_ca).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((certificate, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(certificate)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

/// Connects to `address` over TLS as `client`; the handshake succeeds on the client's side
/// even when the server then refuses the client's certificate (TLS 1.3 tells it later).
async fn tls_connect(
    client: &TlsConnector,
    address: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let stream = TcpStream::connect(address).await.unwrap();
    let name = ServerName::IpAddress(address.ip().into());
    within("the TLS handshake", client.connect(name, stream))
        .await
        .expect("the client accepts the server's certificate")
}

/// Waits until the server closes the connection: end of stream, a reset, or a TLS alert.
async fn assert_closed_by_server(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), case: &str) {
    let mut scratch = [0u8; 256];
    within(
        &format!("the server to close the connection ({case})"),
        async {
            loop {
                match stream.read(&mut scratch).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn tls_peers_exchange_messages_both_ways_and_a_snapshot() {
    let mut small_frames = config(1, Some(node_files(1)));
    // Small frames: the snapshot travels as many chunks, many TLS records.
    small_frames.frame_bytes_max = 256 * 1024;
    let mut one = start(small_frames).await;
    let mut two = start(config(2, Some(node_files(2)))).await;
    // Node 2 is known by a DNS name, node 1 by an IP address: the certificate names both.
    introduce(&one, &two, |node| {
        if node.id == 2 {
            format!("localhost:{}", node.transport.local_addr().port())
        } else {
            ip_address(node)
        }
    });
    await_delivery(&one, &mut two).await;
    await_delivery(&two, &mut one).await;

    one.transport.send(heartbeat(1, 2, 1));
    two.transport.send(heartbeat(2, 1, 2));
    assert_eq!(next_message(&mut two).await, heartbeat(1, 2, 1));
    assert_eq!(next_message(&mut one).await, heartbeat(2, 1, 2));
    for round in 10..60 {
        one.transport.send(heartbeat(1, 2, round));
    }
    for round in 10..60 {
        assert_eq!(next_message(&mut two).await, heartbeat(1, 2, round));
    }

    let data = snapshot_data(3 * 1024 * 1024 + 17);
    one.transport
        .send_snapshot(install_snapshot(1, 2), data.clone());
    one.transport.send(heartbeat(1, 2, 100));
    let (mut got_snapshot, mut got_heartbeat) = (false, false);
    while !(got_snapshot && got_heartbeat) {
        match next_inbound(&mut two).await {
            Inbound::Snapshot(message, received) => {
                assert_eq!(message, install_snapshot(1, 2));
                assert!(received == data, "the snapshot data differs");
                got_snapshot = true;
            }
            Inbound::Message(message) => {
                assert_eq!(message, heartbeat(1, 2, 100));
                got_heartbeat = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    match next_inbound(&mut one).await {
        Inbound::SnapshotReport { to, outcome } => {
            assert_eq!(to, NodeId(2));
            assert_eq!(outcome, SnapshotTransfer::Delivered);
        }
        other => panic!("expected a snapshot report, got {other:?}"),
    }
    assert_eq!(one.counters.rejected_connections.load(Ordering::Relaxed), 0);
    assert_eq!(two.counters.rejected_connections.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_handshake_still_runs_inside_tls() {
    let mut node = start(config(1, Some(node_files(1)))).await;
    let address = node.transport.local_addr();
    know_node_two_elsewhere(&node);
    let client = client_as("node-2");

    // A trusted certificate does not excuse a handshake from another cluster.
    let mut stream = tls_connect(&client, address).await;
    stream.write_all(&hello(CLUSTER + 1, 2, 1)).await.unwrap();
    stream.flush().await.unwrap();
    assert_closed_by_server(&mut stream, "a node of another cluster").await;
    wait_for_count(&node.counters.rejected_connections, 1, "the refusal").await;

    let mut stream = tls_connect(&client, address).await;
    stream.write_all(&hello(CLUSTER, 2, 1)).await.unwrap();
    stream
        .write_all(&frame_bytes(&Frame::Message(heartbeat(2, 1, 5))))
        .await
        .unwrap();
    stream.flush().await.unwrap();
    assert_eq!(next_message(&mut node).await, heartbeat(2, 1, 5));
    assert_eq!(
        node.counters.rejected_connections.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn a_plain_tcp_peer_is_refused_and_counted() {
    let mut node = start(config(1, Some(node_files(1)))).await;
    let address = node.transport.local_addr();
    know_node_two_elsewhere(&node);

    // A probe connecting and leaving is not a violation, as without TLS.
    drop(TcpStream::connect(address).await.unwrap());

    // A plain connection with a valid handshake frame.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(&hello(CLUSTER, 2, 1)).await.unwrap();
    assert_closed_by_server(&mut stream, "a plain handshake").await;
    wait_for_count(
        &node.counters.rejected_connections,
        1,
        "the plain handshake's refusal",
    )
    .await;

    // The node keeps accepting TLS peers.
    let client = client_as("node-2");
    let mut stream = tls_connect(&client, address).await;
    stream.write_all(&hello(CLUSTER, 2, 1)).await.unwrap();
    stream
        .write_all(&frame_bytes(&Frame::Message(heartbeat(2, 1, 7))))
        .await
        .unwrap();
    stream.flush().await.unwrap();
    assert_eq!(next_message(&mut node).await, heartbeat(2, 1, 7));
    assert_eq!(
        node.counters.rejected_connections.load(Ordering::Relaxed),
        1,
        "the probe must not count as refused"
    );

    // A plain transport: its handshake is not TLS, and the TLS node's is not a frame.
    let mut plain = start(config(2, None)).await;
    introduce(&node, &plain, ip_address);
    assert_no_delivery(&plain, &mut node).await;
    assert_no_delivery(&node, &mut plain).await;
    assert!(node.counters.rejected_connections.load(Ordering::Relaxed) >= 2);
    assert!(plain.counters.rejected_connections.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn peers_without_a_certificate_of_the_cluster_ca_are_refused() {
    let mut node = start(config(1, Some(node_files(1)))).await;
    let address = node.transport.local_addr();
    know_node_two_elsewhere(&node);

    // Clients trusting the node's certificate, so that the refusal is the node's.
    let cases = [
        (
            "a certificate from another CA",
            tls_client(
                &data("ca.pem"),
                Some((&data("other-node.pem"), &data("other-node.key"))),
            ),
        ),
        ("no certificate", tls_client(&data("ca.pem"), None)),
    ];
    for (count, (case, client)) in (1..).zip(cases) {
        let mut stream = tls_connect(&client, address).await;
        // Written before the client learns of the refusal; never delivered.
        let _ = stream.write_all(&hello(CLUSTER, 2, 1)).await;
        let _ = stream
            .write_all(&frame_bytes(&Frame::Message(heartbeat(2, 1, count))))
            .await;
        let _ = stream.flush().await;
        assert_closed_by_server(&mut stream, case).await;
        wait_for_count(&node.counters.rejected_connections, count, case).await;
    }

    // A whole transport of another CA: neither side accepts the other's certificate.
    let mut foreign = start(config(2, Some(foreign_files()))).await;
    introduce(&node, &foreign, ip_address);
    assert_no_delivery(&foreign, &mut node).await;
    assert_no_delivery(&node, &mut foreign).await;
    assert!(node.counters.rejected_connections.load(Ordering::Relaxed) >= 3);
    assert!(
        foreign
            .counters
            .rejected_connections
            .load(Ordering::Relaxed)
            >= 1
    );
    assert!(node.inbound.try_recv().is_err());
}

#[tokio::test]
async fn bad_certificate_files_stop_the_start_with_the_path_and_reason() {
    let directory = tempfile::tempdir().unwrap();
    let write = |name: &str, contents: &str| {
        let path = directory.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };
    let missing = directory.path().join("missing.pem");
    let garbage = write("garbage.pem", "not a certificate\n\x01\x02 at all\n");
    // Valid PEM and base64 around bytes that are no certificate.
    let bad_der = write(
        "bad-der.pem",
        "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
    );
    let broken_pem = write(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n",
    );
    let with = |change: &dyn Fn(&mut TlsFiles)| {
        let mut files = node_files(1);
        change(&mut files);
        files
    };
    // (files, the path the error must name, a part of the reason)
    let cases = [
        (
            with(&|files| files.ca_certificates = missing.clone()),
            &missing,
            "No such file",
        ),
        (
            with(&|files| files.ca_certificates = garbage.clone()),
            &garbage,
            "no PEM certificate",
        ),
        (
            with(&|files| files.ca_certificates = bad_der.clone()),
            &bad_der,
            "unusable CA certificate",
        ),
        (
            with(&|files| files.ca_certificates = broken_pem.clone()),
            &broken_pem,
            "malformed PEM: no \"-----END CERTIFICATE-----\" line",
        ),
        (
            with(&|files| files.certificate = missing.clone()),
            &missing,
            "No such file",
        ),
        (
            with(&|files| files.certificate = garbage.clone()),
            &garbage,
            "no PEM certificate",
        ),
        (
            with(&|files| files.certificate = bad_der.clone()),
            &bad_der,
            "unusable certificate",
        ),
        (
            with(&|files| files.private_key = missing.clone()),
            &missing,
            "No such file",
        ),
        (
            with(&|files| files.private_key = garbage.clone()),
            &garbage,
            "no PEM private key",
        ),
        (
            // A certificate where the key should be.
            with(&|files| files.private_key = data("node-1.pem")),
            &data("node-1.pem"),
            "no PEM private key",
        ),
        (
            with(&|files| files.private_key = data("other-node.key")),
            &data("other-node.key"),
            "not the key of the certificate",
        ),
    ];
    for (files, path, reason) in cases {
        let error = try_start(config(1, Some(files.clone())))
            .await
            .expect_err(&format!("{files:?} starts"));
        let message = error.to_string();
        println!("{message}");
        assert!(
            message.contains(&path.display().to_string()),
            "{message:?} does not name {}",
            path.display()
        );
        assert!(
            message.contains(reason),
            "{message:?} does not say {reason}"
        );
        assert!(!message.contains('\n'), "{message:?} is not one line");
        if path == &missing {
            assert_eq!(error.kind(), io::ErrorKind::NotFound);
        } else {
            assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        }
    }

    // The right files start.
    try_start(config(1, Some(node_files(1)))).await.unwrap();
}

/// The rejected-connections counter of a running node, from its metrics.
fn rejected_connections(handle: &RaftHandle) -> u64 {
    let metrics = handle.render_metrics();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("raft_connections_rejected_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rejected connections counter in {metrics}"))
}

/// A heartbeat of term 5000, far above any term a node reaches alone in a test.
fn heartbeat_of_term_5000(from: u64, to: u64) -> Vec<u8> {
    frame_bytes(&Frame::Message(Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(5000),
        body: MessageBody::Heartbeat {
            commit: Index(0),
            round: 1,
        },
    }))
}

#[tokio::test]
async fn a_peer_claiming_the_id_its_certificate_does_not_name_is_refused() {
    // Node 2's certificate cannot speak for node 1: a heartbeat of a high term sent as
    // node 1 never reaches the node, while the same sent as node 2 does.
    let nowhere = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let listen = nowhere();
    let peers: AddressBook = [
        (NodeId(1), nowhere().to_string()),
        (NodeId(2), nowhere().to_string()),
        (NodeId(3), listen.to_string()),
    ]
    .into_iter()
    .collect();
    let core = Config::builder(NodeId(3))
        .election_ticks(10, 20)
        .heartbeat_ticks(2)
        .random_seed(3)
        .build()
        .unwrap();
    let mut options = NodeOptions::new(core, CLUSTER, listen, peers);
    options.tick = Duration::from_millis(10);
    options.transport.tls = Some(node_files(3));
    let node = raft_tokio::start(options, MemoryLogStore::default(), Register::default())
        .await
        .expect("node 3 starts");
    let client = client_as("node-2");

    let mut stream = tls_connect(&client, listen).await;
    // Written before the refusal arrives; never delivered.
    let _ = stream.write_all(&hello(CLUSTER, 1, 3)).await;
    let _ = stream.write_all(&heartbeat_of_term_5000(1, 3)).await;
    let _ = stream.flush().await;
    assert_closed_by_server(&mut stream, "node 2's certificate claiming node 1").await;
    within("the refusal counted", async {
        while rejected_connections(&node) < 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Elections alone raise the term by one at a time: nowhere near 5000.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let term = node.watch().borrow().term;
    assert!(
        term < Term(5000),
        "the impostor's heartbeat reached the node: {term:?}"
    );

    // The same heartbeat as the node the certificate names is taken.
    let mut stream = tls_connect(&client, listen).await;
    stream.write_all(&hello(CLUSTER, 2, 3)).await.unwrap();
    stream
        .write_all(&heartbeat_of_term_5000(2, 3))
        .await
        .unwrap();
    stream.flush().await.unwrap();
    let mut roles = node.watch();
    within(
        "the heartbeat of node 2 taken",
        roles.wait_for(|info| info.term >= Term(5000)),
    )
    .await
    .unwrap();
    assert_eq!(rejected_connections(&node), 1);
    node.shutdown().await;
}

#[tokio::test]
async fn a_dialled_node_presenting_another_nodes_certificate_is_refused() {
    // Node 1 dials node 2 and finds node 3 there: it drops the connection before saying
    // anything on it.
    let mut one = start(config(1, Some(node_files(1)))).await;
    let mut three = start(config(3, Some(node_files(3)))).await;
    one.book.send_replace(
        [
            (NodeId(1), ip_address(&one)),
            (NodeId(2), ip_address(&three)),
        ]
        .into_iter()
        .collect(),
    );
    wait_for_count(&one.counters.rejected_connections, 1, "node 1's refusal").await;
    for round in 0..20 {
        one.transport.send(heartbeat(1, 2, round));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    wait_for_count(&one.counters.rejected_connections, 2, "node 1's refusals").await;
    assert!(
        three.inbound.try_recv().is_err(),
        "node 3 received from node 1"
    );
    // Node 3 would refuse a handshake meant for node 2, and count it: it never saw one.
    assert_eq!(
        three.counters.rejected_connections.load(Ordering::Relaxed),
        0
    );
    assert_eq!(one.counters.sent.load(Ordering::Relaxed), 0);
    assert!(one.inbound.try_recv().is_err());
}

#[tokio::test]
async fn certificates_naming_no_node_of_this_cluster_are_refused() {
    // Signed by the cluster's CA is not enough: a certificate of another cluster, or one
    // naming no node, is refused whatever the handshake claims.
    let mut node = start(config(1, Some(node_files(1)))).await;
    let address = node.transport.local_addr();
    know_node_two_elsewhere(&node);
    let cases = [
        ("node 2 of another cluster", "cluster-8-node-2"),
        ("no identity", "no-identity"),
    ];
    for (count, (case, certificate)) in (1..).zip(cases) {
        let mut stream = tls_connect(&client_as(certificate), address).await;
        let _ = stream.write_all(&hello(CLUSTER, 2, 1)).await;
        let _ = stream
            .write_all(&frame_bytes(&Frame::Message(heartbeat(2, 1, count))))
            .await;
        let _ = stream.flush().await;
        assert_closed_by_server(&mut stream, case).await;
        wait_for_count(&node.counters.rejected_connections, count, case).await;
    }
    assert!(node.inbound.try_recv().is_err());

    // A whole transport of the other cluster at node 2's address: node 1 refuses it both
    // ways, dialling and accepting.
    let mut other_cluster = config(2, Some(files_of("cluster-8-node-2")));
    other_cluster.cluster_id = CLUSTER + 1;
    let mut other = start(other_cluster).await;
    introduce(&node, &other, ip_address);
    assert_no_delivery(&node, &mut other).await;
    assert_no_delivery(&other, &mut node).await;
    assert!(node.counters.rejected_connections.load(Ordering::Relaxed) >= 4);
}

#[tokio::test]
async fn a_node_whose_certificate_names_another_node_does_not_start() {
    // A misconfigured node fails at once, in one line naming the file and what it says,
    // instead of running refused by every peer.
    // (node id, cluster id, certificate, a part of the reason)
    let cases = [
        (1, CLUSTER, "node-2", "names node 2 of cluster 7"),
        (2, CLUSTER, "cluster-8-node-2", "names node 2 of cluster 8"),
        (2, CLUSTER + 1, "node-2", "names node 2 of cluster 7"),
        (
            1,
            CLUSTER,
            "no-identity",
            "no raft://cluster/<cluster id>/node/<node id> URI",
        ),
    ];
    for (id, cluster_id, certificate, reason) in cases {
        let mut config = config(id, Some(files_of(certificate)));
        config.cluster_id = cluster_id;
        let error = try_start(config).await.expect_err(&format!(
            "node {id} of cluster {cluster_id} starts with {certificate}"
        ));
        let message = error.to_string();
        println!("{message}");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            message.contains(&data(&format!("{certificate}.pem")).display().to_string()),
            "{message:?} does not name the certificate file"
        );
        assert!(
            message.contains(&format!("this is node {id} of cluster {cluster_id}")),
            "{message:?} does not say which node this is"
        );
        assert!(
            message.contains(reason),
            "{message:?} does not say {reason}"
        );
        assert!(!message.contains('\n'), "{message:?} is not one line");
    }
}
