//! `--host axum`: the same contract served by axum, with hub-runtime's tower service as the
//! router's fallback and every extra endpoint an axum handler or a tower layer.
//!
//! axum matches paths case-sensitively; the contract's paths match in any case, so the
//! outermost layer lowercases the path before routing (the query keeps its case) and keeps
//! the original path for the handlers that need it (`/echoredirect`, and `/clientresult/{id}`:
//! connection ids are case-sensitive).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use hub_runtime::server::PeerAddr;
use hub_runtime::{HubHandle, HubServer};
use tokio::net::TcpListener;
use tower::Layer;

use super::{with_query, JwtKey, TestHub};

/// What the handlers share.
#[derive(Clone)]
struct App {
    jwt_key: &'static JwtKey,
    test_hub: HubHandle<TestHub>,
    redirects: Arc<AtomicUsize>,
    server: HubServer,
}

/// The request's path as it came, before the lowercasing layer.
#[derive(Clone)]
struct OriginalPath(String);

/// Serves `server` and the contract's extra endpoints with axum until Ctrl-C or SIGTERM; then
/// says goodbye to every hub connection before axum's own graceful shutdown.
pub(crate) async fn serve(server: HubServer, listener: TcpListener, jwt_key: &'static JwtKey) -> std::io::Result<()> {
    let state = App {
        jwt_key,
        test_hub: server.handle::<TestHub>().expect("TestHub is mapped"),
        redirects: Arc::new(AtomicUsize::new(0)),
        server: server.clone(),
    };
    let hubs = Router::new()
        .fallback_service(server.clone().into_service())
        .layer(middleware::from_fn(negotiate_cookies));
    let routes = Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route("/generatejwttoken", get(generate_jwt_token))
        .route("/redirect", any(redirect))
        .route("/redirect/{*rest}", any(redirect))
        .route("/echoredirect", any(echo_redirect))
        .route("/echoredirect/{*rest}", any(echo_redirect))
        .route("/bad-negotiate", any(bad_negotiate))
        .route("/bad-negotiate/{*rest}", any(bad_negotiate))
        .route("/clientresult/{id}", get(client_result))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
        .fallback_service(hubs)
        .layer(middleware::map_request(peer_addr));
    let app = middleware::map_request(lowercase_path).layer(routes);
    let make = axum::ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
    axum::serve(listener, make)
        .with_graceful_shutdown(async move {
            hub_runtime::server::shutdown_signal().await;
            server.graceful_shutdown().await;
        })
        .await
}

/// Lowercases the path (not the query) so that axum's routes match in any case.
async fn lowercase_path(mut request: Request) -> Request {
    let uri = request.uri();
    let lower = uri.path().to_lowercase();
    if lower != uri.path() {
        let original = OriginalPath(uri.path().to_owned());
        let path_and_query = match uri.query() {
            Some(query) => format!("{lower}?{query}"),
            None => lower,
        };
        // Only the path changes: the scheme and authority (HTTP/2's only Host) stay.
        let mut parts = uri.clone().into_parts();
        if let Ok(lowered) = path_and_query.parse() {
            parts.path_and_query = Some(lowered);
            if let Ok(lowered) = Uri::from_parts(parts) {
                *request.uri_mut() = lowered;
                request.extensions_mut().insert(original);
            }
        }
    }
    request
}

/// Hands the peer's address (axum's connect info) to the hubs.
async fn peer_addr(mut request: Request) -> Request {
    if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        request.extensions_mut().insert(PeerAddr(addr));
    }
    request
}

/// Every successful negotiate also sets the test cookies.
async fn negotiate_cookies(request: Request, next: Next) -> Response {
    let negotiate = request.uri().path().trim_end_matches('/').ends_with("/negotiate");
    let mut response = next.run(request).await;
    if negotiate && response.status().is_success() {
        for cookie in [
            "testCookie=testValue; Path=/",
            "testCookie2=testValue2; Path=/",
            "expiredCookie=doesntmatter; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        ] {
            response
                .headers_mut()
                .append(header::SET_COOKIE, HeaderValue::from_static(cookie));
        }
    }
    response
}

async fn generate_jwt_token(State(app): State<App>) -> String {
    app.jwt_key.token()
}

#[derive(serde::Deserialize)]
struct RedirectQuery {
    #[serde(rename = "baseUrl", default)]
    base_url: String,
}

/// `/redirect`: a negotiate answer sending the client to `/testHub`, counting redirects.
async fn redirect(State(app): State<App>, Query(query): Query<RedirectQuery>) -> Response {
    let n = app.redirects.fetch_add(1, Ordering::SeqCst) + 1;
    let url = format!("{}/testHub?numRedirects={n}", query.base_url);
    axum::Json(serde_json::json!({ "url": url })).into_response()
}

/// The request's path as the client sent it.
fn original_path(request: &Request) -> String {
    match request.extensions().get::<OriginalPath>() {
        Some(OriginalPath(path)) => path.clone(),
        None => request.uri().path().to_owned(),
    }
}

/// `/echoredirect…`: 307 to the same path under `/echo`, with the query.
async fn echo_redirect(request: Request) -> Response {
    let path = original_path(&request);
    let rest = path.get("/echoredirect".len()..).unwrap_or_default();
    let location = with_query(&format!("/echo{rest}"), request.uri().query().unwrap_or_default());
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

async fn bad_negotiate() -> (StatusCode, &'static str) {
    (StatusCode::BAD_REQUEST, "Some response from server")
}

/// `/clientresult/{id}`: asks connection `id` for its result (TestHubClient's `Result`). The id
/// comes from the original path: connection ids are case-sensitive.
async fn client_result(State(app): State<App>, request: Request) -> String {
    let path = original_path(&request);
    let id = path.rsplit('/').next().unwrap_or_default().to_owned();
    match app.test_hub.clients.client(id).result().await {
        Ok(value) => value.to_string(),
        Err(error) => error.to_string(),
    }
}

/// `/health`: as `hub_examples::operations` answers under warp.
async fn health(State(app): State<App>) -> Response {
    let server = &app.server;
    let stopping = server.is_stopping();
    let body = serde_json::json!({
        "status": if stopping { "stopping" } else { "ok" },
        "connections": server.connection_count(),
        "groups": server.group_count(),
        "users": server.user_count(),
    });
    let status = if stopping {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, axum::Json(body)).into_response()
}

/// `/metrics`: the Prometheus text format.
async fn metrics() -> Response {
    let body = hub_examples::render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
