//! Hub protocols: bytes ⇄ [`HubMessage`].
//!
//! This layer is pure (no I/O). A protocol turns the bytes a transport received into hub
//! messages and writes outgoing messages into bytes. Arguments stay undecoded ([`RawValue`])
//! until the dispatcher knows the parameter types.

#![warn(missing_docs)]

pub mod handshake;
#[cfg(feature = "json")]
pub mod json;
#[cfg(feature = "msgpack")]
pub mod msgpack;
pub mod types;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[cfg(feature = "json")]
pub use json::JsonProtocol;
#[cfg(feature = "msgpack")]
pub use msgpack::MessagePackProtocol;

/// The protocols a server speaks unless told otherwise: JSON and MessagePack, as the
/// `json` and `msgpack` features are on.
///
/// One push per feature: `vec![]` cannot leave out an element by feature.
#[allow(unused_mut, clippy::vec_init_then_push)]
pub fn default_protocols() -> Vec<std::sync::Arc<dyn HubProtocol>> {
    let mut protocols: Vec<std::sync::Arc<dyn HubProtocol>> = Vec::new();
    #[cfg(feature = "json")]
    protocols.push(std::sync::Arc::new(JsonProtocol));
    #[cfg(feature = "msgpack")]
    protocols.push(std::sync::Arc::new(MessagePackProtocol));
    protocols
}

/// How a protocol's bytes travel: as text or as binary frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferFormat {
    /// UTF-8 text (the JSON protocol).
    Text,
    /// Arbitrary bytes (the MessagePack protocol).
    Binary,
}

impl TransferFormat {
    /// The name negotiate uses for this format (`Text` or `Binary`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferFormat::Text => "Text",
            TransferFormat::Binary => "Binary",
        }
    }
}

/// Message headers (types 1–5 may carry them). Unknown headers are kept and ignored.
pub type Headers = BTreeMap<String, String>;

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

/// An Invocation (type 1) or StreamInvocation (type 4) as received.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Invocation {
    /// `None` for a non-blocking invocation (no reply expected).
    pub invocation_id: Option<String>,
    /// The method name.
    pub target: String,
    /// Positional arguments, undecoded.
    pub arguments: Vec<RawValue>,
    /// Ids of client-to-server streams bound to stream parameters.
    pub stream_ids: Vec<String>,
    /// Message headers.
    pub headers: Headers,
}

/// What a Completion carries.
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionResult {
    /// The method returned nothing.
    Void,
    /// The method returned a value (possibly `null`).
    Value(RawValue),
    /// The method failed with this text.
    Error(String),
}

/// A hub message as received and decoded by a [`HubProtocol`].
#[derive(Debug, Clone, PartialEq)]
pub enum HubMessage {
    /// Type 1.
    Invocation(Invocation),
    /// Type 2.
    StreamItem {
        /// The invocation (or client stream) this item belongs to.
        invocation_id: String,
        /// The item.
        item: RawValue,
        /// Message headers.
        headers: Headers,
    },
    /// Type 3.
    Completion {
        /// The invocation this completes.
        invocation_id: String,
        /// Result, error or nothing.
        result: CompletionResult,
        /// Message headers.
        headers: Headers,
    },
    /// Type 4 (its `invocation_id` is always set).
    StreamInvocation(Invocation),
    /// Type 5.
    CancelInvocation {
        /// The stream invocation to cancel.
        invocation_id: String,
        /// Message headers.
        headers: Headers,
    },
    /// Type 6.
    Ping,
    /// Type 7.
    Close {
        /// Why the peer closes, if it was an error.
        error: Option<String>,
        /// Whether a client may reconnect.
        allow_reconnect: bool,
    },
    /// Type 8.
    Ack {
        /// Highest sequence id processed.
        sequence_id: u64,
    },
    /// Type 9.
    Sequence {
        /// Sequence id of the next message.
        sequence_id: u64,
    },
}

/// A value to encode: anything serializable, behind a trait object so protocols stay object-safe.
pub type Payload<'a> = &'a (dyn erased_serde::Serialize + Sync + 'a);

/// What an outgoing Completion carries.
#[derive(Clone, Copy)]
pub enum OutResult<'a> {
    /// No result (a method returning nothing).
    Void,
    /// A value.
    Value(Payload<'a>),
    /// An error text.
    Error(&'a str),
}

/// A hub message to encode. Values are borrowed, so a message is built without copying.
#[derive(Clone, Copy)]
pub enum OutMessage<'a> {
    /// Type 1; `arguments` must serialize as a sequence.
    Invocation {
        /// `None` for a non-blocking invocation.
        invocation_id: Option<&'a str>,
        /// The method name.
        target: &'a str,
        /// The arguments, serialized as one sequence (a tuple, a slice, [`NoArgs`]).
        arguments: Payload<'a>,
        /// Stream ids, written only when non-empty.
        stream_ids: &'a [String],
    },
    /// Type 2.
    StreamItem {
        /// The stream's invocation id.
        invocation_id: &'a str,
        /// The item.
        item: Payload<'a>,
    },
    /// Type 3.
    Completion {
        /// The invocation this completes.
        invocation_id: &'a str,
        /// Result, error or nothing.
        result: OutResult<'a>,
    },
    /// Type 4; `arguments` must serialize as a sequence.
    StreamInvocation {
        /// The invocation id.
        invocation_id: &'a str,
        /// The method name.
        target: &'a str,
        /// The arguments.
        arguments: Payload<'a>,
        /// Stream ids, written only when non-empty.
        stream_ids: &'a [String],
    },
    /// Type 5.
    CancelInvocation {
        /// The invocation to cancel.
        invocation_id: &'a str,
    },
    /// Type 6.
    Ping,
    /// Type 7.
    Close {
        /// The error, if any.
        error: Option<&'a str>,
        /// Whether the client may reconnect.
        allow_reconnect: bool,
    },
    /// Type 8.
    Ack {
        /// Highest sequence id processed.
        sequence_id: u64,
    },
    /// Type 9.
    Sequence {
        /// The next sequence id.
        sequence_id: u64,
    },
}

/// An empty argument list (serializes as an empty sequence, unlike `()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoArgs;

impl Serialize for NoArgs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        serializer.serialize_seq(Some(0))?.end()
    }
}

/// The bytes could not be read as hub messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The input is malformed; the text says how.
    InvalidData(String),
    /// One message is larger than the configured maximum.
    MessageTooLarge {
        /// The configured maximum, in bytes.
        limit: usize,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::InvalidData(text) => f.write_str(text),
            ProtocolError::MessageTooLarge { limit } => write!(
                f,
                "The maximum message size of {limit}B was exceeded. The message size can be configured in AddHubOptions."
            ),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// A message could not be encoded (a value's `Serialize` failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError(pub String);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EncodeError {}

/// A hub protocol: framing plus message encoding.
///
/// Implementations are stateless; per-connection buffering of partial input is done by
/// [`MessageReader`].
pub trait HubProtocol: Send + Sync + 'static {
    /// The name clients ask for in the handshake (`json`, `messagepack`).
    fn name(&self) -> &'static str;
    /// The newest version of the protocol this implementation speaks.
    fn version(&self) -> u32;
    /// The transfer format the protocol needs.
    fn transfer_format(&self) -> TransferFormat;
    /// Splits `input` into complete framed messages: returns how many bytes form whole
    /// messages (the rest is a partial message to keep for later), checking each message
    /// against `max_message_size`.
    fn complete_prefix(&self, input: &[u8], max_message_size: usize) -> Result<usize, ProtocolError>;
    /// Parses complete framed messages (as delimited by [`HubProtocol::complete_prefix`]).
    /// Messages of unknown type are skipped (and logged).
    fn parse_into(&self, input: &[u8], out: &mut Vec<HubMessage>) -> Result<(), ProtocolError>;
    /// Appends one framed message to `out`.
    fn write(&self, message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// How many bytes of `input` (complete framed messages, as delimited by
    /// [`HubProtocol::complete_prefix`]) the first message takes, its framing included, so
    /// [`MessageReader`] parses one message at a time. The default takes all of `input`: its
    /// messages are then parsed together.
    fn first_message_len(&self, input: &[u8]) -> usize {
        input.len()
    }

    /// Parses complete framed messages into a new vector.
    fn parse(&self, input: &[u8]) -> Result<Vec<HubMessage>, ProtocolError> {
        let mut out = Vec::new();
        self.parse_into(input, &mut out)?;
        Ok(out)
    }

    /// Encodes one framed message into new bytes.
    fn encode(&self, message: &OutMessage<'_>) -> Result<bytes::Bytes, EncodeError> {
        // Room for the common small messages (a completion with a short result) without growing.
        let mut out = Vec::with_capacity(128);
        self.write(message, &mut out)?;
        Ok(out.into())
    }
}

/// Reassembles messages that arrive split over several frames or requests, enforces the
/// maximum size of one message, and parses the messages of a frame one at a time, as they are
/// asked for ([`MessageReader::push`], then [`MessageReader::next`]): a frame of many small
/// messages costs its own bytes and one parsed message at a time, not all of them parsed.
#[derive(Debug, Default)]
pub struct MessageReader {
    /// The start of a message whose end has not arrived yet.
    partial: Vec<u8>,
    /// Complete messages received and not parsed yet.
    whole: bytes::Bytes,
    /// Messages parsed and not handed out yet, last first (only a protocol that does not
    /// split its input with [`HubProtocol::first_message_len`] leaves more than one).
    parsed: Vec<HubMessage>,
}

impl MessageReader {
    /// Feeds received bytes; complete messages are parsed into `out`.
    pub fn feed(
        &mut self,
        protocol: &dyn HubProtocol,
        data: &[u8],
        max_message_size: usize,
        out: &mut Vec<HubMessage>,
    ) -> Result<(), ProtocolError> {
        self.push(protocol, bytes::Bytes::copy_from_slice(data), max_message_size)?;
        while let Some(message) = self.next(protocol)? {
            out.push(message);
        }
        Ok(())
    }

    /// Takes received bytes: checks the size of every message they complete and keeps them,
    /// unparsed, for [`MessageReader::next`]; the start of a message whose end is still to
    /// come waits for the next bytes.
    pub fn push(
        &mut self,
        protocol: &dyn HubProtocol,
        data: bytes::Bytes,
        max_message_size: usize,
    ) -> Result<(), ProtocolError> {
        let data = if self.partial.is_empty() {
            data
        } else {
            let mut joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(&data);
            bytes::Bytes::from(joined)
        };
        let whole = protocol.complete_prefix(&data, max_message_size)?;
        self.keep(&data[whole..], max_message_size)?;
        // Most frames are whole messages: kept as they are.
        let complete = if whole == data.len() { data } else { data.slice(..whole) };
        if self.whole.is_empty() {
            self.whole = complete;
        } else {
            // Bytes pushed before the last ones were read: rare, so simply joined.
            let mut joined = Vec::with_capacity(self.whole.len() + complete.len());
            joined.extend_from_slice(&self.whole);
            joined.extend_from_slice(&complete);
            self.whole = joined.into();
        }
        Ok(())
    }

    /// Parses the next message; `None` once every complete message pushed was read.
    #[allow(clippy::should_implement_trait)] // fallible, and needs the protocol
    pub fn next(&mut self, protocol: &dyn HubProtocol) -> Result<Option<HubMessage>, ProtocolError> {
        loop {
            if let Some(message) = self.parsed.pop() {
                return Ok(Some(message));
            }
            if self.whole.is_empty() {
                // Let go of the frame (an empty slice of it still holds it).
                self.whole = bytes::Bytes::new();
                if self.parsed.capacity() > 1 {
                    self.parsed = Vec::new();
                }
                return Ok(None);
            }
            let length = protocol.first_message_len(&self.whole).clamp(1, self.whole.len());
            let message = if length == self.whole.len() {
                // The last (most often, the only) message: the frame is let go once it is read.
                std::mem::take(&mut self.whole)
            } else {
                self.whole.split_to(length)
            };
            if self.parsed.capacity() == 0 {
                // One message at a time: room for one is all a reader keeps.
                self.parsed.reserve_exact(1);
            }
            if let Err(error) = protocol.parse_into(&message, &mut self.parsed) {
                self.whole = bytes::Bytes::new();
                self.parsed.clear();
                return Err(error);
            }
            self.parsed.reverse();
        }
    }

    /// Whether complete messages wait to be read.
    pub fn has_buffered(&self) -> bool {
        !self.whole.is_empty() || !self.parsed.is_empty()
    }

    /// Lets go of the room kept for parsed messages (for a connection that went quiet).
    pub fn shrink(&mut self) {
        if self.parsed.is_empty() {
            self.parsed = Vec::new();
        }
    }

    fn keep(&mut self, rest: &[u8], max_message_size: usize) -> Result<(), ProtocolError> {
        if rest.len() > max_message_size {
            return Err(ProtocolError::MessageTooLarge {
                limit: max_message_size,
            });
        }
        self.partial.clear();
        self.partial.extend_from_slice(rest);
        if self.partial.is_empty() {
            self.partial.shrink_to_fit();
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "json", feature = "msgpack"))]
mod reader_tests {
    use super::*;

    fn invocation(i: usize) -> String {
        format!("{{\"type\":1,\"target\":\"T\",\"arguments\":[{i}]}}\u{1e}")
    }

    fn target_argument(message: &HubMessage) -> usize {
        let HubMessage::Invocation(inv) = message else {
            panic!("not an invocation: {message:?}")
        };
        inv.arguments[0].decode().unwrap()
    }

    #[test]
    fn a_frame_is_parsed_one_message_at_a_time() {
        for protocol in [&JsonProtocol as &dyn HubProtocol, &MessagePackProtocol] {
            let mut frame = Vec::new();
            for i in 0..100 {
                let message = OutMessage::Invocation {
                    invocation_id: None,
                    target: "T",
                    arguments: &(i,),
                    stream_ids: &[],
                };
                protocol.write(&message, &mut frame).unwrap();
            }
            let mut reader = MessageReader::default();
            reader.push(protocol, frame.into(), 1 << 20).unwrap();
            for i in 0..100 {
                assert!(reader.has_buffered());
                let message = reader.next(protocol).unwrap().expect("a message");
                assert_eq!(target_argument(&message), i);
                assert!(reader.parsed.len() <= 1, "{}", protocol.name());
            }
            assert!(reader.next(protocol).unwrap().is_none());
            assert!(!reader.has_buffered());
        }
    }

    #[test]
    fn messages_split_over_frames_are_joined() {
        let text = format!("{}{}", invocation(1), invocation(2));
        let (a, b) = text.as_bytes().split_at(10);
        let mut reader = MessageReader::default();
        reader
            .push(&JsonProtocol, bytes::Bytes::copy_from_slice(a), 1 << 20)
            .unwrap();
        assert!(reader.next(&JsonProtocol).unwrap().is_none());
        reader
            .push(&JsonProtocol, bytes::Bytes::copy_from_slice(b), 1 << 20)
            .unwrap();
        assert_eq!(target_argument(&reader.next(&JsonProtocol).unwrap().unwrap()), 1);
        assert_eq!(target_argument(&reader.next(&JsonProtocol).unwrap().unwrap()), 2);
        assert!(reader.next(&JsonProtocol).unwrap().is_none());
    }

    #[test]
    fn a_bad_message_is_an_error_once_its_turn_comes() {
        let text = format!("{}not json\u{1e}{}", invocation(1), invocation(2));
        let mut reader = MessageReader::default();
        reader.push(&JsonProtocol, text.into(), 1 << 20).unwrap();
        assert_eq!(target_argument(&reader.next(&JsonProtocol).unwrap().unwrap()), 1);
        assert!(reader.next(&JsonProtocol).is_err());
        assert!(!reader.has_buffered());
    }

    #[test]
    fn an_oversized_message_is_refused_when_pushed() {
        let text = format!("{}{}", invocation(1), "x".repeat(100));
        let mut reader = MessageReader::default();
        assert!(matches!(
            reader.push(&JsonProtocol, text.into(), 50),
            Err(ProtocolError::MessageTooLarge { limit: 50 })
        ));
    }
}
