//! The WebSocket transport. The upgrade and its buffer sizes live here, in one place.
//!
//! With stateful reconnect, a dropped socket does not end the connection: the transport hands
//! the connection's queues back, and a new socket for the same token takes over after
//! sending the Sequence message and replaying what the client has not acknowledged.
//!
//! A message over `max_frame_size` is refused: the handler's input ends with the reason (a hub
//! answers with its Close message), then the socket closes with 1009 (message too big).

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::Future;
use std::task::Poll;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use warp::reply::Response;

use crate::connection::quiet::Quiet;
use crate::connection::{queue, BoxFuture, ConnectionShared, Frame, InputError, Outgoing};

/// An upgraded WebSocket.
pub(crate) type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Bytes read from the socket at a time. Small, because every idle connection keeps one
/// (most hub messages are far smaller): a larger message is assembled from several reads.
const READ_BUFFER: usize = 1024;
/// Frames queued for one write are gathered up to this many bytes before they hit the socket.
const WRITE_BUFFER: usize = 16 * 1024;
/// How long a client refused for a message too large gets, once told, to stop sending and
/// close its side.
const LINGER: Duration = Duration::from_secs(2);
/// The reason in the close frame (1009) sent after a message too large.
const TOO_LARGE: &str = "message too big";

/// Sizes of one WebSocket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsLimits {
    /// Largest frame or message accepted from the client.
    pub(crate) max_frame_size: usize,
    /// How long one write may take before the client is considered gone.
    pub(crate) send_timeout: Duration,
}

/// A request asking to become a WebSocket (RFC 6455 section 4.2.1), and the means to take
/// over its connection.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

impl Upgrade {
    /// The upgrade `headers` ask for, if they ask for one this server can perform: a GET
    /// with `Connection: upgrade`, `Upgrade: websocket`, version 13 and a key, on an HTTP/1.1
    /// connection that can be taken over.
    pub(crate) fn from_request(method: &Method, headers: &HeaderMap, on_upgrade: Option<OnUpgrade>) -> Option<Self> {
        if method != Method::GET
            || !header_has_token(headers, http::header::CONNECTION, "upgrade")
            || !header_has_token(headers, http::header::UPGRADE, "websocket")
            || headers
                .get(http::header::SEC_WEBSOCKET_VERSION)
                .map(HeaderValue::as_bytes)
                != Some(b"13")
        {
            return None;
        }
        let key = headers.get(http::header::SEC_WEBSOCKET_KEY)?.clone();
        Some(Upgrade {
            key,
            on_upgrade: on_upgrade?,
        })
    }

    /// Answers 101 Switching Protocols; the socket comes from the returned [`PendingSocket`]
    /// once the client has it. The socket reads 1 KiB at a time and gathers writes up to
    /// 16 KiB.
    pub(crate) fn accept(self, limits: WsLimits) -> (Response, PendingSocket) {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(limits.max_frame_size))
            .max_frame_size(Some(limits.max_frame_size));
        let pending = PendingSocket {
            on_upgrade: self.on_upgrade,
            config,
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let mut response = Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        (response, pending)
    }
}

/// A socket that exists once the 101 response has reached the client.
pub(crate) struct PendingSocket {
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
}

impl PendingSocket {
    /// The socket; `None` if the connection could not be taken over.
    async fn connect(self) -> Option<WebSocket> {
        match self.on_upgrade.await {
            Ok(upgraded) => {
                Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(self.config)).await)
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                None
            }
        }
    }
}

fn to_message(frame: Frame) -> Message {
    match frame {
        // Text frames come from the JSON encoder and share its bytes (a broadcast is encoded
        // once for every receiver); the check only reads them.
        Frame::Text(bytes) => match Utf8Bytes::try_from(bytes.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(bytes),
        },
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}

fn close_message(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Where a socket's queues come from.
pub(crate) enum Source {
    /// The connection's first socket, whose task also runs the connection's handler.
    Fresh {
        outbox: queue::Receiver<Outgoing>,
        inbox: queue::Sender<Frame>,
        handler: BoxFuture<()>,
        /// Set when stateful reconnect was negotiated.
        stop: Option<CancellationToken>,
    },
    /// A socket replacing a dropped one (stateful reconnect); the handler runs in a task of
    /// its own by then.
    Reattach { stop: CancellationToken },
}

/// Why the transport loop ended.
#[derive(Clone, Copy)]
enum Exit {
    /// The connection is over (its handler ended, or it was aborted).
    Ended,
    /// The socket went away; the connection may live on.
    SocketGone,
    /// A newer socket took over.
    Replaced,
}

/// What woke the transport loop.
enum Event {
    /// The connection was aborted, or a newer socket took over.
    Stop(Exit),
    /// Something to write (`None`: the outbox is closed).
    Out(Option<Outgoing>),
    /// Something read (`None`: the socket ended).
    In(Option<Result<Message, WsError>>),
    /// The client's input was refused and the handler did not close the connection in time.
    GaveUp,
}

/// Waits for the previous socket's transport to hand the queues back.
async fn take_over(
    shared: &ConnectionShared,
    stop: &CancellationToken,
) -> Option<(queue::Receiver<Outgoing>, queue::Sender<Frame>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        {
            let mut state = shared.lock();
            if state.outbox_rx.is_some() && state.ws_inbox.is_some() {
                state.detached_at = None;
                return state.outbox_rx.take().zip(state.ws_inbox.take());
            }
        }
        tokio::select! {
            _ = shared.detached.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return None,
            _ = stop.cancelled() => return None,
            _ = shared.abort.cancelled() => return None,
        }
    }
}

/// Runs the transport until the socket closes, the connection ends, or a newer socket
/// replaces this one.
///
/// On the connection's first socket, the same task runs the connection's handler: a message
/// read is handled and its answer written in one pass, without waking another task. The
/// handler moves to a task of its own only when the socket goes while the connection lives on
/// (stateful reconnect).
pub(crate) async fn run(pending: PendingSocket, shared: Arc<ConnectionShared>, source: Source, limits: WsLimits) {
    // Boxed: the upgrade's state is not kept beside the transport's for the socket's life.
    let Some(mut socket) = Box::pin(pending.connect()).await else {
        if let Source::Fresh { handler, inbox, .. } = source {
            // Nothing carries the connection: it ends, and its handler sees it end.
            shared.end();
            drop(inbox);
            handler.await;
        }
        return;
    };
    let (mut outbox, inbox, stop, resend, mut handler) = match source {
        Source::Fresh {
            outbox,
            inbox,
            handler,
            stop,
        } => (outbox, inbox, stop, Vec::new(), Some(handler)),
        // Rare paths are boxed: inline, they would make every connection's task larger.
        Source::Reattach { stop } => match Box::pin(take_over(&shared, &stop)).await {
            Some((outbox, inbox)) => {
                let resend = shared.replay().resend();
                tracing::debug!(connection = %shared.id, replayed = resend.len(), "websocket re-attached");
                (outbox, inbox, Some(stop), resend, None)
            }
            None => return,
        },
    };
    // Taken away when the client's input is refused: the handler sees its input end.
    let mut inbox = Some(inbox);
    // Set when the client sent a message too large: how long the handler gets to say why
    // (then the close frame is 1009, and the socket lingers before it closes).
    let mut refused: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    let mut exit = Exit::SocketGone;
    let mut closed_by_client = false;
    let mut ok = true;
    // Looked at only once it signals (see `Quiet`).
    let stopped = Quiet::new({
        let abort = shared.abort.clone();
        async move {
            let replaced = async {
                match stop {
                    Some(stop) => stop.cancelled_owned().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = abort.cancelled() => Exit::Ended,
                _ = replaced => Exit::Replaced,
            }
        }
    });
    tokio::pin!(stopped);
    if !resend.is_empty() {
        // A newer socket or the connection's end stops the resend too.
        let resent = Box::pin(async {
            tokio::select! {
                resent = resend_all(&mut socket, resend, &shared, limits.send_timeout) => Ok(resent),
                why = &mut stopped => Err(why),
            }
        })
        .await;
        ok = resent.unwrap_or_else(|why| {
            exit = why;
            false
        });
    }
    let mut batch: VecDeque<Frame> = VecDeque::new();
    // A frame read for the hosted handler and not yet in its inbox (the socket is not read
    // while there is one).
    let mut unread: Option<Frame> = None;
    while ok && !shared.is_aborted() {
        let event = std::future::poll_fn(|cx| {
            if let Poll::Ready(exit) = stopped.as_mut().poll(cx) {
                return Poll::Ready(Event::Stop(exit));
            }
            if let Some(task) = handler.as_mut() {
                loop {
                    // The frame goes in before the handler is polled, so that a handler reading
                    // here takes it in this pass; only a handler reading from another task is
                    // woken for it. A handler that stopped reading drops it.
                    if let (Some(frame), Some(inbox)) = (unread.take(), inbox.as_ref()) {
                        if let Err(queue::TrySendError::Full(frame)) = inbox.try_send_from(frame, cx.waker()) {
                            unread = Some(frame);
                        }
                    }
                    // What the handler queues is taken below in this same pass: it need not
                    // wake this task.
                    outbox.forget_waker();
                    if task.as_mut().poll(cx).is_ready() {
                        handler = None;
                        unread = None;
                        break;
                    }
                    // A full inbox: try again once there is room (the handler may have made
                    // some just now, or may read from another task).
                    if unread.is_some() && inbox.as_ref().is_some_and(|inbox| inbox.poll_room(cx).is_ready()) {
                        continue;
                    }
                    break;
                }
                if shared.is_aborted() {
                    // Aborted by the handler itself (a slow consumer, most likely): say goodbye.
                    return Poll::Ready(Event::Stop(Exit::Ended));
                }
            }
            if let Poll::Ready(item) = outbox.poll_recv(cx) {
                return Poll::Ready(Event::Out(item));
            }
            if let Some(deadline) = refused.as_mut() {
                // The socket is no longer read: only the handler's goodbye is awaited.
                return deadline.as_mut().poll(cx).map(|()| Event::GaveUp);
            }
            if unread.is_none() {
                if let Poll::Ready(message) = socket.poll_next_unpin(cx) {
                    return Poll::Ready(Event::In(message));
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Stop(why) => {
                if matches!(why, Exit::Ended) {
                    if let Some(goodbye) = shared.goodbye() {
                        // A slow consumer: attempt the Close message, briefly; close regardless.
                        let attempt = async {
                            socket.send(to_message(goodbye)).await?;
                            socket.send(close_message(CloseCode::Policy, "outbox full")).await
                        };
                        let _ = Box::pin(tokio::time::timeout(Duration::from_millis(500), attempt)).await;
                    } else if refused.is_some() {
                        Box::pin(close_briefly(&mut socket, CloseCode::Size, TOO_LARGE)).await;
                    }
                }
                exit = why;
                break;
            }
            Event::Out(out) => {
                let mut close = false;
                let mut overflow = false;
                let mut take = |item: Option<Outgoing>, batch: &mut VecDeque<Frame>, close: &mut bool| match item {
                    Some(Outgoing::Frame(frame, tracked)) => {
                        if tracked && !shared.replay().keep(&frame) {
                            overflow = true;
                        }
                        batch.push_back(frame);
                    }
                    Some(Outgoing::Close) | None => *close = true,
                };
                take(out, &mut batch, &mut close);
                // Write everything that is ready, then flush once.
                while !close && batch.len() < 256 {
                    match outbox.try_recv() {
                        Ok(item) => take(Some(item), &mut batch, &mut close),
                        Err(_) => break,
                    }
                }
                if overflow {
                    tracing::warn!(connection = %shared.id, "closing a connection whose client does not acknowledge messages (stateful reconnect buffer full)");
                    shared.end();
                    exit = Exit::Ended;
                    break;
                }
                // Written through the sink's poll methods: a future of nested sends would be kept
                // in every connection's task.
                let mut close_queued = false;
                let (close_code, close_reason) = match refused {
                    Some(_) => (CloseCode::Size, TOO_LARGE),
                    None => (CloseCode::Normal, ""),
                };
                let write = std::future::poll_fn(|cx| {
                    while !batch.is_empty() || (close && !close_queued) {
                        std::task::ready!(socket.poll_ready_unpin(cx))?;
                        match batch.pop_front() {
                            Some(frame) => socket.start_send_unpin(to_message(frame))?,
                            None => {
                                socket.start_send_unpin(close_message(close_code, close_reason))?;
                                close_queued = true;
                            }
                        }
                    }
                    socket.poll_flush_unpin(cx)
                });
                // Most writes finish at once: the timer is only set for one that has to wait.
                let mut write = std::pin::pin!(write);
                let written = match futures_util::poll!(write.as_mut()) {
                    Poll::Ready(result) => Ok(result),
                    // Boxed: the timer would make every connection's task larger.
                    Poll::Pending => {
                        let waited = Box::pin(async {
                            tokio::select! {
                                written = tokio::time::timeout(limits.send_timeout, write) => Ok(written),
                                // Ended (a slow consumer, most likely) while its socket does not
                                // take more: nothing more can get through.
                                why = &mut stopped => Err(why),
                            }
                        })
                        .await;
                        match waited {
                            Ok(written) => written,
                            Err(why) => {
                                exit = why;
                                break;
                            }
                        }
                    }
                };
                if batch.capacity() > 16 {
                    // A burst is written: give its room back.
                    batch = VecDeque::new();
                }
                match written {
                    Ok(Ok(())) => shared.touch_write(),
                    Ok(Err(e)) => {
                        tracing::debug!(connection = %shared.id, error = %e, "websocket write failed");
                        break;
                    }
                    Err(_) => {
                        tracing::debug!(connection = %shared.id, "websocket write timed out");
                        break;
                    }
                }
                if close {
                    exit = Exit::Ended;
                    break;
                }
            }
            Event::In(incoming) => match incoming {
                Some(Ok(message)) => {
                    shared.touch_read();
                    let frame = match message {
                        Message::Text(text) => Frame::Text(text.into()),
                        Message::Binary(bytes) => Frame::Binary(bytes),
                        Message::Close(_) => {
                            closed_by_client = true;
                            break;
                        }
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                    };
                    if handler.is_some() {
                        // Handed to the handler in the next pass of this task.
                        unread = Some(frame);
                        continue;
                    }
                    let Some(inbox) = inbox.as_ref() else { continue };
                    // Usually there is room; otherwise wait for it (the socket is not read meanwhile).
                    if let Err(queue::TrySendError::Full(frame)) = inbox.try_send(frame) {
                        let waited = Box::pin(async {
                            tokio::select! {
                                _ = inbox.send(frame) => None,
                                why = &mut stopped => Some(why),
                            }
                        })
                        .await;
                        if let Some(why) = waited {
                            exit = why;
                            break;
                        }
                    }
                }
                Some(Err(WsError::Capacity(e))) => {
                    // A message too large. The handler's input ends, and it learns why (a hub
                    // sends its Close message with the error); its close, or the send timeout,
                    // ends the socket with 1009.
                    tracing::debug!(connection = %shared.id, error = %e, "refusing a websocket message over max_frame_size");
                    shared.refuse_input(InputError::TooLarge);
                    unread = None;
                    inbox = None;
                    refused = Some(Box::pin(tokio::time::sleep(limits.send_timeout)));
                }
                Some(Err(e)) => {
                    // A client that goes without the closing handshake (a closed tab, a lost
                    // network) ends its connection normally, as with the reference server;
                    // anything else it sent wrong is an error.
                    closed_by_client = closed_prematurely(&e);
                    tracing::debug!(connection = %shared.id, error = %e, "websocket read ended");
                    break;
                }
                None => {
                    closed_by_client = true;
                    break;
                }
            },
            Event::GaveUp => {
                tracing::debug!(connection = %shared.id, "closing a refused websocket: its handler did not in time");
                Box::pin(close_briefly(&mut socket, CloseCode::Size, TOO_LARGE)).await;
                exit = Exit::Ended;
                break;
            }
        }
    }
    // A refused client may still be sending its message: the socket lingers (see `linger`).
    let lingering = match refused {
        // Boxed: kept for this rare path, the socket would make every connection's task larger.
        Some(_) => Some(Box::new(socket)),
        None => {
            drop(socket);
            None
        }
    };
    let keep_connection =
        !matches!(exit, Exit::Ended) && lingering.is_none() && shared.replay().enabled && !shared.is_aborted();
    if keep_connection {
        // Stateful reconnect: the connection waits for its client to come back, and its
        // handler goes on in a task of its own.
        if let Some(task) = handler.take() {
            tokio::spawn(task);
        }
        if let (Some(frame), Some(inbox)) = (unread.take(), inbox.as_ref()) {
            // Read from the client before the socket went: it is handled all the same.
            Box::pin(async {
                tokio::select! {
                    _ = inbox.send(frame) => {}
                    _ = shared.abort.cancelled() => {}
                }
            })
            .await;
        }
        let mut state = shared.lock();
        state.outbox_rx = Some(outbox);
        state.ws_inbox = inbox;
        if matches!(exit, Exit::SocketGone) {
            state.detached_at = Some(Instant::now());
        }
        drop(state);
        shared.detached.notify_one();
        tracing::debug!(connection = %shared.id, "websocket detached; waiting for the client to re-attach");
    } else {
        if closed_by_client {
            // A clean close by the client: not an error for the handler.
            shared.closed_by_client.store(true, Ordering::Release);
        }
        shared.end();
        // The handler sees the end of its input and the abort, and finishes here.
        drop(inbox);
        drop(outbox);
        if let Some(task) = handler {
            task.await;
        }
    }
    if let Some(socket) = lingering {
        Box::pin(linger(*socket)).await;
    }
}

/// Writes what a re-attached socket owes its client (the Sequence message and every
/// unacknowledged message), bounded like every other write: a client that re-attaches and
/// does not read loses this socket, and its connection waits for it again. Whether it all
/// went out.
async fn resend_all(socket: &mut WebSocket, frames: Vec<Frame>, shared: &ConnectionShared, timeout: Duration) -> bool {
    let resend = async {
        for frame in frames {
            socket.feed(to_message(frame)).await?;
        }
        socket.flush().await
    };
    match tokio::time::timeout(timeout, resend).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(connection = %shared.id, error = %e, "websocket resend failed");
            false
        }
        Err(_) => {
            tracing::debug!(connection = %shared.id, "websocket resend timed out");
            false
        }
    }
}

/// Attempts a close frame, briefly: the socket closes regardless.
async fn close_briefly(socket: &mut WebSocket, code: CloseCode, reason: &'static str) {
    let _ = tokio::time::timeout(Duration::from_millis(500), socket.send(close_message(code, reason))).await;
}

/// Closes a socket whose client may still be sending (the rest of a message too large): the
/// write side is shut, so the client sees the end of the stream after the close frame, and
/// what still comes is read and dropped until the client closes its side or [`LINGER`]
/// passes. Closed with unread input, the socket would be reset, and the client could lose
/// the close frame.
async fn linger(mut socket: WebSocket) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = socket.get_mut();
    let drain = async {
        let _ = io.shutdown().await;
        let mut buffer = vec![0u8; 8 * 1024];
        while matches!(io.read(&mut buffer).await, Ok(read) if read > 0) {}
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Whether a read error only says that the client went without the closing handshake.
fn closed_prematurely(error: &WsError) -> bool {
    use std::io::ErrorKind;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => true,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        WsError::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}
