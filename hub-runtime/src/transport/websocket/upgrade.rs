//! The upgrade: which requests may become a WebSocket, the 101 answer, and the socket's
//! buffer sizes (in one place).

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use warp::reply::Response;

use super::{WebSocket, WsLimits};

/// Bytes read from the socket at a time. Small, because every idle connection keeps one
/// (most hub messages are far smaller): a larger message is assembled from several reads.
const READ_BUFFER: usize = 1024;
/// Frames queued for one write are gathered up to this many bytes before they hit the socket.
const WRITE_BUFFER: usize = 16 * 1024;

/// A request asking to become a WebSocket (RFC 6455 section 4.2.1), and the means to take
/// over its connection.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn header_has_token(headers: &HeaderMap, name: http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

impl Upgrade {
    /// The upgrade `headers` ask for, if they ask for one this server can perform: a GET
    /// with `Connection: upgrade`, `Upgrade: websocket`, version 13 and a key, on an HTTP/1.1
    /// connection that can be taken over.
    pub(crate) fn from_request(method: &Method, headers: &HeaderMap, on_upgrade: Option<OnUpgrade>) -> Option<Self> {
        if method != Method::GET
            || !header_has_token(headers, http::header::CONNECTION, "upgrade")
            || !header_has_token(headers, http::header::UPGRADE, "websocket")
            || headers
                .get(http::header::SEC_WEBSOCKET_VERSION)
                .map(HeaderValue::as_bytes)
                != Some(b"13")
        {
            return None;
        }
        let key = headers.get(http::header::SEC_WEBSOCKET_KEY)?.clone();
        Some(Upgrade {
            key,
            on_upgrade: on_upgrade?,
        })
    }

    /// Answers 101 Switching Protocols; the socket comes from the returned [`PendingSocket`]
    /// once the client has it. The socket reads 1 KiB at a time and gathers writes up to
    /// 16 KiB.
    pub(crate) fn accept(self, limits: WsLimits) -> (Response, PendingSocket) {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(limits.max_frame_size))
            .max_frame_size(Some(limits.max_frame_size));
        let pending = PendingSocket {
            on_upgrade: self.on_upgrade,
            config,
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let mut response = Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(http::header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        (response, pending)
    }
}

/// A socket that exists once the 101 response has reached the client.
pub(crate) struct PendingSocket {
    on_upgrade: OnUpgrade,
    config: WebSocketConfig,
}

impl PendingSocket {
    /// The socket; `None` if the connection could not be taken over.
    pub(super) async fn connect(self) -> Option<WebSocket> {
        match self.on_upgrade.await {
            Ok(upgraded) => {
                Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(self.config)).await)
            }
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                None
            }
        }
    }
}
