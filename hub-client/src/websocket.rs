//! The WebSockets transport: the upgrade, and the frames messages travel in.

use bytes::Bytes;
use hub_protocol::TransferFormat;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::Config;
use crate::error::{Error, Result};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The socket's buffers. tungstenite's defaults (128 KiB each) cost twice: the read buffer is
/// zero-filled up to its size before every read (`memset` was ~25% of the client's samples
/// in `perf record` of `hub-bench client`, 64 connections × 32 B echo), and it stays allocated
/// per connection (166 MiB per 1,000 idle connections; 4 KiB brought that to ~40 MiB, the
/// client's CPU per echo call from 31 to 16 µs, and its calls/s from 0.79 to 0.82 of the
/// hand-written client's, one run each). A
/// larger message still arrives whole: the buffer grows to the frame's length. Writes go out
/// as each frame is fed (the driver feeds one frame per batch, then flushes), so no write
/// buffer is kept either.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

/// Opens the WebSocket at `url` with the configured headers.
pub(crate) async fn connect(config: &Config, url: &str) -> Result<Socket> {
    let mut request = url
        .into_client_request()
        .map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))?;
    for (name, value) in &config.headers {
        request.headers_mut().append(name.clone(), value.clone());
    }
    if let Some(cookies) = config.http.cookies.header(url) {
        request.headers_mut().append(http::header::COOKIE, cookies);
    }
    // Nagle off: a call is one small frame, and waiting to coalesce it only adds latency (as
    // the official clients and the bench's hand-written client set it).
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true)
        .await
        .map_err(|e| Error::Transport(format!("WebSocket failed to connect to {url}: {e}")))?;
    Ok(socket)
}

/// The frame that carries `bytes` in the protocol's transfer format.
pub(crate) fn frame(format: TransferFormat, bytes: Bytes) -> Result<Message> {
    match format {
        // Checked in place: no copy of the message into a `String`.
        TransferFormat::Text => Utf8Bytes::try_from(bytes)
            .map(Message::Text)
            .map_err(|e| Error::Encode(format!("a text message is not UTF-8: {e}"))),
        TransferFormat::Binary => Ok(Message::binary(bytes)),
    }
}
