//! The state one logical connection shares between its handler, its senders, its transport
//! and the manager.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::clock::now_ms;
use super::frame::{Frame, InputError, Outgoing};
use super::queue;
use super::replay::Replay;
use crate::observability::EndpointMetrics;
use crate::request::Identity;
use crate::request::{RequestContext, TransportKind};

/// Shared state of one logical connection.
pub(crate) struct ConnectionShared {
    pub(crate) id: Arc<str>,
    pub(crate) token: Arc<str>,
    pub(crate) outbox: queue::Sender<Outgoing>,
    /// Cancelled when the connection must end now, whatever is queued. Cancel it through
    /// [`ConnectionShared::end`].
    pub(crate) abort: CancellationToken,
    /// `abort` is cancelled: the same fact, read without a lock on every send.
    pub(super) aborted: AtomicBool,
    /// Set by the transport, before it cancels `abort`, when the client closed cleanly.
    pub(crate) closed_by_client: AtomicBool,
    pub(crate) last_read_ms: AtomicU64,
    pub(crate) last_write_ms: AtomicU64,
    pub(crate) created: Instant,
    pub(crate) state: Mutex<ConnectionState>,
    /// Long polling: the outbox receiver, held by the poll that is waiting.
    pub(crate) poll_outbox: tokio::sync::Mutex<Option<queue::Receiver<Outgoing>>>,
    /// Stateful reconnect: what the client has not acknowledged yet.
    pub(crate) replay: Mutex<Replay>,
    /// Signalled when a WebSocket transport gives the connection back (stateful reconnect).
    pub(crate) detached: tokio::sync::Notify,
    /// What the transport attempts to write when the connection is closed for not reading
    /// (a Close message naming the reason), set by the hub layer.
    pub(crate) goodbye: Mutex<Option<Frame>>,
    /// Set when the connection is aborted as a slow consumer: the goodbye is attempted.
    pub(crate) slow: std::sync::atomic::AtomicBool,
    /// Set by a transport that refused the client's input, before it ends the inbox: the
    /// handler sees why its input ended (an [`InputError`], 0 for none; one byte, as every
    /// connection has it).
    pub(super) input_error: AtomicU8,
    /// The endpoint's counters.
    pub(crate) metrics: Arc<EndpointMetrics>,
    /// The hub protocol agreed in the handshake, as a metrics label index (0 before).
    pub(crate) protocol: AtomicU8,
    /// The parent of the invocations' cancellation tokens, made when first needed.
    pub(super) invocations: OnceLock<CancellationToken>,
    /// Counted among the manager's connections whose transport has not started.
    pub(super) unstarted: AtomicBool,
    /// Holds a place in the server's [`Capacity`] (its transport started).
    pub(super) holds_place: AtomicBool,
    /// HTTP transports: held by the POST whose body is being taken (one at a time), made when
    /// first needed.
    pub(super) posting: OnceLock<Box<tokio::sync::Mutex<()>>>,
}

pub(crate) struct ConnectionState {
    pub(crate) started: bool,
    pub(crate) transport: Option<TransportKind>,
    pub(crate) outbox_rx: Option<queue::Receiver<Outgoing>>,
    pub(crate) request: Arc<RequestContext>,
    /// Who negotiated the connection, then who started its transport.
    pub(crate) identity: Option<Arc<Identity>>,
    /// Where POSTed data goes (dropping it ends the connection). Made with the connection, so
    /// that a POST may come before the transport starts; a WebSocket takes it when it
    /// attaches.
    pub(crate) inbox_tx: Option<queue::Sender<Frame>>,
    /// The handler's end of the inbox, until the transport starts.
    pub(crate) inbox_rx: Option<queue::Receiver<Frame>>,
    /// Bytes POSTed before the transport started (bounded by `max_message_size`).
    pub(crate) early_bytes: usize,
    /// Long polling: the poll now waiting, by number (cancelled when a newer poll displaces
    /// it).
    pub(crate) poll: Option<(u64, CancellationToken)>,
    /// Long polling: how many polls have started.
    pub(crate) polls: u64,
    /// Long polling: when the last poll ended (for the disconnect timeout).
    pub(crate) last_poll_end: Instant,
    /// The transport has delivered the connection's end to the client.
    pub(crate) finished: bool,
    /// Negotiate agreed to stateful reconnect.
    pub(crate) stateful: bool,
    /// WebSockets with stateful reconnect: the inbox sender while no socket is attached.
    pub(crate) ws_inbox: Option<queue::Sender<Frame>>,
    /// WebSockets with stateful reconnect: stops the attached socket's transport.
    pub(crate) ws_transport: Option<CancellationToken>,
    /// WebSockets with stateful reconnect: since when no socket is attached.
    pub(crate) detached_at: Option<Instant>,
}

impl ConnectionShared {
    /// Ends the connection now (cancels `abort`).
    #[inline]
    pub(crate) fn end(&self) {
        self.aborted.store(true, Ordering::Release);
        self.abort.cancel();
    }

    /// Records why the transport stopped reading the client's input (before it ends the inbox).
    pub(crate) fn refuse_input(&self, error: InputError) {
        self.input_error.store(error as u8, Ordering::Release);
    }

    /// Whether the connection was ended.
    #[inline]
    pub(crate) fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// The goodbye frame to attempt, if the connection was closed as a slow consumer.
    pub(crate) fn goodbye(&self) -> Option<Frame> {
        if !self.slow.load(Ordering::Relaxed) {
            return None;
        }
        self.goodbye.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    #[inline]
    pub(crate) fn replay(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.replay.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[inline]
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ConnectionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the client-to-server direction of an HTTP transport: the handler sees the end of
    /// its input.
    pub(crate) fn end_input(&self) {
        self.lock().inbox_tx = None;
    }

    /// The lock a POST holds while its body is taken into the connection's input.
    pub(crate) fn posting(&self) -> &tokio::sync::Mutex<()> {
        self.posting.get_or_init(|| Box::new(tokio::sync::Mutex::new(())))
    }

    #[inline]
    pub(crate) fn touch_read(&self) {
        self.last_read_ms.store(now_ms(), Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn touch_write(&self) {
        self.last_write_ms.store(now_ms(), Ordering::Relaxed);
    }
}
