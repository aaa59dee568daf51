//! Stateful reconnect's bookkeeping: the client's tracked messages kept (numbered) until the
//! server acknowledges them ([`Outgoing`]), and the numbering of the server's messages, which
//! drops what the server replays twice and says when an Ack is owed ([`Received`]).
//!
//! Tracked messages are the hub messages of types 1 to 5 (invocations, stream items,
//! completions, stream invocations, cancellations), numbered from 1 in each direction; pings,
//! Close, Ack and Sequence are not numbered.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use hub_protocol::{HubMessage, OutMessage};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// How long after a new tracked message the Ack for it (and for what else came meanwhile) is
/// sent: one Ack a second at most, as the official clients send them.
pub(crate) const ACK_DELAY: Duration = Duration::from_secs(1);

/// The text a Sequence message that goes past what was received ends the connection with
/// (the official clients' words).
pub(crate) const SEQUENCE_TOO_LARGE: &str = "Sequence ID greater than amount of messages we've received.";

/// Tells the sender of a tracked message that it may go on: at once while the buffer is under
/// its limit, or once an Ack brings it back under (or the message is acknowledged).
pub(crate) type Release = oneshot::Sender<Result<()>>;

/// Whether an outgoing message is numbered (types 1–5).
pub(crate) fn is_tracked(message: &OutMessage<'_>) -> bool {
    matches!(
        message,
        OutMessage::Invocation { .. }
            | OutMessage::StreamItem { .. }
            | OutMessage::Completion { .. }
            | OutMessage::StreamInvocation { .. }
            | OutMessage::CancelInvocation { .. }
    )
}

fn is_tracked_incoming(message: &HubMessage) -> bool {
    matches!(
        message,
        HubMessage::Invocation(_)
            | HubMessage::StreamItem { .. }
            | HubMessage::Completion { .. }
            | HubMessage::StreamInvocation(_)
            | HubMessage::CancelInvocation { .. }
    )
}

/// One sent message the server has not acknowledged.
struct Kept {
    id: u64,
    bytes: Bytes,
    release: Option<Release>,
}

/// The client's tracked messages, numbered from 1 and kept until the server acknowledges
/// them, to be sent again on a new socket.
pub(crate) struct Outgoing {
    kept: VecDeque<Kept>,
    /// Bytes of the kept messages.
    bytes: usize,
    /// How many tracked messages were numbered (the id of the last one).
    numbered: u64,
    /// At or above this many kept bytes, senders wait for Acks.
    limit: usize,
}

impl Outgoing {
    /// An empty buffer whose senders wait once `limit` bytes are unacknowledged.
    pub(crate) fn new(limit: usize) -> Self {
        Outgoing {
            kept: VecDeque::new(),
            bytes: 0,
            numbered: 0,
            limit,
        }
    }

    /// Numbers and keeps a tracked message. Its sender is released at once while the kept
    /// bytes stay under the limit; otherwise later, by [`ack`](Self::ack).
    pub(crate) fn keep(&mut self, bytes: Bytes, release: Option<Release>) {
        self.numbered = self.numbered.saturating_add(1);
        self.bytes = self.bytes.saturating_add(bytes.len());
        let mut kept = Kept {
            id: self.numbered,
            bytes,
            release,
        };
        if self.bytes < self.limit {
            fire(&mut kept.release);
        }
        self.kept.push_back(kept);
    }

    /// The server has every message up to `sequence_id`: they are let go (and their senders
    /// released); if that brings the buffer under its limit, every waiting sender goes on.
    pub(crate) fn ack(&mut self, sequence_id: u64) {
        while let Some(front) = self.kept.front() {
            if front.id > sequence_id {
                break;
            }
            if let Some(mut kept) = self.kept.pop_front() {
                self.bytes -= kept.bytes.len();
                fire(&mut kept.release);
            }
        }
        if self.bytes < self.limit {
            for kept in &mut self.kept {
                fire(&mut kept.release);
            }
        }
    }

    /// What a new socket sends first: the id of the first message it resends (the next id
    /// when nothing is kept), and the kept messages in order. They stay kept until acknowledged.
    pub(crate) fn resend(&self) -> (u64, Vec<Bytes>) {
        let first = self
            .kept
            .front()
            .map_or(self.numbered.saturating_add(1), |kept| kept.id);
        (first, self.kept.iter().map(|kept| kept.bytes.clone()).collect())
    }

    /// The connection ended: senders still waiting fail with `error`.
    pub(crate) fn fail_waiting(&mut self, error: &Error) {
        for kept in &mut self.kept {
            if let Some(release) = kept.release.take() {
                let _ = release.send(Err(error.clone()));
            }
        }
    }

    /// Bytes kept, unacknowledged.
    #[cfg(test)]
    fn kept_bytes(&self) -> usize {
        self.bytes
    }
}

fn fire(release: &mut Option<Release>) {
    if let Some(release) = release.take() {
        let _ = release.send(Ok(()));
    }
}

/// What to do with a message the server sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Handle it.
    Handle,
    /// Drop it: a replayed message already handled, anything before the Sequence message a
    /// new socket starts with, or a Sequence message (it only renumbers).
    Skip,
}

/// The numbering of the server's tracked messages, and the Ack owed for them.
pub(crate) struct Received {
    /// The number the next tracked message has.
    next: u64,
    /// The highest number handled.
    latest: u64,
    /// A new socket: everything before its Sequence message is dropped.
    awaiting_sequence: bool,
    /// When the owed Ack is due.
    ack_due: Option<Instant>,
}

impl Default for Received {
    fn default() -> Self {
        Received {
            next: 1,
            latest: 0,
            awaiting_sequence: false,
            ack_due: None,
        }
    }
}

impl Received {
    /// Numbers a message from the server: whether to handle it, or the connection's end for
    /// a Sequence message ahead of what was received.
    pub(crate) fn admit(&mut self, message: &HubMessage) -> std::result::Result<Admit, Error> {
        if let HubMessage::Sequence { sequence_id } = message {
            self.awaiting_sequence = false;
            if *sequence_id > self.next {
                return Err(Error::Protocol(SEQUENCE_TOO_LARGE.into()));
            }
            self.next = *sequence_id;
            return Ok(Admit::Skip);
        }
        if self.awaiting_sequence {
            return Ok(Admit::Skip);
        }
        if !is_tracked_incoming(message) {
            return Ok(Admit::Handle);
        }
        let id = self.next;
        self.next = id.saturating_add(1);
        if id <= self.latest {
            if id == self.latest {
                // The server replays what it saw no Ack for: tell it again.
                self.owe_ack();
            }
            return Ok(Admit::Skip);
        }
        self.latest = id;
        self.owe_ack();
        Ok(Admit::Handle)
    }

    /// The socket went: until the new one's Sequence message, nothing is handled.
    pub(crate) fn disconnected(&mut self) {
        self.awaiting_sequence = true;
    }

    /// When the owed Ack is due, if one is owed.
    pub(crate) fn ack_due(&self) -> Option<Instant> {
        self.ack_due
    }

    /// The Ack is being sent: what it acknowledges.
    pub(crate) fn take_ack(&mut self) -> u64 {
        self.ack_due = None;
        self.latest
    }

    fn owe_ack(&mut self) {
        self.ack_due.get_or_insert_with(|| Instant::now() + ACK_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use hub_protocol::{CompletionResult, Headers};

    use super::*;

    fn bytes(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    fn waiting() -> (Option<Release>, oneshot::Receiver<Result<()>>) {
        let (release, released) = oneshot::channel();
        (Some(release), released)
    }

    fn completion() -> HubMessage {
        HubMessage::Completion {
            invocation_id: "1".into(),
            result: CompletionResult::Void,
            headers: Headers::default(),
        }
    }

    #[test]
    fn messages_are_numbered_from_one_and_kept_until_acked() {
        let mut outgoing = Outgoing::new(1000);
        for n in [1, 2, 3] {
            outgoing.keep(bytes(n), None);
        }
        assert_eq!(outgoing.resend(), (1, vec![bytes(1), bytes(2), bytes(3)]));
        outgoing.ack(2);
        assert_eq!(outgoing.resend(), (3, vec![bytes(3)]));
        assert_eq!(outgoing.kept_bytes(), 3);
        outgoing.ack(3);
        assert_eq!(outgoing.resend(), (4, vec![]), "the next id when nothing is kept");
        outgoing.ack(2);
        assert_eq!(outgoing.resend(), (4, vec![]), "an old ack changes nothing");
    }

    #[test]
    fn a_sender_waits_from_the_limit_on_until_an_ack_brings_the_buffer_under_it() {
        let mut outgoing = Outgoing::new(10);
        let (release, mut first) = waiting();
        outgoing.keep(bytes(6), release);
        assert_eq!(first.try_recv(), Ok(Ok(())), "under the limit: released at once");
        let (release, mut second) = waiting();
        outgoing.keep(bytes(4), release);
        assert!(second.try_recv().is_err(), "at the limit: waits");
        let (release, mut third) = waiting();
        outgoing.keep(bytes(1), release);
        assert!(third.try_recv().is_err());
        outgoing.ack(0);
        assert!(second.try_recv().is_err(), "an ack of nothing releases nothing");
        outgoing.ack(1);
        // 5 bytes left, under the limit: both go on, though not acknowledged.
        assert_eq!(second.try_recv(), Ok(Ok(())));
        assert_eq!(third.try_recv(), Ok(Ok(())));
        assert_eq!(outgoing.resend().0, 2, "released is not acknowledged");
    }

    #[test]
    fn an_ack_releases_what_it_covers_even_over_the_limit() {
        let mut outgoing = Outgoing::new(4);
        let (release, mut first) = waiting();
        outgoing.keep(bytes(5), release);
        let (release, mut second) = waiting();
        outgoing.keep(bytes(5), release);
        outgoing.ack(1);
        assert_eq!(first.try_recv(), Ok(Ok(())));
        assert!(second.try_recv().is_err(), "still over the limit");
        outgoing.fail_waiting(&Error::NotConnected);
        assert_eq!(second.try_recv(), Ok(Err(Error::NotConnected)));
    }

    #[test]
    fn replayed_messages_are_skipped_and_the_latest_again_owes_an_ack() {
        let mut received = Received::default();
        assert_eq!(received.admit(&completion()), Ok(Admit::Handle));
        assert_eq!(received.admit(&HubMessage::Ping), Ok(Admit::Handle));
        assert_eq!(received.admit(&completion()), Ok(Admit::Handle));
        assert!(received.ack_due().is_some());
        assert_eq!(received.take_ack(), 2);
        assert_eq!(received.ack_due(), None);

        received.disconnected();
        assert_eq!(
            received.admit(&completion()),
            Ok(Admit::Skip),
            "nothing before the Sequence message"
        );
        assert_eq!(
            received.admit(&HubMessage::Sequence { sequence_id: 1 }),
            Ok(Admit::Skip)
        );
        assert_eq!(received.admit(&completion()), Ok(Admit::Skip), "1 again");
        assert_eq!(received.ack_due(), None);
        assert_eq!(received.admit(&completion()), Ok(Admit::Skip), "2 again");
        assert!(received.ack_due().is_some(), "the latest replayed: Ack it again");
        assert_eq!(received.admit(&completion()), Ok(Admit::Handle), "3 is new");
        assert_eq!(received.take_ack(), 3);
    }

    #[test]
    fn a_sequence_ahead_of_what_was_received_ends_the_connection() {
        let mut received = Received::default();
        assert_eq!(received.admit(&completion()), Ok(Admit::Handle));
        assert_eq!(
            received.admit(&HubMessage::Sequence { sequence_id: 2 }),
            Ok(Admit::Skip)
        );
        assert_eq!(
            received.admit(&HubMessage::Sequence { sequence_id: 3 }),
            Err(Error::Protocol(SEQUENCE_TOO_LARGE.into()))
        );
    }
}
