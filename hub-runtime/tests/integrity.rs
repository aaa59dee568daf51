//! What a client cannot break by numbers it chooses: a reused invocation id, a sequence id of
//! `u64::MAX`, and a per-user limit raced by connecting many times at once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{eventually, within, Client, TestServer, RS};
use futures_util::future::BoxFuture;
use hub_runtime::backplane::{Backplane, BackplaneError, EncodedMessage, GroupChange};
use hub_runtime::clients::SendTarget;
use hub_runtime::prelude::*;
use hub_runtime::{AuthError, EndpointOptions, Identity, RequestContext};
use serde_json::json;

#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    dropped: AtomicUsize,
}

/// Counts its stream's drop.
struct DropCount(Arc<Counts>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

struct Ticker(Arc<Counts>);

#[hub]
impl Ticker {
    fn echo(&self, message: String) -> String {
        message
    }

    /// Adds what the client streams.
    async fn sum(&self, numbers: ClientStream<i32>) -> i32 {
        let mut numbers = numbers;
        let mut total = 0;
        while let Some(n) = numbers.next().await {
            total += n.unwrap_or(0);
        }
        total
    }

    /// Asks the caller for a number (a client result).
    async fn ask(&self, cx: &HubContext<Self>) -> Result<u32, HubError> {
        cx.clients
            .caller()
            .invoke("Pick", &hub_runtime::protocol::NoArgs)
            .await
            .map_err(|e| HubError::new(e.to_string()))
    }

    /// The first item the client streams; the rest is not read.
    async fn first(&self, numbers: ClientStream<i32>) -> i32 {
        let mut numbers = numbers;
        numbers.next().await.and_then(Result::ok).unwrap_or(0)
    }

    /// Adds what the client streams on two streams.
    async fn sum_both(&self, a: ClientStream<i32>, b: ClientStream<i32>) -> i32 {
        let (mut a, mut b) = (a, b);
        let mut total = 0;
        while let Some(n) = a.next().await {
            total += n.unwrap_or(0);
        }
        while let Some(n) = b.next().await {
            total += n.unwrap_or(0);
        }
        total
    }

    /// One item, then nothing until cancelled.
    fn ticks(&self) -> impl Stream<Item = u32> {
        self.0.started.fetch_add(1, Ordering::SeqCst);
        let guard = DropCount(self.0.clone());
        futures_util::stream::iter([1])
            .chain(futures_util::stream::pending())
            .map(move |n| {
                let _alive = &guard;
                n
            })
    }
}

fn ticker(options: HubOptions) -> (HubServer, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let server = HubServer::builder()
        .options(options)
        .hub("/ticks", Ticker(counts.clone()))
        .build();
    (server, counts)
}

#[tokio::test]
async fn a_running_streams_id_cannot_start_another_stream() {
    let (server, counts) = ticker(HubOptions {
        max_streams_per_connection: 2,
        ..Default::default()
    });
    let server = TestServer::start(server).await;
    let mut client = server.connect("/ticks").await;
    let start = json!({"type": 4, "invocationId": "s", "target": "Ticks", "arguments": []});
    client.send(&start).await;
    let item = client.recv_skip_pings().await;
    assert_eq!(item, json!({"type": 2, "invocationId": "s", "item": 1}));
    for _ in 0..3 {
        client.send(&start).await;
        let refused = client.recv_skip_pings().await;
        assert_eq!(
            refused,
            json!({"type": 3, "invocationId": "s", "error": "Invocation ID 's' is already in use."})
        );
    }
    assert_eq!(counts.started.load(Ordering::SeqCst), 1, "no second stream ran");
    // The first stream is still the one its id cancels.
    client.send(&json!({"type": 5, "invocationId": "s"})).await;
    eventually("the stream is cancelled", || counts.dropped.load(Ordering::SeqCst) == 1).await;
    // Its id is free again, and the limit counts what runs.
    for id in ["s", "t"] {
        client
            .send(&json!({"type": 4, "invocationId": id, "target": "Ticks", "arguments": []}))
            .await;
        let item = client.recv_skip_pings().await;
        assert_eq!(item, json!({"type": 2, "invocationId": id, "item": 1}));
    }
    assert_eq!(client.call_ok("Echo", json!(["fine"])).await, "fine");
}

/// A client stream id names one upload: a second invocation under the id of a running upload
/// is refused, and the first upload keeps all of its items.
#[tokio::test]
async fn a_running_uploads_id_cannot_start_another_upload() {
    let (server, _) = ticker(HubOptions::default());
    let server = TestServer::start(server).await;
    let mut client = server.connect("/ticks").await;
    client
        .send(&json!({"type": 1, "invocationId": "u1", "target": "Sum", "arguments": [], "streamIds": ["up"]}))
        .await;
    for n in [1, 2] {
        client.send(&json!({"type": 2, "invocationId": "up", "item": n})).await;
    }
    for second in ["u2", "u3"] {
        client
            .send(&json!({"type": 1, "invocationId": second, "target": "Sum", "arguments": [], "streamIds": ["up"]}))
            .await;
        let refused = client.recv_skip_pings().await;
        assert_eq!(
            refused,
            json!({"type": 3, "invocationId": second, "error": "Stream ID 'up' is already in use."})
        );
    }
    // One invocation cannot name the same stream twice either.
    client
        .send(&json!({"type": 1, "invocationId": "u4", "target": "SumBoth", "arguments": [], "streamIds": ["twice", "twice"]}))
        .await;
    let refused = client.recv_skip_pings().await;
    assert_eq!(
        refused,
        json!({"type": 3, "invocationId": "u4", "error": "Stream ID 'twice' is already in use."})
    );
    // The first upload has every item, and ends when its client completes it.
    client.send(&json!({"type": 2, "invocationId": "up", "item": 4})).await;
    client.send(&json!({"type": 3, "invocationId": "up"})).await;
    let reply = client.recv_skip_pings().await;
    assert_eq!(reply, json!({"type": 3, "invocationId": "u1", "result": 7}));
    // Its id is free again.
    client
        .send(&json!({"type": 1, "invocationId": "u5", "target": "Sum", "arguments": [], "streamIds": ["up"]}))
        .await;
    client.send(&json!({"type": 2, "invocationId": "up", "item": 5})).await;
    client.send(&json!({"type": 3, "invocationId": "up"})).await;
    let reply = client.recv_skip_pings().await;
    assert_eq!(reply, json!({"type": 3, "invocationId": "u5", "result": 5}));
    // An upload whose method stopped reading it no longer holds its id, even before its client
    // completes it.
    for (invocation, n) in [("f1", 8), ("f2", 9)] {
        client
            .send(
                &json!({"type": 1, "invocationId": invocation, "target": "First", "arguments": [], "streamIds": ["f"]}),
            )
            .await;
        client.send(&json!({"type": 2, "invocationId": "f", "item": n})).await;
        let reply = client.recv_skip_pings().await;
        assert_eq!(reply, json!({"type": 3, "invocationId": invocation, "result": n}));
    }
    assert_eq!(client.call_ok("Echo", json!(["fine"])).await, "fine");
}

/// `Duration::MAX` is how an operator says "no timeout": a connection, its keep-alive and its
/// client-result wait take it without an overflow (a panic in debug builds).
#[tokio::test]
async fn timeouts_of_duration_max_mean_never() {
    let forever = std::time::Duration::MAX;
    let (server, _) = ticker(HubOptions {
        client_timeout: forever,
        keep_alive_interval: forever,
        handshake_timeout: forever,
        client_result_timeout: forever,
        ..Default::default()
    });
    let server = TestServer::start(server).await;
    let mut client = server.connect("/ticks").await;
    for i in 0..3 {
        let text = format!("still here {i}");
        assert_eq!(client.call_ok("Echo", json!([text])).await, json!(text));
    }
    let asked = client.invoke("Ask", json!([])).await;
    let question = client.recv_skip_pings().await;
    assert_eq!(question["target"], "Pick", "{question}");
    client
        .send(&json!({"type": 3, "invocationId": question["invocationId"], "result": 7}))
        .await;
    let reply = client.recv_skip_pings().await;
    assert_eq!(reply, json!({"type": 3, "invocationId": asked, "result": 7}));
    client.close().await;
    eventually("the connection is counted out", || {
        server.server.connection_count() == 0
    })
    .await;
}

/// Negotiates stateful reconnect and completes a version 2 handshake.
async fn stateful_client(server: &TestServer) -> Client {
    let negotiated = server
        .negotiate("/ticks", "negotiateVersion=1&useStatefulReconnect=true")
        .await;
    let body = negotiated.json();
    assert_eq!(body["useStatefulReconnect"], true, "{body}");
    let token = body["connectionToken"].as_str().expect("a token").to_string();
    let mut client = Client::open(&server.ws_url(&format!("/ticks?id={token}")))
        .await
        .expect("the WebSocket opens");
    client
        .send_text(&format!("{{\"protocol\":\"json\",\"version\":2}}{RS}"))
        .await;
    assert_eq!(client.recv().await, json!({}), "handshake reply");
    client
}

fn stateful() -> HubOptions {
    HubOptions {
        stateful_reconnect: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_sequence_id_of_u64_max_is_a_protocol_error_not_a_panic() {
    let (server, _) = ticker(stateful());
    let server = TestServer::start(server).await;
    let mut client = stateful_client(&server).await;
    assert_eq!(client.call_ok("Echo", json!(["before"])).await, "before");
    client.send(&json!({"type": 9, "sequenceId": u64::MAX})).await;
    client.invoke("Echo", json!(["after"])).await;
    let close = within("the Close message", async {
        loop {
            let message = client.recv().await;
            if message["type"] == 7 {
                return message;
            }
            assert!([6, 8].contains(&message["type"].as_u64().unwrap_or(0)), "{message}");
        }
    })
    .await;
    assert!(
        close["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Connection closed with an error.")),
        "{close}"
    );
    eventually("the connection is counted out", || {
        server.server.connection_count() == 0
    })
    .await;
    // The server is fine.
    let mut other = stateful_client(&server).await;
    assert_eq!(other.call_ok("Echo", json!(["still"])).await, "still");
}

/// The next message that is neither a Ping nor an Ack.
async fn next_skipping_acks(client: &mut Client) -> serde_json::Value {
    loop {
        let message = client.recv_skip_pings().await;
        if message["type"] != 8 {
            return message;
        }
    }
}

#[tokio::test]
async fn a_sequence_that_goes_back_skips_what_was_handled() {
    let (server, _) = ticker(stateful());
    let server = TestServer::start(server).await;
    let mut client = stateful_client(&server).await;
    let first = json!({"type": 1, "invocationId": "a", "target": "Echo", "arguments": ["one"]});
    client.send(&first).await;
    assert_eq!(next_skipping_acks(&mut client).await["result"], "one");
    // As after a reconnect: the client replays from its first message; the server skips it
    // and handles the new one.
    client.send(&json!({"type": 9, "sequenceId": 1})).await;
    client.send(&first).await;
    client
        .send(&json!({"type": 1, "invocationId": "b", "target": "Echo", "arguments": ["two"]}))
        .await;
    let reply = next_skipping_acks(&mut client).await;
    assert_eq!(reply["invocationId"], "b", "{reply}");
    // A Sequence naming the next number is no change.
    client.send(&json!({"type": 9, "sequenceId": 3})).await;
    client
        .send(&json!({"type": 1, "invocationId": "c", "target": "Echo", "arguments": ["three"]}))
        .await;
    assert_eq!(next_skipping_acks(&mut client).await["result"], "three");
}

struct Plain;

#[hub]
impl Plain {
    fn echo(&self, message: String) -> String {
        message
    }
}

/// A fleet whose registration takes a while, as Redis's does: connections that start
/// together are all registering at once.
struct SlowFleet;

impl Backplane for SlowFleet {
    fn is_distributed(&self) -> bool {
        true
    }

    fn publish(&self, _: &str, _: &SendTarget, _: EncodedMessage) -> BoxFuture<'static, Result<(), BackplaneError>> {
        Box::pin(async { Ok(()) })
    }

    fn change_remote_group(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: GroupChange,
    ) -> BoxFuture<'static, Result<(), BackplaneError>> {
        Box::pin(async { Ok(()) })
    }

    fn connection_added(&self, _: &str, _: &str, _: Option<&str>) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(std::time::Duration::from_millis(100)))
    }
}

#[tokio::test]
async fn concurrent_connects_of_one_user_cannot_pass_the_per_user_limit() {
    let by_query =
        |req: &RequestContext| -> Result<Option<Identity>, AuthError> { Ok(req.query("user").map(Identity::user)) };
    let server = HubServer::builder()
        .options(HubOptions {
            max_connections_per_user: Some(2),
            ..Default::default()
        })
        .backplane(SlowFleet)
        .hub_with("/plain", Plain, EndpointOptions::new().authenticator(by_query))
        .build();
    let server = TestServer::start(server).await;
    for round in 0..3 {
        // Every socket is open before any handshake is sent, so the handshakes race.
        let mut clients = Vec::new();
        for _ in 0..12 {
            let negotiated = server.negotiate("/plain", "negotiateVersion=1&user=ann").await;
            let token = negotiated.json()["connectionToken"]
                .as_str()
                .expect("a token")
                .to_string();
            let url = server.ws_url(&format!("/plain?id={token}&user=ann"));
            clients.push(Client::open(&url).await.expect("the WebSocket opens"));
        }
        let handshakes = clients.into_iter().map(|mut client| async move {
            client
                .send_text(&format!("{{\"protocol\":\"json\",\"version\":1}}{RS}"))
                .await;
            assert_eq!(client.recv().await, json!({}), "handshake reply");
            client
        });
        let clients = futures_util::future::join_all(handshakes).await;
        // The refused are sent a Close and counted out; then only the two kept are left.
        eventually("all but two connections are refused", || {
            server.server.connection_count() == 2
        })
        .await;
        let mut kept = Vec::new();
        let mut refused = 0;
        for mut client in clients {
            // A refused client has its Close already (it was sent before the connection was
            // counted out); a kept one is sent nothing.
            match tokio::time::timeout(std::time::Duration::from_secs(1), client.try_recv()).await {
                Ok(Ok(close)) if close["type"] == 7 => refused += 1,
                Ok(other) => panic!("round {round}: unexpected {other:?}"),
                Err(_) => kept.push(client),
            }
        }
        assert_eq!(kept.len(), 2, "round {round}: {refused} refused");
        for client in kept.iter_mut() {
            assert_eq!(client.call_ok("Echo", json!(["hi"])).await, "hi");
        }
        for client in kept {
            client.close().await;
        }
        eventually("every connection is counted out", || {
            server.server.connection_count() == 0
        })
        .await;
    }
}
