//! [`HubConnection`]: start, stop, handlers, the connection's end.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::args::Arguments;
use crate::config::{Config, TransportKind};
use crate::driver::{Driver, Stateful, Timing};
use crate::error::{CloseReason, Error, Result};
use crate::handlers::{dispatch, Handlers, Outcome};
use crate::handshake::handshake;
use crate::negotiate::{factory_token, negotiate, Negotiated};
use crate::pending::Calls;
use crate::reattach::{Bearer, Reattach};
use crate::reconnect::{Callbacks, RetryContext};
use crate::sender::{Outbound, Sender};
use crate::stateful::{Outgoing, Received};
use crate::transport::Transport;

/// A connection to a SignalR hub. Cheap to clone: clones share the connection.
///
/// When the last clone (and every stream and upload of it) is dropped, the running connection
/// closes as [`stop`](Self::stop) would close it.
///
/// Build one with [`HubConnectionBuilder`](crate::HubConnectionBuilder), register handlers
/// with [`on`](Self::on) and [`on_result`](Self::on_result), then [`start`](Self::start) it.
#[derive(Clone)]
pub struct HubConnection {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: Config,
    handlers: Arc<Handlers>,
    pub(crate) calls: Arc<Calls>,
    running: Mutex<Option<Running>>,
    closed: watch::Sender<Option<CloseReason>>,
    callbacks: Callbacks,
    /// Set by `stop`, so a reconnect in progress gives up.
    stopping: AtomicBool,
    /// Wakes a reconnect waiting out its delay.
    wake: Notify,
    /// Counts the connections made (start and each reconnect), so that a caller can wait
    /// for the next one.
    connected: watch::Sender<u64>,
}

struct Running {
    sender: Sender,
    connection_id: Option<String>,
}

impl HubConnection {
    pub(crate) fn new(config: Config) -> Self {
        HubConnection {
            inner: Arc::new(Inner {
                config,
                handlers: Arc::default(),
                calls: Arc::default(),
                running: Mutex::new(None),
                closed: watch::Sender::new(None),
                callbacks: Callbacks::default(),
                stopping: AtomicBool::new(false),
                wake: Notify::new(),
                connected: watch::Sender::new(0),
            }),
        }
    }

    /// Negotiates (unless skipped), connects a transport and completes the handshake.
    ///
    /// The transports are tried in the order the server lists them in negotiate (WebSockets,
    /// Server-Sent Events for JSON, long polling, as the official clients walk them), among
    /// those allowed by
    /// [`transports`](crate::HubConnectionBuilder::transports); after a transport fails to
    /// connect, negotiate runs again for the next one.
    ///
    /// Fails with [`Error::NegotiateStatus`], [`Error::Negotiate`], [`Error::Handshake`]
    /// (the server's text), [`Error::Transport`] and the like; a connection already running
    /// is left as it is ([`Error::InvalidState`]).
    pub async fn start(&self) -> Result<()> {
        if self.sender().is_ok() {
            return Err(Error::InvalidState(
                "Cannot start a HubConnection that is not in the 'Disconnected' state.",
            ));
        }
        self.inner.stopping.store(false, Ordering::SeqCst);
        self.inner.closed.send_replace(None);
        let (driver, leftover) = connect(&self.inner).await?;
        tokio::spawn(supervise(Arc::downgrade(&self.inner), driver, leftover));
        Ok(())
    }

    /// Sends a Close message, closes the WebSocket and waits for the connection to end.
    /// Pending calls fail with [`Error::ConnectionClosed`]. Stopping a connection that is not
    /// running does nothing.
    pub async fn stop(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        let running = self.lock().take();
        let Some(running) = running else { return };
        let (reply, stopped) = oneshot::channel();
        if running.sender.queue.send(Outbound::Stop(reply)).is_ok() {
            let _ = stopped.await;
        } else if self.inner.config.reconnect.is_some() {
            // Reconnecting (or just ended): wait for the reconnect to give up.
            let _ = tokio::time::timeout(Duration::from_secs(5), self.closed()).await;
        }
    }

    /// Calls `callback` with the reason each time the connection is lost and automatic
    /// reconnect starts (see
    /// [`automatic_reconnect_with`](crate::HubConnectionBuilder::automatic_reconnect_with)).
    /// A socket that [stateful reconnect](crate::HubConnectionBuilder::stateful_reconnect)
    /// brings back to the same connection calls neither this nor
    /// [`on_reconnected`](Self::on_reconnected), as in the official clients.
    pub fn on_reconnecting(&self, callback: impl Fn(&Error) + Send + Sync + 'static) {
        self.inner.callbacks.add_reconnecting(Arc::new(callback));
    }

    /// Calls `callback` with the new connection id each time a reconnect succeeds: the place
    /// to re-join groups, since the server knows nothing of the old connection.
    ///
    /// ```
    /// # fn register(connection: &hub_client::HubConnection) {
    /// let again = connection.clone();
    /// connection.on_reconnected(move |_new_id| {
    ///     let again = again.clone();
    ///     tokio::spawn(async move { again.invoke::<()>("JoinGroup", ("ops",)).await });
    /// });
    /// # }
    /// ```
    pub fn on_reconnected(&self, callback: impl Fn(Option<&str>) + Send + Sync + 'static) {
        self.inner.callbacks.add_reconnected(Arc::new(callback));
    }

    /// Resolves when the running connection (or, if none runs, the next one started) ends,
    /// with the reason: [`CloseReason::Stopped`], the server's Close message
    /// ([`CloseReason::ByServer`]) or a failure ([`CloseReason::Failed`]).
    pub fn closed(&self) -> impl Future<Output = CloseReason> + Send + 'static {
        let mut closed = self.inner.closed.subscribe();
        async move {
            match closed.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(CloseReason::Stopped),
                Err(_) => CloseReason::Stopped,
            }
        }
    }

    /// The connection id negotiate gave (`None` before start, with
    /// [`skip_negotiation`](crate::HubConnectionBuilder::skip_negotiation), or after the end).
    pub fn connection_id(&self) -> Option<String> {
        self.lock()
            .as_ref()
            .filter(|r| !r.sender.is_closed())
            .and_then(|r| r.connection_id.clone())
    }

    /// Whether the connection is running (started and not ended).
    pub fn is_connected(&self) -> bool {
        self.sender().is_ok()
    }

    /// Calls `handler` for each invocation of `method` (case-insensitive) from the server, one
    /// invocation at a time, in order. Several handlers of one method all run. If the server
    /// expects a result, it gets `Client didn't provide a result.`: use
    /// [`on_result`](Self::on_result) for client results.
    ///
    /// ```
    /// # fn register(connection: &hub_client::HubConnection) {
    /// connection.on("ReceiveMessage", |args| async move {
    ///     if let (Ok(user), Ok(text)) = (args.get::<String>(0), args.get::<String>(1)) {
    ///         println!("{user}: {text}");
    ///     }
    /// });
    /// # }
    /// ```
    pub fn on<F, Fut>(&self, method: &str, handler: F)
    where
        F: Fn(Arguments) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.inner.handlers.add(
            method,
            Arc::new(move |args| handler(args).map(|()| Outcome::Nothing).boxed()),
        );
    }

    /// Answers the server's invocations of `method` (a client result): the handler's value is
    /// sent back in the Completion, its error as the Completion's error text.
    ///
    /// ```
    /// # fn register(connection: &hub_client::HubConnection) {
    /// connection.on_result("Confirm", |args| async move {
    ///     let question: String = args.get(0).map_err(|e| e.to_string())?;
    ///     Ok::<_, String>(question.ends_with('?'))
    /// });
    /// # }
    /// ```
    pub fn on_result<F, Fut, R, E>(&self, method: &str, handler: F)
    where
        F: Fn(Arguments) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, E>> + Send + 'static,
        R: Serialize + Send + Sync + 'static,
        E: Display,
    {
        self.inner.handlers.add(
            method,
            Arc::new(move |args| {
                handler(args)
                    .map(|result| match result {
                        Ok(value) => Outcome::Value(Box::new(value)),
                        Err(error) => Outcome::Error(error.to_string()),
                    })
                    .boxed()
            }),
        );
    }

    /// Removes every handler of `method`.
    pub fn remove(&self, method: &str) {
        self.inner.handlers.remove(method);
    }

    /// Waits until the connection runs (at once if it does): `None` then, or the reason it
    /// ended for good (stopped, closed without a reconnect, or the reconnect gave up).
    pub(crate) async fn running(&self) -> Option<CloseReason> {
        let mut connected = self.inner.connected.subscribe();
        let mut closed = self.inner.closed.subscribe();
        loop {
            if self.sender().is_ok() {
                return None;
            }
            if let Some(reason) = closed.borrow_and_update().clone() {
                return Some(reason);
            }
            tokio::select! {
                _ = connected.changed() => {}
                _ = closed.changed() => {}
            }
        }
    }

    /// The running connection's sender, or [`Error::NotConnected`].
    pub(crate) fn sender(&self) -> Result<Sender> {
        match self.lock().as_ref() {
            Some(running) if !running.sender.is_closed() => Ok(running.sender.clone()),
            _ => Err(Error::NotConnected),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connected transport, before the handshake.
struct Opened {
    transport: Transport,
    /// The connection id negotiate gave.
    connection_id: Option<String>,
    /// How to open the socket again, when stateful reconnect was agreed (WebSockets only).
    reattach: Option<Reattach>,
}

/// Negotiates (unless skipped) and connects the first transport that works.
async fn open_transport(config: &Config) -> Result<Opened> {
    let token = factory_token(config).await?;
    if config.skip_negotiation {
        if !config.transports.contains(&TransportKind::WebSockets) {
            return Err(Error::Negotiate(
                "Negotiation can only be skipped when using the WebSocket transport directly.".into(),
            ));
        }
        let transport = Transport::open(config, TransportKind::WebSockets, &config.url, None, token.as_deref()).await?;
        return Ok(Opened {
            transport,
            connection_id: None,
            reattach: None,
        });
    }
    let mut negotiated = negotiate(config, token.clone()).await?;
    let kinds = negotiated.transports.clone();
    let mut failures = Vec::new();
    for (attempt, kind) in kinds.into_iter().enumerate() {
        if attempt > 0 {
            negotiated = negotiate(config, token.clone()).await?;
        }
        let id = negotiated.token.as_deref();
        match Transport::open(config, kind, &negotiated.url, id, negotiated.access_token.as_deref()).await {
            Ok(transport) => {
                let reattach = stateful_reattach(config, kind, &negotiated);
                return Ok(Opened {
                    transport,
                    connection_id: negotiated.connection_id,
                    reattach,
                });
            }
            Err(error) => {
                tracing::debug!(transport = kind.name(), %error, "transport failed, trying the next");
                failures.push(format!("{} failed: {error}", kind.name()));
            }
        }
    }
    Err(Error::NoTransport(failures.join("; ")))
}

/// Stateful reconnect applies when the client asked, the server agreed, the transport is
/// WebSockets and the protocol has a version that numbers messages (2).
fn stateful_reattach(config: &Config, kind: TransportKind, negotiated: &Negotiated) -> Option<Reattach> {
    let usable = config.stateful_reconnect.is_some()
        && negotiated.stateful_reconnect
        && kind == TransportKind::WebSockets
        && config.protocol.version() >= 2;
    let token = negotiated.token.clone().filter(|_| usable)?;
    let bearer = if negotiated.access_token_from_factory {
        Bearer::Factory
    } else {
        Bearer::Fixed(negotiated.access_token.clone())
    };
    Some(Reattach {
        config: config.clone(),
        url: negotiated.url.clone(),
        token,
        bearer,
    })
}

/// Connects a transport, completes the handshake and makes the connection the running one;
/// returns the task that will run it.
async fn connect(inner: &Inner) -> Result<(Driver, bytes::Bytes)> {
    let config = &inner.config;
    let Opened {
        mut transport,
        connection_id,
        reattach,
    } = open_transport(config).await?;
    let stateful = config
        .stateful_reconnect
        .zip(reattach)
        .map(|(options, reattach)| Stateful {
            outgoing: Outgoing::new(options.buffer_size),
            received: Received::default(),
            reattach,
        });
    let leftover = handshake(config, &mut transport, stateful.is_some()).await?;
    let (queue, outbound) = mpsc::unbounded_channel();
    let sender = Sender {
        protocol: config.protocol.clone(),
        queue,
        stateful: stateful.is_some(),
    };
    let (invocations, to_dispatch) = mpsc::unbounded_channel();
    let driver = Driver {
        transport,
        protocol: config.protocol.clone(),
        queue: outbound,
        calls: inner.calls.clone(),
        invocations,
        timing: Timing {
            keep_alive_interval: config.keep_alive_interval,
            server_timeout: config.server_timeout,
        },
        stateful,
    };
    tokio::spawn(dispatch(inner.handlers.clone(), to_dispatch, sender.downgrade()));
    *inner.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(Running { sender, connection_id });
    inner.connected.send_modify(|count| *count += 1);
    Ok((driver, leftover))
}

/// The error a lost connection is reconnected for; `None` when it must not be (stopped, or
/// closed by the server without `allowReconnect`).
fn reconnect_reason(reason: &CloseReason) -> Option<Error> {
    match reason {
        CloseReason::Failed(error) => Some(error.clone()),
        CloseReason::ByServer {
            allow_reconnect: true, ..
        } => Some(Error::ConnectionClosed(Box::new(reason.clone()))),
        _ => None,
    }
}

/// Runs the connection, reconnecting it while the policy allows, then publishes its end.
/// Holds the connection weakly: dropping every handle ends it.
async fn supervise(connection: Weak<Inner>, driver: Driver, leftover: bytes::Bytes) {
    let (mut reason, mut stopped) = driver.run(leftover).await;
    while let Some(lost) = reconnect_reason(&reason) {
        let Some((driver, leftover)) = reconnect(&connection, lost).await else {
            break;
        };
        (reason, stopped) = driver.run(leftover).await;
    }
    if let Some(inner) = connection.upgrade() {
        if inner.stopping.load(Ordering::SeqCst) && reconnect_reason(&reason).is_some() {
            reason = CloseReason::Stopped;
        }
        inner.closed.send_replace(Some(reason));
    }
    if let Some(stopped) = stopped {
        let _ = stopped.send(());
    }
}

/// Tries to connect again after the delays the policy gives; `None` when it gives up, the
/// connection is stopped, or every handle on it is gone.
async fn reconnect(connection: &Weak<Inner>, lost: Error) -> Option<(Driver, bytes::Bytes)> {
    let started = Instant::now();
    let mut error = lost;
    for retries in 0_u32.. {
        let inner = connection.upgrade()?;
        let policy = inner.config.reconnect.clone()?;
        if inner.stopping.load(Ordering::SeqCst) {
            return None;
        }
        let context = RetryContext {
            previous_retry_count: retries,
            elapsed: started.elapsed(),
            retry_reason: &error,
        };
        let delay = policy.next_retry_delay(&context)?;
        if retries == 0 {
            inner.callbacks.reconnecting(&error);
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = inner.wake.notified() => {}
        }
        if inner.stopping.load(Ordering::SeqCst) {
            return None;
        }
        match connect(&inner).await {
            Ok(connected) => {
                if inner.stopping.load(Ordering::SeqCst) {
                    // Stopped while connecting: the new connection ends at once.
                    if let Some(running) = inner.running.lock().unwrap_or_else(|p| p.into_inner()).take() {
                        let _ = running.sender.queue.send(Outbound::Stop(oneshot::channel().0));
                    }
                    return Some(connected);
                }
                let id = inner
                    .running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .and_then(|r| r.connection_id.clone());
                inner.callbacks.reconnected(id.as_deref());
                return Some(connected);
            }
            Err(failed) => {
                tracing::debug!(error = %failed, retries, "reconnect attempt failed");
                error = failed;
            }
        }
    }
    None
}
