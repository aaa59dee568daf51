//! [`RawValue`]: one argument, item or result as it arrived, decoded once its type is known.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// One value as it arrived on the wire, not yet decoded into a Rust type.
///
/// A JSON value is always possible (a backplane or a custom protocol may carry one); the
/// `MessagePack` variant exists with the `msgpack` feature.
///
#[cfg_attr(feature = "json", doc = "```")]
#[cfg_attr(not(feature = "json"), doc = "```ignore")]
/// use hub_protocol::{HubProtocol, JsonProtocol, HubMessage};
/// let msgs = JsonProtocol.parse(b"{\"type\":1,\"target\":\"Add\",\"arguments\":[1,2]}\x1e").unwrap();
/// let HubMessage::Invocation(inv) = &msgs[0] else { panic!() };
/// let a: i32 = inv.arguments[0].decode().unwrap();
/// assert_eq!(a, 1);
/// ```
#[derive(Clone)]
pub enum RawValue {
    /// A JSON value, kept as its source text.
    Json(Box<serde_json::value::RawValue>),
    /// A MessagePack value, kept as its bytes.
    #[cfg(feature = "msgpack")]
    MessagePack(bytes::Bytes),
}

impl RawValue {
    /// Decodes the value into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        match self {
            RawValue::Json(raw) => serde_json::from_str(raw.get()).map_err(|e| DecodeError(e.to_string())),
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => rmp_serde::from_slice(bytes).map_err(|e| DecodeError(e.to_string())),
        }
    }

    /// The value's source bytes (JSON text, or MessagePack bytes).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RawValue::Json(raw) => raw.get().as_bytes(),
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => bytes,
        }
    }

    /// Rebuilds a raw value from its bytes, as [`RawValue::as_bytes`] gave them, for the
    /// protocol named (`json` or `messagepack`; without the `msgpack` feature, a
    /// MessagePack value is an error).
    pub fn from_protocol_bytes(protocol: &str, bytes: &[u8]) -> Result<Self, DecodeError> {
        if protocol.eq_ignore_ascii_case("json") {
            let text = std::str::from_utf8(bytes).map_err(|e| DecodeError(e.to_string()))?;
            return RawValue::json(text);
        }
        #[cfg(feature = "msgpack")]
        return Ok(RawValue::MessagePack(bytes::Bytes::copy_from_slice(bytes)));
        #[cfg(not(feature = "msgpack"))]
        Err(DecodeError(format!(
            "a {protocol} value cannot be read: hub-runtime was built without the `msgpack` feature"
        )))
    }

    /// Builds a JSON raw value from its text (the text must be valid JSON).
    pub fn json(text: &str) -> Result<Self, DecodeError> {
        serde_json::value::RawValue::from_string(text.to_owned())
            .map(RawValue::Json)
            .map_err(|e| DecodeError(e.to_string()))
    }
}

impl fmt::Debug for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Json(raw) => write!(f, "Json({})", raw.get()),
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => write!(f, "MessagePack({bytes:02x?})"),
        }
    }
}

impl PartialEq for RawValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RawValue::Json(a), RawValue::Json(b)) => a.get() == b.get(),
            #[cfg(feature = "msgpack")]
            (RawValue::MessagePack(a), RawValue::MessagePack(b)) => a == b,
            #[cfg(feature = "msgpack")]
            _ => false,
        }
    }
}

impl RawValue {
    fn transcode<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RawValue::Json(raw) => {
                let mut de = serde_json::Deserializer::from_str(raw.get());
                serde_transcode::transcode(&mut de, serializer)
            }
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => {
                let mut de = rmp_serde::Deserializer::from_read_ref(&bytes[..]);
                serde_transcode::transcode(&mut de, serializer)
            }
        }
    }
}

impl Serialize for RawValue {
    /// A raw value re-encodes into any format by transcoding its source.
    ///
    /// The value is first transcoded into a discarding JSON or MessagePack writer (as the
    /// serializer is human-readable or not), and a failure there is returned as an error:
    /// transcoding that fails inside the real serializer panics when it is type-erased, as
    /// every protocol payload is (serde-transcode formats the error, and erased-serde's has no
    /// `Display`: dtolnay/erased-serde#109). Found by fuzzing: a JSON key that is a lone
    /// surrogate, a MessagePack map key that is not a string, written as JSON.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sink = std::io::sink();
        // Without the `msgpack` feature every raw value is JSON, and reading it through the
        // JSON writer checks its source whatever the real serializer is.
        #[cfg(not(feature = "msgpack"))]
        let check = self
            .transcode(&mut serde_json::Serializer::new(sink))
            .map_err(|e| e.to_string());
        #[cfg(feature = "msgpack")]
        let check = if serializer.is_human_readable() {
            self.transcode(&mut serde_json::Serializer::new(sink))
                .map_err(|e| e.to_string())
        } else {
            self.transcode(&mut rmp_serde::Serializer::new(sink))
                .map_err(|e| e.to_string())
        };
        if let Err(error) = check {
            return Err(serde::ser::Error::custom(error));
        }
        self.transcode(serializer)
    }
}

/// A value could not be decoded into the requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}
