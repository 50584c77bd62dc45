//! The workload both sides run: a fresh three-node cluster in this process, then N client
//! tasks each writing in a loop, one write at a time, every write resolving once the
//! leader has applied it. Writes completed inside the measured window are counted, and
//! their latencies (from the call to its resolution) go into a histogram.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::runtime::{Builder, Runtime};

/// The bytes every write carries: the same small command on both sides.
pub(crate) const PAYLOAD_BYTES: usize = 128;

/// The longest latency the histograms hold, in nanoseconds (a minute).
const LATENCY_NANOSECONDS_MAX: u64 = 60_000_000_000;

/// A three-node cluster of one implementation, in this process.
pub(crate) trait Cluster: Sized {
    /// What the clients write through.
    type Writer: Writer;

    /// Starts three nodes on the current runtime and returns once one of them leads.
    fn start() -> impl Future<Output = Self>;

    /// A writer to the leader.
    fn writer(&self) -> Self::Writer;

    /// Stops every node.
    fn stop(self) -> impl Future<Output = ()>;
}

/// One client's way to write: cheap to clone, one clone per client task.
pub(crate) trait Writer: Clone + Send + Sync + 'static {
    /// Writes `payload`; resolves once the leader has applied it. A failed write is a
    /// broken benchmark, not a measurement: it panics.
    fn write(&self, payload: Bytes) -> impl Future<Output = ()> + Send;
}

/// How one run is set up and how long it measures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// Worker threads of the runtime the nodes run on.
    pub(crate) server_workers: usize,
    /// Worker threads of the runtime the clients run on.
    pub(crate) client_workers: usize,
    /// Writing before the measured window opens.
    pub(crate) warm_up: Duration,
    /// The measured window.
    pub(crate) window: Duration,
}

/// What one run measured.
pub(crate) struct Sample {
    pub(crate) writes_per_second: f64,
    /// Latencies of the writes completed in the window, in nanoseconds.
    pub(crate) latencies: Histogram<u64>,
}

/// A histogram for latencies in nanoseconds, two significant digits (1% resolution).
/// Every client records into its own, so it must stay small: with three digits each is
/// 200 KiB, and 256 of them cost the clients more time in cache misses than the writes
/// they measure.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NANOSECONDS_MAX, 2)
        .expect("the bounds are valid: 1 <= low, high >= 2 * low")
}

fn runtime(workers: usize, name: &str) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a Tokio runtime starts")
}

/// One run: a fresh cluster on a runtime of its own, `clients` clients on another (as in
/// openraft's benchmark, so that clients and nodes do not share worker threads), the
/// warm-up, the window, and everything stopped again.
pub(crate) fn measure<C: Cluster>(settings: Settings, clients: usize) -> Sample {
    let server = runtime(settings.server_workers, "server");
    let client = runtime(settings.client_workers, "client");
    let cluster = server.block_on(C::start());
    let writer = cluster.writer();
    let sample = client.block_on(drive(writer, clients, settings.warm_up, settings.window));
    server.block_on(cluster.stop());
    client.shutdown_timeout(Duration::from_secs(1));
    server.shutdown_timeout(Duration::from_secs(1));
    sample
}

async fn drive<W: Writer>(
    writer: W,
    clients: usize,
    warm_up: Duration,
    window: Duration,
) -> Sample {
    let window_start = Instant::now() + warm_up;
    let window_end = window_start + window;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let mut latencies = latency_histogram();
                let mut completed = 0u64;
                loop {
                    // A fresh command for every write, as a real client builds each one:
                    // one buffer shared by all writes would put every write's reference
                    // count on one cache line that the client and the nodes contend for.
                    let payload = Bytes::from(vec![0x5a; PAYLOAD_BYTES]);
                    let started = Instant::now();
                    if started >= window_end {
                        break;
                    }
                    writer.write(payload).await;
                    let finished = Instant::now();
                    if finished >= window_start && finished <= window_end {
                        completed += 1;
                        let nanoseconds = u64::try_from((finished - started).as_nanos())
                            .unwrap_or(u64::MAX)
                            .min(LATENCY_NANOSECONDS_MAX);
                        latencies.saturating_record(nanoseconds);
                    }
                }
                (completed, latencies)
            })
        })
        .collect();
    let mut completed = 0;
    let mut latencies = latency_histogram();
    for task in tasks {
        let (count, histogram) = task.await.expect("a client task panicked");
        completed += count;
        latencies
            .add(&histogram)
            .expect("histograms of the same bounds add");
    }
    Sample {
        writes_per_second: completed as f64 / window.as_secs_f64(),
        latencies,
    }
}
