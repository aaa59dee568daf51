//! A hub connection's start and end around its read loop: the filters' and the hub's
//! `on_connected` and `on_disconnected` (a panic in them is caught, logged and counted), and
//! the connection's registration with the lifetime manager, undone however the connection's
//! future ends.

use std::sync::Arc;

use super::dispatcher::{closed_with_error, HubEndpoint};
use super::filter::ConnectionInfo;
use super::panic;
use super::{ConnectionError, Hub, HubContext, HubError};
use crate::clients::lifetime::LifetimeManager;

/// Runs the filters' and the hub's `on_connected`; the error is the Close message's text.
pub(super) async fn on_connected<H: Hub>(
    endpoint: &HubEndpoint<H>,
    cx: &Arc<HubContext<H>>,
    connection: &ConnectionInfo,
) -> Result<(), String> {
    let detailed = endpoint.options.detailed_errors;
    let refused = |error: HubError| {
        tracing::warn!(connection = %connection.connection_id, %error, "on_connected failed; closing the connection");
        closed_with_error(error.message(), error.kind(), detailed)
    };
    let panicked = |payload: panic::Payload| {
        let site = panic::Site {
            hub: std::any::type_name::<H>(),
            method: "on_connected",
            sender: cx.sender(),
        };
        panic::report(&site, &*payload);
        closed_by_panic(&*payload, detailed)
    };
    match panic::catch(|| endpoint.filters.on_connected(connection)) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(refused(error)),
        Err(payload) => return Err(panicked(payload)),
    }
    match panic::catch_future(endpoint.hub.clone().__on_connected(cx.clone())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(refused(error)),
        Err(payload) => Err(panicked(payload)),
    }
}

/// Runs the hub's and then the filters' `on_disconnected`; a panic in them is logged and
/// counted.
pub(super) async fn on_disconnected<H: Hub>(
    endpoint: &HubEndpoint<H>,
    cx: Arc<HubContext<H>>,
    connection: &ConnectionInfo,
    error: Option<ConnectionError>,
) {
    let sender = cx.sender().clone();
    let report = |payload: panic::Payload| {
        let site = panic::Site {
            hub: std::any::type_name::<H>(),
            method: "on_disconnected",
            sender: &sender,
        };
        panic::report(&site, &*payload);
    };
    let error_for_filters = error.clone();
    if let Err(payload) = panic::catch_future(endpoint.hub.clone().__on_disconnected(cx, error)).await {
        report(payload);
    }
    if let Err(payload) = panic::catch(|| endpoint.filters.on_disconnected(connection, error_for_filters.as_ref())) {
        report(payload);
    }
}

/// The Close message's text for a connection whose start panicked.
fn closed_by_panic(payload: &(dyn std::any::Any + Send), detailed: bool) -> String {
    const BASE: &str = "Connection closed with an error.";
    if detailed {
        format!("{BASE} {}", panic::message(payload))
    } else {
        BASE.to_string()
    }
}

/// A connection registered with the lifetime manager. [`Registered::remove`] removes it; if
/// the connection's future ends before that (dropped, or unwound by a panic), a task removes
/// it, so no group or user keeps it.
pub(super) struct Registered {
    manager: Option<Arc<LifetimeManager>>,
    id: Arc<str>,
}

impl Registered {
    pub(super) fn new(manager: Arc<LifetimeManager>, id: Arc<str>) -> Self {
        Registered {
            manager: Some(manager),
            id,
        }
    }

    /// Removes the connection now.
    pub(super) async fn remove(&mut self) {
        if let Some(manager) = self.manager.take() {
            manager.remove_connection(&self.id).await;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let Some(manager) = self.manager.take() else { return };
        let id = self.id.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { manager.remove_connection(&id).await });
        }
    }
}
