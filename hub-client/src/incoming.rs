//! [`Incoming`]: what a transport hands the connection.

use bytes::Bytes;

use crate::error::CloseReason;

/// What the transport received.
pub(crate) enum Incoming {
    /// Bytes of hub messages (empty for a WebSocket ping or pong: activity, no message).
    Data(Bytes),
    /// The transport ended.
    Closed(CloseReason),
}
