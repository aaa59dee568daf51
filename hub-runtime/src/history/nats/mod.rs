//! The NATS store: histories kept in JetStream streams, so that they outlive any one server,
//! and live delivery through the messages the streams republish once stored.
//!
//! Names (`{prefix}` is [`NatsOptions::prefix`], `{limits}` is `{max_len}_{ttl in ms}`, hub and
//! group names encoded as subject tokens as on the backplane):
//!
//! | stream or subject | holds |
//! |---|---|
//! | stream `{prefix}_history_{limits}` | every group with these limits, on disk: at most `max_len` messages per subject (`max_msgs_per_subject`), none older than the TTL (`max_age`) |
//! | `{prefix}._history.{limits}.{hub}.{group}` | a group's messages, each with the headers `Hub-Epoch` and `Hub-Offset` |
//! | `{prefix}._history_live.{hub}.{group}` | each message the stream stored, republished by it (JetStream `republish`) |
//!
//! JetStream numbers a stream's messages, not a group's, so a group's offsets are derived: an
//! append reads the group's last message (its epoch, its offset, its stream sequence) and
//! publishes the next offset with `Nats-Expected-Last-Subject-Sequence` set to that sequence.
//! JetStream stores it only if no other message reached the subject meanwhile; a server that
//! lost the race reads again and retries. So offsets count from 1 without gaps or repeats,
//! whichever servers publish. One stream per set of limits (rather than one per group) keeps
//! the number of streams small while JetStream itself enforces each group's length and age.
//!
//! The epoch travels in every message. A group with no stored message (nothing published for
//! the TTL, or the stream deleted or its storage lost) starts a new one: the first append
//! after it, or a reader asking for the group's position (it stores a marker: offset 0, no
//! payload), stores a fresh epoch with the expectation "no message", which one server wins.
//!
//! Stored messages reach watchers only through the stream's republish, which happens after
//! storing and in the stream's order, so no watcher sees a message that is not in history or
//! one out of order. The store subscribes a group's live subject while the group has watchers
//! on this server; after the client reconnects every watcher is told of a possible gap and
//! reads what it missed from history.
//!
//! Ranges (a resume, the last N) are read through a short-lived consumer of the group's
//! subject. Needs nats-server 2.9 or newer with JetStream enabled (`-js`).

mod layout;
mod live;
mod log;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::layout::Layout;
use self::live::Live;
use self::log::Log;
use super::fanout::{Fanout, Watch};
use super::{HistoryError, HistoryKey, HistoryLimits, HistoryStore, Latest, Since};
use crate::backplane::nats::{connect_client, connect_options, hostname, subjects};
use crate::backplane::NatsOptions;

/// Options of [`NatsHistory`].
#[derive(Debug, Clone, Default)]
pub struct NatsHistoryOptions {
    /// Connecting as the backplane does: the subject prefix, timeouts (a JetStream request
    /// waits at most `response_timeout`), credentials and TLS.
    pub connection: NatsOptions,
}

struct Shared {
    log: Log,
    live: Arc<Live>,
    stop: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Group histories in NATS JetStream, shared by every server connected to it (see the module
/// documentation for the layout).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hub_runtime::history::NatsHistory;
/// use hub_runtime::HubServer;
/// let history = NatsHistory::connect("nats://127.0.0.1:4222").await?;
/// let server = HubServer::builder().history(history) /* .hub_with(...) */ .build();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NatsHistory {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for NatsHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsHistory")
            .field("prefix", &self.shared.log.layout.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Unavailable(e.to_string())
}

impl NatsHistory {
    /// Connects with default options.
    pub async fn connect(url: &str) -> Result<Self, HistoryError> {
        NatsHistory::connect_with(url, NatsHistoryOptions::default()).await
    }

    /// Connects to NATS at `url` (as [`NatsBackplane::connect`](crate::backplane::NatsBackplane::connect)
    /// takes it). Streams are created when a group of their limits is first used.
    pub async fn connect_with(url: &str, options: NatsHistoryOptions) -> Result<Self, HistoryError> {
        let connection = options.connection;
        if !subjects::valid_prefix(&connection.prefix) {
            return Err(unavailable(format!(
                "invalid NATS subject prefix {:?}",
                connection.prefix
            )));
        }
        let (reports_tx, reports_rx) = mpsc::unbounded_channel();
        let name = format!("hub history {}_{}", hostname(), crate::connection::random_id());
        let client = connect_options(&connection, name)
            .await
            .map_err(unavailable)?
            .event_callback(live::reporter(reports_tx));
        let client = connect_client(url, client, connection.connect_timeout)
            .await
            .map_err(unavailable)?;
        let context = async_nats::jetstream::ContextBuilder::new()
            .timeout(connection.response_timeout)
            .build(client.clone());
        let layout = Layout {
            prefix: connection.prefix.clone(),
        };
        let (idle_tx, idle_rx) = mpsc::unbounded_channel();
        let fanout = Arc::new(Fanout::with_on_idle(move |key: &HistoryKey| {
            let _ = idle_tx.send(key.clone());
        }));
        let live = Arc::new(Live::new(
            client.clone(),
            layout.clone(),
            connection.response_timeout,
            fanout,
        ));
        let stop = CancellationToken::new();
        tokio::spawn(live::run(live.clone(), idle_rx, reports_rx, stop.clone()));
        Ok(NatsHistory {
            shared: Arc::new(Shared {
                log: Log {
                    context,
                    client,
                    layout,
                    response_timeout: connection.response_timeout,
                    streams: Mutex::new(HashSet::new()),
                },
                live,
                stop,
            }),
        })
    }

    /// The live subjects subscribed now: one per group watched on this server, sorted.
    pub async fn live_subjects(&self) -> Vec<String> {
        self.shared.live.subjects().await
    }
}

impl HistoryStore for NatsHistory {
    fn append<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        payload: Arc<str>,
    ) -> BoxFuture<'a, Result<super::Position, HistoryError>> {
        Box::pin(async move {
            let payload = Bytes::copy_from_slice(payload.as_bytes());
            self.shared.log.append(key, limits, payload).await
        })
    }

    fn since<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        from: Option<&'a super::Position>,
    ) -> BoxFuture<'a, Result<Since, HistoryError>> {
        Box::pin(async move {
            let position = self.shared.log.position(key, limits).await?;
            let not_recovered = |position| Since {
                recovered: false,
                position,
                messages: Vec::new(),
            };
            let Some(from) = from else {
                return Ok(Since {
                    recovered: true,
                    position,
                    messages: Vec::new(),
                });
            };
            if from.epoch != position.epoch || from.offset < 0 || from.offset > position.offset {
                return Ok(not_recovered(position));
            }
            let missed = position.offset - from.offset;
            if missed > i64::try_from(limits.max_len).unwrap_or(i64::MAX) {
                return Ok(not_recovered(position));
            }
            let messages = self
                .shared
                .log
                .read(key, limits, &position.epoch, from.offset, position.offset)
                .await?;
            let complete = messages.len() as i64 == missed
                && messages.first().is_none_or(|m| m.position.offset == from.offset + 1);
            if !complete {
                return Ok(not_recovered(position));
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
            let position = self.shared.log.position(key, limits).await?;
            let most = i64::try_from(count.min(limits.max_len)).unwrap_or(i64::MAX);
            let after = (position.offset - most).max(0);
            let messages = self
                .shared
                .log
                .read(key, limits, &position.epoch, after, position.offset)
                .await?;
            Ok(Latest { position, messages })
        })
    }

    fn watch<'a>(&'a self, key: &'a HistoryKey) -> BoxFuture<'a, Result<Watch, HistoryError>> {
        Box::pin(async move {
            let watch = self.shared.live.fanout.watch(key);
            self.shared.live.ensure(key).await?;
            Ok(watch)
        })
    }
}
