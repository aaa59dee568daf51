//! Scheduling without a connection: the sets, the limits, and the client streams' bookkeeping.

use std::task::Context;

use super::*;

fn context() -> Context<'static> {
    Context::from_waker(futures_util::task::noop_waker_ref())
}

fn options(parallel: usize, per_second: Option<u32>) -> HubOptions {
    HubOptions {
        max_parallel_invocations: parallel,
        max_invocations_per_second: per_second,
        ..HubOptions::default()
    }
}

fn finished_now(stream_id: Option<&str>) -> Running {
    let stream_id = stream_id.map(str::to_string);
    Box::pin(async move {
        let stream: BoxFuture<'static, Outcome> = Box::pin(std::future::pending());
        stream_id.map(|id| StreamHandover {
            stream_id: Some(id),
            stream,
        })
    })
}

#[test]
fn a_lazy_set_allocates_only_when_pushed_to() {
    let mut set: LazySet<std::future::Ready<u8>> = LazySet::default();
    assert!(set.0.is_none() && set.is_empty());
    assert_eq!(set.poll_next(&mut context()), Poll::Ready(None));
    set.push(std::future::ready(7));
    assert_eq!(set.len(), 1);
    assert_eq!(set.poll_next(&mut context()), Poll::Ready(Some(7)));
    assert!(set.is_empty());
}

#[test]
fn the_rate_limit_allows_a_burst_of_one_seconds_worth() {
    let mut scheduler = Scheduler::new(&options(1, Some(3)));
    assert!((0..3).all(|_| scheduler.within_rate()));
    assert!(!scheduler.within_rate(), "the fourth within a second is refused");
    let mut unlimited = Scheduler::new(&options(1, None));
    assert!((0..1000).all(|_| unlimited.within_rate()));
}

#[test]
fn counted_invocations_finish_first_and_open_room() {
    let mut scheduler = Scheduler::new(&options(0, None));
    assert!(scheduler.has_room(), "at least one runs at once");
    assert!(!scheduler.is_running());
    scheduler.push(finished_now(None), Limit::Uncounted);
    scheduler.push(finished_now(Some("s")), Limit::Counted);
    assert!(!scheduler.has_room(), "uncounted ones take no room");
    assert!(scheduler.is_running());
    let mut next = Box::pin(scheduler.next_finished());
    let first = next.as_mut().poll(&mut context());
    assert!(matches!(&first, Poll::Ready(Finished::Counted(Some(h))) if h.stream_id.as_deref() == Some("s")));
    let second = next.as_mut().poll(&mut context());
    assert!(matches!(second, Poll::Ready(Finished::Uncounted(None))));
    assert!(next.as_mut().poll(&mut context()).is_pending());
    drop(next);
    assert!(scheduler.has_room() && !scheduler.is_running());
    assert!(scheduler.next_waiting().is_none());
}

#[test]
fn a_finished_stream_reports_its_id() {
    let mut scheduler = Scheduler::new(&options(1, None));
    scheduler.push_stream(Box::pin(async { Some("7".to_string()) }));
    assert!(scheduler.is_running());
    let finished = Box::pin(scheduler.next_finished()).as_mut().poll(&mut context());
    assert!(matches!(finished, Poll::Ready(Finished::Stream(Some(id))) if id == "7"));
}

#[test]
fn stream_ids_are_tracked_until_forgotten() {
    let mut scheduler = Scheduler::new(&options(1, None));
    let token = CancellationToken::new();
    scheduler.add_stream("1".into(), token.clone());
    let _items = scheduler.open_upload("u".into(), 1);
    assert!(scheduler.stream_in_use("1") && !scheduler.stream_in_use("2"));
    assert!(scheduler.has_upload("u") && scheduler.upload_running("u"));
    assert_eq!(scheduler.open_streams(), 2);
    scheduler.cancel_stream("2");
    assert!(!token.is_cancelled());
    scheduler.cancel_stream("1");
    assert!(token.is_cancelled());
    scheduler.forget_stream("1");
    scheduler.end_upload("u");
    assert_eq!(scheduler.open_streams(), 0);
}

#[test]
fn an_upload_whose_reader_is_gone_is_not_running() {
    let mut scheduler = Scheduler::new(&options(1, None));
    drop(scheduler.open_upload("u".into(), 1));
    assert!(scheduler.has_upload("u") && !scheduler.upload_running("u"));
    scheduler.upload("u".into(), UploadItem::Error("x".into()));
    assert!(!scheduler.has_upload("u"), "a closed stream is dropped");
    scheduler.upload("unknown".into(), UploadItem::Error("x".into()));
    assert!(scheduler.ready());
}

#[test]
fn an_item_for_a_full_stream_blocks_until_it_has_room() {
    let mut scheduler = Scheduler::new(&options(1, None));
    let mut items = scheduler.open_upload("u".into(), 1);
    scheduler.upload("u".into(), UploadItem::Error("first".into()));
    assert!(!scheduler.has_upload("u"), "an error ends the stream");
    let mut items_2 = scheduler.open_upload("w".into(), 1);
    // Fill "w", then one more waits.
    let sender = scheduler.more.as_ref().and_then(|m| m.uploads.get("w")).cloned();
    assert!(sender.is_some_and(|tx| tx.try_send(UploadItem::Error("fill".into())).is_ok()));
    scheduler.upload("w".into(), UploadItem::Error("waits".into()));
    assert!(scheduler.is_blocked() && !scheduler.ready());
    let blocked = scheduler.blocked_sender();
    assert!(blocked.is_some());
    assert!(matches!(items_2.try_recv(), Ok(UploadItem::Error(e)) if e == "fill"));
    let permit = blocked.and_then(|tx| tx.try_reserve_owned().ok());
    assert!(permit.is_some());
    scheduler.unblock(permit);
    assert!(!scheduler.is_blocked() && scheduler.ready());
    assert!(matches!(items_2.try_recv(), Ok(UploadItem::Error(e)) if e == "waits"));
    assert!(!scheduler.has_upload("w"), "the error was the stream's last item");
    assert!(matches!(items.try_recv(), Ok(UploadItem::Error(e)) if e == "first"));
}

/// An invocation waiting for its turn keeps copies of its arguments: a client cannot make each
/// of `max_pending_invocations` calls hold a large frame.
#[cfg(feature = "json")]
#[tokio::test]
async fn a_waiting_invocation_does_not_hold_its_frame() {
    let mut scheduler = Scheduler::new(&options(1, None));
    let (frame, call) = crate::hub::call::tests::call_from_frame();
    scheduler.wait(0, call);
    assert!(frame.is_unique(), "the waiting call holds its frame");
}
