//! [`MessageReader`]: one connection's incoming bytes, turned into messages one at a time.

use crate::{HubMessage, HubProtocol, ProtocolError};

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
                // The last (most often, the only) message: the reader lets go of the frame once it
                // is read (values read from it may still hold it: `RawValue::detach`).
                std::mem::take(&mut self.whole)
            } else {
                self.whole.split_to(length)
            };
            if self.parsed.capacity() == 0 {
                // One message at a time: room for one is all a reader keeps.
                self.parsed.reserve_exact(1);
            }
            if let Err(error) = protocol.parse_bytes_into(&message, &mut self.parsed) {
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
mod tests {
    use super::*;
    use crate::{JsonProtocol, MessagePackProtocol, OutMessage};

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
