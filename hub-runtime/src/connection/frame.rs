//! What flows through a connection: frames, the outbox's items, and why a frame or the
//! client's input was refused.

use bytes::Bytes;

/// One unit of data on a connection, as text or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// UTF-8 text (a text WebSocket frame).
    Text(Bytes),
    /// Bytes (a binary WebSocket frame).
    Binary(Bytes),
}

impl Frame {
    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &Bytes {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b,
        }
    }

    /// Whether this is a binary frame.
    #[inline]
    pub fn is_binary(&self) -> bool {
        matches!(self, Frame::Binary(_))
    }
}

/// Whether a queued frame counts for stateful reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tracking {
    /// A hub message: numbered and kept for replay when stateful reconnect is on.
    Tracked,
    /// Anything else (a raw frame, a ping): written once, never replayed.
    Untracked,
}

/// What the outbox carries to the transport.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A frame, and whether it is kept for replay.
    Frame(Frame, Tracking),
    /// Send what is queued, then end the transport cleanly.
    Close,
}

/// What an outbox counts for a frame besides its bytes: the item itself and its slot.
const FRAME_OVERHEAD: usize = 64;

impl Outgoing {
    /// The item's weight against `HubOptions::outbox_max_bytes`: a frame's bytes and
    /// [`FRAME_OVERHEAD`], so that many tiny frames are bounded too.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Outgoing::Frame(frame, _) => frame.data().len() + FRAME_OVERHEAD,
            Outgoing::Close => FRAME_OVERHEAD,
        }
    }
}

/// A connection could not take a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxError {
    /// The connection is gone.
    Closed,
    /// The connection's outbox is full: the client is not reading fast enough.
    Full,
}

impl std::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutboxError::Closed => "the connection is closed",
            OutboxError::Full => "the connection's outbox is full",
        })
    }
}

impl std::error::Error for OutboxError {}

/// Why a transport stopped reading what the client sends before the client was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum InputError {
    /// The client sent a message larger than the transport takes (`max_frame_size`).
    TooLarge = 1,
}
