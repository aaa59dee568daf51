//! Which subjects this server listens on: one NATS subscription per hub (`.all`), per local
//! connection, per user with a local connection and per group with a local member.
//!
//! As with Redis, every reason to listen counts once (a subject is wanted while its count is
//! above zero), because the reports of concurrent joins and leaves may arrive in any order. A
//! subject's SUBSCRIBE and UNSUBSCRIBE are decided one at a time (each subject has its own
//! turn), each looking at the count when it is decided.
//!
//! Per-subject subscriptions rather than one wildcard (`{prefix}.{hub}.>`) filtered here: a
//! wildcard would bring every group's and user's traffic of the whole fleet to every server,
//! while a NATS subscription costs a map entry on each side and a small task here, and the
//! server does the filtering.
//!
//! async-nats keeps the subscriptions across reconnects (it subscribes again on every new
//! connection), so unlike Redis nothing is resubscribed here. After a SUB, `add` waits for
//! the server to answer a request sent after it (see [`Subscriptions::confirm`]), so it
//! returns once the server has the interest: a message another server publishes after a join
//! reaches the new member (on one server; in a NATS cluster interest reaches the other nodes a
//! moment later). While
//! the broker is unreachable `add` does not wait: the subscription is queued and sent when the
//! client reconnects. Only a subscription the client could not even queue (its command queue
//! stayed full for the response timeout) counts as failed, and is retried with backoff.
//!
//! Each subscription has a reader task that puts chunked messages together and hands them to
//! the backplane; an unsubscribed reader first sends UNSUBSCRIBE (ordered before a later
//! SUBSCRIBE of the same subject) and then delivers what had already arrived.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::RequestErrorKind;
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::frames::Reassembly;
use super::{Inner, Route};
use crate::observability::BackplaneMetrics;

/// The first wait before a failed subscription is tried again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Asks a reader to unsubscribe; it answers once UNSUBSCRIBE is queued.
type Stop = oneshot::Sender<oneshot::Sender<()>>;

struct Entry {
    /// `None` while only a leave was counted (its join's report comes later).
    route: Option<Route>,
    /// How many reasons to listen there are; may dip below zero for a moment.
    wanted: i64,
    /// The live subscription's reader (dropping it unsubscribes too).
    active: Option<Stop>,
    /// Taken while deciding and carrying out this subject's change.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Whether a background task retries this subject's failed subscription.
    retrying: bool,
}

impl Entry {
    fn unwanted() -> Self {
        Entry {
            route: None,
            wanted: 0,
            active: None,
            turn: Arc::new(tokio::sync::Mutex::new(())),
            retrying: false,
        }
    }

    fn in_step(&self) -> bool {
        (self.wanted > 0) == self.active.is_some()
    }
}

enum Step {
    Done,
    Subscribe(Route),
    Unsubscribe(Stop),
}

/// The subjects this server listens on; see the module documentation.
pub(super) struct Subscriptions {
    entries: Mutex<HashMap<String, Entry>>,
    client: async_nats::Client,
    inner: Weak<Inner>,
    /// Where [`Subscriptions::confirm`] sends its probes.
    confirm_subject: String,
    response_timeout: Duration,
    metrics: Arc<BackplaneMetrics>,
    /// Cancelled when the backplane is dropped: every reader stops.
    closed: CancellationToken,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

impl Subscriptions {
    pub(super) fn new(
        client: async_nats::Client,
        inner: Weak<Inner>,
        confirm_subject: String,
        response_timeout: Duration,
        metrics: Arc<BackplaneMetrics>,
    ) -> Self {
        Subscriptions {
            entries: Mutex::new(HashMap::new()),
            client,
            inner,
            confirm_subject,
            response_timeout,
            metrics,
            closed: CancellationToken::new(),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One more reason to listen on `subject`; returns once the server has the interest (or
    /// the broker is unreachable: then when it is back; or after one failed attempt, retried
    /// in the background).
    pub(super) async fn add(self: &Arc<Self>, subject: String, route: Route) {
        self.count(&subject, Some(route), 1);
        self.settle_or_retry(subject).await;
    }

    /// One reason fewer to listen on `subject`; the last one unsubscribes.
    pub(super) async fn remove(self: &Arc<Self>, subject: String) {
        self.count(&subject, None, -1);
        self.settle_or_retry(subject).await;
    }

    fn count(&self, subject: &str, route: Option<Route>, change: i64) {
        let mut entries = self.entries();
        let entry = entries.entry(subject.to_string()).or_insert_with(Entry::unwanted);
        if route.is_some() {
            entry.route = route;
        }
        entry.wanted += change;
    }

    async fn settle_or_retry(self: &Arc<Self>, subject: String) {
        // Waiting for the turn is bounded too: another caller's change may be under way.
        let bound = self.response_timeout.saturating_mul(3);
        let settled = matches!(tokio::time::timeout(bound, self.settle(&subject)).await, Ok(Ok(())));
        if !settled {
            self.retry_in_background(subject);
        }
    }

    /// Brings the subscription in step with the count. `Err` if subscribing failed.
    async fn settle(&self, subject: &str) -> Result<(), ()> {
        let Some(turn) = self.entries().get(subject).map(|e| e.turn.clone()) else {
            return Ok(());
        };
        let _turn = turn.lock().await;
        loop {
            match self.next_step(subject) {
                Step::Done => return Ok(()),
                Step::Subscribe(route) => self.subscribe(subject, route).await?,
                Step::Unsubscribe(stop) => {
                    let (done, unsubscribed) = oneshot::channel();
                    if stop.send(done).is_ok() {
                        let _ = tokio::time::timeout(self.response_timeout, unsubscribed).await;
                    }
                }
            }
        }
    }

    async fn subscribe(&self, subject: &str, route: Route) -> Result<(), ()> {
        let subscribing = self.client.subscribe(subject.to_string());
        let error = match tokio::time::timeout(self.response_timeout, subscribing).await {
            Ok(Ok(subscriber)) => {
                let (stop, stopped) = oneshot::channel();
                tokio::spawn(read(
                    subscriber,
                    route,
                    self.inner.clone(),
                    stopped,
                    self.closed.child_token(),
                    self.metrics.clone(),
                ));
                if let Some(entry) = self.entries().get_mut(subject) {
                    entry.active = Some(stop);
                }
                // While disconnected the SUB waits in the client for the next connection.
                if self.client.connection_state() == State::Connected {
                    self.confirm(subject).await;
                }
                return Ok(());
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("the client took no command within {:?}", self.response_timeout),
        };
        let failed = self.metrics.failed_subscription();
        if failed.is_power_of_two() {
            tracing::warn!(%subject, %error, failed, "could not subscribe on NATS; retrying");
        }
        Err(())
    }

    /// Waits until the server processed the subscription: it reads a connection's operations
    /// in order, so once it answered a request sent after the SUB, the interest is in place.
    /// (`Client::flush` only writes to the socket.) The request goes to a subject nobody
    /// listens on; the server's "no responders" status is the answer.
    async fn confirm(&self, subject: &str) {
        let probe = async_nats::Request::new().timeout(Some(self.response_timeout));
        let answer = self.client.send_request(self.confirm_subject.clone(), probe);
        match tokio::time::timeout(self.response_timeout, answer).await {
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => {}
            Ok(Ok(_)) => {}
            _ => tracing::debug!(%subject, "nats did not confirm a subscription in time"),
        }
    }

    /// Decides the subject's next change (called with its turn held).
    fn next_step(&self, subject: &str) -> Step {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(subject) else {
            return Step::Done;
        };
        if entry.wanted > 0 && entry.active.is_none() {
            if let Some(route) = entry.route.clone() {
                return Step::Subscribe(route);
            }
        }
        if entry.wanted <= 0 {
            if let Some(stop) = entry.active.take() {
                return Step::Unsubscribe(stop);
            }
        }
        // Forget a subject nobody wants (a count below zero is kept: the join its leave
        // overtook is still to come), unless another caller waits for its turn or a retry is
        // pending.
        if entry.wanted == 0 && Arc::strong_count(&entry.turn) <= 2 && !entry.retrying {
            entries.remove(subject);
        }
        Step::Done
    }

    /// Tries a subject's subscription again with backoff until it is in step with the count
    /// (one background task per subject).
    fn retry_in_background(self: &Arc<Self>, subject: String) {
        match self.entries().get_mut(&subject) {
            Some(entry) if !entry.retrying => entry.retrying = true,
            _ => return,
        }
        let this = self.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            loop {
                tokio::time::sleep(backoff).await;
                backoff = match this.settle(&subject).await {
                    Ok(()) => FIRST_BACKOFF,
                    Err(()) => (backoff * 2).min(MAX_BACKOFF),
                };
                if this.retry_done(&subject) {
                    return;
                }
            }
        });
    }

    fn retry_done(&self, subject: &str) -> bool {
        let mut entries = self.entries();
        let Some(entry) = entries.get_mut(subject) else {
            return true;
        };
        if !entry.in_step() {
            return false;
        }
        entry.retrying = false;
        if entry.wanted == 0 && Arc::strong_count(&entry.turn) == 1 {
            entries.remove(subject);
        }
        true
    }
}

/// Reads one subscription: puts chunks together and hands each message to the backplane,
/// until asked to unsubscribe (then what already arrived is still delivered) or the backplane
/// is dropped.
async fn read(
    mut subscriber: async_nats::Subscriber,
    route: Route,
    inner: Weak<Inner>,
    mut stop: oneshot::Receiver<oneshot::Sender<()>>,
    closed: CancellationToken,
    metrics: Arc<BackplaneMetrics>,
) {
    let mut reassembly = Reassembly::default();
    let mut stopping = false;
    loop {
        tokio::select! {
            biased;
            () = closed.cancelled() => return,
            asked = &mut stop, if !stopping => {
                stopping = true;
                // Bounded: the client's command queue may be full while it reconnects (then
                // dropping the subscriber unsubscribes later).
                let unsubscribed = tokio::time::timeout(Duration::from_secs(5), subscriber.unsubscribe()).await;
                if let Ok(done) = asked {
                    let _ = done.send(());
                }
                if !matches!(unsubscribed, Ok(Ok(()))) {
                    return;
                }
            }
            message = subscriber.next() => {
                let Some(message) = message else { return };
                let Some(inner) = inner.upgrade() else { return };
                if let Some(frame) = reassembly.accept(&message.payload, &metrics) {
                    inner.receive(&route, frame, message.reply);
                }
            }
        }
    }
}
