//! The MessagePack hub protocol: every message is a positional array with an integer type code,
//! framed by a VarInt length prefix (7 bits a byte, least significant group first).

mod read;
#[cfg(test)]
mod tests;
mod varint;
mod write;

use read::{invalid, parse_body};
use varint::{read_varint, write_varint};
use write::write_body;

use crate::raw::SharedBytes;
use crate::{EncodeError, HubMessage, HubProtocol, OutMessage, ProtocolError, TransferFormat};

/// The MessagePack hub protocol (`messagepack`, versions 1 and 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePackProtocol;

/// The largest message the VarInt framing can describe (2 GiB − 1).
const MAX_FRAMED: u64 = (1 << 31) - 1;

impl HubProtocol for MessagePackProtocol {
    fn name(&self) -> &'static str {
        "messagepack"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Binary
    }

    fn complete_prefix(&self, input: &[u8], max_message_size: usize) -> Result<usize, ProtocolError> {
        let mut at = 0;
        while at < input.len() {
            let Some((length, prefix)) = read_varint(&input[at..])? else {
                break;
            };
            if length > MAX_FRAMED {
                return Err(invalid(crate::error_texts::MESSAGES_OVER_2GB));
            }
            if length as usize > max_message_size {
                return Err(ProtocolError::MessageTooLarge {
                    limit: max_message_size,
                });
            }
            let end = at + prefix + length as usize;
            if end > input.len() {
                break;
            }
            at = end;
        }
        Ok(at)
    }

    fn parse_into(&self, input: &[u8], out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        parse_messages(input, SharedBytes(None), out)
    }

    fn parse_bytes_into(&self, input: &bytes::Bytes, out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        parse_messages(input, SharedBytes(Some(input)), out)
    }

    fn first_message_len(&self, input: &[u8]) -> usize {
        match read_varint(input) {
            // Anything else is left to `parse_into`, which says what is wrong.
            Ok(Some((length, prefix))) => usize::try_from(length)
                .ok()
                .and_then(|length| length.checked_add(prefix))
                .map_or(input.len(), |end| end.min(input.len())),
            _ => input.len(),
        }
    }

    fn write(&self, message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // The body is written in place after room for a one-byte prefix (any body under 128
        // bytes), not into a buffer of its own: one allocation and a copy less per message.
        let start = out.len();
        out.push(0);
        if let Err(error) = write_body(message, out) {
            out.truncate(start);
            return Err(error);
        }
        let length = out.len() - start - 1;
        if length < 0x80 {
            out[start] = length as u8;
        } else {
            let mut prefix = Vec::with_capacity(5);
            write_varint(length, &mut prefix);
            out.splice(start..=start, prefix);
        }
        Ok(())
    }
}

/// Parses every length-prefixed message of `input` (values shared with `shared` when they are).
fn parse_messages(input: &[u8], shared: SharedBytes<'_>, out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
    let mut at = 0;
    while at < input.len() {
        let Some((length, prefix)) = read_varint(&input[at..])? else {
            return Err(invalid("Truncated message length prefix."));
        };
        let start = at + prefix;
        let end = start.checked_add(length as usize).filter(|&e| e <= input.len());
        let Some(end) = end else {
            return Err(invalid("Truncated message."));
        };
        if let Some(message) = parse_body(&input[start..end], shared)? {
            out.push(message);
        }
        at = end;
    }
    Ok(())
}
