//! The in-memory store: one server's histories, appended and delivered under one lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::fanout::{Fanout, LiveEvent, Watch};
use super::{Durable, HistoryError, HistoryKey, HistoryLimits, HistoryStore, Latest, Position, Since};

/// One group's history.
struct Log {
    epoch: String,
    offset: i64,
    /// The kept messages, oldest first, with when each was appended.
    entries: VecDeque<(Instant, Durable)>,
    /// When the history was last touched by an append (or created); `ttl` after it, the
    /// history is lost with its epoch.
    touched: Instant,
    /// The group's TTL, as last asked (groups of different rules have different ones).
    ttl: Duration,
}

impl Log {
    fn new(now: Instant, ttl: Duration) -> Self {
        Log {
            epoch: super::new_epoch(),
            offset: 0,
            entries: VecDeque::new(),
            touched: now,
            ttl,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.touched) >= self.ttl
    }

    fn position(&self) -> Position {
        Position::new(self.epoch.clone(), self.offset)
    }

    /// Drops what is past the limits.
    fn trim(&mut self, limits: HistoryLimits, now: Instant) {
        while self.entries.len() > limits.max_len {
            self.entries.pop_front();
        }
        while self
            .entries
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) >= limits.ttl)
        {
            self.entries.pop_front();
        }
    }
}

#[derive(Default)]
struct State {
    logs: HashMap<HistoryKey, Log>,
    /// When every history was last checked for expiry.
    swept: Option<Instant>,
}

impl State {
    /// The group's history as of `now` (a new epoch when it expired or never existed).
    fn log(&mut self, key: &HistoryKey, limits: HistoryLimits, now: Instant) -> &mut Log {
        self.sweep(limits, now);
        let log = self
            .logs
            .entry(key.clone())
            .or_insert_with(|| Log::new(now, limits.ttl));
        log.ttl = limits.ttl;
        if log.expired(now) {
            *log = Log::new(now, limits.ttl);
        }
        log.trim(limits, now);
        log
    }

    /// Forgets the histories idle past their TTL (looked at most once per TTL asked).
    fn sweep(&mut self, limits: HistoryLimits, now: Instant) {
        if self.swept.is_some_and(|at| now.duration_since(at) < limits.ttl) {
            return;
        }
        self.swept = Some(now);
        self.logs.retain(|_, log| !log.expired(now));
    }
}

/// Histories in this process's memory: for one server (several servers each keep their own,
/// and a restart loses them). The default store.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use hub_runtime::history::{HistoryKey, HistoryLimits, HistoryStore, InMemoryHistory};
/// let store = InMemoryHistory::new();
/// let key = HistoryKey { hub: "Chat".into(), group: "durable-room".into() };
/// let limits = HistoryLimits { max_len: 2, ttl: Duration::from_secs(60) };
/// for text in ["\"a\"", "\"b\"", "\"c\""] {
///     store.append(&key, limits, text.into()).await.unwrap();
/// }
/// let latest = store.last(&key, limits, 10).await.unwrap();
/// assert_eq!(latest.position.offset, 3);
/// assert_eq!(latest.messages.len(), 2); // "a" was evicted
/// # });
/// ```
#[derive(Clone)]
pub struct InMemoryHistory {
    state: Arc<Mutex<State>>,
    fanout: Arc<Fanout>,
}

impl Default for InMemoryHistory {
    fn default() -> Self {
        InMemoryHistory::new()
    }
}

impl std::fmt::Debug for InMemoryHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryHistory").finish_non_exhaustive()
    }
}

impl InMemoryHistory {
    /// No history yet.
    pub fn new() -> Self {
        InMemoryHistory {
            state: Arc::new(Mutex::new(State::default())),
            fanout: Arc::new(Fanout::new()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The messages after `offset` in `log`, if they are all kept.
fn after(log: &Log, offset: i64) -> Option<Vec<Durable>> {
    if offset == log.offset {
        return Some(Vec::new());
    }
    let first = log.entries.front().map(|(_, d)| d.position.offset)?;
    if offset < 0 || offset > log.offset || first > offset + 1 {
        return None;
    }
    Some(
        log.entries
            .iter()
            .filter(|(_, d)| d.position.offset > offset)
            .map(|(_, d)| d.clone())
            .collect(),
    )
}

impl HistoryStore for InMemoryHistory {
    fn append<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        payload: Arc<str>,
    ) -> BoxFuture<'a, Result<Position, HistoryError>> {
        let now = Instant::now();
        let mut state = self.state();
        let log = state.log(key, limits, now);
        log.offset += 1;
        log.touched = now;
        let durable = Durable {
            position: log.position(),
            payload,
        };
        log.entries.push_back((now, durable.clone()));
        log.trim(limits, now);
        let position = durable.position.clone();
        // Under the lock: watchers get the messages in offset order.
        self.fanout.send(key, LiveEvent::Message(durable));
        drop(state);
        Box::pin(async move { Ok(position) })
    }

    fn since<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        from: Option<&'a Position>,
    ) -> BoxFuture<'a, Result<Since, HistoryError>> {
        let mut state = self.state();
        let log = state.log(key, limits, Instant::now());
        let position = log.position();
        let messages = match from {
            None => Some(Vec::new()),
            Some(from) if from.epoch == log.epoch => after(log, from.offset),
            Some(_) => None,
        };
        let since = Since {
            recovered: messages.is_some(),
            position,
            messages: messages.unwrap_or_default(),
        };
        drop(state);
        Box::pin(async move { Ok(since) })
    }

    fn last<'a>(
        &'a self,
        key: &'a HistoryKey,
        limits: HistoryLimits,
        count: usize,
    ) -> BoxFuture<'a, Result<Latest, HistoryError>> {
        let mut state = self.state();
        let log = state.log(key, limits, Instant::now());
        let skip = log.entries.len().saturating_sub(count);
        let latest = Latest {
            position: log.position(),
            messages: log.entries.iter().skip(skip).map(|(_, d)| d.clone()).collect(),
        };
        drop(state);
        Box::pin(async move { Ok(latest) })
    }

    fn watch<'a>(&'a self, key: &'a HistoryKey) -> BoxFuture<'a, Result<Watch, HistoryError>> {
        // Taken under the state lock, so no append is half done.
        let state = self.state();
        let watch = self.fanout.watch(key);
        drop(state);
        Box::pin(async move { Ok(watch) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key() -> HistoryKey {
        HistoryKey {
            hub: "Hub".into(),
            group: "durable-g".into(),
        }
    }

    const LIMITS: HistoryLimits = HistoryLimits {
        max_len: 3,
        ttl: Duration::from_secs(10),
    };

    async fn publish(store: &InMemoryHistory, n: usize) -> Position {
        let mut last = None;
        for i in 0..n {
            last = Some(store.append(&key(), LIMITS, format!("{i}").into()).await.unwrap());
        }
        last.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn offsets_are_gapless_and_since_recovers_what_is_kept() {
        let store = InMemoryHistory::new();
        let start = store.since(&key(), LIMITS, None).await.unwrap();
        assert!(start.recovered);
        assert_eq!(start.position.offset, 0);
        let end = publish(&store, 5).await;
        assert_eq!(end, Position::new(start.position.epoch.clone(), 5));
        let from = Position::new(end.epoch.clone(), 2);
        let since = store.since(&key(), LIMITS, Some(&from)).await.unwrap();
        assert!(since.recovered);
        let offsets: Vec<i64> = since.messages.iter().map(|d| d.position.offset).collect();
        assert_eq!(offsets, [3, 4, 5]);
        // Offset 1's successor was evicted (only 3 kept).
        let evicted = store
            .since(&key(), LIMITS, Some(&Position::new(end.epoch.clone(), 1)))
            .await
            .unwrap();
        assert!(!evicted.recovered && evicted.messages.is_empty());
        for bad in [
            Position::new(end.epoch.clone(), 6),
            Position::new(end.epoch.clone(), -1),
            Position::new("other", 5),
        ] {
            assert!(
                !store.since(&key(), LIMITS, Some(&bad)).await.unwrap().recovered,
                "{bad:?}"
            );
        }
        let current = store.since(&key(), LIMITS, Some(&end)).await.unwrap();
        assert!(current.recovered && current.messages.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn messages_expire_and_an_idle_history_starts_a_new_epoch() {
        let store = InMemoryHistory::new();
        let first = publish(&store, 1).await;
        tokio::time::advance(Duration::from_secs(6)).await;
        let second = publish(&store, 1).await;
        tokio::time::advance(Duration::from_secs(6)).await;
        // The first message expired, the second is kept.
        let since = store
            .since(&key(), LIMITS, Some(&Position::new(first.epoch.clone(), 0)))
            .await
            .unwrap();
        assert!(!since.recovered);
        let since = store.since(&key(), LIMITS, Some(&first)).await.unwrap();
        assert!(since.recovered);
        assert_eq!(since.messages.len(), 1);
        tokio::time::advance(Duration::from_secs(10)).await;
        let lost = store.since(&key(), LIMITS, Some(&second)).await.unwrap();
        assert!(!lost.recovered);
        assert_ne!(lost.position.epoch, second.epoch);
        assert_eq!(lost.position.offset, 0);
    }

    /// A group of a rule with a short TTL does not sweep away the history of a group with a
    /// long one.
    #[tokio::test(start_paused = true)]
    async fn each_group_expires_by_its_own_ttl() {
        let store = InMemoryHistory::new();
        let short_key = HistoryKey {
            hub: "Hub".into(),
            group: "short".into(),
        };
        let short = HistoryLimits {
            max_len: 3,
            ttl: Duration::from_secs(1),
        };
        let kept = publish(&store, 1).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        store.append(&short_key, short, "1".into()).await.unwrap();
        store.append(&short_key, short, "2".into()).await.unwrap();
        let since = store.since(&key(), LIMITS, Some(&kept)).await.unwrap();
        assert!(since.recovered, "the 10 s history outlived a 1 s sweep");
        assert_eq!(since.position, kept);
    }

    #[tokio::test]
    async fn watchers_get_appends_in_order() {
        let store = InMemoryHistory::new();
        let mut watch = store.watch(&key()).await.unwrap();
        publish(&store, 2).await;
        for offset in [1, 2] {
            match watch.next().await {
                Some(LiveEvent::Message(d)) => assert_eq!(d.position.offset, offset),
                other => panic!("{other:?}"),
            }
        }
    }
}
