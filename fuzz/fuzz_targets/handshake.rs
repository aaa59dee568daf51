//! The handshake request parser: never panics, finds the first record separator, and what it
//! accepts is written back by `request_bytes` into bytes it reads the same.
#![no_main]

use std::sync::Arc;

use hub_protocol::handshake::{error_reply, parse_request, request_bytes, select_protocol, HandshakeError};
use hub_protocol::{HubProtocol, JsonProtocol, MessagePackProtocol, TransferFormat};
use libfuzzer_sys::fuzz_target;

fn assert_reply_is_json(text: &str) {
    let reply = error_reply(text);
    assert_eq!(reply.last(), Some(&0x1e));
    let value: serde_json::Value = serde_json::from_slice(&reply[..reply.len() - 1]).expect("the error reply is JSON");
    assert_eq!(value["error"].as_str(), Some(text));
}

fuzz_target!(|data: &[u8]| {
    let separator = data.iter().position(|&b| b == 0x1e);
    match parse_request(data) {
        Err(HandshakeError::Incomplete) => assert_eq!(separator, None),
        Err(HandshakeError::Invalid(text)) => {
            assert!(separator.is_some());
            assert!(!text.is_empty());
            assert_reply_is_json(&text);
        }
        Ok((request, used)) => {
            assert_eq!(Some(used - 1), separator, "the request ends at the first separator");
            let bytes = request_bytes(&request.protocol, request.version);
            assert_eq!(parse_request(&bytes), Ok((request.clone(), bytes.len())));
            let protocols: Vec<Arc<dyn HubProtocol>> = vec![Arc::new(JsonProtocol), Arc::new(MessagePackProtocol)];
            for formats in [&[TransferFormat::Text][..], TransferFormat::ALL] {
                match select_protocol(&request, &protocols, formats) {
                    Ok(protocol) => {
                        assert!(protocol.name().eq_ignore_ascii_case(&request.protocol));
                        assert!(request.version <= protocol.version());
                    }
                    Err(text) => assert_reply_is_json(&text),
                }
            }
        }
    }
});
