//! The JSON hub protocol: one JSON object per message, each followed by the record separator
//! `0x1E`.

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue as JsonRaw;

mod scan;

use super::{
    CompletionResult, EncodeError, Headers, HubMessage, HubProtocol, Invocation, OutMessage, OutResult, ProtocolError,
    RawValue, TransferFormat,
};

/// The record separator that ends every JSON message.
pub use super::handshake::RECORD_SEPARATOR;

/// The JSON hub protocol (`json`, versions 1 and 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonProtocol;

/// Every field any message type may carry; unknown fields are ignored.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct WireMessage {
    #[serde(rename = "type", default)]
    kind: Option<i64>,
    #[serde(default)]
    invocation_id: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    arguments: Option<Arguments>,
    #[serde(default)]
    stream_ids: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    item: Option<Box<JsonRaw>>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Box<JsonRaw>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    allow_reconnect: Option<bool>,
    #[serde(default)]
    sequence_id: Option<u64>,
    #[serde(default)]
    headers: Option<Headers>,
}

/// An invocation's arguments, each kept as its JSON text.
struct Arguments(Vec<RawValue>);

impl<'de> Deserialize<'de> for Arguments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Arguments;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Arguments, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = seq.next_element::<Box<JsonRaw>>()? {
                    values.push(RawValue::Json(value));
                }
                Ok(Arguments(values))
            }
        }
        d.deserialize_seq(Each)
    }
}

/// Keeps a present `null` as a raw `null` (absent stays `None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<JsonRaw>>, D::Error> {
    Box::<JsonRaw>::deserialize(d).map(Some)
}

fn missing(field: &str) -> ProtocolError {
    ProtocolError::InvalidData(format!("Missing required property '{field}'."))
}

impl WireMessage {
    fn into_message(self) -> Result<Option<HubMessage>, ProtocolError> {
        let kind = self.kind.ok_or_else(|| missing("type"))?;
        let headers = self.headers.unwrap_or_default();
        let message = match kind {
            1 | 4 => {
                let target = self.target.ok_or_else(|| missing("target"))?;
                let arguments = self.arguments.ok_or_else(|| missing("arguments"))?;
                let invocation = Invocation {
                    invocation_id: self.invocation_id,
                    target,
                    arguments: arguments.0,
                    stream_ids: self.stream_ids.unwrap_or_default(),
                    headers,
                };
                if kind == 1 {
                    HubMessage::Invocation(invocation)
                } else {
                    if invocation.invocation_id.is_none() {
                        return Err(missing("invocationId"));
                    }
                    HubMessage::StreamInvocation(invocation)
                }
            }
            2 => HubMessage::StreamItem {
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                item: RawValue::Json(self.item.ok_or_else(|| missing("item"))?),
                headers,
            },
            3 => {
                let invocation_id = self.invocation_id.ok_or_else(|| missing("invocationId"))?;
                let result = match (self.result, self.error) {
                    (Some(_), Some(_)) => {
                        return Err(ProtocolError::InvalidData(
                            "The 'error' and 'result' properties are mutually exclusive.".into(),
                        ))
                    }
                    (Some(value), None) => CompletionResult::Value(RawValue::Json(value)),
                    (None, Some(error)) => CompletionResult::Error(error),
                    (None, None) => CompletionResult::Void,
                };
                HubMessage::Completion {
                    invocation_id,
                    result,
                    headers,
                }
            }
            5 => HubMessage::CancelInvocation {
                invocation_id: self.invocation_id.ok_or_else(|| missing("invocationId"))?,
                headers,
            },
            6 => HubMessage::Ping,
            7 => HubMessage::Close {
                error: self.error,
                allow_reconnect: self.allow_reconnect.unwrap_or(false),
            },
            8 => HubMessage::Ack {
                sequence_id: self.sequence_id.ok_or_else(|| missing("sequenceId"))?,
            },
            9 => HubMessage::Sequence {
                sequence_id: self.sequence_id.ok_or_else(|| missing("sequenceId"))?,
            },
            other => {
                tracing::debug!(message_type = other, "ignoring a hub message of unknown type");
                return Ok(None);
            }
        };
        Ok(Some(message))
    }
}

/// Parses one JSON message (without its record separator): the common shapes quickly, the
/// rest (and every error) through serde.
pub(crate) fn parse_one(record: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    match scan::wire_message(record) {
        Some(wire) => wire.into_message(),
        None => parse_with_serde(record),
    }
}

fn parse_with_serde(record: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let wire: WireMessage = serde_json::from_slice(record).map_err(|e| {
        let text = match e.classify() {
            serde_json::error::Category::Data => format!("Invalid message: {e}"),
            _ => format!("Error reading JSON. {e}"),
        };
        ProtocolError::InvalidData(text)
    })?;
    wire.into_message()
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

fn write_value(out: &mut Vec<u8>, value: &(dyn erased_serde::Serialize + Sync + '_)) -> Result<(), EncodeError> {
    serde_json::to_writer(&mut *out, value).map_err(|e| EncodeError(e.to_string()))
}

fn write_stream_ids(out: &mut Vec<u8>, ids: &[String]) {
    if !ids.is_empty() {
        out.extend_from_slice(b",\"streamIds\":");
        let _ = serde_json::to_writer(&mut *out, ids);
    }
}

impl HubProtocol for JsonProtocol {
    fn name(&self) -> &'static str {
        "json"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Text
    }

    fn complete_prefix(&self, input: &[u8], max_message_size: usize) -> Result<usize, ProtocolError> {
        let too_large = || ProtocolError::MessageTooLarge {
            limit: max_message_size,
        };
        let mut whole = 0;
        for end in memchr::memchr_iter(RECORD_SEPARATOR, input) {
            if end - whole > max_message_size {
                return Err(too_large());
            }
            whole = end + 1;
        }
        if input.len() - whole > max_message_size {
            return Err(too_large());
        }
        Ok(whole)
    }

    fn parse_into(&self, input: &[u8], out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        let mut start = 0;
        for end in memchr::memchr_iter(RECORD_SEPARATOR, input) {
            if let Some(message) = parse_one(&input[start..end])? {
                out.push(message);
            }
            start = end + 1;
        }
        // What follows the last separator is a message too (the reader hands over only
        // whole ones; a caller with a record that lacks its separator still gets it read).
        if start < input.len() {
            if let Some(message) = parse_one(&input[start..])? {
                out.push(message);
            }
        }
        Ok(())
    }

    fn first_message_len(&self, input: &[u8]) -> usize {
        memchr::memchr(RECORD_SEPARATOR, input).map_or(input.len(), |end| end + 1)
    }

    fn write(&self, message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = write_json(message, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

fn write_json(message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match *message {
        OutMessage::Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            out.extend_from_slice(b"{\"type\":1,");
            if let Some(id) = invocation_id {
                out.extend_from_slice(b"\"invocationId\":");
                write_str(out, id);
                out.push(b',');
            }
            out.extend_from_slice(b"\"target\":");
            write_str(out, target);
            out.extend_from_slice(b",\"arguments\":");
            write_value(out, arguments)?;
            write_stream_ids(out, stream_ids);
        }
        OutMessage::StreamInvocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            out.extend_from_slice(b"{\"type\":4,\"invocationId\":");
            write_str(out, invocation_id);
            out.extend_from_slice(b",\"target\":");
            write_str(out, target);
            out.extend_from_slice(b",\"arguments\":");
            write_value(out, arguments)?;
            write_stream_ids(out, stream_ids);
        }
        OutMessage::StreamItem { invocation_id, item } => {
            out.extend_from_slice(b"{\"type\":2,\"invocationId\":");
            write_str(out, invocation_id);
            out.extend_from_slice(b",\"item\":");
            write_value(out, item)?;
        }
        OutMessage::Completion { invocation_id, result } => {
            out.extend_from_slice(b"{\"type\":3,\"invocationId\":");
            write_str(out, invocation_id);
            match result {
                OutResult::Void => {}
                OutResult::Value(value) => {
                    out.extend_from_slice(b",\"result\":");
                    write_value(out, value)?;
                }
                OutResult::Error(error) => {
                    out.extend_from_slice(b",\"error\":");
                    write_str(out, error);
                }
            }
        }
        OutMessage::CancelInvocation { invocation_id } => {
            out.extend_from_slice(b"{\"type\":5,\"invocationId\":");
            write_str(out, invocation_id);
        }
        OutMessage::Ping => out.extend_from_slice(b"{\"type\":6"),
        OutMessage::Close { error, allow_reconnect } => {
            out.extend_from_slice(b"{\"type\":7");
            if let Some(error) = error {
                out.extend_from_slice(b",\"error\":");
                write_str(out, error);
            }
            if allow_reconnect {
                out.extend_from_slice(b",\"allowReconnect\":true");
            }
        }
        OutMessage::Ack { sequence_id } => {
            out.extend_from_slice(b"{\"type\":8,\"sequenceId\":");
            out.extend_from_slice(sequence_id.to_string().as_bytes());
        }
        OutMessage::Sequence { sequence_id } => {
            out.extend_from_slice(b"{\"type\":9,\"sequenceId\":");
            out.extend_from_slice(sequence_id.to_string().as_bytes());
        }
    }
    out.push(b'}');
    out.push(RECORD_SEPARATOR);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoArgs;

    fn enc(msg: OutMessage<'_>) -> String {
        String::from_utf8(JsonProtocol.encode(&msg).unwrap().to_vec()).unwrap()
    }

    fn one(text: &str) -> HubMessage {
        let mut v = JsonProtocol.parse(text.as_bytes()).unwrap();
        assert_eq!(v.len(), 1, "{text}");
        v.remove(0)
    }

    #[test]
    fn golden_encodings() {
        assert_eq!(
            enc(OutMessage::Invocation {
                invocation_id: Some("1"),
                target: "Echo",
                arguments: &("hi", 2),
                stream_ids: &[]
            }),
            "{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\",2]}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Invocation {
                invocation_id: None,
                target: "A",
                arguments: &NoArgs,
                stream_ids: &["0".into()]
            }),
            "{\"type\":1,\"target\":\"A\",\"arguments\":[],\"streamIds\":[\"0\"]}\x1e"
        );
        assert_eq!(
            enc(OutMessage::StreamItem {
                invocation_id: "1",
                item: &"x"
            }),
            "{\"type\":2,\"invocationId\":\"1\",\"item\":\"x\"}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Completion {
                invocation_id: "0",
                result: OutResult::Void
            }),
            "{\"type\":3,\"invocationId\":\"0\"}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Completion {
                invocation_id: "0",
                result: OutResult::Value(&Option::<u8>::None)
            }),
            "{\"type\":3,\"invocationId\":\"0\",\"result\":null}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Completion {
                invocation_id: "0",
                result: OutResult::Error("bad \"x\"")
            }),
            "{\"type\":3,\"invocationId\":\"0\",\"error\":\"bad \\\"x\\\"\"}\x1e"
        );
        assert_eq!(
            enc(OutMessage::StreamInvocation {
                invocation_id: "2",
                target: "S",
                arguments: &(1,),
                stream_ids: &[]
            }),
            "{\"type\":4,\"invocationId\":\"2\",\"target\":\"S\",\"arguments\":[1]}\x1e"
        );
        assert_eq!(
            enc(OutMessage::CancelInvocation { invocation_id: "2" }),
            "{\"type\":5,\"invocationId\":\"2\"}\x1e"
        );
        assert_eq!(enc(OutMessage::Ping), "{\"type\":6}\x1e");
        assert_eq!(
            enc(OutMessage::Close {
                error: None,
                allow_reconnect: false
            }),
            "{\"type\":7}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Close {
                error: Some("e"),
                allow_reconnect: true
            }),
            "{\"type\":7,\"error\":\"e\",\"allowReconnect\":true}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Ack { sequence_id: 5 }),
            "{\"type\":8,\"sequenceId\":5}\x1e"
        );
        assert_eq!(
            enc(OutMessage::Sequence { sequence_id: 7 }),
            "{\"type\":9,\"sequenceId\":7}\x1e"
        );
    }

    #[test]
    fn decodes_every_type() {
        let HubMessage::Invocation(inv) = one(
            "{\"target\":\"Echo\",\"arguments\":[\"a\",{\"x\":1}],\"type\":1,\"invocationId\":\"3\",\"extra\":[1]}\x1e",
        ) else {
            panic!()
        };
        assert_eq!(inv.invocation_id.as_deref(), Some("3"));
        assert_eq!(inv.target, "Echo");
        assert_eq!(inv.arguments.len(), 2);
        assert_eq!(inv.arguments[0].decode::<String>().unwrap(), "a");
        match one("{\"type\":2,\"invocationId\":\"1\",\"item\":null}\x1e") {
            HubMessage::StreamItem { item, .. } => {
                assert_eq!(item, RawValue::json("null").unwrap())
            }
            m => panic!("{m:?}"),
        }
        match one("{\"type\":3,\"invocationId\":\"1\",\"result\":null}\x1e") {
            HubMessage::Completion {
                result: CompletionResult::Value(v),
                ..
            } => assert_eq!(v, RawValue::json("null").unwrap()),
            m => panic!("{m:?}"),
        }
        match one("{\"type\":3,\"invocationId\":\"1\"}\x1e") {
            HubMessage::Completion {
                result: CompletionResult::Void,
                ..
            } => {}
            m => panic!("{m:?}"),
        }
        match one("{\"type\":3,\"invocationId\":\"1\",\"error\":\"boom\"}\x1e") {
            HubMessage::Completion {
                result: CompletionResult::Error(e),
                ..
            } => assert_eq!(e, "boom"),
            m => panic!("{m:?}"),
        }
        assert!(
            matches!(one("{\"type\":4,\"invocationId\":\"1\",\"target\":\"S\",\"arguments\":[],\"streamIds\":[\"2\"]}\x1e"), HubMessage::StreamInvocation(i) if i.stream_ids == ["2"])
        );
        assert!(matches!(
            one("{\"type\":5,\"invocationId\":\"1\"}\x1e"),
            HubMessage::CancelInvocation { .. }
        ));
        assert_eq!(one("{\"type\":6}\x1e"), HubMessage::Ping);
        assert_eq!(
            one("{\"type\":7,\"error\":\"x\",\"allowReconnect\":true}\x1e"),
            HubMessage::Close {
                error: Some("x".into()),
                allow_reconnect: true
            }
        );
        assert_eq!(
            one("{\"type\":8,\"sequenceId\":3}\x1e"),
            HubMessage::Ack { sequence_id: 3 }
        );
        assert_eq!(
            one("{\"type\":9,\"sequenceId\":4}\x1e"),
            HubMessage::Sequence { sequence_id: 4 }
        );
    }

    #[test]
    fn several_messages_in_one_frame_and_unknown_types() {
        let msgs = JsonProtocol
            .parse(b"{\"type\":6}\x1e{\"type\":99}\x1e{\"type\":6}\x1e")
            .unwrap();
        assert_eq!(msgs, vec![HubMessage::Ping, HubMessage::Ping]);
    }

    #[test]
    fn round_trip_through_encoder() {
        let bytes = JsonProtocol
            .encode(&OutMessage::Invocation {
                invocation_id: Some("9"),
                target: "T",
                arguments: &(1, "two", [3]),
                stream_ids: &["s".into()],
            })
            .unwrap();
        let HubMessage::Invocation(inv) = JsonProtocol.parse(&bytes).unwrap().remove(0) else {
            panic!()
        };
        assert_eq!(inv.invocation_id.as_deref(), Some("9"));
        assert_eq!(inv.arguments.len(), 3);
        assert_eq!(inv.stream_ids, vec!["s".to_string()]);
        assert_eq!(inv.arguments[2].decode::<Vec<i32>>().unwrap(), vec![3]);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        for (input, needle) in [
            (&b"{\"type\":1,\"target\":\"x\"}\x1e"[..], "'arguments'"),
            (b"{\"type\":1,\"arguments\":[]}\x1e", "'target'"),
            (b"{\"target\":\"x\"}\x1e", "'type'"),
            (b"{nope\x1e", "Error reading JSON."),
            (b"[1,2]\x1e", "Invalid message"),
            (b"{\"type\":\"1\"}\x1e", "Invalid message"),
            (
                b"{\"type\":3,\"invocationId\":\"1\",\"result\":1,\"error\":\"x\"}\x1e",
                "mutually exclusive",
            ),
            (b"{\"type\":2,\"invocationId\":\"1\"}\x1e", "'item'"),
            (b"{\"type\":4,\"target\":\"x\",\"arguments\":[]}\x1e", "'invocationId'"),
        ] {
            let err = JsonProtocol.parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }

    /// Found by `cargo fuzz` (target `json`, crash-7b280d20…): an argument object whose key is
    /// a lone surrogate (`"\ud800a"`) parses, but re-encoding it (in either protocol)
    /// panicked inside serde-transcode + erased-serde; it is now an `EncodeError`.
    #[test]
    fn fuzz_regression_lone_surrogate_key_does_not_panic_when_reencoded() {
        let input: &[u8] = b"{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\",2,\
            {\"name\":\"a\",\"tags\":[\"x\"],\"scores\":{\"\\ud800a\":1.5}},null,true,[1,2]]}\x1e";
        assert_eq!(input.len(), 134);
        let HubMessage::Invocation(inv) = JsonProtocol.parse(input).unwrap().remove(0) else {
            panic!()
        };
        let out = OutMessage::Invocation {
            invocation_id: inv.invocation_id.as_deref(),
            target: &inv.target,
            arguments: &inv.arguments,
            stream_ids: &inv.stream_ids,
        };
        assert!(JsonProtocol.encode(&out).is_err());
        #[cfg(feature = "msgpack")]
        assert!(crate::MessagePackProtocol.encode(&out).is_err());
        assert!(serde_json::to_string(&inv.arguments[2]).is_err());
        // The other arguments still re-encode.
        assert_eq!(serde_json::to_string(&inv.arguments[..2]).unwrap(), "[\"hi\",2]");
    }

    #[test]
    fn size_limit_and_partial_messages() {
        let p = JsonProtocol;
        assert_eq!(p.complete_prefix(b"{\"type\":6}\x1e{\"ty", 100).unwrap(), 11);
        assert!(matches!(
            p.complete_prefix(&[b' '; 50], 10),
            Err(ProtocolError::MessageTooLarge { limit: 10 })
        ));
        let mut reader = crate::MessageReader::default();
        let mut out = Vec::new();
        reader.feed(&p, b"{\"type\"", 100, &mut out).unwrap();
        assert!(out.is_empty());
        reader.feed(&p, b":6}\x1e", 100, &mut out).unwrap();
        assert_eq!(out, vec![HubMessage::Ping]);
    }
}
