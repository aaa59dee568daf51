//! The backplane: how a server reaches connections that live on other servers.
//!
//! The lifetime manager delivers every message to its own local connections and hands it to
//! the backplane for the rest of the fleet. The default [`InMemoryBackplane`] is a fleet of one
//! (nothing to install); `RedisBackplane` (feature `redis`) joins servers through Redis pub/sub,
//! `NatsBackplane` (feature `nats`) through NATS subjects and requests, `PostgresBackplane`
//! (feature `postgres`) through PostgreSQL LISTEN/NOTIFY. Another engine plugs in through the
//! same trait.
//!
//! This module is the core the lifetime manager (`clients`) publishes through, so it sits
//! below `clients`: the send targets ([`SendTarget`]), encoded messages, the errors and the
//! traits, and the backplanes themselves, which need nothing above it.

#[cfg(feature = "nats")]
pub(crate) mod nats;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
mod redis;
mod target;
#[cfg(any(feature = "redis", feature = "postgres", feature = "nats"))]
mod wire;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

#[cfg(feature = "nats")]
pub use self::nats::{ClientCertificate, NatsAuth, NatsBackplane, NatsOptions, NatsTls};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresBackplane, PostgresOptions};
#[cfg(feature = "redis")]
pub use self::redis::{RedisBackplane, RedisOptions};
pub use self::target::SendTarget;
use crate::protocol::CompletionResult;

/// A message encoded for every protocol the server speaks, ready to forward verbatim.
#[derive(Debug, Clone)]
pub struct EncodedMessage {
    /// `(protocol name, complete framed bytes)` pairs.
    pub encodings: Vec<(String, Bytes)>,
}

/// What a backplane counted since it started: the failures and losses an operator watches
/// (also exported as `hub_backplane_*_total` metrics with the `metrics` feature).
///
/// ```
/// use hub_runtime::backplane::{Backplane, InMemoryBackplane};
/// let stats = InMemoryBackplane.stats();
/// assert_eq!(stats.failed_publishes, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// Messages for other servers that could not be published (the broker was unreachable).
    pub failed_publishes: u64,
    /// Subscribe or unsubscribe attempts that failed (each is retried).
    pub failed_subscriptions: u64,
    /// Times the listening connection to the broker was lost and had to be re-established:
    /// what other servers sent meanwhile did not arrive here.
    pub gaps: u64,
    /// Messages from other servers known to be lost (the broker said it dropped them).
    pub lost_messages: u64,
}

#[cfg(any(feature = "redis", feature = "postgres", feature = "nats"))]
impl crate::observability::BackplaneMetrics {
    /// The counts so far, as [`BackplaneStats`].
    pub(crate) fn stats(&self) -> BackplaneStats {
        let now = self.counts();
        BackplaneStats {
            failed_publishes: now.failed_publishes,
            failed_subscriptions: now.failed_subscriptions,
            gaps: now.gaps,
            lost_messages: now.lost_messages,
        }
    }
}

/// A backplane operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackplaneError {
    /// No server owns that connection.
    UnknownConnection(String),
    /// The backplane could not be reached; the text says why.
    Unavailable(String),
    /// The owning server did not add the connection to the group: it is in the most groups
    /// allowed there (`HubOptions::max_groups_per_connection`).
    GroupLimitReached(usize),
    /// The owning server refused a group command; the text says why.
    Refused(String),
}

impl std::fmt::Display for BackplaneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackplaneError::UnknownConnection(id) => write!(f, "no server owns connection '{id}'"),
            BackplaneError::Unavailable(why) => write!(f, "backplane unavailable: {why}"),
            BackplaneError::GroupLimitReached(max) => {
                write!(f, "a connection may belong to at most {max} groups")
            }
            BackplaneError::Refused(why) => write!(f, "refused by the owning server: {why}"),
        }
    }
}

impl std::error::Error for BackplaneError {}

/// A group operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupError {
    /// No server owns that connection (it may have disconnected).
    UnknownConnection(String),
    /// The backplane failed; the text says why.
    Backplane(String),
    /// The connection is in the most groups allowed (`HubOptions::max_groups_per_connection`).
    LimitReached(usize),
    /// The group name is longer than `HubOptions::max_group_name_length` (the limit, in
    /// bytes): nothing changed.
    NameTooLong(usize),
}

impl From<BackplaneError> for GroupError {
    fn from(e: BackplaneError) -> Self {
        match e {
            BackplaneError::UnknownConnection(id) => GroupError::UnknownConnection(id),
            BackplaneError::GroupLimitReached(max) => GroupError::LimitReached(max),
            other => GroupError::Backplane(other.to_string()),
        }
    }
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::UnknownConnection(id) => write!(f, "connection '{id}' does not exist"),
            GroupError::Backplane(e) => f.write_str(e),
            GroupError::LimitReached(max) => write!(f, "a connection may belong to at most {max} groups"),
            GroupError::NameTooLong(max) => write!(f, "a group name may be at most {max} bytes long"),
        }
    }
}

impl std::error::Error for GroupError {}

/// What a group command does to a connection's membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupChange {
    /// Add the connection to the group.
    Add,
    /// Remove the connection from the group.
    Remove,
}

/// What a backplane delivers to: one hub's connections on this server (the lifetime manager).
pub trait LocalHub: Send + Sync + 'static {
    /// Delivers a message that another server published to this server's connections of
    /// `target`, forwarding the bytes of each connection's protocol without re-encoding.
    fn deliver(&self, target: &SendTarget, message: &EncodedMessage);

    /// Applies a group command for a connection, if it lives here: `Ok(false)` if it does not,
    /// an error if the command was refused (the group limit).
    fn apply_group(
        &self,
        connection_id: &str,
        group: &str,
        change: GroupChange,
    ) -> BoxFuture<'static, Result<bool, GroupError>>;

    /// Sends a client-result invocation that another server requested to a connection, if it
    /// lives here; returns the connection's protocol name and the client's Completion, which
    /// resolves within the hub's `client_result_timeout` (an error once it passes). Dropping
    /// the future forgets the pending result.
    fn invoke_local(
        &self,
        connection_id: &str,
        invocation_id: &str,
        message: &EncodedMessage,
    ) -> Option<(&'static str, BoxFuture<'static, CompletionResult>)>;
}

/// Carries messages and group commands between the servers of a fleet.
///
/// The lifetime manager tells the backplane which connections, users and groups have local
/// members, so it listens only for those.
pub trait Backplane: Send + Sync + 'static {
    /// Whether other servers may exist (when `false`, the lifetime manager skips encoding for
    /// the backplane).
    fn is_distributed(&self) -> bool;

    /// What this backplane counted so far: failed publishes and subscriptions, broker
    /// connection gaps, known losses (all zero for a backplane that cannot fail).
    fn stats(&self) -> BackplaneStats {
        BackplaneStats::default()
    }

    /// Registers a hub's local side, to receive what other servers publish for it.
    fn attach_hub(&self, hub: &str, local: Arc<dyn LocalHub>) {
        let _ = (hub, local);
    }

    /// Publishes a message for the target's connections on other servers.
    fn publish(
        &self,
        hub: &str,
        target: &SendTarget,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<(), BackplaneError>>;

    /// Invokes a client result on a connection of another server and awaits the client's
    /// Completion (the default: no other servers).
    fn invoke_remote(
        &self,
        hub: &str,
        connection_id: &str,
        invocation_id: &str,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<CompletionResult, BackplaneError>> {
        let _ = (hub, invocation_id, message);
        let id = connection_id.to_string();
        Box::pin(async move { Err(BackplaneError::UnknownConnection(id)) })
    }

    /// Adds a connection that does not live on this server to a group, or removes it from one
    /// (as `change` says); resolves once the owning server applied it.
    fn change_remote_group(
        &self,
        hub: &str,
        connection_id: &str,
        group: &str,
        change: GroupChange,
    ) -> BoxFuture<'static, Result<(), BackplaneError>>;

    /// A connection of `user` (if it has one) now lives here. Called once per connection: the
    /// backplane counts a user's connections, and listens for the user while there are any.
    fn connection_added(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        let _ = (hub, connection_id, user);
        Box::pin(async {})
    }

    /// A connection of `user` (if it has one) left; the counterpart of `connection_added`.
    fn connection_removed(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        let _ = (hub, connection_id, user);
        Box::pin(async {})
    }

    /// A group got its first local member: its messages must reach this server from now on.
    ///
    /// Each `group_added` is followed by one `group_removed`, but the two reports of
    /// concurrent joins and leaves may arrive in any order: a backplane counts them (a group
    /// is wanted while it was added more often than removed) rather than trusting the order.
    fn group_added(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        let _ = (hub, group);
        Box::pin(async {})
    }

    /// A group lost its last local member (see `group_added`).
    fn group_removed(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        let _ = (hub, group);
        Box::pin(async {})
    }
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
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        Box::pin(async { Ok(()) })
    }

    fn change_remote_group(
        &self,
        _hub: &str,
        connection_id: &str,
        _group: &str,
        _change: GroupChange,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        let id = connection_id.to_string();
        Box::pin(async move { Err(BackplaneError::UnknownConnection(id)) })
    }
}

/// The default backplane.
pub(crate) fn in_memory() -> Arc<dyn Backplane> {
    Arc::new(InMemoryBackplane)
}

/// A shared backplane is a backplane: keep an `Arc` to read [`Backplane::stats`] while the
/// server uses it, or pick the backplane at run time as `Arc<dyn Backplane>`.
///
/// ```
/// use std::sync::Arc;
/// use hub_runtime::backplane::{Backplane, InMemoryBackplane};
/// let backplane: Arc<dyn Backplane> = Arc::new(InMemoryBackplane);
/// let server = hub_runtime::HubServer::builder().backplane(backplane.clone()).build();
/// assert_eq!(backplane.stats().gaps, 0);
/// # drop(server);
/// ```
impl<B: Backplane + ?Sized> Backplane for Arc<B> {
    fn is_distributed(&self) -> bool {
        (**self).is_distributed()
    }

    fn stats(&self) -> BackplaneStats {
        (**self).stats()
    }

    fn attach_hub(&self, hub: &str, local: Arc<dyn LocalHub>) {
        (**self).attach_hub(hub, local)
    }

    fn publish(
        &self,
        hub: &str,
        target: &SendTarget,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        (**self).publish(hub, target, message)
    }

    fn invoke_remote(
        &self,
        hub: &str,
        connection_id: &str,
        invocation_id: &str,
        message: EncodedMessage,
    ) -> BoxFuture<'static, Result<CompletionResult, BackplaneError>> {
        (**self).invoke_remote(hub, connection_id, invocation_id, message)
    }

    fn change_remote_group(
        &self,
        hub: &str,
        connection_id: &str,
        group: &str,
        change: GroupChange,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        (**self).change_remote_group(hub, connection_id, group, change)
    }

    fn connection_added(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        (**self).connection_added(hub, connection_id, user)
    }

    fn connection_removed(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<'static, ()> {
        (**self).connection_removed(hub, connection_id, user)
    }

    fn group_added(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        (**self).group_added(hub, group)
    }

    fn group_removed(&self, hub: &str, group: &str) -> BoxFuture<'static, ()> {
        (**self).group_removed(hub, group)
    }
}
