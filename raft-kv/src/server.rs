//! The HTTP API: keys, membership, leadership transfer, status and metrics, one task per
//! connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use raft_core::{NodeId, Role};
use raft_tokio::{ClientError, RaftHandle, RateLimitedLog, StopReason, Uncertainty};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tracing::Level;

use crate::cli::parse_peer_address;
use crate::connections::{Admission, ConnectionSlots, Place};
use crate::machine::{
    Command, Query, SessionReply, decode_session_reply, decode_url, decode_value,
};
use crate::proposals::Proposer;

/// The largest body `POST /ID` and `POST /leader` read: a peer address or a node id is
/// short.
const ADDRESS_BYTES_MAX: usize = 1024;

/// How often a leadership transfer is checked on while a `POST /leader` waits for it.
const TRANSFER_POLL: Duration = Duration::from_millis(20);

/// How often a log line any client can trigger is written in full.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long a new member may take to catch up as a learner before it is made a voter.
const CATCH_UP: Duration = Duration::from_secs(5);

type Reply = Response<Full<Bytes>>;

/// Serves the HTTP API of one node.
#[derive(Debug)]
pub(crate) struct Server {
    /// The raft node.
    pub(crate) raft: RaftHandle,
    /// Proposes the key writes, in batches.
    pub(crate) proposer: Proposer,
    /// The largest value a PUT accepts.
    pub(crate) max_value_bytes: usize,
    /// How long a request waits for raft.
    pub(crate) request_timeout: Duration,
    /// How long a leadership transfer may take before it counts as refused (raft abandons
    /// one after an election timeout).
    pub(crate) transfer_patience: Duration,
    /// The places of the open connections.
    pub(crate) connections: Arc<ConnectionSlots>,
    /// How long a connection may take to send a request's head, counted from the
    /// connection or from the end of its previous request: idle connections close then.
    pub(crate) idle_timeout: Duration,
    /// One raft tick: the unit of the leader's quorum contact age.
    pub(crate) tick: Duration,
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Status,
    Metrics,
    Get { key: String, local: bool },
    Put { key: String },
    Append { key: String },
    DeleteKey { key: String },
    AddNode { node: NodeId },
    RemoveNode { node: NodeId },
    TransferLeader,
    OpenSession,
}

/// How the request names its path: `?kind=key` or `?kind=node` overrides the guess
/// (digits name a node for POST and DELETE, anything else a key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Guess,
    Key,
    Node,
}

impl Server {
    /// Accepts connections forever, serving each on a task of its own, within the
    /// connection limit.
    pub(crate) async fn serve(self: Arc<Server>, listener: TcpListener) {
        let accept_failures = RateLimitedLog::new(
            Level::WARN,
            "cannot accept an HTTP connection",
            LOG_INTERVAL,
        );
        let mut flush = tokio::time::interval(LOG_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (mut stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait for some to be
                        // released instead of spinning.
                        accept_failures.log(error);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                // The counts of a flood's last interval are written even if it stops.
                _ = flush.tick() => {
                    accept_failures.flush();
                    self.connections.flush_log();
                    continue;
                }
            };
            let server = Arc::clone(&self);
            // Waits while too many connections wait for room: the rest queue unaccepted.
            match self.connections.admit().await {
                Admission::Admitted(place) => {
                    tokio::spawn(server.serve_connection(stream, peer, place));
                }
                Admission::Waiting(waiting) => {
                    tokio::spawn(async move {
                        if let Some(place) = server.connections.wait(&mut stream, waiting).await {
                            server.serve_connection(stream, peer, place).await;
                        }
                    });
                }
            }
        }
    }

    /// Serves one connection until it ends, or until it is asked to make room: then it
    /// closes at once if it is between requests, or after its request.
    async fn serve_connection(
        self: Arc<Server>,
        stream: TcpStream,
        peer: SocketAddr,
        mut place: Place,
    ) {
        let requests_in_progress = Arc::new(AtomicUsize::new(0));
        let in_progress = Arc::clone(&requests_in_progress);
        let server = Arc::clone(&self);
        let service = service_fn(move |request| {
            let server = Arc::clone(&server);
            let in_progress = Arc::clone(&in_progress);
            async move {
                in_progress.fetch_add(1, Ordering::SeqCst);
                let reply = server.handle(request).await;
                in_progress.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, Infallible>(reply)
            }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            // hyper starts this timer whenever it waits for a request's head, so it also
            // closes connections idle between requests.
            .header_read_timeout(self.idle_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let mut connection = std::pin::pin!(connection);
        let outcome = tokio::select! {
            outcome = connection.as_mut() => outcome,
            heir = &mut place.close_asked => {
                // Its place goes to the newcomer that asked, once it is closed.
                place.heir = heir.ok();
                if requests_in_progress.load(Ordering::SeqCst) == 0 {
                    tracing::debug!(%peer, "an idle HTTP connection closed to make room");
                    return;
                }
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = outcome {
            tracing::debug!(%peer, %error, "an HTTP connection ended with an error");
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Reply {
        let (parts, body) = request.into_parts();
        let route = match route(&parts.method, &parts.uri) {
            Ok(route) => route,
            Err(rejection) => return rejection.reply(),
        };
        // Redirects keep the path and query, so that `curl -L` repeats the same request.
        let target = parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str());
        match route {
            Route::Status => self.status().await,
            Route::Metrics => text(StatusCode::OK, self.raft.render_metrics()),
            Route::Get { key, local } => self.get(key, local).await,
            Route::Put { key } => {
                self.write_body(&parts.headers, body, target, |value| Command::Put {
                    key,
                    value,
                })
                .await
            }
            Route::Append { key } => {
                self.write_body(&parts.headers, body, target, |value| Command::Append {
                    key,
                    value,
                })
                .await
            }
            Route::DeleteKey { key } => match session_headers(&parts.headers) {
                Ok(session) => self.write(Command::Delete { key }, session, target).await,
                Err(rejection) => rejection.reply(),
            },
            Route::OpenSession => self.open_session(target).await,
            Route::AddNode { node } => {
                let body = match read_body(body, &parts.headers, ADDRESS_BYTES_MAX).await {
                    Ok(body) => body,
                    Err(rejection) => return rejection.reply(),
                };
                self.add_node(node, &body, target).await
            }
            Route::RemoveNode { node } => {
                let outcome = self.within(self.raft.remove(node)).await;
                self.membership_outcome(outcome, target).await
            }
            Route::TransferLeader => {
                let body = match read_body(body, &parts.headers, ADDRESS_BYTES_MAX).await {
                    Ok(body) => body,
                    Err(rejection) => return rejection.reply(),
                };
                self.transfer_leader(&body, target).await
            }
        }
    }

    async fn status(&self) -> Reply {
        match self.within(self.raft.status()).await {
            Ok(status) => {
                let ids = |nodes: &std::collections::BTreeSet<NodeId>| {
                    nodes.iter().map(|node| node.0).collect::<Vec<u64>>()
                };
                let document = json!({
                    "id": status.id.0,
                    "pid": std::process::id(),
                    "role": status.role.to_string(),
                    "term": status.term.0,
                    "leader": status.leader.map(|leader| leader.0),
                    // How long ago a quorum last answered this leader (null unless
                    // leader): a leader that was paused or cut off shows a large value
                    // until it hears of the new term. Ticks times the tick length: the
                    // driver catches up on ticks a stalled process missed, so the core's
                    // tick count keeps up with real time.
                    "quorum_contact_age_ms": status.quorum_contact_age_ticks.map(|ticks| {
                        u64::try_from(self.tick.as_millis())
                            .unwrap_or(u64::MAX)
                            .saturating_mul(ticks)
                    }),
                    "commit": status.commit.0,
                    "applied": status.applied.0,
                    "voters": ids(&status.membership.voters),
                    "learners": ids(&status.membership.learners),
                });
                json_reply(StatusCode::OK, &document)
            }
            Err(error) => self.failure(error, None).await,
        }
    }

    async fn get(&self, key: String, local: bool) -> Reply {
        let query = Query::Get { key }.encode();
        let answer = if local {
            self.within(self.raft.read_local(query)).await
        } else {
            self.within(self.raft.read(query)).await
        };
        match answer {
            Ok(answer) => match decode_value(&answer) {
                Ok(Some(value)) => Response::new(Full::new(value)),
                Ok(None) => json_error(StatusCode::NOT_FOUND, "key not found"),
                Err(error) => json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the state machine's answer does not decode: {error}"),
                ),
            },
            // Reads never redirect: a follower reads through the leader itself.
            Err(error) => self.failure(error, None).await,
        }
    }

    /// A write of the request's body (a put or an append, as `command` makes it), in the
    /// session the headers name, if any.
    async fn write_body(
        &self,
        headers: &HeaderMap,
        body: Incoming,
        target: &str,
        command: impl FnOnce(Bytes) -> Command,
    ) -> Reply {
        let session = match session_headers(headers) {
            Ok(session) => session,
            Err(rejection) => return rejection.reply(),
        };
        match read_body(body, headers, self.max_value_bytes).await {
            Ok(value) => self.write(command(value), session, target).await,
            Err(rejection) => rejection.reply(),
        }
    }

    /// A put, append or delete; in a client session when the request named one.
    async fn write(&self, command: Command, session: Option<(u64, u64)>, target: &str) -> Reply {
        let Some((client, sequence)) = session else {
            return match self.within(self.proposer.propose(command.encode())).await {
                Ok(_) => no_content(),
                Err(error) => self.failure(error, Some(target)).await,
            };
        };
        let command = Command::InSession {
            client,
            sequence,
            time_ms: wall_clock_ms(),
            command: Box::new(command),
        };
        let answer = match self.within(self.proposer.propose(command.encode())).await {
            Ok(answer) => answer,
            Err(error) => return self.failure(error, Some(target)).await,
        };
        match decode_session_reply(&answer) {
            Ok(SessionReply::Done) => no_content(),
            Ok(SessionReply::Stale { last_sequence }) => json_reply(
                StatusCode::CONFLICT,
                &json!({
                    "error": format!(
                        "sequence {sequence} is older than the session's last write, \
                         {last_sequence}, whose answer was given already"
                    ),
                    "outcome": "not applied",
                }),
            ),
            Ok(SessionReply::UnknownSession) => json_reply(
                StatusCode::CONFLICT,
                &json!({
                    "error": format!(
                        "session {client} is unknown or expired: open a new one (POST \
                         /session); this request was not applied, and whether an earlier \
                         attempt of it was cannot be told"
                    ),
                    "outcome": "not applied",
                }),
            ),
            Ok(other) => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("unexpected answer to a session write: {other:?}"),
            ),
            Err(error) => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("the state machine's answer does not decode: {error}"),
            ),
        }
    }

    /// `POST /session`: opens a client session and answers 201 with its id, `{"client_id":
    /// N}`. Writes that carry the id and a sequence number apply exactly once.
    async fn open_session(&self, target: &str) -> Reply {
        let command = Command::OpenSession {
            time_ms: wall_clock_ms(),
        };
        let answer = match self.within(self.proposer.propose(command.encode())).await {
            Ok(answer) => answer,
            Err(error) => return self.failure(error, Some(target)).await,
        };
        match decode_session_reply(&answer) {
            Ok(SessionReply::Opened { client }) => {
                json_reply(StatusCode::CREATED, &json!({ "client_id": client }))
            }
            other => json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("unexpected answer to opening a session: {other:?}"),
            ),
        }
    }

    async fn add_node(&self, node: NodeId, body: &[u8], target: &str) -> Reply {
        let Ok(text) = std::str::from_utf8(body) else {
            return json_error(StatusCode::BAD_REQUEST, "the peer address is not UTF-8");
        };
        let address = match parse_peer_address(text) {
            Ok(address) => address,
            Err(message) => return json_error(StatusCode::BAD_REQUEST, &message),
        };
        tracing::info!(%node, %address, "adding a voter");
        // The catch-up wait comes on top of the usual time for the changes themselves.
        let outcome = tokio::time::timeout(
            CATCH_UP + 2 * self.request_timeout,
            self.raft.add_voter(node, address.clone(), CATCH_UP),
        )
        .await
        .unwrap_or(Err(ClientError::OutcomeUnknown(Uncertainty::Timeout)));
        if outcome == Err(ClientError::OutcomeUnknown(Uncertainty::Timeout)) {
            // As in raftexample, the node may be started after the POST: it stays a
            // learner (it cannot cost the quorum) and is promoted once it has caught up.
            self.promote_when_caught_up(node);
            return json_reply(
                StatusCode::ACCEPTED,
                &json!({
                    "status": "added as a learner; promoted to voter once it has caught up"
                }),
            );
        }
        self.membership_outcome(outcome, target).await
    }

    /// Keeps trying to promote learner `node` in the background, for up to ten minutes,
    /// while this node leads. It stops as soon as `node` is no longer a learner: a `DELETE`
    /// of the node cancels its pending promotion, and never sees it added back.
    fn promote_when_caught_up(&self, node: NodeId) {
        let raft = self.raft.clone();
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
            while tokio::time::Instant::now() < deadline {
                match raft.promote(node, CATCH_UP).await {
                    Ok(()) => {
                        tracing::info!(%node, "learner caught up and promoted to voter");
                        return;
                    }
                    Err(ClientError::OutcomeUnknown(Uncertainty::Timeout)) => {}
                    Err(error) => {
                        tracing::info!(%node, %error, "stopped trying to promote the learner");
                        return;
                    }
                }
            }
        });
    }

    /// `POST /leader`: hands leadership to the node the body names, and answers 204 once
    /// it leads (at once if it already does). A follower redirects to the leader; an id
    /// that does not parse or names no member gets 400; a transfer raft refuses (to a
    /// learner, say) or abandons (the target did not take over within an election
    /// timeout) gets 409.
    async fn transfer_leader(&self, body: &[u8], target: &str) -> Reply {
        let text = String::from_utf8_lossy(body);
        let node = match text.trim().parse::<u64>() {
            Ok(id) if id > 0 => NodeId(id),
            _ => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "POST /leader takes the id of the node to lead (a number from 1) as \
                         its body, not {:?}",
                        text.trim()
                    ),
                );
            }
        };
        let status = match self.within(self.raft.status()).await {
            Ok(status) => status,
            Err(error) => return self.failure(error, None).await,
        };
        if status.role != Role::Leader {
            let not_leader = ClientError::NotLeader {
                leader: status.leader,
                address: None,
            };
            return self.failure(not_leader, Some(target)).await;
        }
        if node == status.id {
            return no_content();
        }
        if !status.membership.contains(node) {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("node {} is not a member of the cluster", node.0),
            );
        }
        // Watched from before the transfer starts, so that no change is missed.
        let mut roles = self.raft.watch();
        if let Err(error) = self.within(self.raft.transfer_leader(node)).await {
            return self.failure(error, Some(target)).await;
        }
        tracing::info!(node = node.0, "leadership transfer requested over HTTP");
        let started = tokio::time::Instant::now();
        let give_up = started + self.request_timeout;
        loop {
            let info = *roles.borrow_and_update();
            if info.term > status.term {
                match info.leader {
                    Some(leader) if leader == node => return no_content(),
                    Some(leader) => {
                        return json_error(
                            StatusCode::CONFLICT,
                            &format!("node {} was elected instead of node {}", leader.0, node.0),
                        );
                    }
                    // An election is going on: its winner will tell.
                    None => {}
                }
            } else if started.elapsed() >= self.transfer_patience {
                return json_error(
                    StatusCode::CONFLICT,
                    &format!(
                        "node {} did not take over within {:?}; the transfer was abandoned",
                        node.0, self.transfer_patience
                    ),
                );
            }
            if tokio::time::Instant::now() >= give_up {
                return self
                    .failure(ClientError::OutcomeUnknown(Uncertainty::Timeout), None)
                    .await;
            }
            tokio::select! {
                changed = roles.changed() => {
                    if changed.is_err() {
                        return self
                            .failure(ClientError::Stopped(StopReason::ShutDown), None)
                            .await;
                    }
                }
                () = tokio::time::sleep(TRANSFER_POLL) => {}
            }
        }
    }

    async fn membership_outcome(&self, outcome: Result<(), ClientError>, target: &str) -> Reply {
        match outcome {
            Ok(()) => no_content(),
            Err(error) => self.failure(error, Some(target)).await,
        }
    }

    /// Runs a raft request within the per-request time limit.
    async fn within<T>(
        &self,
        request: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, ClientError> {
        tokio::time::timeout(self.request_timeout, request)
            .await
            .unwrap_or(Err(ClientError::OutcomeUnknown(Uncertainty::Timeout)))
    }

    /// The reply for a failed raft request. A write refused by a follower (`redirect`
    /// names its path and query) is redirected to the leader's HTTP URL.
    ///
    /// The status says what the client may conclude: 503 (and 307) when the request
    /// certainly did not take effect, so that a retry is safe; 504 with `"outcome":
    /// "unknown"` when it may have (a retried write may then apply twice, unless it carries
    /// a client session); 409 for a request that is wrong for the cluster as it is.
    async fn failure(&self, error: ClientError, redirect: Option<&str>) -> Reply {
        let status = match &error {
            ClientError::NotLeader { leader, .. } => match redirect {
                Some(target) => return self.redirect(*leader, target).await,
                None => StatusCode::SERVICE_UNAVAILABLE,
            },
            ClientError::OutcomeUnknown(_) => {
                return json_reply(
                    StatusCode::GATEWAY_TIMEOUT,
                    &json!({ "error": error.to_string(), "outcome": "unknown" }),
                );
            }
            ClientError::Refused(refusal) if refusal.is_transient() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ClientError::Refused(_) => StatusCode::CONFLICT,
            ClientError::Superseded | ClientError::Stopped(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        json_reply(
            status,
            &json!({ "error": error.to_string(), "outcome": "not applied" }),
        )
    }

    /// `307 Temporary Redirect` to the leader's advertised HTTP URL, or 503 when it is not
    /// known (no leader, or it has not advertised yet).
    async fn redirect(&self, leader: Option<NodeId>, target: &str) -> Reply {
        let leader = leader.or_else(|| self.raft.watch().borrow().leader);
        let Some(leader) = leader else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not the leader, and no leader is known; try again",
            );
        };
        if leader == self.raft.id() {
            // This node has just lost or not yet taken up leadership: a redirect to
            // itself would loop.
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "leadership is changing; try again",
            );
        }
        let answer = self
            .within(
                self.raft
                    .read_local(Query::AdvertisedUrl { node: leader.0 }.encode()),
            )
            .await;
        let url = match answer.map(|answer| decode_url(&answer)) {
            Ok(Ok(Some(url))) => url,
            Ok(Ok(None)) => {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!(
                        "the leader is node {}, whose HTTP URL is not known yet; try again",
                        leader.0
                    ),
                );
            }
            Ok(Err(error)) => {
                return json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("the state machine's answer does not decode: {error}"),
                );
            }
            Err(error) => return json_error(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
        };
        let location = format!("{}{target}", url.trim_end_matches('/'));
        let Ok(value) = HeaderValue::from_str(&location) else {
            return json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the leader's URL {url:?} is not usable in a redirect"),
            );
        };
        let mut reply = json_reply(
            StatusCode::TEMPORARY_REDIRECT,
            &json!({ "error": format!("not the leader; the leader is node {} at {url}", leader.0) }),
        );
        reply.headers_mut().insert(header::LOCATION, value);
        reply
    }
}

/// The header naming a client session (from `POST /session`).
const CLIENT_ID_HEADER: &str = "client-id";
/// The header numbering a write within its session: 1 for the first, one more for each
/// new write, the same for a retry.
const CLIENT_SEQUENCE_HEADER: &str = "client-sequence";

/// The session and sequence number a write names in its headers, both or neither.
fn session_headers(headers: &HeaderMap) -> Result<Option<(u64, u64)>, Rejection> {
    let number = |name: &str| -> Result<Option<u64>, Rejection> {
        let Some(value) = headers.get(name) else {
            return Ok(None);
        };
        match value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
        {
            Some(number) if number > 0 => Ok(Some(number)),
            _ => Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                format!("the {name} header must be a number from 1"),
            )),
        }
    };
    match (number(CLIENT_ID_HEADER)?, number(CLIENT_SEQUENCE_HEADER)?) {
        (None, None) => Ok(None),
        (Some(client), Some(sequence)) => Ok(Some((client, sequence))),
        _ => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("the {CLIENT_ID_HEADER} and {CLIENT_SEQUENCE_HEADER} headers go together"),
        )),
    }
}

/// This node's wall-clock time in milliseconds since the Unix epoch, stamped on session
/// entries by the leader that proposes them: the log's clock (never a replica's own).
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Maps a method and URI to a route, or to the error reply for a request that names
/// nothing this server does.
fn route(method: &Method, uri: &Uri) -> Result<Route, Rejection> {
    let Some(name) = uri.path().strip_prefix('/') else {
        // An authority-form or asterisk-form target (`GET k`, `OPTIONS *`): no path.
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "the request target is not a path starting with /",
        ));
    };
    let mut kind = Kind::Guess;
    let mut local = false;
    let mut append = false;
    for parameter in uri.query().unwrap_or("").split('&') {
        if parameter.is_empty() {
            continue;
        }
        let (parameter_name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        match (parameter_name, value) {
            ("consistency", "local") => local = true,
            ("consistency", "linearizable") => local = false,
            ("kind", "key") => kind = Kind::Key,
            ("kind", "node") => kind = Kind::Node,
            ("op", "append") => append = true,
            ("op", _) => {
                return Err(Rejection::new(StatusCode::BAD_REQUEST, "op must be append"));
            }
            ("consistency", _) => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "consistency must be local or linearizable",
                ));
            }
            ("kind", _) => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    "kind must be key or node",
                ));
            }
            _ => {
                return Err(Rejection::new(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {parameter_name:?}"),
                ));
            }
        }
    }
    let digits = !name.is_empty() && name.bytes().all(|byte| byte.is_ascii_digit());
    let names_node = kind == Kind::Node || (kind == Kind::Guess && digits);
    let key = || {
        if name.is_empty() {
            Err(Rejection::new(StatusCode::BAD_REQUEST, "the key is empty"))
        } else {
            Ok(name.to_string())
        }
    };
    match *method {
        Method::GET => match (kind, name) {
            (Kind::Node, _) => Err(method_not_allowed("GET")),
            (Kind::Guess, "status") => Ok(Route::Status),
            (Kind::Guess, "metrics") => Ok(Route::Metrics),
            _ => Ok(Route::Get { key: key()?, local }),
        },
        Method::PUT if kind == Kind::Node => Err(method_not_allowed("PUT")),
        Method::PUT => Ok(Route::Put { key: key()? }),
        Method::DELETE if names_node => Ok(Route::RemoveNode {
            node: node_id(name)?,
        }),
        Method::DELETE => Ok(Route::DeleteKey { key: key()? }),
        Method::POST if append && kind != Kind::Node => Ok(Route::Append { key: key()? }),
        Method::POST if kind == Kind::Key => Err(method_not_allowed("POST")),
        Method::POST if kind == Kind::Guess && name == "leader" => Ok(Route::TransferLeader),
        Method::POST if kind == Kind::Guess && name == "session" => Ok(Route::OpenSession),
        Method::POST if name.is_empty() => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "POST /ID adds node ID: the node id is missing",
        )),
        Method::POST if names_node => Ok(Route::AddNode {
            node: node_id(name)?,
        }),
        Method::POST => Err(Rejection::new(
            StatusCode::NOT_FOUND,
            "POST /ID adds node ID: the path is not a node id",
        )),
        _ => Err(method_not_allowed(method.as_str())),
    }
}

fn node_id(name: &str) -> Result<NodeId, Rejection> {
    match name.parse::<u64>() {
        Ok(0) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            "node id 0 is reserved; node ids start at 1",
        )),
        Ok(id) => Ok(NodeId(id)),
        Err(_) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("{name:?} is not a node id (for a key made of digits, add ?kind=key)"),
        )),
    }
}

/// Reads a whole request body of at most `limit` bytes; a larger one gets 413.
async fn read_body(body: Incoming, headers: &HeaderMap, limit: usize) -> Result<Bytes, Rejection> {
    let too_large = || {
        Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the request body: {error}"),
        )),
    }
}

/// Proposes `Advertise` with this node's HTTP URL whenever it becomes leader, so that
/// followers can redirect writes to it. Runs until the node stops.
pub(crate) async fn advertise_when_leading(raft: RaftHandle, url: String) {
    let mut roles = raft.watch();
    let mut advertised_term = None;
    loop {
        let info = *roles.borrow_and_update();
        if info.role == Role::Leader && advertised_term != Some(info.term) {
            match advertise(&raft, &url).await {
                Ok(()) => advertised_term = Some(info.term),
                Err(
                    ClientError::Stopped(_) | ClientError::OutcomeUnknown(Uncertainty::Stopped(_)),
                ) => return,
                Err(error) => {
                    // Retried while this node still leads the same term.
                    tracing::debug!(%error, "advertising the HTTP URL failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        if roles.changed().await.is_err() {
            return;
        }
    }
}

async fn advertise(raft: &RaftHandle, url: &str) -> Result<(), ClientError> {
    let node = raft.id().0;
    // Whatever this node has applied is committed: if that already holds this URL, one
    // more entry would add nothing. (A state machine still behind may miss a committed
    // advertisement; then the URL is proposed again, which is harmless.)
    let known = raft
        .read_local(Query::AdvertisedUrl { node }.encode())
        .await?;
    if decode_url(&known).ok().flatten().as_deref() == Some(url) {
        return Ok(());
    }
    let command = Command::Advertise {
        node,
        url: url.to_string(),
    };
    tokio::time::timeout(Duration::from_secs(5), raft.propose(command.encode()))
        .await
        .unwrap_or(Err(ClientError::OutcomeUnknown(Uncertainty::Timeout)))?;
    tracing::info!(%url, "advertised this leader's HTTP URL");
    Ok(())
}

fn no_content() -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::NO_CONTENT;
    reply
}

fn text(status: StatusCode, body: String) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    reply
}

fn json_reply(status: StatusCode, document: &serde_json::Value) -> Reply {
    let mut body = document.to_string();
    body.push('\n');
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

fn json_error(status: StatusCode, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

fn method_not_allowed(method: &str) -> Rejection {
    Rejection::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here"),
    )
}

/// A request refused before it reaches raft: the status, and the message of its JSON
/// error body.
#[derive(Debug, PartialEq, Eq)]
struct Rejection {
    status: StatusCode,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Rejection {
        Rejection {
            status,
            message: message.into(),
        }
    }

    fn reply(&self) -> Reply {
        let mut reply = json_error(self.status, &self.message);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            reply.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, PUT, DELETE, POST"),
            );
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(method: Method, uri: &str) -> Result<Route, StatusCode> {
        let uri: Uri = uri.parse().expect("a valid URI");
        route(&method, &uri).map_err(|rejection| rejection.status)
    }

    // Digits name a node for POST and DELETE unless ?kind=key says otherwise; /status and
    // /metrics are reserved for GET.
    #[test]
    fn routes() {
        assert_eq!(routed(Method::POST, "/session"), Ok(Route::OpenSession));
        assert_eq!(
            routed(Method::POST, "/12?op=append"),
            Ok(Route::Append { key: "12".into() })
        );
        assert_eq!(
            routed(Method::POST, "/k?op=prepend"),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(routed(Method::GET, "/status"), Ok(Route::Status));
        assert_eq!(routed(Method::GET, "/metrics"), Ok(Route::Metrics));
        assert_eq!(
            routed(Method::GET, "/status?kind=key"),
            Ok(Route::Get {
                key: "status".into(),
                local: false
            })
        );
        assert_eq!(
            routed(Method::GET, "/k?consistency=local"),
            Ok(Route::Get {
                key: "k".into(),
                local: true
            })
        );
        assert_eq!(
            routed(Method::PUT, "/123"),
            Ok(Route::Put { key: "123".into() })
        );
        assert_eq!(
            routed(Method::DELETE, "/123"),
            Ok(Route::RemoveNode { node: NodeId(123) })
        );
        assert_eq!(
            routed(Method::DELETE, "/123?kind=key"),
            Ok(Route::DeleteKey { key: "123".into() })
        );
        assert_eq!(
            routed(Method::POST, "/4"),
            Ok(Route::AddNode { node: NodeId(4) })
        );
        assert_eq!(routed(Method::GET, "*"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            routed(Method::GET, "127.0.0.1:1"),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(routed(Method::POST, "/leader"), Ok(Route::TransferLeader));
        assert_eq!(
            routed(Method::PUT, "/leader"),
            Ok(Route::Put {
                key: "leader".into()
            })
        );
        assert_eq!(
            routed(Method::POST, "/leader?kind=key"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(routed(Method::PUT, "/"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(routed(Method::GET, "/"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(routed(Method::POST, "/0"), Err(StatusCode::BAD_REQUEST));
        assert_eq!(
            routed(Method::POST, "/99999999999999999999999"),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(routed(Method::POST, "/abc"), Err(StatusCode::NOT_FOUND));
        assert_eq!(
            routed(Method::PATCH, "/abc"),
            Err(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            routed(Method::GET, "/k?consistency=maybe"),
            Err(StatusCode::BAD_REQUEST)
        );
        assert_eq!(
            routed(Method::GET, "/k?colour=red"),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    // Refusals that pass by themselves are told apart from conflicts.
    #[test]
    fn transient_refusals() {
        use raft_core::{DropReason, ProposeError, ReadError};
        use raft_tokio::Refusal;
        let transfer = ProposeError::ProposalDropped {
            reason: DropReason::LeadershipTransfer,
        };
        assert!(Refusal::Proposal(transfer).is_transient());
        assert!(Refusal::Read(ReadError::TooManyPending).is_transient());
        assert!(!Refusal::NotMember(NodeId(9)).is_transient());
    }
}
