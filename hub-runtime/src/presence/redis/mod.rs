//! [`RedisPresence`]: presence shared by every server on one Redis.
//!
//! Keys (after the prefix, `hub:presence:` by default; `{hub}` is the hub's type name):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{hub}:gu:{group}` | hash | user → how many of the user's connections are in the group |
//! | `{hub}:gc:{group}` | hash | connection → user, for the group |
//! | `{hub}:gi:{group}` | hash | user → the user's info in the group (JSON), while it has one |
//! | `{hub}:uu` / `{hub}:uc` | hashes | the same for the hub's connected users |
//! | `server:{server}` | set | the entries a server added (JSON arrays) |
//! | `servers` | sorted set | each server, scored by the end of its lease (ms, Redis' clock) |
//! | `alive:{server}` | string | set by each renewal, deleted when the server is swept |
//!
//! Joins and leaves are Lua scripts: the count a script returns says whether the connection was
//! the user's first or last, with no other command in between. A server renews its lease (half
//! the TTL) every quarter of the TTL; a sweeper on any server removes, in one script, every
//! entry of a server whose lease ended, so a server that died without a goodbye has its users
//! leave within the TTL. (The sweep script reaches keys it computes, so it needs one Redis, not
//! a cluster.)
//!
//! A live server cut off from Redis for longer than its lease is taken for dead: its users get
//! `left`. It keeps its own entries in memory, and its next renewal finds it was swept (its
//! `alive:{server}` key is gone): it writes them all again, and its users that are back get
//! `joined`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::Script;

use super::{
    Expired, GroupEntry, JoinOutcome, LeaveOutcome, Member, PresenceError, PresenceStore, Restored, UserEntry,
};

/// Options of [`RedisPresence`].
#[derive(Debug, Clone)]
pub struct RedisPresenceOptions {
    /// Prepended to every key (`hub:presence:`).
    pub prefix: String,
    /// How long the entries of a server that stopped refreshing outlive it at most (30 s). The
    /// server renews its lease every quarter of it.
    pub ttl: Duration,
    /// How long connecting to Redis, and each command, may take (5 s).
    pub timeout: Duration,
}

impl Default for RedisPresenceOptions {
    fn default() -> Self {
        RedisPresenceOptions {
            prefix: "hub:presence:".into(),
            ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

struct Scripts {
    join: Script,
    leave: Script,
    refresh: Script,
    sweep: Script,
}

/// Presence in Redis, shared by every server that connects to it with the same prefix. Give it
/// to each server's builder with the Redis backplane:
///
/// ```no_run
/// # use hub_runtime::prelude::*;
/// # struct Chat;
/// # #[hub(presence)] impl Chat { fn ping(&self) {} }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::presence::RedisPresence;
/// let server = HubServer::builder()
///     .backplane(RedisBackplane::connect("redis://127.0.0.1:6379").await?)
///     .presence(RedisPresence::connect("redis://127.0.0.1:6379").await?)
///     .hub("/chat", Chat)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisPresence {
    connection: ConnectionManager,
    /// This server's name in `servers`.
    server: String,
    options: RedisPresenceOptions,
    scripts: Arc<Scripts>,
    /// This server's entries, by what its set holds: written again when the server finds it
    /// was swept while alive (cut off from Redis longer than its lease).
    own: Arc<Mutex<HashMap<String, Own>>>,
}

fn unavailable(e: impl std::fmt::Display) -> PresenceError {
    PresenceError::Unavailable(e.to_string())
}

impl RedisPresence {
    /// Connects with the default options.
    pub async fn connect(url: &str) -> Result<Self, PresenceError> {
        RedisPresence::connect_with(url, RedisPresenceOptions::default()).await
    }

    /// Connects to Redis at `url` (`redis://host:port`).
    pub async fn connect_with(url: &str, options: RedisPresenceOptions) -> Result<Self, PresenceError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout));
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let scripts = Scripts {
            join: Script::new(include_str!("join.lua")),
            leave: Script::new(include_str!("leave.lua")),
            refresh: Script::new(include_str!("refresh.lua")),
            sweep: Script::new(include_str!("sweep.lua")),
        };
        let presence = RedisPresence {
            connection,
            server: crate::connection::random_id(),
            options,
            scripts: Arc::new(scripts),
            own: Arc::new(Mutex::new(HashMap::new())),
        };
        presence.refresh().await?;
        Ok(presence)
    }

    /// This server's name among the servers sharing the store.
    pub fn server_name(&self) -> &str {
        &self.server
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.options.prefix)
    }

    /// The lease a server takes on its entries: half the TTL, renewed every quarter of it, so
    /// a live server's lease never ends and a dead one's entries go within the TTL.
    fn lease_ms(&self) -> u64 {
        (self.options.ttl / 2).as_millis().max(1) as u64
    }

    /// The counts and connections keys of a group, or of the hub's online users.
    fn group_keys(&self, hub: &str, group: &str) -> [String; 2] {
        [
            self.key(&format!("{hub}:gu:{group}")),
            self.key(&format!("{hub}:gc:{group}")),
        ]
    }

    /// The group's info hash.
    fn info_key(&self, hub: &str, group: &str) -> String {
        self.key(&format!("{hub}:gi:{group}"))
    }

    fn user_keys(&self, hub: &str) -> [String; 2] {
        [self.key(&format!("{hub}:uu")), self.key(&format!("{hub}:uc"))]
    }

    /// Runs join.lua for one of this server's entries; the user's count after it, or -1.
    async fn run_join(&self, own: &Own) -> Result<i64, PresenceError> {
        let server_key = self.key(&format!("server:{}", self.server));
        let mut invocation = self.scripts.join.key(&own.keys[0]);
        invocation.key(&own.keys[1]).key(server_key).key(self.key("servers"));
        invocation
            .arg(&own.user)
            .arg(&own.connection)
            .arg(&own.entry)
            .arg(&self.server)
            .arg(self.lease_ms());
        if let Some((key, info)) = &own.info {
            invocation.key(key).arg(info);
        }
        let mut connection = self.connection.clone();
        let count = invocation.invoke_async(&mut connection).await;
        count.map_err(unavailable)
    }

    /// Records an entry of this server (kept, to be written again if the server was swept) and
    /// runs join.lua.
    fn add(&self, own: Own) -> BoxFuture<'static, Result<i64, PresenceError>> {
        self.lock_own().insert(own.entry.clone(), own.clone());
        let this = self.clone();
        Box::pin(async move { this.run_join(&own).await })
    }

    /// Forgets an entry of this server and runs leave.lua; the user's count after it, or -1.
    fn remove(
        &self,
        keys: [String; 2],
        info_key: Option<String>,
        connection: &str,
        entry: String,
    ) -> BoxFuture<'static, Result<i64, PresenceError>> {
        self.lock_own().remove(&entry);
        let scripts = self.scripts.clone();
        let server_key = self.key(&format!("server:{}", self.server));
        let id = connection.to_string();
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let mut invocation = scripts.leave.key(&keys[0]);
            invocation.key(&keys[1]).key(server_key).arg(id).arg(entry);
            if let Some(key) = &info_key {
                invocation.key(key);
            }
            let count = invocation.invoke_async(&mut connection).await;
            count.map_err(unavailable)
        })
    }

    fn lock_own(&self) -> std::sync::MutexGuard<'_, HashMap<String, Own>> {
        self.own.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One of this server's entries, as join.lua takes it.
#[derive(Clone)]
struct Own {
    /// The counts and connections keys.
    keys: [String; 2],
    /// The info key and the info (JSON; empty: none), for a group entry.
    info: Option<(String, String)>,
    user: String,
    connection: String,
    /// What the server's set holds (`group_entry`, `user_entry`).
    entry: String,
    /// The hub and group of a group entry.
    group: Option<(String, String)>,
}

/// How a group entry is recorded under its server (sweep.lua reads it).
fn group_entry(entry: &GroupEntry) -> String {
    serde_json::json!(["g", entry.hub, entry.group, entry.user, entry.connection]).to_string()
}

fn user_entry(entry: &UserEntry) -> String {
    serde_json::json!(["u", entry.hub, entry.user, entry.connection]).to_string()
}

impl PresenceStore for RedisPresence {
    fn join(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<JoinOutcome, PresenceError>> {
        let count = self.add(Own {
            keys: self.group_keys(&entry.hub, &entry.group),
            info: Some((
                self.info_key(&entry.hub, &entry.group),
                entry.info.clone().unwrap_or_default(),
            )),
            user: entry.user.clone(),
            connection: entry.connection.clone(),
            entry: group_entry(entry),
            group: Some((entry.hub.clone(), entry.group.clone())),
        });
        Box::pin(async move {
            Ok(JoinOutcome {
                first: count.await? == 1,
            })
        })
    }

    fn leave(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<LeaveOutcome, PresenceError>> {
        let keys = self.group_keys(&entry.hub, &entry.group);
        let info_key = self.info_key(&entry.hub, &entry.group);
        let count = self.remove(keys, Some(info_key), &entry.connection, group_entry(entry));
        Box::pin(async move {
            Ok(LeaveOutcome {
                last: count.await? == 0,
            })
        })
    }

    fn members(&self, hub: &str, group: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>> {
        let [counts, _] = self.group_keys(hub, group);
        let info_key = self.info_key(hub, group);
        let mut connection = self.connection.clone();
        Box::pin(async move {
            type Hash<V> = std::collections::HashMap<String, V>;
            let (all, mut info): (Hash<i64>, Hash<String>) = redis::pipe()
                .atomic()
                .cmd("HGETALL")
                .arg(counts)
                .cmd("HGETALL")
                .arg(info_key)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
            let mut members: Vec<Member> = all
                .into_iter()
                .filter(|(_, count)| *count > 0)
                .map(|(user, count)| Member {
                    info: info.remove(&user).and_then(|text| serde_json::from_str(&text).ok()),
                    user,
                    connections: count as u64,
                })
                .collect();
            members.sort_by(|a, b| a.user.cmp(&b.user));
            Ok(members)
        })
    }

    fn connect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let count = self.add(Own {
            keys: self.user_keys(&entry.hub),
            info: None,
            user: entry.user.clone(),
            connection: entry.connection.clone(),
            entry: user_entry(entry),
            group: None,
        });
        Box::pin(async move { count.await.map(|_| ()) })
    }

    fn disconnect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let count = self.remove(self.user_keys(&entry.hub), None, &entry.connection, user_entry(entry));
        Box::pin(async move { count.await.map(|_| ()) })
    }

    fn online(&self, hub: &str, user: &str) -> BoxFuture<'static, Result<bool, PresenceError>> {
        let [counts, _] = self.user_keys(hub);
        let user = user.to_string();
        let mut connection = self.connection.clone();
        Box::pin(async move {
            redis::cmd("HEXISTS")
                .arg(counts)
                .arg(user)
                .query_async(&mut connection)
                .await
                .map_err(unavailable)
        })
    }

    fn ttl(&self) -> Option<Duration> {
        Some(self.options.ttl)
    }

    fn refresh(&self) -> BoxFuture<'static, Result<Vec<Restored>, PresenceError>> {
        let this = self.clone();
        Box::pin(async move {
            let mut invocation = this.scripts.refresh.key(this.key("servers"));
            invocation.key(this.key(&format!("alive:{}", this.server)));
            invocation.arg(&this.server).arg(this.lease_ms());
            let mut connection = this.connection.clone();
            let was_alive: Result<i64, _> = invocation.invoke_async(&mut connection).await;
            if was_alive.map_err(unavailable)? == 1 {
                return Ok(Vec::new());
            }
            // Swept while alive (or just started, with nothing yet): write every entry again.
            let own: Vec<Own> = this.lock_own().values().cloned().collect();
            let mut restored = Vec::new();
            for entry in own {
                if this.run_join(&entry).await? == 1 {
                    if let Some((hub, group)) = entry.group {
                        restored.push(Restored {
                            hub,
                            group,
                            user: entry.user,
                        });
                    }
                }
            }
            Ok(restored)
        })
    }

    fn sweep(&self) -> BoxFuture<'static, Result<Vec<Expired>, PresenceError>> {
        let scripts = self.scripts.clone();
        let (servers, prefix) = (self.key("servers"), self.options.prefix.clone());
        let mut connection = self.connection.clone();
        Box::pin(async move {
            let mut invocation = scripts.sweep.key(servers);
            invocation.arg(prefix).arg(16);
            let flat: Result<Vec<String>, _> = invocation.invoke_async(&mut connection).await;
            let flat = flat.map_err(unavailable)?;
            Ok(flat
                .chunks_exact(3)
                .map(|c| Expired {
                    hub: c[0].clone(),
                    group: c[1].clone(),
                    user: c[2].clone(),
                })
                .collect())
        })
    }
}
