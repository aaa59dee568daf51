//! Client results: an invocation that awaits the client's Completion, on a local connection
//! or (through the backplane) on another server's.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::oneshot;

use super::serialized::Serialized;
use super::{LifetimeManager, LocalConnection};
use crate::backplane::BackplaneError;
use crate::clients::ClientResultError;
use crate::connection::{Frame, OutboxError};
use crate::protocol::{CompletionResult, OutMessage};

impl LifetimeManager {
    /// Invokes client method `method` on one connection and awaits its result.
    pub(crate) async fn invoke<A: Serialize + Sync, R: DeserializeOwned>(
        &self,
        connection_id: &str,
        method: &str,
        args: &A,
    ) -> Result<R, ClientResultError> {
        let local = self.connections.get(connection_id).map(|c| c.value().clone());
        let number = self.next_result_id.fetch_add(1, Ordering::Relaxed) + 1;
        // An invocation routed to another server carries this server's mark, so ids from
        // different servers never meet on one connection.
        let invocation_id = if local.is_some() {
            format!("s{number}")
        } else {
            format!("s{number}.{}", self.instance)
        };
        let message = Serialized::new(
            &self.protocols,
            OutMessage::Invocation {
                invocation_id: Some(&invocation_id),
                target: method,
                arguments: args,
                stream_ids: &[],
            },
        );
        let mut pending = match local {
            Some(connection) => {
                let frame = message
                    .frame(connection.protocol)
                    .map_err(|e| ClientResultError::Encode(e.0))?;
                self.await_local(&connection, invocation_id, frame)?
            }
            None if self.backplane.is_distributed() => {
                // The connection may live on another server: the backplane routes the
                // invocation there and the result back.
                let encoded = message.encode_all().map_err(|e| ClientResultError::Encode(e.0))?;
                let remote = self
                    .backplane
                    .invoke_remote(self.hub_name, connection_id, &invocation_id, encoded);
                let result = tokio::time::timeout(self.options.client_result_timeout, remote).await;
                return match result {
                    Err(_) => Err(ClientResultError::Timeout),
                    Ok(Err(BackplaneError::UnknownConnection(id))) => Err(ClientResultError::NoConnection(id)),
                    Ok(Err(e)) => Err(ClientResultError::Disconnected(format!("{connection_id} ({e})"))),
                    Ok(Ok(result)) => decode_result(result),
                };
            }
            None => return Err(ClientResultError::NoConnection(connection_id.to_string())),
        };
        decode_result(pending.wait(self.options.client_result_timeout).await?)
    }

    /// Sends a client-result invocation to a local connection; the client's Completion comes
    /// through the returned [`PendingResult`].
    pub(super) fn await_local(
        &self,
        connection: &Arc<LocalConnection>,
        invocation_id: String,
        frame: Frame,
    ) -> Result<PendingResult, ClientResultError> {
        let (tx, rx) = oneshot::channel();
        connection
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(invocation_id.clone(), tx);
        let failed = match connection.sender.try_send_message(frame) {
            Ok(()) => false,
            Err(OutboxError::Closed) => true,
            Err(OutboxError::Full) => {
                connection.sender.abort_slow();
                true
            }
        };
        let pending = PendingResult {
            connection: connection.clone(),
            invocation_id,
            answer: rx,
        };
        if failed {
            // Dropping `pending` forgets the entry.
            return Err(ClientResultError::Disconnected(connection.id.to_string()));
        }
        Ok(pending)
    }
}

/// A client result awaited from a local connection. However the wait ends (answered, timed
/// out, or cancelled by dropping it), the connection forgets the entry.
pub(crate) struct PendingResult {
    connection: Arc<LocalConnection>,
    invocation_id: String,
    answer: oneshot::Receiver<CompletionResult>,
}

impl PendingResult {
    /// The client's Completion, or an error once `timeout` passed or the connection closed.
    pub(super) async fn wait(&mut self, timeout: std::time::Duration) -> Result<CompletionResult, ClientResultError> {
        match tokio::time::timeout(timeout, &mut self.answer).await {
            Err(_) => Err(ClientResultError::Timeout),
            Ok(Err(_)) => Err(ClientResultError::Disconnected(self.connection.id.to_string())),
            Ok(Ok(result)) => Ok(result),
        }
    }
}

impl Drop for PendingResult {
    fn drop(&mut self) {
        self.connection
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.invocation_id);
    }
}

/// Decodes a client's Completion into the expected type.
fn decode_result<R: DeserializeOwned>(result: CompletionResult) -> Result<R, ClientResultError> {
    match result {
        CompletionResult::Error(error) => Err(ClientResultError::Client(error)),
        CompletionResult::Value(raw) => raw.decode::<R>().map_err(|e| {
            ClientResultError::Decode(format!(
                "Error trying to deserialize result to {}. {e}",
                short_name::<R>()
            ))
        }),
        CompletionResult::Void => serde_json::from_str::<R>("null").map_err(|_| {
            ClientResultError::Decode(format!(
                "The client sent no result, but {} was expected.",
                short_name::<R>()
            ))
        }),
    }
}

fn short_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}
