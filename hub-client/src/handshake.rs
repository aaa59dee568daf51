//! The handshake, on any transport: the request, then the server's reply (its error text
//! surfaced as [`Error::Handshake`]).

use bytes::Bytes;
use hub_protocol::handshake::RECORD_SEPARATOR;
use hub_protocol::TransferFormat;
use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::transport::{Incoming, Transport};

#[derive(Deserialize)]
struct HandshakeReply {
    error: Option<String>,
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
}

/// Sends the handshake request and reads the reply; returns the bytes that followed it
/// (the first hub messages). The protocol's version is 1, or its own (2 for JSON and
/// MessagePack) on a `stateful` connection, as the official clients ask.
pub(crate) async fn handshake(config: &Config, transport: &mut Transport, stateful: bool) -> Result<Bytes> {
    let protocol = &config.protocol;
    let version = if stateful {
        protocol.version()
    } else {
        protocol.version().min(1)
    };
    let request = format!("{{\"protocol\":\"{}\",\"version\":{version}}}\u{1e}", protocol.name(),);
    // Always text, whatever the protocol.
    transport
        .send(TransferFormat::Text, Bytes::from(request))
        .await
        .map_err(|e| Error::Handshake(format!("sending the handshake failed: {e}")))?;
    let mut received = Vec::new();
    let reply = tokio::time::timeout(config.handshake_timeout, async {
        loop {
            match transport.recv().await {
                Incoming::Data(bytes) => received.extend_from_slice(&bytes),
                Incoming::Closed(reason) => {
                    return Err(Error::Handshake(format!(
                        "the connection ended during the handshake: {reason}"
                    )));
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
