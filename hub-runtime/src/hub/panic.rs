//! Panics in user code (hub methods, streams, client-stream consumers, filters, connect and
//! disconnect hooks): caught where the dispatcher runs that code, so a panic costs one call
//! and never the connection. Each is logged with its hub and method and counted
//! (`hub_panics_total`).
//!
//! A hub method's future owns its [`Call`]. A panic unwinds through that future and drops the
//! call; a call dropped while unwinding leaves what its reply needs (its invocation id, the
//! target as sent…) in a per-thread slot ([`remember`]), which the dispatcher takes right
//! after it caught the panic ([`take_unwound`]), on the same thread. So nothing is copied per
//! call for the rare panic.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;

use super::call::Remains;
use super::{Call, Outcome};
use crate::connection::ConnectionSender;

/// A caught panic's payload.
pub(crate) type Payload = Box<dyn Any + Send>;

/// What a client is told of a panic whose payload is not text.
pub(crate) const NO_MESSAGE: &str = "The panic carried no message.";

/// The text a panic was raised with (`panic!("...")` gives a `&str` or a `String`).
pub(crate) fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        return text;
    }
    if let Some(text) = payload.downcast_ref::<String>() {
        return text;
    }
    NO_MESSAGE
}

/// Runs `f`, catching a panic.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Payload> {
    std::panic::catch_unwind(AssertUnwindSafe(f))
}

/// Awaits `future`, catching a panic while it is polled.
pub(crate) fn catch_future<F: Future>(future: F) -> impl Future<Output = Result<F::Output, Payload>> {
    AssertUnwindSafe(future).catch_unwind()
}

/// Where a panic happened, for the log and the metric.
pub(crate) struct Site<'a> {
    /// The hub's type name.
    pub(crate) hub: &'static str,
    /// The method's declared name, or the hook's name.
    pub(crate) method: &'static str,
    /// The connection whose call panicked.
    pub(crate) sender: &'a ConnectionSender,
}

/// Logs and counts a caught panic.
pub(crate) fn report(site: &Site<'_>, payload: &(dyn Any + Send)) {
    tracing::error!(
        hub = site.hub,
        method = site.method,
        connection = site.sender.id(),
        panic = message(payload),
        "user code panicked; the call fails, the connection stays"
    );
    site.sender.metrics().panicked(site.method);
}

/// A hub method's (or stream's) panic, caught by the dispatcher: logs and counts it, and
/// gives the caller's reply (nothing if the panic left no call behind, which the generated
/// router never does: its futures own their call until they return).
pub(crate) fn recover(hub: &'static str, sender: &ConnectionSender, payload: Payload) -> Outcome {
    // Left by this panic, unless it is what an earlier, uncaught one left (another connection).
    let call = take_unwound().filter(|call| call.sender.id() == sender.id());
    let site = Site {
        hub,
        method: call.as_ref().map_or("(unknown)", |c| c.name),
        sender,
    };
    report(&site, &*payload);
    match call {
        Some(call) => call.panicked(&*payload),
        None => Outcome {
            completion: None,
            stream: None,
            failed: true,
        },
    }
}

thread_local! {
    /// What the call whose future last unwound on this thread left, until taken.
    static UNWOUND: Cell<Option<Remains>> = const { Cell::new(None) };
}

/// Keeps what a call dropped while unwinding leaves (see the module's text). Never panics.
pub(crate) fn remember(remains: Remains) {
    // Without the slot (the thread is ending) the remains are simply dropped.
    let _ = UNWOUND.try_with(|slot| slot.replace(Some(remains)));
}

/// The call that unwound last on this thread, if any: taken once, right after its panic was
/// caught.
pub(crate) fn take_unwound() -> Option<Call> {
    UNWOUND.try_with(Cell::take).ok().flatten().map(Remains::into_call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_the_panics_text_or_a_generic_one() {
        let text = catch(|| panic!("plain")).unwrap_err();
        assert_eq!(message(&*text), "plain");
        let formatted = catch(|| panic!("formatted {}", 7)).unwrap_err();
        assert_eq!(message(&*formatted), "formatted 7");
        let other = catch(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(message(&*other), NO_MESSAGE);
        assert_eq!(catch(|| 5).ok(), Some(5));
    }

    #[tokio::test]
    async fn a_panicking_future_is_caught() {
        let caught = catch_future(async {
            tokio::task::yield_now().await;
            panic!("later");
        })
        .await;
        assert_eq!(message(&*caught.unwrap_err()), "later");
        assert_eq!(catch_future(async { 3 }).await.ok(), Some(3));
    }
}
