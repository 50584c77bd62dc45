//! A three-member etcd cluster on 127.0.0.1 with its default settings, and the write the
//! load generator sends to its v3 JSON gateway.

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tempfile::TempDir;

use crate::generator::{self, Request};
use crate::raft_kv_cluster::{KEYS_PER_CLIENT, NODES};
use crate::system::{self, ServerProcess};

/// The longest key the load writes (`load-<client>-<n>`, with n below
/// [`KEYS_PER_CLIENT`]), with room to spare.
const KEY_BYTES_MAX: usize = 64;

/// The three members and their temporary directory. Dropping it kills the members
/// before the directory is removed (fields drop in declaration order).
pub(crate) struct EtcdCluster {
    /// The members, the first one first.
    pub(crate) servers: Vec<ServerProcess>,
    /// Their client ports (gRPC, the JSON gateway and /metrics share one), by position.
    pub(crate) client_ports: Vec<u16>,
    directory: TempDir,
}

impl EtcdCluster {
    /// Starts the members with `etcd` (a path, or a name looked up on PATH), each with a
    /// data directory in a fresh temporary directory, and waits until each answers
    /// `GET /health`.
    ///
    /// Every setting that affects the measurement is etcd's default: the write-ahead log
    /// is fsynced before a member acknowledges an entry, heartbeats every 100 ms,
    /// elections after 1 s, a snapshot every 100,000 entries. The logger is zap (the
    /// default one is deprecated in 3.4), at its default level, into a file per member.
    pub(crate) fn start(etcd: &Path) -> EtcdCluster {
        let directory = tempfile::Builder::new()
            .prefix("etcd-load-")
            .tempdir()
            .expect("a temporary directory");
        let reserved = system::reserve_ports(2 * NODES);
        let ports: Vec<u16> = reserved.iter().map(system::port_of).collect();
        let (peer_ports, client_ports) = ports.split_at(NODES);
        let initial_cluster = peer_ports
            .iter()
            .enumerate()
            .map(|(position, port)| format!("member-{}=http://127.0.0.1:{port}", position + 1))
            .collect::<Vec<_>>()
            .join(",");
        // A token of its own, so that these members could never join another test's.
        let token = format!("compare-server-{:x}", system::random());
        drop(reserved);
        let mut servers = Vec::new();
        for position in 0..NODES {
            let name = format!("member-{}", position + 1);
            let peer_url = format!("http://127.0.0.1:{}", peer_ports[position]);
            let client_url = format!("http://127.0.0.1:{}", client_ports[position]);
            let mut command = Command::new(etcd);
            command
                .arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(directory.path().join(&name))
                .arg("--listen-peer-urls")
                .arg(&peer_url)
                .arg("--initial-advertise-peer-urls")
                .arg(&peer_url)
                .arg("--listen-client-urls")
                .arg(&client_url)
                .arg("--advertise-client-urls")
                .arg(&client_url)
                .arg("--initial-cluster")
                .arg(&initial_cluster)
                .arg("--initial-cluster-state")
                .arg("new")
                .arg("--initial-cluster-token")
                .arg(&token)
                .arg("--logger")
                .arg("zap")
                .arg("--log-outputs")
                .arg("stderr")
                .stdin(Stdio::null());
            let log = directory.path().join(format!("{name}.log"));
            servers.push(ServerProcess::spawn(
                format!("etcd {name}"),
                &mut command,
                log,
            ));
        }
        let mut cluster = EtcdCluster {
            servers,
            client_ports: client_ports.to_vec(),
            directory,
        };
        for position in 0..NODES {
            let port = cluster.client_ports[position];
            system::wait_until(
                &format!("etcd member-{} is healthy", position + 1),
                &mut cluster.servers,
                || generator::get(port, "/health").map(|_| ()),
            );
        }
        cluster
    }

    /// The directory holding the members' data directories and logs.
    pub(crate) fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Waits until every member names the same leader, one of them, and a write through
    /// it succeeds; returns its position.
    pub(crate) fn leader(&mut self) -> usize {
        let ports = self.client_ports.clone();
        let leader = system::wait_until("an agreed etcd leader", &mut self.servers, || {
            let mut members = Vec::new();
            let mut named = Vec::new();
            for port in &ports {
                let reply = generator::request_once(
                    *port,
                    "POST",
                    "/v3/maintenance/status",
                    Some("application/json"),
                    b"{}",
                )?;
                let document: serde_json::Value = serde_json::from_slice(&reply.body)
                    .map_err(|error| format!(":{port}: maintenance status: {error}"))?;
                // The gateway writes 64-bit ids as strings.
                members.push(document["header"]["member_id"].as_str().map(str::to_owned));
                named.push(document["leader"].as_str().map(str::to_owned));
            }
            let first = named[0].clone().ok_or("no leader yet")?;
            if named
                .iter()
                .any(|leader| leader.as_deref() != Some(first.as_str()))
            {
                return Err(format!("the members name different leaders: {named:?}"));
            }
            members
                .iter()
                .position(|member| member.as_deref() == Some(first.as_str()))
                .ok_or_else(|| format!("the leader {first} is none of {members:?}"))
        });
        let mut request = Request::new("POST");
        put_request(&BASE64.encode(b"ready"), 0, 0, &mut request);
        let port = ports[leader];
        system::wait_until("a first etcd write", &mut self.servers, || {
            generator::send(&mut None, &mut port.clone(), &request).map(|_| ())
        });
        leader
    }

    /// The Prometheus metrics of the member at `position`.
    pub(crate) fn metrics(&self, position: usize) -> String {
        generator::get(self.client_ports[position], "/metrics")
            .map(|reply| String::from_utf8_lossy(&reply.body).into_owned())
            .unwrap_or_else(|error| panic!("etcd member-{}'s metrics: {error}", position + 1))
    }
}

/// Fills in a client's next write: `POST /v3/kv/put` of `{"key": K, "value": V}`, K the
/// base64 of `load-<client>-<n>` (the keys raft-kv's load writes) and V `value_base64`.
pub(crate) fn put_request(value_base64: &str, client: usize, sequence: u64, request: &mut Request) {
    use std::io::Write as _;
    request.method = "POST";
    request.content_type = Some("application/json");
    request.target.push_str("/v3/kv/put");
    let mut key = [0u8; KEY_BYTES_MAX];
    let mut cursor = std::io::Cursor::new(&mut key[..]);
    write!(cursor, "load-{client}-{}", sequence % KEYS_PER_CLIENT)
        .expect("a load key fits in KEY_BYTES_MAX bytes");
    let key_length = cursor.position() as usize;
    request.body.extend_from_slice(br#"{"key":""#);
    let start = request.body.len();
    request.body.resize(
        start + base64::encoded_len(key_length, true).unwrap_or(0),
        0,
    );
    let written = BASE64
        .encode_slice(&key[..key_length], &mut request.body[start..])
        .expect("the body was sized for the encoded key");
    request.body.truncate(start + written);
    request.body.extend_from_slice(br#"","value":""#);
    request.body.extend_from_slice(value_base64.as_bytes());
    request.body.extend_from_slice(br#""}"#);
}
