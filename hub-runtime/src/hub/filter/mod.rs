//! Hub filters: middleware around every invocation and around connect and disconnect —
//! logging, timing, rate limiting, authorization, auditing, rewriting results. What ASP.NET
//! Core calls `IHubFilter`.
//!
//! # One trait, two ways in
//!
//! A [`HubFilter`] has cheap synchronous hooks and one asynchronous one; every hook has a
//! default, so a filter implements only what it needs:
//!
//! - [`before_invoke`](HubFilter::before_invoke) and [`after_invoke`](HubFilter::after_invoke)
//!   see the [`InvocationInfo`] (hub, method, caller) and can refuse a call or log it, with no
//!   allocation of their own;
//! - [`invoke`](HubFilter::invoke) wraps the invocation: it gets the [`InvocationContext`]
//!   (which also holds the arguments, the caller's identity and items) and [`Next`], the rest
//!   of the pipeline with the hub method innermost. It may await `next.run()` or not (refuse),
//!   measure around it, and return its [`InvocationResult`] or another one (a different value
//!   or error). Its default passes the call on without boxing anything.
//!
//! # Order
//!
//! The server's global filters come first (in the order added with
//! [`HubServerBuilder::filter`](crate::HubServerBuilder::filter)), then the endpoint's own
//! (added with [`EndpointOptions::filter`](crate::EndpointOptions::filter)), as in ASP.NET Core.
//! Each filter is one layer around the next, the hub method innermost. Inside its layer, a
//! filter's `before_invoke` runs first (an error refuses the call: neither this filter's
//! `invoke` nor anything inside runs, and the caller gets the error), then its `invoke` (which
//! runs the inner layers through `next`), then its `after_invoke`, which sees how the layer's
//! call ended (a refusal by an inner layer counts as a failure). So with only the synchronous
//! hooks, `before_invoke` runs in the filters' order and `after_invoke` in the reverse order.
//!
//! A streaming invocation is wrapped up to the moment the method returned its stream (its
//! items then flow beside the other invocations, not through the filters): a filter sees
//! whether the method failed to start streaming, and may refuse the stream or end it with a
//! value (sent as its only item). Client-to-server streams are arguments the filter does not
//! see (only the method reads them).
//!
//! A panic in a filter costs only its call, as a panic in a hub method does: the caller gets
//! the standard error, the connection stays.
//!
//! Without filters nothing of this runs; with filters, each call makes a few small allocations
//! (the pipeline's future, the arguments shared with the filters, the reply's ids), and one
//! box per filter whose `invoke` returns [`InvokeFuture::new`].
//!
//! See the guide chapter [`guide::filters`](crate::guide::filters).

mod context;
mod result;

use std::sync::Arc;
use std::time::Duration;

use super::{ConnectionError, HubError};

pub use context::{InvocationContext, InvokeFuture, Next};
pub use result::InvocationResult;

/// One invocation, as filters see it.
#[derive(Debug, Clone)]
pub struct InvocationInfo {
    /// The hub's type name.
    pub hub: &'static str,
    /// The method's wire name.
    pub method: &'static str,
    /// The caller's connection id.
    pub connection_id: Arc<str>,
    /// The caller's user id, if any.
    pub user_id: Option<Arc<str>>,
    /// Whether it is a streaming invocation.
    pub streaming: bool,
}

/// How an invocation ended, as [`HubFilter::after_invoke`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationOutcome {
    /// How long the filter's layer ran: the inner filters and the method (for a stream:
    /// until the method returned its stream).
    pub elapsed: Duration,
    /// Whether the caller was sent an error.
    pub failed: bool,
}

/// One connection, as filters see it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The hub's type name.
    pub hub: &'static str,
    /// The connection id.
    pub connection_id: Arc<str>,
    /// The user id, if any.
    pub user_id: Option<Arc<str>>,
}

/// Middleware around a hub's invocations and connections. Every hook has a default that does
/// nothing (and [`invoke`](HubFilter::invoke) passes the call on), so a filter implements only
/// what it needs. See the [module](self) for the order.
///
/// The synchronous hooks:
///
/// ```
/// use hub_runtime::hub::filter::{HubFilter, InvocationInfo, InvocationOutcome};
/// use hub_runtime::HubError;
///
/// struct Log;
///
/// impl HubFilter for Log {
///     fn after_invoke(&self, call: &InvocationInfo, outcome: &InvocationOutcome) {
///         println!("{} took {:?} (failed: {})", call.method, outcome.elapsed, outcome.failed);
///     }
/// }
///
/// struct NoDeletes;
///
/// impl HubFilter for NoDeletes {
///     fn before_invoke(&self, call: &InvocationInfo) -> Result<(), HubError> {
///         if call.method.starts_with("Delete") {
///             return Err(HubError::for_client("deleting is disabled"));
///         }
///         Ok(())
///     }
/// }
/// ```
///
/// An asynchronous filter that reads an argument, refuses or times the call, and hides an
/// error's text:
///
/// ```
/// use std::time::Instant;
/// use hub_runtime::hub::filter::{HubFilter, InvocationContext, InvocationResult, InvokeFuture, Next};
/// use hub_runtime::HubError;
///
/// struct Guard;
///
/// impl HubFilter for Guard {
///     fn invoke<'a>(&'a self, call: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
///         InvokeFuture::new(async move {
///             if call.method() == "Send" && call.argument::<String>(0).is_ok_and(|text| text.len() > 280) {
///                 return InvocationResult::error(HubError::for_client("message too long"));
///             }
///             let started = Instant::now();
///             let result = next.run().await;
///             println!("{} took {:?}", call.method(), started.elapsed());
///             if result.is_error() {
///                 return InvocationResult::error(HubError::for_client("try again later"));
///             }
///             result
///         })
///     }
/// }
/// ```
pub trait HubFilter: Send + Sync + 'static {
    /// Before this filter's layer of an invocation: an error is sent to the caller instead of
    /// running the rest (this filter's [`invoke`](HubFilter::invoke), the inner filters, the
    /// method).
    fn before_invoke(&self, invocation: &InvocationInfo) -> Result<(), HubError> {
        let _ = invocation;
        Ok(())
    }

    /// Wraps the invocation: `next` runs the inner filters and the hub method. Return
    /// [`InvokeFuture::new`] around an `async` block to await `next.run()` (or not);
    /// [`InvokeFuture::ready`] answers at once. The default passes the call on, without
    /// allocating.
    fn invoke<'a>(&'a self, invocation: &'a InvocationContext<'a>, next: Next<'a>) -> InvokeFuture<'a> {
        let _ = invocation;
        InvokeFuture::pass(next)
    }

    /// After this filter's layer of an invocation finished (its result is already decided).
    fn after_invoke(&self, invocation: &InvocationInfo, outcome: &InvocationOutcome) {
        let _ = (invocation, outcome);
    }

    /// Before the hub's `on_connected`: an error closes the connection.
    fn on_connected(&self, connection: &ConnectionInfo) -> Result<(), HubError> {
        let _ = connection;
        Ok(())
    }

    /// After the hub's `on_disconnected`.
    fn on_disconnected(&self, connection: &ConnectionInfo, error: Option<&ConnectionError>) {
        let _ = (connection, error);
    }
}

/// The filters of one endpoint, global ones first.
#[derive(Clone, Default)]
pub(crate) struct Filters(pub(crate) Arc<[Arc<dyn HubFilter>]>);

impl Filters {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn on_connected(&self, connection: &ConnectionInfo) -> Result<(), HubError> {
        self.0.iter().try_for_each(|f| f.on_connected(connection))
    }

    pub(crate) fn on_disconnected(&self, connection: &ConnectionInfo, error: Option<&ConnectionError>) {
        self.0.iter().rev().for_each(|f| f.on_disconnected(connection, error));
    }
}
