//! Replication throughput of a three-node cluster in one thread.
//!
//! The workload is fixed so that it can be compared with other Raft cores:
//!
//! - three [`Node`]s in one thread; node 1 is elected once (campaign, then deliver) and
//!   no tick happens afterwards, neither during nor between measurements;
//! - messages move directly between nodes: no serialization, one `Vec<Message>` per
//!   delivery round, each message handed to [`Node::step`];
//! - storage acknowledges every write at once (`persisted(write.id())` as soon as the
//!   `Persist` action is polled); the whole log stays in memory (no compaction);
//! - every proposal carries a fresh 128-byte `Bytes` payload, allocated inside the
//!   measurement;
//! - an entry is done when the leader has applied it (`Apply` on the leader, answered with
//!   `applied(last)`); each measured batch ends when every follower has applied every
//!   entry too. No heartbeat tick is needed for that: the leader announces the final
//!   commit index with an entry-less append, inside the measurement;
//! - two modes: 1 outstanding proposal (propose, run until the leader applied it,
//!   repeat) and 256 outstanding (topped up to 256 un-applied proposals before every
//!   delivery round).
//!
//! Allocations per entry are printed once per mode before criterion measures, counted by
//! the bench's own global allocator (every `alloc`, `alloc_zeroed` and `realloc`).
// The counting allocator is the only unsafe code in the workspace: `GlobalAlloc` is an
// unsafe trait. The library crates forbid unsafe code at their roots.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use raft_core::{
    Action, Config, Event, Index, Membership, Message, Node, NodeId, Proposal, Recovered,
};

/// Payload bytes of every proposal.
const PAYLOAD_BYTES: usize = 128;
/// Nodes in the cluster; node 1 (position 0) leads.
const NODES: usize = 3;
const LEADER: usize = 0;
/// The cluster is rebuilt (outside the measurement) once its log passes this many entries,
/// so that memory stays bounded however many iterations criterion asks for.
const LOG_ENTRIES_MAX: u64 = 1 << 20;
/// Entries over which allocations are counted, per mode.
const PROBE_ENTRIES: u64 = 100_000;

/// One measured mode: how many proposals stay un-applied, and how many entries one
/// criterion iteration (one batch, ending with every node applied) carries.
#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    outstanding: u64,
    batch: u64,
}

const MODES: [Mode; 2] = [
    Mode {
        name: "1_outstanding",
        outstanding: 1,
        batch: 1_000,
    },
    Mode {
        name: "256_outstanding",
        outstanding: 256,
        batch: 16_384,
    },
];

/// Three nodes, the messages in flight, and what each node applied.
struct Cluster {
    nodes: Vec<Node>,
    /// Messages sent since the last delivery round.
    in_flight: Vec<Message>,
    /// The messages of the round being delivered (kept to reuse its buffer).
    delivering: Vec<Message>,
    /// The last index each node applied.
    applied: [Index; NODES],
    /// The index of the leader's last proposal.
    last_proposed: Index,
    /// Distinguishes payloads, so that each is fresh content too.
    proposals: u64,
    /// Reads the leader reported ready.
    reads_ready: u64,
}

impl Cluster {
    /// Builds the cluster and elects node 1.
    fn new() -> Cluster {
        Cluster::with_lease(false)
    }

    /// Builds the cluster, with lease reads when `lease`, and elects node 1.
    fn with_lease(lease: bool) -> Cluster {
        let ids = (1..=NODES as u64).map(NodeId);
        let membership = Membership::with_voters(ids.clone());
        let nodes = ids
            .map(|id| {
                let config = Config::builder(id)
                    .append_in_flight_max(256)
                    .append_bytes_max(1024 * 1024)
                    .uncommitted_bytes_max(usize::MAX / 2)
                    .read_lease(lease)
                    .pending_reads_max(1 << 20)
                    .build()
                    .expect("valid configuration");
                Node::new(config, Recovered::new_cluster(membership.clone()))
                    .expect("valid recovered state")
            })
            .collect();
        let mut cluster = Cluster {
            nodes,
            in_flight: Vec::new(),
            delivering: Vec::new(),
            applied: [Index(0); NODES],
            last_proposed: Index(0),
            proposals: 0,
            reads_ready: 0,
        };
        cluster.nodes[LEADER]
            .campaign()
            .expect("node 1 can campaign");
        cluster.settle();
        assert_eq!(cluster.nodes[LEADER].leader(), Some(NodeId(1)));
        // The new leader's blank entry is applied everywhere.
        cluster.last_proposed = cluster.nodes[LEADER].last_log_id().index;
        cluster.assert_all_applied();
        cluster
    }

    /// Carries out every pending action of node `position`.
    fn drain(&mut self, position: usize) {
        let node = &mut self.nodes[position];
        while let Some(action) = node.poll_action() {
            match action {
                Action::Persist(write) => {
                    node.persisted(write.id()).expect("write was issued");
                }
                Action::Send(message) => self.in_flight.push(message),
                Action::Apply(entries) => {
                    if let Some(last) = entries.last() {
                        let index = last.index();
                        node.applied(index).expect("entries were handed out");
                        self.applied[position] = index;
                    }
                    black_box(entries);
                }
                // The benchmark keeps the whole log in memory, as the raft-rs comparison
                // does: no snapshot is built, so none is sent or restored.
                Action::SendSnapshot(_) | Action::Restore(_) => {
                    unreachable!("no snapshot is built")
                }
                Action::Event(event) => {
                    if matches!(event, Event::ReadReady { .. }) {
                        self.reads_ready += 1;
                    }
                    black_box(event);
                }
            }
        }
    }

    fn drain_all(&mut self) {
        for position in 0..NODES {
            self.drain(position);
        }
    }

    /// Hands every message sent since the last round to its receiver.
    fn deliver_round(&mut self) {
        std::mem::swap(&mut self.in_flight, &mut self.delivering);
        for message in self.delivering.drain(..) {
            let position = usize::try_from(message.to.0 - 1).expect("small node id");
            self.nodes[position].step(message);
        }
    }

    /// Drains and delivers until no message is in flight.
    fn settle(&mut self) {
        loop {
            self.drain_all();
            if self.in_flight.is_empty() {
                return;
            }
            self.deliver_round();
        }
    }

    /// A fresh 128-byte payload.
    fn payload(&mut self) -> Bytes {
        self.proposals += 1;
        let mut command = vec![0u8; PAYLOAD_BYTES];
        command[..8].copy_from_slice(&self.proposals.to_le_bytes());
        Bytes::from(command)
    }

    /// Proposes `count` entries, keeping at most `outstanding` of them un-applied by the
    /// leader, and runs until every node has applied all of them.
    fn run_batch(&mut self, outstanding: u64, count: u64) {
        let target = self.last_proposed.0 + count;
        loop {
            while self.last_proposed.0 < target
                && self.last_proposed.0 - self.applied[LEADER].0 < outstanding
            {
                let payload = self.payload();
                match self.nodes[LEADER].propose(payload) {
                    Ok(Proposal::Appended(id)) => self.last_proposed = id.index,
                    other => panic!("the leader refused a proposal: {other:?}"),
                }
            }
            self.drain_all();
            if self.in_flight.is_empty() {
                if self.last_proposed.0 == target {
                    break;
                }
                assert_eq!(
                    self.applied[LEADER], self.last_proposed,
                    "the cluster stalled with proposals outstanding"
                );
            } else {
                self.deliver_round();
            }
        }
        self.assert_all_applied();
    }

    /// Asks the leader for `count` linearizable reads, `per_round` at a time (each group
    /// asked before the leader's actions are drained, so it shares one heartbeat round),
    /// and runs until all are ready.
    fn run_reads(&mut self, count: u64, per_round: u64) {
        let target = self.reads_ready + count;
        let mut asked = 0;
        while asked < count {
            let group = per_round.min(count - asked);
            for _ in 0..group {
                self.nodes[LEADER]
                    .read_index()
                    .expect("the leader accepts reads");
            }
            asked += group;
            self.settle();
        }
        assert_eq!(self.reads_ready, target, "every read was confirmed");
    }

    fn assert_all_applied(&self) {
        for (position, applied) in self.applied.iter().enumerate() {
            assert_eq!(
                *applied,
                self.last_proposed,
                "node {} did not apply everything",
                position + 1
            );
        }
    }
}

/// Measures `mode` with criterion: each iteration is one batch of `mode.batch` entries.
fn bench_mode(criterion: &mut Criterion, mode: Mode) {
    let mut group = criterion.benchmark_group("replication");
    group.throughput(Throughput::Elements(mode.batch));
    let mut cluster = Cluster::new();
    group.bench_function(mode.name, |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                if cluster.last_proposed.0 + mode.batch > LOG_ENTRIES_MAX {
                    // Rebuilt outside the measurement; the old cluster is dropped here too.
                    cluster = Cluster::new();
                }
                let start = Instant::now();
                cluster.run_batch(mode.outstanding, mode.batch);
                elapsed += start.elapsed();
            }
            elapsed
        });
    });
    group.finish();
}

/// One read-measuring mode: lease or heartbeat rounds, and how many reads share a round.
struct ReadMode {
    name: &'static str,
    lease: bool,
    per_round: u64,
}

const READ_MODES: [ReadMode; 3] = [
    ReadMode {
        name: "read_index_1_per_round",
        lease: false,
        per_round: 1,
    },
    ReadMode {
        name: "read_index_256_per_round",
        lease: false,
        per_round: 256,
    },
    ReadMode {
        name: "lease",
        lease: true,
        per_round: 256,
    },
];

/// Linearizable reads on the leader of the same three-node cluster: each iteration is a
/// batch of 16,384 reads, every one confirmed (`ReadReady`) before the batch ends.
fn reads(criterion: &mut Criterion) {
    const BATCH: u64 = 16_384;
    let mut group = criterion.benchmark_group("reads");
    group.throughput(Throughput::Elements(BATCH));
    for mode in READ_MODES {
        let mut cluster = Cluster::with_lease(mode.lease);
        // One confirmed round first, so that the lease (when on) is established.
        cluster.run_reads(1, 1);
        group.bench_function(mode.name, |bencher| {
            bencher.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    cluster.run_reads(BATCH, mode.per_round);
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

fn replication(criterion: &mut Criterion) {
    for mode in MODES {
        bench_mode(criterion, mode);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(10));
    targets = replication, reads
}

/// The system allocator, counting every allocation.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`; `pointer` came from this allocator.
        unsafe { System.realloc(pointer, layout, new_size) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Prints the allocations per entry of each mode, counted over `PROBE_ENTRIES` entries
/// after the cluster is set up and its pipeline warmed.
fn report_allocations() {
    for mode in MODES {
        let mut cluster = Cluster::new();
        cluster.run_batch(mode.outstanding, mode.batch);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let mut remaining = PROBE_ENTRIES;
        while remaining > 0 {
            let batch = remaining.min(mode.batch);
            cluster.run_batch(mode.outstanding, batch);
            remaining -= batch;
        }
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        println!(
            "replication/{}: {:.2} allocations per entry ({PROBE_ENTRIES} entries)",
            mode.name,
            allocations as f64 / PROBE_ENTRIES as f64
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not and only smoke-tests.
    if std::env::args().any(|argument| argument == "--bench") {
        report_allocations();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
