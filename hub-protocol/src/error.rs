//! What goes wrong reading or writing messages.

use std::fmt;

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
            ProtocolError::MessageTooLarge { limit } => f.write_str(&crate::error_texts::message_too_large(*limit)),
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
