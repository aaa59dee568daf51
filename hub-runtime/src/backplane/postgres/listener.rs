//! The listening connection: one session of its own (never a pooled one: a pooler in
//! transaction mode would drop the LISTENs), kept up with backoff, LISTENing again on every
//! channel after a reconnect (each reconnect counts a gap), and checked with an empty query
//! every keepalive period so that a PostgreSQL that stops answering is noticed.
//!
//! A task of its own drives the connection and queues the notifications; the loop here handles
//! them one at a time, in order (fetching a stored payload is awaited before the next one).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Notification, Statement};
use tokio_util::sync::CancellationToken;

use super::channels::quote_identifier;
use super::connect::{describe, Connection};
use super::Inner;

/// The channels this server listens on, and the live session's state.
#[derive(Default)]
pub(super) struct Listening {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    wanted: BTreeSet<String>,
    live: Option<Live>,
    generations: u64,
    /// The generation asked to reconnect (a LISTEN failed on it).
    restart: Option<u64>,
}

struct Live {
    generation: u64,
    client: Arc<Client>,
    listened: BTreeSet<String>,
    pid: i32,
}

impl Listening {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens on `channel` from now on, also after every reconnect (the caller counts
    /// nothing: a failure makes the session reconnect and LISTEN to all again).
    pub(super) async fn add(&self, channel: String, response_timeout: Duration) -> Result<(), ()> {
        let live = {
            let mut state = self.state();
            state.wanted.insert(channel.clone());
            state.live.as_ref().map(|l| (l.generation, l.client.clone()))
        };
        // No session: the next one LISTENs to everything wanted.
        let Some((generation, client)) = live else {
            return Ok(());
        };
        let sql = format!("LISTEN {}", quote_identifier(&channel));
        let listened = matches!(
            tokio::time::timeout(response_timeout, client.batch_execute(&sql)).await,
            Ok(Ok(()))
        );
        let mut state = self.state();
        if !listened {
            state.restart = Some(generation);
            drop(state);
            self.wake.notify_one();
            return Err(());
        }
        if let Some(live) = state.live.as_mut().filter(|l| l.generation == generation) {
            live.listened.insert(channel);
        }
        Ok(())
    }

    /// The channels the live session LISTENs on (none while disconnected).
    pub(super) fn listened(&self) -> Vec<String> {
        self.state()
            .live
            .as_ref()
            .map(|l| l.listened.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The live session's backend process id.
    pub(super) fn pid(&self) -> Option<i32> {
        self.state().live.as_ref().map(|l| l.pid)
    }

    /// A new session: its generation, and the channels it must LISTEN on.
    fn connected(&self, client: Arc<Client>, pid: i32) -> (u64, Vec<String>) {
        let mut state = self.state();
        state.generations += 1;
        let generation = state.generations;
        state.live = Some(Live {
            generation,
            client,
            listened: BTreeSet::new(),
            pid,
        });
        (generation, state.wanted.iter().cloned().collect())
    }

    fn listened_all(&self, generation: u64, channels: Vec<String>) {
        if let Some(live) = self.state().live.as_mut().filter(|l| l.generation == generation) {
            live.listened.extend(channels);
        }
    }

    fn disconnected(&self, generation: u64) {
        let mut state = self.state();
        if state.live.as_ref().is_some_and(|l| l.generation == generation) {
            state.live = None;
        }
    }

    fn restart_requested(&self, generation: u64) -> bool {
        self.state().restart == Some(generation)
    }
}

/// A live listening session.
pub(super) struct Session {
    pub(super) client: Arc<Client>,
    /// Reads a stored payload (`$1` id).
    pub(super) fetch: Statement,
    generation: u64,
    notifications: mpsc::UnboundedReceiver<Notification>,
    driver: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Keeps the listening session until `shutdown` (the backplane was dropped).
pub(super) async fn listener(inner: Arc<Inner>, ready: oneshot::Sender<()>, shutdown: CancellationToken) {
    let mut ready = Some(ready);
    let mut backoff = Duration::from_millis(100);
    loop {
        if ready.as_ref().is_some_and(|r| r.is_closed()) {
            // `connect_with` gave up waiting: nobody holds this backplane.
            return;
        }
        match open(&inner).await {
            Ok(mut session) => {
                if let Some(ready) = ready.take() {
                    if ready.send(()).is_err() {
                        inner.listening.disconnected(session.generation);
                        return;
                    }
                } else {
                    tracing::info!("postgres backplane listening again");
                }
                backoff = Duration::from_millis(100);
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = serve(&inner, &mut session) => {}
                }
                inner.listening.disconnected(session.generation);
                inner.metrics.gap();
                tracing::warn!("postgres backplane listening connection lost; reconnecting (local delivery continues)");
            }
            Err(e) => tracing::warn!(error = %e, "postgres backplane cannot listen; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Connects, and LISTENs on every wanted channel.
async fn open(inner: &Arc<Inner>) -> Result<Session, String> {
    let (client, connection) = inner.connector.connect("hub backplane listener").await?;
    let (tx, notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(drive(connection, tx));
    let client = Arc::new(client);
    let timeout = inner.options.response_timeout;
    let prepare = async {
        let fetch = client.prepare(&inner.sql.fetch).await?;
        let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await?.try_get(0)?;
        Ok::<_, tokio_postgres::Error>((fetch, pid))
    };
    let (fetch, pid) = match tokio::time::timeout(timeout, prepare).await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(e)) => return Err(describe(&e)),
        Err(_) => return Err(format!("no answer within {timeout:?}")),
    };
    let (generation, channels) = inner.listening.connected(client.clone(), pid);
    let session = Session {
        client,
        fetch,
        generation,
        notifications,
        driver,
    };
    let sql: String = channels
        .iter()
        .map(|c| format!("LISTEN {};", quote_identifier(c)))
        .collect();
    // One round trip for every channel (given longer, for its size).
    let listened = tokio::time::timeout(timeout.saturating_mul(2), session.client.batch_execute(&sql)).await;
    let error = match listened {
        Ok(Ok(())) => {
            inner.listening.listened_all(generation, channels);
            return Ok(session);
        }
        Ok(Err(e)) => describe(&e),
        Err(_) => format!("no answer within {:?}", timeout.saturating_mul(2)),
    };
    inner.metrics.failed_subscription();
    inner.listening.disconnected(generation);
    Err(format!("LISTEN failed: {error}"))
}

/// Polls the connection, queueing its notifications, until it ends.
async fn drive(mut connection: Connection, tx: mpsc::UnboundedSender<Notification>) {
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(notification)) => {
                if tx.send(notification).is_err() {
                    return;
                }
            }
            Ok(AsyncMessage::Notice(notice)) => {
                tracing::debug!(notice = %notice, "postgres backplane notice");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %describe(&e), "postgres backplane listening connection ended");
                return;
            }
        }
    }
}

/// Handles notifications until the session ends, stops answering, or must reconnect.
async fn serve(inner: &Arc<Inner>, session: &mut Session) {
    let (keepalive, timeout) = (inner.options.keepalive, inner.options.response_timeout);
    let mut health = tokio::time::interval(keepalive.max(Duration::from_millis(10)));
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    health.tick().await;
    loop {
        tokio::select! {
            notification = session.notifications.recv() => match notification {
                Some(n) => super::dispatch::handle(inner, session, n.payload()).await,
                None => return,
            },
            _ = health.tick() => {
                let answered = tokio::time::timeout(timeout, session.client.simple_query("")).await;
                if !matches!(answered, Ok(Ok(_))) {
                    tracing::warn!("postgres backplane listening connection does not answer; reconnecting");
                    return;
                }
            }
            () = inner.listening.wake.notified() => {
                if inner.listening.restart_requested(session.generation) {
                    return;
                }
            }
        }
    }
}
