//! The connection's life: negotiate (redirects, tokens, headers, errors), skipping it, the
//! handshake's errors, the server's Close message, stop, keep-alive and the server timeout.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::{within, TestServer};
use futures_util::{SinkExt, StreamExt};
use hub_client::{CloseReason, Error, HubConnectionBuilder, Protocol, TransportKind};
use hub_runtime::prelude::*;
use hub_runtime::protocol::{HubProtocol, JsonProtocol};
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use tokio_tungstenite::tungstenite::Message;
use warp::Filter;

struct Plain;

#[hub]
impl Plain {
    fn echo(&self, message: String) -> String {
        message
    }

    fn who(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.user_id().map(str::to_string)
    }

    fn header(&self, cx: &HubContext<Self>, name: String) -> Option<String> {
        cx.request().header(&name).map(str::to_string)
    }

    fn query(&self, cx: &HubContext<Self>, name: String) -> Option<String> {
        cx.request().query(&name).map(str::to_string)
    }

    fn transport(&self, cx: &HubContext<Self>) -> Option<&'static str> {
        cx.request().transport().map(hub_runtime::TransportKind::name)
    }

    fn leave(&self, cx: &HubContext<Self>) {
        cx.abort();
    }

    fn endless(&self) -> impl Stream<Item = i32> {
        futures_util::stream::pending()
    }
}

struct Uncreatable;

#[hub]
impl Uncreatable {
    #[hub(on_connected)]
    fn refuse(&self) -> Result<(), HubError> {
        Err(HubError::new("not today").with_kind("InvalidOperationException"))
    }

    fn echo(&self, message: String) -> String {
        message
    }
}

/// Admits only the bearer token `secret`, as user `ann`.
fn secret_only(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    match request.bearer_token() {
        Some("secret") => Ok(Some(Identity::user("ann"))),
        other => Err(AuthError::new(format!("bad token {other:?}"))),
    }
}

/// `/redirect/negotiate` sends the client to `/secure` with the token `secret`;
/// `/loop/negotiate` sends it back to `/loop` for ever, counting; WebSocket upgrades to
/// `/flaky` fail.
fn redirects(
    base: Arc<OnceLock<String>>,
    loops: Arc<AtomicUsize>,
) -> warp::filters::BoxedFilter<(warp::reply::Response,)> {
    let to_secure = warp::post().and(warp::path!("redirect" / "negotiate")).map({
        let base = base.clone();
        move || {
            let body = serde_json::json!({"url": format!("{}/secure?from=redirect", base.get().unwrap()), "accessToken": "secret"});
            warp::reply::json(&body).into_response()
        }
    });
    let forever = warp::post().and(warp::path!("loop" / "negotiate")).map(move || {
        loops.fetch_add(1, Ordering::SeqCst);
        warp::reply::json(&serde_json::json!({"url": format!("{}/loop", base.get().unwrap())})).into_response()
    });
    // Path first: a method filter first would turn every other path's 404 into a 405.
    let refuse_upgrades = warp::path("flaky")
        .and(warp::get())
        .and(warp::header::exact_ignore_case("upgrade", "websocket"))
        .map(|| warp::reply::with_status("no WebSockets here", warp::http::StatusCode::BAD_REQUEST).into_response());
    to_secure.or(forever).unify().or(refuse_upgrades).unify().boxed()
}

use warp::Reply;

struct Fixture {
    server: TestServer,
    loops: Arc<AtomicUsize>,
}

async fn fixture(options: HubOptions) -> Fixture {
    let base = Arc::new(OnceLock::new());
    let loops = Arc::new(AtomicUsize::new(0));
    let hubs = HubServer::builder()
        .options(options)
        .hub("/hub", Plain)
        .hub_with("/secure", Plain, EndpointOptions::new().authenticator(secret_only))
        .hub("/uncreatable", Uncreatable)
        .hub("/flaky", Plain)
        .hub_with(
            "/nows",
            Plain,
            EndpointOptions::new().disable(hub_runtime::TransportKind::WebSockets),
        )
        .build();
    let server = TestServer::start_with_routes(hubs, redirects(base.clone(), loops.clone())).await;
    base.set(server.url("")).unwrap();
    Fixture { server, loops }
}

async fn plain() -> Fixture {
    fixture(HubOptions::default()).await
}

#[tokio::test]
async fn the_token_factory_authenticates_negotiate_and_the_websocket() {
    let f = plain().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let connection = HubConnectionBuilder::new(f.server.url("/secure"))
        .header("x-tenant", "blue")
        .access_token_factory(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::io::Error>("secret".to_string()) }
        })
        .build()
        .unwrap();
    within("start", connection.start()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let who: Option<String> = within("who", connection.invoke("Who", ())).await.unwrap();
    assert_eq!(who.as_deref(), Some("ann"));
    // The WebSocket carries the token as `access_token`, and the custom header.
    let token: Option<String> = within("query", connection.invoke("Query", ("access_token",)))
        .await
        .unwrap();
    assert_eq!(token.as_deref(), Some("secret"));
    let tenant: Option<String> = within("header", connection.invoke("Header", ("x-tenant",)))
        .await
        .unwrap();
    assert_eq!(tenant.as_deref(), Some("blue"));
    connection.stop().await;

    let refused = HubConnectionBuilder::new(f.server.url("/secure"))
        .access_token_factory(|| async { Ok::<_, std::io::Error>("wrong".to_string()) })
        .build()
        .unwrap();
    let error = within("refused", refused.start()).await.unwrap_err();
    assert!(matches!(error, Error::NegotiateStatus { status: 401, .. }), "{error:?}");

    // A 401 is retried once with a fresh token.
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let second_try = HubConnectionBuilder::new(f.server.url("/secure"))
        .access_token_factory(move || {
            let token = if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                "expired"
            } else {
                "secret"
            };
            async move { Ok::<_, std::io::Error>(token.to_string()) }
        })
        .build()
        .unwrap();
    within("retried", second_try.start()).await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    second_try.stop().await;

    let failing = HubConnectionBuilder::new(f.server.url("/secure"))
        .access_token_factory(|| async { Err::<String, _>(std::io::Error::other("no token today")) })
        .build()
        .unwrap();
    let error = within("factory fails", failing.start()).await.unwrap_err();
    assert_eq!(error, Error::AccessToken("no token today".into()));
}

#[tokio::test]
async fn negotiate_follows_redirects_and_their_access_token() {
    let f = plain().await;
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        let connection = HubConnectionBuilder::new(f.server.url("/redirect"))
            .protocol(protocol)
            .build()
            .unwrap();
        within("start", connection.start()).await.unwrap();
        let who: Option<String> = within("who", connection.invoke("Who", ())).await.unwrap();
        assert_eq!(who.as_deref(), Some("ann"));
        // The redirect's URL, query included, is the one the transport uses.
        let from: Option<String> = within("query", connection.invoke("Query", ("from",))).await.unwrap();
        assert_eq!(from.as_deref(), Some("redirect"));
        connection.stop().await;
    }
}

#[tokio::test]
async fn endless_redirects_stop_after_100() {
    let f = plain().await;
    let connection = HubConnectionBuilder::new(f.server.url("/loop")).build().unwrap();
    let error = within("loop", connection.start()).await.unwrap_err();
    assert_eq!(error, Error::Negotiate("Negotiate redirection limit exceeded.".into()));
    assert_eq!(f.loops.load(Ordering::SeqCst), 101);
}

#[tokio::test]
async fn negotiate_failures_carry_the_status() {
    let f = plain().await;
    let connection = HubConnectionBuilder::new(f.server.url("/nothing-here"))
        .build()
        .unwrap();
    let error = within("404", connection.start()).await.unwrap_err();
    assert!(matches!(error, Error::NegotiateStatus { status: 404, .. }), "{error:?}");
    assert!(error.to_string().ends_with("Status code '404'"), "{error}");
    let nobody = HubConnectionBuilder::new("http://127.0.0.1:1/hub").build().unwrap();
    assert!(matches!(
        within("refused", nobody.start()).await,
        Err(Error::Transport(_))
    ));
    assert!(matches!(
        HubConnectionBuilder::new("/hub").build(),
        Err(Error::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn skip_negotiation_connects_the_websocket_directly() {
    let f = plain().await;
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        let connection = HubConnectionBuilder::new(f.server.url("/hub"))
            .protocol(protocol)
            .skip_negotiation(true)
            .build()
            .unwrap();
        within("start", connection.start()).await.unwrap();
        assert_eq!(connection.connection_id(), None);
        let echoed: String = within("echo", connection.invoke("Echo", ("direct",))).await.unwrap();
        assert_eq!(echoed, "direct");
        connection.stop().await;
    }
}

/// JSON under another name: the server does not know it.
struct Unknown;

impl HubProtocol for Unknown {
    fn name(&self) -> &'static str {
        "xyz"
    }
    fn version(&self) -> u32 {
        1
    }
    fn transfer_format(&self) -> hub_runtime::protocol::TransferFormat {
        JsonProtocol.transfer_format()
    }
    fn complete_prefix(&self, input: &[u8], max: usize) -> Result<usize, hub_runtime::protocol::ProtocolError> {
        JsonProtocol.complete_prefix(input, max)
    }
    fn parse_into(
        &self,
        input: &[u8],
        out: &mut Vec<hub_runtime::protocol::HubMessage>,
    ) -> Result<(), hub_runtime::protocol::ProtocolError> {
        JsonProtocol.parse_into(input, out)
    }
    fn write(
        &self,
        message: &hub_runtime::protocol::OutMessage<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), hub_runtime::protocol::EncodeError> {
        JsonProtocol.write(message, out)
    }
}

#[tokio::test]
async fn a_refused_handshake_surfaces_the_servers_text() {
    let f = plain().await;
    let connection = HubConnectionBuilder::new(f.server.url("/hub"))
        .custom_protocol(Arc::new(Unknown))
        .build()
        .unwrap();
    let error = within("handshake", connection.start()).await.unwrap_err();
    assert_eq!(error, Error::Handshake("The protocol 'xyz' is not supported.".into()));
    assert_eq!(
        error.to_string(),
        "Server returned handshake error: The protocol 'xyz' is not supported."
    );
}

#[tokio::test]
async fn the_servers_close_message_is_the_close_reason() {
    let f = plain().await;
    for protocol in [Protocol::Json, Protocol::MessagePack] {
        let connection = HubConnectionBuilder::new(f.server.url("/uncreatable"))
            .protocol(protocol)
            .build()
            .unwrap();
        let closed = connection.closed();
        within("start", connection.start()).await.unwrap();
        let reason = within("closed", closed).await;
        let CloseReason::ByServer {
            error: Some(error),
            allow_reconnect: false,
        } = &reason
        else {
            panic!("{reason:?}")
        };
        assert!(error.starts_with("Connection closed with an error."), "{error}");
        assert!(reason
            .to_string()
            .starts_with("Server returned an error on close: Connection closed with an error."));
        assert!(!connection.is_connected());

        // A hub that ends the connection without an error.
        let connection = HubConnectionBuilder::new(f.server.url("/hub"))
            .protocol(protocol)
            .build()
            .unwrap();
        within("start", connection.start()).await.unwrap();
        let closed = connection.closed();
        let pending = connection.invoke::<()>("Leave", ());
        let (reason, _) = within("closed", futures_util::future::join(closed, pending)).await;
        assert_eq!(
            reason,
            CloseReason::ByServer {
                error: None,
                allow_reconnect: false
            }
        );
        assert_eq!(reason.error(), None);
    }
}

#[tokio::test]
async fn stop_ends_pending_calls_and_reports_stopped() {
    let f = plain().await;
    let connection = HubConnectionBuilder::new(f.server.url("/hub")).build().unwrap();
    within("start", connection.start()).await.unwrap();
    let closed = connection.closed();
    let mut endless = connection.stream::<i32>("Endless", ());
    let stopping = connection.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        stopping.stop().await;
    });
    let item = within("stream ends", endless.next()).await;
    assert_eq!(item, Some(Err(Error::ConnectionClosed(Box::new(CloseReason::Stopped)))));
    assert_eq!(within("closed", closed).await, CloseReason::Stopped);
    assert_eq!(endless.next().await, None);
}

#[tokio::test]
async fn server_pings_keep_a_quiet_connection_open() {
    let options = HubOptions {
        keep_alive_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let f = fixture(options).await;
    let connection = HubConnectionBuilder::new(f.server.url("/hub"))
        .server_timeout(Duration::from_millis(400))
        .build()
        .unwrap();
    within("start", connection.start()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(connection.is_connected());
    let echoed: String = within("echo", connection.invoke("Echo", ("awake",))).await.unwrap();
    assert_eq!(echoed, "awake");
    connection.stop().await;
}

/// A WebSocket server that answers the handshake (unless `answer` is false), then says
/// nothing, counting the Pings it receives.
async fn silent_server(answer: bool) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub", listener.local_addr().unwrap());
    let pings = Arc::new(AtomicUsize::new(0));
    let counted = pings.clone();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        let _handshake = socket.next().await;
        if answer {
            socket.send(Message::text("{}\u{1e}")).await.unwrap();
        }
        while let Some(Ok(frame)) = socket.next().await {
            if frame.to_text().is_ok_and(|t| t.contains("\"type\":6")) {
                counted.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (url, pings)
}

#[tokio::test]
async fn a_silent_server_ends_the_connection_with_a_server_timeout() {
    let (url, pings) = silent_server(true).await;
    let connection = HubConnectionBuilder::new(url)
        .skip_negotiation(true)
        .keep_alive_interval(Duration::from_millis(100))
        .server_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let started = Instant::now();
    within("start", connection.start()).await.unwrap();
    let pending = connection.invoke::<String>("Echo", ("anyone?",));
    let (reason, result) = within("timeout", futures_util::future::join(connection.closed(), pending)).await;
    let elapsed = started.elapsed();
    assert_eq!(
        reason,
        CloseReason::Failed(Error::ServerTimeout(Duration::from_millis(500)))
    );
    assert_eq!(result, Err(Error::ConnectionClosed(Box::new(reason.clone()))));
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    // The client kept pinging while it waited: right after the handshake, then every 100 ms.
    assert!(
        pings.load(Ordering::SeqCst) >= 3,
        "{} pings",
        pings.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_handshake_without_a_reply_times_out() {
    let (url, _) = silent_server(false).await;
    let connection = HubConnectionBuilder::new(url)
        .skip_negotiation(true)
        .handshake_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = within("handshake", connection.start()).await.unwrap_err();
    assert_eq!(error, Error::Handshake("The handshake timed out.".into()));
}

#[tokio::test]
async fn the_client_takes_the_servers_first_transport_it_speaks() {
    let f = plain().await;
    let cases = [
        ("/hub", Protocol::Json, "WebSockets"),
        ("/hub", Protocol::MessagePack, "WebSockets"),
        // Server-Sent Events come before long polling, but carry only text.
        ("/nows", Protocol::Json, "ServerSentEvents"),
        ("/nows", Protocol::MessagePack, "LongPolling"),
    ];
    for (path, protocol, expected) in cases {
        {
            let connection = HubConnectionBuilder::new(f.server.url(path))
                .protocol(protocol)
                .build()
                .unwrap();
            within("start", connection.start()).await.unwrap();
            let transport: Option<String> = within("transport", connection.invoke("Transport", ())).await.unwrap();
            assert_eq!(transport.as_deref(), Some(expected), "{path} {protocol:?}");
            connection.stop().await;
        }
    }
    // Only WebSockets allowed, and the server has none.
    let connection = HubConnectionBuilder::new(f.server.url("/nows"))
        .transports([TransportKind::WebSockets])
        .build()
        .unwrap();
    assert!(matches!(
        within("start", connection.start()).await,
        Err(Error::NoTransport(_))
    ));
    // Skipping negotiate needs WebSockets.
    let connection = HubConnectionBuilder::new(f.server.url("/hub"))
        .transports([TransportKind::LongPolling])
        .skip_negotiation(true)
        .build()
        .unwrap();
    assert!(matches!(
        within("start", connection.start()).await,
        Err(Error::Negotiate(_))
    ));
}

#[tokio::test]
async fn a_failing_websocket_falls_back_to_the_next_transport() {
    // `/flaky` offers WebSockets in negotiate, but its upgrades are refused with a 400: the
    // client negotiates again and takes the next transport the server offers.
    let f = plain().await;
    for (protocol, expected) in [
        (Protocol::Json, "ServerSentEvents"),
        (Protocol::MessagePack, "LongPolling"),
    ] {
        let connection = HubConnectionBuilder::new(f.server.url("/flaky"))
            .protocol(protocol)
            .build()
            .unwrap();
        within("start", connection.start()).await.unwrap();
        let transport: Option<String> = within("transport", connection.invoke("Transport", ())).await.unwrap();
        assert_eq!(transport.as_deref(), Some(expected));
        connection.stop().await;
    }
    let connection = HubConnectionBuilder::new(f.server.url("/flaky"))
        .transports([TransportKind::WebSockets])
        .build()
        .unwrap();
    let error = within("start", connection.start()).await.unwrap_err();
    assert!(
        matches!(&error, Error::NoTransport(text) if text.starts_with("WebSockets failed")),
        "{error:?}"
    );
}
