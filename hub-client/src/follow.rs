//! [`Following`]: a durable group's messages that survive reconnects. It calls a resumable
//! server-to-client stream (its wire types: [`RecoveryItem`], [`Position`]) with the last position it
//! saw, and calls it again from there whenever the connection comes back or the stream fails.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

use crate::connection::HubConnection;
use crate::error::{Error, Result};
use crate::reconnect::{Delays, RetryContext, RetryPolicy};
use crate::recovery::{Position, RecoveryHeader, RecoveryItem};

/// What a [`Following`] yields (besides errors).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowEvent<T> {
    /// The server's stream started: first, after each reconnect, and when the group's history
    /// started over (a new epoch). `recovered: false` means messages were missed that
    /// history no longer holds: none of them will come, so an app that keeps state from the
    /// messages should reload it. The messages that follow come after `position`.
    Subscribed {
        /// Whether every message since the last one yielded follows (always true the first
        /// time, unless a position to resume from was given).
        recovered: bool,
        /// The group's position when the stream started.
        position: Position,
    },
    /// A message of the group, in order, once.
    Message {
        /// Where it stands: resuming from here gets the messages after it.
        position: Position,
        /// What was published.
        message: T,
    },
}

type Items<T> = BoxStream<'static, Result<RecoveryItem<T>>>;
type Subscribe<T> = Box<dyn FnMut(Option<Position>) -> Items<T> + Send>;

/// The messages of a durable group, followed across reconnects: a `Stream` of
/// `Result<`[`FollowEvent<T>`]`>`. Make one with [`HubConnection::follow`] (a hub method
/// called with the group and a position) or [`Following::new`] (any call, for example a
/// typed proxy's).
///
/// It calls the server's stream with the position of the last message it yielded (none at
/// first, or the one [`resume_from`](Self::resume_from) gives) and yields what comes, keeping
/// each message's position. When the connection is lost, it waits for the automatic
/// reconnect (see
/// [`automatic_reconnect_with`](crate::HubConnectionBuilder::automatic_reconnect_with), which
/// may land on another server of the fleet) and calls the stream again from that position:
/// the server sends exactly the messages missed, then the live ones, so none is duplicated or
/// lost at the seam. If history no longer covers the gap, a
/// [`FollowEvent::Subscribed`] with `recovered: false` says so, and nothing stale follows.
///
/// When the server fails the stream (an [`Error::Hub`], a message that does not decode as
/// `T`), the error is yielded and the stream is called again after the delay a
/// [`RetryPolicy`] gives ([`retry`](Self::retry); by default [`Delays::default`]: 0, 2, 10
/// and 30 seconds, counted afresh after each stream that started). When the policy gives up,
/// or the connection ends for good (stopped, closed without a reconnect, its reconnect given
/// up), the error is the last item. A stream the server completes ends it. Dropping it
/// cancels the server's stream; while it lives, it holds a handle on the connection (as a
/// [`HubStream`](crate::HubStream) does).
///
/// ```no_run
/// use std::time::Duration;
/// use futures_util::StreamExt;
/// use hub_client::{Delays, FollowEvent, HubConnectionBuilder};
///
/// # async fn run() -> Result<(), hub_client::Error> {
/// let connection = HubConnectionBuilder::new("http://localhost:5000/broadcast")
///     .automatic_reconnect_with(Delays(vec![Duration::from_millis(200); 100]))
///     .build()?;
/// connection.start().await?;
/// // Calls `Subscribe("durable-news", position)`, again after every reconnect.
/// let mut news = connection.follow::<String>("Subscribe", "durable-news");
/// while let Some(event) = news.next().await {
///     match event? {
///         FollowEvent::Message { position, message } => println!("{}: {message}", position.offset),
///         FollowEvent::Subscribed { recovered: false, .. } => println!("(some news was missed)"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Following<T> {
    state: State<T>,
}

enum State<T> {
    /// Not polled yet: what to start with.
    Ready(Box<Run<T>>),
    Running(BoxStream<'static, Result<FollowEvent<T>>>),
    /// Only while switching states.
    Empty,
}

/// The key of [`HubConnection::follow`], shared by every call it makes.
struct Shared<K>(Arc<K>);

impl<K: Serialize> Serialize for Shared<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl HubConnection {
    /// Follows the durable group `key` through the hub's resumable stream `method`, called
    /// as `method(key, position)` (the interop contract's `Subscribe(group, position)`, or a
    /// hub-runtime hub forwarding to `cx.history.subscribe`); its items arrive as
    /// [`FollowEvent`]s whose messages decode as `T`. See [`Following`].
    pub fn follow<T>(&self, method: &str, key: impl Serialize + Send + Sync + 'static) -> Following<T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let connection = self.clone();
        let method = method.to_string();
        let key = Arc::new(key);
        Following::new(self, move |from| {
            connection
                .stream::<RecoveryItem<T>>(&method, (Shared(key.clone()), from))
                .boxed()
        })
    }
}

impl<T: Send + 'static> Following<T> {
    /// Follows through `subscribe`, which starts the server's stream from a position (or
    /// none): a typed proxy's method, for example. Its items are the server's as
    /// [`RecoveryItem`]s (map a contract's own item type into them).
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use hub_client::{Following, Position, RecoveryItem, RecoveryHeader, RecoveryMessage};
    ///
    /// // A contract's own types for the stream, as its crate declares them.
    /// #[derive(serde::Deserialize)]
    /// #[serde(untagged)]
    /// enum NewsItem {
    ///     Header { #[serde(rename = "Recovered")] recovered: bool, #[serde(rename = "Epoch")] epoch: String, #[serde(rename = "Offset")] offset: i64 },
    ///     Message { #[serde(rename = "Offset")] offset: i64, #[serde(rename = "Message")] message: String },
    /// }
    ///
    /// fn into_item(item: NewsItem) -> RecoveryItem<String> {
    ///     match item {
    ///         NewsItem::Header { recovered, epoch, offset } => RecoveryItem::Header(RecoveryHeader { recovered, epoch, offset }),
    ///         NewsItem::Message { offset, message } => RecoveryItem::Message(RecoveryMessage { offset, message }),
    ///     }
    /// }
    ///
    /// # fn run(connection: hub_client::HubConnection) {
    /// let calls = connection.clone();
    /// let news = Following::new(&connection, move |from: Option<Position>| {
    ///     // A typed proxy would be called here: `NewsProxy::new(&calls).subscribe(group, from)`.
    ///     calls
    ///         .stream::<NewsItem>("Subscribe", ("durable-news", from))
    ///         .map(|item| item.map(into_item))
    /// });
    /// # drop(news); }
    /// ```
    pub fn new<F, S>(connection: &HubConnection, mut subscribe: F) -> Self
    where
        F: FnMut(Option<Position>) -> S + Send + 'static,
        S: Stream<Item = Result<RecoveryItem<T>>> + Send + 'static,
    {
        Following {
            state: State::Ready(Box::new(Run {
                connection: connection.clone(),
                subscribe: Box::new(move |from| subscribe(from).boxed()),
                last: None,
                retry: Arc::new(Delays::default()),
                current: None,
                wait: None,
                failures: 0,
                failing_since: None,
                ended: false,
            })),
        }
    }

    /// Starts from `position` (one saved by an earlier run of the app) instead of the live
    /// end: the first [`FollowEvent::Subscribed`] then tells whether what came after it could
    /// be recovered. No effect once the stream was polled.
    pub fn resume_from(mut self, position: Position) -> Self {
        if let State::Ready(run) = &mut self.state {
            run.last = Some(position);
        }
        self
    }

    /// How long to wait before calling the stream again after the server failed it, and when
    /// to give up (see [`Following`]). No effect once the stream was polled.
    pub fn retry(mut self, policy: impl RetryPolicy) -> Self {
        if let State::Ready(run) = &mut self.state {
            run.retry = Arc::new(policy);
        }
        self
    }
}

impl<T: Send + 'static> Stream for Following<T> {
    type Item = Result<FollowEvent<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.state = match std::mem::replace(&mut this.state, State::Empty) {
            State::Ready(run) => State::Running(
                futures_util::stream::unfold(run, |mut run| async move {
                    let event = run.next().await?;
                    Some((event, run))
                })
                .boxed(),
            ),
            running => running,
        };
        match &mut this.state {
            State::Running(events) => events.poll_next_unpin(cx),
            _ => Poll::Ready(None),
        }
    }
}

/// One following: the call, where it stands, and how its failures go.
struct Run<T> {
    connection: HubConnection,
    subscribe: Subscribe<T>,
    /// The position of the last message yielded (or of the header, when what follows it
    /// starts there): where the next call resumes.
    last: Option<Position>,
    retry: Arc<dyn RetryPolicy>,
    /// The server's stream, while one runs.
    current: Option<Items<T>>,
    /// A delay to wait out before the next call (after a failure).
    wait: Option<Duration>,
    /// Failures since the last stream that started.
    failures: u32,
    failing_since: Option<Instant>,
    ended: bool,
}

impl<T: Send + 'static> Run<T> {
    async fn next(&mut self) -> Option<Result<FollowEvent<T>>> {
        loop {
            if self.ended {
                return None;
            }
            if let Some(delay) = self.wait.take() {
                tokio::time::sleep(delay).await;
            }
            let current = match &mut self.current {
                Some(current) => current,
                None => self.current.insert((self.subscribe)(self.last.clone())),
            };
            let failure = match current.next().await {
                Some(Ok(RecoveryItem::Header(header))) => return Some(Ok(self.started(header))),
                Some(Ok(RecoveryItem::Message(item))) => match &mut self.last {
                    Some(last) => {
                        last.offset = item.offset;
                        return Some(Ok(FollowEvent::Message {
                            position: last.clone(),
                            message: item.message,
                        }));
                    }
                    None => Error::Protocol("a message came before the stream's header".into()),
                },
                Some(Err(error)) => error,
                None => {
                    self.ended = true;
                    return None;
                }
            };
            self.current = None;
            if matches!(failure, Error::NotConnected | Error::ConnectionClosed(_)) {
                // Lost with the connection: wait for it to come back, then resume.
                if let Some(reason) = self.connection.running().await {
                    self.ended = true;
                    return Some(Err(Error::ConnectionClosed(Box::new(reason))));
                }
                continue;
            }
            return Some(Err(self.failed(failure)));
        }
    }

    /// A header: where the stream stands. Resuming goes on from the last message yielded when
    /// the missed ones follow; otherwise from the header's position, which nothing older
    /// follows.
    fn started(&mut self, header: RecoveryHeader) -> FollowEvent<T> {
        self.failures = 0;
        self.failing_since = None;
        let position = header.position();
        let same_history = self.last.as_ref().is_some_and(|last| last.epoch == header.epoch);
        if !(header.recovered && same_history) {
            self.last = Some(position.clone());
        }
        FollowEvent::Subscribed {
            recovered: header.recovered,
            position,
        }
    }

    /// The server failed the stream: asks the policy when to call it again, or ends.
    fn failed(&mut self, error: Error) -> Error {
        let since = *self.failing_since.get_or_insert_with(Instant::now);
        let context = RetryContext {
            previous_retry_count: self.failures,
            elapsed: since.elapsed(),
            retry_reason: &error,
        };
        match self.retry.next_retry_delay(&context) {
            Some(delay) => {
                self.failures = self.failures.saturating_add(1);
                self.wait = Some(delay);
            }
            None => self.ended = true,
        }
        error
    }
}
