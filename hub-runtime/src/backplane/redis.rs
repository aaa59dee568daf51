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
//! Payloads are MessagePack. A message: `[excluded ids, {protocol name: framed bytes}, nil,
//! nil, origin server, group list | nil]` — the first two elements as in ASP.NET Core, the
//! bytes forwarded verbatim to connections speaking that protocol. A group command:
//! `[id, server, 1 = add | 2 = remove, group, connection id]`; its ack: `[id]`.
//!
//! Each channel is listened on while something here needs it (counted per reason, see
//! `subscriptions`); a SUBSCRIBE that fails is retried with backoff. The subscriber reconnects
//! with backoff and subscribes again to everything it needs; local delivery never depends on
//! Redis. Every command and connection attempt is bounded by a timeout, the connections use
//! TCP keepalive, and the subscription connection is PINGed, so a Redis that stops answering
//! is noticed. Messages that could not be published are counted
//! ([`RedisBackplane::failed_publishes`]) and logged, as are failed subscription changes
//! ([`RedisBackplane::failed_subscriptions`]).

mod subscriptions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubSink, PubSubStream};
use redis::IntoConnectionInfo;
use tokio::sync::oneshot;

use self::subscriptions::Subscriptions;

use super::{Backplane, BackplaneError, EncodedMessage, LocalHub};
use crate::clients::{GroupError, SendTarget};
use crate::connection::BoxFuture;
use crate::protocol::{CompletionResult, RawValue};

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
    failed_publishes: AtomicU64,
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
            failed_publishes: AtomicU64::new(0),
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
        self.inner.failed_publishes.load(Ordering::Relaxed)
    }

    /// How many SUBSCRIBE or UNSUBSCRIBE attempts failed (Redis refused, or did not answer
    /// within the response timeout); each is retried.
    pub fn failed_subscriptions(&self) -> u64 {
        self.inner.subscriptions.failures()
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
            let failed = self.failed_publishes.fetch_add(1, Ordering::Relaxed) + 1;
            self.metrics.failed_publish();
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
                        .apply_group(&command.connection, &command.group, command.add)
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

/// Keeps the subscription connection: connects (with backoff), subscribes every wanted
/// channel, delivers what arrives, and starts over when the connection is lost or stops
/// answering.
async fn subscriber(inner: Arc<Inner>, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        if ready.as_ref().is_some_and(|r| r.is_closed()) {
            // `connect_with` gave up waiting: nobody holds this backplane.
            return;
        }
        let connecting = tokio::time::timeout(inner.options.connect_timeout, inner.client.get_async_pubsub()).await;
        match connecting {
            Ok(Ok(pubsub)) => {
                let (sink, stream) = pubsub.split();
                let (generation, channels) = inner.subscriptions.connecting();
                // One SUBSCRIBE for everything (given longer, for its size); if Redis refuses
                // it, each channel is subscribed (and retried) on its own.
                let mut bulk = sink.clone();
                let wait = inner.options.response_timeout.saturating_mul(2);
                let subscribed = channels.is_empty()
                    || matches!(tokio::time::timeout(wait, bulk.subscribe(&channels)).await, Ok(Ok(())));
                let done: &[String] = if subscribed { &channels } else { &[] };
                inner.subscriptions.connected(generation, sink.clone(), done);
                if let Some(ready) = ready.take() {
                    if ready.send(()).is_err() {
                        // `connect_with` gave up (or was dropped) just before: nobody holds this
                        // backplane. Its connections close as this task ends.
                        inner.subscriptions.disconnected(generation);
                        tracing::debug!("redis backplane subscribed after connect_with gave up; stopping");
                        return;
                    }
                } else {
                    tracing::info!("redis backplane reconnected and resubscribed");
                    inner.refresh_publisher().await;
                }
                backoff = Duration::from_millis(100);
                listen(&inner, sink, stream).await;
                inner.subscriptions.disconnected(generation);
                inner.metrics.gap();
                tracing::warn!("redis backplane subscription lost; reconnecting (local delivery continues)");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "redis backplane cannot connect; retrying"),
            Err(_) => tracing::warn!("redis backplane cannot connect (timed out); retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Delivers what arrives on the subscription connection until it ends or a PING goes
/// unanswered.
async fn listen(inner: &Arc<Inner>, mut sink: PubSubSink, mut stream: PubSubStream) {
    let (keepalive, response_timeout) = (inner.options.keepalive, inner.options.response_timeout);
    let health = async move {
        loop {
            tokio::time::sleep(keepalive).await;
            let ping = tokio::time::timeout(response_timeout, sink.ping::<redis::Value>()).await;
            if !matches!(ping, Ok(Ok(_))) {
                tracing::warn!("redis backplane subscription does not answer PING; reconnecting");
                return;
            }
        }
    };
    let messages = async {
        while let Some(message) = stream.next().await {
            let channel = message.get_channel_name().to_string();
            inner.dispatch(&channel, message.get_payload_bytes());
        }
    };
    tokio::select! {
        () = health => {}
        () = messages => {}
    }
}

impl Backplane for RedisBackplane {
    fn is_distributed(&self) -> bool {
        true
    }

    fn attach_hub(&self, hub: &str, local: Arc<dyn LocalHub>) {
        self.inner
            .hubs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hub.to_string(), local);
        let inner = self.inner.clone();
        let hub = hub.to_string();
        let subscribe = async move {
            let subscriptions = &inner.subscriptions;
            subscriptions
                .add(inner.channel(&hub, "all"), Route::All(hub.clone()))
                .await;
            subscriptions
                .add(
                    inner.channel(&hub, "internal:groups"),
                    Route::GroupCommands(hub.clone()),
                )
                .await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(subscribe);
            }
            Err(_) => tracing::warn!("attach the Redis backplane from inside a tokio runtime"),
        }
    }

    fn publish(
        &self,
        hub: &str,
        target: &SendTarget,
        message: EncodedMessage,
    ) -> BoxFuture<Result<(), BackplaneError>> {
        let inner = self.inner.clone();
        let origin = &inner.server;
        let none: &[String] = &[];
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut add = |channel: String, excluded: &[String], groups: Option<&[String]>| {
            out.push((channel, encode_message(excluded, &message, origin, groups)));
        };
        match target {
            SendTarget::All => add(inner.channel(hub, "all"), none, None),
            SendTarget::AllExcept(excluded) => add(inner.channel(hub, "all"), excluded, None),
            SendTarget::Connection(id) => add(inner.channel(hub, &format!("connection:{id}")), none, None),
            SendTarget::Connections(ids) => {
                let mut seen = std::collections::HashSet::new();
                for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                    add(inner.channel(hub, &format!("connection:{id}")), none, None);
                }
            }
            SendTarget::Group(group) => add(inner.channel(hub, &format!("group:{group}")), none, None),
            SendTarget::Groups(groups) => add(inner.channel(hub, "all"), none, Some(groups)),
            SendTarget::GroupExcept(group, excluded) => {
                add(inner.channel(hub, &format!("group:{group}")), excluded, None)
            }
            SendTarget::User(user) => add(inner.channel(hub, &format!("user:{user}")), none, None),
            SendTarget::Users(users) => {
                let mut seen = std::collections::HashSet::new();
                for user in users.iter().filter(|u| seen.insert(u.as_str())) {
                    add(inner.channel(hub, &format!("user:{user}")), none, None);
                }
            }
        }
        Box::pin(async move {
            let mut result = Ok(());
            for (channel, payload) in out {
                if let Err(e) = inner.publish(&channel, payload).await {
                    result = Err(e);
                }
            }
            result
        })
    }

    fn change_remote_group(
        &self,
        hub: &str,
        connection_id: &str,
        group: &str,
        add: bool,
    ) -> BoxFuture<Result<(), BackplaneError>> {
        let inner = self.inner.clone();
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let channel = inner.channel(hub, "internal:groups");
        let payload = encode_group_command(id, &inner.server, add, group, connection_id);
        let connection = connection_id.to_string();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            inner.acks.lock().unwrap_or_else(|p| p.into_inner()).insert(id, tx);
            if let Err(e) = inner.publish(&channel, payload).await {
                inner.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                return Err(e);
            }
            match tokio::time::timeout(inner.options.group_ack_timeout, rx).await {
                Ok(Ok(outcome)) => outcome,
                _ => {
                    inner.acks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    Err(BackplaneError::UnknownConnection(connection))
                }
            }
        })
    }

    fn invoke_remote(
        &self,
        hub: &str,
        connection_id: &str,
        invocation_id: &str,
        message: EncodedMessage,
    ) -> BoxFuture<Result<CompletionResult, BackplaneError>> {
        let inner = self.inner.clone();
        let id = invocation_id.to_string();
        let channel = inner.channel(hub, &format!("connection:{connection_id}"));
        let reply_to = inner.channel_for_returns(&inner.server);
        let payload = encode_message_with(&[], &message, &inner.server, None, Some((&id, &reply_to)));
        let connection = connection_id.to_string();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            inner
                .returns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id.clone(), tx);
            // However this ends (answered, failed, timed out or cancelled by the caller), the
            // entry goes.
            let _awaited = AwaitedReturn {
                inner: inner.clone(),
                id,
            };
            match inner.publish_counted(&channel, payload).await {
                Err(e) => Err(e),
                Ok(0) => Err(BackplaneError::UnknownConnection(connection)),
                Ok(_) => rx
                    .await
                    .map_err(|_| BackplaneError::Unavailable("the backplane was dropped".into())),
            }
        })
    }

    fn connection_added(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<()> {
        let inner = self.inner.clone();
        let connection = (
            inner.channel(hub, &format!("connection:{connection_id}")),
            Route::Connection(hub.into(), connection_id.into()),
        );
        let user = user.map(|u| {
            (
                inner.channel(hub, &format!("user:{u}")),
                Route::User(hub.into(), u.into()),
            )
        });
        Box::pin(async move {
            let subscriptions = &inner.subscriptions;
            match user {
                // Both at once: neither waits for the other's answer.
                Some((channel, route)) => {
                    tokio::join!(
                        subscriptions.add(connection.0, connection.1),
                        subscriptions.add(channel, route)
                    );
                }
                None => subscriptions.add(connection.0, connection.1).await,
            }
        })
    }

    fn connection_removed(&self, hub: &str, connection_id: &str, user: Option<&str>) -> BoxFuture<()> {
        let inner = self.inner.clone();
        let connection = inner.channel(hub, &format!("connection:{connection_id}"));
        let user = user.map(|u| inner.channel(hub, &format!("user:{u}")));
        Box::pin(async move {
            let subscriptions = &inner.subscriptions;
            match user {
                Some(channel) => {
                    tokio::join!(subscriptions.remove(connection), subscriptions.remove(channel));
                }
                None => subscriptions.remove(connection).await,
            }
        })
    }

    fn group_added(&self, hub: &str, group: &str) -> BoxFuture<()> {
        let inner = self.inner.clone();
        let channel = inner.channel(hub, &format!("group:{group}"));
        let route = Route::Group(hub.into(), group.into());
        Box::pin(async move { inner.subscriptions.add(channel, route).await })
    }

    fn group_removed(&self, hub: &str, group: &str) -> BoxFuture<()> {
        let inner = self.inner.clone();
        let channel = inner.channel(hub, &format!("group:{group}"));
        Box::pin(async move { inner.subscriptions.remove(channel).await })
    }
}

// ---- payloads ----

fn write_strs(out: &mut Vec<u8>, items: &[String]) {
    let _ = rmp::encode::write_array_len(out, items.len() as u32);
    for item in items {
        let _ = rmp::encode::write_str(out, item);
    }
}

fn encode_message(excluded: &[String], message: &EncodedMessage, origin: &str, groups: Option<&[String]>) -> Vec<u8> {
    encode_message_with(excluded, message, origin, groups, None)
}

fn encode_message_with(
    excluded: &[String],
    message: &EncodedMessage,
    origin: &str,
    groups: Option<&[String]>,
    reply: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.encodings.iter().map(|(_, b)| b.len()).sum::<usize>());
    let _ = rmp::encode::write_array_len(&mut out, 6);
    write_strs(&mut out, excluded);
    let _ = rmp::encode::write_map_len(&mut out, message.encodings.len() as u32);
    for (name, bytes) in &message.encodings {
        let _ = rmp::encode::write_str(&mut out, name);
        let _ = rmp::encode::write_bin(&mut out, bytes);
    }
    match reply {
        Some((invocation_id, return_channel)) => {
            let _ = rmp::encode::write_str(&mut out, invocation_id);
            let _ = rmp::encode::write_str(&mut out, return_channel);
        }
        None => {
            let _ = rmp::encode::write_nil(&mut out);
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    let _ = rmp::encode::write_str(&mut out, origin);
    match groups {
        Some(groups) => write_strs(&mut out, groups),
        None => {
            let _ = rmp::encode::write_nil(&mut out);
        }
    }
    out
}

struct Message {
    /// A client result's invocation id and the channel for the answer.
    reply: Option<(String, String)>,
    excluded: Vec<String>,
    encoded: EncodedMessage,
    origin: String,
    groups: Option<Vec<String>>,
}

fn strings(value: &rmpv::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn decode_message(payload: &[u8]) -> Option<Message> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    let excluded = strings(items.first()?)?;
    let encodings = items
        .get(1)?
        .as_map()?
        .iter()
        .map(|(k, v)| Some((k.as_str()?.to_string(), bytes::Bytes::copy_from_slice(v.as_slice()?))))
        .collect::<Option<Vec<_>>>()?;
    let origin = items.get(4).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let groups = items.get(5).and_then(strings);
    let reply = match (
        items.get(2).and_then(|v| v.as_str()),
        items.get(3).and_then(|v| v.as_str()),
    ) {
        (Some(id), Some(channel)) => Some((id.to_string(), channel.to_string())),
        _ => None,
    };
    Some(Message {
        reply,
        excluded,
        encoded: EncodedMessage { encodings },
        origin,
        groups,
    })
}

struct GroupCommand {
    id: u64,
    server: String,
    add: bool,
    group: String,
    connection: String,
}

fn encode_group_command(id: u64, server: &str, add: bool, group: &str, connection: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rmp::encode::write_array_len(&mut out, 5);
    let _ = rmp::encode::write_uint(&mut out, id);
    let _ = rmp::encode::write_str(&mut out, server);
    let _ = rmp::encode::write_uint(&mut out, if add { 1 } else { 2 });
    let _ = rmp::encode::write_str(&mut out, group);
    let _ = rmp::encode::write_str(&mut out, connection);
    out
}

fn decode_group_command(payload: &[u8]) -> Option<GroupCommand> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    Some(GroupCommand {
        id: items.first()?.as_u64()?,
        server: items.get(1)?.as_str()?.to_string(),
        add: items.get(2)?.as_u64()? == 1,
        group: items.get(3)?.as_str()?.to_string(),
        connection: items.get(4)?.as_str()?.to_string(),
    })
}

/// `[invocation id, protocol, 1 = error | 2 = void | 3 = value, error text | value bytes]`.
fn encode_return(invocation_id: &str, protocol: &str, result: &CompletionResult) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rmp::encode::write_array_len(&mut out, 4);
    let _ = rmp::encode::write_str(&mut out, invocation_id);
    let _ = rmp::encode::write_str(&mut out, protocol);
    match result {
        CompletionResult::Error(error) => {
            let _ = rmp::encode::write_uint(&mut out, 1);
            let _ = rmp::encode::write_str(&mut out, error);
        }
        CompletionResult::Void => {
            let _ = rmp::encode::write_uint(&mut out, 2);
            let _ = rmp::encode::write_nil(&mut out);
        }
        CompletionResult::Value(raw) => {
            let _ = rmp::encode::write_uint(&mut out, 3);
            let _ = rmp::encode::write_bin(&mut out, raw.as_bytes());
        }
    }
    out
}

fn decode_return(payload: &[u8]) -> Option<(String, CompletionResult)> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    let id = items.first()?.as_str()?.to_string();
    let protocol = items.get(1)?.as_str()?;
    let result = match items.get(2)?.as_u64()? {
        1 => CompletionResult::Error(items.get(3)?.as_str()?.to_string()),
        2 => CompletionResult::Void,
        3 => CompletionResult::Value(RawValue::from_protocol_bytes(protocol, items.get(3)?.as_slice()?).ok()?),
        _ => return None,
    };
    Some((id, result))
}

/// `[id]` when the group command was applied; `[id, 1, limit]` when the connection is in the
/// most groups allowed; `[id, 2, reason]` when it was refused for another reason.
fn encode_ack(id: u64, outcome: &Result<(), GroupError>) -> Vec<u8> {
    let mut out = Vec::new();
    match outcome {
        Ok(()) => {
            let _ = rmp::encode::write_array_len(&mut out, 1);
            let _ = rmp::encode::write_uint(&mut out, id);
        }
        Err(GroupError::LimitReached(limit)) => {
            let _ = rmp::encode::write_array_len(&mut out, 3);
            let _ = rmp::encode::write_uint(&mut out, id);
            let _ = rmp::encode::write_uint(&mut out, 1);
            let _ = rmp::encode::write_uint(&mut out, *limit as u64);
        }
        Err(other) => {
            let _ = rmp::encode::write_array_len(&mut out, 3);
            let _ = rmp::encode::write_uint(&mut out, id);
            let _ = rmp::encode::write_uint(&mut out, 2);
            let _ = rmp::encode::write_str(&mut out, &other.to_string());
        }
    }
    out
}

fn decode_ack(payload: &[u8]) -> Option<(u64, Result<(), BackplaneError>)> {
    let value = rmpv::decode::read_value(&mut &payload[..]).ok()?;
    let items = value.as_array()?;
    let id = items.first()?.as_u64()?;
    let outcome = match items.get(1).and_then(|v| v.as_u64()) {
        None => Ok(()),
        Some(1) => {
            let limit = items.get(2)?.as_u64()?;
            Err(BackplaneError::GroupLimitReached(
                usize::try_from(limit).unwrap_or(usize::MAX),
            ))
        }
        Some(_) => Err(BackplaneError::Refused(
            items.get(2).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        )),
    };
    Some((id, outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let message = EncodedMessage {
            encodings: vec![("json".into(), bytes::Bytes::from_static(b"{}\x1e"))],
        };
        let bytes = encode_message(&["a".into()], &message, "me", Some(&["g1".into(), "g2".into()]));
        let back = decode_message(&bytes).unwrap();
        assert_eq!(back.excluded, vec!["a".to_string()]);
        assert_eq!(back.origin, "me");
        assert_eq!(back.groups, Some(vec!["g1".to_string(), "g2".to_string()]));
        assert_eq!(back.encoded.encodings[0].1.as_ref(), b"{}\x1e");
        let command = decode_group_command(&encode_group_command(7, "s", false, "g", "c")).unwrap();
        assert_eq!(
            (
                command.id,
                command.add,
                command.group.as_str(),
                command.connection.as_str()
            ),
            (7, false, "g", "c")
        );
        assert_eq!(decode_ack(&encode_ack(9, &Ok(()))), Some((9, Ok(()))));
        assert_eq!(
            decode_ack(&encode_ack(9, &Err(GroupError::LimitReached(3)))),
            Some((9, Err(BackplaneError::GroupLimitReached(3))))
        );
        assert!(decode_message(b"\xc1").is_none());
    }
}
