//! A hub connection's handshake: reads the client's request, picks the protocol, and settles
//! what the connection is (its goodbye, and stateful reconnect when both sides want it).

use std::sync::Arc;

use super::close::{frame_for, Goodbyes};
use crate::connection::{negotiate, Connection, Frame, TransportKind};
use crate::options::HubOptions;
use crate::protocol::handshake::{self, HandshakeError};
use crate::protocol::{HubProtocol, OutMessage, TransferFormat};

/// What a handshake settled.
pub(super) struct Handshake {
    /// The chosen protocol's index in the endpoint's protocols.
    pub(super) protocol_index: usize,
    /// The bytes the client sent after its handshake request (messages, not read yet).
    pub(super) leftover: Vec<u8>,
    /// Stateful reconnect is on: the client's messages are numbered and acknowledged.
    pub(super) stateful: bool,
}

/// Reads the handshake; `None` when it failed (the client was told why, if it can be).
pub(super) async fn handshake(
    connection: &mut Connection,
    protocols: &[Arc<dyn HubProtocol>],
    goodbyes: &Goodbyes,
    options: &HubOptions,
) -> Option<Handshake> {
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
                    crate::protocol::error_texts::with_detail(
                        handshake::HANDSHAKE_FAILED,
                        "InvalidDataException",
                        &detail,
                    )
                } else {
                    handshake::HANDSHAKE_FAILED.to_string()
                };
                reply_error(&text);
                return None;
            }
            Ok((request, used)) => {
                let formats = connection
                    .request()
                    .transport()
                    .map_or(TransferFormat::ALL, negotiate::transfer_formats);
                match handshake::select_protocol(&request, protocols, formats) {
                    Err(text) => {
                        tracing::debug!(connection = connection.id(), %text, "handshake refused");
                        reply_error(&text);
                        return None;
                    }
                    Ok(protocol) => {
                        let index = protocols.iter().position(|p| Arc::ptr_eq(p, protocol)).unwrap_or(0);
                        // The success reply is sent once the connection is registered (see
                        // `run_connection`), so that messages for it reach it from then on.
                        buffer.drain(..used);
                        let stateful = request.version >= 2
                            && connection.transport() == Some(TransportKind::WebSockets)
                            && connection.stateful_negotiated();
                        let settled = Handshake {
                            protocol_index: index,
                            leftover: buffer,
                            stateful,
                        };
                        let goodbye = goodbyes.get(index, &**protocol, options);
                        settle(connection, protocol, goodbye, &settled, options);
                        return Some(settled);
                    }
                }
            }
        }
    }
}

/// Gives the connection what the handshake settled: its goodbye, and its replay buffer when
/// stateful.
fn settle(
    connection: &mut Connection,
    protocol: &Arc<dyn HubProtocol>,
    goodbye: Option<Frame>,
    settled: &Handshake,
    options: &HubOptions,
) {
    if let Some(goodbye) = goodbye {
        connection.set_goodbye(goodbye);
    }
    if settled.stateful {
        let encoder = protocol.clone();
        let format = protocol.transfer_format();
        connection.enable_replay(
            options.stateful_reconnect_buffer,
            Arc::new(move |sequence_id| {
                let message = OutMessage::Sequence { sequence_id };
                encoder.encode(&message).ok().map(|bytes| frame_for(format, bytes))
            }),
        );
    }
}
