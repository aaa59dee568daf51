//! [`HubConnection`]: start, stop, handlers, the connection's end.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::args::Arguments;
use crate::config::{Config, TransportKind};
use crate::driver::{Driver, Timing};
use crate::error::{CloseReason, Error, Result};
use crate::handlers::{dispatch, Handlers, Outcome};
use crate::handshake::handshake;
use crate::negotiate::{factory_token, negotiate};
use crate::pending::Calls;
use crate::sender::{Outbound, Sender};
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
        let config = &self.inner.config;
        let (mut transport, connection_id) = open_transport(config).await?;
        let leftover = handshake(config, &mut transport).await?;

        let (queue, outbound) = mpsc::unbounded_channel();
        let sender = Sender {
            protocol: config.protocol.clone(),
            queue,
        };
        let (invocations, to_dispatch) = mpsc::unbounded_channel();
        self.inner.closed.send_replace(None);
        let driver = Driver {
            transport,
            protocol: config.protocol.clone(),
            queue: outbound,
            calls: self.inner.calls.clone(),
            invocations,
            closed: self.inner.closed.clone(),
            timing: Timing {
                keep_alive_interval: config.keep_alive_interval,
                server_timeout: config.server_timeout,
            },
        };
        tokio::spawn(dispatch(self.inner.handlers.clone(), to_dispatch, sender.downgrade()));
        *self.lock() = Some(Running { sender, connection_id });
        tokio::spawn(driver.run(leftover));
        Ok(())
    }

    /// Sends a Close message, closes the WebSocket and waits for the connection to end.
    /// Pending calls fail with [`Error::ConnectionClosed`]. Stopping a connection that is not
    /// running does nothing.
    pub async fn stop(&self) {
        let running = self.lock().take();
        let Some(running) = running else { return };
        let (reply, stopped) = oneshot::channel();
        if running.sender.queue.send(Outbound::Stop(reply)).is_ok() {
            let _ = stopped.await;
        }
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

/// Negotiates (unless skipped) and connects the first transport that works; returns it with
/// the connection id.
async fn open_transport(config: &Config) -> Result<(Transport, Option<String>)> {
    let token = factory_token(config).await?;
    if config.skip_negotiation {
        if !config.transports.contains(&TransportKind::WebSockets) {
            return Err(Error::Negotiate(
                "Negotiation can only be skipped when using the WebSocket transport directly.".into(),
            ));
        }
        let transport = Transport::open(config, TransportKind::WebSockets, &config.url, None, token.as_deref()).await?;
        return Ok((transport, None));
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
            Ok(transport) => return Ok((transport, negotiated.connection_id)),
            Err(error) => {
                tracing::debug!(transport = kind.name(), %error, "transport failed, trying the next");
                failures.push(format!("{} failed: {error}", kind.name()));
            }
        }
    }
    Err(Error::NoTransport(failures.join("; ")))
}
