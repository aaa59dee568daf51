//! The handshake: the first message a client sends on every transport, always JSON text
//! ended by `0x1E`, naming the hub protocol and its version.

use serde::Deserialize;

use crate::error_texts;
use crate::{HubProtocol, TransferFormat};

/// The record separator that ends the handshake (and every message of the JSON protocol).
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// The protocol name as sent (`json`, `messagepack`).
    pub protocol: String,
    /// The protocol version.
    pub version: u32,
}

#[derive(Deserialize)]
struct WireHandshake {
    protocol: Option<String>,
    version: Option<serde_json::Value>,
}

/// The handshake could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// More bytes are needed (no record separator yet).
    Incomplete,
    /// The request is malformed; the text says how (shown to the client only with detailed
    /// errors on, after [`HANDSHAKE_FAILED`]).
    Invalid(String),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Incomplete => f.write_str("the handshake request is incomplete"),
            HandshakeError::Invalid(why) => write!(f, "invalid handshake request: {why}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Tries to read a handshake request from the start of `input`.
///
/// Returns the request and how many bytes it used (anything after it is ordinary hub
/// messages in the chosen protocol).
///
/// ```
/// use hub_protocol::handshake::parse_request;
/// let (req, used) = parse_request(b"{\"protocol\":\"json\",\"version\":1}\x1e").unwrap();
/// assert_eq!((req.protocol.as_str(), req.version, used), ("json", 1, 32));
/// ```
pub fn parse_request(input: &[u8]) -> Result<(HandshakeRequest, usize), HandshakeError> {
    let Some(end) = input.iter().position(|&b| b == RECORD_SEPARATOR) else {
        return Err(HandshakeError::Incomplete);
    };
    let wire: WireHandshake =
        serde_json::from_slice(&input[..end]).map_err(|e| HandshakeError::Invalid(describe(&e)))?;
    let protocol = wire
        .protocol
        .ok_or_else(|| HandshakeError::Invalid(error_texts::missing_property("protocol")))?;
    let version = match wire.version {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| HandshakeError::Invalid(error_texts::expected_type("version", "Number")))?,
        Some(_) => return Err(HandshakeError::Invalid(error_texts::expected_type("version", "Number"))),
        None => return Err(HandshakeError::Invalid(error_texts::missing_property("version"))),
    };
    Ok((HandshakeRequest { protocol, version }, end + 1))
}

pub use crate::error_texts::{HANDSHAKE_CANCELED, HANDSHAKE_FAILED};

fn describe(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => {
            if e.to_string().starts_with("invalid type") {
                "Unexpected JSON Token Type. Expected a JSON Object.".to_string()
            } else {
                format!("Invalid handshake request: {e}")
            }
        }
        serde_json::error::Category::Eof => "Unexpected end when reading JSON.".to_string(),
        _ => format!("Error reading JSON: {e}"),
    }
}

/// Picks the protocol a handshake asks for among `protocols`, checking its version and that
/// `transport_formats`, the transfer formats the connection's transport carries (such as
/// [`TransferFormat::ALL`], or only `Text` for Server-Sent Events), include the protocol's.
/// The error is the text of the handshake error reply.
pub fn select_protocol<'a>(
    request: &HandshakeRequest,
    protocols: &'a [std::sync::Arc<dyn HubProtocol>],
    transport_formats: &[TransferFormat],
) -> Result<&'a std::sync::Arc<dyn HubProtocol>, String> {
    let protocol = protocols
        .iter()
        .find(|p| p.name().eq_ignore_ascii_case(&request.protocol))
        .ok_or_else(|| error_texts::protocol_not_supported(&request.protocol))?;
    if request.version > protocol.version() {
        return Err(error_texts::version_not_supported(request.version, &request.protocol));
    }
    if !transport_formats.contains(&protocol.transfer_format()) {
        return Err(error_texts::transfer_format_not_supported(
            protocol.name(),
            protocol.transfer_format(),
        ));
    }
    Ok(protocol)
}

/// The success reply: `{}` + `0x1E`.
pub const SUCCESS_REPLY: &[u8] = b"{}\x1e";

/// An error reply: `{"error":"…"}` + `0x1E`.
pub fn error_reply(error: &str) -> Vec<u8> {
    let mut out = b"{\"error\":".to_vec();
    let _ = serde_json::to_writer(&mut out, error);
    out.extend_from_slice(b"}\x1e");
    out
}

/// Writes a handshake request (what a client sends).
pub fn request_bytes(protocol: &str, version: u32) -> Vec<u8> {
    let mut out = b"{\"protocol\":".to_vec();
    let _ = serde_json::to_writer(&mut out, protocol);
    out.extend_from_slice(format!(",\"version\":{version}}}\x1e").as_bytes());
    out
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::JsonProtocol;

    #[test]
    fn parses_and_keeps_the_rest() {
        let input = b"{\"version\":2,\"protocol\":\"JSON\",\"x\":1}\x1e{\"type\":6}\x1e";
        let (req, used) = parse_request(input).unwrap();
        assert_eq!(
            req,
            HandshakeRequest {
                protocol: "JSON".into(),
                version: 2
            }
        );
        assert_eq!(&input[used..], b"{\"type\":6}\x1e");
        assert_eq!(parse_request(b"{\"protocol\""), Err(HandshakeError::Incomplete));
    }

    #[test]
    fn errors_have_the_official_texts() {
        let protocols: Vec<Arc<dyn HubProtocol>> = vec![Arc::new(JsonProtocol)];
        let req = |p: &str, v| HandshakeRequest {
            protocol: p.into(),
            version: v,
        };
        assert_eq!(
            select_protocol(&req("xyz", 1), &protocols, TransferFormat::ALL)
                .err()
                .unwrap(),
            "The protocol 'xyz' is not supported."
        );
        assert_eq!(
            select_protocol(&req("json", 3), &protocols, TransferFormat::ALL)
                .err()
                .unwrap(),
            "The server does not support version 3 of the 'json' protocol."
        );
        assert!(select_protocol(&req("Json", 1), &protocols, &[TransferFormat::Text]).is_ok());
        for bad in [
            &b"nope\x1e"[..],
            b"{}\x1e",
            b"{\"protocol\":\"json\"}\x1e",
            b"{\"protocol\":\"json\",\"version\":\"1\"}\x1e",
        ] {
            match parse_request(bad) {
                Err(HandshakeError::Invalid(text)) => assert!(!text.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(error_reply("a\"b"), b"{\"error\":\"a\\\"b\"}\x1e");
    }
}
