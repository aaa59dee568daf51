//! The JSON hub protocol: one JSON object per message, each followed by the record separator
//! `0x1E`.

mod read;
mod scan;
#[cfg(test)]
mod tests;
mod write;

use bytestring::ByteString;

use crate::raw::SharedText;
use crate::{EncodeError, HubMessage, HubProtocol, OutMessage, ProtocolError, TransferFormat};

/// The record separator that ends every JSON message.
pub use crate::handshake::RECORD_SEPARATOR;

/// The JSON hub protocol (`json`, versions 1 and 2).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonProtocol;

impl HubProtocol for JsonProtocol {
    fn name(&self) -> &'static str {
        "json"
    }

    fn version(&self) -> u32 {
        2
    }

    fn transfer_format(&self) -> TransferFormat {
        TransferFormat::Text
    }

    fn complete_prefix(&self, input: &[u8], max_message_size: usize) -> Result<usize, ProtocolError> {
        let too_large = || ProtocolError::MessageTooLarge {
            limit: max_message_size,
        };
        let mut whole = 0;
        for end in memchr::memchr_iter(RECORD_SEPARATOR, input) {
            if end - whole > max_message_size {
                return Err(too_large());
            }
            whole = end + 1;
        }
        if input.len() - whole > max_message_size {
            return Err(too_large());
        }
        Ok(whole)
    }

    fn parse_into(&self, input: &[u8], out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        parse_records(input, SharedText(None), out)
    }

    fn parse_bytes_into(&self, input: &bytes::Bytes, out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
        // Checked as UTF-8 once, here; every record and value is then a slice of this text.
        match ByteString::try_from(input.clone()) {
            Ok(text) => parse_records(text.as_bytes(), SharedText(Some(&text)), out),
            // Not UTF-8: read as plain bytes, for the error the serde path gives.
            Err(_) => parse_records(input, SharedText(None), out),
        }
    }

    fn first_message_len(&self, input: &[u8]) -> usize {
        memchr::memchr(RECORD_SEPARATOR, input).map_or(input.len(), |end| end + 1)
    }

    fn write(&self, message: &OutMessage<'_>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = write::write_json(message, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

/// Parses every record of `input` (values shared with `shared` when they are).
fn parse_records(input: &[u8], shared: SharedText<'_>, out: &mut Vec<HubMessage>) -> Result<(), ProtocolError> {
    let mut start = 0;
    for end in memchr::memchr_iter(RECORD_SEPARATOR, input) {
        if let Some(message) = read::parse_one(&input[start..end], shared)? {
            out.push(message);
        }
        start = end + 1;
    }
    // What follows the last separator is a message too (the reader hands over only
    // whole ones; a caller with a record that lacks its separator still gets it read).
    if start < input.len() {
        if let Some(message) = read::parse_one(&input[start..], shared)? {
            out.push(message);
        }
    }
    Ok(())
}
