//! What a hub endpoint answers: negotiate, the transport URL (WebSocket upgrade, event
//! stream, long poll, POST, DELETE), CORS — whichever adapter (warp filter, tower service)
//! received the request.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use super::access::{authenticate, authenticate_same_user, cross_origin_refused};
use super::request::{text, Body, Request};
use super::{Endpoint, HubOptions, ServerInner};
use crate::connection::negotiate;
use crate::connection::{AttachError, Attached, ConnectionShared, Frame, RequestContext, TokenKind, TransportKind};
use crate::protocol::TransferFormat;
use crate::transport::websocket::{self, Source, WsLimits};
use crate::transport::{self, long_polling, sse};

enum Route {
    Negotiate,
    Transport,
}

/// The endpoint that serves `path` (what is left of the request's path after any prefix the
/// host matched), matched case-insensitively, and what the request asks of it; `None` when no
/// endpoint serves it.
pub(super) fn resolve(inner: &ServerInner, path: &str) -> Option<Resolved> {
    let lower = path.trim_end_matches('/').to_lowercase();
    for endpoint in &inner.endpoints {
        if lower == endpoint.path {
            return Some(Resolved {
                endpoint: endpoint.clone(),
                route: Route::Transport,
            });
        }
        if let Some(rest) = lower.strip_prefix(endpoint.path.as_str()) {
            if rest == "/negotiate" {
                return Some(Resolved {
                    endpoint: endpoint.clone(),
                    route: Route::Negotiate,
                });
            }
        }
    }
    None
}

/// The endpoint a request is for, and what it asks of it.
pub(super) struct Resolved {
    endpoint: Arc<Endpoint>,
    route: Route,
}

/// Answers one request to a resolved endpoint: negotiate or a transport request, then CORS.
/// Starts the server's housekeeping on the first request, however the server is served.
pub(super) async fn respond(
    inner: Arc<ServerInner>,
    resolved: Resolved,
    request: Request,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    body: Body,
) -> Response {
    inner.start_housekeeping();
    let Resolved { endpoint, route } = resolved;
    let ws = websocket::Upgrade::from_request(&request.method, &request.headers, upgrade);
    let mut response = if request.method == Method::OPTIONS {
        text(StatusCode::NO_CONTENT, "")
    } else {
        match route {
            Route::Negotiate => negotiate(&inner, &endpoint, &request).await,
            Route::Transport => transport(&inner, &endpoint, &request, ws, body).await,
        }
    };
    if let Some(cors) = &inner.cors {
        if request.method == Method::OPTIONS {
            cors.apply_preflight(&request.headers, response.headers_mut());
        } else {
            cors.apply(&request.headers, response.headers_mut());
        }
    }
    response
}

async fn negotiate(inner: &ServerInner, endpoint: &Endpoint, request: &Request) -> Response {
    if request.method != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    if let Some(draining) = shutting_down(inner) {
        return draining;
    }
    let context = request.context();
    let identity = match authenticate(endpoint, &context).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    if let Some(full) = server_full(inner).or_else(|| too_many_unstarted(inner)) {
        return full;
    }
    let body = match negotiate::requested_version(context.query_pairs()) {
        Err(error) => negotiate::error_body(&error),
        Ok(version) => {
            let token = if version == 0 {
                TokenKind::SameAsId
            } else {
                TokenKind::Own
            };
            let shared = endpoint.connections.create(inner.options.outbox_max_bytes, token);
            let asked = context
                .query("useStatefulReconnect")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let stateful =
                asked && inner.options.stateful_reconnect && endpoint.transports.contains(&TransportKind::WebSockets);
            {
                let mut state = shared.lock();
                state.stateful = stateful;
                // Every later request of this connection must come from the same user.
                state.identity = identity;
            }
            negotiate::response_body(&negotiate::Negotiated {
                version,
                connection_id: &shared.id,
                connection_token: &shared.token,
                transports: &endpoint.transports,
                stateful_reconnect: stateful,
            })
        }
    };
    let mut response = Response::new(body.into());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn transport(
    inner: &ServerInner,
    endpoint: &Endpoint,
    request: &Request,
    ws: Option<websocket::Upgrade>,
    body: Body,
) -> Response {
    let context = request.context();
    let id = context.query("id").filter(|id| !id.is_empty()).map(str::to_owned);
    if request.method == Method::GET && ws.is_some() && id.is_none() {
        // skipNegotiation: a WebSocket without an id gets a fresh connection.
        if !endpoint.transports.contains(&TransportKind::WebSockets) {
            return not_supported(TransportKind::WebSockets);
        }
        if let Some(refused) = shutting_down(inner).or_else(|| server_full(inner)) {
            return refused;
        }
        let shared = endpoint
            .connections
            .create(inner.options.outbox_max_bytes, TokenKind::Own);
        let response = websocket_upgrade(inner, endpoint, request, &shared, context, ws).await;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            endpoint.connections.remove(&shared.token);
        }
        return response;
    }
    if ![Method::GET, Method::POST, Method::DELETE].contains(&request.method) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let Some(id) = id else {
        return text(StatusCode::BAD_REQUEST, "Connection ID required");
    };
    let Some(shared) = endpoint.connections.get(&id) else {
        return text(StatusCode::NOT_FOUND, "No Connection with that ID");
    };
    match request.method {
        Method::GET => get(inner, endpoint, request, shared, context, ws).await,
        Method::POST => post(inner, endpoint, request, shared, context, body).await,
        _ => delete(endpoint, shared, context).await,
    }
}

/// A GET on the transport URL: a WebSocket upgrade, an event stream, or a long poll (the
/// first one starts the connection and answers at once).
async fn get(
    inner: &ServerInner,
    endpoint: &Endpoint,
    request: &Request,
    shared: Arc<ConnectionShared>,
    context: RequestContext,
    ws: Option<websocket::Upgrade>,
) -> Response {
    let current = shared.lock().transport;
    let wanted = if ws.is_some() {
        TransportKind::WebSockets
    } else if accepts_event_stream(&request.headers) {
        TransportKind::ServerSentEvents
    } else {
        TransportKind::LongPolling
    };
    if !endpoint.transports.contains(&wanted) {
        return not_supported(wanted);
    }
    if current.is_some_and(|t| t != wanted) {
        return text(StatusCode::BAD_REQUEST, "Cannot change transports mid-connection");
    }
    if wanted == TransportKind::WebSockets {
        return websocket_upgrade(inner, endpoint, request, &shared, context, ws).await;
    }
    if wanted == TransportKind::ServerSentEvents {
        if let Some(refused) = cross_origin_refused(inner, endpoint, request) {
            return refused;
        }
    }
    let identity = match authenticate_same_user(endpoint, &shared, &context).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let context = context.without_extensions();
    if wanted == TransportKind::LongPolling && current.is_some() {
        return long_polling::poll(shared, context, inner.options.long_poll_timeout).await;
    }
    match endpoint
        .connections
        .attach(&shared, wanted, context, identity, &endpoint.handler)
    {
        // The first poll starts the connection and answers at once.
        Ok(_) if wanted == TransportKind::LongPolling => long_polling::data(Bytes::new(), TransferFormat::Binary),
        Ok(Attached {
            outbox: Some(outbox), ..
        }) => sse::response(shared, outbox),
        Ok(_) => text(StatusCode::CONFLICT, ""),
        Err(e) => attach_error(e),
    }
}

/// A POST: data for the connection, on Server-Sent Events or Long Polling, started or not
/// (a client may send its handshake before its first poll). One POST per connection is taken
/// at a time; the body is queued whole into the connection's input, and answered then.
/// A POST whose data is lost (413 too large; after `http_post_timeout`, 409 still waiting
/// for its turn, 408 its body too slow, 503 no room in the input) ends the connection's
/// input: the handler finishes after what was queued, and the client sees the connection
/// close, rather than waiting forever for an answer to a message the server never got, or
/// having the rest of a split message joined to unrelated bytes.
async fn post(
    inner: &ServerInner,
    endpoint: &Endpoint,
    request: &Request,
    shared: Arc<ConnectionShared>,
    context: RequestContext,
    body: Body,
) -> Response {
    if shared.lock().transport == Some(TransportKind::WebSockets) {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST requests are not allowed for WebSocket connections.",
        );
    }
    if let Err(response) = authenticate_same_user(endpoint, &shared, &context).await {
        return response;
    }
    let declared = request
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let frame_limit = inner.options.max_frame_size;
    if declared.is_some_and(|length| length > frame_limit as u64) {
        return too_large(endpoint, &shared, frame_limit);
    }
    let deadline = crate::connection::deadline_after(inner.options.http_post_timeout);
    let Ok(_turn) = tokio::time::timeout_at(deadline, shared.posting().lock()).await else {
        // Its data is lost, as for a 413: the connection cannot go on.
        endpoint.connections.end_input(&shared);
        return text(
            StatusCode::CONFLICT,
            "Another POST on this connection is still being received.",
        );
    };
    let limit = post_limit(&inner.options, &shared);
    let body = match tokio::time::timeout_at(deadline, read_body(body, limit)).await {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => return too_large(endpoint, &shared, limit),
        Ok(Err(BodyError::Unreadable)) => return text(StatusCode::BAD_REQUEST, "The request body could not be read."),
        Err(_) => {
            // Its data is lost, as for a 413: the connection cannot go on.
            tracing::debug!(connection = %shared.id, "a POST body came too slowly; ending the connection");
            endpoint.connections.end_input(&shared);
            return text(StatusCode::REQUEST_TIMEOUT, "The request body came too slowly.");
        }
    };
    {
        let mut state = shared.lock();
        if !state.started {
            state.early_bytes += body.len();
        }
    }
    let binary = request
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/octet-stream"));
    let frame = if binary { Frame::Binary(body) } else { Frame::Text(body) };
    transport::post(&endpoint.connections, &shared, frame, deadline).await
}

/// Most bytes the next POST may carry: `max_frame_size`, or before the transport starts
/// (nothing reads the input yet), what is left of `max_message_size` for all of them, so
/// that a negotiated connection costs little however it is used.
fn post_limit(options: &HubOptions, shared: &ConnectionShared) -> usize {
    let state = shared.lock();
    if state.started {
        options.max_frame_size
    } else {
        options
            .max_message_size
            .min(options.max_frame_size)
            .saturating_sub(state.early_bytes)
    }
}

/// 413 for a POST body over its limit (see [`post_limit`]). Its data is lost, so the connection cannot go
/// on: its input ends (the handler finishes, and the client's next poll or its event stream
/// ends; a connection that has not started is forgotten at once).
fn too_large(endpoint: &Endpoint, shared: &ConnectionShared, limit: usize) -> Response {
    tracing::debug!(connection = %shared.id, limit, "a POST body is over max_frame_size; ending the connection");
    endpoint.connections.end_input(shared);
    text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("The request body is larger than {limit} bytes."),
    )
}

/// A DELETE: a long polling client ends its connection.
async fn delete(endpoint: &Endpoint, shared: Arc<ConnectionShared>, context: RequestContext) -> Response {
    if shared.lock().transport != Some(TransportKind::LongPolling) {
        return text(
            StatusCode::BAD_REQUEST,
            "Cannot terminate this connection using the DELETE endpoint.",
        );
    }
    if let Err(response) = authenticate_same_user(endpoint, &shared, &context).await {
        return response;
    }
    long_polling::delete(&endpoint.connections, &shared)
}

/// 503 once the server is shutting down: no new connection is made while it drains.
fn shutting_down(inner: &ServerInner) -> Option<Response> {
    inner
        .shutdown
        .is_cancelled()
        .then(|| text(StatusCode::SERVICE_UNAVAILABLE, "The server is shutting down."))
}

/// 503 when `max_unstarted_connections` connections wait for their transport already.
fn too_many_unstarted(inner: &ServerInner) -> Option<Response> {
    let max = inner.options.max_unstarted_connections?;
    let unstarted: usize = inner.endpoints.iter().map(|e| e.connections.unstarted_len()).sum();
    (unstarted >= max).then(|| {
        tracing::warn!(
            unstarted,
            max,
            "refusing a negotiate: too many connections have not started"
        );
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server has too many connections waiting to start.",
        )
    })
}

/// 503 when the server holds `max_connections` started connections already (an early
/// answer: starting a transport takes the place, see [`crate::connection::ConnectionManager::attach`]).
fn server_full(inner: &ServerInner) -> Option<Response> {
    inner.capacity.is_full().then(|| {
        tracing::warn!(
            open = inner.capacity.started(),
            "refusing a connection: the server is full"
        );
        full()
    })
}

fn full() -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "The server has reached its maximum number of connections.",
    )
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

fn not_supported(transport: TransportKind) -> Response {
    text(
        StatusCode::NOT_FOUND,
        &format!("{transport} transport not supported by this end point type"),
    )
}

/// Why a request body was not taken.
enum BodyError {
    TooLarge,
    Unreadable,
}

async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

async fn websocket_upgrade(
    inner: &ServerInner,
    endpoint: &Endpoint,
    request: &Request,
    shared: &Arc<ConnectionShared>,
    context: RequestContext,
    ws: Option<websocket::Upgrade>,
) -> Response {
    let Some(ws) = ws else {
        return text(StatusCode::BAD_REQUEST, "A WebSocket upgrade was expected.");
    };
    if let Some(refused) = cross_origin_refused(inner, endpoint, request) {
        return refused;
    }
    // A re-attach (stateful reconnect) must come from the connection's user too.
    let identity = match authenticate_same_user(endpoint, shared, &context).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let context = context.without_extensions();
    let started = shared.lock().started;
    let source = if started {
        // A second socket on a live token: with stateful reconnect it replaces the first.
        match endpoint.connections.reattach(shared) {
            Ok(stop) => {
                shared.lock().request = Arc::new(context.with_transport(TransportKind::WebSockets));
                Source::Reattach { stop }
            }
            Err(e) => return attach_error(e),
        }
    } else {
        let attached =
            endpoint
                .connections
                .attach(shared, TransportKind::WebSockets, context, identity, &endpoint.handler);
        match attached {
            Ok(Attached {
                outbox: Some(outbox),
                inbox: Some(inbox),
                handler: Some(handler),
                stop,
            }) => Source::Fresh {
                outbox,
                inbox,
                handler,
                stop,
            },
            Ok(_) => return text(StatusCode::CONFLICT, ""),
            Err(e) => return attach_error(e),
        }
    };
    let limits = WsLimits {
        max_frame_size: inner.options.max_frame_size,
        send_timeout: Duration::from_secs(10),
    };
    let (response, socket) = ws.accept(limits);
    tokio::spawn(websocket::run(socket, shared.clone(), source, limits));
    response
}

fn attach_error(error: AttachError) -> Response {
    match error {
        AttachError::Unknown => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
        AttachError::WrongTransport => text(StatusCode::BAD_REQUEST, "Cannot change transports mid-connection"),
        AttachError::AlreadyAttached => text(StatusCode::CONFLICT, ""),
        AttachError::Full => full(),
    }
}
