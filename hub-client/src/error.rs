//! [`Error`]: everything that can go wrong, and [`CloseReason`]: why a connection ended.

use std::time::Duration;

/// An error from the client: starting a connection, a call, or the connection's end.
///
/// Errors are cheap to clone (their causes are kept as text), so one error can end every
/// pending call of a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not an absolute `http`, `https`, `ws` or `wss` URL.
    #[error("invalid URL '{0}'")]
    InvalidUrl(String),
    /// The server answered negotiate with a status other than 200.
    #[error("Failed to complete negotiation with the server: {body}: Status code '{status}'")]
    NegotiateStatus {
        /// The HTTP status.
        status: u16,
        /// The response body (or the status' reason phrase when it is empty).
        body: String,
    },
    /// Negotiate failed: the server's `error`, a malformed answer, too many redirects.
    #[error("{0}")]
    Negotiate(String),
    /// No transport the server offers can carry the protocol (this client speaks WebSockets).
    #[error("Unable to connect to the server with any of the available transports: {0}")]
    NoTransport(String),
    /// The access-token factory failed.
    #[error("the access token factory failed: {0}")]
    AccessToken(String),
    /// An HTTP request or the WebSocket failed (connecting, reading or writing).
    #[error("transport error: {0}")]
    Transport(String),
    /// The server refused the handshake; the text is the server's.
    #[error("Server returned handshake error: {0}")]
    Handshake(String),
    /// The server sent nothing (not even a Ping) for the server timeout.
    #[error("Server timeout elapsed without receiving a message from the server.")]
    ServerTimeout(Duration),
    /// The server sent bytes this client cannot read as hub messages.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A value could not be encoded.
    #[error("could not encode a message: {0}")]
    Encode(String),
    /// A result, item or argument could not be decoded into the type asked for.
    #[error("could not decode a value: {0}")]
    Decode(String),
    /// The server completed the call with an error; the text is the server's (for example
    /// `An unexpected error occurred invoking 'X' on the server.`).
    #[error("{0}")]
    Hub(String),
    /// The connection is not started (or was stopped) when the call was made.
    #[error("Cannot send data if the connection is not in the 'Connected' State.")]
    NotConnected,
    /// The connection is in a state that does not allow the operation (starting it twice).
    #[error("{0}")]
    InvalidState(&'static str),
    /// The connection ended while the call was pending.
    #[error("the connection closed: {0}")]
    ConnectionClosed(Box<CloseReason>),
}

/// Why a connection ended, as [`HubConnection::closed`](crate::HubConnection::closed)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`HubConnection::stop`](crate::HubConnection::stop) was called.
    Stopped,
    /// The server sent a Close message (or closed the WebSocket normally without one: no
    /// error, no reconnect).
    ByServer {
        /// The server's error text (`Server returned an error on close: …` is how the
        /// official client words it), when it closed because of one.
        error: Option<String>,
        /// Whether the server allows the client to reconnect.
        allow_reconnect: bool,
    },
    /// The connection failed: the transport broke, the server went silent
    /// ([`Error::ServerTimeout`]) or sent something unreadable.
    Failed(Error),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Stopped => f.write_str("the connection was stopped"),
            CloseReason::ByServer { error: None, .. } => f.write_str("the server closed the connection"),
            CloseReason::ByServer { error: Some(error), .. } => write!(f, "Server returned an error on close: {error}"),
            CloseReason::Failed(error) => write!(f, "{error}"),
        }
    }
}

impl CloseReason {
    /// The error this close carries, if any (a Close message with an error, or a failure).
    pub fn error(&self) -> Option<Error> {
        match self {
            CloseReason::Stopped | CloseReason::ByServer { error: None, .. } => None,
            CloseReason::ByServer { error: Some(_), .. } => Some(Error::ConnectionClosed(Box::new(self.clone()))),
            CloseReason::Failed(error) => Some(error.clone()),
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
