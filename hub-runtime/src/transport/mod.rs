//! Transports: move frames between a socket (or HTTP requests) and a logical connection.

pub(crate) mod long_polling;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::sync::Arc;

use http::StatusCode;
use warp::reply::Response;

use crate::connection::{ConnectionManager, ConnectionShared, Frame};

/// A plain response with a text body.
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(body.to_string().into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    response
}

/// Client-to-server data of the HTTP transports (a POST body): queued into the connection's
/// input, and answered 200 as soon as it is, before the handler reads it (the reference
/// server's order: a client may rely on the answer coming before any reply). The input may
/// be full (the handler is behind): then this waits for room until `deadline` (503 after).
/// Before the transport starts, the input keeps what comes for the handler to read first.
/// A 503 loses the frame, so it ends the connection's input (see
/// [`ConnectionManager::end_input`]): the handler finishes after what is queued.
pub(crate) async fn post(
    connections: &ConnectionManager,
    shared: &Arc<ConnectionShared>,
    frame: Frame,
    deadline: tokio::time::Instant,
) -> Response {
    let inbox = shared.lock().inbox_tx.clone();
    let Some(inbox) = inbox else {
        return text(StatusCode::NOT_FOUND, "No Connection with that ID");
    };
    shared.touch_read();
    match tokio::time::timeout_at(deadline, inbox.send(frame)).await {
        Ok(Ok(())) => Response::new(Default::default()),
        Ok(Err(_)) => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
        Err(_) => {
            tracing::debug!(connection = %shared.id, "no room in a connection's input until the POST's deadline; ending it");
            connections.end_input(shared);
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                "The connection is not taking input fast enough.",
            )
        }
    }
}
