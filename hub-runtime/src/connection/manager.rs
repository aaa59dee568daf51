//! [`ConnectionManager`]: an endpoint's live connections, and how a transport attaches to one.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use dashmap::DashMap;
use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::capacity::Capacity;
use super::clock::now_ms;
use super::frame::{Frame, Outgoing};
use super::handle::Connection;
use super::handler::ConnectionHandler;
use super::ids::random_id;
use super::queue;
use super::replay::Replay;
use super::sender::ConnectionSender;
use super::shared::{ConnectionShared, ConnectionState};
use crate::observability::EndpointMetrics;
use crate::request::Identity;
use crate::request::{RequestContext, TransportKind};

/// What a transport gets when it attaches.
pub(crate) struct Attached {
    pub(crate) outbox: Option<queue::Receiver<Outgoing>>,
    pub(crate) inbox: Option<queue::Sender<Frame>>,
    /// WebSockets: the handler, for the socket's task to run.
    pub(crate) handler: Option<BoxFuture<'static, ()>>,
    /// WebSockets: cancelled when a newer socket replaces this one (stateful reconnect).
    pub(crate) stop: Option<CancellationToken>,
}

/// Why a transport could not attach to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AttachError {
    /// No connection has that token (404).
    Unknown,
    /// The connection already uses another transport (400).
    WrongTransport,
    /// A transport of the same kind is already attached (409).
    AlreadyAttached,
    /// The server holds `max_connections` started connections already (503).
    Full,
}

/// Every live connection of one endpoint, by secret token.
/// What a new connection's token (the name its transport requests use) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A secret of its own, apart from the public id (negotiate version 1 and later, and
    /// connections that skip negotiate).
    Own,
    /// The public id itself (negotiate version 0).
    SameAsId,
}

pub(crate) struct ConnectionManager {
    pub(super) connections: DashMap<Arc<str>, Arc<ConnectionShared>>,
    /// How many of them have not started a transport yet.
    unstarted: AtomicUsize,
    /// The server's started connections, shared by its endpoints (`max_connections`).
    capacity: Arc<Capacity>,
    metrics: Arc<EndpointMetrics>,
}

/// Counts a connection out when its handler's task ends, whether it ran to its end, was
/// dropped, or panicked.
struct HandlerEnded {
    manager: Arc<ConnectionManager>,
    shared: Arc<ConnectionShared>,
    transport: TransportKind,
}

impl Drop for HandlerEnded {
    fn drop(&mut self) {
        self.manager.metrics.connection_closed(self.transport);
        // The handler is done: the transport writes what is queued, then ends.
        ConnectionSender {
            shared: self.shared.clone(),
        }
        .close();
        // A long polling client still has to collect what is queued: the sweeper forgets the
        // connection once it stops polling.
        if self.transport != TransportKind::LongPolling {
            self.manager.remove(&self.shared.token);
        }
    }
}

/// Inbox capacity, in frames: the transport waits (stops reading the socket) when it is full.
const INBOX_CAPACITY: usize = 16;

impl ConnectionManager {
    /// A manager counting into `metrics`, with no cap on started connections.
    #[cfg(test)]
    pub(crate) fn new(metrics: EndpointMetrics) -> Self {
        Self::with_capacity(metrics, Arc::new(Capacity::new(None)))
    }

    /// A manager counting into `metrics`, whose connections take a place in `capacity` when
    /// they start.
    pub(crate) fn with_capacity(metrics: EndpointMetrics, capacity: Arc<Capacity>) -> Self {
        ConnectionManager {
            connections: DashMap::new(),
            unstarted: AtomicUsize::new(0),
            capacity,
            metrics: Arc::new(metrics),
        }
    }

    /// Creates a connection that no transport carries yet, its token as `token` says.
    pub(crate) fn create(&self, outbox_max_bytes: usize, token: TokenKind) -> Arc<ConnectionShared> {
        let id: Arc<str> = random_id().into();
        let token: Arc<str> = match token {
            TokenKind::SameAsId => id.clone(),
            TokenKind::Own => random_id().into(),
        };
        let (tx, rx) = queue::channel_weighed(outbox_max_bytes, Outgoing::weight);
        let (inbox_tx, inbox_rx) = queue::channel(INBOX_CAPACITY);
        let now = now_ms();
        let shared = Arc::new(ConnectionShared {
            id,
            token: token.clone(),
            outbox: tx,
            abort: CancellationToken::new(),
            aborted: AtomicBool::new(false),
            closed_by_client: AtomicBool::new(false),
            last_read_ms: AtomicU64::new(now),
            last_write_ms: AtomicU64::new(now),
            created: Instant::now(),
            state: Mutex::new(ConnectionState {
                started: false,
                transport: None,
                outbox_rx: Some(rx),
                request: Arc::new(RequestContext::default()),
                identity: None,
                inbox_tx: Some(inbox_tx),
                inbox_rx: Some(inbox_rx),
                early_bytes: 0,
                poll: None,
                polls: 0,
                last_poll_end: Instant::now(),
                finished: false,
                stateful: false,
                ws_inbox: None,
                ws_transport: None,
                detached_at: None,
            }),
            poll_outbox: tokio::sync::Mutex::new(None),
            replay: Mutex::new(Replay::new()),
            detached: tokio::sync::Notify::new(),
            goodbye: Mutex::new(None),
            slow: std::sync::atomic::AtomicBool::new(false),
            input_error: AtomicU8::new(0),
            metrics: self.metrics.clone(),
            protocol: AtomicU8::new(0),
            invocations: OnceLock::new(),
            unstarted: AtomicBool::new(true),
            holds_place: AtomicBool::new(false),
            posting: OnceLock::new(),
        });
        self.unstarted.fetch_add(1, Ordering::Relaxed);
        self.connections.insert(token, shared.clone());
        shared
    }

    pub(crate) fn get(&self, token: &str) -> Option<Arc<ConnectionShared>> {
        self.connections.get(token).map(|c| c.value().clone())
    }

    pub(crate) fn remove(&self, token: &str) {
        if let Some((_, removed)) = self.connections.remove(token) {
            self.forget(&removed);
        }
    }

    /// Bookkeeping for a connection taken out of the map: it is no longer unstarted, and its
    /// place (if it started) is free.
    pub(super) fn forget(&self, shared: &ConnectionShared) {
        self.no_longer_unstarted(shared);
        if shared.holds_place.swap(false, Ordering::AcqRel) {
            self.capacity.release();
        }
    }

    /// Ends the client-to-server direction of an HTTP transport (its data was lost: 413, 408,
    /// 503). A started connection's handler sees its input end and finishes; one that has
    /// not started never can, so it is ended and forgotten now.
    pub(crate) fn end_input(&self, shared: &ConnectionShared) {
        let mut state = shared.lock();
        state.inbox_tx = None;
        if state.started {
            return;
        }
        // Ended under the lock: no transport can start it in between.
        shared.end();
        drop(state);
        self.remove(&shared.token);
    }

    pub(crate) fn len(&self) -> usize {
        self.connections.len()
    }

    /// How many connections were negotiated but have not started a transport.
    pub(crate) fn unstarted_len(&self) -> usize {
        self.unstarted.load(Ordering::Relaxed)
    }

    /// Stops counting `shared` as unstarted (it started, or it is gone); once only.
    fn no_longer_unstarted(&self, shared: &ConnectionShared) {
        if shared.unstarted.swap(false, Ordering::Relaxed) {
            self.unstarted.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Attaches the first transport to a connection and starts its handler. A WebSocket or
    /// Server-Sent Events transport gets the outbox receiver (and, for a WebSocket, the inbox
    /// sender); long polling leaves both with the connection, for polls and POSTs to use.
    pub(crate) fn attach(
        self: &Arc<Self>,
        shared: &Arc<ConnectionShared>,
        transport: TransportKind,
        request: RequestContext,
        identity: Option<Arc<Identity>>,
        handler: &Arc<dyn ConnectionHandler>,
    ) -> Result<Attached, AttachError> {
        let mut state = shared.lock();
        // Long polling: the polls' slot for the outbox.
        let mut poll_slot = match self.reserve_start(shared, &state, transport) {
            Ok(slot) => slot,
            Err(error) => {
                drop(state);
                if matches!(error, AttachError::Unknown | AttachError::Full) {
                    // It can no longer start (ended, its input gone, or no place for it).
                    shared.end();
                    self.remove(&shared.token);
                }
                return Err(error);
            }
        };
        // Both are there (checked above, under the same lock).
        let (Some(outbox_rx), Some(inbox_rx)) = (state.outbox_rx.take(), state.inbox_rx.take()) else {
            return Err(AttachError::AlreadyAttached);
        };
        let request = Arc::new(request.with_transport(transport));
        state.transport = Some(transport);
        state.started = true;
        state.request = request;
        state.identity = identity.clone();
        state.last_poll_end = Instant::now();
        self.no_longer_unstarted(shared);

        let mut attached = match transport {
            TransportKind::WebSockets => {
                // The socket feeds the inbox (what was POSTed before it came is read first).
                let inbox_tx = state.inbox_tx.take();
                // Only a connection that may be resumed on a new socket needs a way to stop
                // this one.
                let stop = state.stateful.then(CancellationToken::new);
                state.ws_transport = stop.clone();
                Attached {
                    outbox: Some(outbox_rx),
                    inbox: inbox_tx,
                    handler: None,
                    stop,
                }
            }
            TransportKind::ServerSentEvents => Attached {
                outbox: Some(outbox_rx),
                inbox: None,
                handler: None,
                stop: None,
            },
            TransportKind::LongPolling => {
                if let Some(mut slot) = poll_slot.take() {
                    *slot = Some(outbox_rx);
                }
                Attached {
                    outbox: None,
                    inbox: None,
                    handler: None,
                    stop: None,
                }
            }
        };
        drop(poll_slot);
        drop(state);

        shared.touch_read();
        let connection = Connection {
            shared: shared.clone(),
            inbox: inbox_rx,
            identity,
        };
        let run = handler.run(connection);
        self.metrics.connection_opened(transport);
        // Made here and moved in: the connection is counted out however the task ends (run to
        // its end, dropped before or while it runs, or unwound by a panic).
        let ended = HandlerEnded {
            manager: self.clone(),
            shared: shared.clone(),
            transport,
        };
        let task: BoxFuture<'static, ()> = Box::pin(async move {
            let _ended = ended;
            run.await;
        });
        if transport == TransportKind::WebSockets {
            // The socket's task runs the handler too: a message is read, handled and answered
            // without passing between tasks.
            attached.handler = Some(task);
        } else {
            tokio::spawn(task);
        }
        Ok(attached)
    }

    /// Checks that `transport` may start `shared` (see [`ConnectionManager::may_start`]), then
    /// takes what starting needs, so that nothing can fail after: for long polling, the polls'
    /// outbox slot (returned), and a place under `max_connections`. Nothing is taken on
    /// failure.
    fn reserve_start<'a>(
        &self,
        shared: &'a ConnectionShared,
        state: &ConnectionState,
        transport: TransportKind,
    ) -> Result<Option<tokio::sync::MutexGuard<'a, Option<queue::Receiver<Outgoing>>>>, AttachError> {
        Self::may_start(shared, state, transport)?;
        let slot = if transport == TransportKind::LongPolling {
            Some(
                shared
                    .poll_outbox
                    .try_lock()
                    .map_err(|_| AttachError::AlreadyAttached)?,
            )
        } else {
            None
        };
        if !self.capacity.try_reserve() {
            tracing::warn!(connection = %shared.id, "refusing to start a connection: the server is full");
            return Err(AttachError::Full);
        }
        shared.holds_place.store(true, Ordering::Release);
        Ok(slot)
    }

    /// What must hold for `transport` to start `shared` (nothing is changed): not ended, no
    /// transport yet, both queues still there, and for a WebSocket, input not ended.
    fn may_start(
        shared: &ConnectionShared,
        state: &ConnectionState,
        transport: TransportKind,
    ) -> Result<(), AttachError> {
        if shared.is_aborted() {
            return Err(AttachError::Unknown);
        }
        match state.transport {
            Some(t) if t != transport => return Err(AttachError::WrongTransport),
            Some(_) => return Err(AttachError::AlreadyAttached),
            None => {}
        }
        if state.outbox_rx.is_none() || state.inbox_rx.is_none() {
            return Err(AttachError::AlreadyAttached);
        }
        if transport == TransportKind::WebSockets && state.inbox_tx.is_none() {
            // Its input ended before it started (a POST over the limit): it never can.
            return Err(AttachError::Unknown);
        }
        Ok(())
    }

    /// A new WebSocket for a connection that already has one, with stateful reconnect on:
    /// stops the old socket's transport; the new one takes over once the old one let go.
    pub(crate) fn reattach(&self, shared: &Arc<ConnectionShared>) -> Result<CancellationToken, AttachError> {
        let mut state = shared.lock();
        if shared.is_aborted() {
            return Err(AttachError::Unknown);
        }
        if state.transport != Some(TransportKind::WebSockets) {
            return Err(AttachError::WrongTransport);
        }
        if !state.stateful || !shared.replay().enabled {
            return Err(AttachError::AlreadyAttached);
        }
        let stop = CancellationToken::new();
        if let Some(old) = state.ws_transport.replace(stop.clone()) {
            old.cancel();
        }
        Ok(stop)
    }

    /// Ends every connection now.
    pub(crate) fn abort_all(&self) {
        for c in self.connections.iter() {
            c.end();
        }
    }
}
