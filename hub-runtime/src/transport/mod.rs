//! Transports: move frames between a socket (or HTTP requests) and a logical connection.

pub(crate) mod long_polling;
pub(crate) mod sse;
pub(crate) mod websocket;

use std::sync::Arc;

use http::StatusCode;
use warp::reply::Response;

use crate::connection::{ConnectionShared, Frame};

/// A plain response with a text body.
pub(crate) fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(body.to_string().into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    response
}

/// Client-to-server data of the HTTP transports (a POST body): handed to the connection's
/// handler. Waits while the handler's inbox is full.
pub(crate) async fn post(shared: &Arc<ConnectionShared>, frame: Frame) -> Response {
    let inbox = shared.lock().inbox_tx.clone();
    let Some(inbox) = inbox else {
        return text(StatusCode::NOT_FOUND, "No Connection with that ID");
    };
    shared.touch_read();
    match inbox.send(frame).await {
        Ok(()) => Response::new(Default::default()),
        Err(_) => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
    }
}
