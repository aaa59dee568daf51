//! What arrives on the listening connection: messages for local connections (each server of
//! the hub receives every one and delivers to its own members of the target), group commands
//! for local connections, client-result invocations for local connections, and the answers
//! to this server's own commands and invocations.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::channels::server_channel;
use super::frame::{self, Frame, Kind, Payload};
use super::listener::Session;
use super::Inner;
use crate::backplane::wire::{
    decode_ack, decode_group_command, decode_message, decode_return, encode_ack, encode_return,
};
use crate::backplane::LocalHub;

/// Handles one notification's text.
pub(super) async fn handle(inner: &Arc<Inner>, session: &Session, text: &str) {
    let bytes = match frame::read_payload(text) {
        Some(Payload::Inline(bytes)) => bytes,
        Some(Payload::Stored { origin, .. }) if origin == inner.server => return,
        Some(Payload::Stored { id, .. }) => match fetch(inner, session, id).await {
            Some(bytes) => bytes,
            None => {
                inner.metrics.lost(1);
                return;
            }
        },
        None => {
            tracing::warn!("ignoring an unreadable postgres backplane notification");
            return;
        }
    };
    let Some(frame) = frame::decode(&bytes) else {
        tracing::warn!("ignoring an unreadable postgres backplane frame");
        return;
    };
    if frame.origin == inner.server {
        return;
    }
    match frame.kind {
        Kind::Ack => {
            if let Some((id, outcome)) = decode_ack(&frame.body) {
                if let Some(waiting) = inner.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                    let _ = waiting.send(outcome);
                }
            }
        }
        Kind::Accepted => {
            let Ok(id) = std::str::from_utf8(&frame.body) else {
                return;
            };
            let mut returns = inner.returns.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(accepted) = returns.get_mut(id).and_then(|r| r.accepted.take()) {
                let _ = accepted.send(());
            }
        }
        Kind::Return => {
            if let Some((id, result)) = decode_return(&frame.body) {
                if let Some(waiting) = inner.returns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                    let _ = waiting.result.send(result);
                }
            }
        }
        Kind::GroupCommand => group_command(inner, frame),
        Kind::Message => message(inner, frame),
    }
}

/// Reads a stored payload; `None` (logged) if it is gone or cannot be read.
async fn fetch(inner: &Inner, session: &Session, id: i64) -> Option<Vec<u8>> {
    let timeout = inner.options.response_timeout;
    let read = tokio::time::timeout(timeout, session.client.query_opt(&session.fetch, &[&id])).await;
    let error = match read {
        Ok(Ok(Some(row))) => match row.try_get::<_, Vec<u8>>(0) {
            Ok(body) => return Some(body),
            Err(e) => e.to_string(),
        },
        Ok(Ok(None)) => "it is gone (older than the payload retention?)".to_string(),
        Ok(Err(e)) => super::connect::describe(&e),
        Err(_) => format!("no answer within {timeout:?}"),
    };
    tracing::warn!(id, %error, "could not read a large postgres backplane message: it is lost");
    None
}

fn group_command(inner: &Arc<Inner>, frame: Frame) {
    let Some(command) = decode_group_command(&frame.body) else {
        return;
    };
    let Some(local) = inner.local(&frame.hub) else { return };
    let inner = inner.clone();
    tokio::spawn(async move {
        let outcome = match local
            .apply_group(&command.connection, &command.group, command.change)
            .await
        {
            Ok(true) => Ok(()),
            // Not here: another server may own it (no answer means nobody does).
            Ok(false) => return,
            Err(refused) => Err(refused),
        };
        let channel = server_channel(&inner.options.prefix, &command.server);
        let body = encode_ack(command.id, &outcome);
        let _ = inner.publish_frame(&channel, Kind::Ack, "", None, &body).await;
    });
}

fn message(inner: &Arc<Inner>, frame: Frame) {
    let (Some(target), Some(local)) = (frame.target, inner.local(&frame.hub)) else {
        return;
    };
    let Some(message) = decode_message(&frame.body) else {
        tracing::warn!("ignoring an unreadable postgres backplane message");
        return;
    };
    if message.origin == inner.server {
        return;
    }
    if let Some((invocation_id, reply_to)) = message.reply {
        let frame::Target::Connections(ids) = &target else {
            return;
        };
        let [id] = ids.as_slice() else { return };
        invoke(inner, local.as_ref(), id, invocation_id, reply_to, &message.encoded);
        return;
    }
    let target = target.resolve(message.excluded, message.groups);
    local.deliver(&target, &message.encoded);
}

/// A client result another server awaits: invokes it if the connection is here, says so at
/// once, and sends the answer back when the client gives it (within the hub's client-result
/// timeout).
fn invoke(
    inner: &Arc<Inner>,
    local: &dyn LocalHub,
    connection_id: &str,
    invocation_id: String,
    reply_to: String,
    message: &crate::backplane::EncodedMessage,
) {
    let Some((protocol, answer)) = local.invoke_local(connection_id, &invocation_id, message) else {
        return;
    };
    let forwarded = Forwarded::start(inner.clone());
    tokio::spawn(async move {
        let inner = forwarded.inner.clone();
        let accepted = inner.publish_frame(&reply_to, Kind::Accepted, "", None, invocation_id.as_bytes());
        let (_, result) = tokio::join!(accepted, answer);
        drop(forwarded);
        let body = encode_return(&invocation_id, protocol, &result);
        let _ = inner.publish_frame(&reply_to, Kind::Return, "", None, &body).await;
    });
}

/// A client result another server awaits from a connection here (counted while it lasts).
struct Forwarded {
    inner: Arc<Inner>,
}

impl Forwarded {
    fn start(inner: Arc<Inner>) -> Self {
        inner.forwarded.fetch_add(1, Ordering::Relaxed);
        Forwarded { inner }
    }
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        self.inner.forwarded.fetch_sub(1, Ordering::Relaxed);
    }
}
