//! Group commands and client results: NATS requests to the connection's subject, answered by
//! the server that owns the connection.
//!
//! The requester publishes the payload's leading chunks (if it is larger than `max_payload`)
//! and sends the last as the request; the reply is the wire ack (`[id]`, a refusal) or the
//! client's Completion. An empty reply means "not here" (the connection left while its
//! subject was still subscribed); NATS itself answers "no responders" at once when no server
//! listens on the subject. Both are `BackplaneError::UnknownConnection`, without waiting.
//!
//! A client's Completion larger than the server's `max_payload` cannot travel as one reply:
//! the requester gets an error Completion saying so.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{RequestErrorKind, Subject};
use bytes::Bytes;

use super::frames::Kind;
use super::{InFlight, Inner};
use crate::backplane::wire::{
    decode_ack, decode_group_command, decode_message, decode_return, encode_ack, encode_return,
};
use crate::backplane::{BackplaneError, GroupError, LocalHub};
use crate::protocol::CompletionResult;

/// What a request's owner answered.
pub(super) enum Answer {
    /// The reply's payload.
    Reply(Bytes),
    /// No server owns the connection.
    Nobody,
}

impl Inner {
    /// Sends a request for a connection and awaits its server's reply, at most `timeout`.
    pub(super) async fn request(
        &self,
        subject: String,
        kind: Kind,
        connection: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Answer, BackplaneError> {
        let mut frames = self.frames(kind, Some(connection), body)?;
        let Some(last) = frames.pop() else {
            return Err(BackplaneError::Unavailable("nothing to send".into()));
        };
        if !frames.is_empty() {
            self.publish(subject.clone(), frames).await?;
        } else {
            self.check_connected(&subject)?;
        }
        let request = async_nats::Request::new().payload(last).timeout(Some(timeout));
        // The client's own timeout bounds the wait for the reply; this bounds the rest.
        let bound = timeout.saturating_add(self.options.response_timeout);
        let sent = tokio::time::timeout(bound, self.client.send_request(subject.clone(), request)).await;
        match sent {
            Ok(Ok(reply)) if reply.payload.is_empty() => Ok(Answer::Nobody),
            Ok(Ok(reply)) => Ok(Answer::Reply(reply.payload)),
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => Ok(Answer::Nobody),
            Ok(Err(e)) if e.kind() == RequestErrorKind::TimedOut => Err(BackplaneError::Unavailable(format!(
                "no answer from the connection's server within {timeout:?}"
            ))),
            Ok(Err(e)) => Err(self.failed(&subject, e)),
            Err(_) => Err(self.failed(&subject, "the NATS client took no request in time")),
        }
    }

    /// Replies to a request (bounded; a reply that cannot be sent is counted).
    async fn reply(&self, reply: Subject, payload: Vec<u8>) {
        let subject = reply.to_string();
        let _ = self.publish(subject, vec![Bytes::from(payload)]).await;
    }
}

/// Applies a group command for a connection here and replies with the outcome.
pub(super) fn apply_group(
    inner: Arc<Inner>,
    local: Option<Arc<dyn LocalHub>>,
    connection: String,
    body: Bytes,
    reply: Subject,
) {
    tokio::spawn(async move {
        // Only for the connection the subject stands for, and never this server's own.
        let command = decode_group_command(&body).filter(|c| c.connection == connection && c.server != inner.server);
        let (Some(command), Some(local)) = (command, local) else {
            inner.reply(reply, Vec::new()).await;
            return;
        };
        let outcome = match local
            .apply_group(&command.connection, &command.group, command.change)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) | Err(GroupError::UnknownConnection(_)) => {
                inner.reply(reply, Vec::new()).await;
                return;
            }
            Err(refused) => Err(refused),
        };
        inner.reply(reply, encode_ack(command.id, &outcome)).await;
    });
}

/// The requester's side of a group command: the owner's ack, or why there is none.
pub(super) fn read_ack(answer: Answer, id: u64, connection: String) -> Result<(), BackplaneError> {
    match answer {
        Answer::Nobody => Err(BackplaneError::UnknownConnection(connection)),
        Answer::Reply(payload) => match decode_ack(&payload) {
            Some((acked, outcome)) if acked == id => outcome,
            _ => Err(BackplaneError::Unavailable("an unreadable group command ack".into())),
        },
    }
}

/// Sends a client-result invocation to a connection here, and replies with the client's
/// Completion once it comes (within the hub's client-result timeout).
pub(super) fn invoke(
    inner: Arc<Inner>,
    local: Option<Arc<dyn LocalHub>>,
    connection: &str,
    body: &[u8],
    reply: Subject,
) {
    let invocation = decode_message(body).and_then(|m| Some((m.reply?.0, m.encoded)));
    let started = match (local, invocation) {
        (Some(local), Some((invocation_id, encoded))) => local
            .invoke_local(connection, &invocation_id, &encoded)
            .map(|(protocol, answer)| (invocation_id, protocol, answer)),
        _ => None,
    };
    tokio::spawn(async move {
        let Some((invocation_id, protocol, answer)) = started else {
            inner.reply(reply, Vec::new()).await;
            return;
        };
        let result = {
            let _forwarded = InFlight::start(&inner.forwarded);
            answer.await
        };
        let mut payload = encode_return(&invocation_id, protocol, &result);
        let max = inner.client.max_payload();
        if payload.len() > max {
            let error = format!(
                "the client's result ({} bytes) is larger than the NATS server's max_payload ({max} bytes)",
                payload.len()
            );
            payload = encode_return(&invocation_id, protocol, &CompletionResult::Error(error));
        }
        inner.reply(reply, payload).await;
    });
}

/// The requester's side of a client result: the client's Completion, or why there is none.
pub(super) fn read_return(
    answer: Answer,
    invocation_id: &str,
    connection: String,
) -> Result<CompletionResult, BackplaneError> {
    match answer {
        Answer::Nobody => Err(BackplaneError::UnknownConnection(connection)),
        Answer::Reply(payload) => match decode_return(&payload) {
            Some((id, result)) if id == invocation_id => Ok(result),
            _ => Err(BackplaneError::Unavailable("an unreadable client result".into())),
        },
    }
}
