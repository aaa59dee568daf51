//! [`ConnectionSender`]: writes to one connection, from any task.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::frame::{Frame, OutboxError, Outgoing, Tracking};
use super::queue;
use super::shared::ConnectionShared;
use crate::observability::EndpointMetrics;
use crate::request::RequestContext;

/// Writes frames to one connection. Cloning is cheap.
#[derive(Clone)]
pub struct ConnectionSender {
    pub(super) shared: Arc<ConnectionShared>,
}

impl ConnectionSender {
    /// The connection's public id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The request that carried the transport (for long polling, the latest poll).
    pub fn request(&self) -> Arc<RequestContext> {
        self.shared.lock().request.clone()
    }

    /// Queues a frame without waiting; fails when the outbox is full or the connection gone.
    pub fn try_send(&self, frame: Frame) -> Result<(), OutboxError> {
        self.try_send_with(frame, Tracking::Untracked)
    }

    /// Queues a hub message (numbered for replay when stateful reconnect is on).
    pub(crate) fn try_send_message(&self, frame: Frame) -> Result<(), OutboxError> {
        self.try_send_with(frame, Tracking::Tracked)
    }

    /// Queues a hub message without waiting; gives the frame back when the outbox is full
    /// (a closed connection drops it).
    pub(crate) fn try_send_message_or_return(&self, frame: Frame) -> Result<(), Frame> {
        match self.try_queue(frame, Tracking::Tracked) {
            Err((OutboxError::Full, Some(frame))) => Err(frame),
            _ => Ok(()),
        }
    }

    /// Queues a hub message, waiting for room in the outbox.
    pub(crate) async fn send_message(&self, frame: Frame) -> Result<(), OutboxError> {
        self.send_with(frame, Tracking::Tracked).await
    }

    /// Acknowledges the client's receipt of messages up to `sequence_id` (stateful reconnect).
    pub(crate) fn ack(&self, sequence_id: u64) {
        self.shared.replay().ack(sequence_id);
    }

    fn try_send_with(&self, frame: Frame, tracking: Tracking) -> Result<(), OutboxError> {
        self.try_queue(frame, tracking).map_err(|(error, _)| error)
    }

    /// Queues a frame without waiting; on failure, why, with the frame when the outbox was full.
    fn try_queue(&self, frame: Frame, tracking: Tracking) -> Result<(), (OutboxError, Option<Frame>)> {
        if self.shared.is_aborted() {
            return Err((OutboxError::Closed, None));
        }
        match self.shared.outbox.try_send(Outgoing::Frame(frame, tracking)) {
            Ok(()) => {
                self.count_sent();
                Ok(())
            }
            Err(queue::TrySendError::Full(Outgoing::Frame(frame, _))) => Err((OutboxError::Full, Some(frame))),
            Err(queue::TrySendError::Full(Outgoing::Close)) => Err((OutboxError::Full, None)),
            Err(queue::TrySendError::Closed(_)) => Err((OutboxError::Closed, None)),
        }
    }

    /// Queues a frame, waiting for room in the outbox.
    pub async fn send(&self, frame: Frame) -> Result<(), OutboxError> {
        self.send_with(frame, Tracking::Untracked).await
    }

    async fn send_with(&self, frame: Frame, tracking: Tracking) -> Result<(), OutboxError> {
        if self.shared.is_aborted() {
            return Err(OutboxError::Closed);
        }
        tokio::select! {
            r = self.shared.outbox.send(Outgoing::Frame(frame, tracking)) => r.map_err(|_| OutboxError::Closed)?,
            _ = self.shared.abort.cancelled() => return Err(OutboxError::Closed),
        }
        self.count_sent();
        Ok(())
    }

    fn count_sent(&self) {
        self.shared.metrics.sent(self.shared.protocol.load(Ordering::Relaxed));
    }

    /// A new token for one invocation, cancelled by [`ConnectionSender::cancel_invocations`].
    pub(crate) fn invocation_token(&self) -> CancellationToken {
        self.shared
            .invocations
            .get_or_init(CancellationToken::new)
            .child_token()
    }

    /// Cancels every invocation token, made or still to be made.
    pub(crate) fn cancel_invocations(&self) {
        self.shared.invocations.get_or_init(CancellationToken::new).cancel();
    }

    /// Records the hub protocol agreed in the handshake (a metrics label).
    pub(crate) fn set_protocol(&self, name: &str) {
        self.shared
            .protocol
            .store(crate::observability::protocol_index(name), Ordering::Relaxed);
    }

    /// The endpoint's counters.
    pub(crate) fn metrics(&self) -> &EndpointMetrics {
        &self.shared.metrics
    }

    /// Ends the connection after what is already queued has been written.
    pub fn close(&self) {
        if self.shared.outbox.try_send(Outgoing::Close).is_err() {
            self.abort();
        }
    }

    /// Closes a connection whose client does not read: a Close message naming the reason is
    /// attempted, and the transport ends regardless.
    pub(crate) fn abort_slow(&self) {
        if !self.shared.slow.swap(true, Ordering::Relaxed) {
            self.shared.metrics.slow_consumer_closed();
        }
        self.shared.end();
    }

    /// Ends the connection now, dropping whatever is queued.
    pub fn abort(&self) {
        self.shared.end();
    }

    /// Whether the connection has been aborted.
    pub fn is_aborted(&self) -> bool {
        self.shared.is_aborted()
    }
}
