//! A connection's queues (the outbox and the inbox): bounded, many senders, one receiver.
//!
//! A queue bounds the total weight of its items: one per item for the inbox, the bytes of its
//! frames for the outbox (see [`channel_weighed`]). An item always fits an empty queue, so one
//! item heavier than the whole budget still passes; while it waits at the front, to be taken
//! next, it does not count, so the items after it are not refused for its sake (a 3 MB message
//! followed by a small one must not close a client that reads). A queue therefore holds at
//! most its capacity, plus one item heavier than it, plus the last item let in.
//!
//! Unlike tokio's channel, which allocates a block of 32 slots when it is made, a queue holds
//! no memory while it is empty, so an idle connection pays only for the queue's header. Its
//! storage grows with the traffic and is given back when a burst has drained.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

/// Storage kept after a burst drains; more than this is freed.
const KEEP_CAPACITY: usize = 4;

struct Shared<T> {
    state: Mutex<State<T>>,
    /// Senders waiting for room, woken one per freed slot, in the order they came.
    room: Notify,
    /// The most weight the queue holds.
    capacity: usize,
    /// An item's weight; the same item must always weigh the same.
    weigh: fn(&T) -> usize,
    senders: AtomicUsize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The weight of `items`.
    weight: usize,
    /// The receiver, when it waits for an item.
    waker: Option<Waker>,
    /// A sender polling for room (besides those waiting through `room`).
    room_waker: Option<Waker>,
    /// How many senders wait through `room`.
    room_waiters: usize,
    /// The receiver is gone, or every sender is.
    receiver_gone: bool,
    senders_gone: bool,
}

/// Keeps `cx`'s waker in `slot` (cloned only if it is another task's).
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        slot => *slot = Some(cx.waker().clone()),
    }
}

impl<T> Shared<T> {
    /// The weight held against the capacity: all items but a first one heavier than the whole
    /// capacity, which the receiver takes next, alone.
    #[inline]
    fn counted(&self, state: &State<T>) -> usize {
        match state.items.front().map(self.weigh) {
            Some(front) if front > self.capacity => state.weight - front,
            _ => state.weight,
        }
    }

    /// Whether `state` has no room for an item weighing `weight`.
    #[inline]
    fn is_full(&self, state: &State<T>, weight: usize) -> bool {
        let counted = self.counted(state);
        counted > 0 && counted.saturating_add(weight) > self.capacity
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Nothing panics while holding the lock; recover the data if something ever did.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why [`Sender::try_send`] did not queue an item; the item comes back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TrySendError<T> {
    /// The queue has no room for the item.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// Why [`Receiver::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing queued now.
    Empty,
    /// Nothing queued, and every sender is gone.
    Disconnected,
}

/// A new queue holding at most `capacity` items (at least one).
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    channel_weighed(capacity, |_| 1)
}

/// A new queue holding items whose weights (`weigh`) add up to at most `capacity`; an item
/// always fits an empty queue, and a first item heavier than `capacity` does not count.
pub(crate) fn channel_weighed<T>(capacity: usize, weigh: fn(&T) -> usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            weight: 0,
            waker: None,
            room_waker: None,
            room_waiters: 0,
            receiver_gone: false,
            senders_gone: false,
        }),
        room: Notify::new(),
        capacity: capacity.max(1),
        weigh,
        senders: AtomicUsize::new(1),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

/// Puts items in a queue. Cloning makes another sender; the queue ends when all are dropped.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// What a send does when the queue is full.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Give the item back.
    Refuse,
    /// Give it back, and count the caller among the senders waiting for room.
    Wait,
}

impl<T> Sender<T> {
    /// Queues `item` if there is room, without waiting.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.push(item, None)
    }

    /// Queues `item` if there is room, waking the receiver unless it waits in the task `own`
    /// (a task that polls the receiver itself before it next waits need not wake itself).
    pub(crate) fn try_send_from(&self, item: T, own: &Waker) -> Result<(), TrySendError<T>> {
        self.push(item, Some(own))
    }

    /// Whether there is room for an item; if not, `cx` is woken when there is.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        if state.receiver_gone || self.shared.counted(&state) < self.shared.capacity {
            return Poll::Ready(());
        }
        register(&mut state.room_waker, cx);
        Poll::Pending
    }

    fn push(&self, item: T, own: Option<&Waker>) -> Result<(), TrySendError<T>> {
        self.push_or_wait(item, own, WhenFull::Refuse)
    }

    /// Queues `item` if there is room; with [`WhenFull::Wait`], a full queue counts the caller
    /// among the senders waiting through `room` (in the same lock, so that no freed slot is
    /// missed).
    fn push_or_wait(&self, item: T, own: Option<&Waker>, when_full: WhenFull) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(TrySendError::Closed(item));
        }
        let weight = (self.shared.weigh)(&item);
        if self.shared.is_full(&state, weight) {
            if when_full == WhenFull::Wait {
                state.room_waiters += 1;
            }
            return Err(TrySendError::Full(item));
        }
        if state.items.capacity() == 0 {
            // Most connections queue one item at a time: room for one is all they keep.
            state.items.reserve_exact(1);
        }
        state.items.push_back(item);
        state.weight += weight;
        let waker = state
            .waker
            .take()
            .filter(|waker| !own.is_some_and(|own| waker.will_wake(own)));
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Queues `item`, waiting for room; gives it back if the receiver is gone.
    ///
    /// Waiting senders are woken one per item taken, first come first woken (not all of them
    /// on every item taken); one that still does not fit waits again. One woken and then
    /// dropped before it queued passes its wake on.
    pub(crate) async fn send(&self, mut item: T) -> Result<(), T> {
        loop {
            let room = self.shared.room.notified();
            let mut room = std::pin::pin!(room);
            // Registered before trying, so that room made in between is not missed.
            room.as_mut().enable();
            match self.push_or_wait(item, None, WhenFull::Wait) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(back)) => return Err(back),
                Err(TrySendError::Full(back)) => item = back,
            }
            // Dropped before `room`: a dropped sender stops counting, then its wake passes on.
            let _waiting = Waiting(&self.shared);
            room.await;
        }
    }
}

/// A sender counted among those waiting for room, until dropped.
struct Waiting<'a, T>(&'a Shared<T>);

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.room_waiters = state.room_waiters.saturating_sub(1);
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let mut state = self.shared.lock();
        state.senders_gone = true;
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Takes items from a queue, in the order they were queued.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> Receiver<T> {
    /// The next item, or `None` once the queue is empty and every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Takes the next item, or registers `cx` to be woken when one comes.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.shared.lock();
        match self.take(&mut state) {
            Ok(item) => Poll::Ready(Some(item)),
            Err(TryRecvError::Disconnected) => Poll::Ready(None),
            Err(TryRecvError::Empty) => {
                register(&mut state.waker, cx);
                Poll::Pending
            }
        }
    }

    /// Forgets the waker registered by the last pending poll: items queued from now until the
    /// next poll wake nobody. For a task about to run code that queues items it will take
    /// itself, so that it does not wake itself for them.
    pub(crate) fn forget_waker(&mut self) {
        self.shared.lock().waker = None;
    }

    /// The next item if one is queued now.
    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let mut state = self.shared.lock();
        self.take(&mut state)
    }

    fn take(&self, state: &mut State<T>) -> Result<T, TryRecvError> {
        match state.items.pop_front() {
            Some(item) => {
                state.weight -= (self.shared.weigh)(&item);
                if state.items.is_empty() && state.items.capacity() > KEEP_CAPACITY {
                    state.items = VecDeque::new();
                }
                if state.room_waiters > 0 {
                    // One slot freed: one waiting sender (tokio's `notify_one` wakes the
                    // oldest, and hands a wake on when its sender is dropped unpolled).
                    self.shared.room.notify_one();
                }
                // Registered only while there was no room.
                if let Some(waker) = state.room_waker.take() {
                    waker.wake();
                }
                Ok(item)
            }
            None if state.senders_gone => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let items = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            state.waker = None;
            if let Some(waker) = state.room_waker.take() {
                waker.wake();
            }
            state.weight = 0;
            std::mem::take(&mut state.items)
        };
        // Dropped outside the lock: an item's drop may do anything.
        drop(items);
        self.shared.room.notify_waiters();
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
