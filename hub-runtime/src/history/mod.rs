//! Durable groups: a bounded history of the messages published to a group, so that a client
//! that lost its connection resumes from its last position and gets exactly what it missed.
//!
//! A hub opts groups into history at run time with a [`HistoryRule`] (a naming rule, a maximum
//! length and a TTL) on its endpoint. Every message published to such a group through
//! [`History::publish`] gets a [`Position`]: an *epoch* that names one unbroken history of the
//! group, and an *offset* that counts from 1 within the epoch without gaps. Appending and
//! delivering to the group's live subscribers are one step of the store, so that no subscriber
//! sees a message out of order or one that is not in history.
//!
//! [`History::subscribe`] yields a [`HistoryEvent`] stream: first a header (whether the missed
//! messages could be recovered, and the current position), then the missed messages, then the
//! live ones, merged by offset with no gap and no duplicate at the seam (`recovery.rs`). When
//! history no longer covers the gap (evicted past the maximum length, expired past the TTL,
//! or lost with the store: a new epoch), the header says `recovered: false` and nothing stale
//! follows.
//!
//! A [`HistoryStore`] does both the storing and the live fan-out of durable messages across
//! servers: [`InMemoryHistory`] for one server (the default); for many, `RedisHistory` (feature
//! `redis`: one Lua script appends and PUBLISHes), `PostgresHistory` (feature `postgres`: one
//! transaction inserts and NOTIFYs) and `NatsHistory` (feature `nats`: JetStream stores with a
//! compare-and-set on the group's last message and republishes what it stored). This layer
//! knows stores and rules; it knows nothing of connections, hubs or the server.

mod fanout;
mod handle;
mod memory;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
mod recovery;
#[cfg(feature = "redis")]
mod redis;
mod rule;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use self::fanout::{Fanout, LiveEvent, Watch};
pub use self::handle::{History, Recent};
pub use self::memory::InMemoryHistory;
#[cfg(feature = "nats")]
pub use self::nats::{NatsHistory, NatsHistoryOptions};
#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresHistory, PostgresHistoryOptions};
pub use self::recovery::{HistoryEvent, HistoryItem, RecoveryHeader};
#[cfg(feature = "redis")]
pub use self::redis::{RedisHistory, RedisHistoryOptions};
pub use self::rule::{GroupPattern, HistoryRule};
/// Where a message stands in a group's history (`{"Epoch": "…", "Offset": n}`).
pub use hub_protocol::recovery::Position;

/// Which group's history: the hub's name (its type name, as on the backplane) and the group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryKey {
    /// The hub's name.
    pub hub: Arc<str>,
    /// The group.
    pub group: String,
}

/// How much history a group keeps: at most `max_len` messages, none older than `ttl`. A group
/// nothing was published to for `ttl` loses its history, and with it its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// The most messages kept (at least 1).
    pub max_len: usize,
    /// How long a message is kept.
    pub ttl: Duration,
}

/// One message of a group's history: its position and its payload (JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    /// Where it stands.
    pub position: Position,
    /// What was published, as JSON.
    pub payload: Arc<str>,
}

/// What a store answers for "the messages after this position".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// Whether every message after the position is in `messages` (always for no position).
    pub recovered: bool,
    /// The group's current position (the epoch is created when the group has none).
    pub position: Position,
    /// The messages after the asked position, oldest first (none when not recovered).
    pub messages: Vec<Durable>,
}

/// What a store answers for "the last N messages".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    /// The group's current position.
    pub position: Position,
    /// At most N of the latest messages still kept, oldest first.
    pub messages: Vec<Durable>,
}

/// Why a history operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// The group is not durable: no [`HistoryRule`] of the hub covers it.
    NotDurable(String),
    /// The store cannot be reached, or answered something unexpected.
    Unavailable(String),
    /// A stored message is not what the reader asked for (its JSON does not decode).
    Decode(String),
    /// The message to publish does not serialize to JSON.
    Encode(String),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::NotDurable(group) => write!(f, "the group '{group}' keeps no history"),
            HistoryError::Unavailable(why) => write!(f, "the history store is unavailable: {why}"),
            HistoryError::Decode(why) => write!(f, "a stored message does not decode: {why}"),
            HistoryError::Encode(why) => write!(f, "the message does not serialize: {why}"),
        }
    }
}

impl std::error::Error for HistoryError {}

/// Stores group histories and fans durable messages out to every server's live subscribers.
///
/// A store makes appending and delivering one atomic step: the subscribers of a group see its
/// messages in offset order, and a message reaches a subscriber that started watching before
/// it was appended. The recovery and merge logic lives above the stores (in
/// [`History::subscribe`]), so a store only answers these four questions. Stores for other
/// brokers implement it the same way: a transaction and a notification (PostgreSQL), a stream
/// (NATS JetStream); [`Fanout`] is the local half of the live delivery they can share.
pub trait HistoryStore: Send + Sync + 'static {
    /// Appends `payload` to the group's history (evicting past `limits`), delivers it to the
    /// group's watchers on every server, and returns its position. A group without history
    /// gets a new epoch.
    fn append<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        payload: Arc<str>,
    ) -> BoxFuture<'a, Result<Position, HistoryError>>;

    /// The messages after `from` (none for `None`), and whether they are all still kept: not
    /// when `from` names another epoch, an offset beyond the current one or a negative one, or
    /// when some message after it was evicted or expired. Creates the epoch when the group has
    /// none.
    fn since<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        from: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Since, HistoryError>>;

    /// At most the `count` latest messages still kept, oldest first.
    fn last<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        count: usize,
    ) -> BoxFuture<'a, Result<Latest, HistoryError>>;

    /// Starts watching the group's new messages on this server. When the future is done, every
    /// message appended afterwards (on any server) reaches the watch, or a [`LiveEvent::Gap`]
    /// says some were lost on the way.
    fn watch<'a>(&'a self, key: &'a HistoryKey) -> BoxFuture<'a, Result<Watch, HistoryError>>;
}

/// A store shared with `Arc` (for example one `Arc<dyn HistoryStore>` given to several servers'
/// builders) is a store.
///
/// ```
/// use std::sync::Arc;
/// use hub_runtime::history::{HistoryStore, InMemoryHistory};
/// use hub_runtime::HubServer;
/// let shared: Arc<dyn HistoryStore> = Arc::new(InMemoryHistory::new());
/// let one = HubServer::builder().history(shared.clone()).build();
/// let two = HubServer::builder().history(shared).build();
/// # let _ = (one, two);
/// ```
impl<S: HistoryStore + ?Sized> HistoryStore for Arc<S> {
    fn append<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        payload: Arc<str>,
    ) -> BoxFuture<'a, Result<Position, HistoryError>> {
        (**self).append(key, limits, payload)
    }

    fn since<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        from: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Since, HistoryError>> {
        (**self).since(key, limits, from)
    }

    fn last<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        count: usize,
    ) -> BoxFuture<'a, Result<Latest, HistoryError>> {
        (**self).last(key, limits, count)
    }

    fn watch<'a>(&'a self, key: &'a HistoryKey) -> BoxFuture<'a, Result<Watch, HistoryError>> {
        (**self).watch(key)
    }
}

/// A shared store.
pub(crate) type SharedStore = Arc<dyn HistoryStore>;

/// The default store: in memory.
pub(crate) fn in_memory() -> SharedStore {
    Arc::new(InMemoryHistory::new())
}

/// A fresh epoch name: random, unlikely ever to repeat.
pub(crate) fn new_epoch() -> String {
    format!("{:016x}", rand::random::<u64>())
}
