//! `MessageReader::feed` with the input split into random chunks gives the same messages and
//! the same success or failure as feeding it whole.
//!
//! Input: byte 0 picks the protocol (bit 0) and the message size limit (bits 1–3); bytes 1–2
//! seed the chunk sizes; the rest is the stream.
#![no_main]

use hub_protocol::{HubProtocol, MessageReader, ProtocolError};
use libfuzzer_sys::fuzz_target;

/// Known and reported, not fixed: for MessagePack the limit applies to a message's body, but
/// `MessageReader` also checks the bytes it keeps between frames (VarInt prefix included)
/// against it, so a message whose body is within the prefix's length (minus one) of the limit
/// is accepted whole and refused when a frame boundary falls just before its last byte.
fn known_prefix_overcount(protocol: &dyn HubProtocol, input: &[u8], limit: usize) -> bool {
    protocol.name() == "messagepack"
        && hub_fuzz::varint_frames(input).is_some_and(|frames| {
            frames
                .iter()
                .any(|&(prefix, len)| len <= limit && prefix + len - 1 > limit)
        })
}

const LIMITS: [usize; 8] = [0, 1, 8, 100, 127, 128, 1024, hub_fuzz::NO_LIMIT];

fuzz_target!(|data: &[u8]| {
    let [head, s1, s2, ref input @ ..] = *data else {
        return;
    };
    let protocol = hub_fuzz::protocols()[usize::from(head & 1)];
    let limit = LIMITS[usize::from((head >> 1) & 7)];

    let mut whole_out = Vec::new();
    let whole = MessageReader::default().feed(protocol, input, limit, &mut whole_out);

    let mut seed = (u32::from(s1) << 8 | u32::from(s2)) | 0x1_0000;
    let mut reader = MessageReader::default();
    let mut out = Vec::new();
    let mut chunked = Ok(());
    let mut rest = input;
    while !rest.is_empty() && chunked.is_ok() {
        // xorshift32
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let len = if seed & 0x1f == 0 {
            0
        } else if seed & 0x3e0 == 0 {
            64 + (seed >> 10) as usize % 512
        } else {
            1 + (seed >> 10) as usize % 16
        };
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        chunked = reader.feed(protocol, chunk, limit, &mut out);
    }

    match (&whole, &chunked) {
        (Ok(()), Ok(())) => assert_eq!(whole_out, out, "chunking changed the messages"),
        (_, Err(ProtocolError::MessageTooLarge { .. })) if known_prefix_overcount(protocol, input, limit) => {}
        (Err(_), Err(_)) => assert!(
            out.starts_with(&whole_out),
            "chunking changed the messages before the error"
        ),
        _ => panic!(
            "{} limit {limit}: whole input {whole:?}, in chunks {chunked:?}",
            protocol.name()
        ),
    }
});
