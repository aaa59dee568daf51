//! The queues' behaviour: order, ends, room, weights, wakes and storage.

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
