//! One HTTP request to a hub endpoint as the handlers see it, whoever accepted it (the warp
//! filter or the tower service): method, headers, query, peer, extensions and a body stream.

use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use warp::reply::Response;

use crate::connection::RequestContext;

/// An error reading a request body (the adapters' body errors, boxed).
pub(super) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A request body as a stream of chunks, read only by the handlers that need it.
pub(super) type Body = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// The address of the peer that sent a request, as a request extension.
///
/// The built-in server ([`HubServer::serve`](crate::HubServer::serve) and friends) inserts it
/// into every request. When another server accepts the sockets (axum, hyper, warp's own),
/// insert it yourself so that [`RequestContext::remote_addr`] knows the peer; with axum,
/// from its `ConnectInfo`:
///
/// ```no_run
/// use axum::extract::{ConnectInfo, Request};
/// use hub_runtime::server::PeerAddr;
/// # use hub_runtime::prelude::*;
/// # struct Chat;
/// # #[hub] impl Chat { fn echo(&self, message: String) -> String { message } }
///
/// # async fn run() -> std::io::Result<()> {
/// let server = HubServer::builder().hub("/chat", Chat).build();
/// let app = axum::Router::new()
///     .nest_service("/hubs", server.into_service())
///     .layer(axum::middleware::map_request(|mut request: Request| async move {
///         let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0);
///         if let Some(addr) = peer {
///             request.extensions_mut().insert(PeerAddr(addr));
///         }
///         request
///     }));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
/// // `ConnectInfo` is there only when served with connect info.
/// axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

pub(super) struct Request {
    pub(super) method: Method,
    pub(super) headers: HeaderMap,
    pub(super) query: String,
    pub(super) remote: Option<SocketAddr>,
    /// Where the client sent the request (the URI's authority or the Host header).
    pub(super) authority: Option<String>,
    /// What outer layers put into the request (an auth layer's claims, …), for
    /// authenticators and hub methods.
    pub(super) extensions: http::Extensions,
}

impl Request {
    /// The request as connections keep it. The headers are copied: the request's own values
    /// share the HTTP read buffer (8 KiB or more), which a long-lived connection would pin.
    pub(super) fn context(&self) -> RequestContext {
        RequestContext::from_request(&self.query, &self.headers, self.remote).with_extensions(self.extensions.clone())
    }
}

/// A plain-text answer (no content type when `body` is empty).
pub(super) fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(body.to_string().into());
    *response.status_mut() = status;
    if !body.is_empty() {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
    }
    response
}
