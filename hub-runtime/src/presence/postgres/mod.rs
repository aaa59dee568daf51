//! [`PostgresPresence`]: presence shared by every server on one PostgreSQL database.
//!
//! Tables (after the prefix of [`PostgresOptions::prefix`]; created at connect unless they
//! exist, see `schema.sql`):
//!
//! | table | holds |
//! |---|---|
//! | `hub_presence_servers` | each server's lease (ending on the database's clock) and whether it renewed since it was last swept |
//! | `hub_presence_entries` | one row per connection in a group, or connected to a hub, with its server |
//! | `hub_presence_counts` | how many connections each user has in a group (or to a hub), and its info |
//!
//! Every operation is one call of a PL/pgSQL function, one transaction: a join inserts its
//! entry and bumps the user's count with `INSERT … ON CONFLICT DO UPDATE`, whose row lock
//! orders simultaneous joins and leaves of one user, so exactly one of them sees 1 (or 0). A
//! server renews its lease (half the TTL) every quarter of the TTL; any live server deletes
//! the entries of a server whose lease ended with `DELETE … RETURNING` (skipping servers another
//! sweeper holds), so each user that left that way is reported by one sweeper. A live server
//! that was swept (cut off longer than its lease) finds at its next renewal that it is no
//! longer marked alive and writes its entries again, as `RedisPresence` does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{
    Expired, GroupEntry, JoinOutcome, LeaveOutcome, Member, PresenceError, PresenceStore, Restored, UserEntry,
};
use crate::backplane::postgres::channels::{check_prefix, quote_identifier, stable_hash};
use crate::backplane::postgres::store::StoreSession;
use crate::backplane::PostgresOptions;

/// Options of [`PostgresPresence`].
#[derive(Debug, Clone)]
pub struct PostgresPresenceOptions {
    /// Connecting: timeouts, keepalive, TLS roots, and the prefix of the table names.
    pub connection: PostgresOptions,
    /// How long the entries of a server that stopped refreshing outlive it at most (30 s). The
    /// server renews its lease every quarter of it.
    pub ttl: Duration,
}

impl Default for PostgresPresenceOptions {
    fn default() -> Self {
        PostgresPresenceOptions {
            connection: PostgresOptions::default(),
            ttl: Duration::from_secs(30),
        }
    }
}

/// The SQL of the store's calls, with its table and function names.
struct Sql {
    join: String,
    leave: String,
    members: String,
    online: String,
    refresh: String,
    sweep: String,
}

/// Presence in PostgreSQL, shared by every server that connects to it with the same prefix:
///
/// ```no_run
/// # use hub_runtime::prelude::*;
/// # struct Chat;
/// # #[hub(presence)] impl Chat { fn ping(&self) {} }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::presence::PostgresPresence;
/// let url = "postgres://hub@127.0.0.1/hub";
/// let server = HubServer::builder()
///     .backplane(PostgresBackplane::connect(url).await?)
///     .presence(PostgresPresence::connect(url).await?)
///     .hub("/chat", Chat)
///     .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresPresence {
    session: Arc<StoreSession>,
    sql: Arc<Sql>,
    /// This server's name in the servers table.
    server: String,
    ttl: Duration,
    /// This server's entries (kind, hub, group, connection → the entry): written again when
    /// the server finds it was swept while alive.
    own: Arc<Mutex<HashMap<OwnKey, Own>>>,
}

type OwnKey = (char, String, String, String);

/// One of this server's entries, as the join function takes it.
#[derive(Clone)]
struct Own {
    kind: char,
    hub: String,
    group: String,
    connection: String,
    user: String,
    info: Option<String>,
}

impl Own {
    fn key(&self) -> OwnKey {
        (self.kind, self.hub.clone(), self.group.clone(), self.connection.clone())
    }
}

fn unavailable(e: impl std::fmt::Display) -> PresenceError {
    PresenceError::Unavailable(e.to_string())
}

/// The schema with its names, and the calls.
fn sql(prefix: &str) -> (String, Sql) {
    let name = |rest: &str| quote_identifier(&format!("{prefix}{rest}"));
    let (servers, entries, counts) = (
        name("hub_presence_servers"),
        name("hub_presence_entries"),
        name("hub_presence_counts"),
    );
    let (join, leave, refresh, sweep) = (
        name("hub_presence_join"),
        name("hub_presence_leave"),
        name("hub_presence_refresh"),
        name("hub_presence_sweep"),
    );
    // One lock key per prefix: servers creating the same schema at once take turns.
    let lock = stable_hash(&format!("{prefix}hub_presence")) as i64;
    let schema = include_str!("schema.sql")
        .replace("{lock}", &lock.to_string())
        .replace("{servers}", &servers)
        .replace("{entries_by_server}", &name("hub_presence_entries_server"))
        .replace("{entries}", &entries)
        .replace("{counts}", &counts)
        .replace("{join}", &join)
        .replace("{leave}", &leave)
        .replace("{refresh}", &refresh)
        .replace("{sweep}", &sweep);
    let calls = Sql {
        join: format!("SELECT {join}($1::text::\"char\", $2, $3, $4, $5, $6, $7, $8)"),
        leave: format!("SELECT {leave}($1::text::\"char\", $2, $3, $4)"),
        members: format!(
            "SELECT user_id, connections, info FROM {counts} \
             WHERE kind = 'g' AND hub = $1 AND grp = $2 AND connections > 0"
        ),
        online: format!(
            "SELECT EXISTS (SELECT 1 FROM {counts} WHERE kind = 'u' AND hub = $1 AND grp = '' AND user_id = $2)"
        ),
        refresh: format!("SELECT {refresh}($1, $2)"),
        sweep: format!("SELECT hub, grp, user_id FROM {sweep}($1)"),
    };
    (schema, calls)
}

impl PostgresPresence {
    /// Connects with the default options.
    pub async fn connect(url: &str) -> Result<Self, PresenceError> {
        PostgresPresence::connect_with(url, PostgresPresenceOptions::default()).await
    }

    /// Connects to PostgreSQL at `url` (as [`PostgresBackplane::connect`](crate::backplane::PostgresBackplane::connect)
    /// takes it), creates the tables and functions unless they exist, and takes this server's
    /// lease.
    pub async fn connect_with(url: &str, options: PostgresPresenceOptions) -> Result<Self, PresenceError> {
        check_prefix(&options.connection.prefix).map_err(unavailable)?;
        let (schema, calls) = sql(&options.connection.prefix);
        let session = StoreSession::new(url, &options.connection, "hub presence", schema).map_err(unavailable)?;
        session.open().await.map_err(unavailable)?;
        let presence = PostgresPresence {
            session: Arc::new(session),
            sql: Arc::new(calls),
            server: crate::connection::random_id(),
            ttl: options.ttl,
            own: Arc::new(Mutex::new(HashMap::new())),
        };
        presence.refresh().await?;
        Ok(presence)
    }

    /// This server's name among the servers sharing the store.
    pub fn server_name(&self) -> &str {
        &self.server
    }

    /// The lease a server takes: half the TTL, renewed every quarter of it.
    fn lease_ms(&self) -> i64 {
        (self.ttl / 2).as_millis().clamp(1, i64::MAX as u128) as i64
    }

    fn lock_own(&self) -> std::sync::MutexGuard<'_, HashMap<OwnKey, Own>> {
        self.own.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the join function for one of this server's entries; the user's count, or -1.
    async fn run_join(&self, own: &Own) -> Result<i64, PresenceError> {
        let kind = own.kind.to_string();
        let lease = self.lease_ms();
        let rows = self
            .session
            .query(
                &self.sql.join,
                &[
                    &kind,
                    &own.hub,
                    &own.group,
                    &own.connection,
                    &own.user,
                    &self.server,
                    &lease,
                    &own.info,
                ],
            )
            .await
            .map_err(unavailable)?;
        first_i64(&rows)
    }

    fn add(&self, own: Own) -> BoxFuture<'static, Result<i64, PresenceError>> {
        self.lock_own().insert(own.key(), own.clone());
        let this = self.clone();
        Box::pin(async move { this.run_join(&own).await })
    }

    fn remove(
        &self,
        kind: char,
        hub: &str,
        group: &str,
        connection: &str,
    ) -> BoxFuture<'static, Result<i64, PresenceError>> {
        let key = (kind, hub.to_string(), group.to_string(), connection.to_string());
        self.lock_own().remove(&key);
        let this = self.clone();
        Box::pin(async move {
            let kind = key.0.to_string();
            let rows = this
                .session
                .query(&this.sql.leave, &[&kind, &key.1, &key.2, &key.3])
                .await
                .map_err(unavailable)?;
            first_i64(&rows)
        })
    }
}

fn first_i64(rows: &[tokio_postgres::Row]) -> Result<i64, PresenceError> {
    let row = rows.first().ok_or_else(|| unavailable("no answer row"))?;
    row.try_get(0).map_err(unavailable)
}

impl PresenceStore for PostgresPresence {
    fn join(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<JoinOutcome, PresenceError>> {
        let count = self.add(Own {
            kind: 'g',
            hub: entry.hub.clone(),
            group: entry.group.clone(),
            connection: entry.connection.clone(),
            user: entry.user.clone(),
            info: entry.info.clone(),
        });
        Box::pin(async move {
            Ok(JoinOutcome {
                first: count.await? == 1,
            })
        })
    }

    fn leave(&self, entry: &GroupEntry) -> BoxFuture<'static, Result<LeaveOutcome, PresenceError>> {
        let count = self.remove('g', &entry.hub, &entry.group, &entry.connection);
        Box::pin(async move {
            Ok(LeaveOutcome {
                last: count.await? == 0,
            })
        })
    }

    fn members(&self, hub: &str, group: &str) -> BoxFuture<'static, Result<Vec<Member>, PresenceError>> {
        let (this, hub, group) = (self.clone(), hub.to_string(), group.to_string());
        Box::pin(async move {
            let rows = this
                .session
                .query(&this.sql.members, &[&hub, &group])
                .await
                .map_err(unavailable)?;
            let mut members = rows
                .iter()
                .map(|row| {
                    let info: Option<String> = row.try_get(2)?;
                    Ok(Member {
                        user: row.try_get(0)?,
                        connections: row.try_get::<_, i64>(1)?.max(0) as u64,
                        info: info.and_then(|text| serde_json::from_str(&text).ok()),
                    })
                })
                .collect::<Result<Vec<Member>, tokio_postgres::Error>>()
                .map_err(unavailable)?;
            members.sort_by(|a, b| a.user.cmp(&b.user));
            Ok(members)
        })
    }

    fn connect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let count = self.add(Own {
            kind: 'u',
            hub: entry.hub.clone(),
            group: String::new(),
            connection: entry.connection.clone(),
            user: entry.user.clone(),
            info: None,
        });
        Box::pin(async move { count.await.map(|_| ()) })
    }

    fn disconnect(&self, entry: &UserEntry) -> BoxFuture<'static, Result<(), PresenceError>> {
        let count = self.remove('u', &entry.hub, "", &entry.connection);
        Box::pin(async move { count.await.map(|_| ()) })
    }

    fn online(&self, hub: &str, user: &str) -> BoxFuture<'static, Result<bool, PresenceError>> {
        let (this, hub, user) = (self.clone(), hub.to_string(), user.to_string());
        Box::pin(async move {
            let rows = this
                .session
                .query(&this.sql.online, &[&hub, &user])
                .await
                .map_err(unavailable)?;
            let row = rows.first().ok_or_else(|| unavailable("no answer row"))?;
            row.try_get(0).map_err(unavailable)
        })
    }

    fn ttl(&self) -> Option<Duration> {
        Some(self.ttl)
    }

    fn refresh(&self) -> BoxFuture<'static, Result<Vec<Restored>, PresenceError>> {
        let this = self.clone();
        Box::pin(async move {
            let lease = this.lease_ms();
            let rows = this
                .session
                .query(&this.sql.refresh, &[&this.server, &lease])
                .await
                .map_err(unavailable)?;
            let row = rows.first().ok_or_else(|| unavailable("no answer row"))?;
            let was_alive: bool = row.try_get(0).map_err(unavailable)?;
            if was_alive {
                return Ok(Vec::new());
            }
            // Swept while alive (or just started, with nothing yet): write every entry again.
            let own: Vec<Own> = this.lock_own().values().cloned().collect();
            let mut restored = Vec::new();
            for entry in own {
                if this.run_join(&entry).await? == 1 && entry.kind == 'g' {
                    restored.push(Restored {
                        hub: entry.hub,
                        group: entry.group,
                        user: entry.user,
                    });
                }
            }
            Ok(restored)
        })
    }

    fn sweep(&self) -> BoxFuture<'static, Result<Vec<Expired>, PresenceError>> {
        let this = self.clone();
        Box::pin(async move {
            let most: i32 = 16;
            let rows = this
                .session
                .query(&this.sql.sweep, &[&most])
                .await
                .map_err(unavailable)?;
            rows.iter()
                .map(|row| {
                    Ok(Expired {
                        hub: row.try_get(0)?,
                        group: row.try_get(1)?,
                        user: row.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<Expired>, tokio_postgres::Error>>()
                .map_err(unavailable)
        })
    }
}
