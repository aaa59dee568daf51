//! The MessagePack hub protocol: every message is a positional array with an integer type code,
//! framed by a VarInt length prefix (7 bits a byte, least significant group first).

use bytes::Bytes;
use rmp::decode as dec;
use rmp::encode as enc;

use super::{
    CompletionResult, EncodeError, Headers, HubMessage, HubProtocol, Invocation, OutMessage, OutResult, ProtocolError,
    RawValue, TransferFormat,
};

/// The MessagePack hub protocol (`messagepack`, versions 1 and 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackProtocol;

/// The largest message the VarInt framing can describe (2 GiB − 1).
const MAX_FRAMED: u64 = (1 << 31) - 1;

/// Reads a VarInt length prefix: `Ok(None)` when more bytes are needed, else the length and
/// how many bytes the prefix took.
pub(crate) fn read_varint(input: &[u8]) -> Result<Option<(u64, usize)>, ProtocolError> {
    let mut length: u64 = 0;
    for i in 0..5 {
        let Some(&byte) = input.get(i) else {
            return Ok(None);
        };
        if i == 4 && byte > 0x07 {
            return Err(ProtocolError::InvalidData(
                "Messages over 2GB in size are not supported.".into(),
            ));
        }
        length |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((length, i + 1)));
        }
    }
    Err(ProtocolError::InvalidData(
        "Messages over 2GB in size are not supported.".into(),
    ))
}

/// Writes a VarInt length prefix.
pub(crate) fn write_varint(mut length: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (length & 0x7f) as u8;
        length >>= 7;
        if length > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if length == 0 {
            break;
        }
    }
}

fn invalid(text: impl Into<String>) -> ProtocolError {
    ProtocolError::InvalidData(text.into())
}

/// A cursor over one message body.
struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    fn array_len(&mut self, what: &str) -> Result<u32, ProtocolError> {
        dec::read_array_len(&mut self.input).map_err(|_| invalid(format!("Reading array length for '{what}' failed.")))
    }

    fn int(&mut self, what: &str) -> Result<i64, ProtocolError> {
        dec::read_int(&mut self.input).map_err(|_| invalid(format!("Reading '{what}' as Int32 failed.")))
    }

    fn nil_or_string(&mut self, what: &str) -> Result<Option<String>, ProtocolError> {
        if self.input.first() == Some(&0xc0) {
            self.input = &self.input[1..];
            return Ok(None);
        }
        self.string(what).map(Some)
    }

    fn string(&mut self, what: &str) -> Result<String, ProtocolError> {
        let len = dec::read_str_len(&mut self.input)
            .map_err(|_| invalid(format!("Reading '{what}' as String failed.")))? as usize;
        if self.input.len() < len {
            return Err(invalid(format!("Reading '{what}' as String failed.")));
        }
        let (text, rest) = self.input.split_at(len);
        self.input = rest;
        std::str::from_utf8(text)
            .map(str::to_owned)
            .map_err(|_| invalid(format!("Reading '{what}' as String failed.")))
    }

    fn boolean(&mut self, what: &str) -> Result<bool, ProtocolError> {
        dec::read_bool(&mut self.input).map_err(|_| invalid(format!("Reading '{what}' as Boolean failed.")))
    }

    /// One whole value, kept as its bytes.
    fn raw(&mut self, what: &str) -> Result<RawValue, ProtocolError> {
        let before = self.input;
        rmpv::decode::read_value_ref_with_max_depth(&mut self.input, 64)
            .map_err(|e| invalid(format!("Reading '{what}' failed: {e}.")))?;
        let used = before.len() - self.input.len();
        Ok(RawValue::MessagePack(Bytes::copy_from_slice(&before[..used])))
    }

    fn headers(&mut self) -> Result<Headers, ProtocolError> {
        let len =
            dec::read_map_len(&mut self.input).map_err(|_| invalid("Reading map length for 'headers' failed."))?;
        let mut headers = Headers::new();
        for _ in 0..len {
            let key = self.string("headers")?;
            let value = self.string("headers")?;
            headers.insert(key, value);
        }
        Ok(headers)
    }

    fn string_array(&mut self, what: &str) -> Result<Vec<String>, ProtocolError> {
        let len = self.array_len(what)?;
        (0..len).map(|_| self.string(what)).collect()
    }

    fn arguments(&mut self) -> Result<Vec<RawValue>, ProtocolError> {
        let len = self.array_len("arguments")?;
        if len as usize > self.input.len() {
            return Err(invalid("Reading array length for 'arguments' failed."));
        }
        (0..len).map(|_| self.raw("arguments")).collect()
    }

    fn sequence_id(&mut self) -> Result<u64, ProtocolError> {
        dec::read_int(&mut self.input).map_err(|_| invalid("Reading 'sequenceId' as Int64 failed."))
    }
}

fn parse_body(body: &[u8]) -> Result<Option<HubMessage>, ProtocolError> {
    let mut r = Reader { input: body };
    let len = r.array_len("elements")?;
    if len == 0 {
        return Err(invalid("Unexpected empty message."));
    }
    let kind = r.int("messageType")?;
    let need = |n: u32| -> Result<(), ProtocolError> {
        if len < n {
            Err(invalid(format!(
                "Invalid message: expected at least {n} elements, got {len}."
            )))
        } else {
            Ok(())
        }
    };
    let message = match kind {
        1 | 4 => {
            need(5)?;
            let headers = r.headers()?;
            let invocation_id = r.nil_or_string("invocationId")?;
            let target = r.string("target")?;
            let arguments = r.arguments()?;
            let stream_ids = if len > 5 {
                r.string_array("streamIds")?
            } else {
                Vec::new()
            };
            let invocation = Invocation {
                invocation_id,
                target,
                arguments,
                stream_ids,
                headers,
            };
            if kind == 1 {
                HubMessage::Invocation(invocation)
            } else {
                if invocation.invocation_id.is_none() {
                    return Err(invalid("Reading 'invocationId' as String failed."));
                }
                HubMessage::StreamInvocation(invocation)
            }
        }
        2 => {
            need(4)?;
            let headers = r.headers()?;
            let invocation_id = r.string("invocationId")?;
            let item = r.raw("item")?;
            HubMessage::StreamItem {
                invocation_id,
                item,
                headers,
            }
        }
        3 => {
            need(4)?;
            let headers = r.headers()?;
            let invocation_id = r.string("invocationId")?;
            let result_kind = r.int("resultKind")?;
            let result = match result_kind {
                1 => {
                    need(5)?;
                    CompletionResult::Error(r.string("error")?)
                }
                2 => CompletionResult::Void,
                3 => {
                    need(5)?;
                    CompletionResult::Value(r.raw("argument")?)
                }
                _ => return Err(invalid("Invalid invocation result kind.")),
            };
            HubMessage::Completion {
                invocation_id,
                result,
                headers,
            }
        }
        5 => {
            need(3)?;
            let headers = r.headers()?;
            HubMessage::CancelInvocation {
                invocation_id: r.string("invocationId")?,
                headers,
            }
        }
        6 => HubMessage::Ping,
        7 => {
            need(2)?;
            let error = r.nil_or_string("error")?;
            let allow_reconnect = if len > 2 { r.boolean("allowReconnect")? } else { false };
            HubMessage::Close { error, allow_reconnect }
        }
        8 => {
            need(2)?;
            HubMessage::Ack {
                sequence_id: r.sequence_id()?,
            }
        }
        9 => {
            need(2)?;
            HubMessage::Sequence {
                sequence_id: r.sequence_id()?,
            }
        }
        other => {
            tracing::debug!(message_type = other, "ignoring a hub message of unknown type");
            return Ok(None);
        }
    };
    Ok(Some(message))
}

fn io(e: impl std::fmt::Display) -> EncodeError {
    EncodeError(e.to_string())
}

fn write_value(out: &mut Vec<u8>, value: &(dyn erased_serde::Serialize + Sync + '_)) -> Result<(), EncodeError> {
    rmp_serde::encode::write_named(out, value).map_err(io)
}

fn write_str(out: &mut Vec<u8>, value: &str) {
    // Writing into a Vec cannot fail.
    let _ = enc::write_str(out, value);
}

fn write_body(message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match *message {
        OutMessage::Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            let _ = enc::write_array_len(out, 6);
            let _ = enc::write_uint(out, 1);
            let _ = enc::write_map_len(out, 0);
            match invocation_id {
                Some(id) => write_str(out, id),
                None => {
                    let _ = enc::write_nil(out);
                }
            }
            write_str(out, target);
            write_value(out, arguments)?;
            write_string_array(out, stream_ids);
        }
        OutMessage::StreamInvocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
        } => {
            let _ = enc::write_array_len(out, 6);
            let _ = enc::write_uint(out, 4);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
            write_str(out, target);
            write_value(out, arguments)?;
            write_string_array(out, stream_ids);
        }
        OutMessage::StreamItem { invocation_id, item } => {
            let _ = enc::write_array_len(out, 4);
            let _ = enc::write_uint(out, 2);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
            write_value(out, item)?;
        }
        OutMessage::Completion { invocation_id, result } => {
            let len = if matches!(result, OutResult::Void) { 4 } else { 5 };
            let _ = enc::write_array_len(out, len);
            let _ = enc::write_uint(out, 3);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
            match result {
                OutResult::Error(error) => {
                    let _ = enc::write_uint(out, 1);
                    write_str(out, error);
                }
                OutResult::Void => {
                    let _ = enc::write_uint(out, 2);
                }
                OutResult::Value(value) => {
                    let _ = enc::write_uint(out, 3);
                    write_value(out, value)?;
                }
            }
        }
        OutMessage::CancelInvocation { invocation_id } => {
            let _ = enc::write_array_len(out, 3);
            let _ = enc::write_uint(out, 5);
            let _ = enc::write_map_len(out, 0);
            write_str(out, invocation_id);
        }
        OutMessage::Ping => {
            let _ = enc::write_array_len(out, 1);
            let _ = enc::write_uint(out, 6);
        }
        OutMessage::Close { error, allow_reconnect } => {
            let _ = enc::write_array_len(out, 3);
            let _ = enc::write_uint(out, 7);
            match error {
                Some(e) => write_str(out, e),
                None => {
                    let _ = enc::write_nil(out);
                }
            }
            let _ = enc::write_bool(out, allow_reconnect);
        }
        OutMessage::Ack { sequence_id } => {
            let _ = enc::write_array_len(out, 2);
            let _ = enc::write_uint(out, 8);
            let _ = enc::write_uint(out, sequence_id);
        }
        OutMessage::Sequence { sequence_id } => {
            let _ = enc::write_array_len(out, 2);
            let _ = enc::write_uint(out, 9);
            let _ = enc::write_uint(out, sequence_id);
        }
    }
    Ok(())
}

fn write_string_array(out: &mut Vec<u8>, values: &[String]) {
    let _ = enc::write_array_len(out, values.len() as u32);
    for v in values {
        write_str(out, v);
    }
}

impl HubProtocol for MessagePackProtocol {
    fn name(&self) -> &'static str {
        "messagepack"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }

    fn complete_prefix(&self, input: &[u8], max_message_size: usize) -> Result<usize, ProtocolError> {
        let mut at = 0;
        while at < input.len() {
            let Some((length, prefix)) = read_varint(&input[at..])? else {
                break;
            };
            if length > MAX_FRAMED {
                return Err(invalid("Messages over 2GB in size are not supported."));
            }
            if length as usize > max_message_size {
                return Err(ProtocolError::MessageTooLarge {
                    limit: max_message_size,
                });
            }
            let end = at + prefix + length as usize;
            if end > input.len() {
                break;
            }
            at = end;
        }
        Ok(at)
    }

    fn parse_into(&self, input: &[u8], out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        let mut at = 0;
        while at < input.len() {
            let Some((length, prefix)) = read_varint(&input[at..])? else {
                return Err(invalid("Truncated message length prefix."));
            };
            let start = at + prefix;
            let end = start.checked_add(length as usize).filter(|&e| e <= input.len());
            let Some(end) = end else {
                return Err(invalid("Truncated message."));
            };
            if let Some(message) = parse_body(&input[start..end])? {
                out.push(message);
            }
            at = end;
        }
        Ok(())
    }

    fn first_message_len(&self, input: &[u8]) -> usize {
        match read_varint(input) {
            // Anything else is left to `parse_into`, which says what is wrong.
            Ok(Some((length, prefix))) => usize::try_from(length)
                .ok()
                .and_then(|length| length.checked_add(prefix))
                .map_or(input.len(), |end| end.min(input.len())),
            _ => input.len(),
        }
    }

    fn write(&self, message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut body = Vec::with_capacity(32);
        write_body(message, &mut body)?;
        write_varint(body.len(), out);
        out.extend_from_slice(&body);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoArgs;

    fn enc(msg: OutMessage<'_>) -> Vec<u8> {
        MessagePackProtocol.encode(&msg).unwrap().to_vec()
    }

    fn one(bytes: &[u8]) -> HubMessage {
        let mut v = MessagePackProtocol.parse(bytes).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn golden_vectors_from_the_reference() {
        assert_eq!(enc(OutMessage::Ping), [0x02, 0x91, 0x06]);
        assert_eq!(
            enc(OutMessage::Completion {
                invocation_id: "0",
                result: OutResult::Void
            }),
            [0x06, 0x94, 0x03, 0x80, 0xa1, 0x30, 0x02]
        );
        assert_eq!(one(&[0x02, 0x91, 0x06]), HubMessage::Ping);
        // The client's Close: [7, nil]
        assert_eq!(
            one(&[0x03, 0x92, 0x07, 0xc0]),
            HubMessage::Close {
                error: None,
                allow_reconnect: false
            }
        );
    }

    #[test]
    fn golden_encodings_of_every_type() {
        assert_eq!(
            enc(OutMessage::Invocation {
                invocation_id: None,
                target: "A",
                arguments: &(1,),
                stream_ids: &[]
            }),
            [0x09, 0x96, 0x01, 0x80, 0xc0, 0xa1, b'A', 0x91, 0x01, 0x90]
        );
        assert_eq!(
            enc(OutMessage::StreamItem {
                invocation_id: "1",
                item: &"x"
            }),
            [0x07, 0x94, 0x02, 0x80, 0xa1, b'1', 0xa1, b'x']
        );
        assert_eq!(
            enc(OutMessage::Completion {
                invocation_id: "1",
                result: OutResult::Value(&42)
            }),
            [0x07, 0x95, 0x03, 0x80, 0xa1, b'1', 0x03, 0x2a]
        );
        assert_eq!(
            enc(OutMessage::Completion {
                invocation_id: "1",
                result: OutResult::Error("e")
            }),
            [0x08, 0x95, 0x03, 0x80, 0xa1, b'1', 0x01, 0xa1, b'e']
        );
        assert_eq!(
            enc(OutMessage::StreamInvocation {
                invocation_id: "1",
                target: "S",
                arguments: &NoArgs,
                stream_ids: &[]
            }),
            [0x09, 0x96, 0x04, 0x80, 0xa1, b'1', 0xa1, b'S', 0x90, 0x90]
        );
        assert_eq!(
            enc(OutMessage::CancelInvocation { invocation_id: "1" }),
            [0x05, 0x93, 0x05, 0x80, 0xa1, b'1']
        );
        assert_eq!(
            enc(OutMessage::Close {
                error: Some("x"),
                allow_reconnect: true
            }),
            [0x05, 0x93, 0x07, 0xa1, b'x', 0xc3]
        );
        assert_eq!(enc(OutMessage::Ack { sequence_id: 3 }), [0x03, 0x92, 0x08, 0x03]);
        assert_eq!(enc(OutMessage::Sequence { sequence_id: 4 }), [0x03, 0x92, 0x09, 0x04]);
    }

    #[test]
    fn decodes_five_and_six_element_invocations() {
        // [1, {}, "7", "Echo", ["hi"]]
        let five = [
            0x0e, 0x95, 0x01, 0x80, 0xa1, b'7', 0xa4, b'E', b'c', b'h', b'o', 0x91, 0xa2, b'h', b'i',
        ];
        let HubMessage::Invocation(inv) = one(&five) else {
            panic!()
        };
        assert_eq!(inv.invocation_id.as_deref(), Some("7"));
        assert_eq!(inv.arguments[0].decode::<String>().unwrap(), "hi");
        // [1, {"a":"b"}, nil, "T", [], ["s"]]
        let six = [
            0x0e, 0x96, 0x01, 0x81, 0xa1, b'a', 0xa1, b'b', 0xc0, 0xa1, b'T', 0x90, 0x91, 0xa1, b's',
        ];
        let HubMessage::Invocation(inv) = one(&six) else {
            panic!()
        };
        assert_eq!(inv.invocation_id, None);
        assert_eq!(inv.stream_ids, vec!["s".to_string()]);
        assert_eq!(inv.headers.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn varints() {
        for (n, bytes) in [
            (0usize, vec![0x00]),
            (127, vec![0x7f]),
            (128, vec![0x80, 0x01]),
            (300, vec![0xac, 0x02]),
            (16_384, vec![0x80, 0x80, 0x01]),
            (2_097_152, vec![0x80, 0x80, 0x80, 0x01]),
            ((1 << 31) - 1, vec![0xff, 0xff, 0xff, 0xff, 0x07]),
        ] {
            let mut out = Vec::new();
            write_varint(n, &mut out);
            assert_eq!(out, bytes, "{n}");
            assert_eq!(read_varint(&bytes).unwrap(), Some((n as u64, bytes.len())));
        }
        assert_eq!(read_varint(&[0x80, 0x80]).unwrap(), None, "truncated prefix");
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x08]).is_err(), "over 2 GiB");
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
    }

    #[test]
    fn bad_input() {
        let p = MessagePackProtocol;
        assert!(matches!(
            p.complete_prefix(&[0x80, 0x80, 0x01], 100),
            Err(ProtocolError::MessageTooLarge { .. })
        ));
        assert_eq!(p.complete_prefix(&[0x05, 0x93], 100).unwrap(), 0, "partial body waits");
        for bad in [
            &[0x01, 0xc1][..],                     // reserved marker
            &[0x02, 0x91, 0xa1],                   // type is not an int
            &[0x03, 0x92, 0x01, 0x80],             // invocation too short
            &[0x04, 0x93, 0x03, 0x80, 0xa1],       // truncated string
            &[0x06, 0x94, 0x03, 0x80, 0xa1, 0x30], // missing result kind
            &[0x05, 0x80],                         // truncated frame (5 bytes announced)
        ] {
            assert!(p.parse(bad).is_err(), "{bad:02x?}");
        }
        assert!(
            p.parse(&[0x02, 0x91, 0x63]).unwrap().is_empty(),
            "unknown type 99 ignored"
        );
    }

    /// Found by `cargo fuzz` (target `msgpack`, crash-0f81e018…): an argument map whose keys
    /// are not strings (invalid UTF-8 text, an integer) re-encodes in MessagePack but not in
    /// JSON, where writing it panicked inside serde-transcode + erased-serde; it is now an
    /// `EncodeError`.
    #[test]
    fn fuzz_regression_non_string_map_key_does_not_panic_when_written_as_json() {
        let input = [
            0x23, 0x95, 0x01, 0x80, 0xa1, 0x31, 0xa1, 0x54, 0x93, 0xd6, 0xff, 0x00, 0x7f, 0x01, 0x82, 0xa4, 0x6e, 0x61,
            0x00, 0x01, 0x82, 0xa4, 0x6e, 0x61, 0xc4, 0x65, 0xa1, 0x61, 0x67, 0x61, 0xa4, 0x74, 0x73, 0x91, 0xa1, 0x78,
        ];
        let HubMessage::Invocation(inv) = one(&input) else {
            panic!()
        };
        let out = OutMessage::Invocation {
            invocation_id: inv.invocation_id.as_deref(),
            target: &inv.target,
            arguments: &inv.arguments,
            stream_ids: &inv.stream_ids,
        };
        #[cfg(feature = "json")]
        assert!(crate::JsonProtocol.encode(&out).is_err());
        let again = MessagePackProtocol.encode(&out).unwrap();
        assert_eq!(MessagePackProtocol.parse(&again).unwrap().len(), 1);
        assert!(serde_json::to_string(&inv.arguments[2]).is_err());
    }

    #[test]
    fn named_structs_and_binary() {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "PascalCase")]
        struct P {
            name: String,
            data: crate::types::Binary,
        }
        let bytes = enc(OutMessage::Completion {
            invocation_id: "1",
            result: OutResult::Value(&P {
                name: "a".into(),
                data: crate::types::Binary(vec![1, 2]),
            }),
        });
        // The value is a map with string keys, and the bytes are `bin`.
        let body = &bytes[1..];
        let value = rmpv::decode::read_value(&mut &body[..]).unwrap();
        let map = value.as_array().unwrap()[4].as_map().unwrap().clone();
        assert_eq!(map[0].0.as_str(), Some("Name"));
        assert_eq!(map[1].1.as_slice(), Some(&[1u8, 2][..]));
    }
}
