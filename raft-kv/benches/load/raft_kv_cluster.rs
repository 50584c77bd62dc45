//! A three-node `raft-kv` cluster on 127.0.0.1, started from a release binary, and the
//! write the load generator sends it.
//!
//! Shared, as source, by raft-kv's load bench and by `compare/server` (see
//! `generator.rs`); both include it next to `generator` and `system`, under those names.
//! Besides them it needs `tempfile` and `serde_json`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::generator::{self, Request};
use crate::system::{self, ServerProcess};

/// Nodes in the cluster.
pub(crate) const NODES: usize = 3;

/// Keys each client cycles through: enough that writes are not all to one key, few
/// enough that the state machine (and its snapshots) stay small however long the run.
pub(crate) const KEYS_PER_CLIENT: u64 = 1024;

/// The three servers, with their default flags (100 ms ticks, redb storage that fsyncs
/// every batch of writes), and their temporary directory. Dropping it kills the servers
/// before the directory is removed (fields drop in declaration order).
pub(crate) struct RaftKvCluster {
    /// The servers, node 1 first.
    pub(crate) servers: Vec<ServerProcess>,
    /// Their HTTP ports, by position.
    pub(crate) http_ports: Vec<u16>,
    directory: TempDir,
}

impl RaftKvCluster {
    /// Starts the servers, each with a data directory in a fresh temporary directory
    /// (`TMPDIR` chooses where), and waits until each answers `GET /status`.
    pub(crate) fn start(binary: &Path) -> RaftKvCluster {
        let directory = tempfile::Builder::new()
            .prefix("raft-kv-load-")
            .tempdir()
            .expect("a temporary directory");
        let reserved = system::reserve_ports(2 * NODES);
        let ports: Vec<u16> = reserved.iter().map(system::port_of).collect();
        let cluster_flag = ports[..NODES]
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        // Released just before the servers bind them, leaving other processes the
        // shortest time to take them.
        drop(reserved);
        let http_ports = ports[NODES..].to_vec();
        let mut servers = Vec::new();
        for (position, http_port) in http_ports.iter().enumerate() {
            let id = position + 1;
            let mut command = Command::new(binary);
            command
                .arg("--id")
                .arg(id.to_string())
                .arg("--cluster")
                .arg(&cluster_flag)
                .arg("--port")
                .arg(http_port.to_string())
                .arg("--data-dir")
                .arg(directory.path().join(format!("node-{id}")))
                // The server stops when its standard input ends: when this process
                // exits, however it exits, the pipe closes and no server is left behind.
                .arg("--stop-on-stdin-eof")
                .env("RUST_LOG", "info")
                .stdin(Stdio::piped());
            let log = directory.path().join(format!("node-{id}.log"));
            servers.push(ServerProcess::spawn(
                format!("raft-kv node {id}"),
                &mut command,
                log,
            ));
        }
        let mut cluster = RaftKvCluster {
            servers,
            http_ports,
            directory,
        };
        for position in 0..NODES {
            let port = cluster.http_ports[position];
            system::wait_until(
                &format!("raft-kv node {} serves HTTP", position + 1),
                &mut cluster.servers,
                || generator::get(port, "/status").map(|_| ()),
            );
        }
        cluster
    }

    /// The directory holding the servers' data directories and logs.
    pub(crate) fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Waits until one server leads and the others name it, and a write through it
    /// succeeds; returns its position.
    pub(crate) fn leader(&mut self) -> usize {
        let ports = self.http_ports.clone();
        let leader = system::wait_until("an agreed raft-kv leader", &mut self.servers, || {
            let mut leading = None;
            let mut named = Vec::new();
            for (position, port) in ports.iter().enumerate() {
                let reply = generator::get(*port, "/status")?;
                let document: serde_json::Value = serde_json::from_slice(&reply.body)
                    .map_err(|error| format!("node {}: /status: {error}", position + 1))?;
                if document["role"] == "leader" {
                    leading = Some(position);
                }
                named.push(document["leader"].as_u64());
            }
            let position = leading.ok_or_else(|| format!("no leader; named: {named:?}"))?;
            let id = position as u64 + 1;
            if named.iter().all(|leader| *leader == Some(id)) {
                Ok(position)
            } else {
                Err(format!("node {id} leads; the others name {named:?}"))
            }
        });
        // A new leader may still be committing its first entries (the entry of its term,
        // its advertised URL): one write before any clock starts.
        let mut request = Request::new("PUT");
        put_request(b"ready", 0, 0, &mut request);
        let port = ports[leader];
        system::wait_until("a first raft-kv write", &mut self.servers, || {
            generator::send(&mut None, &mut port.clone(), &request).map(|_| ())
        });
        leader
    }

    /// The Prometheus metrics of the server at `position`.
    pub(crate) fn metrics(&self, position: usize) -> String {
        generator::get(self.http_ports[position], "/metrics")
            .map(|reply| String::from_utf8_lossy(&reply.body).into_owned())
            .unwrap_or_else(|error| panic!("raft-kv node {}'s metrics: {error}", position + 1))
    }
}

/// Fills in a client's next write of `value`: `PUT /load-<client>-<n>`, where n cycles
/// through [`KEYS_PER_CLIENT`] keys.
pub(crate) fn put_request(value: &[u8], client: usize, sequence: u64, request: &mut Request) {
    request.method = "PUT";
    request.content_type = None;
    // Writing into a String cannot fail.
    let _ = write!(
        request.target,
        "/load-{client}-{}",
        sequence % KEYS_PER_CLIENT
    );
    request.body.extend_from_slice(value);
}
