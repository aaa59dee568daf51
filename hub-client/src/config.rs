//! [`Config`]: what a connection was built with, and the [`Protocol`] choices.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderName, HeaderValue};
use hub_protocol::HubProtocol;

use crate::http::HttpClient;
use crate::reconnect::RetryPolicy;
use crate::url::HubUrl;

/// What an access-token factory returns: the token, or why there is none.
pub type TokenResult = std::result::Result<String, Box<dyn std::error::Error + Send + Sync>>;

/// An access-token factory, called before negotiate and before each transport connects.
pub(crate) type TokenFactory = Arc<dyn Fn() -> BoxFuture<'static, TokenResult> + Send + Sync>;

/// The hub protocols this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// The JSON hub protocol (text frames).
    #[cfg(feature = "json")]
    Json,
    /// The MessagePack hub protocol (binary frames).
    #[cfg(feature = "msgpack")]
    MessagePack,
}

impl Protocol {
    pub(crate) fn implementation(self) -> Arc<dyn HubProtocol> {
        match self {
            #[cfg(feature = "json")]
            Protocol::Json => Arc::new(hub_protocol::JsonProtocol),
            #[cfg(feature = "msgpack")]
            Protocol::MessagePack => Arc::new(hub_protocol::MessagePackProtocol),
        }
    }
}

/// Stateful reconnect, as the builder asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatefulReconnect {
    /// At or above this many bytes of unacknowledged messages, sends wait.
    pub(crate) buffer_size: usize,
}

/// Everything a connection was built with.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) url: HubUrl,
    pub(crate) protocol: Arc<dyn HubProtocol>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) access_token: Option<TokenFactory>,
    pub(crate) skip_negotiation: bool,
    pub(crate) keep_alive_interval: Duration,
    pub(crate) server_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    /// The transports the client may use, in the order it prefers them.
    pub(crate) transports: Vec<TransportKind>,
    pub(crate) http: HttpClient,
    /// Automatic reconnect, when on.
    pub(crate) reconnect: Option<Arc<dyn RetryPolicy>>,
    /// Stateful reconnect, when asked for.
    pub(crate) stateful_reconnect: Option<StatefulReconnect>,
}

/// The transports this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// WebSockets: full duplex, both transfer formats.
    WebSockets,
    /// Server-Sent Events: a GET streams the server's messages, a POST carries the
    /// client's. Text only: offered for JSON, never for MessagePack.
    ServerSentEvents,
    /// Long polling: a GET waits for the server's messages, a POST carries the client's;
    /// both transfer formats. No pings and no server timeout (each poll is the keep-alive).
    LongPolling,
}

impl TransportKind {
    /// The name negotiate uses (`WebSockets`, `ServerSentEvents`, `LongPolling`).
    pub fn name(self) -> &'static str {
        match self {
            TransportKind::WebSockets => "WebSockets",
            TransportKind::ServerSentEvents => "ServerSentEvents",
            TransportKind::LongPolling => "LongPolling",
        }
    }
}
