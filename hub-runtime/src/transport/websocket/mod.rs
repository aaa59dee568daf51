//! The WebSocket transport. The upgrade and its buffer sizes live here, in one place.
//!
//! With stateful reconnect, a dropped socket does not end the connection: the transport hands
//! the connection's queues back, and a new socket for the same token takes over after
//! sending the Sequence message and replaying what the client has not acknowledged.
//!
//! A message over `max_frame_size` is refused: the handler's input ends with the reason (a hub
//! answers with its Close message), then the socket closes with 1009 (message too big).

//!
//! The work is split by job: `upgrade` (the handshake and buffer sizes), `pump` (the loop
//! every message passes through), `close` (close frames, refusals, linger) and `detach`
//! (stateful reconnect's hand-back, take-over and resend).

mod close;
mod detach;
mod hosted;
mod pump;
mod upgrade;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

pub(crate) use upgrade::{PendingSocket, Upgrade};

use futures_util::future::BoxFuture;

use self::detach::Queues;
use self::pump::Pump;
use crate::connection::quiet::Quiet;
use crate::connection::{queue, ConnectionShared, Frame, Outgoing};

/// An upgraded WebSocket.
pub(crate) type WebSocket = WebSocketStream<TokioIo<Upgraded>>;

/// Sizes of one WebSocket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WsLimits {
    /// Largest frame or message accepted from the client.
    pub(crate) max_frame_size: usize,
    /// How long one write may take before the client is considered gone.
    pub(crate) send_timeout: Duration,
}

/// Where a socket's queues come from.
pub(crate) enum Source {
    /// The connection's first socket, whose task also runs the connection's handler.
    Fresh {
        outbox: queue::Receiver<Outgoing>,
        inbox: queue::Sender<Frame>,
        handler: BoxFuture<'static, ()>,
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

/// What a socket starts with: its queues, its replay (a re-attached socket), and the handler
/// if this socket's task runs it.
struct Start {
    queues: Queues,
    stop: Option<CancellationToken>,
    resend: Vec<Frame>,
    handler: Option<BoxFuture<'static, ()>>,
}

impl Start {
    /// The queues `source` gives (a re-attached socket waits for the previous one to let go);
    /// `None` if they never come.
    async fn from(source: Source, shared: &ConnectionShared) -> Option<Start> {
        match source {
            Source::Fresh {
                outbox,
                inbox,
                handler,
                stop,
            } => Some(Start {
                queues: Queues { outbox, inbox },
                stop,
                resend: Vec::new(),
                handler: Some(handler),
            }),
            // Rare paths are boxed: inline, they would make every connection's task larger.
            Source::Reattach { stop } => {
                let queues = Box::pin(detach::take_over(shared, &stop)).await?;
                let resend = shared.replay().resend();
                tracing::debug!(connection = %shared.id, replayed = resend.len(), "websocket re-attached");
                Some(Start {
                    queues,
                    stop: Some(stop),
                    resend,
                    handler: None,
                })
            }
        }
    }
}

/// Resolves when the connection is aborted ([`Exit::Ended`]) or a newer socket takes over
/// ([`Exit::Replaced`]).
async fn stopped(abort: CancellationToken, stop: Option<CancellationToken>) -> Exit {
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

/// Runs the transport until the socket closes, the connection ends, or a newer socket
/// replaces this one.
///
/// On the connection's first socket, the same task runs the connection's handler: a message
/// read is handled and its answer written in one pass, without waking another task. The
/// handler moves to a task of its own only when the socket goes while the connection lives on
/// (stateful reconnect).
pub(crate) async fn run(pending: PendingSocket, shared: Arc<ConnectionShared>, source: Source, limits: WsLimits) {
    // Boxed: the upgrade's state is not kept beside the transport's for the socket's life.
    let Some(socket) = Box::pin(pending.connect()).await else {
        if let Source::Fresh { handler, inbox, .. } = source {
            // Nothing carries the connection: it ends, and its handler sees it end.
            shared.end();
            drop(inbox);
            handler.await;
        }
        return;
    };
    // Taken apart at once: each part moves on by itself, and nothing of `Start` is kept
    // beside them in this future.
    let Some(Start {
        queues,
        stop,
        resend,
        handler,
    }) = Start::from(source, &shared).await
    else {
        return;
    };
    // Looked at only once it signals (see `Quiet`).
    let stopped = Quiet::new(stopped(shared.abort.clone(), stop));
    tokio::pin!(stopped);
    let mut pump = Pump::new(socket, &shared, queues, handler, limits.send_timeout);
    let mut exit = Exit::SocketGone;
    let mut resent = true;
    if !resend.is_empty() {
        // A newer socket or the connection's end stops the resend too.
        let outcome = Box::pin(async {
            tokio::select! {
                resent = detach::resend_all(&mut pump.socket, resend, &shared, limits.send_timeout) => Ok(resent),
                why = &mut stopped => Err(why),
            }
        })
        .await;
        resent = outcome.unwrap_or_else(|why| {
            exit = why;
            false
        });
    }
    if resent {
        exit = pump.run(stopped.as_mut()).await;
    }
    // Boxed (once per socket): inline, its future would hold a second `Pump` beside the one
    // the loop above keeps room for, in every socket's task for its whole life (+848 bytes).
    Box::pin(finish(pump, exit)).await;
}

/// After the pump: a connection that lives on (stateful reconnect, the socket gone or
/// replaced) gets its queues back and its handler moves to a task of its own; otherwise the
/// connection ends, and its handler finishes here. A refused client's socket lingers.
async fn finish(pump: Pump<'_>, exit: Exit) {
    let Pump {
        socket,
        shared,
        outbox,
        inbox,
        handler,
        unread,
        refusal,
        closed_by_client,
        ..
    } = pump;
    // A refused client may still be sending its message: the socket lingers (see `linger`).
    let lingering = if refusal.is_refused() {
        // Boxed: kept for this rare path, the socket would make every connection's task larger.
        Some(Box::new(socket))
    } else {
        drop(socket);
        None
    };
    let keep_connection =
        !matches!(exit, Exit::Ended) && lingering.is_none() && shared.replay().enabled && !shared.is_aborted();
    if keep_connection {
        // Stateful reconnect: the connection waits for its client to come back, and its
        // handler goes on in a task of its own.
        if let Some(task) = handler {
            tokio::spawn(task);
        }
        detach::hand_back(shared, outbox, inbox, unread, exit).await;
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
        Box::pin(close::linger(*socket)).await;
    }
}
