//! Golden vectors, VarInts, malformed input, and values as the reference clients expect them.

use super::varint::{read_varint, write_varint};
use super::*;
use crate::{HubMessage, NoArgs, OutMessage, OutResult, ProtocolError};

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

#[test]
fn values_read_from_shared_bytes_are_slices_of_them() {
    let frame = bytes::Bytes::from(enc(OutMessage::Invocation {
        invocation_id: Some("1"),
        target: "Echo",
        arguments: &("hi", [1, 2]),
        stream_ids: &[],
    }));
    let mut out = Vec::new();
    MessagePackProtocol.parse_bytes_into(&frame, &mut out).unwrap();
    let HubMessage::Invocation(invocation) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(invocation.arguments[1].decode::<Vec<i32>>().unwrap(), [1, 2]);
    let range = frame.as_ptr_range();
    for value in &invocation.arguments {
        let bytes = value.as_bytes();
        assert!(
            range.start <= bytes.as_ptr() && bytes.as_ptr_range().end <= range.end,
            "{value:?} was copied"
        );
    }
    let kept = invocation.arguments[1].clone().detach();
    let bytes = kept.as_bytes();
    assert!(
        !(range.start <= bytes.as_ptr() && bytes.as_ptr_range().end <= range.end),
        "detached, yet a slice"
    );
    assert_eq!(kept, invocation.arguments[1]);
    assert_eq!(MessagePackProtocol.parse(&frame).unwrap(), out);
}
