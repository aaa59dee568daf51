//! # Deploying
//!
//! What changes between a server on your laptop and one in production: the load balancer or
//! reverse proxy in front of it, TLS, metrics and health checks, shutting down without
//! dropping clients, and the limits that keep one client from taking the server down.
//!
//! ## Load balancers and sticky sessions
//!
//! A SignalR client normally starts with a negotiate request, then opens its transport with the
//! connection token it got. With WebSockets that is one more request; with Server-Sent Events
//! and Long Polling every message the client sends is a POST, and Long Polling makes a new GET
//! for each batch it receives. A connection lives on the server that answered negotiate
//! (the [`scale_out`](super::scale_out) chapter lists what that server holds), and any other
//! server answers its requests with 404 "No Connection with that ID".
//!
//! With more than one server behind a load balancer, pick one of two ways:
//!
//! - **Sticky sessions.** The load balancer sends every request of a client to the same server,
//!   by a cookie it sets or by a hash of the client's address (nginx `ip_hash`, HAProxy
//!   `balance source` or a cookie, a cloud load balancer's "session affinity"). Every
//!   transport works, and so does stateful reconnect, whose new WebSocket must reach the
//!   server that holds the connection.
//! - **WebSockets only, without negotiate.** A client that skips negotiate makes one HTTP
//!   request per connection, the WebSocket upgrade, and the socket stays where it landed:
//!   no stickiness needed. Stateful reconnect needs negotiate, so it is not available this
//!   way. In the JavaScript client:
//!
//! ```js
//! const connection = new signalR.HubConnectionBuilder()
//!     .withUrl("/chat", { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets })
//!     .withAutomaticReconnect()
//!     .build();
//! ```
//!
//! The server can refuse the other transports, so no client falls back to them unnoticed:
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//! use hub_runtime::{EndpointOptions, TransportKind};
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {}
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let websockets_only = EndpointOptions::new()
//!         .disable(TransportKind::ServerSentEvents)
//!         .disable(TransportKind::LongPolling);
//!     HubServer::builder()
//!         .hub_with("/chat", Chat, websockets_only)
//!         .build()
//!         .serve("0.0.0.0:5000")
//!         .await
//! }
//! ```
//!
//! Either way, join the servers with a backplane (see [`scale_out`](super::scale_out)) so that
//! a message for all clients, a group or a user reaches the clients of every server.
//!
//! ## Reverse proxies and WebSockets
//!
//! A proxy in front of hub must pass the WebSocket upgrade on, and must not time out
//! connections that hub keeps open on purpose. For nginx:
//!
//! ```nginx
//! map $http_upgrade $connection_upgrade {
//!     default upgrade;
//!     ''      close;
//! }
//!
//! upstream hub_servers {
//!     ip_hash;                      # sticky sessions (not needed for WebSockets-only clients)
//!     server 10.0.0.1:5000;
//!     server 10.0.0.2:5000;
//! }
//!
//! server {
//!     listen 443 ssl;
//!     # ssl_certificate, ssl_certificate_key ...
//!
//!     location /chat {
//!         proxy_pass http://hub_servers;
//!         proxy_http_version 1.1;   # the upgrade needs HTTP/1.1 to the server
//!         proxy_set_header Upgrade $http_upgrade;
//!         proxy_set_header Connection $connection_upgrade;
//!         proxy_set_header Host $host;
//!         proxy_read_timeout 120s;  # above long_poll_timeout (90 s) and keep_alive_interval (15 s)
//!         proxy_buffering off;      # Server-Sent Events reach the client at once
//!     }
//! }
//! ```
//!
//! The timeouts that matter:
//!
//! - hub sends a Ping on WebSockets and Server-Sent Events after `keep_alive_interval` (15 s)
//!   of silence, and clients ping too, so a proxy's idle or read timeout longer than that never
//!   fires on a healthy connection.
//! - A long poll waits up to `long_poll_timeout` (90 s) for data. nginx's default
//!   `proxy_read_timeout` (60 s), like many load balancers' default idle timeout, is shorter:
//!   raise the proxy's timeout above 90 s, or lower `long_poll_timeout` below the proxy's.
//!
//! Behind a proxy, `RequestContext::remote_addr` is the proxy's address; the client's address
//! is in whatever header your proxy sets (`X-Forwarded-For`, `Forwarded`), which an
//! authenticator can read from `RequestContext::headers`.
//!
//! ## TLS
//!
//! Terminating TLS at the proxy or load balancer is the usual setup: it holds the certificates,
//! and hub serves plain HTTP on the private network. Browsers then connect with `https://` and
//! `wss://` to the proxy.
//!
//! hub can also serve HTTPS and WSS itself with the `tls` feature: `TlsConfig::from_pem_files`
//! reads a PEM certificate chain and its private key, and `HubServer::serve_tls_with` serves
//! with them (rustls, HTTP/1.1).
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//! use hub_runtime::server::{bind, shutdown_signal};
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {}
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let server = HubServer::builder().hub("/chat", Chat).build();
//!     let (listener, _) = bind("0.0.0.0:443").await?;
//!     let routes = server.filter();
//!     #[cfg(feature = "tls")]
//!     {
//!         let tls = TlsConfig::from_pem_files("/etc/hub/fullchain.pem", "/etc/hub/key.pem")?;
//!         server.serve_tls_with(listener, tls, routes, shutdown_signal()).await;
//!     }
//!     #[cfg(not(feature = "tls"))]
//!     server.serve_with(listener, routes, shutdown_signal()).await;
//!     Ok(())
//! }
//! ```
//!
//! The files are read once, by `from_pem_files`: to use a renewed certificate, restart the
//! server (clients reconnect, see [graceful shutdown](#graceful-shutdown)).
//!
//! ## Metrics and health
//!
//! With the `metrics` feature, hub counts connections, messages, errors, slow consumers, panics
//! and backplane failures through the [`metrics`](https://docs.rs/metrics) facade; the
//! [`observability`](crate::observability) module lists every name and label. Any recorder
//! collects them. Install it before `build()`, which registers the counters.
//!
//! For health checks, [`HubServer`](crate::HubServer) tells how many connections are open on
//! this server (`connection_count`; `group_count` and `user_count` too) and whether it is
//! shutting down (`is_stopping`). A health endpoint that answers 503 while the server stops
//! lets the load balancer send new clients elsewhere.
//!
//! The server's routes are a warp filter, so `/metrics` and `/health` are two more routes
//! beside it. This is what the repository's examples serve (with Prometheus, through the
//! `metrics-exporter-prometheus` crate):
//!
//! ```no_run
//! use hub_runtime::prelude::*;
//! use hub_runtime::server::{bind, shutdown_signal};
//! use warp::http::StatusCode;
//! use warp::Filter;
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {}
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Before `build()`: the server registers its counters when it is built.
//!     let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
//!     let server = HubServer::builder().hub("/chat", Chat).build();
//!
//!     let metrics = warp::get()
//!         .and(warp::path!("metrics"))
//!         .map(move || prometheus.render());
//!     let health = {
//!         let server = server.clone();
//!         warp::get().and(warp::path!("health")).map(move || {
//!             let (status, code) = if server.is_stopping() {
//!                 ("stopping", StatusCode::SERVICE_UNAVAILABLE)
//!             } else {
//!                 ("ok", StatusCode::OK)
//!             };
//!             let body = format!(r#"{{"status":"{status}","connections":{}}}"#, server.connection_count());
//!             warp::reply::with_status(body, code)
//!         })
//!     };
//!
//!     let routes = server.filter().or(metrics).or(health);
//!     let (listener, _) = bind("0.0.0.0:5000").await?;
//!     server.serve_with(listener, routes, shutdown_signal()).await;
//!     Ok(())
//! }
//! ```
//!
//! Counts are per server, also with a backplane; sum them over the fleet in your monitoring.
//!
//! ## Graceful shutdown
//!
//! `HubServer::serve` stops on Ctrl-C or SIGTERM (the future
//! [`shutdown_signal`](crate::server::shutdown_signal)); `serve_with` and `serve_tls_with` stop
//! when the future you pass resolves, and [`HubServer::shutdown`](crate::HubServer::shutdown)
//! starts the same from anywhere (a clone of the server). Then:
//!
//! 1. `is_stopping` turns true, so a health check like the one above answers 503, and new
//!    connections (negotiate, or a WebSocket without negotiate) are refused with 503;
//! 2. every hub connection gets a Close message that allows reconnecting: the official clients
//!    with automatic reconnect (`withAutomaticReconnect()`) connect again, through the load
//!    balancer, to a server that is still running;
//! 3. connections get up to [`HubOptions::shutdown_drain`](crate::HubOptions::shutdown_drain)
//!    (5 s) to close, then those left are cut; open HTTP requests get as long again to finish,
//!    and the server stops.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use hub_runtime::prelude::*;
//! use hub_runtime::server::{bind, shutdown_signal};
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {}
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let options = HubOptions { shutdown_drain: Duration::from_secs(10), ..HubOptions::default() };
//!     let server = HubServer::builder().options(options).hub("/chat", Chat).build();
//!
//!     // Stop on Ctrl-C or SIGTERM, or after an hour, whichever comes first.
//!     let stopper = server.clone();
//!     tokio::spawn(async move {
//!         tokio::time::sleep(Duration::from_secs(3600)).await;
//!         stopper.shutdown();
//!     });
//!
//!     let (listener, _) = bind("0.0.0.0:5000").await?;
//!     let routes = server.filter();
//!     server.serve_with(listener, routes, shutdown_signal()).await;
//!     Ok(())
//! }
//! ```
//!
//! Give the process more time than that to exit before it is killed: an orchestrator's grace
//! period (Kubernetes' `terminationGracePeriodSeconds`, 30 s by default) should exceed twice
//! `shutdown_drain`.
//!
//! ## Limits worth setting
//!
//! The defaults of [`HubOptions`](crate::HubOptions) are the reference server's, and most
//! limits are already on. What to look at before going live:
//!
//! | option | default | why change it |
//! |---|---|---|
//! | `detailed_errors` | off | keep it off: with it, internal error messages reach clients |
//! | `max_connections` | unlimited | cap what one server holds (503 beyond), so a flood cannot exhaust its memory or file descriptors; size it from a load test |
//! | `max_connections_per_user` | unlimited | one user (by the authenticator's user id) cannot take every slot |
//! | `max_message_size` | 32 KiB | raise it only for methods that take large arguments; a message above it closes the connection |
//! | `max_frame_size` | 1 MiB | bounds one WebSocket frame or request body (many messages) |
//! | `max_invocations_per_second` | unlimited | a per-connection rate: calls beyond it fail |
//! | `max_unstarted_connections` / `unstarted_timeout` | 10,000 / 10 s | bound negotiates that never start a transport |
//! | `handshake_timeout` | 15 s | how long a socket may sit before its handshake |
//! | `keep_alive_interval` / `client_timeout` | 15 s / 30 s | keep the ping interval below your proxy's idle timeout; `client_timeout` about twice the clients' own ping interval |
//! | `long_poll_timeout` | 90 s | below your proxy's read timeout |
//! | `http_header_read_timeout` / `http_write_timeout` | 30 s / 30 s | the built-in server drops slow or stalled sockets (slowloris) |
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use hub_runtime::prelude::*;
//!
//! struct Chat;
//!
//! #[hub]
//! impl Chat {}
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let options = HubOptions {
//!         max_connections: Some(50_000),
//!         max_connections_per_user: Some(10),
//!         max_message_size: 64 * 1024,
//!         max_invocations_per_second: Some(50),
//!         long_poll_timeout: Duration::from_secs(50), // behind a proxy with a 60 s read timeout
//!         ..HubOptions::default()
//!     };
//!     HubServer::builder().options(options).hub("/chat", Chat).build().serve("0.0.0.0:5000").await
//! }
//! ```
//!
//! The field docs of `HubOptions` list every limit, and what a client sees beyond it.
//!
//! ## Hosting inside axum or tower
//!
//! To serve hubs inside an axum or hyper application, next to its own routes and behind its
//! tower middleware, see the guide's [hosting](super::hosting) chapter.
