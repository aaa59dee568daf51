//! The PostgreSQL store: histories kept in tables, so that they outlive any one server, and
//! live delivery through LISTEN/NOTIFY.
//!
//! Tables (after the prefix of [`PostgresOptions::prefix`]; created at connect unless they
//! exist, see `schema.sql`):
//!
//! | table or channel | holds |
//! |---|---|
//! | `hub_history_groups` | per group: its epoch, its last offset, and when its history is gone |
//! | `hub_history_messages` | per group and offset: the epoch, when it expires, the payload |
//! | channel `hub_h_{hash of hub and group}` | `epoch:offset` of each new message |
//!
//! One PL/pgSQL function appends: it locks the group's row (creating it, or starting a new
//! epoch when the group's history is gone: nothing published to it for the TTL), takes the next
//! offset, inserts the message, trims by length and age, and calls `pg_notify`, all in one
//! transaction. PostgreSQL delivers a notification when its transaction commits, and the row
//! lock makes the transactions of one group commit in offset order, so appending and publishing
//! are one step and the order on the channel is the order of the offsets. Notifications carry
//! only the position (a payload may be far larger than the 8,000 bytes a notification takes):
//! the listening session reads each notified message's row. Expired rows are deleted by every
//! server every [`PostgresHistoryOptions::cleanup_interval`].
//!
//! The listening session is a connection of its own (never through a pooler in transaction
//! mode), LISTENing on the channels of the groups watched on this server; after it reconnects,
//! every watcher is told of a possible gap and reads what it missed from history.

mod listener;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::listener::{Listener, Listening};
use super::fanout::{Fanout, Watch};
use super::{Durable, HistoryError, HistoryKey, HistoryLimits, HistoryStore, Latest, Position, Since};
use crate::backplane::postgres::channels::{check_prefix, quote_identifier, stable_hash};
use crate::backplane::postgres::connect::Connector;
use crate::backplane::postgres::store::StoreSession;
use crate::backplane::PostgresOptions;

/// Options of [`PostgresHistory`].
#[derive(Debug, Clone)]
pub struct PostgresHistoryOptions {
    /// Connecting: timeouts, keepalive (the listening session is checked this often), TLS
    /// roots, and the prefix of the table and channel names.
    pub connection: PostgresOptions,
    /// How often expired messages and groups are deleted (60 s).
    pub cleanup_interval: Duration,
}

impl Default for PostgresHistoryOptions {
    fn default() -> Self {
        PostgresHistoryOptions {
            connection: PostgresOptions::default(),
            cleanup_interval: Duration::from_secs(60),
        }
    }
}

struct Sql {
    append: String,
    read: String,
    clean: String,
}

struct Shared {
    session: Arc<StoreSession>,
    sql: Sql,
    prefix: String,
    fanout: Arc<Fanout>,
    listening: Arc<Listening>,
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Group histories in PostgreSQL, shared by every server connected to it (see the module
/// documentation for the layout).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::history::PostgresHistory;
/// use hub_runtime::HubServer;
/// let history = PostgresHistory::connect("postgres://hub@127.0.0.1/hub").await?;
/// let server = HubServer::builder().history(history) /* .hub_with(...) */ .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresHistory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PostgresHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresHistory")
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Unavailable(e.to_string())
}

/// The schema with its names, the calls, and the listener's fetch.
fn sql(prefix: &str) -> (String, Sql, String) {
    let name = |rest: &str| quote_identifier(&format!("{prefix}{rest}"));
    let (groups, messages) = (name("hub_history_groups"), name("hub_history_messages"));
    let (group_of, append, read, clean) = (
        name("hub_history_group"),
        name("hub_history_append"),
        name("hub_history_read"),
        name("hub_history_clean"),
    );
    let lock = stable_hash(&format!("{prefix}hub_history")) as i64;
    let schema = include_str!("schema.sql")
        .replace("{lock}", &lock.to_string())
        .replace("{groups}", &groups)
        .replace("{messages_by_expiry}", &name("hub_history_messages_expires"))
        .replace("{messages}", &messages)
        .replace("{group_of}", &group_of)
        .replace("{append}", &append)
        .replace("{read}", &read)
        .replace("{clean}", &clean);
    let calls = Sql {
        append: format!("SELECT epoch, off FROM {append}($1, $2, $3, $4, $5, $6, $7)"),
        read: format!("SELECT epoch, off, payload FROM {read}($1, $2, $3, $4, $5, $6, $7)"),
        clean: format!("SELECT {clean}()"),
    };
    let fetch = format!("SELECT payload FROM {messages} WHERE hub = $1 AND grp = $2 AND off = $3 AND epoch = $4");
    (schema, calls, fetch)
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl PostgresHistory {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, HistoryError> {
        PostgresHistory::connect_with(url, PostgresHistoryOptions::default()).await
    }

    /// Connects to PostgreSQL at `url` (as [`PostgresBackplane::connect`](crate::backplane::PostgresBackplane::connect)
    /// takes it): creates the tables and functions unless they exist, and opens the command and
    /// listening sessions.
    pub async fn connect_with(url: &str, options: PostgresHistoryOptions) -> Result<Self, HistoryError> {
        let connection = &options.connection;
        check_prefix(&connection.prefix).map_err(unavailable)?;
        let (schema, calls, fetch_sql) = sql(&connection.prefix);
        let session = StoreSession::new(url, connection, "hub history", schema).map_err(unavailable)?;
        session.open().await.map_err(unavailable)?;
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let fanout = Arc::new(Fanout::with_on_idle(move |key: &HistoryKey| {
            let _ = idle_tx.send(key.clone());
        }));
        let listening = Arc::new(Listening::new(connection.prefix.clone(), connection.response_timeout));
        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        let listener = Listener {
            connector: Arc::new(Connector::new(url, connection).map_err(unavailable)?),
            fetch_sql,
            connect_timeout: connection.connect_timeout,
            response_timeout: connection.response_timeout,
            keepalive: connection.keepalive,
            fanout: fanout.clone(),
            listening: listening.clone(),
        };
        tokio::spawn(listener::run(listener, idle_rx, stop.clone(), ready_tx));
        let wait = connection
            .connect_timeout
            .saturating_add(connection.response_timeout.saturating_mul(3));
        if !matches!(tokio::time::timeout(wait, ready_rx).await, Ok(Ok(()))) {
            stop.cancel();
            return Err(unavailable("could not listen on PostgreSQL"));
        }
        let history = PostgresHistory {
            shared: Arc::new(Shared {
                session: Arc::new(session),
                sql: calls,
                prefix: connection.prefix.clone(),
                fanout,
                listening,
                stop: stop.clone(),
            }),
        };
        tokio::spawn(clean(
            history.shared.session.clone(),
            history.shared.sql.clean.clone(),
            options.cleanup_interval,
            stop,
        ));
        Ok(history)
    }

    /// The channels the listening session LISTENs on now (none while it reconnects): one per
    /// group watched on this server (`{prefix}hub_h_{hash}`), sorted.
    pub async fn listening_channels(&self) -> Vec<String> {
        self.shared.listening.listened().await
    }

    /// Runs the read function: the group's position and the messages it returned.
    async fn read(
        &self,
        key: &HistoryKey,
        limits: HistoryLimits,
        asked: Option<&str>,
        after: Option<i64>,
        most: usize,
    ) -> Result<(Position, Vec<Durable>), HistoryError> {
        let hub: &str = &key.hub;
        let (ttl, epoch) = (millis(limits.ttl), super::new_epoch());
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        let rows = self
            .shared
            .session
            .query(
                &self.shared.sql.read,
                &[&hub, &key.group, &ttl, &epoch, &asked, &after, &most],
            )
            .await
            .map_err(unavailable)?;
        let mut rows = rows.iter();
        let head = rows.next().ok_or_else(|| unavailable("no answer row"))?;
        let position = Position::new(
            head.try_get::<_, String>(0).map_err(unavailable)?,
            head.try_get(1).map_err(unavailable)?,
        );
        let messages = rows
            .map(|row| {
                Ok(Durable {
                    position: Position::new(row.try_get::<_, String>(0)?, row.try_get(1)?),
                    payload: row.try_get::<_, String>(2)?.into(),
                })
            })
            .collect::<Result<Vec<Durable>, tokio_postgres::Error>>()
            .map_err(unavailable)?;
        Ok((position, messages))
    }
}

/// Deletes expired rows every `every` until `stop`.
async fn clean(session: Arc<StoreSession>, sql: String, every: Duration, stop: CancellationToken) {
    let every = every.max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(e) = session.query(&sql, &[]).await {
            tracing::debug!(error = %e, "postgres history could not delete expired rows; trying later");
        }
    }
}

impl HistoryStore for PostgresHistory {
    fn append<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        payload: Arc<str>,
    ) -> BoxFuture<'a, Result<Position, HistoryError>> {
        Box::pin(async move {
            let hub: &str = &key.hub;
            let max_len = i64::try_from(limits.max_len.max(1)).unwrap_or(i64::MAX);
            let (ttl, epoch) = (millis(limits.ttl), super::new_epoch());
            let channel = listener::channel(&self.shared.prefix, key);
            let body: &str = &payload;
            let rows = self
                .shared
                .session
                .query(
                    &self.shared.sql.append,
                    &[&hub, &key.group, &max_len, &ttl, &epoch, &body, &channel],
                )
                .await
                .map_err(unavailable)?;
            let row = rows.first().ok_or_else(|| unavailable("no answer row"))?;
            Ok(Position::new(
                row.try_get::<_, String>(0).map_err(unavailable)?,
                row.try_get(1).map_err(unavailable)?,
            ))
        })
    }

    fn since<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        from: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Since, HistoryError>> {
        Box::pin(async move {
            let Some(from) = from else {
                let (position, _) = self.read(key, limits, None, None, 0).await?;
                return Ok(Since {
                    recovered: true,
                    position,
                    messages: Vec::new(),
                });
            };
            let after = Some(from.offset).filter(|offset| *offset >= 0);
            let (position, messages) = self
                .read(key, limits, Some(&from.epoch), after, limits.max_len.max(1))
                .await?;
            let not_recovered = Since {
                recovered: false,
                position: position.clone(),
                messages: Vec::new(),
            };
            if from.epoch != position.epoch || from.offset < 0 || from.offset > position.offset {
                return Ok(not_recovered);
            }
            let missed = position.offset - from.offset;
            let complete = messages.len() as i64 == missed
                && messages.first().is_none_or(|m| m.position.offset == from.offset + 1);
            if !complete {
                return Ok(not_recovered);
            }
            Ok(Since {
                recovered: true,
                position,
                messages,
            })
        })
    }

    fn last<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        count: usize,
    ) -> BoxFuture<'a, Result<Latest, HistoryError>> {
        Box::pin(async move {
            let most = count.min(limits.max_len);
            let after = (most > 0).then_some(0);
            let (position, messages) = self.read(key, limits, None, after, most).await?;
            Ok(Latest { position, messages })
        })
    }

    fn watch<'a>(&'a self, key: &'a HistoryKey) -> BoxFuture<'a, Result<Watch, HistoryError>> {
        Box::pin(async move {
            let watch = self.shared.fanout.watch(key);
            self.shared.listening.ensure(key).await?;
            Ok(watch)
        })
    }
}
