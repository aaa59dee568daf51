//! Stateful reconnect on WebSockets: a socket that goes hands the connection's queues back, a
//! new socket for the same token takes them over and resends what the client has not
//! acknowledged.

use std::time::{Duration, Instant};

use futures_util::SinkExt;

use super::pump::to_message;
use super::{Exit, WebSocket};
use crate::connection::{queue, ConnectionShared, Frame, Outgoing};

/// How long a new socket waits for the previous one's transport to let go.
const TAKE_OVER: Duration = Duration::from_secs(5);

/// The queues a socket moves frames between.
pub(super) struct Queues {
    pub(super) outbox: queue::Receiver<Outgoing>,
    pub(super) inbox: queue::Sender<Frame>,
}

/// Waits for the previous socket's transport to hand the queues back.
pub(super) async fn take_over(shared: &ConnectionShared, stop: &tokio_util::sync::CancellationToken) -> Option<Queues> {
    let deadline = tokio::time::Instant::now() + TAKE_OVER;
    loop {
        {
            let mut state = shared.lock();
            if state.outbox_rx.is_some() && state.ws_inbox.is_some() {
                state.detached_at = None;
                let (outbox, inbox) = state.outbox_rx.take().zip(state.ws_inbox.take())?;
                return Some(Queues { outbox, inbox });
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

/// Writes what a re-attached socket owes its client (the Sequence message and every
/// unacknowledged message), bounded like every other write: a client that re-attaches and
/// does not read loses this socket, and its connection waits for it again. Whether it all
/// went out.
pub(super) async fn resend_all(
    socket: &mut WebSocket,
    frames: Vec<Frame>,
    shared: &ConnectionShared,
    timeout: Duration,
) -> bool {
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

/// Gives the queues back to a connection whose socket went (or was replaced) while the
/// connection lives on; `unread`, read from the client before the socket went, is handled
/// all the same.
pub(super) async fn hand_back(
    shared: &ConnectionShared,
    outbox: queue::Receiver<Outgoing>,
    inbox: Option<queue::Sender<Frame>>,
    unread: Option<Frame>,
    exit: Exit,
) {
    if let (Some(frame), Some(inbox)) = (unread, inbox.as_ref()) {
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
}
