//! The task that runs one connection: reads what the transport receives into messages, writes what the queue
//! holds, pings when the client has been quiet, and ends on the server's silence.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hub_protocol::{HubMessage, HubProtocol, Invocation, MessageReader, OutMessage};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};

use crate::error::{CloseReason, Error};
use crate::pending::Calls;
use crate::sender::Outbound;
use crate::transport::{Incoming, Transport};

/// Timings of the running connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) keep_alive_interval: Duration,
    pub(crate) server_timeout: Duration,
}

/// The ends a running connection's task holds.
pub(crate) struct Driver {
    pub(crate) transport: Transport,
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) queue: mpsc::UnboundedReceiver<Outbound>,
    pub(crate) calls: Arc<Calls>,
    pub(crate) invocations: mpsc::UnboundedSender<Invocation>,
    pub(crate) timing: Timing,
}

/// No limit on one message from the server (the official clients set none).
const MAX_MESSAGE_SIZE: usize = usize::MAX;

impl Driver {
    /// Runs the connection until it ends; `leftover` is what followed the handshake reply.
    /// Returns why it ended, and the reply [`stop`](crate::HubConnection::stop) waits for.
    pub(crate) async fn run(mut self, leftover: Bytes) -> (CloseReason, Option<oneshot::Sender<()>>) {
        let mut reader = MessageReader::default();
        let mut stopped: Option<oneshot::Sender<()>> = None;
        let reason = match self.receive(&mut reader, leftover) {
            Some(reason) => reason,
            None => self.pump(&mut reader, &mut stopped).await,
        };
        self.queue.close();
        if !matches!(reason, CloseReason::Failed(Error::Transport(_))) {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.transport.close()).await;
        }
        self.calls.fail_all(&reason);
        tracing::debug!(%reason, "connection ended");
        (reason, stopped)
    }

    async fn pump(&mut self, reader: &mut MessageReader, stopped: &mut Option<oneshot::Sender<()>>) -> CloseReason {
        let mut last_received = Instant::now();
        // Long polling is its own keep-alive: no pings, no server timeout.
        let keep_alive = !self.transport.inherent_keep_alive();
        // The official clients ping right after the handshake.
        if keep_alive {
            if let Err(error) = self
                .write(self.protocol.encode(&OutMessage::Ping).unwrap_or_default())
                .await
            {
                return CloseReason::Failed(error);
            }
        }
        let mut last_sent = Instant::now();
        loop {
            tokio::select! {
                biased;
                incoming = self.transport.recv() => {
                    last_received = Instant::now();
                    let data = match incoming {
                        Incoming::Data(data) => data,
                        Incoming::Closed(reason) => return reason,
                    };
                    if let Some(reason) = self.receive(reader, data) {
                        return reason;
                    }
                }
                outbound = self.queue.recv() => {
                    let (bytes, stop) = self.batch(outbound);
                    if !bytes.is_empty() {
                        if let Err(error) = self.write(bytes).await {
                            return CloseReason::Failed(error);
                        }
                        last_sent = Instant::now();
                    }
                    if let Some(stop) = stop {
                        *stopped = stop;
                        let close = self.protocol.encode(&OutMessage::Close { error: None, allow_reconnect: false });
                        if let Ok(close) = close {
                            let _ = self.write(close).await;
                        }
                        return CloseReason::Stopped;
                    }
                }
                () = sleep_until(last_sent + self.timing.keep_alive_interval), if keep_alive => {
                    let ping = self.protocol.encode(&OutMessage::Ping).unwrap_or_default();
                    if let Err(error) = self.write(ping).await {
                        return CloseReason::Failed(error);
                    }
                    last_sent = Instant::now();
                }
                () = sleep_until(last_received + self.timing.server_timeout), if keep_alive => {
                    return CloseReason::Failed(Error::ServerTimeout(self.timing.server_timeout));
                }
            }
        }
    }

    /// Joins the queued messages into one frame (as the official clients batch sends); a stop
    /// request (or the connection's owner gone: `Some(None)`) ends the batch.
    #[allow(clippy::type_complexity)]
    fn batch(&mut self, first: Option<Outbound>) -> (Bytes, Option<Option<oneshot::Sender<()>>>) {
        let mut joined = Vec::new();
        let mut next = first;
        loop {
            match next {
                Some(Outbound::Bytes(bytes)) => joined.extend_from_slice(&bytes),
                Some(Outbound::Stop(reply)) => return (joined.into(), Some(Some(reply))),
                None => return (joined.into(), Some(None)),
            }
            match self.queue.try_recv() {
                Ok(outbound) => next = Some(outbound),
                Err(_) => return (joined.into(), None),
            }
        }
    }

    async fn write(&mut self, bytes: Bytes) -> Result<(), Error> {
        self.transport.send(self.protocol.transfer_format(), bytes).await
    }

    /// Handles the messages `data` completes; `Some` when the connection must end.
    fn receive(&mut self, reader: &mut MessageReader, data: Bytes) -> Option<CloseReason> {
        if data.is_empty() {
            return None;
        }
        if let Err(error) = reader.push(&*self.protocol, data, MAX_MESSAGE_SIZE) {
            return Some(CloseReason::Failed(Error::Protocol(error.to_string())));
        }
        loop {
            match reader.next(&*self.protocol) {
                Ok(Some(message)) => {
                    if let Some(reason) = self.handle(message) {
                        return Some(reason);
                    }
                }
                Ok(None) => return None,
                Err(error) => return Some(CloseReason::Failed(Error::Protocol(error.to_string()))),
            }
        }
    }

    fn handle(&mut self, message: HubMessage) -> Option<CloseReason> {
        match message {
            HubMessage::Invocation(invocation) => {
                let _ = self.invocations.send(invocation);
            }
            HubMessage::StreamItem {
                invocation_id, item, ..
            } => self.calls.item(&invocation_id, item),
            HubMessage::Completion {
                invocation_id, result, ..
            } => self.calls.complete(&invocation_id, result),
            HubMessage::Close { error, allow_reconnect } => {
                return Some(CloseReason::ByServer { error, allow_reconnect })
            }
            HubMessage::StreamInvocation(invocation) => {
                tracing::warn!(target_method = %invocation.target, "the server asked this client for a stream: ignored");
            }
            HubMessage::Ping
            | HubMessage::CancelInvocation { .. }
            | HubMessage::Ack { .. }
            | HubMessage::Sequence { .. } => {}
        }
        None
    }
}
