//! [`Sender`]: encodes messages with the connection's protocol onto its outgoing queue.

use std::sync::Arc;

use bytes::Bytes;
use hub_protocol::{HubProtocol, OutMessage};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::stateful::{is_tracked, Release};

/// What the connection's task is asked to do.
pub(crate) enum Outbound {
    /// Write this encoded message.
    Message(Queued),
    /// Send a Close message, close the WebSocket and end.
    Stop(oneshot::Sender<()>),
}

/// An encoded message waiting in the queue.
pub(crate) struct Queued {
    pub(crate) bytes: Bytes,
    /// Numbered and kept for replay on a stateful connection (types 1–5).
    pub(crate) tracked: bool,
    /// On a stateful connection, how its sender learns that it may go on.
    pub(crate) release: Option<Release>,
}

/// A handle on one running connection's outgoing queue.
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) queue: mpsc::UnboundedSender<Outbound>,
    /// Whether the connection uses stateful reconnect (its senders may have to wait).
    pub(crate) stateful: bool,
}

/// A queued message: awaiting [`Sent::released`] waits while the stateful reconnect buffer
/// is full.
#[must_use = "await `released` to wait while the stateful reconnect buffer is full"]
pub(crate) struct Sent(Option<oneshot::Receiver<Result<()>>>);

impl Sent {
    /// Resolves at once without stateful reconnect; with it, once the message is numbered
    /// and the buffer of unacknowledged messages is under its limit (or the message is
    /// acknowledged). Fails when the connection ends first.
    pub(crate) async fn released(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(released) => released.await.unwrap_or(Err(Error::NotConnected)),
        }
    }
}

impl Sender {
    /// Encodes and queues one message; [`Error::NotConnected`] once the connection ended.
    pub(crate) fn send(&self, message: &OutMessage<'_>) -> Result<Sent> {
        let bytes = self.protocol.encode(message).map_err(|e| Error::Encode(e.0))?;
        let tracked = is_tracked(message);
        let (release, sent) = if self.stateful && tracked {
            let (release, released) = oneshot::channel();
            (Some(release), Sent(Some(released)))
        } else {
            (None, Sent(None))
        };
        let queued = Queued {
            bytes,
            tracked,
            release,
        };
        self.queue
            .send(Outbound::Message(queued))
            .map_err(|_| Error::NotConnected)?;
        Ok(sent)
    }

    /// A handle that does not keep the connection alive (for the tasks the connection owns
    /// itself: when every [`HubConnection`](crate::HubConnection) and call is gone, the
    /// connection closes).
    pub(crate) fn downgrade(&self) -> WeakSender {
        WeakSender {
            protocol: self.protocol.clone(),
            queue: self.queue.downgrade(),
            stateful: self.stateful,
        }
    }

    /// Whether the connection this sender writes to has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

/// A [`Sender`] that does not keep the connection open.
pub(crate) struct WeakSender {
    protocol: Arc<dyn HubProtocol>,
    queue: mpsc::WeakUnboundedSender<Outbound>,
    stateful: bool,
}

impl WeakSender {
    /// The sender, while the connection is open and still has an owner.
    pub(crate) fn upgrade(&self) -> Option<Sender> {
        Some(Sender {
            protocol: self.protocol.clone(),
            queue: self.queue.upgrade()?,
            stateful: self.stateful,
        })
    }
}
