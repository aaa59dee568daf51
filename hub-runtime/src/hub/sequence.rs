//! Stateful reconnect, the client's side of the numbering: the client's tracked messages
//! (types 1–5) are numbered from 1, a Sequence message says which number its next one has
//! (after a reconnect it replays what the server may have missed), and the messages already
//! handled are recognized and skipped.
//!
//! As the reference server, a Sequence may only go back, never ahead of what was received: a
//! client cannot skip numbers, and so no counter can reach `u64::MAX` (it would take that many
//! messages; the count is checked anyway, an overflow is the same error).

use crate::protocol::HubMessage;

/// Why the client's numbering cannot be followed: the connection ends with this error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SequenceError;

impl SequenceError {
    /// The text the reference server gives.
    pub(crate) const TEXT: &'static str = crate::protocol::error_texts::SEQUENCE_ID_TOO_LARGE;
}

/// The numbers of the client's tracked messages.
#[derive(Debug)]
pub(crate) struct IncomingSequence {
    /// The number of the next tracked message.
    next: u64,
    /// The highest number handled.
    processed: u64,
}

impl Default for IncomingSequence {
    fn default() -> Self {
        IncomingSequence { next: 1, processed: 0 }
    }
}

/// What a received message is to the numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbered {
    /// Not a tracked message (a Ping, an Ack, a Sequence…).
    Untracked,
    /// A tracked message not seen before: to be handled (and acknowledged).
    New,
    /// A tracked message handled before (replayed after a reconnect): to be skipped.
    Replayed,
}

impl IncomingSequence {
    /// Numbers a received message (a Sequence message resets the numbering).
    pub(crate) fn number(&mut self, message: &HubMessage) -> Result<Numbered, SequenceError> {
        match message {
            HubMessage::Sequence { sequence_id } => self.reset(*sequence_id).map(|()| Numbered::Untracked),
            m if is_tracked(m) => Ok(if self.track()? {
                Numbered::New
            } else {
                Numbered::Replayed
            }),
            _ => Ok(Numbered::Untracked),
        }
    }

    /// A Sequence message: the client's next tracked message is number `sequence_id`.
    pub(crate) fn reset(&mut self, sequence_id: u64) -> Result<(), SequenceError> {
        if sequence_id > self.next {
            return Err(SequenceError);
        }
        self.next = sequence_id;
        Ok(())
    }

    /// A tracked message arrived: `true` to handle it, `false` for one handled before (replayed
    /// after a reconnect).
    pub(crate) fn track(&mut self) -> Result<bool, SequenceError> {
        let id = self.next;
        self.next = id.checked_add(1).ok_or(SequenceError)?;
        if id <= self.processed {
            return Ok(false);
        }
        self.processed = id;
        Ok(true)
    }

    /// The highest number handled (what the server acknowledges).
    pub(crate) fn processed(&self) -> u64 {
        self.processed
    }
}

/// Messages numbered by stateful reconnect (types 1–5).
fn is_tracked(message: &HubMessage) -> bool {
    matches!(
        message,
        HubMessage::Invocation(_)
            | HubMessage::StreamItem { .. }
            | HubMessage::Completion { .. }
            | HubMessage::StreamInvocation(_)
            | HubMessage::CancelInvocation { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_numbered_from_one_and_replays_are_skipped() {
        let mut sequence = IncomingSequence::default();
        assert_eq!(sequence.track(), Ok(true));
        assert_eq!(sequence.track(), Ok(true));
        assert_eq!(sequence.processed(), 2);
        // A reconnect replays from 2: the replayed message is skipped, the next one is new.
        assert_eq!(sequence.reset(2), Ok(()));
        assert_eq!(sequence.track(), Ok(false));
        assert_eq!(sequence.track(), Ok(true));
        assert_eq!(sequence.processed(), 3);
        // The number the next message has anyway is accepted.
        assert_eq!(sequence.reset(4), Ok(()));
    }

    #[test]
    fn a_sequence_ahead_of_what_was_received_is_refused() {
        let mut sequence = IncomingSequence::default();
        assert_eq!(sequence.reset(2), Err(SequenceError));
        assert_eq!(sequence.reset(u64::MAX), Err(SequenceError));
        assert_eq!(sequence.track(), Ok(true));
        assert_eq!(sequence.reset(u64::MAX), Err(SequenceError));
    }

    #[test]
    fn only_types_one_to_five_are_numbered() {
        let mut sequence = IncomingSequence::default();
        assert_eq!(sequence.number(&HubMessage::Ping), Ok(Numbered::Untracked));
        let cancel = HubMessage::CancelInvocation {
            invocation_id: "1".into(),
            headers: Default::default(),
        };
        assert_eq!(sequence.number(&cancel), Ok(Numbered::New));
        assert_eq!(
            sequence.number(&HubMessage::Sequence { sequence_id: 1 }),
            Ok(Numbered::Untracked)
        );
        assert_eq!(sequence.number(&cancel), Ok(Numbered::Replayed));
        assert_eq!(
            sequence.number(&HubMessage::Sequence { sequence_id: u64::MAX }),
            Err(SequenceError)
        );
    }

    #[test]
    fn the_count_cannot_overflow() {
        let mut sequence = IncomingSequence {
            next: u64::MAX,
            processed: u64::MAX - 1,
        };
        assert_eq!(sequence.track(), Err(SequenceError));
        assert_eq!(sequence.reset(u64::MAX), Ok(()));
    }
}
