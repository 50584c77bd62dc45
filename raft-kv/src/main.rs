//! `raft-kv`: a replicated key-value store served over HTTP, on [`raft_tokio`]. It has the
//! HTTP API and the command-line flags of etcd's `raftexample`.
//!
//! # A local three-node cluster
//!
//! As raftexample's Procfile does it, each in a terminal of its own (or under a process
//! manager):
//!
//! ```text
//! raft-kv --id 1 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 --port 12380
//! raft-kv --id 2 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 --port 22380
//! raft-kv --id 3 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379 --port 32380
//! ```
//!
//! `--cluster` lists the raft peer addresses (`http://host:port` or `host:port`); the
//! i-th (from 1) is node i's. `--port` is the HTTP port for clients, bound on 127.0.0.1
//! (`--host` changes that; `--advertise-url` sets the URL other nodes redirect clients
//! to when it is not `http://<host>:<port>`). Each node keeps its log and snapshots in
//! `--data-dir` (default `raft-kv-<id>`); restarted with the same flags, it recovers from
//! there. Other flags: `--cluster-id` (default 1), `--tick-ms` (default 100: elections
//! after 1 to 2 s), `--max-value-bytes` (default 1 MiB), `--request-timeout-ms` (default
//! 5000). Logs go to stderr, filtered by `RUST_LOG` (default `info`).
//!
//! # Keys
//!
//! ```text
//! curl -L -X PUT http://127.0.0.1:12380/my-key --data-binary hello   # 204 once committed
//! curl -L http://127.0.0.1:22380/my-key                              # 200 hello
//! curl http://127.0.0.1:32380/my-key?consistency=local               # this node's copy
//! curl -L -X DELETE http://127.0.0.1:12380/my-key                    # 204
//! ```
//!
//! A key is the request path without its leading `/`, as sent (not percent-decoded).
//! Reads are linearizable on every node (a follower asks the leader how far it must have
//! applied) and never redirect; `?consistency=local` answers from the node's own state,
//! possibly stale. Writes go to the leader: a follower answers `307 Temporary Redirect`
//! with `Location` set to the leader's HTTP URL and the same path and query, which
//! `curl -L` follows (each leader advertises its URL through the replicated log when it
//! is elected; 503 while that is not known yet). A missing key gets 404, an empty key
//! 400, a value over `--max-value-bytes` 413, a request that takes longer than the
//! request timeout 504; errors have a JSON body `{"error": "..."}`.
//!
//! # Membership
//!
//! A path made only of digits names a node for POST and DELETE, as in raftexample:
//!
//! ```text
//! curl -L -X POST http://127.0.0.1:12380/4 --data-binary http://127.0.0.1:42379
//! raft-kv --id 4 --cluster http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379,http://127.0.0.1:42379 --port 42380 --join
//! curl -L -X DELETE http://127.0.0.1:12380/3
//! ```
//!
//! `POST /ID` records the node's raft address (the body), adds it as a learner, waits up
//! to 5 s for it to catch up, then makes it a voter. Start the new node with `--join`,
//! its id last in `--cluster`. `DELETE /ID` removes node ID. To delete a key made only of
//! digits, add `?kind=key` (`curl -L -X DELETE http://127.0.0.1:12380/123?kind=key`);
//! likewise `GET /status?kind=key` reads the key `status`.
//!
//! # Status and metrics
//!
//! `GET /status` answers JSON `{id, role, term, leader, commit, applied, voters,
//! learners}`; `GET /metrics` the node's metrics in the Prometheus text format.
//!
//! # Stopping
//!
//! SIGTERM or SIGINT stops the node gracefully (a leader first hands leadership over) and
//! exits with code 0. Exit code 1: the node could not start (an unusable data directory
//! or port) or stopped on a storage failure; 2: invalid flags.
#![forbid(unsafe_code)]

mod cli;
mod machine;
mod server;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use raft_core::Config;
use raft_tokio::NodeOptions;
use raft_tokio::storage::RedbLogStore;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::cli::Settings;
use crate::machine::KeyValueStore;
use crate::server::Server;

/// Exit code when the node cannot start or fails while running.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let settings = match cli::parse() {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Starts the node and the HTTP server, and runs until a signal or a failure stops it.
/// An error is one line.
async fn run(settings: Settings) -> Result<(), String> {
    // Nothing is logged before the store opens, so that an unusable data directory is
    // reported in exactly one line.
    let store = RedbLogStore::open(&settings.data_dir).map_err(|error| error.to_string())?;
    let host = settings
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let listener = TcpListener::bind((host.as_str(), settings.port))
        .await
        .map_err(|error| {
            format!(
                "cannot listen for HTTP at {}:{}: {error}",
                settings.host, settings.port
            )
        })?;
    let port = listener
        .local_addr()
        .map_err(|error| format!("cannot read the HTTP listener's address: {error}"))?
        .port();
    let url = settings.advertise_url.clone().unwrap_or_else(|| {
        if host.contains(':') {
            format!("http://[{host}]:{port}")
        } else {
            format!("http://{host}:{port}")
        }
    });

    // Signal handlers go in before the node starts, so that a SIGTERM during start-up
    // still stops it gracefully rather than killing the process.
    let mut stop_signal = StopSignal::install()
        .map_err(|error| format!("cannot install signal handlers: {error}"))?;

    let config = Config::builder(settings.id)
        .random_seed(restart_seed(settings.id.0))
        .build()
        .map_err(|error| format!("invalid raft configuration: {error}"))?;
    let mut options = NodeOptions::new(
        config,
        settings.cluster_id,
        settings.raft_listen,
        settings.peers.clone(),
    );
    options.join = settings.join;
    options.tick = settings.tick;
    let raft = raft_tokio::start(options, store, KeyValueStore::default())
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(
        id = %settings.id,
        raft = %settings.raft_listen,
        http = %url,
        data_dir = %settings.data_dir.display(),
        join = settings.join,
        "raft-kv started"
    );

    tokio::spawn(server::advertise_when_leading(raft.clone(), url));
    let server = Arc::new(Server {
        raft: raft.clone(),
        max_value_bytes: settings.max_value_bytes,
        request_timeout: settings.request_timeout,
    });
    let serving = tokio::spawn(server.serve(listener));

    let outcome = tokio::select! {
        signal = stop_signal.received() => {
            tracing::info!(signal, "stopping");
            raft.shutdown().await;
            Ok(())
        }
        reason = raft.stopped() => match reason {
            Some(reason) => Err(format!("the raft node stopped: {reason}")),
            None => Ok(()),
        },
    };
    serving.abort();
    outcome
}

/// A seed for election timeouts that differs between nodes and between restarts of one
/// node, as raft-core asks.
fn restart_seed(id: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere than Unix).
struct StopSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> std::io::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    /// Resolves with the signal's name when one arrives.
    async fn received(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                // Without a handler there is no signal to wait for.
                Err(_) => std::future::pending().await,
            }
        }
    }
}
