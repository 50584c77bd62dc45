//! `raft-kv`: a replicated key-value store served over HTTP, on [`raft_tokio`]. It has the
//! HTTP API and the command-line flags of etcd's `raftexample`.
//!
//! # Try it: a local three-node cluster in one command
//!
//! ```text
//! raft-kv --local 3
//! ```
//!
//! starts three nodes on 127.0.0.1 (this program, as child processes): node i serves HTTP
//! on port 12380 + i - 1 and talks raft on 12390 + i - 1 (`--port P` moves both: P + i - 1
//! and P + 10 + i - 1). Their data directories and logs go in `raft-kv-local/` (`--data-dir
//! DIR` changes the folder; a second run recovers from it, delete it to start afresh). It
//! prints each node's URL and pid and the commands below, then waits: Enter restarts nodes
//! that have stopped, Ctrl-C (SIGINT or SIGTERM) stops every node gracefully. The nodes
//! also stop if the demo is killed. `--cluster-id`, `--tick-ms`, `--max-value-bytes`,
//! `--request-timeout-ms`, `--max-http-connections`, `--http-idle-timeout-ms` and the
//! `--tls-*` flags are passed on to every node; `--local`
//! takes 1 to 9 nodes and does not go with `--id`, `--cluster`, `--join`, `--host` or
//! `--advertise-url`.
//!
//! In another terminal:
//!
//! ```text
//! curl -L -X PUT http://127.0.0.1:12380/my-key --data-binary hello   # write: 204 once committed
//! curl -L http://127.0.0.1:12382/my-key                              # read: hello
//! curl http://127.0.0.1:12380/status                                 # "leader": the leader's id
//! curl http://127.0.0.1:12381/status                                 # on the leader (node 2 here): its "pid"
//! kill -9 <the leader's pid>                                         # another node takes over
//! curl -L http://127.0.0.1:12382/my-key                              # still hello, from the new leader's term
//! curl -L -X PUT http://127.0.0.1:12380/my-key --data-binary again   # writes go on (redirected to the new leader)
//! ```
//!
//! `/status` on any node names the leader (`"leader": 2`: node 2, at port 12380 + 2 - 1);
//! `/status` on the leader itself gives its process id (`"pid"`). After the `kill -9`,
//! the two survivors elect a new leader within a couple of seconds; press Enter in the
//! demo's terminal to restart the killed node, which catches up from its data directory.
//!
//! # A cluster of separate processes
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
//! 5000), `--max-http-connections` and `--http-idle-timeout-ms` (below). Logs go to
//! stderr, filtered by `RUST_LOG` (default `info`).
//!
//! # Limits
//!
//! At start the node raises its soft open-file limit to the hard one, and keeps a reserve
//! of descriptors for the raft peers (two per member), the transport's pending handshakes
//! (64) and the store. `--max-http-connections N` caps the HTTP connections open at once
//! (default: what the reserve leaves, at most 16384; a value the limit cannot hold, or a
//! limit that leaves nothing, stops the start with exit code 1). A connection over the
//! cap makes the oldest one close (at once if idle, after its request otherwise) and takes
//! its place; one that gets no place within 1 s is answered `503` with a JSON error and
//! closed. While 32 connections wait, more are left in the kernel's accept queue.
//! `--http-idle-timeout-ms` (default 10000) closes a connection that sends no request
//! head for that long, idle between requests or not. Refusals are logged once per 10 s
//! with a count. The raft port keeps at most 64 connections in their handshake (5 s at
//! most each); a newer one closes the oldest.
//!
//! # Data and identity
//!
//! The store in `--data-dir` records the cluster id, the node id and whether the node
//! founded the cluster or joined it (`--join`) at the first start; later starts with
//! another id or cluster id are refused (exit code 1), as is a store file that is empty or
//! lacks the store's header. A founding node that starts with no data, and finds that its
//! cluster has written entries already, votes only once a leader has sent it some, so
//! that a node which lost its disk cannot help elect a leader missing writes it had
//! acknowledged. To bring such a node back: `DELETE /ID`, `POST /ID`
//! with its address, then start it with `--join` on an empty directory.
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
//! is elected; 503 while that is not known yet, or while leadership is being handed
//! over). A missing key gets 404, an empty key or a request that is not HTTP 400, a value
//! over `--max-value-bytes` 413; errors have a JSON body `{"error": "...", "outcome":
//! ...}`.
//!
//! # Outcomes
//!
//! A failed request says whether it took effect:
//!
//! - `307` and `503` (`"outcome": "not applied"`): it certainly did not (no leader here, a
//!   transfer in progress, a backlog, a node stopping before it proposed); retrying is
//!   safe.
//! - `504` (`"outcome": "unknown"`): it may have (no answer within the request timeout,
//!   or the leader stopped after proposing it, say on a storage failure: the next leader
//!   may still commit it). Retrying a write may apply it twice, unless the write carries a
//!   client session (below).
//! - `409`: the request is wrong for the cluster as it is (a membership change while
//!   another is in progress, a transfer to a learner); it did not take effect.
//!
//! # Exactly-once writes
//!
//! `POST /session` opens a client session and answers 201 `{"client_id": N}`. A PUT,
//! DELETE or append (`POST /KEY?op=append`, which appends the body to the key's value)
//! with the headers `Client-Id: N` and `Client-Sequence: S` (from 1, one more per new
//! write, the same for a retry) applies at most once: a retry of the session's last write
//! is answered 204 and applies nothing, an older write gets 409. Sessions are replicated
//! and kept in snapshots; at most 10,000 are kept (the least recently used is evicted) and
//! one idle for an hour of log time (leaders stamp session entries with their clock)
//! expires; a write in an unknown or expired session gets 409 and is not applied.
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
//! to 5 s for it to catch up, then makes it a voter and answers 204. A node that has not
//! caught up by then (not started yet, as in raftexample's order) stays a learner, which
//! cannot cost the quorum: the answer is 202, and the leader promotes it once it has
//! caught up (a `DELETE` of the node meanwhile cancels that: a removal always wins). Start
//! the new node with `--join`, its id last in `--cluster`. Adding a node that is a member
//! already is refused with 409 (it would replace a running node's address); to move a
//! node, remove it and add it again.
//! `DELETE /ID` removes node ID. To delete a key made only of digits, add `?kind=key`
//! (`curl -L -X DELETE http://127.0.0.1:12380/123?kind=key`); likewise `GET
//! /status?kind=key` reads the key `status`.
//!
//! # Leadership transfer
//!
//! ```text
//! curl -L -X POST http://127.0.0.1:12380/leader --data-binary 2
//! ```
//!
//! `POST /leader` with a node id as the body hands leadership to that node, and answers
//! 204 once it leads (at once if it already does). Like writes, it is redirected to the
//! leader (307). A body that is not a node id, or names a node that is not a member, gets
//! 400; a transfer that cannot happen gets 409: the node is a learner, or it did not take
//! over within an election timeout (it is down, say), after which the old leader goes on
//! leading. Writes meanwhile get 503 for a moment; retry them.
//!
//! # TLS between peers
//!
//! Built with the `tls` feature (`cargo build -p raft-kv --features tls`), raft-kv secures
//! the raft connections between nodes with mutual TLS:
//!
//! ```text
//! raft-kv --id 1 --cluster ... --tls-ca ca.pem --tls-cert node1.pem --tls-key node1.key
//! ```
//!
//! All three flags or none. Every node needs them: a node presents its certificate (PEM,
//! valid for the host of its `--cluster` address, for server and client authentication)
//! and accepts only peers whose certificate a CA in `--tls-ca` signed; plain TCP peers are
//! refused. The HTTP API stays plain HTTP. Without the feature, the flags are refused
//! (exit code 2) rather than ignored.
//!
//! Each node has a certificate of its own, which names it with a URI subject alternative
//! name `raft://cluster/<cluster id>/node/<node id>` (`raft://cluster/1/node/2` for
//! `--id 2` with the default `--cluster-id 1`). A peer must claim the node its
//! certificate names, and a node dialled must present the certificate of the node
//! dialled; otherwise the connection is refused, with a warning in the log naming the
//! node claimed and what the certificate says. So one node's certificate cannot speak
//! for another. A node whose own certificate does not name its `--id` and `--cluster-id`
//! does not start (exit code 1). `raft-tokio/tests/data/tls/generate.sh` shows how to
//! make a CA and such certificates with `openssl`; with `--local`, `{id}` in `--tls-cert`
//! and `--tls-key` stands for each node's id (`--tls-cert node-{id}.pem`).
//!
//! Without TLS the raft port is unauthenticated: anyone who can reach it can act as any
//! node (vote, replicate entries, install snapshots). It must then be reachable only from
//! the cluster's own network.
//!
//! # Status and metrics
//!
//! `GET /status` answers JSON `{id, pid, role, term, leader, quorum_contact_age_ms,
//! commit, applied, voters, learners}` (`pid`: the node's process id;
//! `quorum_contact_age_ms`: on the leader, how long ago a quorum of voters last answered
//! it, `null` elsewhere: a leader paused or cut off shows a value above the election
//! timeout until it steps down); `GET /metrics` the node's metrics in the Prometheus text
//! format.
//!
//! # Stopping
//!
//! SIGTERM or SIGINT stops the node gracefully (a leader first hands leadership over) and
//! exits with code 0. Exit code 1: the node could not start (an unusable data directory,
//! port or certificate file) or stopped on a storage failure; 2: invalid flags.
#![forbid(unsafe_code)]

mod cli;
mod connections;
mod descriptors;
mod local;
mod machine;
mod proposals;
mod server;
mod sessions;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use raft_core::Config;
use raft_tokio::NodeOptions;
use raft_tokio::storage::RedbLogStore;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::cli::{Mode, Settings};
use crate::connections::ConnectionSlots;
use crate::machine::KeyValueStore;
use crate::proposals::Proposer;
use crate::server::Server;

/// Exit code when the node cannot start or fails while running.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let mode = match cli::parse() {
        Ok(mode) => mode,
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
    let outcome = match mode {
        Mode::Node(settings) => runtime.block_on(run(*settings)),
        Mode::Local(settings) => runtime.block_on(local::run(settings)),
    };
    match outcome {
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
    let descriptors = descriptors::raise_limit()?;
    let http_connections_max = descriptors::http_connections_max(
        descriptors.current,
        descriptors::reserved(settings.peers.len()),
        settings.http_connections_max,
    )?;
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
    // A leadership transfer is abandoned after an election timeout: one that has not
    // happened within the longest is taken as refused.
    let transfer_patience = settings.tick * config.election_ticks_max();
    let mut options = NodeOptions::new(
        config,
        settings.cluster_id,
        settings.raft_listen,
        settings.peers.clone(),
    );
    options.join = settings.join;
    options.tick = settings.tick;
    options.transport.tls = settings.tls.clone();
    let raft = raft_tokio::start(options, store, KeyValueStore::default())
        .await
        .map_err(|error| error.to_string())?;
    tracing::info!(
        id = %settings.id,
        raft = %settings.raft_listen,
        http = %url,
        data_dir = %settings.data_dir.display(),
        join = settings.join,
        tls = settings.tls.is_some(),
        file_descriptors = descriptors.current,
        file_descriptors_raised_from = descriptors.raised_from,
        http_connections_max,
        "raft-kv started"
    );

    tokio::spawn(server::advertise_when_leading(raft.clone(), url));
    let server = Arc::new(Server {
        raft: raft.clone(),
        proposer: Proposer::start(raft.clone()),
        max_value_bytes: settings.max_value_bytes,
        request_timeout: settings.request_timeout,
        transfer_patience,
        connections: ConnectionSlots::new(http_connections_max),
        idle_timeout: settings.http_idle_timeout,
        tick: settings.tick,
    });
    let serving = tokio::spawn(server.serve(listener));
    let stdin_closed = async {
        if settings.stop_on_stdin_eof {
            stdin_end().await;
        } else {
            std::future::pending::<()>().await;
        }
    };

    let outcome = tokio::select! {
        signal = stop_signal.received() => {
            tracing::info!(signal, "stopping");
            raft.shutdown().await;
            Ok(())
        }
        () = stdin_closed => {
            tracing::info!("standard input ended; stopping");
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

/// Resolves when standard input reaches its end (or cannot be read): the parent of a
/// `--local` node holds the other end, so that the node stops when the parent does, even
/// if the parent is killed.
async fn stdin_end() {
    let (ended, end) = tokio::sync::oneshot::channel::<()>();
    let reader = std::thread::Builder::new()
        .name("stdin-watch".to_string())
        .spawn(move || {
            use std::io::Read;
            let mut buffer = [0_u8; 256];
            let mut stdin = std::io::stdin();
            loop {
                match stdin.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = ended.send(());
        });
    match reader {
        // The sender dropped without sending also means the thread is gone.
        Ok(_) => {
            let _ = end.await;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot watch standard input; it will not stop this node");
            std::future::pending::<()>().await;
        }
    }
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
    /// SIGXFSZ, caught (and otherwise ignored) for as long as the node runs: a write past
    /// the file size limit then fails with an error, which stops the node as a storage
    /// failure (its pending writes answered as of unknown outcome), instead of the signal
    /// killing the process, which would answer nothing.
    #[cfg(unix)]
    _file_size_exceeded: tokio::signal::unix::Signal,
}

/// SIGXFSZ: the same number on Linux, the BSDs and macOS.
#[cfg(unix)]
const SIGXFSZ: i32 = 25;

impl StopSignal {
    fn install() -> std::io::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
                _file_size_exceeded: signal(SignalKind::from_raw(SIGXFSZ))?,
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
