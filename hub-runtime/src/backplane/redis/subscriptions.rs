//! Which Redis channels this server listens on, and keeping Redis in step with that.
//!
//! Every reason to listen on a channel (a hub, a local connection, a local member of a group,
//! a local connection of a user) counts once: a channel is wanted while its count is above
//! zero. Reports of joins and leaves may arrive out of order (a leave's report can overtake
//! the join that follows it, or even its own join), but the count comes out right whatever
//! the order.
//!
//! The SUBSCRIBE and UNSUBSCRIBE commands for one channel are decided one at a time (each
//! channel has its own turn), and each looks at the count when it is decided, so the last
//! decision matches the members. No lock is held while Redis answers but a channel's own
//! turn, and every wait for Redis is bounded by the response timeout (all commands share one
//! connection, so a Redis that stops answering delays them all, but only that long). A
//! command that fails is retried with backoff until it succeeds or the channel is no longer
//! wanted.

use std::collections::HashMap;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::PubSubSink;

use super::Route;

/// The first wait before a failed command is tried again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One channel this server listens on (or has just stopped wanting).
struct Channel {
    /// `None` while only a leave was counted (its join's report comes later).
    route: Option<Route>,
    /// How many reasons to listen there are; may dip below zero for a moment while a leave's
    /// report overtakes its join's.
    wanted: i64,
    /// The subscription connection (by generation) the channel is subscribed on, if any.
    subscribed_on: Option<u64>,
    /// Taken while deciding and sending this channel's SUBSCRIBE or UNSUBSCRIBE.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Whether a background task retries this channel's failed command.
    retrying: bool,
}

impl Channel {
    fn unwanted() -> Self {
        Channel {
            route: None,
            wanted: 0,
            subscribed_on: None,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            retrying: false,
        }
    }
}

impl Channel {
    /// Whether Redis is as the count wants it (with no connection, the next one subscribes
    /// every wanted channel, and nothing is subscribed).
    fn in_step(&self, live: Option<&Live>) -> bool {
        match live {
            Some(live) => (self.wanted > 0) == (self.subscribed_on == Some(live.generation)),
            None => true,
        }
    }
}

/// The live subscription connection.
struct Live {
    generation: u64,
    sink: PubSubSink,
}

#[derive(Default)]
struct State {
    channels: HashMap<String, Channel>,
    live: Option<Live>,
    generations: u64,
}

/// What a channel needs next.
enum Step {
    /// Redis is in step (or there is no connection: the next one subscribes what is wanted).
    Done,
    /// Send the command on the live connection.
    Send {
        sink: PubSubSink,
        generation: u64,
        command: Command,
    },
}

/// A change of a channel's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Subscribe,
    Unsubscribe,
}

/// The channels this server listens on; see the module documentation.
pub(super) struct Subscriptions {
    state: Mutex<State>,
    response_timeout: Duration,
    metrics: Arc<crate::observability::BackplaneMetrics>,
}

impl Subscriptions {
    pub(super) fn new(response_timeout: Duration, metrics: Arc<crate::observability::BackplaneMetrics>) -> Self {
        Subscriptions {
            state: Mutex::new(State::default()),
            response_timeout,
            metrics,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where a message on `channel` goes, while the channel is wanted.
    pub(super) fn route(&self, channel: &str) -> Option<Route> {
        self.state()
            .channels
            .get(channel)
            .filter(|c| c.wanted > 0)
            .and_then(|c| c.route.clone())
    }

    /// Counts one more reason to listen on `channel`, without talking to Redis (for channels
    /// known before the first connection, which subscribes them).
    pub(super) fn keep(&self, channel: String, route: Route) {
        self.count(channel, Some(route), 1);
    }

    /// One more reason to listen on `channel`. Returns once Redis confirmed the subscription,
    /// or after one failed attempt (bounded by the response timeout; retries go on in the
    /// background).
    pub(super) async fn add(self: &Arc<Self>, channel: String, route: Route) {
        self.count(channel.clone(), Some(route), 1);
        self.settle_or_retry(channel).await;
    }

    /// One reason fewer to listen on `channel`; the last one unsubscribes.
    pub(super) async fn remove(self: &Arc<Self>, channel: String) {
        self.count(channel.clone(), None, -1);
        self.settle_or_retry(channel).await;
    }

    fn count(&self, channel: String, route: Option<Route>, change: i64) {
        let mut state = self.state();
        let entry = state.channels.entry(channel).or_insert_with(Channel::unwanted);
        if route.is_some() {
            entry.route = route;
        }
        entry.wanted += change;
    }

    async fn settle_or_retry(self: &Arc<Self>, channel: String) {
        // Waiting for the turn is bounded too: another caller's command may be under way.
        let bound = self.response_timeout.saturating_mul(2);
        let settled = matches!(tokio::time::timeout(bound, self.settle(&channel)).await, Ok(Ok(())));
        if !settled {
            self.retry_in_background(channel);
        }
    }

    /// Brings Redis in step with the channel's count: at most one command per change of
    /// mind, each bounded by the response timeout. `Err` if a command failed.
    async fn settle(&self, channel: &str) -> Result<(), ()> {
        let Some(turn) = self.state().channels.get(channel).map(|c| c.turn.clone()) else {
            return Ok(());
        };
        let _turn = turn.lock().await;
        loop {
            let Step::Send {
                mut sink,
                generation,
                command,
            } = self.next_step(channel)
            else {
                return Ok(());
            };
            let sent = async {
                match command {
                    Command::Subscribe => sink.subscribe(channel).await,
                    Command::Unsubscribe => sink.unsubscribe(channel).await,
                }
            };
            let error = match tokio::time::timeout(self.response_timeout, sent).await {
                Ok(Ok(())) => {
                    self.record(channel, generation, command);
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {:?}", self.response_timeout),
            };
            let failed = self.metrics.failed_subscription();
            // 1st, 2nd, 4th, 8th… failure: an outage does not flood the log.
            if failed.is_power_of_two() {
                let command = match command {
                    Command::Subscribe => "SUBSCRIBE",
                    Command::Unsubscribe => "UNSUBSCRIBE",
                };
                tracing::warn!(%channel, command, %error, failed, "redis did not take a subscription change; retrying");
            }
            return Err(());
        }
    }

    /// Decides the channel's next command (called with its turn held).
    fn next_step(&self, channel: &str) -> Step {
        let mut state = self.state();
        let State { channels, live, .. } = &mut *state;
        let Some(entry) = channels.get_mut(channel) else {
            return Step::Done;
        };
        let command = if entry.wanted > 0 {
            Command::Subscribe
        } else {
            Command::Unsubscribe
        };
        if !entry.in_step(live.as_ref()) {
            if let Some(live) = live {
                return Step::Send {
                    sink: live.sink.clone(),
                    generation: live.generation,
                    command,
                };
            }
        }
        // Forget a channel nobody wants (a count below zero is kept: the join its leave
        // overtook is still to come), unless another caller waits for its turn (it will look
        // again) or a retry is pending.
        if entry.wanted == 0 && Arc::strong_count(&entry.turn) <= 2 && !entry.retrying {
            channels.remove(channel);
        }
        Step::Done
    }

    /// Notes a command Redis took on the connection of `generation`.
    fn record(&self, channel: &str, generation: u64, command: Command) {
        if let Some(entry) = self.state().channels.get_mut(channel) {
            match command {
                Command::Subscribe => entry.subscribed_on = Some(generation),
                Command::Unsubscribe if entry.subscribed_on == Some(generation) => entry.subscribed_on = None,
                Command::Unsubscribe => {}
            }
        }
    }

    /// Tries a channel's command again with backoff until Redis takes it or the channel needs
    /// nothing more (one background task per channel).
    fn retry_in_background(self: &Arc<Self>, channel: String) {
        {
            let mut state = self.state();
            match state.channels.get_mut(&channel) {
                Some(entry) if !entry.retrying => entry.retrying = true,
                _ => return,
            }
        }
        let this = self.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                tokio::time::sleep(backoff).await;
                if this.settle(&channel).await.is_ok() {
                    backoff = FIRST_BACKOFF;
                } else {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                if this.retry_done(&channel) {
                    return;
                }
            }
        });
    }

    /// Whether a retry can stop: Redis is in step with the channel's count (checked with the
    /// flag cleared at once, so a change that failed meanwhile starts a new retry). Forgets a
    /// channel nobody wants.
    fn retry_done(&self, channel: &str) -> bool {
        let mut state = self.state();
        let State { channels, live, .. } = &mut *state;
        let Some(entry) = channels.get_mut(channel) else {
            return true;
        };
        if !entry.in_step(live.as_ref()) {
            return false;
        }
        entry.retrying = false;
        if entry.wanted == 0 && Arc::strong_count(&entry.turn) == 1 {
            channels.remove(channel);
        }
        true
    }

    // ---- the subscription connection ----

    /// A new subscription connection: its generation, and the channels to subscribe on it.
    pub(super) fn connecting(&self) -> (u64, Vec<String>) {
        let mut state = self.state();
        state.generations += 1;
        let wanted = state
            .channels
            .iter()
            .filter(|(_, c)| c.wanted > 0)
            .map(|(name, _)| name.clone())
            .collect();
        (state.generations, wanted)
    }

    /// The new connection subscribed `subscribed` (all it was given, or none if that failed):
    /// it becomes the live one, and every channel whose state changed meanwhile settles.
    pub(super) fn connected(self: &Arc<Self>, generation: u64, sink: PubSubSink, subscribed: &[String]) {
        let unsettled: Vec<String> = {
            let mut state = self.state();
            for channel in subscribed {
                // A channel given up while the connection subscribed it stays known until
                // it is unsubscribed again.
                let entry = state.channels.entry(channel.clone()).or_insert_with(Channel::unwanted);
                entry.subscribed_on = Some(generation);
            }
            state.live = Some(Live { generation, sink });
            state
                .channels
                .iter()
                .filter(|(_, c)| (c.wanted > 0) != (c.subscribed_on == Some(generation)))
                .map(|(name, _)| name.clone())
                .collect()
        };
        for channel in unsettled {
            let this = self.clone();
            tokio::spawn(async move { this.settle_or_retry(channel).await });
        }
    }

    /// The live connection is gone; until the next one, nothing is subscribed.
    pub(super) fn disconnected(&self, generation: u64) {
        let mut state = self.state();
        if state.live.as_ref().is_some_and(|l| l.generation == generation) {
            state.live = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriptions() -> Arc<Subscriptions> {
        let metrics = Arc::new(crate::observability::BackplaneMetrics::new("test"));
        Arc::new(Subscriptions::new(Duration::from_secs(1), metrics))
    }

    fn group(name: &str) -> Route {
        Route::Group("Hub".into(), name.into())
    }

    #[tokio::test]
    async fn a_leave_that_overtakes_its_join_still_cancels_it() {
        // No connection: only the counting is exercised.
        let subscriptions = subscriptions();
        subscriptions.remove("g".into()).await;
        subscriptions.add("g".into(), group("g")).await;
        assert!(
            subscriptions.route("g").is_none(),
            "joined once and left once: not wanted"
        );
        subscriptions.add("g".into(), group("g")).await;
        assert!(subscriptions.route("g").is_some(), "a later join is wanted");
    }

    #[tokio::test]
    async fn a_channel_is_wanted_while_any_reason_remains() {
        let subscriptions = subscriptions();
        subscriptions
            .add("u".into(), Route::User("Hub".into(), "u".into()))
            .await;
        subscriptions
            .add("u".into(), Route::User("Hub".into(), "u".into()))
            .await;
        subscriptions.remove("u".into()).await;
        assert!(subscriptions.route("u").is_some(), "one connection of the user is left");
        subscriptions.remove("u".into()).await;
        assert!(subscriptions.route("u").is_none());
        assert!(
            subscriptions.state().channels.is_empty(),
            "an unwanted channel is forgotten"
        );
    }
}
