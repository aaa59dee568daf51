//! The MessagePack hub protocol and its VarInt framing: `complete_prefix` agrees with an
//! independent reading of the length prefixes, `parse` of a complete prefix never reports a
//! truncation, nothing panics, and every parsed message round trips (MessagePack and JSON).
#![no_main]

use hub_protocol::{HubProtocol, JsonProtocol, MessagePackProtocol, ProtocolError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = MessagePackProtocol.parse(data);
    let expected = hub_fuzz::complete_frames(data);
    let n = match MessagePackProtocol.complete_prefix(data, hub_fuzz::NO_LIMIT) {
        Ok(n) => {
            assert_eq!(Some(n), expected, "complete_prefix disagrees with the VarInt framing");
            n
        }
        Err(ProtocolError::InvalidData(_)) => {
            assert_eq!(expected, None, "complete_prefix rejected valid framing");
            return;
        }
        Err(e) => panic!("no limit, yet {e:?}"),
    };
    if let Err(ProtocolError::InvalidData(text)) = MessagePackProtocol.parse(&data[..n]) {
        assert!(
            !text.starts_with("Truncated"),
            "a complete prefix is not truncated: {text}"
        );
    }
    hub_fuzz::check_stream(&MessagePackProtocol, &JsonProtocol, data);
});
