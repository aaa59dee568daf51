//! # Hosting: the built-in server, axum, hyper, tower and warp
//!
//! A [`HubServer`](crate::HubServer) serves itself in one line, or mounts in the server your
//! application already has. Every way serves every transport (WebSockets, Server-Sent Events,
//! Long Polling) and both protocols the same.
//!
//! | You have | Use |
//! |---|---|
//! | nothing yet | [`HubServer::serve`](crate::HubServer::serve) (Ctrl-C and SIGTERM stop it), or [`serve_with`](crate::HubServer::serve_with) beside your own warp routes |
//! | an axum `Router` | [`HubServer::into_service`](crate::HubServer::into_service) with `nest_service` or `fallback_service`; or [`HubServer::layer`](crate::HubServer::layer) in front of the router |
//! | hyper, or any tower middleware stack | [`HubServer::into_service`](crate::HubServer::into_service): a `tower::Service<http::Request<B>>` for any body `B` |
//! | warp | [`HubServer::filter`](crate::HubServer::filter), a `Filter` that composes with `.or(…)` and `warp::path(…)` |
//!
//! ## axum, under a prefix
//!
//! `nest_service` strips its prefix: a hub mapped at `/chat` answers at `/api/hubs/chat`
//! (`/api/hubs/chat/negotiate` and the transport URL). The application's routes and state
//! live beside it as usual:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use axum::extract::State;
//! use hub_runtime::prelude::*;
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {
//!     fn echo(&self, message: String) -> String {
//!         message
//!     }
//! }
//!
//! struct Stats {
//!     server: HubServer,
//! }
//!
//! async fn stats(State(stats): State<Arc<Stats>>) -> String {
//!     format!("{} connections", stats.server.connection_count())
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let server = HubServer::builder().hub("/chat", Chat).build();
//! let app = axum::Router::new()
//!     .route("/stats", axum::routing::get(stats))
//!     .with_state(Arc::new(Stats { server: server.clone() }))
//!     .nest_service("/api/hubs", server.clone().into_service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         hub_runtime::server::shutdown_signal().await;
//!         // Every hub connection gets its Close message first; then axum stops.
//!         server.graceful_shutdown().await;
//!     })
//!     .await
//! # }
//! ```
//!
//! The hub's own part of the path matches in any case (`/api/hubs/CHAT` too), as in ASP.NET
//! Core; axum's prefix matches exactly. With [`HubServer::layer`](crate::HubServer::layer)
//! instead, the hubs answer at their mapped paths in front of the router, and everything else
//! goes on to the router. axum's `Router::layer` wraps only the routes and the fallback that
//! exist when it is called, so add the hub layer last.
//!
//! ## hyper, without a framework
//!
//! ```no_run
//! # use hub_runtime::prelude::*;
//! # struct Chat;
//! # #[hub] impl Chat { fn echo(&self, message: String) -> String { message } }
//! use hub_runtime::server::PeerAddr;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::server::conn::auto::Builder;
//! use hyper_util::service::TowerToHyperService;
//!
//! # async fn run() -> std::io::Result<()> {
//! let hubs = HubServer::builder().hub("/chat", Chat).build().into_service();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! loop {
//!     let (socket, peer) = listener.accept().await?;
//!     let hubs = hubs.clone();
//!     // The peer's address, for `RequestContext::remote_addr`.
//!     let service = tower::ServiceBuilder::new()
//!         .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
//!             request.extensions_mut().insert(PeerAddr(peer));
//!             request
//!         })
//!         .service(hubs);
//!     tokio::spawn(async move {
//!         // WebSockets need the connection to allow upgrades.
//!         let served = Builder::new(TokioExecutor::new())
//!             .serve_connection_with_upgrades(TokioIo::new(socket), TowerToHyperService::new(service))
//!             .await;
//!         if let Err(error) = served {
//!             eprintln!("connection ended: {error}");
//!         }
//!     });
//! }
//! # }
//! ```
//!
//! ## warp, under a path
//!
//! [`HubServer::filter`](crate::HubServer::filter) matches what is left of the path after
//! the filters before it, so `warp::path("api").and(server.filter())` serves `/chat` at
//! `/api/chat`:
//!
//! ```no_run
//! # use hub_runtime::prelude::*;
//! # struct Chat;
//! # #[hub] impl Chat { fn echo(&self, message: String) -> String { message } }
//! use warp::Filter;
//!
//! # async fn run() {
//! let server = HubServer::builder().hub("/chat", Chat).build();
//! let routes = warp::path("api").and(server.filter()).or(warp::path("hello").map(|| "hello"));
//! warp::serve(routes).run(([127, 0, 0, 1], 5000)).await;
//! # }
//! ```
//!
//! ## What the server does on its own, however it is served
//!
//! - **Housekeeping** starts with the first request: connections that negotiated but never
//!   started, long polling clients that stopped polling and stateful WebSockets that never
//!   came back are forgotten after their timeouts ([`HubOptions`](crate::HubOptions)'s
//!   `unstarted_timeout`, `disconnect_timeout`, `reconnect_grace`). It stops when the last
//!   clone of the server is dropped.
//! - **The goodbye at shutdown** is [`HubServer::graceful_shutdown`](crate::HubServer::graceful_shutdown):
//!   every connection gets a Close message (reconnect allowed), new ones are refused with 503,
//!   and what is still open after `shutdown_drain` is aborted; it returns once every
//!   connection ended or the drain time passed. The built-in server calls it on its shutdown
//!   signal; under another host, call it before the host's own graceful shutdown, which
//!   waits for open requests (long polls, event streams) but not for upgraded WebSockets: a
//!   process that exits without it cuts WebSocket clients off without a Close message.
//!
//! ## Joining an application's authentication
//!
//! An outer tower layer (a session cookie check, an API gateway's header) can put what it
//! learned into the request's extensions. The endpoint's authenticator reads them through
//! [`RequestContext::extensions`](crate::RequestContext::extensions) and turns them into the
//! connection's [`Identity`](crate::Identity), which hub methods see (`cx.identity()`,
//! `cx.user_id()`). The connection itself does not keep the extensions (hosts put large
//! values there, such as the request's URI):
//!
//! ```
//! use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
//!
//! /// What the application's own auth layer inserts.
//! #[derive(Clone)]
//! struct SignedIn {
//!     user_id: String,
//! }
//!
//! fn from_app_session(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
//!     match request.extensions().get::<SignedIn>() {
//!         Some(session) => Ok(Some(Identity::user(session.user_id.clone()))),
//!         None => Err(AuthError::new("not signed in")),
//!     }
//! }
//!
//! let endpoint = EndpointOptions::new().authenticator(from_app_session);
//! # let _ = endpoint;
//! ```
//!
//! Extensions reach the hub only through the tower service: warp's filters cannot hand them
//! over.
//!
//! ## Traps
//!
//! - **Timeouts shorter than a long poll.** A long poll waits up to
//!   [`HubOptions::long_poll_timeout`](crate::HubOptions::long_poll_timeout) (90 s) for data.
//!   A tower `TimeoutLayer` (or a proxy timeout) shorter than that fails every idle long
//!   poll, and Long Polling clients reconnect in a loop. Apply the timeout to the
//!   application's routes only (`Router::route_layer` before nesting the hubs), or lower
//!   `long_poll_timeout` below it.
//! - **CORS and WebSockets.** tower-http's `CorsLayer` adds headers to HTTP responses;
//!   browsers do not ask before opening a WebSocket, and the layer cannot refuse one from a
//!   foreign origin. Configure origins on the hub server
//!   ([`HubServerBuilder::cors`](crate::HubServerBuilder::cors)): hub answers preflights and
//!   adds the CORS headers for those origins, and refuses a browser's WebSocket upgrade or
//!   event stream from any other origin. Keep tower-http's `CorsLayer` off the hub routes, or
//!   give it the same origins.
//! - **The peer's address.** Only the built-in server knows the socket; under axum or hyper,
//!   insert a [`PeerAddr`](crate::server::PeerAddr) extension (from axum's `ConnectInfo`, or
//!   the accept loop as above), or `remote_addr()` is `None`.
//! - **WebSockets over HTTP/2.** axum's server offers WebSockets over HTTP/2 (extended
//!   CONNECT); hub serves WebSockets over HTTP/1.1 only and answers such a CONNECT with 405,
//!   and the official clients then fall back to Server-Sent Events or Long Polling. Browsers
//!   speak HTTP/2 only over TLS, so this matters when TLS ends in the Rust process; a proxy
//!   that talks HTTP/1.1 to the application keeps WebSockets.
//! - **The built-in server's own limits.** `http_header_read_timeout` and `http_write_timeout`
//!   ([`HubOptions`](crate::HubOptions)) guard the built-in server's sockets; under another
//!   host, that host's settings (or a proxy's) take their place.
//! - **warp's `path!`.** `warp::path!("api")` ends the path (it adds `warp::path::end()`), so
//!   nothing under it reaches the hubs: use `warp::path("api").and(server.filter())`.
//! - **One server, several mounts.** Clones of a `HubServer` share everything: mounting the
//!   same server twice serves the same hubs, groups and connections at two prefixes.
