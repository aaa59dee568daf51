//! The hub protocol as the load generator and the floor speak it: just enough JSON and
//! MessagePack to send invocations and read completions and `Receive` invocations.
//!
//! Written independently of `hub-runtime` on purpose: the harness is a client like any other.

use std::borrow::Cow;

use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

/// The record separator ending every JSON message (and the handshake).
pub const RS: u8 = 0x1e;

/// A hub protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Json,
    MessagePack,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Json => "json",
            Proto::MessagePack => "messagepack",
        }
    }

    pub fn from_name(text: &str) -> Option<Proto> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Some(Proto::Json),
            "messagepack" | "msgpack" => Some(Proto::MessagePack),
            _ => None,
        }
    }

    /// The handshake request (always JSON text) for protocol version `version` (1, or 2 for
    /// stateful reconnect).
    pub fn handshake(self, version: u8) -> Message {
        Message::text(format!(
            "{{\"protocol\":\"{}\",\"version\":{version}}}\u{1e}",
            self.name()
        ))
    }

    /// Wraps encoded messages into a frame of the protocol's kind.
    pub fn frame(self, bytes: Vec<u8>) -> Message {
        match self {
            Proto::Json => match String::from_utf8(bytes) {
                Ok(text) => Message::text(text),
                Err(e) => Message::binary(e.into_bytes()),
            },
            Proto::MessagePack => Message::binary(bytes),
        }
    }

    /// Appends an Invocation of `target` with one string argument.
    pub fn write_invocation(self, out: &mut Vec<u8>, invocation_id: Option<&str>, target: &str, argument: &str) {
        match self {
            Proto::Json => {
                out.extend_from_slice(b"{\"type\":1,");
                if let Some(id) = invocation_id {
                    out.extend_from_slice(b"\"invocationId\":");
                    write_json_str(out, id);
                    out.push(b',');
                }
                out.extend_from_slice(b"\"target\":");
                write_json_str(out, target);
                out.extend_from_slice(b",\"arguments\":[");
                write_json_str(out, argument);
                out.extend_from_slice(b"]}");
                out.push(RS);
            }
            Proto::MessagePack => {
                let mut body = Vec::with_capacity(16 + target.len() + argument.len());
                let _ = rmp::encode::write_array_len(&mut body, 5);
                let _ = rmp::encode::write_uint(&mut body, 1);
                let _ = rmp::encode::write_map_len(&mut body, 0);
                match invocation_id {
                    Some(id) => {
                        let _ = rmp::encode::write_str(&mut body, id);
                    }
                    None => {
                        let _ = rmp::encode::write_nil(&mut body);
                    }
                }
                let _ = rmp::encode::write_str(&mut body, target);
                let _ = rmp::encode::write_array_len(&mut body, 1);
                let _ = rmp::encode::write_str(&mut body, argument);
                write_varint(out, body.len());
                out.extend_from_slice(&body);
            }
        }
    }

    /// Appends a Ping.
    pub fn write_ping(self, out: &mut Vec<u8>) {
        match self {
            Proto::Json => out.extend_from_slice(b"{\"type\":6}\x1e"),
            Proto::MessagePack => out.extend_from_slice(&[0x02, 0x91, 0x06]),
        }
    }

    /// Appends any hub message written in its JSON form (`{"type":4,"invocationId":"1",
    /// "target":"InfiniteStream","arguments":[],"streamIds":[]}`); for MessagePack it becomes
    /// the protocol's array (types 1–7; arguments and items of JSON's kinds).
    pub fn write_message(self, out: &mut Vec<u8>, message: &serde_json::Value) {
        match self {
            Proto::Json => {
                let _ = serde_json::to_writer(&mut *out, message);
                out.push(RS);
            }
            Proto::MessagePack => {
                let body = msgpack_message(message);
                let mut bytes = Vec::with_capacity(64);
                let _ = rmpv::encode::write_value(&mut bytes, &body);
                write_varint(out, bytes.len());
                out.extend_from_slice(&bytes);
            }
        }
    }

    /// Parses every message in `data`, calling `each` for each of them.
    pub fn parse<'a>(self, data: &'a [u8], mut each: impl FnMut(Incoming<'a>)) -> Result<(), String> {
        match self {
            Proto::Json => {
                for part in data.split(|&b| b == RS) {
                    if part.is_empty() {
                        continue;
                    }
                    let msg: JsonIn<'a> = serde_json::from_slice(part).map_err(|e| format!("bad JSON message: {e}"))?;
                    each(msg.into_incoming());
                }
                Ok(())
            }
            Proto::MessagePack => {
                let mut rest = data;
                while !rest.is_empty() {
                    let (len, used) = read_varint(rest).ok_or("bad MessagePack length prefix")?;
                    let end = used
                        .checked_add(len)
                        .filter(|&e| e <= rest.len())
                        .ok_or("truncated MessagePack message")?;
                    let body = &rest[used..end];
                    rest = &rest[end..];
                    each(msgpack_incoming(body)?);
                }
                Ok(())
            }
        }
    }
}

/// A message from the server, as far as the harness cares.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A Completion: `Ok(result)` (string results only; `None` when void or not a string) or the error.
    Completion {
        invocation_id: Cow<'a, str>,
        result: Result<Option<Cow<'a, str>>, String>,
    },
    /// An Invocation of a client method with its first string argument.
    Invocation {
        target: Cow<'a, str>,
        argument: Option<Cow<'a, str>>,
    },
    /// A StreamItem with its item when that is a string.
    StreamItem {
        item: Option<Cow<'a, str>>,
    },
    Ping,
    Close {
        error: Option<String>,
    },
    Other,
}

#[derive(Deserialize)]
struct JsonIn<'a> {
    #[serde(rename = "type")]
    ty: u64,
    #[serde(rename = "invocationId", borrow, default)]
    invocation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    arguments: Option<Vec<&'a serde_json::value::RawValue>>,
    #[serde(borrow, default)]
    result: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    item: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    error: Option<String>,
}

impl<'a> JsonIn<'a> {
    fn into_incoming(self) -> Incoming<'a> {
        let as_str = |raw: &'a serde_json::value::RawValue| serde_json::from_str::<Cow<'a, str>>(raw.get()).ok();
        match self.ty {
            1 => Incoming::Invocation {
                target: self.target.unwrap_or_default(),
                argument: self.arguments.and_then(|a| a.first().copied()).and_then(as_str),
            },
            3 => Incoming::Completion {
                invocation_id: self.invocation_id.unwrap_or_default(),
                result: match self.error {
                    Some(error) => Err(error),
                    None => Ok(self.result.and_then(as_str)),
                },
            },
            2 => Incoming::StreamItem {
                item: self.item.and_then(as_str),
            },
            6 => Incoming::Ping,
            7 => Incoming::Close { error: self.error },
            _ => Incoming::Other,
        }
    }
}

fn msgpack_str<'a>(value: Option<&rmpv::ValueRef<'a>>) -> Option<&'a str> {
    match value {
        Some(rmpv::ValueRef::String(s)) => s.into_str(),
        _ => None,
    }
}

fn msgpack_incoming(body: &[u8]) -> Result<Incoming<'_>, String> {
    use rmpv::ValueRef;
    let mut cursor = body;
    let value = rmpv::decode::read_value_ref(&mut cursor).map_err(|e| format!("bad MessagePack message: {e}"))?;
    let ValueRef::Array(items) = value else {
        return Err("MessagePack message is not an array".into());
    };
    let ty = items
        .first()
        .and_then(ValueRef::as_u64)
        .ok_or("MessagePack message without a type")?;
    Ok(match ty {
        1 => Incoming::Invocation {
            target: Cow::Borrowed(msgpack_str(items.get(3)).unwrap_or_default()),
            argument: match items.get(4) {
                Some(ValueRef::Array(args)) => msgpack_str(args.first()).map(Cow::Borrowed),
                _ => None,
            },
        },
        3 => {
            let id = msgpack_str(items.get(2)).unwrap_or_default();
            let result = match items.get(3).and_then(ValueRef::as_u64) {
                Some(1) => Err(msgpack_str(items.get(4)).unwrap_or_default().to_owned()),
                Some(3) => Ok(msgpack_str(items.get(4)).map(Cow::Borrowed)),
                _ => Ok(None),
            };
            Incoming::Completion {
                invocation_id: Cow::Borrowed(id),
                result,
            }
        }
        2 => Incoming::StreamItem {
            item: msgpack_str(items.get(3)).map(Cow::Borrowed),
        },
        6 => Incoming::Ping,
        7 => Incoming::Close {
            error: msgpack_str(items.get(1)).map(str::to_owned),
        },
        _ => Incoming::Other,
    })
}

/// A JSON value as MessagePack (integers stay integers).
fn to_rmpv(value: &serde_json::Value) -> rmpv::Value {
    use serde_json::Value as J;
    match value {
        J::Null => rmpv::Value::Nil,
        J::Bool(b) => rmpv::Value::Boolean(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => rmpv::Value::from(i),
            (None, Some(u)) => rmpv::Value::from(u),
            _ => rmpv::Value::F64(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => rmpv::Value::from(s.as_str()),
        J::Array(items) => rmpv::Value::Array(items.iter().map(to_rmpv).collect()),
        J::Object(map) => rmpv::Value::Map(
            map.iter()
                .map(|(k, v)| (rmpv::Value::from(k.as_str()), to_rmpv(v)))
                .collect(),
        ),
    }
}

/// The MessagePack array of a message given in its JSON form.
fn msgpack_message(m: &serde_json::Value) -> rmpv::Value {
    use rmpv::Value as V;
    let field = |name: &str| m.get(name).map(to_rmpv).unwrap_or(V::Nil);
    let list = |name: &str| m.get(name).map(to_rmpv).unwrap_or(V::Array(Vec::new()));
    let ty = m.get("type").and_then(serde_json::Value::as_u64).unwrap_or(0);
    let headers = V::Map(Vec::new());
    let items = match ty {
        1 | 4 => vec![
            V::from(ty),
            headers,
            field("invocationId"),
            field("target"),
            list("arguments"),
            list("streamIds"),
        ],
        2 => vec![V::from(ty), headers, field("invocationId"), field("item")],
        3 => {
            let (kind, value) = if let Some(error) = m.get("error") {
                (1u64, Some(to_rmpv(error)))
            } else if let Some(result) = m.get("result") {
                (3, Some(to_rmpv(result)))
            } else {
                (2, None)
            };
            let mut items = vec![V::from(ty), headers, field("invocationId"), V::from(kind)];
            items.extend(value);
            items
        }
        5 => vec![V::from(ty), headers, field("invocationId")],
        7 => vec![V::from(ty), field("error")],
        other => vec![V::from(other)],
    };
    V::Array(items)
}

/// Writes `text` as a JSON string.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// Writes the MessagePack framing length prefix (7 bits a byte, least significant first).
pub fn write_varint(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len & 0x7f) as u8;
        len >>= 7;
        if len != 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// Reads a length prefix: (length, bytes used).
pub fn read_varint(input: &[u8]) -> Option<(usize, usize)> {
    let mut len = 0usize;
    for (i, &byte) in input.iter().enumerate().take(5) {
        len |= ((byte & 0x7f) as usize) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((len, i + 1));
        }
    }
    None
}

/// Splits the handshake reply off the front of `data`: `Ok(rest)` when it was `{}`.
pub fn handshake_reply(data: &[u8]) -> Result<&[u8], String> {
    let end = data
        .iter()
        .position(|&b| b == RS)
        .ok_or("handshake reply without a record separator")?;
    let reply: serde_json::Value =
        serde_json::from_slice(&data[..end]).map_err(|e| format!("bad handshake reply: {e}"))?;
    if let Some(error) = reply.get("error") {
        return Err(format!("handshake refused: {error}"));
    }
    Ok(&data[end + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let mut out = Vec::new();
        Proto::Json.write_invocation(&mut out, Some("7"), "Echo", "hi\"x");
        assert_eq!(
            out,
            b"{\"type\":1,\"invocationId\":\"7\",\"target\":\"Echo\",\"arguments\":[\"hi\\\"x\"]}\x1e"
        );
        let mut seen = Vec::new();
        Proto::Json
            .parse(
                b"{\"type\":3,\"invocationId\":\"7\",\"result\":\"hi\"}\x1e{\"type\":1,\"target\":\"Receive\",\"arguments\":[\"m\"]}\x1e{\"type\":6}\x1e",
                |m| seen.push(format!("{m:?}")),
            )
            .unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen[0].contains("\"7\"") && seen[0].contains("hi"));
        assert!(seen[1].contains("Receive"));
        assert_eq!(seen[2], "Ping");
    }

    #[test]
    fn generic_messages() {
        let cancel = serde_json::json!({"type": 5, "invocationId": "9"});
        let mut json = Vec::new();
        Proto::Json.write_message(&mut json, &cancel);
        assert_eq!(json, b"{\"invocationId\":\"9\",\"type\":5}\x1e");
        let mut mp = Vec::new();
        Proto::MessagePack.write_message(&mut mp, &cancel);
        // [5, {}, "9"]
        assert_eq!(mp, [0x05, 0x93, 0x05, 0x80, 0xa1, b'9']);
        let divide = serde_json::json!({"type": 1, "invocationId": "1", "target": "Divide", "arguments": [1, 0]});
        let mut mp = Vec::new();
        Proto::MessagePack.write_message(&mut mp, &divide);
        // [1, {}, "1", "Divide", [1, 0], []]
        assert_eq!(&mp[1..4], [0x96, 0x01, 0x80]);
        assert_eq!(&mp[mp.len() - 4..], [0x92, 0x01, 0x00, 0x90]);
    }

    #[test]
    fn msgpack_round_trip() {
        let mut out = Vec::new();
        Proto::MessagePack.write_invocation(&mut out, Some("1"), "Echo", "abc");
        // [1, {}, "1", "Echo", ["abc"]]
        assert_eq!(out[0] as usize, out.len() - 1);
        let mut ping = Vec::new();
        Proto::MessagePack.write_ping(&mut ping);
        assert_eq!(ping, [0x02, 0x91, 0x06]);
        // A void completion `94 03 80 A1 30 02` and a value completion.
        let mut data = vec![0x06, 0x94, 0x03, 0x80, 0xa1, 0x30, 0x02];
        data.extend_from_slice(&[0x09, 0x95, 0x03, 0x80, 0xa1, 0x31, 0x03, 0xa2, b'o', b'k']);
        let mut seen = Vec::new();
        Proto::MessagePack
            .parse(&data, |m| seen.push(format!("{m:?}")))
            .unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].contains("ok"));
        let mut v = Vec::new();
        write_varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        assert_eq!(read_varint(&v), Some((300, 2)));
    }

    #[test]
    fn stream_items_carry_their_string() {
        for proto in [Proto::Json, Proto::MessagePack] {
            let mut data = Vec::new();
            proto.write_message(
                &mut data,
                &serde_json::json!({"type": 2, "invocationId": "4", "item": "7;123;x"}),
            );
            proto.write_message(
                &mut data,
                &serde_json::json!({"type": 2, "invocationId": "4", "item": 5}),
            );
            let mut items = Vec::new();
            proto
                .parse(&data, |m| {
                    if let Incoming::StreamItem { item } = m {
                        items.push(item.map(|i| i.into_owned()));
                    }
                })
                .unwrap();
            assert_eq!(items, [Some("7;123;x".to_string()), None], "{}", proto.name());
        }
    }
}
