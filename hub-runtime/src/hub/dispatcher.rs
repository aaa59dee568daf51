//! The dispatcher: runs one hub connection — handshake, reading messages, routing invocations
//! to the generated router, keep-alive, and closing.
//!
//! The read loop never awaits a hub method: invocations run as futures polled beside it (up to
//! `max_parallel_invocations` at once, the rest queued), so Pings, Completions and Closes are
//! read while a method runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use super::{Call, ConnectionError, Hub, HubContext, MethodKind};
use crate::clients::lifetime::{LifetimeManager, LocalConnection};
use crate::connection::{
    instant_of, now_ms, BoxFuture, Connection, ConnectionHandler, ConnectionSender, Frame,
    TransportKind,
};
use crate::protocol::handshake::{self, HandshakeError};
use crate::protocol::{
    HubMessage, HubProtocol, Invocation, MessageReader, OutMessage, ProtocolError, TransferFormat,
};
use crate::server::HubOptions;

/// A hub mapped at an endpoint: the connection handler of hub connections.
pub(crate) struct HubEndpoint<H: Hub> {
    hub: Arc<H>,
    manager: Arc<LifetimeManager>,
    options: Arc<HubOptions>,
    methods: HashMap<String, usize>,
    shutdown: CancellationToken,
}

impl<H: Hub> HubEndpoint<H> {
    pub(crate) fn new(
        hub: Arc<H>,
        manager: Arc<LifetimeManager>,
        options: Arc<HubOptions>,
        shutdown: CancellationToken,
    ) -> Self {
        let methods = H::__METHODS
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.to_lowercase(), i))
            .collect();
        HubEndpoint {
            hub,
            manager,
            options,
            methods,
            shutdown,
        }
    }

    fn find(&self, target: &str) -> Option<usize> {
        if let Some(&i) = self.methods.get(target) {
            return Some(i);
        }
        self.methods.get(&target.to_lowercase()).copied()
    }
}

/// The handler mapped at a hub's path.
pub(crate) struct HubHandler<H: Hub>(pub(crate) Arc<HubEndpoint<H>>);

impl<H: Hub> ConnectionHandler for HubHandler<H> {
    fn run(&self, connection: Connection) -> BoxFuture<()> {
        Box::pin(run_connection(self.0.clone(), connection))
    }
}

fn frame_for(format: TransferFormat, bytes: Bytes) -> Frame {
    match format {
        TransferFormat::Text => Frame::Text(bytes),
        TransferFormat::Binary => Frame::Binary(bytes),
    }
}

/// Ends a connection with a Close message (best effort) and closes the transport.
fn close_with(
    sender: &ConnectionSender,
    protocol: &dyn HubProtocol,
    error: Option<&str>,
    allow_reconnect: bool,
) {
    if let Ok(bytes) = protocol.encode(&OutMessage::Close {
        error,
        allow_reconnect,
    }) {
        let _ = sender.try_send(frame_for(protocol.transfer_format(), bytes));
    }
    sender.close();
}

fn closed_with_error(detail: &str, kind: &str, detailed: bool) -> String {
    const BASE: &str = "Connection closed with an error.";
    if detailed {
        format!("{BASE} {kind}: {detail}")
    } else {
        BASE.to_string()
    }
}

/// Reads the handshake. Returns the chosen protocol's index and any bytes after it.
async fn handshake(
    connection: &mut Connection,
    protocols: &[Arc<dyn HubProtocol>],
    options: &HubOptions,
) -> Option<(usize, Vec<u8>)> {
    let sender = connection.sender();
    let reply_error = |text: &str| {
        let _ = sender.try_send(Frame::Text(handshake::error_reply(text).into()));
        sender.close();
    };
    let deadline = tokio::time::sleep(options.handshake_timeout);
    tokio::pin!(deadline);
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        let frame = tokio::select! {
            _ = &mut deadline => {
                tracing::debug!(connection = connection.id(), "handshake timed out");
                reply_error(handshake::HANDSHAKE_CANCELED);
                return None;
            }
            frame = connection.recv() => frame?,
        };
        buffer.extend_from_slice(frame.data());
        match handshake::parse_request(&buffer) {
            Err(HandshakeError::Incomplete) => {
                if buffer.len() > options.max_message_size {
                    reply_error(handshake::HANDSHAKE_CANCELED);
                    return None;
                }
            }
            Err(HandshakeError::Invalid(detail)) => {
                tracing::debug!(connection = connection.id(), %detail, "invalid handshake");
                let text = if options.detailed_errors {
                    format!(
                        "{} InvalidDataException: {detail}",
                        handshake::HANDSHAKE_FAILED
                    )
                } else {
                    handshake::HANDSHAKE_FAILED.to_string()
                };
                reply_error(&text);
                return None;
            }
            Ok((request, used)) => {
                let supports_binary =
                    connection.request().transport() != Some(TransportKind::ServerSentEvents);
                match handshake::select_protocol(&request, protocols, supports_binary) {
                    Err(text) => {
                        tracing::debug!(connection = connection.id(), %text, "handshake refused");
                        reply_error(&text);
                        return None;
                    }
                    Ok(protocol) => {
                        let index = protocols
                            .iter()
                            .position(|p| Arc::ptr_eq(p, protocol))
                            .unwrap_or(0);
                        let reply = Bytes::from_static(handshake::SUCCESS_REPLY);
                        let _ = sender.try_send(frame_for(protocol.transfer_format(), reply));
                        buffer.drain(..used);
                        return Some((index, buffer));
                    }
                }
            }
        }
    }
}

/// Why the read loop ended.
enum End {
    /// The client went away or closed cleanly.
    ClientGone,
    /// The hub asked to close the connection.
    Requested,
    /// The server is shutting down.
    Shutdown,
    /// An error: the Close message's text and allowReconnect, and what on_disconnected sees.
    Error {
        close_text: String,
        error: ConnectionError,
    },
    /// The transport was aborted (slow consumer, forced close).
    Aborted,
}

async fn run_connection<H: Hub>(endpoint: Arc<HubEndpoint<H>>, mut connection: Connection) {
    let options = endpoint.options.clone();
    let protocols = endpoint.manager.protocols().clone();
    let sender = connection.sender();
    let Some((protocol_index, leftover)) = handshake(&mut connection, &protocols, &options).await
    else {
        return;
    };
    let protocol = protocols[protocol_index].clone();

    let id: Arc<str> = connection.id().into();
    let identity = connection.identity().cloned();
    let user_id = identity
        .as_ref()
        .and_then(|i| i.user_id())
        .map(Arc::<str>::from);
    let cx = Arc::new(HubContext::<H>::new(
        endpoint.manager.clone(),
        id.clone(),
        identity,
        sender.clone(),
    ));
    endpoint
        .manager
        .add_connection(Arc::new(LocalConnection::new(
            id.clone(),
            sender.clone(),
            protocol_index,
            user_id,
        )));
    tracing::debug!(connection = %id, protocol = protocol.name(), "hub connection opened");

    if let Err(error) = endpoint.hub.clone().__on_connected(cx.clone()).await {
        tracing::warn!(connection = %id, %error, "on_connected failed; closing the connection");
        endpoint.manager.remove_connection(&id);
        let text = closed_with_error(error.message(), error.kind(), options.detailed_errors);
        close_with(&sender, &*protocol, Some(&text), false);
        return;
    }

    let connection_token = CancellationToken::new();
    let end = read_loop(
        &endpoint,
        &mut connection,
        &cx,
        &protocol,
        leftover,
        &connection_token,
    )
    .await;
    connection_token.cancel();
    endpoint.manager.remove_connection(&id);

    let error = match end {
        End::ClientGone => {
            tracing::debug!(connection = %id, "hub connection closed by the client");
            sender.close();
            None
        }
        End::Requested => {
            tracing::debug!(connection = %id, "hub connection closed by the server");
            close_with(&sender, &*protocol, None, false);
            None
        }
        End::Shutdown => {
            tracing::debug!(connection = %id, "hub connection closed: server shutting down");
            close_with(&sender, &*protocol, None, true);
            None
        }
        End::Error { close_text, error } => {
            tracing::info!(connection = %id, %error, "hub connection closed with an error");
            close_with(&sender, &*protocol, Some(&close_text), true);
            Some(error)
        }
        End::Aborted => {
            tracing::debug!(connection = %id, "hub connection aborted");
            Some(ConnectionError::new("The connection was aborted."))
        }
    };
    endpoint.hub.clone().__on_disconnected(cx, error).await;
}

async fn read_loop<H: Hub>(
    endpoint: &Arc<HubEndpoint<H>>,
    connection: &mut Connection,
    cx: &Arc<HubContext<H>>,
    protocol: &Arc<dyn HubProtocol>,
    leftover: Vec<u8>,
    connection_token: &CancellationToken,
) -> End {
    let options = &endpoint.options;
    let sender = cx.sender().clone();
    let format = protocol.transfer_format();
    let ping = protocol
        .encode(&OutMessage::Ping)
        .ok()
        .map(|b| frame_for(format, b));
    let mut reader = MessageReader::default();
    let mut messages = Vec::new();
    let mut running: FuturesUnordered<BoxFuture<()>> = FuturesUnordered::new();
    let mut waiting: VecDeque<(usize, Call)> = VecDeque::new();
    let parallel = options.max_parallel_invocations.max(1);
    // Long polling keeps itself alive: no pings, no client timeout.
    let inherent_keep_alive = connection.transport() == Some(TransportKind::LongPolling);
    const FAR: u64 = 365 * 24 * 3600 * 1000;

    let start = |method: usize, call: Call| -> BoxFuture<()> {
        let future = endpoint.hub.clone().__invoke(cx.clone(), method, call);
        let sender = sender.clone();
        Box::pin(async move {
            let outcome = future.await;
            if let Some(bytes) = outcome.completion {
                let _ = sender.send(frame_for(format, bytes)).await;
            }
        })
    };

    let aborted = connection.abort_token();
    let mut pending_input = if leftover.is_empty() {
        None
    } else {
        Some(Bytes::from(leftover))
    };
    loop {
        // Route what was read: the handshake's leftover first, then each frame.
        if let Some(data) = pending_input.take() {
            messages.clear();
            if let Err(e) = reader.feed(&**protocol, &data, options.max_message_size, &mut messages)
            {
                return protocol_error(e, options.detailed_errors);
            }
            for message in messages.drain(..) {
                match message {
                    HubMessage::Invocation(inv) => {
                        if let Some((method, call)) =
                            bind(endpoint, inv, protocol, connection_token, &sender, false)
                        {
                            if running.len() < parallel {
                                running.push(start(method, call));
                            } else {
                                waiting.push_back((method, call));
                            }
                        }
                    }
                    HubMessage::StreamInvocation(inv) => {
                        // No streaming methods yet: every stream invocation is refused.
                        let _ = bind(endpoint, inv, protocol, connection_token, &sender, true);
                    }
                    HubMessage::Close { error, .. } => {
                        if let Some(error) = error {
                            tracing::debug!(connection = cx.connection_id(), %error, "client closed with an error");
                        }
                        return End::ClientGone;
                    }
                    HubMessage::Ping => {}
                    other => {
                        tracing::debug!(connection = cx.connection_id(), message = ?other, "ignoring an unexpected message")
                    }
                }
            }
        }

        let now = now_ms();
        let wake_at = if inherent_keep_alive {
            instant_of(now + FAR)
        } else {
            let keep_alive_at =
                connection.last_write_ms() + options.keep_alive_interval.as_millis() as u64;
            let timeout_at = connection.last_read_ms() + options.client_timeout.as_millis() as u64;
            instant_of(keep_alive_at.min(timeout_at).max(now))
        };

        tokio::select! {
            frame = connection.recv(), if waiting.len() < options.max_pending_invocations => {
                match frame {
                    Some(frame) => pending_input = Some(frame.data().clone()),
                    None => return End::ClientGone,
                }
            }
            Some(()) = running.next(), if !running.is_empty() => {
                while running.len() < parallel {
                    let Some((method, call)) = waiting.pop_front() else { break };
                    running.push(start(method, call));
                }
            }
            _ = tokio::time::sleep_until(wake_at), if !inherent_keep_alive => {
                let now = now_ms();
                if now >= connection.last_read_ms() + options.client_timeout.as_millis() as u64 {
                    let detail = "Client hasn't sent a message/ping within the configured ClientTimeoutInterval.";
                    return End::Error {
                        close_text: closed_with_error(detail, "OperationCanceledException", options.detailed_errors),
                        error: ConnectionError::new(detail),
                    };
                }
                if now >= connection.last_write_ms() + options.keep_alive_interval.as_millis() as u64 {
                    if let Some(ping) = &ping {
                        let _ = sender.try_send(ping.clone());
                    }
                    // Count the ping as written even before the transport flushes it.
                    connection.mark_written();
                }
            }
            _ = cx.close_requested().cancelled() => return End::Requested,
            _ = endpoint.shutdown.cancelled() => return End::Shutdown,
            _ = aborted.cancelled() => return End::Aborted,
        }
    }
}

fn protocol_error(error: ProtocolError, detailed: bool) -> End {
    let detail = error.to_string();
    End::Error {
        close_text: closed_with_error(&detail, "InvalidDataException", detailed),
        error: ConnectionError::new(detail),
    }
}

/// Looks up and checks an invocation; failures are answered with a Completion error (when the
/// invocation expects a reply) and yield `None`.
fn bind<H: Hub>(
    endpoint: &HubEndpoint<H>,
    invocation: Invocation,
    protocol: &Arc<dyn HubProtocol>,
    connection_token: &CancellationToken,
    sender: &ConnectionSender,
    streaming: bool,
) -> Option<(usize, Call)> {
    let Invocation {
        invocation_id,
        target,
        arguments,
        ..
    } = invocation;
    let method = endpoint.find(&target);
    let def = method.map(|m| &H::__METHODS[m]);
    let mut call = Call {
        method: def.map(|d| d.name).unwrap_or(""),
        invocation_id,
        arguments,
        protocol: protocol.clone(),
        detailed_errors: endpoint.options.detailed_errors,
        cancel: connection_token.child_token(),
    };
    let reply = |text: String, call: &Call| {
        if let Some(bytes) = call.error_text(&text).completion {
            let _ = sender.try_send(frame_for(protocol.transfer_format(), bytes));
        }
    };
    let Some(def) = def else {
        tracing::debug!(method = %target, "invocation of an unknown hub method");
        let text = format!("Failed to invoke '{target}' due to an error on the server. HubException: Method does not exist.");
        reply(text, &call);
        return None;
    };
    if streaming {
        match def.kind {
            MethodKind::Plain => {
                let text = format!(
                    "The client attempted to invoke the non-streaming '{}' method with a streaming invocation.",
                    def.name
                );
                reply(text, &call);
                return None;
            }
        }
    }
    if call.arguments.len() != def.arguments {
        let detail = format!(
            "Invocation provides {} argument(s) but target expects {}.",
            call.arguments.len(),
            def.arguments
        );
        if let Some(bytes) = call.binding_failure(&detail).completion {
            let _ = sender.try_send(frame_for(protocol.transfer_format(), bytes));
        }
        return None;
    }
    call.method = def.name;
    Some((method.unwrap_or(0), call))
}
