//! Hosting a hub server in other servers: the tower service under axum (nested under a prefix,
//! and as a layer in front of an app's routes), the warp filter under a path prefix and
//! served by warp itself, with housekeeping and the goodbye at shutdown working in each, an
//! outer layer's request extensions reaching the authenticator, and the peer's address.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{eventually, http, within, Client, RS};
use hub_runtime::prelude::*;
use hub_runtime::server::PeerAddr;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use warp::Filter;

struct Echo;

#[hub]
impl Echo {
    fn echo(&self, message: String) -> String {
        message
    }

    fn whoami(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.user_id().map(str::to_owned)
    }

    fn peer(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.request().remote_addr().map(|a| a.ip().to_string())
    }
}

/// Timeouts short enough for a test to see the sweeper at work.
fn short_timeouts() -> HubOptions {
    HubOptions {
        disconnect_timeout: Duration::from_secs(1),
        unstarted_timeout: Duration::from_secs(1),
        shutdown_drain: Duration::from_secs(2),
        ..Default::default()
    }
}

fn echo_server() -> HubServer {
    HubServer::builder()
        .options(short_timeouts())
        .hub("/echo", Echo)
        .build()
}

/// Serves `app` with axum on a loopback port until `stop` fires; the task ends once axum's
/// graceful shutdown finished.
async fn serve_axum(
    app: axum::Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(stop)
            .await
            .expect("axum serves");
    });
    (addr, task)
}

/// Serves `routes` with warp's own server on a loopback port.
async fn serve_warp<F>(routes: F) -> SocketAddr
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    addr
}

/// A negotiate for `path` (version 1); returns the connection token.
async fn negotiate(addr: SocketAddr, path: &str) -> String {
    let response = http(addr, "POST", &format!("{path}/negotiate?negotiateVersion=1"), &[], "").await;
    assert_eq!(response.status, 200, "negotiate: {response:?}");
    response.json()["connectionToken"].as_str().expect("a token").to_owned()
}

/// Starts a long polling connection at `path` and completes its handshake; then polls no more.
async fn abandoned_long_poll(addr: SocketAddr, path: &str) {
    let token = negotiate(addr, path).await;
    let target = format!("{path}?id={token}");
    assert_eq!(http(addr, "GET", &target, &[], "").await.status, 200, "the first poll");
    let handshake = format!("{{\"protocol\":\"json\",\"version\":1}}{RS}");
    assert_eq!(
        http(addr, "POST", &target, &[], &handshake).await.status,
        200,
        "the handshake"
    );
    let reply = http(addr, "GET", &target, &[], "").await;
    assert_eq!(reply.body, format!("{{}}{RS}"), "the handshake reply");
}

/// Leaves a never-started and an abandoned long polling connection at `path`, and waits for
/// the server to forget both.
async fn leaves_nothing_behind(server: &HubServer, addr: SocketAddr, path: &str) {
    negotiate(addr, path).await;
    abandoned_long_poll(addr, path).await;
    assert_eq!(server.connection_count(), 2);
    eventually("the never-started and the abandoned connection to be forgotten", || {
        server.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn axum_nested_under_a_prefix_serves_every_transport_and_cleans_up() {
    let server = echo_server();
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .nest_service("/api/hubs", server.clone().into_service());
    let (addr, _task) = serve_axum(app, std::future::pending()).await;

    assert_eq!(http(addr, "GET", "/hello", &[], "").await.body, "hello");
    let mut client = Client::connect(addr, "/api/hubs/echo", "").await;
    assert_eq!(client.call_ok("Echo", json!(["über"])).await, json!("über"));
    // The hub's own part of the path matches in any case.
    let mut shouting = Client::connect(addr, "/api/hubs/ECHO", "").await;
    assert_eq!(shouting.call_ok("Echo", json!(["hi"])).await, json!("hi"));
    // Paths the hubs do not serve are 404 inside the nest.
    assert_eq!(
        http(addr, "POST", "/api/hubs/other/negotiate", &[], "").await.status,
        404
    );
    client.close().await;
    shouting.close().await;
    eventually("the WebSocket connections to end", || server.connection_count() == 0).await;

    leaves_nothing_behind(&server, addr, "/api/hubs/echo").await;
}

#[tokio::test]
async fn axum_layer_puts_the_hubs_in_front_of_the_app() {
    let server = echo_server();
    let app = axum::Router::new()
        .route("/hello", axum::routing::get(|| async { "hello" }))
        .layer(server.layer());
    let (addr, _task) = serve_axum(app, std::future::pending()).await;

    assert_eq!(http(addr, "GET", "/hello", &[], "").await.body, "hello");
    assert_eq!(http(addr, "GET", "/nothing", &[], "").await.status, 404);
    let mut client = Client::connect(addr, "/Echo", "").await;
    assert_eq!(client.call_ok("Echo", json!(["layered"])).await, json!("layered"));
    client.close().await;
    leaves_nothing_behind(&server, addr, "/echo").await;
}

#[tokio::test]
async fn warp_serves_the_filter_under_a_prefix_and_cleans_up() {
    let server = echo_server();
    let hello = warp::path("hello").map(|| "hello");
    let routes = warp::path("api").and(server.filter()).or(hello);
    let addr = serve_warp(routes).await;

    assert_eq!(http(addr, "GET", "/hello", &[], "").await.body, "hello");
    let mut client = Client::connect(addr, "/api/echo", "").await;
    assert_eq!(client.call_ok("Echo", json!(["warped"])).await, json!("warped"));
    // Without the prefix, nothing.
    assert_eq!(http(addr, "POST", "/echo/negotiate", &[], "").await.status, 404);
    client.close().await;
    leaves_nothing_behind(&server, addr, "/api/echo").await;
}

#[tokio::test]
async fn graceful_shutdown_says_goodbye_under_axum() {
    let server = echo_server();
    let app = axum::Router::new().nest_service("/hubs", server.clone().into_service());
    let (stop, stopped) = oneshot::channel::<()>();
    let stopping = server.clone();
    let (addr, task) = serve_axum(app, async move {
        let _ = stopped.await;
        stopping.graceful_shutdown().await;
    })
    .await;

    let mut client = Client::connect(addr, "/hubs/echo", "").await;
    assert_eq!(client.call_ok("Echo", json!(["before"])).await, json!("before"));
    // A connection that never started, and one between long polls: they end at once.
    negotiate(addr, "/hubs/echo").await;
    abandoned_long_poll(addr, "/hubs/echo").await;
    assert_eq!(server.connection_count(), 3);

    let _ = stop.send(());
    let goodbye = client.expect_close_message().await;
    assert_eq!(goodbye["type"], json!(7), "a Close message: {goodbye}");
    assert_eq!(goodbye["allowReconnect"], json!(true), "reconnect allowed: {goodbye}");
    within("axum's graceful shutdown to finish", task)
        .await
        .expect("the serving task does not panic");
    assert_eq!(server.connection_count(), 0);
    assert!(server.is_stopping());
}

#[derive(Clone)]
struct Session(&'static str);

/// Reads the user an outer layer of the app put into the request.
fn from_session(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    match request.extensions().get::<Session>() {
        Some(Session(user)) => Ok(Some(Identity::user(*user))),
        None => Err(AuthError::new("no session")),
    }
}

#[tokio::test]
async fn an_authenticator_reads_what_an_outer_layer_put_into_the_request() {
    let server = HubServer::builder()
        .hub_with("/echo", Echo, EndpointOptions::new().authenticator(from_session))
        .build();
    let signed_in = axum::Router::new()
        .nest_service("/in", server.clone().into_service())
        .layer(axum::middleware::map_request(
            |mut request: axum::extract::Request| async move {
                request.extensions_mut().insert(Session("ana"));
                request
            },
        ));
    let app = signed_in.nest_service("/out", server.clone().into_service());
    let (addr, _task) = serve_axum(app, std::future::pending()).await;

    let mut client = Client::connect(addr, "/in/echo", "").await;
    assert_eq!(client.call_ok("Whoami", json!([])).await, json!("ana"));
    // Without the layer there is no session: the authenticator refuses.
    assert_eq!(http(addr, "POST", "/out/echo/negotiate", &[], "").await.status, 401);
}

#[tokio::test]
async fn the_peer_address_reaches_the_hub() {
    // The built-in server records it.
    let server = echo_server();
    let test = common::TestServer::start(server).await;
    let mut client = test.connect("/echo").await;
    assert_eq!(client.call_ok("Peer", json!([])).await, json!("127.0.0.1"));

    // Under axum, from its connect info, through a layer.
    let server = echo_server();
    let app = axum::Router::new()
        .nest_service("/hubs", server.into_service())
        .layer(axum::middleware::map_request(
            |mut request: axum::extract::Request| async move {
                let peer = request
                    .extensions()
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|info| info.0);
                if let Some(addr) = peer {
                    request.extensions_mut().insert(PeerAddr(addr));
                }
                request
            },
        ));
    let (addr, _task) = serve_axum(app, std::future::pending()).await;
    let mut client = Client::connect(addr, "/hubs/echo", "").await;
    assert_eq!(client.call_ok("Peer", json!([])).await, json!("127.0.0.1"));
}

#[tokio::test]
async fn tower_http_layers_wrap_the_service_served_by_hyper() {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let server = echo_server();
    // CORS and a timeout (longer than a long poll would wait here) from tower-http, and the
    // peer's address from the accept loop: the service works behind any tower middleware.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let hubs = server.clone().into_service();
    tokio::spawn(async move {
        loop {
            let Ok((socket, peer)) = listener.accept().await else {
                return;
            };
            let service = tower::ServiceBuilder::new()
                .layer(tower_http::cors::CorsLayer::permissive())
                .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                    http::StatusCode::REQUEST_TIMEOUT,
                    Duration::from_secs(30),
                ))
                .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    request
                })
                .service(hubs.clone());
            tokio::spawn(async move {
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(socket), TowerToHyperService::new(service))
                    .await;
            });
        }
    });

    let mut client = Client::connect(addr, "/echo", "").await;
    assert_eq!(client.call_ok("Peer", json!([])).await, json!("127.0.0.1"));
    let preflight = http(
        addr,
        "OPTIONS",
        "/echo/negotiate",
        &[
            ("Origin", "http://elsewhere.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        "",
    )
    .await;
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("*"),
        "{preflight:?}"
    );
    client.close().await;
    leaves_nothing_behind(&server, addr, "/echo").await;
}

#[tokio::test]
async fn connections_do_not_keep_the_request_extensions() {
    struct Probe;

    #[hub]
    impl Probe {
        fn kept(&self, cx: &HubContext<Self>) -> bool {
            cx.request().extensions().get::<Session>().is_some()
        }
    }

    let server = HubServer::builder()
        .hub_with("/probe", Probe, EndpointOptions::new().authenticator(from_session))
        .build();
    let app = axum::Router::new()
        .nest_service("/hubs", server.clone().into_service())
        .layer(axum::middleware::map_request(
            |mut request: axum::extract::Request| async move {
                request.extensions_mut().insert(Session("ana"));
                request
            },
        ));
    let (addr, _task) = serve_axum(app, std::future::pending()).await;
    // The authenticator saw the session (or the connection would be refused); the connection
    // kept none of it (hosts put the request's URI, and with it the read buffer, there).
    let mut client = Client::connect(addr, "/hubs/probe", "").await;
    assert_eq!(client.call_ok("Kept", json!([])).await, json!(false));
}
