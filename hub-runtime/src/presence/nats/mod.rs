//! [`NatsPresence`]: presence shared by every server on one NATS (with JetStream).
//!
//! Two JetStream streams on disk (names from [`NatsOptions::prefix`], `hub` by default, its
//! dots as `_`), one message kept per subject; `{base}` is `{prefix}._presence`, and hub, group
//! and user names are encoded as subject tokens as the backplane's are:
//!
//! | stream | subject | holds |
//! |---|---|---|
//! | `hub_presence` | `{base}.g.{hub}.{group}.{user}` | a user in a group: its connections (each with the server holding it) and its info, JSON |
//! | `hub_presence` | `{base}.u.{hub}.{user}` | a user connected to a hub: its connections |
//! | `hub_presence` | `{base}.r.{server}` | a server's registration: who claimed it for a sweep, if anyone |
//! | `hub_presence_leases` | `{prefix}._presence_lease.{server}` | a server's lease; the stream's messages expire after half the TTL |
//!
//! A join or leave reads the user's subject and writes it back on condition that its last
//! message is still the one read (`Nats-Expected-Last-Subject-Sequence`, JetStream's
//! compare-and-set), else reads again: of simultaneous first joins on several servers exactly
//! one writes onto the empty entry, so exactly one sees `first`, and likewise one leave sees
//! `last`. An entry left empty is purged (a purge leaves no marker, unlike a KV delete).
//!
//! A server renews its lease every quarter of the TTL. A registered server without a lease
//! (the NATS server's clock expired it) died or was cut off: a sweeper claims it with a
//! compare-and-set on its registration, removes its connections from every entry (a scan of
//! the stream, each change again a compare-and-set, so each user that left that way is
//! reported once) and deletes the registration. A live server whose renewal finds itself
//! claimed or deleted goes on under a new server name and writes its entries again; the users
//! that are back get `joined`.
//!
//! Every server sharing the streams must use the same TTL: the first one creates the lease
//! stream with its expiry. Needs nats-server 2.9 or later with JetStream (`-js`).

mod broker;
mod lease;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use self::broker::Broker;
use self::state::{Change, Key};
use super::{
    Expired, GroupEntry, JoinOutcome, LeaveOutcome, Member, PresenceError, PresenceStore, Restored, UserEntry,
};
use crate::backplane::nats::subjects::valid_prefix;
use crate::backplane::nats::{connect_client, connect_options};
use crate::backplane::NatsOptions;

/// Options of [`NatsPresence`].
#[derive(Debug, Clone)]
pub struct NatsPresenceOptions {
    /// Connecting: the prefix of the subjects and stream names, credentials, TLS, the connect
    /// and response timeouts, pings (the backplane's group and client-result timeouts and
    /// subscription capacity do not apply).
    pub connection: NatsOptions,
    /// How long the entries of a server that stopped refreshing outlive it at most (30 s). The
    /// server renews its lease every quarter of it.
    pub ttl: Duration,
}

impl Default for NatsPresenceOptions {
    fn default() -> Self {
        NatsPresenceOptions {
            connection: NatsOptions::default(),
            ttl: Duration::from_secs(30),
        }
    }
}

/// Presence on NATS JetStream, shared by every server that connects to it with the same
/// prefix:
///
/// ```no_run
/// # use hub_runtime::prelude::*;
/// # struct Chat;
/// # #[hub(presence)] impl Chat { fn ping(&self) {} }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::presence::NatsPresence;
/// let url = "nats://127.0.0.1:4222";
/// let server = HubServer::builder()
///     .backplane(NatsBackplane::connect(url).await?)
///     .presence(NatsPresence::connect(url).await?)
///     .hub("/chat", Chat)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsPresence {
    inner: Arc<Inner>,
}

struct Inner {
    /// The entries and registrations.
    entries: Broker,
    /// The leases.
    leases: Broker,
    /// `{prefix}._presence`
    base: String,
    /// `{prefix}._presence_lease`
    lease_base: String,
    ttl: Duration,
    incarnation: Mutex<Incarnation>,
    /// Renewals one at a time.
    renewing: tokio::sync::Mutex<()>,
    /// This server's entries: written again when the server finds it was swept while alive.
    own: Mutex<HashMap<OwnKey, Own>>,
}

/// The name this server holds its entries under, which changes when it was swept while alive.
struct Incarnation {
    server: String,
    /// Whether the name was registered (a registration gone since means: swept).
    registered: bool,
}

/// Kind (`g` or `u`), hub, group, connection.
type OwnKey = (char, String, String, String);

/// One of this server's entries.
#[derive(Clone)]
struct Own {
    key: Key,
    connection: String,
    info: Option<String>,
}

impl Own {
    fn own_key(&self) -> OwnKey {
        let kind = if self.key.group.is_some() { 'g' } else { 'u' };
        let group = self.key.group.clone().unwrap_or_default();
        (kind, self.key.hub.clone(), group, self.connection.clone())
    }
}

fn unavailable(e: impl std::fmt::Display) -> PresenceError {
    PresenceError::Unavailable(e.to_string())
}

/// A prefix as part of a stream name: `.` (and anything else a name may not hold) as `_`.
fn stream_name(prefix: &str, rest: &str) -> String {
    let safe: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}_{rest}")
}

impl NatsPresence {
    /// Connects with the default options.
    pub async fn connect(url: &str) -> Result<Self, PresenceError> {
        NatsPresence::connect_with(url, NatsPresenceOptions::default()).await
    }

    /// Connects to NATS at `url` (as [`NatsBackplane::connect`](crate::backplane::NatsBackplane::connect)
    /// takes it), creates the streams unless they exist, and takes this server's lease.
    pub async fn connect_with(url: &str, options: NatsPresenceOptions) -> Result<Self, PresenceError> {
        let connection = &options.connection;
        if !valid_prefix(&connection.prefix) {
            return Err(unavailable(format!(
                "invalid NATS subject prefix {:?}",
                connection.prefix
            )));
        }
        let server = crate::connection::random_id();
        let client_options = connect_options(connection, format!("hub presence {server}"))
            .await
            .map_err(unavailable)?;
        let client = connect_client(url, client_options, connection.connect_timeout)
            .await
            .map_err(unavailable)?;
        let prefix = &connection.prefix;
        let (base, lease_base) = (format!("{prefix}._presence"), format!("{prefix}._presence_lease"));
        let timeout = connection.response_timeout;
        let lease = (options.ttl / 2).max(Duration::from_millis(100));
        let (entries_stream, leases_stream) = (stream_name(prefix, "presence"), stream_name(prefix, "presence_leases"));
        let entries = Broker::open(client.clone(), timeout, &entries_stream, &base, Duration::ZERO);
        let leases = Broker::open(client, timeout, &leases_stream, &lease_base, lease);
        let presence = NatsPresence {
            inner: Arc::new(Inner {
                entries: entries.await.map_err(unavailable)?,
                leases: leases.await.map_err(unavailable)?,
                base,
                lease_base,
                ttl: options.ttl,
                incarnation: Mutex::new(Incarnation {
                    server,
                    registered: false,
                }),
                renewing: tokio::sync::Mutex::new(()),
                own: Mutex::new(HashMap::new()),
            }),
        };
        presence.refresh().await?;
        Ok(presence)
    }

    /// This server's name among the servers sharing the store (a new one after the server
    /// found it was swept while alive).
    pub fn server_name(&self) -> String {
        self.lock_incarnation().server.clone()
    }

    /// Removes the entries of server `server` now, as a sweep does once its lease ran out, and
    /// returns the users who left a group that way (their `left` events are the caller's to
    /// send). For a server known to be gone; if it is alive, its next renewal writes its
    /// entries again.
    pub async fn evict(&self, server: &str) -> Result<Vec<Expired>, PresenceError> {
        self.evict_server(server).await
    }

    fn lock_incarnation(&self) -> std::sync::MutexGuard<'_, Incarnation> {
        self.inner.incarnation.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_own(&self) -> std::sync::MutexGuard<'_, HashMap<OwnKey, Own>> {
        self.inner.own.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records an entry of this server and adds it; whether it was the user's first.
    fn add(&self, own: Own) -> BoxFuture<'static, Result<bool, PresenceError>> {
        self.lock_own().insert(own.own_key(), own.clone());
        let this = self.clone();
        Box::pin(async move {
            let server = this.server_name();
            let joined = state::update(&this.inner.entries, &this.inner.base, &own.key, |state| {
                state::join(state, &own.connection, &server, own.info.as_deref())
            })
            .await?;
            Ok(joined.added && joined.count == 1)
        })
    }

    /// Forgets an entry of this server and removes it; whether it was the user's last.
    fn remove(&self, key: Key, connection: &str) -> BoxFuture<'static, Result<bool, PresenceError>> {
        let own = Own {
            key,
            connection: connection.to_string(),
            info: None,
        };
        self.lock_own().remove(&own.own_key());
        let this = self.clone();
        Box::pin(async move {
            let left = state::update(&this.inner.entries, &this.inner.base, &own.key, |state| {
                state::leave(state, &own.connection)
            })
            .await?;
            Ok(left == Some(0))
        })
    }
}

impl PresenceStore for NatsPresence {
    fn join(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<JoinOutcome, PresenceError>> {
        let first = self.add(Own {
            key: Key {
                hub: entry.hub.clone(),
                group: Some(entry.group.clone()),
                user: entry.user.clone(),
            },
            connection: entry.connection.clone(),
            info: entry.info.clone(),
        });
        Box::pin(async move { Ok(JoinOutcome { first: first.await? }) })
    }

    fn leave(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<LeaveOutcome, PresenceError>> {
        let key = Key {
            hub: entry.hub.clone(),
            group: Some(entry.group.clone()),
            user: entry.user.clone(),
        };
        let last = self.remove(key, &entry.connection);
        Box::pin(async move { Ok(LeaveOutcome { last: last.await? }) })
    }

    fn members(&self, hub: &str, group: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>> {
        let this = self.clone();
        let (hub, group) = (hub.to_string(), group.to_string());
        Box::pin(async move {
            let probe = Key {
                hub: hub.clone(),
                group: Some(group.clone()),
                user: String::new(),
            };
            // `{base}.g.{hub}.{group}.*`: every user of the group.
            let subject = probe.subject(&this.inner.base);
            let filter = format!("{}*", subject.trim_end_matches(|c| c != '.'));
            let stored = this.inner.entries.scan(&filter).await.map_err(unavailable)?;
            let mut members: Vec<Member> = stored
                .iter()
                .filter_map(|stored| state::State::decode(&stored.payload))
                // A name hashed onto another's subject, or bad data: not this group's.
                .filter(|state| state.hub == hub && state.group.as_deref() == Some(group.as_str()))
                .filter(|state| !state.connections.is_empty())
                .map(|state| Member {
                    info: state.info.as_deref().and_then(|text| serde_json::from_str(text).ok()),
                    connections: state.connections.len() as u64,
                    user: state.user,
                })
                .collect();
            members.sort_by(|a, b| a.user.cmp(&b.user));
            members.dedup_by(|a, b| a.user == b.user);
            Ok(members)
        })
    }

    fn connect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let added = self.add(Own {
            key: Key {
                hub: entry.hub.clone(),
                group: None,
                user: entry.user.clone(),
            },
            connection: entry.connection.clone(),
            info: None,
        });
        Box::pin(async move { added.await.map(|_| ()) })
    }

    fn disconnect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let key = Key {
            hub: entry.hub.clone(),
            group: None,
            user: entry.user.clone(),
        };
        let removed = self.remove(key, &entry.connection);
        Box::pin(async move { removed.await.map(|_| ()) })
    }

    fn online(&self, hub: &str, user: &str) -> BoxFuture<'static, Result<bool, PresenceError>> {
        let this = self.clone();
        let key = Key {
            hub: hub.to_string(),
            group: None,
            user: user.to_string(),
        };
        Box::pin(async move {
            // A read through `update` that never writes: the same checks of what is stored.
            state::update(&this.inner.entries, &this.inner.base, &key, |state| {
                Change::Keep(!state.connections.is_empty())
            })
            .await
        })
    }

    fn ttl(&self) -> Option<Duration> {
        Some(self.inner.ttl)
    }

    fn refresh(&self) -> BoxFuture<'static, Result<Vec<Restored>, PresenceError>> {
        let this = self.clone();
        Box::pin(async move { this.renew().await })
    }

    fn sweep(&self) -> BoxFuture<'static, Result<Vec<Expired>, PresenceError>> {
        let this = self.clone();
        Box::pin(async move { this.sweep_dead().await })
    }
}
