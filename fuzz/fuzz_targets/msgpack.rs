//! The MessagePack hub protocol and its VarInt framing: `complete_prefix` agrees with an
//! independent reading of the length prefixes, `parse` of a complete prefix never reports a
//! truncation, nothing panics, and every parsed message round trips (MessagePack and JSON).
#![no_main]

use hub_runtime::protocol::{HubProtocol, JsonProtocol, MessagePackProtocol, ProtocolError};
use libfuzzer_sys::fuzz_target;

/// The framing as the protocol describes it: a length of 7 bits a byte, least significant
/// group first, at most 5 bytes and 2 GiB − 1. `Err` for an over-long prefix.
fn complete_frames(input: &[u8]) -> Result<usize, ()> {
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
                return Err(());
            }
        }
        if length >= 1 << 31 {
            return Err(());
        }
        let end = at + prefix + length as usize;
        if end > input.len() {
            break;
        }
        at = end;
    }
    Ok(at)
}

fuzz_target!(|data: &[u8]| {
    let _ = MessagePackProtocol.parse(data);
    let expected = complete_frames(data);
    let n = match MessagePackProtocol.complete_prefix(data, hub_fuzz::NO_LIMIT) {
        Ok(n) => {
            assert_eq!(Ok(n), expected, "complete_prefix disagrees with the VarInt framing");
            n
        }
        Err(ProtocolError::InvalidData(_)) => {
            assert_eq!(expected, Err(()), "complete_prefix rejected valid framing");
            return;
        }
        Err(e) => panic!("no limit, yet {e:?}"),
    };
    if let Err(ProtocolError::InvalidData(text)) = MessagePackProtocol.parse(&data[..n]) {
        assert!(!text.starts_with("Truncated"), "a complete prefix is not truncated: {text}");
    }
    hub_fuzz::check_stream(&MessagePackProtocol, &JsonProtocol, data);
});
