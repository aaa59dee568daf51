//! The Redis store: histories kept in Redis, so that they outlive any one server, and live
//! delivery through Redis pub/sub.
//!
//! Per group (`{hub}` is the hub's type name, after an optional prefix):
//!
//! | key or channel | holds |
//! |---|---|
//! | `history:{hub}\|{group}:meta` | a hash: the epoch and the last offset |
//! | `history:{hub}\|{group}:log` | a list of `offset:milliseconds:payload`, oldest first |
//! | channel `history:{hub}\|{group}` | `epoch:offset:payload` for each new message |
//!
//! One Lua script appends, trims (length and age, by Redis's clock), refreshes the keys' TTL
//! and PUBLISHes, so the order on the channel is the order of the offsets. When the keys are
//! gone (idle past the TTL, Redis restarted empty) the next script starts a new epoch. The
//! store keeps its own subscription connection, subscribed to the channels of the groups
//! watched on this server; after it reconnects, every watcher is told of a possible gap and
//! reads what it missed from history.

mod subscriber;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::ConnectionManager;
use redis::{IntoConnectionInfo, Script, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use self::subscriber::Subscriptions;
use super::fanout::{Fanout, Watch};
use super::{Durable, HistoryError, HistoryKey, HistoryLimits, HistoryStore, Latest, Position, Since};

const COMMON: &str = include_str!("common.lua");

/// Options of the Redis history store.
#[derive(Debug, Clone)]
pub struct RedisHistoryOptions {
    /// Prepended to every key and channel name, so several applications can share one Redis.
    pub prefix: String,
    /// How long connecting may take (5 s).
    pub connect_timeout: Duration,
    /// How long Redis may take to answer a command (5 s).
    pub response_timeout: Duration,
    /// How often the subscription connection is PINGed (15 s). One that does not answer within
    /// `response_timeout` is replaced (a half-open socket would otherwise hold a server's live
    /// history messages back for good); its watchers then read what they missed from history.
    pub keepalive: Duration,
}

impl Default for RedisHistoryOptions {
    fn default() -> Self {
        RedisHistoryOptions {
            prefix: String::new(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

struct Scripts {
    append: Script,
    since: Script,
    last: Script,
}

struct Shared {
    connection: ConnectionManager,
    options: RedisHistoryOptions,
    scripts: Scripts,
    fanout: Arc<Fanout>,
    subscriptions: Arc<Subscriptions>,
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Group histories in Redis, shared by every server connected to it (see the module
/// documentation for the layout).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::history::RedisHistory;
/// use hub_runtime::HubServer;
/// let history = RedisHistory::connect("redis://127.0.0.1:6379").await?;
/// let server = HubServer::builder().history(history) /* .hub_with(...) */ .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisHistory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RedisHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHistory")
            .field("prefix", &self.shared.options.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Unavailable(e.to_string())
}

impl RedisHistory {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, HistoryError> {
        RedisHistory::connect_with(url, RedisHistoryOptions::default()).await
    }

    /// Connects to Redis at `url` (`redis://host:port`): the command connection and the
    /// subscription connection.
    pub async fn connect_with(url: &str, options: RedisHistoryOptions) -> Result<Self, HistoryError> {
        let info = url.into_connection_info().map_err(unavailable)?;
        let client = redis::Client::open(info).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout));
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let fanout = Arc::new(Fanout::with_on_idle(move |key: &HistoryKey| {
            let _ = idle_tx.send(key.clone());
        }));
        let subscriptions = Arc::new(Subscriptions::new(options.prefix.clone(), options.response_timeout));
        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(subscriber::run(
            client,
            subscriber::Timing {
                connect: options.connect_timeout,
                keepalive: options.keepalive,
            },
            fanout.clone(),
            subscriptions.clone(),
            idle_rx,
            stop.clone(),
            ready_tx,
        ));
        let wait = options.connect_timeout.saturating_add(options.response_timeout);
        if !matches!(tokio::time::timeout(wait, ready_rx).await, Ok(Ok(()))) {
            stop.cancel();
            return Err(unavailable("could not subscribe to Redis"));
        }
        let script = |body: &str| Script::new(&format!("{COMMON}\n{body}"));
        Ok(RedisHistory {
            shared: Arc::new(Shared {
                connection,
                options,
                scripts: Scripts {
                    append: script(include_str!("append.lua")),
                    since: script(include_str!("since.lua")),
                    last: script(include_str!("last.lua")),
                },
                fanout,
                subscriptions,
                stop,
            }),
        })
    }

    fn keys(&self, key: &HistoryKey) -> (String, String) {
        let base = base_name(&self.shared.options.prefix, key);
        (format!("{base}:meta"), format!("{base}:log"))
    }

    async fn run(&self, invocation: redis::ScriptInvocation<'_>) -> Result<Vec<Value>, HistoryError> {
        let mut connection = self.shared.connection.clone();
        let answer = tokio::time::timeout(
            self.shared.options.response_timeout,
            invocation.invoke_async::<Vec<Value>>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok(values)) => Ok(values),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("Redis did not answer in time")),
        }
    }
}

/// `{prefix}history:{hub}|{group}`: the channel, and the keys' stem.
pub(super) fn base_name(prefix: &str, key: &HistoryKey) -> String {
    format!("{prefix}history:{}|{}", key.hub, key.group)
}

fn text(value: Option<&Value>) -> Result<String, HistoryError> {
    match value {
        Some(Value::BulkString(bytes)) => String::from_utf8(bytes.clone()).map_err(unavailable),
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        other => Err(unavailable(format!("unexpected answer {other:?}"))),
    }
}

fn integer(value: Option<&Value>) -> Result<i64, HistoryError> {
    match value {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(unavailable(format!("unexpected answer {other:?}"))),
    }
}

/// Splits `a:b:rest` at its first two colons.
pub(super) fn three_parts(entry: &str) -> Option<(&str, &str, &str)> {
    let (a, rest) = entry.split_once(':')?;
    let (b, rest) = rest.split_once(':')?;
    Some((a, b, rest))
}

/// The log entries `offset:ms:payload` as messages of `epoch`.
fn entries(epoch: &str, values: &[Value]) -> Result<Vec<Durable>, HistoryError> {
    values
        .iter()
        .map(|value| {
            let entry = text(Some(value))?;
            let (offset, _, payload) = three_parts(&entry).ok_or_else(|| unavailable("a malformed history entry"))?;
            let offset = offset.parse().map_err(unavailable)?;
            Ok(Durable {
                position: Position::new(epoch, offset),
                payload: payload.into(),
            })
        })
        .collect()
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl HistoryStore for RedisHistory {
    fn append<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        payload: Arc<str>,
    ) -> BoxFuture<'a, Result<Position, HistoryError>> {
        Box::pin(async move {
            let (meta, log) = self.keys(key);
            let mut invocation = self.shared.scripts.append.key(meta);
            invocation
                .key(log)
                .arg(limits.max_len.max(1))
                .arg(millis(limits.ttl))
                .arg(super::new_epoch())
                .arg(&*payload)
                .arg(base_name(&self.shared.options.prefix, key));
            let values = self.run(invocation).await?;
            Ok(Position::new(text(values.first())?, integer(values.get(1))?))
        })
    }

    fn since<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        from: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Since, HistoryError>> {
        Box::pin(async move {
            let (meta, log) = self.keys(key);
            let mut invocation = self.shared.scripts.since.key(meta);
            invocation.key(log).arg(millis(limits.ttl)).arg(super::new_epoch());
            match from {
                None => invocation.arg("none").arg("").arg(0),
                Some(from) => invocation.arg("from").arg(&from.epoch).arg(from.offset),
            };
            let values = self.run(invocation).await?;
            let epoch = text(values.first())?;
            let position = Position::new(epoch.clone(), integer(values.get(1))?);
            let recovered = integer(values.get(2))? == 1;
            Ok(Since {
                recovered,
                messages: entries(&epoch, values.get(3..).unwrap_or_default())?,
                position,
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
            let (meta, log) = self.keys(key);
            let mut invocation = self.shared.scripts.last.key(meta);
            invocation
                .key(log)
                .arg(millis(limits.ttl))
                .arg(super::new_epoch())
                .arg(count.min(limits.max_len));
            let values = self.run(invocation).await?;
            let epoch = text(values.first())?;
            Ok(Latest {
                position: Position::new(epoch.clone(), integer(values.get(1))?),
                messages: entries(&epoch, values.get(2..).unwrap_or_default())?,
            })
        })
    }

    fn watch<'a>(&'a self, key: &'a HistoryKey) -> BoxFuture<'a, Result<Watch, HistoryError>> {
        Box::pin(async move {
            let watch = self.shared.fanout.watch(key);
            self.shared.subscriptions.ensure(key).await?;
            Ok(watch)
        })
    }
}
