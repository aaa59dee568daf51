//! The Redis history store's subscription connection: subscribed to the channel of every group
//! watched on this server, handing what arrives to the local watchers, and reconnected with
//! backoff (then every watcher is told of a possible gap). A connection that stops answering
//! PING is given up like one that closed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::super::fanout::{Fanout, LiveEvent};
use super::super::{Durable, HistoryError, HistoryKey, Position};
use super::{base_name, three_parts};

struct State {
    /// The live connection's command half, if connected.
    sink: Option<PubSubSink>,
    /// The channels subscribed on it.
    subscribed: HashSet<String>,
}

/// Which channels the subscription connection listens on. One lock orders the SUBSCRIBE and
/// UNSUBSCRIBE commands, so a group's last decision matches its watchers.
pub(super) struct Subscriptions {
    prefix: String,
    response_timeout: Duration,
    state: tokio::sync::Mutex<State>,
}

impl Subscriptions {
    pub(super) fn new(prefix: String, response_timeout: Duration) -> Self {
        Subscriptions {
            prefix,
            response_timeout,
            state: tokio::sync::Mutex::new(State {
                sink: None,
                subscribed: HashSet::new(),
            }),
        }
    }

    /// Subscribes the group's channel unless it is; returns once Redis confirmed it.
    pub(super) async fn ensure(&self, key: &HistoryKey) -> Result<(), HistoryError> {
        let channel = base_name(&self.prefix, key);
        let mut state = self.state.lock().await;
        if state.subscribed.contains(&channel) {
            return Ok(());
        }
        let mut sink = state
            .sink
            .clone()
            .ok_or_else(|| HistoryError::Unavailable("not connected to Redis".into()))?;
        match tokio::time::timeout(self.response_timeout, sink.subscribe(&channel)).await {
            Ok(Ok(())) => {
                state.subscribed.insert(channel);
                Ok(())
            }
            Ok(Err(e)) => Err(HistoryError::Unavailable(e.to_string())),
            Err(_) => Err(HistoryError::Unavailable(
                "Redis did not confirm a SUBSCRIBE in time".into(),
            )),
        }
    }

    /// Unsubscribes the group's channel if nobody here watches the group any more.
    async fn release(&self, fanout: &Fanout, key: &HistoryKey) {
        let channel = base_name(&self.prefix, key);
        let mut state = self.state.lock().await;
        if fanout.is_watched(key) || !state.subscribed.remove(&channel) {
            return;
        }
        if let Some(mut sink) = state.sink.clone() {
            let answer = tokio::time::timeout(self.response_timeout, sink.unsubscribe(&channel)).await;
            if !matches!(answer, Ok(Ok(()))) {
                tracing::debug!(%channel, "history UNSUBSCRIBE failed; the channel is ignored");
            }
        }
    }

    /// The group a channel is for, if it is one of ours.
    fn key_of(&self, channel: &str) -> Option<HistoryKey> {
        let rest = channel.strip_prefix(self.prefix.as_str())?.strip_prefix("history:")?;
        let (hub, group) = rest.split_once('|')?;
        Some(HistoryKey {
            hub: hub.into(),
            group: group.to_string(),
        })
    }
}

/// `epoch:offset:payload` from the channel.
fn parse(payload: &[u8]) -> Option<Durable> {
    let text = std::str::from_utf8(payload).ok()?;
    let (epoch, offset, message) = three_parts(text)?;
    Some(Durable {
        position: Position::new(epoch, offset.parse().ok()?),
        payload: message.into(),
    })
}

/// How the subscription connection is kept.
pub(super) struct Timing {
    /// How long connecting may take.
    pub(super) connect: Duration,
    /// How often the connection is PINGed.
    pub(super) keepalive: Duration,
}

/// Keeps the subscription connection until `stop`.
pub(super) async fn run(
    client: redis::Client,
    timing: Timing,
    fanout: Arc<Fanout>,
    subscriptions: Arc<Subscriptions>,
    mut idle: mpsc::UnboundedReceiver<HistoryKey>,
    stop: CancellationToken,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        let connecting = tokio::select! {
            () = stop.cancelled() => return,
            c = tokio::time::timeout(timing.connect, client.get_async_pubsub()) => c,
        };
        match connecting {
            Ok(Ok(pubsub)) => {
                let (sink, mut stream) = pubsub.split();
                {
                    let mut state = subscriptions.state.lock().await;
                    state.subscribed.clear();
                    state.sink = Some(sink.clone());
                    for key in fanout.keys() {
                        let channel = base_name(&subscriptions.prefix, &key);
                        let mut sink = sink.clone();
                        let answer =
                            tokio::time::timeout(subscriptions.response_timeout, sink.subscribe(&channel)).await;
                        if matches!(answer, Ok(Ok(()))) {
                            state.subscribed.insert(channel);
                        }
                    }
                }
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                } else {
                    tracing::info!("redis history subscription reconnected");
                }
                // Whatever was published while we were away is read from history.
                fanout.gap_all();
                backoff = Duration::from_millis(100);
                let listening = Listening {
                    fanout: &fanout,
                    subscriptions: &subscriptions,
                    idle: &mut idle,
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = listening.deliver(&mut stream) => {}
                    () = answers_ping(sink, timing.keepalive, subscriptions.response_timeout) => {}
                }
                let mut state = subscriptions.state.lock().await;
                state.sink = None;
                state.subscribed.clear();
                tracing::warn!("redis history subscription lost; reconnecting");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "redis history cannot connect; retrying"),
            Err(_) => tracing::warn!("redis history cannot connect (timed out); retrying"),
        }
        if ready.as_ref().is_some_and(|r| r.is_closed()) {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// What the subscription connection's messages go to.
struct Listening<'a> {
    fanout: &'a Arc<Fanout>,
    subscriptions: &'a Arc<Subscriptions>,
    idle: &'a mut mpsc::UnboundedReceiver<HistoryKey>,
}

impl Listening<'_> {
    /// Hands what arrives to the local watchers, and lets go of groups nobody watches, until
    /// the connection ends.
    async fn deliver(self, stream: &mut PubSubStream) {
        loop {
            tokio::select! {
                Some(key) = self.idle.recv() => {
                    let (subscriptions, fanout) = (self.subscriptions.clone(), self.fanout.clone());
                    tokio::spawn(async move { subscriptions.release(&fanout, &key).await });
                }
                message = stream.next() => {
                    let Some(message) = message else { return };
                    let key = self.subscriptions.key_of(message.get_channel_name());
                    match (key, parse(message.get_payload_bytes())) {
                        (Some(key), Some(durable)) => self.fanout.send(&key, LiveEvent::Message(durable)),
                        _ => tracing::debug!(channel = message.get_channel_name(), "an unexpected history message"),
                    }
                }
            }
        }
    }
}

/// Returns once a PING, sent every `keepalive`, goes unanswered for `response_timeout`.
async fn answers_ping(mut sink: PubSubSink, keepalive: Duration, response_timeout: Duration) {
    loop {
        tokio::time::sleep(keepalive).await;
        let ping = tokio::time::timeout(response_timeout, sink.ping::<redis::Value>()).await;
        if !matches!(ping, Ok(Ok(_))) {
            tracing::warn!("redis history subscription does not answer PING; reconnecting");
            return;
        }
    }
}
