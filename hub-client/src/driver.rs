//! The task that runs one connection: reads what the transport receives into messages, writes what the queue
//! holds, pings when the client has been quiet, and ends on the server's silence. On a
//! stateful connection it also numbers and keeps what it sends, acknowledges what it
//! receives, and when the socket drops, opens it again and resends what the server has not
//! acknowledged (see [`stateful`](crate::stateful)).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use hub_protocol::{HubMessage, HubProtocol, Invocation, MessageReader, OutMessage, RawValue};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{CloseReason, Error, Result};
use crate::pending::Calls;
use crate::reattach::Reattach;
use crate::sender::{Outbound, Queued};
use crate::stateful::{Admit, Outgoing, Received};
use crate::transport::{Incoming, Transport};

/// Timings of the running connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) keep_alive_interval: Duration,
    pub(crate) server_timeout: Duration,
}

/// What a stateful connection keeps beside its socket.
pub(crate) struct Stateful {
    pub(crate) outgoing: Outgoing,
    pub(crate) received: Received,
    pub(crate) reattach: Reattach,
}

/// The ends a running connection's task holds.
pub(crate) struct Driver {
    pub(crate) transport: Transport,
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) queue: mpsc::UnboundedReceiver<Outbound>,
    pub(crate) calls: Arc<Calls>,
    pub(crate) invocations: mpsc::UnboundedSender<Invocation>,
    pub(crate) timing: Timing,
    /// Stateful reconnect, when negotiated.
    pub(crate) stateful: Option<Stateful>,
}

/// No limit on one message from the server (the official clients set none).
const MAX_MESSAGE_SIZE: usize = usize::MAX;

/// What one turn of the connection's loop came to.
enum Step {
    /// Go on.
    Continue,
    /// The connection ends.
    End(CloseReason),
    /// The transport went (dropped, closed, or failed to write): the end, unless stateful
    /// reconnect brings it back.
    Lost(CloseReason),
}

/// What the queue gave in one go.
struct Batch {
    /// The messages, joined into one frame (as the official clients batch sends).
    bytes: Vec<u8>,
    /// A stop request (or the connection's owner gone: `Some(None)`) ended the batch.
    stop: Option<Option<oneshot::Sender<()>>>,
}

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
        self.fail_waiting_senders(&reason);
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
        // Stateful reconnect: the socket opening again, and why the last one went.
        let mut reopening: Option<BoxFuture<'static, Result<Transport>>> = None;
        let mut lost = None;
        // The official clients ping right after the handshake.
        let mut step = Step::Continue;
        if keep_alive {
            if let Err(error) = self
                .write(self.protocol.encode(&OutMessage::Ping).unwrap_or_default())
                .await
            {
                step = Step::Lost(CloseReason::Failed(error));
            }
        }
        let mut last_sent = Instant::now();
        // One timer for the ping, the Ack and the server timeout, armed for the earliest of
        // them and moved only when it fires (or an earlier Ack falls due): activity moves the
        // deadlines later, so a timer that fires early just re-arms. Creating three `Sleep`s
        // on every turn of the loop registered and cleared six to nine timer entries per echo
        // call (`clear_entry`, `reregister`, `Sleep::poll` in `perf record` of `hub-bench
        // client`, 64 connections × 32 B); one timer took the typed client from 0.82 to 0.89 of
        // the hand-written client's calls/s, and its CPU per call from 16 to 14.5 µs (one run).
        let timer = tokio::time::sleep_until(
            self.deadlines(keep_alive, true, last_sent, last_received)
                .earliest()
                .unwrap_or_else(far_future),
        );
        tokio::pin!(timer);
        loop {
            match step {
                Step::Continue => {}
                Step::End(reason) => return reason,
                Step::Lost(reason) => match &mut self.stateful {
                    Some(stateful) => {
                        tracing::debug!(%reason, "the socket went: opening it again (stateful reconnect)");
                        stateful.received.disconnected();
                        *reader = MessageReader::default();
                        reopening = Some(stateful.reattach.open());
                        lost = Some(reason);
                    }
                    None => return reason,
                },
            }
            let connected = reopening.is_none();
            step = tokio::select! {
                biased;
                incoming = self.transport.recv(), if connected => {
                    last_received = Instant::now();
                    match incoming {
                        Incoming::Data(data) => match self.receive(reader, data) {
                            Some(reason) => Step::End(reason),
                            None => {
                                // A tracked message owes an Ack, maybe before the timer.
                                if let Some(ack) = self.stateful.as_ref().and_then(|s| s.received.ack_due()) {
                                    if ack < timer.deadline() {
                                        timer.as_mut().reset(ack);
                                    }
                                }
                                Step::Continue
                            }
                        },
                        Incoming::Closed(reason) => Step::Lost(reason),
                    }
                }
                reopened = reopened(&mut reopening), if !connected => {
                    reopening = None;
                    let reason = lost.take().unwrap_or(CloseReason::Failed(Error::NotConnected));
                    match reopened {
                        Ok(transport) => match self.resume(transport).await {
                            Ok(()) => {
                                tracing::debug!("the socket is back (stateful reconnect)");
                                last_received = Instant::now();
                                last_sent = Instant::now();
                                // Pings and Acks are due again.
                                let next = self.deadlines(keep_alive, true, last_sent, last_received).earliest();
                                timer.as_mut().reset(next.unwrap_or_else(far_future));
                                Step::Continue
                            }
                            Err(error) => {
                                tracing::debug!(%error, "resending on the new socket failed");
                                Step::End(reason)
                            }
                        },
                        Err(error) => {
                            tracing::debug!(%error, "the socket could not be opened again");
                            Step::End(reason)
                        }
                    }
                }
                outbound = self.queue.recv() => {
                    let batch = self.batch(outbound);
                    let mut step = Step::Continue;
                    // While the socket opens again, tracked messages wait in the buffer.
                    if connected && !batch.bytes.is_empty() {
                        match self.write(batch.bytes.into()).await {
                            Ok(()) => last_sent = Instant::now(),
                            Err(error) => step = Step::Lost(CloseReason::Failed(error)),
                        }
                    }
                    if let Some(stop) = batch.stop {
                        *stopped = stop;
                        let close = self.protocol.encode(&OutMessage::Close { error: None, allow_reconnect: false });
                        if let (true, Ok(close)) = (connected && matches!(step, Step::Continue), close) {
                            let _ = self.write(close).await;
                        }
                        step = Step::End(CloseReason::Stopped);
                    }
                    step
                }
                () = &mut timer => {
                    let step = self.on_timer(keep_alive, connected, &mut last_sent, last_received).await;
                    let next = self.deadlines(keep_alive, connected, last_sent, last_received).earliest();
                    timer.as_mut().reset(next.unwrap_or_else(far_future));
                    step
                }
            };
        }
    }

    /// When the timed duties fall due, for the last write and read at `last_sent` and
    /// `last_received`.
    fn deadlines(&self, keep_alive: bool, connected: bool, last_sent: Instant, last_received: Instant) -> Deadlines {
        Deadlines {
            ack: self
                .stateful
                .as_ref()
                .and_then(|s| s.received.ack_due())
                .filter(|_| connected),
            ping: (keep_alive && connected).then(|| last_sent + self.timing.keep_alive_interval),
            server_timeout: keep_alive.then(|| last_received + self.timing.server_timeout),
        }
    }

    /// The timer fired: ends the connection on the server's silence, or sends what is due (the
    /// Ack, else a ping). Nothing is due when activity moved the deadlines since it was armed.
    async fn on_timer(
        &mut self,
        keep_alive: bool,
        connected: bool,
        last_sent: &mut Instant,
        last_received: Instant,
    ) -> Step {
        let now = Instant::now();
        let due = self.deadlines(keep_alive, connected, *last_sent, last_received);
        if due.server_timeout.is_some_and(|at| at <= now) {
            return Step::End(CloseReason::Failed(Error::ServerTimeout(self.timing.server_timeout)));
        }
        let message = if due.ack.is_some_and(|at| at <= now) {
            let sequence_id = self.stateful.as_mut().map_or(0, |s| s.received.take_ack());
            OutMessage::Ack { sequence_id }
        } else if due.ping.is_some_and(|at| at <= now) {
            OutMessage::Ping
        } else {
            return Step::Continue;
        };
        let bytes = self.protocol.encode(&message).unwrap_or_default();
        match self.write(bytes).await {
            Ok(()) => {
                *last_sent = Instant::now();
                Step::Continue
            }
            Err(error) => Step::Lost(CloseReason::Failed(error)),
        }
    }

    /// Takes the re-opened socket and sends on it, first, the Sequence message and every
    /// message the server has not acknowledged.
    async fn resume(&mut self, transport: Transport) -> Result<()> {
        self.transport = transport;
        let Some(stateful) = &self.stateful else {
            return Ok(());
        };
        let (first, kept) = stateful.outgoing.resend();
        let sequence = self
            .protocol
            .encode(&OutMessage::Sequence { sequence_id: first })
            .map_err(|e| Error::Encode(e.0))?;
        self.write(sequence).await?;
        for bytes in kept {
            self.write(bytes).await?;
        }
        Ok(())
    }

    /// Takes what the queue holds, up to a stop request; numbers and keeps tracked messages
    /// on a stateful connection.
    fn batch(&mut self, first: Option<Outbound>) -> Batch {
        let mut joined = Vec::new();
        let mut next = first;
        loop {
            match next {
                Some(Outbound::Message(queued)) => joined.extend_from_slice(&self.track(queued)),
                Some(Outbound::Stop(reply)) => {
                    return Batch {
                        bytes: joined,
                        stop: Some(Some(reply)),
                    }
                }
                None => {
                    return Batch {
                        bytes: joined,
                        stop: Some(None),
                    }
                }
            }
            match self.queue.try_recv() {
                Ok(outbound) => next = Some(outbound),
                Err(_) => {
                    return Batch {
                        bytes: joined,
                        stop: None,
                    }
                }
            }
        }
    }

    /// Numbers and keeps a tracked message of a stateful connection (its sender is released
    /// by the buffer); any other message's sender goes on at once.
    fn track(&mut self, queued: Queued) -> Bytes {
        match (&mut self.stateful, queued.tracked) {
            (Some(stateful), true) => stateful.outgoing.keep(queued.bytes.clone(), queued.release),
            _ => {
                if let Some(release) = queued.release {
                    let _ = release.send(Ok(()));
                }
            }
        }
        queued.bytes
    }

    /// The connection ended: what still waits for the stateful reconnect buffer, or in the
    /// queue, fails with its end.
    fn fail_waiting_senders(&mut self, reason: &CloseReason) {
        let error = Error::ConnectionClosed(Box::new(reason.clone()));
        if let Some(stateful) = &mut self.stateful {
            stateful.outgoing.fail_waiting(&error);
        }
        while let Ok(outbound) = self.queue.try_recv() {
            if let Outbound::Message(Queued {
                release: Some(release), ..
            }) = outbound
            {
                let _ = release.send(Err(error.clone()));
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
        if let Some(stateful) = &mut self.stateful {
            match stateful.received.admit(&message) {
                Ok(Admit::Handle) => {}
                Ok(Admit::Skip) => return None,
                Err(error) => return Some(CloseReason::Failed(error)),
            }
        }
        match message {
            // Both may wait in a queue for the application: copied out of their frame (a value is
            // read as a slice of it).
            HubMessage::Invocation(mut invocation) => {
                invocation.arguments = invocation.arguments.into_iter().map(RawValue::detach).collect();
                let _ = self.invocations.send(invocation);
            }
            HubMessage::StreamItem {
                invocation_id, item, ..
            } => self.calls.item(&invocation_id, item.detach()),
            HubMessage::Completion {
                invocation_id, result, ..
            } => self.calls.complete(&invocation_id, result),
            HubMessage::Close { error, allow_reconnect } => {
                return Some(CloseReason::ByServer { error, allow_reconnect })
            }
            HubMessage::StreamInvocation(invocation) => {
                tracing::warn!(target_method = %invocation.target, "the server asked this client for a stream: ignored");
            }
            HubMessage::Ack { sequence_id } => {
                if let Some(stateful) = &mut self.stateful {
                    stateful.outgoing.ack(sequence_id);
                }
            }
            HubMessage::Ping | HubMessage::CancelInvocation { .. } | HubMessage::Sequence { .. } => {}
        }
        None
    }
}

/// When the connection's timed duties fall due.
struct Deadlines {
    /// The owed Ack (stateful reconnect, while connected).
    ack: Option<Instant>,
    /// The next keep-alive ping (while connected).
    ping: Option<Instant>,
    /// The server's silence ends the connection.
    server_timeout: Option<Instant>,
}

impl Deadlines {
    fn earliest(&self) -> Option<Instant> {
        [self.ack, self.ping, self.server_timeout].into_iter().flatten().min()
    }
}

/// A deadline for a timer with nothing to time (about a year away).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

/// The re-opened socket, once there is one being opened.
async fn reopened(reopening: &mut Option<BoxFuture<'static, Result<Transport>>>) -> Result<Transport> {
    match reopening {
        Some(reopening) => reopening.await,
        None => std::future::pending().await,
    }
}
