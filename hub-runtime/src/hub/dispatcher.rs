//! The dispatcher: runs one hub connection — handshake, registration, `on_connected`, the
//! read loop, and closing (with the Close message its end calls for) and `on_disconnected`.
//!
//! Its parts, each in its own file: the method table ([`super::endpoint`]), the handshake,
//! the read loop and what it polls (routing, binding and limits, scheduling, stateful
//! acknowledgements, keep-alive), and the Close messages ([`super::close`]).

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::close::{close_with, frame_for, Reconnect};
use super::filter::ConnectionInfo;
use super::handshake::handshake;
use super::hooks::{on_connected, on_disconnected, Registered};
use super::read_loop::{read_loop, End};
use super::{ConnectionError, Hub, HubContext};
use crate::clients::lifetime::LocalConnection;
use crate::connection::{Connection, ConnectionHandler};
use crate::protocol::handshake::SUCCESS_REPLY;

// Kept here: the server maps endpoints from `dispatcher`, and the hooks name these.
pub(super) use super::close::closed_with_error;
pub(crate) use super::endpoint::HubEndpoint;

/// The handler mapped at a hub's path.
pub(crate) struct HubHandler<H: Hub>(pub(crate) Arc<HubEndpoint<H>>);

impl<H: Hub> ConnectionHandler for HubHandler<H> {
    fn run(&self, connection: Connection) -> BoxFuture<'static, ()> {
        Box::pin(run_connection(self.0.clone(), connection))
    }
}

async fn run_connection<H: Hub>(endpoint: Arc<HubEndpoint<H>>, mut connection: Connection) {
    let options = endpoint.options.clone();
    let protocols = endpoint.manager.protocols().clone();
    let sender = connection.sender();
    let Some(settled) = handshake(&mut connection, &protocols, &endpoint.goodbyes, &options).await else {
        return;
    };
    let protocol_index = settled.protocol_index;
    let protocol = protocols[protocol_index].clone();
    sender.set_protocol(protocol.name());

    let id: Arc<str> = connection.id().into();
    let identity = connection.identity().cloned();
    let user_id = identity.as_ref().and_then(|i| i.user_id()).map(Arc::<str>::from);
    let cx = Arc::new(HubContext::<H>::new(
        endpoint.manager.clone(),
        id.clone(),
        identity,
        sender.clone(),
        endpoint.history.clone(),
    ));
    // Held until the connection is added: connections of one user that start together are
    // counted together.
    let mut reservation = None;
    if let (Some(max), Some(user)) = (options.max_connections_per_user, &user_id) {
        reservation = endpoint.manager.reserve_user_connection(user, &id, max);
        if reservation.is_none() {
            tracing::warn!(connection = %id, %user, "closing a connection: the user has too many");
            let text = closed_with_error(
                &format!("The user has the most connections allowed ({max})."),
                "InvalidOperationException",
                &options,
            );
            let reply = frame_for(protocol.transfer_format(), Bytes::from_static(SUCCESS_REPLY));
            let _ = sender.try_send(reply);
            close_with(&sender, &*protocol, Some(&text), Reconnect::Refused);
            return;
        }
    }
    let local = Arc::new(
        LocalConnection::new(id.clone(), sender.clone(), protocol_index, user_id)
            .with_close_requested(cx.close_requested().clone()),
    );
    let reply = frame_for(protocol.transfer_format(), Bytes::from_static(SUCCESS_REPLY));
    endpoint
        .manager
        .add_connection(local.clone(), || {
            let _ = sender.try_send(reply);
        })
        .await;
    drop(reservation);
    tracing::debug!(connection = %id, protocol = protocol.name(), "hub connection opened");

    let connection_info = ConnectionInfo {
        hub: std::any::type_name::<H>(),
        connection_id: id.clone(),
        user_id: local.user_id.clone(),
    };
    // From here on the connection leaves the manager however this future ends.
    let mut registered = Registered::new(endpoint.manager.clone(), id.clone());
    if let Err(text) = on_connected(&endpoint, &cx, &connection_info).await {
        registered.remove().await;
        close_with(&sender, &*protocol, Some(&text), Reconnect::Refused);
        return;
    }

    // The loop builds its `Dispatch` itself: built here and moved in, it would take room twice
    // in this future, which every connection keeps for its life.
    let end = read_loop(&endpoint, &cx, &local, &protocol, &mut connection, settled).await;
    // Every invocation's token is cancelled (the tokens exist only if one was asked for).
    sender.cancel_invocations();
    registered.remove().await;

    let error = match end {
        End::ClientGone => {
            tracing::debug!(connection = %id, "hub connection closed by the client");
            sender.close();
            None
        }
        End::Requested => {
            tracing::debug!(connection = %id, "hub connection closed by the server");
            close_with(&sender, &*protocol, None, Reconnect::Refused);
            None
        }
        End::Shutdown => {
            tracing::debug!(connection = %id, "hub connection closed: server shutting down");
            close_with(&sender, &*protocol, None, Reconnect::Allowed);
            None
        }
        End::Error { close_text, error } => {
            tracing::info!(connection = %id, %error, "hub connection closed with an error");
            close_with(&sender, &*protocol, Some(&close_text), Reconnect::Allowed);
            Some(error)
        }
        End::Aborted => {
            tracing::debug!(connection = %id, "hub connection aborted");
            Some(ConnectionError::new("The connection was aborted."))
        }
    };
    on_disconnected(&endpoint, cx, &connection_info, error).await;
}
