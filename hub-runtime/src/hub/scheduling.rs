//! What runs beside a connection's read loop and when: invocations (up to
//! `max_parallel_invocations` at once, the rest waiting their turn), streaming methods, the
//! client-to-server streams with a blocked item, and the invocation rate limit.
//!
//! The read loop never awaits a hub method: invocations run as futures polled beside it, so
//! Pings, Completions and Closes are read while a method runs.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::stream::UploadItem;
use super::{Call, Outcome};
use crate::options::HubOptions;

/// A streaming method's invocation handing over the future that streams its items.
pub(super) struct StreamHandover {
    /// The invocation id (a CancelInvocation names it); `None` for a method that is not
    /// streaming.
    pub(super) stream_id: Option<String>,
    /// Streams the items and ends with the Completion.
    pub(super) stream: BoxFuture<'static, Outcome>,
}

/// A started invocation: sends its reply, or hands over its stream.
pub(super) type Running = BoxFuture<'static, Option<StreamHandover>>;

/// Whether an invocation counts against the parallel limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// A plain invocation without client streams: it counts.
    Counted,
    /// As the reference server: invocations that stream (either way) do not count.
    Uncounted,
}

/// What finished beside the read loop.
pub(super) enum Finished {
    /// A counted invocation finished (possibly handing over a stream): a waiting one may start.
    Counted(Option<StreamHandover>),
    /// An invocation with client streams finished (possibly handing over a stream).
    Uncounted(Option<StreamHandover>),
    /// A streaming method finished: its id, free again.
    Stream(Option<String>),
}

/// A client stream item that waits for room in its stream's buffer.
struct BlockedUpload {
    stream_id: String,
    sender: mpsc::Sender<UploadItem>,
    item: UploadItem,
}

/// Per-connection scheduling state.
pub(super) struct Scheduler {
    running: LazySet<Running>,
    /// Streams, queued invocations and a blocked upload: made when first needed (most
    /// connections only ever make plain invocations).
    more: Option<Box<More>>,
    parallel: usize,
    max_waiting: usize,
    /// `None` without a rate limit.
    rate: Option<Box<RateLimit>>,
}

/// The scheduling state most connections never need.
#[derive(Default)]
struct More {
    /// Invocations with client-to-server streams, which the parallel limit does not count.
    unlimited: LazySet<Running>,
    waiting: VecDeque<(usize, Call)>,
    streams: LazySet<BoxFuture<'static, Option<String>>>,
    stream_tokens: HashMap<String, CancellationToken>,
    uploads: HashMap<String, mpsc::Sender<UploadItem>>,
    blocked: Option<BlockedUpload>,
}

impl Scheduler {
    /// Nothing running yet, with the endpoint's limits.
    pub(super) fn new(options: &HubOptions) -> Self {
        Scheduler {
            running: LazySet::default(),
            more: None,
            parallel: options.max_parallel_invocations.max(1),
            max_waiting: options.max_pending_invocations.max(1),
            rate: options
                .max_invocations_per_second
                .map(|per_second| Box::new(RateLimit::new(per_second))),
        }
    }

    fn more(&mut self) -> &mut More {
        self.more.get_or_insert_with(Default::default)
    }

    /// A client stream item waits for room.
    #[inline]
    pub(super) fn is_blocked(&self) -> bool {
        self.more.as_ref().is_some_and(|m| m.blocked.is_some())
    }

    #[inline]
    fn waiting_len(&self) -> usize {
        self.more.as_ref().map_or(0, |m| m.waiting.len())
    }

    /// Whether the next message may be handled now: no client stream item waits for room,
    /// and fewer than `max_pending_invocations` invocations wait for their turn.
    #[inline]
    pub(super) fn ready(&self) -> bool {
        !self.is_blocked() && self.waiting_len() < self.max_waiting
    }

    /// Whether a counted invocation may start now.
    #[inline]
    pub(super) fn has_room(&self) -> bool {
        self.running.len() < self.parallel
    }

    /// An invocation waits for its turn (its arguments copied out of their frame, which a
    /// client could otherwise make large: up to `max_pending_invocations` frames held).
    pub(super) fn wait(&mut self, method: usize, mut call: Call) {
        call.detach_arguments();
        self.more().waiting.push_back((method, call));
    }

    /// The next waiting invocation, if one may start now.
    pub(super) fn next_waiting(&mut self) -> Option<(usize, Call)> {
        if !self.has_room() {
            return None;
        }
        self.more.as_mut().and_then(|m| m.waiting.pop_front())
    }

    /// Runs a started invocation beside the read loop.
    #[inline]
    pub(super) fn push(&mut self, running: Running, limit: Limit) {
        match limit {
            Limit::Counted => self.running.push(running),
            Limit::Uncounted => self.more().unlimited.push(running),
        }
    }

    /// Runs a streaming method's items beside the read loop; it ends with its id.
    pub(super) fn push_stream(&mut self, stream: BoxFuture<'static, Option<String>>) {
        self.more().streams.push(stream);
    }

    /// Takes one invocation from the rate limit: `false` when the client invokes too fast.
    #[inline]
    pub(super) fn within_rate(&mut self) -> bool {
        self.rate.as_mut().is_none_or(|rate| rate.take())
    }

    /// Whether anything runs beside the read loop.
    #[inline]
    pub(super) fn is_running(&self) -> bool {
        !self.running.is_empty()
            || self
                .more
                .as_ref()
                .is_some_and(|m| m.unlimited.len() + m.streams.len() > 0)
    }

    /// The next thing to finish: counted invocations first, then the others, then streams.
    pub(super) fn next_finished(&mut self) -> impl Future<Output = Finished> + '_ {
        std::future::poll_fn(move |cx| {
            if let Poll::Ready(Some(done)) = self.running.poll_next(cx) {
                return Poll::Ready(Finished::Counted(done));
            }
            let Some(more) = self.more.as_deref_mut() else {
                return Poll::Pending;
            };
            if let Poll::Ready(Some(done)) = more.unlimited.poll_next(cx) {
                return Poll::Ready(Finished::Uncounted(done));
            }
            if let Poll::Ready(Some(done)) = more.streams.poll_next(cx) {
                return Poll::Ready(Finished::Stream(done));
            }
            Poll::Pending
        })
    }

    /// A streaming invocation's id is in use (its stream runs).
    pub(super) fn stream_in_use(&self, id: &str) -> bool {
        self.more.as_ref().is_some_and(|m| m.stream_tokens.contains_key(id))
    }

    /// A running stream's id is free again (it finished, or never ran).
    pub(super) fn forget_stream(&mut self, id: &str) {
        if let Some(more) = self.more.as_mut() {
            more.stream_tokens.remove(id);
        }
    }

    /// A streaming invocation runs under `id`; CancelInvocation cancels `token`.
    pub(super) fn add_stream(&mut self, id: String, token: CancellationToken) {
        self.more().stream_tokens.insert(id, token);
    }

    /// CancelInvocation: cancels the stream under `id`, if one runs.
    pub(super) fn cancel_stream(&self, id: &str) {
        if let Some(token) = self.more.as_ref().and_then(|m| m.stream_tokens.get(id)) {
            token.cancel();
        }
    }

    /// The streams open either way: running streaming methods and uploads.
    #[inline]
    pub(super) fn open_streams(&self) -> usize {
        self.more
            .as_ref()
            .map_or(0, |m| m.uploads.len() + m.stream_tokens.len())
    }

    /// Forgets the client streams nobody reads any more (their method ended).
    pub(super) fn forget_closed_uploads(&mut self) {
        if let Some(more) = self.more.as_mut() {
            more.uploads.retain(|_, tx| !tx.is_closed());
        }
    }

    /// A client stream runs under `id`: its method still reads it.
    pub(super) fn upload_running(&self, id: &str) -> bool {
        self.more
            .as_ref()
            .and_then(|m| m.uploads.get(id))
            .is_some_and(|tx| !tx.is_closed())
    }

    /// A client stream is known under `id`.
    pub(super) fn has_upload(&self, id: &str) -> bool {
        self.more.as_ref().is_some_and(|m| m.uploads.contains_key(id))
    }

    /// Opens a client stream under `id`, with room for `capacity` items: what its method reads.
    pub(super) fn open_upload(&mut self, id: String, capacity: usize) -> mpsc::Receiver<UploadItem> {
        let (tx, rx) = mpsc::channel(capacity);
        self.more().uploads.insert(id, tx);
        rx
    }

    /// The client completed its stream.
    pub(super) fn end_upload(&mut self, id: &str) {
        if let Some(more) = self.more.as_mut() {
            more.uploads.remove(id);
        }
    }

    /// Hands a client stream item to its stream (an error ends the stream); when the stream's
    /// buffer is full the item waits, blocked, and no message is handled until it has room.
    pub(super) fn upload(&mut self, stream_id: String, item: UploadItem) {
        let Some(sender) = self.more.as_ref().and_then(|m| m.uploads.get(&stream_id)).cloned() else {
            tracing::debug!(stream = %stream_id, "ignoring an item for an unknown stream");
            return;
        };
        let last = is_last(&item);
        match sender.try_send(item) {
            Ok(()) => {
                if last {
                    self.more().uploads.remove(&stream_id);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The hub method stopped reading this stream.
                self.more().uploads.remove(&stream_id);
            }
            Err(mpsc::error::TrySendError::Full(item)) => {
                self.more().blocked = Some(BlockedUpload {
                    stream_id,
                    sender,
                    item,
                });
            }
        }
    }

    /// The stream a blocked item waits for room in.
    pub(super) fn blocked_sender(&self) -> Option<mpsc::Sender<UploadItem>> {
        self.more
            .as_ref()
            .and_then(|m| m.blocked.as_ref())
            .map(|b| b.sender.clone())
    }

    /// Room for the blocked item (`None`: its stream's reader is gone).
    pub(super) fn unblock(&mut self, permit: Option<mpsc::OwnedPermit<UploadItem>>) {
        let Some(blocked) = self.more.as_mut().and_then(|m| m.blocked.take()) else {
            return;
        };
        match permit {
            Some(permit) => {
                let last = is_last(&blocked.item);
                permit.send(blocked.item);
                if last {
                    self.more().uploads.remove(&blocked.stream_id);
                }
            }
            None => {
                self.more().uploads.remove(&blocked.stream_id);
            }
        }
    }
}

/// An error ends a client stream; items do not.
fn is_last(item: &UploadItem) -> bool {
    matches!(item, UploadItem::Error(_))
}

/// A set of futures that allocates only once something is pushed (most connections never
/// stream, and most invocations finish at once): an idle connection keeps less memory.
pub(super) struct LazySet<F>(Option<FuturesUnordered<F>>);

impl<F> Default for LazySet<F> {
    fn default() -> Self {
        LazySet(None)
    }
}

impl<F: Future + Unpin> LazySet<F> {
    pub(super) fn push(&mut self, future: F) {
        self.0.get_or_insert_with(FuturesUnordered::new).push(future);
    }

    pub(super) fn len(&self) -> usize {
        self.0.as_ref().map_or(0, FuturesUnordered::len)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next output; `Ready(None)` when the set is empty.
    pub(super) fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<F::Output>> {
        match &mut self.0 {
            Some(set) if !set.is_empty() => set.poll_next_unpin(cx),
            _ => Poll::Ready(None),
        }
    }
}

/// A token bucket: `per_second` invocations on average, bursts of up to one second's worth.
struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        RateLimit {
            per_second,
            tokens: per_second,
            last: std::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let rate = self.per_second;
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(rate.max(1.0));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
#[path = "scheduling_tests.rs"]
mod tests;
