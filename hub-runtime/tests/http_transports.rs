//! Server-Sent Events and Long Polling under stress and abuse: clients that vanish mid-poll,
//! POSTs that come early, too big, or several at once, DELETE, slow or stalled HTTP clients,
//! negotiate floods, shutdown, and requests from another user or another origin.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{http, HttpResponse, TestServer, RS};
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, Connection, Cors, EndpointOptions, Identity, RequestContext};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a test waits for the server to notice something (sweeps run once a second).
const PATIENCE: Duration = Duration::from_secs(20);

struct Plain;

#[hub]
impl Plain {
    fn echo(&self, message: String) -> String {
        message
    }

    fn who(&self, cx: &HubContext<Self>) -> Option<String> {
        cx.user_id().map(str::to_string)
    }

    /// `to` items, then the end.
    fn count(&self, to: u32) -> impl Stream<Item = u32> {
        futures_util::stream::iter(0..to)
    }
}

/// Admits anyone but the user `boom`, for whom it panics (a bug in user code).
fn panicking_policy(identity: &Identity) -> bool {
    assert!(identity.user_id() != Some("boom"), "the policy blew up");
    true
}

struct Guarded;

#[hub(authorize(policy = panicking_policy))]
impl Guarded {
    fn echo(&self, message: String) -> String {
        message
    }
}

/// Who the `user` query parameter says (no parameter: anonymous, no identity).
fn user_from_query(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    Ok(request.query("user").map(Identity::user))
}

fn panicking_authenticator(request: &RequestContext) -> Result<Option<Identity>, AuthError> {
    if request.query("boom").is_some() {
        panic!("the authenticator blew up");
    }
    Ok(None)
}

/// Reads its first frame, then never reads again.
async fn stuck(mut connection: Connection) {
    let _ = connection.recv().await;
    connection.aborted().await;
}

/// Reads its first frame, rests 3 s, then reads everything until its input ends.
async fn sleepy(mut connection: Connection) {
    let _ = connection.recv().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    while connection.recv().await.is_some() {}
}

/// Sends 64 KiB frames as fast as the transport takes them.
async fn flood(connection: Connection) {
    let sender = connection.sender();
    let chunk = "x".repeat(64 * 1024);
    while sender
        .send(hub_runtime::Frame::Text(chunk.clone().into()))
        .await
        .is_ok()
    {}
}

fn builder(options: HubOptions) -> hub_runtime::HubServerBuilder {
    HubServer::builder()
        .options(options)
        .hub("/plain", Plain)
        .hub_with("/users", Plain, EndpointOptions::new().authenticator(user_from_query))
        .hub_with(
            "/boom",
            Plain,
            EndpointOptions::new().authenticator(panicking_authenticator),
        )
        .hub_with(
            "/guarded",
            Guarded,
            EndpointOptions::new().authenticator(user_from_query),
        )
        .connection("/stuck", stuck)
        .connection("/sleepy", sleepy)
        .connection("/flood", flood)
}

async fn start(options: HubOptions) -> TestServer {
    TestServer::start(builder(options).build()).await
}

/// Polls `condition` every 20 ms until it holds, failing after [`PATIENCE`].
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {PATIENCE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Negotiates (version 1, `query` added) and returns the connection token.
async fn negotiate(addr: SocketAddr, path: &str, query: &str) -> String {
    let response = http(
        addr,
        "POST",
        &format!("{path}/negotiate?negotiateVersion=1{query}"),
        &[],
        "",
    )
    .await;
    assert_eq!(response.status, 200, "negotiate: {response:?}");
    response.json()["connectionToken"]
        .as_str()
        .expect("a connectionToken")
        .to_string()
}

async fn get(addr: SocketAddr, target: &str) -> HttpResponse {
    http(addr, "GET", target, &[], "").await
}

async fn post(addr: SocketAddr, target: &str, body: &str) -> HttpResponse {
    http(addr, "POST", target, &[], body).await
}

fn handshake() -> String {
    format!("{{\"protocol\":\"json\",\"version\":1}}{RS}")
}

/// The hub messages of a poll's body.
fn messages(body: &str) -> Vec<Value> {
    body.split(RS)
        .filter(|r| !r.is_empty())
        .map(|r| serde_json::from_str(r).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}")))
        .collect()
}

/// Negotiates a long polling hub connection, starts it and completes the handshake.
async fn long_polling(addr: SocketAddr, path: &str, query: &str) -> String {
    let token = negotiate(addr, path, query).await;
    let target = format!("{path}?id={token}{query}");
    assert_eq!(get(addr, &target).await.status, 200, "the first poll");
    assert_eq!(post(addr, &target, &handshake()).await.status, 200, "the handshake");
    let reply = get(addr, &target).await;
    assert_eq!(messages(&reply.body), vec![json!({})], "the handshake reply");
    token
}

/// A raw HTTP/1.1 request on a socket of its own; the response is left unread.
async fn send_raw(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write request");
    stream
}

/// Reads from `stream` into `buffer` until it contains `needle` (failing after [`PATIENCE`]).
async fn read_until(stream: &mut TcpStream, buffer: &mut Vec<u8>, needle: &str) {
    let found = tokio::time::timeout(PATIENCE, async {
        while !String::from_utf8_lossy(buffer).contains(needle) {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(
                n > 0,
                "the socket ended before {needle:?}: {:?}",
                String::from_utf8_lossy(buffer)
            );
            buffer.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(found.is_ok(), "no {needle:?} in {:?}", String::from_utf8_lossy(buffer));
}

/// Whether the server closes `stream` within [`PATIENCE`] (reading and dropping what comes).
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let ended = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    ended.is_ok()
}

/// Opens the event stream of a negotiated connection; returns the socket once the response
/// head has arrived.
async fn open_sse(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> (TcpStream, Vec<u8>) {
    let mut all = vec![("Accept", "text/event-stream")];
    all.extend_from_slice(headers);
    let mut stream = send_raw(addr, "GET", target, &all, "").await;
    let mut buffer = Vec::new();
    read_until(&mut stream, &mut buffer, "\r\n\r\n").await;
    (stream, buffer)
}

fn short_timeouts() -> HubOptions {
    HubOptions {
        disconnect_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_dropped_mid_poll_are_cleaned_up() {
    let server = start(short_timeouts()).await;
    let mut sockets = Vec::new();
    for _ in 0..30 {
        let token = long_polling(server.addr, "/plain", "").await;
        sockets.push(send_raw(server.addr, "GET", &format!("/plain?id={token}"), &[], "").await);
    }
    assert_eq!(server.server.connection_count(), 30);
    // Every poll is waiting by now; then the clients vanish without a word.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(sockets);
    wait_until("every abandoned long polling connection to be forgotten", || {
        server.server.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn an_oversized_post_is_413_and_ends_the_connection() {
    let options = HubOptions {
        max_frame_size: 1000,
        ..Default::default()
    };
    let server = start(options).await;
    // Long polling.
    let token = long_polling(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let response = post(server.addr, &target, &"x".repeat(1001)).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.body, "The request body is larger than 1000 bytes.");
    // The message is lost, so the connection is over: the next poll says so.
    assert_eq!(get(server.addr, &target).await.status, 204);
    wait_until("the long polling connection to be gone", || {
        server.server.connection_count() == 0
    })
    .await;

    // Server-Sent Events.
    let token = negotiate(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let (mut events, mut buffer) = open_sse(server.addr, &target, &[]).await;
    let response = post(server.addr, &target, &"y".repeat(5000)).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.body, "The request body is larger than 1000 bytes.");
    // The event stream's last chunk.
    read_until(&mut events, &mut buffer, "\r\n0\r\n\r\n").await;
    wait_until("the SSE connection to be gone", || {
        server.server.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn a_post_before_the_first_poll_is_kept_until_the_transport_starts() {
    let server = start(HubOptions::default()).await;
    let token = negotiate(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    // As signalrcore does: the handshake first, then the first poll.
    let response = post(server.addr, &target, &handshake()).await;
    assert_eq!(response.status, 200, "{response:?}");
    let invocation = json!({"type": 1, "invocationId": "1", "target": "Echo", "arguments": ["early"]});
    assert_eq!(
        post(server.addr, &target, &format!("{invocation}{RS}")).await.status,
        200
    );
    assert_eq!(get(server.addr, &target).await.status, 200, "the first poll");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let poll = get(server.addr, &target).await;
        assert_eq!(poll.status, 200);
        seen.extend(messages(&poll.body));
    }
    assert_eq!(seen[0], json!({}));
    assert_eq!(seen[1], json!({"type": 3, "invocationId": "1", "result": "early"}));
}

#[tokio::test]
async fn what_comes_before_the_transport_starts_is_bounded() {
    let options = HubOptions {
        max_message_size: 100,
        ..Default::default()
    };
    let server = start(options).await;
    let token = negotiate(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    assert_eq!(post(server.addr, &target, &"a".repeat(60)).await.status, 200);
    let response = post(server.addr, &target, &"b".repeat(60)).await;
    assert_eq!(response.status, 413, "{response:?}");
    assert_eq!(response.body, "The request body is larger than 40 bytes.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_is_answered_once_queued_not_once_handled() {
    // `/stuck` takes the first frame and never reads again; the frames after it are queued,
    // and each POST is answered once its frame is.
    let server = start(HubOptions::default()).await;
    let token = negotiate(server.addr, "/stuck", "").await;
    let target = format!("/stuck?id={token}");
    let (_events, _) = open_sse(server.addr, &target, &[]).await;
    for i in 0..4 {
        let response = post(server.addr, &target, &format!("frame {i}")).await;
        assert_eq!(response.status, 200, "POST {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_sse_the_post_answer_comes_before_the_stream_it_started() {
    let server = start(HubOptions::default()).await;
    let mut late = 0;
    for _ in 0..20 {
        let token = negotiate(server.addr, "/plain", "").await;
        let target = format!("/plain?id={token}");
        let (mut events, mut buffer) = open_sse(server.addr, &target, &[]).await;
        assert_eq!(post(server.addr, &target, &handshake()).await.status, 200);
        read_until(&mut events, &mut buffer, "data:{}").await;
        let invocation = json!({"type": 4, "invocationId": "s", "target": "Count", "arguments": [3]});
        let posting = send_raw(server.addr, "POST", &target, &[], &format!("{invocation}{RS}")).await;
        read_until(&mut events, &mut buffer, "\"item\":0").await;
        // On loopback, bytes the server wrote are in this socket's buffer at once: if the
        // answer is not there now, it was written after the item.
        let mut answer = [0u8; 64];
        match posting.try_read(&mut answer) {
            Ok(n) if n > 0 => assert!(answer.starts_with(b"HTTP/1.1 200"), "{:?}", &answer[..n]),
            _ => late += 1,
        }
    }
    assert_eq!(late, 0, "POST answers after the first stream item");
}

#[tokio::test]
async fn delete_disposes_a_long_polling_connection_at_once() {
    let options = HubOptions {
        // Long enough that only DELETE can explain the connection going away in time.
        disconnect_timeout: Duration::from_secs(600),
        max_connections: Some(1),
        ..Default::default()
    };
    let server = start(options).await;
    let token = long_polling(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let full = http(server.addr, "POST", "/plain/negotiate?negotiateVersion=1", &[], "").await;
    assert_eq!(full.status, 503, "the server is full");
    let mut waiting = send_raw(server.addr, "GET", &target, &[], "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let deleted = http(server.addr, "DELETE", &target, &[], "").await;
    assert_eq!(deleted.status, 202);
    // Its place is free at once.
    negotiate(server.addr, "/plain", "").await;
    let mut buffer = Vec::new();
    read_until(&mut waiting, &mut buffer, "\r\n\r\n").await;
    assert!(
        String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 204"),
        "the waiting poll completes with 204: {:?}",
        String::from_utf8_lossy(&buffer)
    );
    // Only the new (unstarted) connection is left.
    assert_eq!(server.server.connection_count(), 1);
    assert_eq!(get(server.addr, &target).await.status, 404);
}

/// Whether a new long polling connection for `user` on `/users` works (its call is answered)
/// rather than being closed for having too many connections.
async fn user_may_connect(addr: SocketAddr, user: &str) -> bool {
    let token = negotiate(addr, "/users", &format!("&user={user}")).await;
    let target = format!("/users?id={token}&user={user}");
    assert_eq!(get(addr, &target).await.status, 200, "the first poll");
    assert_eq!(post(addr, &target, &handshake()).await.status, 200, "the handshake");
    let invocation = json!({"type": 1, "invocationId": "1", "target": "Who", "arguments": []});
    if post(addr, &target, &format!("{invocation}{RS}")).await.status != 200 {
        return false;
    }
    loop {
        let poll = get(addr, &target).await;
        if poll.status != 200 {
            return false;
        }
        for message in messages(&poll.body) {
            match message["type"].as_i64() {
                Some(3) => return message["result"] == user,
                Some(7) => return false,
                _ => {}
            }
        }
    }
}

/// (This passed before DELETE disposed of the connection: ending its input already let the
/// handler finish and release the user's place; it stays as a guard.)
#[tokio::test]
async fn after_delete_the_user_may_connect_again_at_once() {
    let options = HubOptions {
        // Long enough that only DELETE can free the user's place in time.
        disconnect_timeout: Duration::from_secs(600),
        max_connections_per_user: Some(1),
        ..Default::default()
    };
    let server = start(options).await;
    let token = long_polling(server.addr, "/users", "&user=ann").await;
    assert!(!user_may_connect(server.addr, "ann").await, "one connection per user");
    let deleted = http(server.addr, "DELETE", &format!("/users?id={token}&user=ann"), &[], "").await;
    assert_eq!(deleted.status, 202);
    let deadline = Instant::now() + PATIENCE;
    while !user_may_connect(server.addr, "ann").await {
        assert!(Instant::now() < deadline, "ann could not connect again after DELETE");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posts_on_one_connection_are_taken_one_at_a_time() {
    let options = HubOptions {
        http_post_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let server = start(options).await;
    let token = long_polling(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    // The first POST promises 100 bytes and sends 10: it holds the connection's input.
    let started = Instant::now();
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    first.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = server.addr;
    let second = tokio::spawn(async move { post(addr, &target, &format!("{{\"type\":6}}{RS}")).await });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!second.is_finished(), "the second POST waits for the first");
    // The stalled body times out; then the second POST is taken.
    let mut buffer = Vec::new();
    read_until(&mut first, &mut buffer, "\r\n\r\n").await;
    assert!(
        String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408"),
        "{:?}",
        String::from_utf8_lossy(&buffer)
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    // The stalled body's data is lost, so the connection is over (see
    // a_post_that_times_out_ends_the_connection): the second POST finds it ended.
    assert_eq!(second.await.unwrap().status, 404);
}

#[tokio::test]
async fn slowloris_clients_are_disconnected() {
    let options = HubOptions {
        http_header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start(options).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let dribble = async {
        for byte in b"GET /plain HTTP/1.1\r\nHost: slow\r\nX-Slow: " {
            if stream.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        false
    };
    let cut = tokio::time::timeout(PATIENCE, dribble).await.unwrap_or(false);
    assert!(
        cut || closed_by_server(&mut stream).await,
        "the server cut the slow client off"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_nobody_reads_is_dropped_after_the_write_timeout() {
    let options = HubOptions {
        http_write_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start(options).await;
    let token = negotiate(server.addr, "/flood", "").await;
    let (_unread, _) = open_sse(server.addr, &format!("/flood?id={token}"), &[]).await;
    assert_eq!(server.server.connection_count(), 1);
    wait_until("the stalled event stream to be dropped", || {
        server.server.connection_count() == 0
    })
    .await;
}

#[tokio::test]
async fn unstarted_connections_are_capped_and_short_lived() {
    let options = HubOptions {
        max_unstarted_connections: Some(3),
        unstarted_timeout: Duration::from_secs(1),
        max_connections: Some(5),
        ..Default::default()
    };
    let server = start(options).await;
    for _ in 0..3 {
        negotiate(server.addr, "/plain", "").await;
    }
    let refused = http(server.addr, "POST", "/plain/negotiate?negotiateVersion=1", &[], "").await;
    assert_eq!(refused.status, 503, "{refused:?}");
    // Started connections do not count toward the unstarted cap, and the unstarted ones do
    // not fill the server.
    wait_until("the unstarted connections to expire", || {
        server.server.connection_count() == 0
    })
    .await;
    for _ in 0..3 {
        long_polling(server.addr, "/plain", "").await;
    }
    for _ in 0..2 {
        negotiate(server.addr, "/plain", "").await;
    }
    assert_eq!(server.server.connection_count(), 5);
}

#[tokio::test]
async fn negotiate_is_refused_while_draining() {
    let server = builder(HubOptions::default()).build();
    let routes = server.filter();
    let response = warp::test::request()
        .method("POST")
        .path("/plain/negotiate?negotiateVersion=1")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 200);
    server.shutdown();
    let response = warp::test::request()
        .method("POST")
        .path("/plain/negotiate?negotiateVersion=1")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn long_polling_requests_must_come_from_the_user_who_started_the_connection() {
    let server = start(HubOptions::default()).await;
    let token = long_polling(server.addr, "/users", "&user=ann").await;
    let mine = format!("/users?id={token}&user=ann");
    let invocation = json!({"type": 1, "invocationId": "1", "target": "Who", "arguments": []});
    for (query, status) in [("&user=bob", 403), ("", 401)] {
        let theirs = format!("/users?id={token}{query}");
        assert_eq!(
            post(server.addr, &theirs, &format!("{invocation}{RS}")).await.status,
            status
        );
        assert_eq!(get(server.addr, &theirs).await.status, status);
        assert_eq!(http(server.addr, "DELETE", &theirs, &[], "").await.status, status);
    }
    assert_eq!(post(server.addr, &mine, &format!("{invocation}{RS}")).await.status, 200);
    let poll = get(server.addr, &mine).await;
    assert_eq!(
        messages(&poll.body),
        vec![json!({"type": 3, "invocationId": "1", "result": "ann"})]
    );
}

#[tokio::test]
async fn a_transport_must_come_from_the_user_who_negotiated() {
    let server = start(HubOptions::default()).await;
    let token = negotiate(server.addr, "/users", "&user=ann").await;
    assert_eq!(
        get(server.addr, &format!("/users?id={token}&user=bob")).await.status,
        403
    );
    assert_eq!(
        get(server.addr, &format!("/users?id={token}&user=ann")).await.status,
        200
    );
}

#[tokio::test]
async fn cross_origin_event_streams_and_websockets_are_refused_by_default() {
    let server = start(HubOptions::default()).await;
    let token = negotiate(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let evil = [("Accept", "text/event-stream"), ("Origin", "http://evil.example")];
    assert_eq!(http(server.addr, "GET", &target, &evil, "").await.status, 403);
    let same = format!("http://{}", server.addr);
    let (mut events, head) = open_sse(server.addr, &target, &[("Origin", same.as_str())]).await;
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"),
        "same origin is fine"
    );
    drop(events.shutdown().await);

    let ws = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Origin", "http://evil.example"),
    ];
    assert_eq!(http(server.addr, "GET", "/plain", &ws, "").await.status, 403);
    // Without an Origin (not a browser) the upgrade goes through.
    let mut stream = send_raw(server.addr, "GET", "/plain", &ws[..4], "").await;
    let mut buffer = Vec::new();
    read_until(&mut stream, &mut buffer, "\r\n\r\n").await;
    assert!(String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 101"));
}

#[tokio::test]
async fn the_cors_allow_list_opens_cross_origin_event_streams() {
    let server = TestServer::start(
        builder(HubOptions::default())
            .cors(Cors::origins(["http://friend.example"]))
            .build(),
    )
    .await;
    let token = negotiate(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let evil = [("Accept", "text/event-stream"), ("Origin", "http://evil.example")];
    assert_eq!(http(server.addr, "GET", &target, &evil, "").await.status, 403);
    let (_events, head) = open_sse(server.addr, &target, &[("Origin", "http://friend.example")]).await;
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_panicking_authenticator_costs_one_request() {
    let server = start(HubOptions::default()).await;
    let response = http(
        server.addr,
        "POST",
        "/boom/negotiate?negotiateVersion=1&boom=1",
        &[],
        "",
    )
    .await;
    assert_eq!(response.status, 500);
    // The server goes on serving, on that endpoint too.
    negotiate(server.addr, "/boom", "").await;
    long_polling(server.addr, "/plain", "").await;
}

#[tokio::test]
async fn a_stateful_websocket_reattach_must_come_from_the_same_user() {
    let options = HubOptions {
        stateful_reconnect: true,
        ..Default::default()
    };
    let server = start(options).await;
    let token = negotiate(server.addr, "/users", "&useStatefulReconnect=true&user=ann").await;
    let mut ann = common::Client::open(&server.ws_url(&format!("/users?id={token}&user=ann")))
        .await
        .expect("opens");
    // Version 2 of the handshake turns stateful reconnect on.
    ann.send_text(&format!("{{\"protocol\":\"json\",\"version\":2}}{RS}"))
        .await;
    assert_eq!(ann.recv().await, json!({}));
    assert_eq!(ann.call_ok("Who", json!([])).await, "ann");
    let bob = server.ws_url(&format!("/users?id={token}&useStatefulReconnect=true&user=bob"));
    assert_eq!(common::Client::open_status(&bob).await, 403);
    let nobody = server.ws_url(&format!("/users?id={token}&useStatefulReconnect=true"));
    assert_eq!(common::Client::open_status(&nobody).await, 401);
    // Ann's socket was not displaced.
    assert_eq!(ann.call_ok("Who", json!([])).await, "ann");
}

#[tokio::test]
async fn connections_are_swept_when_the_filter_is_served_by_someone_else() {
    // No built-in accept loop: the routes run inside another server (here warp's test
    // harness); unstarted connections still expire.
    let options = HubOptions {
        unstarted_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = builder(options).build();
    let routes = server.filter();
    let response = warp::test::request()
        .method("POST")
        .path("/plain/negotiate?negotiateVersion=1")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(server.connection_count(), 1);
    wait_until("the unstarted connection to expire", || server.connection_count() == 0).await;
}

/// A POST declaring `length` bytes and sending none; returns the status of its answer.
async fn post_declaring(addr: SocketAddr, target: &str, length: usize) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("POST {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {length}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut buffer = Vec::new();
    read_until(&mut stream, &mut buffer, "\r\n").await;
    let head = String::from_utf8_lossy(&buffer);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

#[tokio::test]
async fn an_oversized_post_then_a_websocket_leaks_nothing() {
    let options = HubOptions {
        // Long enough that only an immediate removal passes.
        unstarted_timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let server = start(options).await;
    // Over max_frame_size (declared), and over the pre-start budget (sent).
    for oversized in [true, false] {
        let token = negotiate(server.addr, "/plain", "").await;
        let target = format!("/plain?id={token}");
        let status = if oversized {
            post_declaring(server.addr, &target, 2_000_000).await
        } else {
            post(server.addr, &target, &"x".repeat(40 * 1024)).await.status
        };
        assert_eq!(status, 413);
        let status = common::Client::open_status(&server.ws_url(&format!("/plain?id={token}"))).await;
        assert_eq!(status, 404);
        wait_until("the connection whose input ended to be gone", || {
            server.server.connection_count() == 0
        })
        .await;
    }
}

#[tokio::test]
async fn max_connections_holds_when_negotiated_connections_start() {
    let options = HubOptions {
        max_connections: Some(3),
        ..Default::default()
    };
    let server = start(options).await;
    for _ in 0..2 {
        long_polling(server.addr, "/plain", "").await;
    }
    // One place is left: every negotiate passes, but only one connection may start.
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(negotiate(server.addr, "/plain", "").await);
    }
    let mut started = 0;
    let mut sockets = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let status = if i % 2 == 0 {
            get(server.addr, &format!("/plain?id={token}")).await.status
        } else {
            match common::Client::open(&server.ws_url(&format!("/plain?id={token}"))).await {
                Ok(client) => {
                    sockets.push(client);
                    101
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
                Err(e) => panic!("the upgrade failed without a response: {e}"),
            }
        };
        match status {
            200 | 101 => started += 1,
            503 => {}
            other => panic!("starting a connection answered {other}"),
        }
    }
    assert_eq!(started, 1, "only one connection may start");
    // The refused ones are gone; three remain.
    wait_until("the refused connections to be forgotten", || {
        server.server.connection_count() == 3
    })
    .await;
}

#[tokio::test]
async fn a_socket_that_sends_nothing_or_a_slow_http2_preface_is_closed() {
    let options = HubOptions {
        http_header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start(options).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        closed_by_server(&mut silent).await,
        "a socket that sends nothing is closed after the header timeout"
    );
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let dribble = async {
        for byte in b"PRI * HT" {
            if slow.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        false
    };
    let cut = tokio::time::timeout(PATIENCE, dribble).await.unwrap_or(false);
    assert!(
        cut || closed_by_server(&mut slow).await,
        "a slow HTTP/2 preface is cut off"
    );
    // A prompt client still gets its answer.
    negotiate(server.addr, "/plain", "").await;
}

#[tokio::test]
async fn a_panicking_hub_policy_costs_one_request() {
    let server = start(HubOptions::default()).await;
    let response = http(
        server.addr,
        "POST",
        "/guarded/negotiate?negotiateVersion=1&user=boom",
        &[],
        "",
    )
    .await;
    assert_eq!(response.status, 500, "{response:?}");
    // The server goes on serving, on that endpoint too.
    negotiate(server.addr, "/guarded", "&user=ann").await;
    long_polling(server.addr, "/plain", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_times_out_ends_the_connection() {
    let options = HubOptions {
        http_post_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let server = start(options).await;
    // 408: the body comes too slowly. Its data is lost, so the connection ends: the next
    // poll says so.
    let token = long_polling(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    read_until(&mut slow, &mut buffer, "\r\n\r\n").await;
    assert!(String::from_utf8_lossy(&buffer).starts_with("HTTP/1.1 408"));
    let poll = common::within("the poll after a 408", get(server.addr, &target)).await;
    assert_eq!(poll.status, 204, "{poll:?}");
    wait_until("the long polling connection to be gone", || {
        server.server.connection_count() == 0
    })
    .await;

    // 503: the input stays full until the deadline. The handler, once it reads again, finds
    // its input ended after what was queued, and the event stream ends.
    let token = negotiate(server.addr, "/sleepy", "").await;
    let target = format!("/sleepy?id={token}");
    let (mut events, mut buffer) = open_sse(server.addr, &target, &[]).await;
    let mut refused = false;
    for i in 0..40 {
        let status = post(server.addr, &target, &format!("frame {i}")).await.status;
        if status == 503 {
            refused = true;
            break;
        }
        assert_eq!(status, 200, "POST {i}");
    }
    assert!(refused, "a POST waited for room until its deadline");
    read_until(&mut events, &mut buffer, "\r\n0\r\n\r\n").await;
    wait_until("the SSE connection to be gone", || {
        server.server.connection_count() == 0
    })
    .await;
}

/// Every timeout option at `Duration::MAX` (an operator's "never").
fn never() -> HubOptions {
    HubOptions {
        keep_alive_interval: Duration::MAX,
        client_timeout: Duration::MAX,
        handshake_timeout: Duration::MAX,
        disconnect_timeout: Duration::MAX,
        unstarted_timeout: Duration::MAX,
        shutdown_drain: Duration::MAX,
        long_poll_timeout: Duration::MAX,
        client_result_timeout: Duration::MAX,
        reconnect_grace: Duration::MAX,
        http_header_read_timeout: Duration::MAX,
        http_write_timeout: Duration::MAX,
        http_post_timeout: Duration::MAX,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_of_duration_max_mean_never() {
    let server = start(never()).await;
    // Long polling: negotiate, poll, POST (the handshake, then an invocation), poll.
    let token = long_polling(server.addr, "/plain", "").await;
    let target = format!("/plain?id={token}");
    let invocation = format!("{{\"type\":1,\"invocationId\":\"1\",\"target\":\"Echo\",\"arguments\":[\"hi\"]}}{RS}");
    assert_eq!(post(server.addr, &target, &invocation).await.status, 200);
    let reply = common::within("the poll with the completion", get(server.addr, &target)).await;
    assert_eq!(
        messages(&reply.body),
        vec![json!({"type": 3, "invocationId": "1", "result": "hi"})]
    );
    // Server-Sent Events: the stream opens.
    let token = negotiate(server.addr, "/plain", "").await;
    let (_events, _) = open_sse(server.addr, &format!("/plain?id={token}"), &[]).await;
    // WebSockets: an echo.
    let mut client = server.connect("/plain").await;
    assert_eq!(client.call_ok("Echo", json!(["hey"])).await, "hey");
    assert_eq!(server.server.connection_count(), 3);
}
