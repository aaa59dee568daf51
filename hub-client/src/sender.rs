//! [`Sender`]: encodes messages with the connection's protocol onto its outgoing queue.

use std::sync::Arc;

use bytes::Bytes;
use hub_protocol::{HubProtocol, OutMessage};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};

/// What the connection's task is asked to do.
pub(crate) enum Outbound {
    /// Write these encoded messages.
    Bytes(Bytes),
    /// Send a Close message, close the WebSocket and end.
    Stop(oneshot::Sender<()>),
}

/// A handle on one running connection's outgoing queue.
#[derive(Clone)]
pub(crate) struct Sender {
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) queue: mpsc::UnboundedSender<Outbound>,
}

impl Sender {
    /// Encodes and queues one message; [`Error::NotConnected`] once the connection ended.
    pub(crate) fn send(&self, message: &OutMessage<'_>) -> Result<()> {
        let bytes = self.protocol.encode(message).map_err(|e| Error::Encode(e.0))?;
        self.queue.send(Outbound::Bytes(bytes)).map_err(|_| Error::NotConnected)
    }

    /// A handle that does not keep the connection alive (for the tasks the connection owns
    /// itself: when every [`HubConnection`](crate::HubConnection) and call is gone, the
    /// connection closes).
    pub(crate) fn downgrade(&self) -> WeakSender {
        WeakSender {
            protocol: self.protocol.clone(),
            queue: self.queue.downgrade(),
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
}

impl WeakSender {
    /// The sender, while the connection is open and still has an owner.
    pub(crate) fn upgrade(&self) -> Option<Sender> {
        Some(Sender {
            protocol: self.protocol.clone(),
            queue: self.queue.upgrade()?,
        })
    }
}
