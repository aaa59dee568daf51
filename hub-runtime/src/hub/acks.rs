//! Stateful reconnect as the read loop sees it: each message the client sends is numbered
//! ([`IncomingSequence`]), replays are skipped, and what was handled is acknowledged a little
//! later (one Ack for all the messages of [`ACK_DELAY`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

use super::sequence::{IncomingSequence, Numbered, SequenceError};
use crate::protocol::HubMessage;

/// How soon the server acknowledges a client's messages (stateful reconnect).
pub(super) const ACK_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// The numbering of a stateful connection's incoming messages, and the Ack it owes.
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// The client's tracked messages are numbered from 1.
    incoming: IncomingSequence,
    /// When the next Ack is due: set by the first new message after the last Ack.
    due: Option<Instant>,
    /// The timer of `due`: made when first needed, then reset.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Acks {
    /// Numbers a received message; a new tracked one is to be acknowledged within
    /// [`ACK_DELAY`].
    #[inline]
    pub(super) fn receive(&mut self, message: &HubMessage) -> Result<Numbered, SequenceError> {
        let numbered = self.incoming.number(message)?;
        if numbered == Numbered::New && self.due.is_none() {
            let at = Instant::now() + ACK_DELAY;
            self.due = Some(at);
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(at),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        Ok(numbered)
    }

    /// An Ack is owed (its timer runs).
    #[inline]
    pub(super) fn is_owed(&self) -> bool {
        self.due.is_some()
    }

    /// When the owed Ack is due: the highest number handled, which it acknowledges.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<u64> {
        if self.due.is_none() {
            return Poll::Pending;
        }
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        std::task::ready!(timer.as_mut().poll(cx));
        self.due = None;
        Poll::Ready(self.incoming.processed())
    }
}

/// When a stateful connection's owed Ack is due, what it acknowledges; never without
/// stateful reconnect.
pub(super) fn next_ack(acks: &mut Option<Acks>) -> impl Future<Output = u64> + '_ {
    std::future::poll_fn(move |cx| match acks.as_mut() {
        Some(acks) => acks.poll_due(cx),
        None => Poll::Pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel(id: &str) -> HubMessage {
        HubMessage::CancelInvocation {
            invocation_id: id.into(),
            headers: Default::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn new_messages_are_acknowledged_together_after_the_delay() {
        let mut acks = Some(Acks::default());
        let Some(state) = acks.as_mut() else { return };
        assert_eq!(state.receive(&HubMessage::Ping), Ok(Numbered::Untracked));
        assert!(!state.is_owed(), "untracked messages are not acknowledged");
        assert_eq!(state.receive(&cancel("1")), Ok(Numbered::New));
        assert!(state.is_owed());
        let started = Instant::now();
        tokio::time::advance(ACK_DELAY / 2).await;
        assert_eq!(state.receive(&cancel("2")), Ok(Numbered::New));
        assert_eq!(next_ack(&mut acks).await, 2, "one Ack for both");
        assert_eq!(Instant::now() - started, ACK_DELAY, "due from the first");
        assert!(acks.as_ref().is_some_and(|a| !a.is_owed()));
    }

    #[tokio::test(start_paused = true)]
    async fn replays_are_skipped_and_not_acknowledged_again() {
        let mut acks = Some(Acks::default());
        let Some(state) = acks.as_mut() else { return };
        assert_eq!(state.receive(&cancel("1")), Ok(Numbered::New));
        assert_eq!(next_ack(&mut acks).await, 1);
        let Some(state) = acks.as_mut() else { return };
        assert_eq!(
            state.receive(&HubMessage::Sequence { sequence_id: 1 }),
            Ok(Numbered::Untracked)
        );
        assert_eq!(state.receive(&cancel("1")), Ok(Numbered::Replayed));
        assert!(!state.is_owed());
        assert_eq!(
            state.receive(&HubMessage::Sequence { sequence_id: 9 }),
            Err(SequenceError),
            "ahead of what was received"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_stateful_reconnect_no_ack_is_ever_due() {
        let mut none = None;
        let waited = tokio::time::timeout(ACK_DELAY * 10, next_ack(&mut none)).await;
        assert!(waited.is_err());
    }
}
