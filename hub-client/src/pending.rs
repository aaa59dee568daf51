//! [`Calls`]: the invocation ids handed out and the calls and streams awaiting the server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hub_protocol::{CompletionResult, RawValue};
use tokio::sync::{mpsc, oneshot};

use crate::error::{CloseReason, Error, Result};

/// A call awaiting the server.
pub(crate) enum Pending {
    /// An invocation awaiting its Completion.
    Invoke(oneshot::Sender<Result<CompletionResult>>),
    /// A server-to-client stream: items, then the end (the sender dropped) or an error.
    Stream(mpsc::UnboundedSender<Result<RawValue>>),
}

/// The pending calls of a connection, and one counter for invocation and stream ids (as the
/// official clients share one).
#[derive(Default)]
pub(crate) struct Calls {
    pending: Mutex<HashMap<String, Pending>>,
    next_id: AtomicU64,
}

impl Calls {
    pub(crate) fn next_id(&self) -> String {
        self.next_id.fetch_add(1, Ordering::Relaxed).to_string()
    }

    pub(crate) fn insert(&self, id: String, pending: Pending) {
        self.lock().insert(id, pending);
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Pending> {
        self.lock().remove(id)
    }

    /// Hands a stream item to its stream (ignored for an unknown or finished id).
    pub(crate) fn item(&self, id: &str, item: RawValue) {
        if let Some(Pending::Stream(items)) = self.lock().get(id) {
            let _ = items.send(Ok(item));
        }
    }

    /// Completes a call or a stream.
    pub(crate) fn complete(&self, id: &str, result: CompletionResult) {
        match self.remove(id) {
            Some(Pending::Invoke(reply)) => {
                let _ = reply.send(Ok(result));
            }
            Some(Pending::Stream(items)) => {
                if let CompletionResult::Error(text) = result {
                    let _ = items.send(Err(Error::Hub(text)));
                }
            }
            None => tracing::debug!(invocation_id = id, "a completion for no pending call"),
        }
    }

    /// Ends every pending call with the connection's end.
    pub(crate) fn fail_all(&self, reason: &CloseReason) {
        let drained: Vec<Pending> = self.lock().drain().map(|(_, p)| p).collect();
        for pending in drained {
            let error = Error::ConnectionClosed(Box::new(reason.clone()));
            match pending {
                Pending::Invoke(reply) => {
                    let _ = reply.send(Err(error));
                }
                Pending::Stream(items) => {
                    let _ = items.send(Err(error));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}
