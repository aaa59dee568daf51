//! The WebSockets transport: the upgrade, then the handshake.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hub_protocol::handshake::RECORD_SEPARATOR;
use hub_protocol::TransferFormat;
use serde::Deserialize;
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
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| Error::Transport(format!("WebSocket failed to connect to {url}: {e}")))?;
    Ok(socket)
}

#[derive(Deserialize)]
struct HandshakeReply {
    error: Option<String>,
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

/// Sends the handshake request and reads the reply; returns the bytes that followed it in
/// the same frame (the first hub messages).
pub(crate) async fn handshake(config: &Config, socket: &mut Socket) -> Result<Bytes> {
    let protocol = &config.protocol;
    let request = format!(
        "{{\"protocol\":\"{}\",\"version\":{}}}\u{1e}",
        protocol.name(),
        protocol.version().min(1)
    );
    socket
        .send(Message::text(request))
        .await
        .map_err(|e| Error::Transport(format!("sending the handshake: {e}")))?;
    let mut received = Vec::new();
    let reply = tokio::time::timeout(config.handshake_timeout, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => received.extend_from_slice(text.as_bytes()),
                Some(Ok(Message::Binary(bytes))) => received.extend_from_slice(&bytes),
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    return Err(Error::Handshake(
                        format!("the server closed the connection during the handshake {why}")
                            .trim_end()
                            .to_string(),
                    ));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Error::Transport(format!("reading the handshake reply: {e}"))),
                None => {
                    return Err(Error::Handshake(
                        "the server closed the connection during the handshake".into(),
                    ))
                }
            }
            if let Some(end) = received.iter().position(|&b| b == RECORD_SEPARATOR) {
                return Ok(end);
            }
        }
    })
    .await
    .map_err(|_| Error::Handshake("The handshake timed out.".into()))??;
    let parsed: HandshakeReply = serde_json::from_slice(&received[..reply])
        .map_err(|e| Error::Handshake(format!("Error parsing handshake response: {e}")))?;
    if let Some(error) = parsed.error {
        return Err(Error::Handshake(error));
    }
    if parsed.kind.is_some() {
        return Err(Error::Handshake(
            "Expected a handshake response from the server.".into(),
        ));
    }
    Ok(Bytes::copy_from_slice(&received[reply + 1..]))
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
