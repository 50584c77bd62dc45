//! The command line: raftexample's flags, checked into [`Settings`] for one node or
//! [`LocalSettings`] for the `--local` demo.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;
use raft_core::NodeId;
use raft_tokio::transport::{AddressBook, TlsFiles};

/// Exit code for invalid flags.
pub(crate) const EXIT_USAGE: u8 = 2;

/// The largest `--max-value-bytes`.
const VALUE_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// The HTTP port of a node when `--port` is not given.
const PORT_DEFAULT: u16 = 9121;

/// The first node's HTTP port in a `--local` cluster when `--port` is not given.
const LOCAL_PORT_DEFAULT: u16 = 12380;

/// In a `--local` cluster, node i's raft port is this far above its HTTP port.
pub(crate) const LOCAL_PEER_PORT_OFFSET: u16 = 10;

/// The most nodes `--local` starts: their HTTP and raft ports must not overlap.
const LOCAL_NODES_MAX: u16 = LOCAL_PEER_PORT_OFFSET - 1;

/// What stands for each node's id in the `--tls-*` paths of `--local`.
const NODE_ID_PLACEHOLDER: &str = "{id}";

/// Whether this build has the `tls` feature (mutual TLS between peers).
const TLS_BUILT: bool = cfg!(feature = "tls");

/// A replicated key-value store over HTTP, on Raft (the API and flags of etcd's
/// raftexample).
#[derive(Debug, Parser)]
#[command(name = "raft-kv", version)]
struct Cli {
    /// Run a local demo cluster instead of one node: start N nodes (this program, as
    /// child processes) on 127.0.0.1, node i with HTTP port --port + i - 1 and raft port
    /// --port + 10 + i - 1, data in --data-dir/node-i; print their URLs and curl commands
    /// to try; stop them on Ctrl-C.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=i64::from(LOCAL_NODES_MAX)),
        conflicts_with_all = ["id", "cluster", "join", "host", "advertise_url", "stop_on_stdin_eof"]
    )]
    local: Option<u16>,
    /// This node's id: its 1-based position in --cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    id: u64,
    /// The raft peer addresses of the nodes, comma-separated, in node id order
    /// (`http://host:port` or `host:port`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9021",
        value_parser = parse_peer_address
    )]
    cluster: Vec<String>,
    /// The HTTP port for clients (0 picks a free one) [default: 9121; with --local, the
    /// first node's, 12380].
    #[arg(long)]
    port: Option<u16>,
    /// The address the HTTP server binds.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Join a running cluster as a new member (after `POST /ID` on it); the node's id
    /// must be the last one in --cluster.
    #[arg(long)]
    join: bool,
    /// Where the node keeps its log and snapshots [default: raft-kv-<id>; with --local,
    /// the folder of the nodes' data directories and logs, raft-kv-local].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Peers of another cluster id are refused.
    #[arg(long, default_value_t = 1)]
    cluster_id: u64,
    /// The length of a raft tick in milliseconds (elections after 10 to 20 ticks,
    /// heartbeats every 2).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    tick_ms: u64,
    /// The largest value a PUT accepts, in bytes (larger ones get 413); at most 8 MiB.
    // The cap keeps every entry well within raft-tokio's 16 MiB peer frames: a larger one
    // could never be replicated.
    #[arg(long, default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(0..=VALUE_BYTES_MAX))]
    max_value_bytes: u64,
    /// How long a request waits for raft before it gets 504, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_ms: u64,
    /// The most HTTP connections open at once; a new one over it makes the oldest close
    /// (at once if idle, after its request otherwise), and gets 503 if no room is made
    /// within 1 s [default: the file descriptor limit less what the raft peers, the
    /// transport and the store need, at most 16384].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_http_connections: Option<u64>,
    /// How long an HTTP connection may stay idle, or take to send a request's head,
    /// before it is closed, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    http_idle_timeout_ms: u64,
    /// The URL clients reach this node at, which followers redirect writes to when it
    /// leads [default: http://<host>:<port>].
    #[arg(long, value_name = "URL")]
    advertise_url: Option<String>,
    /// Mutual TLS between peers: the CA certificates (PEM) a peer's certificate must come
    /// from. Needs --tls-cert and --tls-key too, and raft-kv built with the `tls` feature.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS between peers: this node's certificate (PEM), valid for the host of its
    /// raft address, for both server and client authentication, and naming this node as
    /// raft://cluster/<cluster id>/node/<id>. With --local, {id} stands for each node's id.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// Mutual TLS between peers: the private key of --tls-cert (PEM). With --local, {id}
    /// stands for each node's id.
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Stop gracefully when standard input reaches its end: how a --local cluster's nodes
    /// never outlive it, however it ends.
    #[arg(long, hide = true)]
    stop_on_stdin_eof: bool,
}

/// What the command line asks for.
#[derive(Clone, Debug)]
pub(crate) enum Mode {
    /// Run one node (boxed: the settings are large, and built once).
    Node(Box<Settings>),
    /// Run a local demo cluster of child processes.
    Local(LocalSettings),
}

/// Everything the server needs from the command line, checked.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// This node.
    pub(crate) id: NodeId,
    /// The initial members' raft addresses (`host:port`), this node included.
    pub(crate) peers: AddressBook,
    /// Where this node accepts raft peers.
    pub(crate) raft_listen: SocketAddr,
    /// Whether to join a running cluster.
    pub(crate) join: bool,
    /// The HTTP server's host, as given.
    pub(crate) host: String,
    /// The HTTP port.
    pub(crate) port: u16,
    /// The data directory.
    pub(crate) data_dir: PathBuf,
    /// The cluster id.
    pub(crate) cluster_id: u64,
    /// One raft tick.
    pub(crate) tick: Duration,
    /// The largest value accepted.
    pub(crate) max_value_bytes: usize,
    /// The per-request time limit.
    pub(crate) request_timeout: Duration,
    /// The most HTTP connections open at once, when given (otherwise derived from the
    /// file descriptor limit).
    pub(crate) http_connections_max: Option<usize>,
    /// How long an HTTP connection may stay idle.
    pub(crate) http_idle_timeout: Duration,
    /// The URL to advertise, when given.
    pub(crate) advertise_url: Option<String>,
    /// Mutual TLS between peers, when asked for.
    pub(crate) tls: Option<TlsFiles>,
    /// Whether to stop when standard input ends.
    pub(crate) stop_on_stdin_eof: bool,
}

/// A `--local` demo cluster, checked.
#[derive(Clone, Debug)]
pub(crate) struct LocalSettings {
    /// How many nodes.
    pub(crate) nodes: u16,
    /// The first node's HTTP port.
    pub(crate) port: u16,
    /// The folder of the nodes' data directories and logs.
    pub(crate) directory: PathBuf,
    /// Flags every node gets, as given (cluster id, tick, limits, TLS), but for `{id}`,
    /// which stands for each node's id.
    pub(crate) shared_flags: Vec<OsString>,
}

impl LocalSettings {
    /// Node `id`'s HTTP port (ids from 1).
    pub(crate) fn http_port(&self, id: u16) -> u16 {
        self.port + id - 1
    }

    /// Node `id`'s raft port.
    pub(crate) fn raft_port(&self, id: u16) -> u16 {
        self.port + LOCAL_PEER_PORT_OFFSET + id - 1
    }

    /// The `--cluster` value of every node.
    pub(crate) fn cluster(&self) -> String {
        (1..=self.nodes)
            .map(|id| format!("http://127.0.0.1:{}", self.raft_port(id)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s data directory.
    pub(crate) fn data_dir(&self, id: u16) -> PathBuf {
        self.directory.join(format!("node-{id}"))
    }

    /// Node `id`'s log file (its stderr).
    pub(crate) fn log(&self, id: u16) -> PathBuf {
        self.directory.join(format!("node-{id}.log"))
    }

    /// The arguments that start node `id` (after the program's name).
    pub(crate) fn node_arguments(&self, id: u16) -> Vec<OsString> {
        let mut arguments: Vec<OsString> = vec![
            "--id".into(),
            id.to_string().into(),
            "--cluster".into(),
            self.cluster().into(),
            "--port".into(),
            self.http_port(id).to_string().into(),
            "--data-dir".into(),
            self.data_dir(id).into_os_string(),
        ];
        // Each node's certificate names it, so each needs its own files: `{id}` in a path
        // tells where they are.
        arguments.extend(self.shared_flags.iter().map(|flag| match flag.to_str() {
            Some(text) if text.contains(NODE_ID_PLACEHOLDER) => {
                text.replace(NODE_ID_PLACEHOLDER, &id.to_string()).into()
            }
            _ => flag.clone(),
        }));
        arguments
    }
}

/// Parses and checks the command line. Help and version are printed here (exit code 0);
/// any error is printed in one line (exit code 2).
pub(crate) fn parse() -> Result<Mode, ExitCode> {
    let cli = Cli::try_parse().map_err(|error| clap_error(&error))?;
    mode(cli).map_err(|message| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_USAGE)
    })
}

fn mode(cli: Cli) -> Result<Mode, String> {
    match cli.local {
        Some(nodes) => local_settings(cli, nodes).map(Mode::Local),
        None => settings(cli).map(|settings| Mode::Node(Box::new(settings))),
    }
}

/// The TLS files, when all three flags are given; an error when only some are, or when
/// this build cannot use them.
fn tls_files(cli: &Cli) -> Result<Option<TlsFiles>, String> {
    let files = match (&cli.tls_ca, &cli.tls_cert, &cli.tls_key) {
        (None, None, None) => return Ok(None),
        (Some(ca), Some(certificate), Some(key)) => TlsFiles {
            ca_certificates: ca.clone(),
            certificate: certificate.clone(),
            private_key: key.clone(),
        },
        (ca, certificate, key) => {
            let missing: Vec<&str> = [
                (ca.is_none(), "--tls-ca"),
                (certificate.is_none(), "--tls-cert"),
                (key.is_none(), "--tls-key"),
            ]
            .into_iter()
            .filter_map(|(missing, flag)| missing.then_some(flag))
            .collect();
            return Err(format!(
                "--tls-ca, --tls-cert and --tls-key go together; missing: {}",
                missing.join(", ")
            ));
        }
    };
    if !TLS_BUILT {
        return Err(
            "--tls-ca, --tls-cert and --tls-key need raft-kv built with the `tls` feature \
             (cargo build -p raft-kv --features tls)"
                .to_string(),
        );
    }
    Ok(Some(files))
}

fn local_settings(cli: Cli, nodes: u16) -> Result<LocalSettings, String> {
    let port = cli.port.unwrap_or(LOCAL_PORT_DEFAULT);
    if port == 0 {
        return Err("--local needs the first node's HTTP port in --port, not 0".to_string());
    }
    let last = u32::from(port) + u32::from(LOCAL_PEER_PORT_OFFSET) + u32::from(nodes) - 1;
    if last > u32::from(u16::MAX) {
        return Err(format!(
            "--port {port} leaves no room for {nodes} node(s): --local uses ports {port} to {last}"
        ));
    }
    let tls = tls_files(&cli)?;
    let mut shared_flags: Vec<OsString> = vec![
        "--cluster-id".into(),
        cli.cluster_id.to_string().into(),
        "--tick-ms".into(),
        cli.tick_ms.to_string().into(),
        "--max-value-bytes".into(),
        cli.max_value_bytes.to_string().into(),
        "--request-timeout-ms".into(),
        cli.request_timeout_ms.to_string().into(),
        "--http-idle-timeout-ms".into(),
        cli.http_idle_timeout_ms.to_string().into(),
    ];
    if let Some(connections_max) = cli.max_http_connections {
        shared_flags.push("--max-http-connections".into());
        shared_flags.push(connections_max.to_string().into());
    }
    if let Some(tls) = tls {
        // Absolute, so that they do not depend on where a node runs from.
        for (flag, path) in [
            ("--tls-ca", &tls.ca_certificates),
            ("--tls-cert", &tls.certificate),
            ("--tls-key", &tls.private_key),
        ] {
            shared_flags.push(flag.into());
            shared_flags.push(absolute(path).into_os_string());
        }
    }
    Ok(LocalSettings {
        nodes,
        port,
        directory: cli
            .data_dir
            .unwrap_or_else(|| PathBuf::from("raft-kv-local")),
        shared_flags,
    })
}

/// `path`, made absolute against the current directory when it can be.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Help and version go to stdout with code 0; every error is reported in its first line
/// (clap's message names the flag and the problem), with code 2.
fn clap_error(error: &clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Printing fails only if the stream is closed; the code still tells.
            let _ = error.print();
            ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE))
        }
        _ => {
            let rendered = error.to_string();
            let line = rendered
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("error: invalid arguments");
            eprintln!("{line}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn settings(cli: Cli) -> Result<Settings, String> {
    let members = cli.cluster.len() as u64;
    if cli.id > members {
        return Err(format!(
            "--id {} is not in --cluster, which lists {members} address(es)",
            cli.id
        ));
    }
    if cli.join && cli.id != members {
        return Err(format!(
            "with --join, this node's id ({}) must be the last in --cluster ({members})",
            cli.id
        ));
    }
    if cli.join && members < 2 {
        return Err("--join needs the running cluster's addresses in --cluster".to_string());
    }
    let peers: AddressBook = (1..).map(NodeId).zip(cli.cluster.iter().cloned()).collect();
    let own = &cli.cluster[(cli.id - 1) as usize];
    let raft_listen = own
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve this node's raft address {own}: {error}"))?
        .next()
        .ok_or_else(|| format!("this node's raft address {own} resolves to nothing"))?;
    let advertise_url = match cli.advertise_url {
        Some(ref url) => Some(parse_http_url(url)?),
        None => None,
    };
    let tls = tls_files(&cli)?;
    Ok(Settings {
        id: NodeId(cli.id),
        peers,
        raft_listen,
        join: cli.join,
        host: cli.host,
        port: cli.port.unwrap_or(PORT_DEFAULT),
        data_dir: cli
            .data_dir
            .unwrap_or_else(|| PathBuf::from(format!("raft-kv-{}", cli.id))),
        cluster_id: cli.cluster_id,
        tick: Duration::from_millis(cli.tick_ms),
        // At most 8 MiB, so the conversion cannot fail.
        max_value_bytes: usize::try_from(cli.max_value_bytes).unwrap_or(usize::MAX),
        request_timeout: Duration::from_millis(cli.request_timeout_ms),
        // At most a million, so the conversion cannot fail.
        http_connections_max: cli
            .max_http_connections
            .map(|connections_max| usize::try_from(connections_max).unwrap_or(usize::MAX)),
        http_idle_timeout: Duration::from_millis(cli.http_idle_timeout_ms),
        advertise_url,
        tls,
        stop_on_stdin_eof: cli.stop_on_stdin_eof,
    })
}

/// Checks a raft peer address, `http://host:port` or `host:port` (a trailing `/` is
/// allowed), and returns it as `host:port`, the form the transport dials.
pub(crate) fn parse_peer_address(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let without_scheme = trimmed.strip_prefix("http://").unwrap_or(trimmed);
    let address = without_scheme.strip_suffix('/').unwrap_or(without_scheme);
    let invalid = |why: &str| {
        format!("invalid peer address {text:?}: {why} (expected host:port or http://host:port)")
    };
    if address.contains("://") {
        return Err(invalid("only http:// is accepted"));
    }
    if address
        .chars()
        .any(|character| character.is_whitespace() || character.is_control() || character == '/')
    {
        return Err(invalid("unexpected characters"));
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(invalid("no port"));
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(address.to_string()),
        _ => Err(invalid("the port is not a number from 1 to 65535")),
    }
}

/// Checks an HTTP URL to advertise: `http://host:port`, without a path.
fn parse_http_url(text: &str) -> Result<String, String> {
    let Some(rest) = text.strip_prefix("http://") else {
        return Err(format!(
            "invalid --advertise-url {text:?}: expected http://host:port"
        ));
    };
    let address = parse_peer_address(rest)
        .map_err(|_| format!("invalid --advertise-url {text:?}: expected http://host:port"))?;
    Ok(format!("http://{address}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Both raftexample's URLs and plain addresses are accepted; junk is refused.
    #[test]
    fn peer_addresses() {
        assert_eq!(
            parse_peer_address("http://127.0.0.1:12379"),
            Ok("127.0.0.1:12379".to_string())
        );
        assert_eq!(
            parse_peer_address("localhost:1/"),
            Ok("localhost:1".to_string())
        );
        assert_eq!(parse_peer_address("[::1]:7"), Ok("[::1]:7".to_string()));
        for bad in [
            "",
            "host",
            ":80",
            "host:0",
            "host:65536",
            "host:port",
            "https://host:1",
            "http://host:1/path",
            "ho st:1",
        ] {
            assert!(parse_peer_address(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn parse_mode(arguments: &[&str]) -> Result<Mode, String> {
        let cli = Cli::try_parse_from(arguments).map_err(|error| error.to_string())?;
        mode(cli)
    }

    fn parse_from(arguments: &[&str]) -> Result<Settings, String> {
        match parse_mode(arguments)? {
            Mode::Node(settings) => Ok(*settings),
            Mode::Local(_) => Err("a local cluster".to_string()),
        }
    }

    fn parse_local(arguments: &[&str]) -> Result<LocalSettings, String> {
        match parse_mode(arguments)? {
            Mode::Local(settings) => Ok(settings),
            Mode::Node(_) => Err("one node".to_string()),
        }
    }

    // `--local N`: ports from --port (default 12380) for HTTP and 10 above for raft, data
    // under one folder; flags that name one node do not go with it.
    #[test]
    fn local_clusters() {
        let local = parse_local(&["raft-kv", "--local", "3"]).expect("valid flags");
        assert_eq!((local.nodes, local.port), (3, 12380));
        assert_eq!(local.http_port(3), 12382);
        assert_eq!(local.raft_port(1), 12390);
        assert_eq!(
            local.cluster(),
            "http://127.0.0.1:12390,http://127.0.0.1:12391,http://127.0.0.1:12392"
        );
        assert_eq!(local.data_dir(2), PathBuf::from("raft-kv-local/node-2"));
        let arguments = local.node_arguments(2);
        assert!(arguments.windows(2).any(|pair| pair == ["--port", "12381"]));
        assert!(
            arguments
                .windows(2)
                .any(|pair| pair == ["--tick-ms", "100"])
        );

        // Each node its own certificate: `{id}` in the TLS paths is its id.
        if TLS_BUILT {
            let local = parse_local(&[
                "raft-kv",
                "--local",
                "3",
                "--tls-ca",
                "/tls/ca.pem",
                "--tls-cert",
                "/tls/node-{id}.pem",
                "--tls-key",
                "/tls/node-{id}.key",
            ])
            .expect("valid flags");
            let arguments = local.node_arguments(2);
            assert!(
                arguments
                    .windows(2)
                    .any(|pair| pair == ["--tls-cert", "/tls/node-2.pem"])
            );
            assert!(
                arguments
                    .windows(2)
                    .any(|pair| pair == ["--tls-key", "/tls/node-2.key"])
            );
            assert!(
                arguments
                    .windows(2)
                    .any(|pair| pair == ["--tls-ca", "/tls/ca.pem"])
            );
        }

        let local = parse_local(&[
            "raft-kv",
            "--local",
            "1",
            "--port",
            "4000",
            "--data-dir",
            "demo",
            "--tick-ms",
            "20",
        ])
        .expect("valid flags");
        assert_eq!(local.data_dir(1), PathBuf::from("demo/node-1"));
        assert!(
            local
                .node_arguments(1)
                .windows(2)
                .any(|pair| pair == ["--tick-ms", "20"])
        );

        for bad in [
            &["raft-kv", "--local", "0"][..],
            &["raft-kv", "--local", "10"],
            &["raft-kv", "--local", "3", "--id", "2"],
            &["raft-kv", "--local", "3", "--cluster", "127.0.0.1:1"],
            &["raft-kv", "--local", "3", "--join"],
            &["raft-kv", "--local", "3", "--host", "0.0.0.0"],
            &["raft-kv", "--local", "3", "--port", "0"],
            &["raft-kv", "--local", "3", "--port", "65530"],
        ] {
            assert!(parse_mode(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_local(&["raft-kv", "--local", "3", "--port", "65523"]).is_ok());
    }

    // The three TLS flags go together, and only into a build with the `tls` feature.
    #[test]
    fn tls_flags() {
        let cluster = "127.0.0.1:1";
        let all = [
            "raft-kv",
            "--cluster",
            cluster,
            "--tls-ca",
            "ca.pem",
            "--tls-cert",
            "node.pem",
            "--tls-key",
            "node.key",
        ];
        if TLS_BUILT {
            let settings = parse_from(&all).expect("valid flags");
            let tls = settings.tls.expect("TLS files");
            assert_eq!(tls.private_key, PathBuf::from("node.key"));
        } else {
            let message = parse_from(&all).expect_err("no TLS in this build");
            assert!(message.contains("`tls` feature"), "{message}");
        }
        let message = parse_from(&all[..7]).expect_err("--tls-key is missing");
        assert!(message.contains("missing: --tls-key"), "{message}");
        let settings = parse_from(&["raft-kv", "--cluster", cluster]).expect("valid flags");
        assert!(settings.tls.is_none());
        assert_eq!(settings.port, 9121);
    }

    // The id must name a listed node, and a joining node must be the last one.
    #[test]
    fn ids_and_join() {
        let cluster = "http://127.0.0.1:1,127.0.0.1:2,127.0.0.1:3";
        let settings =
            parse_from(&["raft-kv", "--id", "2", "--cluster", cluster]).expect("valid flags");
        assert_eq!(settings.raft_listen.port(), 2);
        assert_eq!(settings.peers.len(), 3);
        assert_eq!(settings.data_dir, PathBuf::from("raft-kv-2"));
        assert!(parse_from(&["raft-kv", "--id", "4", "--cluster", cluster]).is_err());
        assert!(parse_from(&["raft-kv", "--id", "0", "--cluster", cluster]).is_err());
        assert!(parse_from(&["raft-kv", "--id", "2", "--join", "--cluster", cluster]).is_err());
        assert!(parse_from(&["raft-kv", "--id", "3", "--join", "--cluster", cluster]).is_ok());
    }
}
