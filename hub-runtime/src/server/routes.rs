//! HTTP routing for mapped endpoints: negotiate, the transport URL, CORS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::Filter;

use super::{Endpoint, ServerInner};
use crate::connection::negotiate;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::auth::{self, Identity};
use crate::connection::{AttachError, Attached, ConnectionShared, Frame, RequestContext, TransportKind};
use crate::transport::websocket::{self, Source, WsLimits};
use crate::transport::{self, long_polling, sse};

enum Route {
    Negotiate,
    Transport,
}

fn resolve(inner: &ServerInner, path: &str) -> Option<(Arc<Endpoint>, Route)> {
    let lower = path.trim_end_matches('/').to_lowercase();
    for endpoint in &inner.endpoints {
        if lower == endpoint.path {
            return Some((endpoint.clone(), Route::Transport));
        }
        if let Some(rest) = lower.strip_prefix(endpoint.path.as_str()) {
            if rest == "/negotiate" {
                return Some((endpoint.clone(), Route::Negotiate));
            }
        }
    }
    None
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(body.to_string().into());
    *response.status_mut() = status;
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    }
    response
}

/// 401 with an empty body: the official clients then show the reason phrase (`Unauthorized`).
fn unauthorized() -> Response {
    text(StatusCode::UNAUTHORIZED, "")
}

/// 403 with an empty body: authenticated, but the hub's `#[hub(authorize ...)]` says no.
fn forbidden() -> Response {
    text(StatusCode::FORBIDDEN, "")
}

type Body = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, warp::Error>> + Send>>;

struct Request {
    method: Method,
    headers: HeaderMap,
    query: String,
    remote: Option<SocketAddr>,
}

impl Request {
    /// The request as connections keep it. The headers are copied: the request's own values
    /// share the HTTP read buffer (8 KiB or more), which a long-lived connection would pin.
    fn context(&self) -> RequestContext {
        RequestContext::from_request(&self.query, &self.headers, self.remote)
    }
}

/// The request body as a stream of `Bytes`, read only by the handlers that need it.
fn body_stream() -> impl Filter<Extract = (Body,), Error = warp::Rejection> + Clone {
    fn boxed<S, B>(stream: S) -> Body
    where
        S: futures_util::Stream<Item = Result<B, warp::Error>> + Send + 'static,
        B: warp::Buf,
    {
        Box::pin(stream.map(|chunk| {
            chunk.map(|mut buf| {
                let len = buf.remaining();
                buf.copy_to_bytes(len)
            })
        }))
    }
    warp::body::stream().map(boxed)
}

/// The server's routes as one filter.
pub(crate) fn filter(inner: Arc<ServerInner>) -> BoxedFilter<(Response,)> {
    let routed = {
        let inner = inner.clone();
        warp::path::full().and_then(move |path: warp::path::FullPath| {
            let found = resolve(&inner, path.as_str());
            async move { found.ok_or_else(warp::reject::not_found) }
        })
    };
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    let upgrade = warp::ext::optional::<hyper::upgrade::OnUpgrade>();
    let inner_for_handler = inner.clone();
    routed
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::addr::remote())
        .and(upgrade)
        .and(body_stream())
        .then(
            move |(endpoint, route): (Arc<Endpoint>, Route), method, headers, query, remote, upgrade, body| {
                let inner = inner_for_handler.clone();
                async move {
                    let ws = websocket::Upgrade::from_request(&method, &headers, upgrade);
                    let request = Request {
                        method,
                        headers,
                        query,
                        remote,
                    };
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
            },
        )
        .boxed()
}

async fn negotiate(inner: &ServerInner, endpoint: &Endpoint, request: &Request) -> Response {
    if request.method != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "");
    }
    let context = request.context();
    if let Err(response) = authenticate(endpoint, &context).await {
        return response;
    }
    if let Some(full) = server_full(inner) {
        return full;
    }
    let body = match negotiate::requested_version(context.query_pairs()) {
        Err(error) => negotiate::error_body(&error),
        Ok(version) => {
            let shared = endpoint.connections.create(inner.options.outbox_capacity, version == 0);
            let asked = context
                .query("useStatefulReconnect")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let stateful =
                asked && inner.options.stateful_reconnect && endpoint.transports.contains(&TransportKind::WebSockets);
            shared.lock().stateful = stateful;
            negotiate::response_body(version, &shared.id, &shared.token, &endpoint.transports, stateful)
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
        if let Some(full) = server_full(inner) {
            return full;
        }
        let shared = endpoint.connections.create(inner.options.outbox_capacity, false);
        let response = websocket_upgrade(inner, endpoint, &shared, context, ws).await;
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
    let current = shared.lock().transport;
    match request.method {
        Method::GET => {
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
            match wanted {
                TransportKind::WebSockets => websocket_upgrade(inner, endpoint, &shared, context, ws).await,
                TransportKind::ServerSentEvents => {
                    let identity = match authenticate(endpoint, &context).await {
                        Ok(identity) => identity,
                        Err(response) => return response,
                    };
                    let attached = endpoint.connections.attach(
                        &shared,
                        TransportKind::ServerSentEvents,
                        context,
                        identity,
                        &endpoint.handler,
                    );
                    match attached {
                        Ok(attached) => match attached.outbox {
                            Some(outbox) => sse::response(shared, outbox),
                            None => text(StatusCode::CONFLICT, ""),
                        },
                        Err(e) => attach_error(e),
                    }
                }
                TransportKind::LongPolling => {
                    let identity = match authenticate(endpoint, &context).await {
                        Ok(identity) => identity,
                        Err(response) => return response,
                    };
                    if current.is_none() {
                        // The first poll starts the connection and answers at once.
                        return match endpoint.connections.attach(
                            &shared,
                            TransportKind::LongPolling,
                            context,
                            identity,
                            &endpoint.handler,
                        ) {
                            Ok(_) => long_polling::data(Bytes::new(), true),
                            Err(e) => attach_error(e),
                        };
                    }
                    long_polling::poll(shared, context, inner.options.long_poll_timeout).await
                }
            }
        }
        Method::POST => {
            match current {
                Some(TransportKind::WebSockets) => {
                    return text(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "POST requests are not allowed for WebSocket connections.",
                    )
                }
                None => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "The connection has not started: connect a transport first.",
                    )
                }
                Some(_) => {}
            }
            if let Err(response) = authenticate(endpoint, &context).await {
                return response;
            }
            let body = match read_body(body, inner.options.max_frame_size).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let binary = request
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/octet-stream"));
            let frame = if binary { Frame::Binary(body) } else { Frame::Text(body) };
            transport::post(&shared, frame).await
        }
        _ => {
            if current != Some(TransportKind::LongPolling) {
                return text(
                    StatusCode::BAD_REQUEST,
                    "Cannot terminate this connection using the DELETE endpoint.",
                );
            }
            long_polling::delete(&shared)
        }
    }
}

/// 503 when the server holds `max_connections` already.
fn server_full(inner: &ServerInner) -> Option<Response> {
    let max = inner.options.max_connections?;
    let open: usize = inner.endpoints.iter().map(|e| e.connections.len()).sum();
    (open >= max).then(|| {
        tracing::warn!(open, max, "refusing a connection: the server is full");
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server has reached its maximum number of connections.",
        )
    })
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

/// Runs the endpoint's authenticator, then the hub's `#[hub(authorize ...)]` requirements:
/// a refusal or a missing identity where one is required is 401, an identity that falls
/// short is 403.
async fn authenticate(endpoint: &Endpoint, context: &RequestContext) -> Result<Option<Arc<Identity>>, Response> {
    let identity = match endpoint.authenticator.authenticate(context).await {
        Ok(identity) => identity,
        Err(e) => {
            tracing::debug!(path = %endpoint.path, reason = %e.reason, "request refused by the authenticator");
            return Err(unauthorized());
        }
    };
    if !auth::authorized(endpoint.authorize, identity.as_ref()) {
        return Err(match identity {
            None => {
                tracing::debug!(path = %endpoint.path, "request refused: the hub requires an authenticated user");
                unauthorized()
            }
            Some(_) => {
                tracing::debug!(path = %endpoint.path, "request refused: the user does not meet the hub's requirements");
                forbidden()
            }
        });
    }
    Ok(identity.map(Arc::new))
}

async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, Response> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| text(StatusCode::BAD_REQUEST, "The request body could not be read."))?;
        if out.len() + chunk.len() > limit {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The request body is larger than {limit} bytes."),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

async fn websocket_upgrade(
    inner: &ServerInner,
    endpoint: &Endpoint,
    shared: &Arc<ConnectionShared>,
    context: RequestContext,
    ws: Option<websocket::Upgrade>,
) -> Response {
    let Some(ws) = ws else {
        return text(StatusCode::BAD_REQUEST, "A WebSocket upgrade was expected.");
    };
    // Browsers send the page's origin on the upgrade; CORS does not apply to WebSockets, so
    // the same allow list is checked here.
    if let (Some(cors), Some(origin)) = (&inner.cors, context.header("origin")) {
        if !cors.allows(origin) {
            tracing::debug!(path = %endpoint.path, %origin, "websocket from a disallowed origin");
            return text(StatusCode::FORBIDDEN, "Origin not allowed.");
        }
    }
    let identity = match authenticate(endpoint, &context).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
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
    }
}
