//! Futures that are polled again only when they have woken their task.
//!
//! A connection's loops wait on a few things that almost never happen (the connection is
//! aborted, the server shuts down, a newer socket takes over) beside things that happen on
//! every message. Polling a cancellation wait takes two locks, so doing it on every pass of a
//! loop costs more than the rest of the pass; wrapped in [`Quiet`], such a wait is looked at
//! only after it has signalled.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// The waker given to the wrapped future: it notes that it fired and wakes the task.
struct Signal {
    fired: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

pin_project_lite::pin_project! {
    /// Wraps a future that rarely completes: after its first poll, it is polled only once it
    /// has woken the task.
    ///
    /// For example, `Quiet::new(token.cancelled_owned())` waits for a cancellation without
    /// locking anything on the passes where nothing was cancelled.
    pub(crate) struct Quiet<F> {
        #[pin]
        inner: F,
        signal: Arc<Signal>,
        // The waker given to `inner`, made on the first poll.
        waker: Option<Waker>,
        // The task's waker as last registered with `signal`.
        task: Option<Waker>,
    }
}

impl<F: Future> Quiet<F> {
    pub(crate) fn new(inner: F) -> Self {
        Quiet {
            inner,
            signal: Arc::new(Signal {
                fired: AtomicBool::new(false),
                task: AtomicWaker::new(),
            }),
            waker: None,
            task: None,
        }
    }
}

impl<F> Quiet<F> {
    /// The wrapped future, to change it (a timer's deadline, say); it is polled again on the
    /// next poll, so that it can register for whatever it now waits on.
    pub(crate) fn inner_mut(self: Pin<&mut Self>) -> Pin<&mut F> {
        let this = self.project();
        this.signal.fired.store(true, Ordering::Release);
        this.inner
    }
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let same_task = this.task.as_ref().is_some_and(|task| task.will_wake(cx.waker()));
        // Not signalled, and the task registered last is still there to be woken (only a
        // signal takes it): nothing to do.
        if this.waker.is_some() && same_task && !this.signal.fired.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        // First polled, signalled, or polled from another task: register the task (before
        // polling, so a signal from now on reaches it) and poll the inner future.
        this.signal.task.register(cx.waker());
        if !same_task {
            *this.task = Some(cx.waker().clone());
        }
        let waker = this.waker.get_or_insert_with(|| Waker::from(this.signal.clone()));
        this.inner.poll(&mut Context::from_waker(waker))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use tokio_util::sync::CancellationToken;

    use super::*;

    pin_project_lite::pin_project! {
        struct Counted<F> {
            #[pin]
            inner: F,
            polls: Arc<AtomicUsize>,
        }
    }

    impl<F: Future> Future for Counted<F> {
        type Output = F::Output;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            this.polls.fetch_add(1, Ordering::Relaxed);
            this.inner.poll(cx)
        }
    }

    #[tokio::test]
    async fn the_inner_future_is_polled_only_after_it_signalled() {
        let token = CancellationToken::new();
        let polls = Arc::new(AtomicUsize::new(0));
        let quiet = Quiet::new(Counted {
            inner: token.clone().cancelled_owned(),
            polls: polls.clone(),
        });
        let mut quiet = std::pin::pin!(quiet);
        for _ in 0..10 {
            assert!(futures_util::poll!(quiet.as_mut()).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        let cancel = tokio::spawn({
            let token = token.clone();
            async move { token.cancel() }
        });
        // Completes once the other task cancels: the wrapper's waker reached this task.
        quiet.await;
        cancel.await.unwrap();
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    /// A timer whose deadline is moved through `inner_mut` is polled again, registers, and
    /// fires at its new deadline.
    #[tokio::test(start_paused = true)]
    async fn a_reset_timer_fires_again() {
        let start = tokio::time::Instant::now();
        let polls = Arc::new(AtomicUsize::new(0));
        let timer = Quiet::new(Counted {
            inner: tokio::time::sleep_until(start + std::time::Duration::from_secs(1)),
            polls: polls.clone(),
        });
        let mut timer = std::pin::pin!(timer);
        timer.as_mut().await;
        let fired = polls.load(Ordering::Relaxed);
        let again = start + std::time::Duration::from_secs(5);
        timer.as_mut().inner_mut().project().inner.reset(again);
        for _ in 0..10 {
            assert!(futures_util::poll!(timer.as_mut()).is_pending());
        }
        // One poll after the reset (to register), none for the passes after it.
        assert_eq!(polls.load(Ordering::Relaxed), fired + 1);
        timer.as_mut().await;
        assert_eq!(tokio::time::Instant::now(), again);
    }
}
