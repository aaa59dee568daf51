//! Presence: who is in each group of a hub and which users are online, across every server.
//!
//! The lifetime manager tells a [`PresenceStore`] when a connection joins or leaves a group and
//! when it connects or ends; the store decides atomically whether a join is the user's first
//! connection in the group (the hub then sends its `joined` client method) and whether a leave
//! is the last (`left`). A store shared by several servers (`RedisPresence`,
//! `PostgresPresence`, `NatsPresence`, each behind the cargo feature of its backplane) keeps
//! each server's entries under a lease the server renews ([`PresenceStore::refresh`]); any live
//! server removes the entries of a server whose lease ran out ([`PresenceStore::sweep`]), and
//! the users that left a group that way get their `left` event from that sweeper, exactly once.
//!
//! A hub opts in with `#[hub(presence)]` (members and online users) or
//! `#[hub(presence(joined = "Joined", left = "Left"))]` (and the events, as client methods of
//! its client interface). The store is [`InMemoryPresence`] unless the server builder is given
//! another one (`HubServer::builder().presence(store)`).
//!
//! This layer knows stores, not connections: it imports nothing from `clients`, `hub` or
//! `server`.

mod memory;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use self::memory::InMemoryPresence;
#[cfg(feature = "nats")]
pub use self::nats::{NatsPresence, NatsPresenceOptions};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresPresence, PostgresPresenceOptions};
#[cfg(feature = "redis")]
pub use self::redis::{RedisPresence, RedisPresenceOptions};

/// The client methods a hub sends when a user's first connection joins a group and when its
/// last one leaves (what `#[hub(presence(joined = "...", left = "..."))]` declares). Each is
/// called with the group and the user: `(group: String, user: String)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PresenceEvents {
    /// The wire name of the client method for a user's first connection in a group.
    pub joined: Option<&'static str>,
    /// The wire name of the client method for a user's last connection leaving a group.
    pub left: Option<&'static str>,
}

/// One connection of a user in one group of a hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupEntry {
    /// The hub's name (its type name).
    pub hub: String,
    /// The group.
    pub group: String,
    /// The user: the connection's user id, or its connection id when it has none.
    pub user: String,
    /// The connection's id.
    pub connection: String,
    /// What the connection shows beside its user in [`Member::info`] (JSON text), if anything.
    /// A join with info replaces the user's info in the group; a leave ignores it.
    pub info: Option<String>,
}

/// One connection of a user to a hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserEntry {
    /// The hub's name (its type name).
    pub hub: String,
    /// The user: the connection's user id, or its connection id when it has none.
    pub user: String,
    /// The connection's id.
    pub connection: String,
}

/// What a join changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The connection is the user's first in the group, on every server together: the
    /// `joined` event is due. Exactly one of simultaneous first joins gets `true`.
    pub first: bool,
}

/// What a leave changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaveOutcome {
    /// The connection was the user's last in the group: the `left` event is due. A connection
    /// that was not in the group (already removed, or swept) gives `false`.
    pub last: bool,
}

/// A user in a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// The user: a user id, or the connection id of a connection without one.
    pub user: String,
    /// How many of the user's connections are in the group, on every server together.
    pub connections: u64,
    /// What the user's latest connection to join with info showed (see
    /// `Groups::set_presence_info`), if any.
    pub info: Option<serde_json::Value>,
}

/// A user whose last connection in a group was removed by [`PresenceStore::sweep`] (its server
/// stopped renewing its entries): the `left` event is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The hub's name.
    pub hub: String,
    /// The group.
    pub group: String,
    /// The user who left it.
    pub user: String,
}

/// A user whose connection in a group was written again by [`PresenceStore::refresh`] after
/// the store had swept this server's entries while it was alive (cut off from the store longer
/// than its lease), and which is the user's first there again: the `joined` event is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The hub's name.
    pub hub: String,
    /// The group.
    pub group: String,
    /// The user who is back in it.
    pub user: String,
}

/// A presence question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceError {
    /// The hub does not track presence: mark its impl block `#[hub(presence)]`.
    NotEnabled,
    /// The store could not be reached or refused the command (its text).
    Unavailable(String),
    /// A connection's presence info could not be encoded as JSON (the error's text).
    Encode(String),
    /// No connection of the hub with this id lives on this server (presence info is set where
    /// the connection lives).
    NotLocal(String),
}

impl fmt::Display for PresenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresenceError::NotEnabled => f.write_str("this hub does not track presence: mark it #[hub(presence)]"),
            PresenceError::Unavailable(e) => write!(f, "the presence store is unavailable: {e}"),
            PresenceError::Encode(e) => write!(f, "could not encode the presence info: {e}"),
            PresenceError::NotLocal(id) => write!(f, "no connection '{id}' of this hub lives on this server"),
        }
    }
}

impl std::error::Error for PresenceError {}

/// Where presence lives: one per server, shared by the server's hubs (the hub name is part of
/// every entry).
///
/// A store for several servers decides `first` and `last` atomically (a script, a
/// transaction), and keeps the entries of each server under a lease: [`refresh`] renews this
/// server's lease, [`sweep`] removes the entries of servers whose lease ran out and reports the
/// users that left a group that way, each once across all sweeping servers. A store for one
/// process ([`InMemoryPresence`]) has no lease ([`ttl`] is `None`).
///
/// [`refresh`]: PresenceStore::refresh
/// [`sweep`]: PresenceStore::sweep
/// [`ttl`]: PresenceStore::ttl
pub trait PresenceStore: Send + Sync + 'static {
    /// Adds a connection to a group (again: no change, `first` false).
    fn join(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<JoinOutcome, PresenceError>>;

    /// Removes a connection from a group.
    fn leave(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<LeaveOutcome, PresenceError>>;

    /// The users with at least one connection in `group` of `hub`, sorted by user (byte order).
    fn members(&self, hub: &str, group: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>>;

    /// A connection of a user started.
    fn connect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>>;

    /// A connection of a user ended.
    fn disconnect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>>;

    /// Whether `user` has a connection to `hub` on any server.
    fn online(&self, hub: &str, user: &str) -> BoxFuture<'static, Result<bool, PresenceError>>;

    /// How long the entries of a server that stopped refreshing may outlive it; `None` for a
    /// store whose entries cannot outlive their server (one process).
    fn ttl(&self) -> Option<Duration>;

    /// Renews this server's lease on its entries. If the store had swept them meanwhile (the
    /// server was cut off longer than its lease), writes them again and returns the users who
    /// are back in a group that way. Called every quarter of [`PresenceStore::ttl`].
    fn refresh(&self) -> BoxFuture<'static, Result<Vec<Restored>, PresenceError>>;

    /// Removes the entries of every server whose lease ran out; returns the users that left a
    /// group that way (each reported by exactly one sweeping server). Called every quarter of
    /// [`PresenceStore::ttl`].
    fn sweep(&self) -> BoxFuture<'static, Result<Vec<Expired>, PresenceError>>;
}

/// How often a server renews its lease and sweeps, for a store whose entries live `ttl`: a
/// quarter of it (at least 10 ms).
pub fn upkeep_interval(ttl: Duration) -> Duration {
    (ttl / 4).max(Duration::from_millis(10))
}

/// Whether `client` has a client method with wire name `name` (ASCII case aside, as the official
/// clients match them) taking two arguments (the group
/// and the user): the constant check `#[hub(presence(joined = "...", left = "..."))]` makes.
#[doc(hidden)]
pub const fn is_presence_event(client: &crate::descriptor::HubDescriptor, name: &str) -> bool {
    let mut i = 0;
    while i < client.methods.len() {
        let method = &client.methods[i];
        if same_bytes(method.wire_name.as_bytes(), name.as_bytes()) && method.params.len() == 2 {
            return true;
        }
        i += 1;
    }
    false
}

const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if !a[i].eq_ignore_ascii_case(&b[i]) {
            return false;
        }
        i += 1;
    }
    true
}
