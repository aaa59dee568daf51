//! The read loop of a hub connection: a `select!` over its parts, in a fixed order — the end
//! of the connection and its keep-alive timer, the Ack a stateful connection owes, what runs
//! beside the loop, a blocked client stream item, and only then more input (a client that
//! floods cannot starve the others; none of them is ready on every pass).
//!
//! Input is parsed lazily: the frames read wait in a [`MessageReader`], which parses one
//! message whenever the loop is ready for one; new input is read only once it is empty.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;

use super::acks::{next_ack, Acks};
use super::close::{closed_with_error, frame_for};
use super::endpoint::HubEndpoint;
use super::handshake::Handshake;
use super::keep_alive::{Due, KeepAlive};
use super::route::Dispatch;
use super::sequence::{Numbered, SequenceError};
use super::{ConnectionError, Hub, HubContext};
use crate::clients::lifetime::LocalConnection;
use crate::connection::quiet::Quiet;
use crate::connection::{now_ms, Connection, InputError};
use crate::observability::protocol_index;
use crate::options::HubOptions;
use crate::protocol::{HubMessage, HubProtocol, MessageReader, OutMessage, ProtocolError};

/// Why the read loop ended.
pub(super) enum End {
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

/// Reads and handles the connection's messages until it ends.
pub(super) async fn read_loop<H: Hub>(
    endpoint: &Arc<HubEndpoint<H>>,
    cx: &Arc<HubContext<H>>,
    local: &Arc<LocalConnection>,
    protocol: &Arc<dyn HubProtocol>,
    connection: &mut Connection,
    handshake: Handshake,
) -> End {
    let mut d = Dispatch::new(endpoint, cx, local, protocol);
    let options = &d.endpoint.options;
    let protocol = d.protocol;
    let format = protocol.transfer_format();
    let protocol_label = protocol_index(protocol.name());
    // Holds the frames read and not handled yet; parses one message whenever the loop is ready
    // for one. New input is read only once it is empty.
    let mut reader = MessageReader::default();
    // Stateful reconnect only.
    let mut acks = handshake.stateful.then(Acks::default);
    let keep_alive = KeepAlive::new(connection.transport(), options);
    // The end and the timer wait together, looked at only after one of them fired (polling a
    // timer on every message registers its waker each time; one `Quiet` for both keeps an idle
    // connection small).
    let rare = Quiet::new(Rare {
        ended: ended(&d, connection),
        keep_alive: tokio::time::sleep_until(keep_alive.deadline(connection)),
    });
    tokio::pin!(rare);
    let mut input = (!handshake.leftover.is_empty()).then(|| Bytes::from(handshake.leftover));
    loop {
        // What was read (the handshake's leftover first, then each frame).
        if let Some(data) = input.take() {
            if let Err(e) = reader.push(&**protocol, data, options.max_message_size) {
                return protocol_error(e, options);
            }
        }
        if let Err(end) = route(&mut d, &mut reader, &mut acks, protocol_label) {
            return end;
        }
        let reading = d.scheduler.ready() && !reader.has_buffered();
        let blocked_sender = d.scheduler.blocked_sender();
        tokio::select! {
            biased;
            fired = &mut rare => match fired {
                Rarely::Ended(ended) => return ended.end(connection),
                Rarely::KeepAlive => {
                    match keep_alive.due(now_ms(), connection.last_read_ms(), connection.last_write_ms()) {
                        Due::ClientTimedOut => return client_timed_out(options),
                        Due::Ping => {
                            // Encoded when due (every few seconds at most): kept, it would be one more
                            // buffer for every idle connection.
                            if let Ok(ping) = protocol.encode(&OutMessage::Ping) {
                                let _ = d.sender.try_send(frame_for(format, ping));
                            }
                            // Count the ping as written even before the transport flushes it.
                            connection.mark_written();
                        }
                        Due::Nothing => {}
                    }
                    rare.as_mut().inner_mut().project().keep_alive.reset(keep_alive.deadline(connection));
                    // Quiet for a while: keep nothing for messages that may not come.
                    reader.shrink();
                }
            },
            processed = next_ack(&mut acks), if acks.as_ref().is_some_and(Acks::is_owed) => {
                if let Ok(bytes) = protocol.encode(&OutMessage::Ack { sequence_id: processed }) {
                    let _ = d.sender.try_send(frame_for(format, bytes));
                }
            }
            finished = d.scheduler.next_finished(), if d.scheduler.is_running() => d.finished(finished),
            // Boxed, and only while an item waits: inline, the wait would make every
            // connection's future larger.
            permit = async { Box::pin(blocked_sender?.reserve_owned()).await.ok() }, if d.scheduler.is_blocked() => {
                d.scheduler.unblock(permit);
            }
            frame = connection.recv(), if reading => match frame {
                Some(frame) => input = Some(frame.data().clone()),
                None => return input_ended(connection, options),
            },
        }
    }
}

/// Routes messages until one has to wait: a full client-stream buffer, or a full queue of
/// waiting invocations. Each is parsed only now, so one frame cannot queue more.
#[inline]
fn route<H: Hub>(
    d: &mut Dispatch<'_, H>,
    reader: &mut MessageReader,
    acks: &mut Option<Acks>,
    protocol_label: u8,
) -> Result<(), End> {
    let protocol = d.protocol;
    let options = &d.endpoint.options;
    while d.scheduler.ready() {
        let message = match reader.next(&**protocol) {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(e) => return Err(protocol_error(e, options)),
        };
        d.sender.metrics().received(protocol_label, 1);
        if let Some(acks) = acks.as_mut() {
            if let HubMessage::Ack { sequence_id } = &message {
                d.sender.ack(*sequence_id);
            }
            match acks.receive(&message) {
                Err(SequenceError) => return Err(sequence_error(options)),
                Ok(Numbered::Replayed) => continue,
                Ok(Numbered::Untracked | Numbered::New) => {}
            }
        }
        if let Some(end) = d.handle(message) {
            return Err(end);
        }
    }
    Ok(())
}

/// What ends the loop from outside. Made once and looked at only after it signals: polling
/// cancellation waits on every message costs two locks each.
fn ended<H: Hub>(d: &Dispatch<'_, H>, connection: &Connection) -> impl Future<Output = Ended> {
    let aborted = connection.abort_token();
    let close_requested = d.cx.close_requested().clone();
    let shutdown = d.endpoint.shutdown.clone();
    async move {
        tokio::select! {
            biased;
            _ = aborted.cancelled() => Ended::Aborted,
            _ = close_requested.cancelled() => Ended::Requested,
            _ = shutdown.cancelled() => Ended::Shutdown,
        }
    }
}

/// What ended the read loop from outside.
enum Ended {
    Aborted,
    Requested,
    Shutdown,
}

impl Ended {
    fn end(self, connection: &Connection) -> End {
        match self {
            Ended::Requested => End::Requested,
            Ended::Shutdown => End::Shutdown,
            // The transport ends by aborting; after a clean close by the client that is no error.
            Ended::Aborted if connection.closed_by_client() => End::ClientGone,
            Ended::Aborted => End::Aborted,
        }
    }
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Rarely> {
        let this = self.project();
        if let Poll::Ready(ended) = this.ended.poll(cx) {
            return Poll::Ready(Rarely::Ended(ended));
        }
        this.keep_alive.poll(cx).map(|()| Rarely::KeepAlive)
    }
}

/// The client sent nothing (not even a Ping) for `client_timeout`.
fn client_timed_out(options: &HubOptions) -> End {
    let detail = crate::protocol::error_texts::CLIENT_TIMEOUT;
    End::Error {
        close_text: closed_with_error(detail, "OperationCanceledException", options),
        error: ConnectionError::new(detail),
    }
}

/// A client's Sequence message went ahead of what it sent.
fn sequence_error(options: &HubOptions) -> End {
    End::Error {
        close_text: closed_with_error(SequenceError::TEXT, "InvalidOperationException", options),
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
            options,
        ),
        None => End::ClientGone,
    }
}

fn protocol_error(error: ProtocolError, options: &HubOptions) -> End {
    let detail = error.to_string();
    End::Error {
        close_text: closed_with_error(&detail, "InvalidDataException", options),
        error: ConnectionError::new(detail),
    }
}
