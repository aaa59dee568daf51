//! The server as a tower [`Service`] and [`Layer`], for axum, hyper and any tower middleware:
//! reads what the handlers need of an `http::Request` and answers through
//! [`routes::respond`](super::routes::respond).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use tower_layer::Layer;
use tower_service::Service;

use super::request::{text, Body, BodyError, PeerAddr, Request};
use super::routes::{self, Resolved};
use super::{HubServer, ServerInner};

/// Every hub of a [`HubServer`] as a tower [`Service`]: made by [`HubServer::into_service`].
///
/// It answers the paths of the mapped hubs (matched case-insensitively, relative to where it
/// is mounted: axum's `nest_service` strips its prefix) and 404 to anything else. Cloning it
/// is cheap; every clone serves the same hubs.
#[derive(Clone)]
pub struct HubService {
    inner: Arc<ServerInner>,
}

/// A response body of a [`HubService`]: a negotiate answer, a long poll, an event stream.
pub struct HubBody(UnsyncBoxBody<Bytes, BodyError>);

impl std::fmt::Debug for HubBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBody").finish_non_exhaustive()
    }
}

/// An empty body: what tower middleware (tower-http's CORS, timeout and auth layers) answers
/// with when it answers itself.
impl Default for HubBody {
    fn default() -> Self {
        HubBody(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }
}

impl http_body::Body for HubBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// The handlers' response with its body boxed as a [`HubBody`].
fn hub_response(response: warp::reply::Response) -> http::Response<HubBody> {
    response.map(|body| HubBody(body.map_err(BodyError::from).boxed_unsync()))
}

impl HubService {
    pub(super) fn new(inner: Arc<ServerInner>) -> Self {
        HubService { inner }
    }

    /// The answer to `request` when one of the hubs serves its path; the request back when
    /// none does.
    fn route<B>(&self, request: http::Request<B>) -> Routed<B>
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BodyError>,
    {
        match routes::resolve(&self.inner, request.uri().path()) {
            Some(resolved) => Routed::Hub(respond(self.inner.clone(), resolved, request)),
            None => Routed::Elsewhere(request),
        }
    }
}

/// Where a request went: to a hub (its answer), or nowhere here (the request, untouched).
#[allow(
    clippy::large_enum_variant,
    reason = "lives for one call on the stack; boxing the request would allocate for every request the app serves"
)]
enum Routed<B> {
    Hub(BoxFuture<'static, http::Response<HubBody>>),
    Elsewhere(http::Request<B>),
}

/// Takes `request` apart into what the handlers read, and answers it.
fn respond<B>(
    inner: Arc<ServerInner>,
    resolved: Resolved,
    request: http::Request<B>,
) -> BoxFuture<'static, http::Response<HubBody>>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BodyError>,
{
    let (mut parts, body) = request.into_parts();
    let upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let remote = parts.extensions.get::<PeerAddr>().map(|PeerAddr(addr)| *addr);
    let authority = parts.uri.authority().map(|a| a.as_str().to_owned()).or_else(|| {
        parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned)
    });
    let request = Request {
        method: parts.method,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        remote,
        authority,
        extensions: parts.extensions,
    };
    let body: Body = Box::pin(http_body_util::BodyDataStream::new(body).map(|chunk| {
        chunk
            .map(|mut data| {
                let len = data.remaining();
                data.copy_to_bytes(len)
            })
            .map_err(Into::into)
    }));
    routes::respond(inner, resolved, request, upgrade, body)
        .map(hub_response)
        .boxed()
}

impl<B> Service<http::Request<B>> for HubService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BodyError>,
{
    type Response = http::Response<HubBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<HubBody>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.route(request) {
            Routed::Hub(answer) => answer.map(Ok).boxed(),
            Routed::Elsewhere(_) => {
                let not_found = hub_response(text(http::StatusCode::NOT_FOUND, ""));
                std::future::ready(Ok(not_found)).boxed()
            }
        }
    }
}

/// A tower [`Layer`] that puts every hub of a [`HubServer`] in front of a service (an axum
/// `Router`, for example): made by [`HubServer::layer`]. Requests for a hub's paths go to the
/// hub; every other request goes on to the wrapped service.
#[derive(Clone)]
pub struct HubLayer {
    hubs: HubService,
}

/// The service a [`HubLayer`] makes: the hubs in front of `S`.
#[derive(Clone)]
pub struct HubMiddleware<S> {
    hubs: HubService,
    next: S,
}

impl<S> Layer<S> for HubLayer {
    type Service = HubMiddleware<S>;

    fn layer(&self, next: S) -> HubMiddleware<S> {
        HubMiddleware {
            hubs: self.hubs.clone(),
            next,
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body of a [`HubMiddleware`]: a hub's or the wrapped service's.
    pub struct EitherBody<B> {
        #[pin]
        body: Either<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = EitherProjection]
    enum Either<B> {
        Hub { #[pin] body: HubBody },
        Next { #[pin] body: B },
    }
}

/// The wrapped service's empty body (for middleware that answers itself).
impl<B: Default> Default for EitherBody<B> {
    fn default() -> Self {
        EitherBody::next(B::default())
    }
}

impl<B> EitherBody<B> {
    fn hub(body: HubBody) -> Self {
        EitherBody {
            body: Either::Hub { body },
        }
    }

    fn next(body: B) -> Self {
        EitherBody {
            body: Either::Next { body },
        }
    }
}

impl<B> http_body::Body for EitherBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.project().body.project() {
            EitherProjection::Hub { body } => body.poll_frame(cx),
            EitherProjection::Next { body } => body.poll_frame(cx).map(|frame| frame.map(|f| f.map_err(Into::into))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Either::Hub { body } => body.is_end_stream(),
            Either::Next { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.body {
            Either::Hub { body } => body.size_hint(),
            Either::Next { body } => body.size_hint(),
        }
    }
}

impl<S, B, ResBody> Service<http::Request<B>> for HubMiddleware<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BodyError>,
{
    type Response = http::Response<EitherBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.next.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        match self.hubs.route(request) {
            Routed::Hub(answer) => answer.map(|r| Ok(r.map(EitherBody::hub))).boxed(),
            Routed::Elsewhere(request) => {
                // The ready service takes the request; its clone stays for the next call.
                let clone = self.next.clone();
                let mut ready = std::mem::replace(&mut self.next, clone);
                ready.call(request).map(|r| r.map(|r| r.map(EitherBody::next))).boxed()
            }
        }
    }
}

impl HubServer {
    /// Every hub of the server as a tower [`Service`], to mount in axum (`nest_service` or
    /// `fallback_service`), serve with hyper, or wrap in tower middleware (tower-http's CORS,
    /// timeout and auth layers work: its bodies have a `Default`).
    /// Paths are relative to where it is mounted: with `nest_service("/api/hubs", …)`, a hub
    /// mapped at `/chat` answers at `/api/hubs/chat`.
    ///
    /// The server's housekeeping (forgetting connections that never start, dropped long
    /// polls) starts with the first request; for the goodbye at shutdown, see
    /// [`HubServer::graceful_shutdown`]. When another server accepts the sockets, insert a
    /// [`PeerAddr`] extension for [`RequestContext::remote_addr`](crate::RequestContext::remote_addr).
    ///
    /// ```no_run
    /// use hub_runtime::prelude::*;
    ///
    /// struct Chat;
    ///
    /// #[hub]
    /// impl Chat {
    ///     fn echo(&self, message: String) -> String {
    ///         message
    ///     }
    /// }
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let server = HubServer::builder().hub("/chat", Chat).build();
    /// let app = axum::Router::new()
    ///     .route("/hello", axum::routing::get(|| async { "hello" }))
    ///     .nest_service("/api/hubs", server.clone().into_service());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async move {
    ///         hub_runtime::server::shutdown_signal().await;
    ///         server.graceful_shutdown().await;
    ///     })
    ///     .await
    /// # }
    /// ```
    pub fn into_service(self) -> HubService {
        HubService::new(self.inner)
    }

    /// Every hub of the server as a tower [`Layer`]: requests for the hubs' paths go to the
    /// hubs, the rest to the service it wraps (see [`HubServer::into_service`] for mounting
    /// under a prefix instead). axum's `Router::layer` wraps the routes and the fallback that
    /// exist when it is called: apply this layer last (a fallback set afterwards would take
    /// the hubs' requests).
    ///
    /// ```no_run
    /// # use hub_runtime::prelude::*;
    /// # struct Chat;
    /// # #[hub] impl Chat { fn echo(&self, message: String) -> String { message } }
    /// # async fn run() -> std::io::Result<()> {
    /// let server = HubServer::builder().hub("/chat", Chat).build();
    /// let app = axum::Router::new()
    ///     .route("/hello", axum::routing::get(|| async { "hello" }))
    ///     .layer(server.layer());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
    /// axum::serve(listener, app).await
    /// # }
    /// ```
    pub fn layer(&self) -> HubLayer {
        HubLayer {
            hubs: HubService::new(self.inner.clone()),
        }
    }
}
