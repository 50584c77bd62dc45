//! The command line: raftexample's flags, checked into [`Settings`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;
use raft_core::NodeId;
use raft_tokio::transport::AddressBook;

/// Exit code for invalid flags.
pub(crate) const EXIT_USAGE: u8 = 2;

/// The largest `--max-value-bytes`.
const VALUE_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// A replicated key-value store over HTTP, on Raft (the API and flags of etcd's
/// raftexample).
#[derive(Debug, Parser)]
#[command(name = "raft-kv", version)]
struct Cli {
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
    /// The HTTP port for clients (0 picks a free one).
    #[arg(long, default_value_t = 9121)]
    port: u16,
    /// The address the HTTP server binds.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Join a running cluster as a new member (after `POST /ID` on it); the node's id
    /// must be the last one in --cluster.
    #[arg(long)]
    join: bool,
    /// Where the node keeps its log and snapshots [default: raft-kv-<id>].
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
    /// The URL clients reach this node at, which followers redirect writes to when it
    /// leads [default: http://<host>:<port>].
    #[arg(long, value_name = "URL")]
    advertise_url: Option<String>,
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
    /// The URL to advertise, when given.
    pub(crate) advertise_url: Option<String>,
}

/// Parses and checks the command line. Help and version are printed here (exit code 0);
/// any error is printed in one line (exit code 2).
pub(crate) fn parse() -> Result<Settings, ExitCode> {
    let cli = Cli::try_parse().map_err(|error| clap_error(&error))?;
    settings(cli).map_err(|message| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_USAGE)
    })
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
        Some(url) => Some(parse_http_url(&url)?),
        None => None,
    };
    Ok(Settings {
        id: NodeId(cli.id),
        peers,
        raft_listen,
        join: cli.join,
        host: cli.host,
        port: cli.port,
        data_dir: cli
            .data_dir
            .unwrap_or_else(|| PathBuf::from(format!("raft-kv-{}", cli.id))),
        cluster_id: cli.cluster_id,
        tick: Duration::from_millis(cli.tick_ms),
        // At most 8 MiB, so the conversion cannot fail.
        max_value_bytes: usize::try_from(cli.max_value_bytes).unwrap_or(usize::MAX),
        request_timeout: Duration::from_millis(cli.request_timeout_ms),
        advertise_url,
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

    fn parse_from(arguments: &[&str]) -> Result<Settings, String> {
        let cli = Cli::try_parse_from(arguments).map_err(|error| error.to_string())?;
        settings(cli)
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
