//! [`Transport`]: bytes to and from the server, over WebSockets, Server-Sent Events or long
//! polling.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hub_protocol::TransferFormat;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::config::{Config, TransportKind};
use crate::error::{CloseReason, Error, Result};
pub(crate) use crate::incoming::Incoming;
use crate::long_polling::LongPolling;
use crate::server_sent_events::ServerSentEvents;
use crate::url::HubUrl;
use crate::websocket::{self, frame, Socket};

/// A connected transport.
pub(crate) enum Transport {
    /// A WebSocket.
    WebSockets(Box<Socket>),
    /// Server-Sent Events.
    ServerSentEvents(Box<ServerSentEvents>),
    /// Long polling.
    LongPolling(Box<LongPolling>),
}

impl Transport {
    /// Connects a transport of `kind` to `url` with the connection's `id` (none when
    /// negotiate was skipped) and bearer `token`.
    pub(crate) async fn open(
        config: &Config,
        kind: TransportKind,
        url: &HubUrl,
        id: Option<&str>,
        token: Option<&str>,
    ) -> Result<Transport> {
        match kind {
            TransportKind::WebSockets => {
                let socket = websocket::connect(config, &url.websocket(id, token)).await?;
                Ok(Transport::WebSockets(Box::new(socket)))
            }
            TransportKind::ServerSentEvents | TransportKind::LongPolling => {
                let id = id.ok_or_else(|| Error::Negotiate(format!("{} needs negotiate", kind.name())))?;
                let mut headers = config.headers.clone();
                if let Some(token) = token {
                    let value = http::HeaderValue::try_from(format!("Bearer {token}"))
                        .map_err(|e| Error::AccessToken(format!("the token cannot be sent in a header: {e}")))?;
                    headers.push((http::header::AUTHORIZATION, value));
                }
                let http = config.http.clone();
                if kind == TransportKind::ServerSentEvents {
                    let events = ServerSentEvents::connect(http, url.http(id), headers).await?;
                    return Ok(Transport::ServerSentEvents(Box::new(events)));
                }
                let polling = LongPolling::connect(http, url.http(id), headers).await?;
                Ok(Transport::LongPolling(Box::new(polling)))
            }
        }
    }

    /// The next bytes from the server, or the end.
    pub(crate) async fn recv(&mut self) -> Incoming {
        match self {
            Transport::WebSockets(socket) => match socket.next().await {
                Some(Ok(Message::Text(text))) => Incoming::Data(Bytes::from(text)),
                Some(Ok(Message::Binary(bytes))) => Incoming::Data(bytes),
                Some(Ok(Message::Close(frame))) => {
                    Incoming::Closed(closed_by_server(frame.map(|f| (f.code, f.reason.to_string()))))
                }
                Some(Ok(_)) => Incoming::Data(Bytes::new()),
                Some(Err(e)) => Incoming::Closed(CloseReason::Failed(Error::Transport(e.to_string()))),
                None => Incoming::Closed(CloseReason::Failed(Error::Transport(
                    "the server closed the WebSocket without a close frame".into(),
                ))),
            },
            Transport::ServerSentEvents(events) => events.recv().await,
            Transport::LongPolling(polling) => polling.recv().await,
        }
    }

    /// Sends encoded messages, in a frame of `format` on a WebSocket.
    pub(crate) async fn send(&mut self, format: TransferFormat, bytes: Bytes) -> Result<()> {
        match self {
            Transport::WebSockets(socket) => socket
                .send(frame(format, bytes)?)
                .await
                .map_err(|e| Error::Transport(format!("writing to the WebSocket: {e}"))),
            Transport::ServerSentEvents(events) => events.send(bytes).await,
            Transport::LongPolling(polling) => polling.send(bytes).await,
        }
    }

    /// Ends the transport from the client's side (a WebSocket close, long polling's DELETE).
    pub(crate) async fn close(&mut self) {
        match self {
            Transport::WebSockets(socket) => {
                let socket: &mut Socket = socket;
                let _ = socket.close(None).await;
            }
            Transport::ServerSentEvents(events) => events.close(),
            Transport::LongPolling(polling) => polling.close().await,
        }
    }

    /// Whether the transport keeps the connection alive by itself (long polling): no client
    /// pings, no server timeout, as in the official clients.
    pub(crate) fn inherent_keep_alive(&self) -> bool {
        matches!(self, Transport::LongPolling(_))
    }
}

fn closed_by_server(frame: Option<(CloseCode, String)>) -> CloseReason {
    match frame {
        None | Some((CloseCode::Normal, _)) => CloseReason::ByServer {
            error: None,
            allow_reconnect: false,
        },
        Some((code, reason)) => CloseReason::Failed(Error::Transport(format!(
            "WebSocket closed with status code: {} ({reason}).",
            u16::from(code)
        ))),
    }
}
