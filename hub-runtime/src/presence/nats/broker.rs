//! The JetStream calls the store makes: read the last message of a subject, publish one on
//! condition that the subject's last message is still the one read (compare-and-set), purge
//! a subject, list the subjects of a stream, and read the last message of every subject that
//! matches a filter (a scan). Every wait is bounded by the response timeout.

use std::time::Duration;

use async_nats::jetstream::consumer::{push, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, StorageType};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use futures_util::StreamExt;

/// `future`, or an error after `limit`: no call waits on a silent NATS server for longer.
async fn bounded<T>(
    limit: Duration,
    what: &str,
    future: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, future).await {
        Ok(done) => done,
        Err(_) => Err(format!("{what}: NATS did not answer in time")),
    }
}

/// The last message of a subject.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) subject: String,
    /// Its stream sequence: what a compare-and-set expects.
    pub(super) sequence: u64,
    pub(super) payload: Bytes,
}

/// What a compare-and-set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cas {
    /// Written, at this stream sequence.
    Written(u64),
    /// Another write came first: read again.
    Conflict,
}

/// One JetStream stream of the store.
#[derive(Clone)]
pub(super) struct Broker {
    client: async_nats::Client,
    context: Context,
    stream: stream::Stream<()>,
    timeout: Duration,
}

impl Broker {
    /// Opens the stream `name` over `subjects` (`{subjects}.>`), creating it unless it exists;
    /// one message is kept per subject, and with `max_age` none older than it.
    pub(super) async fn open(
        client: async_nats::Client,
        timeout: Duration,
        name: &str,
        subjects: &str,
        max_age: Duration,
    ) -> Result<Broker, String> {
        let context = jetstream::ContextBuilder::new()
            .timeout(timeout)
            .ack_timeout(timeout)
            .build(client.clone());
        let wanted = format!("{subjects}.>");
        let config = stream::Config {
            name: name.to_string(),
            subjects: vec![wanted.clone()],
            max_messages_per_subject: 1,
            max_age,
            // On disk: presence outlives a restart of the NATS server.
            storage: StorageType::File,
            ..Default::default()
        };
        let opened = async {
            let opened = context.get_or_create_stream(config).await;
            opened.map_err(|e| format!("opening the JetStream stream {name}: {e}"))
        };
        let found = bounded(timeout * 2, name, opened).await?;
        let info = found.cached_info();
        if !info.config.subjects.contains(&wanted) {
            return Err(format!(
                "the JetStream stream {name} exists for other subjects ({:?}, not {wanted}): another prefix maps to the same stream name",
                info.config.subjects
            ));
        }
        let stream = context
            .get_stream_no_info(name)
            .await
            .map_err(|e| format!("opening the JetStream stream {name}: {e}"))?;
        Ok(Broker {
            client,
            context,
            stream,
            timeout,
        })
    }

    /// The last message of `subject`, if it has one.
    pub(super) async fn last(&self, subject: &str) -> Result<Option<Stored>, String> {
        let read = self.stream.get_last_raw_message_by_subject(subject);
        let read = bounded(self.timeout, subject, async { Ok(read.await) }).await?;
        match read {
            Ok(message) => Ok(Some(Stored {
                subject: subject.to_string(),
                sequence: message.sequence,
                payload: message.payload,
            })),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(format!("reading {subject}: {e}")),
        }
    }

    /// Publishes `payload` on `subject` if the subject's last message is still at `expected`
    /// (0: it has none).
    pub(super) async fn compare_and_set(&self, subject: &str, payload: Bytes, expected: u64) -> Result<Cas, String> {
        let message = PublishMessage::build()
            .payload(payload)
            .expected_last_subject_sequence(expected);
        let acked = async {
            let future = self.context.send_publish(subject.to_string(), message).await?;
            future.await
        };
        match bounded(self.timeout, subject, async { Ok(acked.await) }).await? {
            Ok(ack) => Ok(Cas::Written(ack.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(Cas::Conflict),
            Err(e) => Err(format!("writing {subject}: {e}")),
        }
    }

    /// Publishes `payload` on `subject` (replacing its last message).
    pub(super) async fn put(&self, subject: &str, payload: Bytes) -> Result<u64, String> {
        let acked = async {
            let future = self.context.publish(subject.to_string(), payload).await?;
            future.await
        };
        let acked = async { acked.await.map_err(|e| format!("writing {subject}: {e}")) };
        bounded(self.timeout, subject, acked).await.map(|ack| ack.sequence)
    }

    /// Removes the messages of `subject` (a filter may hold wildcards) up to and including
    /// sequence `through`, or all of them: later ones stay, so a write that came meanwhile
    /// survives. Unlike a KV delete, a purge leaves no marker behind.
    pub(super) async fn purge(&self, subject: &str, through: Option<u64>) -> Result<(), String> {
        let purge = self.stream.purge().filter(subject);
        let done = async {
            let done = match through {
                Some(sequence) => purge.sequence(sequence.saturating_add(1)).await,
                None => purge.await,
            };
            done.map(|_| ()).map_err(|e| format!("purging {subject}: {e}"))
        };
        bounded(self.timeout, subject, done).await
    }

    /// The subjects with a message that match `filter`.
    pub(super) async fn subjects(&self, filter: &str) -> Result<Vec<String>, String> {
        bounded(self.timeout * 2, filter, self.list(filter)).await
    }

    async fn list(&self, filter: &str) -> Result<Vec<String>, String> {
        let failed = |e: &dyn std::fmt::Display| format!("listing {filter}: {e}");
        let mut listed = self.stream.info_with_subjects(filter).await.map_err(|e| failed(&e))?;
        let mut subjects = Vec::new();
        while let Some(next) = tokio::time::timeout(self.timeout, listed.next())
            .await
            .map_err(|e| failed(&e))?
        {
            subjects.push(next.map_err(|e| failed(&e))?.0);
        }
        Ok(subjects)
    }

    /// The last message of every subject that matches `filter`, read through a short-lived
    /// push consumer (no acknowledgements, flow control so a long scan cannot flood this
    /// client, deleted at the end).
    pub(super) async fn scan(&self, filter: &str) -> Result<Vec<Stored>, String> {
        let failed = |e: &dyn std::fmt::Display| format!("scanning {filter}: {e}");
        let inbox = self.client.new_inbox();
        // Subscribed first: the consumer starts pushing as soon as it exists.
        let subscribed = async { self.client.subscribe(inbox.clone()).await.map_err(|e| failed(&e)) };
        let mut delivered = bounded(self.timeout, filter, subscribed).await?;
        let config = push::Config {
            deliver_subject: inbox,
            deliver_policy: DeliverPolicy::LastPerSubject,
            ack_policy: AckPolicy::None,
            filter_subject: filter.to_string(),
            // Gone by itself if this reader vanishes before deleting it.
            inactive_threshold: Duration::from_secs(30),
            memory_storage: true,
            // The server pauses until this reader answers its flow-control requests (which
            // need heartbeats on).
            flow_control: true,
            idle_heartbeat: Duration::from_secs(5),
            ..Default::default()
        };
        let created = async { self.stream.create_consumer(config).await.map_err(|e| failed(&e)) };
        let consumer = bounded(self.timeout, filter, created).await?;
        let name = consumer.cached_info().name.clone();
        let mut remaining = consumer.cached_info().num_pending;
        let mut found = Vec::new();
        let read = async {
            // Each stream message within the timeout of the one before (heartbeats aside).
            let mut deadline = tokio::time::Instant::now() + self.timeout;
            while remaining > 0 {
                let next = tokio::time::timeout_at(deadline, delivered.next()).await;
                let message = next
                    .map_err(|e| failed(&e))?
                    .ok_or_else(|| failed(&"the subscription ended"))?;
                if message.status.is_some() {
                    // A flow-control request (answered to the reply subject) or a heartbeat.
                    if let Some(reply) = message.reply {
                        let answered = self.client.publish(reply, Bytes::new()).await;
                        answered.map_err(|e| failed(&e))?;
                    }
                    continue;
                }
                let message = jetstream::Message {
                    message,
                    context: self.context.clone(),
                };
                let Ok(info) = message.info() else { continue };
                deadline = tokio::time::Instant::now() + self.timeout;
                let (sequence, pending) = (info.stream_sequence, info.pending);
                found.push(Stored {
                    subject: message.subject.to_string(),
                    sequence,
                    payload: message.payload.clone(),
                });
                remaining = pending;
            }
            Ok::<(), String>(())
        };
        let outcome = read.await;
        drop(delivered);
        // Best effort: the inactivity threshold removes it otherwise.
        let _ = tokio::time::timeout(self.timeout, self.stream.delete_consumer(&name)).await;
        outcome.map(|()| found)
    }
}
