//! Golden encodings, every message type decoded, and the errors of malformed input.

use super::*;
use crate::{CompletionResult, HubMessage, NoArgs, OutMessage, OutResult, ProtocolError, RawValue};

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

/// Whether `part` lies inside `whole`'s bytes.
fn inside(whole: &bytes::Bytes, part: &[u8]) -> bool {
    let range = whole.as_ptr_range();
    range.start <= part.as_ptr() && part.as_ptr_range().end <= range.end
}

#[test]
fn values_read_from_shared_bytes_are_slices_of_them() {
    let frame = bytes::Bytes::from_static(
        b"{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\",{\"a\":2}]}\x1e\
          {\"type\":3,\"invocationId\":\"2\",\"result\":[1]}\x1e",
    );
    let mut out = Vec::new();
    JsonProtocol.parse_bytes_into(&frame, &mut out).unwrap();
    let HubMessage::Invocation(invocation) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        invocation.arguments[1].decode::<serde_json::Value>().unwrap(),
        serde_json::json!({"a": 2})
    );
    for value in &invocation.arguments {
        assert!(inside(&frame, value.as_bytes()), "{value:?} was copied");
    }
    let HubMessage::Completion {
        result: CompletionResult::Value(value),
        ..
    } = &out[1]
    else {
        panic!("{out:?}")
    };
    assert!(inside(&frame, value.as_bytes()));
    // Detached, a value is a copy of its own bytes.
    let kept = invocation.arguments[1].clone().detach();
    assert!(!inside(&frame, kept.as_bytes()));
    assert_eq!(kept, invocation.arguments[1]);
    // From a plain slice, the same messages (copied).
    assert_eq!(JsonProtocol.parse(&frame).unwrap(), out);
}
