//! The pump: the loop that moves frames between a socket and the connection's queues and, on
//! a connection's first socket, runs its handler in the same task. Every message passes
//! through here: its parts are plain functions polled from one loop, with no future, box or
//! allocation of their own per message.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::close::{close_briefly, closed_prematurely, CloseReason, Refusal, BRIEFLY};
use super::detach::Queues;
use super::hosted::Hosted;
use super::{Exit, WebSocket};
use crate::connection::quiet::Quiet;
use crate::connection::{queue, ConnectionShared, Frame, InputError, Kept, Outgoing, Tracking};

/// At most this many frames are gathered for one write.
const MAX_BATCH: usize = 256;

#[inline]
pub(super) fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(bytes) => text_message(bytes),
        Frame::Binary(bytes) => Message::Binary(bytes),
    }
}

/// A text frame's bytes, checked as UTF-8 (a text frame that is not goes as binary).
///
/// Text frames come from the JSON encoder. A reply is the encoder's own bytes: taken back as
/// a `String`, it is checked without cloning its handle (the clone allocated a shared header,
/// one allocation per echo call in callgrind). A broadcast's bytes are shared by every
/// receiver: cloning them only counts a reference.
fn text_message(bytes: bytes::Bytes) -> Message {
    if bytes.is_unique() {
        return match String::from_utf8(Vec::from(bytes)) {
            Ok(text) => Message::Text(Utf8Bytes::from(text)),
            Err(not_text) => Message::Binary(not_text.into_bytes().into()),
        };
    }
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(bytes),
    }
}

/// What woke the pump.
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

/// What the outbox gave for one write.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gathered {
    /// Frames to write.
    Frames,
    /// Frames, then the close frame: the connection is over.
    FramesThenClose,
    /// The replay buffer went over its limit: the client does not acknowledge what it gets.
    Overflow,
}

/// What became of a message read.
enum Read {
    /// Nothing more to do (handed on, dropped, or a control frame).
    Done,
    /// The inbox is full: wait for room (the socket is not read meanwhile).
    Wait(Frame),
    /// The socket is over.
    Ended,
}

/// One socket's side of the connection, while the pump runs.
pub(super) struct Pump<'a> {
    pub(super) socket: WebSocket,
    pub(super) shared: &'a ConnectionShared,
    pub(super) outbox: queue::Receiver<Outgoing>,
    /// Taken away when the client's input is refused: the handler sees its input end.
    pub(super) inbox: Option<queue::Sender<Frame>>,
    /// The connection's handler, while this task runs it.
    pub(super) handler: Option<BoxFuture<'static, ()>>,
    /// Whether the handler needs a poll, and the waker it is polled with.
    hosted: Hosted,
    /// A frame read for the hosted handler and not yet in its inbox (the socket is not read
    /// while there is one).
    pub(super) unread: Option<Frame>,
    /// Set when the client sent a message too large.
    pub(super) refusal: Refusal,
    /// The client closed the socket cleanly (or went without the closing handshake).
    pub(super) closed_by_client: bool,
    batch: VecDeque<Frame>,
    send_timeout: Duration,
}

impl<'a> Pump<'a> {
    pub(super) fn new(
        socket: WebSocket,
        shared: &'a ConnectionShared,
        queues: Queues,
        handler: Option<BoxFuture<'static, ()>>,
        send_timeout: Duration,
    ) -> Self {
        Pump {
            socket,
            shared,
            outbox: queues.outbox,
            inbox: Some(queues.inbox),
            handler,
            hosted: Hosted::new(),
            unread: None,
            refusal: Refusal::default(),
            closed_by_client: false,
            batch: VecDeque::new(),
            send_timeout,
        }
    }

    /// Runs until the socket closes, the connection ends, or a newer socket replaces this
    /// one (`stopped` says which of the last two); why it stopped.
    pub(super) async fn run<S: Future<Output = Exit>>(&mut self, mut stopped: Pin<&mut Quiet<S>>) -> Exit {
        while !self.shared.is_aborted() {
            let event = std::future::poll_fn(|cx| self.poll_event(stopped.as_mut(), cx)).await;
            match event {
                Event::Stop(why) => {
                    if matches!(why, Exit::Ended) {
                        Box::pin(self.say_goodbye()).await;
                    }
                    return why;
                }
                Event::Out(out) => {
                    let gathered = self.gather(out);
                    if gathered == Gathered::Overflow {
                        tracing::warn!(connection = %self.shared.id, "closing a connection whose client does not acknowledge messages (stateful reconnect buffer full)");
                        self.shared.end();
                        return Exit::Ended;
                    }
                    let mut close = (gathered == Gathered::FramesThenClose).then(|| self.refusal.close_reason());
                    let send_timeout = self.send_timeout;
                    // Written through the sink's poll methods: a future of nested sends would
                    // be kept in every connection's task.
                    let write = std::future::poll_fn(|cx| self.poll_write(&mut close, cx));
                    // Most writes finish at once: the timer is only set for one that has to wait.
                    let mut write = std::pin::pin!(write);
                    let written = match futures_util::poll!(write.as_mut()) {
                        Poll::Ready(result) => Ok(result),
                        // Boxed: the timer would make every connection's task larger.
                        Poll::Pending => {
                            let waited = Box::pin(async {
                                tokio::select! {
                                    written = tokio::time::timeout(send_timeout, write) => Ok(written),
                                    // Ended (a slow consumer, most likely) while its socket does
                                    // not take more: nothing more can get through.
                                    why = &mut stopped => Err(why),
                                }
                            })
                            .await;
                            match waited {
                                Ok(written) => written,
                                Err(why) => return why,
                            }
                        }
                    };
                    if !self.written(written) {
                        return Exit::SocketGone;
                    }
                    if gathered == Gathered::FramesThenClose {
                        return Exit::Ended;
                    }
                }
                Event::In(incoming) => match self.read(incoming) {
                    Read::Done => {}
                    Read::Ended => return Exit::SocketGone,
                    Read::Wait(frame) => {
                        let Some(inbox) = self.inbox.as_ref() else { continue };
                        let waited = Box::pin(async {
                            tokio::select! {
                                _ = inbox.send(frame) => None,
                                why = &mut stopped => Some(why),
                            }
                        })
                        .await;
                        if let Some(why) = waited {
                            return why;
                        }
                    }
                },
                Event::GaveUp => {
                    tracing::debug!(connection = %self.shared.id, "closing a refused websocket: its handler did not in time");
                    Box::pin(close_briefly(&mut self.socket, CloseReason::TooLarge)).await;
                    return Exit::Ended;
                }
            }
        }
        Exit::SocketGone
    }

    /// What to do next: polls the stop signal, the hosted handler (handing it what was read),
    /// the outbox, the refusal's deadline and the socket, in that order. The handler is polled
    /// only when it was woken or has just been handed a frame (see [`Hosted`]).
    #[inline]
    fn poll_event<S: Future<Output = Exit>>(
        &mut self,
        stopped: Pin<&mut Quiet<S>>,
        cx: &mut Context<'_>,
    ) -> Poll<Event> {
        if let Poll::Ready(exit) = stopped.poll(cx) {
            return Poll::Ready(Event::Stop(exit));
        }
        loop {
            let woken = self.handler.is_some() && self.hosted.begin(cx);
            let event = self.poll_parts(woken, cx);
            // Woken during the pass (by itself, or from another thread): that wake did not
            // wake the task, so the handler is polled again before the task sleeps.
            let woken_meanwhile = self.handler.is_some() && self.hosted.end();
            if event.is_pending() && woken_meanwhile {
                continue;
            }
            return event;
        }
    }

    /// One pass of [`Pump::poll_event`] after the stop signal; `woken`: the handler was
    /// woken since its last poll.
    #[inline]
    fn poll_parts(&mut self, woken: bool, cx: &mut Context<'_>) -> Poll<Event> {
        if let Some(task) = self.handler.as_mut() {
            let mut poll_handler = woken;
            loop {
                // The frame goes in before the handler is polled, so that a handler reading
                // here takes it in this pass (it is not woken for it: it is polled below). A
                // handler that stopped reading drops it.
                if let (Some(frame), Some(inbox)) = (self.unread.take(), self.inbox.as_ref()) {
                    match inbox.try_send_from(frame, self.hosted.waker()) {
                        Err(queue::TrySendError::Full(frame)) => self.unread = Some(frame),
                        Ok(()) => poll_handler = true,
                        Err(_) => {}
                    }
                }
                if !poll_handler {
                    break;
                }
                poll_handler = false;
                // What the handler queues is taken below in this same pass: it need not
                // wake this task.
                self.outbox.forget_waker();
                if task
                    .as_mut()
                    .poll(&mut Context::from_waker(self.hosted.waker()))
                    .is_ready()
                {
                    self.handler = None;
                    self.unread = None;
                    break;
                }
                // A full inbox: try again once there is room (the handler may have made
                // some just now, or may read from another task).
                if self.unread.is_some() && self.inbox.as_ref().is_some_and(|inbox| inbox.poll_room(cx).is_ready()) {
                    continue;
                }
                break;
            }
            if self.shared.is_aborted() {
                // Aborted by the handler itself (a slow consumer, most likely): say goodbye.
                return Poll::Ready(Event::Stop(Exit::Ended));
            }
        }
        if let Poll::Ready(item) = self.outbox.poll_recv(cx) {
            return Poll::Ready(Event::Out(item));
        }
        if let Some(gave_up) = self.refusal.poll_gave_up(cx) {
            // The socket is no longer read: only the handler's goodbye is awaited.
            return gave_up.map(|()| Event::GaveUp);
        }
        if self.unread.is_none() {
            if let Poll::Ready(message) = self.socket.poll_next_unpin(cx) {
                return Poll::Ready(Event::In(message));
            }
        }
        Poll::Pending
    }

    /// Takes `first` and everything else ready in the outbox into the batch (keeping tracked
    /// frames for replay), up to the close or [`MAX_BATCH`] frames.
    #[inline]
    fn gather(&mut self, first: Option<Outgoing>) -> Gathered {
        let mut close = false;
        let mut overflow = false;
        let mut take = |item: Option<Outgoing>, batch: &mut VecDeque<Frame>, close: &mut bool| match item {
            Some(Outgoing::Frame(frame, tracking)) => {
                if tracking == Tracking::Tracked && self.shared.replay().keep(&frame) == Kept::OverLimit {
                    overflow = true;
                }
                batch.push_back(frame);
            }
            Some(Outgoing::Close) | None => *close = true,
        };
        take(first, &mut self.batch, &mut close);
        // Write everything that is ready, then flush once.
        while !close && self.batch.len() < MAX_BATCH {
            match self.outbox.try_recv() {
                Ok(item) => take(Some(item), &mut self.batch, &mut close),
                Err(_) => break,
            }
        }
        if overflow {
            Gathered::Overflow
        } else if close {
            Gathered::FramesThenClose
        } else {
            Gathered::Frames
        }
    }

    /// Writes the batch, then `close`'s close frame if there is one (taken once queued), and
    /// flushes.
    #[inline]
    fn poll_write(&mut self, close: &mut Option<CloseReason>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        while !self.batch.is_empty() || close.is_some() {
            std::task::ready!(self.socket.poll_ready_unpin(cx))?;
            match self.batch.pop_front() {
                Some(frame) => self.socket.start_send_unpin(to_message(frame))?,
                None => {
                    if let Some(reason) = close.take() {
                        self.socket.start_send_unpin(reason.message())?;
                    }
                }
            }
        }
        self.socket.poll_flush_unpin(cx)
    }

    /// Books a write's outcome (`Err`: it timed out); whether the socket is still good.
    #[inline]
    fn written(&mut self, written: Result<Result<(), WsError>, tokio::time::error::Elapsed>) -> bool {
        if self.batch.capacity() > 16 {
            // A burst is written: give its room back.
            self.batch = VecDeque::new();
        }
        match written {
            Ok(Ok(())) => {
                self.shared.touch_write();
                true
            }
            Ok(Err(e)) => {
                tracing::debug!(connection = %self.shared.id, error = %e, "websocket write failed");
                false
            }
            Err(_) => {
                tracing::debug!(connection = %self.shared.id, "websocket write timed out");
                false
            }
        }
    }

    /// Takes what the socket gave: a frame goes to the handler (or waits for room), a
    /// message too large refuses the client's input, and a close or error ends the socket.
    #[inline]
    fn read(&mut self, incoming: Option<Result<Message, WsError>>) -> Read {
        match incoming {
            Some(Ok(message)) => {
                self.shared.touch_read();
                let frame = match message {
                    Message::Text(text) => Frame::Text(text.into()),
                    Message::Binary(bytes) => Frame::Binary(bytes),
                    Message::Close(_) => {
                        self.closed_by_client = true;
                        return Read::Ended;
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Read::Done,
                };
                if self.handler.is_some() {
                    // Handed to the handler in the next pass of this task.
                    self.unread = Some(frame);
                    return Read::Done;
                }
                let Some(inbox) = self.inbox.as_ref() else {
                    return Read::Done;
                };
                // Usually there is room; otherwise wait for it (the socket is not read meanwhile).
                match inbox.try_send(frame) {
                    Err(queue::TrySendError::Full(frame)) => Read::Wait(frame),
                    _ => Read::Done,
                }
            }
            Some(Err(WsError::Capacity(e))) => {
                // A message too large. The handler's input ends, and it learns why (a hub
                // sends its Close message with the error); its close, or the send timeout,
                // ends the socket with 1009.
                tracing::debug!(connection = %self.shared.id, error = %e, "refusing a websocket message over max_frame_size");
                self.shared.refuse_input(InputError::TooLarge);
                self.unread = None;
                self.inbox = None;
                self.refusal.start(self.send_timeout);
                Read::Done
            }
            Some(Err(e)) => {
                // A client that goes without the closing handshake (a closed tab, a lost
                // network) ends its connection normally, as with the reference server;
                // anything else it sent wrong is an error.
                self.closed_by_client = closed_prematurely(&e);
                tracing::debug!(connection = %self.shared.id, error = %e, "websocket read ended");
                Read::Ended
            }
            None => {
                self.closed_by_client = true;
                Read::Ended
            }
        }
    }

    /// The connection ended: a slow consumer gets its goodbye and a 1008, a refused client
    /// its 1009, briefly; the socket closes regardless.
    async fn say_goodbye(&mut self) {
        if let Some(goodbye) = self.shared.goodbye() {
            let socket = &mut self.socket;
            let attempt = async {
                socket.send(to_message(goodbye)).await?;
                socket.send(CloseReason::OutboxFull.message()).await
            };
            let _ = tokio::time::timeout(BRIEFLY, attempt).await;
        } else if self.refusal.is_refused() {
            close_briefly(&mut self.socket, CloseReason::TooLarge).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn a_text_frame_goes_as_text_whether_its_bytes_are_shared_or_not() {
        let unique = Bytes::from(b"{\"type\":6}\x1e".to_vec());
        assert_eq!(to_message(Frame::Text(unique)), Message::text("{\"type\":6}\u{1e}"));
        let shared = Bytes::from(b"{\"type\":6}\x1e".to_vec());
        let other = shared.clone();
        assert_eq!(to_message(Frame::Text(shared)), Message::text("{\"type\":6}\u{1e}"));
        assert_eq!(&other[..], b"{\"type\":6}\x1e");
    }

    #[test]
    fn a_text_frame_that_is_not_utf8_goes_as_binary_with_its_bytes() {
        let bad = b"{\"a\":\"\xff\"}".to_vec();
        assert_eq!(
            to_message(Frame::Text(Bytes::from(bad.clone()))),
            Message::Binary(bad.clone().into())
        );
        let shared = Bytes::from(bad.clone());
        let _other = shared.clone();
        assert_eq!(to_message(Frame::Text(shared)), Message::Binary(bad.into()));
    }
}
