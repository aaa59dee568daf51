//! The [`HubProtocol`] trait and the [`TransferFormat`] a protocol needs.

#[cfg(doc)]
use crate::MessageReader;
use crate::{EncodeError, HubMessage, OutMessage, ProtocolError};

/// How a protocol's bytes travel: as text or as binary frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferFormat {
    /// UTF-8 text (the JSON protocol).
    Text,
    /// Arbitrary bytes (the MessagePack protocol).
    Binary,
}

impl TransferFormat {
    /// Both formats: what a transport that carries binary frames (WebSockets, long polling)
    /// can take.
    pub const ALL: &'static [TransferFormat] = &[TransferFormat::Text, TransferFormat::Binary];

    /// The name negotiate uses for this format (`Text` or `Binary`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransferFormat::Text => "Text",
            TransferFormat::Binary => "Binary",
        }
    }
}

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
    /// Parses like [`HubProtocol::parse_into`] from shared bytes: a protocol may then keep
    /// the values it reads ([`RawValue`](crate::RawValue)) as slices of `input` instead of
    /// copies. The default calls `parse_into`.
    fn parse_bytes_into(&self, input: &bytes::Bytes, out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        self.parse_into(input, out)
    }
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
        crate::scratch::encode_with(|out| self.write(message, out))
    }
}
