//! A hub connection's start and end around its read loop: the filters' and the hub's
//! `on_connected` and `on_disconnected` (a panic in them is caught, logged and counted), and
//! the connection's registration with the lifetime manager, undone however the connection's
//! future ends.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::dispatcher::{closed_with_error, HubEndpoint};
use super::filter::ConnectionInfo;
use super::panic;
use super::{ConnectionError, Hub, HubContext, HubError};
use crate::clients::lifetime::LifetimeManager;
use crate::options::HubOptions;

/// Runs the filters' and the hub's `on_connected`; the error is the Close message's text.
pub(super) async fn on_connected<H: Hub>(
    endpoint: &HubEndpoint<H>,
    cx: &Arc<HubContext<H>>,
    connection: &ConnectionInfo,
) -> Result<(), String> {
    let refused = |error: HubError| {
        tracing::warn!(connection = %connection.connection_id, %error, "on_connected failed; closing the connection");
        closed_with_error(error.message(), error.kind(), &endpoint.options)
    };
    let panicked = |payload: panic::Payload| {
        let site = panic::Site {
            hub: std::any::type_name::<H>(),
            method: "on_connected",
            sender: cx.sender(),
        };
        panic::report(&site, &*payload);
        closed_by_panic(&*payload, &endpoint.options)
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

/// The Close message's text for a connection whose start panicked: the panic's text only with
/// `options.detailed_errors`.
fn closed_by_panic(payload: &(dyn std::any::Any + Send), options: &HubOptions) -> String {
    let base = crate::protocol::error_texts::CONNECTION_CLOSED_WITH_ERROR;
    if options.detailed_errors {
        format!("{base} {}", panic::message(payload))
    } else {
        base.to_string()
    }
}

/// A connection registered with the lifetime manager. [`Registered::remove`] removes it; if
/// the connection's future ends before that removal finished (dropped, or unwound by a panic,
/// before or while the backplane is told), a task finishes it, so no group or user keeps it
/// and every `group_removed` / `connection_removed` the backplane is owed is made.
pub(super) struct Registered {
    manager: Option<Arc<LifetimeManager>>,
    id: Arc<str>,
    /// The removal once started, until it finished.
    removing: Option<BoxFuture<'static, ()>>,
}

impl Registered {
    pub(super) fn new(manager: Arc<LifetimeManager>, id: Arc<str>) -> Self {
        Registered {
            manager: Some(manager),
            id,
            removing: None,
        }
    }

    /// Removes the connection now.
    pub(super) async fn remove(&mut self) {
        self.start_removal();
        if let Some(removing) = self.removing.as_mut() {
            removing.await;
        }
        self.removing = None;
    }

    /// Makes the removal's future (once). Its local part runs when it is first polled; its
    /// backplane part may wait, so it is kept here until it finished.
    fn start_removal(&mut self) {
        let Some(manager) = self.manager.take() else { return };
        let id = self.id.clone();
        let removal = async move {
            // A backplane is user code too: its panic ends the removal, not the connection.
            if let Err(payload) = panic::catch_future(manager.remove_connection(&id)).await {
                tracing::error!(connection = %id, panic = panic::message(&*payload), "the backplane panicked while a connection was removed");
            }
        };
        self.removing = Some(Box::pin(removal));
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.start_removal();
        let Some(removing) = self.removing.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(removing);
        }
    }
}

#[cfg(all(test, feature = "json"))] // the tests speak JSON
pub(super) mod tests {
    use std::future::Future;
    use std::sync::Mutex;
    use std::task::Context;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::backplane::{Backplane, BackplaneError, EncodedMessage, GroupChange};
    use crate::clients::lifetime::LocalConnection;
    use crate::clients::SendTarget;
    use crate::connection::{
        Connection, ConnectionHandler, ConnectionManager, ConnectionSender, RequestContext, TokenKind, TransportKind,
    };
    use crate::observability::EndpointMetrics;
    use crate::protocol::json::JsonProtocol;
    use crate::protocol::HubProtocol;

    /// What a [`Gated`] backplane was told, and the gate its `group_removed` waits at.
    struct Told {
        calls: Mutex<Vec<String>>,
        gate: Semaphore,
    }

    impl Default for Told {
        fn default() -> Self {
            Told {
                calls: Mutex::default(),
                gate: Semaphore::new(0),
            }
        }
    }

    /// A distributed backplane whose `group_removed` waits until the test opens its gate.
    #[derive(Clone, Default)]
    struct Gated(Arc<Told>);

    impl Gated {
        fn calls(&self) -> Vec<String> {
            self.0.calls.lock().unwrap().clone()
        }
    }

    impl Backplane for Gated {
        fn is_distributed(&self) -> bool {
            true
        }

        fn publish(
            &self,
            _: &str,
            _: &SendTarget,
            _: EncodedMessage,
        ) -> BoxFuture<'static, Result<(), BackplaneError>> {
            Box::pin(async { Ok(()) })
        }

        fn change_remote_group(
            &self,
            _: &str,
            id: &str,
            _: &str,
            _: GroupChange,
        ) -> BoxFuture<'static, Result<(), BackplaneError>> {
            let id = id.to_string();
            Box::pin(async move { Err(BackplaneError::UnknownConnection(id)) })
        }

        fn group_removed(&self, _: &str, group: &str) -> BoxFuture<'static, ()> {
            self.0.calls.lock().unwrap().push(format!("group_removed {group}"));
            let told = self.0.clone();
            Box::pin(async move {
                let _ = told.gate.acquire().await;
            })
        }

        fn connection_removed(&self, _: &str, _: &str, _: Option<&str>) -> BoxFuture<'static, ()> {
            self.0.calls.lock().unwrap().push("connection_removed".to_string());
            Box::pin(async {})
        }
    }

    /// Hands over the sender of the connection it runs.
    #[derive(Default)]
    struct Capture(Mutex<Option<ConnectionSender>>);

    impl ConnectionHandler for Capture {
        fn run(&self, connection: Connection) -> BoxFuture<'static, ()> {
            *self.0.lock().unwrap() = Some(connection.sender());
            Box::pin(async {})
        }
    }

    /// The sender of a connection started over Server-Sent Events (no socket needed).
    pub(in crate::hub) fn sender() -> ConnectionSender {
        let connections = Arc::new(ConnectionManager::new(EndpointMetrics::new("/test")));
        let shared = connections.create(8, TokenKind::Own);
        let capture = Arc::new(Capture::default());
        let handler: Arc<dyn ConnectionHandler> = capture.clone();
        let attached = connections.attach(
            &shared,
            TransportKind::ServerSentEvents,
            RequestContext::default(),
            None,
            &handler,
        );
        assert!(attached.is_ok(), "the transport attaches");
        let sender = capture.0.lock().unwrap().take();
        sender.expect("the handler ran")
    }

    /// The connection's future is dropped while the backplane is told that its group emptied:
    /// the rest of the removal (`connection_removed`) still happens.
    #[tokio::test]
    async fn a_removal_dropped_while_the_backplane_waits_is_finished_by_a_task() {
        let backplane = Gated::default();
        let protocols: Arc<[Arc<dyn HubProtocol>]> = Arc::new([Arc::new(JsonProtocol) as Arc<dyn HubProtocol>]);
        let manager = LifetimeManager::new(
            "Test",
            protocols,
            Arc::new(backplane.clone()),
            Arc::new(HubOptions::default()),
            None,
        );
        let sender = sender();
        let id: Arc<str> = sender.id().into();
        let local = Arc::new(LocalConnection::new(id.clone(), sender, 0, None));
        manager.add_connection(local, || {}).await;
        assert!(manager.add_to_group(&id, "g").await.is_ok());

        let mut registered = Registered::new(manager.clone(), id);
        let mut removal = Box::pin(async move { registered.remove().await });
        let mut context = Context::from_waker(futures_util::task::noop_waker_ref());
        assert!(
            removal.as_mut().poll(&mut context).is_pending(),
            "waits in group_removed"
        );
        assert_eq!(backplane.calls(), ["group_removed g"]);
        assert_eq!(manager.group_count(), 0, "the local part is done at once");
        drop(removal);

        backplane.0.gate.add_permits(1);
        let told = async {
            while !backplane.calls().iter().any(|c| c == "connection_removed") {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        let finished = tokio::time::timeout(std::time::Duration::from_secs(20), told).await;
        assert!(
            finished.is_ok(),
            "connection_removed never came: {:?}",
            backplane.calls()
        );
    }

    /// Dropped before its removal started (unwound before the read loop ended): a task removes it.
    #[tokio::test]
    async fn a_connection_dropped_before_its_removal_is_removed_by_a_task() {
        let backplane = Gated::default();
        backplane.0.gate.add_permits(1);
        let protocols: Arc<[Arc<dyn HubProtocol>]> = Arc::new([Arc::new(JsonProtocol) as Arc<dyn HubProtocol>]);
        let manager = LifetimeManager::new(
            "Test",
            protocols,
            Arc::new(backplane.clone()),
            Arc::new(HubOptions::default()),
            None,
        );
        let sender = sender();
        let id: Arc<str> = sender.id().into();
        let local = Arc::new(LocalConnection::new(id.clone(), sender, 0, None));
        manager.add_connection(local, || {}).await;
        assert!(manager.add_to_group(&id, "g").await.is_ok());
        drop(Registered::new(manager.clone(), id));
        let told = async {
            while backplane.calls() != ["group_removed g", "connection_removed"] {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        };
        let finished = tokio::time::timeout(std::time::Duration::from_secs(20), told).await;
        assert!(finished.is_ok(), "the removal never finished: {:?}", backplane.calls());
        assert_eq!(manager.group_count(), 0);
    }
}
