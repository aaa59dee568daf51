//! [`Connection`]: the application's end of a connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::frame::{Frame, InputError};
use super::queue;
use super::replay::SequenceEncoder;
use super::sender::ConnectionSender;
use super::shared::ConnectionShared;
use crate::request::Identity;
use crate::request::{RequestContext, TransportKind};

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
    pub(super) shared: Arc<ConnectionShared>,
    pub(super) inbox: queue::Receiver<Frame>,
    pub(super) identity: Option<Arc<Identity>>,
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
    pub(crate) fn enable_replay(&self, limit: usize, sequence: SequenceEncoder) {
        self.shared.replay().enable(limit, sequence);
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
