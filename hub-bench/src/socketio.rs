//! The load generator's Socket.IO side: Engine.IO v4 + Socket.IO v5 over a WebSocket, just
//! enough for the echo, broadcast and idle scenarios against the socketioxide peer
//! (`hub-bench sioxide`).
//!
//! On the wire (one Engine.IO packet per WebSocket text frame):
//! - open: the server sends `0{"sid":..,"pingInterval":..,"pingTimeout":..}`, the client
//!   connects to the main namespace with `40`, the server answers `40{"sid":..}`;
//! - a call: the client sends the event `42<ack id>["echo",payload]`, the server answers the
//!   acknowledgement `43<ack id>[payload]`;
//! - a broadcast: the server sends `42["receive",payload]` to every socket;
//! - keep-alive: the server sends `2` (ping), the client must answer `3` (pong).
//!
//! [`Dialect`] lets the scenario drivers speak either this or the hub protocol with the same
//! measurement code.

use std::borrow::Cow;

use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, ConnectSpec, Ws};
use crate::scenario::Scenario;
use crate::wire::{self, Incoming, Proto};

/// What the generator speaks to one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The hub protocol (hub and the floor) in JSON or MessagePack.
    SignalR(Proto),
    /// Socket.IO v5 on Engine.IO v4, JSON payloads (socketioxide's default parser).
    SocketIo,
}

impl Dialect {
    /// Opens connection number `index`: the hub handshake, or the Engine.IO open and the
    /// Socket.IO connect of the main namespace.
    pub async fn open(self, spec: &ConnectSpec, index: usize) -> Result<Ws, String> {
        match self {
            Dialect::SignalR(_) => client::open(spec, index).await,
            Dialect::SocketIo => match tokio::time::timeout(client::OPEN_TIMEOUT, open_socketio(spec, index)).await {
                Ok(result) => result,
                Err(_) => Err("opening timed out".into()),
            },
        }
    }

    /// Appends a call of `method` with one string argument: a hub Invocation, or a Socket.IO
    /// event named `method` in lower case (`Echo` → `echo`), with an ack id when `id` is given.
    pub fn write_call(self, out: &mut Vec<u8>, id: Option<&str>, method: &str, argument: &str) {
        match self {
            Dialect::SignalR(proto) => proto.write_invocation(out, id, method, argument),
            Dialect::SocketIo => {
                out.extend_from_slice(b"42");
                if let Some(id) = id {
                    out.extend_from_slice(id.as_bytes());
                }
                out.push(b'[');
                wire::write_json_str(out, &method.to_ascii_lowercase());
                out.push(b',');
                wire::write_json_str(out, argument);
                out.push(b']');
            }
        }
    }

    /// Wraps encoded bytes into a frame (Socket.IO: always text).
    pub fn frame(self, bytes: Vec<u8>) -> Message {
        match self {
            Dialect::SignalR(proto) => proto.frame(bytes),
            Dialect::SocketIo => Dialect::SignalR(Proto::Json).frame(bytes),
        }
    }

    /// The keep-alive the client sends on its own (hub Pings every 15 s); `None` for
    /// Socket.IO, where the server pings and the client only answers.
    pub fn client_ping(self) -> Option<Vec<u8>> {
        match self {
            Dialect::SignalR(proto) => {
                let mut bytes = Vec::new();
                proto.write_ping(&mut bytes);
                Some(bytes)
            }
            Dialect::SocketIo => None,
        }
    }

    /// What the client owes the server for a [`Incoming::Ping`]: Engine.IO's pong, or
    /// nothing (hub Pings need no answer).
    pub fn pong(self) -> Option<Message> {
        match self {
            Dialect::SignalR(_) => None,
            Dialect::SocketIo => Some(Message::text("3")),
        }
    }

    /// Parses every message in `data`, calling `each` for each of them. Socket.IO
    /// acknowledgements come out as completions, events as invocations, Engine.IO pings as
    /// [`Incoming::Ping`], disconnects and connect errors as [`Incoming::Close`].
    pub fn parse<'a>(self, data: &'a [u8], mut each: impl FnMut(Incoming<'a>)) -> Result<(), String> {
        match self {
            Dialect::SignalR(proto) => proto.parse(data, each),
            Dialect::SocketIo => {
                each(parse_packet(data)?);
                Ok(())
            }
        }
    }
}

/// socketioxide's acknowledgement of `sendtoall` (`ack.send(&())`): `431[null]`.
pub const VOID_ACK_BYTES: usize = 9;

/// What one message of `scenario` costs on the wire in each protocol (payload bytes of the
/// frames, ids of one digit; WebSocket headers add 6 B client → server, 2 B the other way).
pub fn wire_note(scenario: Scenario, payload: usize) -> Option<String> {
    let body = "x".repeat(payload);
    let json = Dialect::SignalR(Proto::Json);
    let size = |dialect: Dialect, id: Option<&str>, method: &str| {
        let mut out = Vec::new();
        dialect.write_call(&mut out, id, method, &body);
        out.len()
    };
    let completion = format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":\"{body}\"}}\u{1e}").len();
    let ack = format!("431[\"{body}\"]").len();
    let void_completion = "{\"type\":3,\"invocationId\":\"1\"}\u{1e}".len();
    Some(match scenario {
        Scenario::Echo => format!(
            "hub JSON invocation {} B + completion {completion} B; Socket.IO event {} B + ack {ack} B",
            size(json, Some("1"), "Echo"),
            size(Dialect::SocketIo, Some("1"), "Echo"),
        ),
        Scenario::Broadcast => format!(
            "hub JSON SendToAll {} B, each Receive {} B, void completion {void_completion} B; Socket.IO event {} B, each receive {} B, ack {VOID_ACK_BYTES} B",
            size(json, Some("1"), "SendToAll"),
            size(json, None, "Receive"),
            size(Dialect::SocketIo, Some("1"), "SendToAll"),
            size(Dialect::SocketIo, None, "receive"),
        ),
        Scenario::Connections => {
            "hub: client Ping (11 B) every 15 s; Socket.IO: server ping `2` every 25 s, client pong `3`".into()
        }
        _ => return None,
    })
}

/// One Engine.IO packet (with the Socket.IO packet inside a message).
fn parse_packet(data: &[u8]) -> Result<Incoming<'_>, String> {
    let text = std::str::from_utf8(data).map_err(|_| "Engine.IO packet is not UTF-8")?;
    let Some(kind) = text.chars().next() else {
        return Err("empty Engine.IO packet".into());
    };
    Ok(match kind {
        '2' => Incoming::Ping,
        '1' => Incoming::Close {
            error: Some("Engine.IO close".into()),
        },
        '4' => socketio_packet(&text[1..])?,
        _ => Incoming::Other,
    })
}

/// A Socket.IO packet of the main namespace: `2[..]` event, `3<id>[..]` ack, `1` disconnect,
/// `4{..}` connect error.
fn socketio_packet(text: &str) -> Result<Incoming<'_>, String> {
    let Some(kind) = text.chars().next() else {
        return Err("empty Socket.IO packet".into());
    };
    let rest = &text[1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, body) = rest.split_at(digits);
    let items = || -> Result<Vec<&RawValue>, String> {
        serde_json::from_str(body).map_err(|e| format!("bad Socket.IO payload: {e}"))
    };
    Ok(match kind {
        '2' => {
            let items = items()?;
            let mut strings = items.iter().map(|raw| raw_str(raw));
            Incoming::Invocation {
                target: strings.next().flatten().unwrap_or_default(),
                argument: strings.next().flatten(),
            }
        }
        '3' => Incoming::Completion {
            invocation_id: Cow::Borrowed(id),
            result: Ok(items()?.first().and_then(|raw| raw_str(raw))),
        },
        '1' => Incoming::Close { error: None },
        '4' => Incoming::Close {
            error: Some(format!("Socket.IO connect error {body}")),
        },
        _ => Incoming::Other,
    })
}

/// A JSON string value, unescaped only when it has escapes.
fn raw_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Cow<'_, str>>(raw.get()).ok()
}

/// The text of a frame, whatever its kind; `None` for control frames.
fn text_of(message: &Message) -> Option<&str> {
    client::payload(message).and_then(|data| std::str::from_utf8(data).ok())
}

async fn open_socketio(spec: &ConnectSpec, index: usize) -> Result<Ws, String> {
    let source = spec.sources[index % spec.sources.len()];
    let stream = client::tcp(spec.server, source)
        .await
        .map_err(|e| format!("connect from {source}: {e}"))?;
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", spec.server);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(client::client_config()))
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let mut connected = false;
    // Bounded by the caller's timeout: the open packet, then our connect's answer.
    loop {
        let message = match ws.next().await {
            Some(Ok(message)) => message,
            Some(Err(e)) => return Err(format!("Socket.IO open read: {e}")),
            None => return Err("closed during the Socket.IO open".into()),
        };
        if let Message::Close(frame) = &message {
            return Err(format!("closed during the Socket.IO open: {frame:?}"));
        }
        let Some(text) = text_of(&message) else { continue };
        if !connected && text.starts_with("0{") {
            ws.send(Message::text("40"))
                .await
                .map_err(|e| format!("Socket.IO connect send: {e}"))?;
            connected = true;
        } else if text.starts_with("40") {
            return Ok(ws);
        } else if text == "2" {
            ws.send(Message::text("3"))
                .await
                .map_err(|e| format!("pong send: {e}"))?;
        } else if text.starts_with("44") {
            return Err(format!("Socket.IO connect refused: {text}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(dialect: Dialect, id: Option<&str>, method: &str, argument: &str) -> Vec<u8> {
        let mut out = Vec::new();
        dialect.write_call(&mut out, id, method, argument);
        out
    }

    #[test]
    fn events_carry_the_ack_id_and_lower_case_name() {
        assert_eq!(
            written(Dialect::SocketIo, Some("12"), "Echo", "a\"b"),
            b"4212[\"echo\",\"a\\\"b\"]"
        );
        assert_eq!(
            written(Dialect::SocketIo, None, "SendToAll", "m"),
            b"42[\"sendtoall\",\"m\"]"
        );
        assert!(Dialect::SocketIo.client_ping().is_none());
        assert_eq!(Dialect::SocketIo.pong(), Some(Message::text("3")));
        assert!(Dialect::SignalR(Proto::Json).pong().is_none());
    }

    #[test]
    fn packets_parse_into_the_harness_messages() {
        let seen = |data: &str| {
            let mut out = Vec::new();
            Dialect::SocketIo
                .parse(data.as_bytes(), |m| out.push(format!("{m:?}")))
                .map(|()| out.join("|"))
        };
        let ack = seen("4312[\"xy\"]").unwrap();
        assert!(
            ack.contains("Completion") && ack.contains("\"12\"") && ack.contains("\"xy\""),
            "{ack}"
        );
        let void_ack = seen("437[]").unwrap();
        assert!(
            void_ack.contains("\"7\"") && void_ack.contains("Ok(None)"),
            "{void_ack}"
        );
        let event = seen("42[\"receive\",\"5;xx\"]").unwrap();
        assert!(event.contains("\"receive\"") && event.contains("\"5;xx\""), "{event}");
        assert_eq!(seen("2").unwrap(), "Ping");
        assert!(seen("41").unwrap().starts_with("Close"));
        assert!(seen("44{\"message\":\"no\"}").unwrap().contains("connect error"));
        assert!(seen("").is_err());
        assert!(seen("43[").is_err());
    }

    /// The per-message sizes the README quotes for a 32-byte payload (ack id 1).
    #[test]
    fn frame_sizes_per_message() {
        let payload = "x".repeat(32);
        let json = Dialect::SignalR(Proto::Json);
        assert_eq!(written(json, Some("1"), "Echo", &payload).len(), 95);
        assert_eq!(written(Dialect::SocketIo, Some("1"), "Echo", &payload).len(), 46);
        let ack = format!("431[\"{payload}\"]");
        let completion = format!("{{\"type\":3,\"invocationId\":\"1\",\"result\":\"{payload}\"}}\u{1e}");
        assert_eq!((ack.len(), completion.len()), (39, 74));
        assert_eq!(written(json, None, "Receive", &payload).len(), 79);
        assert_eq!(written(Dialect::SocketIo, None, "receive", &payload).len(), 48);
    }
}
