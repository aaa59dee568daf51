//! The WebSockets transport: the upgrade, and the frames messages travel in.

use bytes::Bytes;
use hub_protocol::TransferFormat;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::Config;
use crate::error::{Error, Result};

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| Error::Transport(format!("WebSocket failed to connect to {url}: {e}")))?;
    Ok(socket)
}

/// The frame that carries `bytes` in the protocol's transfer format.
pub(crate) fn frame(format: TransferFormat, bytes: Bytes) -> Result<Message> {
    match format {
        TransferFormat::Text => String::from_utf8(bytes.to_vec())
            .map(Message::text)
            .map_err(|e| Error::Encode(format!("a text message is not UTF-8: {e}"))),
        TransferFormat::Binary => Ok(Message::binary(bytes)),
    }
}
