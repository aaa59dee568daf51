//! Closing a socket: what its close frame says, the refusal of a message too large (after
//! which the handler gets a while to say why), and the linger that lets the client read the
//! close frame.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::SinkExt;
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::WebSocket;

/// How long a client refused for a message too large gets, once told, to stop sending and
/// close its side.
const LINGER: Duration = Duration::from_secs(2);
/// The reason in the close frame (1009) sent after a message too large.
const TOO_LARGE: &str = "message too big";
/// How long a close frame (or a slow consumer's goodbye) is attempted: the socket closes
/// regardless.
pub(super) const BRIEFLY: Duration = Duration::from_millis(500);

/// Why the server closes a socket: its close frame's code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CloseReason {
    /// The connection ended (1000, no reason).
    Normal,
    /// The client sent a message over `max_frame_size` (1009).
    TooLarge,
    /// The client does not read what it is sent (1008).
    OutboxFull,
}

impl CloseReason {
    fn code(self) -> CloseCode {
        match self {
            CloseReason::Normal => CloseCode::Normal,
            CloseReason::TooLarge => CloseCode::Size,
            CloseReason::OutboxFull => CloseCode::Policy,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            CloseReason::Normal => "",
            CloseReason::TooLarge => TOO_LARGE,
            CloseReason::OutboxFull => "outbox full",
        }
    }

    /// The close frame.
    pub(super) fn message(self) -> Message {
        Message::Close(Some(CloseFrame {
            code: self.code(),
            reason: Utf8Bytes::from_static(self.reason()),
        }))
    }
}

/// Set when the client sent a message too large: its input is refused, the socket is no
/// longer read, and the handler gets a deadline to say why (then the close frame is 1009,
/// and the socket lingers before it closes).
#[derive(Default)]
pub(super) struct Refusal {
    // Boxed: the timer would make every connection's task larger.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl Refusal {
    /// Refuses the client's input; the handler has `grace` to close the connection.
    pub(super) fn start(&mut self, grace: Duration) {
        self.deadline = Some(Box::pin(tokio::time::sleep(grace)));
    }

    /// Whether the client's input was refused.
    #[inline]
    pub(super) fn is_refused(&self) -> bool {
        self.deadline.is_some()
    }

    /// How the socket's close frame reads when the connection ends.
    #[inline]
    pub(super) fn close_reason(&self) -> CloseReason {
        if self.is_refused() {
            CloseReason::TooLarge
        } else {
            CloseReason::Normal
        }
    }

    /// `None` while the input is not refused; otherwise whether the handler's time is up.
    #[inline]
    pub(super) fn poll_gave_up(&mut self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        self.deadline.as_mut().map(|deadline| deadline.as_mut().poll(cx))
    }
}

/// Attempts a close frame, briefly: the socket closes regardless.
pub(super) async fn close_briefly(socket: &mut WebSocket, reason: CloseReason) {
    let _ = tokio::time::timeout(BRIEFLY, socket.send(reason.message())).await;
}

/// Closes a socket whose client may still be sending (the rest of a message too large): the
/// write side is shut, so the client sees the end of the stream after the close frame, and
/// what still comes is read and dropped until the client closes its side or [`LINGER`]
/// passes. Closed with unread input, the socket would be reset, and the client could lose
/// the close frame.
pub(super) async fn linger(mut socket: WebSocket) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = socket.get_mut();
    let drain = async {
        let _ = io.shutdown().await;
        let mut buffer = vec![0u8; 8 * 1024];
        while matches!(io.read(&mut buffer).await, Ok(read) if read > 0) {}
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Whether a read error only says that the client went without the closing handshake.
pub(super) fn closed_prematurely(error: &WsError) -> bool {
    use std::io::ErrorKind;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match error {
        WsError::ConnectionClosed | WsError::AlreadyClosed => true,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => true,
        WsError::Io(e) => matches!(
            e.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe
                | ErrorKind::UnexpectedEof
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};

    use super::*;

    fn close_frame(reason: CloseReason) -> (u16, String) {
        match reason.message() {
            Message::Close(Some(frame)) => (frame.code.into(), frame.reason.as_str().to_owned()),
            other => panic!("not a close frame: {other:?}"),
        }
    }

    #[test]
    fn close_frames_name_their_reason() {
        assert_eq!(close_frame(CloseReason::Normal), (1000, String::new()));
        assert_eq!(close_frame(CloseReason::TooLarge), (1009, "message too big".to_owned()));
        assert_eq!(close_frame(CloseReason::OutboxFull), (1008, "outbox full".to_owned()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_changes_the_close_and_gives_the_handler_until_its_deadline() {
        let mut refusal = Refusal::default();
        assert!(!refusal.is_refused());
        assert_eq!(refusal.close_reason(), CloseReason::Normal);
        assert!(poll_fn(|cx| Poll::Ready(refusal.poll_gave_up(cx))).await.is_none());

        refusal.start(Duration::from_secs(5));
        assert!(refusal.is_refused());
        assert_eq!(refusal.close_reason(), CloseReason::TooLarge);
        let pending = poll_fn(|cx| Poll::Ready(refusal.poll_gave_up(cx))).await;
        assert_eq!(pending, Some(Poll::Pending), "the handler still has time");

        tokio::time::advance(Duration::from_secs(5)).await;
        let up = poll_fn(|cx| Poll::Ready(refusal.poll_gave_up(cx))).await;
        assert_eq!(up, Some(Poll::Ready(())));
    }

    #[test]
    fn going_without_the_closing_handshake_is_a_normal_end() {
        use std::io::{Error, ErrorKind};
        assert!(closed_prematurely(&WsError::ConnectionClosed));
        assert!(closed_prematurely(&WsError::AlreadyClosed));
        assert!(closed_prematurely(&WsError::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
        )));
        for kind in [
            ErrorKind::ConnectionReset,
            ErrorKind::BrokenPipe,
            ErrorKind::UnexpectedEof,
        ] {
            assert!(closed_prematurely(&WsError::Io(Error::from(kind))), "{kind:?}");
        }
        assert!(!closed_prematurely(&WsError::Io(Error::from(ErrorKind::InvalidData))));
        assert!(!closed_prematurely(&WsError::Protocol(
            ProtocolError::NonZeroReservedBits
        )));
        assert!(!closed_prematurely(&WsError::Capacity(CapacityError::MessageTooLong {
            size: 2,
            max_size: 1
        })));
    }
}
