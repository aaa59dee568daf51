//! The dispatcher: runs one hub connection — handshake, reading messages, routing invocations
//! to the generated router, keep-alive, and closing.
//!
//! The read loop never awaits a hub method: invocations run as futures polled beside it (up to
//! `max_parallel_invocations` at once, the rest queued), so Pings, Completions and Closes are
//! read while a method runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use std::future::Future;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use tokio::sync::mpsc;

use super::deadline;
use super::filter::{ConnectionInfo, Filters, InvocationInfo, InvocationOutcome};
use super::hooks::{on_connected, on_disconnected, Registered};
use super::panic;
use super::sequence::{IncomingSequence, Numbered, SequenceError};
use super::stream::UploadItem;
use super::{Call, ConnectionError, Hub, HubContext, HubError, MethodDef, MethodKind, Outcome};
use crate::auth;
use crate::clients::lifetime::{LifetimeManager, LocalConnection};
use crate::connection::quiet::Quiet;
use crate::connection::{
    now_ms, BoxFuture, Connection, ConnectionHandler, ConnectionSender, Frame, InputError, TransportKind,
};
use crate::observability::protocol_index;
use crate::protocol::handshake::{self, HandshakeError};
use crate::protocol::{
    CompletionResult, HubMessage, HubProtocol, Invocation, MessageReader, OutMessage, ProtocolError, TransferFormat,
};
use crate::server::HubOptions;

/// A hub mapped at an endpoint: the connection handler of hub connections.
pub(crate) struct HubEndpoint<H: Hub> {
    pub(super) hub: Arc<H>,
    manager: Arc<LifetimeManager>,
    pub(super) options: Arc<HubOptions>,
    /// Each method under its declared name and under its lowercase name (method names are
    /// fixed at compile time, so a fast hash is safe here).
    methods: rustc_hash::FxHashMap<String, usize>,
    shutdown: CancellationToken,
    pub(super) filters: Filters,
    /// Per protocol, the Close message a slow consumer is sent (encoded when first needed).
    goodbyes: Vec<OnceLock<Option<Frame>>>,
}

impl<H: Hub> HubEndpoint<H> {
    pub(crate) fn new(
        hub: Arc<H>,
        manager: Arc<LifetimeManager>,
        options: Arc<HubOptions>,
        shutdown: CancellationToken,
        filters: Filters,
    ) -> Self {
        let methods = H::__METHODS
            .iter()
            .enumerate()
            .flat_map(|(i, m)| [(m.name.to_string(), i), (m.name.to_lowercase(), i)])
            .collect();
        let goodbyes = manager.protocols().iter().map(|_| OnceLock::new()).collect();
        HubEndpoint {
            goodbyes,
            hub,
            manager,
            options,
            methods,
            shutdown,
            filters,
        }
    }

    /// The method a target names; method names are matched ignoring case, as by the reference
    /// server.
    fn find(&self, target: &str) -> Option<usize> {
        if let Some(&i) = self.methods.get(target) {
            return Some(i);
        }
        // Short ASCII names (nearly all) are lowered on the stack.
        let mut lowered = [0u8; 64];
        if target.is_ascii() && target.len() <= lowered.len() {
            let lowered = &mut lowered[..target.len()];
            lowered.copy_from_slice(target.as_bytes());
            lowered.make_ascii_lowercase();
            return std::str::from_utf8(lowered)
                .ok()
                .and_then(|name| self.methods.get(name))
                .copied();
        }
        self.methods.get(&target.to_lowercase()).copied()
    }
}

/// The handler mapped at a hub's path.
pub(crate) struct HubHandler<H: Hub>(pub(crate) Arc<HubEndpoint<H>>);

impl<H: Hub> ConnectionHandler for HubHandler<H> {
    fn run(&self, connection: Connection) -> BoxFuture<()> {
        Box::pin(run_connection(self.0.clone(), connection))
    }
}

fn frame_for(format: TransferFormat, bytes: Bytes) -> Frame {
    match format {
        TransferFormat::Text => Frame::Text(bytes),
        TransferFormat::Binary => Frame::Binary(bytes),
    }
}

/// Ends a connection with a Close message (best effort) and closes the transport.
fn close_with(sender: &ConnectionSender, protocol: &dyn HubProtocol, error: Option<&str>, allow_reconnect: bool) {
    if let Ok(bytes) = protocol.encode(&OutMessage::Close { error, allow_reconnect }) {
        let _ = sender.try_send(frame_for(protocol.transfer_format(), bytes));
    }
    sender.close();
}

pub(super) fn closed_with_error(detail: &str, kind: &str, detailed: bool) -> String {
    const BASE: &str = "Connection closed with an error.";
    if detailed {
        format!("{BASE} {kind}: {detail}")
    } else {
        BASE.to_string()
    }
}

/// Reads the handshake. Returns the chosen protocol's index and any bytes after it.
async fn handshake(
    connection: &mut Connection,
    protocols: &[Arc<dyn HubProtocol>],
    goodbyes: &[OnceLock<Option<Frame>>],
    options: &HubOptions,
) -> Option<(usize, Vec<u8>, bool)> {
    let sender = connection.sender();
    let reply_error = |text: &str| {
        let _ = sender.try_send(Frame::Text(handshake::error_reply(text).into()));
        sender.close();
    };
    let deadline = tokio::time::sleep(options.handshake_timeout);
    tokio::pin!(deadline);
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::select! {
            _ = &mut deadline => {
                tracing::debug!(connection = connection.id(), "handshake timed out");
                reply_error(handshake::HANDSHAKE_CANCELED);
                return None;
            }
            frame = connection.recv() => frame?,
        };
        buffer.extend_from_slice(frame.data());
        match handshake::parse_request(&buffer) {
            Err(HandshakeError::Incomplete) => {
                if buffer.len() > options.max_message_size {
                    reply_error(handshake::HANDSHAKE_CANCELED);
                    return None;
                }
            }
            Err(HandshakeError::Invalid(detail)) => {
                tracing::debug!(connection = connection.id(), %detail, "invalid handshake");
                let text = if options.detailed_errors {
                    format!("{} InvalidDataException: {detail}", handshake::HANDSHAKE_FAILED)
                } else {
                    handshake::HANDSHAKE_FAILED.to_string()
                };
                reply_error(&text);
                return None;
            }
            Ok((request, used)) => {
                let supports_binary = connection.request().transport() != Some(TransportKind::ServerSentEvents);
                match handshake::select_protocol(&request, protocols, supports_binary) {
                    Err(text) => {
                        tracing::debug!(connection = connection.id(), %text, "handshake refused");
                        reply_error(&text);
                        return None;
                    }
                    Ok(protocol) => {
                        let index = protocols.iter().position(|p| Arc::ptr_eq(p, protocol)).unwrap_or(0);
                        // The success reply is sent once the connection is registered (see
                        // `run_connection`), so that messages for it reach it from then on.
                        buffer.drain(..used);
                        let stateful = request.version >= 2
                            && connection.transport() == Some(TransportKind::WebSockets)
                            && connection.stateful_negotiated();
                        // The same for every connection of the endpoint that speaks this
                        // protocol: encoded once, shared by all.
                        let goodbye = goodbyes.get(index).and_then(|cell| {
                            cell.get_or_init(|| {
                                let slow = closed_with_error(
                                    "The client is not reading: its outbox is full.",
                                    "InvalidOperationException",
                                    options.detailed_errors,
                                );
                                let message = OutMessage::Close {
                                    error: Some(&slow),
                                    allow_reconnect: true,
                                };
                                let bytes = protocol.encode(&message).ok()?;
                                Some(frame_for(protocol.transfer_format(), bytes))
                            })
                            .clone()
                        });
                        if let Some(goodbye) = goodbye {
                            connection.set_goodbye(goodbye);
                        }
                        if stateful {
                            let encoder = protocol.clone();
                            let format = protocol.transfer_format();
                            connection.enable_replay(
                                options.stateful_reconnect_buffer,
                                Arc::new(move |sequence_id| {
                                    let message = OutMessage::Sequence { sequence_id };
                                    encoder.encode(&message).ok().map(|bytes| frame_for(format, bytes))
                                }),
                            );
                        }
                        return Some((index, buffer, stateful));
                    }
                }
            }
        }
    }
}

/// Why the read loop ended.
enum End {
    /// The client went away or closed cleanly.
    ClientGone,
    /// The hub asked to close the connection.
    Requested,
    /// The server is shutting down.
    Shutdown,
    /// An error: the Close message's text and allowReconnect, and what on_disconnected sees.
    Error { close_text: String, error: ConnectionError },
    /// The transport was aborted (slow consumer, forced close).
    Aborted,
}

async fn run_connection<H: Hub>(endpoint: Arc<HubEndpoint<H>>, mut connection: Connection) {
    let options = endpoint.options.clone();
    let protocols = endpoint.manager.protocols().clone();
    let sender = connection.sender();
    let Some((protocol_index, leftover, stateful)) =
        handshake(&mut connection, &protocols, &endpoint.goodbyes, &options).await
    else {
        return;
    };
    let protocol = protocols[protocol_index].clone();
    sender.set_protocol(protocol.name());

    let id: Arc<str> = connection.id().into();
    let identity = connection.identity().cloned();
    let user_id = identity.as_ref().and_then(|i| i.user_id()).map(Arc::<str>::from);
    let cx = Arc::new(HubContext::<H>::new(
        endpoint.manager.clone(),
        id.clone(),
        identity,
        sender.clone(),
    ));
    // Held until the connection is added: connections of one user that start together are
    // counted together.
    let mut reservation = None;
    if let (Some(max), Some(user)) = (options.max_connections_per_user, &user_id) {
        reservation = endpoint.manager.reserve_user_connection(user, &id, max);
        if reservation.is_none() {
            tracing::warn!(connection = %id, %user, "closing a connection: the user has too many");
            let text = closed_with_error(
                &format!("The user has the most connections allowed ({max})."),
                "InvalidOperationException",
                options.detailed_errors,
            );
            let reply = frame_for(protocol.transfer_format(), Bytes::from_static(handshake::SUCCESS_REPLY));
            let _ = sender.try_send(reply);
            close_with(&sender, &*protocol, Some(&text), false);
            return;
        }
    }
    let local = Arc::new(LocalConnection::new(
        id.clone(),
        sender.clone(),
        protocol_index,
        user_id,
    ));
    let reply = frame_for(protocol.transfer_format(), Bytes::from_static(handshake::SUCCESS_REPLY));
    endpoint
        .manager
        .add_connection(local.clone(), || {
            let _ = sender.try_send(reply);
        })
        .await;
    drop(reservation);
    tracing::debug!(connection = %id, protocol = protocol.name(), "hub connection opened");

    let connection_info = ConnectionInfo {
        hub: std::any::type_name::<H>(),
        connection_id: id.clone(),
        user_id: local.user_id.clone(),
    };
    // From here on the connection leaves the manager however this future ends.
    let mut registered = Registered::new(endpoint.manager.clone(), id.clone());
    if let Err(text) = on_connected(&endpoint, &cx, &connection_info).await {
        registered.remove().await;
        close_with(&sender, &*protocol, Some(&text), false);
        return;
    }

    let end = read_loop(&endpoint, &mut connection, &cx, &local, &protocol, leftover, stateful).await;
    // Every invocation's token is cancelled (the tokens exist only if one was asked for).
    sender.cancel_invocations();
    registered.remove().await;

    let error = match end {
        End::ClientGone => {
            tracing::debug!(connection = %id, "hub connection closed by the client");
            sender.close();
            None
        }
        End::Requested => {
            tracing::debug!(connection = %id, "hub connection closed by the server");
            close_with(&sender, &*protocol, None, false);
            None
        }
        End::Shutdown => {
            tracing::debug!(connection = %id, "hub connection closed: server shutting down");
            close_with(&sender, &*protocol, None, true);
            None
        }
        End::Error { close_text, error } => {
            tracing::info!(connection = %id, %error, "hub connection closed with an error");
            close_with(&sender, &*protocol, Some(&close_text), true);
            Some(error)
        }
        End::Aborted => {
            tracing::debug!(connection = %id, "hub connection aborted");
            Some(ConnectionError::new("The connection was aborted."))
        }
    };
    on_disconnected(&endpoint, cx, &connection_info, error).await;
}

/// A client stream item that waits for room in its stream's buffer.
struct BlockedUpload {
    stream_id: String,
    sender: mpsc::Sender<UploadItem>,
    item: UploadItem,
    last: bool,
}

type Running = BoxFuture<Option<(Option<String>, BoxFuture<Outcome>)>>;

/// Per-connection dispatch state.
struct Dispatch<'a, H: Hub> {
    endpoint: &'a Arc<HubEndpoint<H>>,
    cx: &'a Arc<HubContext<H>>,
    local: &'a Arc<LocalConnection>,
    protocol: &'a Arc<dyn HubProtocol>,
    sender: ConnectionSender,
    running: LazySet<Running>,
    /// Streams, queued invocations and a blocked upload: made when first needed (most
    /// connections only ever make plain invocations).
    more: Option<Box<More>>,
    parallel: usize,
    /// `None` without a rate limit.
    rate: Option<Box<RateLimit>>,
}

/// The dispatch state most connections never need.
#[derive(Default)]
struct More {
    /// Invocations with client-to-server streams, which the parallel limit does not count.
    unlimited: LazySet<Running>,
    waiting: VecDeque<(usize, Call)>,
    streams: LazySet<BoxFuture<Option<String>>>,
    stream_tokens: HashMap<String, CancellationToken>,
    uploads: HashMap<String, mpsc::Sender<UploadItem>>,
    blocked: Option<BlockedUpload>,
}

/// What finished in [`More`]'s sets.
enum MoreEvent {
    /// An invocation with client streams finished (possibly handing over a stream).
    Unlimited(Option<(Option<String>, BoxFuture<Outcome>)>),
    /// A streaming method finished.
    Stream(Option<String>),
}

/// The next thing to finish in `more`'s sets.
fn next_more(more: &mut Option<Box<More>>) -> impl Future<Output = MoreEvent> + '_ {
    std::future::poll_fn(move |cx| {
        let Some(more) = more.as_deref_mut() else {
            return std::task::Poll::Pending;
        };
        if let std::task::Poll::Ready(Some(done)) = more.unlimited.poll_next(cx) {
            return std::task::Poll::Ready(MoreEvent::Unlimited(done));
        }
        if let std::task::Poll::Ready(Some(done)) = more.streams.poll_next(cx) {
            return std::task::Poll::Ready(MoreEvent::Stream(done));
        }
        std::task::Poll::Pending
    })
}

/// A set of futures that allocates only once something is pushed (most connections never
/// stream, and most invocations finish at once): an idle connection keeps less memory.
struct LazySet<F>(Option<FuturesUnordered<F>>);

impl<F> Default for LazySet<F> {
    fn default() -> Self {
        LazySet(None)
    }
}

impl<F: Future + Unpin> LazySet<F> {
    fn push(&mut self, future: F) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(future);
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next output; `None` when the set is empty.
    fn next(&mut self) -> impl Future<Output = Option<F::Output>> + '_ {
        std::future::poll_fn(move |cx| self.poll_next(cx))
    }

    fn poll_next(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<F::Output>> {
        match &mut self.0 {
            Some(set) if !set.is_empty() => set.poll_next_unpin(cx),
            _ => std::task::Poll::Ready(None),
        }
    }
}

/// A token bucket: `per_second` invocations on average, bursts of up to one second's worth.
struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        RateLimit {
            per_second,
            tokens: per_second,
            last: std::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let rate = self.per_second;
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl<H: Hub> Dispatch<'_, H> {
    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Default::default)
    }

    /// A client stream item waits for room.
    fn is_blocked(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.blocked.is_some())
    }

    fn waiting_len(&self) -> usize {
        self.more.as_ref().map_or(0, |m| m.waiting.len())
    }

    /// Whether the next message may be handled now: no client stream item waits for room,
    /// and fewer than `max_waiting` invocations wait for their turn.
    fn ready(&self, max_waiting: usize) -> bool {
        !self.is_blocked() && self.waiting_len() < max_waiting
    }

    fn frame(&self, bytes: Bytes) -> Frame {
        frame_for(self.protocol.transfer_format(), bytes)
    }

    fn start(&mut self, method: usize, call: Call) {
        // As the reference server: invocations that stream (either way) do not count against
        // the parallel limit.
        let limited = call.uploads.is_empty() && H::__METHODS[method].kind == MethodKind::Plain;
        // Only a streaming method's outcome names its stream.
        let stream_id = if H::__METHODS[method].kind == MethodKind::Stream {
            call.invocation_id.clone()
        } else {
            None
        };
        // Filters are rare: their handle is cloned only when there are some.
        let filters = (!self.endpoint.filters.is_empty()).then(|| self.endpoint.filters.clone());
        let info = filters.as_ref().map(|_| InvocationInfo {
            hub: std::any::type_name::<H>(),
            method: H::__METHODS[method].name,
            connection_id: self.local.id.clone(),
            user_id: self.local.user_id.clone(),
            streaming: H::__METHODS[method].kind == MethodKind::Stream,
        });
        if let (Some(filters), Some(info)) = (&filters, &info) {
            let refused = match panic::catch(|| filters.before_invoke(info)) {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(call.finish_error(error)),
                Err(payload) => {
                    self.report_panic(info.method, &*payload);
                    Some(call.panicked(&*payload))
                }
            };
            if let Some(outcome) = refused {
                if let Some(bytes) = outcome.completion {
                    let _ = self.sender.try_send_message(self.frame(bytes));
                }
                // A refused stream never runs: its id is free again.
                if let Some(id) = &stream_id {
                    self.more().stream_tokens.remove(id);
                }
                return;
            }
        }
        let started = info.as_ref().map(|_| std::time::Instant::now());
        let mut future = self.endpoint.hub.clone().__invoke(self.cx.clone(), method, call);
        let format = self.protocol.transfer_format();
        let hub = std::any::type_name::<H>();
        let running: Running = 'running: {
            if info.is_none() {
                // Most methods finish without waiting: poll once here (a spurious poll is harmless
                // to a future that is not ready; the set polls it again with the task's waker) and
                // answer at once, without a trip through the set.
                let mut context = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
                let polled = match panic::catch(|| future.as_mut().poll(&mut context)) {
                    Ok(polled) => polled,
                    Err(payload) => std::task::Poll::Ready(panic::recover(hub, &self.sender, payload)),
                };
                if let std::task::Poll::Ready(outcome) = polled {
                    if let Some(stream) = outcome.stream {
                        self.stream_started(stream_id, stream);
                        return;
                    }
                    let Some(bytes) = outcome.completion else { return };
                    let Err(frame) = self.sender.try_send_message_or_return(frame_for(format, bytes)) else {
                        return;
                    };
                    // The outbox is full: wait for room like any other reply.
                    let sender = self.sender.clone();
                    break 'running Box::pin(async move {
                        let _ = sender.send_message(frame).await;
                        None
                    });
                }
            }
            let sender = self.sender.clone();
            Box::pin(async move {
                let outcome = match panic::catch_future(future).await {
                    Ok(outcome) => outcome,
                    Err(payload) => panic::recover(hub, &sender, payload),
                };
                if let (Some(filters), Some(info), Some(started)) = (&filters, &info, started) {
                    let result = InvocationOutcome {
                        elapsed: started.elapsed(),
                        failed: outcome.failed,
                    };
                    if let Err(payload) = panic::catch(|| filters.after_invoke(info, &result)) {
                        // The method's reply is not lost.
                        let site = panic::Site {
                            hub,
                            method: info.method,
                            sender: &sender,
                        };
                        panic::report(&site, &*payload);
                    }
                }
                if let Some(stream) = outcome.stream {
                    return Some((stream_id, stream));
                }
                if let Some(bytes) = outcome.completion {
                    let _ = sender.send_message(frame_for(format, bytes)).await;
                }
                None
            })
        };
        if limited {
            self.running.push(running);
        } else {
            self.more().unlimited.push(running);
        }
    }

    /// Logs and counts a panic in a filter around `method`.
    fn report_panic(&self, method: &'static str, payload: &(dyn std::any::Any + Send)) {
        let site = panic::Site {
            hub: std::any::type_name::<H>(),
            method,
            sender: &self.sender,
        };
        panic::report(&site, payload);
    }

    fn start_waiting(&mut self) {
        while self.running.len() < self.parallel {
            let Some((method, call)) = self.more.as_mut().and_then(|m| m.waiting.pop_front()) else {
                break;
            };
            self.start(method, call);
        }
    }

    fn invoke(&mut self, invocation: Invocation, streaming: bool) {
        let Some((method, call)) = self.bind(invocation, streaming) else {
            return;
        };
        let limited = call.uploads.is_empty() && H::__METHODS[method].kind == MethodKind::Plain;
        if !limited || self.running.len() < self.parallel {
            self.start(method, call);
        } else {
            self.more().waiting.push_back((method, call));
        }
    }

    /// A streaming method's items flow beside the other invocations.
    fn stream_started(&mut self, stream_id: Option<String>, stream: BoxFuture<Outcome>) {
        let sender = self.sender.clone();
        let format = self.protocol.transfer_format();
        self.more().streams.push(Box::pin(async move {
            let outcome = match panic::catch_future(stream).await {
                Ok(outcome) => outcome,
                Err(payload) => panic::recover(std::any::type_name::<H>(), &sender, payload),
            };
            if let Some(bytes) = outcome.completion {
                let _ = sender.send_message(frame_for(format, bytes)).await;
            }
            stream_id
        }));
    }

    /// Hands a client stream item to its stream; `false` when the stream's buffer is full
    /// (the item then waits in `blocked`).
    fn upload(&mut self, stream_id: String, item: UploadItem, last: bool) -> bool {
        let Some(sender) = self.more.as_ref().and_then(|m| m.uploads.get(&stream_id)).cloned() else {
            tracing::debug!(stream = %stream_id, "ignoring an item for an unknown stream");
            return true;
        };
        match sender.try_send(item) {
            Ok(()) => {
                if last {
                    self.more().uploads.remove(&stream_id);
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The hub method stopped reading this stream.
                self.more().uploads.remove(&stream_id);
                true
            }
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.more().blocked = Some(BlockedUpload {
                    stream_id,
                    sender,
                    item,
                    last,
                });
                false
            }
        }
    }

    /// Handles one message; `Some` ends the connection.
    fn handle(&mut self, message: HubMessage) -> Option<End> {
        match message {
            HubMessage::Invocation(inv) => self.invoke(inv, false),
            HubMessage::StreamInvocation(inv) => self.invoke(inv, true),
            HubMessage::StreamItem {
                invocation_id, item, ..
            } => {
                self.upload(invocation_id, UploadItem::Item(item), false);
            }
            HubMessage::Completion {
                invocation_id, result, ..
            } => {
                if self
                    .more
                    .as_ref()
                    .is_some_and(|m| m.uploads.contains_key(&invocation_id))
                {
                    match result {
                        CompletionResult::Error(error) => {
                            self.upload(invocation_id, UploadItem::Error(error), true);
                        }
                        _ => {
                            // The client completed its stream.
                            self.more().uploads.remove(&invocation_id);
                        }
                    }
                } else {
                    self.local.complete(&invocation_id, result);
                }
            }
            HubMessage::CancelInvocation { invocation_id, .. } => {
                if let Some(token) = self.more.as_ref().and_then(|m| m.stream_tokens.get(&invocation_id)) {
                    token.cancel();
                }
            }
            HubMessage::Close { error, .. } => {
                if let Some(error) = error {
                    tracing::debug!(connection = self.cx.connection_id(), %error, "client closed with an error");
                }
                return Some(End::ClientGone);
            }
            HubMessage::Ping | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
        }
        None
    }

    /// `#[hub(authorize ...)]`: checked before anything else about the call, as the reference
    /// server does; the refusal to send, if the caller falls short (the connection stays). A
    /// policy is user code: its panic fails this call like a panicking method.
    fn refuse_unauthorized(&self, def: &MethodDef, call: &Call) -> Option<Outcome> {
        let identity = self.cx.identity();
        let authorized =
            panic::catch(|| auth::authorized(H::__AUTHORIZE, identity) && auth::authorized(def.authorize, identity));
        match authorized {
            Ok(true) => None,
            Ok(false) => {
                tracing::debug!(method = %call.method, "invocation refused: user is unauthorized");
                let text = format!("Failed to invoke '{}' because user is unauthorized", call.method);
                Some(call.error_text(&text))
            }
            Err(payload) => {
                self.report_panic(def.name, &*payload);
                Some(call.panicked(&*payload))
            }
        }
    }

    /// The refusal to send if the invocation reuses an id that is in use: a running stream's
    /// invocation id, or a running upload's stream id (or one stream id twice).
    fn refuse_ids_in_use(&self, streaming: bool, call: &Call, stream_ids: &[String]) -> Option<Outcome> {
        if let (true, Some(id)) = (streaming, &call.invocation_id) {
            // A second stream under a running one's id would be past the stream limit, and
            // the first could no longer be cancelled.
            if self.more.as_ref().is_some_and(|m| m.stream_tokens.contains_key(id)) {
                tracing::debug!(invocation = %id, "refusing a stream under an id in use");
                return Some(call.error_text(&format!("Invocation ID '{id}' is already in use.")));
            }
        }
        // A client stream id names one upload. Taking over a running upload's id (one whose
        // method still reads it) would end that upload early, as if its client had completed
        // it, and its method would compute from part of its data: refused (the reference
        // server replaces it silently).
        let uploads = self.more.as_ref().map(|m| &m.uploads);
        let in_use = stream_ids.iter().enumerate().find(|&(i, id)| {
            let running = uploads
                .and_then(|uploads| uploads.get(id))
                .is_some_and(|tx| !tx.is_closed());
            running || stream_ids[..i].contains(id)
        });
        let (_, id) = in_use?;
        tracing::debug!(stream = %id, "refusing an upload under an id in use");
        Some(call.error_text(&format!("Stream ID '{id}' is already in use.")))
    }

    /// Looks up and checks an invocation; failures are answered with a Completion error
    /// (when the invocation expects a reply) and yield `None`.
    fn bind(&mut self, invocation: Invocation, streaming: bool) -> Option<(usize, Call)> {
        let Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
            ..
        } = invocation;
        let method = self.endpoint.find(&target);
        let def = method.map(|m| &H::__METHODS[m]);
        // Only a streaming invocation can be cancelled on its own.
        let cancel = streaming.then(|| self.sender.invocation_token());
        let mut call = Call {
            method: target,
            invocation_id,
            arguments,
            uploads: Vec::new(),
            protocol: self.protocol.clone(),
            sender: self.sender.clone(),
            detailed_errors: self.endpoint.options.detailed_errors,
            cancel: cancel.clone(),
            name: def.map_or("", |d| d.name),
            pumping: false,
        };
        let reply = |this: &Self, outcome: Outcome| {
            if let Some(bytes) = outcome.completion {
                let _ = this.sender.try_send_message(this.frame(bytes));
            }
        };
        let Some(def) = def else {
            tracing::debug!(method = %call.method, "invocation of an unknown hub method");
            let text = format!(
                "Failed to invoke '{}' due to an error on the server. HubException: Method does not exist.",
                call.method
            );
            reply(self, call.error_text(&text));
            return None;
        };
        if let Some(refused) = self.refuse_unauthorized(def, &call) {
            reply(self, refused);
            return None;
        }
        match (streaming, def.kind) {
            (true, MethodKind::Plain) => {
                let text = format!(
                    "The client attempted to invoke the non-streaming '{}' method with a streaming invocation.",
                    call.method
                );
                reply(self, call.error_text(&text));
                return None;
            }
            (false, MethodKind::Stream) => {
                let text = format!(
                    "The client attempted to invoke the streaming '{}' method with a non-streaming invocation.",
                    call.method
                );
                reply(self, call.error_text(&text));
                return None;
            }
            _ => {}
        }
        if call.arguments.len() != def.arguments {
            let detail = format!(
                "Invocation provides {} argument(s) but target expects {}.",
                call.arguments.len(),
                def.arguments
            );
            reply(self, call.binding_failure(&detail));
            return None;
        }
        if stream_ids.len() != def.streams {
            let error = HubError::for_client(format!(
                "Client sent {} stream(s), Hub method expects {}.",
                stream_ids.len(),
                def.streams
            ));
            reply(self, call.finish_error(error));
            return None;
        }
        if let Some(refused) = self.refuse_ids_in_use(streaming, &call, &stream_ids) {
            reply(self, refused);
            return None;
        }
        let opening = stream_ids.len() + usize::from(streaming);
        let open = self
            .more
            .as_ref()
            .map_or(0, |m| m.uploads.len() + m.stream_tokens.len());
        if opening > 0 && open + opening > self.endpoint.options.max_streams_per_connection {
            let error = HubError::for_client(format!(
                "Too many streams: a connection may have at most {} open at once.",
                self.endpoint.options.max_streams_per_connection
            ));
            reply(self, call.finish_error(error));
            return None;
        }
        if !self.rate.as_mut().is_none_or(|rate| rate.take()) {
            let error = HubError::for_client("Too many invocations: slow down.");
            reply(self, call.finish_error(error));
            return None;
        }
        let capacity = self.endpoint.options.stream_buffer_capacity.max(1);
        for id in stream_ids {
            let (tx, rx) = mpsc::channel(capacity);
            self.more().uploads.insert(id, tx);
            call.uploads.push(Some(rx));
        }
        if let (Some(id), Some(cancel)) = (&call.invocation_id, cancel) {
            self.more().stream_tokens.insert(id.clone(), cancel);
        }
        Some((method.unwrap_or(0), call))
    }
}

#[allow(clippy::too_many_arguments)] // one call site; the parts are what the handshake settled
async fn read_loop<H: Hub>(
    endpoint: &Arc<HubEndpoint<H>>,
    connection: &mut Connection,
    cx: &Arc<HubContext<H>>,
    local: &Arc<LocalConnection>,
    protocol: &Arc<dyn HubProtocol>,
    leftover: Vec<u8>,
    stateful: bool,
) -> End {
    let options = &endpoint.options;
    // Stateful reconnect: the client's tracked messages are numbered from 1.
    let mut incoming = IncomingSequence::default();
    let mut ack_at: Option<tokio::time::Instant> = None;
    let format = protocol.transfer_format();
    let protocol_label = protocol_index(protocol.name());
    // Holds the frames read and not handled yet; parses one message whenever the loop is ready
    // for one. New input is read only once it is empty.
    let mut reader = MessageReader::default();
    let max_waiting = options.max_pending_invocations.max(1);
    let mut d = Dispatch {
        endpoint,
        cx,
        local,
        protocol,
        sender: cx.sender().clone(),
        running: LazySet::default(),
        more: None,
        parallel: options.max_parallel_invocations.max(1),
        rate: options
            .max_invocations_per_second
            .map(|per_second| Box::new(RateLimit::new(per_second))),
    };
    // Long polling keeps itself alive: no pings, no client timeout.
    let inherent_keep_alive = connection.transport() == Some(TransportKind::LongPolling);
    let aborted = connection.abort_token();
    // What ends the loop from outside. Made once and looked at only after it signals (below):
    // polling cancellation waits on every message costs two locks each.
    let close_requested = cx.close_requested().clone();
    let shutdown = endpoint.shutdown.clone();
    let ended = async move {
        tokio::select! {
            biased;
            _ = aborted.cancelled() => Ended::Aborted,
            _ = close_requested.cancelled() => Ended::Requested,
            _ = shutdown.cancelled() => Ended::Shutdown,
        }
    };
    // The keep-alive timer is re-armed only when it fires: reads and writes move its deadline
    // later, so a timer that fires early is simply set again. Long polling: a year away.
    let keep_alive_deadline = |connection: &Connection| {
        if inherent_keep_alive {
            return deadline::instant_within_far(u64::MAX);
        }
        let keep_alive_at = deadline::later(connection.last_write_ms(), options.keep_alive_interval);
        let timeout_at = deadline::later(connection.last_read_ms(), options.client_timeout);
        deadline::instant_within_far(keep_alive_at.min(timeout_at))
    };
    // The end and the timer wait together, looked at only after one of them fired (polling a
    // timer on every message registers its waker each time; one `Quiet` for both keeps an idle
    // connection small).
    let rare = Quiet::new(Rare {
        ended,
        keep_alive: tokio::time::sleep_until(keep_alive_deadline(connection)),
    });
    tokio::pin!(rare);
    // Stateful reconnect only: made when first needed.
    let mut ack_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut input = if leftover.is_empty() {
        None
    } else {
        Some(Bytes::from(leftover))
    };
    loop {
        // What was read (the handshake's leftover first, then each frame).
        if let Some(data) = input.take() {
            if let Err(e) = reader.push(&**protocol, data, options.max_message_size) {
                return protocol_error(e, options.detailed_errors);
            }
        }
        // Route messages until one has to wait: a full client-stream buffer, or a full queue
        // of waiting invocations. Each is parsed only now, so one frame cannot queue more.
        while d.ready(max_waiting) {
            let message = match reader.next(&**protocol) {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(e) => return protocol_error(e, options.detailed_errors),
            };
            d.sender.metrics().received(protocol_label, 1);
            if stateful {
                if let HubMessage::Ack { sequence_id } = &message {
                    d.sender.ack(*sequence_id);
                }
                match incoming.number(&message) {
                    Err(SequenceError) => return sequence_error(options.detailed_errors),
                    Ok(Numbered::Replayed) => continue,
                    Ok(Numbered::Untracked) => {}
                    Ok(Numbered::New) => {
                        if ack_at.is_none() {
                            let at = tokio::time::Instant::now() + ACK_DELAY;
                            ack_at = Some(at);
                            match &mut ack_timer {
                                Some(timer) => timer.as_mut().reset(at),
                                None => ack_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                            }
                        }
                    }
                }
            }
            if let Some(end) = d.handle(message) {
                return end;
            }
        }

        let reading = d.ready(max_waiting) && !reader.has_buffered();
        let blocked_sender = d
            .more
            .as_ref()
            .and_then(|m| m.blocked.as_ref())
            .map(|b| b.sender.clone());
        let more_running = d.more.as_ref().is_some_and(|m| m.unlimited.len() + m.streams.len() > 0);

        // In this order: what ends the loop, the timers, finished invocations, and only then
        // more input (a client that floods cannot starve the others; none of them is ready on
        // every pass).
        tokio::select! {
            biased;
            fired = &mut rare => match fired {
                Rarely::Ended(ended) => return match ended {
                    Ended::Requested => End::Requested,
                    Ended::Shutdown => End::Shutdown,
                    // The transport ends by aborting; after a clean close by the client that is no error.
                    Ended::Aborted if connection.closed_by_client() => End::ClientGone,
                    Ended::Aborted => End::Aborted,
                },
                Rarely::KeepAlive => {
                    // Long polling: no pings, no client timeout.
                    if !inherent_keep_alive {
                        let now = now_ms();
                        if now >= deadline::later(connection.last_read_ms(), options.client_timeout) {
                            let detail = "Client hasn't sent a message/ping within the configured ClientTimeoutInterval.";
                            return End::Error {
                                close_text: closed_with_error(detail, "OperationCanceledException", options.detailed_errors),
                                error: ConnectionError::new(detail),
                            };
                        }
                        if now >= deadline::later(connection.last_write_ms(), options.keep_alive_interval) {
                            // Encoded when due (every few seconds at most): kept, it would be one more
                            // buffer for every idle connection.
                            if let Ok(ping) = protocol.encode(&OutMessage::Ping) {
                                let _ = d.sender.try_send(frame_for(format, ping));
                            }
                            // Count the ping as written even before the transport flushes it.
                            connection.mark_written();
                        }
                    }
                    rare.as_mut().inner_mut().project().keep_alive.reset(keep_alive_deadline(connection));
                    // Quiet for a while: keep nothing for messages that may not come.
                    reader.shrink();
                }
            },
            _ = std::future::poll_fn(|cx| match ack_timer.as_mut() {
                Some(timer) => timer.as_mut().poll(cx),
                None => std::task::Poll::Pending,
            }), if ack_at.is_some() => {
                ack_at = None;
                if let Ok(bytes) = protocol.encode(&OutMessage::Ack {
                    sequence_id: incoming.processed(),
                }) {
                    let _ = d.sender.try_send(frame_for(format, bytes));
                }
            }
            Some(handed_over) = d.running.next(), if !d.running.is_empty() => {
                if let Some((stream_id, stream)) = handed_over {
                    d.stream_started(stream_id, stream);
                }
                d.start_waiting();
            }
            event = next_more(&mut d.more), if more_running => match event {
                MoreEvent::Unlimited(handed_over) => {
                    if let Some((stream_id, stream)) = handed_over {
                        d.stream_started(stream_id, stream);
                    }
                }
                MoreEvent::Stream(finished) => {
                    if let Some(id) = finished {
                        d.more().stream_tokens.remove(&id);
                    }
                }
            },
            // Boxed, and only while an item waits: inline, the wait would make every
            // connection's future larger.
            permit = async { Box::pin(blocked_sender?.reserve_owned()).await.ok() }, if d.is_blocked() => {
                if let Some(blocked) = d.more.as_mut().and_then(|m| m.blocked.take()) {
                    match permit {
                        Some(permit) => {
                            permit.send(blocked.item);
                            if blocked.last {
                                d.more().uploads.remove(&blocked.stream_id);
                            }
                        }
                        None => {
                            d.more().uploads.remove(&blocked.stream_id);
                        }
                    }
                }
            }
            frame = connection.recv(), if reading => {
                match frame {
                    Some(frame) => input = Some(frame.data().clone()),
                    None => return input_ended(connection, options),
                }
            }
        }
    }
}

/// What ended the read loop from outside.
enum Ended {
    Aborted,
    Requested,
    Shutdown,
}

pin_project_lite::pin_project! {
    /// What the read loop waits for besides its work: the end of the connection, and its
    /// keep-alive timer.
    struct Rare<E> {
        #[pin]
        ended: E,
        #[pin]
        keep_alive: tokio::time::Sleep,
    }
}

/// Which of [`Rare`]'s waits fired.
enum Rarely {
    Ended(Ended),
    KeepAlive,
}

impl<E: Future<Output = Ended>> Future for Rare<E> {
    type Output = Rarely;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Rarely> {
        let this = self.project();
        if let std::task::Poll::Ready(ended) = this.ended.poll(cx) {
            return std::task::Poll::Ready(Rarely::Ended(ended));
        }
        this.keep_alive.poll(cx).map(|()| Rarely::KeepAlive)
    }
}

/// How soon the server acknowledges a client's messages (stateful reconnect).
const ACK_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// A client's Sequence message went ahead of what it sent.
fn sequence_error(detailed: bool) -> End {
    End::Error {
        close_text: closed_with_error(SequenceError::TEXT, "InvalidOperationException", detailed),
        error: ConnectionError::new(SequenceError::TEXT),
    }
}

/// The end of the client's input: the client went, or its transport refused what it sent.
fn input_ended(connection: &Connection, options: &HubOptions) -> End {
    match connection.input_error() {
        Some(InputError::TooLarge) => protocol_error(
            ProtocolError::MessageTooLarge {
                limit: options.max_frame_size,
            },
            options.detailed_errors,
        ),
        None => End::ClientGone,
    }
}

fn protocol_error(error: ProtocolError, detailed: bool) -> End {
    let detail = error.to_string();
    End::Error {
        close_text: closed_with_error(&detail, "InvalidDataException", detailed),
        error: ConnectionError::new(detail),
    }
}
