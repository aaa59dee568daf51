//! The pipeline of one invocation: what a filter sees ([`InvocationContext`]), the rest of the
//! pipeline it may run ([`Next`]), and what its `invoke` returns ([`InvokeFuture`]).

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::result::ErrorCount;
use super::{HubFilter, InvocationInfo, InvocationOutcome, InvocationResult};
use crate::auth::Identity;
use crate::hub::call::Filtered;
use crate::hub::items::Items;
use crate::hub::panic;
use crate::hub::{Call, HubError, Outcome};
use crate::protocol::{DecodeError, RawValue};

/// One invocation, as [`HubFilter::invoke`] sees it: what [`InvocationInfo`] says, and the
/// arguments, the caller's identity and items. ASP.NET Core's `HubInvocationContext`.
///
/// ```
/// use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvokeFuture, Next};
///
/// struct Audit;
///
/// impl HubFilter for Audit {
///     fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
///         let arguments: Vec<_> = (0..call.argument_count()).map(|i| call.argument_json(i).ok()).collect();
///         println!(
///             "{} calls {}.{}({arguments:?}) on {}",
///             call.user_id().unwrap_or("anonymous"),
///             call.hub(),
///             call.method(),
///             call.connection_id(),
///         );
///         InvokeFuture::pass(next)
///     }
/// }
/// ```
pub struct InvocationContext<'a> {
    info: InvocationInfo,
    filtered: &'a Filtered,
    identity: Option<&'a Identity>,
    items: &'a Items,
    /// Sends the call's reply when a filter panics.
    reply: &'a Call,
}

impl<'a> InvocationContext<'a> {
    pub(crate) fn new(
        info: InvocationInfo,
        filtered: &'a Filtered,
        identity: Option<&'a Identity>,
        items: &'a Items,
        reply: &'a Call,
    ) -> Self {
        InvocationContext {
            info,
            filtered,
            identity,
            items,
            reply,
        }
    }

    /// What the synchronous hooks see.
    pub fn info(&self) -> &InvocationInfo {
        &self.info
    }

    /// The hub's type name.
    pub fn hub(&self) -> &'static str {
        self.info.hub
    }

    /// The method's wire name, as declared (the client's spelling may differ in case).
    pub fn method(&self) -> &'static str {
        self.info.method
    }

    /// The caller's connection id.
    pub fn connection_id(&self) -> &str {
        &self.info.connection_id
    }

    /// The caller's user id, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.info.user_id.as_deref()
    }

    /// The caller's identity (claims, user id), if the authenticator gave one.
    pub fn identity(&self) -> Option<&'a Identity> {
        self.identity
    }

    /// The caller's per-connection items (the hub's [`HubContext::items`](crate::HubContext::items)).
    pub fn items(&self) -> &'a Items {
        self.items
    }

    /// Whether it is a streaming invocation (a StreamInvocation: the method returns a stream).
    pub fn is_streaming(&self) -> bool {
        self.info.streaming
    }

    /// How many arguments the client sent (client-to-server streams not counted).
    pub fn argument_count(&self) -> usize {
        self.filtered.arguments.len()
    }

    /// Argument `index` as it arrived, in the caller's protocol.
    pub fn raw_argument(&self, index: usize) -> Option<&'a RawValue> {
        self.filtered.arguments.get(index)
    }

    /// Argument `index` decoded into `T`, whatever the protocol (the method decodes it again
    /// into its parameter's type).
    pub fn argument<T: DeserializeOwned>(&self, index: usize) -> Result<T, DecodeError> {
        match self.raw_argument(index) {
            Some(raw) => raw.decode(),
            None => Err(DecodeError(format!(
                "no argument {index}: the client sent {}",
                self.argument_count()
            ))),
        }
    }

    /// Argument `index` as JSON (a MessagePack argument too: binary becomes an array of
    /// numbers).
    pub fn argument_json(&self, index: usize) -> Result<serde_json::Value, DecodeError> {
        self.argument(index)
    }
}

/// The rest of an invocation's pipeline: the inner filters, then the hub method. ASP.NET
/// Core's `next` delegate. Running it is optional: a filter that refuses the call drops it.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvokeFuture, Next};
///
/// /// Counts the calls that failed.
/// #[derive(Default)]
/// struct Failures(AtomicU64);
///
/// impl HubFilter for Failures {
///     fn invoke<'a>(&'a self, _: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
///         InvokeFuture::new(async move {
///             let result = next.run().await;
///             if result.is_error() {
///                 self.0.fetch_add(1, Ordering::Relaxed);
///             }
///             result
///         })
///     }
/// }
/// ```
pub struct Next<'a> {
    rest: &'a [Arc<dyn HubFilter>],
    invocation: &'a InvocationContext<'a>,
    method: BoxFuture<'static, Outcome>,
}

/// What [`HubFilter::invoke`] returns: the call passed on, a result at once, or a future.
///
/// ```
/// use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvocationResult, InvokeFuture, Next};
/// use hub_runtime::HubError;
///
/// /// Closed on weekends: refuses without awaiting anything (no allocation either way).
/// struct Closed(bool);
///
/// impl HubFilter for Closed {
///     fn invoke<'a>(&'a self, _: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
///         if self.0 {
///             return InvokeFuture::ready(InvocationResult::error(HubError::for_client("closed")));
///         }
///         InvokeFuture::pass(next)
///     }
/// }
/// ```
pub struct InvokeFuture<'a>(Step<'a>);

enum Step<'a> {
    Pass(Next<'a>),
    Ready(InvocationResult),
    Future(BoxFuture<'a, InvocationResult>),
}

impl<'a> InvokeFuture<'a> {
    /// Runs `future` (which usually awaits [`Next::run`]) for the result.
    pub fn new(future: impl Future<Output = InvocationResult> + Send + 'a) -> Self {
        InvokeFuture(Step::Future(Box::pin(future)))
    }

    /// Passes the call on, unchanged, without allocating (what the default `invoke` does).
    pub fn pass(next: Next<'a>) -> Self {
        InvokeFuture(Step::Pass(next))
    }

    /// Answers at once, without running the rest (a refusal, a cached value).
    pub fn ready(result: InvocationResult) -> Self {
        InvokeFuture(Step::Ready(result))
    }
}

impl<'a> Next<'a> {
    pub(crate) fn new(
        filters: &'a [Arc<dyn HubFilter>],
        invocation: &'a InvocationContext<'a>,
        method: BoxFuture<'static, Outcome>,
    ) -> Self {
        Next {
            rest: filters,
            invocation,
            method,
        }
    }

    /// Runs the inner filters and the hub method, for their result.
    pub async fn run(self) -> InvocationResult {
        let Next {
            rest,
            invocation,
            mut method,
        } = self;
        let started = Instant::now();
        let info = &invocation.info;
        // The layers entered here: their `after_invoke` runs on the way out.
        let mut entered = 0;
        let result = loop {
            let Some(filter) = rest.get(entered) else {
                break innermost(invocation, method).await;
            };
            match panic::catch(|| filter.before_invoke(info)) {
                Ok(Ok(())) => {}
                Ok(Err(error)) => break InvocationResult::error(error),
                Err(payload) => break filter_panicked(invocation, payload),
            }
            entered += 1;
            let next = Next {
                rest: &rest[entered..],
                invocation,
                method,
            };
            match panic::catch(|| filter.invoke(invocation, next)) {
                Ok(InvokeFuture(Step::Pass(next))) => method = next.method,
                Ok(InvokeFuture(Step::Ready(result))) => break result,
                Ok(InvokeFuture(Step::Future(future))) => match panic::catch_future(future).await {
                    Ok(result) => break result,
                    Err(payload) => break filter_panicked(invocation, payload),
                },
                Err(payload) => break filter_panicked(invocation, payload),
            }
        };
        let outcome = InvocationOutcome {
            elapsed: started.elapsed(),
            failed: result.is_error(),
        };
        for filter in rest[..entered].iter().rev() {
            if let Err(payload) = panic::catch(|| filter.after_invoke(info, &outcome)) {
                // The call's result is not lost.
                report(invocation, &*payload);
            }
        }
        result
    }
}

/// The hub method: its result, or (for a streaming method) its stream once the method
/// returned it. A panic is the call's error.
async fn innermost(invocation: &InvocationContext<'_>, method: BoxFuture<'static, Outcome>) -> InvocationResult {
    let reply = invocation.reply;
    let protocol = reply.protocol().clone();
    let outcome = match panic::catch_future(method).await {
        Ok(outcome) => outcome,
        Err(payload) => return method_panicked(invocation, payload),
    };
    let outcome = match outcome.stream {
        Some(stream) => match until_streaming(stream, invocation.filtered).await {
            Ok(outcome) => outcome,
            Err(payload) => return method_panicked(invocation, payload),
        },
        None => outcome,
    };
    let error = outcome.failed.then(|| {
        invocation
            .filtered
            .take_error()
            .unwrap_or_else(|| HubError::new("The invocation failed."))
    });
    InvocationResult::method(outcome, protocol, error, ErrorCount::Pending)
}

/// Runs a streaming method's future until the method returned its stream (then the outcome
/// carries it, to hand over) or it ended before (a binding failure, the method's error).
async fn until_streaming(
    mut stream: BoxFuture<'static, Outcome>,
    filtered: &Filtered,
) -> Result<Outcome, panic::Payload> {
    let polled = panic::catch_future(std::future::poll_fn(|context| match stream.as_mut().poll(context) {
        Poll::Ready(outcome) => Poll::Ready(Some(outcome)),
        Poll::Pending if filtered.stream_started.load(Ordering::Acquire) => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    }))
    .await?;
    Ok(polled.unwrap_or_else(|| Outcome::stream_of(stream)))
}

/// The hub method (or its stream, before it was returned) panicked: logged and counted, and
/// the caller's reply is the standard error.
fn method_panicked(invocation: &InvocationContext<'_>, payload: panic::Payload) -> InvocationResult {
    let reply = invocation.reply;
    let error = HubError::new(panic::message(&*payload)).with_kind("Panic");
    let outcome = panic::recover(invocation.info.hub, reply.sender(), payload);
    // The generated router's futures always leave their call behind; should one not, the
    // caller still gets its reply.
    let outcome = match outcome.completion {
        Some(_) => outcome,
        None => reply.finish_error(error.clone()),
    };
    InvocationResult::method(outcome, reply.protocol().clone(), Some(error), ErrorCount::Counted)
}

/// A filter panicked: logged and counted; the call fails as if its method had panicked.
fn filter_panicked(invocation: &InvocationContext<'_>, payload: panic::Payload) -> InvocationResult {
    // The method's future, if the panic dropped it, left its call behind: not needed.
    drop(panic::take_unwound());
    report(invocation, &*payload);
    let reply = invocation.reply;
    let error = HubError::new(panic::message(&*payload)).with_kind("Panic");
    InvocationResult::method(
        reply.panicked(&*payload),
        reply.protocol().clone(),
        Some(error),
        ErrorCount::Counted,
    )
}

fn report(invocation: &InvocationContext<'_>, payload: &(dyn std::any::Any + Send)) {
    let site = panic::Site {
        hub: invocation.info.hub,
        method: invocation.info.method,
        sender: invocation.reply.sender(),
    };
    panic::report(&site, payload);
}
