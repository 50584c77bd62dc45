//! The TCP transport over real sockets on 127.0.0.1: delivery both ways, reconnection,
//! refusal of bad peers and bad frames, bounded queues, snapshot transfers, and the codec.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

mod common;

use bytes::Bytes;
use common::{CLUSTER, Node, heartbeat, next_inbound, next_message, wait_for_count, within};
use raft_core::{
    AppendResponse, Entry, Index, LogId, Membership, Message, MessageBody, NodeId, Payload,
    SnapshotMetadata, SnapshotTransfer, Term,
};
use raft_tokio::transport::codec::{
    self, CodecError, Frame, FrameReader, Hello, PROTOCOL_VERSION, SnapshotChunk,
};
use raft_tokio::transport::{AddressBook, Inbound, Transport, TransportConfig, TransportCounters};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

fn config(id: u64, listen: SocketAddr) -> TransportConfig {
    let mut config = TransportConfig::new(CLUSTER, NodeId(id), listen);
    config.reconnect_delay_min = Duration::from_millis(10);
    config.reconnect_delay_max = Duration::from_millis(200);
    config
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn start(config: TransportConfig, book: AddressBook) -> Node {
    let id = config.id.0;
    let (book, addresses) = watch::channel(book);
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

/// Nodes 1 and 2, each knowing both, connected both ways.
async fn pair() -> (Node, Node) {
    pair_with(config(1, any_port()), config(2, any_port())).await
}

async fn pair_with(one: TransportConfig, two: TransportConfig) -> (Node, Node) {
    let mut one = start(one, AddressBook::new()).await;
    let mut two = start(two, AddressBook::new()).await;
    let book = book_of(&[
        (1, one.transport.local_addr()),
        (2, two.transport.local_addr()),
    ]);
    one.book.send_replace(book.clone());
    two.book.send_replace(book);
    await_delivery(&one, &mut two).await;
    await_delivery(&two, &mut one).await;
    (one, two)
}

/// Returns once messages from `from` reach `to`: the address book is applied by a task,
/// and the connection is made by another, so the first messages may be dropped. Leaves
/// nothing from `from` in `to`'s inbound channel.
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
        // Probes sent while the connection was being made may still come: a marker sent
        // after all of them comes after them.
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

fn book_of(nodes: &[(u64, SocketAddr)]) -> AddressBook {
    nodes
        .iter()
        .map(|(id, address)| (NodeId(*id), address.to_string()))
        .collect()
}

/// An address where nothing listens: connections are refused at once.
fn unreachable_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn install_snapshot(from: u64, to: u64) -> Message {
    Message {
        from: NodeId(from),
        to: NodeId(to),
        term: Term(4),
        body: MessageBody::InstallSnapshot {
            snapshot: Box::new(SnapshotMetadata {
                last_included: LogId::new(4, 1000),
                membership: Membership::with_voters([NodeId(1), NodeId(2), NodeId(3)]),
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

fn hello(cluster_id: u64, from: u64, to: u64) -> Frame {
    Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        cluster_id,
        from: NodeId(from),
        to: NodeId(to),
    })
}

/// Waits until the server closes the connection: end of stream, or a reset when it left
/// bytes unread.
async fn assert_closed_by_server(stream: &mut TcpStream, case: &str) {
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
async fn messages_flow_both_ways() {
    let (mut one, mut two) = pair().await;
    one.transport.send(heartbeat(1, 2, 1));
    two.transport.send(heartbeat(2, 1, 2));
    assert_eq!(next_message(&mut two).await, heartbeat(1, 2, 1));
    assert_eq!(next_message(&mut one).await, heartbeat(2, 1, 2));

    // Several at once arrive in order (and may share writes).
    for round in 10..60 {
        one.transport.send(heartbeat(1, 2, round));
    }
    for round in 10..60 {
        assert_eq!(next_message(&mut two).await, heartbeat(1, 2, round));
    }
    let received = two.counters.received.load(Ordering::Relaxed);
    assert!(
        received >= 51,
        "node 2 counted {received} messages received"
    );
    wait_for_count(&one.counters.sent, received, "node 1's sent count").await;
    assert_eq!(two.counters.rejected_connections.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn senders_follow_the_address_book() {
    let one = start(config(1, any_port()), AddressBook::new()).await;
    let mut two = start(config(2, any_port()), AddressBook::new()).await;
    let book = book_of(&[
        (1, one.transport.local_addr()),
        (2, two.transport.local_addr()),
    ]);
    two.book.send_replace(book.clone());

    // Node 1 does not know node 2 yet: dropped and counted.
    one.transport.send(heartbeat(1, 2, 1));
    assert_eq!(one.counters.dropped.load(Ordering::Relaxed), 1);

    one.book.send_replace(book);
    within("node 1 to reach node 2", async {
        let mut round = 2;
        loop {
            one.transport.send(heartbeat(1, 2, round));
            if let Ok(Some(Inbound::Message(message))) =
                tokio::time::timeout(Duration::from_millis(50), two.inbound.recv()).await
            {
                assert_eq!(message.from, NodeId(1));
                return;
            }
            round += 1;
        }
    })
    .await;

    // Node 2 forgets node 1: node 1's connections are refused from now on.
    two.book
        .send_replace(book_of(&[(2, two.transport.local_addr())]));
    let mut stream = TcpStream::connect(two.transport.local_addr())
        .await
        .unwrap();
    stream
        .write_all(&frame_bytes(&hello(CLUSTER, 1, 2)))
        .await
        .unwrap();
    assert_closed_by_server(&mut stream, "a forgotten node").await;
    wait_for_count(&two.counters.rejected_connections, 1, "the refusal").await;
}

#[tokio::test]
async fn messages_flow_again_after_a_peer_restarts() {
    let (mut one, two) = pair().await;
    one.transport.send(heartbeat(1, 2, 0));
    two.transport.send(heartbeat(2, 1, 0));
    assert_eq!(next_message(&mut one).await, heartbeat(2, 1, 0));
    let address = two.transport.local_addr();
    let book = two.book.borrow().clone();
    drop(two);

    // The old listener closes as its task is aborted; bind again once it has.
    let mut restarted = within("the port to be free again", async {
        loop {
            let (book_sender, addresses) = watch::channel(book.clone());
            let (sender, inbound) = mpsc::channel(64);
            let counters = Arc::new(TransportCounters::default());
            match Transport::start(config(2, address), addresses, sender, Arc::clone(&counters))
                .await
            {
                Ok(transport) => {
                    return Node {
                        id: 2,
                        transport,
                        inbound,
                        counters,
                        book: book_sender,
                    };
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(restarted.transport.local_addr(), address);

    // Node 1 reconnects; a message written to the dead connection before it noticed may be
    // lost (as Raft allows), so keep sending until one arrives.
    let first = within("node 1 to reach the restarted node 2", async {
        let mut round = 1;
        loop {
            one.transport.send(heartbeat(1, 2, round));
            if let Ok(Some(inbound)) =
                tokio::time::timeout(Duration::from_millis(50), restarted.inbound.recv()).await
            {
                return inbound;
            }
            round += 1;
        }
    })
    .await;
    match first {
        Inbound::Message(message) => assert_eq!(message.from, NodeId(1)),
        other => panic!("expected a message, got {other:?}"),
    }
    // Once connected, nothing is lost.
    one.transport.send(heartbeat(1, 2, 1000));
    loop {
        let message = next_message(&mut restarted).await;
        if message == heartbeat(1, 2, 1000) {
            break;
        }
    }
    restarted.transport.send(heartbeat(2, 1, 1));
    assert_eq!(next_message(&mut one).await, heartbeat(2, 1, 1));
}

#[tokio::test]
async fn bad_connections_are_refused_and_the_node_keeps_accepting() {
    let mut node_config = config(1, any_port());
    node_config.frame_bytes_max = 64 * 1024;
    let mut node = start(node_config, AddressBook::new()).await;
    let address = node.transport.local_addr();
    // Node 2 is known (at an address where it does not listen: node 1's sender to it just
    // keeps retrying); node 99 is not.
    node.book
        .send_replace(book_of(&[(1, address), (2, unreachable_address())]));

    let good_hello = frame_bytes(&hello(CLUSTER, 2, 1));
    let mut undecodable = good_hello.clone();
    undecodable.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
    let mut misaddressed = good_hello.clone();
    misaddressed.extend(frame_bytes(&Frame::Message(heartbeat(3, 1, 1))));
    let mut second_hello = good_hello.clone();
    second_hello.extend_from_slice(&good_hello);
    let mut stray_chunk = good_hello.clone();
    stray_chunk.extend(frame_bytes(&Frame::SnapshotChunk(SnapshotChunk {
        transfer: 1,
        message: None,
        offset: 0,
        total: 3,
        data: Bytes::from_static(b"abc"),
    })));
    let mut oversized_snapshot = good_hello.clone();
    oversized_snapshot.extend(frame_bytes(&Frame::SnapshotChunk(SnapshotChunk {
        transfer: 1,
        message: Some(install_snapshot(2, 1)),
        offset: 0,
        total: 1 << 40,
        data: Bytes::from_static(b"abc"),
    })));
    let wrong_version = frame_bytes(&Frame::Hello(Hello {
        version: PROTOCOL_VERSION + 1,
        cluster_id: CLUSTER,
        from: NodeId(2),
        to: NodeId(1),
    }));

    // (case, bytes, whether the client then closes its side)
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("garbage", b"\x00\x00\x00\x05hello".to_vec(), false),
        ("text", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false),
        (
            "truncated frame",
            [&[0, 0, 0, 100][..], &[1; 10]].concat(),
            true,
        ),
        ("truncated length", vec![0, 0], true),
        ("oversized length", vec![0, 1, 0, 1, 0, 0], false),
        (
            "message before the handshake",
            frame_bytes(&Frame::Message(heartbeat(2, 1, 1))),
            false,
        ),
        ("undecodable payload", undecodable, false),
        (
            "wrong cluster id",
            frame_bytes(&hello(CLUSTER + 1, 2, 1)),
            false,
        ),
        ("wrong version", wrong_version, false),
        (
            "unknown node id",
            frame_bytes(&hello(CLUSTER, 99, 1)),
            false,
        ),
        (
            "meant for another node",
            frame_bytes(&hello(CLUSTER, 2, 3)),
            false,
        ),
        (
            "claims the node's own id",
            frame_bytes(&hello(CLUSTER, 1, 1)),
            false,
        ),
        ("misaddressed message", misaddressed, false),
        ("second handshake", second_hello, false),
        ("chunk without its message", stray_chunk, false),
        ("snapshot over the limit", oversized_snapshot, false),
    ];
    for (count, (case, bytes, close)) in cases.into_iter().enumerate() {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        if close {
            stream.shutdown().await.unwrap();
        }
        assert_closed_by_server(&mut stream, case).await;
        wait_for_count(
            &node.counters.rejected_connections,
            count as u64 + 1,
            &format!("the refusal to be counted ({case})"),
        )
        .await;
    }
    assert!(
        node.inbound.try_recv().is_err(),
        "nothing bad was delivered"
    );

    // A well-behaved peer still gets through.
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut bytes = good_hello;
    bytes.extend(frame_bytes(&Frame::Message(heartbeat(2, 1, 5))));
    stream.write_all(&bytes).await.unwrap();
    assert_eq!(next_message(&mut node).await, heartbeat(2, 1, 5));

    // A peer connecting and leaving without a word is not counted as bad.
    let rejected = node.counters.rejected_connections.load(Ordering::Relaxed);
    drop(TcpStream::connect(address).await.unwrap());
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(&frame_bytes(&hello(CLUSTER, 2, 1)))
        .await
        .unwrap();
    stream
        .write_all(&frame_bytes(&Frame::Message(heartbeat(2, 1, 6))))
        .await
        .unwrap();
    assert_eq!(next_message(&mut node).await, heartbeat(2, 1, 6));
    assert_eq!(
        node.counters.rejected_connections.load(Ordering::Relaxed),
        rejected
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let mut node_config = config(1, any_port());
    node_config.queue_capacity = 1;
    let node = start(node_config, AddressBook::new()).await;
    node.book.send_replace(book_of(&[
        (1, node.transport.local_addr()),
        (2, unreachable_address()),
    ]));
    // The book change is applied by a task: wait until node 2 has a sender, which shows
    // as a message that is not dropped.
    within("node 2's sender to start", async {
        loop {
            let before = node.counters.dropped.load(Ordering::Relaxed);
            node.transport.send(heartbeat(1, 2, 0));
            if node.counters.dropped.load(Ordering::Relaxed) == before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let before = node.counters.dropped.load(Ordering::Relaxed);
    for round in 1..=50 {
        node.transport.send(heartbeat(1, 2, round));
    }
    // At most the queue (1) and the sender's backlog (1) hold messages; the rest count.
    let dropped = node.counters.dropped.load(Ordering::Relaxed) - before;
    assert!(dropped >= 47, "only {dropped} of 50 messages dropped");
    // A node outside the book counts too.
    node.transport.send(heartbeat(1, 9, 0));
    assert_eq!(
        node.counters.dropped.load(Ordering::Relaxed) - before,
        dropped + 1
    );
    assert_eq!(node.counters.sent.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn a_snapshot_arrives_whole_with_a_delivered_report() {
    let mut small_frames = config(1, any_port());
    // Small frames: the snapshot travels as many chunks.
    small_frames.frame_bytes_max = 256 * 1024;
    let (mut one, mut two) = pair_with(small_frames, config(2, any_port())).await;

    let data = snapshot_data(5 * 1024 * 1024 + 17);
    one.transport
        .send_snapshot(install_snapshot(1, 2), data.clone());
    // Messages keep flowing beside the transfer.
    one.transport.send(heartbeat(1, 2, 1));

    let mut got_snapshot = false;
    let mut got_heartbeat = false;
    while !(got_snapshot && got_heartbeat) {
        match next_inbound(&mut two).await {
            Inbound::Snapshot(message, received) => {
                assert_eq!(message, install_snapshot(1, 2));
                assert_eq!(received.len(), data.len());
                assert!(received == data, "the snapshot data differs");
                got_snapshot = true;
            }
            Inbound::Message(message) => {
                assert_eq!(message, heartbeat(1, 2, 1));
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

    // An empty snapshot is one chunk, and arrives too.
    one.transport
        .send_snapshot(install_snapshot(1, 2), Bytes::new());
    match next_inbound(&mut two).await {
        Inbound::Snapshot(message, received) => {
            assert_eq!(message, install_snapshot(1, 2));
            assert!(received.is_empty());
        }
        other => panic!("expected a snapshot, got {other:?}"),
    }
    assert!(matches!(
        next_inbound(&mut one).await,
        Inbound::SnapshotReport {
            outcome: SnapshotTransfer::Delivered,
            ..
        }
    ));
}

#[tokio::test]
async fn snapshots_to_unknown_or_unreachable_peers_fail() {
    let mut node = start(config(1, any_port()), AddressBook::new()).await;
    node.book.send_replace(book_of(&[
        (1, node.transport.local_addr()),
        (2, unreachable_address()),
    ]));

    node.transport
        .send_snapshot(install_snapshot(1, 9), snapshot_data(1000));
    match next_inbound(&mut node).await {
        Inbound::SnapshotReport { to, outcome } => {
            assert_eq!(to, NodeId(9));
            assert_eq!(outcome, SnapshotTransfer::Failed);
        }
        other => panic!("expected a snapshot report, got {other:?}"),
    }

    // Node 2 may not have a sender yet (the book change is applied by a task): then the
    // snapshot fails as sent to an unknown node, which is the same report.
    node.transport
        .send_snapshot(install_snapshot(1, 2), snapshot_data(1000));
    match next_inbound(&mut node).await {
        Inbound::SnapshotReport { to, outcome } => {
            assert_eq!(to, NodeId(2));
            assert_eq!(outcome, SnapshotTransfer::Failed);
        }
        other => panic!("expected a snapshot report, got {other:?}"),
    }
    // Once the sender runs and has failed to connect, a snapshot still fails (exactly once).
    tokio::time::sleep(Duration::from_millis(100)).await;
    node.transport
        .send_snapshot(install_snapshot(1, 2), snapshot_data(1000));
    assert!(matches!(
        next_inbound(&mut node).await,
        Inbound::SnapshotReport {
            outcome: SnapshotTransfer::Failed,
            ..
        }
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(node.inbound.try_recv().is_err(), "one report per snapshot");
}

#[tokio::test]
async fn a_snapshot_cut_off_mid_transfer_fails() {
    // A raw listener posing as node 2: it reads the handshake and a little, then hangs up.
    let fake = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let fake_address = fake.local_addr().unwrap();
    let mut node = start(config(1, any_port()), AddressBook::new()).await;
    node.book.send_replace(book_of(&[
        (1, node.transport.local_addr()),
        (2, fake_address),
    ]));
    let (stream, _) = within("node 1 to connect", fake.accept()).await.unwrap();
    let mut reader = FrameReader::new(stream, 64 * 1024 * 1024);
    let first = within("the handshake", reader.next_frame()).await.unwrap();
    assert_eq!(first, Some(hello(CLUSTER, 1, 2)));

    node.transport
        .send_snapshot(install_snapshot(1, 2), snapshot_data(64 * 1024 * 1024));
    let chunk = within("a first chunk", reader.next_frame()).await.unwrap();
    assert!(matches!(chunk, Some(Frame::SnapshotChunk(_))));
    drop(reader);
    match next_inbound(&mut node).await {
        Inbound::SnapshotReport { to, outcome } => {
            assert_eq!(to, NodeId(2));
            assert_eq!(outcome, SnapshotTransfer::Failed);
        }
        other => panic!("expected a snapshot report, got {other:?}"),
    }
}

fn sample_messages() -> Vec<Message> {
    let message = |body| Message {
        from: NodeId(1),
        to: NodeId(u64::MAX),
        term: Term(u64::MAX - 1),
        body,
    };
    vec![
        message(MessageBody::RequestVote {
            last_log: LogId::new(3, 9),
            transfer: true,
        }),
        message(MessageBody::RequestVoteResponse { granted: false }),
        message(MessageBody::PreVote {
            last_log: LogId::new(0, 0),
            transfer: true,
        }),
        message(MessageBody::PreVoteResponse { granted: true }),
        message(MessageBody::TimeoutNow),
        message(MessageBody::AppendEntries {
            previous: LogId::new(2, 4),
            entries: vec![
                Entry {
                    id: LogId::new(3, 5),
                    payload: Payload::Blank,
                },
                Entry {
                    id: LogId::new(3, 6),
                    payload: Payload::Command(Bytes::from_static(b"set x = 1")),
                },
                Entry {
                    id: LogId::new(3, 7),
                    payload: Payload::Membership(Box::new(Membership::with_voters([
                        NodeId(1),
                        NodeId(4),
                    ]))),
                },
            ],
            commit: Index(5),
        }),
        message(MessageBody::AppendEntriesResponse(
            AppendResponse::Accepted { matched: Index(7) },
        )),
        message(MessageBody::AppendEntriesResponse(
            AppendResponse::Rejected {
                rejected: Index(9),
                hint: LogId::new(1, 2),
            },
        )),
        message(MessageBody::AppendEntriesResponse(
            AppendResponse::StaleTerm,
        )),
        install_snapshot(1, 2),
        message(MessageBody::Heartbeat {
            commit: Index(3),
            round: 8,
        }),
        message(MessageBody::HeartbeatResponse { round: 8 }),
        message(MessageBody::ReadIndex { request: 11 }),
        message(MessageBody::ReadIndexResponse {
            request: 11,
            index: Some(Index(40)),
        }),
        message(MessageBody::ReadIndexResponse {
            request: 12,
            index: None,
        }),
        message(MessageBody::ForwardProposals {
            commands: vec![Bytes::new(), Bytes::from_static(b"incr y")],
        }),
    ]
}

#[test]
fn the_codec_round_trips() {
    let mut frames: Vec<Frame> = sample_messages().into_iter().map(Frame::Message).collect();
    frames.push(hello(CLUSTER, 1, 2));
    frames.push(Frame::SnapshotChunk(SnapshotChunk {
        transfer: 3,
        message: Some(install_snapshot(1, 2)),
        offset: 0,
        total: 10,
        data: Bytes::from_static(b"0123"),
    }));
    frames.push(Frame::SnapshotChunk(SnapshotChunk {
        transfer: 3,
        message: None,
        offset: 4,
        total: 10,
        data: Bytes::from_static(b"456789"),
    }));
    for frame in &frames {
        let bytes = frame_bytes(frame);
        let length = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(length, bytes.len() - 4);
        assert_eq!(&codec::decode_frame(&bytes[4..]).unwrap(), frame);
    }
    for message in sample_messages() {
        let bytes = codec::encode_message(&message);
        assert_eq!(codec::decode_message(&bytes).unwrap(), message);
        // Every strict prefix fails cleanly.
        for end in 0..bytes.len() {
            assert!(codec::decode_message(&bytes[..end]).is_err());
        }
    }
}

#[tokio::test]
async fn the_frame_reader_reads_a_stream_of_frames() {
    let frames = [
        hello(CLUSTER, 1, 2),
        Frame::Message(heartbeat(1, 2, 3)),
        Frame::Message(sample_messages().remove(5)),
    ];
    let stream: Vec<u8> = frames.iter().flat_map(frame_bytes).collect();
    let mut reader = FrameReader::new(&stream[..], 1024);
    for frame in &frames {
        assert_eq!(reader.next_frame().await.unwrap().as_ref(), Some(frame));
    }
    assert!(reader.next_frame().await.unwrap().is_none());

    // A frame above the reader's limit is refused from its length alone.
    let large = frame_bytes(&Frame::SnapshotChunk(SnapshotChunk {
        transfer: 1,
        message: None,
        offset: 0,
        total: 2000,
        data: Bytes::from(vec![0; 2000]),
    }));
    let mut reader = FrameReader::new(&large[..4], 1024);
    assert!(matches!(
        reader.next_frame().await,
        Err(CodecError::FrameTooLarge { .. })
    ));
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    let mut state: u64 = 1;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    let encoded: Vec<Vec<u8>> = sample_messages()
        .iter()
        .map(codec::encode_message)
        .collect();
    for attempt in 0..20_000 {
        let bytes: Vec<u8> = if attempt % 2 == 0 {
            // Pure noise.
            (0..(next() % 64)).map(|_| next()).collect()
        } else {
            // A valid message with a few bytes changed: deeper into the decoder.
            let mut bytes = encoded[attempt % encoded.len()].clone();
            for _ in 0..=(next() % 3) {
                let position = next() as usize % bytes.len();
                bytes[position] = next();
            }
            bytes
        };
        let _ = codec::decode_message(&bytes);
        let _ = codec::decode_frame(&bytes);
    }
}
