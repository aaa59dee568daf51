//! # Filters
//!
//! A filter is middleware around a hub's invocations (and around connect and disconnect): it
//! runs for every call of every method, so logging, timing, auditing, rate limits, extra
//! authorization and rewriting results live in one place instead of in each method. It is what
//! ASP.NET Core calls an `IHubFilter`.
//!
//! A filter is a type that implements [`HubFilter`](crate::HubFilter). Every hook of the trait
//! has a default, so a filter implements only the ones it needs.
//!
//! ## Quick hooks
//!
//! [`before_invoke`](crate::HubFilter::before_invoke) runs before the call and may refuse it
//! (the caller gets the error, the method does not run);
//! [`after_invoke`](crate::HubFilter::after_invoke) runs after it, with how long it took and
//! whether it failed. Both see an [`InvocationInfo`](crate::hub::filter::InvocationInfo): the
//! hub, the method's wire name, the caller's connection and user ids, and whether it is a
//! streaming call. They are plain functions: nothing is allocated for them.
//!
//! ```
//! use hub_runtime::hub::filter::{HubFilter, InvocationInfo, InvocationOutcome};
//! use hub_runtime::HubError;
//!
//! /// Refuses every `Delete*` method to anonymous callers, and logs every call.
//! struct Guard;
//!
//! impl HubFilter for Guard {
//!     fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
//!         if call.method.starts_with("Delete") && call.user_id.is_none() {
//!             return Err(HubError::for_client("sign in to delete"));
//!         }
//!         Ok(())
//!     }
//!
//!     fn after_invoke(&self, call: &InvocationInfo, outcome: &InvocationOutcome) {
//!         tracing::info!(method = call.method, elapsed = ?outcome.elapsed, failed = outcome.failed);
//!     }
//! }
//! ```
//!
//! ## Wrapping the call
//!
//! [`invoke`](crate::HubFilter::invoke) wraps the call itself. It gets an
//! [`InvocationContext`](crate::hub::filter::InvocationContext) and
//! [`Next`](crate::hub::filter::Next), the rest of the pipeline (the filters after this one,
//! then the hub method), and returns an [`InvokeFuture`](crate::hub::filter::InvokeFuture) —
//! usually `InvokeFuture::new(async move { ... })`. Inside, the filter decides:
//!
//! - whether to run the call at all: `next.run().await` runs it; returning without it refuses
//!   the call;
//! - what to do around it: measure, log, hold a permit;
//! - what the caller gets: the [`InvocationResult`](crate::hub::filter::InvocationResult) from
//!   `next`, or another one (`InvocationResult::value(..)`, `::void()`, `::error(..)`).
//!
//! The context has what `HubInvocationContext` has in ASP.NET Core: the method's name, the
//! arguments (read each one as the type you expect with `argument::<T>(i)`, or as JSON with
//! `argument_json(i)`, whichever protocol the client speaks), the caller's connection id,
//! identity (user id and claims) and per-connection items, and whether the call streams.
//!
//! ```
//! use std::time::Instant;
//!
//! use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvocationResult, InvokeFuture, Next};
//! use hub_runtime::HubError;
//!
//! /// A chosen nickname, stored in the connection's items by a hub method.
//! #[derive(Clone)]
//! struct Nick(String);
//!
//! struct Moderation;
//!
//! impl HubFilter for Moderation {
//!     fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
//!         InvokeFuture::new(async move {
//!             if call.method() == "SendMessage" {
//!                 // Refuse: the method never runs, the caller gets the error.
//!                 let text: String = call.argument(0).unwrap_or_default();
//!                 if text.contains("spam") {
//!                     return InvocationResult::error(HubError::for_client("no spam, please"));
//!                 }
//!                 let muted = call.identity().is_some_and(|who| who.has_claim("muted", "true"));
//!                 if muted || call.items().get::<Nick>().is_none() {
//!                     return InvocationResult::error(HubError::for_client("you cannot send now"));
//!                 }
//!             }
//!             // Time the call, and see how it ended.
//!             let started = Instant::now();
//!             let result = next.run().await;
//!             tracing::info!(
//!                 method = call.method(),
//!                 user = call.user_id(),
//!                 elapsed = ?started.elapsed(),
//!                 error = ?result.as_error(),
//!             );
//!             result
//!         })
//!     }
//! }
//! ```
//!
//! ## Changing the result
//!
//! A hub method's result stays encoded for the caller's protocol while it passes through the
//! filters, so passing it on costs nothing. A filter that needs it reads it with
//! [`decode::<T>()`](crate::hub::filter::InvocationResult::decode) or
//! [`json()`](crate::hub::filter::InvocationResult::json), and its error with
//! [`as_error()`](crate::hub::filter::InvocationResult::as_error) (the method's own
//! [`HubError`](crate::HubError); kind `InvalidDataException` when the arguments could not be
//! bound, `Panic` when the method panicked). To change it, return another result: any
//! serializable value, no value, or an error.
//!
//! ```
//! use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvocationResult, InvokeFuture, Next};
//! use hub_runtime::HubError;
//!
//! /// Hides internal errors behind a friendly one, and rounds prices to cents.
//! struct Polish;
//!
//! impl HubFilter for Polish {
//!     fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
//!         InvokeFuture::new(async move {
//!             let result = next.run().await;
//!             if result.as_error().is_some_and(|e| !e.is_for_client()) {
//!                 return InvocationResult::error(HubError::for_client("something went wrong, try again"));
//!             }
//!             if call.method() == "Price" {
//!                 if let Ok(Some(price)) = result.decode::<f64>() {
//!                     return InvocationResult::value((price * 100.0).round() / 100.0);
//!                 }
//!             }
//!             result
//!         })
//!     }
//! }
//! ```
//!
//! A filter that can decide without awaiting anything answers with
//! [`InvokeFuture::ready`](crate::hub::filter::InvokeFuture::ready) or passes the call on with
//! [`InvokeFuture::pass`](crate::hub::filter::InvokeFuture::pass): neither allocates.
//!
//! ## Registering filters, and their order
//!
//! [`HubServerBuilder::filter`](crate::HubServerBuilder::filter) adds a filter for every hub of
//! the server, [`EndpointOptions::filter`](crate::EndpointOptions::filter) one for a single
//! endpoint. Global filters come first, in the order added, then the endpoint's own, as in
//! ASP.NET Core. Each filter is a layer around the next one, with the hub method innermost:
//!
//! ```text
//! A.before_invoke
//! A.invoke ── next.run() ──▶ B.before_invoke
//!                            B.invoke ── next.run() ──▶ the hub method
//!                            B.invoke returns ◀──────── its result
//!                            B.after_invoke
//! A.invoke returns ◀──────── B's result
//! A.after_invoke
//! ```
//!
//! So `before_invoke` hooks run in order and `after_invoke` hooks in reverse order. A refusal
//! (by `before_invoke` or by an `invoke` that does not run `next`) stops everything inside it;
//! the layers outside see the call fail.
//!
//! ```no_run
//! use hub_runtime::hub::filter::{HubFilter, InvocationInfo};
//! use hub_runtime::prelude::*;
//! use hub_runtime::EndpointOptions;
//!
//! struct Audit;
//! impl HubFilter for Audit {
//!     fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
//!         println!("{} calls {}", call.connection_id, call.method);
//!         Ok(())
//!     }
//! }
//!
//! struct ChatOnly;
//! impl HubFilter for ChatOnly {}
//!
//! struct Chat;
//! #[hub]
//! impl Chat {
//!     fn send(&self, text: String) -> String {
//!         text
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() {
//! let server = HubServer::builder()
//!     .filter(Audit) // every hub, first
//!     .hub_with("/chat", Chat, EndpointOptions::new().filter(ChatOnly)) // this hub, after
//!     .build();
//! # let _ = server;
//! # }
//! ```
//!
//! ## Streams
//!
//! For a streaming method, the filters wrap the call that returns the stream, not its items:
//! `next.run()` returns once the method returned its stream (or failed to), before the first
//! item is produced, and `InvocationResult::is_stream()` says so. A filter can refuse the
//! stream (the client's stream ends with the error) or return a value instead (sent as the
//! stream's only item). The items then flow beside the connection's other calls; a filter's
//! timing covers the start of the stream only. Client-to-server streams are not among the
//! arguments a filter sees: only the method reads them.
//!
//! ## Panics, and what filters cost
//!
//! A filter that panics costs only the call it was filtering, as a panicking hub method does:
//! the panic is logged and counted, the caller gets the standard error (with the panic's text
//! under `detailed_errors`), and the connection keeps working.
//!
//! Without filters, none of this code runs: calls take the dispatcher's fast path. With
//! filters, each call makes a few small allocations (the pipeline's future, the arguments
//! shared with the filters, the reply's ids), plus one box per `InvokeFuture::new`; the quick
//! hooks, `InvokeFuture::pass` and `InvokeFuture::ready` add none.
//!
//! ## Connections
//!
//! [`on_connected`](crate::HubFilter::on_connected) runs before a hub's own `on_connected` hook
//! and can refuse the connection; [`on_disconnected`](crate::HubFilter::on_disconnected) runs
//! after its `on_disconnected`. Both are synchronous and see a
//! [`ConnectionInfo`](crate::hub::filter::ConnectionInfo).
