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
use crate::connection::{AttachError, RequestContext, TransportKind};
use crate::transport::websocket::{self, WsLimits};

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
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain"),
        );
    }
    response
}

fn unauthorized() -> Response {
    text(StatusCode::UNAUTHORIZED, "")
}

struct Request {
    method: Method,
    headers: HeaderMap,
    query: String,
    remote: Option<SocketAddr>,
}

impl Request {
    fn context(&self) -> RequestContext {
        RequestContext::new(&self.query, self.headers.clone(), self.remote)
    }
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
    let ws = warp::ws().map(Some).or(warp::any().map(|| None)).unify();
    let inner_for_handler = inner.clone();
    routed
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(query)
        .and(warp::addr::remote())
        .and(ws)
        .then(
            move |(endpoint, route): (Arc<Endpoint>, Route), method, headers, query, remote, ws| {
                let inner = inner_for_handler.clone();
                async move {
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
                            Route::Transport => transport(&inner, &endpoint, &request, ws).await,
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
    if let Err(e) = endpoint.authenticator.authenticate(&context).await {
        tracing::debug!(path = %endpoint.path, reason = %e.reason, "negotiate refused");
        return unauthorized();
    }
    let body = match negotiate::requested_version(context.query_pairs()) {
        Err(error) => negotiate::error_body(&error),
        Ok(version) => {
            let shared = endpoint
                .connections
                .create(inner.options.outbox_capacity, version == 0);
            negotiate::response_body(version, &shared.id, &shared.token, &endpoint.transports)
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
    ws: Option<warp::ws::Ws>,
) -> Response {
    let context = request.context();
    let id = context
        .query("id")
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    match (&request.method, ws) {
        (&Method::GET, Some(ws)) => {
            if !endpoint.transports.contains(&TransportKind::WebSockets) {
                return text(
                    StatusCode::NOT_FOUND,
                    "WebSockets transport not supported by this end point type",
                );
            }
            let shared = match &id {
                // skipNegotiation: a WebSocket without an id gets a fresh connection.
                None => endpoint
                    .connections
                    .create(inner.options.outbox_capacity, false),
                Some(id) => match endpoint.connections.get(id) {
                    Some(shared) => shared,
                    None => return text(StatusCode::NOT_FOUND, "No Connection with that ID"),
                },
            };
            let identity = match endpoint.authenticator.authenticate(&context).await {
                Ok(identity) => identity.map(Arc::new),
                Err(e) => {
                    tracing::debug!(path = %endpoint.path, reason = %e.reason, "websocket refused");
                    if id.is_none() {
                        endpoint.connections.remove(&shared.token);
                    }
                    return unauthorized();
                }
            };
            let attached = endpoint.connections.attach(
                &shared,
                TransportKind::WebSockets,
                context,
                identity,
                &endpoint.handler,
            );
            let (outbox, inbox) = match attached {
                Ok(pair) => pair,
                Err(e) => return attach_error(e),
            };
            let limits = WsLimits {
                max_frame_size: inner.options.max_frame_size,
                send_timeout: Duration::from_secs(10),
            };
            let reply = websocket::configure(ws, limits)
                .on_upgrade(move |socket| websocket::run(socket, shared, outbox, inbox, limits));
            warp::Reply::into_response(reply)
        }
        (&Method::GET, None) | (&Method::POST, _) | (&Method::DELETE, _) => {
            let Some(id) = id else {
                return text(StatusCode::BAD_REQUEST, "Connection ID required");
            };
            let Some(shared) = endpoint.connections.get(&id) else {
                return text(StatusCode::NOT_FOUND, "No Connection with that ID");
            };
            let current = shared.state.lock().map(|s| s.transport).unwrap_or(None);
            match request.method {
                Method::POST if current == Some(TransportKind::WebSockets) => text(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "POST requests are not allowed for WebSocket connections.",
                ),
                Method::DELETE => text(
                    StatusCode::BAD_REQUEST,
                    "Cannot terminate this connection using the DELETE endpoint.",
                ),
                Method::GET if current.is_some() => text(
                    StatusCode::BAD_REQUEST,
                    "Cannot change transports mid-connection",
                ),
                _ => {
                    let wanted = if request.method == Method::GET
                        && request
                            .headers
                            .get(http::header::ACCEPT)
                            .and_then(|v| v.to_str().ok())
                            == Some("text/event-stream")
                    {
                        TransportKind::ServerSentEvents
                    } else {
                        TransportKind::LongPolling
                    };
                    text(
                        StatusCode::NOT_FOUND,
                        &format!("{wanted} transport not supported by this end point type"),
                    )
                }
            }
        }
        _ => text(StatusCode::METHOD_NOT_ALLOWED, ""),
    }
}

fn attach_error(error: AttachError) -> Response {
    match error {
        AttachError::Unknown => text(StatusCode::NOT_FOUND, "No Connection with that ID"),
        AttachError::WrongTransport => text(
            StatusCode::BAD_REQUEST,
            "Cannot change transports mid-connection",
        ),
        AttachError::AlreadyAttached => text(StatusCode::CONFLICT, ""),
    }
}
