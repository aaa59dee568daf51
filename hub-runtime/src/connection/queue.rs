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
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_the_end_is_seen() {
        let (tx, mut rx) = channel(4);
        let other = tx.clone();
        tx.try_send(1).unwrap();
        other.try_send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(tx);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        drop(other);
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_waiting_sender_gets_room() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(3).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(waiting.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
    }

    #[tokio::test]
    async fn senders_learn_that_the_receiver_is_gone() {
        let (tx, rx) = channel(1);
        tx.try_send(1).unwrap();
        let waiting = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(2).await }
        });
        tokio::task::yield_now().await;
        drop(rx);
        assert_eq!(waiting.await.unwrap(), Err(2));
        assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_by_a_send_from_another_task() {
        let (tx, mut rx) = channel::<u32>(8);
        let receiver = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.try_send(7).unwrap();
        assert_eq!(receiver.await.unwrap(), Some(7));
    }

    /// A waker that counts its wakes.
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(Default::default()));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn a_sender_polling_for_room_is_woken_when_an_item_is_taken() {
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = channel(1);
        assert!(tx.poll_room(&mut cx).is_ready());
        tx.try_send(1).unwrap();
        assert!(tx.poll_room(&mut cx).is_pending());
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert!(tx.poll_room(&mut cx).is_ready());
    }

    #[test]
    fn items_from_the_receivers_own_task_and_a_forgotten_waker_wake_nobody() {
        let (count, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = channel(4);
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send_from(1, &waker).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(1)));
        assert!(rx.poll_recv(&mut cx).is_pending());
        rx.forget_waker();
        tx.try_send(2).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        assert!(rx.poll_recv(&mut cx).is_ready());
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(3).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        // A receiver waiting in another task is woken, even by the sender's own task.
        assert!(rx.poll_recv(&mut cx).is_ready());
        assert!(rx.poll_recv(&mut cx).is_pending());
        let (_, other) = counting_waker();
        tx.try_send_from(4, &other).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 2);
    }

    /// A sender waiting in `send`, with its own counting waker.
    struct WaitingSender<'a> {
        count: Arc<Count>,
        waker: Waker,
        send: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), u32>> + 'a>>,
    }

    impl WaitingSender<'_> {
        /// Polls its `send` again.
        fn poll(&mut self) -> Poll<Result<(), u32>> {
            self.send.as_mut().poll(&mut Context::from_waker(&self.waker))
        }
    }

    /// Senders waiting in `send`, each polled once.
    fn waiting_senders(tx: &Sender<u32>, count: u32) -> Vec<WaitingSender<'_>> {
        (0..count)
            .map(|i| {
                let (counter, waker) = counting_waker();
                let mut sender = WaitingSender {
                    count: counter,
                    waker,
                    send: Box::pin(tx.send(100 + i)),
                };
                assert!(sender.poll().is_pending());
                sender
            })
            .collect()
    }

    fn wakes(waiting: &[WaitingSender<'_>]) -> Vec<usize> {
        waiting.iter().map(|w| w.count.0.load(Ordering::Relaxed)).collect()
    }

    #[test]
    fn one_waiting_sender_is_woken_per_freed_slot_in_order() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let mut waiting = waiting_senders(&tx, 4);
        assert_eq!(wakes(&waiting), [0, 0, 0, 0]);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(wakes(&waiting), [1, 0, 0, 0], "only the first waiter is woken");
        assert_eq!(waiting[0].poll(), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(100));
        assert_eq!(wakes(&waiting), [1, 1, 0, 0], "then the second");
    }

    #[test]
    fn every_freed_slot_wakes_a_waiter_even_when_the_queue_was_not_full() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.try_send(2).unwrap();
        let waiting = waiting_senders(&tx, 3);
        // Two slots freed before any woken sender ran: two senders must come.
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(wakes(&waiting), [1, 1, 0]);
    }

    #[test]
    fn a_woken_sender_that_is_dropped_passes_its_wake_on() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let mut waiting = waiting_senders(&tx, 3);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(wakes(&waiting), [1, 0, 0]);
        // The woken sender goes away without taking the slot: the next one gets it.
        let first = waiting.remove(0);
        drop(first);
        assert_eq!(wakes(&waiting), [1, 0]);
        assert_eq!(waiting[0].poll(), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(101));
        assert_eq!(wakes(&waiting), [1, 1]);
        // A waiter dropped before it was woken changes nothing for the others.
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let mut waiting = waiting_senders(&tx, 2);
        drop(waiting.remove(0));
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(wakes(&waiting), [1]);
    }

    #[test]
    fn a_closed_queue_wakes_every_waiting_sender() {
        let (tx, mut rx) = channel(1);
        tx.try_send(1).unwrap();
        let mut waiting = waiting_senders(&tx, 3);
        assert_eq!(rx.try_recv(), Ok(1));
        drop(rx);
        assert_eq!(wakes(&waiting), [1, 1, 1]);
        for sender in &mut waiting {
            assert!(sender.poll().is_ready());
        }
    }

    #[test]
    fn a_weighed_queue_bounds_the_total_weight_and_admits_one_heavy_item_alone() {
        let (tx, mut rx) = channel_weighed::<usize>(10, |w| *w);
        tx.try_send(4).unwrap();
        tx.try_send(6).unwrap();
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(rx.try_recv(), Ok(4));
        assert_eq!(tx.try_send(5), Err(TrySendError::Full(5)), "6 + 5 is over 10");
        tx.try_send(4).unwrap();
        assert_eq!(rx.try_recv(), Ok(6));
        assert_eq!(rx.try_recv(), Ok(4));
        // Heavier than the whole budget: it passes, and at the front it does not count.
        tx.try_send(25).unwrap();
        tx.try_send(9).unwrap();
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)), "9 + 2 is over 10");
        assert_eq!(rx.try_recv(), Ok(25));
        assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)), "9 + 2 is still over 10");
        assert_eq!(rx.try_recv(), Ok(9));
        tx.try_send(1).unwrap();
    }

    #[test]
    fn a_heavy_item_fits_only_when_nothing_counts_and_then_only_the_rest_counts() {
        let (tx, mut rx) = channel_weighed::<usize>(10, |w| *w);
        tx.try_send(3).unwrap();
        assert_eq!(tx.try_send(25), Err(TrySendError::Full(25)), "3 + 25 is over 10");
        assert_eq!(rx.try_recv(), Ok(3));
        tx.try_send(25).unwrap();
        tx.try_send(1).unwrap();
        assert_eq!(tx.try_send(30), Err(TrySendError::Full(30)), "1 + 30 behind the first");
        tx.try_send(9).unwrap();
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)), "1 + 9 + 1 is over 10");
    }

    #[test]
    fn a_waiting_sender_that_still_does_not_fit_waits_for_the_next_item_taken() {
        let (tx, mut rx) = channel_weighed::<u32>(10, |w| *w as usize);
        tx.try_send(2).unwrap();
        tx.try_send(2).unwrap();
        tx.try_send(6).unwrap();
        let mut waiting = waiting_senders(&tx, 1);
        // The sender waits for 100 + 0 = 100: it only fits an empty queue.
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(wakes(&waiting), [1]);
        assert!(waiting[0].poll().is_pending(), "8 + 100 is over 10: wait again");
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(wakes(&waiting), [2]);
        assert!(waiting[0].poll().is_pending());
        assert_eq!(rx.try_recv(), Ok(6));
        assert_eq!(waiting[0].poll(), Poll::Ready(Ok(())));
        assert_eq!(rx.try_recv(), Ok(100));
    }

    #[test]
    fn storage_is_given_back_after_a_burst() {
        let (tx, mut rx) = channel(1000);
        for i in 0..500 {
            tx.try_send(i).unwrap();
        }
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.shared.lock().items.capacity(), 0);
    }
}
