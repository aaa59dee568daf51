//! The connections layer: logical connections, independent of the socket or request that
//! currently carries them. It knows bytes, not hubs.
//!
//! A connection is created by negotiate (or by a WebSocket that skipped negotiation), gets a
//! public id and a secret token, and lives until its handler finishes or its transport goes
//! away. A transport attaches to it and moves frames between the socket and two queues: the
//! inbox (read by the handler through [`Connection::recv`]) and the bounded outbox (filled
//! through [`ConnectionSender`]).

pub(crate) mod capacity;
pub(crate) mod negotiate;
pub(crate) mod queue;
pub(crate) mod quiet;
mod request;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use dashmap::DashMap;
use rand::RngCore;
use tokio_util::sync::CancellationToken;

pub use request::{RequestContext, TransportKind};

use crate::auth::Identity;
use crate::observability::EndpointMetrics;
use capacity::Capacity;

/// One unit of data on a connection, as text or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// UTF-8 text (a text WebSocket frame).
    Text(Bytes),
    /// Bytes (a binary WebSocket frame).
    Binary(Bytes),
}

impl Frame {
    /// The frame's bytes.
    pub fn data(&self) -> &Bytes {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b,
        }
    }

    /// Whether this is a binary frame.
    pub fn is_binary(&self) -> bool {
        matches!(self, Frame::Binary(_))
    }
}

/// What the outbox carries to the transport.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A frame; `tracked` frames are numbered and kept for replay when stateful reconnect is on.
    Frame(Frame, bool),
    /// Send what is queued, then end the transport cleanly.
    Close,
}

/// A connection could not take a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxError {
    /// The connection is gone.
    Closed,
    /// The connection's outbox is full: the client is not reading fast enough.
    Full,
}

impl std::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutboxError::Closed => "the connection is closed",
            OutboxError::Full => "the connection's outbox is full",
        })
    }
}

impl std::error::Error for OutboxError {}

/// Why a transport stopped reading what the client sends before the client was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum InputError {
    /// The client sent a message larger than the transport takes (`max_frame_size`).
    TooLarge = 1,
}

fn clock_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Milliseconds since the process's clock origin (a coarse, cheap timestamp).
pub(crate) fn now_ms() -> u64 {
    clock_origin().elapsed().as_millis() as u64
}

/// Instant of a [`now_ms`] timestamp; one more than a year from now (a deadline made of an
/// operator's "never", which may be past what an `Instant` holds) is a year from now.
pub(crate) fn instant_of(ms: u64) -> tokio::time::Instant {
    let far = now_ms().saturating_add(FAR.as_millis() as u64);
    tokio::time::Instant::from_std(clock_origin() + Duration::from_millis(ms.min(far)))
}

/// A user-set timeout, at most a year (an operator's `Duration::MAX`, "never", would
/// overflow an `Instant`).
pub(crate) fn bounded(timeout: Duration) -> Duration {
    timeout.min(FAR)
}

/// How far away "never" is: a year.
pub(crate) const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The instant `timeout` from now (at most a year away: see [`bounded`]).
pub(crate) fn deadline_after(timeout: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + bounded(timeout)
}

/// A new random id: 16 bytes from the OS-seeded CSPRNG, URL-safe base64 (22 characters).
pub(crate) fn random_id() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Shared state of one logical connection.
pub(crate) struct ConnectionShared {
    pub(crate) id: Arc<str>,
    pub(crate) token: Arc<str>,
    pub(crate) outbox: queue::Sender<Outgoing>,
    /// Cancelled when the connection must end now, whatever is queued. Cancel it through
    /// [`ConnectionShared::end`].
    pub(crate) abort: CancellationToken,
    /// `abort` is cancelled: the same fact, read without a lock on every send.
    aborted: AtomicBool,
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
    input_error: AtomicU8,
    /// The endpoint's counters.
    pub(crate) metrics: Arc<EndpointMetrics>,
    /// The hub protocol agreed in the handshake, as a metrics label index (0 before).
    pub(crate) protocol: AtomicU8,
    /// The parent of the invocations' cancellation tokens, made when first needed.
    invocations: OnceLock<CancellationToken>,
    /// Counted among the manager's connections whose transport has not started.
    unstarted: AtomicBool,
    /// Holds a place in the server's [`Capacity`] (its transport started).
    holds_place: AtomicBool,
    /// HTTP transports: held by the POST whose body is being taken (one at a time), made when
    /// first needed.
    posting: OnceLock<Box<tokio::sync::Mutex<()>>>,
}

/// Stateful reconnect: numbered hub messages kept until the client acknowledges them.
#[derive(Default)]
pub(crate) struct Replay {
    pub(crate) enabled: bool,
    /// Sequence id of the next tracked message sent.
    pub(crate) next_id: u64,
    pub(crate) buffer: std::collections::VecDeque<(u64, Frame)>,
    pub(crate) bytes: usize,
    pub(crate) limit: usize,
    /// Encodes a Sequence message in the connection's hub protocol.
    pub(crate) sequence: Option<Arc<dyn Fn(u64) -> Option<Frame> + Send + Sync>>,
}

impl Replay {
    /// Keeps a tracked frame; `false` when the buffer is over its limit (a slow consumer).
    pub(crate) fn keep(&mut self, frame: &Frame) -> bool {
        if !self.enabled {
            return true;
        }
        let id = self.next_id;
        // 2^64 messages are never sent; saturating keeps even that from panicking.
        self.next_id = id.saturating_add(1);
        self.bytes += frame.data().len();
        self.buffer.push_back((id, frame.clone()));
        self.bytes <= self.limit
    }

    pub(crate) fn ack(&mut self, sequence_id: u64) {
        while let Some((id, frame)) = self.buffer.front() {
            if *id > sequence_id {
                break;
            }
            self.bytes -= frame.data().len();
            self.buffer.pop_front();
        }
    }

    /// What a re-attached transport sends first: the Sequence message, then every
    /// unacknowledged message in order.
    pub(crate) fn resend(&self) -> Vec<Frame> {
        let first = self.buffer.front().map(|(id, _)| *id).unwrap_or(self.next_id);
        let mut frames: Vec<Frame> = self
            .sequence
            .as_ref()
            .and_then(|encode| encode(first))
            .into_iter()
            .collect();
        frames.extend(self.buffer.iter().map(|(_, frame)| frame.clone()));
        frames
    }
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
    pub(crate) fn end(&self) {
        self.aborted.store(true, Ordering::Release);
        self.abort.cancel();
    }

    /// Records why the transport stopped reading the client's input (before it ends the inbox).
    pub(crate) fn refuse_input(&self, error: InputError) {
        self.input_error.store(error as u8, Ordering::Release);
    }

    /// Whether the connection was ended.
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

    pub(crate) fn replay(&self) -> std::sync::MutexGuard<'_, Replay> {
        self.replay.lock().unwrap_or_else(|p| p.into_inner())
    }

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

    pub(crate) fn touch_read(&self) {
        self.last_read_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn touch_write(&self) {
        self.last_write_ms.store(now_ms(), Ordering::Relaxed);
    }
}

/// The application's end of a connection: read what the client sends, write back through a
/// [`ConnectionSender`].
///
/// ```no_run
/// # async fn run(mut connection: hub_runtime::Connection) {
/// // An echo handler: every frame goes back as it came.
/// let sender = connection.sender();
/// while let Some(frame) = connection.recv().await {
///     if sender.send(frame).await.is_err() { break; }
/// }
/// # }
/// ```
pub struct Connection {
    shared: Arc<ConnectionShared>,
    inbox: queue::Receiver<Frame>,
    identity: Option<Arc<Identity>>,
}

impl Connection {
    /// The public connection id (what other clients may know).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The next frame from the client; `None` once the transport has gone away.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.inbox.recv().await
    }

    /// A handle for writing to this connection (cheap to clone, usable from any task).
    pub fn sender(&self) -> ConnectionSender {
        ConnectionSender {
            shared: self.shared.clone(),
        }
    }

    /// The request that carried the transport (for long polling, the latest poll).
    pub fn request(&self) -> Arc<RequestContext> {
        self.shared.lock().request.clone()
    }

    /// The transport carrying the connection.
    pub fn transport(&self) -> Option<TransportKind> {
        self.shared.lock().transport
    }

    /// Who the endpoint's authenticator says the client is.
    pub fn identity(&self) -> Option<&Arc<Identity>> {
        self.identity.as_ref()
    }

    /// Resolves when the connection is being torn down (aborted or closed).
    pub async fn aborted(&self) {
        self.shared.abort.cancelled().await
    }

    /// When the client last sent anything.
    pub(crate) fn last_read_ms(&self) -> u64 {
        self.shared.last_read_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn abort_token(&self) -> CancellationToken {
        self.shared.abort.clone()
    }

    /// Whether the transport ended because the client closed it cleanly (then `aborted`
    /// resolving is not an error).
    pub(crate) fn closed_by_client(&self) -> bool {
        self.shared.closed_by_client.load(Ordering::Acquire)
    }

    /// Why the transport stopped reading the client's input, if it refused it (see
    /// [`Connection::recv`] ending).
    pub(crate) fn input_error(&self) -> Option<InputError> {
        match self.shared.input_error.load(Ordering::Acquire) {
            1 => Some(InputError::TooLarge),
            _ => None,
        }
    }

    /// Whether negotiate agreed to stateful reconnect for this connection.
    pub(crate) fn stateful_negotiated(&self) -> bool {
        self.shared.lock().stateful
    }

    /// Turns on stateful reconnect: tracked messages are numbered and kept until acknowledged.
    pub(crate) fn enable_replay(&self, limit: usize, sequence: Arc<dyn Fn(u64) -> Option<Frame> + Send + Sync>) {
        let mut replay = self.shared.replay();
        replay.enabled = true;
        replay.limit = limit;
        replay.sequence = Some(sequence);
    }

    /// Sets what the transport attempts to write if the connection is closed as a slow consumer.
    pub(crate) fn set_goodbye(&self, frame: Frame) {
        *self.shared.goodbye.lock().unwrap_or_else(|p| p.into_inner()) = Some(frame);
    }

    /// Records a write now (keep-alive bookkeeping).
    pub(crate) fn mark_written(&self) {
        self.shared.touch_write();
    }

    /// When the transport last wrote anything to the client.
    pub(crate) fn last_write_ms(&self) -> u64 {
        self.shared.last_write_ms.load(Ordering::Relaxed)
    }
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

/// Writes frames to one connection. Cloning is cheap.
#[derive(Clone)]
pub struct ConnectionSender {
    shared: Arc<ConnectionShared>,
}

impl ConnectionSender {
    /// The connection's public id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The request that carried the transport (for long polling, the latest poll).
    pub fn request(&self) -> Arc<RequestContext> {
        self.shared.lock().request.clone()
    }

    /// Queues a frame without waiting; fails when the outbox is full or the connection gone.
    pub fn try_send(&self, frame: Frame) -> Result<(), OutboxError> {
        self.try_send_with(frame, false)
    }

    /// Queues a hub message (numbered for replay when stateful reconnect is on).
    pub(crate) fn try_send_message(&self, frame: Frame) -> Result<(), OutboxError> {
        self.try_send_with(frame, true)
    }

    /// Queues a hub message without waiting; gives the frame back when the outbox is full
    /// (a closed connection drops it).
    pub(crate) fn try_send_message_or_return(&self, frame: Frame) -> Result<(), Frame> {
        match self.try_queue(frame, true) {
            Err((OutboxError::Full, Some(frame))) => Err(frame),
            _ => Ok(()),
        }
    }

    /// Queues a hub message, waiting for room in the outbox.
    pub(crate) async fn send_message(&self, frame: Frame) -> Result<(), OutboxError> {
        self.send_with(frame, true).await
    }

    /// Acknowledges the client's receipt of messages up to `sequence_id` (stateful reconnect).
    pub(crate) fn ack(&self, sequence_id: u64) {
        self.shared.replay().ack(sequence_id);
    }

    fn try_send_with(&self, frame: Frame, tracked: bool) -> Result<(), OutboxError> {
        self.try_queue(frame, tracked).map_err(|(error, _)| error)
    }

    /// Queues a frame without waiting; on failure, why, with the frame when the outbox was full.
    fn try_queue(&self, frame: Frame, tracked: bool) -> Result<(), (OutboxError, Option<Frame>)> {
        if self.shared.is_aborted() {
            return Err((OutboxError::Closed, None));
        }
        match self.shared.outbox.try_send(Outgoing::Frame(frame, tracked)) {
            Ok(()) => {
                self.count_sent();
                Ok(())
            }
            Err(queue::TrySendError::Full(Outgoing::Frame(frame, _))) => Err((OutboxError::Full, Some(frame))),
            Err(queue::TrySendError::Full(Outgoing::Close)) => Err((OutboxError::Full, None)),
            Err(queue::TrySendError::Closed(_)) => Err((OutboxError::Closed, None)),
        }
    }

    /// Queues a frame, waiting for room in the outbox.
    pub async fn send(&self, frame: Frame) -> Result<(), OutboxError> {
        self.send_with(frame, false).await
    }

    async fn send_with(&self, frame: Frame, tracked: bool) -> Result<(), OutboxError> {
        if self.shared.is_aborted() {
            return Err(OutboxError::Closed);
        }
        tokio::select! {
            r = self.shared.outbox.send(Outgoing::Frame(frame, tracked)) => r.map_err(|_| OutboxError::Closed)?,
            _ = self.shared.abort.cancelled() => return Err(OutboxError::Closed),
        }
        self.count_sent();
        Ok(())
    }

    fn count_sent(&self) {
        self.shared.metrics.sent(self.shared.protocol.load(Ordering::Relaxed));
    }

    /// A new token for one invocation, cancelled by [`ConnectionSender::cancel_invocations`].
    pub(crate) fn invocation_token(&self) -> CancellationToken {
        self.shared
            .invocations
            .get_or_init(CancellationToken::new)
            .child_token()
    }

    /// Cancels every invocation token, made or still to be made.
    pub(crate) fn cancel_invocations(&self) {
        self.shared.invocations.get_or_init(CancellationToken::new).cancel();
    }

    /// Records the hub protocol agreed in the handshake (a metrics label).
    pub(crate) fn set_protocol(&self, name: &str) {
        self.shared
            .protocol
            .store(crate::observability::protocol_index(name), Ordering::Relaxed);
    }

    /// The endpoint's counters.
    pub(crate) fn metrics(&self) -> &EndpointMetrics {
        &self.shared.metrics
    }

    /// Ends the connection after what is already queued has been written.
    pub fn close(&self) {
        if self.shared.outbox.try_send(Outgoing::Close).is_err() {
            self.abort();
        }
    }

    /// Closes a connection whose client does not read: a Close message naming the reason is
    /// attempted, and the transport ends regardless.
    pub(crate) fn abort_slow(&self) {
        if !self.shared.slow.swap(true, Ordering::Relaxed) {
            self.shared.metrics.slow_consumer_closed();
        }
        self.shared.end();
    }

    /// Ends the connection now, dropping whatever is queued.
    pub fn abort(&self) {
        self.shared.end();
    }

    /// Whether the connection has been aborted.
    pub fn is_aborted(&self) -> bool {
        self.shared.is_aborted()
    }
}

/// A boxed future, as handlers return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs the application side of each connection of an endpoint.
pub trait ConnectionHandler: Send + Sync + 'static {
    /// Called once per connection, when its first transport attaches; the connection ends
    /// when the returned future completes.
    fn run(&self, connection: Connection) -> BoxFuture<()>;
}

impl<F, Fut> ConnectionHandler for F
where
    F: Fn(Connection) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn run(&self, connection: Connection) -> BoxFuture<()> {
        Box::pin(self(connection))
    }
}

/// What a transport gets when it attaches.
pub(crate) struct Attached {
    pub(crate) outbox: Option<queue::Receiver<Outgoing>>,
    pub(crate) inbox: Option<queue::Sender<Frame>>,
    /// WebSockets: the handler, for the socket's task to run.
    pub(crate) handler: Option<BoxFuture<()>>,
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
pub(crate) struct ConnectionManager {
    connections: DashMap<Arc<str>, Arc<ConnectionShared>>,
    /// How many of them have not started a transport yet.
    unstarted: AtomicUsize,
    /// The server's started connections, shared by its endpoints (`max_connections`).
    capacity: Arc<Capacity>,
    metrics: Arc<EndpointMetrics>,
}

/// How long connections without a transport are kept, by kind (see
/// [`ConnectionManager::sweep`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SweepTimeouts {
    /// Negotiated, never started.
    pub(crate) unstarted: Duration,
    /// Long polling, no poll waiting.
    pub(crate) disconnect: Duration,
    /// Stateful WebSocket whose socket dropped.
    pub(crate) reconnect_grace: Duration,
}

impl SweepTimeouts {
    /// Every connection without a transport goes now (shutdown).
    pub(crate) const NOW: SweepTimeouts = SweepTimeouts {
        unstarted: Duration::ZERO,
        disconnect: Duration::ZERO,
        reconnect_grace: Duration::ZERO,
    };
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

    /// Creates a connection that no transport carries yet. With `legacy_ids` (negotiate
    /// version 0) the token is the public id.
    pub(crate) fn create(&self, outbox_capacity: usize, legacy_ids: bool) -> Arc<ConnectionShared> {
        let id: Arc<str> = random_id().into();
        let token: Arc<str> = if legacy_ids { id.clone() } else { random_id().into() };
        let (tx, rx) = queue::channel(outbox_capacity.max(1));
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
            replay: Mutex::new(Replay {
                next_id: 1,
                ..Replay::default()
            }),
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
    fn forget(&self, shared: &ConnectionShared) {
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
        let task: BoxFuture<()> = Box::pin(async move {
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

    /// Drops connections that were negotiated but never started within
    /// `timeouts.unstarted`, long polling connections whose client stopped polling
    /// `timeouts.disconnect` ago, WebSocket connections whose socket dropped
    /// `timeouts.reconnect_grace` ago without being re-attached, and (a backstop) any other
    /// connection that was ended. An ended long polling connection stays until its client
    /// stops polling (its next poll learns the end), as the disconnect timeout says.
    pub(crate) fn sweep(&self, timeouts: SweepTimeouts) {
        self.connections.retain(|_, c| {
            let mut state = c.lock();
            let keep = if c.is_aborted() && state.transport != Some(TransportKind::LongPolling) {
                false
            } else if !state.started {
                c.created.elapsed() < timeouts.unstarted
            } else if state.transport == Some(TransportKind::LongPolling) && state.poll.is_none() {
                state.last_poll_end.elapsed() < timeouts.disconnect
            } else if let Some(since) = state.detached_at {
                since.elapsed() < timeouts.reconnect_grace
            } else {
                true
            };
            if !keep {
                tracing::debug!(connection = %c.id, "connection timed out without a transport");
                state.inbox_tx = None;
                state.ws_inbox = None;
                drop(state);
                c.end();
                self.forget(c);
            }
            keep
        });
    }

    /// Ends every connection now.
    pub(crate) fn abort_all(&self) {
        for c in self.connections.iter() {
            c.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_is_a_year_away() {
        let year = FAR.as_millis() as u64;
        let away = instant_of(u64::MAX) - tokio::time::Instant::now();
        assert!(away > FAR - Duration::from_secs(60) && away <= FAR, "{away:?}");
        let soon = instant_of(now_ms() + 1000) - tokio::time::Instant::now();
        assert!(soon <= Duration::from_secs(1), "{soon:?}");
        assert!(bounded(Duration::MAX) == FAR && bounded(Duration::from_secs(1)) == Duration::from_secs(1));
        let away = deadline_after(Duration::MAX) - tokio::time::Instant::now();
        assert!(away <= Duration::from_millis(year), "{away:?}");
    }

    /// A handler that never ends by itself.
    async fn forever(connection: Connection) {
        connection.aborted().await;
        std::future::pending::<()>().await
    }

    #[tokio::test]
    async fn the_sweeper_forgets_an_ended_connection_whatever_its_state() {
        let capacity = Arc::new(Capacity::new(Some(1)));
        let manager = Arc::new(ConnectionManager::with_capacity(
            EndpointMetrics::new("/sweep"),
            capacity.clone(),
        ));
        let handler: Arc<dyn ConnectionHandler> = Arc::new(forever);
        let shared = manager.create(8, false);
        // Started over a WebSocket whose task (holding the handler) is stuck.
        let attached = manager
            .attach(
                &shared,
                TransportKind::WebSockets,
                RequestContext::default(),
                None,
                &handler,
            )
            .expect("attach");
        assert!(capacity.is_full());
        shared.end();
        let long = Duration::from_secs(3600);
        manager.sweep(SweepTimeouts {
            unstarted: long,
            disconnect: long,
            reconnect_grace: long,
        });
        assert_eq!(manager.len(), 0);
        assert!(!capacity.is_full(), "its place is free");
        drop(attached);
    }
}
