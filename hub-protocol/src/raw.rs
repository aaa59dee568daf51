//! [`RawValue`]: one argument, item or result as it arrived, decoded once its type is known.

use std::fmt;

#[cfg(feature = "msgpack")]
use bytes::Bytes;
use bytestring::ByteString;
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
    Json(JsonText),
    /// A MessagePack value, kept as its bytes.
    #[cfg(feature = "msgpack")]
    MessagePack(Bytes),
}

/// A JSON value's source text: valid JSON by construction, held in shared bytes.
///
/// A value the quick reader parses from a frame is a slice of the frame's own text
/// ([`HubProtocol::parse_bytes_into`](crate::HubProtocol::parse_bytes_into); a value that
/// waits should be [detached](RawValue::detach)), so reading an argument neither copies it nor
/// checks its UTF-8 again: in the echo benchmark's callgrind
/// count, a copied argument cost an allocation, its free and a copy, and a slice of plain
/// bytes cost a second UTF-8 check when it was decoded (about 140 instructions per call).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JsonText(ByteString);

impl JsonText {
    /// The value's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value's text, as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Copies `text`, which must be one JSON value (surrounding whitespace is dropped).
    fn parse(text: &str) -> Result<Self, DecodeError> {
        let raw: &serde_json::value::RawValue = serde_json::from_str(text).map_err(|e| DecodeError(e.to_string()))?;
        Ok(JsonText(ByteString::from(raw.get())))
    }

    /// Keeps a value serde_json read (and so validated) from text within `shared`'s.
    #[cfg(feature = "json")]
    pub(crate) fn read(raw: &serde_json::value::RawValue, shared: SharedText<'_>) -> Self {
        JsonText(shared.keep(raw.get()))
    }
}

impl From<Box<serde_json::value::RawValue>> for JsonText {
    /// Takes over an owned value's text without copying it.
    fn from(raw: Box<serde_json::value::RawValue>) -> Self {
        let text: Box<str> = raw.into();
        JsonText(ByteString::from(text))
    }
}

/// The text a JSON message is parsed from, when it is shared ([`ByteString`]): a value read
/// from it is then a slice of it rather than a copy.
#[cfg(feature = "json")]
#[derive(Clone, Copy, Default)]
pub(crate) struct SharedText<'a>(pub(crate) Option<&'a ByteString>);

#[cfg(feature = "json")]
impl<'a> SharedText<'a> {
    /// `part`, the text of some bytes inside the shared text (as `&str`, checked in O(1): both
    /// ends must be character boundaries); `None` when there is no shared text or `part` lies
    /// outside it.
    pub(crate) fn text_of(self, part: &[u8]) -> Option<&'a str> {
        let whole = self.0?;
        let start = offset_within(whole.as_bytes(), part)?;
        whole.get(start..start + part.len())
    }

    /// `part`'s text: a slice of the shared text when `part` lies inside it, else a copy.
    pub(crate) fn keep(self, part: &str) -> ByteString {
        match self.0 {
            Some(whole) if offset_within(whole.as_bytes(), part.as_bytes()).is_some() => whole.slice_ref(part),
            _ => ByteString::from(part),
        }
    }
}

/// The bytes a MessagePack message is parsed from, when they are shared ([`Bytes`]): a value
/// read from them is then a slice of them rather than a copy.
#[cfg(feature = "msgpack")]
#[derive(Clone, Copy, Default)]
pub(crate) struct SharedBytes<'a>(pub(crate) Option<&'a Bytes>);

#[cfg(feature = "msgpack")]
impl SharedBytes<'_> {
    /// `part`'s bytes: a slice of the shared bytes when `part` lies inside them, else a copy.
    pub(crate) fn keep(self, part: &[u8]) -> Bytes {
        match self.0 {
            Some(whole) if offset_within(whole, part).is_some() => whole.slice_ref(part),
            _ => Bytes::copy_from_slice(part),
        }
    }
}

/// Where `part` starts within `whole`, if it lies inside it (what `slice_ref` needs, or it
/// panics).
#[cfg(any(feature = "json", feature = "msgpack"))]
fn offset_within(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

impl RawValue {
    /// Decodes the value into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        match self {
            RawValue::Json(text) => serde_json::from_str(text.as_str()).map_err(|e| DecodeError(e.to_string())),
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => rmp_serde::from_slice(bytes).map_err(|e| DecodeError(e.to_string())),
        }
    }

    /// The value's source bytes (JSON text, or MessagePack bytes).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RawValue::Json(text) => text.as_bytes(),
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
        return Ok(RawValue::MessagePack(Bytes::copy_from_slice(bytes)));
        #[cfg(not(feature = "msgpack"))]
        Err(DecodeError(format!(
            "a {protocol} value cannot be read: hub-runtime was built without the `msgpack` feature"
        )))
    }

    /// The value copied out of the bytes it was read from, for a value that waits.
    ///
    /// A value read by [`HubProtocol::parse_bytes_into`](crate::HubProtocol::parse_bytes_into)
    /// may be a slice of its frame: kept, it keeps the whole frame (a frame may be far larger
    /// than the value). Detached, it keeps only its own bytes.
    ///
    #[cfg_attr(feature = "json", doc = "```")]
    #[cfg_attr(not(feature = "json"), doc = "```ignore")]
    /// use hub_protocol::{HubMessage, HubProtocol, JsonProtocol};
    /// let frame = bytes::Bytes::from_static(b"{\"type\":2,\"invocationId\":\"1\",\"item\":[1,2]}\x1e");
    /// let mut messages = Vec::new();
    /// JsonProtocol.parse_bytes_into(&frame, &mut messages).unwrap();
    /// let HubMessage::StreamItem { item, .. } = messages.remove(0) else { panic!() };
    /// let kept = item.detach();
    /// assert_eq!(kept.decode::<Vec<i32>>().unwrap(), [1, 2]);
    /// ```
    #[must_use]
    pub fn detach(self) -> Self {
        match self {
            RawValue::Json(text) => RawValue::Json(JsonText(ByteString::from(text.as_str()))),
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => RawValue::MessagePack(Bytes::copy_from_slice(&bytes)),
        }
    }

    /// Builds a JSON raw value from its text (the text must be valid JSON).
    pub fn json(text: &str) -> Result<Self, DecodeError> {
        JsonText::parse(text).map(RawValue::Json)
    }
}

impl fmt::Debug for RawValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawValue::Json(text) => write!(f, "Json({})", text.as_str()),
            #[cfg(feature = "msgpack")]
            RawValue::MessagePack(bytes) => write!(f, "MessagePack({bytes:02x?})"),
        }
    }
}

impl PartialEq for RawValue {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (RawValue::Json(a), RawValue::Json(b)) => a.as_bytes() == b.as_bytes(),
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
            RawValue::Json(text) => {
                let mut de = serde_json::Deserializer::from_str(text.as_str());
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
