//! The waker of a handler hosted in its socket's task: the pump polls the handler only when
//! something woke it (or a frame was just handed to it), not on every pass.
//!
//! Measured with `scripts/callgrind-echo json` (8 connections): polled with the task's own
//! waker, the handler was polled three times per echo call (before the read, with the frame,
//! after the write), twice for nothing — each such poll runs the whole read loop's `select!`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

/// The handler was woken since the pump last polled it.
const WOKEN: u8 = 1;
/// The pump is between [`Hosted::begin`] and [`Hosted::end`]: a wake need not wake the task,
/// since the pump looks at [`WOKEN`] before it sleeps.
const POLLING: u8 = 2;

struct Signal {
    state: AtomicU8,
    /// The socket's task (kept, not taken, by a wake: it is registered once, not on every
    /// pass).
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let before = self.state.fetch_or(WOKEN, Ordering::AcqRel);
        if before & POLLING == 0 {
            if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
                task.wake_by_ref();
            }
        }
    }
}

/// Whether the hosted handler needs a poll, and the waker it is polled with.
pub(super) struct Hosted {
    signal: Arc<Signal>,
    /// The waker the handler is polled with (it wakes through `signal`).
    waker: Waker,
    /// The task's waker as last registered with `signal`.
    task: Option<Waker>,
}

impl Hosted {
    pub(super) fn new() -> Self {
        let signal = Arc::new(Signal {
            // Polled first thing.
            state: AtomicU8::new(WOKEN),
            task: Mutex::new(None),
        });
        Hosted {
            waker: Waker::from(signal.clone()),
            signal,
            task: None,
        }
    }

    /// The pump starts a pass (from the task `cx` belongs to); whether the handler was woken
    /// since its last poll (the note is taken: poll it now).
    pub(super) fn begin(&mut self, cx: &Context<'_>) -> bool {
        if !self.task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
            *self.signal.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            self.task = Some(cx.waker().clone());
        }
        let before = self.signal.state.swap(POLLING, Ordering::AcqRel);
        before & WOKEN != 0
    }

    /// The pump ends its pass; `true` if the handler was woken meanwhile (the pump must poll
    /// it before it sleeps: that wake did not wake the task).
    pub(super) fn end(&self) -> bool {
        let before = self.signal.state.fetch_and(!POLLING, Ordering::AcqRel);
        before & WOKEN != 0
    }

    /// The waker to poll the handler with.
    pub(super) fn waker(&self) -> &Waker {
        &self.waker
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn task() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    #[test]
    fn polled_first_then_only_when_woken() {
        let (count, task) = task();
        let cx = Context::from_waker(&task);
        let mut hosted = Hosted::new();
        assert!(hosted.begin(&cx), "the first pass polls the handler");
        assert!(!hosted.end());
        assert!(!hosted.begin(&cx), "nothing woke it");
        assert!(!hosted.end());
        hosted.waker().wake_by_ref();
        assert_eq!(
            count.0.load(Ordering::Relaxed),
            1,
            "woken outside a pass: the task is woken"
        );
        assert!(hosted.begin(&cx));
        assert!(!hosted.end());
    }

    #[test]
    fn a_wake_during_a_pass_is_seen_before_sleeping_without_waking_the_task() {
        let (count, task) = task();
        let cx = Context::from_waker(&task);
        let mut hosted = Hosted::new();
        hosted.begin(&cx);
        hosted.waker().wake_by_ref();
        assert_eq!(count.0.load(Ordering::Relaxed), 0);
        assert!(hosted.end(), "the pump polls it again before it sleeps");
        assert!(hosted.begin(&cx), "and the note is still there for that pass");
        assert!(!hosted.end());
    }

    #[test]
    fn a_wake_from_another_thread_is_never_lost() {
        let (count, task) = task();
        let cx = Context::from_waker(&task);
        let mut hosted = Hosted::new();
        for _ in 0..2_000 {
            hosted.begin(&cx);
            let waker = hosted.waker().clone();
            let before = count.0.load(Ordering::Relaxed);
            let thread = std::thread::spawn(move || waker.wake());
            let seen_at_end = hosted.end();
            thread.join().unwrap();
            let task_woken = count.0.load(Ordering::Relaxed) > before;
            // Either the pump saw it before sleeping, or the task was woken: never neither.
            assert!(seen_at_end || task_woken);
            if !seen_at_end {
                assert!(hosted.begin(&cx), "the woken task's next pass polls the handler");
                hosted.end();
            }
        }
    }
}
