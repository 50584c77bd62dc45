//! The HTTP connections' share of the file descriptors: at most `--max-http-connections`
//! open at once. A connection over the limit makes the oldest one close (at once if it is
//! between requests, after its request otherwise) and waits a moment for its place; one
//! that gets no place in time is answered 503 and closed. While too many wait, no more
//! connections are accepted: they queue in the kernel's backlog, which costs no
//! descriptor. So idle connections, however many a client opens, can neither keep other
//! clients out for long nor take the descriptors the raft peers and the store need.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use raft_tokio::RateLimitedLog;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tracing::Level;

/// How long a connection over the limit waits for the oldest one to make room.
const ROOM_WAIT: Duration = Duration::from_secs(1);

/// The most connections waiting for room at once; while this many wait, no more are
/// accepted. They hold descriptors too: [`ConnectionSlots::descriptors_max`] counts them.
const WAITING_MAX: usize = 32;

/// How often the refusal log line is written in full.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How often a connection waiting for room, that found no connection to close when it
/// came (all were closing already, for earlier newcomers), looks again.
const EVICTION_RETRY: Duration = Duration::from_millis(10);

/// How long the 503 answer may take to write before the connection is closed anyway.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// The places of the open HTTP connections.
#[derive(Debug)]
pub(crate) struct ConnectionSlots {
    connections_max: usize,
    places: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    open: Mutex<Open>,
    refusals: RateLimitedLog,
}

/// Where a connection asked to close hands its place: to the newcomer that asked.
type Heir = oneshot::Sender<OwnedSemaphorePermit>;

/// The open connections, oldest first, each with the means to ask it to close.
#[derive(Debug, Default)]
struct Open {
    next_ticket: u64,
    closers: BTreeMap<u64, oneshot::Sender<Heir>>,
}

/// A connection's place: held until the connection ends, then handed to the newcomer
/// that asked it to close, if one did, or given back. Handing it over, rather than
/// giving it back to whoever waits longest, makes sure that every newcomer gets the
/// place it made: the last of a burst does not wait in vain.
#[derive(Debug)]
pub(crate) struct Place {
    slots: Arc<ConnectionSlots>,
    ticket: u64,
    permit: Option<OwnedSemaphorePermit>,
    /// Resolves when the connection is asked to close to make room for a newer one.
    pub(crate) close_asked: oneshot::Receiver<Heir>,
    /// Who gets the place, once the request to close has been received.
    pub(crate) heir: Option<Heir>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.slots.open().closers.remove(&self.ticket);
        // Asked to close before the request was even read: the heir is still in it.
        let heir = self
            .heir
            .take()
            .or_else(|| self.close_asked.try_recv().ok());
        if let (Some(heir), Some(permit)) = (heir, self.permit.take()) {
            // A newcomer that stopped waiting leaves the place to the semaphore.
            let _ = heir.send(permit);
        }
    }
}

/// What becomes of a new connection.
#[derive(Debug)]
pub(crate) enum Admission {
    /// It has its place.
    Admitted(Place),
    /// It waits for one (see [`ConnectionSlots::wait`]).
    Waiting(Waiter),
}

/// A connection waiting for room.
#[derive(Debug)]
pub(crate) struct Waiter {
    _permit: OwnedSemaphorePermit,
    /// The place of the connection it asked to close, once that one has; `None` while it
    /// has found none to ask.
    inheritance: Option<oneshot::Receiver<OwnedSemaphorePermit>>,
}

impl ConnectionSlots {
    /// Room for `connections_max` connections (at least one).
    pub(crate) fn new(connections_max: usize) -> Arc<ConnectionSlots> {
        let connections_max = connections_max.max(1);
        Arc::new(ConnectionSlots {
            connections_max,
            places: Arc::new(Semaphore::new(connections_max)),
            waiting: Arc::new(Semaphore::new(WAITING_MAX)),
            open: Mutex::new(Open::default()),
            refusals: RateLimitedLog::new(
                Level::WARN,
                format!("HTTP connection refused (--max-http-connections {connections_max})"),
                LOG_INTERVAL,
            ),
        })
    }

    /// The most descriptors HTTP clients can hold through this server: the open
    /// connections, those waiting for room, and one being accepted.
    pub(crate) fn descriptors_max(connections_max: usize) -> usize {
        connections_max.max(1) + WAITING_MAX + 1
    }

    /// Decides what becomes of a connection just accepted. Over the limit, the oldest
    /// open connection is asked to close; while too many connections wait for room, this
    /// waits (at most [`ROOM_WAIT`]) so that the caller accepts no more meanwhile.
    pub(crate) async fn admit(self: &Arc<Self>) -> Admission {
        if let Ok(permit) = Arc::clone(&self.places).try_acquire_owned() {
            return Admission::Admitted(self.place(permit));
        }
        let waiting = Arc::clone(&self.waiting)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        Admission::Waiting(Waiter {
            _permit: waiting,
            inheritance: self.evict_oldest(),
        })
    }

    /// Asks the oldest open connection not asked yet to close, for its place; `None` if
    /// there is none.
    fn evict_oldest(&self) -> Option<oneshot::Receiver<OwnedSemaphorePermit>> {
        let (_, closer) = self.open().closers.pop_first()?;
        let (heir, inheritance) = oneshot::channel();
        // Fails only if the connection is gone already: its place went back to the
        // semaphore, where the newcomer finds it.
        let _ = closer.send(heir);
        Some(inheritance)
    }

    /// Waits (a moment) for the place of a connection over the limit; without one in
    /// time, answers it 503 and closes it.
    pub(crate) async fn wait(
        self: &Arc<Self>,
        stream: &mut TcpStream,
        mut waiter: Waiter,
    ) -> Option<Place> {
        let deadline = tokio::time::Instant::now() + ROOM_WAIT;
        let acquire = Arc::clone(&self.places).acquire_owned();
        let mut acquire = std::pin::pin!(acquire);
        let acquired = loop {
            let inheriting = waiter.inheritance.is_some();
            tokio::select! {
                // A place given back (by a connection that ended by itself).
                acquired = &mut acquire => break acquired.ok(),
                // The place of the connection this one asked to close.
                inherited = async {
                    match waiter.inheritance.as_mut() {
                        Some(inheritance) => inheritance.await,
                        None => std::future::pending().await,
                    }
                }, if inheriting => match inherited {
                    Ok(permit) => break Some(permit),
                    // Gone without handing it over: its place went to the semaphore.
                    Err(_) => waiter.inheritance = None,
                },
                () = tokio::time::sleep_until(deadline) => break None,
                () = tokio::time::sleep(EVICTION_RETRY), if !inheriting => {
                    waiter.inheritance = self.evict_oldest();
                }
            }
        };
        drop(waiter);
        if let Some(permit) = acquired {
            return Some(self.place(permit));
        }
        self.refusals.log(format_args!(
            "no connection made room within {ROOM_WAIT:?}; answered 503"
        ));
        let body = format!(
            "{{\"error\":\"too many HTTP connections (at most {}); try again\"}}\n",
            self.connections_max
        );
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ =
            tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, stream.write_all(answer.as_bytes())).await;
        None
    }

    /// Writes the refusals' summary when one is due.
    pub(crate) fn flush_log(&self) {
        self.refusals.flush();
    }

    fn place(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Place {
        let (closer, close_asked) = oneshot::channel();
        let mut open = self.open();
        let ticket = open.next_ticket;
        open.next_ticket += 1;
        open.closers.insert(ticket, closer);
        drop(open);
        Place {
            slots: Arc::clone(self),
            ticket,
            permit: Some(permit),
            close_asked,
            heir: None,
        }
    }

    fn open(&self) -> MutexGuard<'_, Open> {
        // One map operation per update: consistent even if a holder panicked.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Within the limit a connection gets its place at once; over it, the oldest is asked
    // to close, and its place goes to the newcomer that asked once it has.
    #[tokio::test]
    async fn the_oldest_makes_room() {
        let slots = ConnectionSlots::new(2);
        let Admission::Admitted(mut first) = slots.admit().await else {
            panic!("room for the first");
        };
        let Admission::Admitted(second) = slots.admit().await else {
            panic!("room for the second");
        };
        let Admission::Waiting(mut waiter) = slots.admit().await else {
            panic!("the third waits");
        };
        let heir = first
            .close_asked
            .try_recv()
            .expect("the oldest is asked to close");
        first.heir = Some(heir);
        drop(first);
        let mut inheritance = waiter.inheritance.take().expect("a connection was asked");
        let inherited = inheritance.try_recv();
        assert!(inherited.is_ok(), "its place goes to the newcomer");
        assert!(
            Arc::clone(&slots.places).try_acquire_owned().is_err(),
            "and not back to the semaphore"
        );
        drop((second, inherited));
    }
}
