//! Recovery and merge: the header, the missed messages from history, then the live ones, with
//! no gap and no duplicate at the seam. The same for every store: a store only answers
//! `watch` and `since`.
//!
//! The watch starts before history is read, so a message appended meanwhile is both in what
//! `since` returns and on the watch: it is skipped on the watch (its offset is not above the
//! last one sent). A live message past the next offset (the watch fell behind, the store's
//! subscription broke) or in another epoch sends us back to history for what is in between.

use std::collections::VecDeque;
use std::marker::PhantomData;

use futures_util::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::fanout::{LiveEvent, Watch};
use super::{Durable, HistoryError, HistoryKey, HistoryLimits, Position, SharedStore, Since};

/// The first item of a recovery stream, and the item sent when the group's epoch changes.
pub use hub_protocol::recovery::RecoveryHeader;

/// A message of a recovery stream: `{"Offset": n, "Message": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem<T> {
    /// Its offset in the current epoch.
    pub offset: i64,
    /// What was published.
    pub message: T,
}

/// One item of [`History::subscribe`](super::History::subscribe)'s stream. Serialized
/// untagged: a header or an item, as the interop contract has them.
///
/// ```
/// use hub_runtime::history::{HistoryEvent, HistoryItem, RecoveryHeader};
/// let header: HistoryEvent<String> =
///     HistoryEvent::Header(RecoveryHeader { recovered: true, epoch: "e".into(), offset: 0 });
/// assert_eq!(serde_json::to_string(&header).unwrap(), r#"{"Recovered":true,"Epoch":"e","Offset":0}"#);
/// let item = HistoryEvent::Item(HistoryItem { offset: 1, message: "hi".to_string() });
/// assert_eq!(serde_json::to_string(&item).unwrap(), r#"{"Offset":1,"Message":"hi"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
#[serde(untagged)]
pub enum HistoryEvent<T> {
    /// Where the stream stands, and whether it recovered.
    Header(RecoveryHeader),
    /// A message.
    Item(HistoryItem<T>),
}

type Event<T> = Result<HistoryEvent<T>, HistoryError>;

/// The state of one recovery stream.
struct Merge<T> {
    store: SharedStore,
    key: HistoryKey,
    limits: HistoryLimits,
    watch: Watch,
    /// The epoch of what was sent last.
    epoch: String,
    /// The offset of the last message sent (or the header's offset).
    last: i64,
    /// Decided but not yet yielded.
    pending: VecDeque<Event<T>>,
    /// An error was queued: the stream ends after it.
    failed: bool,
    item: PhantomData<fn() -> T>,
}

fn decode<T: DeserializeOwned>(durable: &Durable) -> Event<T> {
    serde_json::from_str(&durable.payload)
        .map(|message| {
            HistoryEvent::Item(HistoryItem {
                offset: durable.position.offset,
                message,
            })
        })
        .map_err(|e| HistoryError::Decode(e.to_string()))
}

/// The header announcing `since`.
fn header<T>(since: &Since) -> Event<T> {
    Ok(HistoryEvent::Header(RecoveryHeader {
        recovered: since.recovered,
        epoch: since.position.epoch.clone(),
        offset: since.position.offset,
    }))
}

/// Starts a recovery stream: watches first, then reads what was missed.
pub(super) async fn subscribe<T: DeserializeOwned + Send + 'static>(
    store: SharedStore,
    key: HistoryKey,
    limits: HistoryLimits,
    from: Option<Position>,
) -> Result<impl Stream<Item = Event<T>> + Send + 'static, HistoryError> {
    let watch = store.watch(&key).await?;
    let since = store.since(&key, limits, from.as_ref()).await?;
    // The recovered messages follow the asked position; otherwise the stream starts at the
    // current one.
    let last = match &from {
        Some(from) if since.recovered => from.offset,
        _ => since.position.offset,
    };
    let mut merge = Merge {
        store,
        key,
        limits,
        watch,
        epoch: since.position.epoch.clone(),
        last,
        pending: VecDeque::new(),
        failed: false,
        item: PhantomData,
    };
    merge.pending.push_back(header(&since));
    merge.queue(since.messages);
    Ok(futures_util::stream::unfold(merge, |mut merge| async move {
        merge.next().await.map(|event| (event, merge))
    }))
}

impl<T: DeserializeOwned> Merge<T> {
    /// Queues messages (in offset order) that follow what was sent.
    fn queue(&mut self, messages: Vec<Durable>) {
        for durable in messages {
            if durable.position.epoch == self.epoch && durable.position.offset > self.last {
                self.last = durable.position.offset;
                let event = decode(&durable);
                self.failed |= event.is_err();
                self.pending.push_back(event);
            }
        }
    }

    async fn next(&mut self) -> Option<Event<T>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.failed {
                return None;
            }
            match self.watch.next().await? {
                LiveEvent::Message(durable) => {
                    let same_epoch = durable.position.epoch == self.epoch;
                    if same_epoch && durable.position.offset <= self.last {
                        continue; // already sent (from history, or twice on the way)
                    }
                    if same_epoch && durable.position.offset == self.last + 1 {
                        self.queue(vec![durable]);
                    } else {
                        self.catch_up().await;
                    }
                }
                LiveEvent::Gap => self.catch_up().await,
            }
        }
    }

    /// Reads from history what follows the last message sent; when history no longer has it,
    /// starts over at the current position with a header that says so.
    async fn catch_up(&mut self) {
        let from = Position::new(self.epoch.clone(), self.last);
        let since = match self.store.since(&self.key, self.limits, Some(&from)).await {
            Ok(since) => since,
            Err(e) => return self.fail(e),
        };
        if since.recovered {
            return self.queue(since.messages);
        }
        // A new epoch is not stale: send it from its start when it is all kept.
        let mut restart = Since {
            recovered: false,
            messages: Vec::new(),
            ..since
        };
        if restart.position.epoch != self.epoch {
            let start = Position::new(restart.position.epoch.clone(), 0);
            let fresh = self.store.since(&self.key, self.limits, Some(&start)).await;
            match fresh {
                Ok(fresh) if fresh.recovered && fresh.position.epoch == start.epoch => {
                    restart.position = start;
                    restart.messages = fresh.messages;
                }
                Ok(fresh) => restart.position = fresh.position,
                Err(e) => return self.fail(e),
            }
        }
        self.epoch = restart.position.epoch.clone();
        self.last = restart.position.offset;
        self.pending.push_back(header(&restart));
        self.queue(restart.messages);
    }

    fn fail(&mut self, error: HistoryError) {
        self.failed = true;
        self.pending.push_back(Err(error));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;
    use crate::history::{HistoryStore, InMemoryHistory};

    fn key() -> HistoryKey {
        HistoryKey {
            hub: "Hub".into(),
            group: "durable-g".into(),
        }
    }

    fn limits(max_len: usize) -> HistoryLimits {
        HistoryLimits {
            max_len,
            ttl: Duration::from_secs(60),
        }
    }

    fn offset_of(event: &Event<String>) -> i64 {
        match event {
            Ok(HistoryEvent::Item(item)) => item.offset,
            other => panic!("an item, got {other:?}"),
        }
    }

    /// A subscriber that falls more than the watch's capacity behind is told of a gap and
    /// reads the missed messages from history: it still gets every message once, in order.
    #[tokio::test]
    async fn a_lagging_subscriber_catches_up_from_history() {
        let store = Arc::new(InMemoryHistory::new());
        let stream = subscribe::<String>(store.clone(), key(), limits(5000), None)
            .await
            .unwrap();
        futures_util::pin_mut!(stream);
        let Some(Ok(HistoryEvent::Header(header))) = stream.next().await else {
            panic!("a header first")
        };
        assert!(header.recovered);
        const N: i64 = 3000; // more than the watch holds
        for i in 1..=N {
            store
                .append(&key(), limits(5000), format!("\"m{i}\"").into())
                .await
                .unwrap();
        }
        for expected in 1..=N {
            let event = stream.next().await.expect("an event");
            assert_eq!(offset_of(&event), expected);
        }
    }

    /// When history no longer holds what a lagging subscriber missed, it gets a header with
    /// `recovered: false` at the current position, and the stream goes on live.
    #[tokio::test]
    async fn a_lagging_subscriber_past_history_gets_recovered_false() {
        let store = Arc::new(InMemoryHistory::new());
        let stream = subscribe::<String>(store.clone(), key(), limits(100), None)
            .await
            .unwrap();
        futures_util::pin_mut!(stream);
        assert!(matches!(stream.next().await, Some(Ok(HistoryEvent::Header(_)))));
        for i in 1..=2000 {
            store
                .append(&key(), limits(100), format!("\"m{i}\"").into())
                .await
                .unwrap();
        }
        // Whatever the watch still held arrives first; then the gap is found.
        let header = loop {
            match stream.next().await.expect("an event") {
                Ok(HistoryEvent::Header(header)) => break header,
                Ok(HistoryEvent::Item(_)) => {}
                Err(e) => panic!("{e}"),
            }
        };
        assert!(!header.recovered);
        assert_eq!(header.offset, 2000);
        store.append(&key(), limits(100), "\"live\"".into()).await.unwrap();
        let next = stream.next().await.expect("an event");
        assert_eq!(offset_of(&next), 2001);
    }

    /// A stored message that is not a `T` ends the stream with an error.
    #[tokio::test]
    async fn a_message_of_another_type_ends_the_stream_with_an_error() {
        let store = Arc::new(InMemoryHistory::new());
        let first = store.append(&key(), limits(10), "42".into()).await.unwrap();
        let from = Position::new(first.epoch, 0);
        let stream = subscribe::<String>(store, key(), limits(10), Some(from)).await.unwrap();
        let events: Vec<Event<String>> = stream.collect().await;
        assert!(
            matches!(
                events.as_slice(),
                [Ok(HistoryEvent::Header(_)), Err(HistoryError::Decode(_))]
            ),
            "{events:?}"
        );
    }
}
