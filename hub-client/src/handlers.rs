//! Handlers for the server's invocations: plain ones ([`HubConnection::on`]) and client
//! results ([`HubConnection::on_result`]), run one invocation at a time, in order.
//!
//! [`HubConnection::on`]: crate::HubConnection::on
//! [`HubConnection::on_result`]: crate::HubConnection::on_result

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use hub_protocol::{Invocation, OutMessage, OutResult};
use tokio::sync::mpsc;

use crate::args::Arguments;
use crate::sender::WeakSender;

/// What a handler gave back.
pub(crate) enum Outcome {
    /// A plain handler ran (no result).
    Nothing,
    /// A client result.
    Value(Box<dyn erased_serde::Serialize + Send + Sync>),
    /// The handler failed with this text.
    Error(String),
}

pub(crate) type Handler = Arc<dyn Fn(Arguments) -> BoxFuture<'static, Outcome> + Send + Sync>;

/// The handlers by method name (compared case-insensitively, as the official clients do).
#[derive(Default)]
pub(crate) struct Handlers {
    by_name: Mutex<HashMap<String, Vec<Handler>>>,
}

/// The text the official clients answer with when no handler returns a result.
pub(crate) const NO_RESULT: &str = "Client didn't provide a result.";
/// The error a client result gets when its handler panics.
pub(crate) const HANDLER_PANICKED: &str = "the client's handler panicked";
/// The text the official clients answer with when several handlers return results.
pub(crate) const MULTIPLE_RESULTS: &str = "Client provided multiple results.";

impl Handlers {
    pub(crate) fn add(&self, name: &str, handler: Handler) {
        let mut by_name = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        by_name.entry(name.to_lowercase()).or_default().push(handler);
    }

    pub(crate) fn remove(&self, name: &str) {
        let mut by_name = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        by_name.remove(&name.to_lowercase());
    }

    fn get(&self, name: &str) -> Vec<Handler> {
        let by_name = self.by_name.lock().unwrap_or_else(|p| p.into_inner());
        by_name.get(&name.to_lowercase()).cloned().unwrap_or_default()
    }
}

/// Runs the invocations of one connection, in order, answering those that carry an id.
pub(crate) async fn dispatch(
    handlers: Arc<Handlers>,
    mut invocations: mpsc::UnboundedReceiver<Invocation>,
    sender: WeakSender,
) {
    while let Some(invocation) = invocations.recv().await {
        let found = handlers.get(&invocation.target);
        if found.is_empty() {
            tracing::warn!(target_method = %invocation.target, "no handler for the server's invocation");
        }
        let mut values = Vec::new();
        let mut error = None;
        for handler in found {
            let run = std::panic::AssertUnwindSafe(handler(Arguments::new(invocation.arguments.clone())));
            match run
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Outcome::Error(HANDLER_PANICKED.into()))
            {
                Outcome::Nothing => {}
                Outcome::Value(value) => values.push(value),
                Outcome::Error(text) => {
                    error.get_or_insert(text);
                }
            }
        }
        let Some(id) = invocation.invocation_id.as_deref() else {
            continue;
        };
        let Some(sender) = sender.upgrade() else {
            return;
        };
        let result = match (&error, values.len()) {
            (Some(text), _) => OutResult::Error(text),
            (None, 0) => OutResult::Error(NO_RESULT),
            (None, 1) => OutResult::Value(&*values[0]),
            (None, _) => OutResult::Error(MULTIPLE_RESULTS),
        };
        let sent = sender.send(&OutMessage::Completion {
            invocation_id: id,
            result,
        });
        if let Err(crate::Error::Encode(text)) = &sent {
            let error = format!("the client's result could not be encoded: {text}");
            let _ = sender.send(&OutMessage::Completion {
                invocation_id: id,
                result: OutResult::Error(&error),
            });
        }
    }
}
