//! The backplane: how a server reaches connections that live on other servers.
//!
//! The lifetime manager delivers every message to its own local connections and hands it to
//! the backplane for the rest of the fleet. The default [`InMemoryBackplane`] is a fleet of one
//! (nothing to install); a Redis backplane plugs in through the same trait.

use std::sync::Arc;

use bytes::Bytes;

use crate::clients::SendTarget;
use crate::connection::BoxFuture;

/// A message encoded for every protocol the server speaks, ready to forward verbatim.
#[derive(Debug, Clone)]
pub struct EncodedMessage {
    /// `(protocol name, complete framed bytes)` pairs.
    pub encodings: Vec<(&'static str, Bytes)>,
}

/// A backplane operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackplaneError {
    /// No server owns that connection.
    UnknownConnection(String),
    /// The backplane could not be reached; the text says why.
    Unavailable(String),
}

impl std::fmt::Display for BackplaneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackplaneError::UnknownConnection(id) => write!(f, "no server owns connection '{id}'"),
            BackplaneError::Unavailable(why) => write!(f, "backplane unavailable: {why}"),
        }
    }
}

impl std::error::Error for BackplaneError {}

/// Carries messages and group commands between the servers of a fleet.
pub trait Backplane: Send + Sync + 'static {
    /// Whether other servers may exist (when `false`, the lifetime manager skips encoding for
    /// the backplane).
    fn is_distributed(&self) -> bool;

    /// Publishes a message for the target's connections on other servers.
    fn publish(&self, hub: &str, target: &SendTarget, message: EncodedMessage)
        -> BoxFuture<Result<(), BackplaneError>>;

    /// Adds (or removes) a connection that no local server owns to a group.
    fn change_remote_group(
        &self,
        hub: &str,
        connection_id: &str,
        group: &str,
        add: bool,
    ) -> BoxFuture<Result<(), BackplaneError>>;
}

/// The fleet of one: every connection is local, nothing crosses process boundaries.
#[derive(Debug, Clone, Copy, Default)]
pub struct InMemoryBackplane;

impl Backplane for InMemoryBackplane {
    fn is_distributed(&self) -> bool {
        false
    }

    fn publish(
        &self,
        _hub: &str,
        _target: &SendTarget,
        _message: EncodedMessage,
    ) -> BoxFuture<Result<(), BackplaneError>> {
        Box::pin(async { Ok(()) })
    }

    fn change_remote_group(
        &self,
        _hub: &str,
        connection_id: &str,
        _group: &str,
        _add: bool,
    ) -> BoxFuture<Result<(), BackplaneError>> {
        let id = connection_id.to_string();
        Box::pin(async move { Err(BackplaneError::UnknownConnection(id)) })
    }
}

/// The default backplane.
pub(crate) fn in_memory() -> Arc<dyn Backplane> {
    Arc::new(InMemoryBackplane)
}
