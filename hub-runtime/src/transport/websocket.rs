//! The WebSocket transport. The upgrade and its buffer sizes live here, in one place.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use warp::ws::{Message, WebSocket, Ws};

use crate::connection::{ConnectionShared, Frame, Outgoing};

/// Sizes of one WebSocket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsLimits {
    /// Largest frame or message accepted from the client.
    pub(crate) max_frame_size: usize,
    /// How long one write may take before the client is considered gone.
    pub(crate) send_timeout: Duration,
}

/// Configures the upgrade.
pub(crate) fn configure(ws: Ws, limits: WsLimits) -> Ws {
    ws.max_message_size(limits.max_frame_size)
        .max_frame_size(limits.max_frame_size)
}

fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => Message::text(text.to_owned()),
            Err(_) => Message::binary(bytes),
        },
        Frame::Binary(bytes) => Message::binary(bytes),
    }
}

/// Runs the transport until the socket closes, the connection ends, or it is aborted.
pub(crate) async fn run(
    socket: WebSocket,
    shared: Arc<ConnectionShared>,
    mut outbox: mpsc::Receiver<Outgoing>,
    inbox: mpsc::Sender<Frame>,
    limits: WsLimits,
) {
    let (mut sink, mut stream) = socket.split();
    let abort = shared.abort.clone();
    loop {
        tokio::select! {
            biased;
            _ = abort.cancelled() => break,
            out = outbox.recv() => {
                let mut close = false;
                let mut batch = Vec::new();
                match out {
                    Some(Outgoing::Frame(frame)) => batch.push(frame),
                    Some(Outgoing::Close) | None => close = true,
                }
                // Write everything that is ready, then flush once.
                while !close && batch.len() < 256 {
                    match outbox.try_recv() {
                        Ok(Outgoing::Frame(frame)) => batch.push(frame),
                        Ok(Outgoing::Close) => close = true,
                        Err(_) => break,
                    }
                }
                let write = async {
                    for frame in batch {
                        sink.feed(to_message(frame)).await?;
                    }
                    if close {
                        sink.send(Message::close_with(1000u16, "")).await
                    } else {
                        sink.flush().await
                    }
                };
                match tokio::time::timeout(limits.send_timeout, write).await {
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
                    break;
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(message)) => {
                    shared.touch_read();
                    let frame = if message.is_text() {
                        Frame::Text(message.into_bytes())
                    } else if message.is_binary() {
                        Frame::Binary(message.into_bytes())
                    } else if message.is_close() {
                        break;
                    } else {
                        continue;
                    };
                    tokio::select! {
                        _ = inbox.send(frame) => {}
                        _ = abort.cancelled() => break,
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(connection = %shared.id, error = %e, "websocket read failed");
                    break;
                }
                None => break,
            },
        }
    }
    shared.abort.cancel();
}
