//! The Redis backplane: servers publish messages for each other on Redis pub/sub channels.
//!
//! Channel layout (after an optional prefix; `{hub}` is the hub's type name), following the
//! ASP.NET Core Redis backplane:
//!
//! | channel | carries |
//! |---|---|
//! | `{hub}:all` | messages for every connection (`AllExcept` carries the excluded ids; a send to several groups travels here with its group list, so each connection gets it once) |
//! | `{hub}:group:{group}` | messages for a group (servers listen while they have a local member) |
//! | `{hub}:connection:{id}` | messages for one connection (its server listens) |
//! | `{hub}:user:{user}` | messages for a user (servers listen while the user has a local connection) |
//! | `{hub}:internal:groups` | group commands for connections on another server |
//! | `{hub}:internal:ack:{server}` | acknowledgements of those commands |
//!
//! Payloads are the MessagePack envelopes of `backplane::wire`, shared by every broker.
//!
//! Each channel is listened on while something here needs it (counted per reason, see
//! `subscriptions`); a SUBSCRIBE that fails is retried with backoff. The subscriber reconnects
//! with backoff and subscribes again to everything it needs; local delivery never depends on
//! Redis. Every command and connection attempt is bounded by a timeout, the connections use
//! TCP keepalive, and the subscription connection is PINGed, so a Redis that stops answering
//! is noticed. Messages that could not be published are counted
//! ([`RedisBackplane::failed_publishes`]) and logged, as are failed subscription changes
//! ([`RedisBackplane::failed_subscriptions`]).
//!
//! Here: the options, the shared state and the delivery of what arrives; the payloads are in
//! `backplane::wire`, `backplane` the [`Backplane`](super::Backplane) implementation, `subscriber` the
//! subscription connection and `subscriptions` what it listens to.

mod backplane;
mod subscriber;
mod subscriptions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::IntoConnectionInfo;
use tokio::sync::oneshot;

use self::subscriber::subscriber;
use self::subscriptions::Subscriptions;
use super::wire::{decode_ack, decode_group_command, decode_message, decode_return, encode_ack, encode_return};

use super::{BackplaneError, LocalHub};
use crate::backplane::SendTarget;
use crate::protocol::CompletionResult;

/// Options of the Redis backplane.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prepended to every channel name, so several applications can share one Redis.
    pub prefix: String,
    /// How long a group change for a connection on another server may take before it fails
    /// with "no server owns it" (5 s).
    pub group_ack_timeout: Duration,
    /// How long connecting to Redis may take before the attempt fails (5 s).
    pub connect_timeout: Duration,
    /// How long Redis may take to answer a command (SUBSCRIBE, PUBLISH, PING) before the attempt
    /// fails (5 s). A failed SUBSCRIBE is retried; a subscription connection whose PING goes
    /// unanswered is replaced.
    pub response_timeout: Duration,
    /// TCP keepalive probes start after a connection was idle this long, and the subscription
    /// connection is PINGed this often (15 s).
    pub keepalive: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: String::new(),
            group_ack_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }
}

/// What a subscribed channel is.
#[derive(Debug, Clone)]
pub(super) enum Route {
    All(String),
    Group(String, String),
    Connection(String, String),
    User(String, String),
    GroupCommands(String),
    Acks,
    Returns,
}

struct Inner {
    client: redis::Client,
    publisher: ConnectionManager,
    options: RedisOptions,
    server: String,
    hubs: RwLock<HashMap<String, Arc<dyn LocalHub>>>,
    /// The channels this server listens on.
    subscriptions: Arc<Subscriptions>,
    /// Group commands sent to other servers, awaiting their acknowledgement.
    acks: Mutex<HashMap<u64, oneshot::Sender<Result<(), BackplaneError>>>>,
    /// Client results this server awaits from connections on other servers.
    returns: Mutex<HashMap<String, oneshot::Sender<CompletionResult>>>,
    next_id: AtomicU64,
    /// Client results other servers await from connections here.
    forwarded: AtomicU64,
    metrics: Arc<crate::observability::BackplaneMetrics>,
}

/// Joins servers through Redis pub/sub.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::backplane::RedisBackplane;
/// use hub_runtime::HubServer;
/// let redis = RedisBackplane::connect("redis://127.0.0.1:6379").await?;
/// let server = HubServer::builder().backplane(redis) /* .hub(...) */ .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    inner: Arc<Inner>,
}

fn unavailable(e: impl std::fmt::Display) -> BackplaneError {
    BackplaneError::Unavailable(e.to_string())
}

impl RedisBackplane {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, BackplaneError> {
        RedisBackplane::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to Redis at `url` (`redis://host:port`).
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<Self, BackplaneError> {
        let info = url
            .into_connection_info()
            .map_err(unavailable)?
            .set_tcp_settings(tcp_settings(&options));
        let client = redis::Client::open(info).map_err(unavailable)?;
        // One connection attempt per reconnect, not the default six with backoff (~6 s): while
        // Redis is down a publish must fail at once (counted, logged), not hold up the hub method
        // that sends — and with it every later invocation of that client, local delivery included.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout));
        let publisher = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unavailable)?;
        let server = format!("{}_{}", hostname(), crate::connection::random_id());
        let metrics = Arc::new(crate::observability::BackplaneMetrics::new("redis"));
        let inner = Arc::new(Inner {
            client,
            publisher,
            server,
            hubs: RwLock::new(HashMap::new()),
            subscriptions: Arc::new(Subscriptions::new(options.response_timeout, metrics.clone())),
            options,
            acks: Mutex::new(HashMap::new()),
            returns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            forwarded: AtomicU64::new(0),
            metrics,
        });
        inner.subscriptions.keep(inner.channel_for_acks(), Route::Acks);
        inner
            .subscriptions
            .keep(inner.channel_for_returns(&inner.server), Route::Returns);
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(subscriber(inner.clone(), ready_tx));
        let wait = inner
            .options
            .connect_timeout
            .saturating_add(inner.options.response_timeout);
        match tokio::time::timeout(wait, ready_rx).await {
            Ok(Ok(())) => Ok(RedisBackplane { inner }),
            _ => Err(BackplaneError::Unavailable("could not subscribe to Redis".into())),
        }
    }

    /// How many messages for other servers could not be published (Redis unreachable).
    pub fn failed_publishes(&self) -> u64 {
        self.inner.metrics.stats().failed_publishes
    }

    /// How many SUBSCRIBE or UNSUBSCRIBE attempts failed (Redis refused, or did not answer
    /// within the response timeout); each is retried.
    pub fn failed_subscriptions(&self) -> u64 {
        self.inner.metrics.stats().failed_subscriptions
    }

    /// Client results in flight through this server: those it awaits from connections on
    /// other servers, and those other servers await from its connections.
    pub fn pending_client_results(&self) -> usize {
        self.inner.returns.lock().unwrap_or_else(|p| p.into_inner()).len()
            + self.inner.forwarded.load(Ordering::Relaxed) as usize
    }

    /// This server's name on the backplane.
    pub fn server_name(&self) -> &str {
        &self.inner.server
    }
}

/// TCP keepalive (and, on Linux, a limit on unacknowledged writes), so a Redis that vanished
/// without closing the connection is noticed.
fn tcp_settings(options: &RedisOptions) -> redis::io::tcp::TcpSettings {
    use redis::io::tcp::socket2::TcpKeepalive;
    // The kernel counts keepalive times in whole seconds, up to 32767 (Linux refuses more,
    // so a keepalive of `Duration::MAX` probes after about 9 hours).
    let idle = options
        .keepalive
        .clamp(Duration::from_secs(1), Duration::from_secs(32_767));
    let keepalive = TcpKeepalive::new().with_time(idle);
    #[cfg(target_os = "linux")]
    let keepalive = keepalive
        .with_interval((idle / 3).max(Duration::from_secs(1)))
        .with_retries(3);
    let settings = redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive);
    #[cfg(target_os = "linux")]
    let settings = settings.set_user_timeout(idle.saturating_mul(2));
    settings
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "hub".into())
}

impl Inner {
    fn channel(&self, hub: &str, rest: &str) -> String {
        format!("{}{hub}:{rest}", self.options.prefix)
    }

    fn channel_for_returns(&self, server: &str) -> String {
        format!("{}hub:internal:return:{server}", self.options.prefix)
    }

    fn channel_for_acks(&self) -> String {
        format!("{}hub:internal:ack:{}", self.options.prefix, self.server)
    }

    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackplaneError> {
        self.publish_counted(channel, payload).await.map(|_| ())
    }

    /// Publishes; returns how many subscribers received it.
    async fn publish_counted(&self, channel: &str, payload: Vec<u8>) -> Result<i64, BackplaneError> {
        let mut connection = self.publisher.clone();
        let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(&mut connection)
            .await;
        result.map_err(|e| {
            let failed = self.metrics.failed_publish();
            // 1st, 2nd, 4th, 8th… failure: an outage does not flood the log.
            if failed.is_power_of_two() {
                tracing::warn!(%channel, error = %e, failed, "could not publish to Redis: messages for other servers are lost");
            }
            unavailable(e)
        })
    }

    /// After an outage, makes the publisher drop the connection Redis closed: a server that
    /// published nothing meanwhile still holds it, and its next message would fail.
    async fn refresh_publisher(&self) {
        for _ in 0..3 {
            let mut connection = self.publisher.clone();
            if redis::cmd("PING").query_async::<()>(&mut connection).await.is_ok() {
                return;
            }
        }
    }

    fn local(&self, hub: &str) -> Option<Arc<dyn LocalHub>> {
        self.hubs.read().unwrap_or_else(|p| p.into_inner()).get(hub).cloned()
    }

    fn dispatch(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        let Some(route) = self.subscriptions.route(channel) else {
            return;
        };
        match route {
            Route::Returns => {
                if let Some((id, result)) = decode_return(payload) {
                    if let Some(waiting) = self.returns.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                        let _ = waiting.send(result);
                    }
                }
            }
            Route::Acks => {
                if let Some((id, outcome)) = decode_ack(payload) {
                    if let Some(waiting) = self.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id) {
                        let _ = waiting.send(outcome);
                    }
                }
            }
            Route::GroupCommands(hub) => {
                let Some(command) = decode_group_command(payload) else {
                    return;
                };
                if command.server == self.server {
                    return;
                }
                let Some(local) = self.local(&hub) else { return };
                let inner = self.clone();
                tokio::spawn(async move {
                    let outcome = match local
                        .apply_group(&command.connection, &command.group, command.change)
                        .await
                    {
                        Ok(true) => Ok(()),
                        // Not here: another server may own it (no answer means nobody does).
                        Ok(false) => return,
                        Err(refused) => Err(refused),
                    };
                    let channel = format!("{}hub:internal:ack:{}", inner.options.prefix, command.server);
                    let _ = inner.publish(&channel, encode_ack(command.id, &outcome)).await;
                });
            }
            Route::All(ref hub)
            | Route::Group(ref hub, _)
            | Route::Connection(ref hub, _)
            | Route::User(ref hub, _) => {
                let Some(message) = decode_message(payload) else {
                    tracing::warn!(%channel, "ignoring an unreadable backplane message");
                    return;
                };
                if message.origin == self.server {
                    return;
                }
                let Some(local) = self.local(hub) else { return };
                if let (Route::Connection(_, id), Some((invocation_id, reply_to))) = (&route, &message.reply) {
                    // A client result another server awaits: invoke, then send the answer back.
                    let Some((protocol, answer)) = local.invoke_local(id, invocation_id, &message.encoded) else {
                        return;
                    };
                    // The answer resolves within the hub's client-result timeout.
                    let forwarded = Forwarded::start(self.clone());
                    let (invocation_id, reply_to) = (invocation_id.clone(), reply_to.clone());
                    tokio::spawn(async move {
                        let result = answer.await;
                        let inner = forwarded.inner.clone();
                        drop(forwarded);
                        let _ = inner
                            .publish(&reply_to, encode_return(&invocation_id, protocol, &result))
                            .await;
                    });
                    return;
                }
                let excluded = message.excluded;
                let target = match (route, message.groups) {
                    (Route::All(_), Some(groups)) => SendTarget::Groups(groups),
                    (Route::All(_), None) => SendTarget::AllExcept(excluded),
                    (Route::Group(_, group), _) => SendTarget::GroupExcept(group, excluded),
                    (Route::Connection(_, id), _) => SendTarget::Connection(id),
                    (Route::User(_, user), _) => SendTarget::User(user),
                    _ => return,
                };
                local.deliver(&target, &message.encoded);
            }
        }
    }
}

/// A client result another server awaits from a connection here (counted while it lasts).
struct Forwarded {
    inner: Arc<Inner>,
}

impl Forwarded {
    fn start(inner: Arc<Inner>) -> Self {
        inner.forwarded.fetch_add(1, Ordering::Relaxed);
        Forwarded { inner }
    }
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        self.inner.forwarded.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client result this server awaits from another server; dropping it (answered, timed out
/// or cancelled) forgets the waiting entry.
struct AwaitedReturn {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for AwaitedReturn {
    fn drop(&mut self) {
        self.inner
            .returns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}
