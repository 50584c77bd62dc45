//! File descriptors: the soft limit is raised to the hard one at start, and HTTP clients
//! get only what is left once the raft peers, the transport and the store have their
//! share, so that no number of client connections can starve the cluster's own traffic.

use raft_tokio::transport::HANDSHAKES_PENDING_DEFAULT;

use crate::connections::ConnectionSlots;

/// Descriptors the process needs whatever its peers: standard streams, the runtime's
/// (epoll, wakers, blocking threads' files), the store's file and its directory, the two
/// listeners, and a margin.
const DESCRIPTORS_BASE: u64 = 64;

/// Descriptors per peer: a connection each way.
const DESCRIPTORS_PER_PEER: u64 = 2;

/// The highest default for `--max-http-connections`: each connection costs memory too,
/// and a hard limit of a million descriptors should not invite a million clients.
const HTTP_CONNECTIONS_DEFAULT_MAX: u64 = 16_384;

/// The descriptor limit, after raising it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    /// The soft limit in force now.
    pub(crate) current: u64,
    /// The soft limit before it was raised, when it was.
    pub(crate) raised_from: Option<u64>,
}

/// Raises the soft limit of open files to the hard limit. A limit that cannot be read or
/// raised is not fatal: the limit in force, if known, is used.
pub(crate) fn raise_limit() -> Result<Limit, String> {
    // `rlimit` wraps getrlimit/setrlimit, which need unsafe code this crate forbids, and
    // knows the platforms' quirks (macOS's OPEN_MAX cap).
    let (before, _) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map_err(|error| format!("cannot read the file descriptor limit: {error}"))?;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(current) => Ok(Limit {
            current,
            raised_from: (current > before).then_some(before),
        }),
        Err(error) => {
            tracing::warn!(%error, limit = before, "cannot raise the file descriptor limit");
            Ok(Limit {
                current: before,
                raised_from: None,
            })
        }
    }
}

/// The descriptors kept from HTTP clients: the process's own, the peers' connections and
/// the transport's pending handshakes.
pub(crate) fn reserved(peers: usize) -> u64 {
    DESCRIPTORS_BASE + DESCRIPTORS_PER_PEER * peers as u64 + HANDSHAKES_PENDING_DEFAULT as u64
}

/// The connection limit: `requested`, or by default what the descriptor `limit` leaves
/// once `reserved` is kept back. An error (one line) when the limit leaves no room, or
/// less than `requested` needs.
pub(crate) fn http_connections_max(
    limit: u64,
    reserved: u64,
    requested: Option<usize>,
) -> Result<usize, String> {
    // The connections waiting for room and the one being accepted hold descriptors too.
    let overhead = ConnectionSlots::descriptors_max(1) as u64 - 1;
    let room = limit.saturating_sub(reserved + overhead);
    match requested {
        Some(requested) if requested as u64 > room => Err(format!(
            "--max-http-connections {requested} needs more file descriptors than the limit of \
             {limit} leaves: at most {room} (raise the limit with ulimit -n)"
        )),
        Some(requested) => Ok(requested),
        None if room == 0 => Err(format!(
            "the file descriptor limit of {limit} leaves none for HTTP connections: raise it \
             (ulimit -n) above {}",
            reserved + overhead
        )),
        None => Ok(usize::try_from(room.min(HTTP_CONNECTIONS_DEFAULT_MAX)).unwrap_or(usize::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The default takes what the reserve leaves, up to its cap; a request beyond what the
    // limit allows, or a limit that leaves nothing, is refused in one line.
    #[test]
    fn connection_limits() {
        let reserved = reserved(3);
        assert_eq!(reserved, 64 + 6 + 64);
        let overhead = ConnectionSlots::descriptors_max(1) as u64 - 1;
        assert_eq!(
            http_connections_max(1024, reserved, None),
            Ok((1024 - reserved - overhead) as usize)
        );
        assert_eq!(http_connections_max(1_000_000, reserved, None), Ok(16_384));
        assert_eq!(http_connections_max(1024, reserved, Some(10)), Ok(10));
        let refused = http_connections_max(1024, reserved, Some(5000)).unwrap_err();
        assert!(refused.contains("at most"), "{refused}");
        assert!(!refused.contains('\n'));
        assert!(http_connections_max(100, reserved, None).is_err());
    }
}
