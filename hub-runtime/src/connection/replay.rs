//! Stateful reconnect's replay buffer: numbered hub messages kept until the client
//! acknowledges them, and resent in order to a socket that re-attaches.

use std::collections::VecDeque;
use std::sync::Arc;

use super::frame::Frame;

/// Encodes a Sequence message (the id of the first message that follows) in the connection's
/// hub protocol.
pub(crate) type SequenceEncoder = Arc<dyn Fn(u64) -> Option<Frame> + Send + Sync>;

/// Whether the replay buffer is still within its limit after keeping a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Kept {
    /// Within the limit (or replay is off).
    Fits,
    /// Over the limit: the client does not acknowledge what it gets (a slow consumer).
    OverLimit,
}

/// Stateful reconnect: numbered hub messages kept until the client acknowledges them.
#[derive(Default)]
pub(crate) struct Replay {
    pub(crate) enabled: bool,
    /// Sequence id of the next tracked message sent.
    pub(crate) next_id: u64,
    pub(crate) buffer: VecDeque<(u64, Frame)>,
    pub(crate) bytes: usize,
    pub(crate) limit: usize,
    /// Encodes a Sequence message in the connection's hub protocol.
    pub(crate) sequence: Option<SequenceEncoder>,
}

impl Replay {
    /// A buffer that is off until [`Replay::enable`]; the first message is number 1.
    pub(crate) fn new() -> Self {
        Replay {
            next_id: 1,
            ..Replay::default()
        }
    }

    /// Turns replay on: tracked messages are kept until acknowledged, up to `limit` bytes.
    pub(crate) fn enable(&mut self, limit: usize, sequence: SequenceEncoder) {
        self.enabled = true;
        self.limit = limit;
        self.sequence = Some(sequence);
    }

    /// Keeps a tracked frame; [`Kept::OverLimit`] when the buffer is over its limit (a slow
    /// consumer). The frame is kept either way.
    pub(crate) fn keep(&mut self, frame: &Frame) -> Kept {
        if !self.enabled {
            return Kept::Fits;
        }
        let id = self.next_id;
        // 2^64 messages are never sent; saturating keeps even that from panicking.
        self.next_id = id.saturating_add(1);
        self.bytes += frame.data().len();
        self.buffer.push_back((id, frame.clone()));
        if self.bytes <= self.limit {
            Kept::Fits
        } else {
            Kept::OverLimit
        }
    }

    /// The client has every message up to `sequence_id`: they are let go. An id beyond what
    /// was sent lets go of everything.
    pub(crate) fn ack(&mut self, sequence_id: u64) {
        while let Some((id, frame)) = self.buffer.front() {
            if *id > sequence_id {
                break;
            }
            self.bytes -= frame.data().len();
            self.buffer.pop_front();
        }
    }

    /// What a re-attached transport sends first: the Sequence message, then every
    /// unacknowledged message in order. They stay kept until acknowledged.
    pub(crate) fn resend(&self) -> Vec<Frame> {
        let first = self.buffer.front().map(|(id, _)| *id).unwrap_or(self.next_id);
        let mut frames: Vec<Frame> = self
            .sequence
            .as_ref()
            .and_then(|encode| encode(first))
            .into_iter()
            .collect();
        frames.extend(self.buffer.iter().map(|(_, frame)| frame.clone()));
        frames
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn text(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    /// A Sequence message as a text frame naming the id, for checking what `resend` puts first.
    fn sequence_text(id: u64) -> Option<Frame> {
        Some(Frame::Text(Bytes::from(format!("seq {id}"))))
    }

    fn enabled(limit: usize) -> Replay {
        let mut replay = Replay::new();
        replay.enable(limit, Arc::new(sequence_text));
        replay
    }

    fn ids(replay: &Replay) -> Vec<u64> {
        replay.buffer.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn off_keeps_nothing_and_numbers_nothing() {
        let mut replay = Replay::new();
        assert_eq!(replay.keep(&text("a")), Kept::Fits);
        assert!(replay.buffer.is_empty());
        assert_eq!((replay.next_id, replay.bytes), (1, 0));
        assert!(replay.resend().is_empty(), "no encoder, nothing kept");
    }

    #[test]
    fn keeps_messages_numbered_from_one_until_acked() {
        let mut replay = enabled(1024);
        for frame in ["a", "bb", "ccc"] {
            assert_eq!(replay.keep(&text(frame)), Kept::Fits);
        }
        assert_eq!(ids(&replay), [1, 2, 3]);
        assert_eq!((replay.next_id, replay.bytes), (4, 6));
    }

    #[test]
    fn over_the_limit_is_reported_and_still_kept() {
        let mut replay = enabled(4);
        assert_eq!(replay.keep(&text("ab")), Kept::Fits);
        assert_eq!(replay.keep(&text("cd")), Kept::Fits, "exactly at the limit fits");
        assert_eq!(replay.keep(&text("e")), Kept::OverLimit);
        assert_eq!(ids(&replay), [1, 2, 3]);
        assert_eq!(replay.bytes, 5);
        // An ack brings it back under.
        replay.ack(1);
        assert_eq!(replay.bytes, 3);
        assert_eq!(replay.keep(&text("f")), Kept::Fits);
    }

    #[test]
    fn an_ack_releases_exactly_what_it_covers() {
        let mut replay = enabled(1024);
        for frame in ["a", "bb", "ccc", "dddd"] {
            let _ = replay.keep(&text(frame));
        }
        replay.ack(0);
        assert_eq!(ids(&replay), [1, 2, 3, 4], "an ack of nothing releases nothing");
        replay.ack(2);
        assert_eq!(ids(&replay), [3, 4]);
        assert_eq!(replay.bytes, 7);
        replay.ack(2);
        replay.ack(1);
        assert_eq!(ids(&replay), [3, 4], "an old ack again changes nothing");
        assert_eq!(replay.next_id, 5, "acks do not renumber");
    }

    #[test]
    fn an_ack_beyond_what_was_sent_releases_everything() {
        let mut replay = enabled(1024);
        let _ = replay.keep(&text("a"));
        let _ = replay.keep(&text("b"));
        replay.ack(u64::MAX);
        assert!(replay.buffer.is_empty());
        assert_eq!(replay.bytes, 0);
        assert_eq!(replay.next_id, 3, "numbering goes on where it was");
        let _ = replay.keep(&text("c"));
        assert_eq!(ids(&replay), [3]);
    }

    #[test]
    fn resend_starts_with_the_sequence_message_then_the_unacked_in_order() {
        let mut replay = enabled(1024);
        for frame in ["a", "b", "c"] {
            let _ = replay.keep(&text(frame));
        }
        replay.ack(1);
        assert_eq!(replay.resend(), [text("seq 2"), text("b"), text("c")]);
        assert_eq!(ids(&replay), [2, 3], "resent messages stay kept until acked");
        assert_eq!(
            replay.resend(),
            [text("seq 2"), text("b"), text("c")],
            "and resend again"
        );
    }

    #[test]
    fn resend_with_everything_acked_names_the_next_id() {
        let mut replay = enabled(1024);
        assert_eq!(replay.resend(), [text("seq 1")]);
        let _ = replay.keep(&text("a"));
        replay.ack(1);
        assert_eq!(replay.resend(), [text("seq 2")]);
    }

    #[test]
    fn resend_without_a_sequence_message_sends_the_messages_alone() {
        let mut replay = Replay::new();
        replay.enable(1024, Arc::new(|_| None));
        let _ = replay.keep(&Frame::Binary(Bytes::from_static(b"\x01")));
        assert_eq!(replay.resend(), [Frame::Binary(Bytes::from_static(b"\x01"))]);
    }

    #[test]
    fn numbering_saturates_instead_of_overflowing() {
        let mut replay = enabled(1024);
        replay.next_id = u64::MAX;
        let _ = replay.keep(&text("a"));
        let _ = replay.keep(&text("b"));
        assert_eq!(ids(&replay), [u64::MAX, u64::MAX]);
        replay.ack(u64::MAX);
        assert!(replay.buffer.is_empty());
    }
}
