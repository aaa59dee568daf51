//! [`HubConnectionBuilder`]: the URL, protocol, headers, token and timings of a connection.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use http::{HeaderName, HeaderValue};
use hub_protocol::HubProtocol;

use crate::config::{Config, Protocol, TokenFactory, TransportKind};
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
}

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
        }))
    }
}
