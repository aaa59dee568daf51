//! The PostgreSQL history store's listening session: LISTENing on the channel of every group
//! watched on this server, reading each notified message's row and handing it to the local
//! watchers, checked every keepalive period and reconnected with backoff (then every watcher is
//! told of a possible gap).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{AsyncMessage, Client, Notification, Statement};
use tokio_util::sync::CancellationToken;

use super::super::fanout::{Fanout, LiveEvent};
use super::super::{Durable, HistoryError, HistoryKey, Position};
use crate::backplane::postgres::channels::{quote_identifier, stable_hash};
use crate::backplane::postgres::connect::{describe, Connection, Connector};

/// The channel a group's positions are notified on: `{prefix}hub_h_{hash}` (at most 61 bytes
/// for the longest prefix allowed, so PostgreSQL never truncates it).
pub(super) fn channel(prefix: &str, key: &HistoryKey) -> String {
    format!(
        "{prefix}hub_h_{:016x}",
        stable_hash(&format!("{}|{}", key.hub, key.group))
    )
}

struct State {
    /// The live session's client, if connected.
    client: Option<Arc<Client>>,
    /// The channels LISTENed on by the live session.
    listened: HashSet<String>,
    /// The groups watched here, by channel (two groups may share one).
    by_channel: HashMap<String, HashSet<HistoryKey>>,
}

/// Which channels the listening session listens on. One lock orders LISTEN and UNLISTEN, so a
/// channel's last decision matches its watchers.
pub(super) struct Listening {
    prefix: String,
    response_timeout: Duration,
    state: tokio::sync::Mutex<State>,
}

impl Listening {
    pub(super) fn new(prefix: String, response_timeout: Duration) -> Self {
        Listening {
            prefix,
            response_timeout,
            state: tokio::sync::Mutex::new(State {
                client: None,
                listened: HashSet::new(),
                by_channel: HashMap::new(),
            }),
        }
    }

    /// LISTENs on the group's channel unless the session does; returns once it took effect.
    pub(super) async fn ensure(&self, key: &HistoryKey) -> Result<(), HistoryError> {
        let channel = channel(&self.prefix, key);
        let mut state = self.state.lock().await;
        state.by_channel.entry(channel.clone()).or_default().insert(key.clone());
        if state.listened.contains(&channel) {
            return Ok(());
        }
        let client = state
            .client
            .clone()
            .ok_or_else(|| HistoryError::Unavailable("not connected to PostgreSQL".into()))?;
        let sql = format!("LISTEN {}", quote_identifier(&channel));
        match tokio::time::timeout(self.response_timeout, client.batch_execute(&sql)).await {
            Ok(Ok(())) => {
                state.listened.insert(channel);
                Ok(())
            }
            Ok(Err(e)) => Err(HistoryError::Unavailable(describe(&e))),
            Err(_) => Err(HistoryError::Unavailable(
                "PostgreSQL did not answer a LISTEN in time".into(),
            )),
        }
    }

    /// UNLISTENs the group's channel if nobody here watches a group on it any more.
    async fn release(&self, fanout: &Fanout, key: &HistoryKey) {
        let channel = channel(&self.prefix, key);
        let mut state = self.state.lock().await;
        let Some(keys) = state.by_channel.get_mut(&channel) else {
            return;
        };
        keys.retain(|k| fanout.is_watched(k));
        if !keys.is_empty() {
            return;
        }
        state.by_channel.remove(&channel);
        if !state.listened.remove(&channel) {
            return;
        }
        if let Some(client) = state.client.clone() {
            let sql = format!("UNLISTEN {}", quote_identifier(&channel));
            let answer = tokio::time::timeout(self.response_timeout, client.batch_execute(&sql)).await;
            if !matches!(answer, Ok(Ok(()))) {
                tracing::debug!(%channel, "history UNLISTEN failed; the channel is ignored");
            }
        }
    }

    /// The channels the live session LISTENs on (none while disconnected), sorted.
    pub(super) async fn listened(&self) -> Vec<String> {
        let mut channels: Vec<String> = self.state.lock().await.listened.iter().cloned().collect();
        channels.sort();
        channels
    }

    /// The groups watched here on `channel`.
    async fn keys_of(&self, channel: &str) -> Vec<HistoryKey> {
        let state = self.state.lock().await;
        state
            .by_channel
            .get(channel)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// What the listening task needs.
pub(super) struct Listener {
    pub(super) connector: Arc<Connector>,
    /// Reads one message: `$1` hub, `$2` group, `$3` offset, `$4` epoch.
    pub(super) fetch_sql: String,
    pub(super) connect_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) keepalive: Duration,
    pub(super) fanout: Arc<Fanout>,
    pub(super) listening: Arc<Listening>,
}

/// Polls the connection, queueing its notifications, until it ends.
async fn drive(connection: Connection, tx: mpsc::UnboundedSender<Notification>) {
    let mut connection = connection;
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(notification)) => {
                if tx.send(notification).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %describe(&e), "postgres history listening connection ended");
                return;
            }
        }
    }
}

/// Connects, prepares the fetch and LISTENs on every wanted channel.
async fn open(
    listener: &Listener,
) -> Result<
    (
        Arc<Client>,
        Statement,
        mpsc::UnboundedReceiver<Notification>,
        tokio::task::JoinHandle<()>,
    ),
    String,
> {
    let (client, connection) = listener.connector.connect("hub history listener").await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive(connection, tx));
    let client = Arc::new(client);
    let timeout = listener.response_timeout;
    let fetch = match tokio::time::timeout(timeout, client.prepare(&listener.fetch_sql)).await {
        Ok(Ok(statement)) => statement,
        Ok(Err(e)) => {
            driver.abort();
            return Err(describe(&e));
        }
        Err(_) => {
            driver.abort();
            return Err(format!("no answer within {timeout:?}"));
        }
    };
    let mut state = listener.listening.state.lock().await;
    let channels: Vec<String> = state.by_channel.keys().cloned().collect();
    let sql: String = channels
        .iter()
        .map(|c| format!("LISTEN {};", quote_identifier(c)))
        .collect();
    if !sql.is_empty() {
        match tokio::time::timeout(timeout.saturating_mul(2), client.batch_execute(&sql)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                driver.abort();
                return Err(format!("LISTEN failed: {}", describe(&e)));
            }
            Err(_) => {
                driver.abort();
                return Err("LISTEN took too long".into());
            }
        }
    }
    state.listened = channels.into_iter().collect();
    state.client = Some(client.clone());
    Ok((client, fetch, rx, driver))
}

/// Keeps the listening session until `stop`.
pub(super) async fn run(
    listener: Listener,
    mut idle: mpsc::UnboundedReceiver<HistoryKey>,
    stop: CancellationToken,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        if ready.as_ref().is_some_and(|r| r.is_closed()) {
            return;
        }
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            opened = tokio::time::timeout(listener.connect_timeout.saturating_add(listener.response_timeout * 3), open(&listener)) => opened,
        };
        match opened {
            Ok(Ok((client, fetch, mut notifications, driver))) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                } else {
                    tracing::info!("postgres history listening again");
                }
                // Whatever was appended while we were away is read from history.
                listener.fanout.gap_all();
                backoff = Duration::from_millis(100);
                let mut health = tokio::time::interval(listener.keepalive.max(Duration::from_millis(10)));
                health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                health.tick().await;
                loop {
                    tokio::select! {
                        () = stop.cancelled() => {
                            driver.abort();
                            return;
                        }
                        Some(key) = idle.recv() => {
                            let (listening, fanout) = (listener.listening.clone(), listener.fanout.clone());
                            tokio::spawn(async move { listening.release(&fanout, &key).await });
                        }
                        notification = notifications.recv() => match notification {
                            Some(n) => deliver(&listener, &client, &fetch, n.channel(), n.payload()).await,
                            None => break,
                        },
                        _ = health.tick() => {
                            let answered = tokio::time::timeout(listener.response_timeout, client.simple_query("")).await;
                            if !matches!(answered, Ok(Ok(_))) {
                                break;
                            }
                        }
                    }
                }
                driver.abort();
                let mut state = listener.listening.state.lock().await;
                state.client = None;
                state.listened.clear();
                tracing::warn!("postgres history listening connection lost; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "postgres history cannot listen; retrying"),
            Err(_) => tracing::warn!("postgres history cannot listen (timed out); retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Reads the notified message (`epoch:offset`) for each group watched on the channel and hands
/// it over; a message no longer there (trimmed already, or the group is another one sharing
/// the channel) is a gap: the watchers read history.
async fn deliver(listener: &Listener, client: &Client, fetch: &Statement, channel: &str, payload: &str) {
    let Some((epoch, offset)) = payload.rsplit_once(':') else {
        tracing::debug!(%channel, "an unexpected history notification");
        return;
    };
    let Ok(offset) = offset.parse::<i64>() else {
        tracing::debug!(%channel, "an unexpected history notification");
        return;
    };
    for key in listener.listening.keys_of(channel).await {
        let hub: &str = &key.hub;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&hub, &key.group, &offset, &epoch];
        let read = client.query_opt(fetch, &params);
        let event = match tokio::time::timeout(listener.response_timeout, read).await {
            Ok(Ok(Some(row))) => match row.try_get::<_, String>(0) {
                Ok(text) => LiveEvent::Message(Durable {
                    position: Position::new(epoch, offset),
                    payload: text.into(),
                }),
                Err(_) => LiveEvent::Gap,
            },
            _ => LiveEvent::Gap,
        };
        listener.fanout.send(&key, event);
    }
}
