//! Counters and gauges of one node, readable at any time and renderable in the Prometheus
//! text format. Plain atomics: no registry, no exporter dependency; an application
//! forwards them to whatever metrics system it uses.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::transport::TransportCounters;

/// Upper bounds of the fsync latency histogram, in microseconds.
const FSYNC_BUCKETS_MICROS: [u64; 12] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
];

/// One node's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// The current term.
    pub term: AtomicU64,
    /// The commit index.
    pub commit_index: AtomicU64,
    /// The applied index.
    pub applied_index: AtomicU64,
    /// 1 while this node leads, else 0.
    pub is_leader: AtomicU64,
    /// Proposals accepted by this node as leader.
    pub proposals: AtomicU64,
    /// Proposals refused (not leader, over a limit, transfer in progress).
    pub proposals_refused: AtomicU64,
    /// Linearizable reads answered.
    pub reads: AtomicU64,
    /// Storage batches committed (one fsync each).
    pub fsyncs: AtomicU64,
    /// Writes of the core committed (several per fsync under load).
    pub writes: AtomicU64,
    /// Sum of fsync latencies, in microseconds.
    pub fsync_micros_sum: AtomicU64,
    /// Fsyncs per latency bucket (cumulative counts are computed when rendering).
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS_MICROS.len() + 1],
    /// Snapshots built here.
    pub snapshots_built: AtomicU64,
    /// Snapshots sent to followers.
    pub snapshots_sent: AtomicU64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: AtomicU64,
}

impl Metrics {
    /// Records one fsync of `writes` writes that took `micros` microseconds.
    pub(crate) fn record_fsync(&self, writes: u64, micros: u64) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(writes, Ordering::Relaxed);
        self.fsync_micros_sum.fetch_add(micros, Ordering::Relaxed);
        let bucket = FSYNC_BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(FSYNC_BUCKETS_MICROS.len());
        self.fsync_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets `gauge` to `value`.
    pub(crate) fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    /// Renders these metrics and the transport's in the Prometheus text exposition format.
    pub fn render_prometheus(&self, transport: &TransportCounters) -> String {
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP raft_{name} {help}");
            let _ = writeln!(out, "# TYPE raft_{name} {kind}");
            let _ = writeln!(out, "raft_{name} {value}");
        };
        metric("term", "gauge", "The current term.", load(&self.term));
        metric(
            "commit_index",
            "gauge",
            "The commit index.",
            load(&self.commit_index),
        );
        metric(
            "applied_index",
            "gauge",
            "The applied index.",
            load(&self.applied_index),
        );
        metric(
            "is_leader",
            "gauge",
            "1 while this node leads.",
            load(&self.is_leader),
        );
        metric(
            "proposals_total",
            "counter",
            "Proposals accepted as leader.",
            load(&self.proposals),
        );
        metric(
            "proposals_refused_total",
            "counter",
            "Proposals refused.",
            load(&self.proposals_refused),
        );
        metric(
            "reads_total",
            "counter",
            "Linearizable reads answered.",
            load(&self.reads),
        );
        metric(
            "writes_total",
            "counter",
            "Core writes made durable.",
            load(&self.writes),
        );
        metric(
            "snapshots_built_total",
            "counter",
            "Snapshots built.",
            load(&self.snapshots_built),
        );
        metric(
            "snapshots_sent_total",
            "counter",
            "Snapshots sent to followers.",
            load(&self.snapshots_sent),
        );
        metric(
            "snapshots_installed_total",
            "counter",
            "Snapshots installed from a leader.",
            load(&self.snapshots_installed),
        );
        metric(
            "messages_sent_total",
            "counter",
            "Peer messages written to sockets.",
            load(&transport.sent),
        );
        metric(
            "messages_received_total",
            "counter",
            "Peer messages received.",
            load(&transport.received),
        );
        metric(
            "messages_dropped_total",
            "counter",
            "Peer messages dropped on full queues.",
            load(&transport.dropped),
        );
        metric(
            "connections_rejected_total",
            "counter",
            "Peer connections closed for a bad handshake or frame.",
            load(&transport.rejected_connections),
        );
        let _ = writeln!(
            out,
            "# HELP raft_fsync_seconds Latency of one storage commit."
        );
        let _ = writeln!(out, "# TYPE raft_fsync_seconds histogram");
        let mut cumulative = 0;
        for (position, bound) in FSYNC_BUCKETS_MICROS.iter().enumerate() {
            cumulative += load(&self.fsync_buckets[position]);
            let _ = writeln!(
                out,
                "raft_fsync_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += load(&self.fsync_buckets[FSYNC_BUCKETS_MICROS.len()]);
        let _ = writeln!(out, "raft_fsync_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "raft_fsync_seconds_sum {}",
            load(&self.fsync_micros_sum) as f64 / 1e6
        );
        let _ = writeln!(out, "raft_fsync_seconds_count {}", load(&self.fsyncs));
        out
    }
}
