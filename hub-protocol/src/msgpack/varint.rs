//! The VarInt length prefix that frames every MessagePack message.

use super::read::invalid;
use crate::error_texts::MESSAGES_OVER_2GB;
use crate::ProtocolError;

/// Reads a VarInt length prefix: `Ok(None)` when more bytes are needed, else the length and
/// how many bytes the prefix took.
pub(super) fn read_varint(input: &[u8]) -> Result<Option<(u64, usize)>, ProtocolError> {
    let mut length: u64 = 0;
    for i in 0..5 {
        let Some(&byte) = input.get(i) else {
            return Ok(None);
        };
        if i == 4 && byte > 0x07 {
            return Err(invalid(MESSAGES_OVER_2GB));
        }
        length |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((length, i + 1)));
        }
    }
    Err(invalid(MESSAGES_OVER_2GB))
}

/// Writes a VarInt length prefix.
pub(super) fn write_varint(mut length: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (length & 0x7f) as u8;
        length >>= 7;
        if length > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if length == 0 {
            break;
        }
    }
}
