//! [`HubConnectionBuilder`]: the URL, protocol, headers, token and timings of a connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::{HeaderName, HeaderValue};
use hub_protocol::HubProtocol;

use crate::config::{Config, Protocol, StatefulReconnect, TokenFactory, TransportKind};
use crate::connection::HubConnection;
use crate::cookies::CookieJar;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::reconnect::{Delays, RetryPolicy};
use crate::url::HubUrl;

/// Builds a [`HubConnection`].
///
/// ```
/// use std::time::Duration;
/// use hub_client::{HubConnectionBuilder, Protocol};
///
/// let connection = HubConnectionBuilder::new("http://localhost:5000/chat")
///     .protocol(Protocol::MessagePack)
///     .header("x-tenant", "blue")
///     .access_token_factory(|| async { Ok::<_, std::io::Error>("secret".to_string()) })
///     .server_timeout(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// # drop(connection);
/// ```
pub struct HubConnectionBuilder {
    url: String,
    protocol: Option<Arc<dyn HubProtocol>>,
    headers: Vec<(String, String)>,
    access_token: Option<TokenFactory>,
    skip_negotiation: bool,
    keep_alive_interval: Duration,
    server_timeout: Duration,
    handshake_timeout: Duration,
    transports: Vec<TransportKind>,
    reconnect: Option<Arc<dyn RetryPolicy>>,
    cookies: Vec<(String, String)>,
    stateful_reconnect: bool,
    stateful_reconnect_buffer_size: usize,
}

/// The official clients' `statefulReconnectBufferSize`: 100,000 bytes.
const DEFAULT_STATEFUL_RECONNECT_BUFFER_SIZE: usize = 100_000;

impl HubConnectionBuilder {
    /// A connection to the hub at `url` (`http(s)://` or `ws(s)://`; a query is kept and sent
    /// on every request).
    pub fn new(url: impl Into<String>) -> Self {
        HubConnectionBuilder {
            url: url.into(),
            protocol: None,
            headers: Vec::new(),
            access_token: None,
            skip_negotiation: false,
            keep_alive_interval: Duration::from_secs(15),
            server_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(15),
            transports: vec![
                TransportKind::WebSockets,
                TransportKind::ServerSentEvents,
                TransportKind::LongPolling,
            ],
            reconnect: None,
            cookies: Vec::new(),
            stateful_reconnect: false,
            stateful_reconnect_buffer_size: DEFAULT_STATEFUL_RECONNECT_BUFFER_SIZE,
        }
    }

    /// The hub protocol (JSON unless told otherwise, or MessagePack without the `json`
    /// feature).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol.implementation());
        self
    }

    /// A hub protocol of one's own.
    pub fn custom_protocol(mut self, protocol: Arc<dyn HubProtocol>) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// A header sent with negotiate and the WebSocket upgrade. An invalid name or value
    /// fails [`build`](Self::build).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// A cookie sent on every request (negotiate, the transports). Cookies the server sets
    /// (negotiate's `Set-Cookie`) are kept and sent back to it as well.
    pub fn cookie(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cookies.push((name.into(), value.into()));
        self
    }

    /// Where the bearer token comes from: called on each [`start`](HubConnection::start)
    /// (and once more when negotiate answers 401, as the official clients retry). The token
    /// is sent to negotiate as `Authorization: Bearer …` and to the WebSocket as the
    /// `access_token` query parameter, as browsers' clients send it. A negotiate redirect that
    /// carries an `accessToken` replaces it for that connection.
    pub fn access_token_factory<F, Fut, E>(mut self, factory: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<String, E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
    {
        self.access_token = Some(Arc::new(move || factory().map(|r| r.map_err(Into::into)).boxed()));
        self
    }

    /// Connects the WebSocket straight to the URL, without negotiate (the server must allow
    /// it; the connection then has no connection id). WebSockets only.
    pub fn skip_negotiation(mut self, skip: bool) -> Self {
        self.skip_negotiation = skip;
        self
    }

    /// The transports the client may use (all unless told: WebSockets, Server-Sent Events,
    /// long polling). The server's order in negotiate decides which is tried first.
    pub fn transports(mut self, transports: impl IntoIterator<Item = TransportKind>) -> Self {
        self.transports = transports.into_iter().collect();
        self
    }

    /// Reconnects a lost connection after 0, 2, 10 and 30 seconds, then gives up (the official
    /// clients' default). See [`automatic_reconnect_with`](Self::automatic_reconnect_with).
    pub fn automatic_reconnect(self) -> Self {
        self.automatic_reconnect_with(Delays::default())
    }

    /// Reconnects a lost connection (a transport failure, a server timeout, or the server's
    /// Close message with `allowReconnect`) when and as long as `policy` says.
    ///
    /// A reconnect is a new connection, as in the official clients: negotiate runs again,
    /// the token factory is called again, and the **connection id changes**. The server
    /// forgets everything it knew about the old connection, its group memberships included:
    /// re-join groups (and re-send any per-connection state) in an
    /// [`on_reconnected`](HubConnection::on_reconnected) callback. Calls pending when the
    /// connection was lost fail with [`Error::ConnectionClosed`]; calls made while
    /// reconnecting fail with [`Error::NotConnected`]. [`HubConnection::closed`] resolves only
    /// when the policy gives up (or [`stop`](HubConnection::stop) is called).
    pub fn automatic_reconnect_with(mut self, policy: impl RetryPolicy) -> Self {
        self.reconnect = Some(Arc::new(policy));
        self
    }

    /// Stateful reconnect (off unless asked for): a dropped WebSocket is opened again for the
    /// **same connection**, and nothing sent either way is lost.
    ///
    /// Negotiate asks for it (`useStatefulReconnect=true`); it applies when the server
    /// agrees and the transport is WebSockets. Both sides then number the messages they send
    /// (invocations, stream items, completions, cancellations) and keep them until the other
    /// side acknowledges them; the client acknowledges what it receives about once a second.
    /// When the socket drops without a Close message, the client opens it once more right
    /// away with the same connection token (no negotiate, no handshake: the connection id,
    /// its groups and the server's state stay), sends a Sequence message and the messages
    /// the server has not acknowledged, and drops what the server resends that it already
    /// handled. Calls in flight complete; handlers see each server message once, in order.
    ///
    /// As in the official clients, this is invisible to the application:
    /// [`on_reconnecting`](HubConnection::on_reconnecting) and
    /// [`on_reconnected`](HubConnection::on_reconnected) are not called, and calls made
    /// meanwhile are kept and sent on the new socket. If the socket cannot be opened again
    /// (within the [handshake timeout](Self::handshake_timeout)), the connection is lost as
    /// it would be without this option: [automatic
    /// reconnect](Self::automatic_reconnect_with) takes over if it is on, or the connection
    /// closes.
    ///
    /// The messages kept for the server are bounded by
    /// [`stateful_reconnect_buffer_size`](Self::stateful_reconnect_buffer_size): once they
    /// reach it, [`send`](HubConnection::send) and uploads wait until the server
    /// acknowledges enough of them.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), hub_client::Error> {
    /// use hub_client::HubConnectionBuilder;
    ///
    /// let connection = HubConnectionBuilder::new("http://localhost:5000/chat")
    ///     .stateful_reconnect(true)
    ///     .stateful_reconnect_buffer_size(1_000_000)
    ///     // For when the socket cannot be brought back: a new connection.
    ///     .automatic_reconnect()
    ///     .build()?;
    /// connection.start().await?;
    /// // Sent exactly once, even if the socket drops meanwhile.
    /// connection.send("Broadcast", ("hello",)).await?;
    /// # Ok(()) }
    /// ```
    pub fn stateful_reconnect(mut self, enabled: bool) -> Self {
        self.stateful_reconnect = enabled;
        self
    }

    /// With [stateful reconnect](Self::stateful_reconnect): at or above this many bytes of
    /// messages the server has not acknowledged, sends wait for its Acks (100,000 bytes, the
    /// official clients' `statefulReconnectBufferSize`).
    pub fn stateful_reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.stateful_reconnect_buffer_size = bytes;
        self
    }

    /// How long the client may send nothing before it sends a Ping (15 s).
    pub fn keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }

    /// How long the server may send nothing before the connection ends with
    /// [`Error::ServerTimeout`] (30 s; keep it about twice the server's keep-alive interval).
    pub fn server_timeout(mut self, timeout: Duration) -> Self {
        self.server_timeout = timeout;
        self
    }

    /// How long the server may take to answer the handshake (15 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Checks the options and builds the connection (not started: register handlers with
    /// [`HubConnection::on`], then [`HubConnection::start`]).
    pub fn build(self) -> Result<HubConnection> {
        let url = HubUrl::parse(&self.url)?;
        let protocol = match self.protocol {
            Some(protocol) => protocol,
            None => hub_protocol::default_protocols()
                .into_iter()
                .next()
                .ok_or_else(|| Error::Negotiate("no hub protocol: enable the `json` or `msgpack` feature".into()))?,
        };
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in self.headers {
            let name =
                HeaderName::try_from(name.as_str()).map_err(|e| Error::Transport(format!("header '{name}': {e}")))?;
            let value = HeaderValue::try_from(value).map_err(|e| Error::Transport(format!("header '{name}': {e}")))?;
            headers.push((name, value));
        }
        let cookies = CookieJar::default();
        for (name, value) in &self.cookies {
            cookies.set_user(name, value);
        }
        Ok(HubConnection::new(Config {
            url,
            protocol,
            headers,
            access_token: self.access_token,
            skip_negotiation: self.skip_negotiation,
            keep_alive_interval: self.keep_alive_interval,
            server_timeout: self.server_timeout,
            handshake_timeout: self.handshake_timeout,
            transports: self.transports,
            http: HttpClient::new(cookies),
            reconnect: self.reconnect,
            stateful_reconnect: self.stateful_reconnect.then_some(StatefulReconnect {
                buffer_size: self.stateful_reconnect_buffer_size,
            }),
        }))
    }
}
