//! The groups' histories in JetStream: creating the streams, reading a group's last message,
//! storing with compare-and-set, and reading a range back.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use async_nats::jetstream::Context;
use async_nats::jetstream::ErrorCode;
use bytes::Bytes;
use futures_util::StreamExt;

use super::super::{Durable, HistoryError, HistoryKey, HistoryLimits, Position};
use super::layout::{self, Layout, Stamp};

/// How many messages one pull asks for while reading a range.
const FETCH: usize = 500;

fn unavailable(e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Unavailable(e.to_string())
}

/// A group's last stored message.
struct Last {
    /// What it says of itself (`None`: not ours or malformed; a new epoch follows it).
    stamp: Option<Stamp>,
    /// Its stream sequence: what the next store expects.
    sequence: u64,
}

/// What storing a message came to.
enum Stored {
    /// Stored.
    Yes,
    /// Another message was stored on the group's subject since it was read.
    Conflict,
    /// The stream is gone (deleted while the store runs).
    NoStream,
}

/// The JetStream side of the store.
pub(super) struct Log {
    pub(super) context: Context,
    pub(super) client: async_nats::Client,
    pub(super) layout: Layout,
    pub(super) response_timeout: Duration,
    /// The streams known to exist, by name.
    pub(super) streams: Mutex<HashSet<String>>,
}

impl Log {
    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connected(&self) -> Result<(), HistoryError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            _ => Err(unavailable("not connected to NATS")),
        }
    }

    /// Creates the stream of `limits` unless this store did already.
    async fn ensure_stream(&self, limits: HistoryLimits) -> Result<(), HistoryError> {
        let name = self.layout.stream(limits);
        if self.known().contains(&name) {
            return Ok(());
        }
        self.connected()?;
        let config = self.layout.config(limits);
        let created = tokio::time::timeout(self.response_timeout, self.context.create_or_update_stream(config)).await;
        match created {
            Ok(Ok(_)) => {
                self.known().insert(name);
                Ok(())
            }
            Ok(Err(e)) => Err(unavailable(format!("cannot create the JetStream stream {name}: {e}"))),
            Err(_) => Err(unavailable("JetStream did not create a stream in time")),
        }
    }

    fn forget_stream(&self, limits: HistoryLimits) {
        self.known().remove(&self.layout.stream(limits));
    }

    /// The group's last stored message, if any.
    async fn last(&self, key: &HistoryKey, limits: HistoryLimits) -> Result<Option<Last>, HistoryError> {
        self.ensure_stream(limits).await?;
        self.connected()?;
        let stream = self
            .context
            .get_stream_no_info(self.layout.stream(limits))
            .await
            .map_err(unavailable)?;
        let subject = self.layout.subject(key, limits);
        let read = tokio::time::timeout(self.response_timeout, stream.get_last_raw_message_by_subject(&subject)).await;
        match read {
            Ok(Ok(message)) => Ok(Some(Last {
                stamp: layout::stamp(Some(&message.headers)),
                sequence: message.sequence,
            })),
            Ok(Err(e)) => match e.kind() {
                LastRawMessageErrorKind::NoMessageFound => Ok(None),
                LastRawMessageErrorKind::JetStream(error) if error.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                    // Deleted under us: the history is lost; a new stream holds the next epoch.
                    self.forget_stream(limits);
                    self.ensure_stream(limits).await?;
                    Ok(None)
                }
                _ => Err(unavailable(e)),
            },
            Err(_) => Err(unavailable("JetStream did not answer in time")),
        }
    }

    /// Stores `payload` stamped `stamp` if the group's last message is still `expected` (its
    /// sequence, 0 for none). The stream republishes it to the group's watchers once stored.
    async fn store(
        &self,
        key: &HistoryKey,
        limits: HistoryLimits,
        stamp: &Stamp,
        expected: u64,
        payload: Bytes,
    ) -> Result<Stored, HistoryError> {
        self.connected()?;
        let subject = self.layout.subject(key, limits);
        let headers = layout::headers(stamp, expected);
        let ack = async {
            self.context
                .publish_with_headers(subject, headers, payload)
                .await?
                .await
        };
        match tokio::time::timeout(self.response_timeout, ack).await {
            Ok(Ok(_)) => Ok(Stored::Yes),
            Ok(Err(e)) => match e.kind() {
                PublishErrorKind::WrongLastSequence => Ok(Stored::Conflict),
                PublishErrorKind::StreamNotFound => Ok(Stored::NoStream),
                _ => Err(unavailable(e)),
            },
            Err(_) => Err(unavailable("JetStream did not acknowledge in time")),
        }
    }

    /// Appends: reads the group's last message, stores the next offset after it, and reads
    /// again when another server stored first, until it is stored or the time is up.
    pub(super) async fn append(
        &self,
        key: &HistoryKey,
        limits: HistoryLimits,
        payload: Bytes,
    ) -> Result<Position, HistoryError> {
        self.retrying(key, limits, |last| {
            let stamp = match last {
                Some(Last {
                    stamp: Some(stamp),
                    sequence,
                }) => (
                    Stamp {
                        epoch: stamp.epoch.clone(),
                        offset: stamp.offset + 1,
                    },
                    *sequence,
                ),
                Some(Last { stamp: None, sequence }) => (first(), *sequence),
                None => (first(), 0),
            };
            Some((stamp, payload.clone()))
        })
        .await
    }

    /// The group's current position; a group without history gets a new epoch, stored as a
    /// marker (offset 0, no payload) so that every server sees the same one.
    pub(super) async fn position(&self, key: &HistoryKey, limits: HistoryLimits) -> Result<Position, HistoryError> {
        let marker = |sequence| {
            let stamp = Stamp {
                epoch: super::super::new_epoch(),
                offset: 0,
            };
            Some(((stamp, sequence), Bytes::new()))
        };
        self.retrying(key, limits, |last| match last {
            Some(Last { stamp: Some(_), .. }) => None,
            Some(Last { stamp: None, sequence }) => marker(*sequence),
            None => marker(0),
        })
        .await
    }

    /// Reads the group's last message and asks `next` what to store after it (nothing: the
    /// position is the last message's); stores it with compare-and-set, again on conflicts.
    async fn retrying(
        &self,
        key: &HistoryKey,
        limits: HistoryLimits,
        next: impl Fn(&Option<Last>) -> Option<((Stamp, u64), Bytes)>,
    ) -> Result<Position, HistoryError> {
        let deadline = tokio::time::Instant::now() + self.response_timeout;
        let mut conflicts: u64 = 0;
        loop {
            let last = self.last(key, limits).await?;
            let Some(((stamp, expected), payload)) = next(&last) else {
                let stamp = last
                    .and_then(|last| last.stamp)
                    .ok_or_else(|| unavailable("no position"))?;
                return Ok(Position::new(stamp.epoch, stamp.offset));
            };
            match self.store(key, limits, &stamp, expected, payload).await? {
                Stored::Yes => return Ok(Position::new(stamp.epoch, stamp.offset)),
                Stored::NoStream => {
                    self.forget_stream(limits);
                    self.ensure_stream(limits).await?;
                }
                Stored::Conflict => {
                    conflicts += 1;
                    // Spread the retries of servers that keep colliding.
                    let most = conflicts.min(8);
                    let wait = rand::random::<u64>() % (most * 500) + 1;
                    tokio::time::sleep(Duration::from_micros(wait)).await;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(unavailable("too many servers appending to the group at once"));
            }
        }
    }

    /// The group's messages of `epoch` with offsets in `after + 1 ..= upto`, oldest first (those
    /// still stored): read through a short-lived consumer of the group's subject.
    pub(super) async fn read(
        &self,
        key: &HistoryKey,
        limits: HistoryLimits,
        epoch: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<Durable>, HistoryError> {
        if upto <= after {
            return Ok(Vec::new());
        }
        self.connected()?;
        let stream = self
            .context
            .get_stream_no_info(self.layout.stream(limits))
            .await
            .map_err(unavailable)?;
        let config = pull::Config {
            filter_subject: self.layout.subject(key, limits),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            memory_storage: true,
            ..Default::default()
        };
        let created = tokio::time::timeout(self.response_timeout, stream.create_consumer(config)).await;
        let consumer = match created {
            Ok(Ok(consumer)) => consumer,
            Ok(Err(e)) => return Err(unavailable(e)),
            Err(_) => return Err(unavailable("JetStream did not create a consumer in time")),
        };
        let name = consumer.cached_info().name.clone();
        let read = tokio::time::timeout(self.response_timeout, collect(&consumer, epoch, after, upto)).await;
        // Not awaited: the consumer also goes by itself once inactive.
        let context = self.context.clone();
        let stream_name = self.layout.stream(limits);
        tokio::spawn(async move {
            if let Ok(stream) = context.get_stream_no_info(stream_name).await {
                let _ = stream.delete_consumer(&name).await;
            }
        });
        match read {
            Ok(result) => result,
            Err(_) => Err(unavailable("JetStream did not deliver the history in time")),
        }
    }
}

/// The first stamp of a new epoch.
fn first() -> Stamp {
    Stamp {
        epoch: super::super::new_epoch(),
        offset: 1,
    }
}

/// Pulls until the consumer has nothing more or `upto` was read.
async fn collect(
    consumer: &async_nats::jetstream::consumer::PullConsumer,
    epoch: &str,
    after: i64,
    upto: i64,
) -> Result<Vec<Durable>, HistoryError> {
    let mut found = Vec::new();
    loop {
        let mut batch = consumer
            .fetch()
            .max_messages(FETCH)
            .messages()
            .await
            .map_err(unavailable)?;
        let mut pulled = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(unavailable)?;
            pulled += 1;
            let Some(durable) = layout::durable(message.headers.as_ref(), &message.payload) else {
                continue;
            };
            let offset = durable.position.offset;
            if durable.position.epoch == epoch && offset > after && offset <= upto {
                found.push(durable);
            }
            if durable_done(&found, upto) {
                return Ok(found);
            }
        }
        if pulled == 0 {
            return Ok(found);
        }
    }
}

fn durable_done(found: &[Durable], upto: i64) -> bool {
    found.last().is_some_and(|d| d.position.offset >= upto)
}
