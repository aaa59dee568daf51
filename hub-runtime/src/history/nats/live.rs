//! Live delivery: a core NATS subscription on the live subject of every group watched on this
//! server (the stream republishes each message there once stored), held while the group has a
//! watcher here. After the client reconnects (it subscribes again by itself), or when it
//! dropped messages of a full subscription, every watcher is told of a possible gap and reads
//! what it missed from history.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Event, RequestErrorKind};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::super::fanout::{Fanout, LiveEvent};
use super::super::{HistoryError, HistoryKey};
use super::layout::{self, Layout};

/// The subscriptions of the watched groups.
pub(super) struct Live {
    pub(super) client: async_nats::Client,
    pub(super) layout: Layout,
    pub(super) response_timeout: Duration,
    pub(super) fanout: Arc<Fanout>,
    /// Each watched group's reader (aborting it drops the subscription: UNSUB).
    readers: tokio::sync::Mutex<HashMap<HistoryKey, JoinHandle<()>>>,
}

impl Live {
    pub(super) fn new(
        client: async_nats::Client,
        layout: Layout,
        response_timeout: Duration,
        fanout: Arc<Fanout>,
    ) -> Self {
        Live {
            client,
            layout,
            response_timeout,
            fanout,
            readers: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Subscribes the group's live subject unless it is; returns once the server has it.
    pub(super) async fn ensure(&self, key: &HistoryKey) -> Result<(), HistoryError> {
        let mut readers = self.readers.lock().await;
        if readers.get(key).is_some_and(|reader| !reader.is_finished()) {
            return Ok(());
        }
        if self.client.connection_state() != State::Connected {
            return Err(HistoryError::Unavailable("not connected to NATS".into()));
        }
        let subject = self.layout.live(key);
        let subscriber = match tokio::time::timeout(self.response_timeout, self.client.subscribe(subject)).await {
            Ok(Ok(subscriber)) => subscriber,
            Ok(Err(e)) => return Err(HistoryError::Unavailable(e.to_string())),
            Err(_) => {
                return Err(HistoryError::Unavailable(
                    "the NATS client took no subscription in time".into(),
                ))
            }
        };
        let (fanout, group) = (self.fanout.clone(), key.clone());
        readers.insert(
            key.clone(),
            tokio::spawn(async move {
                let mut subscriber = subscriber;
                while let Some(message) = subscriber.next().await {
                    let event = match layout::stamp(message.headers.as_ref()) {
                        // An epoch's start marker: no message.
                        Some(stamp) if stamp.offset == 0 => continue,
                        _ => match layout::durable(message.headers.as_ref(), &message.payload) {
                            Some(durable) => LiveEvent::Message(durable),
                            // Something we cannot read: the watchers read history instead.
                            None => LiveEvent::Gap,
                        },
                    };
                    fanout.send(&group, event);
                }
            }),
        );
        drop(readers);
        self.confirm().await
    }

    /// Unsubscribes the group if nobody here watches it any more.
    pub(super) async fn release(&self, key: &HistoryKey) {
        let mut readers = self.readers.lock().await;
        if self.fanout.is_watched(key) {
            return;
        }
        if let Some(reader) = readers.remove(key) {
            reader.abort();
        }
    }

    /// The live subjects subscribed now, sorted.
    pub(super) async fn subjects(&self) -> Vec<String> {
        let readers = self.readers.lock().await;
        let mut subjects: Vec<String> = readers.keys().map(|key| self.layout.live(key)).collect();
        subjects.sort();
        subjects
    }

    /// Waits until the server processed the subscriptions sent so far: it reads a connection's
    /// operations in order, so once it answered a request sent after them, the interest is in
    /// place. The request goes where nobody listens; "no responders" is the answer.
    async fn confirm(&self) -> Result<(), HistoryError> {
        let probe = async_nats::Request::new().timeout(Some(self.response_timeout));
        let answer = self.client.send_request(self.layout.confirm(), probe);
        match tokio::time::timeout(self.response_timeout, answer).await {
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
            Ok(Ok(_)) => Ok(()),
            _ => Err(HistoryError::Unavailable(
                "NATS did not confirm a subscription in time".into(),
            )),
        }
    }
}

/// What the client reports that matters here.
pub(super) enum Report {
    /// Connected again (not the first time): messages may have been missed.
    Reconnected,
    /// A subscription's queue was full and the client dropped messages.
    Dropped,
}

/// Turns the client's events into reports.
pub(super) fn reporter(reports: mpsc::UnboundedSender<Report>) -> impl Fn(Event) -> std::future::Ready<()> {
    let connected_once = std::sync::atomic::AtomicBool::new(false);
    move |event| {
        match event {
            Event::Connected => {
                if connected_once.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::info!("nats history reconnected; watchers read what they missed");
                    let _ = reports.send(Report::Reconnected);
                }
            }
            Event::Disconnected => tracing::warn!("nats history disconnected; reconnecting"),
            Event::SlowConsumer(_) => {
                let _ = reports.send(Report::Dropped);
            }
            Event::ServerError(error) => tracing::warn!(%error, "nats server reported an error"),
            _ => tracing::debug!(%event, "nats history client"),
        }
        std::future::ready(())
    }
}

/// Runs until `stop`: releases idle groups, and tells every watcher of a possible gap after a
/// reconnect (once the client's renewed subscriptions are confirmed) or dropped messages.
pub(super) async fn run(
    live: Arc<Live>,
    mut idle: mpsc::UnboundedReceiver<HistoryKey>,
    mut reports: mpsc::UnboundedReceiver<Report>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(key) = idle.recv() => {
                let live = live.clone();
                tokio::spawn(async move { live.release(&key).await });
            }
            Some(report) = reports.recv() => {
                if matches!(report, Report::Reconnected) {
                    let _ = live.confirm().await;
                }
                live.fanout.gap_all();
            }
        }
    }
    for (_, reader) in live.readers.lock().await.drain() {
        reader.abort();
    }
}
