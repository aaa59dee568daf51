//! Hub filters: middleware around every invocation and around connect and disconnect —
//! logging, rate limiting, authorization, metrics.
//!
//! Order: the server's global filters (in the order added with
//! [`HubServerBuilder::filter`](crate::HubServerBuilder::filter)), then the endpoint's own
//! (added with [`EndpointOptions::filter`](crate::EndpointOptions::filter)). `before_*` hooks
//! run in that order and the first error stops the chain (the method does not run); `after_*`
//! hooks run in the reverse order.

use std::sync::Arc;
use std::time::Duration;

use super::{ConnectionError, HubError};

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

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationOutcome {
    /// How long the method ran (for a stream: until it was handed its stream).
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
/// nothing, so a filter implements only what it needs.
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
pub trait HubFilter: Send + Sync + 'static {
    /// Before a hub method runs: an error is sent to the caller instead of running it.
    fn before_invoke(&self, invocation: &InvocationInfo) -> Result<(), HubError> {
        let _ = invocation;
        Ok(())
    }

    /// After a hub method finished.
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

    pub(crate) fn before_invoke(&self, invocation: &InvocationInfo) -> Result<(), HubError> {
        self.0.iter().try_for_each(|f| f.before_invoke(invocation))
    }

    pub(crate) fn after_invoke(&self, invocation: &InvocationInfo, outcome: &InvocationOutcome) {
        self.0.iter().rev().for_each(|f| f.after_invoke(invocation, outcome));
    }

    pub(crate) fn on_connected(&self, connection: &ConnectionInfo) -> Result<(), HubError> {
        self.0.iter().try_for_each(|f| f.on_connected(connection))
    }

    pub(crate) fn on_disconnected(&self, connection: &ConnectionInfo, error: Option<&ConnectionError>) {
        self.0.iter().rev().for_each(|f| f.on_disconnected(connection, error));
    }
}
