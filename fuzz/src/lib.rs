//! Checks shared by the fuzz targets: framing invariants, encode → parse round trips, and
//! decoding raw arguments into the kinds of types hub methods take.

use std::collections::BTreeMap;

use hub_protocol::types::{Binary, DateTime};
use hub_protocol::{
    CompletionResult, HubMessage, HubProtocol, JsonProtocol, MessagePackProtocol, OutMessage, OutResult, ProtocolError,
    RawValue,
};
use serde::Deserialize;

/// The message size limit used when a target does not test the limit itself.
pub const NO_LIMIT: usize = usize::MAX;

/// Encodes a parsed message back with `protocol`. `None` when a raw value cannot be written in
/// that protocol (a MessagePack map with non-string keys in JSON, a JSON number out of `f64`
/// range, …): an `EncodeError`, never a panic. Headers are not written (outgoing messages
/// have none).
pub fn encode(protocol: &dyn HubProtocol, message: &HubMessage) -> Option<Vec<u8>> {
    let out = match message {
        HubMessage::Invocation(inv) => OutMessage::Invocation {
            invocation_id: inv.invocation_id.as_deref(),
            target: &inv.target,
            arguments: &inv.arguments,
            stream_ids: &inv.stream_ids,
        },
        HubMessage::StreamInvocation(inv) => OutMessage::StreamInvocation {
            invocation_id: inv
                .invocation_id
                .as_deref()
                .expect("a StreamInvocation always has an id"),
            target: &inv.target,
            arguments: &inv.arguments,
            stream_ids: &inv.stream_ids,
        },
        HubMessage::StreamItem {
            invocation_id, item, ..
        } => OutMessage::StreamItem { invocation_id, item },
        HubMessage::Completion {
            invocation_id, result, ..
        } => OutMessage::Completion {
            invocation_id,
            result: match result {
                CompletionResult::Void => OutResult::Void,
                CompletionResult::Value(value) => OutResult::Value(value),
                CompletionResult::Error(error) => OutResult::Error(error),
            },
        },
        HubMessage::CancelInvocation { invocation_id, .. } => OutMessage::CancelInvocation { invocation_id },
        HubMessage::Ping => OutMessage::Ping,
        HubMessage::Close { error, allow_reconnect } => OutMessage::Close {
            error: error.as_deref(),
            allow_reconnect: *allow_reconnect,
        },
        HubMessage::Ack { sequence_id } => OutMessage::Ack {
            sequence_id: *sequence_id,
        },
        HubMessage::Sequence { sequence_id } => OutMessage::Sequence {
            sequence_id: *sequence_id,
        },
    };
    protocol.encode(&out).ok().map(|bytes| bytes.to_vec())
}

/// A message with its headers dropped and every raw value replaced by a placeholder: what
/// must survive re-encoding in any protocol.
pub fn shape(message: &HubMessage) -> HubMessage {
    let placeholder = || RawValue::json("0").unwrap();
    let mut m = message.clone();
    match &mut m {
        HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) => {
            inv.headers.clear();
            inv.arguments.iter_mut().for_each(|a| *a = placeholder());
        }
        HubMessage::StreamItem { item, headers, .. } => {
            headers.clear();
            *item = placeholder();
        }
        HubMessage::Completion { result, headers, .. } => {
            headers.clear();
            if let CompletionResult::Value(value) = result {
                *value = placeholder();
            }
        }
        HubMessage::CancelInvocation { headers, .. } => headers.clear(),
        HubMessage::Ping | HubMessage::Close { .. } | HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
    }
    m
}

/// The raw values a message carries.
pub fn raw_values(message: &HubMessage) -> Vec<&RawValue> {
    match message {
        HubMessage::Invocation(inv) | HubMessage::StreamInvocation(inv) => inv.arguments.iter().collect(),
        HubMessage::StreamItem { item, .. } => vec![item],
        HubMessage::Completion {
            result: CompletionResult::Value(value),
            ..
        } => vec![value],
        _ => Vec::new(),
    }
}

/// `complete_prefix` invariants; returns the complete prefix under no limit.
///
/// - the prefix is never longer than the input;
/// - a smaller limit either gives the same prefix or `MessageTooLarge` with that limit.
pub fn check_complete_prefix(protocol: &dyn HubProtocol, input: &[u8]) -> Result<usize, ProtocolError> {
    let whole = protocol.complete_prefix(input, NO_LIMIT);
    if let Ok(n) = whole {
        assert!(n <= input.len(), "complete_prefix {n} > input length {}", input.len());
    }
    for limit in [0, 1, 7, input.len() / 2, input.len()] {
        match (protocol.complete_prefix(input, limit), &whole) {
            (Ok(n), Ok(w)) => assert_eq!(n, *w, "limit {limit} changed the complete prefix"),
            (Err(ProtocolError::MessageTooLarge { limit: l }), _) => assert_eq!(l, limit),
            (Ok(n), Err(e)) => panic!("limit {limit} accepted {n} bytes that no limit rejects: {e}"),
            (Err(e), Ok(_)) => panic!("limit {limit} gave an error other than MessageTooLarge: {e:?}"),
            (Err(_), Err(_)) => {}
        }
    }
    whole
}

/// Parses `input` (a whole stream of framed messages), checking every message it yields.
pub fn check_stream(protocol: &dyn HubProtocol, other: &dyn HubProtocol, input: &[u8]) {
    let Ok(n) = check_complete_prefix(protocol, input) else {
        return;
    };
    let parsed = protocol.parse(&input[..n]);
    // From shared bytes (as a connection reads), values are slices of them: the same messages,
    // or the same error.
    let shared = bytes::Bytes::copy_from_slice(&input[..n]);
    let mut from_shared = Vec::new();
    let shared_parsed = protocol
        .parse_bytes_into(&shared, &mut from_shared)
        .map(|()| from_shared);
    match (&parsed, &shared_parsed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "parse and parse_bytes_into differ"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "parse and parse_bytes_into differ"),
        _ => panic!("parse and parse_bytes_into differ: {parsed:?} against {shared_parsed:?}"),
    }
    if let Ok(messages) = parsed {
        for message in &messages {
            check_message(protocol, other, message);
        }
    }
}

/// Round trips of one parsed message, in its own protocol and in the other one, and decoding
/// of its raw values.
pub fn check_message(protocol: &dyn HubProtocol, other: &dyn HubProtocol, message: &HubMessage) {
    for value in raw_values(message) {
        decode_all(value);
    }
    if let Some(bytes) = encode(protocol, message) {
        assert_eq!(
            protocol.complete_prefix(&bytes, NO_LIMIT),
            Ok(bytes.len()),
            "{bytes:02x?}"
        );
        assert_eq!(
            protocol.complete_prefix(&bytes[..bytes.len() - 1], NO_LIMIT),
            Ok(0),
            "a truncated message is incomplete"
        );
        let back = protocol
            .parse(&bytes)
            .unwrap_or_else(|e| panic!("re-encoded {message:?} does not parse: {e} ({bytes:02x?})"));
        assert_eq!(back.len(), 1);
        assert_eq!(shape(message), shape(&back[0]), "{bytes:02x?}");
        let again = encode(protocol, &back[0]).expect("a re-encoded message encodes again");
        assert_eq!(again, bytes, "encoding is stable after one round trip");
    }
    if let Some(bytes) = encode(other, message) {
        let back = other
            .parse(&bytes)
            .unwrap_or_else(|e| panic!("{message:?} in {} does not parse: {e} ({bytes:02x?})", other.name()));
        assert_eq!(back.len(), 1);
        assert_eq!(shape(message), shape(&back[0]));
    }
}

/// A hub method parameter of the shape users write.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    name: String,
    age: Option<u8>,
    tags: Vec<String>,
    scores: BTreeMap<String, f64>,
    photo: Option<Binary>,
    born: Option<DateTime>,
    kind: Option<Kind>,
    friends: Option<Vec<Person>>,
}

/// An enum parameter.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
pub enum Kind {
    /// A unit variant.
    Plain,
    /// A newtype variant.
    Tagged(String),
    /// A struct variant.
    Pair {
        /// A field.
        a: i32,
        /// A field.
        b: Option<bool>,
    },
}

/// Decodes a raw value into many parameter types: any result is fine, a panic is not.
pub fn decode_all(value: &RawValue) {
    if let Ok(v) = value.decode::<serde_json::Value>() {
        // What decoded as a JSON value re-encodes as JSON.
        serde_json::to_vec(&v).expect("a serde_json::Value serializes");
    }
    let _ = value.decode::<String>();
    let _ = value.decode::<i32>();
    let _ = value.decode::<u64>();
    let _ = value.decode::<f64>();
    let _ = value.decode::<bool>();
    let _ = value.decode::<Option<char>>();
    let _ = value.decode::<Vec<i64>>();
    let _ = value.decode::<(i32, String, Option<f32>)>();
    let _ = value.decode::<BTreeMap<String, serde_json::Value>>();
    let _ = value.decode::<Binary>();
    let _ = value.decode::<DateTime>();
    let _ = value.decode::<Person>();
    let _ = value.decode::<Vec<Person>>();
    let _ = value.decode::<Kind>();
}

/// The MessagePack framing as the protocol describes it, read independently of hub-runtime: a
/// length of 7 bits a byte, least significant group first, at most 5 bytes and 2 GiB − 1.
/// Returns `(prefix length, body length)` of each frame whose prefix is complete (the last
/// body may be incomplete), or `None` at an over-long prefix.
pub fn varint_frames(input: &[u8]) -> Option<Vec<(usize, usize)>> {
    let mut frames = Vec::new();
    let mut at = 0;
    'frames: while at < input.len() {
        let mut length = 0u64;
        let mut prefix = 0;
        loop {
            let Some(&byte) = input.get(at + prefix) else {
                break 'frames;
            };
            length |= u64::from(byte & 0x7f) << (7 * prefix);
            prefix += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if prefix == 5 {
                return None;
            }
        }
        if length >= 1 << 31 {
            return None;
        }
        frames.push((prefix, length as usize));
        at += prefix + length as usize;
    }
    Some(frames)
}

/// How many bytes of `input` are whole MessagePack frames, per [`varint_frames`].
pub fn complete_frames(input: &[u8]) -> Option<usize> {
    let mut at = 0;
    for (prefix, length) in varint_frames(input)? {
        if at + prefix + length > input.len() {
            break;
        }
        at += prefix + length;
    }
    Some(at)
}

/// The two protocols, for targets that pick one from the input.
pub fn protocols() -> [&'static dyn HubProtocol; 2] {
    [&JsonProtocol, &MessagePackProtocol]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed corpora pass the checks the json and msgpack targets make (`cargo test` here
    /// replays them without libFuzzer).
    #[test]
    fn the_seeds_pass_the_checks() {
        let [json, msgpack] = protocols();
        for (dir, protocol, other) in [("seeds/json", json, msgpack), ("seeds/msgpack", msgpack, json)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            for entry in std::fs::read_dir(dir).unwrap() {
                let input = std::fs::read(entry.unwrap().path()).unwrap();
                let _ = protocol.parse(&input);
                check_stream(protocol, other, &input);
            }
        }
    }
}
