//! The JSON hub protocol: `complete_prefix` then `parse` never panic; every parsed message
//! round trips through the encoder (JSON and MessagePack) and its arguments decode into
//! common parameter types without panicking.
#![no_main]

use hub_protocol::{HubProtocol, JsonProtocol, MessagePackProtocol};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Unframed input too (`parse` is only meant for complete prefixes, but must not panic).
    let _ = JsonProtocol.parse(data);
    hub_fuzz::check_stream(&JsonProtocol, &MessagePackProtocol, data);
});
